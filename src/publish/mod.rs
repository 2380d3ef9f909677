//! The publisher's side (cargo feature `publish`, native only; the wasm never compiles
//! it): everything between a publisher's files and a catalog folder.
//!
//! * `builder`: the pipeline of `localrec build`, `merge` and `train` (shard plan,
//!   checkpoints, parts, training, record layout, the manifest written last), writing
//!   through a [`Sink`] (`native::DirSink` on disk) and reporting through
//!   [`PublishProgress`], so that the pipeline itself prints nothing and touches no file.
//! * `collaborative`: the collaborative side trained from an interaction log.
//! * `report`: how training and tuning read as JSON (summaries, the manifest, `eval`).
//! * The imports of what a distributed engine computed: `parquet` reads Parquet files and
//!   folders of part files through the `parquet` crate's row API; `spark` reads a Spark
//!   MLlib `ALSModel.save` directory and the id map from Spark's integer ids to the
//!   catalog's item ids; `embeddings` reads item embeddings computed elsewhere. Unlike
//!   the core, these read files, like `native`.

pub mod builder;
pub mod collaborative;
pub mod embeddings;
pub mod parquet;
pub mod report;
mod sink;
pub mod spark;

pub use builder::{BuildOptions, BuildReport, Builder, Model, Training};
pub use sink::Sink;

use crate::scorer::train::TrainProgress;

/// What a long publisher task tells the person running it; the CLI prints it (a bar on a
/// terminal, a line every few seconds in a log). Training's stages, ALS iterations and
/// tuning trials come through the [`TrainProgress`] half.
pub trait PublishProgress: TrainProgress {
    /// A counted task starts: `total` `unit`s of `what` (`"encoding"`, `"items"`).
    fn start(&mut self, what: &str, unit: &'static str, total: u64);
    /// `n` more units of the current task are done.
    fn advance(&mut self, n: u64);
    /// The current task ended (done or stopped).
    fn finish(&mut self);
    /// A line worth reading once (`"resuming: ..."`, what was trained).
    fn note(&mut self, message: &str);
}

//! The publisher's side (cargo feature `publish`, native only; the wasm never compiles
//! it): everything between a publisher's files and a catalog folder.
//!
//! * `builder`: the pipeline of `localrec build`, `merge` and `train` (shard plan,
//!   checkpoints, parts, training, record layout, the manifest written last), writing
//!   through a [`Sink`] (`DirSink` on disk) and reporting through
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
mod progress;
pub mod report;
mod sink;
pub mod spark;

pub use builder::{BuildOptions, BuildReport, Builder, Model};
pub use collaborative::Training;
pub use progress::PublishProgress;
pub use sink::{DirSink, Sink};

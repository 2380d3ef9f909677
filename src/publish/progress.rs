//! How the publisher's pipeline speaks to the person running it, without printing
//! anything itself: the CLI implements [`PublishProgress`].

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

//! Where a publisher's output goes. The builder decides what to write and in which order
//! (shards under temporary names, renamed together, the manifest last); a [`Sink`] only
//! moves bytes. `native::DirSink` is the file-system one the CLI uses; tests may keep
//! files in memory.

use crate::error::Result;

/// The output folder of a build, `merge` or `train`, addressed by `/`-separated paths
/// relative to it (`shards/00000-….bin`, `.build/embeddings-…/000000000-000000128.bin`).
pub trait Sink {
    /// The bytes of `path`; an error that names it when it cannot be read (or is missing).
    fn read(&mut self, path: &str) -> Result<Vec<u8>>;
    /// Writes `path` whole or not at all: readers see the old file or the new one.
    /// Missing folders are created.
    fn write(&mut self, path: &str, bytes: &[u8]) -> Result<()>;
    /// Writes `path` under a temporary name; [`Sink::commit`] puts every staged file in place.
    fn stage(&mut self, path: &str, bytes: &[u8]) -> Result<()>;
    /// Renames every staged file to its path, in the order staged.
    fn commit(&mut self) -> Result<()>;
    /// Creates folder `path` and its parents.
    fn create_dir(&mut self, path: &str) -> Result<()>;
    /// The names in folder `path`; none when it does not exist.
    fn list(&mut self, path: &str) -> Result<Vec<String>>;
    /// Removes folder `path` with its contents; nothing when it does not exist.
    fn remove_dir(&mut self, path: &str) -> Result<()>;
    /// Removes file `path`, or folder `path` if it is empty, when it can: what is still in
    /// use (another part's checkpoint) stays, and a failure is no error.
    fn tidy(&mut self, path: &str);
}

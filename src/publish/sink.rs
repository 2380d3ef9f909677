//! Where a publisher's output goes. The builder decides what to write and in which order
//! (shards under temporary names, renamed together, the manifest last); a [`Sink`] only
//! moves bytes. [`DirSink`] is the file-system one the CLI uses (through `native`'s
//! atomic writes); tests may keep files in memory.

use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use crate::native::{rename, write_atomic, write_temp};

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::with_source(ErrorKind::Io, what, e)
}

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

/// A catalog folder as the builder's [`Sink`]: atomic writes ([`write_atomic`]), staged
/// files renamed together on commit.
pub struct DirSink {
    root: PathBuf,
    /// (temporary, final) paths written by `stage`, not yet renamed.
    staged: Vec<(PathBuf, PathBuf)>,
}

impl DirSink {
    /// The folder `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> DirSink {
        DirSink { root: root.into(), staged: Vec::new() }
    }

    fn path(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }
}

impl Sink for DirSink {
    fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        let path = self.path(path);
        std::fs::read(&path).map_err(|e| io_error(format!("cannot read {}", path.display()), e))
    }

    fn write(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.path(path), bytes)
    }

    fn stage(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(path);
        let tmp = write_temp(&path, bytes)?;
        self.staged.push((tmp, path));
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        for (tmp, path) in std::mem::take(&mut self.staged) {
            rename(&tmp, &path)?;
        }
        Ok(())
    }

    fn create_dir(&mut self, path: &str) -> Result<()> {
        let path = self.path(path);
        std::fs::create_dir_all(&path).map_err(|e| io_error(format!("cannot create {}", path.display()), e))
    }

    fn list(&mut self, path: &str) -> Result<Vec<String>> {
        let path = self.path(path);
        if !path.is_dir() {
            return Ok(Vec::new());
        }
        let entries = std::fs::read_dir(&path).map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
        Ok(entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
    }

    fn remove_dir(&mut self, path: &str) -> Result<()> {
        let path = self.path(path);
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io_error(format!("cannot remove {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }

    fn tidy(&mut self, path: &str) {
        let path = self.path(path);
        // A folder that still holds files (another part's chunks) is left as it is.
        let _ = if path.is_dir() { std::fs::remove_dir(&path) } else { std::fs::remove_file(&path) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_sink_renames_staged_files_only_on_commit_and_tidies_only_what_is_unused() {
        let root = std::env::temp_dir().join(format!("localrec-sink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut sink = DirSink::new(&root);
        assert_eq!(sink.list("shards").unwrap(), Vec::<String>::new(), "a missing folder lists nothing");
        sink.stage("shards/a.bin", b"a").unwrap();
        assert!(sink.read("shards/a.bin").is_err(), "a staged file is not in place before commit");
        sink.commit().unwrap();
        assert_eq!(sink.read("shards/a.bin").unwrap(), b"a");
        sink.write(".build/x/1.bin", b"1").unwrap();
        sink.write(".build/y/2.bin", b"2").unwrap();
        sink.tidy(".build/x/1.bin");
        sink.tidy(".build/x");
        sink.tidy(".build");
        assert_eq!(sink.list(".build").unwrap(), vec!["y".to_string()], "a folder still in use stays");
        sink.remove_dir(".build").unwrap();
        sink.remove_dir(".build").unwrap();
        assert!(!root.join(".build").exists());
        let err = sink.read("missing.json").unwrap_err();
        assert!(err.to_string().starts_with("cannot read ") && err.to_string().contains("missing.json"), "{err}");
        let _ = std::fs::remove_dir_all(&root);
    }
}

//! The crate's error type: one `Error` with a stable [`ErrorKind`], a lowercase message
//! saying what was wrong and where, and the underlying cause kept as its source.

use std::fmt;

/// What went wrong, as a stable category that callers (and the wasm layer's JS `code`)
/// can match on without parsing messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A model's config.json or sentence_bert_config.json is malformed or describes an
    /// architecture this crate cannot run.
    Config,
    /// The tokenizer file is malformed or tokenizing an input failed.
    Tokenizer,
    /// A weights file is truncated, malformed, or misses a tensor, or a tensor has the
    /// wrong shape or dtype.
    Weights,
    /// The caller's input is invalid (for example a line that is not JSON).
    Input,
    /// A compute backend could not be started or failed while running.
    Backend,
    /// Reading or writing a file failed (native helpers only; the core does no I/O).
    Io,
    /// A catalog manifest or shard is malformed, of an unknown version, or outside the
    /// format's limits.
    Format,
    /// Bytes do not match the size or SHA-256 their manifest gives, or a manifest names
    /// a file outside its own folder.
    Integrity,
    /// A download failed (the JS layer: HTTP errors, cut connections after retries).
    Network,
    /// An item or file asked for is not there.
    NotFound,
    /// The object was closed before or during the call.
    Closed,
    /// The caller's `AbortSignal` aborted the call.
    Aborted,
    /// A backend took longer than its budget.
    Timeout,
    /// The browser's storage (IndexedDB, Cache Storage) refused a write or a delete.
    Storage,
    /// A Web Worker could not be started or its script failed.
    Worker,
    /// A bug: a trap (panic, out of memory) in the wasm module; the worker is replaced.
    Internal,
    /// The asked-for backend (WebGPU) is not available here.
    BackendUnavailable,
    /// The backend (a WebGPU device) was lost after loading.
    BackendLost,
    /// The page's Content-Security-Policy blocks something the library needs.
    Csp,
}

impl ErrorKind {
    /// A short stable identifier, e.g. `"weights"`; used as the JS error `code` suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Tokenizer => "tokenizer",
            ErrorKind::Weights => "weights",
            ErrorKind::Input => "input",
            ErrorKind::Backend => "backend",
            ErrorKind::Io => "io",
            ErrorKind::Format => "format",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Network => "network",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Closed => "closed",
            ErrorKind::Aborted => "aborted",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Storage => "storage",
            ErrorKind::Worker => "worker",
            ErrorKind::Internal => "internal",
            ErrorKind::BackendUnavailable => "backend-unavailable",
            ErrorKind::BackendLost => "backend-lost",
            ErrorKind::Csp => "csp",
        }
    }
}

/// The error of every fallible operation in the crate.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a lowercase message and no underlying cause.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }

    /// An error of `kind` whose cause is `source`; the source's text is shown after the message.
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self { kind, message: message.into(), source: Some(source.into()) }
    }

    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the source's text.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with where the error happened, e.g. `"line 3"`.
    pub fn context(mut self, at: impl fmt::Display) -> Self {
        self.message = format!("{at}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_joins_message_and_source_and_keeps_the_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = Error::with_source(ErrorKind::Io, "cannot read config.json", io).context("model dir");
        assert_eq!(err.to_string(), "model dir: cannot read config.json: no such file");
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(std::error::Error::source(&err).is_some());
    }
}

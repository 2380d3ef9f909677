//! # localrec
//!
//! A recommender that runs entirely in the visitor's web browser. A site publishes its
//! catalog as static files; the browser downloads a distilled transformer encoder
//! (all-MiniLM-L6-v2, written in [burn]) and the item shards, learns the visitor's taste
//! on the device, and ranks items locally.
//!
//! This crate is both the browser library (compiled to WebAssembly) and the publisher's
//! native command-line tool. Its core does no I/O: it takes bytes and returns values.
//!
//! ```no_run
//! use localrec::{Encoder, native};
//!
//! let files = native::read_model_dir(".cache/models/all-MiniLM-L6-v2")?;
//! let device = native::NativeBackend::Cpu.device()?;
//! let encoder = Encoder::load(&files, &device)?;
//! let vectors = encoder.embed(&["Toy Story (1995)", "a quiet space drama"])?;
//! assert_eq!(vectors.dims, 384);
//! # Ok::<(), localrec::Error>(())
//! ```

pub mod catalog;
pub mod encoder;
pub mod error;
pub mod limits;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
// The publisher's side reads files and trains on every core; the browser never needs it.
#[cfg(all(feature = "publish", target_arch = "wasm32"))]
compile_error!("the `publish` feature is the publisher's native side: build the wasm without it");
#[cfg(feature = "publish")]
pub mod publish;
pub mod scorer;

pub use encoder::{BertConfig, DEFAULT_BATCH_SIZE, Embeddings, Encoder, Engine, ModelFiles, cosine};
pub use error::{Error, ErrorKind, Result};
#[cfg(target_arch = "wasm32")]
mod wasm;

//! Catalogs: the static files a site publishes (docs/catalog-format.md). A manifest
//! lists checksummed shards; each shard holds items with their metadata, int8
//! embeddings, and (once trained) collaborative factors.
//!
//! The core only turns bytes into values and back: reading files or URLs is the
//! caller's job (the CLI natively, the worker in the browser). `input` parses a
//! publisher's item and interaction files, `build` holds the builder's logic (shard and
//! part planning, checkpoint chunks, merging parts), and `store` holds a loaded catalog
//! as its shards stream in (verified before use) and answers queries over it.

pub mod build;
#[cfg(not(target_arch = "wasm32"))]
pub mod domains;
pub mod input;
pub mod manifest;
pub mod quantize;
pub mod shard;
pub mod store;

pub use input::{Interactions, ScenarioRule, SourceItem, parse_interactions, parse_items};
pub use manifest::{CatalogEncoder, Collaborative, MANIFEST_FILE, Manifest, Quantization, ShardEntry};
pub use quantize::QuantizedRow;
pub use shard::{CatalogItem, ShardExpectation, ShardHeader, ShardParser, parse_shard, write_shard};
pub use store::{CatalogStore, FailedShard, LoadStatus, Neighbour, ShardState, ShardStream, StoredItem, VerifiedShard};

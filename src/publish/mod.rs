//! The publisher's imports (cargo feature `publish`, native only; the wasm never compiles
//! them): what a distributed engine computed, read back for `localrec build` and
//! `localrec train`. `parquet` reads Parquet files and folders of part files through the
//! `parquet` crate's row API; `spark` reads a Spark MLlib `ALSModel.save` directory and the
//! id map from Spark's integer ids to the catalog's item ids; `embeddings` reads item
//! embeddings computed elsewhere. Unlike the core, these read files: they are the
//! publisher's side, like `native`.

pub mod embeddings;
pub mod parquet;
pub mod spark;

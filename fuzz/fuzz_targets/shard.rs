//! Fuzz target: shard bytes through `ShardParser` (in one piece and in chunks) and the
//! browser's `ShardStream` / `CatalogStore` path. The input's layout is in `harness.rs`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::shard(data);
});

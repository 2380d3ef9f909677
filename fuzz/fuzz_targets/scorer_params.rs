//! Fuzz target: `collaborative.params` (and the shard's factor width) from the input, through
//! the manifest, a store, `model::from_store`, a `Scorer` on the CPU device and two fixed
//! requests. The input's layout is in `harness.rs`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::scorer_params(data);
});

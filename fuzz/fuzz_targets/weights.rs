//! Fuzz target: a safetensors weights file read for a tiny BERT config, then both
//! engines built from what was accepted. See `harness.rs`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::weights(data);
});

//! Fuzz target: arbitrary bytes as `manifest.json`; whatever parses must round-trip
//! through `to_json`. See `harness.rs`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::manifest(data);
});

//! Fuzz target: `tokenizer.json` through `TextTokenizer::from_json`, then texts of every
//! kind encoded with it. See `harness.rs`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::tokenizer(data);
});

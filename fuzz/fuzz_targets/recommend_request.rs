//! Fuzz target: a `recommend` request (JSON) through `api::parse_request` and
//! `api::recommend` over three tiny catalogs (collaborative and partial, text only, empty).
//! See `harness.rs`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::recommend_request(data);
});

//! Fuzz target: `config.json` (and, after a NUL byte, `sentence_bert_config.json`) through
//! `BertConfig::from_json`. See `harness.rs`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::model_config(data);
});

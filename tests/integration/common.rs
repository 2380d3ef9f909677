//! Shared helpers for the integration tests: the golden fixture and the model folder.

use std::path::PathBuf;

use localrec::ModelFiles;
use serde::Deserialize;

/// One line of tests/fixtures/minilm_golden.jsonl.
#[derive(Deserialize)]
pub struct Golden {
    pub text: String,
    pub input_ids: Vec<u32>,
    pub embedding: Vec<f32>,
}

pub fn golden() -> Vec<Golden> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_golden.jsonl");
    let text = std::fs::read_to_string(&path).expect("tests/fixtures/minilm_golden.jsonl is part of the repo");
    let lines: Vec<Golden> = text.lines().map(|l| serde_json::from_str(l).expect("golden line parses")).collect();
    assert_eq!(lines.len(), 32, "the golden fixture has 32 lines");
    lines
}

/// The model fetched by scripts/fetch-model.sh (or LOCALREC_MODEL_DIR). A missing model is
/// a failure, not a skip: `make test` fetches it first.
pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("LOCALREC_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/models/all-MiniLM-L6-v2"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "model not found in {}: run scripts/fetch-model.sh (make test does)",
        dir.display()
    );
    dir
}

pub fn model_files() -> ModelFiles {
    localrec::native::read_model_dir(model_dir()).expect("model folder reads")
}

/// The f16 web copy of the model, made in memory by the same code as `localrec export-web`.
pub fn web_model_files() -> ModelFiles {
    let web = localrec::encoder::web::export_web(&model_files(), "all-MiniLM-L6-v2").expect("export-web works");
    let get = |name: &str| web.iter().find(|f| f.path == name).map(|f| f.bytes.clone()).expect(name);
    ModelFiles {
        config: get("config.json"),
        tokenizer: get("tokenizer.json"),
        weights: get("model.safetensors"),
        sentence_config: Some(get("sentence_bert_config.json")),
    }
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

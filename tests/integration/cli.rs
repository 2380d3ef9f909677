//! The `localrec` binary: `embed` speaks the golden fixture's format and fails clearly on
//! bad lines; `export-web` writes a verifiable web copy.


use std::io::Write;
use std::process::{Command, Output, Stdio};

use super::common::{golden, model_dir};
use localrec::cosine;

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_localrec"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("localrec starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().expect("localrec finishes")
}

/// Asserts the run failed and returns what it printed on stderr.
fn failure_message(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn embed(stdin: &[u8]) -> Output {
    let dir = model_dir();
    run(&["embed", "--model", dir.to_str().unwrap(), "--batch", "4"], stdin)
}

#[test]
fn embed_writes_the_fixture_format_in_input_order() {
    let golden = golden();
    let input: String = golden
        .iter()
        .map(|g| serde_json::json!({"text": g.text}).to_string() + "\n")
        .collect();
    let out = embed(input.as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), golden.len());
    for (line, g) in lines.iter().zip(&golden) {
        assert_eq!(line["text"].as_str().unwrap(), g.text);
        let ids: Vec<u32> = serde_json::from_value(line["input_ids"].clone()).unwrap();
        assert_eq!(ids, g.input_ids);
        let emb: Vec<f32> = serde_json::from_value(line["embedding"].clone()).unwrap();
        assert!(cosine(&emb, &g.embedding) >= 0.9999, "{:?}", g.text);
    }
}

#[test]
fn embed_of_empty_input_prints_nothing_and_succeeds() {
    let out = embed(b"");
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn embed_names_the_line_with_invalid_json() {
    let out = embed(b"{\"text\": \"fine\"}\n{\"text\": oops}\n");
    let err = failure_message(&out);
    assert!(err.contains("line 2") && err.contains("json"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty(), "nothing is written before the input is known good");
}

#[test]
fn embed_names_the_line_with_invalid_utf8() {
    let out = embed(b"{\"text\": \"fine\"}\n{\"text\": \"bad \xff\xfe\"}\n");
    let err = failure_message(&out);
    assert!(err.contains("line 2") && err.contains("utf-8"), "{err}");
}

#[test]
fn embed_refuses_a_missing_model_folder_clearly() {
    let out = run(&["embed", "--model", "/nonexistent/model"], b"{\"text\": \"a\"}\n");
    let err = failure_message(&out);
    assert!(err.contains("/nonexistent/model") && !err.contains("panicked"), "{err}");
}

#[test]
fn export_web_writes_f16_weights_and_a_manifest_that_verifies() {
    let out_dir = std::env::temp_dir().join(format!("localrec-export-{}", std::process::id()));
    let dir = model_dir();
    let out = run(&["export-web", "--model", dir.to_str().unwrap(), "--out", out_dir.to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let manifest: localrec::encoder::web::ModelManifest =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.encoder.dims, 384);
    assert_eq!(manifest.encoder.max_seq_length, 256);
    assert_eq!(
        manifest.encoder.source_weights_sha256,
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    );
    for file in &manifest.files {
        let bytes = std::fs::read(out_dir.join(&file.path)).unwrap();
        assert_eq!(bytes.len() as u64, file.bytes, "{}", file.path);
        assert_eq!(localrec::encoder::web::sha256_hex(&bytes), file.sha256, "{}", file.path);
    }
    let weights = manifest.files.iter().find(|f| f.path == "model.safetensors").unwrap();
    let source = std::fs::metadata(dir.join("model.safetensors")).unwrap().len();
    assert!(weights.bytes < source * 6 / 10, "f16 copy is about half the f32 size");
    // The web copy is itself a model folder the loader accepts.
    let files = localrec::native::read_model_dir(&out_dir).unwrap();
    let enc = localrec::Encoder::load(&files, &localrec::native::NativeBackend::Cpu.device().unwrap()).unwrap();
    assert_eq!(enc.config().max_seq_length, 256);
    std::fs::remove_dir_all(&out_dir).ok();
}

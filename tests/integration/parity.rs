//! Parity with sentence-transformers on the 32 golden texts: token ids exactly, embeddings
//! within tolerance, for the f32 weights and the f16 web copy, on burn's CPU backend (Flex)
//! and on wgpu (Mesa lavapipe on machines without a GPU: the test fails if no adapter works).


use super::common::{Golden, golden, max_abs_diff, model_files, web_model_files};
use localrec::native::NativeBackend;
use localrec::{Encoder, Engine, ModelFiles, cosine};

fn check_parity(files: &ModelFiles, backend: NativeBackend, min_cosine: f32, max_diff: Option<f32>) {
    check_parity_with(files, backend, Engine::Burn, min_cosine, max_diff)
}

/// As `check_parity`, on a chosen engine (the CPU kernels are what the browser's CPU
/// backend runs).
fn check_parity_with(files: &ModelFiles, backend: NativeBackend, engine: Engine, min_cosine: f32, max_diff: Option<f32>) {
    let device = backend.device().unwrap_or_else(|e| panic!("{} backend must work here: {e}", backend.name()));
    let encoder = Encoder::load_with_engine(files, &device, engine).expect("model loads");
    assert_eq!(encoder.engine(), engine);
    assert_eq!(encoder.dims(), 384);
    let golden: Vec<Golden> = golden();
    let texts: Vec<&str> = golden.iter().map(|g| g.text.as_str()).collect();

    let ids = encoder.tokenize(&texts).expect("tokenizes");
    for (g, got) in golden.iter().zip(&ids) {
        assert_eq!(got, &g.input_ids, "token ids differ for {:?}", g.text);
    }

    // Each text alone, as the golden vectors were made.
    let mut worst_cos = 1.0f32;
    let mut worst_diff = 0.0f32;
    for (g, seq) in golden.iter().zip(&ids) {
        let v = encoder.embed_tokens(std::slice::from_ref(seq), 1).expect("embeds");
        let (c, d) = (cosine(v.row(0), &g.embedding), max_abs_diff(v.row(0), &g.embedding));
        worst_cos = worst_cos.min(c);
        worst_diff = worst_diff.max(d);
        assert!(c >= min_cosine, "{}: cosine {c} < {min_cosine} for {:?}", backend.name(), g.text);
        if let Some(limit) = max_diff {
            assert!(d <= limit, "{}: max abs diff {d} > {limit} for {:?}", backend.name(), g.text);
        }
    }
    eprintln!("{}: worst cosine {worst_cos:.7}, worst max abs diff {worst_diff:.2e}", backend.name());
}

#[test]
fn cpu_f32_weights_match_sentence_transformers() {
    check_parity(&model_files(), NativeBackend::Cpu, 0.9999, Some(1e-4));
}

#[test]
fn cpu_f16_web_copy_matches_sentence_transformers() {
    check_parity(&web_model_files(), NativeBackend::Cpu, 0.999, None);
}

#[test]
fn cpu_kernels_engine_with_f32_weights_match_sentence_transformers() {
    check_parity_with(&model_files(), NativeBackend::Cpu, Engine::CpuKernels, 0.9999, Some(1e-4));
}

#[test]
fn cpu_kernels_engine_with_f16_web_copy_match_sentence_transformers() {
    check_parity_with(&web_model_files(), NativeBackend::Cpu, Engine::CpuKernels, 0.999, None);
}

#[test]
fn wgpu_f32_weights_match_sentence_transformers() {
    check_parity(&model_files(), NativeBackend::Wgpu, 0.9999, Some(1e-4));
}

#[test]
fn wgpu_f16_web_copy_matches_sentence_transformers() {
    check_parity(&web_model_files(), NativeBackend::Wgpu, 0.999, None);
}

/// Padding must not leak into results: a batch mixing 2-token and 256-token texts gives
/// the same vectors as encoding each alone.
fn check_batched_equals_single(backend: NativeBackend, engine: Engine) {
    let device = backend.device().expect("backend works");
    let encoder = Encoder::load_with_engine(&model_files(), &device, engine).expect("model loads");
    let golden = golden();
    let texts: Vec<&str> = golden.iter().map(|g| g.text.as_str()).collect();
    let ids = encoder.tokenize(&texts).expect("tokenizes");
    assert!(ids.iter().any(|s| s.len() == 256) && ids.iter().any(|s| s.len() == 2), "fixture mixes lengths");
    let batched = encoder.embed_tokens(&ids, 32).expect("embeds batch");
    // Small batches that still mix lengths, in a scrambled order.
    let mut scrambled: Vec<usize> = (0..ids.len()).rev().collect();
    scrambled.rotate_left(5);
    let seqs: Vec<Vec<u32>> = scrambled.iter().map(|&i| ids[i].clone()).collect();
    let in_sevens = encoder.embed_tokens(&seqs, 7).expect("embeds batches of 7");
    for (i, seq) in ids.iter().enumerate() {
        let single = encoder.embed_tokens(std::slice::from_ref(seq), 1).expect("embeds one");
        let c = cosine(batched.row(i), single.row(0));
        assert!(c >= 0.9999, "{}: batch-of-32 vs single cosine {c} for text {i}", backend.name());
        let k = scrambled.iter().position(|&j| j == i).unwrap();
        let c7 = cosine(in_sevens.row(k), single.row(0));
        assert!(c7 >= 0.9999, "{}: batch-of-7 vs single cosine {c7} for text {i}", backend.name());
    }
}

#[test]
fn cpu_batched_and_single_encoding_agree() {
    check_batched_equals_single(NativeBackend::Cpu, Engine::Burn);
}

#[test]
fn cpu_kernels_engine_batched_and_single_encoding_agree() {
    check_batched_equals_single(NativeBackend::Cpu, Engine::CpuKernels);
}

#[test]
fn wgpu_batched_and_single_encoding_agree() {
    check_batched_equals_single(NativeBackend::Wgpu, Engine::Burn);
}

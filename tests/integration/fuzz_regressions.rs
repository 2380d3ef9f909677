//! The fuzz targets' inputs as regression tests: every file in
//! tests/fixtures/fuzz-regressions/<target>/ (hand-made hostile inputs, and any input a
//! fuzzer ever crashed on) replays through the targets' own code (fuzz/harness.rs)
//! without a panic; the seed corpus that `make fuzz` and the bounded stable fuzzer
//! (`fuzz_bounded.rs`) start from is built here, from ml-latest-small's movies and the
//! real writers, and checked to be accepted.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use localrec::catalog::build::{CollaborativeSide, shard_bytes};
use localrec::catalog::{
    CatalogEncoder, Collaborative, Manifest, QuantizedRow, Quantization, ShardEntry, ShardExpectation, parse_items,
};
use localrec::encoder::web::sha256_hex;

#[path = "../../fuzz/harness.rs"]
pub(super) mod harness;

use harness::ShardInput;

/// The fuzz targets, by the names of their folders and cargo-fuzz binaries.
pub(super) const TARGETS: [&str; 7] =
    ["shard", "manifest", "scorer_params", "recommend_request", "model_config", "weights", "tokenizer"];

/// The saved inputs of target `kind`, as bytes.
pub(super) fn regression_inputs(kind: &str) -> Vec<Vec<u8>> {
    regressions(kind).iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn regressions(kind: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-regressions").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every saved input of `kind` through `target`. Files named `bad-*` must be
/// refused and `ok-*` accepted; any other name (a fuzzer's `crash-*`, `oom-*`,
/// `timeout-*`) only has to come back without a panic. Returns how many files ran.
fn replay<T>(kind: &str, target: fn(&[u8]) -> Result<T, String>) -> usize {
    let files = regressions(kind);
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        match catch_unwind(AssertUnwindSafe(|| target(&bytes))) {
            Err(_) => failures.push(format!("{name}: panicked (message above)")),
            Ok(Ok(_)) if name.starts_with("bad-") => failures.push(format!("{name}: accepted")),
            Ok(Err(e)) if name.starts_with("ok-") => failures.push(format!("{name}: refused: {e}")),
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{kind} regressions failed:\n{}", failures.join("\n"));
    files.len()
}

#[test]
fn every_saved_shard_input_is_refused_or_parsed_without_a_panic() {
    let ran = replay("shard", harness::shard);
    assert!(ran >= 20, "only {ran} shard inputs: the hand-made ones are missing");
}

#[test]
fn every_saved_manifest_input_is_refused_or_round_trips_without_a_panic() {
    let ran = replay("manifest", harness::manifest);
    assert!(ran >= 20, "only {ran} manifest inputs: the hand-made ones are missing");
}

#[test]
fn every_saved_scorer_params_input_is_refused_or_scored_without_a_panic() {
    let ran = replay("scorer_params", harness::scorer_params);
    assert!(ran >= 10, "only {ran} scorer_params inputs: the hand-made ones are missing");
}

#[test]
fn every_saved_recommend_request_is_refused_or_answered_without_a_panic() {
    let ran = replay("recommend_request", harness::recommend_request);
    assert!(ran >= 10, "only {ran} recommend_request inputs: the hand-made ones are missing");
}

#[test]
fn every_saved_model_config_is_refused_or_consistent_without_a_panic() {
    let ran = replay("model_config", harness::model_config);
    assert!(ran >= 8, "only {ran} model_config inputs: the hand-made ones are missing");
}

#[test]
fn every_saved_weights_file_is_refused_or_loaded_without_a_panic() {
    let ran = replay("weights", harness::weights);
    assert!(ran >= 8, "only {ran} weights inputs: the hand-made ones are missing");
}

#[test]
fn every_saved_tokenizer_file_is_refused_or_encodes_without_a_panic() {
    let ran = replay("tokenizer", harness::tokenizer);
    assert!(ran >= 5, "only {ran} tokenizer inputs: the hand-made ones are missing");
}

/// The seed corpus of target `kind`: (file name, input).
pub(super) fn seeds(kind: &str) -> Vec<(String, Vec<u8>)> {
    match kind {
        "shard" => seed_shards(),
        "manifest" => seed_manifests(),
        "scorer_params" => seed_params(),
        "recommend_request" => seed_requests(),
        "model_config" => seed_configs(),
        "weights" => seed_weights(),
        "tokenizer" => seed_tokenizers(),
        other => panic!("no fuzz target {other}"),
    }
}

/// (name, fuzz input) for the shard target: real movies written by the builder's own
/// shard writer, in each layout a shard can have, fed in different chunkings.
fn seed_shards() -> Vec<(String, Vec<u8>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/ml-latest-small/movies.csv");
    let movies = parse_items(&std::fs::read(&path).unwrap(), "movies.csv").unwrap();
    // (first movie, items, dims, factor dims, bias, chunk sizes)
    let layouts: [(usize, usize, usize, usize, bool, [u8; 4]); 6] = [
        (0, 3, 8, 0, false, [0, 0, 0, 0]),
        (3, 4, 16, 0, false, [1, 2, 3, 5]),
        (100, 2, 16, 4, true, [7, 13, 31, 64]),
        (2000, 2, 64, 8, false, [255, 1, 255, 1]),
        (5000, 1, 1, 8, true, [32, 0, 4, 4]),
        (0, 0, 4, 0, false, [0, 0, 0, 0]),
    ];
    layouts
        .iter()
        .enumerate()
        .map(|(n, &(start, count, dims, factor_dims, bias, chunks))| {
            let items = movies[start..start + count].to_vec();
            let embeddings: Vec<QuantizedRow> = (0..count)
                .map(|i| {
                    let e: Vec<f32> = (0..dims).map(|j| (((i * 37 + j * 11) % 23) as f32 - 11.0) / 11.0).collect();
                    QuantizedRow::quantize(&e)
                })
                .collect();
            let side = (factor_dims > 0).then(|| CollaborativeSide {
                manifest: Collaborative { dims: factor_dims, bias, params: Default::default(), tuning: None },
                scenarios: vec![],
                factors: (0..count * factor_dims).map(|k| k as f32 * 0.25 - 1.0).collect(),
                bias: bias.then(|| (0..count).map(|i| i as f32 * 0.5).collect()),
            });
            let shard = shard_bytes(&items, 0..count, &embeddings, dims, side.as_ref()).unwrap();
            let expect = ShardExpectation { items: count as u32, dims, factor_dims };
            (format!("seed-{n}-{count}x{dims}-f{factor_dims}"), ShardInput::join(expect, chunks, &shard))
        })
        .collect()
}

/// (name, manifest.json) for the manifest target: one like `localrec build` writes, one
/// with a collaborative side whose params hold nested values and awkward floats.
fn seed_manifests() -> Vec<(String, Vec<u8>)> {
    let encoder = CatalogEncoder {
        name: "all-MiniLM-L6-v2".into(),
        dims: 384,
        pooling: "mean".into(),
        normalized: true,
        max_seq_length: 256,
        source_weights_sha256: sha256_hex(b"source"),
        weights_sha256: sha256_hex(b"web"),
        model: "model/".into(),
        files: vec![],
    };
    let shards: Vec<ShardEntry> = (0..3)
        .map(|i| ShardEntry {
            path: format!("shards/{i:05}.bin"),
            bytes: 2_000_000 + i,
            items: 3000 + i,
            sha256: sha256_hex(&i.to_le_bytes()),
        })
        .collect();
    let plain = Manifest {
        format: "localrec-catalog".into(),
        version: 1,
        name: "ml-latest-small".into(),
        created_by: "localrec 0.1.0".into(),
        items: shards.iter().map(|s| s.items).sum(),
        encoder,
        quantization: Quantization { embeddings: "int8-row-scale".into() },
        collaborative: None,
        scenarios: vec![],
        shards,
    };
    let params = serde_json::json!({
        "lambda": 0.1, "alpha": 1e-7, "tiny": 5e-324, "big": 1.7976931348623157e308,
        "blend": {"weights": [0.25, -0.5, 3], "name": "é"},
    });
    let collaborative = Manifest {
        collaborative: Some(Collaborative { dims: 32, bias: true, params: params.as_object().unwrap().clone(), tuning: None }),
        scenarios: vec!["watch".into(), "rate".into()],
        ..plain.clone()
    };
    vec![
        ("seed-plain.json".into(), plain.to_json().unwrap()),
        ("seed-collaborative.json".into(), collaborative.to_json().unwrap()),
    ]
}

/// (name, input) for the scorer_params target: the collaborative side (and scenario
/// names) of catalogs with every part the params can have, and with few.
fn seed_params() -> Vec<(String, Vec<u8>)> {
    use localrec::scorer::model::ScorerParams;
    let dims = harness::PARAMS_DIMS;
    // (name, k, r, scenarios, rating head, text map, short blend, bias)
    let shapes: [(&str, usize, usize, usize, bool, bool, bool, bool); 5] = [
        ("full", 3, 2, 2, true, true, true, true),
        ("untuned", 4, 0, 0, false, false, false, false),
        ("item-item-only", 0, 3, 0, false, true, false, true),
        ("one-scenario", 2, 1, 1, false, false, true, false),
        ("rating-only", 1, 0, 0, true, false, false, true),
    ];
    let mut out: Vec<(String, Vec<u8>)> = shapes
        .iter()
        .map(|&(name, k, r, scenarios, rating, text_map, short, bias)| {
            let record = k + 2 * r + harness::TINY_VAE_DIMS + scenarios + usize::from(rating);
            let items: Vec<_> = (0..harness::PARAMS_ITEMS).map(|i| harness::synthetic_item(i, dims, record, bias)).collect();
            let params = ScorerParams {
                rating: harness::tiny_params(&items, k, r, scenarios, dims).rating.filter(|_| rating),
                text_map: harness::tiny_params(&items, k, r, scenarios, dims).text_map.filter(|_| text_map),
                short_blend: harness::tiny_params(&items, k, r, scenarios, dims).short_blend.filter(|_| short),
                ..harness::tiny_params(&items, k, r, scenarios, dims)
            };
            let names: Vec<String> = ["weekday", "weekend"][..scenarios].iter().map(|s| s.to_string()).collect();
            let input = serde_json::json!({
                "collaborative": {"dims": record, "bias": bias, "params": params},
                "scenarios": names,
            });
            (format!("seed-{name}.json"), serde_json::to_vec_pretty(&input).unwrap())
        })
        .collect();
    out.push(("seed-text-only.json".into(), br#"{"collaborative": null}"#.to_vec()));
    out
}

/// (name, request) for the recommend_request target: every field a page may send, on
/// the tiny catalogs' ids (1 to 12 loaded, 13 to 16 in the shard not yet loaded).
fn seed_requests() -> Vec<(String, Vec<u8>)> {
    let embedding: Vec<f32> = (0..harness::PARAMS_DIMS).map(|j| (j as f32 - 3.5) * 0.25).collect();
    let embedding = serde_json::to_string(&embedding).unwrap();
    let requests = [
        ("empty", "{}".to_string()),
        (
            "everything",
            format!(
                r#"{{"events":[{{"itemId":"1","type":"like"}},{{"itemId":"2","type":"click","ageDays":2.5}},
                {{"itemId":"3","type":"view","value":0.5}},{{"itemId":"4","type":"purchase","scenario":"weekday"}},
                {{"itemId":"5","type":"dislike"}},{{"itemId":"6","type":"rate","value":4.5,"ageDays":10,"scenario":"weekend"}},
                {{"itemId":"14","type":"like"}},{{"itemId":"nope","type":"like"}}],
                "interests":[{{"embedding":{embedding},"weight":1.5,"ageDays":1}}],
                "k":5,"diversity":0.5,"exclude":["7","15"],"scenario":"weekend","rankBy":"blend",
                "eventWeights":{{"view":0.1,"click":0.4,"like":2,"dislike":-2,"purchase":1.5,"rate":0.6}}}}"#
            ),
        ),
        ("similar", r#"{"events":[{"itemId":"8","type":"like"}],"k":1,"rankBy":"similar"}"#.to_string()),
        ("text", format!(r#"{{"interests":[{{"embedding":{embedding}}}],"k":3,"rankBy":"text"}}"#)),
        (
            "every-item",
            format!(
                r#"{{"events":[{}],"k":1000,"diversity":1}}"#,
                (1..=16).map(|i| format!(r#"{{"itemId":"{i}","type":"rate","value":{}}}"#, i % 6)).collect::<Vec<_>>().join(",")
            ),
        ),
        ("unknown-scenario", r#"{"events":[{"itemId":"2","type":"like","scenario":"holiday"}],"scenario":"holiday"}"#.to_string()),
    ];
    requests.into_iter().map(|(name, text)| (format!("seed-{name}.json"), text.into_bytes())).collect()
}

/// all-MiniLM-L6-v2's `config.json` and `sentence_bert_config.json`, as published.
const MINILM_CONFIG: &str = r#"{
  "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
  "architectures": [
    "BertModel"
  ],
  "attention_probs_dropout_prob": 0.1,
  "gradient_checkpointing": false,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 384,
  "initializer_range": 0.02,
  "intermediate_size": 1536,
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512,
  "model_type": "bert",
  "num_attention_heads": 12,
  "num_hidden_layers": 6,
  "pad_token_id": 0,
  "position_embedding_type": "absolute",
  "transformers_version": "4.8.2",
  "type_vocab_size": 2,
  "use_cache": true,
  "vocab_size": 30522
}
"#;
const MINILM_SENTENCE_CONFIG: &str = "{\n  \"max_seq_length\": 256,\n  \"do_lower_case\": false\n}";

/// (name, input) for the model_config target: MiniLM's files, and other BERT-family shapes.
fn seed_configs() -> Vec<(String, Vec<u8>)> {
    let pair = |config: &str, sentence: &str| [config.as_bytes(), &b"\0"[..], sentence.as_bytes()].concat();
    let roberta = r#"{"architectures":["RobertaModel"],"model_type":"roberta","hidden_size":768,"num_hidden_layers":12,
        "num_attention_heads":12,"intermediate_size":3072,"vocab_size":50265,"max_position_embeddings":514,
        "type_vocab_size":1,"layer_norm_eps":1e-05,"hidden_act":"gelu","pad_token_id":1}"#;
    let minimal = r#"{"model_type":"mpnet","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,
        "intermediate_size":16,"vocab_size":10,"max_position_embeddings":6,"hidden_act":"relu"}"#;
    vec![
        ("seed-minilm.json".into(), MINILM_CONFIG.as_bytes().to_vec()),
        ("seed-minilm-with-sentence-config.bin".into(), pair(MINILM_CONFIG, MINILM_SENTENCE_CONFIG)),
        ("seed-roberta.json".into(), roberta.as_bytes().to_vec()),
        ("seed-minimal-relu-with-sentence-config.bin".into(), pair(minimal, r#"{"max_seq_length": 4}"#)),
    ]
}

/// (name, safetensors file) for the weights target, for the harness's tiny config: the
/// web copy as `localrec export-web` writes it (f16, localrec names), and Hugging Face
/// files in f32 (`bert.` prefix) and bf16 (old `gamma`/`beta` names, tensors to ignore).
fn seed_weights() -> Vec<(String, Vec<u8>)> {
    use localrec::encoder::weights::{HostTensor, NamedTensors, expected_tensors, to_web_safetensors};
    use safetensors::Dtype;
    let config = harness::tiny_bert_config();
    let named: NamedTensors = expected_tensors(&config)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            (name, HostTensor { shape, data: (0..n).map(|k| (k as f32 * 0.37).sin()).collect() })
        })
        .collect();
    let web = to_web_safetensors(&named).unwrap();
    let h = config.hidden_size;
    let transposed = |t: &HostTensor| {
        let (rows, cols) = (t.shape[0], t.shape[1]);
        let data = (0..rows * cols).map(|k| t.data[(k % rows) * cols + k / rows]).collect();
        HostTensor { shape: vec![cols, rows], data }
    };
    // Hugging Face's names and [out, in] layout, undoing weights.rs's table.
    let mut hf: Vec<(String, HostTensor)> = Vec::new();
    let qkv = &named["layers.0.attention.qkv.weight"];
    for (part, which) in ["query", "key", "value"].iter().enumerate() {
        let mut w = vec![0.0; h * h];
        for r in 0..h {
            for c in 0..h {
                w[c * h + r] = qkv.data[r * 3 * h + part * h + c];
            }
        }
        hf.push((format!("encoder.layer.0.attention.self.{which}.weight"), HostTensor { shape: vec![h, h], data: w }));
        let b = named["layers.0.attention.qkv.bias"].data[part * h..(part + 1) * h].to_vec();
        hf.push((format!("encoder.layer.0.attention.self.{which}.bias"), HostTensor { shape: vec![h], data: b }));
    }
    for (theirs, ours) in [("attention.output.dense", "attention.output"), ("intermediate.dense", "intermediate"), ("output.dense", "output")] {
        hf.push((format!("encoder.layer.0.{theirs}.weight"), transposed(&named[&format!("layers.0.{ours}.weight")])));
        hf.push((format!("encoder.layer.0.{theirs}.bias"), named[&format!("layers.0.{ours}.bias")].clone()));
    }
    let norms = [
        ("embeddings.LayerNorm", "embeddings.norm"),
        ("encoder.layer.0.attention.output.LayerNorm", "layers.0.attention_norm"),
        ("encoder.layer.0.output.LayerNorm", "layers.0.output_norm"),
    ];
    for (theirs, ours) in [("word_embeddings", "word"), ("position_embeddings", "position"), ("token_type_embeddings", "token_type")] {
        hf.push((format!("embeddings.{theirs}.weight"), named[&format!("embeddings.{ours}.weight")].clone()));
    }
    let file = |prefix: &str, dtype: Dtype, old_norm_names: bool, extra: bool| -> Vec<u8> {
        let mut tensors = hf.clone();
        for (theirs, ours) in norms {
            let (g, b) = if old_norm_names { ("gamma", "beta") } else { ("weight", "bias") };
            tensors.push((format!("{theirs}.{g}"), named[&format!("{ours}.gamma")].clone()));
            tensors.push((format!("{theirs}.{b}"), named[&format!("{ours}.beta")].clone()));
        }
        if extra {
            tensors.push(("pooler.dense.weight".into(), HostTensor { shape: vec![h, h], data: vec![0.5; h * h] }));
        }
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .into_iter()
            .map(|(name, t)| {
                let data = match dtype {
                    Dtype::BF16 => t.data.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect(),
                    _ => t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                };
                (format!("{prefix}{name}"), t.shape, data)
            })
            .collect();
        let mut views: Vec<(String, safetensors::tensor::TensorView)> = bytes
            .iter()
            .map(|(n, shape, data)| (n.clone(), safetensors::tensor::TensorView::new(dtype, shape.clone(), data).unwrap()))
            .collect();
        let ids: Vec<u8> = (0..6i64).flat_map(|v| v.to_le_bytes()).collect();
        if extra {
            views.push(("embeddings.position_ids".into(), safetensors::tensor::TensorView::new(Dtype::I64, vec![1, 6], &ids).unwrap()));
        }
        safetensors::serialize(views, None).unwrap()
    };
    vec![
        ("seed-web-f16.safetensors".into(), web),
        ("seed-hugging-face-f32.safetensors".into(), file("bert.", Dtype::F32, false, false)),
        ("seed-hugging-face-bf16-old-names.safetensors".into(), file("", Dtype::BF16, true, true)),
    ]
}

/// (name, tokenizer.json) for the tokenizer target: a BERT WordPiece tokenizer laid out as
/// all-MiniLM-L6-v2's (normalizer, pre-tokenizer, template, decoder) with a small
/// vocabulary, without and with the file's own truncation and padding (which the encoder
/// replaces), and a byte-level BPE one as RoBERTa-family models have.
fn seed_tokenizers() -> Vec<(String, Vec<u8>)> {
    use serde_json::{Value, json};
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let mut words: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    words.extend(('a'..='z').chain('0'..='9').map(String::from));
    words.extend(["(", ")", ".", ",", "-", "toy", "story", "the", "star", "wars", "##s", "##ing", "##y", "##e", "##o"].map(String::from));
    let vocab: serde_json::Map<String, Value> = words.iter().enumerate().map(|(i, w)| (w.clone(), json!(i))).collect();
    let added: Vec<Value> = specials
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": i, "special": true, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}))
        .collect();
    let special = |name: &str, id: usize| json!({"SpecialToken": {"id": name, "type_id": id}});
    let sequence = |name: &str, id: usize| json!({"Sequence": {"id": name, "type_id": id}});
    let bert = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special("[CLS]", 0), sequence("A", 0), special("[SEP]", 0)],
            "pair": [special("[CLS]", 0), sequence("A", 0), special("[SEP]", 0), sequence("B", 1), special("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]},
            },
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab},
    });
    let mut padded = bert.clone();
    padded["truncation"] = json!({"max_length": 128, "strategy": "LongestFirst", "stride": 0});
    padded["padding"] = json!({"strategy": {"Fixed": 128}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"});
    // Byte-level BPE: every byte is a token (GPT-2's printable mapping), plus a few merges.
    let byte_char = |b: u8| -> char {
        match b {
            b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff => b as char,
            _ => char::from_u32(256 + b as u32).unwrap(),
        }
    };
    let mut bpe_vocab = serde_json::Map::new();
    for token in ["<s>", "<pad>", "</s>", "<unk>"] {
        bpe_vocab.insert(token.into(), json!(bpe_vocab.len()));
    }
    for b in 0..=255u8 {
        bpe_vocab.insert(byte_char(b).to_string(), json!(bpe_vocab.len()));
    }
    for token in ["to", "toy", "\u{120}s", "\u{120}st"] {
        bpe_vocab.insert(token.into(), json!(bpe_vocab.len()));
    }
    let bpe_added: Vec<Value> = ["<s>", "<pad>", "</s>", "<unk>"]
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": i, "special": true, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}))
        .collect();
    let bpe = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": bpe_added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0], "trim_offsets": true, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": false, "byte_fallback": false, "vocab": bpe_vocab, "merges": ["t o", "to y", "\u{120} s", "\u{120}s t"]},
    });
    vec![
        ("seed-bert-wordpiece.json".into(), serde_json::to_vec_pretty(&bert).unwrap()),
        ("seed-bert-wordpiece-own-truncation-and-padding.json".into(), serde_json::to_vec_pretty(&padded).unwrap()),
        ("seed-byte-level-bpe.json".into(), serde_json::to_vec_pretty(&bpe).unwrap()),
    ]
}

/// A line of a libFuzzer dictionary: the token in quotes, `"` and `\` escaped, bytes
/// outside printable ASCII as `\xNN`.
fn dictionary_entry(token: &[u8]) -> String {
    let escaped: String = token
        .iter()
        .map(|&b| match b {
            b'"' | b'\\' => format!("\\{}", b as char),
            b' '..=b'~' => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect();
    format!("\"{escaped}\"\n")
}

/// Writes the seed corpus into `$LOCALREC_FUZZ_SEEDS/<target>/`, and a dictionary beside
/// each, when that is set (`make fuzz` does); the checks run either way.
#[test]
fn seed_inputs_are_accepted_by_the_fuzz_targets_and_written_on_request() {
    for (name, input) in &seed_shards() {
        let expect = ShardInput::split(input).expect.items as usize;
        assert_eq!(harness::shard(input), Ok(expect), "{name}: a seed the parser refuses only fuzzes the header check");
    }
    for (name, json) in &seed_manifests() {
        assert_eq!(harness::manifest(json), Ok(()), "{name}");
    }
    for (name, input) in &seed_params() {
        let got = harness::scorer_params(input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!got.contains("text only") || name.contains("text-only"), "{name}: {got}");
        // Each of the three requests answered: the seeds reach the ranking, not a refusal.
        assert_eq!(got.matches("answered").count(), 3, "{name}: {got}");
    }
    for (name, input) in &seed_requests() {
        let got = harness::recommend_request(input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, "collaborative: answered; text: answered; empty: answered", "{name}");
    }
    for (name, input) in &seed_configs() {
        assert!(harness::model_config(input).is_ok(), "{name}: {:?}", harness::model_config(input));
    }
    for (name, input) in &seed_weights() {
        assert_eq!(harness::weights(input), Ok("17 tensors".to_string()), "{name}");
    }
    for (name, input) in &seed_tokenizers() {
        let counts = harness::tokenizer(input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let counts: Vec<usize> = counts.split(' ').map(|c| c.parse().unwrap_or_else(|_| panic!("{name}: {c}"))).collect();
        // Every text encoded; the empty one to its two specials; none past the truncation.
        assert_eq!(counts[1], 2, "{name}: {counts:?}");
        assert!(counts.iter().all(|&c| (2..=harness::TOKENIZER_MAX_LEN).contains(&c)), "{name}: {counts:?}");
    }
    if let Some(dir) = std::env::var_os("LOCALREC_FUZZ_SEEDS") {
        for kind in TARGETS {
            let files = seeds(kind);
            // libFuzzer's dictionary: the seeds' tokens, which byte mutations rarely spell.
            let (_, tokens) = super::fuzz_bounded::vocabulary(&files.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>());
            let dict: String = tokens.iter().map(|t| dictionary_entry(t)).collect();
            std::fs::write(Path::new(&dir).join(format!("{kind}.dict")), dict).unwrap();
            let dir = Path::new(&dir).join(kind);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in files {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }
}

#[test]
fn chunk_sizes_from_the_prefix_cover_the_shard_exactly_once() {
    let shard: Vec<u8> = (0..=255).collect();
    for chunks in [[0, 0, 0, 0], [1, 2, 3, 5], [255, 7, 0, 1], [200, 200, 200, 200]] {
        let expect = ShardExpectation { items: 1, dims: 3, factor_dims: 2 };
        let input = ShardInput::join(expect, chunks, &shard);
        let split = ShardInput::split(&input);
        assert_eq!(split.expect, expect);
        assert_eq!(split.pieces().concat(), shard, "{chunks:?}");
        if chunks[0] != 0 {
            assert_eq!(split.pieces()[0].len(), chunks[0] as usize);
        }
    }
    let short = ShardInput::split(&[5, 0]);
    assert_eq!((short.expect.items, short.expect.dims, short.shard.len()), (5, 1, 0));
}

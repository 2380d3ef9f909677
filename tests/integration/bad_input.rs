//! Bad input to the library never panics: it gives a correct result or a clear error.


use super::common::{golden, model_files};
use localrec::native::NativeBackend;
use localrec::{Encoder, ErrorKind, ModelFiles, cosine};

fn encoder() -> Encoder {
    Encoder::load(&model_files(), &NativeBackend::Cpu.device().unwrap()).expect("model loads")
}

#[test]
fn empty_batch_gives_no_rows() {
    let v = encoder().embed(&[]).expect("empty batch is fine");
    assert!(v.is_empty());
    assert_eq!(v.dims, 384);
}

#[test]
fn empty_and_whitespace_texts_embed_like_sentence_transformers() {
    let enc = encoder();
    let golden = golden();
    let blank = golden.iter().find(|g| g.text == "   ").expect("fixture has a whitespace-only text");
    let v = enc.embed(&["", "   ", " \t\n "]).expect("blank texts embed");
    for row in v.rows() {
        // [CLS] [SEP] only, exactly as the golden whitespace line.
        assert!(cosine(row, &blank.embedding) >= 0.9999);
    }
}

#[test]
fn hundred_thousand_character_text_is_truncated_not_refused() {
    let enc = encoder();
    let long = "slow-burning space drama with a lonely hero ".repeat(2300);
    assert!(long.len() >= 100_000);
    let ids = enc.tokenize(&[&long]).unwrap();
    assert_eq!(ids[0].len(), 256, "truncated at max_seq_length");
    let prefix_ids = enc.tokenize(&[&long[..3000]]).unwrap();
    assert_eq!(ids[0][..255], prefix_ids[0][..255], "truncation keeps the first tokens");
    let v = enc.embed(&[&long]).unwrap();
    let norm: f32 = v.row(0).iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4 && v.row(0).iter().all(|x| x.is_finite()));
}

#[test]
fn text_over_the_size_limit_is_an_input_error_naming_the_text() {
    let enc = encoder();
    let huge = "a".repeat(localrec::encoder::MAX_TEXT_BYTES + 1);
    let err = enc.embed(&["fine", &huge]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input);
    assert!(err.to_string().starts_with("text 1:"), "{err}");
}

#[test]
fn out_of_vocabulary_ids_and_bad_lengths_are_input_errors() {
    let enc = encoder();
    assert_eq!(enc.embed_tokens(&[vec![101, 999_999, 102]], 1).unwrap_err().kind(), ErrorKind::Input);
    assert_eq!(enc.embed_tokens(&[vec![]], 1).unwrap_err().kind(), ErrorKind::Input);
    assert_eq!(enc.embed_tokens(&[vec![101; 257]], 1).unwrap_err().kind(), ErrorKind::Input);
    assert_eq!(enc.embed_tokens(&[vec![101, 102]], 0).unwrap_err().kind(), ErrorKind::Input);
}

#[test]
fn non_bert_config_is_refused_before_loading_weights() {
    let mut files = model_files();
    files.config = br#"{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 768}"#.to_vec();
    let err = Encoder::load(&files, &NativeBackend::Cpu.device().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("gpt2"), "{err}");
}

#[test]
fn truncated_weights_file_is_a_weights_error() {
    let full = model_files();
    for cut in [0, 100, full.weights.len() / 3, full.weights.len() - 1] {
        let files = ModelFiles { weights: full.weights[..cut].to_vec(), ..full.clone() };
        let err = Encoder::load(&files, &NativeBackend::Cpu.device().unwrap()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Weights, "cut at {cut}: {err}");
    }
}

#[test]
fn config_that_disagrees_with_the_weights_names_the_tensor() {
    let mut files = model_files();
    let config = String::from_utf8(files.config.clone()).unwrap();
    files.config = config.replace("\"intermediate_size\": 1536", "\"intermediate_size\": 1024").into_bytes();
    let err = Encoder::load(&files, &NativeBackend::Cpu.device().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Weights);
    assert!(err.to_string().contains("intermediate.dense.weight"), "{err}");
}

#[test]
fn malformed_tokenizer_is_a_tokenizer_error() {
    let files = ModelFiles { tokenizer: b"{ not json".to_vec(), ..model_files() };
    let err = Encoder::load(&files, &NativeBackend::Cpu.device().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tokenizer);
}

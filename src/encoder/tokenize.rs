//! Text to token ids with the tokenizers crate, read from the model's `tokenizer.json`,
//! and padded batches with their masks.

use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::error::{Error, ErrorKind, Result};

/// Longest text accepted, in bytes. Only the first `max_seq_length` tokens are used, but
/// the whole text is tokenized first (truncation happens on tokens, which keeps results
/// exact); this bound keeps one hostile input from costing unbounded time and memory.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// A `tokenizer.json` configured for sentence encoding: special tokens added, truncation
/// at the model's `max_seq_length` (the file's own setting, 128 for MiniLM, is replaced),
/// no padding (batches are padded by [`pad_batch`]).
pub struct TextTokenizer {
    inner: Tokenizer,
    max_len: usize,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer").field("max_len", &self.max_len).finish_non_exhaustive()
    }
}

impl TextTokenizer {
    /// Parses a `tokenizer.json` and truncates every input to `max_len` tokens.
    pub fn from_json(bytes: &[u8], max_len: usize) -> Result<Self> {
        // Read as JSON first: tokenizers 0.22 panics (`expect("Helper")`) instead of refusing
        // when the JSON breaks off or nests too deep inside `decoder` (found by fuzzing).
        let json: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::with_source(ErrorKind::Tokenizer, "tokenizer.json is not valid json", e))?;
        check_post_processor(&json["post_processor"], "post_processor")?;
        let mut inner = Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::new(ErrorKind::Tokenizer, format!("tokenizer.json is malformed: {e}")))?;
        inner
            .with_truncation(Some(TruncationParams { max_length: max_len, ..Default::default() }))
            .map_err(|e| Error::new(ErrorKind::Tokenizer, format!("cannot set truncation to {max_len}: {e}")))?;
        inner.with_padding(None::<PaddingParams>);
        Ok(Self { inner, max_len })
    }

    /// Longest sequence produced, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Token ids of one text, with `[CLS]` and `[SEP]` (or the model's equivalents).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(Error::new(
                ErrorKind::Input,
                format!("text is {} bytes, more than the {MAX_TEXT_BYTES} accepted", text.len()),
            ));
        }
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::new(ErrorKind::Tokenizer, format!("cannot tokenize text: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }
}

/// Most copies of a text a post-processor may make: a pair template names each of its two
/// sequences once.
const MAX_TEXT_COPIES: usize = 4;
/// Most special tokens a post-processor may add to one text (BERT adds 2).
const MAX_SPECIAL_TOKENS: usize = 64;

/// Refuses a post-processor that tokenizers 0.22 would panic on at the first `encode`, or
/// that would multiply a text past any use (it checks none of this when it reads the
/// file): a template naming a special token that `special_tokens` lacks (an unchecked map
/// lookup), the second sequence in the single-sequence template (an index past the one
/// encoding), a special token with more ids than tokens or fewer, templates that copy the
/// text or add special tokens without bound (a 300 KB file asked for 20 GB). Found by the
/// `tokenizer` fuzz target. Returns the copies of a text it makes and the special tokens
/// it adds, at most.
fn check_post_processor(processor: &serde_json::Value, at: &str) -> Result<(usize, usize)> {
    use serde_json::Value;
    let bad = |what: String| Err(Error::new(ErrorKind::Tokenizer, format!("tokenizer.json {at}: {what}")));
    let (mut copies, mut added) = (1usize, 0usize);
    // By shape, not by `type`: tokenizers reads a processor without `type` by its fields.
    for (i, inner) in processor.get("processors").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let (c, a) = check_post_processor(inner, &format!("{at}.processors[{i}]"))?;
        // Each later processor copies what the earlier ones added.
        copies = copies.saturating_mul(c);
        added = added.saturating_mul(c).saturating_add(a);
    }
    let specials = processor.get("special_tokens").and_then(Value::as_object);
    for (name, token) in specials.into_iter().flatten() {
        let count = |key: &str| token.get(key).and_then(Value::as_array).map_or(0, Vec::len);
        if count("ids") != count("tokens") {
            return bad(format!("special token {name:?} has {} ids and {} tokens", count("ids"), count("tokens")));
        }
    }
    for template in ["single", "pair"] {
        let (mut sequences, mut tokens) = (0usize, 0usize);
        for piece in processor.get(template).and_then(Value::as_array).into_iter().flatten() {
            if let Some(id) = piece.pointer("/SpecialToken/id").and_then(Value::as_str) {
                let Some(token) = specials.and_then(|s| s.get(id)) else {
                    return bad(format!("the {template} template names special token {id:?}, which special_tokens lacks"));
                };
                tokens = tokens.saturating_add(token.get("ids").and_then(Value::as_array).map_or(0, Vec::len));
            }
            if let Some(sequence) = piece.pointer("/Sequence/id").and_then(Value::as_str) {
                if template == "single" && sequence == "B" {
                    return bad("the single template uses sequence B, which only a pair has".into());
                }
                sequences += 1;
            }
        }
        copies = copies.max(sequences);
        added = added.max(tokens);
    }
    if copies > MAX_TEXT_COPIES || added > MAX_SPECIAL_TOKENS {
        return bad(format!(
            "copies a text {copies} times and adds {added} special tokens; at most {MAX_TEXT_COPIES} and {MAX_SPECIAL_TOKENS}"
        ));
    }
    Ok((copies, added))
}

/// A batch of token sequences padded to a common length, laid out row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct PaddedBatch {
    /// `batch * seq` ids, padding filled with the pad id.
    pub ids: Vec<i32>,
    /// `batch * seq` values, `1.0` for real tokens and `0.0` for padding.
    pub mask: Vec<f32>,
    /// Number of sequences.
    pub batch: usize,
    /// Common length: the longest sequence in the batch.
    pub seq: usize,
    /// Whether any sequence is shorter than `seq`.
    pub has_padding: bool,
}

/// Pads `sequences` at the end to the longest one's length.
pub fn pad_batch(sequences: &[&[u32]], pad_id: u32) -> PaddedBatch {
    let batch = sequences.len();
    let seq = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut ids = vec![pad_id as i32; batch * seq];
    let mut mask = vec![0.0; batch * seq];
    let mut has_padding = false;
    for (row, tokens) in sequences.iter().enumerate() {
        has_padding |= tokens.len() < seq;
        for (col, &id) in tokens.iter().enumerate() {
            ids[row * seq + col] = id as i32;
            mask[row * seq + col] = 1.0;
        }
    }
    PaddedBatch { ids, mask, batch, seq, has_padding }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_batch_pads_at_the_end_and_marks_real_tokens() {
        let a = [101u32, 7, 102];
        let b = [101u32, 102];
        let padded = pad_batch(&[&a, &b], 0);
        assert_eq!((padded.batch, padded.seq), (2, 3));
        assert_eq!(padded.ids, vec![101, 7, 102, 101, 102, 0]);
        assert_eq!(padded.mask, vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        assert!(padded.has_padding);
        assert!(!pad_batch(&[&a, &a], 0).has_padding);
    }

    #[test]
    fn malformed_tokenizer_json_is_a_tokenizer_error() {
        let err = TextTokenizer::from_json(b"{\"model\": 3}", 256).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tokenizer);
    }

    /// A small WordPiece tokenizer.json whose template processor is `processor`.
    fn with_post_processor(processor: serde_json::Value) -> Vec<u8> {
        let vocab: serde_json::Map<String, serde_json::Value> =
            ["[UNK]", "[CLS]", "[SEP]", "a"].iter().enumerate().map(|(i, t)| (t.to_string(), i.into())).collect();
        serde_json::to_vec(&serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
            "pre_tokenizer": {"type": "Whitespace"}, "post_processor": processor, "decoder": null,
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": vocab},
        }))
        .unwrap()
    }

    #[test]
    fn a_file_that_breaks_off_or_nests_too_deep_inside_its_decoder_is_refused_not_a_panic() {
        let text = String::from_utf8(with_post_processor(serde_json::Value::Null)).unwrap();
        let at = text.find("\"decoder\":null").unwrap() + "\"decoder\":".len();
        let deep = format!("{}{}{}{}", &text[..at], "[".repeat(200), "]".repeat(200), &text[at + 4..]);
        // tokenizers 0.22.2 alone panics on both.
        for input in [&text[..at], deep.as_str()] {
            let err = TextTokenizer::from_json(input.as_bytes(), 8).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Tokenizer, "{err}");
            assert!(err.to_string().contains("not valid json"), "{err}");
        }
    }

    #[test]
    fn a_template_that_would_panic_tokenizers_is_refused_at_load() {
        use serde_json::json;
        let cls = json!({"SpecialToken": {"id": "[CLS]", "type_id": 0}});
        let a = json!({"Sequence": {"id": "A", "type_id": 0}});
        let b = json!({"Sequence": {"id": "B", "type_id": 1}});
        let tokens = json!({"[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]}});
        let template = |single: serde_json::Value, tokens: serde_json::Value| {
            json!({"type": "TemplateProcessing", "single": single, "pair": [cls, a, b], "special_tokens": tokens})
        };
        let good = TextTokenizer::from_json(&with_post_processor(template(json!([cls, a]), tokens.clone())), 8).unwrap();
        assert_eq!(good.encode("a a").unwrap(), vec![1, 3, 3]);
        let cases = [
            (template(json!([cls, a]), json!({})), "names special token \"[CLS]\""),
            (template(json!([a, b]), tokens.clone()), "sequence b"),
            (template(json!([cls, a]), json!({"[CLS]": {"id": "[CLS]", "ids": [1, 2], "tokens": ["[CLS]"]}})), "2 ids and 1 tokens"),
            (json!({"type": "Sequence", "processors": [template(json!([cls, a]), json!({}))]}), "processors[0]"),
            // Without its `type`, tokenizers still reads it as a template (found by fuzzing).
            (json!({"single": [cls, a], "pair": [cls, a, b], "special_tokens": {}}), "special_tokens lacks"),
            // 300 KB of this asked tokenizers for 20 GB (found by fuzzing).
            (template(json!([a, a, a, a, a]), tokens.clone()), "copies a text 5 times"),
            (
                json!({"type": "Sequence", "processors": [template(json!([a, a]), tokens.clone()), template(json!([a, a, a]), tokens.clone())]}),
                "copies a text 6 times",
            ),
            (template(json!([cls, a]), json!({"[CLS]": {"id": "[CLS]", "ids": vec![1; 65], "tokens": vec!["[CLS]"; 65]}})), "adds 65 special"),
        ];
        for (processor, want) in cases {
            // Each of these panicked in `encode` before.
            let err = TextTokenizer::from_json(&with_post_processor(processor), 8).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Tokenizer);
            assert!(err.to_string().to_lowercase().contains(&want.to_lowercase()), "{err}");
        }
    }
}

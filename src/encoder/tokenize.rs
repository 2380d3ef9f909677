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
}

//! The encoder's architecture, read from a Hugging Face `config.json` (and the
//! sentence-transformers `sentence_bert_config.json` beside it), validated before any
//! tensor is allocated.

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// The activation of the feed-forward block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// The exact, erf-based GELU (`"gelu"`), which BERT and MiniLM use.
    Gelu,
    /// The tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
    /// `"relu"`.
    Relu,
}

/// A BERT-family encoder's shape: everything [`crate::encoder::BertModel`] needs to be built.
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    /// Width of every hidden state (384 for MiniLM-L6).
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_layers: usize,
    /// Number of attention heads; divides `hidden_size`.
    pub num_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// Number of rows in the word-embedding table.
    pub vocab_size: usize,
    /// Number of learned positions.
    pub max_position_embeddings: usize,
    /// Number of token-type (segment) rows.
    pub type_vocab_size: usize,
    /// Epsilon of every layer norm.
    pub layer_norm_eps: f64,
    /// Feed-forward activation.
    pub activation: Activation,
    /// Id of the padding token.
    pub pad_token_id: u32,
    /// Longest input in tokens, special tokens included: sentence-transformers'
    /// `max_seq_length` when known, never more than `max_position_embeddings`.
    pub max_seq_length: usize,
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    architectures: Option<Vec<String>>,
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    intermediate_size: Option<usize>,
    vocab_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    type_vocab_size: Option<usize>,
    layer_norm_eps: Option<f64>,
    hidden_act: Option<String>,
    pad_token_id: Option<u32>,
    position_embedding_type: Option<String>,
}

#[derive(Deserialize)]
struct RawSentenceConfig {
    max_seq_length: Option<usize>,
}

/// Model types whose checkpoints have BERT's layout (absolute positions, post-norm
/// layers, the same tensor names).
const BERT_FAMILY: &[&str] = &["bert", "roberta", "xlm-roberta", "camembert", "mpnet"];

/// Upper bounds that keep a hostile config from asking for absurd allocations.
const MAX_HIDDEN: usize = 8192;
const MAX_LAYERS: usize = 96;
const MAX_VOCAB: usize = 1 << 20;
const MAX_POSITIONS: usize = 1 << 16;
/// Most weights a model may have (about 4 GiB in f32). Below it every tensor, and every
/// product of two sizes the engines compute, fits the browser's 32-bit `usize`; the caps
/// above alone allow a 2^33-value embedding table.
const MAX_PARAMETERS: u64 = 1 << 30;

fn field<T>(value: Option<T>, name: &str) -> Result<T> {
    value.ok_or_else(|| Error::new(ErrorKind::Config, format!("config.json has no `{name}`")))
}

fn bounded(value: usize, name: &str, max: usize) -> Result<usize> {
    if value == 0 || value > max {
        return Err(Error::new(
            ErrorKind::Config,
            format!("config.json `{name}` is {value}, outside 1..={max}"),
        ));
    }
    Ok(value)
}

impl BertConfig {
    /// Parses `config.json` and, when given, `sentence_bert_config.json`.
    ///
    /// Refuses configs that are not BERT-family encoders (e.g. `gpt2`), that use relative
    /// position embeddings, or whose sizes are inconsistent (heads not dividing the width).
    pub fn from_json(config: &[u8], sentence_config: Option<&[u8]>) -> Result<Self> {
        let raw: RawConfig = serde_json::from_slice(config)
            .map_err(|e| Error::with_source(ErrorKind::Config, "config.json is not valid json", e))?;

        let model_type = field(raw.model_type, "model_type")?;
        if !BERT_FAMILY.contains(&model_type.as_str()) {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "config.json model_type `{model_type}` is not a bert-family encoder (expected one of {})",
                    BERT_FAMILY.join(", ")
                ),
            ));
        }
        if let Some(archs) = &raw.architectures
            && let Some(bad) = archs.iter().find(|a| a.contains("ForCausalLM") || a.contains("LMHead"))
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!("config.json architecture `{bad}` is a decoder, not a sentence encoder"),
            ));
        }
        if let Some(kind) = raw.position_embedding_type.as_deref()
            && kind != "absolute"
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!("config.json position_embedding_type `{kind}` is not supported (only `absolute`)"),
            ));
        }

        let hidden_size = bounded(field(raw.hidden_size, "hidden_size")?, "hidden_size", MAX_HIDDEN)?;
        let num_layers = bounded(field(raw.num_hidden_layers, "num_hidden_layers")?, "num_hidden_layers", MAX_LAYERS)?;
        let num_heads = bounded(field(raw.num_attention_heads, "num_attention_heads")?, "num_attention_heads", MAX_HIDDEN)?;
        let intermediate_size =
            bounded(field(raw.intermediate_size, "intermediate_size")?, "intermediate_size", 8 * MAX_HIDDEN)?;
        let vocab_size = bounded(field(raw.vocab_size, "vocab_size")?, "vocab_size", MAX_VOCAB)?;
        let max_position_embeddings = bounded(
            field(raw.max_position_embeddings, "max_position_embeddings")?,
            "max_position_embeddings",
            MAX_POSITIONS,
        )?;
        let type_vocab_size = bounded(raw.type_vocab_size.unwrap_or(2), "type_vocab_size", 1024)?;
        if hidden_size % num_heads != 0 {
            return Err(Error::new(
                ErrorKind::Config,
                format!("config.json hidden_size {hidden_size} is not divisible by num_attention_heads {num_heads}"),
            ));
        }
        // Each size is capped above (at most 2^20), so these u64 sums stay under 2^40.
        let (h, i) = (hidden_size as u64, intermediate_size as u64);
        let per_layer = 4 * h * h + 2 * h * i + 9 * h + i;
        let embeddings = (vocab_size + max_position_embeddings + type_vocab_size) as u64 * h + 2 * h;
        let parameters = embeddings + num_layers as u64 * per_layer;
        if parameters > MAX_PARAMETERS {
            return Err(Error::new(
                ErrorKind::Config,
                format!("config.json describes a model of {parameters} weights; at most {MAX_PARAMETERS} are supported"),
            ));
        }
        let layer_norm_eps = raw.layer_norm_eps.unwrap_or(1e-12);
        if !(layer_norm_eps.is_finite() && layer_norm_eps > 0.0) {
            return Err(Error::new(ErrorKind::Config, "config.json layer_norm_eps must be a positive number"));
        }
        let activation = match raw.hidden_act.as_deref().unwrap_or("gelu") {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("config.json hidden_act `{other}` is not supported (gelu, gelu_new, relu)"),
                ));
            }
        };

        let mut max_seq_length = max_position_embeddings;
        if let Some(bytes) = sentence_config {
            let sentence: RawSentenceConfig = serde_json::from_slice(bytes).map_err(|e| {
                Error::with_source(ErrorKind::Config, "sentence_bert_config.json is not valid json", e)
            })?;
            if let Some(len) = sentence.max_seq_length {
                max_seq_length = bounded(len, "max_seq_length", MAX_POSITIONS)?.min(max_position_embeddings);
            }
        }
        if max_seq_length < 2 {
            return Err(Error::new(ErrorKind::Config, "max_seq_length must leave room for the two special tokens"));
        }

        Ok(Self {
            hidden_size,
            num_layers,
            num_heads,
            intermediate_size,
            vocab_size,
            max_position_embeddings,
            type_vocab_size,
            layer_norm_eps,
            activation,
            pad_token_id: raw.pad_token_id.unwrap_or(0),
            max_seq_length,
        })
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// all-MiniLM-L6-v2's architecture, for tests and examples that build a model without files.
    pub fn minilm_l6() -> Self {
        Self {
            hidden_size: 384,
            num_layers: 6,
            num_heads: 12,
            intermediate_size: 1536,
            vocab_size: 30522,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            activation: Activation::Gelu,
            pad_token_id: 0,
            max_seq_length: 256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: &str = r#"{"architectures":["BertModel"],"hidden_act":"gelu","hidden_size":384,
        "intermediate_size":1536,"layer_norm_eps":1e-12,"max_position_embeddings":512,"model_type":"bert",
        "num_attention_heads":12,"num_hidden_layers":6,"pad_token_id":0,"position_embedding_type":"absolute",
        "type_vocab_size":2,"vocab_size":30522}"#;

    #[test]
    fn minilm_config_parses_and_sentence_config_overrides_max_length() {
        let cfg = BertConfig::from_json(MINILM.as_bytes(), Some(br#"{"max_seq_length": 256}"#)).unwrap();
        assert_eq!(cfg, BertConfig::minilm_l6());
        let no_sentence = BertConfig::from_json(MINILM.as_bytes(), None).unwrap();
        assert_eq!(no_sentence.max_seq_length, 512);
    }

    #[test]
    fn decoder_config_is_refused_with_its_model_type() {
        let gpt2 = br#"{"model_type":"gpt2","n_embd":768,"n_layer":12}"#;
        let err = BertConfig::from_json(gpt2, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("gpt2"), "{err}");
    }

    #[test]
    fn heads_not_dividing_width_is_refused() {
        let bad = MINILM.replace("\"num_attention_heads\":12", "\"num_attention_heads\":7");
        let err = BertConfig::from_json(bad.as_bytes(), None).unwrap_err();
        assert!(err.to_string().contains("divisible"), "{err}");
    }

    #[test]
    fn absurd_sizes_and_missing_fields_are_refused() {
        let huge = MINILM.replace("\"vocab_size\":30522", "\"vocab_size\":99999999999");
        assert!(BertConfig::from_json(huge.as_bytes(), None).is_err());
        // Every size within its cap, but 2^20 x 8192 values in the embedding table alone.
        let widest = MINILM
            .replace("\"vocab_size\":30522", "\"vocab_size\":1048576")
            .replace("\"hidden_size\":384", "\"hidden_size\":8192")
            .replace("\"num_attention_heads\":12", "\"num_attention_heads\":64");
        let err = BertConfig::from_json(widest.as_bytes(), None).unwrap_err();
        assert!(err.to_string().contains("weights; at most"), "{err}");
        let missing = MINILM.replace("\"hidden_size\":384,", "");
        let err = BertConfig::from_json(missing.as_bytes(), None).unwrap_err();
        assert!(err.to_string().contains("hidden_size"), "{err}");
        assert!(BertConfig::from_json(b"not json", None).is_err());
    }
}

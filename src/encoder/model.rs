//! The BERT-family transformer encoder in burn: embeddings, post-norm self-attention
//! layers, and the forward pass that turns padded token ids into hidden states.
//!
//! The same code runs on every burn device (Flex on the CPU, natively and in wasm;
//! wgpu natively; WebGPU in the browser): the backend lives in the `Device`.
//! Query, key and value projections are fused into one `[hidden, 3 * hidden]` matrix
//! so each layer does one wide matrix product instead of three narrow ones.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, gelu_approximate, relu};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::config::{Activation, BertConfig};

/// Token, position and segment embeddings, summed and normalised.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// `[vocab_size, hidden]`.
    pub word: Embedding,
    /// `[max_position_embeddings, hidden]`.
    pub position: Embedding,
    /// `[type_vocab_size, hidden]`; single-sentence inputs use row 0 only.
    pub token_type: Embedding,
    /// Layer norm over the summed embeddings.
    pub norm: LayerNorm,
}

impl BertEmbeddings {
    /// # Shapes
    /// - `ids`: `[batch, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = ids.dims();
        let words = self.word.forward(ids);
        let positions = self.position.weight.val().narrow(0, 0, seq).unsqueeze::<3>();
        let segment = self.token_type.weight.val().narrow(0, 0, 1).unsqueeze::<3>();
        self.norm.forward(words + positions + segment)
    }
}

/// Multi-head self-attention with a fused query/key/value projection.
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// `[hidden, 3 * hidden]`: query, key and value projections side by side.
    pub qkv: Linear,
    /// `[hidden, hidden]`: the projection after the heads are merged.
    pub output: Linear,
    /// Number of heads.
    pub num_heads: usize,
}

impl SelfAttention {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]`
    /// - `bias`: `[batch, 1, seq, seq]`, `0` where a key is a real token and a large
    ///   negative number where it is padding
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let head_dim = hidden / self.num_heads;
        let qkv = self.qkv.forward(x);
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * hidden, hidden)
                .reshape([batch, seq, self.num_heads, head_dim])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let context = attention(q, k, v, None, bias, AttentionModuleOptions::default());
        let merged = context.swap_dims(1, 2).reshape([batch, seq, hidden]);
        self.output.forward(merged)
    }
}

/// One post-norm transformer layer: attention, add & norm, feed-forward, add & norm.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    /// Self-attention block.
    pub attention: SelfAttention,
    /// Norm after the attention residual.
    pub attention_norm: LayerNorm,
    /// `[hidden, intermediate]`.
    pub intermediate: Linear,
    /// `[intermediate, hidden]`.
    pub output: Linear,
    /// Norm after the feed-forward residual.
    pub output_norm: LayerNorm,
}

impl EncoderLayer {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]`
    /// - `bias`: `[batch, 1, seq, seq]` (see [`SelfAttention::forward`])
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>, bias: Option<Tensor<4>>, activation: Activation) -> Tensor<3> {
        let attended = self.attention.forward(x.clone(), bias);
        let x = self.attention_norm.forward(x + attended);
        let hidden = self.intermediate.forward(x.clone());
        let hidden = match activation {
            Activation::Gelu => gelu(hidden),
            Activation::GeluTanh => gelu_approximate(hidden),
            Activation::Relu => relu(hidden),
        };
        let out = self.output.forward(hidden);
        self.output_norm.forward(x + out)
    }
}

/// The whole encoder, without a pooling head.
#[derive(Module, Debug)]
pub struct BertModel {
    /// Input embeddings.
    pub embeddings: BertEmbeddings,
    /// Transformer layers, in order.
    pub layers: Vec<EncoderLayer>,
    /// Feed-forward activation, from the config.
    #[module(skip)]
    pub activation: Activation,
}

/// Padding keys get this added to their attention score: far below any real score, yet
/// finite, so that arithmetic stays NaN-free on every backend.
const MASKED_SCORE: f32 = -1.0e9;

impl BertModel {
    /// Runs the encoder over a padded batch.
    ///
    /// `mask` is `None` when no sequence in the batch is padded (the caller knows the
    /// lengths, so no device round trip is needed to find out).
    ///
    /// # Shapes
    /// - `ids`: `[batch, seq]` token ids, padded at the end
    /// - `mask`: `[batch, seq]`, `1.0` for real tokens, `0.0` for padding
    /// - output: `[batch, seq, hidden]` (rows at padding positions are meaningless)
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Option<Tensor<2>>) -> Tensor<3> {
        let [batch, seq] = ids.dims();
        let bias = mask.map(|mask| {
            let bias = (mask.neg() + 1.0) * MASKED_SCORE;
            bias.reshape([batch, 1, 1, seq]).expand([batch, 1, seq, seq])
        });
        let mut x = self.embeddings.forward(ids);
        for layer in &self.layers {
            x = layer.forward(x, bias.clone(), self.activation);
        }
        x
    }
}

impl BertConfig {
    /// Builds a model with freshly initialised (untrained) weights, for shape tests;
    /// trained weights come from [`crate::encoder::weights::load_model`].
    pub fn init(&self, device: &Device) -> BertModel {
        let h = self.hidden_size;
        let norm = || LayerNormConfig::new(h).with_epsilon(self.layer_norm_eps).init(device);
        BertModel {
            embeddings: BertEmbeddings {
                word: EmbeddingConfig::new(self.vocab_size, h).init(device),
                position: EmbeddingConfig::new(self.max_position_embeddings, h).init(device),
                token_type: EmbeddingConfig::new(self.type_vocab_size, h).init(device),
                norm: norm(),
            },
            layers: (0..self.num_layers)
                .map(|_| EncoderLayer {
                    attention: SelfAttention {
                        qkv: LinearConfig::new(h, 3 * h).init(device),
                        output: LinearConfig::new(h, h).init(device),
                        num_heads: self.num_heads,
                    },
                    attention_norm: norm(),
                    intermediate: LinearConfig::new(h, self.intermediate_size).init(device),
                    output: LinearConfig::new(self.intermediate_size, h).init(device),
                    output_norm: norm(),
                })
                .collect(),
            activation: self.activation,
        }
    }
}

/// Wraps a loaded tensor as a parameter.
pub(crate) fn param<const D: usize>(tensor: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(tensor)
}

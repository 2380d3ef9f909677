//! Weights: safetensors in, burn modules out, through one documented renaming table.
//!
//! Two naming schemes are read:
//!
//! * **Hugging Face** (`model.safetensors` as published, f32/f16/bf16). Linear weights are
//!   stored `[out, in]`; burn's [`Linear`](burn::nn::Linear) stores `[in, out]`, so they
//!   are transposed on load, and query/key/value are concatenated into one matrix.
//! * **localrec** (the `export-web` copy, f16). Names are the module paths of
//!   [`BertModel`](super::BertModel) and every tensor already has burn's layout, so the
//!   browser loads it without any reshuffling.
//!
//! | Hugging Face name (an optional `bert.` prefix is ignored) | localrec name | change |
//! |---|---|---|
//! | `embeddings.word_embeddings.weight` | `embeddings.word.weight` | |
//! | `embeddings.position_embeddings.weight` | `embeddings.position.weight` | |
//! | `embeddings.token_type_embeddings.weight` | `embeddings.token_type.weight` | |
//! | `embeddings.LayerNorm.{weight,bias}` (or `{gamma,beta}`) | `embeddings.norm.{gamma,beta}` | |
//! | `encoder.layer.N.attention.self.{query,key,value}.weight` | `layers.N.attention.qkv.weight` | transposed, concatenated along columns |
//! | `encoder.layer.N.attention.self.{query,key,value}.bias` | `layers.N.attention.qkv.bias` | concatenated |
//! | `encoder.layer.N.attention.output.dense.{weight,bias}` | `layers.N.attention.output.{weight,bias}` | weight transposed |
//! | `encoder.layer.N.attention.output.LayerNorm.{weight,bias}` | `layers.N.attention_norm.{gamma,beta}` | |
//! | `encoder.layer.N.intermediate.dense.{weight,bias}` | `layers.N.intermediate.{weight,bias}` | weight transposed |
//! | `encoder.layer.N.output.dense.{weight,bias}` | `layers.N.output.{weight,bias}` | weight transposed |
//! | `encoder.layer.N.output.LayerNorm.{weight,bias}` | `layers.N.output_norm.{gamma,beta}` | |
//!
//! Anything else in the file (`pooler.*`, `embeddings.position_ids`) is ignored.

use std::collections::BTreeMap;

use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use half::bf16;
#[cfg(feature = "publish")]
use half::f16;
use safetensors::{Dtype, SafeTensors};

use super::config::BertConfig;
use super::model::{BertEmbeddings, BertModel, EncoderLayer, SelfAttention, param};
use crate::error::{Error, ErrorKind, Result};

/// Value of the `format` metadata key in weights written by [`to_web_safetensors`].
pub const LOCALREC_FORMAT: &str = "localrec-bert-v1";

/// A tensor on the host, in f32, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

impl HostTensor {
    fn transposed(&self) -> HostTensor {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let mut data = vec![0.0; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                data[c * rows + r] = self.data[r * cols + c];
            }
        }
        HostTensor { shape: vec![cols, rows], data }
    }
}

/// An f16 value's bits as f32, exact for every value (normals, subnormals, infinities,
/// NaN) and branch-free so the loop over a tensor vectorises: `half`'s conversion is a
/// scalar routine in wasm and was a quarter of the browser's model load.
fn f16_bits_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let magnitude = (h & 0x7fff) << 13;
    // Multiplying by 2^112 rebiases the exponent (15 -> 127); it also scales f16
    // subnormals, which land on f32 subnormals here, to their exact value.
    let scaled = f32::from_bits(magnitude) * f32::from_bits(0x7780_0000);
    // Exponent all ones: infinity or NaN, payload kept.
    let bits = if h & 0x7c00 == 0x7c00 { magnitude | 0x7f80_0000 } else { scaled.to_bits() };
    f32::from_bits(bits | sign)
}

/// Every tensor of a model under its localrec name, with burn's layout.
pub type NamedTensors = BTreeMap<String, HostTensor>;

fn weights_error(message: String) -> Error {
    Error::new(ErrorKind::Weights, message)
}

/// Reads one tensor of a safetensors file as f32, checking dtype and finiteness.
fn read_tensor(st: &SafeTensors<'_>, name: &str) -> Result<HostTensor> {
    let view = st
        .tensor(name)
        .map_err(|_| weights_error(format!("weights have no tensor `{name}`")))?;
    let bytes = view.data();
    let data: Vec<f32> = match view.dtype() {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|b| f16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        other => {
            return Err(weights_error(format!("tensor `{name}` has dtype {other:?}; expected f32, f16 or bf16")));
        }
    };
    if let Some(bad) = data.iter().position(|v| !v.is_finite()) {
        return Err(weights_error(format!("tensor `{name}` holds a non-finite value at index {bad}")));
    }
    Ok(HostTensor { shape: view.shape().to_vec(), data })
}

fn expect_shape(name: &str, tensor: &HostTensor, expected: &[usize]) -> Result<()> {
    if tensor.shape != expected {
        return Err(weights_error(format!(
            "tensor `{name}` has shape {:?}; the config expects {expected:?}",
            tensor.shape
        )));
    }
    Ok(())
}

/// The localrec names and burn-layout shapes a model with `config` consists of.
pub fn expected_tensors(config: &BertConfig) -> Vec<(String, Vec<usize>)> {
    let h = config.hidden_size;
    let i = config.intermediate_size;
    let mut names = vec![
        ("embeddings.word.weight".to_string(), vec![config.vocab_size, h]),
        ("embeddings.position.weight".to_string(), vec![config.max_position_embeddings, h]),
        ("embeddings.token_type.weight".to_string(), vec![config.type_vocab_size, h]),
        ("embeddings.norm.gamma".to_string(), vec![h]),
        ("embeddings.norm.beta".to_string(), vec![h]),
    ];
    for n in 0..config.num_layers {
        let p = format!("layers.{n}");
        names.extend([
            (format!("{p}.attention.qkv.weight"), vec![h, 3 * h]),
            (format!("{p}.attention.qkv.bias"), vec![3 * h]),
            (format!("{p}.attention.output.weight"), vec![h, h]),
            (format!("{p}.attention.output.bias"), vec![h]),
            (format!("{p}.attention_norm.gamma"), vec![h]),
            (format!("{p}.attention_norm.beta"), vec![h]),
            (format!("{p}.intermediate.weight"), vec![h, i]),
            (format!("{p}.intermediate.bias"), vec![i]),
            (format!("{p}.output.weight"), vec![i, h]),
            (format!("{p}.output.bias"), vec![h]),
            (format!("{p}.output_norm.gamma"), vec![h]),
            (format!("{p}.output_norm.beta"), vec![h]),
        ]);
    }
    names
}

/// Reads a safetensors file in either naming scheme into localrec-named, burn-layout
/// tensors, checking that every tensor the config needs is present with the right shape.
pub fn read_weights(bytes: &[u8], config: &BertConfig) -> Result<NamedTensors> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::with_source(ErrorKind::Weights, "weights file is not valid safetensors (truncated or corrupt?)", e))?;
    let is_localrec = st.names().iter().any(|n| n.starts_with("layers."));
    let mut out = NamedTensors::new();
    if is_localrec {
        for (name, shape) in expected_tensors(config) {
            let tensor = read_tensor(&st, &name)?;
            expect_shape(&name, &tensor, &shape)?;
            out.insert(name, tensor);
        }
        return Ok(out);
    }

    let prefix = if st.names().iter().any(|n| n.starts_with("bert.")) { "bert." } else { "" };
    let hf = |name: &str| -> Result<HostTensor> { read_tensor(&st, &format!("{prefix}{name}")) };
    // Older checkpoints name layer-norm parameters gamma/beta.
    let hf_norm = |base: &str| -> Result<(HostTensor, HostTensor)> {
        let gamma = hf(&format!("{base}.weight")).or_else(|_| hf(&format!("{base}.gamma")))?;
        let beta = hf(&format!("{base}.bias")).or_else(|_| hf(&format!("{base}.beta")))?;
        Ok((gamma, beta))
    };
    let h = config.hidden_size;
    let i = config.intermediate_size;
    let mut put = |name: String, tensor: HostTensor, shape: &[usize]| -> Result<()> {
        expect_shape(&name, &tensor, shape)?;
        out.insert(name, tensor);
        Ok(())
    };
    // A linear layer, checked in Hugging Face's [out, in] layout, stored as [in, out].
    let linear = |base: &str, d_in: usize, d_out: usize| -> Result<(HostTensor, HostTensor)> {
        let weight = hf(&format!("{base}.weight"))?;
        expect_shape(&format!("{prefix}{base}.weight"), &weight, &[d_out, d_in])?;
        let bias = hf(&format!("{base}.bias"))?;
        expect_shape(&format!("{prefix}{base}.bias"), &bias, &[d_out])?;
        Ok((weight.transposed(), bias))
    };

    put("embeddings.word.weight".into(), hf("embeddings.word_embeddings.weight")?, &[config.vocab_size, h])?;
    put(
        "embeddings.position.weight".into(),
        hf("embeddings.position_embeddings.weight")?,
        &[config.max_position_embeddings, h],
    )?;
    put(
        "embeddings.token_type.weight".into(),
        hf("embeddings.token_type_embeddings.weight")?,
        &[config.type_vocab_size, h],
    )?;
    let (gamma, beta) = hf_norm("embeddings.LayerNorm")?;
    put("embeddings.norm.gamma".into(), gamma, &[h])?;
    put("embeddings.norm.beta".into(), beta, &[h])?;

    for n in 0..config.num_layers {
        let src = format!("encoder.layer.{n}");
        let dst = format!("layers.{n}");
        let (qw, qb) = linear(&format!("{src}.attention.self.query"), h, h)?;
        let (kw, kb) = linear(&format!("{src}.attention.self.key"), h, h)?;
        let (vw, vb) = linear(&format!("{src}.attention.self.value"), h, h)?;
        let mut qkv = Vec::with_capacity(h * 3 * h);
        for row in 0..h {
            for part in [&qw, &kw, &vw] {
                qkv.extend_from_slice(&part.data[row * h..(row + 1) * h]);
            }
        }
        put(format!("{dst}.attention.qkv.weight"), HostTensor { shape: vec![h, 3 * h], data: qkv }, &[h, 3 * h])?;
        let qkv_bias = [qb.data, kb.data, vb.data].concat();
        put(format!("{dst}.attention.qkv.bias"), HostTensor { shape: vec![3 * h], data: qkv_bias }, &[3 * h])?;

        let (w, b) = linear(&format!("{src}.attention.output.dense"), h, h)?;
        put(format!("{dst}.attention.output.weight"), w, &[h, h])?;
        put(format!("{dst}.attention.output.bias"), b, &[h])?;
        let (gamma, beta) = hf_norm(&format!("{src}.attention.output.LayerNorm"))?;
        put(format!("{dst}.attention_norm.gamma"), gamma, &[h])?;
        put(format!("{dst}.attention_norm.beta"), beta, &[h])?;

        let (w, b) = linear(&format!("{src}.intermediate.dense"), h, i)?;
        put(format!("{dst}.intermediate.weight"), w, &[h, i])?;
        put(format!("{dst}.intermediate.bias"), b, &[i])?;
        let (w, b) = linear(&format!("{src}.output.dense"), i, h)?;
        put(format!("{dst}.output.weight"), w, &[i, h])?;
        put(format!("{dst}.output.bias"), b, &[h])?;
        let (gamma, beta) = hf_norm(&format!("{src}.output.LayerNorm"))?;
        put(format!("{dst}.output_norm.gamma"), gamma, &[h])?;
        put(format!("{dst}.output_norm.beta"), beta, &[h])?;
    }
    Ok(out)
}

/// Builds the model on `device` from localrec-named tensors (see [`read_weights`]).
pub fn build_model(tensors: &NamedTensors, config: &BertConfig, device: &Device) -> Result<BertModel> {
    let get = |name: &str| -> Result<&HostTensor> {
        tensors.get(name).ok_or_else(|| weights_error(format!("weights have no tensor `{name}`")))
    };
    let t1 = |name: &str| -> Result<Tensor<1>> {
        let t = get(name)?;
        Ok(Tensor::from_data(TensorData::new(t.data.clone(), [t.data.len()]), device))
    };
    let t2 = |name: &str| -> Result<Tensor<2>> {
        let t = get(name)?;
        if t.shape.len() != 2 {
            return Err(weights_error(format!("tensor `{name}` has shape {:?}; expected two dimensions", t.shape)));
        }
        Ok(Tensor::from_data(TensorData::new(t.data.clone(), [t.shape[0], t.shape[1]]), device))
    };
    let embedding = |name: &str| -> Result<Embedding> { Ok(Embedding { weight: param(t2(&format!("{name}.weight"))?) }) };
    let linear = |name: &str| -> Result<Linear> {
        Ok(Linear { weight: param(t2(&format!("{name}.weight"))?), bias: Some(param(t1(&format!("{name}.bias"))?)) })
    };
    let norm = |name: &str| -> Result<LayerNorm> {
        // Built by its config, so epsilon is set the way burn expects, then filled.
        let mut norm: LayerNorm =
            LayerNormConfig::new(config.hidden_size).with_epsilon(config.layer_norm_eps).init(device);
        norm.gamma = param(t1(&format!("{name}.gamma"))?);
        norm.beta = Some(param(t1(&format!("{name}.beta"))?));
        Ok(norm)
    };

    let embeddings = BertEmbeddings {
        word: embedding("embeddings.word")?,
        position: embedding("embeddings.position")?,
        token_type: embedding("embeddings.token_type")?,
        norm: norm("embeddings.norm")?,
    };
    let layers = (0..config.num_layers)
        .map(|n| {
            let p = format!("layers.{n}");
            Ok(EncoderLayer {
                attention: SelfAttention {
                    qkv: linear(&format!("{p}.attention.qkv"))?,
                    output: linear(&format!("{p}.attention.output"))?,
                    num_heads: config.num_heads,
                },
                attention_norm: norm(&format!("{p}.attention_norm"))?,
                intermediate: linear(&format!("{p}.intermediate"))?,
                output: linear(&format!("{p}.output"))?,
                output_norm: norm(&format!("{p}.output_norm"))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(BertModel { embeddings, layers, activation: config.activation })
}

/// Serialises localrec-named tensors as f16 safetensors, the web copy's weights.
///
/// Refuses values that f16 cannot hold (they would become infinities). The publisher's
/// only (cargo feature `publish`).
#[cfg(feature = "publish")]
pub fn to_web_safetensors(tensors: &NamedTensors) -> Result<Vec<u8>> {
    let mut halves: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let mut bytes = Vec::with_capacity(tensor.data.len() * 2);
        for &v in &tensor.data {
            let h = f16::from_f32(v);
            if !h.is_finite() {
                return Err(weights_error(format!("tensor `{name}` holds {v}, which f16 cannot represent")));
            }
            bytes.extend_from_slice(&h.to_le_bytes());
        }
        halves.push((name.clone(), tensor.shape.clone(), bytes));
    }
    let views = halves
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(Dtype::F16, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| Error::with_source(ErrorKind::Weights, format!("cannot serialise tensor `{name}`"), e))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = std::collections::HashMap::from([("format".to_string(), LOCALREC_FORMAT.to_string())]);
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::with_source(ErrorKind::Weights, "cannot serialise the web weights", e))
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    fn tiny_config() -> BertConfig {
        BertConfig {
            hidden_size: 4,
            num_layers: 1,
            num_heads: 2,
            intermediate_size: 8,
            vocab_size: 10,
            max_position_embeddings: 6,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            activation: super::super::config::Activation::Gelu,
            pad_token_id: 0,
            max_seq_length: 6,
        }
    }

    fn tiny_named(config: &BertConfig) -> NamedTensors {
        expected_tensors(config)
            .into_iter()
            .map(|(name, shape)| {
                let n: usize = shape.iter().product();
                let data = (0..n).map(|k| (k as f32 * 0.37).sin()).collect();
                (name, HostTensor { shape, data })
            })
            .collect()
    }

    #[test]
    fn web_weights_round_trip_through_f16_within_half_precision() {
        let config = tiny_config();
        let named = tiny_named(&config);
        let bytes = to_web_safetensors(&named).unwrap();
        let back = read_weights(&bytes, &config).unwrap();
        assert_eq!(back.len(), named.len());
        for (name, tensor) in &named {
            let other = &back[name];
            assert_eq!(other.shape, tensor.shape, "{name}");
            for (a, b) in tensor.data.iter().zip(&other.data) {
                assert!((a - b).abs() <= 1e-3, "{name}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn f16_conversion_is_exact_for_every_bit_pattern() {
        for bits in 0..=u16::MAX {
            let want = f16::from_bits(bits).to_f32();
            let got = f16_bits_to_f32(bits);
            if want.is_nan() {
                assert!(got.is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn truncated_weights_are_a_clear_weights_error() {
        let config = tiny_config();
        let bytes = to_web_safetensors(&tiny_named(&config)).unwrap();
        for cut in [0, 7, bytes.len() / 2, bytes.len() - 1] {
            let err = read_weights(&bytes[..cut], &config).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Weights, "cut at {cut}");
        }
    }

    #[test]
    fn missing_tensor_and_wrong_shape_name_the_tensor() {
        let config = tiny_config();
        let mut named = tiny_named(&config);
        named.remove("layers.0.output.bias");
        let err = read_weights(&to_web_safetensors(&named).unwrap(), &config).unwrap_err();
        assert!(err.to_string().contains("layers.0.output.bias"), "{err}");

        let mut named = tiny_named(&config);
        named.insert("layers.0.output.bias".into(), HostTensor { shape: vec![5], data: vec![0.0; 5] });
        let err = read_weights(&to_web_safetensors(&named).unwrap(), &config).unwrap_err();
        assert!(err.to_string().contains("layers.0.output.bias") && err.to_string().contains("[5]"), "{err}");
    }

    #[test]
    fn non_float_dtype_is_refused_naming_the_tensor() {
        let config = tiny_config();
        let data = vec![0u8; 4 * 10 * 4];
        let view = safetensors::tensor::TensorView::new(Dtype::I32, vec![10, 4], &data).unwrap();
        let bytes = safetensors::serialize([("embeddings.word_embeddings.weight", view)], None).unwrap();
        let err = read_weights(&bytes, &config).unwrap_err();
        assert!(err.to_string().contains("word_embeddings") && err.to_string().contains("I32"), "{err}");
    }

    #[test]
    fn hugging_face_linear_weights_are_transposed_and_qkv_concatenated() {
        let config = tiny_config();
        let h = config.hidden_size;
        // Build a Hugging Face-named file from the localrec tensors by undoing the table.
        let named = tiny_named(&config);
        let mut hf: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let mut push = |name: &str, t: &HostTensor| {
            hf.push((name.to_string(), t.shape.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect()));
        };
        let qkv = &named["layers.0.attention.qkv.weight"];
        for (part, which) in ["query", "key", "value"].iter().enumerate() {
            // Column block `part` of [h, 3h], as [out=h, in=h].
            let mut w = vec![0.0; h * h];
            for r in 0..h {
                for c in 0..h {
                    w[c * h + r] = qkv.data[r * 3 * h + part * h + c];
                }
            }
            push(&format!("encoder.layer.0.attention.self.{which}.weight"), &HostTensor { shape: vec![h, h], data: w });
            let b = named["layers.0.attention.qkv.bias"].data[part * h..(part + 1) * h].to_vec();
            push(&format!("encoder.layer.0.attention.self.{which}.bias"), &HostTensor { shape: vec![h], data: b });
        }
        for (hf_name, ours) in [
            ("attention.output.dense", "attention.output"),
            ("intermediate.dense", "intermediate"),
            ("output.dense", "output"),
        ] {
            push(&format!("encoder.layer.0.{hf_name}.weight"), &named[&format!("layers.0.{ours}.weight")].transposed());
            push(&format!("encoder.layer.0.{hf_name}.bias"), &named[&format!("layers.0.{ours}.bias")]);
        }
        for (hf_name, ours) in [
            ("embeddings.LayerNorm", "embeddings.norm"),
            ("encoder.layer.0.attention.output.LayerNorm", "layers.0.attention_norm"),
            ("encoder.layer.0.output.LayerNorm", "layers.0.output_norm"),
        ] {
            push(&format!("{hf_name}.weight"), &named[&format!("{ours}.gamma")]);
            push(&format!("{hf_name}.bias"), &named[&format!("{ours}.beta")]);
        }
        for (hf_name, ours) in [("word_embeddings", "word"), ("position_embeddings", "position"), ("token_type_embeddings", "token_type")] {
            push(&format!("embeddings.{hf_name}.weight"), &named[&format!("embeddings.{ours}.weight")]);
        }
        let views: Vec<_> = hf
            .iter()
            .map(|(n, s, b)| (format!("bert.{n}"), safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b).unwrap()))
            .collect();
        let bytes = safetensors::serialize(views, None).unwrap();
        assert_eq!(read_weights(&bytes, &config).unwrap(), named);
    }
}

//! The CPU engine: the encoder's whole forward pass on plain f32 buffers, for one wasm
//! thread in the browser.
//!
//! Why it exists: profiled in Chromium at batch 32, burn's Flex path spent about a
//! quarter of an encoder call outside the matrix products, in layout copies
//! (`swap_dims`/`reshape` for the heads), host round trips around the packed dense
//! kernel, an attention bias expanded to `[batch, 1, seq, seq]`, and padding. Here the
//! sequences of a batch are concatenated without padding (dense layers are per token,
//! so padding was pure waste), the four dense layers per block run on the packed kernels
//! of [`super::dense`], and attention, softmax, the residual adds and the norms read the
//! buffers in place.
//!
//! It computes exactly what [`super::BertModel`] computes and is built from the same
//! localrec-named tensors (the burn module paths, see [`super::weights`]); parity with
//! sentence-transformers is tested for both. Natively the burn path stays the default
//! (burn's matrix product is multi-threaded there); see [`super::Engine`].

use super::config::{Activation, BertConfig};
use super::dense::{PackedDense, exp4_nonpositive, lanes};
use super::weights::NamedTensors;
use crate::error::{Error, ErrorKind, Result};

/// Smallest norm divided by when normalising, as in [`super::mean_pool_normalized`].
const MIN_NORM: f32 = 1e-12;

/// A layer norm's parameters.
#[derive(Clone, Debug)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// `x <- norm(x + residual)` for every row of `x` (`residual` has the same shape).
    ///
    /// # Shapes
    /// - `x`, `residual`: `[rows, width]`
    fn add_and_apply(&self, x: &mut [f32], residual: Option<&[f32]>) {
        let width = self.gamma.len();
        for (r, row) in x.chunks_exact_mut(width).enumerate() {
            if let Some(res) = residual {
                for (v, &a) in row.iter_mut().zip(&res[r * width..(r + 1) * width]) {
                    *v += a;
                }
            }
            // Summed in vectors: as one chain of scalar adds, the two sums took longer than
            // everything else the norm does.
            let mean = lane_sum(row, |v| v, |v| v) / width as f32;
            let m = lanes::splat_value(mean);
            let square = |v: lanes::V| {
                let d = lanes::sub(v, m);
                lanes::mul(d, d)
            };
            let var = lane_sum(row, square, |v| (v - mean) * (v - mean)) / width as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, &g), &b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

/// The sum of `f` over `values`, four vector accumulators wide (`scalar` is `f` for one
/// value, for a tail shorter than a vector).
#[inline(always)]
fn lane_sum(values: &[f32], f: impl Fn(lanes::V) -> lanes::V, scalar: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [lanes::zero(); 4];
    let mut blocks = values.chunks_exact(16);
    for block in &mut blocks {
        for (i, a) in acc.iter_mut().enumerate() {
            *a = lanes::add(*a, f(lanes::load(&block[4 * i..])));
        }
    }
    let mut quads = blocks.remainder().chunks_exact(4);
    for quad in &mut quads {
        acc[0] = lanes::add(acc[0], f(lanes::load(quad)));
    }
    let total = lanes::add(lanes::add(acc[0], acc[1]), lanes::add(acc[2], acc[3]));
    lanes::to_array(total).into_iter().sum::<f32>() + quads.remainder().iter().map(|&v| scalar(v)).sum::<f32>()
}

/// One transformer layer's parameters.
#[derive(Clone, Debug)]
struct Layer {
    qkv: PackedDense,
    attention_output: PackedDense,
    attention_norm: Norm,
    intermediate: PackedDense,
    output: PackedDense,
    output_norm: Norm,
}

/// Activations of one forward pass, allocated once and reused by every layer.
#[derive(Default)]
struct Buffers {
    qkv: Vec<f32>,
    context: Vec<f32>,
    projected: Vec<f32>,
    hidden: Vec<f32>,
    scores: Vec<f32>,
}

/// The encoder's parameters for the CPU engine.
#[derive(Clone, Debug)]
pub struct CpuModel {
    hidden: usize,
    heads: usize,
    vocab: usize,
    positions: usize,
    activation: Activation,
    /// `[vocab, hidden]`.
    word: Vec<f32>,
    /// `[max_position_embeddings, hidden]`.
    position: Vec<f32>,
    /// Token type 0's row: single-sentence inputs use no other.
    segment: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

impl CpuModel {
    /// Builds the model from localrec-named tensors (as [`super::weights::read_weights`]
    /// returns them), taking the embedding tables without copying them.
    pub fn from_tensors(mut tensors: NamedTensors, config: &BertConfig) -> Result<Self> {
        let h = config.hidden_size;
        let mut take = |name: &str, len: usize| -> Result<Vec<f32>> {
            let t = tensors
                .remove(name)
                .ok_or_else(|| Error::new(ErrorKind::Weights, format!("weights have no tensor `{name}`")))?;
            if t.data.len() != len {
                return Err(Error::new(
                    ErrorKind::Weights,
                    format!("tensor `{name}` has {} values; expected {len}", t.data.len()),
                ));
            }
            Ok(t.data)
        };
        let eps = config.layer_norm_eps as f32;
        let mut norm = |name: &str| -> Result<Norm> {
            Ok(Norm { gamma: take(&format!("{name}.gamma"), h)?, beta: take(&format!("{name}.beta"), h)?, eps })
        };
        let embedding_norm = norm("embeddings.norm")?;
        let mut layer_norms = Vec::with_capacity(config.num_layers);
        for n in 0..config.num_layers {
            layer_norms.push((norm(&format!("layers.{n}.attention_norm"))?, norm(&format!("layers.{n}.output_norm"))?));
        }
        let word = take("embeddings.word.weight", config.vocab_size * h)?;
        let position = take("embeddings.position.weight", config.max_position_embeddings * h)?;
        let mut segment = take("embeddings.token_type.weight", config.type_vocab_size * h)?;
        segment.truncate(h);
        let mut dense = |name: &str, k: usize, n: usize| -> Result<PackedDense> {
            let weight = take(&format!("{name}.weight"), k * n)?;
            let bias = take(&format!("{name}.bias"), n)?;
            PackedDense::new(&weight, k, n, Some(&bias))
                .ok_or_else(|| Error::new(ErrorKind::Weights, format!("tensor `{name}.weight` does not fit [{k}, {n}]")))
        };
        let i = config.intermediate_size;
        let mut layers = Vec::with_capacity(config.num_layers);
        for (n, (attention_norm, output_norm)) in layer_norms.into_iter().enumerate() {
            let p = format!("layers.{n}");
            layers.push(Layer {
                qkv: dense(&format!("{p}.attention.qkv"), h, 3 * h)?,
                attention_output: dense(&format!("{p}.attention.output"), h, h)?,
                attention_norm,
                intermediate: dense(&format!("{p}.intermediate"), h, i)?,
                output: dense(&format!("{p}.output"), i, h)?,
                output_norm,
            });
        }
        if segment.len() != h {
            return Err(Error::new(ErrorKind::Weights, "tensor `embeddings.token_type.weight` has no row for token type 0"));
        }
        Ok(Self {
            hidden: h,
            heads: config.num_heads,
            vocab: config.vocab_size,
            positions: config.max_position_embeddings,
            activation: config.activation,
            word,
            position,
            segment,
            embedding_norm,
            layers,
        })
    }

    /// Mean-pooled, L2-normalised embeddings of token sequences, computed together.
    ///
    /// # Shapes
    /// - `sequences`: `n` sequences of any lengths (no padding needed)
    /// - output: `[n, hidden]` row-major, each row of unit length
    pub fn embed(&self, sequences: &[&[u32]]) -> Result<Vec<f32>> {
        let h = self.hidden;
        let lengths: Vec<usize> = sequences.iter().map(|s| s.len()).collect();
        let mut x = self.embed_tokens(sequences)?;
        let mut buf = Buffers::default();
        for layer in &self.layers {
            self.layer_forward(layer, &mut x, &lengths, &mut buf);
        }
        let mut pooled = vec![0.0f32; sequences.len() * h];
        let mut start = 0;
        for (s, &len) in lengths.iter().enumerate() {
            let out = &mut pooled[s * h..(s + 1) * h];
            for t in start..start + len {
                for (o, &v) in out.iter_mut().zip(&x[t * h..(t + 1) * h]) {
                    *o += v;
                }
            }
            let count = len.max(1) as f32;
            let norm = (out.iter().map(|&v| (v / count) * (v / count)).sum::<f32>()).sqrt().max(MIN_NORM);
            for o in out.iter_mut() {
                *o = *o / count / norm;
            }
            start += len;
        }
        Ok(pooled)
    }

    /// Word + position + segment embeddings of every token, normalised.
    ///
    /// # Shapes
    /// - output: `[total tokens, hidden]`
    fn embed_tokens(&self, sequences: &[&[u32]]) -> Result<Vec<f32>> {
        let h = self.hidden;
        let total: usize = sequences.iter().map(|s| s.len()).sum();
        let mut x = Vec::with_capacity(total * h);
        for (s, seq) in sequences.iter().enumerate() {
            if seq.len() > self.positions {
                return Err(Error::new(
                    ErrorKind::Input,
                    format!("sequence {s} has {} tokens; the model has {} positions", seq.len(), self.positions),
                ));
            }
            for (p, &id) in seq.iter().enumerate() {
                let id = id as usize;
                if id >= self.vocab {
                    return Err(Error::new(
                        ErrorKind::Input,
                        format!("sequence {s} holds token id {id}, outside the vocabulary of {}", self.vocab),
                    ));
                }
                let word = &self.word[id * h..(id + 1) * h];
                let position = &self.position[p * h..(p + 1) * h];
                x.extend(word.iter().zip(position).zip(&self.segment).map(|((&w, &p), &s)| w + p + s));
            }
        }
        self.embedding_norm.add_and_apply(&mut x, None);
        Ok(x)
    }

    /// One post-norm transformer layer over concatenated sequences, in place.
    ///
    /// # Shapes
    /// - `x`: `[total tokens, hidden]`, sequences of `lengths` one after another
    fn layer_forward(&self, layer: &Layer, x: &mut Vec<f32>, lengths: &[usize], buf: &mut Buffers) {
        layer.qkv.forward_into(x, false, &mut buf.qkv);
        // Attention writes every value of the context.
        buf.context.resize(x.len(), 0.0);
        self.attention(&buf.qkv, lengths, &mut buf.context, &mut buf.scores);
        layer.attention_output.forward_into(&buf.context, false, &mut buf.projected);
        layer.attention_norm.add_and_apply(x, Some(&buf.projected));
        let fused = self.activation == Activation::Gelu;
        layer.intermediate.forward_into(x, fused, &mut buf.hidden);
        match self.activation {
            Activation::Gelu => {}
            Activation::GeluTanh => buf.hidden.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
            Activation::Relu => buf.hidden.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
        layer.output.forward_into(&buf.hidden, false, &mut buf.projected);
        layer.output_norm.add_and_apply(x, Some(&buf.projected));
    }

    /// Scaled dot-product attention of every head, each sequence attending to itself only.
    ///
    /// # Shapes
    /// - `qkv`: `[total tokens, 3 * hidden]`: queries, keys, values side by side, each
    ///   split into `heads` slices of `hidden / heads`
    /// - `context`: `[total tokens, hidden]`, every value written; heads merged
    fn attention(&self, qkv: &[f32], lengths: &[usize], context: &mut [f32], scores: &mut Vec<f32>) {
        // The head width in vectors as a constant keeps a query's weighted sum of values
        // in registers; MiniLM and BERT-base have 32 and 64 wide heads.
        match self.hidden / self.heads {
            32 => self.attention_with::<8>(qkv, lengths, context, scores),
            64 => self.attention_with::<16>(qkv, lengths, context, scores),
            _ => self.attention_with::<0>(qkv, lengths, context, scores),
        }
    }

    /// [`CpuModel::attention`] for heads `4 VD` wide (`VD = 0`: any width, read at run
    /// time, values summed in memory).
    ///
    /// A head's keys are transposed (and scaled) once per sequence, in 4 x 4 blocks, so
    /// that a query's scores come four keys per vector with no horizontal sums: the dot
    /// product per key that this replaces spent most of its time adding lanes together.
    /// The softmax runs on those vectors too (its scalar form cost as much as the scores).
    /// Queries go in pairs, so that every key and value vector loaded serves two.
    /// Measured in Chromium on batches of 32 short items (12 heads of 32), these steps
    /// took attention from 1.0 to 0.7 ms per layer.
    fn attention_with<const VD: usize>(&self, qkv: &[f32], lengths: &[usize], context: &mut [f32], scores: &mut Vec<f32>) {
        let h = self.hidden;
        let stride = 3 * h;
        let dh = h / self.heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let scale_v = lanes::splat_value(scale);
        let mut start = 0;
        for &len in lengths {
            let padded = len.next_multiple_of(4);
            // Two queries' scores, then the head's keys as `[dh, padded]` (zero or the next
            // sequence's keys past `len`).
            scores.clear();
            scores.resize(2 * padded + dh * padded, 0.0);
            let (rows, keys_t) = scores.split_at_mut(2 * padded);
            for head in 0..self.heads {
                let (q_at, k_at, v_at) = (head * dh, h + head * dh, 2 * h + head * dh);
                // Four keys at a time as 4 x 4 blocks (dh = 4 VD), the rest one by one. A
                // last block may read rows past the sequence (the next one's) where the
                // buffer has them: those columns only give scores that the softmax
                // replaces.
                let blocked = match VD {
                    0 => 0,
                    _ if start + padded <= qkv.len() / stride => padded,
                    _ => len - len % 4,
                };
                for j in (0..blocked).step_by(4) {
                    let keys: [&[f32]; 4] = std::array::from_fn(|r| &qkv[(start + j + r) * stride + k_at..][..4 * VD]);
                    for d in (0..4 * VD).step_by(4) {
                        let block = lanes::transpose4(std::array::from_fn(|r| lanes::load(&keys[r][d..])));
                        for (x, column) in block.into_iter().enumerate() {
                            lanes::store(lanes::mul(column, scale_v), &mut keys_t[(d + x) * padded + j..]);
                        }
                    }
                }
                for j in blocked..len {
                    let k = &qkv[(start + j) * stride + k_at..][..dh];
                    for (d, &v) in k.iter().enumerate() {
                        keys_t[d * padded + j] = v * scale;
                    }
                }
                // Queries in pairs: twice the independent multiply-add chains, and each key
                // or value vector loaded once for both (an odd last query is paired with
                // itself).
                for i in (0..len).step_by(2) {
                    let i1 = (i + 1).min(len - 1);
                    let q0 = &qkv[(start + i) * stride + q_at..][..dh];
                    let q1 = &qkv[(start + i1) * stride + q_at..][..dh];
                    let (row0, row1) = rows.split_at_mut(padded);
                    if padded <= 24 {
                        // Both queries' scores in registers at once.
                        let out = [&mut *row0, &mut *row1];
                        match padded / 4 {
                            1 => score_rows::<1>([q0, q1], keys_t, padded, out),
                            2 => score_rows::<2>([q0, q1], keys_t, padded, out),
                            3 => score_rows::<3>([q0, q1], keys_t, padded, out),
                            4 => score_rows::<4>([q0, q1], keys_t, padded, out),
                            5 => score_rows::<5>([q0, q1], keys_t, padded, out),
                            _ => score_rows::<6>([q0, q1], keys_t, padded, out),
                        }
                    } else {
                        let mut j = 0;
                        while padded - j >= 16 {
                            score_pair::<4, 1>([q0, q1], keys_t, padded, j, [&mut *row0, &mut *row1]);
                            j += 16;
                        }
                        // Fewer key vectors get the head's dimensions split among more
                        // accumulators, so that there are still 6 to 8 chains.
                        let out = [&mut *row0, &mut *row1];
                        match (padded - j) / 4 {
                            3 => score_pair::<3, 1>([q0, q1], keys_t, padded, j, out),
                            2 => score_pair::<2, 2>([q0, q1], keys_t, padded, j, out),
                            1 => score_pair::<1, 4>([q0, q1], keys_t, padded, j, out),
                            _ => {}
                        }
                    }
                    let inv = [softmax_padded(row0, len), softmax_padded(row1, len)];
                    let seq_values = &qkv[start * stride..(start + len) * stride];
                    if VD > 0 && VD.is_multiple_of(4) {
                        // Four value vectors per pass: 8 accumulators for the two queries.
                        for part in (0..VD).step_by(4) {
                            let at = v_at + 4 * part;
                            let mut acc = [[lanes::zero(); 4]; 2];
                            for ((&p0, &p1), v) in row0.iter().zip(row1.iter()).zip(seq_values.chunks_exact(stride)) {
                                let v = &v[at..at + 16];
                                let p = [lanes::splat_value(p0), lanes::splat_value(p1)];
                                for d in 0..4 {
                                    let value = lanes::load(&v[4 * d..]);
                                    acc[0][d] = lanes::mul_add(p[0], value, acc[0][d]);
                                    acc[1][d] = lanes::mul_add(p[1], value, acc[1][d]);
                                }
                            }
                            for (q, (acc, inv)) in [i, i1].into_iter().zip(acc.iter().zip(inv)) {
                                let out = &mut context[(start + q) * h + q_at + 4 * part..][..16];
                                let inv = lanes::splat_value(inv);
                                for (d, a) in acc.iter().enumerate() {
                                    lanes::store(lanes::mul(*a, inv), &mut out[4 * d..]);
                                }
                            }
                        }
                    } else {
                        for (q, (row, inv)) in [i, i1].into_iter().zip([&*row0, &*row1].into_iter().zip(inv)) {
                            let out = &mut context[(start + q) * h + q_at..][..dh];
                            out.fill(0.0);
                            for (&p, v) in row.iter().zip(seq_values.chunks_exact(stride)) {
                                for (o, &vv) in out.iter_mut().zip(&v[v_at..v_at + dh]) {
                                    *o += p * vv;
                                }
                            }
                            out.iter_mut().for_each(|o| *o *= inv);
                        }
                    }
                }
            }
            start += len;
        }
    }
}

/// The softmax of the first `len` scores of `row` (`row.len()` a multiple of 4, at least
/// `len`), left unnormalised: `row[j]` becomes `e^(row[j] - max)` and `row[len..]` zero.
/// Returns `1 / sum`, the factor that normalises them.
#[inline(always)]
fn softmax_padded(row: &mut [f32], len: usize) -> f32 {
    row[len..].fill(f32::NEG_INFINITY);
    let mut max = lanes::splat_value(f32::NEG_INFINITY);
    for chunk in row.chunks_exact(4) {
        max = lanes::max(max, lanes::load(chunk));
    }
    // The largest lane in every lane, without leaving the vector.
    let max = lanes::max_across(max);
    let mut sum = lanes::zero();
    for chunk in row.chunks_exact_mut(4) {
        let e = exp4_nonpositive(lanes::sub(lanes::load(chunk), max));
        lanes::store(e, chunk);
        sum = lanes::add(sum, e);
    }
    1.0 / lanes::to_array(sum).into_iter().sum::<f32>()
}

/// Scores of two queries against all `4 C = padded` keys of a head's transposed keys
/// (`keys_t[d * padded + key]`), into `out[q][..padded]`: `2 C` accumulators, a key vector
/// loaded once for both queries.
#[inline(always)]
fn score_rows<const C: usize>(q: [&[f32]; 2], keys_t: &[f32], padded: usize, out: [&mut [f32]; 2]) {
    let dh = q[0].len().min(q[1].len());
    let mut acc = [[lanes::zero(); C]; 2];
    for d in 0..dh {
        let keys = &keys_t[d * padded..][..4 * C];
        let x0 = lanes::splat_value(q[0][d]);
        let x1 = lanes::splat_value(q[1][d]);
        for c in 0..C {
            let k = lanes::load(&keys[4 * c..]);
            acc[0][c] = lanes::mul_add(x0, k, acc[0][c]);
            acc[1][c] = lanes::mul_add(x1, k, acc[1][c]);
        }
    }
    for (acc, out) in acc.iter().zip(out) {
        for (c, &a) in acc.iter().enumerate() {
            lanes::store(a, &mut out[4 * c..]);
        }
    }
}

/// Scores of two queries against keys `j .. j + 4 B` of a head's transposed keys
/// (`keys_t[d * padded + key]`), into `out[q][j ..]`: `2 B S` accumulators, the head's
/// dimensions dealt round-robin to `S` of them per key vector, so that the multiply-adds
/// of neighbouring chains overlap.
#[inline(always)]
fn score_pair<const B: usize, const S: usize>(q: [&[f32]; 2], keys_t: &[f32], padded: usize, j: usize, out: [&mut [f32]; 2]) {
    let dh = q[0].len();
    let mut acc = [[[lanes::zero(); B]; S]; 2];
    // Dimension `d` into accumulator set `s` of both queries.
    let add_dimension = |acc: &mut [[[lanes::V; B]; S]; 2], s: usize, d: usize| {
        let keys = &keys_t[d * padded + j..][..4 * B];
        let k: [lanes::V; B] = std::array::from_fn(|b| lanes::load(&keys[4 * b..]));
        for (qi, acc) in acc.iter_mut().enumerate() {
            let x = lanes::splat_value(q[qi][d]);
            for (a, &kv) in acc[s].iter_mut().zip(&k) {
                *a = lanes::mul_add(x, kv, *a);
            }
        }
    };
    let whole = dh - dh % S;
    for d0 in (0..whole).step_by(S) {
        for s in 0..S {
            add_dimension(&mut acc, s, d0 + s);
        }
    }
    for d in whole..dh {
        add_dimension(&mut acc, 0, d);
    }
    for (acc, out) in acc.iter().zip(out) {
        for b in 0..B {
            let sum = acc[1..].iter().fold(acc[0][b], |t, part| lanes::add(t, part[b]));
            lanes::store(sum, &mut out[j + 4 * b..][..4]);
        }
    }
}

/// GELU's tanh approximation, as burn's `gelu_approximate`.
fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::weights::{HostTensor, expected_tensors};

    /// A 2-layer, 8-wide model with deterministic weights in every tensor.
    fn tiny() -> (BertConfig, NamedTensors) {
        tiny_with(8, 2, 12)
    }

    /// A 2-layer model `hidden` wide with `heads` heads and room for `positions` tokens,
    /// deterministic weights in every tensor.
    fn tiny_with(hidden: usize, heads: usize, positions: usize) -> (BertConfig, NamedTensors) {
        let config = BertConfig {
            hidden_size: hidden,
            num_layers: 2,
            num_heads: heads,
            intermediate_size: 2 * hidden,
            vocab_size: 20,
            max_position_embeddings: positions,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            activation: Activation::Gelu,
            pad_token_id: 0,
            max_seq_length: positions,
        };
        let mut seed = 7u32;
        let tensors = expected_tensors(&config)
            .into_iter()
            .map(|(name, shape)| {
                let data = (0..shape.iter().product::<usize>())
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        ((seed >> 16) as f32 / 65_536.0 - 0.5) * 0.5
                    })
                    .collect();
                (name, HostTensor { shape, data })
            })
            .collect();
        (config, tensors)
    }

    #[test]
    fn batched_unpadded_sequences_match_each_sequence_alone() {
        let (config, tensors) = tiny();
        let model = CpuModel::from_tensors(tensors, &config).unwrap();
        let seqs: [&[u32]; 3] = [&[1, 5, 7, 2], &[1, 2], &[1, 9, 9, 9, 4, 3, 2]];
        let together = model.embed(&seqs).unwrap();
        for (s, seq) in seqs.iter().enumerate() {
            let alone = model.embed(&[seq]).unwrap();
            for (a, b) in alone.iter().zip(&together[s * 8..(s + 1) * 8]) {
                assert!((a - b).abs() < 1e-6, "sequence {s}: {a} vs {b}");
            }
            let norm: f32 = alone.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "sequence {s} norm {norm}");
        }
    }

    #[test]
    fn matches_the_burn_model_on_the_same_weights() {
        use burn::prelude::*;
        let (config, tensors) = tiny();
        let device = Device::flex();
        let burn_model = crate::encoder::weights::build_model(&tensors, &config, &device).unwrap();
        let cpu = CpuModel::from_tensors(tensors, &config).unwrap();
        let seq: &[u32] = &[1, 4, 6, 8, 2];
        let ids = Tensor::<2, Int>::from_data(TensorData::new(seq.iter().map(|&i| i as i32).collect::<Vec<_>>(), [1, 5]), &device);
        let mask = Tensor::<2>::ones([1, 5], &device);
        let want = crate::encoder::mean_pool_normalized(burn_model.forward(ids, None), mask).into_data().try_to_vec::<f32>().unwrap();
        let got = cpu.embed(&[seq]).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }

    /// 32-wide heads take the vectorised attention (keys transposed in 4 x 4 blocks,
    /// scores of up to 24 keys in registers, longer rows in 16-key steps and tails, query
    /// pairs with an odd one out): every length from 1 to 33, in one batch and alone, gives
    /// what the burn model gives.
    #[test]
    fn vectorised_attention_matches_the_burn_model_for_every_length() {
        use burn::prelude::*;
        let (config, tensors) = tiny_with(64, 2, 40);
        let device = Device::flex();
        let burn_model = crate::encoder::weights::build_model(&tensors, &config, &device).unwrap();
        let cpu = CpuModel::from_tensors(tensors, &config).unwrap();
        let seqs: Vec<Vec<u32>> = (1..=33u32).map(|len| (0..len).map(|t| (t * 7 + len) % 19 + 1).collect()).collect();
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let together = cpu.embed(&refs).unwrap();
        for (s, seq) in seqs.iter().enumerate() {
            let len = seq.len();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(seq.iter().map(|&i| i as i32).collect::<Vec<_>>(), [1, len]), &device);
            let mask = Tensor::<2>::ones([1, len], &device);
            let want = crate::encoder::mean_pool_normalized(burn_model.forward(ids, None), mask).into_data().try_to_vec::<f32>().unwrap();
            let alone = cpu.embed(&[seq]).unwrap();
            for (d, w) in want.iter().enumerate() {
                let (a, b) = (alone[d], together[s * 64 + d]);
                assert!((a - w).abs() < 1e-5 && (b - w).abs() < 1e-5, "length {len}, dim {d}: {a} alone, {b} batched, want {w}");
            }
        }
    }

    #[test]
    fn out_of_range_ids_and_overlong_sequences_are_input_errors() {
        let (config, tensors) = tiny();
        let model = CpuModel::from_tensors(tensors, &config).unwrap();
        let err = model.embed(&[&[1, 20]]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Input);
        let long = vec![1u32; 13];
        assert_eq!(model.embed(&[&long]).unwrap_err().kind(), ErrorKind::Input);
    }

    #[test]
    fn a_missing_tensor_is_named() {
        let (config, mut tensors) = tiny();
        tensors.remove("layers.1.output.bias");
        let err = CpuModel::from_tensors(tensors, &config).unwrap_err();
        assert!(err.to_string().contains("layers.1.output.bias"), "{err}");
    }
}

//! A variational autoencoder over a user's items (RecVAE's design: a densely connected
//! encoder with layer norm and swish, a linear decoder, a composite prior, the KL term
//! scaled by the user's item count, encoder and decoder updated in turn). It is the
//! hybrid's non-linear term: the linear models (ALS, EASE) agree on most of what they
//! find, and the autoencoder ranks differently enough that a blend gains from it.
//!
//! [`VaeModel`] is the device's side: plain f32 weights and the fold-in (the encoder's
//! mean for a profile, no sampling), the same code natively and in wasm. [`train`]
//! (publisher only) fits it with burn's autodiff on the Flex backend, deterministic for
//! a seed: every random draw (initial weights, dropout, the reparameterization noise,
//! batch order) comes from one seeded stream on the CPU.

use serde::{Deserialize, Serialize};

use super::linalg::dot;
use super::model::Matrix;
use crate::error::{Error, ErrorKind, Result};

/// Layer norm's epsilon: RecVAE's 0.1, large so short profiles do not blow up the scale.
const NORM_EPS: f32 = 0.1;

/// Most encoder layers a catalog may declare.
pub const MAX_LAYERS: usize = 16;
/// Default encoder width (RecVAE's published setting).
pub const DEFAULT_HIDDEN: usize = 600;
/// Default latent width (RecVAE's published setting).
pub const DEFAULT_LATENT: usize = 200;

/// One encoder layer: dense weights (`hidden x hidden`; none in the first layer, whose
/// rows are per item and ship in the item records), a bias and a layer norm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderLayer {
    /// Weights from the previous layer, `hidden x hidden`; `None` in the first layer.
    pub w: Option<Matrix>,
    /// Bias, `hidden`.
    pub b: Vec<f32>,
    /// Layer norm scale, `hidden`.
    pub gain: Vec<f32>,
    /// Layer norm shift, `hidden`.
    pub shift: Vec<f32>,
}

/// The encoder without its first layer's item rows: what the catalog's params carry
/// once (the rows, like the decoder's, are per item in the records).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaeEncoder {
    /// Width of every encoder layer.
    pub hidden: usize,
    /// Latent width.
    pub latent: usize,
    /// The layers, the first without weights.
    pub layers: Vec<EncoderLayer>,
    /// Latent mean head, `hidden x latent`.
    pub mu_w: Matrix,
    /// Latent mean bias, `latent`.
    pub mu_b: Vec<f32>,
}

/// The trained autoencoder: the shared encoder, its first layer's row per item and the
/// linear decoder's column per item.
#[derive(Clone, Debug, PartialEq)]
pub struct VaeModel {
    /// Number of items (the encoder's input and the decoder's output width).
    pub items: usize,
    /// The encoder past its first layer's rows.
    pub encoder: VaeEncoder,
    /// The first layer's weights, `items x hidden` (item `i`'s row).
    pub first_w: Vec<f32>,
    /// Decoder, stored per item: `items x latent` (item `i`'s column of the decoder).
    pub dec_w: Vec<f32>,
    /// Decoder bias per item.
    pub dec_b: Vec<f32>,
}

fn swish(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

fn layer_norm(z: &mut [f32], gain: &[f32], shift: &[f32]) {
    let n = z.len().max(1) as f32;
    let mean = z.iter().sum::<f32>() / n;
    let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let scale = 1.0 / (var + NORM_EPS).sqrt();
    for ((v, g), s) in z.iter_mut().zip(gain).zip(shift) {
        *v = (*v - mean) * scale * g + s;
    }
}

/// `out[j] += sum_i x[i] w[i, j]` for a row-major `x.len() x out.len()` matrix.
fn accumulate(x: &[f32], w: &[f32], out: &mut [f32]) {
    let width = out.len();
    for (xi, row) in x.iter().zip(w.chunks_exact(width)) {
        if *xi != 0.0 {
            for (o, r) in out.iter_mut().zip(row) {
                *o += xi * r;
            }
        }
    }
}

impl VaeEncoder {
    /// Item record columns the autoencoder takes: the first layer's row, the decoder's
    /// column and its bias.
    pub fn record_dims(&self) -> usize {
        self.hidden.saturating_add(self.latent).saturating_add(1)
    }

    /// Checks every size and value; the message says what is wrong.
    pub fn check(&self) -> std::result::Result<(), String> {
        let (h, l) = (self.hidden, self.latent);
        if h == 0 || l == 0 || h > crate::catalog::shard::MAX_FACTOR_DIMS || l > crate::catalog::shard::MAX_FACTOR_DIMS {
            return Err(format!("widths {h} and {l} must be from 1 to {}", crate::catalog::shard::MAX_FACTOR_DIMS));
        }
        if self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
            return Err(format!("{} layers, not 1 to {MAX_LAYERS}", self.layers.len()));
        }
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        for (i, layer) in self.layers.iter().enumerate() {
            let w_ok = match (&layer.w, i) {
                (None, 0) => true,
                (Some(w), i) if i > 0 => w.rows == h && w.cols == h,
                _ => false,
            };
            let sized = layer.b.len() == h && layer.gain.len() == h && layer.shift.len() == h;
            if !w_ok || !sized || ![&layer.b, &layer.gain, &layer.shift].iter().all(|v| finite(v)) {
                return Err(format!("layer {i} has the wrong size or a non-finite value"));
            }
        }
        if self.mu_w.rows != h || self.mu_w.cols != l || self.mu_b.len() != l || !finite(&self.mu_b) {
            return Err("the latent head has the wrong size or a non-finite value".into());
        }
        Ok(())
    }

    /// The encoder's latent mean for a profile given by its items' first-layer rows
    /// (`hidden` each, distinct items): the binary profile scaled to unit length, as in
    /// training, so the first layer is their sum over the square root of their count.
    pub fn latent(&self, rows: &[&[f32]]) -> Vec<f32> {
        let Some(first) = self.layers.first() else { return vec![0.0; self.latent] };
        let mut z = first.b.clone();
        if !rows.is_empty() {
            let scale = 1.0 / (rows.len() as f32).sqrt();
            for row in rows {
                for (o, w) in z.iter_mut().zip(row.iter()) {
                    *o += scale * w;
                }
            }
        }
        layer_norm(&mut z, &first.gain, &first.shift);
        z.iter_mut().for_each(|v| *v = swish(*v));
        let mut outputs: Vec<Vec<f32>> = vec![z];
        for layer in &self.layers[1..] {
            let mut z = layer.b.clone();
            if let (Some(last), Some(w)) = (outputs.last(), &layer.w) {
                accumulate(last, &w.data, &mut z);
            }
            for earlier in &outputs {
                for (o, e) in z.iter_mut().zip(earlier) {
                    *o += e;
                }
            }
            layer_norm(&mut z, &layer.gain, &layer.shift);
            z.iter_mut().for_each(|v| *v = swish(*v));
            outputs.push(z);
        }
        let mut mu = self.mu_b.clone();
        if let Some(last) = outputs.last() {
            accumulate(last, &self.mu_w.data, &mut mu);
        }
        mu
    }
}

impl VaeModel {
    /// Checks that every array has the size the widths say.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::new(ErrorKind::Input, format!("autoencoder: {what}")));
        if let Err(e) = self.encoder.check() {
            return bad(e);
        }
        let (m, h, l) = (self.items, self.encoder.hidden, self.encoder.latent);
        if Some(self.first_w.len()) != m.checked_mul(h) {
            return bad("the first layer has the wrong size".into());
        }
        if Some(self.dec_w.len()) != m.checked_mul(l) || self.dec_b.len() != m {
            return bad("the decoder has the wrong size".into());
        }
        Ok(())
    }

    /// Item `i`'s record columns: its first-layer row, decoder column and decoder bias.
    pub fn record(&self, i: usize) -> impl Iterator<Item = f32> + '_ {
        let (h, l) = (self.encoder.hidden, self.encoder.latent);
        self.first_w[i * h..(i + 1) * h].iter().chain(&self.dec_w[i * l..(i + 1) * l]).copied().chain([self.dec_b[i]])
    }

    /// The encoder's latent mean for a profile of distinct item positions.
    pub fn fold_in(&self, items: &[u32]) -> Vec<f32> {
        let h = self.encoder.hidden;
        let rows: Vec<&[f32]> =
            items.iter().map(|&i| i as usize).filter(|&i| i < self.items).map(|i| &self.first_w[i * h..(i + 1) * h]).collect();
        self.encoder.latent(&rows)
    }

    /// Decoder logits of every item for a latent vector.
    pub fn scores(&self, latent: &[f32]) -> Vec<f32> {
        self.dec_w.chunks_exact(self.encoder.latent).zip(&self.dec_b).map(|(col, b)| dot(col, latent) + b).collect()
    }
}

#[cfg(feature = "publish")]
pub use fitting::{VaeConfig, train};

#[cfg(feature = "publish")]
mod fitting {
    use burn::prelude::*;
    use burn::tensor::activation::{log_softmax, sigmoid};

    use super::super::als::SplitMix;
    use super::super::sparse::Csr;
    use super::super::model::Matrix;
    use super::{EncoderLayer, NORM_EPS, VaeEncoder, VaeModel};
    use crate::error::{Error, ErrorKind, Result};

    /// Training settings (RecVAE's published defaults, except the epochs, which the
    /// caller's validation decides).
    #[derive(Clone, Debug, PartialEq)]
    pub struct VaeConfig {
        /// Hidden width of the encoder.
        pub hidden: usize,
        /// Latent width.
        pub latent: usize,
        /// Encoder layers.
        pub layers: usize,
        /// KL weight per item of the user.
        pub gamma: f32,
        /// Adam's step size.
        pub learning_rate: f32,
        /// Input dropout while training the encoder.
        pub dropout: f32,
        /// Most epochs; the caller may stop earlier.
        pub epochs: usize,
        /// Encoder passes per decoder pass.
        pub encoder_passes: usize,
        /// Users per batch.
        pub batch: usize,
        /// Seed of every random draw.
        pub seed: u64,
    }

    impl Default for VaeConfig {
        fn default() -> Self {
            VaeConfig {
                hidden: super::DEFAULT_HIDDEN,
                latent: super::DEFAULT_LATENT,
                layers: 5,
                gamma: 0.005,
                learning_rate: 5e-4,
                dropout: 0.5,
                epochs: 100,
                encoder_passes: 3,
                batch: 500,
                seed: 42,
            }
        }
    }

    /// Adam's state for one parameter tensor.
    struct Param {
        value: Tensor<2>,
        m: Tensor<2>,
        v: Tensor<2>,
    }

    impl Param {
        fn new(data: Vec<f32>, shape: [usize; 2], device: &Device) -> Param {
            let value = Tensor::<2>::from_data(TensorData::new(data, shape), device);
            Param { m: value.zeros_like(), v: value.zeros_like(), value }
        }

        fn leaf(&self) -> Tensor<2> {
            self.value.clone().autodiff().require_grad()
        }

        fn step(&mut self, grad: Tensor<2>, lr: f32, t: i32) {
            let (b1, b2) = (0.9f32, 0.999f32);
            self.m = self.m.clone().mul_scalar(b1).add(grad.clone().mul_scalar(1.0 - b1));
            self.v = self.v.clone().mul_scalar(b2).add(grad.clone().mul(grad).mul_scalar(1.0 - b2));
            let mhat = self.m.clone().div_scalar(1.0 - b1.powi(t));
            let vhat = self.v.clone().div_scalar(1.0 - b2.powi(t));
            self.value = self.value.clone().sub(mhat.div(vhat.sqrt().add_scalar(1e-8)).mul_scalar(lr));
        }

        fn to_vec(&self) -> Result<Vec<f32>> {
            self.value
                .to_data()
                .try_to_vec::<f32>()
                .map_err(|e| Error::new(ErrorKind::Input, format!("autoencoder weights could not be read: {e:?}")))
        }
    }

    /// The first layer's weights (`items x hidden`) on the host: a user's row is sparse,
    /// so its product and its gradient are sums over the user's items (a dense product
    /// over every item was half of an epoch's work on ML-1M), with Adam's state beside.
    struct FirstLayer {
        w: Vec<f32>,
        m: Vec<f32>,
        v: Vec<f32>,
        /// The gradient, kept between steps (`items x hidden`, like `w`).
        g: Vec<f32>,
        hidden: usize,
    }

    impl FirstLayer {
        /// `rows x hidden`: each sparse row (`(item, value)` pairs) times `w`.
        fn product(w: &[f32], hidden: usize, rows: &[Vec<(usize, f32)>]) -> Vec<f32> {
            let mut out = vec![0.0f32; rows.len() * hidden];
            for (dst, row) in out.chunks_exact_mut(hidden).zip(rows) {
                for &(c, value) in row {
                    dst.iter_mut().zip(&w[c * hidden..(c + 1) * hidden]).for_each(|(d, w)| *d += value * w);
                }
            }
            out
        }

        /// One Adam step from the product's gradient `grad` (`rows x hidden`).
        fn step(&mut self, rows: &[Vec<(usize, f32)>], grad: &[f32], lr: f32, t: i32) {
            let h = self.hidden;
            let g = &mut self.g;
            g.fill(0.0);
            for (gr, row) in grad.chunks_exact(h).zip(rows) {
                for &(c, value) in row {
                    g[c * h..(c + 1) * h].iter_mut().zip(gr).for_each(|(d, x)| *d += value * x);
                }
            }
            let (b1, b2) = (0.9f32, 0.999f32);
            let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
            for (((w, m), v), &g) in self.w.iter_mut().zip(&mut self.m).zip(&mut self.v).zip(g.iter()) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *w -= lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
            }
        }
    }

    /// The encoder's tensors past the first layer's weights, in the order: the first
    /// layer's `b, gain, shift`, each further layer's `w, b, gain, shift`, then `mu_w,
    /// mu_b, lv_w, lv_b`; so layer `i`'s bias is at `4i` and its weights at `4i - 1`.
    struct Net {
        first: FirstLayer,
        enc: Vec<Param>,
        dec_w: Param,
        dec_b: Param,
    }

    impl Net {
        /// Encoder layers.
        fn layers(&self) -> usize {
            (self.enc.len() + 1) / 4 - 1
        }
    }

    fn glorot(rng: &mut SplitMix, rows: usize, cols: usize) -> Vec<f32> {
        let s = (2.0 / (rows + cols) as f64).sqrt();
        (0..rows * cols).map(|_| (rng.normal() * s) as f32).collect()
    }

    fn swish(x: Tensor<2>) -> Tensor<2> {
        x.clone().mul(sigmoid(x))
    }

    fn layer_norm(z: Tensor<2>, gain: Tensor<2>, shift: Tensor<2>) -> Tensor<2> {
        let (var, mean) = z.clone().var_mean_bias(1);
        z.sub(mean).div(var.add_scalar(NORM_EPS).sqrt()).mul(gain).add(shift)
    }

    /// The encoder's mean and log-variance for a batch whose (normalized, maybe dropped)
    /// rows times the first layer's weights are `first`.
    fn encode(p: &[Tensor<2>], layers: usize, first: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let mut outs: Vec<Tensor<2>> = Vec::with_capacity(layers);
        let mut h = first.clone();
        for i in 0..layers {
            let mut z = if i == 0 { first.clone() } else { h.matmul(p[4 * i - 1].clone()) }.add(p[4 * i].clone());
            for o in &outs {
                z = z.add(o.clone());
            }
            h = swish(layer_norm(z, p[4 * i + 1].clone(), p[4 * i + 2].clone()));
            outs.push(h.clone());
        }
        let base = 4 * layers - 1;
        let mu = h.clone().matmul(p[base].clone()).add(p[base + 1].clone());
        let lv = h.matmul(p[base + 2].clone()).add(p[base + 3].clone());
        (mu, lv)
    }

    /// The trainer's encoder mean for a model's weights (the test of the device's
    /// [`VaeModel::fold_in`] against it).
    #[cfg(test)]
    pub(super) fn encode_mean(model: &VaeModel, profile: &[u32], device: &Device) -> Vec<f32> {
        let t = |v: &[f32], shape: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), shape), device);
        let (m, e) = (model.items, &model.encoder);
        let (h, l) = (e.hidden, e.latent);
        let mut p = Vec::new();
        for layer in &e.layers {
            if let Some(w) = &layer.w {
                p.push(t(&w.data, [h, h]));
            }
            p.extend([t(&layer.b, [1, h]), t(&layer.gain, [1, h]), t(&layer.shift, [1, h])]);
        }
        p.extend([t(&e.mu_w.data, [h, l]), t(&e.mu_b, [1, l]), t(&e.mu_w.data, [h, l]), t(&e.mu_b, [1, l])]);
        let mut x = vec![0.0f32; m];
        profile.iter().for_each(|&i| x[i as usize] = 1.0 / (profile.len() as f32).sqrt());
        let first = t(&x, [1, m]).matmul(t(&model.first_w, [m, h]));
        encode(&p, e.layers.len(), first).0.into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    fn log_normal(z: Tensor<2>, mu: Tensor<2>, lv: Tensor<2>) -> Tensor<2> {
        let d = z.sub(mu);
        lv.clone().add(d.clone().mul(d).div(lv.exp())).add_scalar((2.0 * std::f32::consts::PI).ln()).mul_scalar(-0.5)
    }

    /// RecVAE's composite prior: a standard normal, the previous encoder's posterior and
    /// a wide normal, weighted 3/20, 3/4 and 1/10.
    fn log_prior(z: Tensor<2>, mu_old: Tensor<2>, lv_old: Tensor<2>) -> Tensor<2> {
        let zeros = z.zeros_like();
        let a = log_normal(z.clone(), zeros.clone(), zeros.clone()).add_scalar((3.0f32 / 20.0).ln());
        let b = log_normal(z.clone(), mu_old, lv_old).add_scalar((3.0f32 / 4.0).ln());
        let c = log_normal(z, zeros.clone(), zeros.add_scalar(10.0)).add_scalar((1.0f32 / 10.0).ln());
        let m = a.clone().max_pair(b.clone()).max_pair(c.clone());
        let s = a.sub(m.clone()).exp().add(b.sub(m.clone()).exp()).add(c.sub(m.clone()).exp());
        m.add(s.log())
    }

    /// Fits the autoencoder to `x` (users x items, binary) and returns the last epoch's
    /// model. `on_epoch(epoch, model)` is called after each epoch and returns whether to
    /// go on; training stops after `config.epochs` or when it returns false.
    pub fn train(x: &Csr, config: &VaeConfig, device: &Device, mut on_epoch: impl FnMut(usize, &VaeModel) -> Result<bool>) -> Result<VaeModel> {
        let (n, m, h, l) = (x.rows, x.cols, config.hidden, config.latent);
        if n == 0 || m == 0 || h == 0 || l == 0 || config.layers == 0 || config.batch == 0 || config.epochs == 0 {
            return Err(Error::new(ErrorKind::Input, "the autoencoder needs users, items, non-zero widths and an epoch"));
        }
        let mut rng = SplitMix(config.seed);
        let mut enc = Vec::new();
        let mut first = None;
        for i in 0..config.layers {
            let inputs = if i == 0 { m } else { h };
            let w = glorot(&mut rng, inputs, h);
            if i == 0 {
                first = Some(FirstLayer { m: vec![0.0; w.len()], v: vec![0.0; w.len()], g: vec![0.0; w.len()], w, hidden: h });
            } else {
                enc.push(Param::new(w, [inputs, h], device));
            }
            enc.push(Param::new(vec![0.0; h], [1, h], device));
            enc.push(Param::new(vec![1.0; h], [1, h], device));
            enc.push(Param::new(vec![0.0; h], [1, h], device));
        }
        enc.push(Param::new(glorot(&mut rng, h, l), [h, l], device));
        enc.push(Param::new(vec![0.0; l], [1, l], device));
        enc.push(Param::new(glorot(&mut rng, h, l), [h, l], device));
        enc.push(Param::new(vec![0.0; l], [1, l], device));
        let first = first.ok_or_else(|| Error::new(ErrorKind::Input, "the autoencoder needs a layer"))?;
        let mut net = Net {
            first,
            enc,
            dec_w: Param::new(glorot(&mut rng, l, m), [l, m], device),
            dec_b: Param::new(vec![0.0; m], [1, m], device),
        };
        let mut old: Vec<Tensor<2>> = net.enc.iter().map(|p| p.value.clone()).collect();
        let mut old_first = net.first.w.clone();
        let rows_tensor = |data: Vec<f32>, rows: usize| Tensor::<2>::from_data(TensorData::new(data, [rows, h]), device);
        let (mut t_enc, mut t_dec) = (0i32, 0i32);
        let mut last = None;
        let keep = 1.0 - config.dropout;
        for epoch in 0..config.epochs {
            for pass in 0..=config.encoder_passes {
                let decoder_pass = pass == config.encoder_passes;
                let mut order: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                    order.swap(i, j);
                }
                for chunk in order.chunks(config.batch) {
                    let b = chunk.len();
                    // `raw` is the binary rows (the likelihood's target), `normalized` the
                    // unit-length input as sparse rows, `input` what the encoder reads: in an
                    // encoder pass `normalized` with dropout (kept entries scaled up), else
                    // `normalized`.
                    let mut raw = vec![0.0f32; b * m];
                    let mut normalized: Vec<Vec<(usize, f32)>> = Vec::with_capacity(b);
                    let mut counts = vec![0.0f32; b];
                    for (r, &u) in chunk.iter().enumerate() {
                        let (lo, hi) = (x.indptr[u], x.indptr[u + 1]);
                        counts[r] = (hi - lo) as f32;
                        let norm = 1.0 / ((hi - lo).max(1) as f32).sqrt();
                        for &c in &x.indices[lo..hi] {
                            raw[r * m + c as usize] = 1.0;
                        }
                        normalized.push(x.indices[lo..hi].iter().map(|&c| (c as usize, norm)).collect());
                    }
                    let (input, undropped) = if decoder_pass {
                        (normalized, None)
                    } else {
                        let dropped = normalized
                            .iter()
                            .map(|row| row.iter().filter(|_| rng.uniform() < f64::from(keep)).map(|&(c, v)| (c, v / keep)).collect())
                            .collect();
                        (dropped, Some(normalized))
                    };
                    let noise: Vec<f32> = (0..b * l).map(|_| rng.normal() as f32).collect();
                    let raw = Tensor::<2>::from_data(TensorData::new(raw, [b, m]), device);
                    let noise = Tensor::<2>::from_data(TensorData::new(noise, [b, l]), device);
                    if let Some(undropped) = undropped {
                        let old_in = rows_tensor(FirstLayer::product(&old_first, h, &undropped), b);
                        let (mu_old, lv_old) = encode(&old, net.layers(), old_in);
                        let leaves: Vec<Tensor<2>> = net.enc.iter().map(Param::leaf).collect();
                        let first = rows_tensor(FirstLayer::product(&net.first.w, h, &input), b).autodiff().require_grad();
                        let (mu, lv) = encode(&leaves, net.layers(), first.clone());
                        let z = mu.clone().add(lv.clone().mul_scalar(0.5).exp().mul(noise));
                        let logits = z.clone().matmul(net.dec_w.value.clone()).add(net.dec_b.value.clone());
                        let ll = log_softmax(logits, 1).mul(raw).sum_dim(1);
                        let kl = log_normal(z.clone(), mu, lv).sub(log_prior(z, mu_old, lv_old)).sum_dim(1);
                        let beta = Tensor::<2>::from_data(TensorData::new(counts.iter().map(|c| c * config.gamma).collect(), [b, 1]), device);
                        let loss = ll.sub(kl.mul(beta)).mean().neg();
                        let grads = loss.backward();
                        t_enc += 1;
                        for (p, leaf) in net.enc.iter_mut().zip(&leaves) {
                            let g = leaf.grad(&grads).ok_or_else(|| missing("encoder weights"))?;
                            p.step(g, config.learning_rate, t_enc);
                        }
                        let g = first.grad(&grads).ok_or_else(|| missing("first layer"))?;
                        let g = g.into_data().try_to_vec::<f32>().map_err(|e| Error::new(ErrorKind::Input, format!("autoencoder gradient could not be read: {e:?}")))?;
                        net.first.step(&input, &g, config.learning_rate, t_enc);
                    } else {
                        let consts: Vec<Tensor<2>> = net.enc.iter().map(|p| p.value.clone()).collect();
                        let (mu, lv) = encode(&consts, net.layers(), rows_tensor(FirstLayer::product(&net.first.w, h, &input), b));
                        let z = mu.add(lv.mul_scalar(0.5).exp().mul(noise));
                        let (w, bias) = (net.dec_w.leaf(), net.dec_b.leaf());
                        let ll = log_softmax(z.autodiff().matmul(w.clone()).add(bias.clone()), 1).mul(raw).sum_dim(1);
                        let loss = ll.mean().neg();
                        let grads = loss.backward();
                        t_dec += 1;
                        let gw = w.grad(&grads).ok_or_else(|| missing("decoder weights"))?;
                        let gb = bias.grad(&grads).ok_or_else(|| missing("decoder bias"))?;
                        net.dec_w.step(gw, config.learning_rate, t_dec);
                        net.dec_b.step(gb, config.learning_rate, t_dec);
                    }
                }
                if pass + 1 == config.encoder_passes {
                    old = net.enc.iter().map(|p| p.value.clone()).collect();
                    old_first.clone_from(&net.first.w);
                }
            }
            let model = snapshot(&net, m, h, l)?;
            let go_on = on_epoch(epoch, &model)?;
            last = Some(model);
            if !go_on {
                break;
            }
        }
        last.ok_or_else(|| Error::new(ErrorKind::Input, "the autoencoder trained no epoch"))
    }

    fn missing(what: &str) -> Error {
        Error::new(ErrorKind::Input, format!("autoencoder training lost the gradient of its {what}"))
    }

    fn snapshot(net: &Net, m: usize, h: usize, l: usize) -> Result<VaeModel> {
        let mut layers = Vec::with_capacity(net.layers());
        for i in 0..net.layers() {
            let w = if i == 0 { None } else { Some(Matrix { rows: h, cols: h, data: net.enc[4 * i - 1].to_vec()? }) };
            layers.push(EncoderLayer {
                w,
                b: net.enc[4 * i].to_vec()?,
                gain: net.enc[4 * i + 1].to_vec()?,
                shift: net.enc[4 * i + 2].to_vec()?,
            });
        }
        let base = 4 * net.layers() - 1;
        // The decoder is trained latent x items; the device reads it per item.
        let dec = net.dec_w.to_vec()?;
        let mut dec_w = vec![0.0f32; m * l];
        for k in 0..l {
            for i in 0..m {
                dec_w[i * l + k] = dec[k * m + i];
            }
        }
        let encoder = VaeEncoder {
            hidden: h,
            latent: l,
            layers,
            mu_w: Matrix { rows: h, cols: l, data: net.enc[base].to_vec()? },
            mu_b: net.enc[base + 1].to_vec()?,
        };
        let model = VaeModel { items: m, encoder, first_w: net.first.w.clone(), dec_w, dec_b: net.dec_b.to_vec()? };
        model.validate()?;
        Ok(model)
    }
}

#[cfg(all(test, feature = "publish"))]
mod tests {
    use burn::prelude::*;

    use super::*;
    use crate::scorer::sparse::Csr;

    /// Two tastes over 12 items: users of the first like items 0..6, of the second 6..12,
    /// each user a different subset of 4.
    fn two_tastes() -> Csr {
        let mut t = Vec::new();
        for u in 0..40u32 {
            let base = if u % 2 == 0 { 0 } else { 6 };
            for k in 0..4 {
                t.push((u, base + (u / 2 + k * 5) % 6, 1.0));
            }
        }
        Csr::from_triplets(40, 12, &t).unwrap()
    }

    fn small(seed: u64, epochs: usize) -> VaeConfig {
        VaeConfig { hidden: 16, latent: 4, layers: 2, epochs, batch: 16, seed, learning_rate: 1e-2, ..Default::default() }
    }

    fn fit(x: &Csr, config: &VaeConfig) -> VaeModel {
        train(x, config, &Device::flex(), |_, _| Ok(true)).unwrap()
    }

    #[test]
    fn training_is_deterministic_for_a_seed() {
        let x = two_tastes();
        let a = fit(&x, &small(7, 2));
        assert_eq!(a, fit(&x, &small(7, 2)));
        assert_ne!(a, fit(&x, &small(8, 2)));
    }

    #[test]
    fn a_profile_ranks_the_items_of_its_own_taste_first() {
        let x = two_tastes();
        let model = fit(&x, &small(1, 60));
        for (profile, own) in [(vec![0u32, 1], 0..6u32), (vec![7u32, 8], 6..12u32)] {
            let scores = model.scores(&model.fold_in(&profile));
            let worst_own = own.clone().filter(|i| !profile.contains(i)).map(|i| scores[i as usize]).fold(f32::INFINITY, f32::min);
            let best_other = (0..12u32).filter(|i| !own.contains(i)).map(|i| scores[i as usize]).fold(f32::NEG_INFINITY, f32::max);
            assert!(worst_own > best_other, "profile {profile:?}: {scores:?}");
        }
    }

    #[test]
    fn the_devices_fold_in_is_the_trainers_encoder_mean() {
        let model = fit(&two_tastes(), &small(3, 3));
        for profile in [vec![0u32], vec![2, 3, 9], (0..12).collect()] {
            let device = model.fold_in(&profile);
            let trainer = super::fitting::encode_mean(&model, &profile, &Device::flex());
            assert_eq!(device.len(), trainer.len());
            for (a, b) in device.iter().zip(&trainer) {
                assert!((a - b).abs() < 1e-4, "{profile:?}: {device:?} against {trainer:?}");
            }
        }
    }

    #[test]
    fn the_scorers_autoencoder_term_is_the_models_own_logits_for_the_liked_items() {
        use crate::scorer::model::{Blend, ItemSide, ScorerParams};
        use crate::scorer::profile::{Event, user_query};
        use crate::scorer::rank::{RankOptions, Scorer};
        let model = fit(&two_tastes(), &small(2, 20));
        let m = model.items;
        let factors: Vec<f32> = (0..m).flat_map(|i| model.record(i)).collect();
        let only = Blend { collaborative: 0.0, item_item: 0.0, semantic: 0.0, popularity: 0.0, scenario: 0.0, vae: 1.0, interest: 0.0 };
        let params = ScorerParams { vae: Some(model.encoder.clone()), blend: only, ..ScorerParams::untuned(0, 0, 1.0, 1.0, Vec::new()) };
        let text: Vec<f32> = (0..m).flat_map(|i| [1.0, i as f32]).collect();
        let items = ItemSide::new(model.encoder.record_dims(), factors, vec![0.0; m], 2, &text);
        let scorer = Scorer::new(items, Some(params), &Device::flex()).unwrap();
        // Two likes (one twice, one a view) and a dislike: the profile is the two liked items.
        let ev = |item: u32, weight: f32| Event { item, weight, age_days: 0.0 };
        let events = [ev(7, 1.0), ev(9, 0.3), ev(7, 1.0), ev(2, -1.0)];
        let query = user_query(scorer.items(), scorer.params(), &events, &[]).unwrap();
        let terms = scorer.terms(&[&query]).unwrap().remove(0);
        let want = model.scores(&model.fold_in(&[7, 9]));
        for (got, want) in terms.vae.iter().zip(&want) {
            assert!((got - want).abs() < 1e-4, "{:?} against {want:?}", terms.vae);
        }
        let ranked = scorer.rank(&query, &terms, &RankOptions { k: 3, exclude: vec![7, 9, 2], ..Default::default() }).unwrap();
        let mut order: Vec<u32> = (0..m as u32).filter(|i| ![7, 9, 2].contains(i)).collect();
        order.sort_by(|&a, &b| want[b as usize].total_cmp(&want[a as usize]));
        assert_eq!(ranked.iter().map(|r| r.index).collect::<Vec<_>>(), order[..3]);
        assert!(order[..3].iter().all(|&i| i >= 6), "the liked items' taste comes first: {order:?}");
    }

    #[test]
    fn stopping_early_ends_training() {
        let mut seen = 0;
        train(&two_tastes(), &small(1, 10), &Device::flex(), |epoch, _| {
            seen += 1;
            Ok(epoch < 2)
        })
        .unwrap();
        assert_eq!(seen, 3);
    }

    #[test]
    fn a_model_with_a_wrong_size_is_refused() {
        let mut model = fit(&two_tastes(), &small(1, 1));
        model.validate().unwrap();
        model.dec_b.pop();
        assert!(model.validate().is_err());
        let mut model = fit(&two_tastes(), &small(1, 1));
        model.encoder.layers[1].gain[0] = f32::INFINITY;
        assert!(model.validate().unwrap_err().to_string().contains("layer 1"));
    }

    #[test]
    fn an_empty_log_is_refused() {
        let x = Csr::from_triplets(0, 4, &[]).unwrap();
        assert!(train(&x, &small(1, 1), &Device::flex(), |_, _| Ok(true)).is_err());
    }
}

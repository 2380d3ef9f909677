//! Synthetic catalogs for the scorer's benchmarks (natively `localrec bench-scorer`, in
//! the browser `WasmScorerBench`): the same seeded vectors on both sides, so figures
//! compare.

use super::model::{Blend, ItemSide, ScorerParams, normalize};
use super::profile::Event;

/// A seeded linear congruential stream in `[-0.5, 0.5)`.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }
}

/// `n` items with `k` ALS factors, item-item rank `r`, `d`-dim unit embeddings, random
/// biases, and params whose Gram matrix matches the factors.
pub fn synthetic(n: usize, k: usize, r: usize, d: usize) -> (ItemSide, ScorerParams) {
    let mut rng = Lcg(7);
    let record = k + 2 * r;
    let factors: Vec<f32> = (0..n * record).map(|_| rng.next() * 0.2).collect();
    // Embeddings are drawn and quantized a row at a time (as shards arrive): a million
    // f32 rows would not fit beside everything else in a wasm module.
    let mut side = ItemSide::new(record, Vec::new(), Vec::new(), d, &[]);
    side.embeddings.reserve_exact(n * d);
    side.scales.reserve_exact(n);
    let mut row = vec![0.0f32; d];
    for _ in 0..n {
        row.iter_mut().for_each(|v| *v = rng.next());
        normalize(&mut row);
        let q = crate::catalog::QuantizedRow::quantize(&row);
        side.push_embedding(q.scale, &q.values);
    }
    let bias: Vec<f32> = (0..n).map(|_| rng.next()).collect();
    let mut gram = vec![0.0f32; k * k];
    for row in factors.chunks_exact(record.max(1)) {
        for a in 0..k {
            for b in 0..k {
                gram[a * k + b] += row[a] * row[b];
            }
        }
    }
    let params = ScorerParams {
        blend: Blend { collaborative: 1.0, item_item: 0.5, semantic: 0.2, popularity: 0.05, scenario: 0.0, vae: 0.0, interest: crate::scorer::model::INTEREST_WEIGHT },
        ..ScorerParams::untuned(k, r, 100.0, 10.0, gram)
    };
    side.len = n;
    side.factors = factors;
    side.bias = bias;
    (side, params)
}

/// [`synthetic`]'s catalog with an autoencoder of `layers` encoder layers, `hidden` and
/// `latent` wide: random first-layer rows, decoder columns and biases appended to each
/// record, random shared weights in the params.
pub fn with_autoencoder(items: ItemSide, params: ScorerParams, hidden: usize, latent: usize, layers: usize) -> (ItemSide, ScorerParams) {
    use super::model::Matrix;
    use super::vae::{EncoderLayer, VaeEncoder};
    let mut rng = Lcg(11);
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next() * 0.2).collect() };
    let extra = hidden + latent + 1;
    let old = items.record_dims;
    let mut factors = Vec::with_capacity(items.len * (old + extra));
    for i in 0..items.len {
        factors.extend_from_slice(items.record(i));
        factors.extend(draw(extra));
    }
    let layer = |w: Option<Matrix>, draw: &mut dyn FnMut(usize) -> Vec<f32>| EncoderLayer { w, b: draw(hidden), gain: vec![1.0; hidden], shift: draw(hidden) };
    let mut encoder_layers = vec![layer(None, &mut draw)];
    for _ in 1..layers.max(1) {
        let w = Matrix { rows: hidden, cols: hidden, data: draw(hidden * hidden) };
        encoder_layers.push(layer(Some(w), &mut draw));
    }
    let vae = VaeEncoder { hidden, latent, layers: encoder_layers, mu_w: Matrix { rows: hidden, cols: latent, data: draw(hidden * latent) }, mu_b: draw(latent) };
    let params = ScorerParams { vae: Some(vae), blend: Blend { vae: 1.0, ..params.blend }, ..params };
    (ItemSide { record_dims: old + extra, factors, ..items }, params)
}

/// `count` like events spread over `n` items.
pub fn synthetic_events(n: usize, count: usize) -> Vec<Event> {
    let step = (n / count.max(1)).max(1);
    (0..count.min(n)).map(|i| Event { item: (i * step) as u32, weight: 1.0, age_days: 0.0 }).collect()
}

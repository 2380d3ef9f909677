//! Weighted implicit ALS (Hu, Koren and Volinsky 2008): confidence `1 + alpha * value`
//! on observed entries, preference 1 there and 0 elsewhere, L2 `reg` on both sides.
//! Training (the `publish` feature; parallel) solves each side with a few warm-started conjugate
//! gradient steps (Takács et al. 2011), which costs `O(nnz k + rows k^2)` per sweep.
//! The user side on the device is the exact solve: see `profile`.
#![cfg_attr(not(feature = "publish"), allow(dead_code))]

#[cfg(feature = "publish")]
use super::linalg::{axpy, dot};
#[cfg(feature = "publish")]
use super::sparse::Csr;
#[cfg(feature = "publish")]
use crate::error::{Error, ErrorKind, Result};

/// ALS settings.
#[derive(Clone, Debug, PartialEq)]
pub struct AlsConfig {
    /// Factor width `k`.
    pub factors: usize,
    /// L2 regularization.
    pub reg: f32,
    /// Confidence scale.
    pub alpha: f32,
    /// Alternating sweeps.
    pub iterations: usize,
    /// Conjugate gradient steps per row and sweep.
    pub cg_steps: usize,
    /// Seed of the initial factors.
    pub seed: u64,
}

impl Default for AlsConfig {
    fn default() -> Self {
        AlsConfig { factors: 64, reg: 100.0, alpha: 10.0, iterations: 15, cg_steps: 3, seed: 42 }
    }
}

/// A seeded splitmix64 stream: reproducible initial factors without a dependency.
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `Y^T Y` of a row-major `rows x k` matrix, in f64.
pub fn gram(y: &[f32], k: usize) -> Vec<f64> {
    let mut g = vec![0.0f64; k * k];
    for row in y.chunks_exact(k) {
        for a in 0..k {
            let x = row[a] as f64;
            for b in 0..=a {
                g[a * k + b] += x * row[b] as f64;
            }
        }
    }
    for a in 0..k {
        for b in 0..a {
            g[b * k + a] = g[a * k + b];
        }
    }
    g
}

/// Trains and returns the item factors, `items x factors` row-major (the user factors
/// are not kept: users are folded in on their own device). `progress` hears each
/// finished sweep. Deterministic for a seed, whatever the thread count.
#[cfg(feature = "publish")]
pub fn train(user_items: &Csr, cfg: &AlsConfig, progress: &mut dyn FnMut(usize)) -> Result<Vec<f32>> {
    let mut state = Als::new(user_items, cfg)?;
    state.run_to(cfg.iterations, progress);
    state.item_factors().map(<[f32]>::to_vec)
}

/// A training run that can stop and go on: the tuner sweeps many settings a few times,
/// then continues the promising ones from where they stopped (a warm start) rather
/// than from new random factors. Sweeping to `n` in steps gives the factors of one run
/// of `n` sweeps.
#[cfg(feature = "publish")]
pub struct Als<'a> {
    user_items: &'a Csr,
    item_users: Csr,
    cfg: AlsConfig,
    users: Vec<f32>,
    items: Vec<f32>,
    done: usize,
}

#[cfg(feature = "publish")]
impl<'a> Als<'a> {
    /// Seeded initial factors for `cfg` (its `iterations` is not used here).
    pub fn new(user_items: &'a Csr, cfg: &AlsConfig) -> Result<Als<'a>> {
        let k = cfg.factors;
        let valid = cfg.reg.is_finite() && cfg.reg > 0.0 && cfg.alpha.is_finite() && cfg.alpha >= 0.0;
        if k == 0 || !valid {
            return Err(Error::new(ErrorKind::Input, "als needs factors >= 1, reg > 0 and a finite alpha >= 0"));
        }
        let mut rng = SplitMix(cfg.seed);
        let mut init = |rows: usize| -> Vec<f32> { (0..rows * k).map(|_| (rng.normal() * 0.01) as f32).collect() };
        let users = init(user_items.rows);
        let items = init(user_items.cols);
        Ok(Als { user_items, item_users: user_items.transpose(), cfg: cfg.clone(), users, items, done: 0 })
    }

    /// Sweeps until `iterations` are done in all (none when they already are).
    pub fn run_to(&mut self, iterations: usize, progress: &mut dyn FnMut(usize)) {
        while self.done < iterations {
            sweep(self.user_items, &self.items, &mut self.users, &self.cfg);
            sweep(&self.item_users, &self.users, &mut self.items, &self.cfg);
            self.done += 1;
            progress(self.done);
        }
    }

    /// Sweeps done so far.
    pub fn iterations(&self) -> usize {
        self.done
    }

    /// The item factors, `items x factors`; refused when training diverged.
    pub fn item_factors(&self) -> Result<&[f32]> {
        if self.items.iter().any(|v| !v.is_finite()) {
            return Err(Error::new(ErrorKind::Input, "als diverged (non-finite factors); try a larger reg"));
        }
        Ok(&self.items)
    }
}

/// One half-sweep: updates every row of `x` against the fixed factors `y`.
#[cfg(feature = "publish")]
fn sweep(m: &Csr, y: &[f32], x: &mut [f32], cfg: &AlsConfig) {
    use rayon::prelude::*;
    let k = cfg.factors;
    let mut yty: Vec<f32> = gram(y, k).into_iter().map(|v| v as f32).collect();
    for i in 0..k {
        yty[i * k + i] += cfg.reg;
    }
    x.par_chunks_mut(k).enumerate().for_each(|(row, xu)| {
        let (idx, val) = m.row(row);
        cg_row(&yty, y, k, idx, val, cfg.alpha, cfg.cg_steps, xu);
    });
}

/// Conjugate gradient on `(Y^T Y + reg I + Y_u^T (C_u - I) Y_u) x = Y_u^T C_u 1`,
/// starting from `x` (`yty` already holds `reg` on its diagonal).
#[cfg(feature = "publish")]
#[allow(clippy::too_many_arguments)]
fn cg_row(yty: &[f32], y: &[f32], k: usize, idx: &[u32], val: &[f32], alpha: f32, steps: usize, x: &mut [f32]) {
    let times_a = |v: &[f32], out: &mut [f32]| {
        for (a, o) in out.iter_mut().enumerate() {
            *o = dot(&yty[a * k..(a + 1) * k], v);
        }
        for (&i, &value) in idx.iter().zip(val) {
            let yi = &y[i as usize * k..(i as usize + 1) * k];
            axpy(alpha * value * dot(yi, v), yi, out);
        }
    };
    let mut r = vec![0.0f32; k];
    times_a(x, &mut r);
    r.iter_mut().for_each(|v| *v = -*v);
    for (&i, &value) in idx.iter().zip(val) {
        axpy(1.0 + alpha * value, &y[i as usize * k..(i as usize + 1) * k], &mut r);
    }
    let mut p = r.clone();
    let mut ap = vec![0.0f32; k];
    let mut rs_old = dot(&r, &r);
    for _ in 0..steps {
        if rs_old < 1e-20 {
            break;
        }
        times_a(&p, &mut ap);
        let step = rs_old / dot(&p, &ap);
        axpy(step, &p, x);
        axpy(-step, &ap, &mut r);
        let rs_new = dot(&r, &r);
        let beta = rs_new / rs_old;
        p.iter_mut().zip(&r).for_each(|(p, r)| *p = r + beta * *p);
        rs_old = rs_new;
    }
}

#[cfg(all(test, feature = "publish"))]
mod tests {
    use super::*;

    /// Two blocks of users and items: users 0..20 like items 0..10, users 20..40 like
    /// items 10..20.
    fn blocks() -> Csr {
        let mut t = Vec::new();
        for u in 0..40u32 {
            let base = if u < 20 { 0 } else { 10 };
            for i in 0..10u32 {
                if (u + i) % 3 != 0 {
                    t.push((u, base + i, 1.0));
                }
            }
        }
        Csr::from_triplets(40, 20, &t).unwrap()
    }

    #[test]
    fn trained_factors_separate_the_two_tastes_and_fold_in_finds_them() {
        let cfg = AlsConfig { factors: 4, reg: 0.1, alpha: 10.0, iterations: 10, ..AlsConfig::default() };
        let q = train(&blocks(), &cfg, &mut |_| {}).unwrap();
        // The exact user solve for a user who liked items 0 and 1.
        let mut m = gram(&q, 4);
        let mut p = vec![0.0f64; 4];
        for i in [0usize, 1] {
            let y = &q[i * 4..(i + 1) * 4];
            for a in 0..4 {
                (0..4).for_each(|b| m[a * 4 + b] += 10.0 * (y[a] * y[b]) as f64);
                p[a] += 11.0 * y[a] as f64;
            }
        }
        (0..4).for_each(|a| m[a * 4 + a] += 0.1);
        crate::scorer::linalg::solve_spd(&mut m, 4, &mut p).unwrap();
        let p: Vec<f32> = p.into_iter().map(|v| v as f32).collect();
        let score = |i: usize| dot(&p, &q[i * 4..(i + 1) * 4]);
        let same: f32 = (2..10).map(score).sum::<f32>() / 8.0;
        let other: f32 = (10..20).map(score).sum::<f32>() / 10.0;
        assert!(same > other + 0.3, "same block {same} vs other block {other}");
    }

    #[test]
    fn training_is_reproducible_for_a_seed_and_a_warm_start_continues_the_same_run() {
        let cfg = AlsConfig { factors: 3, iterations: 3, ..AlsConfig::default() };
        let once = train(&blocks(), &cfg, &mut |_| {}).unwrap();
        assert_eq!(once, train(&blocks(), &cfg, &mut |_| {}).unwrap());
        let m = blocks();
        let mut steps = Als::new(&m, &cfg).unwrap();
        steps.run_to(1, &mut |_| {});
        assert_ne!(steps.item_factors().unwrap(), once.as_slice());
        steps.run_to(3, &mut |_| {});
        assert_eq!(steps.iterations(), 3);
        assert_eq!(steps.item_factors().unwrap(), once.as_slice());
    }
}

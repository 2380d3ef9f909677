//! Chooses a catalog's hyper-parameters on held-out users of the publisher's own log
//! (native only): the ALS regularization, confidence scale and factor count, the EASE
//! item-item model's regularization and its rank, so that no constant picked on one
//! dataset ships to another. `localrec build`, `train` and `eval` all call [`tune`] on
//! their held-out users, then train the catalog with what it chose and tune the blend.
//!
//! The search is coarse-to-fine with successive halving, in a fixed order:
//! 1. ALS: a coarse log grid of `reg x alpha` at a small width and a few sweeps, then
//!    the neighbours of the best at half a decade (twice, if the best moved); the best few go on (warm started, from
//!    where they stopped) to the full sweep count; then the wider factor counts the
//!    device budget allows, at the chosen `reg` and `alpha`.
//! 2. Item-item: EASE's lambda walked a decade at a time from 100 towards the better side
//!    until accuracy drops, then refined by half a decade, over the 2,000 most interacted
//!    items (one item gram matrix for every lambda). Each lambda is scored compressed to
//!    the rank the catalog ships (the largest the device budget leaves beside the ALS
//!    factors), which chooses it, and at full rank (`x^T B`), whose best is reported as
//!    the tuned EASE reference.
//! 3. The record layout: each ALS width tried in full, with the item-item rank the budget
//!    leaves beside it and with half that, scored as the hybrid (its blend tuned); the
//!    best is shipped.
//! 4. The autoencoder ([`super::vae`]), when the device budget holds its columns beside
//!    the linear models' [`LINEAR_RECORD_DIMS`] (they are set aside before step 1): trained
//!    epoch by epoch, each scored alone on the held-out users, stopped [`VAE_PATIENCE`]
//!    epochs past its best (or by the budget); the best epoch's model is kept. Whether it
//!    ships is the blend's choice: a weight of 0 on held-out users leaves it out.
//!
//! Each trial is scored by the validation accuracy the blends are tuned on (Recall@20 +
//! NDCG@20), with the scorer and ranking code the browser runs. The time budget is wall
//! time: a trial whose estimated cost (from the last trial of its kind) would pass it is
//! skipped, and the report says so (`complete: false`). The trial order and every choice
//! are deterministic for a seed, so within the budget two runs choose the same values.

use std::time::{Duration, Instant};

use burn::prelude::Device;

use super::als::{Als, AlsConfig};
use super::cold::ColdTuning;
use super::ease;
use super::linalg::{axpy, dot};
use super::metrics::{MetricSums, top_k};
use super::model::{Blend, ItemSide, ScorerParams};
use super::rank::Scorer;
use super::sparse::Csr;
use super::evaluate::{EvalUser, accuracy, evaluate};
use super::train::{Reuse, TrainConfig, TrainProgress, covered_items, restrict_columns, tune_blend};
pub use super::trial::{Setting, Trial};
use super::vae::{self, VaeConfig, VaeModel};
use crate::error::{Error, ErrorKind, Result};

/// Coarse ALS regularizations (a decade apart; the fine step is half a decade).
pub const ALS_REG_COARSE: [f32; 4] = [1.0, 10.0, 100.0, 1000.0];
/// Coarse ALS confidence scales (a factor 4 apart; the fine step is a factor 2).
pub const ALS_ALPHA_COARSE: [f32; 3] = [1.0, 4.0, 16.0];
/// ALS factor counts tried once `reg` and `alpha` are chosen (those the budget allows).
pub const FACTOR_CHOICES: [usize; 3] = [64, 128, 256];
/// Width of the coarse ALS trials.
pub const COARSE_FACTORS: usize = 64;
/// Sweeps of the coarse ALS trials.
pub const COARSE_ITERATIONS: usize = 5;
/// Rounds of the fine ALS search (each centred on the best so far).
pub const FINE_ROUNDS: usize = 2;
/// ALS settings that go on to the full sweep count.
pub const PROMOTED: usize = 3;
/// The EASE regularization the search starts from (and the next decade up); it walks a
/// decade at a time within [`EASE_LAMBDA_RANGE`] while accuracy improves.
pub const EASE_LAMBDA_START: f32 = 100.0;
/// Most items the EASE lambda search covers (the most interacted ones): each trial is an
/// `m x m` inverse, so on 5,198 items (ml-latest-small) one took 50-150 s on 2 shared
/// cores, and on 2,000 items about a seventeenth of that.
pub const EASE_SEARCH_ITEMS: usize = 2000;
/// Smallest and largest EASE regularization searched.
pub const EASE_LAMBDA_RANGE: (f32, f32) = (1.0, 100_000.0);
/// Record columns the linear models (ALS and item-item) keep before the autoencoder takes
/// any: 640 f32 columns (2,560 bytes per item), the ALS width 128 and item-item rank 256
/// the catalogs shipped before the tuner.
pub const LINEAR_RECORD_DIMS: usize = 640;
/// Narrowest autoencoder hidden width worth training when the budget cuts it.
pub const VAE_MIN_HIDDEN: usize = 64;
/// Epochs the autoencoder trains past its best validation accuracy before it stops.
pub const VAE_PATIENCE: usize = 8;
/// Default [`TuneOptions::max_record_dims`]: the linear models' 640 columns and the
/// autoencoder's at its default widths (600 + 200 + 1): 1,441 f32 columns, 5,764 bytes
/// per item.
pub const DEFAULT_RECORD_DIMS: usize = LINEAR_RECORD_DIMS + vae::DEFAULT_HIDDEN + vae::DEFAULT_LATENT + 1;
/// Default [`TuneOptions::budget`], in seconds: on ML-1M (4,834 users, 3,495 items) the
/// linear search takes about two minutes on 2 cores and the autoencoder about five more.
pub const DEFAULT_BUDGET_SECONDS: u64 = 600;

/// What the tuner may choose from, and within what.
#[derive(Clone, Debug, PartialEq)]
pub struct TuneOptions {
    /// Wall time for the whole search; zero searches nothing (the base config is used).
    pub budget: Duration,
    /// Most collaborative columns per item record on the device (`k + 2r`, f32 each).
    pub max_record_dims: usize,
    /// ALS factor counts to consider (empty: [`FACTOR_CHOICES`]); one value fixes it.
    pub factors: Vec<usize>,
    /// ALS regularizations (empty: search); one value fixes it.
    pub reg: Vec<f32>,
    /// ALS confidence scales (empty: search); one value fixes it.
    pub alpha: Vec<f32>,
    /// EASE regularizations (empty: search); one value fixes it.
    pub ease_lambda: Vec<f32>,
    /// The item-item rank (`None`: the largest the budget leaves; 0: no item-item model).
    pub item_rank: Option<usize>,
    /// The autoencoder to train (its epochs the most tried), `None` for none; its hidden
    /// width is cut to what `max_record_dims` leaves beside [`LINEAR_RECORD_DIMS`].
    pub vae: Option<VaeConfig>,
    /// The autoencoder's blend weight, fixed instead of chosen on held-out users.
    pub vae_weight: Option<f32>,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            budget: Duration::from_secs(DEFAULT_BUDGET_SECONDS),
            max_record_dims: DEFAULT_RECORD_DIMS,
            factors: Vec::new(),
            reg: Vec::new(),
            alpha: Vec::new(),
            ease_lambda: Vec::new(),
            item_rank: None,
            vae: Some(VaeConfig::default()),
            vae_weight: None,
        }
    }
}

/// What the search chose and why.
#[derive(Clone, Debug, PartialEq)]
pub struct TuneReport {
    /// ALS factor count.
    pub factors: usize,
    /// ALS regularization.
    pub reg: f32,
    /// ALS confidence scale.
    pub alpha: f32,
    /// EASE regularization of the item-item model the catalog ships (chosen at its rank).
    pub ease_lambda: f32,
    /// EASE regularization best at full rank: the tuned EASE reference `eval` reports.
    pub full_rank_ease_lambda: f32,
    /// Item-item rank.
    pub item_rank: usize,
    /// The autoencoder trained (its `epochs` the best on the held-out users), if any; the
    /// caller drops it when the blend gives it no weight, so that this says what ships.
    pub vae: Option<VaeConfig>,
    /// The autoencoder's weight on cold items, chosen by the caller after the blend
    /// ([`super::cold::tune_vae_cold`]); `None` before or without one.
    pub vae_cold: Option<ColdTuning>,
    /// Every trial, in the order run (the validation curve).
    pub trials: Vec<Trial>,
    /// Trials skipped because the budget would not cover them (0: the search completed).
    pub skipped: usize,
    /// Wall time of the search.
    pub seconds: f64,
    /// The budget it ran under.
    pub budget_seconds: f64,
    /// Held-out users it was scored on.
    pub users: usize,
}

/// Wall-time accounting: whether a trial of an estimated cost still fits.
struct Budget {
    start: Instant,
    total: Duration,
    skipped: usize,
}

impl Budget {
    fn fits(&mut self, estimate: f64) -> bool {
        let left = self.total.as_secs_f64() - self.start.elapsed().as_secs_f64();
        let ok = estimate <= left;
        if !ok {
            self.skipped += 1;
        }
        ok
    }
}

/// Validation scoring of single-term models, sharing the quantized embeddings.
struct Judge<'a> {
    users: &'a [EvalUser],
    items: ItemSide,
    device: &'a Device,
}

impl Judge<'_> {
    /// Validation metrics of ALS item factors `q` (width `k`) as the device folds in.
    fn als(&self, q: &[f32], cfg: &AlsConfig) -> Result<MetricSums> {
        let k = cfg.factors;
        let gram: Vec<f32> = super::als::gram(q, k).into_iter().map(|v| v as f32).collect();
        let params = ScorerParams::untuned(k, 0, cfg.reg, cfg.alpha, gram);
        let mut items = self.items.clone();
        items.record_dims = k;
        items.factors = q.to_vec();
        let scorer = Scorer::new(items, Some(params), self.device)?;
        let only = Blend { collaborative: 1.0, item_item: 0.0, semantic: 0.0, popularity: 0.0, ..Blend::default() };
        Ok(evaluate(&scorer, self.users, &[only], None, 1.0)?[0])
    }

    /// Validation metrics of the hybrid, its blend tuned: ALS factors `q` and the rank
    /// `r` factors of the item-item model `b` (`m x m` over `covered`).
    fn hybrid(&self, q: &[f32], cfg: &AlsConfig, b: &[f32], gram: &[f32], covered: &[usize], r: usize) -> Result<MetricSums> {
        let (k, m) = (cfg.factors, covered.len());
        let (a, c) = ease::low_rank_for_users(b, gram, m, r, 2, cfg.seed)?;
        let width = k + 2 * r;
        let mut factors = vec![0.0f32; self.items.len * width];
        for (i, row) in factors.chunks_exact_mut(width).enumerate() {
            row[..k].copy_from_slice(&q[i * k..(i + 1) * k]);
        }
        for (pos, &i) in covered.iter().enumerate() {
            let row = &mut factors[i * width..(i + 1) * width];
            row[k..k + r].copy_from_slice(&a[pos * r..(pos + 1) * r]);
            row[k + r..].copy_from_slice(&c[pos * r..(pos + 1) * r]);
        }
        let gram: Vec<f32> = super::als::gram(q, k).into_iter().map(|v| v as f32).collect();
        let params = ScorerParams::untuned(k, r, cfg.reg, cfg.alpha, gram);
        let mut items = self.items.clone();
        items.record_dims = width;
        items.factors = factors;
        let scorer = Scorer::new(items, Some(params), self.device)?;
        Ok(tune_blend(&scorer, self.users)?.1)
    }
}

/// Validation metrics of a model of the `covered` items (ascending catalog positions):
/// `scores` gives their scores from a user's fold-in positions among them; items it does
/// not cover rank last.
fn covered_sums(covered: &[usize], items: usize, users: &[EvalUser], scores: impl Fn(&[usize]) -> Vec<f32>) -> MetricSums {
    let mut at = vec![usize::MAX; items];
    covered.iter().enumerate().for_each(|(p, &i)| at[i] = p);
    let mut sums = MetricSums::default();
    for u in users {
        let positions: Vec<usize> =
            u.fold_in.iter().filter_map(|&i| at.get(i as usize).copied().filter(|&p| p != usize::MAX)).collect();
        let mut all = vec![f32::NEG_INFINITY; items];
        covered.iter().zip(scores(&positions)).for_each(|(&i, s)| all[i] = s);
        sums.add(&top_k(&all, 100, &u.fold_in), &u.held_out);
    }
    sums
}

/// Validation metrics of the item-item model `b` (`m x m` over `covered`) at full rank:
/// a user's score is `x^T B`.
pub fn item_item_sums(b: &[f32], covered: &[usize], items: usize, users: &[EvalUser]) -> MetricSums {
    let m = covered.len();
    covered_sums(covered, items, users, |positions| {
        let mut row = vec![0.0f32; m];
        for &p in positions {
            axpy(1.0, &b[p * m..(p + 1) * m], &mut row);
        }
        row
    })
}

/// Validation metrics of the item-item model compressed to `B ~ A C^T` (`a`, `c`: `m x r`
/// over `covered`), scored as the device does: `(x^T A) C^T`.
fn low_rank_sums(a: &[f32], c: &[f32], r: usize, covered: &[usize], items: usize, users: &[EvalUser]) -> MetricSums {
    covered_sums(covered, items, users, |positions| {
        let mut xa = vec![0.0f32; r];
        for &p in positions {
            axpy(1.0, &a[p * r..(p + 1) * r], &mut xa);
        }
        c.chunks_exact(r).map(|ci| dot(&xa, ci)).collect()
    })
}

/// The point `quarter_decades` steps from `v` on the grid `10^(j/4)`, rounded to 3
/// significant digits so grids read plainly (`v` is snapped to the grid first, so steps
/// from a rounded value land on the same points: 31.6 up half a decade is 100).
fn decade_step(v: f32, quarter_decades: i32) -> f32 {
    let j = (4.0 * (v as f64).log10()).round() as i32 + quarter_decades;
    let x = 10f64.powf(j as f64 / 4.0);
    let digits = 10f64.powi(x.log10().floor() as i32 - 2);
    ((x / digits).round() * digits) as f32
}

/// Chooses the ALS and item-item settings on `users` (held out of `user_items`), starting
/// from `base` (its sweep count, seed and the rest are kept). Returns the config to train
/// the catalog with, the report, and what that training can reuse.
#[allow(clippy::too_many_arguments)]
pub fn tune(
    user_items: &Csr,
    users: &[EvalUser],
    embeddings: &[f32],
    dims: usize,
    base: &TrainConfig,
    opts: &TuneOptions,
    device: &Device,
    progress: &mut dyn TrainProgress,
) -> Result<(TrainConfig, TuneReport, Reuse)> {
    let n = user_items.cols;
    if embeddings.len() != n * dims {
        return Err(Error::new(ErrorKind::Input, format!("{} embedding values for {n} items of {dims} dims", embeddings.len())));
    }
    let mut budget = Budget { start: Instant::now(), total: opts.budget, skipped: 0 };
    let counts: Vec<f32> = {
        let t = user_items.transpose();
        (0..n).map(|i| (t.row(i).0.len() as f32).ln_1p()).collect()
    };
    let judge = Judge { users, items: ItemSide::new(0, Vec::new(), counts, dims, embeddings), device };
    let mut trials: Vec<Trial> = Vec::new();
    let mut cfg = base.clone();
    let search = !opts.budget.is_zero();
    // The autoencoder's columns are set aside first; the linear models get the rest.
    let vae_cfg = opts
        .vae
        .as_ref()
        .filter(|_| search)
        .and_then(|v| vae_for_budget(v, opts.max_record_dims))
        .map(|v| VaeConfig { seed: base.als.seed, ..v });
    let max_dims = opts.max_record_dims.saturating_sub(vae_cfg.as_ref().map_or(0, |v| v.hidden + v.latent + 1)).max(1);
    let factor_choices: Vec<usize> = if opts.factors.is_empty() {
        // A fixed item-item rank takes its share of the budget first.
        let left = max_dims.saturating_sub(opts.item_rank.unwrap_or(0).saturating_mul(2)).max(1);
        let mut f: Vec<usize> = FACTOR_CHOICES.iter().copied().filter(|&k| k <= left).collect();
        if f.is_empty() {
            f.push(left);
        }
        f
    } else {
        opts.factors.clone()
    };
    let mut reuse = Reuse::default();
    // Fully swept ALS factors at the chosen reg and alpha, one per width tried.
    let mut widths: Vec<(AlsConfig, Vec<f32>)> = Vec::new();

    // 1. ALS.
    let full_iterations = base.als.iterations.max(1);
    let fixed = |given: &[f32], default: f32| given.first().copied().unwrap_or(default);
    if search && (opts.reg.len() != 1 || opts.alpha.len() != 1 || factor_choices.len() != 1) {
        progress.stage("tuning: als");
        let regs: Vec<f32> = if opts.reg.is_empty() { ALS_REG_COARSE.to_vec() } else { opts.reg.clone() };
        let alphas: Vec<f32> = if opts.alpha.is_empty() { ALS_ALPHA_COARSE.to_vec() } else { opts.alpha.clone() };
        let k0 = factor_choices.iter().copied().filter(|&k| k <= COARSE_FACTORS).max().unwrap_or(factor_choices[0]);
        let short = COARSE_ITERATIONS.min(full_iterations);
        let mut runs: Vec<(Als, usize)> = Vec::new();
        let mut last_cost = 0.0f64;
        let mut run_als = |reg: f32, alpha: f32, trials: &mut Vec<Trial>, budget: &mut Budget, progress: &mut dyn TrainProgress| -> Result<()> {
            let exists = trials.iter().any(|t| matches!(t.setting, Setting::Als { factors, reg: r, alpha: a, iterations } if factors == k0 && r == reg && a == alpha && iterations == short));
            if exists || !budget.fits(last_cost) {
                return Ok(());
            }
            let t = Instant::now();
            let als_cfg = AlsConfig { factors: k0, reg, alpha, ..base.als.clone() };
            let mut run = Als::new(user_items, &als_cfg)?;
            run.run_to(short, &mut |_| {});
            let sums = match run.item_factors() {
                Ok(q) => judge.als(q, &als_cfg)?,
                Err(_) => MetricSums::default(),
            };
            last_cost = t.elapsed().as_secs_f64();
            let trial = Trial { setting: Setting::Als { factors: k0, reg, alpha, iterations: short }, sums, seconds: last_cost };
            progress.trial(&trial);
            trials.push(trial);
            runs.push((run, trials.len() - 1));
            Ok(())
        };
        for &reg in &regs {
            for &alpha in &alphas {
                run_als(reg, alpha, &mut trials, &mut budget, progress)?;
            }
        }
        // Fine: the neighbours of the best setting, on the axes being searched, again
        // around a new best on the edge of the last neighbourhood (at most FINE_ROUNDS).
        let mut centre = None;
        for _ in 0..FINE_ROUNDS {
            let Some(best) = best_als(&trials, short) else { break };
            if centre == Some(best) {
                break;
            }
            centre = Some(best);
            let (reg0, alpha0) = best;
            let reg_steps: Vec<f32> = if opts.reg.is_empty() { vec![decade_step(reg0, -2), reg0, decade_step(reg0, 2)] } else { vec![reg0] };
            let alpha_steps: Vec<f32> =
                if opts.alpha.is_empty() { vec![alpha0 / 2.0, alpha0, alpha0 * 2.0] } else { vec![alpha0] };
            for &reg in &reg_steps {
                for &alpha in &alpha_steps {
                    run_als(reg, alpha, &mut trials, &mut budget, progress)?;
                }
            }
        }
        // Successive halving: the best few continue to the full sweep count.
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&a, &b| accuracy(&trials[runs[b].1].sums).total_cmp(&accuracy(&trials[runs[a].1].sums)).then(a.cmp(&b)));
        order.truncate(PROMOTED);
        let per_sweep = last_cost / short.max(1) as f64;
        let mut finalists: Vec<usize> = Vec::new();
        if full_iterations > short {
            for &r in &order {
                if !budget.fits(per_sweep * (full_iterations - short) as f64) {
                    continue;
                }
                let t = Instant::now();
                let (run, _) = &mut runs[r];
                run.run_to(full_iterations, &mut |_| {});
                let Setting::Als { reg, alpha, .. } = trials[runs[r].1].setting else { continue };
                let als_cfg = AlsConfig { factors: k0, reg, alpha, ..base.als.clone() };
                let sums = match runs[r].0.item_factors() {
                    Ok(q) => judge.als(q, &als_cfg)?,
                    Err(_) => MetricSums::default(),
                };
                let trial = Trial { setting: Setting::Als { factors: k0, reg, alpha, iterations: full_iterations }, sums, seconds: t.elapsed().as_secs_f64() };
                progress.trial(&trial);
                trials.push(trial);
                finalists.push(r);
            }
        }
        if let Some((reg, alpha)) = best_als(&trials, full_iterations).or_else(|| best_als(&trials, short)) {
            cfg.als.reg = reg;
            cfg.als.alpha = alpha;
        }
        cfg.als.factors = k0;
        // Wider factors at the chosen setting (cost grows about as k^2).
        let at_k0 = trials.iter().rev().find(|t| matches!(t.setting, Setting::Als { iterations, .. } if iterations == full_iterations));
        let mut best_sum = at_k0.map_or(f64::NEG_INFINITY, |t| accuracy(&t.sums));
        let mut unit = per_sweep * full_iterations as f64;
        for &k in factor_choices.iter().filter(|&&k| k != k0) {
            let estimate = unit * (k as f64 / k0 as f64).powi(2);
            if !budget.fits(estimate) {
                continue;
            }
            let t = Instant::now();
            let als_cfg = AlsConfig { factors: k, iterations: full_iterations, ..cfg.als.clone() };
            let mut run = Als::new(user_items, &als_cfg)?;
            run.run_to(full_iterations, &mut |_| {});
            let sums = match run.item_factors() {
                Ok(q) => judge.als(q, &als_cfg)?,
                Err(_) => MetricSums::default(),
            };
            let seconds = t.elapsed().as_secs_f64();
            unit = seconds / (k as f64 / k0 as f64).powi(2);
            let trial = Trial { setting: Setting::Als { factors: k, reg: als_cfg.reg, alpha: als_cfg.alpha, iterations: full_iterations }, sums, seconds };
            progress.trial(&trial);
            trials.push(trial);
            if accuracy(&sums) > best_sum {
                best_sum = accuracy(&sums);
                cfg.als.factors = k;
            }
            if let Ok(q) = run.item_factors() {
                widths.push((als_cfg, q.to_vec()));
            }
        }
        if let Some(&r) = finalists.iter().find(|&&r| {
            matches!(trials[runs[r].1].setting, Setting::Als { reg, alpha, .. } if reg == cfg.als.reg && alpha == cfg.als.alpha)
        }) && let Ok(q) = runs[r].0.item_factors()
        {
            widths.insert(0, (AlsConfig { factors: k0, ..cfg.als.clone() }, q.to_vec()));
        }
    } else {
        cfg.als.reg = fixed(&opts.reg, base.als.reg);
        cfg.als.alpha = fixed(&opts.alpha, base.als.alpha);
        // Without a search the base's width stands (a retrain's previous choice), if it fits.
        cfg.als.factors = opts.factors.first().copied().unwrap_or(base.als.factors).clamp(1, max_dims);
    }

    // 2. Item-item: lambda at full rank, the rank from what the budget leaves (a rank
    // past the covered items would only pad the records).
    let covered = covered_items(user_items, cfg.item_item_max);
    let mut full_rank_lambda = f32::NAN;
    let room = max_dims.saturating_sub(cfg.als.factors) / 2;
    cfg.item_rank = opts.item_rank.unwrap_or(if search { room } else { base.item_rank.min(room) }.min(covered.len()));
    if cfg.item_rank > 0 && search && opts.ease_lambda.len() != 1 {
        progress.stage("tuning: item-item");
        // Lambdas are compared on the most interacted items only: a trial is an m x m
        // inverse, cubic in m, and the catalog's own model is computed once at the end.
        let searched = covered_items(user_items, cfg.item_item_max.min(EASE_SEARCH_ITEMS));
        let m = searched.len();
        let gram = ease::item_gram(&restrict_columns(user_items, &searched)?);
        // The catalog ships B compressed to `rank`, and the compression regularizes too,
        // so the lambda is chosen for the compressed model (on ML-1M at rank 192 the
        // full-rank best, 1000, lost 4% of validation Recall@20 to 200). The full-rank
        // best is kept as well: it is the tuned EASE that `eval` compares against.
        let rank = cfg.item_rank.min(m);
        let seed = cfg.als.seed;
        let mut last_cost = 0.0f64;
        // (lambda, accuracy at `rank`, accuracy at full rank)
        let mut tried: Vec<(f32, f64, f64)> = Vec::new();
        let mut best_b: Option<(f32, f64, Vec<f32>)> = None;
        let mut try_lambda = |lambda: f32, tried: &mut Vec<(f32, f64, f64)>, trials: &mut Vec<Trial>, budget: &mut Budget, progress: &mut dyn TrainProgress| -> Result<()> {
            if tried.iter().any(|t| t.0 == lambda) || !budget.fits(last_cost) {
                return Ok(());
            }
            let t = Instant::now();
            let b = ease::ease(gram.clone(), m, lambda)?;
            let full = item_item_sums(&b, &searched, n, users);
            let full_seconds = t.elapsed().as_secs_f64();
            let mut scored = vec![Trial { setting: Setting::ItemItem { lambda, items: m, rank: m }, sums: full, seconds: full_seconds }];
            if rank < m {
                let t = Instant::now();
                let (a, c) = ease::low_rank_for_users(&b, &gram, m, rank, 2, seed)?;
                let sums = low_rank_sums(&a, &c, rank, &searched, n, users);
                scored.push(Trial { setting: Setting::ItemItem { lambda, items: m, rank }, sums, seconds: t.elapsed().as_secs_f64() });
            }
            last_cost = t.elapsed().as_secs_f64() + full_seconds;
            let shipped = accuracy(&scored[scored.len() - 1].sums);
            tried.push((lambda, shipped, accuracy(&full)));
            for trial in scored {
                progress.trial(&trial);
                trials.push(trial);
            }
            if best_b.as_ref().is_none_or(|(_, s, _)| shipped > *s) {
                best_b = Some((lambda, shipped, b));
            }
            Ok(())
        };
        if opts.ease_lambda.is_empty() {
            // Each lambda costs an n x n inverse, so walk the decades from the middle
            // towards the better side until accuracy drops, then refine by half a decade:
            // for the model as shipped, then (reusing what was tried) at full rank.
            let criteria: &[bool] = if rank < m { &[true, false] } else { &[true] };
            for &shipped in criteria {
                let score = |tried: &[(f32, f64, f64)], l: f32| {
                    tried.iter().find(|t| t.0 == l).map(|t| if shipped { t.1 } else { t.2 })
                };
                let (lo, hi) = (EASE_LAMBDA_START, EASE_LAMBDA_START * 10.0);
                try_lambda(lo, &mut tried, &mut trials, &mut budget, progress)?;
                try_lambda(hi, &mut tried, &mut trials, &mut budget, progress)?;
                if let (Some(a), Some(b)) = (score(&tried, lo), score(&tried, hi)) {
                    let (mut best, mut best_score, step) = if b > a { (hi, b, 4) } else { (lo, a, -4) };
                    loop {
                        let next = decade_step(best, step);
                        if !(EASE_LAMBDA_RANGE.0..=EASE_LAMBDA_RANGE.1).contains(&next) {
                            break;
                        }
                        try_lambda(next, &mut tried, &mut trials, &mut budget, progress)?;
                        match score(&tried, next) {
                            Some(s) if s > best_score => (best, best_score) = (next, s),
                            _ => break,
                        }
                    }
                    for l in [decade_step(best, -2), decade_step(best, 2)] {
                        try_lambda(l, &mut tried, &mut trials, &mut budget, progress)?;
                    }
                }
            }
        } else {
            for &l in &opts.ease_lambda {
                try_lambda(l, &mut tried, &mut trials, &mut budget, progress)?;
            }
        }
        if let Some(full) = tried.iter().fold(None::<(f32, f64)>, |b, t| if b.is_none_or(|b| t.2 > b.1) { Some((t.0, t.2)) } else { b }) {
            full_rank_lambda = full.0;
        }
        if let Some((lambda, _, b)) = best_b {
            cfg.ease_lambda = lambda;
            let b = if m == covered.len() {
                b
            } else {
                ease::ease(ease::item_gram(&restrict_columns(user_items, &covered)?), covered.len(), lambda)?
            };
            reuse.item_item = Some((lambda, b));
        }
    } else if let Some(&l) = opts.ease_lambda.first() {
        cfg.ease_lambda = l;
    }
    let full_rank_lambda = if full_rank_lambda.is_nan() { cfg.ease_lambda } else { full_rank_lambda };

    // 3. The record layout: which width k (and so rank r) the budget buys is chosen on
    // the hybrid (its blend tuned too), since a wider ALS leaves a lower-rank item-item.
    // A rank is also tried at half what the budget leaves: the compressed model is not
    // monotone in its rank (on ML-1M, rank 384 of B lost 2% of validation Recall@20 to
    // rank 192, and the hybrid then gave it weight 0), so a larger budget must not force it.
    if search && opts.item_rank.is_none() && !widths.is_empty() && let Some((_, b)) = &reuse.item_item {
        progress.stage("tuning: record layout");
        let gram = ease::item_gram(&restrict_columns(user_items, &covered)?);
        let mut best: Option<(usize, usize, f64)> = None;
        let mut last_cost = 0.0f64;
        let layouts = widths.iter().flat_map(|(als_cfg, q)| {
            let most = (max_dims.saturating_sub(als_cfg.factors) / 2).min(covered.len());
            let ranks = if most / 2 > 0 { vec![most, most / 2] } else { vec![most] };
            ranks.into_iter().map(move |r| (als_cfg, q, r))
        });
        for (als_cfg, q, r) in layouts {
            let k = als_cfg.factors;
            if r == 0 || !budget.fits(last_cost) {
                continue;
            }
            let t = Instant::now();
            let sums = judge.hybrid(q, als_cfg, b, &gram, &covered, r)?;
            last_cost = t.elapsed().as_secs_f64();
            let trial = Trial { setting: Setting::Layout { factors: k, item_rank: r }, sums, seconds: last_cost };
            progress.trial(&trial);
            trials.push(trial);
            if best.is_none_or(|b| accuracy(&sums) > b.2) {
                best = Some((k, r, accuracy(&sums)));
            }
        }
        if let Some((k, r, _)) = best {
            cfg.als.factors = k;
            cfg.item_rank = r;
        }
    }
    reuse.als = widths.into_iter().find(|(c, _)| c.factors == cfg.als.factors && *c == cfg.als);

    // 4. The autoencoder: its epoch chosen on the held-out users (without a search, the
    // base's stands: a retrain's earlier choice).
    if search {
        cfg.vae = None;
    }
    if let Some(vcfg) = vae_cfg {
        progress.stage("tuning: autoencoder");
        let mut best: Option<(usize, f64, VaeModel)> = None;
        let mut since_best = 0usize;
        let mut last = Instant::now();
        vae::train(user_items, &vcfg, device, |epoch, model| {
            let sums = vae_sums(model, users);
            let trial = Trial {
                setting: Setting::Autoencoder { hidden: vcfg.hidden, latent: vcfg.latent, epochs: epoch + 1 },
                sums,
                seconds: last.elapsed().as_secs_f64(),
            };
            progress.trial(&trial);
            let cost = trial.seconds;
            trials.push(trial);
            if best.as_ref().is_none_or(|b| accuracy(&sums) > b.1) {
                best = Some((epoch + 1, accuracy(&sums), model.clone()));
                since_best = 0;
            } else {
                since_best += 1;
            }
            last = Instant::now();
            Ok(since_best < VAE_PATIENCE && budget.fits(cost))
        })?;
        if let Some((epochs, _, model)) = best {
            let chosen = VaeConfig { epochs, ..vcfg };
            cfg.vae = Some(chosen.clone());
            reuse.vae = Some((chosen, model));
        }
    }
    let report = TuneReport {
        factors: cfg.als.factors,
        reg: cfg.als.reg,
        alpha: cfg.als.alpha,
        ease_lambda: cfg.ease_lambda,
        full_rank_ease_lambda: full_rank_lambda,
        item_rank: cfg.item_rank,
        vae: cfg.vae.clone(),
        vae_cold: None,
        trials,
        skipped: budget.skipped,
        seconds: budget.start.elapsed().as_secs_f64(),
        budget_seconds: opts.budget.as_secs_f64(),
        users: users.len(),
    };
    Ok((cfg, report, reuse))
}

/// The autoencoder `config` cut to the device budget: its columns (hidden + latent + 1)
/// must leave [`LINEAR_RECORD_DIMS`] to the linear models; the hidden width shrinks to
/// fit, down to [`VAE_MIN_HIDDEN`], below which there is none.
pub fn vae_for_budget(config: &VaeConfig, max_record_dims: usize) -> Option<VaeConfig> {
    let room = max_record_dims.checked_sub(LINEAR_RECORD_DIMS)?.checked_sub(config.latent + 1)?;
    let hidden = config.hidden.min(room);
    (hidden >= VAE_MIN_HIDDEN.min(config.hidden) && hidden > 0).then(|| VaeConfig { hidden, ..config.clone() })
}

/// Validation metrics of the autoencoder alone, as the device scores it.
fn vae_sums(model: &VaeModel, users: &[EvalUser]) -> MetricSums {
    let mut sums = MetricSums::default();
    for u in users {
        let mut liked = u.fold_in.clone();
        liked.sort_unstable();
        liked.dedup();
        let scores = model.scores(&model.fold_in(&liked));
        sums.add(&top_k(&scores, 100, &u.fold_in), &u.held_out);
    }
    sums
}

/// The `(reg, alpha)` of the most accurate ALS trial after `iterations` sweeps (the
/// first of equals).
fn best_als(trials: &[Trial], iterations: usize) -> Option<(f32, f32)> {
    trials
        .iter()
        .filter_map(|t| match t.setting {
            Setting::Als { reg, alpha, iterations: it, .. } if it == iterations => Some((reg, alpha, accuracy(&t.sums))),
            _ => None,
        })
        .fold(None::<(f32, f32, f64)>, |b, c| if b.is_none_or(|b| c.2 > b.2) { Some(c) } else { b })
        .map(|(r, a, _)| (r, a))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scorer::als::SplitMix;
    use crate::scorer::train::holdout_users;

    /// `users` users over four tastes of a quarter of the `items` each: a user likes each
    /// item of their taste with probability `p` and any other item with probability `noise`.
    pub(crate) fn tastes(users: u32, items: u32, p: f64, noise: f64, seed: u64) -> Csr {
        let mut rng = SplitMix(seed);
        let mut t = Vec::new();
        for u in 0..users {
            let taste = u % 4;
            for i in 0..items {
                let chance = if i * 4 / items == taste { p } else { noise };
                if rng.uniform() < chance {
                    t.push((u, i, 1.0));
                }
            }
        }
        Csr::from_triplets(users as usize, items as usize, &t).unwrap()
    }

    fn embeddings(items: usize, dims: usize) -> Vec<f32> {
        let mut rng = SplitMix(5);
        (0..items)
            .flat_map(|_| {
                let v: Vec<f32> = (0..dims).map(|_| rng.normal() as f32).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(move |x| x / norm)
            })
            .collect()
    }

    fn quick() -> TrainConfig {
        TrainConfig { als: AlsConfig { factors: 4, iterations: 6, ..AlsConfig::default() }, ..TrainConfig::default() }
    }

    #[test]
    fn grid_steps_land_on_the_same_points() {
        assert_eq!(decade_step(31.6, 2), 100.0);
        assert_eq!(decade_step(100.0, -2), 31.6);
        assert_eq!(decade_step(100.0, 4), 1000.0);
        assert_eq!(decade_step(3.16, -2), 1.0);
        assert_eq!(decade_step(1.0, 1), 1.78);
    }

    #[test]
    fn the_search_is_deterministic_for_a_seed() {
        let m = tastes(240, 40, 0.5, 0.05, 1);
        let (rest, held, _) = holdout_users(&m, 0.2, 3).unwrap();
        let opts = TuneOptions { max_record_dims: 24, factors: vec![4, 8], ..TuneOptions::default() };
        let run = || {
            let (cfg, report, _) =
                tune(&rest, &held, &embeddings(40, 4), 4, &quick(), &opts, &Device::flex(), &mut ()).unwrap();
            let curve: Vec<(Setting, MetricSums)> = report.trials.iter().map(|t| (t.setting, t.sums)).collect();
            (cfg, curve, report.skipped)
        };
        let (cfg, curve, skipped) = run();
        assert_eq!(skipped, 0, "the budget covers the whole search");
        assert!(curve.iter().any(|t| matches!(t.0, Setting::Als { iterations: 6, .. })), "some settings were promoted");
        assert!(cfg.als.factors + 2 * cfg.item_rank <= 24, "the record fits the device budget");
        // Each width's layout is tried at the rank the budget leaves and at half that.
        let layouts: Vec<(usize, usize)> =
            curve.iter().filter_map(|t| match t.0 { Setting::Layout { factors, item_rank } => Some((factors, item_rank)), _ => None }).collect();
        assert!(!layouts.is_empty());
        for &(k, _) in &layouts {
            let most = (24 - k) / 2;
            assert!(layouts.contains(&(k, most)) && layouts.contains(&(k, most / 2)), "{layouts:?}");
        }
        assert_eq!(run(), (cfg, curve, skipped));
    }

    #[test]
    fn the_item_item_lambda_is_chosen_at_the_rank_that_ships() {
        let m = tastes(240, 40, 0.5, 0.05, 1);
        let (rest, held, _) = holdout_users(&m, 0.2, 3).unwrap();
        let opts = TuneOptions { factors: vec![4], reg: vec![1.0], alpha: vec![4.0], item_rank: Some(3), ..TuneOptions::default() };
        let (cfg, report, reuse) = tune(&rest, &held, &embeddings(40, 4), 4, &quick(), &opts, &Device::flex(), &mut ()).unwrap();
        // The best lambda among the trials at `rank` (`None`: at full rank).
        let best = |rank: Option<usize>| {
            report
                .trials
                .iter()
                .filter_map(|t| match t.setting {
                    Setting::ItemItem { lambda, items, rank: r } if r == rank.unwrap_or(items) => Some((lambda, accuracy(&t.sums))),
                    _ => None,
                })
                .fold(None::<(f32, f64)>, |b, c| if b.is_none_or(|b| c.1 > b.1) { Some(c) } else { b })
                .map(|b| b.0)
        };
        assert_eq!(cfg.item_rank, 3);
        assert_ne!(best(Some(3)), best(None), "the data must tell the two criteria apart: {:?}", report.trials);
        assert_eq!(Some(cfg.ease_lambda), best(Some(3)), "{:?}", report.trials);
        assert_eq!(Some(report.full_rank_ease_lambda), best(None), "{:?}", report.trials);
        assert_eq!(reuse.item_item.map(|r| r.0), Some(cfg.ease_lambda), "training reuses the chosen model");
    }

    #[test]
    fn the_autoencoder_keeps_its_best_epoch_on_held_out_users_within_the_device_budget() {
        let m = tastes(240, 40, 0.5, 0.05, 1);
        let (rest, held, _) = holdout_users(&m, 0.2, 3).unwrap();
        let vae = VaeConfig { hidden: 100, latent: 8, layers: 2, epochs: 30, batch: 64, learning_rate: 1e-2, ..VaeConfig::default() };
        // The budget leaves the autoencoder 64 hidden columns beside the linear models'.
        let opts = TuneOptions {
            factors: vec![4],
            reg: vec![1.0],
            alpha: vec![4.0],
            item_rank: Some(0),
            max_record_dims: LINEAR_RECORD_DIMS + 64 + 8 + 1,
            vae: Some(vae),
            ..TuneOptions::default()
        };
        let run = || tune(&rest, &held, &embeddings(40, 4), 4, &quick(), &opts, &Device::flex(), &mut ()).unwrap();
        let (cfg, report, reuse) = run();
        let curve: Vec<(usize, usize, f64)> = report
            .trials
            .iter()
            .filter_map(|t| match t.setting {
                Setting::Autoencoder { hidden, epochs, .. } => Some((hidden, epochs, accuracy(&t.sums))),
                _ => None,
            })
            .collect();
        assert!(curve.iter().all(|c| c.0 == 64), "the hidden width is cut to the budget: {curve:?}");
        let best = curve.iter().fold(curve[0], |b, c| if c.2 > b.2 { *c } else { b });
        let chosen = cfg.vae.clone().expect("an autoencoder was trained");
        assert_eq!((chosen.hidden, chosen.epochs), (64, best.1), "{curve:?}");
        assert!(curve.len() == 30 || curve.len() == best.1 + VAE_PATIENCE, "stops {VAE_PATIENCE} epochs past its best: {curve:?}");
        assert!(best.2 > curve[0].2, "training improved on the first epoch: {curve:?}");
        let (used, model) = reuse.vae.clone().expect("training reuses the best epoch's model");
        assert_eq!(used, chosen);
        // Training the catalog with that choice ships the best epoch's model in the records.
        let trained = crate::scorer::train::train_reusing(&rest, &embeddings(40, 4), 4, &cfg, &Default::default(), &reuse, &mut ()).unwrap();
        assert_eq!(trained.params.vae.as_ref(), Some(&model.encoder));
        let (at, record) = (trained.params.vae_column(), trained.params.record_dims());
        for i in [0, 17, 39] {
            assert_eq!(trained.factors[i * record + at..i * record + at + 73], model.record(i).collect::<Vec<_>>()[..]);
        }
        let curve_of = |r: &TuneReport| r.trials.iter().map(|t| (t.setting, t.sums)).collect::<Vec<_>>();
        let again = run();
        assert_eq!((again.0, curve_of(&again.1)), (cfg.clone(), curve_of(&report)), "deterministic for a seed");
        // A budget without room for 64 hidden columns trains none.
        let tight = TuneOptions { max_record_dims: LINEAR_RECORD_DIMS + 63 + 8 + 1, ..opts.clone() };
        let (cfg, report, reuse) = tune(&rest, &held, &embeddings(40, 4), 4, &quick(), &tight, &Device::flex(), &mut ()).unwrap();
        assert!(cfg.vae.is_none() && reuse.vae.is_none() && report.vae.is_none());
        assert!(!report.trials.iter().any(|t| matches!(t.setting, Setting::Autoencoder { .. })));
    }

    /// Validation accuracy of ALS at `reg` (alpha 4, k 8, 10 sweeps), as the tuner scores it.
    fn als_accuracy(rest: &Csr, held: &[EvalUser], reg: f32) -> f64 {
        let cfg = AlsConfig { factors: 8, reg, alpha: 4.0, iterations: 10, ..AlsConfig::default() };
        let counts: Vec<f32> = vec![0.0; rest.cols];
        let judge = Judge { users: held, items: ItemSide::new(0, Vec::new(), counts, 4, &embeddings(rest.cols, 4)), device: &Device::flex() };
        accuracy(&judge.als(&crate::scorer::als::train(rest, &cfg, &mut |_| {}).unwrap(), &cfg).unwrap())
    }

    #[test]
    fn the_search_recovers_the_best_als_lambda() {
        let m = tastes(400, 200, 0.1, 0.01, 1);
        let (rest, held, _) = holdout_users(&m, 0.25, 4).unwrap();
        // The validation accuracy every half decade from 0.1 to 10,000: its best is what
        // the search must find (its first sweeps are shorter, so within half a decade).
        let curve: Vec<(f32, f64)> = (0..=10).map(|j| decade_step(0.1, 2 * j)).map(|r| (r, als_accuracy(&rest, &held, r))).collect();
        let best = curve.iter().fold(curve[0], |b, c| if c.1 > b.1 { *c } else { b });
        let ends = curve[0].1.max(curve[10].1);
        assert!(best.1 > 1.05 * ends, "the data must have a clear best lambda: {curve:?}");
        let opts = TuneOptions { factors: vec![8], alpha: vec![4.0], item_rank: Some(0), vae: None, ..TuneOptions::default() };
        let base = TrainConfig { als: AlsConfig { iterations: 10, ..AlsConfig::default() }, ..TrainConfig::default() };
        let (cfg, report, _) = tune(&rest, &held, &embeddings(200, 4), 4, &base, &opts, &Device::flex(), &mut ()).unwrap();
        let chosen = curve.iter().find(|c| c.0 == cfg.als.reg).copied().unwrap_or((cfg.als.reg, 0.0));
        assert!((chosen.0 / best.0).log10().abs() <= 0.51 && chosen.1 >= 0.98 * best.1, "chose {chosen:?}; {curve:?}; {:?}", report.trials);
        assert_eq!((cfg.als.alpha, cfg.als.factors, cfg.item_rank), (4.0, 8, 0), "fixed values stay fixed");
    }
}

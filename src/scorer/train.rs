//! Offline training of a catalog's collaborative side (native only): implicit ALS
//! item factors, a low-rank EASE item-item model, a ridge map from text embeddings into
//! both (cold items get their factors from their text), a popularity bias, and the
//! blend weights chosen on held-out users with the same ranking code the browser runs.

use std::collections::HashMap;

use burn::prelude::Device;

use super::als::{self, AlsConfig};
use super::ease;
use super::imported::ImportedFactors;
use super::linalg;
use super::metrics::MetricSums;
use super::model::{Blend, INTEREST_WEIGHT, ItemSide, Matrix, SHORT_PROFILE, ScorerParams};
use super::rating::{self, RatingErrors, Rated};
use super::rank::Scorer;
use super::sparse::Csr;
use super::vae::{self, VaeConfig, VaeModel};
pub use super::evaluate::{EvalUser, ForeignTable, accuracy, evaluate, evaluate_with, split_by_scenario};
use super::evaluate::best_on_grid;
use crate::error::{Error, ErrorKind, Result};

/// Training settings. The defaults are where the tuner ([`super::tune::tune`]) starts and what
/// is used without a search (`--tune-budget 0`); they were chosen on ML-1M once.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Implicit ALS settings (`factors` is the fold-in's `k`).
    pub als: AlsConfig,
    /// Rank `r` of the item-item model; 0 leaves it out.
    pub item_rank: usize,
    /// EASE's L2 regularization.
    pub ease_lambda: f32,
    /// Most items the item-item model covers (the most interacted ones): EASE holds an
    /// `n x n` matrix. The rest get item-item rows from the text map.
    pub item_item_max: usize,
    /// Ridge regularization of the text map.
    pub text_reg: f32,
    /// Items with at least this many interactions train the text map.
    pub map_min_count: u32,
    /// Half-life of event weights on the device, in days (0: none).
    pub half_life_days: f32,
    /// Ridge regularization of the rating head's user solve.
    pub rating_reg: f32,
    /// Shrinkage (pseudo-count) of the rating head's item biases.
    pub rating_item_reg: f32,
    /// Pseudo-count of a scenario lift: an item needs about this many events before
    /// its share in a scenario moves away from the catalog's.
    pub scenario_prior: f32,
    /// Share of the best held-out Recall@20 + NDCG@20 the short-profile blend may give
    /// up for lists less like the popularity chart (see [`tune_short_blend`]).
    pub short_tolerance: f64,
    /// ALS item factors trained elsewhere (Spark), used instead of training ALS here.
    pub imported: Option<ImportedFactors>,
    /// The autoencoder to train (for `epochs`), `None` for none: the tuner sets it when
    /// held-out users chose one.
    pub vae: Option<VaeConfig>,
    /// How much the autoencoder counts, relative to its blend weight, for an item whose
    /// columns come from its text (no interactions): its mapped decoder column and bias
    /// are moved toward the mapped-from items' mean by this factor (1: as mapped). Chosen
    /// on simulated cold items ([`super::cold::tune_vae_cold`]).
    pub vae_cold: f32,
}

/// What an interaction log says besides the positives: the scenario of each positive
/// and explicit ratings, for the scenario terms and the rating head.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogExtras {
    /// Scenario names (the manifest's `scenarios`), indexed by the values below.
    pub scenario_names: Vec<String>,
    /// The scenario of each positive `(user, item)` that has one.
    pub scenarios: HashMap<(u32, u32), u32>,
    /// Explicit ratings `(user, item, value)`, for the rating head.
    pub ratings: Vec<(u32, u32, f32)>,
}

impl LogExtras {
    /// Whether the ratings vary enough to train a rating head on.
    pub fn has_ratings(&self) -> bool {
        let mut values = self.ratings.iter().map(|r| r.2);
        values.next().is_some_and(|first| self.ratings.iter().any(|r| r.2 != first))
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            als: AlsConfig { factors: 128, ..AlsConfig::default() },
            item_rank: 256,
            ease_lambda: 500.0,
            item_item_max: 20_000,
            text_reg: 10.0,
            map_min_count: 5,
            half_life_days: 0.0,
            rating_reg: 1.0,
            rating_item_reg: 5.0,
            scenario_prior: 10.0,
            short_tolerance: SHORT_TOLERANCE,
            imported: None,
            vae: None,
            vae_cold: 1.0,
        }
    }
}

/// Work the search already did that training the catalog's model on the same users can
/// reuse (a retrain with unchanged choices skips ALS and the EASE inverse).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reuse {
    /// Item factors of the chosen ALS setting at the config's sweep count.
    pub als: Option<(AlsConfig, Vec<f32>)>,
    /// The chosen EASE `B` over the covered items.
    pub item_item: Option<(f32, Vec<f32>)>,
    /// The autoencoder trained with this config (its best epoch).
    pub vae: Option<(VaeConfig, VaeModel)>,
}

/// A trained item side: records `[q | a | c | v | l | b]` (see [`ScorerParams::record_dims`]) and biases for every item, and the params.
#[derive(Clone, Debug, PartialEq)]
pub struct Trained {
    /// Scorer params (blend weights are the defaults until tuned).
    pub params: ScorerParams,
    /// `items * params.record_dims()` factors.
    pub factors: Vec<f32>,
    /// Per item: `ln(1 + interactions)`, or the text map's estimate for an item without any.
    pub bias: Vec<f32>,
    /// Items that had no interaction and got everything from their text.
    pub cold_items: usize,
}

/// Progress of a training run, for the CLI's messages.
pub trait TrainProgress {
    /// A stage started (`"als"`, `"item-item"`, `"text map"`).
    fn stage(&mut self, name: &str);
    /// ALS finished `iteration` of its iterations.
    fn als_iteration(&mut self, _iteration: usize) {}
    /// The tuner scored a setting on the held-out users.
    fn trial(&mut self, _trial: &super::trial::Trial) {}
}

impl TrainProgress for () {
    fn stage(&mut self, _name: &str) {}
}

/// Trains the item side from `user_items` (users x items, values = event confidence)
/// and the items' unit text embeddings (`items * dims`, catalog order); with `extras`,
/// also the scenario lifts and the rating head.
pub fn train(
    user_items: &Csr,
    embeddings: &[f32],
    dims: usize,
    cfg: &TrainConfig,
    extras: &LogExtras,
    progress: &mut dyn TrainProgress,
) -> Result<Trained> {
    train_reusing(user_items, embeddings, dims, cfg, extras, &Reuse::default(), progress)
}

/// [`train`], taking the ALS factors and the EASE matrix from `reuse` where they were
/// computed for this config on this `user_items` (by the tuner).
pub fn train_reusing(
    user_items: &Csr,
    embeddings: &[f32],
    dims: usize,
    cfg: &TrainConfig,
    extras: &LogExtras,
    reuse: &Reuse,
    progress: &mut dyn TrainProgress,
) -> Result<Trained> {
    let n = user_items.cols;
    if embeddings.len() != n * dims {
        return Err(Error::new(
            ErrorKind::Input,
            format!("{} embedding values for {n} items of {dims} dims", embeddings.len()),
        ));
    }
    let k = cfg.imported.as_ref().map_or(cfg.als.factors, |f| f.factors);
    let r = cfg.item_rank;
    let scenarios = extras.scenario_names.len();
    let has_rating = extras.has_ratings();
    let vae = match (&cfg.vae, &reuse.vae) {
        (None, _) => None,
        (Some(c), Some((used, model))) if c == used && model.items == n => Some(model.clone()),
        (Some(c), _) => {
            progress.stage("autoencoder");
            Some(vae::train(user_items, c, &Device::flex(), |_, _| Ok(true))?)
        }
    };
    let vae_dims = vae.as_ref().map_or(0, |m| m.encoder.record_dims());
    let lifts_at = k + 2 * r + vae_dims;
    let record = lifts_at + scenarios + usize::from(has_rating);
    let item_users = user_items.transpose();
    let counts: Vec<u32> = (0..n).map(|i| item_users.row(i).0.len() as u32).collect();

    let q = match (&cfg.imported, &reuse.als) {
        (Some(imported), _) => {
            imported.check(n)?;
            imported.q.clone()
        }
        (None, Some((c, q))) if *c == cfg.als => q.clone(),
        _ => {
            progress.stage("als");
            als::train(user_items, &cfg.als, &mut |it| progress.als_iteration(it))?
        }
    };
    let mut factors = vec![0.0f32; n * record];
    for i in 0..n {
        factors[i * record..i * record + k].copy_from_slice(&q[i * k..(i + 1) * k]);
    }
    if r > 0 {
        progress.stage("item-item");
        let covered = covered_items(user_items, cfg.item_item_max);
        let m = covered.len();
        let gram = ease::item_gram(&restrict_columns(user_items, &covered)?);
        // The tuner's matrix is used in place (an m x m copy is tens of MB on ML-1M).
        let computed;
        let b: &[f32] = match &reuse.item_item {
            Some((lambda, b)) if *lambda == cfg.ease_lambda && b.len() == m * m => b,
            _ => {
                computed = ease::ease(gram.clone(), m, cfg.ease_lambda)?;
                &computed
            }
        };
        let rr = r.min(m);
        let (a, c) = ease::low_rank_for_users(b, &gram, m, rr, 2, cfg.als.seed)?;
        for (pos, &i) in covered.iter().enumerate() {
            let dst = &mut factors[i * record..(i + 1) * record];
            dst[k..k + rr].copy_from_slice(&a[pos * rr..(pos + 1) * rr]);
            dst[k + r..k + r + rr].copy_from_slice(&c[pos * rr..(pos + 1) * rr]);
        }
    }
    if let Some(model) = &vae {
        for i in 0..n {
            factors[i * record + k + 2 * r..i * record + lifts_at].iter_mut().zip(model.record(i)).for_each(|(d, v)| *d = v);
        }
    }
    if scenarios > 0 {
        progress.stage("scenario lifts");
        let lifts = scenario_lifts(user_items, extras, cfg.scenario_prior);
        for i in 0..n {
            factors[i * record + lifts_at..i * record + lifts_at + scenarios].copy_from_slice(&lifts[i * scenarios..(i + 1) * scenarios]);
        }
    }
    let mut rating_head = None;
    if has_rating {
        progress.stage("rating head");
        let (head, item_bias) =
            rating::train(&extras.ratings, user_items.rows, &q, k, cfg.rating_reg, cfg.rating_item_reg, 5)?;
        for i in 0..n {
            factors[(i + 1) * record - 1] = item_bias[i];
        }
        rating_head = Some(head);
    }
    let mut bias: Vec<f32> = counts.iter().map(|&c| (c as f32).ln_1p()).collect();

    progress.stage("text map");
    let (map_rows, cold) = text_map_items(&counts, cfg);
    let text_map = if map_rows.len() >= 2 {
        let w = map_from_text(&mut factors, &mut bias, record, (embeddings, dims), &map_rows, &cold, cfg.text_reg)?;
        // Ship the user-side columns [q | a]: a typed interest counts as such an item.
        let (targets, user_cols) = (record + 1, k + r);
        let data = (0..=dims).flat_map(|row| w[row * targets..row * targets + user_cols].iter().copied()).collect();
        Some(Matrix { rows: dims + 1, cols: user_cols, data })
    } else {
        None
    };

    let params = match &cfg.imported {
        // The imported model's own user solve, over the items it knows.
        Some(f) => ScorerParams { reg_scaling: f.reg_scaling, ..ScorerParams::untuned(k, r, f.reg, f.alpha, f.gram()) },
        None => {
            let mut gram = vec![0.0f32; k * k];
            for i in 0..n {
                let qi = &factors[i * record..i * record + k];
                for a in 0..k {
                    let x = qi[a];
                    for b in 0..k {
                        gram[a * k + b] += x * qi[b];
                    }
                }
            }
            ScorerParams::untuned(k, r, cfg.als.reg, cfg.als.alpha, gram)
        }
    };
    let params = ScorerParams {
        text_map,
        half_life_days: cfg.half_life_days,
        vae: vae.map(|m| m.encoder),
        scenarios,
        rating: rating_head,
        ..params
    };
    if params.text_map.is_some() {
        shrink_toward_mean(&mut factors, record, params.vae_decoder(), &map_rows, &cold, cfg.vae_cold);
    }
    Ok(Trained { params, factors, bias, cold_items: cold.len() })
}

/// Per item and scenario (`items x scenarios`), the log of how much more often the
/// item is chosen in that scenario than its overall count predicts:
/// `ln((n_is + b pi_s) / ((n_i + b) pi_s))` with `pi_s` the scenario's share of all
/// positives and `b` the prior; 0 for an item the log never shows in a scenario.
fn scenario_lifts(user_items: &Csr, extras: &LogExtras, prior: f32) -> Vec<f32> {
    let s = extras.scenario_names.len();
    let n = user_items.cols;
    let mut counts = vec![0.0f64; n * s];
    let mut per_item = vec![0.0f64; n];
    let mut per_scenario = vec![0.0f64; s];
    for u in 0..user_items.rows {
        for &i in user_items.row(u).0 {
            if let Some(&c) = extras.scenarios.get(&(u as u32, i))
                && (c as usize) < s
            {
                counts[i as usize * s + c as usize] += 1.0;
                per_item[i as usize] += 1.0;
                per_scenario[c as usize] += 1.0;
            }
        }
    }
    let total: f64 = per_scenario.iter().sum();
    let b = prior.max(1e-3) as f64;
    let mut out = vec![0.0f32; n * s];
    for i in 0..n {
        for c in 0..s {
            let pi = per_scenario[c] / total.max(1.0);
            if pi > 0.0 && per_item[i] > 0.0 {
                out[i * s + c] = ((counts[i * s + c] + b * pi) / ((per_item[i] + b) * pi)).ln() as f32;
            }
        }
    }
    out
}

/// The items the item-item model covers: the `max` most interacted ones (at least one
/// interaction), in ascending position. EASE holds an `m x m` matrix of them.
pub fn covered_items(user_items: &Csr, max: usize) -> Vec<usize> {
    let item_users = user_items.transpose();
    let count = |i: usize| item_users.row(i).0.len();
    let mut covered: Vec<usize> = (0..user_items.cols).filter(|&i| count(i) > 0).collect();
    covered.sort_by_key(|&i| std::cmp::Reverse(count(i)));
    covered.truncate(max);
    covered.sort_unstable();
    covered
}

/// The columns `keep` (ascending) of `m`, renumbered `0..keep.len()`.
pub fn restrict_columns(m: &Csr, keep: &[usize]) -> Result<Csr> {
    let mut map = vec![u32::MAX; m.cols];
    for (pos, &c) in keep.iter().enumerate() {
        map[c] = pos as u32;
    }
    let mut triplets = Vec::with_capacity(m.nnz());
    for row in 0..m.rows {
        let (idx, val) = m.row(row);
        for (&c, &v) in idx.iter().zip(val) {
            if map[c as usize] != u32::MAX {
                triplets.push((row as u32, map[c as usize], v));
            }
        }
    }
    Csr::from_triplets(m.rows, keep.len(), &triplets)
}

/// The items that train the text map (at least `map_min_count` interactions) and those
/// that take every column from it (none, or unknown to an imported model), by their
/// interaction `counts`.
pub(super) fn text_map_items(counts: &[u32], cfg: &TrainConfig) -> (Vec<usize>, Vec<usize>) {
    let unknown = |i: usize| cfg.imported.as_ref().is_some_and(|f| !f.known[i]);
    let fit = (0..counts.len()).filter(|&i| counts[i] >= cfg.map_min_count && !unknown(i)).collect();
    let mapped = (0..counts.len()).filter(|&i| counts[i] == 0 || unknown(i)).collect();
    (fit, mapped)
}

/// Fits the text map on the `fit` items' records (`record` wide) and biases, and writes
/// its estimate over the `mapped` items'. `text` is the unit embeddings and their width.
/// Returns the map, `(dims + 1) x (record + 1)` (the bias last).
pub(super) fn map_from_text(
    factors: &mut [f32],
    bias: &mut [f32],
    record: usize,
    text: (&[f32], usize),
    fit: &[usize],
    mapped: &[usize],
    reg: f32,
) -> Result<Vec<f32>> {
    let (embeddings, dims) = text;
    let targets = record + 1;
    let y: Vec<f32> =
        fit.iter().flat_map(|&i| factors[i * record..(i + 1) * record].iter().copied().chain([bias[i]])).collect();
    let w = ridge(embeddings, dims, fit, &y, targets, reg)?;
    for &i in mapped {
        let estimate = apply_map(&w, dims, targets, &embeddings[i * dims..(i + 1) * dims]);
        factors[i * record..(i + 1) * record].copy_from_slice(&estimate[..record]);
        bias[i] = estimate[record];
    }
    Ok(w)
}

/// Moves the `mapped` items' record `columns` toward the `fit` items' mean by `scale`
/// (`mean + scale (x - mean)`): among such items, the same as weighing those columns'
/// term by `scale`; beside other items, an average item's value rather than none.
fn shrink_toward_mean(factors: &mut [f32], record: usize, columns: std::ops::Range<usize>, fit: &[usize], mapped: &[usize], scale: f32) {
    if scale == 1.0 || fit.is_empty() || columns.is_empty() {
        return;
    }
    let mut mean = vec![0.0f64; columns.len()];
    for &i in fit {
        mean.iter_mut().zip(&factors[i * record + columns.start..i * record + columns.end]).for_each(|(m, &v)| *m += v as f64);
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / fit.len() as f64) as f32).collect();
    for &i in mapped {
        let row = &mut factors[i * record + columns.start..i * record + columns.end];
        row.iter_mut().zip(&mean).for_each(|(v, &m)| *v = m + scale * (*v - m));
    }
}

/// Ridge regression from `[e_i, 1]` (rows `rows` of `embeddings`) to `y` (one row of
/// `targets` values per training row). Returns `W`, `(dims + 1) x targets`.
fn ridge(embeddings: &[f32], dims: usize, rows: &[usize], y: &[f32], targets: usize, reg: f32) -> Result<Vec<f32>> {
    let p = dims + 1;
    let x = |i: usize, j: usize| {
        if j < dims { embeddings[i * dims + j] as f64 } else { 1.0 }
    };
    let mut xtx = vec![0.0f64; p * p];
    let mut xty = vec![0.0f64; p * targets];
    for (t, &i) in rows.iter().enumerate() {
        let yi = &y[t * targets..(t + 1) * targets];
        for a in 0..p {
            let xa = x(i, a);
            for b in 0..=a {
                xtx[a * p + b] += xa * x(i, b);
            }
            let dst = &mut xty[a * targets..(a + 1) * targets];
            dst.iter_mut().zip(yi).for_each(|(d, &v)| *d += xa * v as f64);
        }
    }
    for a in 0..p {
        for b in 0..a {
            xtx[b * p + a] = xtx[a * p + b];
        }
        // The constant column is not shrunk: it carries the targets' means.
        if a < dims {
            xtx[a * p + a] += reg as f64;
        }
    }
    linalg::cholesky(&mut xtx, p)?;
    let mut w = vec![0.0f32; p * targets];
    let mut col = vec![0.0f64; p];
    for t in 0..targets {
        (0..p).for_each(|a| col[a] = xty[a * targets + t]);
        linalg::cholesky_solve(&xtx, p, &mut col);
        (0..p).for_each(|a| w[a * targets + t] = col[a] as f32);
    }
    Ok(w)
}

fn apply_map(w: &[f32], dims: usize, targets: usize, e: &[f32]) -> Vec<f32> {
    let mut out = w[dims * targets..(dims + 1) * targets].to_vec();
    for (j, &x) in e.iter().enumerate() {
        out.iter_mut().zip(&w[j * targets..(j + 1) * targets]).for_each(|(o, &v)| *o += x * v);
    }
    out
}

/// Scenario weights searched on validation users.
pub const SCENARIO_GRID: [f32; 7] = [0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0];
/// Weights of fold-in events from another scenario searched on validation users.
pub const OTHER_SCENARIO_GRID: [f32; 5] = [1.0, 0.5, 0.25, 0.1, 0.05];

/// One setting of the scenario terms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScenarioSetting {
    /// Blend weight of the scenario lift (0: none).
    pub weight: f32,
    /// Weight of fold-in events from another scenario (1: none).
    pub other_scenario_weight: f32,
}

/// The scenario ablation on the scenario protocol (see [`split_by_scenario`]): the
/// hybrid without scenario terms, with the lift alone, with the event weighting alone,
/// and with both, each part's setting chosen on validation users.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScenarioTuning {
    /// The chosen setting (both parts).
    pub chosen: ScenarioSetting,
    /// Best lift weight with events unweighted.
    pub lift_only: ScenarioSetting,
    /// Best event weight without the lift.
    pub events_only: ScenarioSetting,
    /// Metrics of: none, lift only, events only, both.
    pub sums: [MetricSums; 4],
}

impl ScenarioTuning {
    /// The four settings of the ablation, in the order of `sums`.
    pub fn settings(&self) -> [ScenarioSetting; 4] {
        [ScenarioSetting { weight: 0.0, other_scenario_weight: 1.0 }, self.lift_only, self.events_only, self.chosen]
    }
}

/// Chooses the scenario settings for `blend` on `users` (already split by scenario).
pub fn tune_scenarios(scorer: &Scorer, users: &[EvalUser], blend: Blend) -> Result<ScenarioTuning> {
    let key = |s: &MetricSums| {
        let (r, n, _) = s.means();
        r + n
    };
    let grid: Vec<Blend> = SCENARIO_GRID.iter().map(|&w| Blend { scenario: w, ..blend }).collect();
    let mut results = Vec::new();
    for &other in &OTHER_SCENARIO_GRID {
        let sums = evaluate(scorer, users, &grid, None, other)?;
        results.extend(grid.iter().zip(sums).map(|(b, s)| (ScenarioSetting { weight: b.scenario, other_scenario_weight: other }, s)));
    }
    let best = |filter: &dyn Fn(&ScenarioSetting) -> bool| {
        results
            .iter()
            .filter(|(set, _)| filter(set))
            .fold(None::<&(ScenarioSetting, MetricSums)>, |b, r| if b.is_none_or(|b| key(&r.1) > key(&b.1)) { Some(r) } else { b })
            .copied()
            .ok_or_else(|| Error::new(ErrorKind::Input, "no scenario grid"))
    };
    let none = best(&|s| s.weight == 0.0 && s.other_scenario_weight == 1.0)?;
    let lift = best(&|s| s.other_scenario_weight == 1.0)?;
    let events = best(&|s| s.weight == 0.0)?;
    let both = best(&|_| true)?;
    Ok(ScenarioTuning {
        chosen: both.0,
        lift_only: lift.0,
        events_only: events.0,
        sums: [none.1, lift.1, events.1, both.1],
    })
}

/// The ablation's four settings (from validation) measured on other `users`.
pub fn scenario_ablation(scorer: &Scorer, users: &[EvalUser], blend: Blend, tuned: &ScenarioTuning) -> Result<[MetricSums; 4]> {
    let mut out = [MetricSums::default(); 4];
    for (slot, set) in out.iter_mut().zip(tuned.settings()) {
        *slot = evaluate(scorer, users, &[Blend { scenario: set.weight, ..blend }], None, set.other_scenario_weight)?[0];
    }
    Ok(out)
}

/// Autoencoder weights searched on validation users (relative to the collaborative 1).
/// Its logits rank well alone and differently from the linear terms, so the grid reaches
/// past the others' weights: the linear terms can end up the minor part.
pub const VAE_GRID: [f32; 6] = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0];

/// The blend grid searched on validation users: collaborative fixed at 1, the other
/// weights relative to it; the autoencoder's from [`VAE_GRID`] when the catalog has one.
pub fn blend_grid(has_item_item: bool, has_vae: bool, semantic: &[f32], popularity: &[f32]) -> Vec<Blend> {
    let item_item: &[f32] = if has_item_item { &[0.0, 0.25, 0.43, 0.67, 1.0, 1.5] } else { &[0.0] };
    let vae: &[f32] = if has_vae { &VAE_GRID } else { &[0.0] };
    let mut grid = Vec::new();
    for &v in vae {
        for &ii in item_item {
            for &sem in semantic {
                for &pop in popularity {
                    grid.push(Blend { collaborative: 1.0, item_item: ii, semantic: sem, popularity: pop, scenario: 0.0, vae: v, interest: INTEREST_WEIGHT });
                }
            }
        }
    }
    grid
}

/// The short-profile grid: [`blend_grid`], and the same without the ALS fold-in (the
/// item-item model at weight 1), whose prior leans towards popular items when it has
/// only a few events to go on.
pub fn short_blend_grid(has_item_item: bool, semantic: &[f32], popularity: &[f32]) -> Vec<Blend> {
    let mut grid = blend_grid(has_item_item, false, semantic, popularity);
    if has_item_item {
        for &sem in semantic {
            for &pop in popularity {
                grid.push(Blend { collaborative: 0.0, item_item: 1.0, semantic: sem, popularity: pop, scenario: 0.0, vae: 0.0, interest: INTEREST_WEIGHT });
            }
        }
    }
    grid
}

/// Semantic weights searched for full profiles.
pub const SEMANTIC_GRID: [f32; 6] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5];
/// Popularity weights searched for full profiles.
pub const POPULARITY_GRID: [f32; 6] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5];
/// Popularity weights searched for short profiles, where a three-item fold-in is noisy
/// and popularity alone is a strong baseline.
pub const SHORT_POPULARITY_GRID: [f32; 9] = [0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
/// Semantic weights searched for short profiles, where the text matters more.
pub const SHORT_SEMANTIC_GRID: [f32; 7] = [0.0, 0.1, 0.3, 0.5, 1.0, 2.0, 4.0];

/// The grid blend with the best sum of Recall@20 and NDCG@20 on `users`, and its sums.
pub fn tune_blend(scorer: &Scorer, users: &[EvalUser]) -> Result<(Blend, MetricSums)> {
    tune_blend_with(scorer, users, None)
}

/// [`tune_blend`] with the autoencoder's weight fixed at `vae` when given (a catalog
/// without an autoencoder ignores it).
pub fn tune_blend_with(scorer: &Scorer, users: &[EvalUser], vae: Option<f32>) -> Result<(Blend, MetricSums)> {
    let params = scorer.params();
    let has_vae = params.is_some_and(|p| p.vae.is_some());
    let mut grid = blend_grid(params.is_some_and(|p| p.item_rank > 0), has_vae && vae.is_none(), &SEMANTIC_GRID, &POPULARITY_GRID);
    if let Some(w) = vae.filter(|_| has_vae) {
        grid.iter_mut().for_each(|b| b.vae = w);
    }
    tune_on_grid(scorer, users, grid)
}

/// Default [`TrainConfig::short_tolerance`]. On a random three of a user's items, the
/// most accurate short blend is mostly the popularity chart (about half of each top 20 on
/// ml-latest-small): a visitor who liked three animated films is shown Forrest Gump and
/// Pulp Fiction. Within 15% of that accuracy there are blends whose lists follow the
/// three items (a fifth to a quarter of the chart), which is what a short profile is for.
pub const SHORT_TOLERANCE: f64 = 0.15;

/// The short-profile blend, and the most accurate one it was chosen against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShortTuning {
    /// The blend shipped: the least chart-like within the tolerance.
    pub chosen: (Blend, MetricSums),
    /// The blend with the best Recall@20 + NDCG@20.
    pub most_accurate: (Blend, MetricSums),
    /// The share of the best accuracy the chosen blend was allowed to give up.
    pub tolerance: f64,
}

/// [`tune_blend`] for short profiles: each user's fold-in cut to `SHORT_PROFILE - 2`
/// items drawn with `seed` (held-out items unchanged). Of the grid blends whose
/// Recall@20 + NDCG@20 is within `tolerance` (a share) of the best, the one whose lists share the
/// least with the popularity top 20 (`MetricSums::popular_overlap`) is chosen.
pub fn tune_short_blend(scorer: &Scorer, users: &[EvalUser], seed: u64, tolerance: f64) -> Result<ShortTuning> {
    check_short_tolerance(tolerance)?;
    let mut rng = super::als::SplitMix(seed ^ 0x5407);
    let keep = SHORT_PROFILE.saturating_sub(2).max(1);
    let short: Vec<EvalUser> = users
        .iter()
        .map(|u| {
            let mut f = u.fold_in.clone();
            for i in (1..f.len()).rev() {
                f.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            f.truncate(keep);
            EvalUser::new(f, u.held_out.clone())
        })
        .collect();
    let grid =
        short_blend_grid(scorer.params().is_some_and(|p| p.item_rank > 0), &SHORT_SEMANTIC_GRID, &SHORT_POPULARITY_GRID);
    let sums = evaluate(scorer, &short, &grid, None, 1.0)?;
    let (chosen, best) =
        least_popular_within(&sums, tolerance).ok_or_else(|| Error::new(ErrorKind::Input, "no short-profile grid"))?;
    Ok(ShortTuning { chosen: (grid[chosen], sums[chosen]), most_accurate: (grid[best], sums[best]), tolerance })
}

/// Refuses a short-profile tolerance outside `[0, 1)`.
pub fn check_short_tolerance(tolerance: f64) -> Result<()> {
    if (0.0..1.0).contains(&tolerance) {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::Input, format!("the short-profile tolerance must be in [0, 1), not {tolerance}")))
    }
}

/// Of `sums` within `tolerance` of the best accuracy, the index of the one least like the
/// popularity chart (the most accurate of equals), and the index of the most accurate.
fn least_popular_within(sums: &[MetricSums], tolerance: f64) -> Option<(usize, usize)> {
    let best = best_on_grid(sums)?;
    let floor = (1.0 - tolerance) * accuracy(&sums[best]);
    let chosen = (0..sums.len()).filter(|&i| accuracy(&sums[i]) >= floor).fold(best, |b, i| {
        let (o, ob) = (sums[i].popular_overlap(), sums[b].popular_overlap());
        if o < ob || (o == ob && accuracy(&sums[i]) > accuracy(&sums[b])) { i } else { b }
    });
    Some((chosen, best))
}

fn tune_on_grid(scorer: &Scorer, users: &[EvalUser], grid: Vec<Blend>) -> Result<(Blend, MetricSums)> {
    let sums = evaluate(scorer, users, &grid, None, 1.0)?;
    let best = best_on_grid(&sums).ok_or_else(|| Error::new(ErrorKind::Input, "no blend grid"))?;
    Ok((grid[best], sums[best]))
}

/// The scorer for a trained item side and the items' embeddings (int8 rows, as shipped).
pub fn scorer_for(trained: &Trained, embeddings: &[f32], dims: usize, device: &Device) -> Result<Scorer> {
    let items = ItemSide::new(trained.params.record_dims(), trained.factors.clone(), trained.bias.clone(), dims, embeddings);
    Scorer::new(items, Some(trained.params.clone()), device)
}

/// Splits users for tuning without a split file: a seeded `fraction` of the users with
/// at least 5 items are held out, each keeping 80% of their items as fold-in and 20%
/// as held-out (as in PROTOCOL.md). Returns the training matrix (the other users), the
/// held-out users and their rows in `user_items`.
pub fn holdout_users(user_items: &Csr, fraction: f64, seed: u64) -> Result<(Csr, Vec<EvalUser>, Vec<u32>)> {
    let mut rng = super::als::SplitMix(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut triplets = Vec::new();
    let mut users = Vec::new();
    let mut rows = Vec::new();
    for u in 0..user_items.rows {
        let (idx, val) = user_items.row(u);
        let draw = rng.uniform();
        if idx.len() >= 5 && draw < fraction {
            let mut order: Vec<usize> = (0..idx.len()).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            let held = (idx.len() / 5).max(1);
            let mut user = EvalUser::default();
            for (rank, &p) in order.iter().enumerate() {
                if rank < held { user.held_out.push(idx[p]) } else { user.fold_in.push(idx[p]) }
            }
            users.push(user);
            rows.push(u as u32);
        } else {
            triplets.extend(idx.iter().zip(val).map(|(&i, &v)| (u as u32, i, v)));
        }
    }
    Ok((Csr::from_triplets(user_items.rows, user_items.cols, &triplets)?, users, rows))
}

/// The rating head's choice on held-out users: its regularization and the errors of the
/// head and its baselines on their held-out ratings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatingTuning {
    /// Chosen ridge regularization of the user solve.
    pub reg: f32,
    /// Squared errors on the held-out ratings.
    pub errors: RatingErrors,
}

/// Rating regularizations searched on held-out users.
pub const RATING_REG_GRID: [f32; 5] = [0.1, 0.3, 1.0, 3.0, 10.0];

/// A held-out user's ratings, 80% to fold in and 20% to predict (seeded draw).
pub(crate) fn split_ratings(ratings: &[(u32, f32)], rng: &mut super::als::SplitMix) -> HeldRatings {
    let mut fold = Vec::new();
    let mut held = Vec::new();
    for &(item, value) in ratings {
        if rng.uniform() < 0.2 { held.push((item, value)) } else { fold.push(Rated { item, value, weight: 1.0 }) }
    }
    (fold, held)
}

/// A held-out user's ratings: to fold in, and to predict.
pub(crate) type HeldRatings = (Vec<Rated>, Vec<(u32, f32)>);

/// Chooses the rating head's regularization on held-out users' ratings, over the
/// tuning model's item factors.
pub(crate) fn tune_rating(
    model: &Trained,
    rest: &[(u32, u32, f32)],
    held: &[HeldRatings],
    users: usize,
    embeddings: &[f32],
    dims: usize,
    cfg: &TrainConfig,
) -> Result<RatingTuning> {
    let record = model.params.record_dims();
    let k = model.params.als_dims;
    let n = model.bias.len();
    let q: Vec<f32> = (0..n).flat_map(|i| model.factors[i * record..i * record + k].iter().copied()).collect();
    // The embeddings are quantized once; each setting only rewrites the rating column.
    let mut items = ItemSide::new(record, model.factors.clone(), model.bias.clone(), dims, embeddings);
    let mut best: Option<RatingTuning> = None;
    for &reg in &RATING_REG_GRID {
        let (head, item_bias) = rating::train(rest, users, &q, k, reg, cfg.rating_item_reg, 5)?;
        for (i, b) in item_bias.iter().enumerate() {
            items.factors[(i + 1) * record - 1] = *b;
        }
        let params = ScorerParams { rating: Some(head), ..model.params.clone() };
        let mut errors = RatingErrors::default();
        for (fold, predict) in held {
            let w = rating::user_rating_vector(&items, &params, fold)?.unwrap_or_default();
            errors.add(&items, &params, &w, predict);
        }
        if best.is_none_or(|b| errors.rmse().2 < b.errors.rmse().2) {
            best = Some(RatingTuning { reg, errors });
        }
    }
    best.ok_or_else(|| Error::new(ErrorKind::Input, "no rating grid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_keeps_every_interaction_once_and_is_reproducible() {
        let triplets: Vec<(u32, u32, f32)> =
            (0..200u32).flat_map(|u| (0..10u32).map(move |i| (u, (u + i) % 50, 1.0))).collect();
        let m = Csr::from_triplets(200, 50, &triplets).unwrap();
        let (rest, users, rows) = holdout_users(&m, 0.1, 7).unwrap();
        assert_eq!(rows.len(), users.len());
        let held: usize = users.iter().map(|u| u.fold_in.len() + u.held_out.len()).sum();
        assert_eq!(rest.nnz() + held, m.nnz());
        assert!(!users.is_empty() && users.len() < 60, "{} users held out", users.len());
        assert!(users.iter().all(|u| u.held_out.len() == 2 && u.fold_in.len() == 8));
        assert_eq!(holdout_users(&m, 0.1, 7).unwrap().1, users);
    }

    #[test]
    fn short_blend_is_the_least_chart_like_within_the_tolerance() {
        let sums = |recall: f64, popular: f64| MetricSums { users: 1, recall20: recall, ndcg20: 0.0, ndcg100: 0.0, popular20: popular };
        let grid = [sums(0.30, 0.5), sums(0.28, 0.3), sums(0.26, 0.2), sums(0.20, 0.1), sums(0.27, 0.2)];
        assert_eq!(least_popular_within(&grid, 0.0), Some((0, 0)), "no tolerance: the most accurate");
        assert_eq!(least_popular_within(&grid, 0.1), Some((4, 0)), "0.27 and 0.26 tie on overlap; 0.20 is too far");
        assert_eq!(least_popular_within(&grid, 0.5), Some((3, 0)));
        assert_eq!(least_popular_within(&[], 0.1), None);
    }

    #[test]
    fn ridge_recovers_a_linear_map_and_its_constant() {
        // Targets y = 2 e0 - e1 + 3 over four unit-ish embeddings.
        let e = vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8, -0.6, 0.8];
        let y: Vec<f32> = e.chunks(2).map(|v| 2.0 * v[0] - v[1] + 3.0).collect();
        let w = ridge(&e, 2, &[0, 1, 2, 3], &y, 1, 1e-6).unwrap();
        assert!((w[0] - 2.0).abs() < 1e-3 && (w[1] + 1.0).abs() < 1e-3 && (w[2] - 3.0).abs() < 1e-3, "{w:?}");
        assert!((apply_map(&w, 2, 1, &[0.0, 0.0])[0] - 3.0).abs() < 1e-3);
    }
}

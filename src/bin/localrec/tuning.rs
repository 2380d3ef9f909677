//! The hyper-parameter flags `build`, `train` and `eval` share (the tuner's budget, the
//! device's bytes per item, and the values a publisher may fix instead of searching),
//! and how a trial reads on stderr (its JSON is `localrec::publish::report`).

use std::time::Duration;

use localrec::catalog::shard::MAX_FACTOR_DIMS;
use localrec::scorer::train::TrainConfig;
use localrec::scorer::vae::VaeConfig;
use localrec::scorer::tune::{DEFAULT_BUDGET_SECONDS, DEFAULT_RECORD_DIMS, Setting, Trial, TuneOptions, vae_for_budget};
use localrec::{Error, ErrorKind, Result};

/// Hyper-parameters: chosen on held-out users within `--tune-budget`, or fixed by a flag.
#[derive(clap::Args, Clone, Debug)]
pub struct TuneArgs {
    /// Seconds the hyper-parameter search on held-out users may take (0: no search; the
    /// values given, a retrained catalog's earlier choices, or the defaults are used).
    #[arg(long, default_value_t = DEFAULT_BUDGET_SECONDS as f64)]
    tune_budget: f64,
    /// Most bytes of collaborative factors per item on the device (f32 columns of the
    /// ALS factors, the item-item model's two rows and the autoencoder's first-layer row
    /// and decoder column); the tuner stays within it. The autoencoder takes what is left
    /// beyond the linear models' 2,560 bytes (none at 2,560 or less).
    #[arg(long, default_value_t = DEFAULT_RECORD_DIMS * 4)]
    factor_bytes: usize,
    /// ALS factors k (fixes it; default: chosen).
    #[arg(long)]
    factors: Option<usize>,
    /// Rank of the item-item model, 0 for none (fixes it; default: what the budget leaves).
    #[arg(long)]
    item_rank: Option<usize>,
    /// ALS L2 regularization (fixes it; default: chosen).
    #[arg(long)]
    reg: Option<f32>,
    /// ALS confidence scale (fixes it; default: chosen).
    #[arg(long)]
    alpha: Option<f32>,
    /// EASE regularization of the item-item model (fixes it; default: chosen).
    #[arg(long)]
    ease_lambda: Option<f32>,
    /// ALS iterations.
    #[arg(long, default_value_t = 15)]
    iterations: usize,
    /// Blend weight of the autoencoder term, the ALS term's being 1 (fixes it; 0: no
    /// autoencoder; default: chosen on held-out users).
    #[arg(long)]
    vae_weight: Option<f32>,
}

impl TuneArgs {
    /// The search's options, refusing values out of range.
    pub fn options(&self) -> Result<TuneOptions> {
        let bad = |m: &str| Err(Error::new(ErrorKind::Input, m.to_string()));
        if !self.tune_budget.is_finite() || self.tune_budget < 0.0 || self.tune_budget > 1e7 {
            return bad("--tune-budget must be a number of seconds from 0 to 10000000");
        }
        if self.factor_bytes < 4 || self.factor_bytes > MAX_FACTOR_DIMS * 4 {
            return bad(&format!("--factor-bytes must be from 4 to {}", MAX_FACTOR_DIMS * 4));
        }
        let max_dims = self.factor_bytes / 4;
        if self.factors.is_some_and(|k| k == 0 || k > max_dims) || self.iterations == 0 {
            return bad("--factors must be at least 1 and fit --factor-bytes, and --iterations at least 1");
        }
        if self.factors.unwrap_or(1).saturating_add(self.item_rank.unwrap_or(0).saturating_mul(2)) > max_dims {
            return bad("--factors + 2 x --item-rank must fit --factor-bytes (4 bytes a column)");
        }
        let positive = |v: Option<f32>| v.is_none_or(|v| v.is_finite() && v > 0.0);
        if !positive(self.reg) || !positive(self.ease_lambda) || !self.alpha.is_none_or(|a| a.is_finite() && a >= 0.0) {
            return bad("--reg and --ease-lambda must be > 0, --alpha >= 0");
        }
        if !self.vae_weight.is_none_or(|w| w.is_finite() && w >= 0.0) {
            return bad("--vae-weight must be a number >= 0");
        }
        let defaults = TuneOptions::default();
        Ok(TuneOptions {
            budget: Duration::from_secs_f64(self.tune_budget),
            max_record_dims: max_dims,
            factors: self.factors.into_iter().collect(),
            reg: self.reg.into_iter().collect(),
            alpha: self.alpha.into_iter().collect(),
            ease_lambda: self.ease_lambda.into_iter().collect(),
            item_rank: self.item_rank,
            vae: defaults.vae.filter(|_| self.vae_weight != Some(0.0)),
            vae_weight: self.vae_weight,
        })
    }

    /// The training config the search starts from (and what is used without one).
    pub fn base(&self, mut cfg: TrainConfig) -> TrainConfig {
        cfg.als.iterations = self.iterations;
        cfg.als.factors = self.factors.unwrap_or(cfg.als.factors);
        cfg.als.reg = self.reg.unwrap_or(cfg.als.reg);
        cfg.als.alpha = self.alpha.unwrap_or(cfg.als.alpha);
        cfg.ease_lambda = self.ease_lambda.unwrap_or(cfg.ease_lambda);
        cfg.item_rank = self.item_rank.unwrap_or(cfg.item_rank);
        cfg
    }

    /// Where the search starts, or what is used without one: a catalog's earlier choices
    /// (its manifest's `collaborative.tuning.chosen`), so that `train --tune-budget 0`
    /// retrains with them at once; values out of range there are ignored.
    pub fn previous(chosen: &serde_json::Value, mut cfg: TrainConfig) -> TrainConfig {
        let positive = |key: &str| chosen[key].as_f64().filter(|v| v.is_finite() && *v > 0.0).map(|v| v as f32);
        let width = |key: &str| chosen[key].as_u64().and_then(|v| usize::try_from(v).ok()).filter(|&v| v <= MAX_FACTOR_DIMS);
        if let (Some(k), Some(r)) = (width("factors"), width("item_rank"))
            && k >= 1
            && k.saturating_add(r.saturating_mul(2)) <= MAX_FACTOR_DIMS
        {
            (cfg.als.factors, cfg.item_rank) = (k, r);
        }
        cfg.als.reg = positive("reg").unwrap_or(cfg.als.reg);
        cfg.als.alpha = positive("alpha").unwrap_or(cfg.als.alpha);
        cfg.ease_lambda = positive("ease_lambda").unwrap_or(cfg.ease_lambda);
        let vae = &chosen["vae"];
        let count = |key: &str| vae[key].as_u64().and_then(|v| usize::try_from(v).ok()).filter(|v| (1..=MAX_FACTOR_DIMS).contains(v));
        if let (Some(hidden), Some(latent), Some(epochs)) = (count("hidden"), count("latent"), count("epochs")) {
            cfg.vae = Some(VaeConfig { hidden, latent, epochs, seed: cfg.als.seed, ..VaeConfig::default() });
        }
        cfg
    }

    /// Most record columns a catalog may get (the shard plan is cut for it): `k + 2r`
    /// exactly as given and the autoencoder's columns when the budget holds one, or what
    /// the byte budget allows.
    pub fn max_record_dims(&self) -> usize {
        match (self.factors, self.item_rank) {
            (Some(k), Some(r)) => {
                let budget = self.factor_bytes / 4;
                let vae = vae_for_budget(&VaeConfig::default(), budget).filter(|_| self.vae_weight != Some(0.0));
                k.saturating_add(r.saturating_mul(2)).saturating_add(vae.map_or(0, |v| v.hidden + v.latent + 1))
            }
            _ => self.factor_bytes / 4,
        }
    }
}

/// A trial as a person reads it on stderr.
pub fn trial_line(t: &Trial) -> String {
    let (r, n, _) = t.sums.means();
    let what = match t.setting {
        Setting::Als { factors, reg, alpha, iterations } => {
            format!("als k {factors} reg {reg} alpha {alpha} ({iterations} sweeps)")
        }
        Setting::ItemItem { lambda, items, rank } if rank >= items => format!("item-item lambda {lambda} ({items} items, full rank)"),
        Setting::ItemItem { lambda, items, rank } => format!("item-item lambda {lambda} ({items} items, rank {rank})"),
        Setting::Layout { factors, item_rank } => format!("hybrid k {factors}, item-item rank {item_rank}"),
        Setting::Autoencoder { hidden, latent, epochs } => format!("autoencoder {hidden}/{latent} after {epochs} epochs"),
    };
    format!("{what}: validation Recall@20 {r:.4}, NDCG@20 {n:.4} ({:.1} s)", t.seconds)
}

//! Trains a catalog's collaborative side end to end (native only): the hyper-parameter
//! search ([`super::tune`]) on held-out users, the blend and the other weights tuned on
//! the same users, then the final model on every user ([`super::train`]). The layer
//! above both, so the tuner can train candidates without training calling the tuner.

use std::collections::{HashMap, HashSet};

use burn::prelude::Device;

use super::als::SplitMix;
use super::cold::tune_vae_cold;
use super::cross::{ForeignTuning, tune_foreign};
use super::metrics::MetricSums;
use super::model::Blend;
use super::sparse::Csr;
use super::train::{
    LogExtras, RatingTuning, ScenarioTuning, ShortTuning, TrainConfig, TrainProgress, Trained, holdout_users, scorer_for,
    split_by_scenario, split_ratings, train, train_reusing, tune_blend_with, tune_rating, tune_scenarios, tune_short_blend,
};
use super::tune::{TuneOptions, TuneReport, tune};
use crate::error::Result;

/// What tuning on held-out users chose and measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// The hyper-parameter search (ALS, item-item): choices, trials, time.
    pub search: TuneReport,
    /// The chosen hybrid on the held-out users.
    pub sums: MetricSums,
    /// The short-profile blend on the held-out users cut to short profiles.
    pub short: Option<ShortTuning>,
    /// The scenario ablation, when the log has scenarios.
    pub scenario: Option<ScenarioTuning>,
    /// The rating head, when the log has ratings.
    pub rating: Option<RatingTuning>,
    /// The foreign weight and blend (cross-domain), when enough held-out users have
    /// likes in both halves of the text space.
    pub foreign: Option<ForeignTuning>,
}

/// Trains for a catalog: the hyper-parameters ([`tune`] within `opts`), then the
/// blend (and the scenario weights and the rating head's regularization, when the log has
/// them) are tuned on held-out users with a model trained without them, then the item
/// side is trained on every user with those choices.
#[allow(clippy::too_many_arguments)]
pub fn train_tuned(
    user_items: &Csr,
    embeddings: &[f32],
    dims: usize,
    cfg: &TrainConfig,
    opts: &TuneOptions,
    extras: &LogExtras,
    device: &Device,
    progress: &mut dyn TrainProgress,
) -> Result<(Trained, Option<Tuning>)> {
    let (rest, mut held, rows) = holdout_users(user_items, 0.1, cfg.als.seed)?;
    let mut cfg = cfg.clone();
    let mut tuned = None;
    if held.len() >= 10 {
        let held_rows: HashSet<u32> = rows.iter().copied().collect();
        let scenario_of = |u: u32, items: &[u32]| -> Vec<u32> {
            let s: Option<Vec<u32>> = items.iter().map(|&i| extras.scenarios.get(&(u, i)).copied()).collect();
            s.unwrap_or_default()
        };
        for (user, &u) in held.iter_mut().zip(&rows) {
            user.fold_in_scenarios = scenario_of(u, &user.fold_in);
            user.held_out_scenarios = scenario_of(u, &user.held_out);
        }
        let rest_extras = LogExtras {
            ratings: extras.ratings.iter().filter(|r| !held_rows.contains(&r.0)).copied().collect(),
            ..extras.clone()
        };
        progress.stage("tuning on held-out users");
        let (chosen, mut search, reuse) = tune(&rest, &held, embeddings, dims, &cfg, opts, device, progress)?;
        cfg = chosen;
        let model = train_reusing(&rest, embeddings, dims, &cfg, &rest_extras, &reuse, progress)?;
        let scorer = scorer_for(&model, embeddings, dims, device)?;
        let (blend, sums) = tune_blend_with(&scorer, &held, opts.vae_weight)?;
        if blend.vae == 0.0 {
            // Held-out users gave the autoencoder no weight: the catalog ships without it.
            cfg.vae = None;
            search.vae = None;
        }
        if blend.vae != 0.0 {
            progress.stage("autoencoder on simulated cold items");
        }
        search.vae_cold = tune_vae_cold(&model, &rest, embeddings, dims, &cfg, &held, &blend, device)?;
        cfg.vae_cold = search.vae_cold.as_ref().map_or(1.0, |c| c.chosen);
        let short = tune_short_blend(&scorer, &held, cfg.als.seed, cfg.short_tolerance)?;
        progress.stage("cross-domain weights on held-out users");
        let foreign = tune_foreign(&scorer, &held, blend)?;
        let scenario = if model.params.scenarios > 0 {
            let by_scenario = split_by_scenario(&held);
            if by_scenario.is_empty() { None } else { Some(tune_scenarios(&scorer, &by_scenario, blend)?) }
        } else {
            None
        };
        let rating = if model.params.rating.is_some() && rest_extras.has_ratings() {
            let mut rng = SplitMix(cfg.als.seed ^ 0x4a71);
            let mut by_user: HashMap<u32, Vec<(u32, f32)>> = HashMap::new();
            for &(u, i, v) in &extras.ratings {
                if held_rows.contains(&u) {
                    by_user.entry(u).or_default().push((i, v));
                }
            }
            let split: Vec<_> = rows.iter().filter_map(|u| by_user.get(u)).map(|r| split_ratings(r, &mut rng)).collect();
            let t = tune_rating(&model, &rest_extras.ratings, &split, user_items.rows, embeddings, dims, &cfg)?;
            cfg.rating_reg = t.reg;
            Some(t)
        } else {
            None
        };
        tuned = Some((blend, short.chosen.0, Tuning { search, sums, short: Some(short), scenario, rating, foreign }));
    }
    progress.stage("final model on every user");
    let mut trained = train(user_items, embeddings, dims, &cfg, extras, progress)?;
    if let Some((blend, short, tuning)) = &tuned {
        let scenario_weight = tuning.scenario.map_or(0.0, |s| s.chosen.weight);
        trained.params.blend = Blend { scenario: scenario_weight, ..*blend };
        trained.params.short_blend = Some(Blend { scenario: scenario_weight, ..*short });
        trained.params.other_scenario_weight = tuning.scenario.map_or(1.0, |s| s.chosen.other_scenario_weight);
        if let Some(f) = &tuning.foreign {
            trained.params.foreign_weight = f.weight;
            trained.params.foreign_blend = Some(Blend { scenario: scenario_weight, ..f.blend });
        }
    }
    Ok((trained, tuned.map(|t| t.2)))
}

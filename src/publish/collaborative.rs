//! The collaborative side as the publisher trains it (`localrec build` and `localrec
//! train`): positives from an interaction log, the tuner and the trainer of
//! `scorer::train` on the embeddings as the shards hold them, and what that adds to a
//! catalog (`CollaborativeSide`: the manifest's `collaborative` object, factors, bias).

use std::time::Instant;

use super::progress::PublishProgress;
use crate::catalog::build::CollaborativeSide;
use crate::catalog::input::Interactions;
use crate::catalog::{Collaborative, QuantizedRow};
use crate::error::{Error, ErrorKind, Result};
use crate::scorer::imported::ImportedFactors;
use crate::scorer::sparse::Csr;
use crate::scorer::fit::{Tuning, train_tuned};
use crate::scorer::train::{LogExtras, TrainConfig};
use crate::scorer::tune::TuneOptions;

/// The collaborative side's settings, when a build trains one.
pub struct Training {
    /// Where the tuner starts (an imported model's factors in `imported`).
    pub config: TrainConfig,
    /// The tuner's options.
    pub options: TuneOptions,
    /// Most record columns `k + 2r` the tuner may choose: a build's shards are cut for the
    /// widest. (A retrain writes records as wide as what it trained.)
    pub max_record_dims: usize,
    /// With ratings, the lowest that counts as a positive.
    pub positive_rating: f32,
}

/// The training config and tuner options with Spark's factors in: the ALS width, reg
/// and alpha are the imported model's (the tuner searches only the rest: item-item, blend).
pub fn with_imported(mut cfg: TrainConfig, mut opts: TuneOptions, imported: Option<ImportedFactors>) -> (TrainConfig, TuneOptions) {
    if let Some(f) = &imported {
        cfg.als.factors = f.factors;
        cfg.als.reg = f.reg;
        cfg.als.alpha = f.alpha;
        opts.factors = vec![f.factors];
        opts.reg = vec![f.reg];
        opts.alpha = vec![f.alpha];
    }
    cfg.imported = imported;
    (cfg, opts)
}

/// What the log says besides positives: each positive's scenario (its latest event's)
/// and the explicit ratings.
pub fn log_extras(interactions: &Interactions) -> LogExtras {
    let mut extras = LogExtras { scenario_names: interactions.scenarios.clone(), ..LogExtras::default() };
    for r in &interactions.rows {
        if let Some(s) = r.scenario {
            extras.scenarios.insert((r.user, r.item), s);
        }
        if let Some(v) = r.rating {
            extras.ratings.push((r.user, r.item, v));
        }
    }
    extras
}

/// Trains the collaborative side: positives (ratings at or above `positive_rating`,
/// every event when there are no ratings) of each user, repeated events adding
/// confidence; embeddings as the shards hold them (int8, dequantized, unit length);
/// scenarios and ratings when the log has them. Checked to fit the catalog's `rows`.
pub fn train_side(
    training: &Training,
    interactions: &Interactions,
    extras: &LogExtras,
    rows: &[QuantizedRow],
    dims: usize,
    progress: &mut dyn PublishProgress,
) -> Result<(CollaborativeSide, Option<Tuning>)> {
    let positive_rating = training.positive_rating;
    let triplets: Vec<(u32, u32, f32)> = interactions
        .rows
        .iter()
        .filter(|r| r.rating.is_none_or(|v| v >= positive_rating))
        .map(|r| (r.user, r.item, 1.0))
        .collect();
    if triplets.is_empty() {
        return Err(Error::new(ErrorKind::Input, "no positive interaction to train on (see --positive-rating)"));
    }
    let matrix = Csr::from_triplets(interactions.users.len(), rows.len(), &triplets)?;
    let mut embeddings = Vec::with_capacity(rows.len().saturating_mul(dims));
    for row in rows {
        let mut e: Vec<f32> = row.values.iter().map(|&v| v as f32 * row.scale).collect();
        crate::scorer::model::normalize(&mut e);
        embeddings.extend(e);
    }
    let t = Instant::now();
    let device = crate::native::NativeBackend::Cpu.device()?;
    let (trained, tuning) = train_tuned(&matrix, &embeddings, dims, &training.config, &training.options, extras, &device, progress)?;
    progress.note(&format!(
        "trained the collaborative side in {:.1} s: {} users, {} positives, k = {}, item-item rank {}, {} scenarios, rating head: {}, {} items from text only",
        t.elapsed().as_secs_f64(),
        interactions.users.len(),
        matrix.nnz(),
        trained.params.als_dims,
        trained.params.item_rank,
        trained.params.scenarios,
        if trained.params.rating.is_some() { "yes" } else { "no" },
        trained.cold_items
    ));
    let params = serde_json::to_value(&trained.params)
        .map_err(|e| Error::with_source(ErrorKind::Format, "cannot write the scorer params", e))?;
    let serde_json::Value::Object(params) = params else {
        return Err(Error::new(ErrorKind::Format, "the scorer params are not a JSON object"));
    };
    let side = CollaborativeSide {
        manifest: Collaborative {
            dims: trained.params.record_dims(),
            bias: true,
            params,
            tuning: tuning.as_ref().map(|t| super::report::search_manifest_json(&t.search)),
        },
        scenarios: extras.scenario_names.clone(),
        factors: trained.factors,
        bias: Some(trained.bias),
    };
    crate::catalog::build::check_collaborative(&side, rows.len())?;
    Ok((side, tuning))
}

//! What the hyper-parameter search ([`super::tune`]) scores, as plain data: a setting and
//! its validation metrics. Below both the tuner and training, so a training run's
//! progress can report trials without training depending on the tuner.

use super::metrics::MetricSums;

/// One setting the tuner scored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting {
    /// ALS alone (the collaborative term) after `iterations` sweeps.
    Als {
        /// Factor count.
        factors: usize,
        /// L2 regularization.
        reg: f32,
        /// Confidence scale.
        alpha: f32,
        /// Sweeps done when scored.
        iterations: usize,
    },
    /// EASE alone, over the `items` most interacted items, at `rank` (`items`: full rank;
    /// less: compressed as the catalog ships it, by [`super::ease::low_rank_for_users`]).
    ItemItem {
        /// L2 regularization.
        lambda: f32,
        /// Items it covered ([`super::tune::EASE_SEARCH_ITEMS`] at most).
        items: usize,
        /// Rank it was scored at.
        rank: usize,
    },
    /// The autoencoder alone after `epochs` epochs.
    Autoencoder {
        /// Encoder width.
        hidden: usize,
        /// Latent width.
        latent: usize,
        /// Epochs trained when scored.
        epochs: usize,
    },
    /// The hybrid (blend tuned) with ALS width `factors` and item-item rank `item_rank`.
    Layout {
        /// ALS factor count.
        factors: usize,
        /// Item-item rank.
        item_rank: usize,
    },
}

/// A scored setting: its validation metrics and the seconds it took (training and scoring).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trial {
    /// What was trained.
    pub setting: Setting,
    /// Validation metrics.
    pub sums: MetricSums,
    /// Wall time of the trial.
    pub seconds: f64,
}


//! How much the autoencoder counts for an item without interactions (native only).
//!
//! Such an item takes every record column from its text (the ridge map of
//! [`super::train`]). The autoencoder's blend weight is chosen on warm items, and its
//! text-mapped decoder column can rank cold items worse than the linear models' mapped
//! factors do: on ML-1M, weight 4 cost the cold items 4% of Recall@20. A build cannot
//! see its future cold items, so it makes some from the items that train the map: each of
//! [`COLD_FOLDS`] folds of them takes its columns from a map fitted without it, leaves
//! the held-out users' profiles, and the held-out users' items in it are ranked among
//! the fold alone, as `eval`'s cold protocol ranks cold items. The factor best there
//! ([`VAE_COLD_GRID`]) becomes [`TrainConfig::vae_cold`].

use burn::prelude::Device;

use super::als::SplitMix;
use super::evaluate::{EvalUser, best_on_grid, evaluate};
use super::metrics::MetricSums;
use super::model::Blend;
use super::sparse::Csr;
use super::train::{TrainConfig, Trained, map_from_text, scorer_for, text_map_items};
use crate::error::Result;

/// Folds the map's items are split into.
pub const COLD_FOLDS: usize = 5;
/// The autoencoder's weight on cold items, relative to its blend weight, searched.
pub const VAE_COLD_GRID: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

/// The choice and the validation curve it was made on.
#[derive(Clone, Debug, PartialEq)]
pub struct ColdTuning {
    /// The chosen factor (a [`VAE_COLD_GRID`] value).
    pub chosen: f32,
    /// Each factor tried with the held-out users' metrics on the simulated cold items.
    pub grid: Vec<(f32, MetricSums)>,
    /// Items that were made cold, one fold at a time.
    pub items: usize,
}

/// Chooses [`TrainConfig::vae_cold`] for `blend` on `users` (held out of `user_items`,
/// which `trained` was trained on with `cfg`). `None` when the blend gives the
/// autoencoder no weight or no held-out user has an item the map trains on.
#[allow(clippy::too_many_arguments)]
pub fn tune_vae_cold(
    trained: &Trained,
    user_items: &Csr,
    embeddings: &[f32],
    dims: usize,
    cfg: &TrainConfig,
    users: &[EvalUser],
    blend: &Blend,
    device: &Device,
) -> Result<Option<ColdTuning>> {
    if trained.params.vae.is_none() || blend.vae == 0.0 {
        return Ok(None);
    }
    let item_users = user_items.transpose();
    let counts: Vec<u32> = (0..user_items.cols).map(|i| item_users.row(i).0.len() as u32).collect();
    let (mut order, _) = text_map_items(&counts, cfg);
    let mut rng = SplitMix(cfg.als.seed ^ 0xc01d);
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let record = trained.params.record_dims();
    let blends: Vec<Blend> = VAE_COLD_GRID.iter().map(|&s| Blend { vae: blend.vae * s, ..*blend }).collect();
    let mut sums = vec![MetricSums::default(); blends.len()];
    for f in 0..COLD_FOLDS {
        let mut fold: Vec<usize> = order.iter().skip(f).step_by(COLD_FOLDS).copied().collect();
        fold.sort_unstable();
        let in_fold = |i: &u32| fold.binary_search(&(*i as usize)).is_ok();
        let rest: Vec<usize> = order.iter().copied().filter(|&i| fold.binary_search(&i).is_err()).collect();
        let fold_users: Vec<EvalUser> = users
            .iter()
            .filter_map(|u| {
                let held_out: Vec<u32> = u.held_out.iter().copied().filter(in_fold).collect();
                let (seen, fold_in): (Vec<u32>, Vec<u32>) = u.fold_in.iter().copied().partition(in_fold);
                // A cold item is in nobody's profile: the user's own fold items are left
                // out of the ranking instead, as items they are known to have.
                let known = u.known.iter().copied().chain(seen).collect();
                (!held_out.is_empty() && !fold_in.is_empty()).then_some(EvalUser { fold_in, held_out, known, ..EvalUser::default() })
            })
            .collect();
        if fold_users.is_empty() || rest.len() < 2 {
            continue;
        }
        let mut cold = trained.clone();
        map_from_text(&mut cold.factors, &mut cold.bias, record, (embeddings, dims), &rest, &fold, cfg.text_reg)?;
        let scorer = scorer_for(&cold, embeddings, dims, device)?;
        let only: Vec<u32> = fold.iter().map(|&i| i as u32).collect();
        for (total, s) in sums.iter_mut().zip(evaluate(&scorer, &fold_users, &blends, Some(&only), 1.0)?) {
            total.merge(&s);
        }
    }
    let Some(best) = best_on_grid(&sums).filter(|_| sums[0].users > 0) else {
        return Ok(None);
    };
    Ok(Some(ColdTuning { chosen: VAE_COLD_GRID[best], grid: VAE_COLD_GRID.iter().copied().zip(sums).collect(), items: order.len() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scorer::als::AlsConfig;
    use crate::scorer::evaluate::accuracy;
    use crate::scorer::train::{holdout_users, train};
    use crate::scorer::tune::tests::tastes;
    use crate::scorer::vae::VaeConfig;

    const DIMS: usize = 8;

    /// Unit embeddings that say which of the four tastes an item is for (one-hot, plus a
    /// little noise so that no two items are alike).
    fn taste_text(items: usize) -> Vec<f32> {
        let mut rng = SplitMix(11);
        (0..items)
            .flat_map(|i| {
                let mut v: Vec<f32> = (0..DIMS).map(|_| 0.1 * rng.normal() as f32).collect();
                v[i * 4 / items] += 1.0;
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(move |x| x / norm)
            })
            .collect()
    }

    fn with_vae() -> TrainConfig {
        let vae = VaeConfig { hidden: 32, latent: 4, layers: 2, epochs: 15, batch: 64, learning_rate: 1e-2, ..VaeConfig::default() };
        TrainConfig { als: AlsConfig { factors: 4, iterations: 6, ..AlsConfig::default() }, item_rank: 0, vae: Some(vae), ..TrainConfig::default() }
    }

    fn only(collaborative: f32, vae: f32) -> Blend {
        Blend { collaborative, item_item: 0.0, semantic: 0.0, popularity: 0.0, scenario: 0.0, vae, interest: 0.0 }
    }

    #[test]
    fn the_autoencoders_weight_on_cold_items_follows_how_well_its_mapped_columns_rank_them() {
        let m = tastes(400, 200, 0.3, 0.02, 2);
        let (rest, held, _) = holdout_users(&m, 0.2, 3).unwrap();
        let text = taste_text(200);
        let cfg = with_vae();
        let trained = train(&rest, &text, DIMS, &cfg, &Default::default(), &mut ()).unwrap();
        let device = Device::flex();
        let tune = |t: &Trained, blend: Blend| tune_vae_cold(t, &rest, &text, DIMS, &cfg, &held, &blend, &device).unwrap();

        // Alone, the autoencoder's mapped columns rank cold items by taste, and a weight of 0
        // leaves them tied: some weight is chosen (any, since alone its scale does not matter).
        let alone = tune(&trained, only(0.0, 1.0)).expect("the autoencoder has weight");
        let at = |c: &ColdTuning, w: f32| accuracy(&c.grid.iter().find(|g| g.0 == w).unwrap().1);
        assert!(alone.chosen > 0.0 && at(&alone, 1.0) > at(&alone, 0.0) + 0.1, "{alone:?}");
        assert_eq!(alone.items, 200, "every item trains the map here");
        assert_eq!(tune(&trained, only(0.0, 1.0)), Some(alone), "deterministic for a seed");

        // A decoder that points every user away from their taste: beside ALS, cold items
        // are ranked best without it.
        let mut misleading = trained.clone();
        let (record, decoder) = (misleading.params.record_dims(), misleading.params.vae_decoder());
        for row in misleading.factors.chunks_mut(record) {
            row[decoder.clone()].iter_mut().for_each(|v| *v = -*v);
        }
        let against = tune(&misleading, only(1.0, 1.0)).expect("the autoencoder has weight");
        assert_eq!(against.chosen, 0.0, "{against:?}");

        assert_eq!(tune(&trained, only(1.0, 0.0)), None, "no autoencoder weight, nothing to choose");
    }

    #[test]
    fn shrinking_a_cold_items_decoder_columns_weighs_the_autoencoder_on_cold_items_alike() {
        // Items 0, 15, 30 and 45 have no interactions in the training log: their columns come
        // from their text. The held-out users have theirs.
        let (log, held, _) = holdout_users(&tastes(300, 60, 0.5, 0.03, 4), 0.2, 5).unwrap();
        let triplets: Vec<(u32, u32, f32)> = (0..log.rows)
            .flat_map(|u| {
                let (idx, val) = log.row(u);
                idx.iter().zip(val).filter(|(i, _)| **i % 15 != 0).map(move |(&i, &v)| (u as u32, i, v)).collect::<Vec<_>>()
            })
            .collect();
        let rest = Csr::from_triplets(300, 60, &triplets).unwrap();
        let cold: Vec<u32> = vec![0, 15, 30, 45];
        let text = taste_text(60);
        let device = Device::flex();
        let as_mapped = train(&rest, &text, DIMS, &with_vae(), &Default::default(), &mut ()).unwrap();
        let shrunk = train(&rest, &text, DIMS, &TrainConfig { vae_cold: 0.25, ..with_vae() }, &Default::default(), &mut ()).unwrap();
        assert_eq!(shrunk.cold_items, 4);
        let (record, decoder) = (as_mapped.params.record_dims(), as_mapped.params.vae_decoder());
        for i in 0..60 {
            let (a, b) = (&as_mapped.factors[i * record..(i + 1) * record], &shrunk.factors[i * record..(i + 1) * record]);
            let differs = decoder.clone().any(|c| (a[c] - b[c]).abs() > 1e-6);
            assert_eq!(differs, cold.contains(&(i as u32)), "item {i}: only cold items' decoder columns move");
            assert_eq!(a[..decoder.start], b[..decoder.start], "item {i}: no other column moves");
        }
        // Among the cold items, a quarter of the mapped decoder ranks as a quarter of the weight.
        let blend = only(1.0, 2.0);
        let at = |t: &Trained, b: Blend| evaluate(&scorer_for(t, &text, DIMS, &device).unwrap(), &held, &[b], Some(&cold), 1.0).unwrap()[0];
        assert_eq!(at(&shrunk, blend), at(&as_mapped, Blend { vae: 0.5, ..blend }));
        assert_ne!(at(&as_mapped, blend), at(&as_mapped, Blend { vae: 0.0, ..blend }), "the autoencoder moves cold items");
    }
}

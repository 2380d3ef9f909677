//! Cross-domain scoring, learned at build time: how much an event recorded against
//! another catalog of the site (a foreign event, known here only by its item's embedding)
//! should count, and the blend that ranks a visitor whom only other catalogs know.
//!
//! A catalog's log has no other catalog in it, so the build simulates one: the catalog's
//! items are cut in two halves along the first principal direction of their text
//! embeddings (two regions of the text space, as two departments of a site are), and a
//! held-out user's likes in one half become foreign events for ranking the other half.
//! Both directions are used. The foreign blend is chosen on profiles of foreign events
//! alone; the foreign weight on profiles that also hold the user's own events in the
//! ranked half, with the catalog's blend.

use super::metrics::MetricSums;
use super::model::{Blend, INTEREST_WEIGHT, ItemSide};
use super::evaluate::{EvalUser, ForeignTable, best_on_grid, evaluate_with};
use super::rank::Scorer;
use crate::error::{Error, ErrorKind, Result};

/// Weights of a foreign like beside the profile's own events, searched on held-out users
/// (0: foreign events are ignored once the visitor has events here).
pub const FOREIGN_WEIGHT_GRID: [f32; 8] = [0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0];
/// Semantic and popularity weights of the foreign blend, relative to the collaborative
/// ones. The semantic term is the foreign items' own text; the collaborative terms come
/// through the text map, so either may carry the signal.
const FOREIGN_TERM_GRID: [f32; 6] = [0.0, 0.1, 0.3, 1.0, 3.0, 10.0];

/// Fewest simulated users the search needs; with fewer the catalog keeps the defaults.
pub const MIN_FOREIGN_USERS: usize = 10;

/// What the cross-domain search chose and measured.
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignTuning {
    /// The chosen weight of a foreign like beside own events.
    pub weight: f32,
    /// The chosen blend for profiles of foreign events alone.
    pub blend: Blend,
    /// Simulated users with foreign events alone, and the chosen blend's sums on them.
    pub alone: MetricSums,
    /// The popularity chart's sums on the same users (what the foreign events must beat).
    pub alone_popularity: MetricSums,
    /// Each weight of [`FOREIGN_WEIGHT_GRID`] on the users with own events too.
    pub weights: Vec<(f32, MetricSums)>,
}

/// Which half of the text space each item is in: the sign of its embedding's projection
/// on the embeddings' first principal direction, past the median (so the halves are
/// even). Deterministic: power iteration from a fixed start.
pub fn embedding_halves(items: &ItemSide) -> Vec<bool> {
    let (n, d) = (items.len, items.embedding_dims);
    if n < 2 || d == 0 {
        return vec![false; n];
    }
    let rows: Vec<Vec<f32>> = (0..n).map(|i| items.embedding(i)).collect();
    let mut mean = vec![0.0f64; d];
    for r in &rows {
        r.iter().zip(&mut mean).for_each(|(x, m)| *m += *x as f64 / n as f64);
    }
    let centered = |r: &[f32], j: usize| r[j] as f64 - mean[j];
    let mut v: Vec<f64> = (0..d).map(|j| 1.0 + j as f64 / d as f64).collect();
    for _ in 0..50 {
        let mut next = vec![0.0f64; d];
        for r in &rows {
            let dot: f64 = (0..d).map(|j| centered(r, j) * v[j]).sum();
            (0..d).for_each(|j| next[j] += dot * centered(r, j));
        }
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            break;
        }
        v = next.into_iter().map(|x| x / norm).collect();
    }
    let projection: Vec<f64> = rows.iter().map(|r| (0..d).map(|j| centered(r, j) * v[j]).sum()).collect();
    let mut sorted = projection.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[n / 2];
    projection.iter().map(|&p| p >= median).collect()
}

/// The foreign-blend grid: the collaborative fold-in and the item-item term (when the
/// catalog has one) on or off, with semantic and popularity weights from
/// [`FOREIGN_TERM_GRID`]; every blend has some term besides popularity.
fn foreign_blend_grid(has_item_item: bool) -> Vec<Blend> {
    let item_item: &[f32] = if has_item_item { &[0.0, 1.0] } else { &[0.0] };
    let mut grid = Vec::new();
    for collaborative in [0.0, 1.0] {
        for &ii in item_item {
            for &semantic in &FOREIGN_TERM_GRID {
                for &popularity in &FOREIGN_TERM_GRID {
                    if collaborative + ii + semantic > 0.0 {
                        grid.push(Blend { collaborative, item_item: ii, semantic, popularity, scenario: 0.0, vae: 0.0, interest: INTEREST_WEIGHT });
                    }
                }
            }
        }
    }
    grid
}

/// The simulated users of one held-out user: for each direction, their fold-in likes in
/// the source half as foreign rows (item indices, the table being the catalog's own
/// embeddings), ranked over the target half. `alone`: every positive in the target half
/// is to be found; `mixed`: the fold-in part of the target half is the profile's own
/// events and the held-out part is to be found.
fn simulated(users: &[EvalUser], half: &[bool]) -> (Vec<EvalUser>, Vec<EvalUser>) {
    let (mut alone, mut mixed) = (Vec::new(), Vec::new());
    let side = |items: &[u32], h: bool| -> Vec<u32> { items.iter().copied().filter(|&i| half[i as usize] == h).collect() };
    for u in users {
        for target in [false, true] {
            let foreign = side(&u.fold_in, !target);
            if foreign.is_empty() {
                continue;
            }
            let (own, held) = (side(&u.fold_in, target), side(&u.held_out, target));
            let all: Vec<u32> = own.iter().chain(&held).copied().collect();
            if !all.is_empty() {
                alone.push(EvalUser { held_out: all, foreign: foreign.clone(), ..EvalUser::default() });
            }
            if !own.is_empty() && !held.is_empty() {
                mixed.push(EvalUser { fold_in: own, held_out: held, foreign, ..EvalUser::default() });
            }
        }
    }
    (alone, mixed)
}

/// Chooses the foreign blend and weight on `users` (held-out users of this catalog, whose
/// fold-in and held-out items index `scorer`'s items), the catalog ranking with `blend`
/// otherwise. `None` when too few users have likes in both halves.
pub fn tune_foreign(scorer: &Scorer, users: &[EvalUser], blend: Blend) -> Result<Option<ForeignTuning>> {
    let items = scorer.items();
    let half = embedding_halves(items);
    let table: Vec<f32> = (0..items.len).flat_map(|i| items.embedding(i)).collect();
    let (alone, mixed) = simulated(users, &half);
    if alone.len() < MIN_FOREIGN_USERS {
        return Ok(None);
    }
    let targets: [Vec<u32>; 2] =
        [false, true].map(|h| (0..items.len as u32).filter(|&i| half[i as usize] == h).collect());
    let has_item_item = scorer.params().is_some_and(|p| p.item_rank > 0);
    // Each direction ranks only its target half; the sums of both add up.
    let by_target = |list: &[EvalUser], h: bool| -> Vec<EvalUser> {
        list.iter().filter(|u| u.held_out.first().is_some_and(|&i| half[i as usize] == h)).cloned().collect()
    };
    let run = |list: &[EvalUser], blends: &[Blend], weight: f32| -> Result<Vec<MetricSums>> {
        let table = ForeignTable { embeddings: &table, dims: items.embedding_dims, weight };
        let mut total = vec![MetricSums::default(); blends.len()];
        for h in [false, true] {
            let part = by_target(list, h);
            if part.is_empty() {
                continue;
            }
            let sums = evaluate_with(scorer, &part, blends, Some(&targets[h as usize]), 1.0, Some(&table))?;
            total.iter_mut().zip(sums).for_each(|(t, s)| t.merge(&s));
        }
        Ok(total)
    };
    let mut grid = foreign_blend_grid(has_item_item);
    let popularity = Blend { collaborative: 0.0, item_item: 0.0, semantic: 0.0, popularity: 1.0, scenario: 0.0, vae: 0.0, interest: 0.0 };
    grid.push(popularity);
    let sums = run(&alone, &grid, 1.0)?;
    let alone_popularity = sums[grid.len() - 1];
    let chosen = best_on_grid(&sums[..grid.len() - 1]).ok_or_else(|| Error::new(ErrorKind::Input, "no foreign blend grid"))?;
    let mut weights = Vec::with_capacity(FOREIGN_WEIGHT_GRID.len());
    if mixed.len() >= MIN_FOREIGN_USERS {
        for &w in &FOREIGN_WEIGHT_GRID {
            weights.push((w, run(&mixed, &[blend], w)?[0]));
        }
    }
    let weight = best_on_grid(&weights.iter().map(|w| w.1).collect::<Vec<_>>()).map_or(1.0, |i| weights[i].0);
    Ok(Some(ForeignTuning { weight, blend: grid[chosen], alone: sums[chosen], alone_popularity, weights }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_split_the_text_space_evenly_along_its_main_direction() {
        // Two clusters in 4 dims: items near e0 and items near e1, interleaved.
        let n = 10;
        let embeddings: Vec<f32> = (0..n)
            .flat_map(|i| if i % 2 == 0 { [1.0, 0.1 * i as f32 / 10.0, 0.0, 0.0] } else { [0.0, 1.0, 0.05, 0.0] })
            .collect();
        let items = ItemSide::new(0, Vec::new(), vec![0.0; n], 4, &embeddings);
        let half = embedding_halves(&items);
        assert_eq!(half.iter().filter(|&&h| h).count(), n / 2);
        assert!((0..n).all(|i| half[i] == half[i % 2]), "a cluster stays together: {half:?}");
        assert_ne!(half[0], half[1]);
        assert_eq!(embedding_halves(&items), half, "deterministic");
    }

    #[test]
    fn simulated_users_take_foreign_likes_from_one_half_and_targets_from_the_other() {
        let half = [false, false, true, true];
        let users = [EvalUser::new(vec![0, 2], vec![3]), EvalUser::new(vec![1], vec![0])];
        let (alone, mixed) = simulated(&users, &half);
        // User 0, ranking the `false` half: foreign [2], to find their positive 0 there; ranking the `true` half: foreign
        // [0], to find 2 and 3 alone, or 3 beside their own event on 2. User 1 has no like in the `true` half and no
        // positive in it.
        assert_eq!(alone[0].foreign, vec![2]);
        assert_eq!(alone[0].held_out, vec![0]);
        assert_eq!(alone[1].foreign, vec![0]);
        assert_eq!(alone[1].held_out, vec![2, 3]);
        assert_eq!(alone.len(), 2, "user 1 has no like in the true half to use as foreign: {alone:?}");
        assert_eq!(mixed.len(), 1);
        assert_eq!((mixed[0].fold_in.clone(), mixed[0].held_out.clone(), mixed[0].foreign.clone()), (vec![2], vec![3], vec![0]));
    }
}

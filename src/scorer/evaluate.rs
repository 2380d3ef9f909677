//! The evaluation protocol's ranking, shared by the tuner, the build's held-out tuning
//! and `localrec eval`: evaluation users (fold-in, held-out, scenarios, foreign likes),
//! each folded in with the device's code and ranked over every candidate, summed into
//! [`MetricSums`]; and what blends and settings are chosen by.

use super::metrics::{MetricSums, top_k};
use super::model::Blend;
use super::profile::{Event, Interest, user_query_with_foreign};
use super::rank::Scorer;
use crate::error::{Error, ErrorKind, Result};

/// One evaluation user: fold-in and held-out item positions, and what the log says
/// about their scenarios.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalUser {
    /// Items the model may see (each with confidence 1).
    pub fold_in: Vec<u32>,
    /// Items to find.
    pub held_out: Vec<u32>,
    /// The scenario of each fold-in item (empty when unknown).
    pub fold_in_scenarios: Vec<u32>,
    /// The scenario of each held-out item (empty when unknown).
    pub held_out_scenarios: Vec<u32>,
    /// The request's scenario, when the evaluation asks in one.
    pub scenario: Option<u32>,
    /// Rows of the evaluation's [`ForeignTable`] folded in as foreign likes (events on
    /// another catalog's items).
    pub foreign: Vec<u32>,
    /// Items left out of the ranking without being folded in: the user's positives that
    /// the profile does not show and that are not to be found.
    pub known: Vec<u32>,
}

/// Embeddings of another catalog's items that evaluation users' `foreign` rows name, as
/// the device gets them (dequantized int8 rows), and the weight each foreign like gets.
#[derive(Clone, Copy, Debug)]
pub struct ForeignTable<'a> {
    /// Row-major, `dims` wide.
    pub embeddings: &'a [f32],
    /// Embedding width.
    pub dims: usize,
    /// Weight of one foreign like.
    pub weight: f32,
}

impl ForeignTable<'_> {
    fn interests(&self, rows: &[u32]) -> Result<Vec<Interest>> {
        rows.iter()
            .map(|&r| {
                let start = r as usize * self.dims;
                let embedding = self.embeddings.get(start..start + self.dims).ok_or_else(|| {
                    Error::new(ErrorKind::Input, format!("foreign row {r} is outside the foreign table"))
                })?;
                Ok(Interest { embedding: embedding.to_vec(), weight: self.weight, age_days: 0.0 })
            })
            .collect()
    }
}

impl EvalUser {
    /// A user without scenarios.
    pub fn new(fold_in: Vec<u32>, held_out: Vec<u32>) -> EvalUser {
        EvalUser { fold_in, held_out, ..EvalUser::default() }
    }
}

/// The scenario protocol: each user once per scenario of their held-out items, asking
/// in that scenario for the items they chose in it (the fold-in stays whole). Users
/// without known scenarios are left out.
pub fn split_by_scenario(users: &[EvalUser]) -> Vec<EvalUser> {
    let mut out = Vec::new();
    for u in users {
        if u.held_out_scenarios.len() != u.held_out.len() || u.fold_in_scenarios.len() != u.fold_in.len() {
            continue;
        }
        let mut seen: Vec<u32> = u.held_out_scenarios.clone();
        seen.sort_unstable();
        seen.dedup();
        for c in seen {
            let held: Vec<u32> =
                u.held_out.iter().zip(&u.held_out_scenarios).filter(|(_, s)| **s == c).map(|(&i, _)| i).collect();
            out.push(EvalUser { held_out: held, held_out_scenarios: vec![], scenario: Some(c), ..u.clone() });
        }
    }
    out
}

/// The fold-in events of `u`: confidence 1, or `other_scenario_weight` for an item
/// chosen in another scenario than the request's.
fn eval_events(u: &EvalUser, other_scenario_weight: f32) -> Vec<Event> {
    u.fold_in
        .iter()
        .enumerate()
        .map(|(j, &item)| {
            let other = matches!((u.scenario, u.fold_in_scenarios.get(j)), (Some(a), Some(&b)) if a != b);
            Event { item, weight: if other { other_scenario_weight } else { 1.0 }, age_days: 0.0 }
        })
        .collect()
}

/// The protocol's metrics of `blends` over `users`: each user's fold-in becomes the
/// profile (like events on the device), every candidate is scored by the scorer, the
/// fold-in items are excluded, ties go to the lower position. With `only`, just those
/// candidates are ranked (the cold-item protocol). A user with a `scenario` asks in it,
/// and fold-in items of other scenarios weigh `other_scenario_weight`. One
/// [`MetricSums`] per blend.
pub fn evaluate(
    scorer: &Scorer,
    users: &[EvalUser],
    blends: &[Blend],
    only: Option<&[u32]>,
    other_scenario_weight: f32,
) -> Result<Vec<MetricSums>> {
    evaluate_with(scorer, users, blends, only, other_scenario_weight, None)
}

/// [`evaluate`], with each user's `foreign` rows of `foreign` in the profile as foreign
/// likes and their `known` items left out of the ranking too.
pub fn evaluate_with(
    scorer: &Scorer,
    users: &[EvalUser],
    blends: &[Blend],
    only: Option<&[u32]>,
    other_scenario_weight: f32,
    foreign: Option<&ForeignTable>,
) -> Result<Vec<MetricSums>> {
    let mut sums = vec![MetricSums::default(); blends.len()];
    for chunk in users.chunks(64) {
        let queries = chunk
            .iter()
            .map(|u| {
                let foreign = match foreign {
                    Some(table) => table.interests(&u.foreign)?,
                    None => Vec::new(),
                };
                user_query_with_foreign(scorer.items(), scorer.params(), &eval_events(u, other_scenario_weight), &[], &foreign)
            })
            .collect::<Result<Vec<_>>>()?;
        let terms = scorer.terms(&queries.iter().collect::<Vec<_>>())?;
        let rank = |scores: &[f32], u: &EvalUser| -> Vec<u32> {
            let mut excluded: Vec<u32> = u.fold_in.iter().chain(&u.known).copied().collect();
            match only {
                Some(only) => {
                    excluded.sort_unstable();
                    let sub: Vec<f32> = only.iter().map(|&i| scores[i as usize]).collect();
                    let skip: Vec<u32> =
                        (0..only.len() as u32).filter(|&p| excluded.binary_search(&only[p as usize]).is_ok()).collect();
                    top_k(&sub, 100, &skip).into_iter().map(|p| only[p as usize]).collect()
                }
                None => top_k(scores, 100, &excluded),
            }
        };
        let popularity = Blend { collaborative: 0.0, item_item: 0.0, semantic: 0.0, popularity: 1.0, scenario: 0.0, vae: 0.0, interest: 0.0 };
        for (u, t) in chunk.iter().zip(&terms) {
            let popular = rank(&scorer.blend(t, &popularity, only, None).0, u);
            for (blend, sum) in blends.iter().zip(&mut sums) {
                let (scores, _) = scorer.blend(t, blend, only, u.scenario.map(|s| s as usize));
                let ranked = rank(&scores, u);
                sum.add(&ranked, &u.held_out);
                sum.add_popular_overlap(&ranked, &popular);
            }
        }
    }
    Ok(sums)
}


/// Mean Recall@20 + NDCG@20: what blends and hyper-parameters are tuned on.
pub fn accuracy(s: &MetricSums) -> f64 {
    let (r, n, _) = s.means();
    r + n
}

/// The index of the most accurate of `sums` (the first of equals).
pub(crate) fn best_on_grid(sums: &[MetricSums]) -> Option<usize> {
    (0..sums.len()).reduce(|b, i| if accuracy(&sums[i]) > accuracy(&sums[b]) { i } else { b })
}

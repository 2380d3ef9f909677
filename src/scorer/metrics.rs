//! The ranking metrics of the evaluation protocol (PROTOCOL.md §3): full ranking of
//! the candidates, excluded items removed, ties broken by ascending candidate
//! position (candidates are kept in ascending item id order), Liang's normalized
//! Recall@K and NDCG@K. `localrec eval` and the browser's ranking share `top_k`.

use std::cmp::Ordering;

/// The `k` best positions of `scores`, best first: descending score, ties by ascending
/// position; positions in `excluded` (sorted or not) never appear. NaN scores rank last.
pub fn top_k(scores: &[f32], k: usize, excluded: &[u32]) -> Vec<u32> {
    let mut skip = vec![false; scores.len()];
    for &e in excluded {
        if let Some(s) = skip.get_mut(e as usize) {
            *s = true;
        }
    }
    let better = |a: &u32, b: &u32| -> Ordering {
        let (sa, sb) = (scores[*a as usize], scores[*b as usize]);
        // Descending score with NaN last, then ascending position.
        match (sa.is_nan(), sb.is_nan()) {
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => sb.partial_cmp(&sa).unwrap_or(Ordering::Equal).then(a.cmp(b)),
        }
    };
    let mut candidates: Vec<u32> = (0..scores.len() as u32).filter(|&i| !skip[i as usize]).collect();
    let k = k.min(candidates.len());
    if k == 0 {
        return Vec::new();
    }
    if k < candidates.len() {
        candidates.select_nth_unstable_by(k - 1, better);
        candidates.truncate(k);
    }
    candidates.sort_unstable_by(better);
    candidates
}

/// Liang's normalized recall: hits in the first `k` of `ranked` over `min(k, |held_out|)`.
pub fn recall_at(ranked: &[u32], held_out: &[u32], k: usize) -> f64 {
    if held_out.is_empty() {
        return 0.0;
    }
    let hits = ranked.iter().take(k).filter(|r| held_out.contains(r)).count();
    hits as f64 / k.min(held_out.len()) as f64
}

/// NDCG@k with binary relevance: DCG of the first `k` of `ranked` over the ideal DCG of
/// `min(k, |held_out|)` hits.
pub fn ndcg_at(ranked: &[u32], held_out: &[u32], k: usize) -> f64 {
    if held_out.is_empty() {
        return 0.0;
    }
    let gain = |r: usize| 1.0 / ((r + 2) as f64).log2();
    let dcg: f64 = ranked.iter().take(k).enumerate().filter(|(_, i)| held_out.contains(i)).map(|(r, _)| gain(r)).sum();
    let ideal: f64 = (0..k.min(held_out.len())).map(gain).sum();
    dcg / ideal
}

/// Metrics summed over users, reported as means.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MetricSums {
    /// Users added.
    pub users: usize,
    /// Sum of Recall@20.
    pub recall20: f64,
    /// Sum of NDCG@20.
    pub ndcg20: f64,
    /// Sum of NDCG@100.
    pub ndcg100: f64,
    /// Sum of the share of each user's top 20 that is also in the popularity top 20
    /// (the same exclusions): how little of the list is personal.
    pub popular20: f64,
}

impl MetricSums {
    /// Adds one user's ranking (at least its first 100 positions) and held-out items.
    pub fn add(&mut self, ranked: &[u32], held_out: &[u32]) {
        self.users += 1;
        self.recall20 += recall_at(ranked, held_out, 20);
        self.ndcg20 += ndcg_at(ranked, held_out, 20);
        self.ndcg100 += ndcg_at(ranked, held_out, 100);
    }

    /// Adds how much of a user's top 20 is the popularity top 20 (`popular`).
    pub fn add_popular_overlap(&mut self, ranked: &[u32], popular: &[u32]) {
        let top = &ranked[..ranked.len().min(20)];
        let popular = &popular[..popular.len().min(20)];
        self.popular20 += top.iter().filter(|i| popular.contains(i)).count() as f64 / 20.0;
    }

    /// Mean share of the top 20 that is the popularity top 20.
    pub fn popular_overlap(&self) -> f64 {
        self.popular20 / self.users.max(1) as f64
    }

    /// Adds another group of users' sums.
    pub fn merge(&mut self, other: &MetricSums) {
        self.users += other.users;
        self.recall20 += other.recall20;
        self.ndcg20 += other.ndcg20;
        self.ndcg100 += other.ndcg100;
        self.popular20 += other.popular20;
    }

    /// Means over the users added: (Recall@20, NDCG@20, NDCG@100).
    pub fn means(&self) -> (f64, f64, f64) {
        let n = self.users.max(1) as f64;
        (self.recall20 / n, self.ndcg20 / n, self.ndcg100 / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PROTOCOL.md §3's worked example, position i holding item id i + 1.
    #[test]
    fn protocol_worked_example_gives_its_published_figures() {
        let scores = [0.1, 0.5, 0.5, 0.9, 0.0];
        let ranked = top_k(&scores, 5, &[3]);
        assert_eq!(ranked, vec![1, 2, 0, 4], "ranking 2, 3, 1, 5 in item ids");
        let held = [2, 4];
        assert!((recall_at(&ranked, &held, 2) - 0.5).abs() < 1e-9);
        assert!((ndcg_at(&ranked, &held, 2) - 0.386853).abs() < 1e-6);
        assert!((recall_at(&ranked, &held, 4) - 1.0).abs() < 1e-9);
        assert!((ndcg_at(&ranked, &held, 4) - 0.650921).abs() < 1e-6);
    }

    #[test]
    fn top_k_breaks_ties_by_position_and_puts_nan_last() {
        let scores = [1.0, f32::NAN, 1.0, 2.0, 1.0];
        assert_eq!(top_k(&scores, 5, &[]), vec![3, 0, 2, 4, 1]);
        assert_eq!(top_k(&scores, 2, &[]), vec![3, 0]);
        assert_eq!(top_k(&scores, 10, &[3, 9]), vec![0, 2, 4, 1], "k past the end and an out-of-range exclusion");
        assert!(top_k(&[], 3, &[]).is_empty());
    }

    #[test]
    fn recall_is_normalized_by_the_smaller_of_k_and_held_out() {
        let ranked: Vec<u32> = (0..30).collect();
        let held: Vec<u32> = (0..25).collect();
        assert!((recall_at(&ranked, &held, 20) - 1.0).abs() < 1e-12);
        assert!((ndcg_at(&ranked, &held, 20) - 1.0).abs() < 1e-12);
        assert_eq!(recall_at(&ranked, &[], 20), 0.0);
    }

    #[test]
    fn popular_overlap_counts_the_shared_part_of_the_two_top_twenties() {
        let mut sums = MetricSums::default();
        let ranked: Vec<u32> = (0..30).collect();
        let popular: Vec<u32> = (10..40).collect();
        sums.add(&ranked, &[0]);
        sums.add_popular_overlap(&ranked, &popular);
        assert!((sums.popular_overlap() - 0.5).abs() < 1e-12, "items 10..20 are in both top 20s");
    }
}

//! The rating head, the second task beside will-interact: a predicted star rating
//! `mean + b_i + <w_u, [q_i, 1]>` over the implicit head's item factors `q_i`, so both
//! heads share one item representation. Offline (the `publish` feature) the item rating biases `b_i`
//! and the training users' `w_u` are fitted by alternating ridge solves; on the device
//! `w_u` is the same ridge solve over the user's own ratings (a `(k+1) x (k+1)` system).

use super::linalg;
#[cfg(feature = "publish")]
use super::model::RatingHead;
use super::model::{ItemSide, ScorerParams};
use crate::error::{Error, ErrorKind, Result};

/// One rating by the user: item position, stars, and a weight (decay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rated {
    /// Item position.
    pub item: u32,
    /// The rating given.
    pub value: f32,
    /// Weight of this rating in the solve (1 for a fresh one).
    pub weight: f32,
}

/// `[q_i, 1]`: the head's features of item `i`.
fn features(items: &ItemSide, k: usize, i: usize) -> Vec<f64> {
    items.record(i)[..k].iter().map(|&v| v as f64).chain([1.0]).collect()
}

/// The user's rating vector `w_u` (width `k + 1`, the last entry the user's bias):
/// `argmin sum weight (r - mean - b_i - <w, x_i>)^2 + reg |w|^2`. `None` when the
/// catalog has no rating head; zeros for a user without ratings.
///
/// # Shapes
/// - items: records with `k` ALS factors first and the rating bias at `rating_column`
/// - returns `[k + 1]`
pub fn user_rating_vector(items: &ItemSide, params: &ScorerParams, ratings: &[Rated]) -> Result<Option<Vec<f32>>> {
    let Some(head) = params.rating else {
        return Ok(None);
    };
    let k = params.als_dims;
    let col = params.rating_column();
    let p = k + 1;
    let mut m = vec![0.0f64; p * p];
    let mut rhs = vec![0.0f64; p];
    for (n, r) in ratings.iter().enumerate() {
        let i = r.item as usize;
        if i >= items.len || !r.value.is_finite() || !r.weight.is_finite() || r.weight < 0.0 {
            return Err(Error::new(ErrorKind::Input, format!("rating {n}: bad item, value or weight")));
        }
        let x = features(items, k, i);
        let target = (r.value - head.mean - items.record(i)[col]) as f64;
        let w = r.weight as f64;
        for a in 0..p {
            for b in 0..=a {
                m[a * p + b] += w * x[a] * x[b];
            }
            rhs[a] += w * x[a] * target;
        }
    }
    for a in 0..p {
        for b in 0..a {
            m[b * p + a] = m[a * p + b];
        }
        m[a * p + a] += head.reg as f64;
    }
    linalg::solve_spd(&mut m, p, &mut rhs)
        .map_err(|e| Error::with_source(ErrorKind::Input, "the rating solve is not positive definite", e))?;
    Ok(Some(rhs.iter().map(|&v| v as f32).collect()))
}

/// The predicted rating of item `i` for a user vector `w` (from [`user_rating_vector`]),
/// clamped to the log's range.
pub fn predict(items: &ItemSide, params: &ScorerParams, w: &[f32], i: usize) -> Option<f32> {
    let head = params.rating?;
    let k = params.als_dims;
    let record = items.record(i);
    let dot: f32 = record[..k].iter().zip(w).map(|(x, y)| x * y).sum::<f32>() + w.get(k).copied().unwrap_or(0.0);
    Some((head.mean + record[params.rating_column()] + dot).clamp(head.min, head.max))
}

/// Fits the rating head on `(user, item, rating)` triples over item factors `q`
/// (`items x k`): the mean, then `rounds` alternations of the users' ridge solves and
/// the items' shrunk residual means. Returns the head and each item's bias.
#[cfg(feature = "publish")]
pub fn train(
    ratings: &[(u32, u32, f32)],
    users: usize,
    q: &[f32],
    k: usize,
    reg: f32,
    item_reg: f32,
    rounds: usize,
) -> Result<(RatingHead, Vec<f32>)> {
    use rayon::prelude::*;
    if ratings.is_empty() || k == 0 || !q.len().is_multiple_of(k) {
        return Err(Error::new(ErrorKind::Input, "the rating head needs ratings and item factors"));
    }
    let n = q.len() / k;
    let (mut min, mut max, mut sum) = (f32::MAX, f32::MIN, 0.0f64);
    for &(u, i, r) in ratings {
        if u as usize >= users || i as usize >= n || !r.is_finite() {
            return Err(Error::new(ErrorKind::Input, format!("rating of user {u} on item {i} is out of range")));
        }
        min = min.min(r);
        max = max.max(r);
        sum += r as f64;
    }
    if min >= max {
        return Err(Error::new(ErrorKind::Input, "every rating has the same value: nothing for a rating head to learn"));
    }
    let mean = (sum / ratings.len() as f64) as f32;
    let mut by_user: Vec<Vec<(u32, f32)>> = vec![Vec::new(); users];
    for &(u, i, r) in ratings {
        by_user[u as usize].push((i, r));
    }
    let p = k + 1;
    let x = |i: usize| -> Vec<f64> { q[i * k..(i + 1) * k].iter().map(|&v| v as f64).chain([1.0]).collect() };
    let mut bias = vec![0.0f32; n];
    let mut w = vec![vec![0.0f32; p]; users];
    for _ in 0..rounds.max(1) {
        w = by_user
            .par_iter()
            .map(|rows| {
                if rows.is_empty() {
                    return Ok(vec![0.0f32; p]);
                }
                let mut m = vec![0.0f64; p * p];
                let mut rhs = vec![0.0f64; p];
                for &(i, r) in rows {
                    let xi = x(i as usize);
                    let t = (r - mean - bias[i as usize]) as f64;
                    for a in 0..p {
                        for b in 0..=a {
                            m[a * p + b] += xi[a] * xi[b];
                        }
                        rhs[a] += xi[a] * t;
                    }
                }
                for a in 0..p {
                    for b in 0..a {
                        m[b * p + a] = m[a * p + b];
                    }
                    m[a * p + a] += reg as f64;
                }
                linalg::solve_spd(&mut m, p, &mut rhs)?;
                Ok(rhs.iter().map(|&v| v as f32).collect())
            })
            .collect::<Result<Vec<_>>>()?;
        let mut residual = vec![0.0f64; n];
        let mut count = vec![0u32; n];
        for (u, rows) in by_user.iter().enumerate() {
            for &(i, r) in rows {
                let xi = x(i as usize);
                let pred: f64 = xi.iter().zip(&w[u]).map(|(a, &b)| a * b as f64).sum();
                residual[i as usize] += (r - mean) as f64 - pred;
                count[i as usize] += 1;
            }
        }
        bias = residual.iter().zip(&count).map(|(&s, &c)| (s / (c as f64 + item_reg as f64)) as f32).collect();
    }
    Ok((RatingHead { mean, reg, min, max }, bias))
}

/// Squared errors of three predictors on held-out ratings, for reports: the global
/// mean, the item bias alone (`mean + b_i`), and the full head with the user's vector.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RatingErrors {
    /// Ratings scored.
    pub count: usize,
    /// Sum of squared errors of the global mean.
    pub mean: f64,
    /// ... of `mean + b_i`.
    pub item_bias: f64,
    /// ... of the head.
    pub head: f64,
}

impl RatingErrors {
    /// Adds one user's held-out ratings, predicted from `w`.
    pub fn add(&mut self, items: &ItemSide, params: &ScorerParams, w: &[f32], held_out: &[(u32, f32)]) {
        let Some(head) = params.rating else {
            return;
        };
        for &(i, r) in held_out {
            let i = i as usize;
            let b = items.record(i)[params.rating_column()];
            let full = predict(items, params, w, i).unwrap_or(head.mean);
            self.count += 1;
            self.mean += ((r - head.mean) as f64).powi(2);
            self.item_bias += ((r - (head.mean + b).clamp(head.min, head.max)) as f64).powi(2);
            self.head += ((r - full) as f64).powi(2);
        }
    }

    /// Root mean squared errors: global mean, item bias, head.
    pub fn rmse(&self) -> (f64, f64, f64) {
        let n = self.count.max(1) as f64;
        ((self.mean / n).sqrt(), (self.item_bias / n).sqrt(), (self.head / n).sqrt())
    }
}

#[cfg(all(test, feature = "publish"))]
mod tests {
    use super::*;

    #[test]
    fn the_head_learns_who_likes_which_kind_and_the_device_solve_agrees() {
        // Two kinds of item (factor [1,0] or [0,1]); users of type A rate kind 0 at 5 and
        // kind 1 at 1, type B the reverse.
        let q = vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0];
        let mut ratings = Vec::new();
        for u in 0..40u32 {
            for i in 0..4u32 {
                let likes = (u % 2 == 0) == (i < 2);
                ratings.push((u, i, if likes { 5.0 } else { 1.0 }));
            }
        }
        let (head, bias) = train(&ratings, 40, &q, 2, 0.1, 1.0, 5).unwrap();
        assert!((head.mean - 3.0).abs() < 1e-6 && head.min == 1.0 && head.max == 5.0);
        let mut factors = Vec::new();
        for i in 0..4 {
            factors.extend_from_slice(&q[i * 2..i * 2 + 2]);
            factors.push(bias[i]);
        }
        let items = ItemSide::new(3, factors, vec![0.0; 4], 1, &[1.0, 1.0, 1.0, 1.0]);
        let params = ScorerParams { rating: Some(head), ..ScorerParams::untuned(2, 0, 1.0, 1.0, vec![2.0, 0.0, 0.0, 2.0]) };
        params.check(3, 1).unwrap();
        // A new user of type B, who rated one item of each kind.
        let w = user_rating_vector(&items, &params, &[
            Rated { item: 0, value: 1.0, weight: 1.0 },
            Rated { item: 2, value: 5.0, weight: 1.0 },
        ])
        .unwrap()
        .unwrap();
        let (low, high) = (predict(&items, &params, &w, 1).unwrap(), predict(&items, &params, &w, 3).unwrap());
        assert!(low < 2.5 && high > 3.5, "predicted {low} for the disliked kind and {high} for the liked one");
        let none = user_rating_vector(&items, &params, &[]).unwrap().unwrap();
        assert!((predict(&items, &params, &none, 1).unwrap() - 3.0).abs() < 0.5, "no ratings: about the mean");
        let mut errors = RatingErrors::default();
        errors.add(&items, &params, &w, &[(1, 1.0), (3, 5.0)]);
        let (mean, item, full) = errors.rmse();
        assert!(full < item && full < mean, "{full} vs {item}, {mean}");
    }

    #[test]
    fn ratings_that_never_vary_or_point_outside_are_refused() {
        let q = vec![1.0, 0.0];
        assert!(train(&[(0, 0, 4.0), (1, 0, 4.0)], 2, &q, 2, 1.0, 1.0, 1).unwrap_err().to_string().contains("same value"));
        assert!(train(&[(0, 3, 4.0)], 2, &q, 2, 1.0, 1.0, 1).unwrap_err().to_string().contains("out of range"));
    }
}

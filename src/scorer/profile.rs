//! The user's side, computed on the device from the user's own events and typed
//! interests (pure data: storing them is the caller's job). [`user_query`] turns them
//! into the three user vectors the ranking multiplies with the item matrix: the exact
//! ALS fold-in `p_u` (a `k x k` solve), the item-item input `a_u` (a weighted sum of
//! the history's input rows), and the semantic vector `s_u` (liked items' and
//! interests' embeddings). Weights decay with age so taste can drift.

use super::linalg;
use super::model::{ItemSide, RegScaling, ScorerParams, normalize};
use crate::error::{Error, ErrorKind, Result};

/// One event on a catalog item, already weighted by type (negative: a dislike).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    /// Index of the item in the [`ItemSide`].
    pub item: u32,
    /// Confidence from the event type (and rating); negative for a negative event.
    pub weight: f32,
    /// Age in days (0 for now); older events weigh less with a half-life.
    pub age_days: f32,
}

/// A typed interest: the encoder's unit embedding of the user's words.
#[derive(Clone, Debug, PartialEq)]
pub struct Interest {
    /// Unit text embedding.
    pub embedding: Vec<f32>,
    /// Weight (1 for a typed interest).
    pub weight: f32,
    /// Age in days.
    pub age_days: f32,
}

/// One contributor to the user vectors: a history item or an interest, with its
/// decayed signed weight and its user-side factors `[q | a]` and embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct Contributor {
    /// Where it came from.
    pub source: Source,
    /// Decayed signed weight.
    pub weight: f32,
    /// ALS factors (or the text map's estimate for an interest).
    pub q: Vec<f32>,
    /// Item-item input row (or its estimate).
    pub a: Vec<f32>,
    /// Unit text embedding.
    pub e: Vec<f32>,
}

/// What a contributor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `events[i]`, on item `item`.
    Event {
        /// Position in the events given.
        index: usize,
        /// The item.
        item: u32,
    },
    /// `interests[i]`.
    Interest(usize),
    /// `foreign[i]`: an event on another catalog's item, known here by its embedding.
    Foreign(usize),
}

/// The user vectors for one user, ready to multiply with the item matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct UserQuery {
    /// ALS fold-in `p_u` (width `k`; empty without factors).
    pub p: Vec<f32>,
    /// Item-item input `a_u` (width `r`).
    pub a: Vec<f32>,
    /// Unit semantic vector `s_u` (zero when there is nothing to go on).
    pub s: Vec<f32>,
    /// The fold-in system's Cholesky factor, kept to explain results.
    pub(crate) chol: Vec<f64>,
    /// The contributors, for explanations.
    pub contributors: Vec<Contributor>,
    /// Norm of the semantic sum before normalizing (explanations rescale by it).
    pub s_norm: f32,
    /// Unit text vector of the typed interests alone (zero without any): the interest term.
    pub t: Vec<f32>,
    /// Norm of the interests' sum before normalizing.
    pub t_norm: f32,
    /// `[z_u, 1]`: the autoencoder's latent mean for the profile's liked items and a 1
    /// for the decoder bias (width `latent + 1`; empty without an autoencoder, zero
    /// without a liked item).
    pub z: Vec<f32>,
}

impl UserQuery {
    /// Whether the user gave nothing to go on (a cold user: popularity decides).
    pub fn is_empty(&self) -> bool {
        self.contributors.is_empty()
    }
}

/// The decay factor of an event `age_days` old with the given half-life.
pub fn decay(age_days: f32, half_life_days: f32) -> f32 {
    if half_life_days <= 0.0 || !age_days.is_finite() || age_days <= 0.0 {
        1.0
    } else {
        0.5f32.powf(age_days / half_life_days)
    }
}

/// The user vectors for `events` and `interests` over `items` (no foreign events).
pub fn user_query(
    items: &ItemSide,
    params: Option<&ScorerParams>,
    events: &[Event],
    interests: &[Interest],
) -> Result<UserQuery> {
    user_query_with_foreign(items, params, events, interests, &[])
}

/// The user vectors for `events`, `interests` and `foreign` events over `items`.
///
/// Events with a non-positive weight after decay enter the fold-in as known
/// non-preferences (confidence without preference) and are subtracted from the
/// semantic vector. Interests and foreign events (events on another catalog's items,
/// given by their embeddings, already weighted) count as items whose factors come from
/// the catalog's text map (the cold-start path); without a text map they only move the
/// semantic vector. Only typed interests make the interest vector `t`: a foreign event
/// is a behaviour, not words the visitor chose.
///
/// # Shapes
/// - items: `len` records of `k + 2r` factors, `len` embeddings of width `d`
/// - returns `p: [k]`, `a: [r]`, `s: [d]`
pub fn user_query_with_foreign(
    items: &ItemSide,
    params: Option<&ScorerParams>,
    events: &[Event],
    interests: &[Interest],
    foreign: &[Interest],
) -> Result<UserQuery> {
    let d = items.embedding_dims;
    let (k, r) = params.map_or((0, 0), |p| (p.als_dims, p.item_rank));
    let half_life = params.map_or(0.0, |p| p.half_life_days);
    let mut contributors = Vec::with_capacity(events.len() + interests.len() + foreign.len());
    for (index, ev) in events.iter().enumerate() {
        let i = ev.item as usize;
        if i >= items.len {
            return Err(Error::new(
                ErrorKind::Input,
                format!("event {index}: item {i} is outside the catalog's {} items", items.len),
            ));
        }
        if !ev.weight.is_finite() || !ev.age_days.is_finite() {
            return Err(Error::new(ErrorKind::Input, format!("event {index}: weight and age must be finite numbers")));
        }
        let record = items.record(i);
        contributors.push(Contributor {
            source: Source::Event { index, item: ev.item },
            weight: ev.weight * decay(ev.age_days, half_life),
            q: record.get(..k).unwrap_or_default().to_vec(),
            a: record.get(k..k + r).unwrap_or_default().to_vec(),
            e: items.embedding(i),
        });
    }
    let typed = interests.iter().enumerate().map(|(i, it)| (i, Source::Interest(i), it, "interest"));
    let foreign = foreign.iter().enumerate().map(|(i, it)| (i, Source::Foreign(i), it, "foreign event"));
    for (index, source, it, what) in typed.chain(foreign) {
        if it.embedding.len() != d || it.embedding.iter().any(|v| !v.is_finite()) || !it.weight.is_finite() {
            return Err(Error::new(
                ErrorKind::Input,
                format!("{what} {index}: expected {d} finite embedding values and a finite weight"),
            ));
        }
        let mut e = it.embedding.clone();
        normalize(&mut e);
        let (q, a) = match params.and_then(|p| p.text_map.as_ref()) {
            Some(map) => {
                let mapped = map_text(map, &e);
                (mapped[..k].to_vec(), mapped[k..k + r].to_vec())
            }
            None => (vec![0.0; k], vec![0.0; r]),
        };
        contributors.push(Contributor { source, weight: it.weight * decay(it.age_days, half_life), q, a, e });
    }

    let mut s = vec![0.0f32; d];
    let mut a = vec![0.0f32; r];
    for c in &contributors {
        c.e.iter().zip(&mut s).for_each(|(x, y)| *y += c.weight * x);
        c.a.iter().zip(&mut a).for_each(|(x, y)| *y += c.weight * x);
    }
    let s_norm = s.iter().map(|x| x * x).sum::<f32>().sqrt();
    normalize(&mut s);
    let mut t = vec![0.0f32; d];
    for c in contributors.iter().filter(|c| matches!(c.source, Source::Interest(_))) {
        c.e.iter().zip(&mut t).for_each(|(x, y)| *y += c.weight * x);
    }
    let t_norm = t.iter().map(|x| x * x).sum::<f32>().sqrt();
    normalize(&mut t);

    let (p, chol) = match params {
        Some(params) if k > 0 => fold_in(params, &contributors)?,
        _ => (Vec::new(), Vec::new()),
    };
    let z = params.map_or_else(Vec::new, |p| autoencoder_input(items, p, &contributors));
    Ok(UserQuery { p, a, s, chol, contributors, s_norm, t, t_norm, z })
}

/// `[z_u, 1]` for the catalog's autoencoder: the encoder's mean over the distinct items
/// of the positive events (binary, as it was trained: a like counts once, whatever its
/// type, weight or age); zeros without one, so the term drops out.
fn autoencoder_input(items: &ItemSide, params: &ScorerParams, contributors: &[Contributor]) -> Vec<f32> {
    let Some(vae) = &params.vae else { return Vec::new() };
    let mut liked: Vec<usize> = contributors
        .iter()
        .filter(|c| c.weight > 0.0)
        .filter_map(|c| match c.source {
            Source::Event { item, .. } => Some(item as usize),
            _ => None,
        })
        .collect();
    liked.sort_unstable();
    liked.dedup();
    if liked.is_empty() {
        return vec![0.0; vae.latent + 1];
    }
    let first = params.vae_column();
    let rows: Vec<&[f32]> = liked.iter().map(|&i| &items.record(i)[first..first + vae.hidden]).collect();
    let mut z = vae.latent(&rows);
    z.push(1.0);
    z
}

/// `[e, 1] W`: the text map's estimate of the user-side factors `[q | a]`.
pub fn map_text(map: &super::model::Matrix, e: &[f32]) -> Vec<f32> {
    let mut out = map.data[e.len() * map.cols..(e.len() + 1) * map.cols].to_vec();
    for (j, x) in e.iter().enumerate() {
        let row = &map.data[j * map.cols..(j + 1) * map.cols];
        row.iter().zip(&mut out).for_each(|(w, o)| *o += x * w);
    }
    out
}

/// The exact implicit-ALS user solve over the contributors:
/// `p = (Q^T Q + sum c_h q_h q_h^T + lambda I)^-1 sum (1 + c_h) q_h` over positive ones,
/// with `c_h = alpha * |w_h|`; negative contributors add confidence only. `lambda` is
/// `reg`, or `reg` times the positive contributors under [`RegScaling::PerPositive`]
/// (the equations Spark's ALS solves for a user, so an imported model's training users
/// fold in to Spark's own user factors). Returns `p` and the system's Cholesky factor.
fn fold_in(params: &ScorerParams, contributors: &[Contributor]) -> Result<(Vec<f32>, Vec<f64>)> {
    let k = params.als_dims;
    let mut m: Vec<f64> = params.gram.data.iter().map(|&v| v as f64).collect();
    let lambda = match params.reg_scaling {
        RegScaling::Constant => params.reg as f64,
        RegScaling::PerPositive => {
            let positives = contributors.iter().filter(|c| c.weight > 0.0).count().max(1);
            params.reg as f64 * positives as f64
        }
    };
    for i in 0..k {
        m[i * k + i] += lambda;
    }
    let mut rhs = vec![0.0f64; k];
    for c in contributors {
        let conf = (params.alpha * c.weight.abs()) as f64;
        for i in 0..k {
            let qi = c.q[i] as f64;
            for j in 0..=i {
                m[i * k + j] += conf * qi * c.q[j] as f64;
            }
        }
        if c.weight > 0.0 {
            rhs.iter_mut().zip(&c.q).for_each(|(r, &q)| *r += (1.0 + conf) * q as f64);
        }
    }
    // Only the lower triangle was accumulated; mirror it for the full factorization.
    for i in 0..k {
        for j in 0..i {
            m[j * k + i] = m[i * k + j];
        }
    }
    linalg::cholesky(&mut m, k)
        .map_err(|e| Error::with_source(ErrorKind::Input, "the fold-in system is not positive definite", e))?;
    linalg::cholesky_solve(&m, k, &mut rhs);
    Ok((rhs.iter().map(|&v| v as f32).collect(), m))
}

/// `(Q^T Q + ... )^-1 v` with the fold-in's factor: how one contributor's `q` moves `p`.
pub(crate) fn solve_with(chol: &[f64], v: &[f32]) -> Vec<f32> {
    let k = v.len();
    let mut x: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    if chol.len() == k * k && k > 0 {
        linalg::cholesky_solve(chol, k, &mut x);
    }
    x.iter().map(|&v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (ItemSide, ScorerParams) {
        // Three items, k = 2, r = 1, d = 2.
        let factors = vec![1.0, 0.0, 0.5, 0.5, /**/ 0.0, 1.0, 0.2, 0.1, /**/ 0.7, 0.7, 0.1, 0.9];
        let q: Vec<[f32; 2]> = vec![[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]];
        let mut gram = vec![0.0; 4];
        for v in &q {
            for i in 0..2 {
                for j in 0..2 {
                    gram[i * 2 + j] += v[i] * v[j];
                }
            }
        }
        let items = ItemSide::new(4, factors, vec![0.0; 3], 2, &[1.0, 0.0, 0.0, 1.0, 0.6, 0.8]);
        let params = ScorerParams { half_life_days: 10.0, ..ScorerParams::untuned(2, 1, 0.5, 4.0, gram) };
        (items, params)
    }

    #[test]
    fn fold_in_solves_the_als_normal_equations_exactly() {
        let (items, params) = toy();
        let q = user_query(&items, Some(&params), &[Event { item: 0, weight: 1.0, age_days: 0.0 }], &[]).unwrap();
        // (G + reg I + alpha q0 q0^T) p = (1 + alpha) q0, checked by substitution.
        let m = [[1.49 + 0.5 + 4.0, 0.49], [0.49, 1.49 + 0.5]];
        for row in 0..2 {
            let lhs = m[row][0] * q.p[0] + m[row][1] * q.p[1];
            let rhs = if row == 0 { 5.0 } else { 0.0 };
            assert!((lhs - rhs).abs() < 1e-4, "row {row}: {lhs} vs {rhs}");
        }
        assert_eq!(q.a, vec![0.5]);
        assert_eq!(q.s, vec![1.0, 0.0]);
    }

    #[test]
    fn per_positive_scaling_multiplies_lambda_by_the_positive_events_only() {
        let (items, params) = toy();
        let params = ScorerParams { reg_scaling: RegScaling::PerPositive, half_life_days: 0.0, ..params };
        let events = [
            Event { item: 0, weight: 1.0, age_days: 0.0 },
            Event { item: 2, weight: 1.0, age_days: 0.0 },
            Event { item: 1, weight: -1.0, age_days: 0.0 },
        ];
        let q = user_query(&items, Some(&params), &events, &[]).unwrap();
        // (G + 2 * reg I + alpha sum q q^T) p = (1 + alpha) (q0 + q2), reg counted twice.
        let qs = [[1.0f32, 0.0], [0.0, 1.0], [0.7, 0.7]];
        let mut m = [[1.49 + 1.0, 0.49], [0.49, 1.49 + 1.0]];
        for v in qs {
            for (a, row) in m.iter_mut().enumerate() {
                row.iter_mut().zip(v).for_each(|(x, vb)| *x += 4.0 * v[a] * vb);
            }
        }
        let rhs = [5.0 * 1.7, 5.0 * 0.7];
        for row in 0..2 {
            let lhs = m[row][0] * q.p[0] + m[row][1] * q.p[1];
            assert!((lhs - rhs[row]).abs() < 1e-4, "row {row}: {lhs} vs {}", rhs[row]);
        }
    }

    #[test]
    fn old_events_weigh_less_and_dislikes_push_away() {
        let (items, params) = toy();
        let fresh = user_query(&items, Some(&params), &[Event { item: 1, weight: 1.0, age_days: 0.0 }], &[]).unwrap();
        let old = user_query(&items, Some(&params), &[Event { item: 1, weight: 1.0, age_days: 30.0 }], &[]).unwrap();
        assert!(old.p[1] < fresh.p[1] && old.p[1] > 0.0, "{:?} vs {:?}", old.p, fresh.p);
        assert!((old.contributors[0].weight - 0.125).abs() < 1e-6, "three half-lives");
        let disliked =
            user_query(&items, Some(&params), &[Event { item: 1, weight: -1.0, age_days: 0.0 }], &[]).unwrap();
        assert_eq!(disliked.p, vec![0.0, 0.0], "a dislike alone gives no preference");
        assert_eq!(disliked.s, vec![0.0, -1.0]);
    }

    #[test]
    fn bad_events_and_interests_are_refused_with_their_position() {
        let (items, params) = toy();
        let err = user_query(&items, Some(&params), &[Event { item: 7, weight: 1.0, age_days: 0.0 }], &[]).unwrap_err();
        assert!(err.to_string().contains("event 0: item 7"), "{err}");
        let err =
            user_query(&items, Some(&params), &[], &[Interest { embedding: vec![1.0], weight: 1.0, age_days: 0.0 }])
                .unwrap_err();
        assert!(err.to_string().contains("interest 0"), "{err}");
        let err =
            user_query(&items, Some(&params), &[Event { item: 0, weight: f32::NAN, age_days: 0.0 }], &[]).unwrap_err();
        assert!(err.to_string().contains("finite"), "{err}");
    }

    #[test]
    fn an_empty_profile_gives_zero_vectors() {
        let (items, params) = toy();
        let q = user_query(&items, Some(&params), &[], &[]).unwrap();
        assert!(q.is_empty());
        assert_eq!(q.p, vec![0.0, 0.0]);
        assert_eq!(q.s, vec![0.0, 0.0]);
    }
}

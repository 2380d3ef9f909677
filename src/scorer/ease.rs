//! EASE (Steck 2019), the item-item model `B = I - P diag(1/diag P)` with
//! `P = (X^T X + lambda I)^-1`, and its low-rank factorization `B ~ A C^T` (a randomized
//! range finder, fitted to the training users' scores `X B`), so the device scores it
//! like factors: `(x^T A) C^T`. Native only: the inverse is `O(n^3)` on the catalog's `n`
//! interacted items.

use rayon::prelude::*;

use super::als::SplitMix;
use super::linalg::{axpy, dot};
use super::sparse::Csr;
use crate::error::{Error, ErrorKind, Result};

/// `X^T X` (`items x items`, row-major) of a users x items matrix.
pub fn item_gram(user_items: &Csr) -> Vec<f32> {
    let n = user_items.cols;
    let mut g = vec![0.0f32; n * n];
    for u in 0..user_items.rows {
        let (idx, val) = user_items.row(u);
        for (&i, &vi) in idx.iter().zip(val) {
            let row = &mut g[i as usize * n..(i as usize + 1) * n];
            for (&j, &vj) in idx.iter().zip(val) {
                row[j as usize] += vi * vj;
            }
        }
    }
    g
}

/// Lower Cholesky factor of an SPD matrix in place (f32, row-major; the upper
/// triangle is zeroed). Rows are done in blocks: the part of a block's rows that
/// depends on earlier blocks is computed in parallel.
fn cholesky_blocked(a: &mut [f32], n: usize) -> Result<()> {
    const BLOCK: usize = 64;
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK).min(n);
        let (done, rest) = a.split_at_mut(start * n);
        let done: &[f32] = done;
        // Columns 0..start of rows start..end: dots with finished rows, in parallel.
        rest[..(end - start) * n].par_chunks_mut(n).for_each(|row| {
            for j in 0..start {
                let lj = &done[j * n..j * n + j + 1];
                row[j] = (row[j] - dot(&row[..j], &lj[..j])) / lj[j];
            }
        });
        // The block's own triangle, in order.
        for i in start..end {
            for j in start..=i {
                let (before, from_i) = rest.split_at_mut((i - start) * n);
                let row_i = &mut from_i[..n];
                if j == i {
                    let d = row_i[i] - dot(&row_i[..i], &row_i[..i]);
                    if d.is_nan() || d <= 0.0 || d.is_infinite() {
                        return Err(Error::new(
                            ErrorKind::Input,
                            format!("the item gram matrix is not positive definite at item {i}"),
                        ));
                    }
                    row_i[i] = d.sqrt();
                } else {
                    let row_j = &before[(j - start) * n..(j - start) * n + j + 1];
                    row_i[j] = (row_i[j] - dot(&row_i[..j], &row_j[..j])) / row_j[j];
                }
            }
        }
        start = end;
    }
    for i in 0..n {
        a[i * n + i + 1..(i + 1) * n].iter_mut().for_each(|v| *v = 0.0);
    }
    Ok(())
}

/// `P = (L L^T)^-1` from the lower factor `l`: `U = L^-1` transposed row by row (each
/// column of `L^-1` is an independent forward solve), then `P_ij = U_i . U_j` over the
/// columns both rows have.
fn inverse_from_cholesky(l: &[f32], n: usize) -> Vec<f32> {
    // u[c] = column c of L^-1, which is zero above c.
    let mut u = vec![0.0f32; n * n];
    u.par_chunks_mut(n).enumerate().for_each(|(c, x)| {
        x[c] = 1.0 / l[c * n + c];
        for i in c + 1..n {
            let s = dot(&l[i * n + c..i * n + i], &x[c..i]);
            x[i] = -s / l[i * n + i];
        }
    });
    let mut p = vec![0.0f32; n * n];
    p.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        let ui = &u[i * n..(i + 1) * n];
        for (j, out) in row.iter_mut().enumerate() {
            let from = i.max(j);
            *out = dot(&ui[from..], &u[j * n + from..(j + 1) * n]);
        }
    });
    p
}

/// EASE's `B` (row-major `n x n`, zero diagonal) from the item gram matrix: the score
/// of target `j` for a user `x` is `(x^T B)_j`.
pub fn ease(mut gram: Vec<f32>, n: usize, lambda: f32) -> Result<Vec<f32>> {
    if gram.len() != n * n {
        return Err(Error::new(ErrorKind::Input, format!("the item gram matrix must be {n} x {n}")));
    }
    if !lambda.is_finite() || lambda <= 0.0 {
        return Err(Error::new(ErrorKind::Input, "the ease lambda must be a finite number > 0"));
    }
    for i in 0..n {
        gram[i * n + i] += lambda;
    }
    cholesky_blocked(&mut gram, n)?;
    let p = inverse_from_cholesky(&gram, n);
    drop(gram);
    let diag: Vec<f32> = (0..n).map(|i| p[i * n + i]).collect();
    let mut b = p;
    b.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        for (j, v) in row.iter_mut().enumerate() {
            *v = if i == j { 0.0 } else { -*v / diag[j] };
        }
    });
    Ok(b)
}

/// `M Y` for row-major `m` (`rows x n`) and `y` (`n x r`).
fn times(m: &[f32], rows: usize, n: usize, y: &[f32], r: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * r];
    out.par_chunks_mut(r).enumerate().for_each(|(i, o)| {
        for (j, &v) in m[i * n..(i + 1) * n].iter().enumerate() {
            if v != 0.0 {
                axpy(v, &y[j * r..(j + 1) * r], o);
            }
        }
    });
    out
}

/// Orthonormal columns spanning `y` (`n x r`) by Cholesky-QR, twice for stability;
/// columns that vanish (rank below `r`) come out as zero.
fn orthonormalize(y: &mut [f32], n: usize, r: usize) {
    for _ in 0..2 {
        let mut g = vec![0.0f64; r * r];
        for row in y.chunks_exact(r) {
            for a in 0..r {
                let x = row[a] as f64;
                for b in 0..=a {
                    g[a * r + b] += x * row[b] as f64;
                }
            }
        }
        // Shift by a tiny multiple of the trace so a rank-deficient Y still factors.
        let trace: f64 = (0..r).map(|a| g[a * r + a]).sum();
        for a in 0..r {
            g[a * r + a] += 1e-10 * trace.max(1e-30);
            for b in 0..a {
                g[b * r + a] = g[a * r + b];
            }
        }
        if super::linalg::cholesky(&mut g, r).is_err() {
            return;
        }
        // Y <- Y L^-T: per row, solve L z = y_row.
        for row in y.chunks_exact_mut(r) {
            for a in 0..r {
                let s: f64 = (0..a).map(|b| g[a * r + b] * row[b] as f64).sum();
                row[a] = ((row[a] as f64 - s) / g[a * r + a]) as f32;
            }
        }
    }
    let _ = n;
}

/// `B ~ A C^T` of rank `rank` fitted to what the model predicts rather than to `B`
/// itself (reduced-rank regression): `C` (`n x rank`) has orthonormal columns spanning the
/// dominant eigenspace of `B^T G B` (`G = X^T X`, the training users' item gram), the
/// principal directions of the training users' scores `X B`, and `A = B C`. A user's
/// scores `x^T B` are projected onto that space: `x^T A C^T = x^T B C C^T`.
///
/// Why not `B`'s own truncated SVD: it keeps `B`'s dominant singular directions whatever
/// the users look like, but EASE's `B` has a flat spectrum, so much of what it predicts for real
/// profiles lies outside them; weighting by `G` keeps the directions real profiles use.
pub fn low_rank_for_users(
    b: &[f32],
    gram: &[f32],
    n: usize,
    rank: usize,
    power_iterations: usize,
    seed: u64,
) -> Result<(Vec<f32>, Vec<f32>)> {
    if b.len() != n * n || gram.len() != n * n || rank == 0 || rank > n {
        return Err(Error::new(ErrorKind::Input, format!("low rank {rank} of a {n} x {n} matrix is not possible")));
    }
    let mut rng = SplitMix(seed ^ 0x5eed);
    let omega: Vec<f32> = (0..n * rank).map(|_| rng.normal() as f32).collect();
    let mut bt = vec![0.0f32; n * n];
    bt.par_chunks_mut(n).enumerate().for_each(|(j, row)| {
        for (i, v) in row.iter_mut().enumerate() {
            *v = b[i * n + j];
        }
    });
    // M y = B^T (G (B y)), never forming the n x n product M.
    let m_times = |y: &[f32]| times(&bt, n, n, &times(gram, n, n, &times(b, n, n, y, rank), rank), rank);
    let mut y = m_times(&omega);
    for _ in 0..power_iterations {
        orthonormalize(&mut y, n, rank);
        y = m_times(&y);
    }
    orthonormalize(&mut y, n, rank);
    let a = times(b, n, n, &y, rank);
    Ok((a, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_inverse_matches_a_direct_check_past_one_block() {
        // An SPD matrix larger than one block: G = M^T M + I.
        let n = 70;
        let mut rng = SplitMix(3);
        let m: Vec<f32> = (0..n * n).map(|_| rng.normal() as f32 * 0.3).collect();
        let mut g = vec![0.0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                g[i * n + j] =
                    (0..n).map(|k| m[k * n + i] * m[k * n + j]).sum::<f32>() + if i == j { 1.0 } else { 0.0 };
            }
        }
        let mut l = g.clone();
        cholesky_blocked(&mut l, n).unwrap();
        let p = inverse_from_cholesky(&l, n);
        for i in 0..n {
            for j in 0..n {
                let v: f32 = (0..n).map(|k| g[i * n + k] * p[k * n + j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-3, "({i},{j}) = {v}");
            }
        }
    }

    #[test]
    fn ease_has_a_zero_diagonal_and_links_co_liked_items() {
        // Items 0 and 1 always together, item 2 alone.
        let t: Vec<(u32, u32, f32)> =
            (0..10u32).flat_map(|u| vec![(u, 0, 1.0), (u, 1, 1.0), (u + 10, 2, 1.0)]).collect();
        let x = Csr::from_triplets(20, 3, &t).unwrap();
        let b = ease(item_gram(&x), 3, 1.0).unwrap();
        assert!((0..3).all(|i| b[i * 3 + i] == 0.0));
        assert!(b[1] > 0.5 && b[2].abs() < 1e-6, "{b:?}");
    }

    #[test]
    fn low_rank_reproduces_a_low_rank_matrix_for_any_users() {
        // G = I: users along every item, so the fit is B's own rank-2 approximation.
        let n = 30;
        let u: Vec<f32> = (0..n * 2).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
        let mut b = vec![0.0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                b[i * n + j] = u[i * 2] * u[j * 2 + 1] + u[i * 2 + 1] * u[j * 2];
            }
        }
        let identity: Vec<f32> = (0..n * n).map(|k| if k % (n + 1) == 0 { 1.0 } else { 0.0 }).collect();
        let (a, c) = low_rank_for_users(&b, &identity, n, 2, 2, 1).unwrap();
        for i in 0..n {
            for j in 0..n {
                let approx: f32 = (0..2).map(|k| a[i * 2 + k] * c[j * 2 + k]).sum();
                assert!((approx - b[i * n + j]).abs() < 1e-3, "({i},{j})");
            }
        }
    }

    #[test]
    fn low_rank_for_users_keeps_what_users_of_a_low_rank_taste_are_predicted() {
        // A full-rank B, and users whose rows span two directions only: their scores
        // X B span two directions, so rank 2 fitted to them reproduces them exactly.
        let (n, users) = (12, 40);
        let mut rng = SplitMix(9);
        let b: Vec<f32> = (0..n * n).map(|_| rng.normal() as f32).collect();
        let basis: Vec<f32> = (0..2 * n).map(|_| rng.normal() as f32).collect();
        let mut x = Vec::with_capacity(users * n);
        for _ in 0..users {
            let (s, t) = (rng.normal() as f32, rng.normal() as f32);
            x.extend((0..n).map(|j| s * basis[j] + t * basis[n + j]));
        }
        let mut gram = vec![0.0f32; n * n];
        for row in x.chunks_exact(n) {
            for i in 0..n {
                for j in 0..n {
                    gram[i * n + j] += row[i] * row[j];
                }
            }
        }
        let (a, c) = low_rank_for_users(&b, &gram, n, 2, 2, 1).unwrap();
        let mut worst = 0.0f32;
        for row in x.chunks_exact(n) {
            let xa: Vec<f32> = (0..2).map(|k| (0..n).map(|i| row[i] * a[i * 2 + k]).sum()).collect();
            for j in 0..n {
                let exact: f32 = (0..n).map(|i| row[i] * b[i * n + j]).sum();
                let approx: f32 = (0..2).map(|k| xa[k] * c[j * 2 + k]).sum();
                worst = worst.max((exact - approx).abs() / (1.0 + exact.abs()));
            }
        }
        assert!(worst < 1e-3, "largest relative error {worst}");
        // B's own rank-2 factors (its truncated SVD: the fit for users along every item,
        // G = I) do not: its spectrum is flat, the users' is not.
        let identity: Vec<f32> = (0..n * n).map(|k| if k % (n + 1) == 0 { 1.0 } else { 0.0 }).collect();
        let (a2, c2) = low_rank_for_users(&b, &identity, n, 2, 2, 1).unwrap();
        let row = &x[..n];
        let xa: Vec<f32> = (0..2).map(|k| (0..n).map(|i| row[i] * a2[i * 2 + k]).sum()).collect();
        let off: f32 = (0..n)
            .map(|j| ((0..n).map(|i| row[i] * b[i * n + j]).sum::<f32>() - (0..2).map(|k| xa[k] * c2[j * 2 + k]).sum::<f32>()).abs())
            .sum();
        assert!(off > 0.1, "b's own factors fit too: {off}");
        assert!(low_rank_for_users(&b, &gram, n, 0, 2, 1).is_err());
    }
}

//! Small dense linear algebra for the scorer: Cholesky factorization and solves
//! (the fold-in's `k x k` system, the text map's ridge system), and the vectorizable
//! dot product the larger kernels are built on. Row-major throughout.

use crate::error::{Error, ErrorKind, Result};

/// In-place lower Cholesky factor of a symmetric positive definite `n x n` matrix
/// (only the lower triangle is read; the upper is left as it was).
pub fn cholesky(a: &mut [f64], n: usize) -> Result<()> {
    if a.len() != n * n {
        return Err(Error::new(
            ErrorKind::Input,
            format!("a {n} x {n} matrix needs {} values, got {}", n * n, a.len()),
        ));
    }
    for j in 0..n {
        let (done, rest) = a.split_at_mut(j * n);
        let row_j = &mut rest[..n];
        for k in 0..j {
            let row_k = &done[k * n..k * n + k + 1];
            let s: f64 = row_j[..k].iter().zip(&row_k[..k]).map(|(x, y)| x * y).sum();
            row_j[k] = (row_j[k] - s) / row_k[k];
        }
        let d = row_j[j] - row_j[..j].iter().map(|x| x * x).sum::<f64>();
        if d <= 0.0 || !d.is_finite() {
            return Err(Error::new(ErrorKind::Input, format!("matrix is not positive definite at pivot {j}")));
        }
        row_j[j] = d.sqrt();
    }
    Ok(())
}

/// Solves `L L^T x = b` in place given the factor from [`cholesky`].
pub fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let s: f64 = l[i * n..i * n + i].iter().zip(&b[..i]).map(|(x, y)| x * y).sum();
        b[i] = (b[i] - s) / l[i * n + i];
    }
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * b[k]).sum();
        b[i] = (b[i] - s) / l[i * n + i];
    }
}

/// Solves the symmetric positive definite system `a x = b` (both overwritten).
pub fn solve_spd(a: &mut [f64], n: usize, b: &mut [f64]) -> Result<()> {
    cholesky(a, n)?;
    cholesky_solve(a, n, b);
    Ok(())
}

/// Dot product with eight independent accumulators, so the compiler vectorizes it.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for i in chunks * 8..n {
        s += a[i] * b[i];
    }
    s
}

/// `y += a x`.
#[inline]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_known_system() {
        let mut a = vec![4.0, 12.0, -16.0, 12.0, 37.0, -43.0, -16.0, -43.0, 98.0];
        cholesky(&mut a, 3).unwrap();
        assert_eq!([a[0], a[3], a[4], a[6], a[7], a[8]], [2.0, 6.0, 1.0, -8.0, 5.0, 3.0]);
        let mut a = vec![4.0, 12.0, -16.0, 12.0, 37.0, -43.0, -16.0, -43.0, 98.0];
        let mut b = vec![1.0, 2.0, 3.0];
        solve_spd(&mut a, 3, &mut b).unwrap();
        let a0 = [4.0, 12.0, -16.0, 12.0, 37.0, -43.0, -16.0, -43.0, 98.0];
        for i in 0..3 {
            let lhs: f64 = (0..3).map(|j| a0[i * 3 + j] * b[j]).sum();
            assert!((lhs - [1.0, 2.0, 3.0][i]).abs() < 1e-9);
        }
    }

    #[test]
    fn an_indefinite_matrix_is_refused_with_its_pivot() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert!(cholesky(&mut a, 2).unwrap_err().to_string().contains("pivot 1"));
        assert!(cholesky(&mut [1.0], 2).is_err());
    }

    #[test]
    fn dot_matches_the_plain_sum_past_the_unrolled_part() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.5).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }
}

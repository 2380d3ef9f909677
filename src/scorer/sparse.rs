//! A compressed sparse row matrix: the user x item interaction log the trainer reads.

use crate::error::{Error, ErrorKind, Result};

/// Rows of column indices and values, each row's columns ascending and distinct.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row `r` is `indptr[r]..indptr[r + 1]` of `indices` and `values`.
    pub indptr: Vec<usize>,
    /// Column of each entry.
    pub indices: Vec<u32>,
    /// Value of each entry.
    pub values: Vec<f32>,
}

impl Csr {
    /// Builds from `(row, column, value)` triplets in any order; duplicates are summed.
    pub fn from_triplets(rows: usize, cols: usize, triplets: &[(u32, u32, f32)]) -> Result<Csr> {
        if let Some(&(r, c, _)) = triplets.iter().find(|&&(r, c, _)| r as usize >= rows || c as usize >= cols) {
            return Err(Error::new(ErrorKind::Input, format!("entry ({r}, {c}) is outside a {rows} x {cols} matrix")));
        }
        if triplets.iter().any(|t| !t.2.is_finite()) {
            return Err(Error::new(ErrorKind::Input, "an interaction value is not a finite number"));
        }
        let mut sorted = triplets.to_vec();
        sorted.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0usize; rows + 1];
        let mut indices = Vec::with_capacity(sorted.len());
        let mut values: Vec<f32> = Vec::with_capacity(sorted.len());
        let mut last = None;
        for (r, c, v) in sorted {
            if last == Some((r, c)) {
                if let Some(x) = values.last_mut() {
                    *x += v;
                }
                continue;
            }
            last = Some((r, c));
            indptr[r as usize + 1] += 1;
            indices.push(c);
            values.push(v);
        }
        for r in 0..rows {
            indptr[r + 1] += indptr[r];
        }
        Ok(Csr { rows, cols, indptr, indices, values })
    }

    /// Row `r`'s columns and values.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let span = self.indptr[r]..self.indptr[r + 1];
        (&self.indices[span.clone()], &self.values[span])
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The transpose (items x users from users x items).
    pub fn transpose(&self) -> Csr {
        let mut indptr = vec![0usize; self.cols + 1];
        for &c in &self.indices {
            indptr[c as usize + 1] += 1;
        }
        for c in 0..self.cols {
            indptr[c + 1] += indptr[c];
        }
        let mut next = indptr.clone();
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for r in 0..self.rows {
            let (idx, val) = self.row(r);
            for (&c, &v) in idx.iter().zip(val) {
                let at = next[c as usize];
                indices[at] = r as u32;
                values[at] = v;
                next[c as usize] += 1;
            }
        }
        Csr { rows: self.cols, cols: self.rows, indptr, indices, values }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triplets_are_sorted_summed_and_transposed() {
        let m = Csr::from_triplets(2, 3, &[(1, 2, 1.0), (0, 1, 1.0), (1, 0, 2.0), (1, 2, 0.5)]).unwrap();
        assert_eq!(m.row(0), (&[1u32][..], &[1.0f32][..]));
        assert_eq!(m.row(1), (&[0u32, 2][..], &[2.0f32, 1.5][..]));
        let t = m.transpose();
        assert_eq!((t.rows, t.cols, t.nnz()), (3, 2, 3));
        assert_eq!(t.row(2), (&[1u32][..], &[1.5f32][..]));
        assert_eq!(t.transpose(), m);
    }

    #[test]
    fn out_of_range_or_non_finite_entries_are_refused() {
        assert!(Csr::from_triplets(2, 2, &[(2, 0, 1.0)]).unwrap_err().to_string().contains("outside"));
        assert!(Csr::from_triplets(2, 2, &[(0, 0, f32::NAN)]).is_err());
    }
}

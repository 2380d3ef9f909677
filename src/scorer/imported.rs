//! ALS item factors trained elsewhere (Spark MLlib's, read by `publish::spark`), in
//! catalog order, for the trainer to use instead of its own ALS (native only). The rest
//! of the item side (item-item model, text map, scenario lifts, rating head, blend) is
//! still trained from the log, over these factors.
//!
//! Spark's implicit ALS solves each user with `lambda = regParam * n_u` (ALS-WR): the
//! params say so ([`RegScaling::PerPositive`]), so the device's fold-in of a user Spark
//! trained on gives back Spark's own user factors. The Gram matrix covers the imported
//! items only, as Spark's `YtY` does: items Spark never saw get factors from their text
//! for ranking, but stay out of the user solve.

use crate::error::{Error, ErrorKind, Result};

pub use super::model::RegScaling;

/// Item factors from an external ALS, with the settings its user solve needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedFactors {
    /// Factor width `k`.
    pub factors: usize,
    /// `items x factors`, row-major, catalog order; zero rows for unknown items.
    pub q: Vec<f32>,
    /// Per catalog item, whether the model has its factors.
    pub known: Vec<bool>,
    /// The model's regularization (Spark's `regParam`).
    pub reg: f32,
    /// The model's confidence scale (Spark's `alpha`).
    pub alpha: f32,
    /// How `reg` grows with a user's profile.
    pub reg_scaling: RegScaling,
}

impl ImportedFactors {
    /// Checks the shapes against a catalog of `items` and the settings' ranges.
    pub fn check(&self, items: usize) -> Result<()> {
        let shape = self.known.len() == items && Some(self.q.len()) == items.checked_mul(self.factors);
        if !shape || self.factors == 0 {
            return Err(Error::new(
                ErrorKind::Input,
                format!(
                    "imported factors: {} values and {} flags for {items} items of width {}",
                    self.q.len(),
                    self.known.len(),
                    self.factors
                ),
            ));
        }
        if !(self.reg.is_finite() && self.reg > 0.0 && self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(Error::new(ErrorKind::Input, "imported factors: reg must be > 0 and alpha >= 0, both finite"));
        }
        if self.q.iter().any(|v| !v.is_finite()) {
            return Err(Error::new(ErrorKind::Input, "imported factors: a value is not finite"));
        }
        Ok(())
    }

    /// `Q^T Q` over the known items (f64 sums, as Spark's `YtY`).
    pub fn gram(&self) -> Vec<f32> {
        let k = self.factors;
        let known: Vec<f32> = self
            .q
            .chunks_exact(k)
            .zip(&self.known)
            .filter(|(_, known)| **known)
            .flat_map(|(row, _)| row.iter().copied())
            .collect();
        super::als::gram(&known, k).into_iter().map(|v| v as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gram_matrix_leaves_out_items_the_model_does_not_know() {
        let f = ImportedFactors {
            factors: 2,
            q: vec![1.0, 2.0, 5.0, 5.0, 0.0, 1.0],
            known: vec![true, false, true],
            reg: 0.1,
            alpha: 1.0,
            reg_scaling: RegScaling::PerPositive,
        };
        f.check(3).unwrap();
        assert_eq!(f.gram(), vec![1.0, 2.0, 2.0, 5.0]);
        assert!(f.check(4).unwrap_err().to_string().contains("for 4 items"));
        let bad = ImportedFactors { reg: 0.0, ..f };
        assert!(bad.check(3).is_err());
    }
}

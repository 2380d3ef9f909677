//! int8 embeddings with one f32 scale per row (docs/catalog-format.md, "Embedding
//! quantization"): a quarter of f32's bytes on the wire and in memory, cosine >= 0.99.

/// One embedding row as stored in a shard: `values[j] * scale` approximates the vector.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedRow {
    /// `max |e_j| / 127`; `0.0` for an all-zero row.
    pub scale: f32,
    /// Values in `[-127, 127]`.
    pub values: Vec<i8>,
}

impl QuantizedRow {
    /// Quantizes a vector. Non-finite values are the caller's error to catch first
    /// (see [`QuantizedRow::try_quantize`]); here they quantize to 0.
    pub fn quantize(e: &[f32]) -> QuantizedRow {
        let max = e.iter().filter(|v| v.is_finite()).fold(0.0f32, |m, v| m.max(v.abs()));
        if max == 0.0 {
            return QuantizedRow { scale: 0.0, values: vec![0; e.len()] };
        }
        let scale = max / 127.0;
        let values = e
            .iter()
            .map(|&v| if v.is_finite() { (v / scale).round().clamp(-127.0, 127.0) as i8 } else { 0 })
            .collect();
        QuantizedRow { scale, values }
    }

    /// [`QuantizedRow::quantize`], refusing a vector with a NaN or an infinity.
    pub fn try_quantize(e: &[f32]) -> Option<QuantizedRow> {
        e.iter().all(|v| v.is_finite()).then(|| Self::quantize(e))
    }

    /// The approximated vector.
    pub fn dequantize(&self) -> Vec<f32> {
        self.values.iter().map(|&q| q as f32 * self.scale).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::cosine;

    #[test]
    fn unit_vectors_keep_cosine_above_0_99() {
        let mut seed = 11u32;
        for _ in 0..200 {
            let v: Vec<f32> = (0..384)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let v: Vec<f32> = v.iter().map(|x| x / norm).collect();
            let q = QuantizedRow::quantize(&v);
            assert!(cosine(&v, &q.dequantize()) >= 0.999, "{}", cosine(&v, &q.dequantize()));
        }
    }

    #[test]
    fn extremes_map_to_plus_minus_127_and_zero_rows_stay_zero() {
        let q = QuantizedRow::quantize(&[0.5, -0.5, 0.25, 0.0]);
        assert_eq!(q.values, vec![127, -127, 64, 0]);
        let z = QuantizedRow::quantize(&[0.0; 4]);
        assert_eq!((z.scale, z.values), (0.0, vec![0; 4]));
        assert!(QuantizedRow::try_quantize(&[1.0, f32::NAN]).is_none());
    }
}

//! Sentence pooling: the mean of the hidden states of real tokens (padding excluded),
//! then L2 normalisation, as sentence-transformers' `Pooling(mean) + Normalize`.

use burn::prelude::*;

/// Smallest norm divided by, so an all-zero vector stays zero instead of NaN.
const MIN_NORM: f32 = 1e-12;

/// Mean of the rows of `hidden` where `mask` is 1, per sequence, L2-normalised.
///
/// # Shapes
/// - `hidden`: `[batch, seq, hidden]`
/// - `mask`: `[batch, seq]`, `1.0` for real tokens, `0.0` for padding
/// - output: `[batch, hidden]`, each row of unit length
pub fn mean_pool_normalized(hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
    let [batch, seq, width] = hidden.dims();
    let mask = mask.reshape([batch, seq, 1]);
    let counts = mask.clone().sum_dim(1).clamp_min(1.0); // [batch, 1, 1]
    let mean = (hidden * mask).sum_dim(1) / counts; // [batch, 1, hidden]
    let mean = mean.reshape([batch, width]);
    let norm = mean.clone().square().sum_dim(1).sqrt().clamp_min(MIN_NORM); // [batch, 1]
    mean / norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_rows_do_not_change_the_pooled_vector() {
        let device = Device::flex();
        // One sequence, two real tokens and one padding row holding huge values.
        let hidden = Tensor::<3>::from_floats([[[3.0, 0.0], [1.0, 0.0], [1000.0, -1000.0]]], &device);
        let mask = Tensor::<2>::from_floats([[1.0, 1.0, 0.0]], &device);
        let pooled = mean_pool_normalized(hidden, mask).into_data().try_to_vec::<f32>().unwrap();
        assert!((pooled[0] - 1.0).abs() < 1e-6 && pooled[1].abs() < 1e-6, "{pooled:?}");
    }

    #[test]
    fn pooled_vectors_have_unit_length() {
        let device = Device::flex();
        let hidden = Tensor::<3>::from_floats([[[3.0, 4.0], [3.0, 4.0]], [[-1.0, 1.0], [0.0, 0.0]]], &device);
        let mask = Tensor::<2>::from_floats([[1.0, 1.0], [1.0, 0.0]], &device);
        let pooled = mean_pool_normalized(hidden, mask).into_data().try_to_vec::<f32>().unwrap();
        for row in pooled.chunks(2) {
            let norm = (row[0] * row[0] + row[1] * row[1]).sqrt();
            assert!((norm - 1.0).abs() < 1e-6, "{row:?}");
        }
    }
}

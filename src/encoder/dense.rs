//! Dense layers for the CPU path: `y = x W + b`, optionally followed by GELU, with the
//! weights packed once at load time for a register-tiled matrix-product kernel.
//!
//! Why this exists: in the browser, burn's Flex backend spends three quarters of an
//! encoder call in its general matrix product, which reached about 22 GFLOP/s there
//! (Chromium, one wasm thread, simd128) on the encoder's shapes, while a 4x8 register
//! tile over weights packed in 8-column panels runs at about 55. The encoder's four
//! linear layers per transformer block are almost all of its arithmetic, so only they
//! come here; everything else (attention, norms, pooling) stays in burn.
//!
//! The kernel is written once over a 4-lane vector type: wasm32 builds with simd128
//! use `v128` intrinsics, every other target uses plain arrays that the compiler
//! vectorises, so native unit tests exercise the same tiling and edge handling.

/// Columns per packed panel: two 4-lane vectors.
const PANEL: usize = 8;
/// Rows per register tile.
const TILE_ROWS: usize = 4;
/// Rows of the input processed against one panel before moving to the next panel; the
/// block of input rows stays in cache while panels stream by.
const ROW_BLOCK: usize = 64;

/// A dense layer's weights `[k, n]` repacked into 8-column panels, with its bias.
#[derive(Clone, Debug)]
pub struct PackedDense {
    k: usize,
    n: usize,
    /// Panel `p` holds columns `8p..8p+8` for every input row, contiguous:
    /// `panels[p * k * 8 + r * 8 + c] = W[r][8p + c]`, zero beyond `n`.
    panels: Vec<f32>,
    bias: Vec<f32>,
}

impl PackedDense {
    /// Packs row-major weights `[k, n]` (burn's `Linear` layout) and a bias of `n` values.
    ///
    /// Returns `None` when the lengths do not match the shape.
    pub fn new(weight: &[f32], k: usize, n: usize, bias: Option<&[f32]>) -> Option<Self> {
        if weight.len() != k.checked_mul(n)? || bias.is_some_and(|b| b.len() != n) {
            return None;
        }
        let panels_count = n.div_ceil(PANEL);
        let mut panels = vec![0.0f32; panels_count * k * PANEL];
        for p in 0..panels_count {
            let cols = (n - p * PANEL).min(PANEL);
            for r in 0..k {
                let dst = &mut panels[(p * k + r) * PANEL..][..cols];
                dst.copy_from_slice(&weight[r * n + p * PANEL..][..cols]);
            }
        }
        let bias = bias.map_or_else(|| vec![0.0; n], <[f32]>::to_vec);
        Some(Self { k, n, panels, bias })
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.k
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        self.n
    }

    /// `x W + b` for `m` rows of `x`, then GELU (exact, erf form) when `gelu` is set.
    ///
    /// # Shapes
    /// - `x`: `[m, k]` row-major, `m = x.len() / k`
    /// - output: `[m, n]` row-major
    pub fn forward(&self, x: &[f32], gelu: bool) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        let m = if k == 0 { 0 } else { x.len() / k };
        let mut out = vec![0.0f32; m * n];
        let panels_count = n.div_ceil(PANEL);
        for block in (0..m).step_by(ROW_BLOCK) {
            let block_end = (block + ROW_BLOCK).min(m);
            for p in 0..panels_count {
                let panel = &self.panels[p * k * PANEL..(p + 1) * k * PANEL];
                let cols = (n - p * PANEL).min(PANEL);
                let bias = &self.bias[p * PANEL..p * PANEL + cols];
                let mut row = block;
                while row < block_end {
                    let rows = (block_end - row).min(TILE_ROWS);
                    let tile = match rows {
                        4 => tile::<4>(&x[row * k..], k, panel),
                        3 => tile::<3>(&x[row * k..], k, panel),
                        2 => tile::<2>(&x[row * k..], k, panel),
                        _ => tile::<1>(&x[row * k..], k, panel),
                    };
                    for (r, values) in tile.iter().take(rows).enumerate() {
                        let dst = &mut out[(row + r) * n + p * PANEL..][..cols];
                        for ((d, &v), &b) in dst.iter_mut().zip(values).zip(bias) {
                            *d = v + b;
                        }
                    }
                    row += rows;
                }
            }
        }
        if gelu {
            gelu_in_place(&mut out);
        }
        out
    }
}

/// One `R x 8` tile of the product: rows `0..R` of `x` (row stride `k`) times a packed panel.
#[inline(always)]
fn tile<const R: usize>(x: &[f32], k: usize, panel: &[f32]) -> [[f32; PANEL]; TILE_ROWS] {
    // The hot loop reads through raw pointers: these two checks cover every access.
    assert!(R <= TILE_ROWS && x.len() >= R * k && panel.len() >= k * PANEL);
    let mut acc = [[lanes::zero(); 2]; R];
    let a = x.as_ptr();
    let w = panel.as_ptr();
    for i in 0..k {
        // SAFETY: i < k, so the 8 weights at i * 8 are in the panel and r * k + i < x.len().
        let (w0, w1) = unsafe { (lanes::load_ptr(w.add(i * PANEL)), lanes::load_ptr(w.add(i * PANEL + 4))) };
        for r in 0..R {
            let s = lanes::splat(unsafe { *a.add(r * k + i) });
            acc[r][0] = lanes::mul_add(s, w0, acc[r][0]);
            acc[r][1] = lanes::mul_add(s, w1, acc[r][1]);
        }
    }
    let mut out = [[0.0f32; PANEL]; TILE_ROWS];
    for r in 0..R {
        lanes::store(acc[r][0], &mut out[r][0..4]);
        lanes::store(acc[r][1], &mut out[r][4..8]);
    }
    out
}

/// GELU, `x * (1 + erf(x / sqrt 2)) / 2`, over a slice.
///
/// The erf is a branch-free polynomial (absolute error below 2e-7) so the loop
/// vectorises; libm's scalar `erff` cost more than the matrix products' epilogue.
pub fn gelu_in_place(values: &mut [f32]) {
    for v in values.iter_mut() {
        let x = *v;
        *v = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Error function, absolute error below 2e-7 over all of f32 (Abramowitz & Stegun 7.1.26
/// refined: the Numerical Recipes `erfc` Chebyshev form), branch-free.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * exp(poly);
    (1.0 - erfc).copysign(x)
}

/// `e^x` for `x <= 0` (all [`erf`] needs), relative error about 1e-7, branch-free.
#[inline(always)]
fn exp(x: f32) -> f32 {
    // e^x = 2^n * e^r with n = round(x / ln 2), |r| <= ln2 / 2; clamp keeps 2^n a normal.
    let x = x.max(-87.0);
    // round_ties_even is one wasm instruction (f32.nearest); round() is a libm call.
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (0.166_666_67 + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// Four f32 lanes: wasm simd128 where it is compiled in, arrays elsewhere.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use core::arch::wasm32::*;

    pub type V = v128;

    #[inline(always)]
    pub fn zero() -> V {
        f32x4_splat(0.0)
    }

    #[inline(always)]
    pub fn splat(x: f32) -> V {
        f32x4_splat(x)
    }

    /// # Safety
    /// `p` must point at four readable f32 (any alignment).
    #[inline(always)]
    pub unsafe fn load_ptr(p: *const f32) -> V {
        unsafe { v128_load(p.cast()) }
    }


    #[inline(always)]
    pub fn store(v: V, s: &mut [f32]) {
        assert!(s.len() >= 4);
        // SAFETY: as in `load`, for writing.
        unsafe { v128_store(s.as_mut_ptr().cast(), v) }
    }

    /// `a * b + c`: two roundings in plain simd128, which has no fused multiply-add.
    #[cfg(not(target_feature = "relaxed-simd"))]
    #[inline(always)]
    pub fn mul_add(a: V, b: V, c: V) -> V {
        f32x4_add(f32x4_mul(a, b), c)
    }

    /// `a * b + c` by relaxed SIMD's multiply-add, fused where the hardware has FMA: on
    /// x86 it doubles the kernel's arithmetic per cycle. Built into a second wasm binary
    /// that the worker picks only where the engine validates relaxed SIMD.
    #[cfg(target_feature = "relaxed-simd")]
    #[inline(always)]
    pub fn mul_add(a: V, b: V, c: V) -> V {
        f32x4_relaxed_madd(a, b, c)
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod lanes {
    pub type V = [f32; 4];

    #[inline(always)]
    pub fn zero() -> V {
        [0.0; 4]
    }

    #[inline(always)]
    pub fn splat(x: f32) -> V {
        [x; 4]
    }

    /// # Safety
    /// `p` must point at four readable f32.
    #[inline(always)]
    pub unsafe fn load_ptr(p: *const f32) -> V {
        unsafe { [*p, *p.add(1), *p.add(2), *p.add(3)] }
    }


    #[inline(always)]
    pub fn store(v: V, s: &mut [f32]) {
        s[..4].copy_from_slice(&v);
    }

    #[inline(always)]
    pub fn mul_add(a: V, b: V, c: V) -> V {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], w: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = b[j] as f64;
                for r in 0..k {
                    s += x[i * k + r] as f64 * w[r * n + j] as f64;
                }
                out[i * n + j] = s as f32;
            }
        }
        out
    }

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn product_matches_a_reference_for_ragged_rows_and_columns() {
        // Rows not a multiple of the tile or block, columns not a multiple of the panel.
        for &(m, k, n) in &[(1, 3, 1), (3, 7, 9), (5, 16, 8), (67, 33, 21), (130, 64, 40)] {
            let x = values(m * k, 1);
            let w = values(k * n, 2);
            let b = values(n, 3);
            let dense = PackedDense::new(&w, k, n, Some(&b)).unwrap();
            let got = dense.forward(&x, false);
            let want = reference(&x, &w, &b, m, k, n);
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert!((g - e).abs() <= 1e-5 * (k as f32), "({m},{k},{n}) element {i}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn mismatched_shapes_are_refused() {
        assert!(PackedDense::new(&[0.0; 6], 2, 4, None).is_none());
        assert!(PackedDense::new(&[0.0; 8], 2, 4, Some(&[0.0; 3])).is_none());
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        let mut xs: Vec<f32> = (-1000..=1000).map(|i| i as f32 / 100.0).collect();
        xs.extend([-100.0, -30.0, 30.0, 100.0, 0.0, -0.0]);
        let mut got = xs.clone();
        gelu_in_place(&mut got);
        for (&x, &g) in xs.iter().zip(&got) {
            let want = 0.5 * x as f64 * (1.0 + libm_erf(x as f64 / std::f64::consts::SQRT_2));
            assert!((g as f64 - want).abs() <= 2e-6 * (1.0 + want.abs()), "gelu({x}) = {g}, want {want}");
        }
    }

    /// erf in f64 by its Taylor series near zero and the continued fraction of erfc beyond.
    fn libm_erf(x: f64) -> f64 {
        let z = x.abs();
        let r = if z < 2.5 {
            let mut term = z;
            let mut sum = z;
            for n in 1..200 {
                term *= -z * z / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let mut f = 0.0;
            for n in (1..200).rev() {
                f = (n as f64 / 2.0) / (z + f);
            }
            1.0 - (-z * z).exp() / (std::f64::consts::PI.sqrt() * (z + f))
        };
        r.copysign(x)
    }
}

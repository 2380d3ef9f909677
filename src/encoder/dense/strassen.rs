//! Strassen's one-level scheme for the dense layers' products on the CPU path: seven
//! quarter products where the plain product has eight, so 7/8 of the multiply-adds.
//!
//! Why: the products are 94% of an encoder call, and the register-tiled kernel already
//! runs within 5-10% of the FMA ceiling; doing less arithmetic was the lever left. With
//! `x` (`[m, k]`) and `W` (`[k, n]`) split in 2 x 2 quarters, the seven products
//! `Mi = (input side) (weight side)` and the output quarters each feeds, in the order they
//! run (the first write to a quarter sets it, onto the bias):
//! - M1 = (A11 + A22)(B11 + B22): C11 = M1, C22 = M1
//! - M2 = (A21 + A22) B11: C21 = M2, C22 -= M2
//! - M3 = A11 (B12 - B22): C12 = M3, C22 += M3
//! - M4 = A22 (B21 - B11): C11 += M4, C21 += M4
//! - M5 = (A11 + A12) B22: C11 -= M5, C12 += M5
//! - M6 = (A21 - A11)(B11 + B12): C22 += M6
//! - M7 = (A12 - A22)(B21 + B22): C11 += M7
//!
//! The weight-side sums are fixed, so they are packed once at load time, in place of the
//! plain panels (7/4 of the layer's weights). The input-side sums are made block by block
//! just before use, and the kernel merges each product straight into its one or two
//! output quarters (adding or subtracting), so the outputs stay in L1 across the twelve
//! merges.
//!
//! Measured in Chromium (Intel Xeon, relaxed SIMD, batch 32 short texts): the four
//! products of a layer alone 5-6% faster; the 24 products of an encoder call in sequence
//! about 4%; the whole call 3-4% (the saving is eaten partly by the input sums, the
//! second merge and the half-height tiles' ragged ends). Run product by product instead
//! of block by block, the merges re-read whole output quarters from L3 and the saving
//! was gone.
//!
//! Few rows (under [`MIN_ROWS`]) are bound by reading the weights, not by arithmetic, and
//! Strassen reads 7/4 of them; those rows take the plain product's arithmetic over the
//! parts that hold the same bytes as the plain weights: with `X1`, `X2` the input's
//! column halves and `S = X1 + X2`, `C_left = S B11 + X2 (B21 - B11)` and `C_right =
//! X1 (B12 - B22) + S B22`. Parts are stored so that `[B11; B21 - B11]` and
//! `[B12 - B22; B22]` each lie as one `[k, n/2]` panel set, and the input as `T = [X1 |
//! S | X2]`: then each output half is one product of depth k over a window of T, as many
//! kernel calls as the plain product makes.
//!
//! In f32 the result differs from the plain product by rounding only: each sum adds a few
//! ulps of its operands' size. The unit tests bound it against an f64 reference; the
//! encoder's parity tests run it on the real model.

use std::ptr::{null, null_mut};

use super::{K_BLOCK, LineAligned, PANEL, SUBTRACT_FIRST, SUBTRACT_SECOND, TILE_ROWS, gelu_in_place, lanes, localrec_dense_tiles};

/// Inputs and outputs at least this wide get Strassen's parts: the quarter products must
/// stay long enough (k/2 multiply-adds per output) for the kernel to run near its peak.
const MIN_WIDTH: usize = 256;
/// Rows from which a product takes the seven products; below, the plain arithmetic (see
/// the module docs).
pub(super) const MIN_ROWS: usize = 96;
/// Rows of each half processed against one panel of output columns before the next. Each
/// block runs all products, so its input sides (up to seven blocks of rows) and its output
/// rows stay in cache; 30 measured best among 12-150 (66, the plain product's block, was
/// 3% slower over an encoder call's 24 products).
const ROW_BLOCK: usize = 30;

/// The weight side of Strassen's products, packed.
#[derive(Clone, Debug)]
pub(super) struct Strassen {
    /// The seven parts, each `[k/2, n/2]`, in [`PANEL`]-column panels (`k/2` rows of
    /// `PANEL`): B11 + B22, B11 + B12, B21 + B22, B11, B21 - B11, B12 - B22, B22 (the weight
    /// sides of M1, M6, M7, M2, M4, M3, M5). Parts 3-6 come first, panel by panel (panel
    /// `p` of the four together), then parts 0-2 likewise ([`Strassen::panel`]): the
    /// few-rows product reads parts 3-4 and 5-6 stacked as two `[k, n/2]` parts and then
    /// streams through memory in order, as the plain product does; the seven products read
    /// both regions in order.
    panels: LineAligned,
    /// Panels per part (`n/2 / PANEL`) and rows per panel (`k/2`).
    panels_per_part: usize,
    rows: usize,
}

/// How a product is merged into an output quarter.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Merge {
    /// The quarter's first write: bias plus the product.
    Set,
    Add,
    Sub,
}

/// The input side of a product: quarter (row half, column half) of `x` read in place,
/// `first + sign second` of two quarters, or the `[rows, k]` window of `T = [X1 | S | X2]`
/// that starts at this many column halves.
#[derive(Clone, Copy, Debug)]
enum InputSide {
    Quarter(usize, usize),
    Sum((usize, usize), (usize, usize), f32),
    Window(usize),
}

/// One product of a plan: its input side, its (first) part, and the output quarters (row
/// half, column half) it feeds, one or two.
struct Step {
    input: InputSide,
    part: usize,
    into: &'static [(usize, usize, Merge)],
}

/// A way to compute the layer: the row halves the input is split into, how many parts
/// stack into each step's weight side (its depth, in k/2), and the steps in order.
struct Plan {
    halves: usize,
    depth: usize,
    steps: &'static [Step],
}

/// Strassen's seven products over two row halves, M1..M7.
const SEVEN: Plan = Plan {
    halves: 2,
    depth: 1,
    steps: &[
        Step { input: InputSide::Sum((0, 0), (1, 1), 1.0), part: 0, into: &[(0, 0, Merge::Set), (1, 1, Merge::Set)] },
        Step { input: InputSide::Sum((1, 0), (1, 1), 1.0), part: 3, into: &[(1, 0, Merge::Set), (1, 1, Merge::Sub)] },
        Step { input: InputSide::Quarter(0, 0), part: 5, into: &[(0, 1, Merge::Set), (1, 1, Merge::Add)] },
        Step { input: InputSide::Quarter(1, 1), part: 4, into: &[(0, 0, Merge::Add), (1, 0, Merge::Add)] },
        Step { input: InputSide::Sum((0, 0), (0, 1), 1.0), part: 6, into: &[(0, 0, Merge::Sub), (0, 1, Merge::Add)] },
        Step { input: InputSide::Sum((1, 0), (0, 0), -1.0), part: 1, into: &[(1, 1, Merge::Add)] },
        Step { input: InputSide::Sum((0, 1), (1, 1), -1.0), part: 2, into: &[(0, 0, Merge::Add)] },
    ],
};

/// The plain product's arithmetic for few rows, all in one row "half":
/// `C_left = [S | X2] [B11; B21 - B11]`, `C_right = [X1 | S] [B12 - B22; B22]`.
const TWO: Plan = Plan {
    halves: 1,
    depth: 2,
    steps: &[
        Step { input: InputSide::Window(1), part: 3, into: &[(0, 0, Merge::Set)] },
        Step { input: InputSide::Window(0), part: 5, into: &[(0, 1, Merge::Set)] },
    ],
};

/// A weights' quarter (row half, column half): `B(i, j)[r][c] = W[i k/2 + r][j n/2 + c]`.
type Quarter = (usize, usize);

/// Each part, in [`Strassen::panels`]' order, as `B(first) + sign B(second)`.
const PARTS: [(Quarter, Option<(Quarter, f32)>); 7] = [
    ((0, 0), Some(((1, 1), 1.0))),
    ((0, 0), Some(((0, 1), 1.0))),
    ((1, 0), Some(((1, 1), 1.0))),
    ((0, 0), None),
    ((1, 0), Some(((0, 0), -1.0))),
    ((0, 1), Some(((1, 1), -1.0))),
    ((1, 1), None),
];

impl Strassen {
    /// Whether a `[k, n]` layer gets Strassen's parts: even halves of whole panels, wide
    /// enough.
    pub(super) fn fits(k: usize, n: usize) -> bool {
        k.is_multiple_of(2) && n.is_multiple_of(2 * PANEL) && k.min(n) >= MIN_WIDTH
    }

    /// Packs the seven parts of row-major weights `[k, n]`; the caller checked
    /// [`Strassen::fits`] and the length.
    pub(super) fn new(weight: &[f32], k: usize, n: usize) -> Self {
        let (kh, nh) = (k / 2, n / 2);
        let mut strassen = Self { panels: LineAligned::zeroed(7 * kh * nh), panels_per_part: nh / PANEL, rows: kh };
        for p in 0..nh / PANEL {
            for (i, &(first, second)) in PARTS.iter().enumerate() {
                let start = strassen.panel(p, i);
                for r in 0..kh {
                    let quarter = |(qi, qj): (usize, usize)| &weight[(qi * kh + r) * n + qj * nh + p * PANEL..][..PANEL];
                    let dst = &mut strassen.panels[start + r * PANEL..][..PANEL];
                    match second {
                        None => dst.copy_from_slice(quarter(first)),
                        Some((q, sign)) => {
                            for ((d, &a), &b) in dst.iter_mut().zip(quarter(first)).zip(quarter(q)) {
                                *d = a + sign * b;
                            }
                        }
                    }
                }
            }
        }
        strassen
    }

    /// Where panel `p` of part `i` starts in [`Strassen::panels`]; panel `p` of part 4
    /// (and of part 6) follows that of part 3 (of part 5).
    fn panel(&self, p: usize, i: usize) -> usize {
        let panel_len = self.rows * PANEL;
        if i >= 3 {
            (p * 4 + i - 3) * panel_len
        } else {
            (self.panels_per_part * 4 + p * 3 + i) * panel_len
        }
    }

    /// `x W + bias` for `m` rows of `x` (`[m, k]`) into `out` (resized to `[m, n]`), then
    /// GELU when `gelu` is set: the seven products from [`MIN_ROWS`] rows, the plain
    /// arithmetic (two products of depth k) below.
    ///
    /// # Shapes
    /// - `x`: `[m, k]` row-major
    /// - `bias`: `[n]`
    /// - output: `[m, n]` row-major
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward_into(&self, k: usize, n: usize, bias: &[f32], x: &[f32], m: usize, gelu: bool, out: &mut Vec<f32>) {
        const ZERO_BIAS: [f32; PANEL] = [0.0; PANEL];
        let (kh, nh) = (k / 2, n / 2);
        let plan = if m >= MIN_ROWS { &SEVEN } else { &TWO };
        let (halves, steps) = (plan.halves, plan.steps);
        // Rows per half. An odd row count leaves the second half one row short: reads of
        // that row give zeros, and its output row is dropped at the end.
        let h = m.div_ceil(halves);
        let x = &x[..m * k];
        let zero_row = vec![0.0f32; kh];
        out.resize(halves * h * n, 0.0);
        let out_ptr = out.as_mut_ptr();
        // Per step, a `[ROW_BLOCK, kh]` slot for the block's summed (or copied) input side;
        // the few-rows plan keeps its `T`, `[ROW_BLOCK, 3 kh]`, in the first three. And
        // every step's inputs for its last, partial tile.
        let short_len = TILE_ROWS * K_BLOCK.min(k);
        let mut sums = vec![0.0f32; steps.len().max(3) * ROW_BLOCK * kh];
        let mut short_tiles = vec![0.0f32; steps.len() * short_len];
        for block in (0..h).step_by(ROW_BLOCK) {
            let rows = (h - block).min(ROW_BLOCK);
            let quarter_row = |(i, j): (usize, usize), r: usize| {
                let row = i * h + block + r;
                if row < m { &x[row * k + j * kh..][..kh] } else { &zero_row[..] }
            };
            if halves == 1 {
                for (r, t) in sums[..rows * 3 * kh].chunks_exact_mut(3 * kh).enumerate() {
                    let (x1, x2) = (quarter_row((0, 0), r), quarter_row((0, 1), r));
                    t[..kh].copy_from_slice(x1);
                    add_scaled(x1, x2, 1.0, &mut t[kh..2 * kh]);
                    t[2 * kh..].copy_from_slice(x2);
                }
            }
            // Each step's input side for this block: (in `sums`, start, row stride), else in `x`.
            let mut inputs = [(false, 0, 0); 7];
            for (s, (input, step)) in inputs.iter_mut().zip(steps).enumerate() {
                let slot = &mut sums[s * ROW_BLOCK * kh..][..rows * kh];
                *input = match step.input {
                    // Read in place, unless the block reaches the missing row.
                    InputSide::Quarter(i, j) if i * h + block + rows <= m => (false, (i * h + block) * k + j * kh, k),
                    InputSide::Quarter(i, j) => {
                        for (r, dst) in slot.chunks_exact_mut(kh).enumerate() {
                            dst.copy_from_slice(quarter_row((i, j), r));
                        }
                        (true, s * ROW_BLOCK * kh, kh)
                    }
                    InputSide::Sum(first, second, sign) => {
                        for (r, dst) in slot.chunks_exact_mut(kh).enumerate() {
                            add_scaled(quarter_row(first, r), quarter_row(second, r), sign, dst);
                        }
                        (true, s * ROW_BLOCK * kh, kh)
                    }
                    InputSide::Window(start) => (true, start * kh, 3 * kh),
                };
            }
            let input = |s: usize| -> (&[f32], usize) {
                let (summed, start, stride) = inputs[s];
                (if summed { &sums[start..] } else { &x[start..] }, stride)
            };
            let tiles = rows.div_ceil(TILE_ROWS);
            let full_tiles = rows / TILE_ROWS;
            let depth = plan.depth * kh;
            for k_start in (0..depth).step_by(K_BLOCK) {
                let k_len = (depth - k_start).min(K_BLOCK);
                let first_slice = k_start == 0;
                if full_tiles < tiles {
                    for (s, short) in short_tiles.chunks_exact_mut(short_len).enumerate() {
                        let (a, a_stride) = input(s);
                        short.fill(0.0);
                        for (r, dst) in short.chunks_exact_mut(k_len).take(rows - full_tiles * TILE_ROWS).enumerate() {
                            dst.copy_from_slice(&a[(full_tiles * TILE_ROWS + r) * a_stride + k_start..][..k_len]);
                        }
                    }
                }
                for p in 0..nh / PANEL {
                    for (s, (step, short)) in steps.iter().zip(short_tiles.chunks_exact(short_len)).enumerate() {
                        let (a, a_stride) = input(s);
                        let a = &a[k_start..];
                        assert!(full_tiles == 0 || a.len() >= (full_tiles * TILE_ROWS - 1) * a_stride + k_len);
                        let panel = &self.panels[self.panel(p, step.part) + k_start * PANEL..][..k_len * PANEL];
                        // Per output quarter: where this block's first row goes in `out`, the
                        // bias when this write sets the quarter, and whether it subtracts.
                        let target = |&(i, j, merge): &(usize, usize, Merge)| {
                            let offset = (i * h + block) * n + j * nh + p * PANEL;
                            assert!(offset + (rows - 1) * n + PANEL <= halves * h * n);
                            let bias = if merge == Merge::Set && first_slice { bias[j * nh + p * PANEL..][..PANEL].as_ptr() } else { null() };
                            (offset, bias, merge == Merge::Sub)
                        };
                        let first = target(&step.into[0]);
                        let second = step.into.get(1).map(target);
                        if full_tiles > 0 {
                            let signs = u32::from(first.2) * SUBTRACT_FIRST + u32::from(second.is_some_and(|d| d.2)) * SUBTRACT_SECOND;
                            // SAFETY: the asserts above cover the inputs of the whole tiles and
                            // the output rows; the panel holds k_len * PANEL weights, each bias
                            // PANEL values; the two quarters do not overlap.
                            unsafe {
                                let (out2, bias2) = second.map_or((null_mut(), null()), |d| (out_ptr.add(d.0), d.1));
                                localrec_dense_tiles(a.as_ptr(), a_stride, panel.as_ptr(), k_len, full_tiles, out_ptr.add(first.0), n, first.1, out2, bias2, signs);
                            }
                        }
                        if full_tiles < tiles {
                            // The last, partial tile into a scratch tile, merged row by row.
                            let mut tile = [[0.0f32; PANEL]; TILE_ROWS];
                            // SAFETY: the short tile holds TILE_ROWS rows of k_len inputs, the
                            // panel k_len * PANEL weights, `tile` TILE_ROWS rows of PANEL.
                            unsafe {
                                localrec_dense_tiles(short.as_ptr(), k_len, panel.as_ptr(), k_len, 1, tile.as_mut_ptr().cast(), PANEL, ZERO_BIAS.as_ptr(), null_mut(), null(), 0)
                            };
                            for (offset, bias, subtract) in std::iter::once(first).chain(second) {
                                for (r, values) in tile.iter().enumerate().take(rows - full_tiles * TILE_ROWS) {
                                    // SAFETY: `target` asserted this row in range, and no other
                                    // reference into `out` is live; a non-null bias points at
                                    // PANEL values.
                                    let dst = unsafe { std::slice::from_raw_parts_mut(out_ptr.add(offset + (full_tiles * TILE_ROWS + r) * n), PANEL) };
                                    for (c, (d, &v)) in dst.iter_mut().zip(values).enumerate() {
                                        let base = if bias.is_null() { *d } else { unsafe { *bias.add(c) } };
                                        *d = if subtract { base - v } else { base + v };
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if gelu {
                for half in 0..halves {
                    // SAFETY: rows block..block + rows of each half are in the output, and no
                    // other reference into it is live.
                    let done = unsafe { std::slice::from_raw_parts_mut(out_ptr.add((half * h + block) * n), rows * n) };
                    gelu_in_place(done);
                }
            }
        }
        out.truncate(m * n);
    }
}

/// `dst = a + sign b`, four lanes at a time (`sign` is +-1, so the multiply-add rounds
/// once, as the sum would).
fn add_scaled(a: &[f32], b: &[f32], sign: f32, dst: &mut [f32]) {
    let s = lanes::splat_value(sign);
    let mut chunks = dst.chunks_exact_mut(4);
    for ((d, a), b) in (&mut chunks).zip(a.chunks_exact(4)).zip(b.chunks_exact(4)) {
        lanes::store(lanes::mul_add(s, lanes::load(b), lanes::load(a)), d);
    }
    let tail = chunks.into_remainder();
    let done = a.len() - tail.len();
    for ((d, &a), &b) in tail.iter_mut().zip(&a[done..]).zip(&b[done..]) {
        *d = a + sign * b;
    }
}

#[cfg(test)]
mod tests {
    use super::super::PackedDense;
    use super::super::tests::{reference, values};
    use super::*;

    /// The layer's output against an f64 reference, within f32 rounding of sums of `k`.
    fn check(m: usize, k: usize, n: usize, gelu: bool) {
        let x = values(m * k, 4);
        let w = values(k * n, 5);
        let b = values(n, 6);
        let dense = PackedDense::new(&w, k, n, Some(&b)).unwrap();
        assert!(dense.strassen.is_some(), "({m},{k},{n}) must take Strassen's parts");
        let got = dense.forward(&x, gelu);
        let mut want = reference(&x, &w, &b, m, k, n);
        if gelu {
            gelu_in_place(&mut want);
        }
        assert_eq!(got.len(), want.len());
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!((g - e).abs() <= 1e-5 * (k as f32).sqrt(), "({m},{k},{n}) element {i}: {g} vs {e}");
        }
    }

    #[test]
    fn seven_products_match_a_reference_for_odd_rows_partial_tiles_and_input_slices() {
        // Odd m (a padded row), halves not a multiple of the tile or block, k = 1024
        // (halves of 512: two input slices of K_BLOCK), with and without GELU.
        for (m, k, n, gelu) in [(MIN_ROWS, 256, 256, false), (97, 256, 272, true), (203, 1024, 256, false), (150, 384, 1152, true)] {
            check(m, k, n, gelu);
        }
    }

    #[test]
    fn few_rows_match_a_reference_through_the_stacked_parts() {
        for (m, k, n, gelu) in [(1, 256, 256, false), (7, 1024, 272, true), (37, 384, 1536, false), (MIN_ROWS - 1, 256, 256, true)] {
            check(m, k, n, gelu);
        }
    }

    #[test]
    fn no_rows_give_no_output() {
        let dense = PackedDense::new(&values(256 * 256, 1), 256, 256, None).unwrap();
        assert!(dense.forward(&[], false).is_empty());
    }

    #[test]
    fn parts_only_for_even_wide_shapes() {
        assert!(Strassen::fits(384, 1536) && Strassen::fits(1536, 384) && Strassen::fits(384, 1152));
        assert!(!Strassen::fits(384, 264) && !Strassen::fits(255, 384) && !Strassen::fits(128, 512));
    }
}

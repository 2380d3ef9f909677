//! Dense layers for the CPU path: `y = x W + b`, optionally followed by GELU, with the
//! weights packed once at load time for a register-tiled matrix-product kernel.
//!
//! Why this exists: in the browser, burn's Flex backend spends three quarters of an
//! encoder call in its general matrix product, which reached about 22 GFLOP/s there
//! (Chromium, one wasm thread, simd128) on the encoder's shapes, while a small register
//! tile over weights packed in column panels runs at about 41 (45 with relaxed SIMD's
//! fused multiply-add, 53 with LLVM's best tile, 59 with the hand-scheduled 6x8 tile
//! below, against a measured ceiling of 63, `bench/browser/fma-peak.mjs`). The encoder's
//! four linear layers per transformer block are almost all of its arithmetic;
//! [`super::cpu`] runs the rest of the forward pass around them.
//!
//! Layers wide enough run by one level of Strassen's scheme instead ([`strassen`]), on the
//! same kernel.
//!
//! The kernel is written once over a 4-lane vector type: wasm32 builds with simd128
//! use `v128` intrinsics, every other target uses plain arrays that the compiler
//! vectorises, so native unit tests exercise the same tiling and edge handling. In both CPU
//! wasm builds, [`localrec_dense_tiles`] gets a hand-scheduled body after linking
//! (`scripts/dense-kernel.mjs`) with the same arithmetic; [`layout`] tells the script the
//! layout that body must follow.

mod layout;
mod strassen;

use std::ptr::{null, null_mut};

use strassen::Strassen;

/// Columns per packed panel: two 4-lane vectors. With [`TILE_ROWS`] = 6 that is 12
/// accumulators, 2 weight vectors and a broadcast input: all 15 of V8's usable vector
/// registers on x64, and 12 independent fused multiply-add chains (latency 4 x 2 ports
/// needs 8), with 8 loads per 12 multiply-adds.
///
/// Measured in Chromium (Intel Xeon, relaxed SIMD, one layer's four products at batch 32):
/// - a hand-written loop of this shape, issued row by row, ran at 59-61 GFLOP/s;
/// - 3x12 (9 accumulators), the best tile in the order LLVM emits, at 53-54;
/// - 6x8 as LLVM emits it (all six broadcasts live at once) spilled: 38;
/// - 4x12 spilled too, and 2x16 and 4x8 trailed 3x12.
const PANEL: usize = 8;
/// 4-lane vectors per panel row.
const VECS: usize = PANEL / 4;
/// Rows per register tile.
const TILE_ROWS: usize = 6;
/// Rows of the input processed against one panel before moving to the next panel; the
/// block of input rows stays in cache while panels stream by. A multiple of
/// [`TILE_ROWS`], so that no tile but a matrix's last is partly empty.
const ROW_BLOCK: usize = 66;
/// Inputs summed per pass: a 66-row block of 384 inputs (99 KiB) stays in L2 and a panel
/// slice (12 KiB) in L1.
const K_BLOCK: usize = 384;

/// f32 storage that starts on a 64-byte boundary. The kernel reads each panel row (32
/// bytes) as two 16-byte loads: from a `Vec<f32>` (4-byte aligned, 8 in practice) one load
/// in four would straddle two cache lines, by the luck of where the allocator put the
/// weights when the model was loaded.
#[derive(Clone, Debug)]
struct LineAligned {
    lines: Vec<Line>,
    len: usize,
}

#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Line([f32; 16]);

impl LineAligned {
    fn zeroed(len: usize) -> Self {
        Self { lines: vec![Line([0.0; 16]); len.div_ceil(16)], len }
    }
}

impl std::ops::Deref for LineAligned {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        // SAFETY: `Line` is 16 f32 with no padding (repr C, size 64), so the lines hold
        // `16 * lines.len() >= len` contiguous, initialised f32.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.len) }
    }
}

impl std::ops::DerefMut for LineAligned {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.len) }
    }
}

/// A dense layer's weights `[k, n]` repacked into [`PANEL`]-column panels, with its bias.
#[derive(Clone, Debug)]
pub struct PackedDense {
    k: usize,
    n: usize,
    /// For the plain product, panel `p` holds columns `PANEL p..PANEL (p + 1)` for every
    /// input row, contiguous:
    /// `panels[(p * k + r) * PANEL + c] = W[r][PANEL p + c]`, zero beyond `n`.
    panels: LineAligned,
    bias: Vec<f32>,
    /// The weights' quarters combined for Strassen's products, in place of `panels`
    /// (then empty) when the shape has even, wide halves: see [`strassen`].
    strassen: Option<Box<Strassen>>,
}

impl PackedDense {
    /// Packs row-major weights `[k, n]` (burn's `Linear` layout) and a bias of `n` values.
    ///
    /// Returns `None` when the lengths do not match the shape.
    pub fn new(weight: &[f32], k: usize, n: usize, bias: Option<&[f32]>) -> Option<Self> {
        if weight.len() != k.checked_mul(n)? || bias.is_some_and(|b| b.len() != n) {
            return None;
        }
        let bias = bias.map_or_else(|| vec![0.0; n], <[f32]>::to_vec);
        if Strassen::fits(k, n) {
            let strassen = Some(Box::new(Strassen::new(weight, k, n)));
            return Some(Self { k, n, panels: LineAligned::zeroed(0), bias, strassen });
        }
        let panels_count = n.div_ceil(PANEL);
        let mut panels = LineAligned::zeroed(panels_count * k * PANEL);
        for p in 0..panels_count {
            let cols = (n - p * PANEL).min(PANEL);
            for r in 0..k {
                let dst = &mut panels[(p * k + r) * PANEL..][..cols];
                dst.copy_from_slice(&weight[r * n + p * PANEL..][..cols]);
            }
        }
        Some(Self { k, n, panels, bias, strassen: None })
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
        let mut out = Vec::new();
        self.forward_into(x, gelu, &mut out);
        out
    }

    /// [`PackedDense::forward`] into a reused buffer (resized to `[m, n]`), so a forward
    /// pass allocates its activations once.
    ///
    /// # Shapes
    /// As [`PackedDense::forward`].
    pub fn forward_into(&self, x: &[f32], gelu: bool, out: &mut Vec<f32>) {
        let (k, n) = (self.k, self.n);
        let m = x.len().checked_div(k).unwrap_or(0);
        if let Some(strassen) = &self.strassen {
            strassen.forward_into(k, n, &self.bias, x, m, gelu, out);
            return;
        }
        // No zeroing: the first input slice writes every output (onto the bias), so only a
        // buffer that grows gets zeros, and a reused one is not written twice.
        out.resize(m * n, 0.0);
        let panels_count = n.div_ceil(PANEL);
        // The inputs of a last tile with fewer than TILE_ROWS rows, zero past them: the
        // kernel reads whole tiles straight from `x`.
        let mut short_tile = Vec::new();
        // Wide inputs (the feed-forward output's k = 1536) are summed in slices of
        // K_BLOCK, so a block of input rows stays in L2 while the panels stream by;
        // without it that layer ran at two thirds of the others' speed.
        for k_start in (0..k).step_by(K_BLOCK) {
            let k_len = (k - k_start).min(K_BLOCK);
            let first = k_start == 0;
            for block in (0..m).step_by(ROW_BLOCK) {
                let block_end = (block + ROW_BLOCK).min(m);
                let tiles = (block_end - block).div_ceil(TILE_ROWS);
                let full_tiles = (block_end - block) / TILE_ROWS;
                if full_tiles < tiles {
                    let row = block + full_tiles * TILE_ROWS;
                    short_tile.clear();
                    short_tile.resize(TILE_ROWS * k_len, 0.0);
                    for (r, dst) in short_tile.chunks_exact_mut(k_len).take(block_end - row).enumerate() {
                        dst.copy_from_slice(&x[(row + r) * k + k_start..][..k_len]);
                    }
                }
                // Tile t's row r, input i: `x[(block + TILE_ROWS t + r) * k + k_start + i]`.
                let inputs = &x[block * k + k_start..];
                assert!(full_tiles == 0 || inputs.len() >= (full_tiles * TILE_ROWS - 1) * k + k_len);
                for p in 0..panels_count {
                    let panel = &self.panels[(p * k + k_start) * PANEL..][..k_len * PANEL];
                    let cols = (n - p * PANEL).min(PANEL);
                    let bias = &self.bias[p * PANEL..p * PANEL + cols];
                    // Whole tiles of a whole panel go straight into the output; a last
                    // partial tile or panel goes through a scratch tile.
                    let whole = if cols == PANEL { full_tiles } else { 0 };
                    if whole > 0 {
                        let dst = &mut out[block * n + p * PANEL..];
                        assert!(dst.len() >= (whole * TILE_ROWS - 1) * n + PANEL);
                        let bias = if first { bias.as_ptr() } else { null() };
                        // SAFETY: the asserts cover the output rows and the inputs; the
                        // panel slice holds k_len * PANEL weights and the bias PANEL.
                        unsafe {
                            localrec_dense_tiles(inputs.as_ptr(), k, panel.as_ptr(), k_len, whole, dst.as_mut_ptr(), n, bias, null_mut(), null(), 0)
                        };
                    }
                    for t in whole..tiles {
                        let row = block + t * TILE_ROWS;
                        let rows = (block_end - row).min(TILE_ROWS);
                        let (a, a_stride) = if t < full_tiles {
                            (&inputs[t * TILE_ROWS * k..][..(TILE_ROWS - 1) * k + k_len], k)
                        } else {
                            (&short_tile[..], k_len)
                        };
                        let mut tile = [[0.0f32; PANEL]; TILE_ROWS];
                        // SAFETY: `a` holds TILE_ROWS rows of k_len inputs a_stride apart, the
                        // panel k_len * PANEL weights, `tile` one tile of outputs with a row
                        // stride of PANEL.
                        unsafe {
                            localrec_dense_tiles(a.as_ptr(), a_stride, panel.as_ptr(), k_len, 1, tile.as_mut_ptr().cast(), PANEL, null(), null_mut(), null(), 0)
                        };
                        for (r, values) in tile.iter().take(rows).enumerate() {
                            let dst = &mut out[(row + r) * n + p * PANEL..][..cols];
                            if first {
                                for ((d, &v), &b) in dst.iter_mut().zip(values).zip(bias) {
                                    *d = v + b;
                                }
                            } else {
                                for (d, &v) in dst.iter_mut().zip(values) {
                                    *d += v;
                                }
                            }
                        }
                    }
                }
                // GELU on the block's finished rows while they are still in cache.
                if gelu && k_start + k_len == k {
                    gelu_in_place(&mut out[block * n..block_end * n]);
                }
            }
        }
    }
}

/// Sign bits of [`localrec_dense_tiles`]'s `signs`: the first (second) destination gets
/// `base - sum` instead of `base + sum`.
const SUBTRACT_FIRST: u32 = 1;
const SUBTRACT_SECOND: u32 = 2;

/// [`localrec_dense_tiles`]'s parameters in order, for the hand-scheduled body
/// ([`layout`]); their types in that order are pinned just below the function.
const TILE_KERNEL_PARAMS: [&str; 11] = ["a", "a_stride", "w", "len", "tiles", "out", "stride", "bias", "out2", "bias2", "signs"];

/// The register-tiled product for `tiles` consecutive tiles of one panel, written into
/// one or two destinations: for tile `t`, row `r` and column `c`, with
/// `o = (t * TILE_ROWS + r) * stride + c`, `out[o]` becomes `bias[c] + sum` when `bias`
/// is not null and `out[o] + sum` when it is, where `sum` adds
/// `a[(t * TILE_ROWS + r) * a_stride + i] * w[i * PANEL + c]` over `i < len` in input
/// order, one multiply-add each. When `out2` is
/// not null, `out2[o]` gets the same sum onto `bias2[c]` or onto itself. Bits of `signs`
/// ([`SUBTRACT_FIRST`], [`SUBTRACT_SECOND`]) subtract the sum instead. The second
/// destination and the signs serve Strassen's products, each of which feeds one or two
/// output quarters (see [`Strassen`]). The inputs are read where they lie (rows
/// `a_stride` apart): copying them into a tile-ordered block first took 1% of an encoder
/// call.
///
/// On wasm32 it is exported by this name so that `scripts/dense-kernel.mjs` can find it in
/// the linked module and give it a hand-scheduled body with the same arithmetic (that
/// script says why); the script then drops the export. Natively (and in the WebGPU
/// module, which does not run it) it runs each tile as two passes of three rows, which
/// keep their 6 accumulators, 2 weight vectors and broadcast in registers in whatever
/// order LLVM issues them.
///
/// # Safety
/// `a` must point at `tiles * TILE_ROWS` rows of `len` readable f32, `a_stride` apart, `w`
/// at `len * PANEL`, `bias` and `bias2` (unless null) at `PANEL`, and `out` and `out2`
/// (unless null) at `tiles * TILE_ROWS` rows of `PANEL` f32, `stride` apart, readable and
/// writable, not overlapping each other.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn localrec_dense_tiles(
    a: *const f32,
    a_stride: usize,
    w: *const f32,
    len: usize,
    tiles: usize,
    out: *mut f32,
    stride: usize,
    bias: *const f32,
    out2: *mut f32,
    bias2: *const f32,
    signs: u32,
) {
    const HALF: usize = TILE_ROWS / 2;
    for t in 0..tiles {
        for half in 0..2 {
            let mut acc = [[lanes::zero(); VECS]; HALF];
            for i in 0..len {
                // SAFETY: i < len and t < tiles, so these inputs and weights are in the
                // caller's ranges.
                let mut wv = [lanes::zero(); VECS];
                for (j, v) in wv.iter_mut().enumerate() {
                    *v = unsafe { lanes::load_ptr(w.add(i * PANEL + 4 * j)) };
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let s = unsafe { lanes::splat_ptr(a.add((t * TILE_ROWS + half * HALF + r) * a_stride + i)) };
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = lanes::mul_add(s, wv[j], *v);
                    }
                }
            }
            let destinations = [(out, bias, signs & SUBTRACT_FIRST != 0), (out2, bias2, signs & SUBTRACT_SECOND != 0)];
            for (out, bias, subtract) in destinations {
                if out.is_null() {
                    continue;
                }
                for (r, row) in acc.iter().enumerate() {
                    for (j, &v) in row.iter().enumerate() {
                        // SAFETY: row t * TILE_ROWS + half * HALF + r and these 4 columns
                        // are in the caller's output range; the bias has PANEL values.
                        unsafe {
                            let dst = out.add((t * TILE_ROWS + half * HALF + r) * stride + 4 * j);
                            let base = if bias.is_null() { lanes::load_ptr(dst) } else { lanes::load_ptr(bias.add(4 * j)) };
                            lanes::store_ptr(if subtract { lanes::sub(base, v) } else { lanes::add(base, v) }, dst);
                        }
                    }
                }
            }
        }
    }
}

// The kernel's signature, position by position: a parameter added, removed or retyped
// fails to compile here, a reminder that TILE_KERNEL_PARAMS (the layout the post-link
// script checks) changes with it; two same-typed parameters swapped are caught by
// tests/browser/dense-kernel.test.mjs.
const _: unsafe extern "C" fn(*const f32, usize, *const f32, usize, usize, *mut f32, usize, *const f32, *mut f32, *const f32, u32) =
    localrec_dense_tiles;

/// GELU, `x * (1 + erf(x / sqrt 2)) / 2`, over a slice, four lanes at a time.
///
/// erf is a rational minimax form `u P(u^2) / Q(u^2)` fitted on `[-4, 4]`, its input
/// clamped to `[-4.1, 4.1]` and its output to `[-1, 1]` (where erf rounds to +-1 in f32),
/// absolute error below 1e-6 (checked against an f64 reference by the unit test below).
/// Written on explicit lanes with its constants held in locals: as a plain loop, LLVM
/// vectorised it but rebuilt 22 vector constants on every iteration, which V8 cannot
/// hoist, and GELU took 8% of a call.
#[inline(never)]
pub fn gelu_in_place(values: &mut [f32]) {
    // Opaque to the optimiser, so the constants stay in locals (registers) for the loop.
    let c = std::hint::black_box(GeluConstants::new());
    let mut chunks = values.chunks_exact_mut(4);
    for chunk in &mut chunks {
        lanes::store(gelu4(lanes::load(chunk), &c), chunk);
    }
    for v in chunks.into_remainder() {
        let mut padded = [*v; 4];
        lanes::store(gelu4(lanes::load(&padded), &c), &mut padded);
        *v = padded[0];
    }
}

/// The coefficients of [`gelu4`], one vector each.
#[derive(Clone, Copy)]
struct GeluConstants {
    p: [lanes::V; 7],
    q: [lanes::V; 5],
    scale: lanes::V,
    limit: lanes::V,
    one: lanes::V,
    half: lanes::V,
}

impl GeluConstants {
    fn new() -> Self {
        let v = lanes::splat_value;
        Self {
            p: [
                v(-2.726_142_3e-10),
                v(2.770_681_4e-8),
                v(-2.101_024e-6),
                v(-5.692_506_4e-5),
                v(-7.349_906_3e-4),
                v(-2.954_600_1e-3),
                v(-1.609_603_3e-2),
            ],
            q: [v(-1.456_607_2e-5), v(-2.133_740_6e-4), v(-1.682_827e-3), v(-7.373_329_2e-3), v(-1.426_474e-2)],
            scale: v(std::f32::consts::FRAC_1_SQRT_2),
            limit: v(4.1),
            one: v(1.0),
            half: v(0.5),
        }
    }
}

#[inline(always)]
fn gelu4(x: lanes::V, c: &GeluConstants) -> lanes::V {
    use lanes::{mul, mul_add};
    let u = mul(x, c.scale);
    let clamped = lanes::clamp(u, c.limit);
    let u2 = mul(clamped, clamped);
    let mut p = c.p[0];
    for &coef in &c.p[1..] {
        p = mul_add(p, u2, coef);
    }
    let mut q = c.q[0];
    for &coef in &c.q[1..] {
        q = mul_add(q, u2, coef);
    }
    // Past |u| = 4 the fit rises above 1 (by 7.6e-7 at the 4.1 clamp, well beyond
    // rounding), so limiting it to +-1 gives exactly +-1 there: GELU is then exactly 0
    // for large negative inputs, as erf in f32 is -1.
    let erf = lanes::clamp(lanes::div(mul(clamped, p), q), c.one);
    let h = mul(x, c.half);
    mul_add(h, erf, h)
}

/// `e^x` for `x <= 0` in four lanes (all a max-shifted softmax needs), relative error
/// about 1e-7, and zero below -87 (where `2^n` would leave the normal numbers), so that
/// `-inf` gives zero.
#[inline(always)]
pub(super) fn exp4_nonpositive(x: lanes::V) -> lanes::V {
    use lanes::{mul, mul_add, splat_value as v};
    // e^x = 2^n e^r with n = round(x / ln 2), |r| <= ln 2 / 2; ln 2 in two parts so
    // that r keeps its low bits.
    let floor = v(-87.0);
    let clamped = lanes::max(x, floor);
    // Adding 1.5 * 2^23 rounds to an integer (ties to even, as `nearest`) and leaves it in
    // the low mantissa bits, where `pow2_of_shifted` reads it: two integer operations in
    // place of a rounding and a saturating conversion.
    let shifted = lanes::add(mul(clamped, v(std::f32::consts::LOG2_E)), v(lanes::ROUNDING_SHIFT));
    let n = lanes::sub(shifted, v(lanes::ROUNDING_SHIFT));
    let r = mul_add(n, v(-1.428_606_8e-6), mul_add(n, v(-0.693_145_75), clamped));
    let mut p = v(0.001_388_889);
    for c in [0.008_333_334, 0.041_666_668, 0.166_666_67, 0.5, 1.0, 1.0] {
        p = mul_add(p, r, v(c));
    }
    lanes::zero_below(mul(p, lanes::pow2_of_shifted(shifted)), x, floor)
}

/// Four f32 lanes: wasm simd128 where it is compiled in, arrays elsewhere.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) mod lanes {
    use core::arch::wasm32::*;

    pub type V = v128;

    #[inline(always)]
    pub fn zero() -> V {
        f32x4_splat(0.0)
    }

    /// # Safety
    /// `p` must point at four readable f32 (any alignment).
    #[inline(always)]
    pub unsafe fn load_ptr(p: *const f32) -> V {
        unsafe { v128_load(p.cast()) }
    }

    /// One f32 from memory in every lane: a single broadcast load.
    ///
    /// # Safety
    /// `p` must point at a readable f32.
    #[inline(always)]
    pub unsafe fn splat_ptr(p: *const f32) -> V {
        unsafe { v128_load32_splat(p.cast()) }
    }

    #[inline(always)]
    pub fn load(s: &[f32]) -> V {
        assert!(s.len() >= 4);
        // SAFETY: four values are in bounds, checked above.
        unsafe { v128_load(s.as_ptr().cast()) }
    }

    #[inline(always)]
    pub fn splat_value(x: f32) -> V {
        f32x4_splat(x)
    }

    #[inline(always)]
    pub fn mul(a: V, b: V) -> V {
        f32x4_mul(a, b)
    }

    #[inline(always)]
    pub fn add(a: V, b: V) -> V {
        f32x4_add(a, b)
    }

    #[inline(always)]
    pub fn sub(a: V, b: V) -> V {
        f32x4_sub(a, b)
    }

    /// # Safety
    /// `p` must point at four writable f32.
    #[inline(always)]
    pub unsafe fn store_ptr(v: V, p: *mut f32) {
        unsafe { v128_store(p.cast(), v) }
    }

    #[inline(always)]
    pub fn div(a: V, b: V) -> V {
        f32x4_div(a, b)
    }

    /// `a` limited to `[-limit, limit]` (`limit` positive; NaN stays NaN).
    #[inline(always)]
    pub fn clamp(a: V, limit: V) -> V {
        f32x4_pmax(f32x4_pmin(a, limit), f32x4_neg(limit))
    }

    /// The larger of each pair (`b` where `a < b`, else `a`).
    #[inline(always)]
    pub fn max(a: V, b: V) -> V {
        f32x4_pmax(a, b)
    }

    /// 1.5 * 2^23: added to an f32 of magnitude below 2^22 it rounds it to an integer
    /// held in the sum's low mantissa bits.
    pub const ROUNDING_SHIFT: f32 = 12_582_912.0;

    /// `2^n` from lanes `n + ROUNDING_SHIFT`, integral `n` in `[-126, 127]`: the exponent
    /// bits built from the sum's low mantissa bits.
    #[inline(always)]
    pub fn pow2_of_shifted(shifted: V) -> V {
        i32x4_shl(i32x4_add(shifted, i32x4_splat(127 - ROUNDING_SHIFT.to_bits() as i32)), 23)
    }

    /// The largest lane of `a` in every lane (pairs swapped, then halves swapped).
    #[inline(always)]
    pub fn max_across(a: V) -> V {
        let a = f32x4_pmax(a, i32x4_shuffle::<1, 0, 3, 2>(a, a));
        f32x4_pmax(a, i32x4_shuffle::<2, 3, 0, 1>(a, a))
    }

    /// The 4 x 4 block of rows `m` transposed: lane `i` of result `j` is lane `j` of `m[i]`.
    #[inline(always)]
    pub fn transpose4(m: [V; 4]) -> [V; 4] {
        let low01 = i32x4_shuffle::<0, 4, 1, 5>(m[0], m[1]);
        let low23 = i32x4_shuffle::<0, 4, 1, 5>(m[2], m[3]);
        let high01 = i32x4_shuffle::<2, 6, 3, 7>(m[0], m[1]);
        let high23 = i32x4_shuffle::<2, 6, 3, 7>(m[2], m[3]);
        [
            i32x4_shuffle::<0, 1, 4, 5>(low01, low23),
            i32x4_shuffle::<2, 3, 6, 7>(low01, low23),
            i32x4_shuffle::<0, 1, 4, 5>(high01, high23),
            i32x4_shuffle::<2, 3, 6, 7>(high01, high23),
        ]
    }

    /// `value` where `x >= bound`, else zero (and zero where `x` is NaN).
    #[inline(always)]
    pub fn zero_below(value: V, x: V, bound: V) -> V {
        v128_and(value, f32x4_ge(x, bound))
    }

    #[inline(always)]
    pub fn to_array(v: V) -> [f32; 4] {
        [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
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
pub(super) mod lanes {
    pub type V = [f32; 4];

    #[inline(always)]
    pub fn zero() -> V {
        [0.0; 4]
    }

    /// # Safety
    /// `p` must point at four readable f32.
    #[inline(always)]
    pub unsafe fn load_ptr(p: *const f32) -> V {
        unsafe { [*p, *p.add(1), *p.add(2), *p.add(3)] }
    }

    /// # Safety
    /// `p` must point at a readable f32.
    #[inline(always)]
    pub unsafe fn splat_ptr(p: *const f32) -> V {
        [unsafe { *p }; 4]
    }

    #[inline(always)]
    pub fn load(s: &[f32]) -> V {
        [s[0], s[1], s[2], s[3]]
    }

    #[inline(always)]
    pub fn splat_value(x: f32) -> V {
        [x; 4]
    }

    #[inline(always)]
    pub fn mul(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i] * b[i])
    }

    #[inline(always)]
    pub fn add(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i] + b[i])
    }

    #[inline(always)]
    pub fn sub(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i] - b[i])
    }

    /// # Safety
    /// `p` must point at four writable f32.
    #[inline(always)]
    pub unsafe fn store_ptr(v: V, p: *mut f32) {
        unsafe { p.cast::<V>().write_unaligned(v) }
    }

    #[inline(always)]
    pub fn div(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i] / b[i])
    }

    /// `a` limited to `[-limit, limit]` (`limit` positive; NaN stays NaN).
    #[inline(always)]
    pub fn clamp(a: V, limit: V) -> V {
        std::array::from_fn(|i| {
            let x = if limit[i] < a[i] { limit[i] } else { a[i] };
            if x < -limit[i] { -limit[i] } else { x }
        })
    }

    /// The larger of each pair (`b` where `a < b`, else `a`).
    #[inline(always)]
    pub fn max(a: V, b: V) -> V {
        std::array::from_fn(|i| if a[i] < b[i] { b[i] } else { a[i] })
    }

    /// As in the simd128 lanes.
    pub const ROUNDING_SHIFT: f32 = 12_582_912.0;

    /// As in the simd128 lanes.
    #[inline(always)]
    pub fn pow2_of_shifted(shifted: V) -> V {
        shifted.map(|s| f32::from_bits((s.to_bits().wrapping_add(127).wrapping_sub(ROUNDING_SHIFT.to_bits())) << 23))
    }

    /// As in the simd128 lanes.
    #[inline(always)]
    pub fn max_across(a: V) -> V {
        [a.into_iter().fold(a[0], |m, x| if m < x { x } else { m }); 4]
    }

    /// As in the simd128 lanes.
    #[inline(always)]
    pub fn transpose4(m: [V; 4]) -> [V; 4] {
        std::array::from_fn(|j| std::array::from_fn(|i| m[i][j]))
    }

    /// `value` where `x >= bound`, else zero (and zero where `x` is NaN).
    #[inline(always)]
    pub fn zero_below(value: V, x: V, bound: V) -> V {
        std::array::from_fn(|i| if x[i] >= bound[i] { value[i] } else { 0.0 })
    }

    #[inline(always)]
    pub fn to_array(v: V) -> [f32; 4] {
        v
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

    pub(super) fn reference(x: &[f32], w: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
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
    pub(super) fn values(len: usize, seed: u32) -> Vec<f32> {
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
        // k = 900 spans three input slices of K_BLOCK.
        for &(m, k, n) in &[(1, 3, 1), (3, 7, 9), (5, 16, 8), (67, 33, 21), (130, 64, 40), (9, 900, 11)] {
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
    fn exp4_matches_exp_for_nonpositive_inputs_and_is_zero_far_below() {
        let mut worst = 0.0f64;
        for i in 0..=87_000 {
            let x = -(i as f32) / 1000.0;
            let got = lanes::to_array(exp4_nonpositive(lanes::splat_value(x)))[0] as f64;
            let want = (x as f64).exp();
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 3e-7, "relative error {worst}");
        let far = lanes::to_array(exp4_nonpositive([-87.5, -1e9, f32::NEG_INFINITY, 0.0]));
        assert_eq!(far, [0.0, 0.0, 0.0, 1.0]);
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
        // Where erf is +-1 in f32, GELU is exactly 0 or the input.
        let mut tails = [-6.0f32, -30.0, -1e30, 6.0, 30.0, 1e30];
        gelu_in_place(&mut tails);
        assert_eq!(tails, [0.0, 0.0, 0.0, 6.0, 30.0, 1e30]);
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

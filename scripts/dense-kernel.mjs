#!/usr/bin/env node
// Post-link step of `make pkg` for the CPU wasm: gives the dense layers' register-tiled
// product, `localrec_dense_tiles` (src/encoder/dense.rs), a hand-scheduled body, and
// drops the export that made the function findable.
//
// Why: a 6 x 8 tile does 12 fused multiply-adds per input and needs 15 vector registers
// (12 accumulators, 2 weight vectors, 1 broadcast input), all that V8 has on x64. LLVM
// orders the loop column by column, so all six broadcasts are live at once; V8 then
// spills and the tile ran at 38 GFLOP/s. Issued row by row (broadcast, that row's two
// multiply-adds, next row) it stays in registers: one layer's four products at batch 32
// ran at 57-59 GFLOP/s in Chromium (Intel Xeon; ceiling 63, bench/browser/fma-peak.mjs),
// against 53-54 for 3 x 12, the best tile in LLVM's order.
//
// The body does the Rust function's arithmetic operation for operation (each accumulator
// sums its products in input order, one fused multiply-add each; then bias +- sum or
// output +- sum, and the same into the second destination when there is one, as
// Strassen's products feed one or two output quarters), so it gives the bits the Rust
// body gives in the same build (checked bit for bit on the encoder's outputs, plain and
// Strassen paths, when this was written). The browser parity tests run both bodies; the
// native tests run the Rust one.
//
// The simd128 build (no fused multiply-add) gets the same row order with a multiply and an
// add per product, each weight vector loaded where it is used: a product register then
// takes the place of the weight vectors, so it still fits in 15.
//
//   node scripts/dense-kernel.mjs FILE.wasm relaxed   # fused multiply-add body, drop the export
//   node scripts/dense-kernel.mjs FILE.wasm plain     # multiply-then-add body, drop the export
//   node scripts/dense-kernel.mjs FILE.wasm strip     # drop the export only
import { readFileSync, writeFileSync } from 'node:fs';
import binaryen from 'binaryen';

const EXPORT = 'localrec_dense_tiles';
const ROWS = 6; // TILE_ROWS in dense.rs
const VECS = 2; // PANEL / 4 in dense.rs
const UNROLL = 8; // inputs per trip of the main loop; a second loop takes the rest

const [file, mode] = process.argv.slice(2);
if (!file || !['relaxed', 'plain', 'strip'].includes(mode)) {
  console.error('usage: dense-kernel.mjs FILE.wasm relaxed|plain|strip');
  process.exit(2);
}
// For profiling: keep the name section of a module built with names (wasm-opt -g).
if (process.env.LOCALREC_KEEP_NAMES) binaryen.setDebugInfo(true);
const mod = binaryen.readBinary(readFileSync(file));
// The features build-pkg.sh gives wasm-opt, no more: with all of binaryen's, it writes
// encodings (compact imports) that Chromium rejects.
const F = binaryen.Features;
mod.setFeatures(F.MVP | F.MutableGlobals | F.NontrappingFPToInt | F.SIMD128 | F.BulkMemory | F.BulkMemoryOpt
  | F.SignExt | F.ReferenceTypes | F.Multivalue | F.CallIndirectOverlong | (mode === 'relaxed' ? F.RelaxedSIMD : 0));
const exp = mod.getExport(EXPORT);
if (!exp) throw new Error(`${file}: no export ${EXPORT}; was the crate built for wasm32?`);
const name = binaryen.getExportInfo(exp).value;
const info = binaryen.getFunctionInfo(mod.getFunction(name));
const i32 = binaryen.i32, v128 = binaryen.v128;
if (binaryen.expandType(info.params).join() !== Array(11).fill(i32).join() || info.results !== binaryen.none) {
  throw new Error(`${file}: ${EXPORT} is not (i32 x 11) -> (): the Rust signature changed`);
}

if (mode !== 'strip') {
  // Parameters, as in the Rust signature: a, a_stride, w, len, tiles, out, stride, bias,
  // out2, bias2, signs.
  const A = 0, A_STRIDE = 1, W = 2, LEN = 3, TILES = 4, OUT = 5, STRIDE = 6, BIAS = 7;
  const OUT2 = 8, BIAS2 = 9, SIGNS = 10;
  const SUBTRACT_FIRST = 1, SUBTRACT_SECOND = 2; // as in dense.rs
  // Locals: the weight pointer, the ends of the unrolled and the whole input loop, an
  // output row pointer, the tile's input row pointers; then the accumulators (row-major),
  // the weight vectors and the broadcast. The inputs are read where they lie, rows
  // a_stride apart: one pointer per row keeps every load at a constant offset, for 6
  // integer adds per trip of the main loop.
  const WP = 11, MAIN_END = 12, END = 13, ROW = 14, IN = 15, ACC = IN + ROWS;
  const WV = ACC + ROWS * VECS, S = WV + VECS;
  const vars = [i32, i32, i32, i32, ...Array(ROWS).fill(i32), ...Array(ROWS * VECS + VECS + 1).fill(v128)];
  const get = (i, t) => mod.local.get(i, t);
  const set = (i, v) => mod.local.set(i, v);
  const add = (i, bytes) => set(i, mod.i32.add(get(i, i32), bytes));
  const madd = (a, b, c) => binaryen._BinaryenSIMDTernary(mod.ptr, binaryen.RelaxedMaddVecF32x4, a, b, c);
  const zero = mod.v128.const(new Uint8Array(16));
  const strideBytes = () => mod.i32.shl(get(STRIDE, i32), mod.i32.const(2));
  const inputStrideBytes = () => mod.i32.shl(get(A_STRIDE, i32), mod.i32.const(2));
  // One input: the weight vectors, then per row its broadcast and that row's multiply-adds,
  // so that only one broadcast is live at a time.
  const weights = (u, j) => mod.v128.load(16 * (VECS * u + j), 4, get(WP, i32));
  const step = (u) => {
    const out = [];
    if (mode === 'relaxed') {
      for (let j = 0; j < VECS; j++) out.push(set(WV + j, weights(u, j)));
    }
    for (let r = 0; r < ROWS; r++) {
      out.push(set(S, mod.v128.load32_splat(4 * u, 4, get(IN + r, i32))));
      for (let j = 0; j < VECS; j++) {
        const acc = ACC + r * VECS + j;
        out.push(set(acc, mode === 'relaxed'
          ? madd(get(S, v128), get(WV + j, v128), get(acc, v128))
          : mod.f32x4.add(mod.f32x4.mul(get(S, v128), weights(u, j)), get(acc, v128))));
      }
    }
    return out;
  };
  const inputs = (label, n, end) =>
    mod.if(
      mod.i32.ne(get(IN, i32), get(end, i32)),
      mod.loop(label, mod.block(null, [
        ...Array.from({ length: n }, (_, u) => step(u)).flat(),
        ...Array.from({ length: ROWS }, (_, r) => add(IN + r, mod.i32.const(4 * n))),
        add(WP, mod.i32.const(16 * VECS * n)),
        mod.br(label, mod.i32.ne(get(IN, i32), get(end, i32))),
      ])),
    );
  // The tile's rows into one destination: onto the bias or onto what it holds, adding or
  // subtracting the sums.
  const write = (out, base, op) => {
    const block = [set(ROW, get(out, i32))];
    for (let r = 0; r < ROWS; r++) {
      for (let j = 0; j < VECS; j++) {
        block.push(mod.v128.store(16 * j, 4, get(ROW, i32), op(base(j), get(ACC + r * VECS + j, v128))));
      }
      block.push(add(ROW, strideBytes()));
    }
    return mod.block(null, block);
  };
  const destination = (out, bias, subtractBit) => {
    const variant = (op) => mod.if(
      mod.i32.ne(get(bias, i32), mod.i32.const(0)),
      write(out, (j) => mod.v128.load(16 * j, 4, get(bias, i32)), op),
      write(out, (j) => mod.v128.load(16 * j, 4, get(ROW, i32)), op),
    );
    return mod.if(
      mod.i32.and(get(SIGNS, i32), mod.i32.const(subtractBit)),
      variant((x, y) => mod.f32x4.sub(x, y)),
      variant((x, y) => mod.f32x4.add(x, y)),
    );
  };
  const tile = mod.block(null, [
    ...Array.from({ length: ROWS * VECS }, (_, i) => set(ACC + i, zero)),
    set(WP, get(W, i32)),
    set(IN, get(A, i32)),
    ...Array.from({ length: ROWS - 1 }, (_, r) => set(IN + r + 1, mod.i32.add(get(IN + r, i32), inputStrideBytes()))),
    set(END, mod.i32.add(get(A, i32), mod.i32.shl(get(LEN, i32), mod.i32.const(2)))),
    set(MAIN_END, mod.i32.add(get(A, i32),
      mod.i32.shl(mod.i32.and(get(LEN, i32), mod.i32.const(-UNROLL)), mod.i32.const(2)))),
    inputs('main', UNROLL, MAIN_END),
    inputs('rest', 1, END),
    destination(OUT, BIAS, SUBTRACT_FIRST),
    mod.if(mod.i32.ne(get(OUT2, i32), mod.i32.const(0)), mod.block(null, [
      destination(OUT2, BIAS2, SUBTRACT_SECOND),
      add(OUT2, mod.i32.mul(strideBytes(), mod.i32.const(ROWS))),
    ])),
    add(OUT, mod.i32.mul(strideBytes(), mod.i32.const(ROWS))),
    add(A, mod.i32.mul(inputStrideBytes(), mod.i32.const(ROWS))),
    set(TILES, mod.i32.sub(get(TILES, i32), mod.i32.const(1))),
  ]);
  const body = mod.if(
    mod.i32.ne(get(TILES, i32), mod.i32.const(0)),
    mod.loop('tiles', mod.block(null, [tile, mod.br('tiles', mod.i32.ne(get(TILES, i32), mod.i32.const(0)))])),
  );
  mod.removeFunction(name);
  mod.addFunction(name, info.params, binaryen.none, vars, body);
}
mod.removeExport(EXPORT);
if (!mod.validate()) throw new Error(`${file}: the module does not validate after replacing ${EXPORT}`);
writeFileSync(file, mod.emitBinary());
console.log(`${file}: ${mode === 'strip' ? '' : `${EXPORT} replaced by the ${ROWS}x${4 * VECS} row-ordered ${mode} kernel, `}export dropped`);

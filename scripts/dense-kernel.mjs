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
// Strassen paths, when this was written; tests/browser/dense-kernel.test.mjs checks it on
// every `make test`). The browser parity tests run both bodies; the native tests run the
// Rust one.
//
// The simd128 build (no fused multiply-add) gets the same row order with a multiply and an
// add per product, each weight vector loaded where it is used: a product register then
// takes the place of the weight vectors, so it still fits in 15.
//
// The layout the body follows (tile rows, vectors per panel row, the sign bits, the order
// of the parameters) is not copied from dense.rs: Rust writes it into the module as the
// custom section `localrec.dense_layout` (src/encoder/dense/layout.rs), and the script
// refuses to splice unless it is exactly the layout this body was written for. The
// section is dropped with the export.
//
//   node scripts/dense-kernel.mjs IN.wasm relaxed [OUT.wasm]   # fused multiply-add body
//   node scripts/dense-kernel.mjs IN.wasm plain [OUT.wasm]     # multiply-then-add body
//   node scripts/dense-kernel.mjs IN.wasm strip [OUT.wasm]     # the export and section only
//
// OUT defaults to IN (rewritten in place). As a module: `readLayout`, `spliceKernel`,
// `withoutSection`.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import binaryen from 'binaryen';

export const EXPORT = 'localrec_dense_tiles';
export const SECTION = 'localrec.dense_layout';
/** The layout the hand-scheduled body is written for: 6 x 8 tiles in 15 vector registers. */
export const LAYOUT = Object.freeze({
  rows: 6,
  vecs: 2,
  panel: 8,
  subtract_first: 1,
  subtract_second: 2,
  params: Object.freeze(['a', 'a_stride', 'w', 'len', 'tiles', 'out', 'stride', 'bias', 'out2', 'bias2', 'signs']),
});
const UNROLL = 8; // inputs per trip of the main loop; a second loop takes the rest

/** The module's sections: [{id, name (custom sections), start, end}] (byte ranges). */
function sections(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const magic = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
  if (view.length < 8 || magic.some((b, i) => view[i] !== b)) throw new Error('not a wasm module (version 1)');
  const leb = (at) => {
    let value = 0;
    for (let shift = 0, i = at; i < view.length && shift < 35; shift += 7, i++) {
      value += (view[i] & 0x7f) * 2 ** shift;
      if ((view[i] & 0x80) === 0) return [value, i + 1];
    }
    throw new Error(`bad LEB128 at byte ${at}`);
  };
  const out = [];
  for (let at = 8; at < view.length; ) {
    const id = view[at];
    const [size, body] = leb(at + 1);
    const end = body + size;
    if (end > view.length) throw new Error(`section at byte ${at} runs past the end of the module`);
    let name = null;
    if (id === 0) {
      const [len, nameAt] = leb(body);
      name = new TextDecoder().decode(view.subarray(nameAt, nameAt + len));
      out.push({ id, name, start: at, end, payload: view.subarray(nameAt + len, end) });
    } else {
      out.push({ id, name, start: at, end });
    }
    at = end;
  }
  return out;
}

/** The layout Rust wrote into the module (see the top of this file), or null when there is none. */
export function readLayout(bytes) {
  const found = sections(bytes).filter((s) => s.name === SECTION);
  if (found.length === 0) return null;
  if (found.length > 1) throw new Error(`${found.length} ${SECTION} sections; expected one`);
  const [head, ...fields] = new TextDecoder().decode(found[0].payload).trim().split(' ');
  if (head !== EXPORT) throw new Error(`${SECTION} describes ${JSON.stringify(head)}, not ${EXPORT}`);
  const layout = {};
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq < 1) throw new Error(`${SECTION}: malformed field ${JSON.stringify(field)}`);
    const key = field.slice(0, eq);
    const value = field.slice(eq + 1);
    layout[key] = key === 'params' ? value.split(',') : /^\d+$/.test(value) ? Number(value) : value;
  }
  return layout;
}

/** What differs between `found` and `LAYOUT`, one line per field; empty when they agree. */
export function layoutMismatches(found) {
  const keys = new Set([...Object.keys(LAYOUT), ...Object.keys(found)]);
  const show = (v) => (Array.isArray(v) ? v.join(',') : String(v));
  return [...keys]
    .filter((k) => show(found[k]) !== show(LAYOUT[k]))
    .map((k) => `${k}: Rust has ${found[k] === undefined ? 'none' : show(found[k])}, this script ${LAYOUT[k] === undefined ? 'none' : show(LAYOUT[k])}`);
}

/** The module without the custom sections named `name`. */
export function withoutSection(bytes, name) {
  const keep = sections(bytes).filter((s) => s.name !== name);
  const parts = [bytes.subarray(0, 8), ...keep.map((s) => bytes.subarray(s.start, s.end))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Gives `localrec_dense_tiles` in the module `bytes` the hand-scheduled body for `mode`
 * ('relaxed', 'plain'; 'strip' keeps the Rust body) and drops its export and the layout
 * section. Throws, changing nothing, when the module's layout is missing or is not
 * `LAYOUT`. `relaxedSimd` (default: mode 'relaxed') admits relaxed SIMD instructions, as
 * the relaxed build's Rust body has when it is only stripped. `assumeLayout` skips the
 * layout check and writes the body for the layout given: the kernel test uses it to
 * build wrong kernels and prove it tells them apart.
 */
export function spliceKernel(bytes, mode, { assumeLayout, relaxedSimd = mode === 'relaxed' } = {}) {
  if (!['relaxed', 'plain', 'strip'].includes(mode)) throw new Error(`unknown mode ${mode}: relaxed, plain or strip`);
  bytes = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const found = readLayout(bytes);
  if (!found) throw new Error(`no ${SECTION} section: build the crate from this tree (src/encoder/dense/layout.rs)`);
  const mismatches = layoutMismatches(found);
  if (mode !== 'strip' && !assumeLayout && mismatches.length > 0) {
    throw new Error(
      `the kernel layout in src/encoder/dense.rs is not the one the hand-scheduled body is written for; refusing to splice:\n  ${mismatches.join('\n  ')}`,
    );
  }
  const layout = assumeLayout ?? LAYOUT;
  const mod = binaryen.readBinary(bytes);
  try {
    // The features build-pkg.sh gives wasm-opt, no more: with all of binaryen's, it writes
    // encodings (compact imports) that Chromium rejects.
    const F = binaryen.Features;
    mod.setFeatures(F.MVP | F.MutableGlobals | F.NontrappingFPToInt | F.SIMD128 | F.BulkMemory | F.BulkMemoryOpt
      | F.SignExt | F.ReferenceTypes | F.Multivalue | F.CallIndirectOverlong | (relaxedSimd ? F.RelaxedSIMD : 0));
    const exp = mod.getExport(EXPORT);
    if (!exp) throw new Error(`no export ${EXPORT}; was the crate built for wasm32?`);
    const name = binaryen.getExportInfo(exp).value;
    const info = binaryen.getFunctionInfo(mod.getFunction(name));
    const params = binaryen.expandType(info.params);
    if (params.join() !== Array(layout.params.length).fill(binaryen.i32).join() || info.results !== binaryen.none) {
      throw new Error(`${EXPORT} is not (i32 x ${layout.params.length}) -> (): the Rust signature changed`);
    }
    if (mode !== 'strip') {
      mod.removeFunction(name);
      mod.addFunction(name, info.params, binaryen.none, ...kernelBody(mod, mode, layout));
    }
    mod.removeExport(EXPORT);
    if (!mod.validate()) throw new Error(`the module does not validate after replacing ${EXPORT}`);
    return withoutSection(mod.emitBinary(), SECTION);
  } finally {
    mod.dispose();
  }
}

/** [locals, body] of the hand-scheduled kernel for `layout` (see the top of this file). */
function kernelBody(mod, mode, layout) {
  const ROWS = layout.rows;
  const VECS = layout.vecs;
  const i32 = binaryen.i32, v128 = binaryen.v128;
  // Parameters by name, in the order Rust declares them.
  const P = Object.fromEntries(layout.params.map((n, i) => [n, i]));
  const A = P.a, A_STRIDE = P.a_stride, W = P.w, LEN = P.len, TILES = P.tiles, OUT = P.out, STRIDE = P.stride;
  const BIAS = P.bias, OUT2 = P.out2, BIAS2 = P.bias2, SIGNS = P.signs;
  const SUBTRACT_FIRST = layout.subtract_first, SUBTRACT_SECOND = layout.subtract_second;
  // Locals: the weight pointer, the ends of the unrolled and the whole input loop, an
  // output row pointer, the tile's input row pointers; then the accumulators (row-major),
  // the weight vectors and the broadcast. The inputs are read where they lie, rows
  // a_stride apart: one pointer per row keeps every load at a constant offset, for 6
  // integer adds per trip of the main loop.
  const WP = layout.params.length, MAIN_END = WP + 1, END = WP + 2, ROW = WP + 3, IN = WP + 4, ACC = IN + ROWS;
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
  return [vars, body];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [input, mode, output = input] = process.argv.slice(2);
  if (!input || !['relaxed', 'plain', 'strip'].includes(mode)) {
    console.error('usage: dense-kernel.mjs IN.wasm relaxed|plain|strip [OUT.wasm]');
    process.exit(2);
  }
  // For profiling: keep the name section of a module built with names (wasm-opt -g).
  if (process.env.LOCALREC_KEEP_NAMES) binaryen.setDebugInfo(true);
  let out;
  try {
    out = spliceKernel(readFileSync(input), mode);
  } catch (e) {
    console.error(`dense-kernel: ${input}: ${e.message}`);
    process.exit(1);
  }
  writeFileSync(output, out);
  const { rows, vecs } = LAYOUT;
  console.log(`${output}: ${mode === 'strip' ? '' : `${EXPORT} replaced by the ${rows}x${4 * vecs} row-ordered ${mode} kernel, `}export and layout section dropped`);
}

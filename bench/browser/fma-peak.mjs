#!/usr/bin/env node
// The arithmetic ceiling of one wasm thread in this Chromium: f32x4 fused multiply-adds
// (relaxed SIMD) on 12 independent accumulators, no memory traffic. The encoder's dense
// kernel is compared against it (bench/browser/run.mjs gives sentences/s; each short item
// text costs 2 * (4 * 384^2 + 2 * 384 * 1536) * 6 flops per token).
//
//   node bench/browser/fma-peak.mjs            # prints GFLOP/s, best of 5
import binaryen from 'binaryen';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../../tests/browser/helpers.mjs';

const CHAINS = 12; // FMA latency (4 cycles) x 2 ports needs 8; 12 leaves headroom
const locals = Array.from({ length: CHAINS }, (_, i) => `(local $a${i} v128)`).join(' ');
const body = Array.from({ length: CHAINS }, (_, i) =>
  `(local.set $a${i} (f32x4.relaxed_madd (local.get $a${i}) (local.get $x) (local.get $y)))`).join('\n');
let sum = '(local.get $a0)';
for (let i = 1; i < CHAINS; i++) sum = `(f32x4.add ${sum} (local.get $a${i}))`;
const wat = `(module (func (export "run") (param $n i32) (result f32) (local $x v128) (local $y v128) ${locals}
  (local.set $x (f32x4.splat (f32.const 0.999999))) (local.set $y (f32x4.splat (f32.const 0.000001)))
  (block $done (loop $l (br_if $done (i32.eqz (local.get $n)))
    ${body}
    (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $l)))
  (f32x4.extract_lane 0 ${sum})))`;
const mod = binaryen.parseText(wat);
mod.setFeatures(binaryen.Features.All);
const bytes = Array.from(mod.emitBinary());

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage();
  const result = await page.evaluate(async ({ bytes, chains }) => {
    if (!WebAssembly.validate(new Uint8Array(bytes))) return { error: 'this engine has no relaxed SIMD' };
    const { instance } = await WebAssembly.instantiate(new Uint8Array(bytes));
    instance.exports.run(1e6); // tier up
    const n = 1e8;
    let best = Infinity;
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      instance.exports.run(n);
      best = Math.min(best, (performance.now() - t) / 1000);
    }
    return { gflops: (n * chains * 4 * 2) / best / 1e9, seconds: best };
  }, { bytes, chains: CHAINS });
  if (result.error) throw new Error(result.error);
  console.log(`one wasm thread, f32x4 relaxed_madd: ${result.gflops.toFixed(1)} GFLOP/s (best of 5, ${(result.seconds * 1000).toFixed(0)} ms each)`);
} finally {
  await browser.close();
}

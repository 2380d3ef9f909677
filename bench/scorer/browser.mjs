// recommend() in headless Chromium (Debian's, driven by playwright-core) on synthetic
// catalogs of several sizes, on burn's CPU backend in wasm (simd128, one thread), beside a
// plain JavaScript brute-force top-k over a Float32Array of the same item matrix: the
// fold-in per event, the full recommend (fold-in, one product for every term, blend,
// top-20, reasons) and the brute-force scan, best of --runs, plus bytes per item.
//
//   node bench/scorer/browser.mjs [--items 10000,100000,1000000] [--backends cpu,webgpu]
//                                 [--runs 5] [--out FILE]
//
// 'webgpu' runs the product on the browser's WebGPU (here SwiftShader, CPU-emulated: its
// figures say nothing about real GPUs) and reads the scores back asynchronously.
//
// A size whose vectors do not fit in the page's memory is reported as such, not skipped
// silently. Writes bench-results/scorer-browser.json.
//
// WasmScorerBench is not in the package: it comes from the benchmarks' build of the wasm
// modules (cargo feature `bench`) in .cache/bench-wasm, which `make bench-scorer-browser`
// writes first (`scripts/build-pkg.sh --bench`).
import { createServer } from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createHandler } from '../../www/serve.mjs';
import { CHROMIUM_ARGS } from '../../tests/browser/helpers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args[i + 1];
};
const SIZES = opt('--items', '10000,100000,1000000').split(',').map(Number);
const RUNS = Number(opt('--runs', '5'));
const FACTORS = Number(opt('--factors', '64'));
const ITEM_RANK = Number(opt('--item-rank', '128'));
const EVENTS = Number(opt('--events', '20'));
const BACKENDS = opt('--backends', 'cpu,webgpu').split(',');
const OUT = path.resolve(ROOT, opt('--out', 'bench-results/scorer-browser.json'));

const BENCH_WASM = path.join(ROOT, '.cache/bench-wasm');
for (const file of ['localrec_wasm.js', 'localrec_wasm_bg.wasm', 'localrec_webgpu.js', 'localrec_webgpu_bg.wasm']) {
  if (!fs.existsSync(path.join(BENCH_WASM, file))) {
    console.error(`bench/scorer: ${path.relative(ROOT, BENCH_WASM)}/${file} is missing: run scripts/build-pkg.sh --bench (make bench-scorer-browser does)`);
    process.exit(1);
  }
}
// The root is bench/: its blank.html is a page that, unlike the demo, loads nothing itself.
const handle = createHandler({ root: path.join(ROOT, 'bench'), mounts: [{ url: '/bench-wasm', dir: BENCH_WASM }] });
const server = createServer(handle);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
const rows = [];
try {
  for (const backend of BACKENDS) for (const items of SIZES) {
    // A fresh page per size, so one size's memory does not weigh on the next.
    const page = await browser.newPage();
    await page.goto(`${origin}/blank.html`);
    const row = await page.evaluate(async ({ items, runs, factors, itemRank, events, backend }) => {
      const gpu = backend === 'webgpu';
      const glue = await import(gpu ? '/bench-wasm/localrec_webgpu.js' : '/bench-wasm/localrec_wasm.js');
      await glue.default({ module_or_path: gpu ? '/bench-wasm/localrec_webgpu_bg.wasm' : '/bench-wasm/localrec_wasm_bg.wasm' });
      const best = async (f) => {
        let b = Infinity;
        for (let i = 0; i < runs; i++) {
          const t = performance.now();
          await f();
          b = Math.min(b, performance.now() - t);
        }
        return b;
      };
      let bench;
      try {
        bench = gpu
          ? await glue.WasmScorerBench.newWebGpu(items, factors, itemRank, events)
          : new glue.WasmScorerBench(items, factors, itemRank, events);
      } catch (e) {
        return { items, backend, error: `does not fit or cannot start: ${e?.message ?? e}` };
      }
      const foldIn = await best(() => bench.foldIn());
      // The first call on WebGPU compiles its shaders: warm up once, untimed.
      await bench.recommendAsync();
      const recommend = await best(() => (gpu ? bench.recommendAsync() : bench.recommend()));
      const bytesPerItem = bench.bytesPerItem();
      const matrix = bench.precision();
      let brute = null;
      let bruteError = null;
      try {
        const width = bench.width();
        const rows = bench.matrix();
        const query = new Float32Array(width).map((_, i) => Math.sin(i));
        const scores = new Float32Array(items);
        brute = await best(() => {
          for (let i = 0, o = 0; i < items; i++, o += width) {
            let s = 0;
            for (let j = 0; j < width; j++) s += rows[o + j] * query[j];
            scores[i] = s;
          }
          // Top 20 by a bounded insertion list, as a page would write it.
          const top = [];
          for (let i = 0; i < items; i++) {
            const s = scores[i];
            if (top.length < 20 || s > top[top.length - 1][0]) {
              let at = top.length;
              while (at > 0 && top[at - 1][0] < s) at--;
              top.splice(at, 0, [s, i]);
              if (top.length > 20) top.pop();
            }
          }
        });
      } catch (e) {
        bruteError = `brute force does not fit: ${e?.message ?? e}`;
      }
      bench.free();
      return { items, backend, foldInMs: foldIn, foldInMsPerEvent: foldIn / events, recommendMs: recommend, bruteForceMs: brute, ratio: brute ? recommend / brute : null, bytesPerItem, matrix, bruteError };
    }, { items, runs: RUNS, factors: FACTORS, itemRank: ITEM_RANK, events: EVENTS, backend }).catch((e) => ({ items, backend, error: String(e.message ?? e).split('\n')[0] }));
    rows.push(row);
    await page.close().catch(() => {});
    const f = (x, d = 2) => (x === null || x === undefined ? '-' : x.toFixed(d));
    console.log(row.error
      ? `${backend} ${items}: ${row.error}`
      : `${backend} ${items} items: fold-in ${f(row.foldInMs, 3)} ms (${f(row.foldInMsPerEvent, 4)} ms/event), recommend ${f(row.recommendMs)} ms, JS brute force ${f(row.bruteForceMs)} ms (ratio ${f(row.ratio)}), ${f(row.bytesPerItem, 0)} bytes/item (${row.matrix} matrix)${row.bruteError ? `; ${row.bruteError}` : ''}`);
  }
} finally {
  await browser.close();
  server.close();
}
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, JSON.stringify({ chromium: true, factors: FACTORS, itemRank: ITEM_RANK, events: EVENTS, runs: RUNS, backends: { cpu: 'Flex, wasm simd128, one thread', webgpu: 'the browser WebGPU adapter (SwiftShader here)' }, rows }, null, 2));
console.log(`wrote ${path.relative(ROOT, OUT)}`);

// Catalog loading in headless Chromium (Debian's, driven by playwright-core), served from
// localhost by the project's own static server (www/serve.mjs: real HTTP, Range, ETags):
// for each catalog, the time from `Catalog.open()` to the manifest, to the first usable
// shard and to the whole catalog, cold (empty Cache Storage, the wasm included) and warm
// (shards from Cache Storage, verified again), plus the worker's parse+verify throughput
// (bytes over the time spent in the wasm store's feed/finish: SHA-256, parsing, commit).
//
//   node bench/catalog/browser.mjs [--runs N] [--out FILE] [CATALOG_DIR...]
//
// Default catalogs: .cache/catalogs/ml-latest-small (`make catalog`) and
// .cache/catalogs/ml-32m-movies (`make catalog-87k`), where present.
// Writes bench-results/catalog-browser.json.
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
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const RUNS = Number(opt('--runs', '3'));
const OUT = path.resolve(ROOT, opt('--out', 'bench-results/catalog-browser.json'));
const dirs = args.length
  ? args.map((d) => path.resolve(d))
  : ['.cache/catalogs/ml-latest-small', '.cache/catalogs/ml-32m-movies']
      .map((d) => path.join(ROOT, d))
      .filter((d) => fs.existsSync(path.join(d, 'manifest.json')));
if (!dirs.length) {
  console.error('bench/catalog/browser.mjs: no catalog found: run `make catalog` (and `make catalog-87k`)');
  process.exit(2);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
};
const r1 = (x) => (x === null ? null : Math.round(x * 10) / 10);

const handle = createHandler({
  root: path.join(ROOT, 'www'),
  mounts: [{ url: '/pkg', dir: path.join(ROOT, 'pkg') }, ...dirs.map((d, i) => ({ url: `/c${i}`, dir: d }))],
});
const server = createServer(handle);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
const chromiumVersion = browser.version();

/** One open in `page`: milestones in ms from the call. */
function timeOpen(page, url) {
  return page.evaluate(async (url) => {
    const { Catalog } = await import('/pkg/index.js');
    const t0 = performance.now();
    let first = null;
    const catalog = await Catalog.open(url, {
      wait: 'manifest',
      onProgress: (p) => {
        if (first === null && p.itemsLoaded > 0) first = performance.now() - t0;
      },
    });
    const manifest = performance.now() - t0;
    const final = await catalog.loaded;
    const full = performance.now() - t0;
    await catalog.close();
    return { manifest, first, full, final };
  }, url);
}

const results = [];
try {
  for (const [i, dir] of dirs.entries()) {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const bytes = manifest.shards.reduce((s, x) => s + x.bytes, 0);
    const cold = [];
    const warm = [];
    for (let run = 0; run < RUNS; run++) {
      // A fresh context: empty Cache Storage and HTTP cache, so "cold" includes the wasm.
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${origin}/pkg/package.json`);
      const c = await timeOpen(page, `${origin}/c${i}/manifest.json`);
      const w = await timeOpen(page, `${origin}/c${i}/manifest.json`);
      if (!c.final.complete || !w.final.complete || w.final.shardsFromCache !== manifest.shards.length) {
        throw new Error(`${dir}: the catalog did not load whole (${JSON.stringify(c.final.failed)})`);
      }
      cold.push(c);
      warm.push(w);
      await context.close();
      console.error(`[catalog bench] ${manifest.name} run ${run + 1}/${RUNS}: cold full ${Math.round(c.full)} ms, warm full ${Math.round(w.full)} ms`);
    }
    const summary = (xs) => ({
      manifest_ms: r1(median(xs.map((x) => x.manifest))),
      first_shard_ms: r1(median(xs.map((x) => x.first))),
      full_ms: r1(median(xs.map((x) => x.full))),
      verify_ms: r1(median(xs.map((x) => x.final.verifyMs))),
      parse_verify_mb_s: r1(median(xs.map((x) => bytes / 1e6 / (x.final.verifyMs / 1000)))),
      end_to_end_mb_s: r1(median(xs.map((x) => bytes / 1e6 / (x.full / 1000)))),
    });
    results.push({
      catalog: manifest.name,
      dir: path.relative(ROOT, dir),
      items: manifest.items,
      shards: manifest.shards.length,
      bytes,
      bytes_per_item: r1(bytes / manifest.items),
      cold: summary(cold),
      warm: summary(warm),
    });
  }
} finally {
  await browser.close();
  server.close();
}

const out = {
  when: new Date().toISOString(),
  command: `node bench/catalog/browser.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  runs: RUNS,
  chromium: chromiumVersion,
  note: 'served from 127.0.0.1 by www/serve.mjs; medians of the runs; cold = fresh browser context (wasm and shards from the network), warm = the same page opening again (shards from Cache Storage, re-verified)',
  catalogs: results,
};
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, JSON.stringify(out, null, 2) + '\n');

const head = ['catalog', 'items', 'shards', 'MB', 'B/item', 'open->manifest', 'open->first shard', 'open->full', 'parse+verify MB/s', 'warm first', 'warm full', 'warm parse+verify MB/s'];
const rows = results.map((r) => [
  r.catalog, r.items, r.shards, (r.bytes / 1e6).toFixed(2), Math.round(r.bytes_per_item),
  `${r.cold.manifest_ms} ms`, `${r.cold.first_shard_ms} ms`, `${r.cold.full_ms} ms`, r.cold.parse_verify_mb_s,
  `${r.warm.first_shard_ms} ms`, `${r.warm.full_ms} ms`, r.warm.parse_verify_mb_s,
]);
const widths = head.map((h, c) => Math.max(String(h).length, ...rows.map((row) => String(row[c]).length)));
for (const row of [head, ...rows]) console.log(row.map((x, c) => String(x).padEnd(widths[c])).join('  '));
console.log(`written to ${path.relative(ROOT, OUT)}`);

// The Recommender in headless Chromium (Debian's, driven by playwright-core): time from
// `Recommender.open()` to the first recommendations (before the encoder is loaded), to
// the catalog fully loaded, and to recommendations with a typed interest (the encoder
// fetched and loaded), cold (empty caches) and warm (a reload); the workers' memory after
// loading; the package's size raw and gzipped. A command, not a test:
//
//   node bench/recommender/browser.mjs [--catalogs ml-latest-small,ml-32m-movies] [--rounds 3] [--out FILE]
//
// Also the web component: page load to its first rendered cards beside a page that
// renders the same ten cards with the Recommender API, cold and warm, in alternating rounds.
//
// Catalogs come from .cache/catalogs (make catalog, make catalog-87k); a missing one is
// reported and skipped.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createHandler } from '../../www/serve.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const CATALOGS = opt('--catalogs', 'ml-latest-small,ml-32m-movies').split(',');
const OUT = path.resolve(ROOT, opt('--out', 'bench-results/recommender-browser.json'));
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--enable-unsafe-webgpu'];

/** Raw and gzipped bytes of the files `npm pack` would ship. */
function packageSize() {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'pkg/package.json'), 'utf8'));
  const rows = pkg.files.map((f) => {
    const bytes = fs.readFileSync(path.join(ROOT, 'pkg', f));
    return { file: f, raw: bytes.length, gzip: zlib.gzipSync(bytes, { level: 9 }).length };
  });
  const sum = (key, filter = () => true) => rows.filter(filter).reduce((a, r) => a + r[key], 0);
  const cpu = (r) => !r.file.includes('webgpu') && !r.file.includes('relaxed') && r.file !== 'README.md' && !r.file.endsWith('.d.ts');
  return {
    files: rows,
    total: { raw: sum('raw'), gzip: sum('gzip') },
    // What a page on the CPU path downloads: the JS and the simd128 module.
    cpuPath: { raw: sum('raw', cpu), gzip: sum('gzip', cpu) },
  };
}

const mounts = [{ url: '/pkg', dir: path.join(ROOT, 'pkg') }];
for (const name of CATALOGS) mounts.push({ url: `/catalogs/${name}`, dir: path.join(ROOT, '.cache/catalogs', name) });
// The root is bench/: its blank.html is a page that, unlike the demo, loads nothing itself.
const handle = createHandler({ root: path.join(ROOT, 'bench'), mounts, quiet: true });

/**
 * Two pages that show the same ten cards: one with the web component, one with the
 * Recommender API and a page's own rendering. Each writes the time from navigation to its
 * cards on screen into `data-cards-ms`.
 */
const PAGES = {
  element: (catalog) => `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module" src="/pkg/element.js"></script>
<script type="module">
document.addEventListener('localrec-render', () => requestAnimationFrame(() => (document.body.dataset.cardsMs = String(performance.now()))), { once: true });
document.addEventListener('localrec-error', (e) => (document.body.dataset.cardsMs = 'error: ' + e.detail.error.message));
</script></head><body>
<localrec-recommendations catalog="${catalog}" k="10" backend="cpu" storage="memory" view-ms="0"></localrec-recommendations>
</body></html>`,
  api: (catalog) => `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module">
import { Recommender } from '/pkg/index.js';
try {
  const rec = await Recommender.open('${catalog}', { backend: 'cpu', storage: 'memory' });
  const top = await rec.recommend({ k: 10 });
  const list = document.createElement('ul');
  list.append(...top.map((r) => Object.assign(document.createElement('li'), { textContent: r.item.title })));
  document.body.append(list);
  requestAnimationFrame(() => (document.body.dataset.cardsMs = String(performance.now())));
} catch (e) {
  document.body.dataset.cardsMs = 'error: ' + e.message;
}
</script></head><body></body></html>`,
};

const server = createServer((req, res) => {
  const m = /^\/page\/(element|api)\/(.+)$/.exec(new URL(req.url, 'http://x').pathname);
  if (!m) return handle(req, res);
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(PAGES[m[1]](`/catalogs/${m[2]}/`));
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });

async function run(page, url) {
  return page.evaluate(async (url) => {
    const { Recommender } = await import('/pkg/index.js');
    const t0 = performance.now();
    const rec = await Recommender.open(url, { backend: 'cpu', storage: 'memory' });
    const opened = performance.now() - t0;
    await rec.record({ itemId: '1', type: 'like' });
    await rec.record({ itemId: '2', type: 'view' });
    const first = await rec.recommend({ k: 10 });
    const firstMs = performance.now() - t0;
    const status = await rec.catalog.loaded;
    const loadedMs = performance.now() - t0;
    const t1 = performance.now();
    await rec.addInterest('a funny animated film for the whole family');
    const withText = await rec.recommend({ k: 10 });
    const encoderMs = performance.now() - t1;
    const memory = await rec.memory();
    await rec.close();
    return {
      openMs: opened, firstRecommendationsMs: firstMs, itemsAtFirst: first.length, catalogLoadedMs: loadedMs,
      items: status.itemsLoaded, encoderAndRecommendMs: encoderMs, withText: withText.length, memory,
    };
  }, url);
}

/** Milliseconds from navigation to the page's first cards, cold (a fresh profile) and warm (a reload). */
async function cardsMs(kind, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const read = async () => {
    await page.waitForFunction(() => document.body?.dataset.cardsMs, null, { timeout: 600_000 });
    const v = await page.evaluate(() => document.body.dataset.cardsMs);
    if (v.startsWith('error')) throw new Error(v);
    return Number(v);
  };
  try {
    await page.goto(`${origin}/page/${kind}/${name}`);
    const cold = await read();
    await page.reload();
    const warm = await read();
    return { cold, warm };
  } finally {
    await context.close();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The web component beside the API it is built on, page load to first cards, in
 * alternating rounds (this shared machine drifts, so only side-by-side figures compare).
 */
async function elementBesideApi(name, rounds) {
  const runs = { element: [], api: [] };
  for (let i = 0; i < rounds; i++) {
    for (const kind of i % 2 ? ['api', 'element'] : ['element', 'api']) runs[kind].push(await cardsMs(kind, name));
  }
  const summary = (kind) => ({ coldMs: median(runs[kind].map((r) => r.cold)), warmMs: median(runs[kind].map((r) => r.warm)), runs: runs[kind] });
  return { element: summary('element'), api: summary('api') };
}

const ROUNDS = Number(opt('--rounds', '3'));
const rows = [];
try {
  for (const name of CATALOGS) {
    if (!fs.existsSync(path.join(ROOT, '.cache/catalogs', name, 'manifest.json'))) {
      rows.push({ catalog: name, error: 'not built (make catalog / make catalog-87k)' });
      console.log(`${name}: not built, skipped`);
      continue;
    }
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/blank.html`);
    const url = `/catalogs/${name}/`;
    const cold = await run(page, url).catch((e) => ({ error: String(e.message ?? e).split('\n')[0] }));
    await page.reload();
    const warm = await run(page, url).catch((e) => ({ error: String(e.message ?? e).split('\n')[0] }));
    await context.close();
    const cards = await elementBesideApi(name, ROUNDS).catch((e) => ({ error: String(e.message ?? e).split('\n')[0] }));
    rows.push({ catalog: name, cold, warm, pageToCards: cards });
    const f = (x) => (typeof x === 'number' ? x.toFixed(0) : '-');
    if (cards.error) console.log(`${name} page to first cards: ${cards.error}`);
    else {
      for (const when of ['cold', 'warm']) {
        const [e, a] = [cards.element[`${when}Ms`], cards.api[`${when}Ms`]];
        console.log(`${name} page load to first cards, ${when} (median of ${ROUNDS}): <localrec-recommendations> ${f(e)} ms, Recommender API ${f(a)} ms (${e - a >= 0 ? '+' : ''}${f(e - a)} ms)`);
      }
    }
    for (const [label, r] of [['cold', cold], ['warm', warm]]) {
      console.log(r.error ? `${name} ${label}: ${r.error}` : `${name} ${label}: open ${f(r.openMs)} ms, first recommendations ${f(r.firstRecommendationsMs)} ms, `
        + `catalog loaded ${f(r.catalogLoadedMs)} ms (${r.items} items), encoder + recommend ${f(r.encoderAndRecommendMs)} ms, `
        + `catalog worker wasm ${f((r.memory?.catalog?.wasm?.cpu ?? 0) / 2 ** 20)} MiB, encoder worker wasm ${f((r.memory?.encoder?.wasm?.cpu ?? 0) / 2 ** 20)} MiB`);
    }
  }
} finally {
  await browser.close();
  server.close();
}
const size = packageSize();
console.log(`package: ${(size.total.raw / 2 ** 20).toFixed(1)} MiB raw, ${(size.total.gzip / 2 ** 20).toFixed(1)} MiB gzipped; `
  + `the CPU path (JS + simd128 wasm): ${(size.cpuPath.raw / 2 ** 20).toFixed(2)} MiB raw, ${(size.cpuPath.gzip / 2 ** 20).toFixed(2)} MiB gzipped`);
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, JSON.stringify({ chromium: true, backend: 'cpu', rows, package: size }, null, 2));
console.log(`wrote ${path.relative(ROOT, OUT)}`);

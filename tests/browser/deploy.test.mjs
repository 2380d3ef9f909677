// Deployment as sites do it, in real Chromium with the packed tarball: the page on one
// origin (127.0.0.1), the package and the catalog with its model on a CDN origin
// (127.0.0.2) that sends CORS headers; the page sends no COOP/COEP. A module script tag
// imports the package from the CDN with no bundler; a strict Content-Security-Policy
// works, and one that lacks what the package needs is named in a `localrec/csp` error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createHandler } from '../../www/serve.mjs';
import { root, launch, stopServer, FULL_CATALOG } from './helpers.mjs';

let work;
let browser;
let cdn;
let site;
/** Page name -> its Content-Security-Policy (null: none). */
const policies = new Map();

/** Listens on `host`; `requests` logs every path asked for. */
async function listen(host, handler) {
  const requests = [];
  const server = createServer((req, res) => {
    requests.push(new URL(req.url, 'http://x').pathname);
    handler(req, res);
  });
  await new Promise((resolve) => server.listen(0, host, resolve));
  return { server, origin: `http://${host}:${server.address().port}`, requests };
}

before(async () => {
  if (!existsSync(path.join(FULL_CATALOG, 'manifest.json'))) {
    throw new Error(`${FULL_CATALOG} is missing: run \`make catalog\` (make test does)`);
  }
  work = mkdtempSync(path.join(os.tmpdir(), 'localrec-deploy-'));
  // The CDN holds the package as npm packs it, under /localrec/, and the catalog.
  const packed = JSON.parse(execFileSync('npm', ['pack', path.join(root, 'pkg'), '--json', '--pack-destination', work]).toString());
  const cdnRoot = path.join(work, 'cdn');
  mkdirSync(cdnRoot);
  execFileSync('tar', ['xzf', path.join(work, packed[0].filename), '-C', cdnRoot]);
  renameSync(path.join(cdnRoot, 'package'), path.join(cdnRoot, 'localrec'));
  cdn = await listen('127.0.0.2', createHandler({ root: cdnRoot, mounts: [{ url: '/catalog', dir: FULL_CATALOG }], quiet: true, csp: null, cdn: true }));
  // The site: its pages (each with its own policy) and its own copy of the package.
  const pages = path.join(work, 'site');
  mkdirSync(pages);
  const plain = createHandler({ root: pages, mounts: [{ url: '/localrec', dir: path.join(cdnRoot, 'localrec') }], quiet: true, csp: null, isolate: false });
  const byPolicy = new Map();
  site = await listen('127.0.0.1', (req, res) => {
    const name = /^\/([a-z-]+)\.(?:html|js)$/.exec(new URL(req.url, 'http://x').pathname)?.[1];
    const csp = policies.get(name) ?? null;
    if (!byPolicy.has(csp)) byPolicy.set(csp, createHandler({ root: pages, mounts: [], quiet: true, csp, isolate: false }));
    (csp ? byPolicy.get(csp) : plain)(req, res);
  });
  site.dir = pages;
  browser = await launch();
});

after(async () => {
  await browser?.close();
  stopServer(cdn?.server);
  stopServer(site?.server);
});

/**
 * The app every page runs: opens the catalog, records two likes, recommends, optionally
 * types an interest (the encoder worker and the model), and writes the outcome into
 * `data-result` on <body>, with every Content-Security-Policy violation the page saw.
 */
function appCode(packageUrl, catalogUrl, { interest = false } = {}) {
  return `
import { Recommender } from ${JSON.stringify(packageUrl)};
const violations = [];
document.addEventListener('securitypolicyviolation', (e) => violations.push(e.effectiveDirective + ' ' + e.blockedURI));
try {
  const rec = await Recommender.open(${JSON.stringify(catalogUrl)}, { backend: 'cpu', storage: 'memory', wait: 'all' });
  await rec.record({ itemId: '1', type: 'like' });
  await rec.record({ itemId: '3114', type: 'like' });
  const top = await rec.recommend({ k: 5 });
  const out = { ok: true, ids: top.map((x) => x.itemId) };
  if (${interest}) {
    await rec.addInterest('a space opera with starships');
    out.withInterest = (await rec.recommend({ k: 5 })).map((x) => x.itemId);
  }
  await rec.close();
  document.body.dataset.result = JSON.stringify({ ...out, violations });
} catch (e) {
  document.body.dataset.result = JSON.stringify({ ok: false, code: e.code, message: String(e.message ?? e), violations });
}
`;
}

/**
 * Writes page `name` (its module in name.js, or inline without a policy) and opens it;
 * resolves with what it wrote into `data-result`.
 */
async function run(name, code, csp = null) {
  policies.set(name, csp);
  if (csp) {
    writeFileSync(path.join(site.dir, `${name}.js`), code);
    writeFileSync(path.join(site.dir, `${name}.html`), `<!doctype html><html><body><script type="module" src="/${name}.js"></script></body></html>`);
  } else {
    writeFileSync(path.join(site.dir, `${name}.html`), `<!doctype html><html><body><script type="module">${code}</script></body></html>`);
  }
  cdn.requests.length = 0;
  site.requests.length = 0;
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const headers = [];
  page.on('response', (r) => {
    if (r.url().startsWith(site.origin)) headers.push(r.headers());
  });
  await page.goto(`${site.origin}/${name}.html`);
  await page.waitForFunction(() => document.body.dataset.result, null, { timeout: 300_000 });
  const result = JSON.parse(await page.evaluate(() => document.body.dataset.result));
  await page.close();
  return { result, errors, headers };
}

test('a module script tag imports the packed package from a CDN origin, which also serves the catalog and model; no COOP/COEP, no bundler', { timeout: 600_000 }, async () => {
  const { result, errors, headers } = await run('from-cdn', appCode(`${cdn.origin}/localrec/index.js`, `${cdn.origin}/catalog/`, { interest: true }));
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(result.ids.length, 5);
  assert.ok(!result.ids.includes('1') && !result.ids.includes('3114'));
  assert.equal(result.withInterest.length, 5);
  assert.notDeepEqual(result.withInterest, result.ids, 'the typed interest moved the list: the encoder ran');
  assert.deepEqual(errors, []);
  assert.ok(headers.every((h) => !h['cross-origin-embedder-policy'] && !h['cross-origin-opener-policy']), 'the page is not cross-origin isolated');
  assert.deepEqual(site.requests.filter((p) => p !== '/favicon.ico'), ['/from-cdn.html'], 'the site served only its page');
  for (const file of ['/localrec/index.js', '/localrec/catalog-worker.js', '/localrec/encoder-worker.js', '/catalog/manifest.json', '/catalog/model/model.safetensors']) {
    assert.ok(cdn.requests.includes(file), `${file} came from the CDN`);
  }
  assert.ok(cdn.requests.some((p) => /^\/localrec\/wasm\/localrec_wasm(_relaxed)?_bg\.wasm$/.test(p)), 'the wasm came from the CDN');
  assert.ok(cdn.requests.some((p) => p.startsWith('/catalog/shards/')), 'the shards came from the CDN');
});

test('the package on the site, the catalog and its model on a CDN origin', { timeout: 600_000 }, async () => {
  const { result, errors } = await run('catalog-on-cdn', appCode('/localrec/index.js', `${cdn.origin}/catalog/`));
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(result.ids.length, 5);
  assert.deepEqual(errors, []);
  assert.ok(site.requests.includes('/localrec/catalog-worker.js') && !cdn.requests.some((p) => p.startsWith('/localrec/')), 'the package came from the site');
  assert.ok(cdn.requests.includes('/catalog/manifest.json'));
});

/** A strict policy allowing the CDN, less what `without` names (a directive's source). */
function strictPolicy(without = {}) {
  const cdnSource = cdn.origin;
  const directives = {
    'default-src': ["'none'"],
    'script-src': ["'self'", cdnSource, "'wasm-unsafe-eval'"],
    'worker-src': ["'self'", cdnSource, 'blob:'],
    'connect-src': ["'self'", cdnSource],
  };
  for (const [directive, source] of Object.entries(without)) {
    directives[directive] = directives[directive].filter((s) => s !== source);
  }
  return Object.entries(directives).map(([d, sources]) => `${d} ${sources.join(' ')}`).join('; ');
}

test('under a strict Content-Security-Policy (script-src, worker-src, connect-src: self, the CDN, wasm-unsafe-eval, blob:) the package from the CDN works with no violation', { timeout: 600_000 }, async () => {
  const { result, errors } = await run('strict', appCode(`${cdn.origin}/localrec/index.js`, `${cdn.origin}/catalog/`), strictPolicy());
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(result.ids.length, 5);
  assert.deepEqual(result.violations, []);
  assert.deepEqual(errors, []);
});

// What is left out, and what the message must name: the directive and what to add.
for (const [what, without, names] of [
  ["'wasm-unsafe-eval'", { 'script-src': "'wasm-unsafe-eval'" }, () => ['script-src', "'wasm-unsafe-eval'"]],
  ['blob: in worker-src', { 'worker-src': 'blob:' }, () => ['worker-src', 'blob:']],
  ['the CDN in connect-src', { 'connect-src': 'CDN' }, () => ['connect-src', cdn.origin]],
]) {
  test(`a policy without ${what} is refused with localrec/csp naming what to add`, { timeout: 300_000 }, async () => {
    const rule = Object.fromEntries(Object.entries(without).map(([d, s]) => [d, s === 'CDN' ? cdn.origin : s]));
    const name = `lacks-${Object.keys(rule)[0]}`;
    const started = Date.now();
    const { result } = await run(name, appCode(`${cdn.origin}/localrec/index.js`, `${cdn.origin}/catalog/`), strictPolicy(rule));
    assert.equal(result.ok, false, JSON.stringify(result));
    assert.equal(result.code, 'localrec/csp', JSON.stringify(result));
    for (const word of names()) assert.ok(result.message.includes(word), `the message names ${word}: ${result.message}`);
    assert.ok(Date.now() - started < 60_000, 'refused at once, not after retries');
  });
}

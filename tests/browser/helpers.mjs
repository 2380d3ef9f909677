// Shared set-up for browser tests: the project's own static server on a free loopback
// port and Debian's headless Chromium driven by playwright-core (never a downloaded browser).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { existsSync, readFileSync, writeFileSync, mkdirSync, rmSync, promises as fs } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHandler } from '../../www/serve.mjs';
import { MODEL_CACHE_NAME as CACHE_NAME } from '../../pkg/download.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WEB_MODEL = path.join(root, '.cache/web-model/all-MiniLM-L6-v2');
export const F32_MODEL = path.join(root, '.cache/models/all-MiniLM-L6-v2');
export { CACHE_NAME };

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--enable-unsafe-webgpu',
];

/**
 * Serves www/ with pkg/ and the web model mounted, as `make demo` does, plus the original
 * f32 folder at /model-f32, tests/browser/fixtures at /test-fixtures and any extra `mounts`. `requests` logs every request
 * ({method, path, status}) so tests can tell what reached the network; `intercept(req,
 * res)` may answer a request itself (returning true) to stage failures.
 */
export async function serveDemo({ mounts = [], intercept } = {}) {
  const handle = createHandler({
    root: path.join(root, 'www'),
    mounts: [
      { url: '/pkg', dir: path.join(root, 'pkg') },
      { url: '/model', dir: WEB_MODEL },
      { url: '/model-f32', dir: F32_MODEL },
      { url: '/test-fixtures', dir: path.join(root, 'tests/browser/fixtures') },
      ...mounts,
    ],
  });
  const requests = [];
  const server = createServer((req, res) => {
    const entry = { method: req.method, path: new URL(req.url, 'http://localhost').pathname, status: 0 };
    requests.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    if (intercept?.(req, res)) return;
    handle(req, res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const url = `http://127.0.0.1:${port}/`;
  // `blank` is a page of the same origin that, unlike the demo, loads no model itself.
  // `handle` answers a request as the server would (for an `intercept` that lets one through late).
  return { server, url, blank: `${url}test-fixtures/blank.html`, requests, handle };
}

/**
 * Registers the file's before/after hooks: the demo server and one Chromium, shared by
 * its tests. The returned object gets `served` (serveDemo's result) and `browser`.
 */
export function sharedBrowser() {
  const session = { served: null, browser: null };
  before(async () => {
    session.served = await serveDemo();
    session.browser = await launch();
  });
  after(async () => {
    await session.browser?.close();
    stopServer(session.served?.server);
  });
  return session;
}

/**
 * Registers the file's before/after hooks for tests of the ml-latest-small catalog (make
 * catalog) mounted at /full: the server and one Chromium, shared by its tests.
 */
export function fullCatalogBrowser() {
  const session = { served: null, browser: null };
  before(async () => {
    if (!existsSync(path.join(FULL_CATALOG, 'manifest.json'))) {
      throw new Error(`${FULL_CATALOG} is missing: run \`make catalog\` (make test does)`);
    }
    session.served = await serveDemo({ mounts: [{ url: '/full', dir: FULL_CATALOG }] });
    session.browser = await launch();
  });
  after(async () => {
    await session.browser?.close();
    stopServer(session.served?.server);
  });
  return session;
}

export async function launch(extraArgs = [], baseArgs = CHROMIUM_ARGS) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [...baseArgs, ...extraArgs],
  });
}

/** Stops a server from serveDemo without waiting for the browser's idle keep-alive sockets. */
export function stopServer(server) {
  server?.closeAllConnections?.();
  server?.close();
}

/** Page init script: `window.settle(fn, ms)` (see `openPage`). */
export const SETTLE_SCRIPT = () => {
  window.settle = (fn, ms = 120_000) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ hung: true }), ms);
      const done = (outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      };
      let promise;
      try {
        promise = Promise.resolve(fn());
      } catch (e) {
        promise = Promise.reject(e);
      }
      promise.then(
        (value) => done({ ok: true, value }),
        (e) =>
          done({
            ok: false,
            code: e?.code,
            message: String(e?.message ?? e),
            name: e?.name,
            isError: e instanceof Error,
          }),
      );
    });
};

/**
 * A new page (its own browser context, so its own Cache Storage) at `url`, with
 * `window.settle(fn, ms)`: runs `fn` and resolves to {ok, value} or {ok: false, code,
 * message, name, isError}, or to {hung: true} when the promise has not settled in `ms`,
 * so a hung promise fails a test with a clear reason instead of a timeout. `errors`
 * collects uncaught page errors and Rust panics (the wasm panic hook logs them to the
 * console, the worker's included).
 */
export async function openPage(browser, url) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.text().includes('localrec: internal error')) errors.push(m.text());
  });
  await page.addInitScript(SETTLE_SCRIPT);
  await page.goto(url);
  return { page, errors };
}

/**
 * A temporary model folder: every file of `from` linked in, except those in `files`
 * (name -> Buffer or string content, or null to leave the file out). Returns its path.
 */
export async function modelCopy(from, files = {}) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'localrec-model-'));
  for (const name of await fs.readdir(from)) {
    if (name in files || (await fs.stat(path.join(from, name))).isDirectory()) continue;
    await fs.symlink(path.join(from, name), path.join(dir, name));
  }
  for (const [name, content] of Object.entries(files)) {
    if (content !== null) await fs.writeFile(path.join(dir, name), content);
  }
  return dir;
}

/** The model manifest of the web copy: {path: {path, bytes, sha256}}. */
export function webManifest() {
  const manifest = JSON.parse(readFileSync(path.join(WEB_MODEL, 'manifest.json'), 'utf8'));
  return Object.fromEntries(manifest.files.map((f) => [f.path, f]));
}

export function golden() {
  return readFileSync(path.join(root, 'tests/fixtures/minilm_golden.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

export function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

/** The native CLI (`make cli`), for tests that build catalogs. */
export const LOCALREC_BIN =
  process.env.LOCALREC_BIN || path.join(process.env.CARGO_TARGET_DIR || path.join(root, 'target'), 'release/localrec');
/** The ml-latest-small catalog `make catalog` builds. */
export const FULL_CATALOG = path.join(root, '.cache/catalogs/ml-latest-small');

/**
 * A catalog of `movies` movies of ml-latest-small (after the first `skip`), in shards of
 * about `shardBytes`, built with the real CLI and model into a scratch folder (rebuilt on
 * every run: the build is deterministic and takes seconds; with `republish`, over the
 * folder's previous build); `args` are more `build` flags. Returns its folder.
 */
export function buildSmallCatalog(name, { movies, shardBytes, skip = 0, republish = false, args = [] }) {
  const dir = path.join(root, 'target/tmp/browser-catalogs', name);
  // A republish builds over the published folder, as a publisher would.
  if (!republish) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const lines = readFileSync(path.join(root, 'data/ml-latest-small/movies.csv'), 'utf8').split('\n');
  const items = path.join(dir, 'movies.csv');
  writeFileSync(items, [lines[0], ...lines.slice(1 + skip, 1 + skip + movies)].join('\n') + '\n');
  const out = path.join(dir, 'catalog');
  execFileSync(
    LOCALREC_BIN,
    ['build', '--items', items, '--model', F32_MODEL, '--out', out, '--shard-bytes', String(shardBytes), '--name', name, ...args],
    { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 },
  );
  return out;
}

/**
 * The browser recommendation test of a built ml-latest-small catalog (the single-machine
 * one of `make catalog`, and the Spark job's): `recommend()` in Chromium, on the CPU and on
 * WebGPU, ranks exactly as the native scorer (`inspect --recommend`), with reasons,
 * scenarios, predicted ratings and no film acted on. `url` is where the page serves `dir`.
 */
export async function assertRecommendsLikeNative(page, url, dir) {
  const request = {
    events: [
      { itemId: '1', type: 'like' }, // Toy Story
      { itemId: '2355', type: 'like' }, // A Bug's Life
      { itemId: '3114', type: 'like' }, // Toy Story 2
      { itemId: '296', type: 'dislike' }, // Pulp Fiction
      { itemId: 'no-such-film', type: 'like' },
    ],
    k: 10,
  };
  // The catalog's scenarios and rating head: events in scenarios, a request in one, ratings.
  const inScenario = {
    events: [
      { itemId: '1', type: 'like', scenario: 'weekend' },
      { itemId: '2355', type: 'rate', value: 4.5, scenario: 'weekday' },
      { itemId: '296', type: 'rate', value: 1, scenario: 'weekend' },
    ],
    scenario: 'weekend',
    k: 10,
  };
  const nativeOf = (req) => JSON.parse(execFileSync(LOCALREC_BIN, ['inspect', dir, '--recommend', '-'], {
    input: JSON.stringify(req), maxBuffer: 1 << 26,
  }).toString());
  const native = nativeOf(request);
  const nativeScenario = nativeOf(inScenario);
  const r = await page.evaluate(async ([request, inScenario, url]) => {
    const { Catalog } = await import('/pkg/index.js');
    const catalog = await Catalog.open(url, { wait: 'all' });
    const recs = await catalog.recommend(request);
    const scenario = await catalog.recommend(inScenario);
    const scenarios = catalog.manifest.scenarios;
    const diverse = await catalog.recommend({ ...request, diversity: 0.7 });
    let badType = null;
    try {
      await catalog.recommend({ events: [{ itemId: '1', type: 'stare' }] });
    } catch (e) {
      badType = { code: e.code, message: e.message };
    }
    const cold = await catalog.recommend({ k: 5 });
    await catalog.close();
    // The same request scored on WebGPU (SwiftShader here) in the WebGPU build.
    const gpuCatalog = await Catalog.open(url, { wait: 'all', backend: 'webgpu' });
    const gpu = await gpuCatalog.recommend(request);
    const scoring = gpuCatalog.scoring;
    await gpuCatalog.close();
    return { recs, diverse, badType, cold, gpu, scoring, scenario, scenarios };
  }, [request, inScenario, url]);
  assert.deepEqual(r.scenarios, ['weekday', 'weekend'], 'make catalog derives weekday/weekend scenarios');
  assert.deepEqual(r.scenario.warnings, []);
  assert.deepEqual(r.scenario.results.map((x) => x.itemId), nativeScenario.results.map((x) => x.itemId));
  for (let i = 0; i < nativeScenario.results.length; i++) {
    const [got, want] = [r.scenario.results[i].predictedRating, nativeScenario.results[i].predictedRating];
    assert.ok(typeof got === 'number' && got >= 0.5 && got <= 5 && Math.abs(got - want) < 1e-3, `predictedRating ${i}: ${got} vs ${want}`);
  }
  assert.deepEqual(r.recs.results.map((x) => x.itemId), native.results.map((x) => x.itemId));
  for (let i = 0; i < native.results.length; i++) {
    assert.ok(Math.abs(r.recs.results[i].score - native.results[i].score) < 1e-3, `result ${i}`);
    assert.deepEqual(r.recs.results[i].because?.itemId, native.results[i].because?.itemId);
  }
  const ids = r.recs.results.map((x) => x.itemId);
  for (const acted of ['1', '2355', '3114', '296']) assert.ok(!ids.includes(acted), `${acted} was acted on`);
  assert.ok(r.recs.results.every((x) => ['1', '2355', '3114'].includes(x.because?.itemId)), 'every reason is a liked film');
  assert.equal(r.recs.partial, false);
  assert.equal(r.recs.warnings.length, 1);
  assert.match(r.recs.warnings[0], /no-such-film/);
  assert.notDeepEqual(r.diverse.results.map((x) => x.itemId), ids, 'diversity changes the list');
  assert.equal(r.badType?.code, 'localrec/input');
  assert.match(r.badType.message, /unknown event type "stare"/);
  assert.equal(r.cold.results.length, 5, 'a profile with nothing in it still gets popular items');
  assert.equal(r.scoring, 'webgpu', 'backend webgpu scores on WebGPU');
  assert.deepEqual(r.gpu.results.map((x) => x.itemId), ids, 'WebGPU ranks as the CPU does');
  for (let i = 0; i < ids.length; i++) assert.ok(Math.abs(r.gpu.results[i].score - r.recs.results[i].score) < 1e-3, `webgpu result ${i}`);
}

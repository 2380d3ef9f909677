// Shared set-up for browser tests: the project's own static server on a free loopback
// port and Debian's headless Chromium driven by playwright-core (never a downloaded browser).
import { before, after } from 'node:test';
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
 * folder's previous build). Returns its folder.
 */
export function buildSmallCatalog(name, { movies, shardBytes, skip = 0, republish = false }) {
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
    ['build', '--items', items, '--model', F32_MODEL, '--out', out, '--shard-bytes', String(shardBytes), '--name', name],
    { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 },
  );
  return out;
}

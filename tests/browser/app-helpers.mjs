// An app as a user builds it: the packed tarball (`npm pack pkg/`) installed into a fresh
// folder, a page that opens a Recommender on the ml-latest-small catalog, and an app's own
// static server (not the demo's). Shared by package.test.mjs and bundlers.test.mjs.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createHandler } from '../../www/serve.mjs';
import { root, launch, stopServer, FULL_CATALOG } from './helpers.mjs';

/** The app: two likes, then five recommendations written into `data-result` on <body>. */
export const APP_CODE = `
import { Recommender } from 'localrec';
try {
  const rec = await Recommender.open('/catalog/', { backend: 'cpu', storage: 'memory', wait: 'all' });
  await rec.record({ itemId: '1', type: 'like' });
  await rec.record({ itemId: '3114', type: 'like' });
  const top = await rec.recommend({ k: 5 });
  document.body.dataset.result = JSON.stringify({ ok: true, ids: top.map((x) => x.itemId), titles: top.map((x) => x.item.title) });
} catch (e) {
  document.body.dataset.result = JSON.stringify({ ok: false, code: e.code, message: String(e.message ?? e) });
}
`;

/** The page that loads the app from `src`. */
export const appPage = (src) => `<!doctype html><html><body><script type="module" src="${src}"></script></body></html>`;

function needCatalog() {
  if (!existsSync(path.join(FULL_CATALOG, 'manifest.json'))) {
    throw new Error(`${FULL_CATALOG} is missing: run \`make catalog\` (make test does)`);
  }
}

/**
 * Packs pkg/ into `work` and installs the tarball into a fresh app folder there (with
 * main.js holding APP_CODE); returns the app folder and the tarball's file list.
 */
export function installedApp(work) {
  const packed = JSON.parse(execFileSync('npm', ['pack', path.join(root, 'pkg'), '--json', '--pack-destination', work]).toString());
  const tarball = path.join(work, packed[0].filename);
  const app = path.join(work, 'app');
  mkdirSync(app, { recursive: true });
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'an-app', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: app });
  writeFileSync(path.join(app, 'main.js'), APP_CODE);
  return { app, files: packed[0].files.map((f) => f.path) };
}

/**
 * Registers the file's before/after hooks: the tarball installed into a fresh app in a
 * temporary folder (removed after) and one Chromium, then `ready(session)` if given (in
 * the same hook: node 20 starts a file's top-level before hooks together). The returned
 * object gets `app`, `files` (installedApp's result) and `browser`.
 */
export function installedAppSession(ready) {
  const session = { app: null, files: null, browser: null, work: null };
  before(async () => {
    needCatalog();
    session.work = mkdtempSync(path.join(os.tmpdir(), 'localrec-app-'));
    Object.assign(session, installedApp(session.work));
    session.browser = await launch();
    await ready?.(session);
  });
  after(async () => {
    await session.browser?.close();
    if (session.work) rmSync(session.work, { recursive: true, force: true });
  });
  return session;
}

/**
 * A request handler serving `dir` with the catalog at /catalog/, as an app's server would:
 * without the demo's Content-Security-Policy, so a page may be inline. `options`: more of
 * createHandler's (`cdn`, `isolate`).
 */
export function appHandler(dir, options = {}) {
  return createHandler({ root: dir, mounts: [{ url: '/catalog', dir: FULL_CATALOG }], quiet: true, csp: null, ...options });
}

/**
 * Serves `dir` with the catalog at /catalog/; `requests` logs every request's path.
 * `options` as appHandler's: `{cdn: true}` serves as a CDN does (CORS), `{isolate: false}`
 * sends no COOP/COEP.
 */
export async function serveApp(dir, options = {}) {
  const handle = appHandler(dir, options);
  const requests = [];
  const server = createServer((req, res) => {
    requests.push(new URL(req.url, 'http://localhost').pathname);
    handle(req, res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}/`, requests };
}

/**
 * Opens `url`, waits for the page to write its outcome into `data-result` on <body>;
 * returns it with the page's uncaught errors and the URLs of the workers it started.
 */
export async function appOutcome(browser, url) {
  const page = await browser.newPage();
  const errors = [];
  const workers = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('worker', (w) => workers.push(w.url()));
  try {
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.result, null, { timeout: 120_000 });
    const result = JSON.parse(await page.evaluate(() => document.body.dataset.result));
    return { result, errors, workers };
  } finally {
    await page.close();
  }
}

/**
 * Runs the app with no bundler: a plain HTML page whose module script imports the
 * installed package's own index.js. Returns appOutcome's answer.
 */
export async function unbundledOutcome(browser, app) {
  const code = APP_CODE.replace("from 'localrec'", "from '/node_modules/localrec/index.js'");
  writeFileSync(path.join(app, 'plain.html'), `<!doctype html><html><body><script type="module">${code}</script></body></html>`);
  const served = await serveApp(app);
  try {
    return await appOutcome(browser, `${served.url}plain.html`);
  } finally {
    stopServer(served.server);
  }
}

/** The app recommended five movies, none of the two it liked, with titles, and nothing threw. */
export function assertRecommends({ result, errors }) {
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(result.ids.length, 5);
  assert.ok(!result.ids.includes('1') && !result.ids.includes('3114'), 'liked movies are not recommended');
  assert.ok(result.titles.every((t) => typeof t === 'string' && t.length > 0), 'each recommendation has its title');
  assert.deepEqual(errors, []);
}

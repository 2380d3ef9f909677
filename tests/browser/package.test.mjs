// The npm package as a user gets it: `npm pack pkg/`, the tarball installed into a
// fresh app, bundled by Vite (from npm), served, and run in headless Chromium; and the
// same tarball used from a plain HTML page with no bundler. Neither reads the source tree.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createHandler } from '../../www/serve.mjs';
import { root, launch, stopServer, FULL_CATALOG } from './helpers.mjs';

let work;
let browser;

before(async () => {
  if (!existsSync(path.join(FULL_CATALOG, 'manifest.json'))) {
    throw new Error(`${FULL_CATALOG} is missing: run \`make catalog\` (make test does)`);
  }
  work = mkdtempSync(path.join(os.tmpdir(), 'localrec-package-'));
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

/** Packs pkg/ and installs the tarball into a fresh app folder; returns the app folder. */
function installedApp() {
  const packed = JSON.parse(execFileSync('npm', ['pack', path.join(root, 'pkg'), '--json', '--pack-destination', work]).toString());
  const tarball = path.join(work, packed[0].filename);
  const app = path.join(work, 'app');
  mkdirSync(app, { recursive: true });
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'an-app', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: app });
  return { app, files: packed[0].files.map((f) => f.path) };
}

async function serve(dir) {
  // An app's own server, not the demo's: without the demo's policy, so its page may be inline.
  const handle = createHandler({ root: dir, mounts: [{ url: '/catalog', dir: FULL_CATALOG }], quiet: true, csp: null });
  const requests = [];
  const server = createServer((req, res) => {
    requests.push(req.url);
    handle(req, res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}/`, requests };
}

/** Opens `url`, waits for the page to write its outcome into `data-result` on <body>. */
async function outcome(url) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.result, null, { timeout: 120_000 });
  const result = JSON.parse(await page.evaluate(() => document.body.dataset.result));
  await page.close();
  return { result, errors };
}

const APP_CODE = `
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

test('the packed tarball, bundled by Vite into an app, recommends in Chromium', async () => {
  const { app, files } = installedApp();
  for (const f of ['index.js', 'index.d.ts', 'worker.js', 'recommender.js', 'profile.js', 'wasm/localrec_wasm_bg.wasm', 'README.md']) {
    assert.ok(files.includes(f), `the tarball holds ${f}`);
  }
  writeFileSync(path.join(app, 'index.html'), '<!doctype html><html><body><script type="module" src="/main.js"></script></body></html>');
  writeFileSync(path.join(app, 'main.js'), APP_CODE);
  // Module workers that split code need the 'es' worker format (README).
  writeFileSync(path.join(app, 'vite.config.js'), "export default { worker: { format: 'es' }, build: { target: 'es2022' }, logLevel: 'warn' };");
  execFileSync(path.join(root, 'node_modules/.bin/vite'), ['build'], { cwd: app, stdio: 'pipe' });
  const dist = path.join(app, 'dist');
  assert.ok(readdirSync(path.join(dist, 'assets')).some((f) => f.endsWith('.wasm')), 'Vite emitted the wasm');
  const served = await serve(dist);
  try {
    const { result, errors } = await outcome(served.url);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.ids.length, 5);
    assert.ok(!result.ids.includes('1') && !result.ids.includes('3114'));
    assert.deepEqual(errors, []);
    assert.ok(!served.requests.some((u) => u.includes('/node_modules/')), 'the build serves its own bundle');
  } finally {
    stopServer(served.server);
  }
});

test('the packed tarball works from a plain HTML page with no bundler', async () => {
  const { app } = installedApp();
  const page = APP_CODE.replace("from 'localrec'", "from '/node_modules/localrec/index.js'");
  writeFileSync(path.join(app, 'plain.html'), `<!doctype html><html><body><script type="module">${page}</script></body></html>`);
  const served = await serve(app);
  try {
    const { result, errors } = await outcome(`${served.url}plain.html`);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.ids.length, 5);
    assert.deepEqual(errors, []);
  } finally {
    stopServer(served.server);
  }
});

// Every common bundler builds the same small app from the packed tarball, with only the
// setting pkg/README.md ("Bundlers") gives for it, and the built app recommends in
// Chromium: Vite (build and dev server), webpack 5, Rollup, esbuild. Each must start the
// package's worker from its own output, fetch the wasm from it, and recommend exactly what
// the unbundled package recommends.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build as viteBuild, createServer as viteServer } from 'vite';
import webpack from 'webpack';
import { rollup } from 'rollup';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import { importMetaAssets } from '@web/rollup-plugin-import-meta-assets';
import { root, stopServer } from './helpers.mjs';
import { appHandler, appOutcome, appPage, assertRecommends, installedAppSession, serveApp, unbundledOutcome } from './app-helpers.mjs';

let app;
let browser;
/** What the unbundled package recommends: every bundled app must give the same. */
let reference;

installedAppSession(async (session) => {
  ({ app, browser } = session);
  writeFileSync(path.join(app, 'index.html'), appPage('/main.js'));
  const out = await unbundledOutcome(browser, app);
  assertRecommends(out);
  reference = out.result;
});

/**
 * The app at `url` recommends what the unbundled package does, from a worker and a wasm
 * module the app's server answered from the bundler's output (`isBuilt(path)`).
 */
async function assertBundledAppRecommends(url, requests, isBuilt) {
  const out = await appOutcome(browser, url);
  assertRecommends(out);
  assert.deepEqual(out.result.ids, reference.ids, 'the bundled app recommends what the unbundled package does');
  const origin = new URL(url).origin;
  assert.ok(out.workers.length > 0, 'the app started a worker');
  for (const w of out.workers) {
    const u = new URL(w);
    assert.equal(u.origin, origin, `worker ${w} came from the app's server, not a blob`);
    assert.ok(isBuilt(u.pathname), `worker ${w} is the bundler's output`);
  }
  const wasm = requests.filter((p) => p.endsWith('.wasm'));
  assert.ok(wasm.length > 0 && wasm.every(isBuilt), `the wasm came from the bundler's output: ${wasm}`);
  return out;
}

/**
 * The page's own origin (no COOP/COEP) serves only `indexHtml` and the catalog; the built
 * app's files come from a second origin (`cdn`, a serveApp of the build folder with CORS),
 * as where a site deploys its assets to a CDN. The workers then start through a
 * same-origin blob.
 */
async function assertCdnAppRecommends(cdn, dist, indexHtml) {
  const pageDir = `${dist}-page`;
  mkdirSync(pageDir);
  writeFileSync(path.join(pageDir, 'index.html'), indexHtml);
  const page = await serveApp(pageDir, { isolate: false });
  try {
    const out = await appOutcome(browser, page.url);
    assertRecommends(out);
    assert.deepEqual(out.result.ids, reference.ids, 'the bundled app recommends what the unbundled package does');
    assert.ok(out.workers.length > 0, 'the app started a worker');
    const blob = `blob:${new URL(page.url).origin}/`;
    assert.ok(out.workers.every((w) => w.startsWith(blob)), `the workers started through a same-origin blob: ${out.workers}`);
    assert.ok(cdn.requests.some((p) => p.endsWith('.wasm')), 'the wasm came from the CDN');
    assert.ok(cdn.requests.every((p) => existsSync(path.join(dist, p))), `the CDN served the build only: ${cdn.requests}`);
    assert.deepEqual(page.requests.filter((p) => !p.startsWith('/catalog/') && p !== '/favicon.ico'), ['/'], 'the page origin served the page and the catalog only');
  } finally {
    stopServer(page.server);
  }
}

/** Serves a built folder (index.html written beside the bundle unless the bundler wrote one) and checks the app. */
async function assertBuiltAppRecommends(dist) {
  if (!existsSync(path.join(dist, 'index.html'))) writeFileSync(path.join(dist, 'index.html'), appPage('./main.js'));
  const served = await serveApp(dist);
  try {
    const built = (p) => !p.includes('/node_modules/') && existsSync(path.join(dist, p));
    await assertBundledAppRecommends(served.url, served.requests, built);
    assert.ok(!served.requests.some((p) => p.includes('/node_modules/')), 'the build serves its own bundle');
  } finally {
    stopServer(served.server);
  }
}

test('Vite build: no setting', async () => {
  const dist = path.join(app, 'dist-vite');
  await viteBuild({ root: app, configFile: false, logLevel: 'warn', build: { outDir: dist } });
  await assertBuiltAppRecommends(dist);
});

test('Vite build, its assets on a CDN origin: base', async () => {
  const dist = path.join(app, 'dist-vite-cdn');
  const cdn = await serveApp(dist, { cdn: true });
  try {
    await viteBuild({ root: app, configFile: false, logLevel: 'warn', base: cdn.url, build: { outDir: dist } });
    await assertCdnAppRecommends(cdn, dist, readFileSync(path.join(dist, 'index.html')));
  } finally {
    stopServer(cdn.server);
  }
});

test('Vite dev server: no setting', async () => {
  const handle = appHandler(app);
  const requests = [];
  const server = await viteServer({
    root: app,
    configFile: false,
    logLevel: 'warn',
    server: { host: '127.0.0.1', port: 0, strictPort: true },
    // The test's plumbing, not a setting the package needs: log requests, serve the catalog.
    plugins: [{
      name: 'catalog',
      configureServer(vite) {
        vite.middlewares.use((req, res, next) => {
          requests.push(new URL(req.url, 'http://localhost').pathname);
          if (req.url.startsWith('/catalog/')) handle(req, res);
          else next();
        });
      },
    }],
  });
  try {
    await server.listen();
    // Served by Vite's own transform pipeline (its pre-bundled dependency for the main thread).
    const out = await assertBundledAppRecommends(server.resolvedUrls.local[0], requests, (p) => p.startsWith('/node_modules/localrec/'));
    assert.ok(out.workers.every((w) => w.includes('worker_file')), `Vite transformed the workers: ${out.workers}`);
    assert.ok(requests.some((p) => p.startsWith('/node_modules/.vite/deps/')), 'Vite pre-bundled the package');
  } finally {
    await server.close();
  }
});

/** A production webpack build of the app with `config` (its output). */
async function webpackBuild(config) {
  const stats = await new Promise((resolve, reject) => {
    const compiler = webpack({ mode: 'production', context: app, entry: './main.js', performance: { hints: false }, ...config });
    compiler.run((err, result) => compiler.close(() => (err ? reject(err) : resolve(result))));
  });
  assert.ok(!stats.hasErrors(), stats.toString('errors-only'));
}

test('webpack 5: no setting', async () => {
  const dist = path.join(app, 'dist-webpack');
  await webpackBuild({ output: { path: dist } });
  await assertBuiltAppRecommends(dist);
});

test('webpack 5, its assets on a CDN origin: output.publicPath', async () => {
  const dist = path.join(app, 'dist-webpack-cdn');
  const cdn = await serveApp(dist, { cdn: true });
  try {
    await webpackBuild({ output: { path: dist, publicPath: cdn.url } });
    await assertCdnAppRecommends(cdn, dist, appPage(`${cdn.url}main.js`));
  } finally {
    stopServer(cdn.server);
  }
});

test('Rollup: node-resolve, the workers as entries, import-meta-assets for the wasm', async () => {
  const dist = path.join(app, 'dist-rollup');
  const bundle = await rollup({
    input: { main: path.join(app, 'main.js'), 'catalog-worker': 'localrec/catalog-worker.js', 'encoder-worker': 'localrec/encoder-worker.js' },
    plugins: [
      nodeResolve({ rootDir: app }),
      // It would copy the worker scripts unbundled; they are entries above instead.
      importMetaAssets({ transform: (bytes, file) => (file.endsWith('.js') ? null : bytes) }),
    ],
  });
  await bundle.write({ dir: dist, format: 'es', entryFileNames: '[name].js' });
  await bundle.close();
  await assertBuiltAppRecommends(dist);
});

test('esbuild: the workers as entries, the wasm folder copied (without them, a clear error)', async () => {
  const esbuild = (outdir, ...entries) =>
    execFileSync(path.join(root, 'node_modules/.bin/esbuild'), ['main.js', ...entries, '--bundle', '--format=esm', `--outdir=${outdir}`, '--log-level=warning'], { cwd: app });
  // esbuild leaves new URL(..., import.meta.url) alone: the package's worker is not in the output.
  const bare = path.join(app, 'dist-esbuild-bare');
  esbuild(bare);
  writeFileSync(path.join(bare, 'index.html'), appPage('./main.js'));
  const served = await serveApp(bare);
  try {
    const { result } = await appOutcome(browser, served.url);
    assert.equal(result.code, 'localrec/worker', JSON.stringify(result));
    assert.match(result.message, /Bundlers/, 'the error points at the README section with the setting');
  } finally {
    stopServer(served.server);
  }
  // The setting (README): the two workers as entries named as the package names them, and its wasm beside them.
  const dist = path.join(app, 'dist-esbuild');
  esbuild(dist, 'localrec/catalog-worker.js', 'localrec/encoder-worker.js', '--entry-names=[name]');
  mkdirSync(path.join(dist, 'wasm'));
  for (const f of readdirSync(path.join(app, 'node_modules/localrec/wasm')).filter((x) => x.endsWith('.wasm'))) {
    copyFileSync(path.join(app, 'node_modules/localrec/wasm', f), path.join(dist, 'wasm', f));
  }
  await assertBuiltAppRecommends(dist);
});

// A catalog whose blend carries the autoencoder term (its encoder in the manifest's params,
// each item's first-layer row and decoder column in the records), built by the real CLI
// from ml-latest-small's log with the term's weight fixed (`--vae-weight`, so the test does
// not depend on what 61 held-out users choose), in real headless Chromium: recommend() on
// the CPU and on WebGPU ranks exactly as the native scorer (`inspect --recommend`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { serveDemo, launch, openPage, stopServer, buildSmallCatalog, assertRecommendsLikeNative, root } from './helpers.mjs';

test('a catalog with the autoencoder term ranks in Chromium exactly as the native scorer does (CPU and WebGPU)', async () => {
  const dir = buildSmallCatalog('autoencoder', {
    movies: 2400,
    shardBytes: 4_000_000,
    args: [
      '--interactions', path.join(root, 'data/ml-latest-small/ratings.csv.gz'),
      '--scenario', 'weekday-weekend',
      '--tune-budget', '20',
      '--vae-weight', '4',
    ],
  });
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const params = manifest.collaborative.params;
  assert.ok(params.vae?.hidden > 0 && params.vae.latent > 0, 'the catalog ships an autoencoder');
  assert.equal(params.blend.vae, 4, 'with the weight given');
  assert.ok(manifest.collaborative.tuning.chosen.vae.epochs >= 1, 'its epoch was chosen on held-out users');
  const served = await serveDemo({ mounts: [{ url: '/vae', dir }] });
  const browser = await launch();
  try {
    const { page, errors } = await openPage(browser, served.blank);
    await assertRecommendsLikeNative(page, '/vae/', dir);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await browser.close();
    stopServer(served.server);
  }
});

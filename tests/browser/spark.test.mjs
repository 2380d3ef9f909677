// The catalog of the reference Spark job (examples/spark, `make spark-catalog`: MLlib ALS in
// local mode, texts encoded on the executors, one `localrec build --spark-als --embeddings`)
// in real headless Chromium: it passes the same recommendation test as the single-machine
// build, and ranking by the collaborative term alone reproduces Spark's own top items for a
// user Spark trained on (the device's fold-in gives back that user's factors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { serveDemo, launch, openPage, stopServer, assertRecommendsLikeNative, root, LOCALREC_BIN } from './helpers.mjs';

const SPARK_CATALOG = path.join(root, '.cache/catalogs/ml-latest-small-spark');
const CHECK = path.join(root, '.cache/spark-work/spark-check.json');

test('the Spark-built catalog verifies, recommends like the native scorer, and ranks by its ALS as Spark does', async () => {
  for (const f of [path.join(SPARK_CATALOG, 'manifest.json'), CHECK]) {
    if (!existsSync(f)) assert.fail(`${f} is missing: run \`make spark-catalog\` (make test does)`);
  }
  execFileSync(LOCALREC_BIN, ['inspect', SPARK_CATALOG], { stdio: 'ignore' });
  const served = await serveDemo({ mounts: [{ url: '/spark', dir: SPARK_CATALOG }] });
  const browser = await launch();
  try {
    const { page, errors } = await openPage(browser, served.blank);
    await assertRecommendsLikeNative(page, '/spark/', SPARK_CATALOG);

    const check = JSON.parse(readFileSync(CHECK, 'utf8'));
    const request = { events: check.liked.map((itemId) => ({ itemId, type: 'like' })), k: 30, rankBy: 'collaborative' };
    const recs = await page.evaluate(async (request) => {
      const { Catalog } = await import('/pkg/index.js');
      const catalog = await Catalog.open('/spark/', { wait: 'all' });
      const r = await catalog.recommend(request);
      await catalog.close();
      return r;
    }, request);
    const native = JSON.parse(execFileSync(LOCALREC_BIN, ['inspect', SPARK_CATALOG, '--recommend', '-'], {
      input: JSON.stringify(request), maxBuffer: 1 << 26,
    }).toString());
    const ids = recs.results.map((x) => x.itemId);
    assert.deepEqual(ids, native.results.map((x) => x.itemId), 'the browser ranks as inspect --recommend');
    // Items Spark never saw get factors from their text and may take places in between;
    // Spark's own top 10 must all be there, in Spark's order.
    const sparkTop = check.spark_top.slice(0, 10);
    const inOurs = ids.filter((id) => check.spark_top.includes(id)).slice(0, 10);
    assert.deepEqual(inOurs, sparkTop, `ours ${JSON.stringify(ids)} vs Spark's ${JSON.stringify(check.spark_top)}`);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await browser.close();
    stopServer(served.server);
  }
});

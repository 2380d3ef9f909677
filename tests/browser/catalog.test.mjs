// The catalog loader (pkg/catalog-loader.js + the wasm store) in real headless Chromium, against
// a real local HTTP server that can misbehave on purpose: cut a connection mid-shard,
// answer 404/500, serve flipped or extra bytes, ignore Range, or publish an absurd
// manifest. What reached the server is read from its own request log; what the cache
// holds from Cache Storage itself.
//
// Fault modes are part of the URL: /fault/<modes>/<file>, modes a comma list of
//   cut        the first request of every shard stops after half its bytes (socket destroyed)
//   norange    Range headers are ignored (the whole file, 200)
//   500once    the first request of every shard answers 500
//   404:N      shard N always answers 404
//   flip:N     shard N always has one byte flipped
//   long:N     shard N has 64 extra bytes
//   version:N  shard N says format version 2, and the manifest carries its real SHA-256
//   absurd     the manifest claims 10^12 items in one shard
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { serveDemo, launch, openPage, stopServer, buildSmallCatalog, assertRecommendsLikeNative, FULL_CATALOG, LOCALREC_BIN } from './helpers.mjs';

const CATALOG_CACHE = 'localrec-catalog-v1';

let served;
let browser;
let small;
let manifest;
// Per test: every request under /fault/, in order: {file, shard, range, status, mode}.
let log = [];
const seen = new Map();

/** Shard `i`'s bytes as the fault `modes` serve them. */
function shardBody(modes, i) {
  let body = Buffer.from(readFileSync(path.join(small, manifest.shards[i].path)));
  if (modes.has(`flip:${i}`)) body[Math.floor(body.length * 0.6)] ^= 0x10;
  if (modes.has(`version:${i}`)) body.writeUInt16LE(2, 4);
  if (modes.has(`long:${i}`)) body = Buffer.concat([body, Buffer.alloc(64, 7)]);
  return body;
}

function faultIntercept(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const m = /^\/fault\/([^/]*)\/(.*)$/.exec(url.pathname);
  if (!m) return false;
  const modes = new Set(m[1].split(',').filter(Boolean));
  const has = (mode, shard) => modes.has(`${mode}:${shard}`);
  const rel = decodeURIComponent(m[2]);
  const shard = manifest.shards.findIndex((s) => s.path === rel);
  const entry = { file: rel, shard, range: req.headers.range ?? null, status: 0 };
  log.push(entry);
  const send = (status, headers, body) => {
    entry.status = status;
    res.writeHead(status, { 'cache-control': 'no-store', ...headers });
    res.end(body);
  };
  if (rel === 'manifest.json') {
    const doc = JSON.parse(readFileSync(path.join(small, 'manifest.json'), 'utf8'));
    for (const [i, s] of doc.shards.entries()) {
      if (has('version', i)) s.sha256 = createHash('sha256').update(shardBody(modes, i)).digest('hex');
    }
    if (modes.has('absurd')) {
      doc.items = 1e12;
      doc.shards = [{ ...doc.shards[0], items: 1e12 }];
    }
    return send(200, { 'content-type': 'application/json' }, JSON.stringify(doc)), true;
  }
  if (shard < 0) return send(404, {}, 'not found'), true;
  const count = (seen.get(rel) ?? 0) + 1;
  seen.set(rel, count);
  if (has('404', shard)) return send(404, {}, 'not found'), true;
  if (modes.has('500once') && count === 1) return send(500, {}, 'busy'), true;
  const body = shardBody(modes, shard);
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range && !modes.has('norange')) {
    const start = Number(range[1]);
    entry.status = 206;
    res.writeHead(206, {
      'content-type': 'application/octet-stream',
      'content-length': body.length - start,
      'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
      'accept-ranges': 'bytes',
      'cache-control': 'no-store',
    });
    res.end(body.subarray(start));
    return true;
  }
  entry.status = 200;
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': body.length,
    'accept-ranges': modes.has('norange') ? 'none' : 'bytes',
    'cache-control': 'no-store',
  });
  if (modes.has('cut') && count === 1) {
    // Half the bytes, flushed, then the connection dies mid-body.
    entry.cut = Math.floor(body.length / 2);
    res.write(body.subarray(0, entry.cut), () => setTimeout(() => res.socket?.destroy(), 50));
    return true;
  }
  res.end(body);
  return true;
}

before(async () => {
  // 5 shards of about 6 items each: enough shards for faults to hit one of several.
  small = buildSmallCatalog('faults', { movies: 30, shardBytes: 3000 });
  manifest = JSON.parse(readFileSync(path.join(small, 'manifest.json'), 'utf8'));
  const mounts = [{ url: '/small', dir: small }];
  if (existsSync(path.join(FULL_CATALOG, 'manifest.json'))) mounts.push({ url: '/full', dir: FULL_CATALOG });
  served = await serveDemo({ mounts, intercept: faultIntercept });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  stopServer(served?.server);
});

/** A fresh page (own Cache Storage) with a clean request log. */
async function freshPage() {
  log = [];
  seen.clear();
  return openPage(browser, served.blank);
}

/** Opens `url` with `options` (no backoff by default), waits for every shard to settle;
 *  returns {open, final, progress, items} (items: every loaded item, quantized). */
function openAndSettle(page, url, options = {}) {
  return page.evaluate(
    async ({ url, options }) => {
      const { Catalog } = await import('/pkg/index.js');
      const progress = [];
      const opened = await settle(() => Catalog.open(url, { backoffMs: 20, ...options, onProgress: (p) => progress.push(p) }));
      if (!opened.ok) return { open: opened, progress };
      const catalog = opened.value;
      const atOpen = catalog.status;
      const final = await catalog.loaded;
      const items = await catalog.items({ offset: 0, limit: 1e6, quantized: true });
      window.lastCatalog = catalog;
      return { open: { ok: true, status: atOpen }, final, progress, items, manifest: catalog.manifest };
    },
    { url, options },
  );
}

function cachedShards(page) {
  return page.evaluate(async (name) => {
    const cache = await caches.open(name);
    return (await cache.keys()).map((r) => new URL(r.url).pathname);
  }, CATALOG_CACHE);
}

const shardRequests = () => log.filter((e) => e.shard >= 0);
const nativeItems = (dir) =>
  execFileSync(LOCALREC_BIN, ['inspect', dir, '--items', '-'], { maxBuffer: 1 << 30 })
    .toString()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));

test('a catalog streams in manifest order, verifies, and reads back exactly as the native reader does', async () => {
  const { page, errors } = await freshPage();
  const r = await openAndSettle(page, '/fault//manifest.json');
  assert.ok(r.open.ok, JSON.stringify(r.open));
  assert.equal(r.final.complete, true);
  assert.equal(r.final.itemsLoaded, manifest.items);
  assert.deepEqual(r.final.failed, []);
  assert.deepEqual(r.items, nativeItems(small), 'ids, titles, genres, metadata, scales and int8 rows equal');
  assert.deepEqual(
    shardRequests().map((e) => e.shard),
    manifest.shards.map((_, i) => i),
    'one request per shard, in manifest order',
  );
  // Progress: each shard asked for, then verified, the overall fraction growing to 1.
  assert.deepEqual(r.progress.filter((p) => p.status === 'verified').map((p) => new URL(p.file).pathname), manifest.shards.map((s) => `/fault//${s.path}`));
  assert.ok(r.progress.every((p, i) => p.source === 'catalog' && (i === 0 || p.fraction >= r.progress[i - 1].fraction)));
  assert.deepEqual(r.progress.at(-1), { status: 'ready', source: 'catalog', fraction: 1 });
  assert.equal(r.final.loaded, r.final.total);
  assert.equal(r.final.total, manifest.shards.reduce((s, x) => s + x.bytes, 0));
  assert.ok(r.open.status.itemsLoaded > 0 && !r.open.status.complete, 'usable before complete');
  assert.deepEqual(errors, []);
  await page.close();
});

test('open resolves on the first verified shard; queries on a partial catalog say partial', async () => {
  const { page, errors } = await freshPage();
  const r = await page.evaluate(async () => {
    const { Catalog } = await import('/pkg/index.js');
    // The server is slowed by nothing, so the catalog may finish quickly: ask at open.
    const catalog = await Catalog.open('/fault/404:4/manifest.json', { backoffMs: 5 });
    const atOpen = catalog.status;
    const final = await catalog.loaded;
    const first = (await catalog.items({ limit: 1 }))[0];
    const similar = await catalog.similar(first.itemId, { k: 3 });
    const missing = await settle(() => catalog.similar('no-such-id'));
    const wrongWidth = await settle(() => catalog.nearest(new Float32Array(3)));
    await catalog.close();
    const afterClose = await settle(() => catalog.item(first.itemId));
    return { atOpen, final, similar, missing, wrongWidth, afterClose };
  });
  assert.ok(r.atOpen.itemsLoaded > 0, 'usable when open resolves');
  assert.equal(r.final.complete, false);
  assert.equal(r.final.settled, true);
  assert.equal(r.final.failed.length, 1);
  assert.equal(r.final.failed[0].shard, 4);
  assert.equal(r.final.failed[0].code, 'localrec/network');
  assert.match(r.final.failed[0].message, /HTTP 404/);
  assert.equal(r.final.itemsLoaded, manifest.items - manifest.shards[4].items);
  assert.equal(r.similar.partial, true);
  assert.equal(r.similar.results.length, 3);
  assert.ok(r.similar.results.every((x, i, all) => Number.isFinite(x.score) && x.item.title && (i === 0 || all[i - 1].score >= x.score)));
  assert.equal(r.missing.code, 'localrec/not-found');
  assert.equal(r.wrongWidth.code, 'localrec/input');
  assert.equal(r.afterClose.code, 'localrec/closed');
  assert.equal(shardRequests().filter((e) => e.shard === 4).length, 1, 'a 404 is final: not retried');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a connection cut mid-shard resumes with a Range request and verifies', async () => {
  const { page, errors } = await freshPage();
  const r = await openAndSettle(page, '/fault/cut/manifest.json');
  assert.equal(r.final.complete, true, JSON.stringify(r.final.failed));
  for (let i = 0; i < manifest.shards.length; i++) {
    const reqs = shardRequests().filter((e) => e.shard === i);
    assert.equal(reqs.length, 2, `shard ${i}: the cut request and one resume`);
    assert.equal(reqs[0].range, null);
    assert.ok(reqs[1].range?.startsWith('bytes='), `shard ${i} resumed with Range`);
    assert.equal(reqs[1].status, 206);
    assert.ok(Number(/bytes=(\d+)-/.exec(reqs[1].range)[1]) > 0);
  }
  assert.deepEqual(r.items, nativeItems(small));
  assert.deepEqual(errors, []);
  await page.close();
});

test('a cut download from a server that ignores Range starts over and verifies', async () => {
  const { page, errors } = await freshPage();
  const r = await openAndSettle(page, '/fault/cut,norange/manifest.json');
  assert.equal(r.final.complete, true, JSON.stringify(r.final.failed));
  const reqs = shardRequests().filter((e) => e.shard === 0);
  assert.equal(reqs.length, 2);
  assert.equal(reqs[1].status, 200, 'the whole file again');
  assert.deepEqual(r.items, nativeItems(small));
  assert.deepEqual(errors, []);
  await page.close();
});

test('server errors are retried with backoff; retries spent fail the shard, not the catalog', async () => {
  const { page, errors } = await freshPage();
  const r = await openAndSettle(page, '/fault/500once/manifest.json');
  assert.equal(r.final.complete, true);
  assert.deepEqual(
    shardRequests().map((e) => e.status),
    manifest.shards.flatMap(() => [500, 200]),
  );
  // With no retries left, the 500 is final for that shard alone.
  const fresh = await freshPage();
  const none = await openAndSettle(fresh.page, '/fault/500once/manifest.json', { retries: 0 });
  assert.equal(none.final.failed.length, manifest.shards.length);
  assert.ok(none.final.failed.every((f) => f.code === 'localrec/network' && /HTTP 500/.test(f.message)));
  await fresh.page.close();
  const bad = await page.evaluate(async () => {
    const { Catalog } = await import('/pkg/index.js');
    return settle(() => Catalog.open('/fault//manifest.json', { retries: -1 }));
  });
  assert.equal(bad.code, 'localrec/input');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a shard that fails its checksum is discarded, never cached, reported; the rest works', async () => {
  const { page, errors } = await freshPage();
  const r = await openAndSettle(page, '/fault/flip:1/manifest.json');
  assert.equal(r.final.complete, false);
  assert.deepEqual(r.final.failed.map((f) => [f.shard, f.code]), [[1, 'localrec/integrity']]);
  assert.match(r.final.failed[0].message, /sha-256/);
  assert.equal(shardRequests().filter((e) => e.shard === 1).length, 2, 'one more download, then given up');
  const cached = await cachedShards(page);
  assert.equal(cached.length, manifest.shards.length - 1);
  assert.ok(!cached.some((p) => p.endsWith(manifest.shards[1].path)), 'the bad shard is not cached');
  const [start, end] = [manifest.shards[0].items, manifest.shards[0].items + manifest.shards[1].items];
  const expected = nativeItems(small).filter((_, i) => i < start || i >= end);
  assert.deepEqual(r.items, expected, 'the other shards loaded whole');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a shard with bytes past its manifest size is refused without buffering them', async () => {
  const { page, errors } = await freshPage();
  const r = await openAndSettle(page, '/fault/long:0/manifest.json');
  assert.deepEqual(r.final.failed.map((f) => [f.shard, f.code]), [[0, 'localrec/integrity']]);
  assert.match(r.final.failed[0].message, /more than the \d+ bytes/);
  assert.equal(r.final.itemsLoaded, manifest.items - manifest.shards[0].items);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a shard of another format version is reported as a format error; the rest loads', async () => {
  const { page, errors } = await freshPage();
  const r = await openAndSettle(page, '/fault/version:3/manifest.json');
  assert.deepEqual(r.final.failed.map((f) => [f.shard, f.code]), [[3, 'localrec/format']]);
  assert.match(r.final.failed[0].message, /version 2 is not supported/);
  assert.equal(r.final.itemsLoaded, manifest.items - manifest.shards[3].items);
  assert.ok(!(await cachedShards(page)).some((p) => p.endsWith(manifest.shards[3].path)));
  assert.deepEqual(errors, []);
  await page.close();
});

test('an absurd manifest or one over maxBytes is refused before any shard is fetched', async () => {
  const { page, errors } = await freshPage();
  const absurd = await openAndSettle(page, '/fault/absurd/manifest.json');
  assert.equal(absurd.open.code, 'localrec/format');
  assert.match(absurd.open.message, /items/);
  const tooBig = await openAndSettle(page, '/fault//manifest.json', { maxBytes: 1000 });
  assert.equal(tooBig.open.code, 'localrec/format');
  assert.match(tooBig.open.message, /maxBytes/);
  const missing = await openAndSettle(page, '/fault//no-such/manifest.json', { retries: 1 });
  assert.equal(missing.open.code, 'localrec/network');
  assert.deepEqual(shardRequests(), []);
  assert.deepEqual(errors, []);
  await page.close();
});

test('on reload verified shards come from the cache; a damaged cached copy is refetched', async () => {
  const { page, errors } = await freshPage();
  const first = await openAndSettle(page, '/fault//manifest.json');
  assert.equal(first.final.shardsFetched, manifest.shards.length);
  await page.evaluate(() => window.lastCatalog.close());
  log = [];
  const again = await openAndSettle(page, '/fault//manifest.json');
  assert.equal(again.final.complete, true);
  assert.equal(again.final.shardsFromCache, manifest.shards.length);
  assert.deepEqual(shardRequests(), [], 'no shard request on reload');
  assert.deepEqual(log.map((e) => e.file), ['manifest.json'], 'only the manifest is asked for');
  // Damage the cached copy of shard 2: it must be detected, evicted and fetched again.
  await page.evaluate(async ({ name, path }) => {
    const cache = await caches.open(name);
    const key = (await cache.keys()).find((r) => r.url.includes(path));
    const bytes = new Uint8Array(await (await cache.match(key)).arrayBuffer());
    bytes[40] ^= 1;
    await cache.put(key, new Response(bytes));
    await window.lastCatalog.close();
  }, { name: CATALOG_CACHE, path: manifest.shards[2].path });
  log = [];
  const third = await openAndSettle(page, '/fault//manifest.json');
  assert.equal(third.final.complete, true);
  assert.deepEqual(shardRequests().map((e) => e.shard), [2]);
  assert.deepEqual(third.items, nativeItems(small));
  assert.deepEqual(errors, []);
  await page.close();
});

test('ml-latest-small (make catalog) reads back in Chromium exactly as natively, and similar() finds sequels', async (t) => {
  if (!existsSync(path.join(FULL_CATALOG, 'manifest.json'))) {
    assert.fail(`${FULL_CATALOG} is missing: run \`make catalog\` (make test does)`);
  }
  const { page, errors } = await freshPage();
  const r = await page.evaluate(async () => {
    const { Catalog } = await import('/pkg/index.js');
    const catalog = await Catalog.open('/full/', { wait: 'all' });
    const items = [];
    for (let offset = 0; ; offset += 2000) {
      const part = await catalog.items({ offset, limit: 2000, quantized: true });
      items.push(...part);
      if (part.length < 2000) break;
    }
    const toyStory = await catalog.similar('1', { k: 5 });
    return { status: catalog.status, items, toyStory };
  });
  assert.equal(r.status.complete, true);
  const native = nativeItems(FULL_CATALOG);
  assert.equal(r.items.length, native.length);
  assert.equal(r.items.length, 9742);
  for (let i = 0; i < native.length; i++) {
    if (JSON.stringify(r.items[i]) !== JSON.stringify(native[i])) {
      assert.deepEqual(r.items[i], native[i], `item ${i}`);
    }
  }
  const titles = r.toyStory.results.map((x) => x.item.title);
  assert.equal(r.toyStory.partial, false);
  assert.ok(titles.some((t) => /Toy Story 2/.test(t)), titles.join(' | '));
  assert.deepEqual(errors, []);
  await page.close();
});

test('recommend() in Chromium ranks ml-latest-small exactly as the native scorer does (CPU and WebGPU), with reasons, scenarios, predicted ratings and no liked film', async () => {
  if (!existsSync(path.join(FULL_CATALOG, 'manifest.json'))) {
    assert.fail(`${FULL_CATALOG} is missing: run \`make catalog\` (make test does)`);
  }
  const { page, errors } = await freshPage();
  await assertRecommendsLikeNative(page, '/full/', FULL_CATALOG);
  assert.deepEqual(errors, []);
  await page.close();
});

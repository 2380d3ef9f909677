// The library's fault matrix (ARCHITECTURE.md) in real headless Chromium: a WebGPU device
// lost under the catalog, wasm traps while scoring and while loading, a k that once made
// Rust panic, manifest paths that a URL parser moves elsewhere, model files nobody vouches
// for, a foreign wasm module in Cache Storage, aborted calls. Faults are injected by the
// fixtures in tests/browser/fixtures (a worker script of the test's own wrapping the
// package's, passed as `workerUrl`) or by the test server; the package has no test hooks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { serveDemo, launch, openPage, stopServer, buildSmallCatalog, FULL_CATALOG, root } from './helpers.mjs';

let served;
let browser;
let small;
// Per test: every request the server saw, and every URL the browser asked for (any host).
const asked = [];

/** The small catalog's manifest, changed by `edit`, served at /escape/<name>/manifest.json. */
const edits = new Map();

function intercept(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const m = /^\/escape\/([^/]+)\/(.*)$/.exec(url.pathname);
  if (url.pathname === '/escape/secret.bin') {
    // Outside any catalog folder: what a manifest path that climbs out would reach.
    const manifest = JSON.parse(readFileSync(path.join(small, 'manifest.json'), 'utf8'));
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(readFileSync(path.join(small, manifest.shards[0].path)));
    return true;
  }
  if (!m) return false;
  const [, name, rel] = m;
  const root = name.startsWith('full-') ? FULL_CATALOG : small;
  if (rel === 'manifest.json') {
    const manifest = JSON.parse(readFileSync(path.join(root, 'manifest.json'), 'utf8'));
    edits.get(name)?.(manifest);
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(manifest));
    return true;
  }
  try {
    const body = readFileSync(path.join(root, decodeURIComponent(rel)));
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
  return true;
}

before(async () => {
  small = buildSmallCatalog('faults', { movies: 400, shardBytes: 40_000 });
  served = await serveDemo({ intercept, mounts: [{ url: '/small', dir: small }, { url: '/full', dir: FULL_CATALOG }] });
  // evil.example resolves to a second loopback address, where nothing listens: a request
  // there is visible in the log and never leaves the machine.
  browser = await launch(['--host-resolver-rules=MAP evil.example 127.0.0.2']);
});

after(async () => {
  await browser?.close();
  stopServer(served?.server);
});

async function page() {
  asked.length = 0;
  served.requests.length = 0;
  const opened = await openPage(browser, served.blank);
  opened.page.on('request', (r) => asked.push(r.url()));
  return opened;
}

const LIKES = { events: [{ itemId: '1', type: 'like' }, { itemId: '260', type: 'like' }, { itemId: '1196', type: 'like' }], k: 10 };

test('a WebGPU device lost while the catalog scores: recommend() falls back to the CPU and answers', { timeout: 600_000 }, async () => {
  const { page: p, errors } = await page();
  const out = await p.evaluate(async (request) => {
    const { Catalog } = await import('/pkg/index.js');
    const cpu = await Catalog.open('/full/', { backend: 'cpu', wait: 'all' });
    const want = await cpu.recommend(request);
    await cpu.close();
    const gpu = await Catalog.open('/full/', {
      backend: 'webgpu', wait: 'all', workerUrl: '/test-fixtures/catalog-fault-worker.js?fault=lose-device',
    });
    const before = gpu.scoring;
    const got = await settle(() => gpu.recommend(request), 300_000);
    const after = { scoring: gpu.scoring, fallbackReason: gpu.fallbackReason, reason: gpu.scoringReason };
    const again = await settle(() => gpu.similar('1', { k: 5 }), 120_000);
    await gpu.close();
    return { want: want.results.map((r) => r.itemId), before, got: got.ok ? got.value.results.map((r) => r.itemId) : got, after, again };
  }, LIKES);
  await p.close();
  assert.equal(out.before, 'webgpu');
  assert.deepEqual(out.got, out.want, 'the pending call is answered, on the CPU, with the CPU ranking');
  assert.equal(out.after.scoring, 'cpu');
  assert.match(out.after.fallbackReason, /webgpu/);
  assert.ok(out.again.ok, JSON.stringify(out.again));
  assert.deepEqual(errors.filter((e) => !/internal error|wgpu|webgpu/i.test(e)), []);
});

test('a trap while recommending rejects that call with localrec/internal, replaces the worker, and the next calls work', { timeout: 600_000 }, async () => {
  const { page: p } = await page();
  const out = await p.evaluate(async (request) => {
    const { Catalog } = await import('/pkg/index.js');
    const catalog = await Catalog.open('/small/', { wait: 'all', workerUrl: '/test-fixtures/catalog-fault-worker.js?fault=trap-recommend' });
    // The injection is one-shot: the replacement worker is the package's own.
    catalog.workerUrl = undefined;
    const trapped = await settle(() => catalog.recommend(request), 60_000);
    const next = await settle(() => catalog.recommend(request), 120_000);
    const similar = await settle(() => catalog.similar('1', { k: 3 }), 60_000);
    const status = catalog.status;
    await catalog.close();
    return { trapped, next: next.ok ? next.value.results.length : next, similar: similar.ok ? similar.value.results.length : similar, status };
  }, LIKES);
  await p.close();
  assert.equal(out.trapped.code, 'localrec/internal', JSON.stringify(out.trapped));
  assert.match(out.trapped.message, /replaced/);
  assert.equal(out.next, 10);
  assert.equal(out.similar, 3);
  assert.equal(out.status.complete, true, 'the replacement loaded every shard again');
});

test('a trap while verifying a shard replaces the worker; loading completes, earlier shards from the verified cache', { timeout: 600_000 }, async () => {
  const { page: p } = await page();
  const manifest = JSON.parse(readFileSync(path.join(small, 'manifest.json'), 'utf8'));
  assert.ok(manifest.shards.length >= 3, 'the small catalog has several shards');
  const out = await p.evaluate(async () => {
    const { Catalog } = await import('/pkg/index.js');
    const catalog = await Catalog.open('/small/', { wait: 'first', backoffMs: 10, workerUrl: '/test-fixtures/catalog-fault-worker.js?fault=trap-shard:1' });
    catalog.workerUrl = undefined;
    const final = await settle(() => catalog.loaded, 120_000);
    const top = await settle(() => catalog.recommend({ events: [{ itemId: '1', type: 'like' }], k: 5 }), 60_000);
    await catalog.close();
    return { final, top: top.ok ? top.value.results.length : top };
  });
  await p.close();
  assert.ok(out.final.ok, JSON.stringify(out.final));
  assert.equal(out.final.value.complete, true);
  assert.equal(out.final.value.itemsLoaded, manifest.items);
  assert.equal(out.top, 5);
  const shard0 = served.requests.filter((r) => r.path === `/small/${manifest.shards[0].path}`);
  assert.equal(shard0.length, 1, 'shard 0 was downloaded once: the new worker read it from Cache Storage');
  // The trapped worker never vouched for shard 1, so its replacement fetched it again: this is
  // what shows that the trap happened (without it the test would pass on a catalog that
  // ignored the injection).
  const shard1 = served.requests.filter((r) => r.path === `/small/${manifest.shards[1].path}`);
  assert.equal(shard1.length, 2, 'shard 1 was downloaded by the trapped worker and again by its replacement');
});

test('nearest() with k = 2**31 is refused with localrec/input, and recommend() and similar() keep working', { timeout: 300_000 }, async () => {
  const { page: p, errors } = await page();
  const out = await p.evaluate(async () => {
    const { Catalog } = await import('/pkg/index.js');
    const catalog = await Catalog.open('/small/', { wait: 'all' });
    const v = await catalog.embedding('1');
    const huge = await settle(() => catalog.nearest(v, { k: 2 ** 31 }));
    const near = await settle(() => catalog.nearest(v, { k: 3 }));
    const recs = await settle(() => catalog.recommend({ events: [{ itemId: '1', type: 'like' }], k: 3 }));
    const similar = await settle(() => catalog.similar('1', { k: 3 }));
    await catalog.close();
    return { huge, near: near.ok && near.value.results.length, recs: recs.ok ? recs.value.results.length : recs, similar: similar.ok ? similar.value.results.length : similar };
  });
  await p.close();
  assert.equal(out.huge.code, 'localrec/input', JSON.stringify(out.huge));
  assert.deepEqual([out.near, out.recs, out.similar], [3, 3, 3]);
  assert.deepEqual(errors, []);
});

const ESCAPES = {
  // Leading space and tab are stripped by the URL parser: "//evil.example/x.bin", another host.
  'other-host': (m) => (m.shards[0].path = ' /\t/evil.example/x.bin'),
  // %2e%2e is decoded to "..": the path climbs out of the catalog's folder.
  'dot-dot': (m) => (m.shards[0].path = 'shards/%2e%2e/%2e%2e/%2e%2e/secret.bin'),
  // The model folder another site's.
  'model-elsewhere': (m) => (m.encoder.model = '\t//evil.example/model/'),
};

for (const [name, edit] of Object.entries(ESCAPES)) {
  test(`a manifest path that the URL parser moves outside the catalog (${name}) is refused with localrec/integrity before any request`, { timeout: 300_000 }, async () => {
    edits.set(name, edit);
    const { page: p } = await page();
    const out = await p.evaluate(async (url) => {
      const { Catalog } = await import('/pkg/index.js');
      return settle(() => Catalog.open(url, { wait: 'all', retries: 0 }), 60_000);
    }, `/escape/${name}/`);
    await p.close();
    assert.equal(out.code, 'localrec/integrity', JSON.stringify(out));
    assert.deepEqual(asked.filter((u) => u.includes('evil.example') || u.includes('secret.bin') || u.includes('/shards/')), [], 'nothing but the manifest was requested');
  });
}

test('model files nobody vouches for are refused with localrec/integrity: a folder without its manifest, files unlike the catalog\'s encoder.files', { timeout: 600_000 }, async () => {
  const manifest = JSON.parse(readFileSync(path.join(FULL_CATALOG, 'manifest.json'), 'utf8'));
  assert.ok(manifest.encoder.files?.length >= 3, 'make catalog records encoder.files');
  edits.set('full-foreign-tokenizer', (m) => {
    const entry = m.encoder.files.find((f) => f.path === 'tokenizer.json');
    entry.sha256 = 'f'.repeat(64);
  });
  const { page: p } = await page();
  const out = await p.evaluate(async () => {
    const { Encoder, Recommender } = await import('/pkg/index.js');
    const bare = await settle(() => Encoder.load('/model-f32/', { backend: 'cpu' }));
    const allowed = await settle(async () => {
      const enc = await Encoder.load('/model-f32/', { backend: 'cpu', allowUnverified: true });
      await enc.close();
      return enc.dims;
    });
    const open = async (url, options) => {
      const rec = await Recommender.open(url, { backend: 'cpu', storage: 'memory', ...options });
      try {
        return await settle(() => rec.addInterest('quiet space drama'), 300_000);
      } finally {
        await rec.close();
      }
    };
    const foreign = await open('/escape/full-foreign-tokenizer/');
    // The page may name another folder, but its files must still be the catalog's.
    const otherModel = await open('/full/', { modelUrl: '/model-f32/' });
    const good = await open('/full/');
    return { bare, allowed, foreign, otherModel, good };
  });
  await p.close();
  assert.equal(out.bare.code, 'localrec/integrity', JSON.stringify(out.bare));
  assert.match(out.bare.message, /no manifest\.json/);
  assert.deepEqual(out.allowed, { ok: true, value: 384 });
  assert.equal(out.foreign.code, 'localrec/integrity', JSON.stringify(out.foreign));
  assert.equal(out.otherModel.code, 'localrec/integrity', JSON.stringify(out.otherModel));
  assert.ok(out.good.ok, JSON.stringify(out.good));
});

test('a cached wasm module that is not this build\'s is evicted and downloaded again, never compiled', { timeout: 300_000 }, async () => {
  const digests = (await import(pathToFileURL(path.join(root, 'pkg/wasm/digests.js')).href)).default;
  const { page: p } = await page();
  const load = () => p.evaluate(async () => {
    const { Catalog } = await import('/pkg/index.js');
    const catalog = await Catalog.open('/small/', { wait: 'first' });
    await catalog.close();
    return true;
  });
  await load();
  // Swap the cached module for the other CPU build: valid wasm, but not the bytes expected.
  const swapped = await p.evaluate(async () => {
    const cache = await caches.open('localrec-wasm-v1');
    const [key] = (await cache.keys()).filter((r) => r.url.includes('localrec_wasm'));
    const name = new URL(key.url).pathname.split('/').pop();
    const other = name === 'localrec_wasm_bg.wasm' ? 'localrec_wasm_relaxed_bg.wasm' : 'localrec_wasm_bg.wasm';
    const bytes = await (await fetch(`/pkg/wasm/${other}`)).arrayBuffer();
    const old = await cache.match(key);
    await cache.put(key, new Response(bytes, { headers: old.headers }));
    return name;
  });
  await p.reload();
  served.requests.length = 0;
  await load();
  const stored = await p.evaluate(async (name) => {
    const cache = await caches.open('localrec-wasm-v1');
    const [key] = (await cache.keys()).filter((r) => r.url.includes(name));
    const body = new Uint8Array(await (await cache.match(key)).arrayBuffer());
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
    return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  }, swapped);
  await p.close();
  assert.equal(served.requests.filter((r) => r.path === `/pkg/wasm/${swapped}`).length, 1, 'the module was downloaded again');
  assert.equal(stored, digests[swapped].sha256, 'the cache holds this build\'s module again');
});

test('an AbortSignal aborts Catalog.open, recommend and embed with localrec/aborted', { timeout: 300_000 }, async () => {
  const { page: p } = await page();
  const out = await p.evaluate(async () => {
    const { Catalog, Encoder } = await import('/pkg/index.js');
    const early = new AbortController();
    early.abort();
    const already = await settle(() => Catalog.open('/small/', { signal: early.signal }));
    const opening = new AbortController();
    const pending = settle(() => Catalog.open('/full/', { wait: 'all', signal: opening.signal, cache: false }));
    setTimeout(() => opening.abort(), 50);
    const open = await pending;
    const catalog = await Catalog.open('/small/', { wait: 'all' });
    const calling = new AbortController();
    const call = catalog.recommend({ events: [{ itemId: '1', type: 'like' }] }, { signal: calling.signal });
    calling.abort();
    const recommend = await settle(() => call);
    const after = await settle(() => catalog.recommend({ events: [{ itemId: '1', type: 'like' }], k: 2 }));
    await catalog.close();
    const enc = await Encoder.load('/model/', { backend: 'cpu' });
    const embedding = new AbortController();
    const embedCall = enc.embed(Array.from({ length: 64 }, (_, i) => `text ${i}`), { signal: embedding.signal });
    embedding.abort();
    const embed = await settle(() => embedCall);
    await enc.close();
    return { already, open, recommend, after: after.ok && after.value.results.length, embed };
  });
  await p.close();
  for (const key of ['already', 'open', 'recommend', 'embed']) assert.equal(out[key].code, 'localrec/aborted', `${key}: ${JSON.stringify(out[key])}`);
  assert.equal(out.after, 2, 'the catalog works after an aborted call');
});

test("the catalog's 'auto' is not timed: a fallback (CPU-emulated) adapter scores on the CPU and says why", { timeout: 300_000 }, async () => {
  const { page: p } = await page();
  const out = await p.evaluate(async () => {
    const adapter = await navigator.gpu?.requestAdapter();
    const fallback = Boolean(adapter && (adapter.isFallbackAdapter ?? adapter.info?.isFallbackAdapter));
    const { Catalog } = await import('/pkg/index.js');
    const catalog = await Catalog.open('/small/', { backend: 'auto', wait: 'first' });
    const result = { fallback, scoring: catalog.scoring, reason: catalog.scoringReason };
    await catalog.close();
    return result;
  });
  await p.close();
  assert.ok(out.fallback, 'this test needs a fallback adapter (headless Chromium with SwiftShader)');
  assert.equal(out.scoring, 'cpu');
  assert.match(out.reason, /fallback/);
  assert.deepEqual(asked.filter((u) => u.includes('localrec_webgpu')), [], 'the WebGPU module is not fetched');
});

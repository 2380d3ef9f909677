// Model-file caching (pkg/download.js, pkg/model-files.js) in real headless Chromium: what reaches the server is
// read from the server's own request log, what the cache holds from Cache Storage itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, promises as fs } from 'node:fs';
import path from 'node:path';
import {
  serveDemo,
  launch,
  openPage,
  stopServer,
  modelCopy,
  webManifest,
  golden,
  cosine,
  F32_MODEL,
  CACHE_NAME,
} from './helpers.mjs';

const FILES = ['config.json', 'tokenizer.json', 'sentence_bert_config.json', 'model.safetensors'];
const lines = golden().slice(0, 4);
const texts = lines.map((l) => l.text);

let served;
let browser;
let f32Copy;

before(async () => {
  // A copy of the original folder (no manifest.json), served at /f32-copy/.
  f32Copy = await modelCopy(F32_MODEL, { 'config.json': readFileSync(path.join(F32_MODEL, 'config.json')) });
  served = await serveDemo({ mounts: [{ url: '/f32-copy', dir: f32Copy }] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  stopServer(served?.server);
  if (f32Copy) await fs.rm(f32Copy, { recursive: true, force: true });
});

/** Loads the model at `modelPath` on the cpu, embeds `texts`, closes; with all progress. */
function loadAndEmbed(page, modelPath, options = {}) {
  return page.evaluate(
    async ({ modelPath, texts, options }) => {
      const { Encoder } = await import('/pkg/index.js');
      const progress = [];
      const loaded = await settle(() => Encoder.load(modelPath, { backend: 'cpu', ...options, onProgress: (p) => progress.push(p) }));
      if (!loaded.ok) return { loaded, progress };
      const enc = loaded.value;
      const vectors = Array.from(await enc.embed(texts));
      await enc.close();
      return { loaded: { ok: true }, progress, vectors };
    },
    { modelPath, texts, options },
  );
}

/** What Cache Storage holds: {file path: {bytes, sha256 of the body, recorded sha256}}. */
function cacheState(page) {
  return page.evaluate(async (name) => {
    const hex = async (buf) =>
      Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', buf)), (b) => b.toString(16).padStart(2, '0')).join('');
    const cache = await caches.open(name);
    const out = {};
    for (const req of await cache.keys()) {
      const res = await cache.match(req);
      const body = await res.arrayBuffer();
      out[new URL(req.url).pathname] = {
        bytes: body.byteLength,
        sha256: await hex(body),
        recorded: res.headers.get('x-localrec-sha256'),
      };
    }
    return out;
  }, CACHE_NAME);
}

/** Progress events per file name under `prefix` (the model's manifest has none: it vouches, it is not vouched for). */
function progressByFile(progress, prefix) {
  const out = {};
  for (const p of progress) {
    if (!p.file || p.source !== 'model') continue;
    const name = new URL(p.file).pathname.slice(prefix.length);
    (out[name] ??= []).push(p);
  }
  return out;
}

/** Requests of `method` that reached the server for files under `prefix`: {name: count}. */
function hits(method, prefix) {
  const out = {};
  for (const r of served.requests) {
    if (r.method === method && r.path.startsWith(prefix)) {
      const name = r.path.slice(prefix.length);
      out[name] = (out[name] ?? 0) + 1;
    }
  }
  return out;
}

function assertGolden(vectors) {
  lines.forEach((l, i) => {
    const c = cosine(vectors.slice(i * 384, (i + 1) * 384), l.embedding);
    assert.ok(c >= 0.999, `cosine ${c} for ${JSON.stringify(l.text)}`);
  });
}


test('the first load downloads and caches each verified file; a second load in the page takes them from the cache', { timeout: 300_000 }, async () => {
  const manifest = webManifest();
  const { page, errors } = await openPage(browser, served.blank);

  served.requests.length = 0;
  const first = await loadAndEmbed(page, '/model/');
  assert.ok(first.loaded.ok, JSON.stringify(first.loaded));
  assert.deepEqual(hits('GET', '/model/'), { 'manifest.json': 1, ...Object.fromEntries(FILES.map((f) => [f, 1])) });
  const firstProgress = progressByFile(first.progress, '/model/');
  for (const f of FILES) {
    const events = firstProgress[f];
    assert.ok(events?.length, `progress for ${f}`);
    assert.equal(events[0].status, 'initiate', f);
    const last = events.at(-1);
    assert.deepEqual(
      { status: last.status, cached: last.cached, loaded: last.loaded, total: last.total },
      { status: 'verified', cached: false, loaded: manifest[f].bytes, total: manifest[f].bytes },
      `final progress of ${f}`,
    );
    assert.ok(events.every((p, i) => i === 0 || p.fraction >= events[i - 1].fraction), `${f}: the overall fraction never goes back`);
  }
  assert.deepEqual(first.progress.at(-1), { status: 'ready', source: 'model', fraction: 1 });
  // Only checked files are cached, and the manifest, which decides what is current, is not.
  assert.equal(await page.evaluate(async () => (await import('/pkg/index.js')).MODEL_CACHE_NAME), CACHE_NAME);
  const stored = await cacheState(page);
  assert.deepEqual(Object.keys(stored).sort(), FILES.map((f) => `/model/${f}`).sort());
  for (const f of FILES) {
    assert.equal(stored[`/model/${f}`].bytes, manifest[f].bytes, f);
    assert.equal(stored[`/model/${f}`].sha256, manifest[f].sha256, f);
  }

  served.requests.length = 0;
  const second = await loadAndEmbed(page, '/model/');
  assert.ok(second.loaded.ok, JSON.stringify(second.loaded));
  assert.deepEqual(hits('GET', '/model/'), { 'manifest.json': 1 }, 'only the manifest is downloaded again');
  const secondProgress = progressByFile(second.progress, '/model/');
  for (const f of FILES) {
    const events = secondProgress[f];
    assert.deepEqual(events.map((p) => p.status), ['initiate', 'verified'], `cached ${f}: asked for, then verified`);
    assert.deepEqual(events[1], {
      status: 'verified',
      source: 'model',
      file: `${served.url}model/${f}`,
      loaded: manifest[f].bytes,
      total: manifest[f].bytes,
      cached: true,
      fraction: events[1].fraction,
    });
  }
  assert.deepEqual(second.vectors, first.vectors);
  assertGolden(second.vectors);
  assert.deepEqual(errors, []);
  await page.close();
});

test('corrupted, truncated and foreign cached files are detected, evicted and downloaded again', { timeout: 300_000 }, async () => {
  const manifest = webManifest();
  const { page, errors } = await openPage(browser, served.blank);
  const first = await loadAndEmbed(page, '/model/');
  assert.ok(first.loaded.ok, JSON.stringify(first.loaded));

  await page.evaluate(async (name) => {
    const cache = await caches.open(name);
    const base = new URL('/model/', location.href).href;
    // Each entry keeps its own key (URL and digest) and headers: only the bytes tell.
    const entry = async (file) => {
      const [key] = await cache.keys(base + file, { ignoreSearch: true });
      return { key, res: await cache.match(key) };
    };
    const weights = await entry('model.safetensors');
    const flipped = new Uint8Array(await weights.res.arrayBuffer());
    flipped[flipped.length >> 1] ^= 0xff;
    await cache.put(weights.key, new Response(flipped, { headers: weights.res.headers }));
    const tokenizer = await entry('tokenizer.json');
    const whole = new Uint8Array(await tokenizer.res.arrayBuffer());
    await cache.put(tokenizer.key, new Response(whole.slice(0, whole.length >> 1), { headers: tokenizer.res.headers }));
    const config = await entry('config.json');
    await cache.put(config.key, new Response('{"model_type": "gpt2"}', { headers: config.res.headers }));
  }, CACHE_NAME);
  await page.reload();

  served.requests.length = 0;
  const again = await loadAndEmbed(page, '/model/');
  assert.ok(again.loaded.ok, JSON.stringify(again.loaded));
  assert.deepEqual(hits('GET', '/model/'), {
    'manifest.json': 1,
    'config.json': 1,
    'tokenizer.json': 1,
    'model.safetensors': 1,
  });
  const progress = progressByFile(again.progress, '/model/');
  for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) {
    assert.equal(progress[f].at(-1).cached, false, `${f} was downloaded again, not taken from the cache`);
  }
  assert.equal(progress['sentence_bert_config.json'].at(-1).cached, true);
  // The bad copies were replaced by verified ones.
  const stored = await cacheState(page);
  for (const f of FILES) assert.equal(stored[`/model/${f}`]?.sha256, manifest[f].sha256, f);
  assertGolden(again.vectors);
  assert.deepEqual(again.vectors, first.vectors);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a folder without a manifest loads only when the page allows it unverified, then from the network every time and never cached', { timeout: 600_000 }, async () => {
  const prefix = '/f32-copy/';
  const { page, errors } = await openPage(browser, served.blank);

  served.requests.length = 0;
  const refused = await loadAndEmbed(page, prefix);
  assert.equal(refused.loaded.code, 'localrec/integrity', JSON.stringify(refused.loaded));
  assert.match(refused.loaded.message, /no manifest\.json/);
  assert.deepEqual(hits('GET', prefix), { 'manifest.json': 1 }, 'nothing but the manifest was asked for');

  for (const round of [1, 2]) {
    served.requests.length = 0;
    const loaded = await loadAndEmbed(page, prefix, { allowUnverified: true });
    assert.ok(loaded.loaded.ok, JSON.stringify(loaded.loaded));
    assert.deepEqual(hits('GET', prefix), { 'manifest.json': 1, ...Object.fromEntries(FILES.map((f) => [f, 1])) }, `round ${round}: every file from the network`);
    assertGolden(loaded.vectors);
  }
  assert.deepEqual(Object.keys(await cacheState(page)).filter((k) => k.startsWith(prefix)), [], 'unverified files are not cached');
  assert.deepEqual(errors, []);
  await page.close();
});

for (const mode of ['missing', 'open', 'match', 'put']) {
  test(`a broken Cache API (${mode}) costs the download, not the load`, { timeout: 300_000 }, async () => {
    const { page, errors } = await openPage(browser, served.blank);
    served.requests.length = 0;
    // A worker script of the test's own breaks the worker's Cache API before the package's
    // worker starts.
    const out = await page.evaluate(
      async ({ mode, text, name }) => {
        const { Encoder } = await import('/pkg/index.js');
        const progress = [];
        const workerUrl = `/test-fixtures/cache-fault-worker.js?mode=${mode}`;
        const loads = [];
        let enc = null;
        for (let i = 0; i < 2; i++) {
          const loaded = await settle(() => Encoder.load('/model/', { backend: 'cpu', workerUrl, onProgress: (p) => progress.push(p) }));
          loads.push({ ok: loaded.ok, error: loaded.ok ? undefined : loaded });
          if (loaded.ok) {
            await enc?.close();
            enc = loaded.value;
          }
        }
        const embedded = enc ? await settle(() => enc.embed([text])) : { ok: false };
        await enc?.close();
        return {
          loads,
          cachedEvents: progress.filter((p) => p.cached).length,
          stored: (await (await caches.open(name)).keys()).length,
          vector: embedded.ok ? Array.from(embedded.value) : embedded,
        };
      },
      { mode, text: lines[0].text, name: CACHE_NAME },
    );
    for (const load of out.loads) assert.deepEqual(load, { ok: true, error: undefined });
    assert.equal(out.cachedEvents, 0, 'nothing came from the cache');
    assert.equal(hits('GET', '/model/')['model.safetensors'], 2, 'both loads downloaded the weights');
    // With match broken, put still works: the files are stored but cannot be read back.
    assert.equal(out.stored, mode === 'match' ? FILES.length : 0);
    assert.ok(Array.isArray(out.vector), JSON.stringify(out.vector));
    assert.ok(cosine(out.vector, lines[0].embedding) >= 0.999);
    assert.deepEqual(errors, []);
    await page.close();
  });
}

const INSECURE = 'in an insecure context (no Cache API, no crypto.subtle) a folder allowed unverified loads ' +
  'from the network; one with a manifest says why it cannot be checked';
test(INSECURE, { timeout: 300_000 }, async () => {
  // A name other than localhost or 127.0.0.1 over http is not a secure context.
  const insecure = await launch(['--host-resolver-rules=MAP insecure.test 127.0.0.1']);
  try {
    const { port } = served.server.address();
    const { page, errors } = await openPage(insecure, `http://insecure.test:${port}/test-fixtures/blank.html`);
    const context = await page.evaluate(() => ({ secure: isSecureContext, caches: typeof caches, subtle: typeof crypto.subtle }));
    assert.deepEqual(context, { secure: false, caches: 'undefined', subtle: 'undefined' });

    const plain = await loadAndEmbed(page, '/f32-copy/', { allowUnverified: true });
    assert.ok(plain.loaded.ok, JSON.stringify(plain.loaded));
    assertGolden(plain.vectors);
    assert.ok(plain.progress.every((p) => !p.cached));

    const checked = await loadAndEmbed(page, '/model/');
    assert.equal(checked.loaded.code, 'localrec/integrity', JSON.stringify(checked.loaded));
    assert.match(checked.loaded.message, /cannot check downloads: .*secure context/);
    assert.deepEqual(errors, []);
  } finally {
    await insecure.close();
  }
});

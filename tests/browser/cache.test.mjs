// Model-file caching (pkg/fetch.js) in real headless Chromium: what reaches the server is
// read from the server's own request log, what the cache holds from Cache Storage itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
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
  // A copy of the original folder whose config.json is a file of its own, so a test can
  // change its modification time (hence its ETag) without touching the shared model.
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
function loadAndEmbed(page, modelPath) {
  return page.evaluate(
    async ({ modelPath, texts }) => {
      const { Encoder } = await import('/pkg/index.js');
      const progress = [];
      const loaded = await settle(() => Encoder.load(modelPath, { backend: 'cpu', onProgress: (p) => progress.push(p) }));
      if (!loaded.ok) return { loaded, progress };
      const enc = loaded.value;
      const vectors = Array.from(await enc.embed(texts));
      await enc.close();
      return { loaded: { ok: true }, progress, vectors };
    },
    { modelPath, texts },
  );
}

/** What Cache Storage holds: {file name: {bytes, sha256 of the body, recorded sha256, validator}}. */
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
        validator: res.headers.get('x-localrec-validator'),
      };
    }
    return out;
  }, CACHE_NAME);
}

/** Progress events per file name under `prefix`. */
function progressByFile(progress, prefix) {
  const out = {};
  for (const p of progress) {
    if (!p.file) continue;
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

function sha256File(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
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
    assert.ok(events.every((p) => p.cached === false), `${f} came from the network`);
    const last = events.at(-1);
    assert.deepEqual([last.loaded, last.total], [manifest[f].bytes, manifest[f].bytes], `final progress of ${f}`);
  }
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
    assert.equal(events?.length, 1, `one progress event for cached ${f}`);
    assert.deepEqual(events[0], {
      phase: f === 'model.safetensors' ? 'weights' : 'model',
      file: `${served.url}model/${f}`,
      loaded: manifest[f].bytes,
      total: manifest[f].bytes,
      cached: true,
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
    // Keeping each entry's own headers leaves only the size or the SHA-256 to tell.
    const weights = await cache.match(base + 'model.safetensors');
    const flipped = new Uint8Array(await weights.arrayBuffer());
    flipped[flipped.length >> 1] ^= 0xff;
    await cache.put(base + 'model.safetensors', new Response(flipped, { headers: weights.headers }));
    const tokenizer = await cache.match(base + 'tokenizer.json');
    const whole = new Uint8Array(await tokenizer.arrayBuffer());
    await cache.put(base + 'tokenizer.json', new Response(whole.slice(0, whole.length >> 1), { headers: tokenizer.headers }));
    await cache.put(base + 'config.json', new Response('{"model_type": "gpt2"}'));
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
    assert.ok(progress[f].every((p) => p.cached === false), `${f} was downloaded again, not taken from the cache`);
  }
  assert.deepEqual(progress['sentence_bert_config.json'].map((p) => p.cached), [true]);
  // The bad copies were replaced by verified ones.
  const stored = await cacheState(page);
  for (const f of FILES) assert.equal(stored[`/model/${f}`]?.sha256, manifest[f].sha256, f);
  assertGolden(again.vectors);
  assert.deepEqual(again.vectors, first.vectors);
  assert.deepEqual(errors, []);
  await page.close();
});

test('without a manifest, files are cached with their own SHA-256 and revalidated with HEAD requests', { timeout: 600_000 }, async () => {
  const prefix = '/f32-copy/';
  const { page, errors } = await openPage(browser, served.blank);

  served.requests.length = 0;
  const first = await loadAndEmbed(page, prefix);
  assert.ok(first.loaded.ok, JSON.stringify(first.loaded));
  assert.deepEqual(hits('GET', prefix), { 'manifest.json': 1, ...Object.fromEntries(FILES.map((f) => [f, 1])) });
  const stored = await cacheState(page);
  assert.deepEqual(Object.keys(stored).sort(), FILES.map((f) => prefix + f).sort());
  for (const f of FILES) {
    const entry = stored[prefix + f];
    assert.equal(entry.sha256, sha256File(path.join(F32_MODEL, f)), `${f} is cached as served`);
    assert.equal(entry.recorded, entry.sha256, `${f} records its digest`);
    assert.ok(entry.validator, `${f} records the server's validator`);
  }

  served.requests.length = 0;
  const second = await loadAndEmbed(page, prefix);
  assert.ok(second.loaded.ok, JSON.stringify(second.loaded));
  assert.deepEqual(hits('GET', prefix), { 'manifest.json': 1 });
  assert.deepEqual(hits('HEAD', prefix), Object.fromEntries(FILES.map((f) => [f, 1])));
  const secondProgress = progressByFile(second.progress, prefix);
  for (const f of FILES) assert.deepEqual(secondProgress[f].map((p) => p.cached), [true], f);
  assert.deepEqual(second.vectors, first.vectors);
  assertGolden(second.vectors);

  // config.json changes on the server (a new modification time, so a new ETag), and the
  // cached tokenizer.json is corrupted: both must come from the network again.
  const later = new Date(Date.now() + 60_000);
  await fs.utimes(path.join(f32Copy, 'config.json'), later, later);
  await page.evaluate(async ({ name, prefix }) => {
    const cache = await caches.open(name);
    const url = new URL(prefix + 'tokenizer.json', location.href).href;
    const res = await cache.match(url);
    const bytes = new Uint8Array(await res.arrayBuffer());
    bytes[100] ^= 0x01;
    await cache.put(url, new Response(bytes, { headers: res.headers }));
  }, { name: CACHE_NAME, prefix });

  served.requests.length = 0;
  const third = await loadAndEmbed(page, prefix);
  assert.ok(third.loaded.ok, JSON.stringify(third.loaded));
  assert.deepEqual(hits('GET', prefix), { 'manifest.json': 1, 'config.json': 1, 'tokenizer.json': 1 });
  const thirdProgress = progressByFile(third.progress, prefix);
  assert.ok(thirdProgress['config.json'].every((p) => !p.cached), 'the changed config.json is downloaded');
  assert.ok(thirdProgress['tokenizer.json'].every((p) => !p.cached), 'the corrupted tokenizer.json is downloaded');
  assert.deepEqual(thirdProgress['model.safetensors'].map((p) => p.cached), [true]);
  assert.deepEqual(third.vectors, first.vectors);
  assert.deepEqual(errors, []);
  await page.close();
});

for (const mode of ['missing', 'open', 'match', 'put']) {
  test(`a broken Cache API (${mode}) costs the download, not the load`, { timeout: 300_000 }, async () => {
    const { page, errors } = await openPage(browser, served.blank);
    served.requests.length = 0;
    // The worker protocol directly, because only a worker script of the test's own can
    // break the worker's Cache API before the localrec worker starts.
    const out = await page.evaluate(
      async ({ mode, text, name }) => {
        const worker = new Worker(`/test-fixtures/cache-fault-worker.js?mode=${mode}`, { type: 'module' });
        const progress = [];
        const call = (message) =>
          new Promise((resolve) => {
            const onMessage = (event) => {
              if (event.data.id !== message.id) return;
              if (event.data.progress) progress.push(event.data.progress);
              else resolve(event.data);
            };
            worker.addEventListener('message', onMessage);
            worker.addEventListener('error', (e) => resolve({ ok: false, error: { code: 'worker', message: e.message } }));
            worker.postMessage(message);
          });
        const modelUrl = new URL('/model/', location.href).href;
        const loads = [];
        for (const id of [1, 2]) loads.push(await settle(() => call({ id, op: 'load', modelUrl, backend: 'cpu' })));
        const embedded = await settle(() => call({ id: 3, op: 'embed', texts: [text] }));
        worker.terminate();
        return {
          loads: loads.map((l) => (l.ok ? { ok: l.value.ok, error: l.value.error } : l)),
          cachedEvents: progress.filter((p) => p.cached).length,
          stored: (await (await caches.open(name)).keys()).length,
          vector: embedded.ok && embedded.value.ok ? Array.from(embedded.value.result.vectors) : embedded,
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

const INSECURE = 'in an insecure context (no Cache API, no crypto.subtle) a folder without a manifest loads ' +
  'from the network; one with a manifest says why it cannot be checked';
test(INSECURE, { timeout: 300_000 }, async () => {
  // A name other than localhost or 127.0.0.1 over http is not a secure context.
  const insecure = await launch(['--host-resolver-rules=MAP insecure.test 127.0.0.1']);
  try {
    const { port } = served.server.address();
    const { page, errors } = await openPage(insecure, `http://insecure.test:${port}/test-fixtures/blank.html`);
    const context = await page.evaluate(() => ({ secure: isSecureContext, caches: typeof caches, subtle: typeof crypto.subtle }));
    assert.deepEqual(context, { secure: false, caches: 'undefined', subtle: 'undefined' });

    const plain = await loadAndEmbed(page, '/f32-copy/');
    assert.ok(plain.loaded.ok, JSON.stringify(plain.loaded));
    assertGolden(plain.vectors);
    assert.ok(plain.progress.every((p) => !p.cached));

    const checked = await loadAndEmbed(page, '/model/');
    assert.equal(checked.loaded.code, 'localrec/integrity', JSON.stringify(checked.loaded));
    assert.match(checked.loaded.message, /cannot check .*\/model\/\S+ against the model manifest: .*secure context/);
    assert.deepEqual(errors, []);
  } finally {
    await insecure.close();
  }
});

// Bad input through the public JS API in real headless Chromium: each case either
// resolves with a correct result or rejects with a LocalrecError carrying a stable code
// and a message saying what was wrong, never hangs (window.settle reports a hang), and
// leaves the encoder, or a new one in the same page, working.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readFileSync, promises as fs } from 'node:fs';
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
  WEB_MODEL,
  CACHE_NAME,
} from './helpers.mjs';

const hello = golden().find((l) => l.text === 'Hello world');
const WEIGHTS = path.join(WEB_MODEL, 'model.safetensors');
const WEIGHT_BYTES = webManifest()['model.safetensors'].bytes;
// How much of the weights the server sends before it drops the connection.
const CUT_AT = 4 << 20;

let served;
let browser;
let page;
let errors;
const tempDirs = {};

before(async () => {
  const weights = readFileSync(WEIGHTS);
  const truncated = weights.subarray(0, weights.length >> 1);
  const gpt2 = JSON.stringify({
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_embd: 768,
    n_layer: 12,
    n_head: 12,
    vocab_size: 50257,
  });
  tempDirs.truncated = await modelCopy(WEB_MODEL, { 'model.safetensors': truncated });
  tempDirs.truncatedNoManifest = await modelCopy(WEB_MODEL, { 'model.safetensors': truncated, 'manifest.json': null });
  tempDirs.gpt2 = await modelCopy(WEB_MODEL, { 'config.json': gpt2, 'manifest.json': null });
  tempDirs.badManifest = await modelCopy(WEB_MODEL, { 'manifest.json': '{"files": [' });
  served = await serveDemo({
    mounts: [
      { url: '/truncated', dir: tempDirs.truncated },
      { url: '/truncated-no-manifest', dir: tempDirs.truncatedNoManifest },
      { url: '/gpt2', dir: tempDirs.gpt2 },
      { url: '/bad-manifest', dir: tempDirs.badManifest },
      { url: '/cut', dir: WEB_MODEL },
    ],
    // The weights under /cut: a full Content-Length, CUT_AT bytes, then a dropped connection.
    intercept(req, res) {
      if (req.method !== 'GET' || new URL(req.url, 'http://localhost').pathname !== '/cut/model.safetensors') return false;
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(WEIGHT_BYTES) });
      const stream = createReadStream(WEIGHTS, { start: 0, end: CUT_AT - 1 });
      stream.on('data', (chunk) => res.write(chunk));
      stream.on('end', () => setTimeout(() => res.socket?.destroy(), 200));
      return true;
    },
  });
  browser = await launch();
  ({ page, errors } = await openPage(browser, served.blank));
  const loaded = await page.evaluate(async () => {
    const { Encoder } = await import('/pkg/index.js');
    const outcome = await settle(() => Encoder.load('/model/', { backend: 'cpu' }));
    window.enc = outcome.value;
    return { ok: outcome.ok, code: outcome.code, message: outcome.message };
  });
  assert.ok(loaded.ok, JSON.stringify(loaded));
});

after(async () => {
  await browser?.close();
  stopServer(served?.server);
  for (const dir of Object.values(tempDirs)) await fs.rm(dir, { recursive: true, force: true });
});

/** Runs `fn(enc, arg)` in the page through settle(); vectors come back as plain arrays. */
function call(fn, arg) {
  return page.evaluate(
    async ({ source, arg }) => {
      const fn = new Function(`return (${source})`)();
      const outcome = await settle(() => fn(window.enc, arg));
      if (outcome.ok && outcome.value instanceof Float32Array) {
        return { ok: true, float32: true, value: Array.from(outcome.value) };
      }
      return outcome;
    },
    { source: fn.toString(), arg },
  );
}

/** The rejection a bad call should give: a LocalrecError with `code`, message matching `pattern`. */
function assertRejects(outcome, code, pattern, label = '') {
  const what = label ? `${label}: ` : '';
  assert.ok(!outcome.hung, `${what}the promise never settled`);
  assert.equal(outcome.ok, false, `${what}expected a rejection, got ${JSON.stringify(outcome).slice(0, 200)}`);
  assert.equal(outcome.isError, true, `${what}rejects with an Error`);
  assert.equal(outcome.name, 'LocalrecError', what);
  assert.equal(outcome.code, code, `${what}${outcome.message}`);
  assert.match(outcome.message, pattern, what);
  assert.match(outcome.message, /^[^A-Z]/, `${what}messages start in lower case`);
}

/** The shared encoder still embeds a golden text correctly. */
async function assertStillWorks() {
  const out = await call((enc, text) => enc.embed([text]), hello.text);
  assert.ok(out.ok, `the encoder stopped working: ${JSON.stringify(out)}`);
  assert.ok(cosine(out.value, hello.embedding) >= 0.999);
}

function row(values, i) {
  return values.slice(i * 384, (i + 1) * 384);
}

test('an empty batch resolves to an empty Float32Array (and no token lists)', async () => {
  const out = await call(async (enc) => {
    const vectors = await enc.embed([]);
    return { isFloat32: vectors instanceof Float32Array, length: vectors.length, ids: await enc.tokenize([]) };
  });
  assert.deepEqual(out, { ok: true, value: { isFloat32: true, length: 0, ids: [] } });
  await assertStillWorks();
});

test('an empty string embeds as [CLS] [SEP], without disturbing the rest of its batch', async () => {
  const ids = await call((enc) => enc.tokenize(['']));
  assert.deepEqual(ids, { ok: true, value: [[101, 102]] });
  const out = await call((enc, text) => enc.embed(['', text]), hello.text);
  assert.ok(out.ok, JSON.stringify(out));
  assert.equal(out.value.length, 2 * 384);
  const empty = row(out.value, 0);
  assert.ok(empty.every(Number.isFinite));
  assert.ok(Math.abs(Math.hypot(...empty) - 1) < 1e-4, 'unit length');
  assert.ok(cosine(row(out.value, 1), hello.embedding) >= 0.999);
});

test('a 100,000-character text is truncated to 256 tokens, like the same text cut short', async () => {
  const long = 'a quiet space drama with a lonely hero, '.repeat(2500).slice(0, 100_000);
  assert.equal(long.length, 100_000);
  const out = await call(
    async (enc, { long, text }) => {
      const ids = await enc.tokenize([long, long.slice(0, 3000)]);
      const vectors = Array.from(await enc.embed([long, long.slice(0, 3000), text]));
      return { ids, vectors };
    },
    { long, text: hello.text },
  );
  assert.ok(out.ok, JSON.stringify(out).slice(0, 300));
  const [longIds, shortIds] = out.value.ids;
  assert.equal(longIds.length, 256);
  assert.deepEqual([longIds[0], longIds.at(-1)], [101, 102]);
  assert.deepEqual(longIds, shortIds, 'only the first 254 word pieces count');
  assert.ok(cosine(row(out.value.vectors, 0), row(out.value.vectors, 1)) >= 0.9999);
  assert.ok(cosine(row(out.value.vectors, 2), hello.embedding) >= 0.999);
});

test('lone UTF-16 surrogates are read as U+FFFD, as TextEncoder does', async () => {
  const broken = ['\ud800', 'Toy \udc00Story', 'drama\ud83d'];
  const fixed = ['\ufffd', 'Toy \ufffdStory', 'drama\ufffd'];
  const out = await call(
    async (enc, { broken, fixed }) => ({
      ids: await enc.tokenize(broken),
      fixedIds: await enc.tokenize(fixed),
      vectors: Array.from(await enc.embed(broken)),
      fixedVectors: Array.from(await enc.embed(fixed)),
    }),
    { broken, fixed },
  );
  assert.ok(out.ok, JSON.stringify(out).slice(0, 300));
  assert.deepEqual(out.value.ids, out.value.fixedIds);
  assert.deepEqual(out.value.ids[1].slice(0, 1), [101]);
  assert.ok(out.value.ids[1].length > 2, 'the rest of the text is kept');
  broken.forEach((_, i) => {
    assert.ok(cosine(row(out.value.vectors, i), row(out.value.fixedVectors, i)) >= 0.99999, `text ${i}`);
  });
  await assertStillWorks();
});

test('items that are not strings reject with localrec/input naming the item', async () => {
  const cases = {
    number: '[ "ok", 42 ]',
    null: '[ null ]',
    undefined: '[ "ok", undefined ]',
    hole: '[ "ok", , "ok" ]',
    object: '[ {} ]',
    boxedString: '[ new String("boxed") ]',
    nested: '[ ["nested"] ]',
    function: '[ () => 1 ]',
    symbol: '[ Symbol("s") ]',
    bigint: '[ 1n ]',
  };
  for (const [name, source] of Object.entries(cases)) {
    for (const method of ['embed', 'tokenize']) {
      const out = await call(
        (enc, { source, method }) => enc[method](new Function(`return ${source}`)()),
        { source, method },
      );
      assertRejects(out, 'localrec/input', new RegExp(`^${method}\\(\\): text \\d is .+, not a string$`), `${method} ${name}`);
    }
  }
  const notArrays = [
    ['"Toy Story"', 'a string'],
    ['null', 'null'],
    ['undefined', 'undefined'],
    ['({ length: 1, 0: "a" })', 'an object'],
  ];
  for (const [source, what] of notArrays) {
    for (const method of ['embed', 'tokenize']) {
      const out = await call((enc, { source, method }) => enc[method](new Function(`return ${source}`)()), { source, method });
      assertRejects(out, 'localrec/input', new RegExp(`^${method}\\(\\) takes an array of strings, not ${what}$`), `${method} ${source}`);
    }
  }
  await assertStillWorks();
});

test('a text over 1 MiB rejects with localrec/input saying how long it was', async () => {
  const out = await call((enc) => enc.embed(['fine', 'x'.repeat(2 << 20)]));
  assertRejects(out, 'localrec/input', /text 1.*2097152 bytes/);
  await assertStillWorks();
});

test('a batch size that is not a whole number >= 1 rejects with localrec/input; 1 works', async () => {
  for (const batchSize of [0, -1, 1.5, NaN, '8']) {
    const out = await call((enc, batchSize) => enc.embed(['a'], { batchSize }), batchSize);
    assertRejects(out, 'localrec/input', /batchSize must be a whole number >= 1/, `batchSize ${String(batchSize)}`);
  }
  const out = await call((enc, text) => enc.embed([text, 'a second text'], { batchSize: 1 }), hello.text);
  assert.ok(out.ok, JSON.stringify(out));
  assert.ok(cosine(row(out.value, 0), hello.embedding) >= 0.999);
});

/** Loads `modelPath` in the shared page; on failure, proves a new encoder still loads and works. */
async function loadFailure(modelPath, options = {}) {
  const out = await page.evaluate(async ({ modelPath, cacheName, options }) => {
    const { Encoder } = await import('/pkg/index.js');
    const progress = [];
    const outcome = await settle(() => Encoder.load(modelPath, { backend: 'cpu', backoffMs: 10, ...options, onProgress: (p) => progress.push(p) }));
    const cached = (await (await caches.open(cacheName)).keys()).map((r) => new URL(r.url).pathname);
    return { outcome: { ...outcome, value: undefined }, progress, cached };
  }, { modelPath, cacheName: CACHE_NAME, options });
  const fresh = await page.evaluate(async (text) => {
    const { Encoder } = await import('/pkg/index.js');
    return settle(async () => {
      const enc = await Encoder.load('/model/', { backend: 'cpu' });
      const vectors = Array.from(await enc.embed([text]));
      await enc.close();
      return vectors;
    });
  }, hello.text);
  assert.ok(fresh.ok, `a new encoder in the same page failed: ${JSON.stringify(fresh)}`);
  assert.ok(cosine(fresh.value, hello.embedding) >= 0.999);
  return out;
}

test('a wrong model URL (404) rejects naming the file and the status: localrec/integrity without a manifest, localrec/network unverified', async () => {
  const { outcome } = await loadFailure('/no-such-model/');
  assertRejects(outcome, 'localrec/integrity', /\/no-such-model\/manifest\.json answered HTTP 404/);
  const unverified = await loadFailure('/no-such-model/', { allowUnverified: true });
  assertRejects(unverified.outcome, 'localrec/network', /\/no-such-model\/[\w.]+ answered HTTP 404/);
});

test('truncated weights, checked against the manifest, reject with localrec/integrity and are not cached', async () => {
  const { outcome, cached } = await loadFailure('/truncated/');
  const says = `is ${WEIGHT_BYTES >> 1} bytes; its manifest says ${WEIGHT_BYTES}`;
  assertRejects(outcome, 'localrec/integrity', new RegExp(`/truncated/model\\.safetensors ${says}`));
  assert.ok(!cached.includes('/truncated/model.safetensors'), `cached: ${cached}`);
});

test('truncated weights without a manifest, loaded unverified, reject with localrec/weights', async () => {
  const { outcome } = await loadFailure('/truncated-no-manifest/', { allowUnverified: true });
  assertRejects(outcome, 'localrec/weights', /safetensors|weights/i);
});

test('a config.json of another architecture (gpt2) rejects with localrec/config naming it', async () => {
  const { outcome } = await loadFailure('/gpt2/', { allowUnverified: true });
  assertRejects(outcome, 'localrec/config', /model_type `gpt2` is not a bert-family encoder/);
});

test('a manifest that is not JSON rejects with localrec/config naming the manifest', async () => {
  const { outcome } = await loadFailure('/bad-manifest/');
  assertRejects(outcome, 'localrec/config', /\/bad-manifest\/manifest\.json is not valid JSON/);
});

test('a download cut mid-way every time is retried, then rejects with localrec/network, and the partial file is not cached', async () => {
  const { outcome, progress, cached } = await loadFailure('/cut/');
  assertRejects(outcome, 'localrec/network', new RegExp(`/cut/model\\.safetensors was cut after \\d+ of ${WEIGHT_BYTES} bytes`));
  const weights = progress.filter((p) => p.file?.endsWith('/cut/model.safetensors'));
  assert.ok(weights.length > 1, 'progress was reported while the download ran');
  assert.ok(weights.at(-1).loaded <= CUT_AT);
  assert.ok(!cached.includes('/cut/model.safetensors'), `cached: ${cached}`);
});

test('a closed encoder rejects with localrec/closed; the page has had no uncaught errors', async () => {
  const out = await page.evaluate(async (text) => {
    const { Encoder } = await import('/pkg/index.js');
    const enc = await Encoder.load('/model/', { backend: 'cpu' });
    await enc.close();
    await enc.close();
    return settle(() => enc.embed([text]));
  }, hello.text);
  assertRejects(out, 'localrec/closed', /the encoder was closed/);
  await assertStillWorks();
  assert.deepEqual(errors, []);
});

// The demo page in real headless Chromium: the encoder loads through the public JS API in
// a Web Worker, encodes what the user types, and matches sentence-transformers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDemo, launch, golden, cosine } from './helpers.mjs';

let server;
let url;
let browser;

before(async () => {
  ({ server, url } = await serveDemo());
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.close();
});

test('typing a text in the demo shows its vector and timing, matching the golden embedding', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
  const g = golden().find((l) => l.text.startsWith('Toy Story'));
  await page.fill('#text', g.text);
  await page.click('#encode');
  await page.waitForSelector('#vector', { timeout: 60_000 });
  const values = JSON.parse(await page.getAttribute('#result', 'data-values'));
  assert.equal(values.length, 8);
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(values[i] - g.embedding[i]) < 2e-3, `component ${i}`);
  assert.match(await page.textContent('#result'), /384-d vector in [\d.]+ ms/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the f16 web copy in the browser (cpu) gives exact token ids and cosine >= 0.999 on all golden texts', async () => {
  const page = await browser.newPage();
  await page.goto(url);
  const lines = golden();
  const out = await page.evaluate(async (texts) => {
    const { Encoder } = await import('/pkg/index.js');
    const enc = await Encoder.load('/model/', { backend: 'cpu' });
    const ids = await enc.tokenize(texts);
    const vectors = Array.from(await enc.embed(texts));
    const info = { backend: enc.backend, dims: enc.dims };
    await enc.close();
    return { ids, vectors, info };
  }, lines.map((l) => l.text));
  assert.deepEqual(out.info, { backend: 'cpu', dims: 384 });
  lines.forEach((l, i) => {
    assert.deepEqual(out.ids[i], l.input_ids, `token ids of ${JSON.stringify(l.text)}`);
    const c = cosine(out.vectors.slice(i * 384, (i + 1) * 384), l.embedding);
    assert.ok(c >= 0.999, `cosine ${c} for ${JSON.stringify(l.text)}`);
  });
  await page.close();
});

test('a wrong model URL rejects with a coded error and the page keeps working', async () => {
  const page = await browser.newPage();
  await page.goto(url);
  const result = await page.evaluate(async () => {
    const { Encoder } = await import('/pkg/index.js');
    try {
      await Encoder.load('/no-such-model/');
      return { ok: true };
    } catch (e) {
      return { ok: false, code: e.code, message: e.message };
    }
  });
  assert.equal(result.ok, false);
  assert.equal(result.code, 'localrec/network');
  assert.match(result.message, /404/);
  await page.close();
});

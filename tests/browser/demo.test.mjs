// The demo page in real headless Chromium: the encoder loads through the public JS API in
// a Web Worker, encodes what the user types, and matches sentence-transformers. Parity on
// every golden text is in parity.test.mjs, failures in bad-input.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDemo, launch, stopServer, golden } from './helpers.mjs';

let server;
let url;
let browser;

before(async () => {
  ({ server, url } = await serveDemo());
  browser = await launch();
});

after(async () => {
  await browser?.close();
  stopServer(server);
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

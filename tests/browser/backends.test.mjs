// Backend choice in real headless Chromium: 'auto' times both backends and keeps the
// faster, a lost WebGPU device moves a pending call to the CPU instead of failing it, and
// a browser without WebGPU gets a coded error when WebGPU is forced and the CPU on 'auto'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sharedBrowser, launch, openPage, golden, cosine, CHROMIUM_ARGS } from './helpers.mjs';

const session = sharedBrowser();

test("'auto' times both backends on the same batch and keeps the faster", { timeout: 600_000 }, async () => {
  const { page, errors } = await openPage(session.browser, session.served.blank);
  const out = await page.evaluate(async () => {
    const { Encoder } = await import('/pkg/index.js');
    // Here the only adapter is SwiftShader, a fallback adapter: asked to time it anyway.
    const enc = await Encoder.load('/model/', { backend: 'auto', timeFallbackAdapter: true });
    const result = { backend: enc.backend, calibration: enc.calibration, adapter: enc.adapter };
    await enc.close();
    return result;
  });
  await page.close();
  const { calibration } = out;
  assert.ok(calibration, 'auto reports its calibration');
  assert.equal(calibration.chosen, out.backend);
  assert.ok(calibration.cpu.sentencesPerSecond > 0 && calibration.cpu.texts === 8, JSON.stringify(calibration.cpu));
  if (calibration.webgpu.error) {
    // WebGPU could not be timed (here: SwiftShader may be too slow to start): the CPU wins.
    assert.equal(out.backend, 'cpu');
    assert.match(calibration.reason, /webgpu unusable/);
  } else {
    assert.ok(calibration.webgpu.sentencesPerSecond > 0);
    const faster = calibration.webgpu.sentencesPerSecond > calibration.cpu.sentencesPerSecond ? 'webgpu' : 'cpu';
    assert.equal(out.backend, faster, JSON.stringify(calibration));
  }
  assert.equal(out.adapter !== null, out.backend === 'webgpu');
  assert.deepEqual(errors, []);
});

test("'auto' skips a fallback (CPU-emulated) WebGPU adapter without fetching the WebGPU module", { timeout: 600_000 }, async () => {
  const { page, errors } = await openPage(session.browser, session.served.blank);
  const requested = [];
  page.context().on('request', (r) => requested.push(r.url()));
  const out = await page.evaluate(async () => {
    const adapter = await navigator.gpu?.requestAdapter();
    const fallback = Boolean(adapter && (adapter.isFallbackAdapter ?? adapter.info?.isFallbackAdapter));
    const { Encoder } = await import('/pkg/index.js');
    const enc = await Encoder.load('/model/', { backend: 'auto' });
    const result = { fallback, backend: enc.backend, calibration: enc.calibration };
    await enc.close();
    return result;
  });
  await page.close();
  // This machine's Chromium offers SwiftShader only; elsewhere the rule is not exercised.
  assert.ok(out.fallback, 'this test needs a fallback adapter (headless Chromium with SwiftShader)');
  assert.equal(out.backend, 'cpu');
  assert.match(out.calibration.webgpu.skipped, /fallback/);
  assert.match(out.calibration.reason, /cpu-emulated/);
  assert.ok(out.calibration.cpu.sentencesPerSecond > 0);
  assert.deepEqual(requested.filter((u) => u.includes('localrec_webgpu')), []);
  assert.deepEqual(errors, []);
});

test('a WebGPU device lost during embed() completes the call on the CPU with correct vectors', { timeout: 600_000 }, async () => {
  const { page, errors } = await openPage(session.browser, session.served.blank);
  const lines = golden();
  const texts = lines.map((l) => l.text);
  const out = await page.evaluate(async (texts) => {
    const { Encoder } = await import('/pkg/index.js');
    // The fixture destroys the WebGPU device as the first embed() arrives, as a driver reset would.
    const enc = await Encoder.load('/model/', { backend: 'webgpu', workerUrl: '/test-fixtures/encoder-fault-worker.js?fault=lose-device' });
    const before = enc.backend;
    const many = Array.from({ length: 4 }, () => texts).flat();
    const vectors = await settle(() => enc.embed(many), 300_000);
    const after = { backend: enc.backend, fallbackReason: enc.fallbackReason };
    // The encoder keeps working on the CPU afterwards.
    const again = Array.from(await enc.embed(texts.slice(0, 2)));
    await enc.close();
    return { before, vectors: vectors.ok ? Array.from(vectors.value) : vectors, after, again };
  }, texts);
  await page.close();
  assert.equal(out.before, 'webgpu');
  assert.ok(Array.isArray(out.vectors), `the pending call settled with ${JSON.stringify(out.vectors)}`);
  assert.equal(out.vectors.length, 4 * lines.length * 384);
  lines.forEach((l, i) => {
    const c = cosine(out.vectors.slice(i * 384, (i + 1) * 384), l.embedding);
    assert.ok(c >= 0.999, `cosine ${c} for ${JSON.stringify(l.text)}`);
  });
  assert.equal(out.after.backend, 'cpu');
  assert.match(out.after.fallbackReason, /webgpu/);
  assert.ok(cosine(out.again.slice(0, 384), lines[0].embedding) >= 0.999);
  // The loss is reported on the console by the wasm's panic hook at most; no page error.
  assert.deepEqual(errors.filter((e) => !/internal error/.test(e)), []);
});

test('without WebGPU, forcing it rejects with localrec/backend-unavailable and auto uses the CPU', { timeout: 600_000 }, async () => {
  const noGpu = await launch([], CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu').concat('--disable-webgpu'));
  try {
    const { page, errors } = await openPage(noGpu, session.served.blank);
    const out = await page.evaluate(async () => {
      const { Encoder } = await import('/pkg/index.js');
      const forced = await settle(() => Encoder.load('/model/', { backend: 'webgpu' }), 120_000);
      const enc = await Encoder.load('/model/', { backend: 'auto' });
      const v = Array.from(await enc.embed(["Toy Story (1995)"]));
      const result = { forced, backend: enc.backend, calibration: enc.calibration, norm: Math.hypot(...v) };
      await enc.close();
      return result;
    });
    await page.close();
    assert.equal(out.forced.ok, false);
    assert.equal(out.forced.code, 'localrec/backend-unavailable');
    assert.match(out.forced.message, /webgpu/i);
    assert.equal(out.backend, 'cpu');
    assert.ok(out.calibration.webgpu.error, JSON.stringify(out.calibration));
    assert.ok(Math.abs(out.norm - 1) < 1e-3);
    assert.deepEqual(errors, []);
  } finally {
    await noGpu.close();
  }
});

// Parity with sentence-transformers in real headless Chromium, through the public JS API:
// every golden text gets exactly sentence-transformers' token ids and an embedding at
// (nearly) the same direction, for each model folder on each backend forced by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sharedBrowser, openPage, golden, cosine } from './helpers.mjs';

const MODELS = [
  // f16 weights lose about three decimal digits, hence the looser bound.
  { name: 'the f16 web copy', path: '/model/', minCosine: 0.999 },
  // It has no manifest.json: loading it unchecked is the page's explicit choice.
  { name: 'the original f32 folder', path: '/model-f32/', minCosine: 0.9999, allowUnverified: true },
];
const BACKENDS = ['cpu', 'webgpu'];

const session = sharedBrowser();

for (const backend of BACKENDS) {
  for (const model of MODELS) {
    test(`${model.name} on ${backend}: exact token ids and cosine >= ${model.minCosine} on all golden texts`, { timeout: 600_000 }, async (t) => {
      const { page, errors } = await openPage(session.browser, session.served.blank);
      const lines = golden();
      const out = await page.evaluate(
        async ({ modelPath, backend, texts, allowUnverified }) => {
          const { Encoder } = await import('/pkg/index.js');
          const loaded = await settle(() => Encoder.load(modelPath, { backend, allowUnverified }), 300_000);
          if (!loaded.ok) return { loaded };
          const enc = loaded.value;
          const ids = await enc.tokenize(texts);
          const vectors = Array.from(await enc.embed(texts));
          const info = { backend: enc.backend, dims: enc.dims, onGpu: enc.adapter !== null };
          await enc.close();
          return { loaded: { ok: true }, ids, vectors, info };
        },
        { modelPath: model.path, backend, texts: lines.map((l) => l.text), allowUnverified: Boolean(model.allowUnverified) },
      );
      await page.close();
      // Chromium here has a WebGPU adapter (SwiftShader with --enable-unsafe-webgpu): a
      // forced WebGPU that does not load is a failure, unless the machine is declared to
      // have none.
      if (backend === 'webgpu' && out.loaded.code === 'localrec/backend-unavailable' && process.env.LOCALREC_NO_WEBGPU) {
        t.skip(`webgpu is not available in this browser: ${out.loaded.message}`);
        return;
      }
      assert.ok(out.loaded.ok, `loading ${model.path} on ${backend}: ${JSON.stringify(out.loaded)}`);
      assert.deepEqual(out.info, { backend, dims: 384, onGpu: backend === 'webgpu' });
      lines.forEach((l, i) => {
        assert.deepEqual(out.ids[i], l.input_ids, `token ids of ${JSON.stringify(l.text)}`);
        const c = cosine(out.vectors.slice(i * 384, (i + 1) * 384), l.embedding);
        assert.ok(c >= model.minCosine, `cosine ${c} for ${JSON.stringify(l.text)}`);
      });
      assert.deepEqual(errors, []);
    });
  }
}

// Chromium loads the relaxed-SIMD build; engines without relaxed SIMD get the simd128
// build, whose dense kernel is hand-scheduled too (scripts/dense-kernel.mjs). It is loaded
// here directly, beside the relaxed one, on the original f32 weights.
test('the simd128 build (engines without relaxed SIMD): cosine >= 0.9999 on all golden texts, and the relaxed build agrees', { timeout: 600_000 }, async () => {
  const { page, errors } = await openPage(session.browser, session.served.blank);
  const lines = golden();
  const out = await page.evaluate(async (texts) => {
    const get = async (f) => new Uint8Array(await (await fetch(`/model-f32/${f}`)).arrayBuffer());
    const files = ['config.json', 'tokenizer.json', 'model.safetensors', 'sentence_bert_config.json'];
    // sentence_bert_config.json carries the model's max_seq_length (256), as the worker passes it.
    const [config, tokenizer, weights, sentence] = await Promise.all(files.map(get));
    const vectors = {};
    for (const build of ['localrec_wasm_bg.wasm', 'localrec_wasm_relaxed_bg.wasm']) {
      // A query string gives each build its own instance of the glue module.
      const glue = await import(`/pkg/wasm/localrec_wasm.js?${build}`);
      await glue.default({ module_or_path: `/pkg/wasm/${build}` });
      const enc = glue.WasmEncoder.loadCpu(config, tokenizer, weights, sentence);
      vectors[build] = Array.from(await enc.embed(texts, 32));
    }
    return vectors;
  }, lines.map((l) => l.text));
  await page.close();
  const plain = out['localrec_wasm_bg.wasm'];
  const relaxed = out['localrec_wasm_relaxed_bg.wasm'];
  lines.forEach((l, i) => {
    const row = (v) => v.slice(i * 384, (i + 1) * 384);
    const c = cosine(row(plain), l.embedding);
    assert.ok(c >= 0.9999, `simd128 build: cosine ${c} for ${JSON.stringify(l.text)}`);
    const both = cosine(row(plain), row(relaxed));
    assert.ok(both >= 0.99999, `simd128 vs relaxed build: cosine ${both} for ${JSON.stringify(l.text)}`);
  });
  assert.deepEqual(errors, []);
});

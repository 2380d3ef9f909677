// The Web Worker behind `Encoder`: downloads the model files (with progress, checked
// against the model manifest's SHA-256 when there is one), loads the wasm encoder and
// runs every embedding off the page's main thread.
//
// Protocol: the page posts {id, op, ...}; the worker answers {id, ok: true, result} or
// {id, ok: false, error: {code, message}}, and streams {id, progress: {...}} meanwhile.
import init, { WasmEncoder } from './wasm/localrec_wasm.js';

let wasmReady = null;
let encoder = null;

function fail(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

async function fetchBytes(url, phase, report, { optional = false, expect = null } = {}) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw fail('localrec/network', `cannot fetch ${url}: ${e.message}`);
  }
  if (!res.ok) {
    if (optional && res.status === 404) return null;
    throw fail('localrec/network', `fetching ${url} answered HTTP ${res.status}`);
  }
  const total = expect?.bytes ?? (Number(res.headers.get('content-length')) || 0);
  const chunks = [];
  let loaded = 0;
  const reader = res.body.getReader();
  for (;;) {
    let step;
    try {
      step = await reader.read();
    } catch (e) {
      throw fail('localrec/network', `download of ${url} was cut after ${loaded} bytes: ${e.message}`);
    }
    if (step.done) break;
    chunks.push(step.value);
    loaded += step.value.byteLength;
    report({ phase, file: url, loaded, total });
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  if (expect) {
    if (bytes.byteLength !== expect.bytes) {
      throw fail('localrec/integrity', `${url} is ${bytes.byteLength} bytes; the manifest says ${expect.bytes}`);
    }
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
    if (hex !== expect.sha256) {
      throw fail('localrec/integrity', `${url} does not match the SHA-256 in the model manifest`);
    }
  }
  return bytes;
}

async function load({ modelUrl, backend }, report) {
  if (backend === 'webgpu') {
    throw fail('localrec/backend-unavailable', 'the webgpu backend is not in this build yet; use backend "cpu" or "auto"');
  }
  wasmReady ??= init();
  await wasmReady;
  const base = modelUrl.endsWith('/') ? modelUrl : modelUrl + '/';
  const manifestBytes = await fetchBytes(base + 'manifest.json', 'manifest', report, { optional: true });
  let entries = {};
  if (manifestBytes) {
    try {
      const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
      for (const f of manifest.files ?? []) entries[f.path] = f;
    } catch (e) {
      throw fail('localrec/config', `the model manifest is not valid JSON: ${e.message}`);
    }
  }
  const get = (name, optional = false) =>
    fetchBytes(base + name, name === 'model.safetensors' ? 'weights' : 'model', report, {
      optional,
      expect: entries[name] ?? null,
    });
  const [config, tokenizer, sentence, weights] = await Promise.all([
    get('config.json'),
    get('tokenizer.json'),
    get('sentence_bert_config.json', true),
    get('model.safetensors'),
  ]);
  report({ phase: 'init', loaded: 0, total: 0 });
  const started = performance.now();
  encoder?.free();
  encoder = WasmEncoder.loadCpu(config, tokenizer, weights, sentence ?? undefined);
  return { backend: 'cpu', dims: encoder.dims, initMs: performance.now() - started };
}

function embed({ texts, batchSize }) {
  if (!encoder) throw fail('localrec/closed', 'the encoder is not loaded');
  if (!Array.isArray(texts)) throw fail('localrec/input', 'embed() takes an array of strings');
  const started = performance.now();
  const vectors = encoder.embed(texts, batchSize);
  return { vectors, ms: performance.now() - started };
}

function tokenize({ texts }) {
  if (!encoder) throw fail('localrec/closed', 'the encoder is not loaded');
  return encoder.tokenize(texts).map((ids) => Array.from(ids));
}

self.onmessage = async (event) => {
  const { id, op } = event.data;
  const report = (progress) => self.postMessage({ id, progress });
  try {
    let result;
    if (op === 'load') result = await load(event.data, report);
    else if (op === 'embed') result = embed(event.data);
    else if (op === 'tokenize') result = tokenize(event.data);
    else if (op === 'close') {
      encoder?.free();
      encoder = null;
      result = null;
    } else throw fail('localrec/input', `unknown operation ${op}`);
    const transfer = result?.vectors ? [result.vectors.buffer] : [];
    self.postMessage({ id, ok: true, result }, transfer);
  } catch (e) {
    self.postMessage({
      id,
      ok: false,
      error: { code: e?.code ?? 'localrec/internal', message: String(e?.message ?? e) },
    });
  }
};

// The Web Worker behind `Encoder` and `Catalog`: gets the model files (fetch.js:
// progress, the model manifest's SHA-256, the Cache API), loads the wasm encoder and
// runs every embedding off the page's main thread; streams a catalog's shards into the
// wasm store (catalog.js) and answers queries on it.
//
// Protocol: the page posts {id, op, ...}; the worker answers {id, ok: true, result} or
// {id, ok: false, error: {code, message}}, and streams {id, progress: {...}} meanwhile;
// a loading catalog also posts {event: 'catalog', status} as its shards arrive.
import init, { WasmCatalog, WasmEncoder } from './wasm/localrec_wasm.js';
import { CatalogLoader, DEFAULT_MAX_BYTES, fetchManifest } from './catalog.js';
import { fail, fetchModelFiles, sha256 } from './fetch.js';
import WASM_DIGESTS from './wasm/digests.js';

// A minimal module using i8x16.relaxed_swizzle: it validates only where the engine has
// relaxed SIMD, and then the build whose dense kernel uses fused multiply-add is loaded.
const RELAXED_SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253,
  15, 253, 128, 2, 11,
]);
const relaxedSimd = (() => {
  try {
    return WebAssembly.validate(RELAXED_SIMD_PROBE);
  } catch {
    return false;
  }
})();

const WASM_CACHE = 'localrec-wasm-v1';

/**
 * The Response for one of our wasm modules, from Cache Storage when a verified copy of
 * this exact build is there (a returning visitor then compiles without downloading),
 * else from the network, cached after its SHA-256 matched the build's digest. Copies of
 * other builds are dropped. Without a usable Cache API it is a plain fetch.
 */
async function wasmResponse(file) {
  const url = new URL(`./wasm/${file}`, import.meta.url);
  const digest = WASM_DIGESTS[file];
  let cache = null;
  try {
    cache = await caches.open(WASM_CACHE);
  } catch {
    return fetch(url);
  }
  const key = `${url.href}?sha256=${digest}`;
  try {
    const hit = await cache.match(key);
    if (hit) return hit;
  } catch {
    // An unreadable cache is the same as an empty one.
  }
  const res = await fetch(url);
  if (!res.ok) throw fail('localrec/network', `fetching ${url.href} answered HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const hex = await sha256(bytes);
  if (digest && hex !== digest) throw fail('localrec/integrity', `${url.href} is not the wasm this package was built with`);
  const response = () => new Response(bytes, { headers: { 'content-type': 'application/wasm' } });
  try {
    for (const old of await cache.keys()) {
      if (old.url.startsWith(url.href) && old.url !== key) await cache.delete(old);
    }
    await cache.put(key, response());
  } catch {
    // Caching is an optimisation: quota or a closed cache must not fail the load.
  }
  return response();
}

/** Instantiates a wasm-bindgen module from `wasmResponse`, retrying once from the
 *  network when a cached copy fails to compile. */
async function instantiate(initFn, file) {
  try {
    return await initFn({ module_or_path: wasmResponse(file) });
  } catch (e) {
    try {
      const cache = await caches.open(WASM_CACHE);
      for (const old of await cache.keys()) if (old.url.includes(`/wasm/${file}`)) await cache.delete(old);
    } catch {
      throw e;
    }
    return initFn({ module_or_path: wasmResponse(file) });
  }
}

let wasmReady = null;

/** The CPU module (the relaxed-SIMD build where the engine has it), instantiated once. */
function cpuWasm() {
  const wasmFile = relaxedSimd ? 'localrec_wasm_relaxed_bg.wasm' : 'localrec_wasm_bg.wasm';
  return (wasmReady ??= instantiate(init, wasmFile).then((exports) => {
    instances.cpu = exports;
    return exports;
  }, (e) => {
    wasmReady = null;
    throw e;
  }));
}
let encoder = null;
// The GPUDevice wgpu asked for, captured so that its loss can be reported (and, for
// tests, provoked): a lost device leaves wgpu's pending reads unanswered, so the page
// must hear about it from here.
let gpuDevice = null;
let gpuAdapterInfo = null;

if (self.GPUAdapter?.prototype?.requestDevice) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    gpuDevice = device;
    const info = this.info ?? {};
    gpuAdapterInfo = { vendor: info.vendor ?? '', architecture: info.architecture ?? '', description: info.description ?? '' };
    device.lost.then((info) => {
      if (encoder?.backend === 'webgpu') {
        const why = info?.message || info?.reason || 'unknown reason';
        self.postMessage({ lost: `the webgpu device was lost (${why})` });
      }
    });
    return device;
  };
}

/** Short item strings, as a catalog would hold: what 'auto' times each backend on. */
const CALIBRATION_TEXTS = [
  "Toy Story (1995). Genres: Animation, Children's, Comedy",
  'Heat (1995). Genres: Action, Crime, Thriller',
  'Sense and Sensibility (1995). Genres: Drama, Romance',
  'a quiet space drama about a lonely engineer',
  'Twelve Monkeys (1995). Genres: Drama, Sci-Fi',
  'slow-burning detective story in a rainy city',
  'Babe (1995). Genres: Children\'s, Comedy, Drama',
  'Braveheart (1995). Genres: Action, Drama, War',
];

/** What the browser offers for WebGPU, from one adapter request: `why` it cannot be used
 *  (null when an adapter is available) and, when the adapter is a fallback
 *  (CPU-implemented) one, its `vendor/architecture` as `fallback`. */
async function probeWebGpu() {
  if (!self.navigator?.gpu) return { why: 'this browser exposes no WebGPU (navigator.gpu is missing)', fallback: null };
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { why: 'the browser offers no WebGPU adapter', fallback: null };
    const info = adapter.info ?? {};
    const isFallback = adapter.isFallbackAdapter ?? info.isFallbackAdapter;
    const fallback = isFallback ? [info.vendor, info.architecture].filter(Boolean).join('/') || 'unnamed adapter' : null;
    return { why: null, fallback };
  } catch (e) {
    return { why: `requesting a WebGPU adapter failed: ${e.message}`, fallback: null };
  }
}

let webgpuModule = null;
// The instantiated modules' exports, for `memory` (their linear memories).
const instances = {};

/** The WebGPU build, a separate and much larger module, imported on first use. */
async function webgpuWasm() {
  webgpuModule ??= (async () => {
    const module = await import('./wasm/localrec_webgpu.js');
    instances.webgpu = await instantiate(module.default, 'localrec_webgpu_bg.wasm');
    return module;
  })();
  try {
    return await webgpuModule;
  } catch (e) {
    webgpuModule = null;
    throw fail('localrec/network', `cannot load the webgpu module: ${e.message}`);
  }
}

/** Throws `localrec/backend-unavailable` unless a WebGPU adapter is available (per
 *  `probe`, or a fresh probe). */
async function requireWebGpu(probe) {
  const { why } = probe ?? (await probeWebGpu());
  if (why) throw fail('localrec/backend-unavailable', `webgpu: ${why}`);
}

/** Loads the model on WebGPU; the caller has checked for an adapter. */
async function loadWebGpu(files) {
  const { WasmEncoder: WebGpuEncoder } = await webgpuWasm();
  try {
    return await WebGpuEncoder.loadWebGpu(files.config, files.tokenizer, files.weights, files.sentence ?? undefined);
  } catch (e) {
    if (e?.code === 'localrec/backend') throw fail('localrec/backend-unavailable', e.message);
    throw e;
  }
}

/** Sentences per second on the calibration texts, after one untimed call (shader
 *  compilation, allocation). */
async function calibrate(candidate) {
  await candidate.embed(CALIBRATION_TEXTS.slice(0, 2));
  const started = performance.now();
  await candidate.embed(CALIBRATION_TEXTS);
  const ms = performance.now() - started;
  return { ms, sentencesPerSecond: (CALIBRATION_TEXTS.length * 1000) / ms, texts: CALIBRATION_TEXTS.length };
}

const withTimeout = (promise, ms, message) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(fail('localrec/timeout', message)), ms))]);

/**
 * 'auto': times the CPU first, then WebGPU within a budget tied to the CPU's time (a
 * CPU-emulated adapter can take many seconds to compile its shaders), keeps the faster.
 */
async function loadAuto(files, timeFallbackAdapter) {
  const cpu = WasmEncoder.loadCpu(files.config, files.tokenizer, files.weights, files.sentence ?? undefined);
  const calibration = { cpu: await calibrate(cpu) };
  // A fallback adapter is WebGPU implemented on the CPU (SwiftShader here): timing it
  // cost a 25 MB module, seconds of shader compilation, and CPU time taken from the CPU
  // backend it could not beat. It is skipped unless the page asks for it to be timed.
  const probe = await probeWebGpu();
  if (probe.fallback && !timeFallbackAdapter) {
    calibration.webgpu = { skipped: `the only webgpu adapter is a fallback (cpu-emulated) one: ${probe.fallback}` };
    calibration.chosen = 'cpu';
    calibration.reason = 'webgpu skipped: its adapter is cpu-emulated';
    return { encoder: cpu, calibration };
  }
  const budgetMs = Math.max(3000, 20 * calibration.cpu.ms);
  let gpu = null;
  let gpuWork = null;
  try {
    // Fetching and compiling the WebGPU module is network time, not backend speed: the
    // budget starts after it.
    await requireWebGpu(probe);
    await webgpuWasm();
    const loading = loadWebGpu(files);
    gpuWork = loading;
    gpu = await withTimeout(loading, budgetMs, `webgpu took over ${Math.round(budgetMs)} ms to start`);
    const timing = calibrate(gpu);
    gpuWork = timing.then(() => gpu);
    calibration.webgpu = await withTimeout(timing, budgetMs, `webgpu calibration took over ${Math.round(budgetMs)} ms`);
  } catch (e) {
    calibration.webgpu = { error: { code: e?.code ?? 'localrec/internal', message: String(e?.message ?? e) } };
  }
  const gpuWins = !calibration.webgpu.error && calibration.webgpu.sentencesPerSecond > calibration.cpu.sentencesPerSecond;
  if (gpuWins) {
    cpu.free();
    calibration.chosen = 'webgpu';
    calibration.reason = 'webgpu was faster on the calibration batch';
    return { encoder: gpu, calibration };
  }
  // WebGPU work that outlived its budget finishes in the background: free it then.
  gpuWork?.then((late) => late?.free(), () => {});
  calibration.chosen = 'cpu';
  calibration.reason = calibration.webgpu.error
    ? `webgpu unusable: ${calibration.webgpu.error.message}`
    : 'the cpu was faster on the calibration batch';
  return { encoder: cpu, calibration };
}

async function load({ modelUrl, backend, timeFallbackAdapter }, report) {
  // The CPU module compiles while the model files download (or come out of the cache):
  // on a warm start these two are most of the time to the first embedding.
  let wasm = null;
  if (backend !== 'webgpu') {
    wasm = cpuWasm();
    // Awaited below; this only keeps a failure while the files load from being reported
    // as unhandled.
    wasm.catch(() => {});
  }
  const files = await fetchModelFiles(modelUrl, report);
  await wasm;
  report({ phase: 'init', loaded: 0, total: 0 });
  const started = performance.now();
  encoder?.free();
  encoder = null;
  let calibration = null;
  if (backend === 'cpu') {
    encoder = WasmEncoder.loadCpu(files.config, files.tokenizer, files.weights, files.sentence ?? undefined);
  } else if (backend === 'webgpu') {
    await requireWebGpu();
    encoder = await loadWebGpu(files);
  } else {
    ({ encoder, calibration } = await loadAuto(files, timeFallbackAdapter));
  }
  return {
    backend: encoder.backend,
    dims: encoder.dims,
    initMs: performance.now() - started,
    calibration,
    relaxedSimd,
    // Proof that WebGPU is really in use: the adapter wgpu opened its device on.
    adapter: encoder.backend === 'webgpu' ? gpuAdapterInfo : null,
  };
}

async function embed({ texts, batchSize }) {
  if (!encoder) throw fail('localrec/closed', 'the encoder is not loaded');
  if (!Array.isArray(texts)) throw fail('localrec/input', 'embed() takes an array of strings');
  const started = performance.now();
  const vectors = await encoder.embed(texts, batchSize);
  return { vectors, ms: performance.now() - started };
}

function tokenize({ texts }) {
  if (!encoder) throw fail('localrec/closed', 'the encoder is not loaded');
  return encoder.tokenize(texts).map((ids) => Array.from(ids));
}

// A catalog: one per worker (the page's Catalog owns its worker). The loader keeps
// streaming shards after `open` has answered; queries read what has verified so far.
let catalog = null;

async function catalogOpen({ url, cache, retries, backoffMs, maxBytes, wait, backend }) {
  // Scoring on WebGPU needs the catalog in the WebGPU build; the CPU build otherwise.
  const gpu = backend === 'webgpu' || backend === 'auto';
  let probe = null;
  if (gpu) {
    probe = await probeWebGpu();
    if (probe.why && backend === 'webgpu') throw fail('localrec/backend-unavailable', `webgpu: ${probe.why}`);
  }
  // 'auto' leaves a CPU-emulated (fallback) adapter alone: it would be slower than the CPU.
  const useGpu = gpu && !probe.why && (backend === 'webgpu' || !probe.fallback);
  const wasm = useGpu ? webgpuWasm() : cpuWasm();
  wasm.catch(() => {});
  const bytes = await fetchManifest(url, { retries, backoffMs });
  const { WasmCatalog: Store } = useGpu ? await wasm : (await wasm, { WasmCatalog });
  const store = new Store(bytes, maxBytes ?? DEFAULT_MAX_BYTES);
  let scoring = 'cpu';
  // Why this backend scores, for backendInfo().
  let reason = backend === 'cpu' ? 'the CPU was asked for'
    : probe?.why ? `no usable WebGPU adapter (${probe.why})`
      : `the WebGPU adapter is a fallback (CPU-emulated) one, slower than the CPU`;
  if (useGpu) {
    try {
      await store.useWebGpu();
      if (store.takeWebGpu()) {
        scoring = 'webgpu';
        reason = backend === 'webgpu' ? 'WebGPU was asked for' : 'a hardware WebGPU adapter is present';
      }
    } catch (e) {
      if (backend === 'webgpu') {
        store.free();
        throw fail('localrec/backend-unavailable', `webgpu: ${e.message}`);
      }
      reason = `WebGPU failed to start (${e.message})`;
    }
  }
  const manifest = JSON.parse(store.manifestJson());
  catalogClose();
  const emit = (status) => self.postMessage({ event: 'catalog', status });
  const loader = new CatalogLoader(store, manifest, url, { cache, retries, backoffMs }, emit);
  catalog = { store, loader, manifest, scoring };
  let firstUsable;
  const first = new Promise((resolve) => (firstUsable = resolve));
  const all = loader.run(() => {
    if (JSON.parse(store.status()).itemsLoaded > 0) firstUsable();
  });
  all.then(firstUsable, firstUsable);
  emit(loader.status());
  if (wait === 'all') await all;
  else if (wait !== 'manifest') await first;
  return { manifest, status: loader.status(), scoring, scoringReason: reason };
}

function catalogClose() {
  if (!catalog) return;
  catalog.loader.close();
  // Freed once the loader has seen the abort; a query after close finds no catalog.
  const { store } = catalog;
  catalog = null;
  setTimeout(() => store.free(), 0);
}

function openCatalog() {
  if (!catalog) throw fail('localrec/closed', 'the catalog is closed');
  return catalog;
}

/**
 * `nearest(vector)`: cosine over the loaded embeddings. `similar(itemId)`: the scorer's
 * own machinery (one matrix product on the catalog's backend), with a profile of one
 * like on the item, ranked by collaborative and text similarity without popularity.
 */
async function catalogNearest({ vector, itemId, k, excludeId }) {
  const { store, loader } = openCatalog();
  if (itemId !== undefined) {
    if (!store.embedding(String(itemId))) {
      const status = loader.status();
      const where = status.complete ? 'in the catalog' : 'in the part of the catalog loaded so far';
      throw fail('localrec/not-found', `item ${JSON.stringify(itemId)} is not ${where}`);
    }
    const request = JSON.stringify({ events: [{ itemId: String(itemId), type: 'like' }], k, rankBy: 'similar' });
    const answer = await catalogRecommend(request);
    const results = answer.results.map(({ itemId: id, score, item }) => ({ itemId: id, score, item }));
    return { results, partial: answer.partial, itemsSearched: loader.status().itemsLoaded };
  }
  const status = loader.status();
  const results = JSON.parse(store.nearest(vector, k, excludeId ?? undefined));
  return { results, partial: !status.complete, itemsSearched: status.itemsLoaded };
}

/**
 * On WebGPU the scores are read back asynchronously: prepare, run, then rank. A shard
 * verified while the scores were on their way makes the job stale: it is asked again
 * over the grown catalog (a few times at most; shards stop arriving).
 */
async function catalogRecommend(request) {
  for (let attempt = 0; ; attempt++) {
    const { store, scoring } = openCatalog();
    if (scoring !== 'webgpu') return JSON.parse(store.recommend(request));
    const job = store.prepareRecommend(request);
    try {
      await job.run();
      return JSON.parse(openCatalog().store.finishRecommend(job));
    } catch (e) {
      if (attempt >= 8 || !/grew while scoring/.test(String(e?.message ?? e))) throw e;
    } finally {
      job.free();
    }
  }
}

self.onmessage = async (event) => {
  const { id, op } = event.data;
  const report = (progress) => self.postMessage({ id, progress });
  try {
    let result;
    if (op === 'load') result = await load(event.data, report);
    else if (op === 'embed') result = await embed(event.data);
    else if (op === 'loseDevice') {
      // Test hook: destroys the WebGPU device under the encoder, as a driver reset would.
      gpuDevice?.destroy();
      result = gpuDevice !== null;
    }
    else if (op === 'tokenize') result = tokenize(event.data);
    else if (op === 'requests') {
      // Network requests this worker made (resource timing; Cache Storage hits are not requests).
      result = globalThis.performance?.getEntriesByType?.('resource')?.length ?? null;
    } else if (op === 'memory') {
      // Bytes of each instantiated module's linear memory (wasm memory only grows), and
      // the worker's JS heap where the browser tells it.
      const wasm = Object.fromEntries(Object.entries(instances).map(([k, v]) => [k, v?.memory?.buffer?.byteLength ?? null]));
      result = { wasm, jsHeapUsed: globalThis.performance?.memory?.usedJSHeapSize ?? null };
    }
    else if (op === 'catalogOpen') result = await catalogOpen(event.data);
    else if (op === 'catalogStatus') result = openCatalog().loader.status();
    else if (op === 'catalogItem') result = JSON.parse(openCatalog().store.item(String(event.data.itemId)));
    else if (op === 'catalogItems') {
      const { offset, limit, quantized } = event.data;
      result = JSON.parse(openCatalog().store.items(offset, limit, Boolean(quantized)));
    } else if (op === 'catalogEmbedding') result = openCatalog().store.embedding(String(event.data.itemId)) ?? null;
    else if (op === 'catalogNearest') result = await catalogNearest(event.data);
    else if (op === 'catalogRecommend') result = await catalogRecommend(event.data.request);
    else if (op === 'catalogClose') {
      catalogClose();
      result = null;
    }
    else if (op === 'close') {
      encoder?.free();
      encoder = null;
      result = null;
    } else throw fail('localrec/input', `unknown operation ${op}`);
    const transfer = result?.vectors ? [result.vectors.buffer] : [];
    self.postMessage({ id, ok: true, result }, transfer);
  } catch (e) {
    // A trap (a Rust panic) under WebGPU means the device failed beneath it: the page
    // falls back to the CPU. Elsewhere it is a bug, reported as internal.
    const deviceFailed = e instanceof WebAssembly.RuntimeError || e?.code === 'localrec/backend';
    if (deviceFailed && op !== 'load' && encoder?.backend === 'webgpu') {
      self.postMessage({ lost: `the webgpu backend failed: ${e.message}` });
    }
    self.postMessage({
      id,
      ok: false,
      error: { code: e?.code ?? 'localrec/internal', message: String(e?.message ?? e) },
    });
  }
};

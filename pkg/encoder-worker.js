// The encoder's Web Worker: gets the model files (model-files.js), loads the wasm encoder
// on the CPU or WebGPU and runs every embedding off the page's main thread. Requests and
// answers: see worker-runtime.js and client.js.
import { LocalrecError } from './errors.js';
import { CALIBRATION_TEXTS, probeWebGpu, reportWebGpuFailure } from './gpu.js';
import { fetchModelFiles } from './model-files.js';
import { cpuModule, memory, relaxedSimd, webgpuModule } from './wasm-modules.js';
import { notify, requestCount, serve } from './worker-runtime.js';

let encoder = null;
let adapterInfo = null;

/** Throws `localrec/backend-unavailable` unless a WebGPU adapter is there (per `probe`). */
function requireWebGpu(probe) {
  if (probe.why) throw new LocalrecError('localrec/backend-unavailable', `webgpu: ${probe.why}`);
}

/** Loads the model on WebGPU; the caller has checked for an adapter. A lost device is reported to the page. */
async function loadWebGpu(files, probe) {
  const glue = await webgpuModule();
  glue.onDeviceLost((reason) => {
    if (encoder?.backend === 'webgpu') notify('lost', { reason });
  });
  try {
    const loaded = await glue.WasmEncoder.loadWebGpu(files.config, files.tokenizer, files.weights, files.sentence ?? undefined);
    adapterInfo = probe.info;
    return loaded;
  } catch (e) {
    if (e?.code === 'localrec/backend') throw new LocalrecError('localrec/backend-unavailable', e.message);
    throw e;
  }
}

/** Sentences per second on the calibration texts, after one untimed call (shader compilation, allocation). */
async function calibrate(candidate) {
  await candidate.embed(CALIBRATION_TEXTS.slice(0, 2));
  const started = performance.now();
  await candidate.embed(CALIBRATION_TEXTS);
  const ms = performance.now() - started;
  return { ms, sentencesPerSecond: (CALIBRATION_TEXTS.length * 1000) / ms, texts: CALIBRATION_TEXTS.length };
}

const withTimeout = (promise, ms, message) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new LocalrecError('localrec/timeout', message)), ms))]);

/**
 * 'auto': times the CPU first, then WebGPU within a budget tied to the CPU's time (a
 * CPU-emulated adapter can take many seconds to compile its shaders), keeps the faster.
 */
async function loadAuto(files, timeFallbackAdapter) {
  const { WasmEncoder } = await cpuModule();
  const cpu = WasmEncoder.loadCpu(files.config, files.tokenizer, files.weights, files.sentence ?? undefined);
  const calibration = { cpu: await calibrate(cpu) };
  // A fallback adapter is WebGPU implemented on the CPU (SwiftShader here): timing it
  // costs a 25 MB module, seconds of shader compilation, and CPU time taken from the CPU
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
    requireWebGpu(probe);
    await webgpuModule();
    const loading = loadWebGpu(files, probe);
    gpuWork = loading;
    gpu = await withTimeout(loading, budgetMs, `webgpu took over ${Math.round(budgetMs)} ms to start`);
    const timing = calibrate(gpu);
    gpuWork = timing.then(() => gpu);
    calibration.webgpu = await withTimeout(timing, budgetMs, `webgpu calibration took over ${Math.round(budgetMs)} ms`);
  } catch (e) {
    calibration.webgpu = { error: { code: e?.code ?? 'localrec/internal', message: String(e?.message ?? e) } };
  }
  if (!calibration.webgpu.error && calibration.webgpu.sentencesPerSecond > calibration.cpu.sentencesPerSecond) {
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

async function load({ modelUrl, backend, timeFallbackAdapter, files, allowUnverified, retries, backoffMs }, { progress, signal }) {
  // The CPU module compiles while the model files download (or come out of the cache): on
  // a warm start these two are most of the time to the first embedding.
  const wasm = backend === 'webgpu' ? null : cpuModule();
  // Awaited below; this only keeps a failure while the files load from being unhandled.
  wasm?.catch(() => {});
  const modelFiles = await fetchModelFiles(modelUrl, { files, allowUnverified, retries, backoffMs, onProgress: progress, signal });
  await wasm;
  const started = performance.now();
  encoder?.free();
  encoder = null;
  let calibration = null;
  if (backend === 'cpu') {
    const { WasmEncoder } = await wasm;
    encoder = WasmEncoder.loadCpu(modelFiles.config, modelFiles.tokenizer, modelFiles.weights, modelFiles.sentence ?? undefined);
  } else if (backend === 'webgpu') {
    const probe = await probeWebGpu();
    requireWebGpu(probe);
    encoder = await loadWebGpu(modelFiles, probe);
  } else {
    ({ encoder, calibration } = await loadAuto(modelFiles, timeFallbackAdapter));
  }
  progress({ status: 'ready', source: 'model', fraction: 1 });
  return {
    backend: encoder.backend,
    dims: encoder.dims,
    initMs: performance.now() - started,
    calibration,
    relaxedSimd,
    // Proof that WebGPU is really in use: the adapter wgpu opened its device on.
    adapter: encoder.backend === 'webgpu' ? adapterInfo : null,
  };
}

function loaded() {
  if (!encoder) throw new LocalrecError('localrec/closed', 'the encoder is not loaded');
  return encoder;
}

serve({
  load,
  async embed({ texts, batchSize }, { transfer }) {
    const started = performance.now();
    const running = loaded();
    const vectors = await running.embed(texts, batchSize).catch((e) => {
      if (running.backend === 'webgpu') reportWebGpuFailure(e);
      throw e;
    });
    transfer.push(vectors.buffer);
    return { vectors, ms: performance.now() - started };
  },
  tokenize({ texts }) {
    return loaded().tokenize(texts).map((ids) => Array.from(ids));
  },
  requests: requestCount,
  memory,
  close() {
    encoder?.free();
    encoder = null;
    return null;
  },
});

// The wasm modules, for the workers: fetched through download.js and checked against the
// sizes and digests this build recorded (wasm/digests.js) whether they come from the
// network or from Cache Storage, then instantiated once per worker.
//
// The CPU module comes in two builds sharing one JS glue: relaxed SIMD (fused
// multiply-add in the dense kernel) where the engine validates it, else plain simd128.
// The WebGPU build is a separate, much larger module, imported on first use. Every URL
// is a static literal, so that bundlers see and emit the files.
import initCpu, * as cpuGlue from './wasm/localrec_wasm.js';
import { refusedByPolicy } from './csp.js';
import { LocalrecError } from './errors.js';
import { CACHE_NAMES, download } from './download.js';
import WASM_FILES from './wasm/digests.js';

// A minimal module using i8x16.relaxed_swizzle: it validates only where the engine has
// relaxed SIMD.
const RELAXED_SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253,
  15, 253, 128, 2, 11,
]);

/** Whether the engine has relaxed SIMD (then the relaxed CPU build is loaded). */
export const relaxedSimd = (() => {
  try {
    return WebAssembly.validate(RELAXED_SIMD_PROBE);
  } catch {
    return false;
  }
})();

/** The instantiated modules' exports, for `memory()` (their linear memories). */
export const instances = {};

async function instantiate(init, url, file, onProgress) {
  const expect = WASM_FILES[file];
  if (!expect) throw new LocalrecError('localrec/integrity', `this package has no digest for ${file}`);
  // An insecure context (plain http to another host) has neither crypto.subtle nor Cache
  // Storage: the module then comes from the network like the JS glue that loads it, and
  // only its size is checked.
  const checked = globalThis.crypto?.subtle ? expect : null;
  // A verified copy from Cache Storage compiles from the cached response itself, whose
  // compiled code the browser keeps beside it: a returning visitor skips most compiling.
  let cached = null;
  const bytes = await download(url.href, {
    expect: checked, maxBytes: expect.bytes, cacheName: CACHE_NAMES.wasm, contentType: 'application/wasm', onProgress, what: file,
    onCachedResponse: (response) => (cached = response),
  });
  if (bytes.byteLength !== expect.bytes) {
    throw new LocalrecError('localrec/integrity', `${file} is ${bytes.byteLength} bytes; this package was built with ${expect.bytes}`);
  }
  try {
    return await init({ module_or_path: cached ?? bytes });
  } catch (e) {
    const refused = await refusedByPolicy(`compiling ${file}`, (v) => v.blocked === 'wasm-eval' || v.blocked === 'eval');
    if (refused) throw refused;
    if (/content.security.policy|wasm-unsafe-eval/i.test(String(e?.message))) {
      throw new LocalrecError('localrec/csp', `the page's Content-Security-Policy refused compiling ${file}: add 'wasm-unsafe-eval' to script-src (${e.message})`);
    }
    throw new LocalrecError('localrec/worker', `cannot instantiate ${file}: ${e.message}`);
  }
}

let cpuReady = null;

/** The CPU module's exports (`WasmEncoder`, `WasmCatalog`, ...), instantiated once. */
export function cpuModule(onProgress) {
  cpuReady ??= (async () => {
    const exports = relaxedSimd
      ? await instantiate(initCpu, new URL('./wasm/localrec_wasm_relaxed_bg.wasm', import.meta.url), 'localrec_wasm_relaxed_bg.wasm', onProgress)
      : await instantiate(initCpu, new URL('./wasm/localrec_wasm_bg.wasm', import.meta.url), 'localrec_wasm_bg.wasm', onProgress);
    instances.cpu = exports;
    return cpuGlue;
  })();
  cpuReady.catch(() => {
    cpuReady = null;
  });
  return cpuReady;
}

let webgpuReady = null;

/** The WebGPU build's module (same classes as the CPU one, plus WebGPU), imported on first use. */
export function webgpuModule(onProgress) {
  webgpuReady ??= (async () => {
    const glue = await import('./wasm/localrec_webgpu.js');
    instances.webgpu = await instantiate(glue.default, new URL('./wasm/localrec_webgpu_bg.wasm', import.meta.url), 'localrec_webgpu_bg.wasm', onProgress);
    return glue;
  })();
  webgpuReady.catch(() => {
    webgpuReady = null;
  });
  return webgpuReady;
}

/** Bytes of each instantiated module's linear memory (wasm memory only grows), and the JS heap where told. */
export function memory() {
  const wasm = Object.fromEntries(Object.entries(instances).map(([k, v]) => [k, v?.memory?.buffer?.byteLength ?? null]));
  return { wasm, jsHeapUsed: globalThis.performance?.memory?.usedJSHeapSize ?? null };
}

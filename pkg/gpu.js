// WebGPU in the workers: what the browser offers (`probeWebGpu`), what a failure under a
// call means (`reportWebGpuFailure`), and the calibration batch 'auto' times the encoder's
// backends on.
import { notify } from './worker-runtime.js';

/**
 * What the browser offers for WebGPU, from one adapter request: `why` it cannot be used
 * (null when an adapter is there), `fallback` (its vendor/architecture when the adapter
 * is a CPU-implemented one, such as SwiftShader) and `info` (vendor, architecture,
 * description: the default adapter, the one wgpu opens its device on).
 */
export async function probeWebGpu() {
  if (!self.navigator?.gpu) return { why: 'this browser exposes no WebGPU (navigator.gpu is missing)', fallback: null, info: null };
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { why: 'the browser offers no WebGPU adapter', fallback: null, info: null };
    const raw = adapter.info ?? {};
    const info = { vendor: raw.vendor ?? '', architecture: raw.architecture ?? '', description: raw.description ?? '' };
    const isFallback = adapter.isFallbackAdapter ?? raw.isFallbackAdapter;
    const fallback = isFallback ? [info.vendor, info.architecture].filter(Boolean).join('/') || 'unnamed adapter' : null;
    return { why: null, fallback, info };
  } catch (e) {
    return { why: `requesting a WebGPU adapter failed: ${e.message}`, fallback: null, info: null };
  }
}

/**
 * Short texts of the length catalogs hold (titles with a few tags, short descriptions):
 * what 'auto' times each backend on. Generic on purpose: no catalog's own data.
 */
export const CALIBRATION_TEXTS = [
  'Wireless noise-cancelling headphones. Tags: audio, travel',
  'A practical guide to home fermentation',
  'Lightweight trail running shoes for muddy paths',
  'a quiet space drama about a lonely engineer',
  'Weekly newsletter on city planning and public transport',
  'slow-burning detective story in a rainy city',
  'Cast iron skillet, pre-seasoned, 26 cm',
  'Introductory course: statistics for data journalism',
];

/**
 * A backend error from a call on WebGPU means the device failed beneath it (a lost
 * device's reads fail before its loss is reported): the page is told, moves the work to
 * the CPU and asks again there.
 */
export function reportWebGpuFailure(e) {
  if (e?.code === 'localrec/backend') notify('lost', { reason: `the webgpu backend failed: ${e.message}` });
}

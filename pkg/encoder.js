// `Encoder`: the sentence encoder in its own Web Worker (encoder-worker.js). This side
// only posts messages, so the page's main thread stays free.
import { checkOneOf, checkRetry, checkSignal, checkTexts, checkWhole, optionsOf, safeCallback } from './checks.js';
import { describe, inputError } from './errors.js';
import { DEFAULT_RETRY } from './download.js';
import { BACKENDS } from './limits.js';
import { WorkerOwner } from './owner.js';

/**
 * A sentence encoder (all-MiniLM-L6-v2 by default) running in a Web Worker.
 *
 * ```js
 * const enc = await Encoder.load('/model/', { onProgress: (p) => console.log(p.status, p.fraction) });
 * const vectors = await enc.embed(['Toy Story (1995)']); // Float32Array, n x enc.dims
 * ```
 */
export class Encoder extends WorkerOwner {
  /** @private */
  constructor(request, workerUrl) {
    super('encoder', request, workerUrl);
    /** The backend in use: `'cpu'` or `'webgpu'`. */
    this.backend = null;
    /** Width of the embeddings. */
    this.dims = 0;
    /** With `backend: 'auto'`: each backend's measured speed and why one was chosen. */
    this.calibration = null;
    /** On WebGPU: the adapter in use (`vendor`, `architecture`, `description`); else null. */
    this.adapter = null;
    this.modelUrl = request.modelUrl;
  }

  /**
   * Downloads the model in `modelUrl` (a folder with config.json, tokenizer.json,
   * model.safetensors, sentence_bert_config.json and the manifest.json that vouches for
   * them) and loads it. `files` (a catalog's `encoder.files`) vouches for the files
   * instead of the folder's manifest; `allowUnverified` loads a folder with neither.
   */
  static async load(modelUrl, options) {
    const {
      backend = 'auto', onProgress, timeFallbackAdapter = false, files, allowUnverified = false, signal, workerUrl,
      retries = DEFAULT_RETRY.retries, backoffMs = DEFAULT_RETRY.backoffMs,
    } = optionsOf(options, 'Encoder.load');
    if (typeof modelUrl !== 'string' && !(modelUrl instanceof URL)) throw inputError(`Encoder.load() takes a URL, not ${describe(modelUrl)}`);
    checkOneOf(backend, BACKENDS, 'backend', 'Encoder.load');
    checkSignal(signal, 'Encoder.load');
    checkRetry(retries, backoffMs, 'Encoder.load');
    const request = {
      modelUrl: new URL(String(modelUrl), globalThis.location?.href).href,
      backend,
      timeFallbackAdapter: Boolean(timeFallbackAdapter),
      files: files ?? null,
      allowUnverified: Boolean(allowUnverified),
      retries,
      backoffMs,
    };
    const encoder = new Encoder(request, workerUrl);
    await encoder.spawn(backend, { onProgress: safeCallback(onProgress), signal });
    return encoder;
  }

  /** @private */
  loadWorker(client, backend, options) {
    return client.call('load', { ...this.request, backend }, options);
  }

  /** @private */
  workerLoaded(info) {
    this.backend = info.backend;
    this.dims = info.dims;
    this.adapter = info.adapter ?? null;
    // The first load's calibration explains the choice; a replacement worker keeps it.
    this.calibration ??= info.calibration ?? null;
  }

  /** @private */
  onWebGpu() {
    return this.backend === 'webgpu';
  }

  /** Embeds texts: a `Float32Array` of `texts.length * dims` values, one unit-length row per text. */
  async embed(texts, options) {
    this.checkOpen();
    checkTexts(texts, 'embed');
    const { batchSize, signal } = optionsOf(options, 'embed');
    if (batchSize !== undefined) checkWhole(batchSize, 'batchSize', 'embed', 1);
    checkSignal(signal, 'embed');
    const { vectors } = await this.onLiveWorker('embed', { texts, batchSize }, { signal });
    return vectors;
  }

  /** Token ids of each text (special tokens included, truncated as the model does). */
  async tokenize(texts) {
    this.checkOpen();
    checkTexts(texts, 'tokenize');
    return this.onLiveWorker('tokenize', { texts });
  }
}

// localrec: the browser library's entry module. Everything heavy runs in a Web Worker
// (worker.js); this module only posts messages, so the page's main thread stays free.

/** An error from localrec, with a stable `code` such as `localrec/network`. */
export class LocalrecError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'LocalrecError';
    this.code = code;
  }
}

/** A worker with request/response messaging and per-request progress callbacks. */
class WorkerClient {
  constructor() {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.nextId = 1;
    this.pending = new Map();
    this.worker.onmessage = (event) => this.receive(event.data);
    this.worker.onerror = (event) => {
      // The worker script itself failed (e.g. the wasm could not be fetched): reject all.
      event.preventDefault?.();
      const err = new LocalrecError('localrec/worker', `the localrec worker failed: ${event.message ?? 'unknown error'}`);
      for (const { reject } of this.pending.values()) reject(err);
      this.pending.clear();
    };
  }

  call(message, onProgress) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ ...message, id });
    });
  }

  receive(data) {
    const entry = this.pending.get(data.id);
    if (!entry) return;
    if (data.progress) {
      try {
        entry.onProgress?.(data.progress);
      } catch {
        // A throwing progress callback must not break the download.
      }
      return;
    }
    this.pending.delete(data.id);
    if (data.ok) entry.resolve(data.result);
    else entry.reject(new LocalrecError(data.error.code, data.error.message));
  }

  terminate() {
    this.worker.terminate();
    const err = new LocalrecError('localrec/closed', 'the encoder was closed');
    for (const { reject } of this.pending.values()) reject(err);
    this.pending.clear();
  }
}

/**
 * A sentence encoder (all-MiniLM-L6-v2 by default) running in a Web Worker.
 *
 * ```js
 * const enc = await Encoder.load('/model/', { onProgress: (p) => console.log(p) });
 * const vectors = await enc.embed(['Toy Story (1995)']); // Float32Array, n x enc.dims
 * ```
 */
export class Encoder {
  /** @private */
  constructor(client, info) {
    this.client = client;
    /** The backend in use: `'cpu'` or `'webgpu'`. */
    this.backend = info.backend;
    /** Width of the embeddings. */
    this.dims = info.dims;
    this.closed = false;
  }

  /**
   * Downloads the model in `modelUrl` (a folder with config.json, tokenizer.json and
   * model.safetensors, optionally manifest.json and sentence_bert_config.json) and loads it.
   */
  static async load(modelUrl, options = {}) {
    const { backend = 'auto', onProgress } = options;
    if (!['auto', 'cpu', 'webgpu'].includes(backend)) {
      throw new LocalrecError('localrec/input', `unknown backend ${JSON.stringify(backend)} (auto, cpu or webgpu)`);
    }
    const href = new URL(modelUrl, globalThis.location?.href).href;
    const client = new WorkerClient();
    try {
      const info = await client.call({ op: 'load', modelUrl: href, backend }, onProgress);
      return new Encoder(client, info);
    } catch (e) {
      client.terminate();
      throw e;
    }
  }

  /** Embeds texts: a `Float32Array` of `texts.length * dims` values, one unit-length row per text. */
  async embed(texts, options = {}) {
    this.checkOpen();
    const { vectors } = await this.client.call({ op: 'embed', texts, batchSize: options.batchSize });
    return vectors;
  }

  /** Token ids of each text (special tokens included, truncated as the model does). */
  async tokenize(texts) {
    this.checkOpen();
    return this.client.call({ op: 'tokenize', texts });
  }

  /** Frees the model and stops the worker. */
  async close() {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.call({ op: 'close' });
    } finally {
      this.client.terminate();
    }
  }

  /** @private */
  checkOpen() {
    if (this.closed) throw new LocalrecError('localrec/closed', 'the encoder was closed');
  }
}

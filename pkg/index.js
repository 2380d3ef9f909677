// localrec: the browser library's entry module. Everything heavy runs in a Web Worker
// (worker.js); this module only posts messages, so the page's main thread stays free.

/** The Cache Storage cache that keeps verified model files: `caches.delete(MODEL_CACHE_NAME)` empties it. */
export { CACHE_NAME as MODEL_CACHE_NAME } from './fetch.js';
/** Recommendations from a catalog and the visitor's profile on this device. */
export { Recommender } from './recommender.js';
/** The Cache Storage cache that keeps verified catalog shards. */
export const CATALOG_CACHE_NAME = 'localrec-catalog-v1';

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
    // Set once the worker is gone, so later calls reject at once instead of never settling.
    this.dead = null;
    this.worker.onmessage = (event) => this.receive(event.data);
    this.worker.onerror = (event) => {
      // The worker script itself failed (e.g. the wasm could not be fetched): reject all.
      event.preventDefault?.();
      this.fail(new LocalrecError('localrec/worker', `the localrec worker failed: ${event.message ?? 'unknown error'}`));
    };
  }

  call(message, onProgress) {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      try {
        this.worker.postMessage({ ...message, id });
      } catch (e) {
        // Something in the message cannot be cloned; the worker never saw it.
        this.pending.delete(id);
        reject(new LocalrecError('localrec/input', `cannot send ${message.op} to the worker: ${e.message}`));
      }
    });
  }

  fail(err) {
    this.dead = err;
    for (const { reject } of this.pending.values()) reject(err);
    this.pending.clear();
  }

  receive(data) {
    if (data.event) {
      this.onEvent?.(data);
      return;
    }
    if (data.lost) {
      this.fail(new LocalrecError('localrec/backend-lost', data.lost));
      return;
    }
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

  terminate(what = 'encoder') {
    this.worker.terminate();
    this.fail(new LocalrecError('localrec/closed', `the ${what} was closed`));
  }
}

// Checked here rather than in the worker: a value that cannot be cloned (a function, a
// symbol) would otherwise fail in postMessage with a DOMException and no localrec code.
function checkTexts(texts, method) {
  if (!Array.isArray(texts)) {
    throw new LocalrecError('localrec/input', `${method}() takes an array of strings, not ${describe(texts)}`);
  }
  for (let i = 0; i < texts.length; i++) {
    if (typeof texts[i] !== 'string') {
      throw new LocalrecError('localrec/input', `${method}(): text ${i} is ${describe(texts[i])}, not a string`);
    }
  }
}

/** A diagnostics question (`requests`, `memory`) to the worker of an open Encoder or Catalog. */
function askWorker(owner, op) {
  owner.checkOpen();
  return owner.client.call({ op });
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'undefined' ? 'undefined' : `a${/^[aeiou]/.test(type) ? 'n' : ''} ${type}`;
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
  constructor(client, info, modelUrl) {
    this.client = client;
    /** The backend in use: `'cpu'` or `'webgpu'`. */
    this.backend = info.backend;
    /** Width of the embeddings. */
    this.dims = info.dims;
    /** With `backend: 'auto'`: each backend's measured speed and why one was chosen. */
    this.calibration = info.calibration ?? null;
    /** On WebGPU: the adapter in use (`vendor`, `architecture`, `description`); else null. */
    this.adapter = info.adapter ?? null;
    /** Set when WebGPU failed after loading and the encoder moved to the CPU: why. */
    this.fallbackReason = null;
    this.modelUrl = modelUrl;
    this.switching = null;
    this.closed = false;
  }

  /**
   * Downloads the model in `modelUrl` (a folder with config.json, tokenizer.json and
   * model.safetensors, optionally manifest.json and sentence_bert_config.json) and loads it.
   */
  static async load(modelUrl, options = {}) {
    const { backend = 'auto', onProgress, timeFallbackAdapter = false } = options;
    if (!['auto', 'cpu', 'webgpu'].includes(backend)) {
      throw new LocalrecError('localrec/input', `unknown backend ${JSON.stringify(backend)} (auto, cpu or webgpu)`);
    }
    const href = new URL(modelUrl, globalThis.location?.href).href;
    const client = new WorkerClient();
    try {
      const info = await client.call({ op: 'load', modelUrl: href, backend, timeFallbackAdapter: Boolean(timeFallbackAdapter) }, onProgress);
      return new Encoder(client, info, href);
    } catch (e) {
      client.terminate();
      throw e;
    }
  }

  /** Embeds texts: a `Float32Array` of `texts.length * dims` values, one unit-length row per text. */
  async embed(texts, options = {}) {
    this.checkOpen();
    checkTexts(texts, 'embed');
    const { batchSize } = options ?? {};
    if (batchSize !== undefined && !(Number.isSafeInteger(batchSize) && batchSize >= 1)) {
      const why = `batchSize must be a whole number >= 1, not ${String(batchSize)}`;
      throw new LocalrecError('localrec/input', `embed(): ${why}`);
    }
    const { vectors } = await this.onLiveBackend({ op: 'embed', texts, batchSize });
    return vectors;
  }

  /**
   * Runs a call; when WebGPU is lost under it, moves to the CPU in a fresh worker (the
   * model files come from the Cache API) and runs the call again there, so the caller
   * gets a result rather than an error.
   * @private
   */
  async onLiveBackend(message) {
    for (;;) {
      const client = this.client;
      try {
        return await client.call(message);
      } catch (e) {
        if (e?.code !== 'localrec/backend-lost' || this.closed) throw e;
        await this.fallBackToCpu(client, e.message);
      }
    }
  }

  /** @private */
  fallBackToCpu(lostClient, reason) {
    // Several calls can see the same loss; the first one starts the switch.
    if (this.client !== lostClient) return this.switching;
    this.switching = (async () => {
      lostClient.worker.terminate();
      const client = new WorkerClient();
      try {
        const info = await client.call({ op: 'load', modelUrl: this.modelUrl, backend: 'cpu' });
        this.backend = info.backend;
        this.adapter = null;
      } catch (e) {
        client.terminate();
        throw e;
      }
      this.client = client;
      this.fallbackReason = reason;
    })();
    return this.switching;
  }

  /** Token ids of each text (special tokens included, truncated as the model does). */
  async tokenize(texts) {
    this.checkOpen();
    checkTexts(texts, 'tokenize');
    return this.onLiveBackend({ op: 'tokenize', texts });
  }

  /** How many network requests the encoder's worker has made (resource timing), for diagnostics. */
  async requestCount() {
    return askWorker(this, 'requests');
  }

  /** Bytes of the worker's wasm memories (`{wasm: {cpu, webgpu}, jsHeapUsed}`), for diagnostics. */
  async memory() {
    return askWorker(this, 'memory');
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

function checkWhole(value, name, min, method) {
  if (!(Number.isSafeInteger(value) && value >= min)) {
    throw new LocalrecError('localrec/input', `${method}(): ${name} must be a whole number >= ${min}, not ${String(value)}`);
  }
}

/**
 * A catalog published as static files (`localrec build`): its manifest, then every shard
 * streamed in manifest order, each verified against the manifest's SHA-256 before any of
 * it is used and cached (Cache API) only then. Queries work on the shards loaded so far
 * and say so (`partial`).
 *
 * ```js
 * const catalog = await Catalog.open('/catalog/manifest.json', { onProgress: (p) => console.log(p) });
 * const { results, partial } = await catalog.similar('1', { k: 10 });
 * await catalog.loaded; // every shard settled
 * ```
 */
export class Catalog {
  /** @private */
  constructor(client, manifest, status, url) {
    this.client = client;
    /** The catalog's manifest, as validated. */
    this.manifest = manifest;
    /** Where loading stands: items and bytes loaded of total, shards failed, `complete`. */
    this.status = status;
    this.url = url;
    this.closed = false;
    /** Where `recommend` scores: 'cpu' (burn's Flex in wasm) or 'webgpu'. */
    this.scoring = 'cpu';
    /** Why `scoring` is what it is. */
    this.scoringReason = '';
    /** Resolves with the final status once every shard has loaded or failed. */
    this.loaded = new Promise((resolve) => {
      this.settle = resolve;
    });
    if (status.settled) this.settle(status);
  }

  /**
   * Opens the catalog whose manifest is at `url` (the manifest.json, or its folder).
   * Resolves once the first shard is usable (`wait: 'first'`, the default), right after
   * the manifest (`'manifest'`), or when every shard has settled (`'all'`). `backend`
   * says where `recommend` scores: `'cpu'` (default), `'webgpu'` (rejects with
   * `localrec/backend-unavailable` without it) or `'auto'` (WebGPU when a hardware
   * adapter is there, else the CPU).
   */
  static async open(url, options = {}) {
    const {
      onProgress,
      cache = true,
      retries = 4,
      backoffMs = 250,
      maxBytes = 1 << 30,
      wait = 'first',
      backend = 'cpu',
    } = options ?? {};
    if (typeof url !== 'string' && !(url instanceof URL)) {
      throw new LocalrecError('localrec/input', `Catalog.open() takes a URL, not ${describe(url)}`);
    }
    if (!['cpu', 'webgpu', 'auto'].includes(backend)) {
      throw new LocalrecError('localrec/input', `Catalog.open(): backend is 'cpu', 'webgpu' or 'auto', not ${JSON.stringify(backend)}`);
    }
    if (!['first', 'manifest', 'all'].includes(wait)) {
      throw new LocalrecError('localrec/input', `Catalog.open(): wait is 'first', 'manifest' or 'all', not ${JSON.stringify(wait)}`);
    }
    checkWhole(retries, 'retries', 0, 'Catalog.open');
    if (!(Number.isFinite(backoffMs) && backoffMs >= 0)) {
      throw new LocalrecError('localrec/input', `Catalog.open(): backoffMs must be a number >= 0, not ${String(backoffMs)}`);
    }
    if (!(Number.isFinite(maxBytes) && maxBytes > 0)) {
      throw new LocalrecError('localrec/input', `Catalog.open(): maxBytes must be a number > 0, not ${String(maxBytes)}`);
    }
    let href = new URL(String(url), globalThis.location?.href).href;
    if (href.endsWith('/')) href += 'manifest.json';
    const client = new WorkerClient();
    let catalog = null;
    const early = [];
    client.onEvent = ({ status }) => {
      if (catalog) catalog.update(status);
      else early.push(status);
      try {
        onProgress?.(status);
      } catch {
        // A throwing progress callback must not break the download.
      }
    };
    try {
      const { manifest, status, scoring, scoringReason } = await client.call({
        op: 'catalogOpen', url: href, cache: Boolean(cache), retries, backoffMs, maxBytes, wait, backend,
      });
      catalog = new Catalog(client, manifest, status, href);
      catalog.scoring = scoring;
      catalog.scoringReason = scoringReason;
      for (const s of early) catalog.update(s);
      return catalog;
    } catch (e) {
      client.terminate('catalog');
      throw e;
    }
  }

  /** @private */
  update(status) {
    // The status `open` answered with may be newer than events still in the queue.
    if (status.seq <= this.status.seq) return;
    this.status = status;
    if (status.settled) this.settle(status);
  }

  /** The item with this id (`{itemId, title, genres, ...metadata}`), or null when it is not loaded. */
  async item(itemId) {
    this.checkOpen();
    return this.client.call({ op: 'catalogItem', itemId: String(itemId) });
  }

  /** Loaded items in catalog order, `offset` to `offset + limit`. With `quantized`,
   *  each carries its stored `scale` and int8 `embedding` values. */
  async items({ offset = 0, limit = 100, quantized = false } = {}) {
    this.checkOpen();
    checkWhole(offset, 'offset', 0, 'items');
    checkWhole(limit, 'limit', 0, 'items');
    return this.client.call({ op: 'catalogItems', offset, limit, quantized: Boolean(quantized) });
  }

  /** The item's embedding (a Float32Array of `manifest.encoder.dims`), or null. */
  async embedding(itemId) {
    this.checkOpen();
    return this.client.call({ op: 'catalogEmbedding', itemId: String(itemId) });
  }

  /**
   * The `k` loaded items nearest to `vector` by cosine: `{results: [{itemId, score, item}],
   * partial, itemsSearched}`; `partial` is true while shards are missing.
   */
  async nearest(vector, { k = 10, excludeId } = {}) {
    this.checkOpen();
    const dims = this.manifest.encoder.dims;
    if (!(vector instanceof Float32Array) && !Array.isArray(vector)) {
      throw new LocalrecError('localrec/input', `nearest() takes a Float32Array or an array of numbers, not ${describe(vector)}`);
    }
    if (vector.length !== dims) {
      throw new LocalrecError('localrec/input', `nearest(): the vector has ${vector.length} values; this catalog's embeddings have ${dims}`);
    }
    checkWhole(k, 'k', 1, 'nearest');
    return this.client.call({
      op: 'catalogNearest', vector: Float32Array.from(vector), k, excludeId: excludeId === undefined ? undefined : String(excludeId),
    });
  }

  /** The `k` loaded items most similar to the item `itemId` (itself excluded), as `nearest`. */
  async similar(itemId, { k = 10 } = {}) {
    this.checkOpen();
    checkWhole(k, 'k', 1, 'similar');
    return this.client.call({ op: 'catalogNearest', itemId: String(itemId), k });
  }

  /**
   * Ranks the loaded items for a profile passed in with the call (nothing is kept):
   * `{events: [{itemId, type, value?, ageDays?}], interests: [{embedding, weight?, ageDays?}],
   * k = 10, diversity = 0, exclude = []}`. Resolves `{results: [{itemId, score, item,
   * because}], partial, warnings}`; events on items the catalog does not hold are ignored
   * with a warning. Items acted on are never returned.
   */
  async recommend({ events = [], interests = [], k = 10, diversity = 0, exclude = [], scenario, rankBy, eventWeights } = {}) {
    this.checkOpen();
    checkWhole(k, 'k', 1, 'recommend');
    if (!Array.isArray(events) || !Array.isArray(interests) || !Array.isArray(exclude)) {
      throw new LocalrecError('localrec/input', 'recommend(): events, interests and exclude must be arrays');
    }
    if (typeof diversity !== 'number' || !(diversity >= 0 && diversity <= 1)) {
      throw new LocalrecError('localrec/input', `recommend(): diversity must be a number from 0 to 1, not ${describe(diversity)}`);
    }
    const request = JSON.stringify({
      events: events.map((e) => ({ ...e, itemId: String(e?.itemId) })),
      interests: interests.map((it) => ({ ...it, embedding: Array.from(it?.embedding ?? []) })),
      k,
      diversity,
      exclude: exclude.map(String),
      ...(scenario === undefined ? {} : { scenario }),
      ...(rankBy === undefined ? {} : { rankBy }),
      ...(eventWeights === undefined ? {} : { eventWeights }),
    });
    return this.client.call({ op: 'catalogRecommend', request });
  }

  /** How many network requests the catalog's worker has made (resource timing), for diagnostics. */
  async requestCount() {
    return askWorker(this, 'requests');
  }

  /** Bytes of the catalog worker's wasm memories (`{wasm: {cpu, webgpu}, jsHeapUsed}`), for diagnostics. */
  async memory() {
    return askWorker(this, 'memory');
  }

  /** Stops loading, frees the catalog and its worker. */
  async close() {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.call({ op: 'catalogClose' });
    } finally {
      this.client.terminate('catalog');
    }
  }

  /** @private */
  checkOpen() {
    if (this.closed) throw new LocalrecError('localrec/closed', 'the catalog was closed');
  }
}

// `Catalog`: a catalog published as static files, loaded and queried in its own Web
// Worker (catalog-worker.js). This side only posts messages.
import {
  checkDiversity, checkK, checkOneOf, checkRetry, checkSignal, checkWhole, optionsOf, safeCallback,
} from './checks.js';
import { DEFAULT_RETRY } from './download.js';
import { describe, inputError } from './errors.js';
import { BACKENDS, CATALOG_WAIT, DEFAULT_K, DEFAULT_MAX_CATALOG_BYTES, MAX_ITEM_ID_CHARS, RANK_BY } from './limits.js';
import { WorkerOwner } from './owner.js';

/** An item id as the catalog knows it: a non-empty string (whole numbers are turned into one). */
function itemIdOf(value, method) {
  if ((typeof value === 'string' && value.length > 0 && value.length <= MAX_ITEM_ID_CHARS) || Number.isSafeInteger(value)) return String(value);
  throw inputError(`${method}(): an item id is a non-empty string or a whole number, not ${describe(value)}`);
}

/**
 * A catalog published as static files (`localrec build`): its manifest, then every shard
 * streamed in manifest order, each verified against the manifest's SHA-256 before any of
 * it is used and cached (Cache Storage) only then. Queries work on the shards loaded so
 * far and say so (`partial`).
 *
 * ```js
 * const catalog = await Catalog.open('/catalog/', { onProgress: (p) => console.log(p.status, p.fraction) });
 * const { results, partial } = await catalog.similar('1', { k: 10 });
 * await catalog.loaded; // every shard settled
 * ```
 */
export class Catalog extends WorkerOwner {
  /** @private */
  constructor(url, request, { onProgress, workerUrl }) {
    super('catalog', request, workerUrl);
    this.url = url;
    this.onProgress = onProgress;
    /** The catalog's manifest, as validated. */
    this.manifest = null;
    /** Where loading stands: items and bytes loaded of total, shards failed, `complete`, `settled`. */
    this.status = null;
    /** Where `recommend` scores: 'cpu' (burn's Flex in wasm) or 'webgpu'. */
    this.scoring = 'cpu';
    /** Why `scoring` is what it is. */
    this.scoringReason = '';
    /** The model folder the manifest names, resolved under the catalog's folder. */
    this.modelUrl = null;
    /** Resolves with the final status once every shard has loaded or failed. */
    this.loaded = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  /**
   * Opens the catalog whose manifest is at `url` (the manifest.json, or its folder).
   * Resolves once the first shard is usable (`wait: 'first'`, the default), right after
   * the manifest (`'manifest'`), or when every shard has settled (`'all'`). `backend`
   * says where `recommend` scores: `'cpu'` (default), `'webgpu'` (rejects with
   * `localrec/backend-unavailable` without it) or `'auto'` (WebGPU when a hardware
   * adapter is there, else the CPU; not timed).
   */
  static async open(url, options) {
    const {
      onProgress, cache = true, retries = DEFAULT_RETRY.retries, backoffMs = DEFAULT_RETRY.backoffMs, maxBytes = DEFAULT_MAX_CATALOG_BYTES, wait = 'first',
      backend = 'cpu', signal, workerUrl,
    } = optionsOf(options, 'Catalog.open');
    if (typeof url !== 'string' && !(url instanceof URL)) throw inputError(`Catalog.open() takes a URL, not ${describe(url)}`);
    checkOneOf(backend, BACKENDS, 'backend', 'Catalog.open');
    checkOneOf(wait, CATALOG_WAIT, 'wait', 'Catalog.open');
    checkRetry(retries, backoffMs, 'Catalog.open');
    if (!(Number.isFinite(maxBytes) && maxBytes > 0)) throw inputError(`Catalog.open(): maxBytes must be a number > 0, not ${String(maxBytes)}`);
    checkSignal(signal, 'Catalog.open');
    let href = new URL(String(url), globalThis.location?.href).href;
    if (href.endsWith('/')) href += 'manifest.json';
    const request = { url: href, cache: Boolean(cache), retries, backoffMs, maxBytes, wait, backend };
    const catalog = new Catalog(href, request, { onProgress: safeCallback(onProgress), workerUrl });
    await catalog.spawn(backend, { signal });
    return catalog;
  }

  /** @private A replacement worker reads the shards back from Cache Storage (verified again); a catalog that had loaded fully answers fully again. */
  loadWorker(client, backend, options) {
    const wait = this.status === null ? this.request.wait : this.status.settled ? 'all' : 'first';
    return client.call('open', { ...this.request, backend, wait }, options);
  }

  /** @private */
  workerLoaded(answer) {
    this.manifest = answer.manifest;
    this.modelUrl = answer.modelUrl;
    this.scoring = answer.scoring;
    if (!this.fallbackReason) this.scoringReason = answer.scoringReason;
    this.status = answer.status;
    if (this.status.settled) this.settle(this.status);
  }

  /** @private */
  onWebGpu() {
    return this.scoring === 'webgpu';
  }

  /** @private */
  movedToCpu(reason) {
    super.movedToCpu(reason);
    this.scoringReason = `WebGPU was lost (${reason}); scoring moved to the CPU`;
  }

  /** @private The catalog was republished while it loaded: the worker loads the new version now. */
  onVersion(client, { manifest, modelUrl, scoring }) {
    if (this.client !== client) return;
    this.manifest = manifest;
    this.modelUrl = modelUrl;
    this.scoring = scoring;
  }

  /** @private */
  onStatus(client, status, progress) {
    if (progress) this.onProgress(progress);
    // The status `open` answered with may be newer than notices still in the queue.
    if (this.client !== client || (this.status && status.seq <= this.status.seq)) return;
    this.status = status;
    if (status.settled) this.settle(status);
  }

  /** The item with this id (`{itemId, title, genres, ...metadata}`), or null when it is not loaded. */
  async item(itemId) {
    this.checkOpen();
    return this.onLiveWorker('item', { itemId: itemIdOf(itemId, 'item') });
  }

  /** Loaded items in catalog order, `offset` to `offset + limit`. With `quantized`,
   *  each carries its stored `scale` and int8 `embedding` values. */
  async items(options) {
    this.checkOpen();
    const { offset = 0, limit = 100, quantized = false } = optionsOf(options, 'items');
    checkWhole(offset, 'offset', 'items');
    checkWhole(limit, 'limit', 'items');
    return this.onLiveWorker('items', { offset, limit, quantized: Boolean(quantized) });
  }

  /**
   * The item with its stored int8 row: `{...item, scale, embedding: Int8Array}` (the
   * embedding is `embedding[i] * scale`), or null when it is not loaded.
   */
  async quantizedItem(itemId) {
    this.checkOpen();
    return this.onLiveWorker('quantizedItem', { itemId: itemIdOf(itemId, 'quantizedItem') });
  }

  /** The item's embedding (a Float32Array of `manifest.encoder.dims`), or null. */
  async embedding(itemId) {
    this.checkOpen();
    return this.onLiveWorker('embedding', { itemId: itemIdOf(itemId, 'embedding') });
  }

  /**
   * The `k` loaded items nearest to `vector` by cosine: `{results: [{itemId, score, item}],
   * partial, warnings}`; `partial` is true while shards are missing.
   */
  async nearest(vector, options) {
    this.checkOpen();
    const { k = DEFAULT_K, excludeId, signal } = optionsOf(options, 'nearest');
    const dims = this.manifest.encoder.dims;
    if (!(vector instanceof Float32Array) && !Array.isArray(vector)) {
      throw inputError(`nearest() takes a Float32Array or an array of numbers, not ${describe(vector)}`);
    }
    if (vector.length !== dims) throw inputError(`nearest(): the vector has ${vector.length} values; this catalog's embeddings have ${dims}`);
    checkK(k, 'nearest');
    checkSignal(signal, 'nearest');
    const excluded = excludeId === undefined ? undefined : itemIdOf(excludeId, 'nearest');
    return this.onLiveWorker('nearest', { vector: Float32Array.from(vector), k, excludeId: excluded }, { signal });
  }

  /** The `k` loaded items most similar to the item `itemId` (itself excluded): `{results, partial, warnings}`. */
  async similar(itemId, options) {
    this.checkOpen();
    const { k = DEFAULT_K, signal } = optionsOf(options, 'similar');
    checkK(k, 'similar');
    checkSignal(signal, 'similar');
    return this.onLiveWorker('similar', { itemId: itemIdOf(itemId, 'similar'), k }, { signal });
  }

  /**
   * Ranks the loaded items for a profile passed in with the call (nothing is kept):
   * `{events: [{itemId, type, value?, ageDays?, scenario?}], interests: [{embedding,
   * weight?, ageDays?}], foreign: [{embedding, type, value?, ageDays?}], k, diversity,
   * exclude, scenario, rankBy, eventWeights}`; `foreign` are events on other catalogs'
   * items, each with its item's embedding (this catalog's encoder's width).
   * Resolves `{results: [{itemId, score, item, because, predictedRating?}], partial,
   * warnings}`; events on items the catalog does not hold are ignored with a warning.
   * Items acted on are never returned.
   */
  async recommend(request, options) {
    this.checkOpen();
    const {
      events = [], interests = [], foreign = [], k = DEFAULT_K, diversity = 0, exclude = [], scenario, rankBy, eventWeights,
    } = optionsOf(request, 'recommend');
    const { signal } = optionsOf(options, 'recommend');
    checkK(k, 'recommend');
    if (!Array.isArray(events) || !Array.isArray(interests) || !Array.isArray(foreign) || !Array.isArray(exclude)) {
      throw inputError('recommend(): events, interests, foreign and exclude must be arrays');
    }
    checkDiversity(diversity, 'recommend');
    if (rankBy !== undefined) checkOneOf(rankBy, RANK_BY, 'rankBy', 'recommend');
    if (scenario !== undefined && typeof scenario !== 'string') throw inputError('recommend(): scenario must be a string');
    checkSignal(signal, 'recommend');
    const message = {
      events: events.map((e) => ({ ...e, itemId: String(e?.itemId) })),
      interests: interests.map((it) => ({ ...it, embedding: Array.from(it?.embedding ?? []) })),
      ...(foreign.length ? { foreign: foreign.map((f) => ({ ...f, embedding: Array.from(f?.embedding ?? []) })) } : {}),
      k,
      diversity,
      exclude: exclude.map(String),
      ...(scenario === undefined ? {} : { scenario }),
      ...(rankBy === undefined ? {} : { rankBy }),
      ...(eventWeights === undefined ? {} : { eventWeights }),
    };
    return this.onLiveWorker('recommend', { request: message }, { signal });
  }
}

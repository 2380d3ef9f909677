// The Recommender: a catalog, the visitor's profile on this device, and the encoder
// loaded only when something needs text encoded. The main thread only posts messages:
// the catalog and the encoder each run in their own Web Worker.

import { Catalog, Encoder, LocalrecError } from './index.js';
import {
  EVENT_TYPES, MAX_EVENTS, MAX_INTERESTS, PROFILE_FORMAT, PROFILE_VERSION, ProfileStore, cleanEvent, cleanInterest,
  parseProfileDocument,
} from './profile.js';
import { rerankByTitle } from './search.js';

const DAY_MS = 86_400_000;

function inputError(message) {
  return new LocalrecError('localrec/input', message);
}

function checkK(k, method) {
  if (!(Number.isSafeInteger(k) && k >= 1 && k <= 1000)) throw inputError(`${method}(): k must be a whole number from 1 to 1000, not ${String(k)}`);
}

/** What the profile holds, as the page may show it. */
function summarize(data, store) {
  const byType = Object.fromEntries(EVENT_TYPES.map((t) => [t, 0]));
  for (const e of data.events) byType[e.type] = (byType[e.type] ?? 0) + 1;
  const times = data.events.map((e) => e.time).filter(Number.isFinite);
  return {
    storage: store.storage,
    persistent: store.storage === 'indexeddb',
    fallbackReason: store.fallbackReason,
    events: data.events.length,
    eventsByType: byType,
    interests: data.interests.map(({ id, text, time }) => ({ id, text, time })),
    items: new Set(data.events.map((e) => e.itemId)).size,
    firstEvent: times.length ? times.reduce((a, b) => Math.min(a, b), Infinity) : null,
    lastEvent: times.length ? times.reduce((a, b) => Math.max(a, b), 0) : null,
  };
}

/** `recommender.profile`: see, export, import and delete what is stored on this device. */
class Profile {
  /** @private */
  constructor(owner) {
    this.owner = owner;
  }

  /** Counts and interests: what the profile holds, and where (`storage`, `persistent`). */
  async summary() {
    return summarize(await this.owner.store.all(), this.owner.store);
  }

  /** The whole profile as a versioned JSON-ready document (events, interests with their vectors). */
  async export() {
    const data = await this.owner.store.all();
    return {
      format: PROFILE_FORMAT,
      version: PROFILE_VERSION,
      exportedAt: new Date().toISOString(),
      catalog: this.owner.catalog.manifest.name,
      encoder: this.owner.catalog.manifest.encoder.name,
      events: data.events.map(({ itemId, type, value, scenario, time }) => ({ itemId, type, value, scenario, time })),
      interests: data.interests.map(({ text, embedding, time }) => ({ text, embedding, time })),
    };
  }

  /**
   * Replaces the profile with a document from `export()` (an object or its JSON text).
   * A malformed, oversized, wrong-version or hostile document is refused with
   * `localrec/input` and the profile stays as it was.
   */
  async import(doc) {
    let clean;
    try {
      clean = parseProfileDocument(doc, this.owner.catalog.manifest.encoder.dims);
    } catch (e) {
      throw inputError(`profile.import(): ${e.message}; the profile was not changed`);
    }
    await this.owner.store.replace(clean);
    return summarize(await this.owner.store.all(), this.owner.store);
  }

  /** Deletes every event and interest stored on this device. */
  async clear() {
    await this.owner.store.replace({ events: [], interests: [] });
  }
}

/**
 * Recommendations computed in the visitor's browser from a catalog of static files and
 * a profile that never leaves the device.
 *
 * ```js
 * const rec = await Recommender.open('/catalog/', { onProgress: (p) => console.log(p) });
 * await rec.record({ itemId: '1', type: 'like' });
 * const top = await rec.recommend({ k: 10 }); // [{itemId, score, item, because}]
 * ```
 */
export class Recommender {
  /** @private */
  constructor(catalog, store, options) {
    this.catalog = catalog;
    this.store = store;
    this.options = options;
    this.encoderPromise = null;
    this.encoderInstance = null;
    this.closed = false;
    /** Warnings of the last `recommend` (e.g. events on items the catalog no longer has). */
    this.warnings = [];
    /** How long the last `recommend` took in the worker and back, in ms. */
    this.lastRecommendMs = null;
    /** See, export, import and delete the profile. */
    this.profile = new Profile(this);
  }

  /**
   * Opens the catalog at `catalogUrl` (its folder or manifest.json) and the profile
   * `profileName` in `storage` ('indexeddb', the default, or 'memory'). Item-based
   * recommendations work once the first shard is verified; the encoder (for typed
   * interests and search) is fetched only when first needed, from the catalog's model
   * folder unless `modelUrl` says otherwise.
   */
  static async open(catalogUrl, options = {}) {
    const {
      backend = 'auto', onProgress, storage = 'indexeddb', profileName = 'default', eventWeights, modelUrl, wait = 'first',
    } = options ?? {};
    if (!['auto', 'cpu', 'webgpu'].includes(backend)) throw inputError(`Recommender.open(): backend is 'auto', 'cpu' or 'webgpu', not ${JSON.stringify(backend)}`);
    if (!['indexeddb', 'memory'].includes(storage)) throw inputError(`Recommender.open(): storage is 'indexeddb' or 'memory', not ${JSON.stringify(storage)}`);
    if (typeof profileName !== 'string' || profileName === '' || profileName.length > 200) {
      throw inputError('Recommender.open(): profileName must be a non-empty string');
    }
    if (eventWeights !== undefined && (eventWeights === null || typeof eventWeights !== 'object'
      || Object.entries(eventWeights).some(([k, v]) => !EVENT_TYPES.includes(k) || !Number.isFinite(v)))) {
      throw inputError(`Recommender.open(): eventWeights maps event types (${EVENT_TYPES.join(', ')}) to finite numbers`);
    }
    const report = (p) => {
      try {
        onProgress?.(p);
      } catch {
        // A throwing progress callback must not break loading.
      }
    };
    const [catalog, store] = await Promise.all([
      Catalog.open(catalogUrl, { backend, wait, onProgress: (s) => report({ phase: 'catalog', ...s }) }),
      ProfileStore.open(storage, profileName),
    ]);
    const model = modelUrl ?? new URL(catalog.manifest.encoder.model ?? 'model/', catalog.url).href;
    return new Recommender(catalog, store, { backend, eventWeights, modelUrl: model, report });
  }

  /** The encoder, loaded on first use (typed interests, search). */
  encoder() {
    this.checkOpen();
    if (!this.encoderPromise) {
      const backend = this.options.backend;
      this.encoderPromise = Encoder.load(this.options.modelUrl, {
        backend,
        onProgress: (p) => this.options.report({ ...p, phase: `model:${p.phase}` }),
      }).then((enc) => {
        if (this.closed) {
          enc.close();
          throw new LocalrecError('localrec/closed', 'the recommender was closed');
        }
        if (enc.dims !== this.catalog.manifest.encoder.dims) {
          enc.close();
          throw new LocalrecError('localrec/format', `the model gives ${enc.dims}-dim vectors; the catalog's are ${this.catalog.manifest.encoder.dims}`);
        }
        this.encoderInstance = enc;
        return enc;
      }, (e) => {
        this.encoderPromise = null;
        throw e;
      });
    }
    return this.encoderPromise;
  }

  /** Records an event in the profile (no network). Resolves with the event as stored. */
  async record(event) {
    this.checkOpen();
    let clean;
    try {
      clean = cleanEvent(event, 'record()');
    } catch (e) {
      throw inputError(e.message);
    }
    if ((await this.store.count('events')) >= MAX_EVENTS) throw inputError(`record(): the profile holds ${MAX_EVENTS} events, the most it keeps`);
    const id = await this.store.addEvent(clean);
    return { ...clean, id };
  }

  /** Encodes `text` in the browser and adds it as an interest; resolves with `{id, text}`. */
  async addInterest(text) {
    this.checkOpen();
    if (typeof text !== 'string' || text.trim() === '' || text.length > 10_000) {
      throw inputError('addInterest() takes a non-empty string of at most 10,000 characters');
    }
    if ((await this.store.count('interests')) >= MAX_INTERESTS) throw inputError(`addInterest(): the profile holds ${MAX_INTERESTS} interests, the most it keeps`);
    const enc = await this.encoder();
    const embedding = await enc.embed([text]);
    const clean = cleanInterest({ text, embedding }, enc.dims);
    const id = await this.store.addInterest(clean);
    return { id, text };
  }

  /** Removes the interest `id` (from `addInterest` or `profile.summary()`). */
  async removeInterest(id) {
    this.checkOpen();
    await this.store.removeInterest(id);
  }

  /**
   * Recommendations for the stored profile: `[{itemId, score, item, because}]`, best first,
   * without items the visitor acted on. `filter(item)` keeps only items it returns true for.
   */
  async recommend(options = {}) {
    this.checkOpen();
    const { k = 10, scenario, diversity = 0, exclude = [], filter } = options ?? {};
    checkK(k, 'recommend');
    if (filter !== undefined && typeof filter !== 'function') throw inputError('recommend(): filter must be a function of the item');
    if (scenario !== undefined && typeof scenario !== 'string') throw inputError('recommend(): scenario must be a string');
    const { events, interests } = await this.store.all();
    const now = Date.now();
    const age = (t) => (Number.isFinite(t) ? Math.max(0, (now - t) / DAY_MS) : 0);
    const request = {
      events: events.map((e) => ({
        itemId: e.itemId, type: e.type, value: e.value, ageDays: age(e.time), ...(e.scenario ? { scenario: e.scenario } : {}),
      })),
      interests: interests.map((it) => ({ embedding: it.embedding, ageDays: age(it.time) })),
      // A filter can only drop results: ask for more, keep the first k that pass.
      k: filter ? Math.min(1000, Math.max(k * 5, k + 50)) : k,
      diversity,
      exclude,
      ...(scenario === undefined ? {} : { scenario }),
      ...(this.options.eventWeights ? { eventWeights: this.options.eventWeights } : {}),
    };
    const t0 = performance.now();
    const answer = await this.catalog.recommend(request);
    this.lastRecommendMs = performance.now() - t0;
    this.warnings = answer.warnings;
    let results = answer.results;
    if (filter) results = results.filter((r) => filter(r.item)).slice(0, k);
    return results.map((r) => this.withInterestText(r, interests));
  }

  /** Items like `itemId`: `[{itemId, score, item}]`. */
  async similar(itemId, options = {}) {
    this.checkOpen();
    const { k = 10 } = options ?? {};
    checkK(k, 'similar');
    return (await this.catalog.similar(itemId, { k })).results;
  }

  /** Items whose text matches `text` (encoded in the browser): `[{itemId, score, item}]`. */
  async search(text, options = {}) {
    this.checkOpen();
    const { k = 10 } = options ?? {};
    checkK(k, 'search');
    if (typeof text !== 'string' || text.trim() === '' || text.length > 10_000) {
      throw inputError('search() takes a non-empty string of at most 10,000 characters');
    }
    const enc = await this.encoder();
    const embedding = Array.from(await enc.embed([text]));
    // Title matches are re-ranked from a wider pool, so that a typed title comes first
    // even where the encoder ranks a sequel above it.
    const pool = Math.min(1000, Math.max(50, 5 * k));
    const answer = await this.catalog.recommend({ interests: [{ embedding }], k: pool, rankBy: 'text' });
    return rerankByTitle(text, answer.results.map(({ itemId, score, item }) => ({ itemId, score, item }))).slice(0, k);
  }

  /** Which backends are in use, why, and their measured speed (the encoder's once loaded). */
  backendInfo() {
    const enc = this.encoderInstance;
    return {
      requested: this.options.backend,
      scoring: {
        backend: this.catalog.scoring,
        reason: this.catalog.scoringReason,
        itemsLoaded: this.catalog.status.itemsLoaded,
        lastRecommendMs: this.lastRecommendMs ?? null,
      },
      encoder: enc
        ? { backend: enc.backend, calibration: enc.calibration, adapter: enc.adapter, fallbackReason: enc.fallbackReason }
        : null,
      profile: { storage: this.store.storage, persistent: this.store.storage === 'indexeddb', fallbackReason: this.store.fallbackReason },
    };
  }

  /**
   * Network requests the catalog's and the encoder's workers have made so far (resource
   * timing; files served from Cache Storage are not requests). Add the page's own
   * `performance.getEntriesByType('resource')` for the whole picture.
   */
  async requestCount() {
    this.checkOpen();
    const enc = this.encoderInstance;
    const [a, b] = await Promise.all([this.catalog.requestCount(), enc ? enc.requestCount() : 0]);
    return (a ?? 0) + (b ?? 0);
  }

  /** Memory of the workers (wasm linear memories, JS heap where known), for diagnostics. */
  async memory() {
    this.checkOpen();
    const enc = this.encoderInstance;
    return { catalog: await this.catalog.memory(), encoder: enc ? await enc.memory() : null };
  }

  /** Frees the catalog, the encoder and their workers; the stored profile stays. */
  async close() {
    if (this.closed) return;
    this.closed = true;
    this.store.close();
    const enc = this.encoderInstance;
    await Promise.allSettled([this.catalog.close(), enc ? enc.close() : null]);
  }

  /** @private */
  withInterestText(result, interests) {
    const b = result.because;
    if (b && Number.isInteger(b.interest) && interests[b.interest]) {
      return { ...result, because: { ...b, interestId: interests[b.interest].id, text: interests[b.interest].text } };
    }
    return result;
  }

  /** @private */
  checkOpen() {
    if (this.closed) throw new LocalrecError('localrec/closed', 'the recommender was closed');
  }
}

// The Recommender: a catalog, the visitor's profile on this device, and the encoder
// loaded only when something needs text encoded. The main thread only posts messages:
// the catalog and the encoder each run in their own Web Worker.

import { Catalog } from './catalog.js';
import {
  checkDiversity, checkK, checkOneOf, checkSignal, checkText, optionsOf, safeCallback,
} from './checks.js';
import { Encoder } from './encoder.js';
import { LocalrecError, inputError } from './errors.js';
import {
  BACKENDS, CATALOG_WAIT, DEFAULT_K, EVENT_TYPES, MAX_K, MAX_PROFILE_NAME_CHARS, PROFILE_FORMAT, PROFILE_VERSION, STORAGE,
} from './limits.js';
import {
  ProfileStore, cleanEvent, cleanInterest, cleanSnapshot, itemKey, parseProfileDocument, toBase64,
} from './profile.js';
import { normalizeText, titlesFirst } from './search.js';

const DAY_MS = 86_400_000;

/**
 * Results in the shape every query of the package gives (`{results, partial,
 * warnings}`), as an array of the results that also carries those three fields, so code
 * that reads it as a list keeps working.
 */
function answerOf(results, partial, warnings) {
  return Object.assign([...results], { results, partial, warnings });
}

/**
 * A result whose reason names what the page can show: the typed interest's id and text,
 * the type of the event on the item it names, or, for an event recorded against another
 * catalog, that event's type, item id, catalog and the item's title.
 */
function explained(result, events, interests, foreign) {
  const b = result.because;
  if (b && Number.isInteger(b.interest) && interests[b.interest]) {
    return { ...result, because: { ...b, interestId: interests[b.interest].id, text: interests[b.interest].text } };
  }
  if (b && Number.isInteger(b.event) && events[b.event]) return { ...result, because: { ...b, type: events[b.event].type } };
  if (b && Number.isInteger(b.foreign) && foreign[b.foreign]) {
    const { event, snapshot } = foreign[b.foreign];
    return {
      ...result,
      because: {
        type: event.type, foreign: true, itemId: event.itemId, catalog: event.catalog, title: snapshot.title, contribution: b.contribution,
      },
    };
  }
  return result;
}

/** A snapshot's embedding, as the catalog that stored it scores it (`values[i] * scale`). */
function dequantized({ values, scale }) {
  return Array.from(values, (q) => q * scale);
}

/** Names for a warning: the first few, then how many more. */
function someOf(names) {
  const list = [...names];
  return list.length <= 3 ? list.join(', ') : `${list.slice(0, 3).join(', ')} and ${list.length - 3} more`;
}

/**
 * Splits the profile's events for the catalog `manifest`: its own (recorded against it,
 * or before events named their catalog) and those of other catalogs whose item snapshot
 * was made with the same encoder (name and width). The rest are left out, each kind with
 * one warning. Also returns the snapshots by `itemKey`.
 */
function eventsFor(manifest, events, snapshots) {
  const { name, encoder } = manifest;
  const own = [];
  const foreign = [];
  const otherEncoder = new Map();
  const unsnapped = new Set();
  let otherCount = 0;
  let unsnappedCount = 0;
  const byItem = new Map(snapshots.map((s) => [itemKey(s.catalog, s.itemId), s]));
  for (const event of events) {
    if (typeof event.catalog !== 'string' || event.catalog === name) {
      own.push(event);
      continue;
    }
    const snapshot = byItem.get(itemKey(event.catalog, event.itemId));
    if (!snapshot || snapshot.values?.length !== snapshot.encoder?.dims) {
      unsnappedCount++;
      unsnapped.add(event.catalog);
    } else if (snapshot.encoder.name !== encoder.name || snapshot.encoder.dims !== encoder.dims) {
      otherCount++;
      otherEncoder.set(event.catalog, `${event.catalog}: ${snapshot.encoder.name}, ${snapshot.encoder.dims} dims`);
    } else {
      foreign.push({ event, snapshot });
    }
  }
  const warnings = [];
  if (otherCount) {
    warnings.push(`${otherCount} event${otherCount === 1 ? '' : 's'} recorded against other catalogs (${someOf(otherEncoder.values())}) left out: their items were embedded by another encoder than this catalog's (${encoder.name}, ${encoder.dims} dims)`);
  }
  if (unsnappedCount) {
    warnings.push(`${unsnappedCount} event${unsnappedCount === 1 ? '' : 's'} recorded against other catalogs (${someOf(unsnapped)}) left out: the profile holds no embedding of their items (not loaded when the event was recorded, or imported without one)`);
  }
  return { own, foreign, warnings, byItem };
}

/** What the profile holds, as the page may show it. */
function summarize(data, store, catalog) {
  const byType = Object.fromEntries(EVENT_TYPES.map((t) => [t, 0]));
  for (const e of data.events) byType[e.type] = (byType[e.type] ?? 0) + 1;
  const byCatalog = {};
  for (const e of data.events) {
    const name = e.catalog ?? catalog;
    byCatalog[name] = (byCatalog[name] ?? 0) + 1;
  }
  const times = data.events.map((e) => e.time).filter(Number.isFinite);
  return {
    storage: store.storage,
    persistent: store.storage === 'indexeddb',
    persisted: store.persisted ?? null,
    fallbackReason: store.fallbackReason,
    events: data.events.length,
    eventsByType: byType,
    eventsByCatalog: byCatalog,
    interests: data.interests.map(({ id, text, time }) => ({ id, text, time })),
    items: new Set(data.events.map((e) => itemKey(e.catalog ?? catalog, e.itemId))).size,
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
    return summarize(await this.owner.store.all(), this.owner.store, this.owner.catalog.manifest.name);
  }

  /**
   * The whole profile, every catalog's events included, as a versioned JSON-ready
   * document: events (with their catalog), interests with their vectors, and the item
   * snapshots (int8 values in base64) that let other catalogs score with the events.
   */
  async export() {
    const data = await this.owner.store.all();
    return {
      format: PROFILE_FORMAT,
      version: PROFILE_VERSION,
      exportedAt: new Date().toISOString(),
      catalog: this.owner.catalog.manifest.name,
      encoder: this.owner.catalog.manifest.encoder.name,
      events: data.events.map(({ itemId, type, value, scenario, time, catalog }) => ({ itemId, type, value, scenario, time, catalog })),
      interests: data.interests.map(({ text, embedding, time }) => ({ text, embedding, time })),
      snapshots: data.snapshots.map(({ catalog, itemId, encoder, scale, values, title }) => ({
        catalog, itemId, encoder: { name: encoder.name, dims: encoder.dims }, scale, values: toBase64(values), title,
      })),
    };
  }

  /**
   * Replaces the profile with a document from `export()` (an object or its JSON text).
   * A malformed, oversized, wrong-version or hostile document is refused with
   * `localrec/input`, and one the device cannot store with `localrec/storage`; either way
   * the profile stays as it was.
   */
  async import(doc) {
    let clean;
    try {
      clean = parseProfileDocument(doc, this.owner.catalog.manifest.encoder.dims);
    } catch (e) {
      throw inputError(`profile.import(): ${e.message}; the profile was not changed`);
    }
    await this.owner.store.replace(clean);
    return summarize(await this.owner.store.all(), this.owner.store, this.owner.catalog.manifest.name);
  }

  /**
   * Deletes every event (of every catalog), interest and item snapshot stored on this
   * device, or rejects with `localrec/storage` saying what is still stored.
   */
  async clear() {
    await this.owner.store.clear();
  }
}

/**
 * Recommendations computed in the visitor's browser from a catalog of static files and
 * a profile that never leaves the device.
 *
 * ```js
 * const rec = await Recommender.open('/catalog/', { onProgress: (p) => console.log(p.source, p.status, p.fraction) });
 * await rec.record({ itemId: '1', type: 'like' });
 * const top = await rec.recommend({ k: 10 }); // [{itemId, score, item, because}], with .partial and .warnings
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
    /** How long the last `recommend` took in the worker and back, in ms. */
    this.lastRecommendMs = null;
    /** @private Ids of this catalog's events that a fully loaded catalog does not hold. */
    this.notInCatalog = new Set();
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
  static async open(catalogUrl, options) {
    const {
      backend = 'auto', onProgress, storage = 'indexeddb', profileName = 'default', eventWeights, modelUrl, wait = 'first',
      signal, workerUrls = {},
    } = optionsOf(options, 'Recommender.open');
    checkOneOf(backend, BACKENDS, 'backend', 'Recommender.open');
    checkOneOf(storage, STORAGE, 'storage', 'Recommender.open');
    checkOneOf(wait, CATALOG_WAIT, 'wait', 'Recommender.open');
    if (typeof profileName !== 'string' || profileName === '' || profileName.length > MAX_PROFILE_NAME_CHARS) {
      throw inputError(`Recommender.open(): profileName must be a non-empty string of at most ${MAX_PROFILE_NAME_CHARS} characters`);
    }
    if (eventWeights !== undefined && (eventWeights === null || typeof eventWeights !== 'object'
      || Object.entries(eventWeights).some(([k, v]) => !EVENT_TYPES.includes(k) || !Number.isFinite(v)))) {
      throw inputError(`Recommender.open(): eventWeights maps event types (${EVENT_TYPES.join(', ')}) to finite numbers`);
    }
    checkSignal(signal, 'Recommender.open');
    const report = safeCallback(onProgress);
    const [catalog, store] = await Promise.all([
      Catalog.open(catalogUrl, { backend, wait, onProgress: report, signal, workerUrl: workerUrls.catalog }),
      ProfileStore.open(storage, profileName),
    ]);
    // A folder the page names itself is the page's choice; the catalog's own is confined
    // to the catalog's folder by the worker. Either way the files must be the ones the
    // catalog vouches for.
    const model = modelUrl === undefined ? catalog.modelUrl : new URL(String(modelUrl), globalThis.location?.href).href;
    return new Recommender(catalog, store, { backend, eventWeights, modelUrl: model, report, encoderWorkerUrl: workerUrls.encoder });
  }

  /** The encoder, loaded on first use (typed interests, search), with the model files the catalog vouches for. */
  encoder() {
    this.checkOpen();
    if (!this.encoderPromise) {
      const { encoder: identity } = this.catalog.manifest;
      if (!Array.isArray(identity.files) || identity.files.length === 0) {
        return Promise.reject(new LocalrecError(
          'localrec/integrity',
          "the catalog's manifest vouches for no model files (it was built before encoder.files was recorded); rebuild it with localrec build",
        ));
      }
      this.encoderPromise = Encoder.load(this.options.modelUrl, {
        backend: this.options.backend,
        files: identity.files,
        onProgress: this.options.report,
        workerUrl: this.options.encoderWorkerUrl,
      }).then((enc) => {
        if (this.closed) {
          enc.close();
          throw new LocalrecError('localrec/closed', 'the recommender was closed');
        }
        if (enc.dims !== identity.dims) {
          enc.close();
          throw new LocalrecError('localrec/format', `the model gives ${enc.dims}-dim vectors; the catalog's are ${identity.dims}`);
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

  /**
   * Records an event in the profile (no network), against this catalog (`catalog`, its
   * manifest's name), with a snapshot of the item (its int8 embedding row, scale, encoder
   * and title) when the item is loaded (else the first `recommend()` after its shard
   * loads takes it), so that other catalogs with the same encoder can score with it.
   * Resolves with the event as stored. At MAX_EVENTS the oldest events roll off.
   */
  async record(event) {
    this.checkOpen();
    let clean;
    try {
      clean = cleanEvent(event, 'record()');
    } catch (e) {
      throw inputError(e.message);
    }
    clean.catalog = this.catalog.manifest.name;
    const id = await this.store.addEvent(clean, await this.snapshotOf(clean.itemId));
    return { ...clean, id };
  }

  /** @private The profile's snapshot of this catalog's item, or null while it is not loaded. */
  async snapshotOf(itemId) {
    const { name, encoder } = this.catalog.manifest;
    const item = await this.catalog.quantizedItem(itemId);
    return item
      ? cleanSnapshot({
        catalog: name, itemId, encoder: { name: encoder.name, dims: encoder.dims }, scale: item.scale, values: item.embedding, title: item.title,
      })
      : null;
  }

  /**
   * @private Takes the snapshots this catalog's events lack (recorded, or imported, before
   * their item's shard loaded) of the items loaded now, so that other catalogs can score
   * with those events too (`byItem`: the stored snapshots by `itemKey`). `complete`: every
   * shard is loaded, so an item still missing is not in the catalog and is not asked for
   * again. Resolves with this call's warnings: a failure changes nothing stored, and the
   * next call tries again.
   */
  async fillSnapshots(events, byItem, complete) {
    const { name } = this.catalog.manifest;
    const missing = new Set(events.filter((e) => e.catalog === name && !byItem.has(itemKey(name, e.itemId)) && !this.notInCatalog.has(e.itemId)).map((e) => e.itemId));
    if (missing.size === 0) return [];
    try {
      const taken = await Promise.all([...missing].map((id) => this.snapshotOf(id)));
      if (complete) [...missing].filter((_, i) => !taken[i]).forEach((id) => this.notInCatalog.add(id));
      const found = taken.filter(Boolean);
      if (found.length > 0) await this.store.addSnapshots(found);
      return [];
    } catch (e) {
      return [`the snapshots of ${missing.size} item${missing.size === 1 ? '' : 's'} for other catalogs could not be stored (${e.message}); the next recommend() tries again`];
    }
  }

  /** Encodes `text` in the browser and adds it as an interest; resolves with `{id, text}`. */
  async addInterest(text, options) {
    this.checkOpen();
    checkText(text, 'addInterest');
    const { signal } = optionsOf(options, 'addInterest');
    checkSignal(signal, 'addInterest');
    const enc = await this.encoder();
    const embedding = await enc.embed([text], { signal });
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
   * without items the visitor acted on, also carrying `results` (the same list),
   * `partial` and this call's `warnings`. `filter(item)` keeps only items it returns true for.
   */
  async recommend(options) {
    this.checkOpen();
    const { k = DEFAULT_K, scenario, diversity = 0, exclude = [], filter, signal } = optionsOf(options, 'recommend');
    checkK(k, 'recommend');
    checkDiversity(diversity, 'recommend');
    if (filter !== undefined && typeof filter !== 'function') throw inputError('recommend(): filter must be a function of the item');
    if (scenario !== undefined && typeof scenario !== 'string') throw inputError('recommend(): scenario must be a string');
    if (!Array.isArray(exclude)) throw inputError('recommend(): exclude must be an array of item ids');
    checkSignal(signal, 'recommend');
    const { events: stored, interests: typed, snapshots } = await this.store.all();
    const { own: events, foreign, warnings, byItem } = eventsFor(this.catalog.manifest, stored, snapshots);
    // Typed interests are the profile's too: one encoded for a catalog of another width
    // (the site's other catalog) cannot be scored here.
    const { dims } = this.catalog.manifest.encoder;
    const interests = typed.filter((it) => it.embedding?.length === dims);
    if (interests.length < typed.length) {
      const n = typed.length - interests.length;
      warnings.push(`${n} typed interest${n === 1 ? '' : 's'} left out: encoded for another catalog's encoder, not ${dims}-dim like this catalog's`);
    }
    const now = Date.now();
    const age = (t) => (Number.isFinite(t) ? Math.max(0, (now - t) / DAY_MS) : 0);
    const embeddings = new Map();
    const embeddingOf = (snapshot) => {
      const key = itemKey(snapshot.catalog, snapshot.itemId);
      if (!embeddings.has(key)) embeddings.set(key, dequantized(snapshot));
      return embeddings.get(key);
    };
    const request = {
      events: events.map((e) => ({
        itemId: e.itemId, type: e.type, value: e.value, ageDays: age(e.time), ...(e.scenario ? { scenario: e.scenario } : {}),
      })),
      interests: interests.map((it) => ({ embedding: it.embedding, ageDays: age(it.time) })),
      foreign: foreign.map(({ event, snapshot }) => ({
        embedding: embeddingOf(snapshot), type: event.type, ...(Number.isFinite(event.value) ? { value: event.value } : {}), ageDays: age(event.time),
      })),
      // A filter can only drop results: ask for more, keep the first k that pass.
      k: filter ? Math.min(MAX_K, Math.max(k * 5, k + 50)) : k,
      diversity,
      exclude,
      ...(scenario === undefined ? {} : { scenario }),
      ...(this.options.eventWeights ? { eventWeights: this.options.eventWeights } : {}),
    };
    const t0 = performance.now();
    const answer = await this.catalog.recommend(request, { signal });
    this.lastRecommendMs = performance.now() - t0;
    warnings.push(...(await this.fillSnapshots(events, byItem, !answer.partial)));
    let results = answer.results;
    if (filter) results = results.filter((r) => filter(r.item)).slice(0, k);
    return answerOf(results.map((r) => explained(r, events, interests, foreign)), answer.partial, [...answer.warnings, ...warnings]);
  }

  /** Items like `itemId`: `[{itemId, score, item}]`, with `results`, `partial` and `warnings`. */
  async similar(itemId, options) {
    this.checkOpen();
    const { k = DEFAULT_K, signal } = optionsOf(options, 'similar');
    const answer = await this.catalog.similar(itemId, { k, signal });
    return answerOf(answer.results, answer.partial, answer.warnings);
  }

  /**
   * Items whose text matches `text` (encoded in the browser): `[{itemId, score, item}]`,
   * with `results`, `partial` and `warnings`. Of the encoder's ranking of a wider pool,
   * results titled like `text` come first (titles and query compared through
   * `normalizeTitle`, by default case and punctuation aside), then it is cut to `k`.
   */
  async search(text, options) {
    this.checkOpen();
    const { k = DEFAULT_K, signal, normalizeTitle = normalizeText } = optionsOf(options, 'search');
    checkK(k, 'search');
    checkText(text, 'search');
    checkSignal(signal, 'search');
    if (typeof normalizeTitle !== 'function') throw inputError('search(): normalizeTitle must be a function of a string');
    const enc = await this.encoder();
    const embedding = Array.from(await enc.embed([text], { signal }));
    // Re-ranked from a wider pool, so that a typed title comes first even where the
    // encoder ranks a sequel above it.
    const pool = Math.min(MAX_K, Math.max(50, 5 * k));
    const answer = await this.catalog.recommend({ interests: [{ embedding }], k: pool, rankBy: 'text' }, { signal });
    const ranked = titlesFirst(text, answer.results.map(({ itemId, score, item }) => ({ itemId, score, item })), normalizeTitle).slice(0, k);
    return answerOf(ranked, answer.partial, answer.warnings);
  }

  /** Which backends are in use, why, and their measured speed (the encoder's once loaded). */
  backendInfo() {
    const enc = this.encoderInstance;
    return {
      requested: this.options.backend,
      scoring: {
        backend: this.catalog.scoring,
        reason: this.catalog.scoringReason,
        fallbackReason: this.catalog.fallbackReason,
        itemsLoaded: this.catalog.status.itemsLoaded,
        lastRecommendMs: this.lastRecommendMs ?? null,
      },
      encoder: enc
        ? { backend: enc.backend, calibration: enc.calibration, adapter: enc.adapter, fallbackReason: enc.fallbackReason }
        : null,
      profile: {
        storage: this.store.storage, persistent: this.store.storage === 'indexeddb', persisted: this.store.persisted ?? null, fallbackReason: this.store.fallbackReason,
      },
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
  checkOpen() {
    if (this.closed) throw new LocalrecError('localrec/closed', 'the recommender was closed');
  }
}

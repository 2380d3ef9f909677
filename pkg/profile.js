// The visitor's profile on this device: events and typed interests, kept in IndexedDB
// (or in memory where IndexedDB is missing, or where the page asked for memory). Nothing
// here talks to the network. Every write is one IndexedDB transaction, and every read goes
// to the database, so several tabs of the same site share one profile and lose no event.
//
// A refused write (quota, a lost connection, another tab upgrading the database) is
// retried once on a fresh connection. Only when IndexedDB still refuses does the profile
// move to memory, and then seeded from what is stored at that moment, never from empty:
// a write whose stored profile cannot even be read is rejected and changes nothing.
// `replace` (import) and `clear` never settle for memory: they change the stored copy or
// reject, so a profile the visitor deleted does not come back on reload.
//
// One profile serves every catalog of the site opened with its name. Each event keeps the
// catalog it was recorded against (`catalog`, the manifest's name; events stored before
// there was one have none and count as any reading catalog's own), and the profile keeps
// one snapshot per (catalog, item) with events: the item's int8 embedding row, its scale,
// the catalog's encoder and the title, written in the event's transaction. Another
// catalog with the same encoder scores with those events without loading the first one.

import { LocalrecError } from './errors.js';
import {
  EVENT_TYPES, MAX_EMBEDDING_DIMS, MAX_EVENTS, MAX_IMPORT_CHARS, MAX_INTERESTS, MAX_ITEM_ID_CHARS, MAX_SCENARIO_CHARS,
  MAX_TEXT_CHARS, PROFILE_FORMAT, PROFILE_VERSION, RATE_EVENT, RATING_RANGE,
} from './limits.js';

const STORES = ['events', 'interests', 'snapshots'];
/** The events index by (catalog, item id): which snapshots still have events. */
const ITEM_INDEX = 'item';
/** Profile documents `import()` reads: version 1 (one catalog, no snapshots) and this one. */
const READABLE_VERSIONS = [1, PROFILE_VERSION];
/** How long `clear()` waits for other tabs to let go of the database before it gives up. */
const DELETE_BLOCKED_MS = 5_000;

/** An error for the page: the profile could not be stored, read or deleted. */
export function storageError(message) {
  return new LocalrecError('localrec/storage', message);
}

/** Errors of this module (caps), passed on as they are; a DOMException's numeric `code` is not one. */
function ours(e) {
  return e?.name === 'LocalrecError';
}

function describe(e) {
  return `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
}

function plural(n, one) {
  return `${n} ${one}${n === 1 ? '' : 's'}`;
}

function holding({ events, interests }) {
  return `${plural(events, 'event')} and ${plural(interests, 'interest')}`;
}

function idbAvailable() {
  return typeof indexedDB !== 'undefined' && indexedDB !== null;
}

function databaseName(name) {
  return `localrec-profile:${name}`;
}

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new DOMException('the transaction was aborted', 'AbortError'));
  });
}

/** Aborts `tx` after a failure so that nothing of it lands (a no-op once it is over). */
function abandon(tx) {
  try {
    tx.abort();
  } catch {
    // Already finished or aborting.
  }
}

/** The key of an item's snapshot (and of its events in the `item` index). */
function snapshotKey(catalog, itemId) {
  return [catalog, itemId];
}

/** Whether `db` has every store and index this version uses. */
function complete(db) {
  if (!STORES.every((s) => db.objectStoreNames.contains(s))) return false;
  return db.transaction('events', 'readonly').objectStore('events').indexNames.contains(ITEM_INDEX);
}

/**
 * Opens `name` at its current version (or `version`), creating missing stores and indexes
 * on upgrade; what is stored stays (events from before catalogs were recorded have no
 * `catalog`, so the index leaves them out).
 */
function openDatabase(name, version) {
  return new Promise((resolve, reject) => {
    const request = version === undefined ? indexedDB.open(name) : indexedDB.open(name, version);
    request.onupgradeneeded = () => {
      const db = request.result;
      for (const store of STORES) {
        if (db.objectStoreNames.contains(store)) continue;
        if (store === 'snapshots') db.createObjectStore(store, { keyPath: ['catalog', 'itemId'] });
        else db.createObjectStore(store, { keyPath: 'id', autoIncrement: true });
      }
      const events = request.transaction.objectStore('events');
      if (!events.indexNames.contains(ITEM_INDEX)) events.createIndex(ITEM_INDEX, ['catalog', 'itemId']);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function deleteDatabase(name) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(name);
    let timer = null;
    request.onsuccess = () => {
      clearTimeout(timer);
      resolve();
    };
    request.onerror = () => {
      clearTimeout(timer);
      reject(request.error);
    };
    // Tabs running this library close their connection on `versionchange`; one that does
    // not would hold the deletion forever.
    request.onblocked = () => {
      timer = setTimeout(() => reject(new DOMException('another tab of this site keeps the profile open; it is deleted once that tab closes', 'BlockedError')), DELETE_BLOCKED_MS);
    };
  });
}

/** The profile in one IndexedDB database per profile name. */
class IndexedDbBackend {
  /**
   * Opens the database at whatever version it has (another tab may have upgraded it) and
   * adds the stores it lacks by one upgrade.
   */
  static async open(name) {
    if (!idbAvailable()) throw new Error('IndexedDB is not available here');
    let db = await openDatabase(databaseName(name));
    if (!complete(db)) {
      const version = db.version + 1;
      db.close();
      db = await openDatabase(databaseName(name), version);
    }
    // Another tab upgrading or deleting the database closes this connection rather than
    // blocking it; the next operation here fails and reopens.
    db.onversionchange = () => db.close();
    return new IndexedDbBackend(db);
  }

  constructor(db) {
    this.db = db;
    this.kind = 'indexeddb';
  }

  /**
   * Adds an interest, counting and adding in one transaction so that tabs writing at once
   * cannot pass the cap together; at MAX_INTERESTS the add is refused.
   */
  async add(store, value) {
    const tx = this.db.transaction(store, 'readwrite');
    try {
      const objects = tx.objectStore(store);
      const count = await promised(objects.count());
      if (count >= capOf(store)) throw capError(store);
      const id = await promised(objects.add(value));
      await done(tx);
      return id;
    } catch (e) {
      abandon(tx);
      throw e;
    }
  }

  /**
   * Adds an event and its item's snapshot (when there is one) in one transaction. At
   * MAX_EVENTS the oldest events (lowest ids: the first recorded or imported) are deleted
   * in the same transaction, with the snapshots no event names any more.
   */
  async addEvent(event, snapshot) {
    const tx = this.db.transaction(['events', 'snapshots'], 'readwrite');
    try {
      const events = tx.objectStore('events');
      const snapshots = tx.objectStore('snapshots');
      const count = await promised(events.count());
      if (count >= MAX_EVENTS) {
        const old = await promised(events.getAll(null, count - MAX_EVENTS + 1));
        events.delete(IDBKeyRange.bound(old[0].id, old[old.length - 1].id));
        const items = new Map(old.filter((e) => typeof e.catalog === 'string').map((e) => [itemKey(e.catalog, e.itemId), e]));
        for (const e of items.values()) {
          const key = snapshotKey(e.catalog, e.itemId);
          if ((await promised(events.index(ITEM_INDEX).count(key))) === 0) snapshots.delete(key);
        }
      }
      const id = await promised(events.add(event));
      if (snapshot) snapshots.put(snapshot);
      await done(tx);
      return id;
    } catch (e) {
      abandon(tx);
      throw e;
    }
  }

  /**
   * Stores snapshots taken after their events were recorded (the item's shard had not
   * loaded then), in one transaction: each only while an event still names its item and
   * no snapshot of it is stored. Resolves with how many were stored.
   */
  async addSnapshots(list) {
    const tx = this.db.transaction(['events', 'snapshots'], 'readwrite');
    try {
      const events = tx.objectStore('events').index(ITEM_INDEX);
      const snapshots = tx.objectStore('snapshots');
      let added = 0;
      for (const snapshot of list) {
        const key = snapshotKey(snapshot.catalog, snapshot.itemId);
        const [named, stored] = await Promise.all([promised(events.count(key)), promised(snapshots.count(key))]);
        if (named > 0 && stored === 0) {
          snapshots.put(snapshot);
          added++;
        }
      }
      await done(tx);
      return added;
    } catch (e) {
      abandon(tx);
      throw e;
    }
  }

  async count(store) {
    const tx = this.db.transaction(store, 'readonly');
    return promised(tx.objectStore(store).count());
  }

  async counts() {
    const tx = this.db.transaction(STORES, 'readonly');
    const [events, interests, snapshots] = await Promise.all(STORES.map((s) => promised(tx.objectStore(s).count())));
    return { events, interests, snapshots };
  }

  async delete(store, id) {
    const tx = this.db.transaction(store, 'readwrite');
    try {
      tx.objectStore(store).delete(id);
      await done(tx);
    } catch (e) {
      abandon(tx);
      throw e;
    }
  }

  async all() {
    const tx = this.db.transaction(STORES, 'readonly');
    const [events, interests, snapshots] = await Promise.all(STORES.map((s) => promised(tx.objectStore(s).getAll())));
    return { events, interests, snapshots };
  }

  /** Replaces everything in one transaction: it all lands, or nothing changes. */
  async replace({ events, interests, snapshots = [] }) {
    const tx = this.db.transaction(STORES, 'readwrite');
    try {
      const [e, i, s] = STORES.map((name) => tx.objectStore(name));
      e.clear();
      i.clear();
      s.clear();
      for (const v of events) e.add(v);
      for (const v of interests) i.add(v);
      for (const v of snapshots) s.put(v);
      await done(tx);
    } catch (e) {
      // A request that throws must not leave the clear committed without the adds.
      abandon(tx);
      throw e;
    }
  }

  close() {
    this.db.close();
  }
}

function capOf(store) {
  return store === 'events' ? MAX_EVENTS : MAX_INTERESTS;
}

function capError(store) {
  return new LocalrecError('localrec/input', `the profile holds ${capOf(store)} ${store}, the most it keeps; remove one first`);
}

/** One text key for an item of a catalog (in memory: snapshots, and which items have events). */
export function itemKey(catalog, itemId) {
  return `${catalog}\u0000${itemId}`;
}

/** The profile in this page's memory only (gone on reload). */
class MemoryBackend {
  constructor(initial = { events: [], interests: [], snapshots: [] }) {
    this.kind = 'memory';
    this.data = { events: [...initial.events], interests: [...initial.interests] };
    this.snapshots = new Map((initial.snapshots ?? []).map((s) => [itemKey(s.catalog, s.itemId), s]));
    this.next = 1 + [...initial.events, ...initial.interests].reduce((m, v) => Math.max(m, v.id ?? 0), 0);
  }

  /** Same cap as IndexedDB: at MAX_INTERESTS an interest is refused. */
  async add(store, value) {
    const list = this.data[store];
    if (list.length >= capOf(store)) throw capError(store);
    const id = this.next++;
    list.push({ ...value, id });
    return id;
  }

  /** Same as IndexedDB: the oldest events roll off, with the snapshots no event names any more. */
  async addEvent(event, snapshot) {
    const list = this.data.events;
    if (list.length >= MAX_EVENTS) {
      const old = list.splice(0, list.length - MAX_EVENTS + 1);
      const left = new Set(list.filter((e) => typeof e.catalog === 'string').map((e) => itemKey(e.catalog, e.itemId)));
      for (const e of old) {
        if (typeof e.catalog === 'string' && !left.has(itemKey(e.catalog, e.itemId))) this.snapshots.delete(itemKey(e.catalog, e.itemId));
      }
    }
    const id = this.next++;
    list.push({ ...event, id });
    if (snapshot) this.snapshots.set(itemKey(snapshot.catalog, snapshot.itemId), snapshot);
    return id;
  }

  /** Same as IndexedDB: a snapshot lands only while an event names its item and none is stored. */
  async addSnapshots(list) {
    const named = new Set(this.data.events.filter((e) => typeof e.catalog === 'string').map((e) => itemKey(e.catalog, e.itemId)));
    let added = 0;
    for (const snapshot of list) {
      const key = itemKey(snapshot.catalog, snapshot.itemId);
      if (named.has(key) && !this.snapshots.has(key)) {
        this.snapshots.set(key, snapshot);
        added++;
      }
    }
    return added;
  }

  async count(store) {
    return store === 'snapshots' ? this.snapshots.size : this.data[store].length;
  }

  async counts() {
    return { events: this.data.events.length, interests: this.data.interests.length, snapshots: this.snapshots.size };
  }

  async delete(store, id) {
    this.data[store] = this.data[store].filter((v) => v.id !== id);
  }

  async all() {
    return { events: [...this.data.events], interests: [...this.data.interests], snapshots: [...this.snapshots.values()] };
  }

  async replace({ events, interests, snapshots = [] }) {
    this.data = { events: [], interests: [] };
    for (const v of events) this.data.events.push({ ...v, id: this.next++ });
    for (const v of interests) this.data.interests.push({ ...v, id: this.next++ });
    this.snapshots = new Map(snapshots.map((s) => [itemKey(s.catalog, s.itemId), s]));
  }

  close() {}
}

/** Whether `id` is an item id as events and snapshots hold it. */
function isItemId(id) {
  return (typeof id === 'string' && id.length > 0 && id.length <= MAX_ITEM_ID_CHARS) || Number.isSafeInteger(id);
}

/** A catalog's name (its manifest's `name`) as events and snapshots hold it; throws a message otherwise. */
function checkName(name, where, what) {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_ITEM_ID_CHARS) {
    throw new Error(`${where}: ${what} must be a non-empty string of at most ${MAX_ITEM_ID_CHARS} characters`);
  }
}

/**
 * Copies only the known fields of an event, checked; throws a message on bad input.
 * `catalog`, where given, is the name of the catalog it was recorded against.
 */
export function cleanEvent(e, where = 'event') {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new Error(`${where} is not an object`);
  const { itemId, type, value, scenario, time, catalog } = e;
  if (!isItemId(itemId)) {
    throw new Error(`${where}: itemId must be a non-empty string or a whole number`);
  }
  if (catalog !== undefined && catalog !== null) checkName(catalog, where, 'catalog');
  if (!EVENT_TYPES.includes(type)) throw new Error(`${where}: type must be one of ${EVENT_TYPES.join(', ')}, not ${JSON.stringify(type)}`);
  if (value !== undefined && value !== null && !Number.isFinite(value)) throw new Error(`${where}: value must be a finite number`);
  const [lo, hi] = RATING_RANGE;
  if (type === RATE_EVENT && !(Number.isFinite(value) && value >= lo && value <= hi)) {
    throw new Error(`${where}: a rate event needs a value from ${lo} to ${hi}`);
  }
  if (scenario !== undefined && scenario !== null && (typeof scenario !== 'string' || scenario.length > MAX_SCENARIO_CHARS)) {
    throw new Error(`${where}: scenario must be a string`);
  }
  if (time !== undefined && !Number.isFinite(time)) throw new Error(`${where}: time must be milliseconds since the epoch`);
  const out = { itemId: String(itemId), type, time: time ?? Date.now() };
  if (Number.isFinite(value)) out.value = value;
  if (typeof scenario === 'string') out.scenario = scenario;
  if (typeof catalog === 'string') out.catalog = catalog;
  return out;
}

/** A snapshot's int8 values as base64 (the export's compact form: 4 characters per 3 values). */
export function toBase64(values) {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** `dims` int8 values from their base64; throws a message when it is not exactly that. */
function fromBase64(text, dims, where) {
  const wrong = `${where}: values must be the item's ${dims} int8 values in base64`;
  // Checked before decoding, so that a hostile string costs nothing.
  if (typeof text !== 'string' || text.length !== 4 * Math.ceil(dims / 3)) throw new Error(wrong);
  let binary;
  try {
    binary = atob(text);
  } catch {
    throw new Error(wrong);
  }
  if (binary.length !== dims) throw new Error(wrong);
  const out = new Int8Array(dims);
  for (let i = 0; i < dims; i++) out[i] = (binary.charCodeAt(i) << 24) >> 24;
  return out;
}

/**
 * Copies only the known fields of an item snapshot (`{catalog, itemId, encoder: {name,
 * dims}, scale, values, title}`, `values` an Int8Array or its base64), checked; throws a
 * message on bad input.
 */
export function cleanSnapshot(snap, where = 'snapshot') {
  if (snap === null || typeof snap !== 'object' || Array.isArray(snap)) throw new Error(`${where} is not an object`);
  const { catalog, itemId, encoder, scale, values, title } = snap;
  checkName(catalog, where, 'catalog');
  if (!isItemId(itemId)) throw new Error(`${where}: itemId must be a non-empty string or a whole number`);
  if (encoder === null || typeof encoder !== 'object' || Array.isArray(encoder)) throw new Error(`${where}: encoder must be {name, dims}`);
  const { name, dims } = encoder;
  checkName(name, where, 'encoder.name');
  if (!Number.isInteger(dims) || dims < 1 || dims > MAX_EMBEDDING_DIMS) {
    throw new Error(`${where}: encoder.dims must be a whole number from 1 to ${MAX_EMBEDDING_DIMS}`);
  }
  if (!(Number.isFinite(scale) && scale >= 0)) throw new Error(`${where}: scale must be a finite number >= 0`);
  let ints;
  if (values instanceof Int8Array) {
    if (values.length !== dims) throw new Error(`${where}: values must be the item's ${dims} int8 values`);
    ints = Int8Array.from(values);
  } else {
    ints = fromBase64(values, dims, where);
  }
  if (title !== undefined && title !== null && (typeof title !== 'string' || title.length > MAX_TEXT_CHARS)) {
    throw new Error(`${where}: title must be a string of at most ${MAX_TEXT_CHARS} characters`);
  }
  return { catalog, itemId: String(itemId), encoder: { name, dims }, scale, values: ints, title: title ?? '' };
}

/** Copies only the known fields of an interest, checked against the encoder's width. */
export function cleanInterest(it, dims, where = 'interest') {
  if (it === null || typeof it !== 'object' || Array.isArray(it)) throw new Error(`${where} is not an object`);
  const { text, embedding, time } = it;
  if (typeof text !== 'string' || text.trim() === '' || text.length > MAX_TEXT_CHARS) {
    throw new Error(`${where}: text must be a non-empty string of at most ${MAX_TEXT_CHARS} characters`);
  }
  const values = Array.isArray(embedding) || embedding instanceof Float32Array ? Array.from(embedding) : null;
  if (!values || values.length !== dims || !values.every(Number.isFinite)) {
    throw new Error(`${where}: embedding must be ${dims} finite numbers`);
  }
  if (time !== undefined && !Number.isFinite(time)) throw new Error(`${where}: time must be milliseconds since the epoch`);
  return { text, embedding: values, time: time ?? Date.now() };
}

/**
 * Checks a profile document (`Profile.export()`'s shape, or its JSON text) and returns
 * its clean events, interests and snapshots; throws a message naming the first problem.
 * Version 1 (one catalog's events, no snapshots) still reads: its events are given the
 * document's `catalog`, where it names one. Snapshots no event names are left out.
 */
export function parseProfileDocument(doc, dims) {
  if (typeof doc === 'string') {
    if (doc.length > MAX_IMPORT_CHARS) throw new Error(`the document is over ${MAX_IMPORT_CHARS} characters`);
    try {
      doc = JSON.parse(doc);
    } catch (e) {
      throw new Error(`the document is not JSON: ${e.message}`);
    }
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('the document is not an object');
  if (doc.format !== PROFILE_FORMAT) throw new Error(`format is ${JSON.stringify(doc.format)}, not ${JSON.stringify(PROFILE_FORMAT)}`);
  if (!READABLE_VERSIONS.includes(doc.version)) {
    throw new Error(`version ${JSON.stringify(doc.version)} is not supported (this library reads ${READABLE_VERSIONS.join(' and ')})`);
  }
  const events = doc.events ?? [];
  const interests = doc.interests ?? [];
  const snapshots = doc.version === 1 ? [] : doc.snapshots ?? [];
  if (!Array.isArray(events) || events.length > MAX_EVENTS) throw new Error(`events must be an array of at most ${MAX_EVENTS}`);
  if (!Array.isArray(interests) || interests.length > MAX_INTERESTS) {
    throw new Error(`interests must be an array of at most ${MAX_INTERESTS}`);
  }
  if (!Array.isArray(snapshots) || snapshots.length > MAX_EVENTS) throw new Error(`snapshots must be an array of at most ${MAX_EVENTS}`);
  let clean = events.map((e, i) => cleanEvent(e, `event ${i}`));
  if (doc.version === 1) {
    // Version 1 held one catalog's events, and named the catalog.
    const catalog = typeof doc.catalog === 'string' && doc.catalog.length > 0 && doc.catalog.length <= MAX_ITEM_ID_CHARS ? doc.catalog : null;
    clean = clean.map(({ catalog: _, ...e }) => (catalog ? { ...e, catalog } : e));
  }
  const named = new Set(clean.filter((e) => e.catalog).map((e) => itemKey(e.catalog, e.itemId)));
  const seen = new Set();
  const kept = [];
  snapshots.forEach((snap, i) => {
    const s = cleanSnapshot(snap, `snapshot ${i}`);
    const key = itemKey(s.catalog, s.itemId);
    if (seen.has(key)) throw new Error(`snapshot ${i}: a second snapshot of item ${JSON.stringify(s.itemId)} of catalog ${JSON.stringify(s.catalog)}`);
    seen.add(key);
    if (named.has(key)) kept.push(s);
  });
  return {
    events: clean,
    interests: interests.map((it, i) => cleanInterest(it, dims, `interest ${i}`)),
    snapshots: kept,
  };
}

/**
 * The profile store: IndexedDB when asked and available, else memory, with `storage`
 * saying which and `fallbackReason` why IndexedDB is not used. Errors it throws for the
 * page carry `code` ('localrec/storage', or 'localrec/input' at the interest cap).
 */
export class ProfileStore {
  /**
   * Opens the profile `name` in `storage` ('indexeddb' | 'memory'). With IndexedDB, asks
   * the browser once, without waiting, to keep the site's storage (`persist: false` skips
   * that, e.g. where the browser would prompt and the page does not want it); the answer
   * is `persisted`.
   */
  static async open(storage, name, { persist = true } = {}) {
    if (storage !== 'indexeddb') return new ProfileStore(new MemoryBackend(), null, storage, name);
    let store;
    try {
      store = new ProfileStore(await IndexedDbBackend.open(name), null, storage, name);
    } catch (e) {
      // Nothing stored can be read (IndexedDB missing, or refusing to open): the profile
      // starts in memory, and clear() still tries to delete whatever may be stored.
      store = new ProfileStore(new MemoryBackend(), `IndexedDB is unavailable (${e?.message ?? e}); the profile lives in memory`, storage, name);
    }
    if (persist) store.askPersistence();
    return store;
  }

  constructor(backend, fallbackReason, requested = backend.kind, name = 'default') {
    this.backend = backend;
    /** Why the profile is in memory although IndexedDB was asked for; null otherwise. */
    this.fallbackReason = fallbackReason;
    /** Whether the browser agreed to keep this site's storage: true, false, or null (not asked or no answer yet). */
    this.persisted = null;
    this.requested = requested;
    this.name = name;
    this.closed = false;
    // Recoveries (reopen, fall back, replace) run one at a time, so that writes failing
    // together do not each open their own connection or copy.
    this.queue = Promise.resolve();
  }

  /** 'indexeddb' or 'memory'. */
  get storage() {
    return this.backend.kind;
  }

  /** @private */
  askPersistence() {
    const storage = globalThis.navigator?.storage;
    if (typeof storage?.persist !== 'function') return;
    (async () => (typeof storage.persisted === 'function' && (await storage.persisted())) || storage.persist())()
      .then((answer) => (this.persisted = answer === true), () => (this.persisted = false));
  }

  /** @private Runs `fn` after every recovery queued before it. */
  exclusive(fn) {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** @private Makes `backend` the store's, closing the one it replaces. */
  swap(backend) {
    if (this.backend !== backend) this.backend.close();
    this.backend = backend;
    if (this.closed) backend.close();
  }

  /**
   * @private Runs a write. A write IndexedDB refuses is retried on a fresh connection; if
   * that is refused too, the profile moves to memory holding what is stored now, and the
   * write lands there; if what is stored cannot be read, the write is rejected.
   */
  async write(op, what) {
    const failed = this.backend;
    if (failed.kind !== 'indexeddb') return op(failed);
    try {
      return await op(failed);
    } catch (e) {
      if (ours(e)) throw e;
      return this.exclusive(() => this.recover(failed, op, what, e));
    }
  }

  /** @private */
  async recover(failed, op, what, first) {
    if (this.backend !== failed) {
      // Another write recovered meanwhile: run there, falling back from it if refused.
      failed = this.backend;
      if (failed.kind !== 'indexeddb') return op(failed);
      try {
        return await op(failed);
      } catch (e) {
        if (ours(e)) throw e;
        first = e;
      }
    }
    let fresh = null;
    let second = null;
    try {
      fresh = await IndexedDbBackend.open(this.name);
      const result = await op(fresh);
      this.swap(fresh);
      return result;
    } catch (e) {
      if (fresh && ours(e)) {
        this.swap(fresh);
        throw e;
      }
      second = e;
    }
    let current;
    try {
      current = await (fresh ?? failed).all();
    } catch (e) {
      if (fresh) this.swap(fresh);
      throw storageError(`${what}: IndexedDB refused the write (${describe(first)}; again on a fresh connection: ${describe(second)}) and the stored profile could not be read (${describe(e)}); nothing was changed`);
    }
    fresh?.close();
    this.swap(new MemoryBackend(current));
    this.fallbackReason = `IndexedDB refused a write (${describe(first)}; again on a fresh connection: ${describe(second)}); the profile lives in memory from here on, starting from the ${holding({ events: current.events.length, interests: current.interests.length })} it held`;
    return op(this.backend);
  }

  /**
   * Adds an event and its item's snapshot (or none) in one transaction; at MAX_EVENTS the
   * oldest events roll off (in the same transaction), with snapshots no event names.
   */
  addEvent(event, snapshot = null) {
    return this.write((b) => b.addEvent(event, snapshot), 'record()');
  }

  /**
   * Stores snapshots of items whose events were recorded before the item loaded, each
   * only while an event names it and none is stored; resolves with how many landed.
   */
  addSnapshots(snapshots) {
    return this.write((b) => b.addSnapshots(snapshots), 'recommend()');
  }

  /** Adds an interest; at MAX_INTERESTS it is refused with 'localrec/input'. */
  addInterest(interest) {
    return this.write((b) => b.add('interests', interest), 'addInterest()');
  }

  removeInterest(id) {
    return this.write((b) => b.delete('interests', id), 'removeInterest()');
  }

  /** @private Reads with `read(backend)`, once more on a fresh connection if IndexedDB refuses. */
  async read(read) {
    const failed = this.backend;
    try {
      return await read(failed);
    } catch (e) {
      if (failed.kind !== 'indexeddb') throw e;
      return this.exclusive(async () => {
        if (this.backend !== failed) return read(this.backend);
        let fresh = null;
        try {
          fresh = await IndexedDbBackend.open(this.name);
          const result = await read(fresh);
          this.swap(fresh);
          return result;
        } catch (again) {
          fresh?.close();
          throw storageError(`the profile could not be read from IndexedDB (${describe(e)}; again on a fresh connection: ${describe(again)})`);
        }
      });
    }
  }

  /** How many events or interests (`store`) the profile holds. */
  count(store) {
    return this.read((b) => b.count(store));
  }

  /**
   * Everything the profile holds: `{events, interests, snapshots}`, events and interests
   * with their `id`, oldest first.
   */
  all() {
    return this.read((b) => b.all());
  }

  /**
   * Replaces the whole profile (import; with nothing, `clear`). With IndexedDB asked for,
   * the stored copy is replaced in one transaction (on the connection in use, else a fresh
   * one, which also ends a fallback to memory), or the call rejects with
   * 'localrec/storage' and nothing changes: a fallback to memory never takes an import or
   * a deletion that would be undone by a reload.
   */
  replace(data) {
    if (data.events.length === 0 && data.interests.length === 0 && !data.snapshots?.length) return this.clear();
    if (this.requested !== 'indexeddb' || !idbAvailable()) return this.backend.replace(data);
    return this.exclusive(async () => {
      const refused = await this.replaceStored(data);
      if (!refused) return;
      const left = await this.storedCounts();
      throw storageError(`profile.import(): IndexedDB refused to store the profile (${refused}); the profile was not changed${left ? ` (IndexedDB holds ${holding(left)})` : ''}`);
    });
  }

  /**
   * Deletes every event, interest and snapshot (of every catalog): the stored copy's stores are emptied (or, if
   * IndexedDB refuses that, the database deleted), or the call rejects with
   * 'localrec/storage' saying what is still stored on this device.
   */
  clear() {
    const empty = { events: [], interests: [], snapshots: [] };
    if (this.requested !== 'indexeddb' || !idbAvailable()) return this.backend.replace(empty);
    return this.exclusive(async () => {
      const refused = await this.replaceStored(empty);
      if (!refused) return;
      const reasons = [refused];
      this.backend.close();
      try {
        await deleteDatabase(databaseName(this.name));
        try {
          this.swap(await IndexedDbBackend.open(this.name));
          this.fallbackReason = null;
        } catch (e) {
          // The stored copy is gone; an empty memory profile is what a reload would show.
          this.swap(new MemoryBackend());
          this.fallbackReason = `IndexedDB is unavailable (${e?.message ?? e}); the profile lives in memory`;
        }
        return;
      } catch (e) {
        reasons.push(`deleting the database: ${describe(e)}`);
      }
      const left = await this.storedCounts();
      const what = left ? `this device still holds ${holding(left)}` : 'what it holds could not be read';
      throw storageError(`the profile '${this.name}' could not be deleted: IndexedDB refused (${reasons.join('; ')}); ${what} in IndexedDB database '${databaseName(this.name)}'`);
    });
  }

  /**
   * @private Replaces the stored copy on the connection in use or a fresh one; on success
   * the profile is in IndexedDB again. Returns null, or why IndexedDB refused.
   */
  async replaceStored(data) {
    const reasons = [];
    if (this.backend.kind === 'indexeddb') {
      try {
        await this.backend.replace(data);
        return null;
      } catch (e) {
        reasons.push(describe(e));
      }
    }
    let fresh = null;
    try {
      fresh = await IndexedDbBackend.open(this.name);
      await fresh.replace(data);
    } catch (e) {
      fresh?.close();
      reasons.push(`on a fresh connection: ${describe(e)}`);
      return reasons.join('; ');
    }
    this.swap(fresh);
    this.fallbackReason = null;
    return null;
  }

  /** @private What the stored copy holds ({events, interests} counts), or null if it cannot be read. */
  async storedCounts() {
    let fresh = null;
    try {
      fresh = await IndexedDbBackend.open(this.name);
      const counts = await fresh.counts();
      if (this.backend.kind === 'indexeddb') this.swap(fresh);
      else fresh.close();
      return counts;
    } catch {
      fresh?.close();
      return null;
    }
  }

  close() {
    this.closed = true;
    this.backend.close();
  }
}

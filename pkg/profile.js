// The visitor's profile on this device: events and typed interests, kept in IndexedDB
// (or in memory when IndexedDB is missing or refuses to store). Nothing here talks to
// the network. Every write is its own IndexedDB transaction, and every read goes to the
// database, so several tabs of the same site share one profile and never lose an event.

/** Version of the export document; `import` refuses others. */
export const PROFILE_FORMAT = 'localrec-profile';
export const PROFILE_VERSION = 1;
/** Limits `import` enforces (and `record`/`addInterest` keep to). */
export const MAX_EVENTS = 100_000;
export const MAX_INTERESTS = 1_000;
export const MAX_INTEREST_CHARS = 10_000;
export const MAX_IMPORT_CHARS = 32 << 20;
export const EVENT_TYPES = ['view', 'click', 'like', 'dislike', 'rate', 'purchase'];

const STORES = ['events', 'interests'];

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
    tx.onerror = () => reject(tx.error);
  });
}

/** The profile in one IndexedDB database per profile name. */
class IndexedDbBackend {
  static async open(name) {
    if (typeof indexedDB === 'undefined') throw new Error('IndexedDB is not available here');
    const request = indexedDB.open(`localrec-profile:${name}`, 1);
    request.onupgradeneeded = () => {
      for (const store of STORES) {
        if (!request.result.objectStoreNames.contains(store)) {
          request.result.createObjectStore(store, { keyPath: 'id', autoIncrement: true });
        }
      }
    };
    const db = await promised(request);
    // Another tab upgrading the database closes this connection rather than blocking it.
    db.onversionchange = () => db.close();
    return new IndexedDbBackend(db);
  }

  constructor(db) {
    this.db = db;
    this.kind = 'indexeddb';
  }

  async add(store, value) {
    const tx = this.db.transaction(store, 'readwrite');
    const id = await promised(tx.objectStore(store).add(value));
    await done(tx);
    return id;
  }

  async count(store) {
    const tx = this.db.transaction(store, 'readonly');
    return promised(tx.objectStore(store).count());
  }

  async delete(store, id) {
    const tx = this.db.transaction(store, 'readwrite');
    tx.objectStore(store).delete(id);
    await done(tx);
  }

  async all() {
    const tx = this.db.transaction(STORES, 'readonly');
    const [events, interests] = await Promise.all(STORES.map((s) => promised(tx.objectStore(s).getAll())));
    return { events, interests };
  }

  /** Replaces everything in one transaction: it all lands, or nothing changes. */
  async replace({ events, interests }) {
    const tx = this.db.transaction(STORES, 'readwrite');
    const [e, i] = STORES.map((s) => tx.objectStore(s));
    e.clear();
    i.clear();
    for (const v of events) e.add(v);
    for (const v of interests) i.add(v);
    await done(tx);
  }

  close() {
    this.db.close();
  }
}

/** The profile in this page's memory only (gone on reload). */
class MemoryBackend {
  constructor(initial = { events: [], interests: [] }) {
    this.kind = 'memory';
    this.data = { events: [...initial.events], interests: [...initial.interests] };
    this.next = 1 + [...initial.events, ...initial.interests].reduce((m, v) => Math.max(m, v.id ?? 0), 0);
  }

  async add(store, value) {
    const id = this.next++;
    this.data[store].push({ ...value, id });
    return id;
  }

  async count(store) {
    return this.data[store].length;
  }

  async delete(store, id) {
    this.data[store] = this.data[store].filter((v) => v.id !== id);
  }

  async all() {
    return { events: [...this.data.events], interests: [...this.data.interests] };
  }

  async replace({ events, interests }) {
    this.data = { events: [], interests: [] };
    for (const v of events) await this.add('events', v);
    for (const v of interests) await this.add('interests', v);
  }

  close() {}
}

/** Copies only the known fields of an event, checked; throws a message on bad input. */
export function cleanEvent(e, where = 'event') {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new Error(`${where} is not an object`);
  const { itemId, type, value, scenario, time } = e;
  if (!((typeof itemId === 'string' && itemId.length > 0 && itemId.length <= 1000) || Number.isSafeInteger(itemId))) {
    throw new Error(`${where}: itemId must be a non-empty string or a whole number`);
  }
  if (!EVENT_TYPES.includes(type)) throw new Error(`${where}: type must be one of ${EVENT_TYPES.join(', ')}, not ${JSON.stringify(type)}`);
  if (value !== undefined && value !== null && !Number.isFinite(value)) throw new Error(`${where}: value must be a finite number`);
  if (type === 'rate' && !(Number.isFinite(value) && value >= 0 && value <= 10)) {
    throw new Error(`${where}: a rate event needs a value from 0 to 10`);
  }
  if (scenario !== undefined && scenario !== null && (typeof scenario !== 'string' || scenario.length > 200)) {
    throw new Error(`${where}: scenario must be a string`);
  }
  if (time !== undefined && !Number.isFinite(time)) throw new Error(`${where}: time must be milliseconds since the epoch`);
  const out = { itemId: String(itemId), type, time: time ?? Date.now() };
  if (Number.isFinite(value)) out.value = value;
  if (typeof scenario === 'string') out.scenario = scenario;
  return out;
}

/** Copies only the known fields of an interest, checked against the encoder's width. */
export function cleanInterest(it, dims, where = 'interest') {
  if (it === null || typeof it !== 'object' || Array.isArray(it)) throw new Error(`${where} is not an object`);
  const { text, embedding, time } = it;
  if (typeof text !== 'string' || text.trim() === '' || text.length > MAX_INTEREST_CHARS) {
    throw new Error(`${where}: text must be a non-empty string of at most ${MAX_INTEREST_CHARS} characters`);
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
 * its clean events and interests; throws a message naming the first problem.
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
  if (doc.version !== PROFILE_VERSION) throw new Error(`version ${JSON.stringify(doc.version)} is not supported (this library reads ${PROFILE_VERSION})`);
  const events = doc.events ?? [];
  const interests = doc.interests ?? [];
  if (!Array.isArray(events) || events.length > MAX_EVENTS) throw new Error(`events must be an array of at most ${MAX_EVENTS}`);
  if (!Array.isArray(interests) || interests.length > MAX_INTERESTS) {
    throw new Error(`interests must be an array of at most ${MAX_INTERESTS}`);
  }
  return {
    events: events.map((e, i) => cleanEvent(e, `event ${i}`)),
    interests: interests.map((it, i) => cleanInterest(it, dims, `interest ${i}`)),
  };
}

/**
 * The profile store: IndexedDB when asked and available, else memory, with `persistent`
 * saying which. A write IndexedDB refuses (quota, private mode) moves it to memory with
 * what it held, instead of failing the page.
 */
export class ProfileStore {
  static async open(storage, name) {
    if (storage === 'indexeddb') {
      try {
        return new ProfileStore(await IndexedDbBackend.open(name), null);
      } catch (e) {
        return new ProfileStore(new MemoryBackend(), `IndexedDB is unavailable (${e?.message ?? e}); the profile lives in memory`);
      }
    }
    return new ProfileStore(new MemoryBackend(), null);
  }

  constructor(backend, fallbackReason) {
    this.backend = backend;
    /** Why the profile is in memory although IndexedDB was asked for; null otherwise. */
    this.fallbackReason = fallbackReason;
  }

  /** 'indexeddb' or 'memory'. */
  get storage() {
    return this.backend.kind;
  }

  /** Runs a write; when IndexedDB refuses it, moves to memory (keeping the profile) and retries there. */
  async write(op) {
    try {
      return await op(this.backend);
    } catch (e) {
      if (this.backend.kind !== 'indexeddb') throw e;
      let current = { events: [], interests: [] };
      try {
        current = await this.backend.all();
      } catch {
        // Unreadable too: start from nothing rather than fail the page.
      }
      this.backend.close();
      this.backend = new MemoryBackend(current);
      this.fallbackReason = `IndexedDB refused a write (${e?.name ?? 'Error'}: ${e?.message ?? e}); the profile lives in memory`;
      return op(this.backend);
    }
  }

  addEvent(event) {
    return this.write((b) => b.add('events', event));
  }

  addInterest(interest) {
    return this.write((b) => b.add('interests', interest));
  }

  removeInterest(id) {
    return this.write((b) => b.delete('interests', id));
  }

  /** How many events or interests (`store`) the profile holds. */
  async count(store) {
    try {
      return await this.backend.count(store);
    } catch {
      return 0;
    }
  }

  async all() {
    try {
      return await this.backend.all();
    } catch {
      return { events: [], interests: [] };
    }
  }

  replace(data) {
    return this.write((b) => b.replace(data));
  }

  close() {
    this.backend.close();
  }
}

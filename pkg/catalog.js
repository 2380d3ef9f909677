// The catalog loader, run by the worker: fetches a catalog's manifest, then every shard
// in manifest order, streaming each into the wasm `WasmCatalog` as its bytes arrive.
//
// Trust: a shard's items become usable only after the wasm side has checked its size
// and SHA-256 against the manifest (`finishShard`); only then is it put in the Cache
// API. A cached copy is checked again on every load; one that fails is evicted and
// fetched anew. The manifest always comes from the network (it says which shards are
// current).
//
// Privacy: every shard is requested, one at a time, in manifest order, whatever the
// visitor's profile; a shard already cached is not requested at all. So the requests
// depend only on the catalog and on what this browser already holds.
//
// Faults: network errors, cut connections and 408/429/5xx answers are retried with
// exponential backoff; a cut download resumes with an HTTP Range request, or starts over
// when the server ignores Range. A shard that fails its checksum (twice: the first
// failure may be a corrupting proxy) or answers another 4xx is given up on and reported;
// the other shards load regardless.
import { concat, fail } from './fetch.js';

/** The Cache Storage cache holding verified catalog shards. */
export const CATALOG_CACHE_NAME = 'localrec-catalog-v1';
/** Largest manifest.json read (the wasm side enforces the same bound). */
const MAX_MANIFEST_BYTES = 16 << 20;
/** Default cap on a catalog's total shard bytes: its items must fit in wasm memory. */
export const DEFAULT_MAX_BYTES = 1 << 30;

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(closed());
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(closed());
    }, { once: true });
  });

const closed = () => fail('localrec/closed', 'the catalog was closed');

/** A failure worth another try (the network or the server's mood), as opposed to a final one. */
class Transient extends Error {}

const transientStatus = (status) => status === 408 || status === 429 || status >= 500;

/** Reads a whole body, refusing more than `max` bytes before buffering them. */
async function readLimited(res, max, what) {
  const declared = Number(res.headers.get('content-length'));
  if (declared > max) throw fail('localrec/format', `${what} is ${declared} bytes; at most ${max} are read`);
  const reader = res.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      reader.cancel().catch(() => {});
      throw fail('localrec/format', `${what} is over ${max} bytes; at most ${max} are read`);
    }
    chunks.push(value);
  }
  return concat(chunks, total);
}

/** The manifest's bytes, with retries; `localrec/network` when it cannot be had. */
export async function fetchManifest(url, { retries, backoffMs, signal }) {
  for (let attempt = 0; ; attempt++) {
    try {
      let res;
      try {
        res = await fetch(url, { cache: 'no-cache', signal });
      } catch (e) {
        if (signal?.aborted) throw closed();
        throw new Transient(`cannot fetch ${url}: ${e.message}`);
      }
      if (!res.ok) {
        const message = `fetching ${url} answered HTTP ${res.status}`;
        if (transientStatus(res.status)) throw new Transient(message);
        throw fail('localrec/network', message);
      }
      try {
        return await readLimited(res, MAX_MANIFEST_BYTES, url);
      } catch (e) {
        if (e.code) throw e;
        throw new Transient(`the download of ${url} was cut: ${e.message}`);
      }
    } catch (e) {
      if (!(e instanceof Transient)) throw e;
      if (attempt >= retries) throw fail('localrec/network', `${e.message} (after ${attempt + 1} tries)`);
      await sleep(backoff(backoffMs, attempt), signal);
    }
  }
}

const backoff = (base, attempt) => Math.min(base * 2 ** attempt, 30_000) * (0.75 + Math.random() * 0.5);

async function openCache() {
  try {
    if (typeof caches === 'undefined') return null;
    return await caches.open(CATALOG_CACHE_NAME);
  } catch {
    return null;
  }
}

/** Start of a 206 answer's Content-Range (`bytes START-END/SIZE`), or -1. */
function rangeStart(res) {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
  return m ? Number(m[1]) : -1;
}

/**
 * Loads every shard of `catalog` (a WasmCatalog) in manifest order. `emit(status)` is
 * called as bytes arrive and after each shard settles; `onShard(i)` after shard i
 * settles (loaded or failed). Resolves when every shard has settled.
 */
export class CatalogLoader {
  constructor(catalog, manifest, manifestUrl, options, emit) {
    this.catalog = catalog;
    this.manifest = manifest;
    this.manifestUrl = manifestUrl;
    this.options = options;
    this.emit = emit;
    this.abort = new AbortController();
    this.totalBytes = manifest.shards.reduce((sum, s) => sum + s.bytes, 0);
    this.doneBytes = 0;
    this.inFlight = 0;
    this.fromCache = 0;
    this.fetched = 0;
    this.failures = [];
    this.settled = 0;
    this.lastEmit = 0;
    this.seq = 0;
    this.workMs = 0;
  }

  /** Runs wasm work (parse, hash, verify), adding its time to `workMs`. */
  timed(fn) {
    const started = performance.now();
    try {
      return fn();
    } finally {
      this.workMs += performance.now() - started;
    }
  }

  status(extra = {}) {
    const s = JSON.parse(this.catalog.status());
    return {
      phase: 'catalog',
      seq: ++this.seq,
      loaded: this.doneBytes + this.inFlight,
      total: this.totalBytes,
      ...s,
      shardsFromCache: this.fromCache,
      shardsFetched: this.fetched,
      verifyMs: Math.round(this.workMs * 10) / 10,
      settled: this.settled === this.manifest.shards.length,
      failed: s.failed.map((f) => ({ ...f, ...(this.failures[f.shard] ?? {}) })),
      ...extra,
    };
  }

  close() {
    this.abort.abort();
  }

  async run(onShard) {
    this.cache = this.options.cache ? await openCache() : null;
    for (let i = 0; i < this.manifest.shards.length; i++) {
      if (this.abort.signal.aborted) return;
      try {
        await this.loadShard(i);
      } catch (e) {
        if (this.abort.signal.aborted) return;
        const code = e?.code ?? 'localrec/internal';
        const message = String(e?.message ?? e);
        this.failures[i] = { path: this.manifest.shards[i].path, code, message };
        this.catalog.failShard(i, message);
      }
      this.doneBytes += this.manifest.shards[i].bytes;
      this.inFlight = 0;
      this.settled++;
      this.emit(this.status({ shard: i }));
      onShard?.(i);
    }
  }

  async loadShard(i) {
    const entry = this.manifest.shards[i];
    const url = new URL(entry.path, this.manifestUrl).href;
    const key = `${url}?sha256=${entry.sha256}`;
    if (this.cache && (await this.fromCacheCopy(i, key))) return;
    const bytes = await this.download(i, url);
    this.fetched++;
    if (this.cache) {
      try {
        for (const old of await this.cache.keys()) {
          if (old.url.startsWith(`${url}?sha256=`) && old.url !== key) await this.cache.delete(old);
        }
        await this.cache.put(key, new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } }));
      } catch {
        // Caching is an optimisation: a full quota must not fail the load.
      }
    }
  }

  /** Uses a cached copy when one is there and still verifies; evicts it otherwise. */
  async fromCacheCopy(i, key) {
    let hit = null;
    try {
      hit = await this.cache.match(key);
    } catch {
      return false;
    }
    if (!hit) return false;
    try {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      this.timed(() => {
        this.catalog.beginShard(i);
        this.catalog.feed(i, bytes);
        this.catalog.finishShard(i);
      });
      this.fromCache++;
      return true;
    } catch {
      try {
        await this.cache.delete(key);
      } catch {
        // It fails the check again next time and is replaced then.
      }
      return false;
    }
  }

  /** Downloads, streams into the catalog and verifies shard i; returns its bytes. */
  async download(i, url) {
    const { retries, backoffMs } = this.options;
    const entry = this.manifest.shards[i];
    const signal = this.abort.signal;
    let chunks = [];
    let offset = 0;
    let attempt = 0;
    let corrupt = 0;
    const restart = () => {
      chunks = [];
      offset = 0;
      this.inFlight = 0;
      this.catalog.beginShard(i);
    };
    restart();
    for (;;) {
      try {
        let res;
        try {
          res = await fetch(url, { cache: 'no-store', signal, headers: offset > 0 ? { Range: `bytes=${offset}-` } : {} });
        } catch (e) {
          if (signal.aborted) throw closed();
          throw new Transient(`cannot fetch ${url}: ${e.message}`);
        }
        if (res.status === 206 && offset > 0 && rangeStart(res) === offset) {
          // Resumed where the cut left off.
        } else if (res.status === 200 || res.status === 206) {
          if (res.status === 206) {
            // A range nobody asked for: start over without one.
            res.body?.cancel().catch(() => {});
            restart();
            throw new Transient(`${url} answered a range that does not continue the download`);
          }
          // The server ignores Range: the whole file again.
          if (offset > 0) restart();
        } else {
          res.body?.cancel().catch(() => {});
          const message = `fetching ${url} answered HTTP ${res.status}`;
          if (transientStatus(res.status)) throw new Transient(message);
          throw fail('localrec/network', message);
        }
        const reader = res.body.getReader();
        for (;;) {
          let part;
          try {
            part = await reader.read();
          } catch (e) {
            if (signal.aborted) throw closed();
            throw new Transient(`the download of ${url} was cut after ${offset} bytes: ${e.message}`);
          }
          if (part.done) break;
          // Throws on bytes past the manifest's size or a malformed record: corrupt.
          this.timed(() => this.catalog.feed(i, part.value));
          chunks.push(part.value);
          offset += part.value.byteLength;
          this.inFlight = offset;
          // Progress while bytes arrive, at most every 100 ms (a message per chunk would
          // flood the page).
          const now = performance.now();
          if (now - this.lastEmit >= 100) {
            this.lastEmit = now;
            this.emit(this.status({ shard: i }));
          }
        }
        if (offset < entry.bytes) throw new Transient(`the download of ${url} ended after ${offset} of ${entry.bytes} bytes`);
        this.timed(() => this.catalog.finishShard(i));
        return concat(chunks, offset);
      } catch (e) {
        if (signal.aborted) throw closed();
        if (e instanceof Transient) {
          if (attempt >= retries) throw fail('localrec/network', `${e.message} (after ${attempt + 1} tries)`);
          attempt++;
          await sleep(backoff(backoffMs, attempt - 1), signal);
          // A stream that failed in wasm is gone: only a clean cut keeps its place.
          if (offset > 0 && this.catalog.bytesFed(i) !== offset) restart();
          continue;
        }
        if (e?.code === 'localrec/integrity' || e?.code === 'localrec/format') {
          // Bad bytes: never used, never cached. One more full download, in case they
          // were damaged on the way; then the shard is given up on.
          corrupt++;
          if (corrupt > 1) throw e;
          restart();
          continue;
        }
        throw e;
      }
    }
  }
}

// The catalog loader, run by the catalog worker: every shard in manifest order, each
// through download.js with the wasm store's shard stream as its verifier, so records are
// parsed while the bytes arrive and none is usable before the shard's size and SHA-256
// matched the manifest (`finishShard`); only then is the shard cached.
//
// Privacy: every shard is requested, one at a time, in manifest order, whatever the
// visitor's profile; a shard already cached is not requested at all. So the requests
// depend only on the catalog and on what this browser already holds.
//
// Faults: see download.js (retries, Range resume, a second try for bad bytes). A shard
// that cannot be had is given up on and reported; the other shards load regardless, unless
// the catalog was republished meanwhile: a shard that is gone (404, 410) or unlike its
// digest makes the loader ask `recheck()` (the manifest fetched once more), and a newer
// manifest ends this load so that the worker continues with that version. Once every
// shard has loaded, cached shards that this manifest no longer names (an older version
// of the catalog) are evicted.
import { CACHE_NAMES, cachedKey, download, evictExcept } from './download.js';
import { ProgressTracker } from './progress.js';
import { isTrap, reportTrap } from './worker-runtime.js';

/** Feeds one shard's bytes to the wasm store as they arrive; `finish` verifies and adds its items. */
class ShardVerifier {
  constructor(loader, index) {
    this.loader = loader;
    this.index = index;
  }

  begin() {
    this.chunks = [];
    this.loader.timed(() => this.loader.store.beginShard(this.index));
  }

  feed(chunk) {
    // Throws on bytes past the manifest's size or a malformed record.
    this.loader.timed(() => this.loader.store.feed(this.index, chunk));
    this.chunks.push(chunk);
  }

  /** Bytes the stream holds: 0 once a failed feed dropped it, so the download starts over. */
  position() {
    return this.loader.store.bytesFed(this.index);
  }

  finish() {
    this.loader.timed(() => this.loader.store.finishShard(this.index));
    const total = this.chunks.reduce((n, c) => n + c.byteLength, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    this.chunks = [];
    return out;
  }
}

// Status notices are numbered across the loaders of one worker (a republished catalog
// gets a new loader), so the page can drop notices older than what it holds.
let statusSeq = 0;

/** Whether a shard's failure may mean the manifest changed under the load. */
const mayBeRepublished = (e) => e?.code === 'localrec/integrity' || e?.code === 'localrec/format' || e?.status === 404 || e?.status === 410;

export class CatalogLoader {
  /**
   * `store`: the WasmCatalog; `shardUrls`: each shard's URL, already confined to the
   * catalog's folder; `emit(status, progress)` after bytes arrive and after each shard.
   */
  constructor(store, manifest, manifestUrl, shardUrls, options, emit) {
    this.store = store;
    this.manifest = manifest;
    this.folder = new URL('./', manifestUrl).href;
    this.shardUrls = shardUrls;
    this.options = options;
    this.emit = emit;
    this.abort = new AbortController();
    this.tracker = new ProgressTracker('catalog', (p) => this.emit(this.status(), p), manifest.shards.map((s) => s.bytes));
    this.fromCache = 0;
    this.fetched = 0;
    this.failures = [];
    // Every shard settled; the status that says so rides with the 'ready' progress event.
    this.done = false;
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

  /** Where loading stands (see `CatalogStatus` in index.d.ts). */
  status() {
    const s = this.store.status();
    const bytes = (i) => this.manifest.shards[i]?.bytes ?? 0;
    return {
      ...s,
      seq: ++statusSeq,
      loaded: Math.round(this.tracker.fraction() * this.manifest.shards.reduce((n, _, i) => n + bytes(i), 0)),
      total: this.manifest.shards.reduce((n, _, i) => n + bytes(i), 0),
      shardsFromCache: this.fromCache,
      shardsFetched: this.fetched,
      verifyMs: Math.round(this.workMs * 10) / 10,
      settled: this.done,
      failed: s.failed.map((f) => ({ ...f, ...(this.failures[f.shard] ?? {}) })),
    };
  }

  close() {
    this.abort.abort();
  }

  /**
   * Loads every shard; `onShard(i)` after shard i settles. Resolves when all have settled
   * (with nothing), or with what `recheck` gave for a newer manifest (the next version)
   * as soon as it gives one: this version is then abandoned.
   */
  async run(onShard) {
    const { retries, backoffMs, cache } = this.options;
    let { recheck } = this.options;
    for (let i = 0; i < this.manifest.shards.length; i++) {
      if (this.abort.signal.aborted) return;
      const entry = this.manifest.shards[i];
      const url = this.shardUrls[i];
      this.tracker.initiate(i, url);
      let cached = false;
      try {
        const bytes = await download(url, {
          expect: { bytes: entry.bytes, sha256: entry.sha256 },
          cacheName: cache ? CACHE_NAMES.catalog : null,
          httpCache: 'no-store',
          verifier: new ShardVerifier(this, i),
          retries,
          backoffMs,
          signal: this.abort.signal,
          onProgress: (p) => {
            cached = p.cached;
            this.tracker.progress(i, url, p);
          },
          what: `shard ${i} (${url})`,
        });
        if (cached) this.fromCache++;
        else this.fetched++;
        this.tracker.verified(i, url, bytes.byteLength, cached);
      } catch (e) {
        if (this.abort.signal.aborted) return;
        if (isTrap(e)) {
          reportTrap(e);
          return;
        }
        if (recheck && mayBeRepublished(e)) {
          // Once per version: a second bad shard of an unchanged manifest is just bad.
          const newer = await recheck().catch(() => null);
          recheck = null;
          // Handed back even when closed meanwhile: the caller frees what it holds.
          if (newer) return newer;
          if (this.abort.signal.aborted) return;
        }
        const error = { code: e?.code ?? 'localrec/internal', message: String(e?.message ?? e) };
        this.failures[i] = { path: entry.path, ...error };
        this.store.failShard(i, error.message);
        this.tracker.failed(i, url, error);
      }
      onShard?.(i);
    }
    this.done = true;
    this.tracker.ready();
    if (this.store.status().complete && cache) {
      const keep = new Set(this.manifest.shards.map((s, i) => cachedKey(this.shardUrls[i], s.sha256)));
      await evictExcept(CACHE_NAMES.catalog, this.folder, keep);
    }
  }
}

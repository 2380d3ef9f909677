// The one download path, run in the workers: wasm modules, model files, catalog
// manifests and shards all come through `download()`.
//
// Trust: a file is used only after its size and SHA-256 matched what a manifest vouches
// for (`expect`), and cached (Cache Storage, keyed by URL and digest) only then. A cached
// copy is checked again on every read, exactly like a download: a truncated, corrupted
// or foreign copy is evicted and fetched anew, never used. A path a manifest names is
// resolved with the browser's own URL parser and must stay under the manifest's folder
// on its origin (`confine`), or nothing is requested.
//
// Faults: network errors, cut connections and 408/429/5xx answers are retried with
// exponential backoff; a cut download resumes with an HTTP Range request where the
// verifier can continue from there, or starts over (also when the server ignores Range).
// Bytes that fail verification get one more full download (the first may have been
// damaged on the way), then the file is given up on. A request the page's
// Content-Security-Policy refuses fails at once with `localrec/csp`. The cache is an optimisation:
// without Cache Storage (insecure context, opaque origin) or with a full quota, files
// come from the network.
import { blocked, refusedByPolicy } from './csp.js';
import { LocalrecError } from './errors.js';

/** Cache Storage caches, one per kind of file; bump a suffix if its format changes. */
export const CACHE_NAMES = Object.freeze({
  wasm: 'localrec-wasm-v1',
  model: 'localrec-model-v1',
  catalog: 'localrec-catalog-v1',
});

// Headers kept with a cached copy: what it was checked against when it was stored.
const SHA_HEADER = 'x-localrec-sha256';
const BYTES_HEADER = 'x-localrec-bytes';

/** The Cache Storage cache of verified model files: `caches.delete(MODEL_CACHE_NAME)` empties it. */
export const MODEL_CACHE_NAME = CACHE_NAMES.model;
/** The Cache Storage cache of verified catalog shards. */
export const CATALOG_CACHE_NAME = CACHE_NAMES.catalog;
/** The Cache Storage cache of verified wasm modules. */
export const WASM_CACHE_NAME = CACHE_NAMES.wasm;

/** Options every download takes unless the caller says otherwise. */
export const DEFAULT_RETRY = Object.freeze({ retries: 4, backoffMs: 250 });

/** A failure worth another try (the network or the server's mood), as opposed to a final one. */
class Transient extends Error {}

const transientStatus = (status) => status === 408 || status === 429 || status >= 500;
const aborted = (what) => new LocalrecError('localrec/aborted', `${what} was aborted`);

function sleep(ms, signal, what) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted(what));
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(aborted(what));
    }, { once: true });
  });
}

const backoff = (base, attempt) => Math.min(base * 2 ** attempt, 30_000) * (0.75 + Math.random() * 0.5);

/** Hex SHA-256 of `bytes`; `localrec/integrity` where crypto.subtle is missing (insecure context). */
export async function sha256(bytes) {
  if (!globalThis.crypto?.subtle) {
    throw new LocalrecError('localrec/integrity', 'cannot check downloads: SHA-256 needs crypto.subtle, which only a secure context (https or localhost) has');
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The `total` bytes of `chunks` (Uint8Arrays) in one array. */
export function concat(chunks, total) {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * `path` (from a manifest) resolved against the folder `base` by the WHATWG URL parser,
 * which strips tabs, newlines and leading spaces and decodes `%2e%2e`; the result must be
 * on `base`'s origin and under its folder. Otherwise `localrec/integrity`, before any
 * request is made.
 */
export function confine(path, base, what) {
  const folder = new URL('./', base);
  let url;
  try {
    url = new URL(path, folder);
  } catch {
    throw new LocalrecError('localrec/integrity', `${what}: ${JSON.stringify(path)} is not a url path`);
  }
  if (typeof path !== 'string' || url.origin !== folder.origin || !url.href.startsWith(folder.href) || url.search || url.hash) {
    throw new LocalrecError('localrec/integrity', `${what}: ${JSON.stringify(path)} resolves to ${url.href}, outside ${folder.href}; nothing was requested`);
  }
  return url.href;
}

/** The Cache Storage cache `name`, or null where the page has none usable. */
export async function openCache(name) {
  try {
    if (typeof caches === 'undefined') return null;
    return await caches.open(name);
  } catch {
    return null;
  }
}

const cacheKey = (url, sha) => `${url}?sha256=${sha}`;

/**
 * Checks bytes as they arrive against a size and SHA-256: `begin()` at each (re)start,
 * `feed(chunk)`, `finish()` returns the bytes or throws `localrec/integrity`.
 * `position()` is how many bytes it holds, so a cut download may resume from there.
 */
export class DigestVerifier {
  constructor(url, expect) {
    this.url = url;
    this.expect = expect;
    this.begin();
  }

  begin() {
    this.chunks = [];
    this.length = 0;
  }

  feed(chunk) {
    this.length += chunk.byteLength;
    if (this.expect && this.length > this.expect.bytes) {
      throw new LocalrecError('localrec/integrity', `${this.url} is more than the ${this.expect.bytes} bytes its manifest says`);
    }
    this.chunks.push(chunk);
  }

  position() {
    return this.length;
  }

  async finish() {
    const bytes = concat(this.chunks, this.length);
    this.chunks = [];
    if (!this.expect) return bytes;
    if (bytes.byteLength !== this.expect.bytes) {
      throw new LocalrecError('localrec/integrity', `${this.url} is ${bytes.byteLength} bytes; its manifest says ${this.expect.bytes}`);
    }
    if ((await sha256(bytes)) !== this.expect.sha256) {
      throw new LocalrecError('localrec/integrity', `${this.url} does not match the SHA-256 its manifest gives`);
    }
    return bytes;
  }
}

/**
 * A cached copy of `url` that still verifies (fed through `verifier`), else null; a bad
 * copy is evicted. With `keep`, also a clone of the cached response: a tee of the very
 * bytes that verified, which a wasm module compiles from so that the browser can reuse
 * its compiled code.
 */
async function fromCache(cache, url, expect, verifier, keep) {
  const key = cacheKey(url, expect.sha256);
  let hit = null;
  try {
    hit = await cache.match(key);
  } catch {
    return null;
  }
  if (!hit) return null;
  try {
    const response = keep ? hit.clone() : null;
    const bytes = new Uint8Array(await hit.arrayBuffer());
    verifier.begin();
    verifier.feed(bytes);
    return { bytes: await verifier.finish(), response };
  } catch (e) {
    // A wasm trap in the verifier is not a bad copy: the worker must hear of it.
    if (e instanceof WebAssembly.RuntimeError) throw e;
    try {
      await cache.delete(key);
    } catch {
      // It fails the check again next time and is replaced then.
    }
    return null;
  }
}

/** Stores verified bytes under their digest and drops other versions of the same URL. */
async function toCache(cache, url, expect, bytes, contentType) {
  const key = cacheKey(url, expect.sha256);
  try {
    for (const old of await cache.keys()) {
      if (old.url.startsWith(`${url}?sha256=`) && old.url !== key) await cache.delete(old);
    }
    const headers = { 'content-type': contentType, [SHA_HEADER]: expect.sha256, [BYTES_HEADER]: String(bytes.byteLength) };
    await cache.put(key, new Response(bytes, { headers }));
  } catch {
    // Quota or a closed cache: the bytes are good, the next visit downloads them again.
  }
}

/**
 * Removes from the cache `name` every entry under `prefix` (a folder URL) whose key is
 * not in `keep` (the keys of files a current manifest names); returns how many it removed.
 */
export async function evictExcept(name, prefix, keep) {
  const cache = await openCache(name);
  if (!cache) return 0;
  let removed = 0;
  try {
    for (const req of await cache.keys()) {
      if (req.url.startsWith(prefix) && !keep.has(req.url)) {
        await cache.delete(req);
        removed++;
      }
    }
  } catch {
    // Eviction is housekeeping: the next verified load tries again.
  }
  return removed;
}

/** The cache key `download` stores `url` under once verified against `sha256`. */
export const cachedKey = cacheKey;

/** Start of a 206 answer's Content-Range (`bytes START-END/SIZE`), or -1. */
function rangeStart(res) {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
  return m ? Number(m[1]) : -1;
}

/**
 * The verified bytes of `url`.
 *
 * - `expect`: `{bytes, sha256}` a manifest vouches for, or null for a file that is its own
 *   authority (a manifest: then `maxBytes` caps it and nothing is cached).
 * - `cacheName`: a `CACHE_NAMES` value to read from and store into (with `expect` only).
 * - `verifier`: what checks the bytes (default a `DigestVerifier`); the catalog passes its
 *   wasm shard stream, which parses while it hashes.
 * - `retries`, `backoffMs`, `signal`, `httpCache` (the fetch `cache` mode when no Cache
 *   Storage copy is kept), `what` (for messages).
 * - `onProgress({loaded, total, cached})`: as bytes arrive, at most every 100 ms, and once
 *   at the end.
 * - `onCachedResponse(response)`: on a verified Cache Storage hit, a clone of the cached
 *   response carrying exactly the bytes returned.
 */
export async function download(url, options = {}) {
  const {
    expect = null, cacheName = null, verifier = new DigestVerifier(url, expect), retries = DEFAULT_RETRY.retries,
    backoffMs = DEFAULT_RETRY.backoffMs, signal, httpCache = 'no-cache', maxBytes = Infinity, contentType = 'application/octet-stream',
    onProgress, what = url, onCachedResponse,
  } = options;
  const cache = expect && cacheName ? await openCache(cacheName) : null;
  const total = expect?.bytes ?? 0;
  if (cache) {
    const hit = await fromCache(cache, url, expect, verifier, Boolean(onCachedResponse));
    if (hit) {
      onProgress?.({ loaded: hit.bytes.byteLength, total: hit.bytes.byteLength, cached: true });
      if (hit.response) onCachedResponse(hit.response);
      return hit.bytes;
    }
  }
  const limit = expect ? expect.bytes : maxBytes;
  let attempt = 0;
  let corrupt = 0;
  let lastEmit = 0;
  verifier.begin();
  for (;;) {
    const offset = verifier.position();
    try {
      let res;
      try {
        const headers = offset > 0 ? { Range: `bytes=${offset}-` } : {};
        res = await fetch(url, { cache: cache ? 'no-store' : httpCache, signal, headers });
      } catch (e) {
        if (signal?.aborted) throw aborted(what);
        // A policy's refusal is final: no retry changes it.
        throw (await refusedByPolicy(`a request to ${url}`, blocked(url))) ?? new Transient(`cannot fetch ${url}: ${e.message}`);
      }
      if (res.status === 206 && offset > 0 && rangeStart(res) === offset) {
        // Resumed where the cut left off.
      } else if (res.status === 200) {
        // The whole file (again, when the server ignores Range).
        verifier.begin();
      } else if (res.status === 206) {
        // A range nobody asked for: start over without one.
        res.body?.cancel().catch(() => {});
        verifier.begin();
        throw new Transient(`${url} answered a range that does not continue the download`);
      } else {
        res.body?.cancel().catch(() => {});
        const message = `fetching ${url} answered HTTP ${res.status}`;
        if (transientStatus(res.status)) throw new Transient(message);
        throw Object.assign(new LocalrecError('localrec/network', message), { status: res.status });
      }
      const declared = Number(res.headers.get('content-length'));
      if (!expect && declared > limit) {
        res.body?.cancel().catch(() => {});
        throw new LocalrecError('localrec/format', `${what} is ${declared} bytes; at most ${limit} are read`);
      }
      const reader = res.body.getReader();
      for (;;) {
        let part;
        try {
          part = await reader.read();
        } catch (e) {
          if (signal?.aborted) throw aborted(what);
          const of = total ? ` of ${total}` : '';
          throw new Transient(`the download of ${url} was cut after ${verifier.position()}${of} bytes: ${e.message}`);
        }
        if (part.done) break;
        if (!expect && verifier.position() + part.value.byteLength > limit) {
          reader.cancel().catch(() => {});
          throw new LocalrecError('localrec/format', `${what} is over ${limit} bytes; at most ${limit} are read`);
        }
        // Throws `localrec/integrity` (or `format`, for a shard's records) on bad bytes.
        verifier.feed(part.value);
        const now = performance.now();
        if (onProgress && now - lastEmit >= 100) {
          lastEmit = now;
          onProgress({ loaded: verifier.position(), total, cached: false });
        }
      }
      const bytes = await verifier.finish();
      onProgress?.({ loaded: bytes.byteLength, total: total || bytes.byteLength, cached: false });
      if (cache) await toCache(cache, url, expect, bytes, contentType);
      return bytes;
    } catch (e) {
      if (signal?.aborted) throw aborted(what);
      if (e instanceof Transient) {
        if (attempt >= retries) throw new LocalrecError('localrec/network', `${e.message} (after ${attempt + 1} tries)`);
        attempt++;
        await sleep(backoff(backoffMs, attempt - 1), signal, what);
        continue;
      }
      if (expect && (e?.code === 'localrec/integrity' || e?.code === 'localrec/format')) {
        // Bad bytes: never used, never cached. One more full download, in case they were
        // damaged on the way; then the file is given up on.
        corrupt++;
        if (corrupt > 1) throw e;
        verifier.begin();
        continue;
      }
      throw e;
    }
  }
}

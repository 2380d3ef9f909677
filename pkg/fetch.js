// Downloads, verifies and caches the model's files for the worker.
//
// Trust comes from the model manifest (manifest.json, written by `localrec export-web`):
// each file's size and SHA-256. A file is put in the Cache API only once it matched the
// manifest, and a cached copy is checked against the manifest again on every load, so a
// truncated, corrupted or outdated copy is evicted and downloaded again, never used.
// The manifest itself always comes from the network: it is small, and it is what tells
// a current cached copy from a stale one.
//
// Without a manifest (an original Hugging Face folder) there is nothing to check against,
// so a file is cached with the SHA-256 computed when it was downloaded, plus the server's
// validator (ETag, else Last-Modified). A later load re-hashes the cached copy and asks
// the server, with a HEAD request, whether the validator still holds; the copy is used
// only if both agree. A server that sends no validator gets no caching.
//
// The cache is an optimisation: when the Cache API is missing (insecure context) or
// throws (opaque origin, quota, private mode), files come from the network as before.

/** The Cache Storage cache holding model files; bump the suffix if the format changes. */
export const CACHE_NAME = 'localrec-model-v1';

// Headers of a cached response; the record travels with the bytes, so the two cannot drift.
const SHA_HEADER = 'x-localrec-sha256';
const BYTES_HEADER = 'x-localrec-bytes';
const VALIDATOR_HEADER = 'x-localrec-validator';

/** An Error with a stable `code`, as the worker posts it back to the page. */
export function fail(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

async function openCache() {
  try {
    if (typeof caches === 'undefined') return null;
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

/** Hex SHA-256 of `bytes`, or null when the page has no crypto.subtle (insecure context). */
export async function sha256(bytes) {
  if (!globalThis.crypto?.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

function validatorOf(res) {
  return res.headers.get('etag') || res.headers.get('last-modified') || '';
}

async function evict(cache, url) {
  try {
    await cache.delete(url);
  } catch {
    // A copy that cannot be deleted is overwritten by the next put, or checked again.
  }
}

/** What the server says about `url` now, without its body; '' when it cannot tell. */
async function currentValidator(url) {
  try {
    const res = await fetch(url, { method: 'HEAD', cache: 'no-store' });
    return res.ok ? validatorOf(res) : '';
  } catch {
    return '';
  }
}

/**
 * The cached bytes of `url` if they are intact and current, else null (a bad copy is
 * evicted). `expect` is the manifest entry, or null for a file without one.
 */
async function readCached(cache, url, expect) {
  let res;
  try {
    res = await cache.match(url);
  } catch {
    return null;
  }
  if (!res) return null;
  const recordedSha = res.headers.get(SHA_HEADER);
  const recordedBytes = Number(res.headers.get(BYTES_HEADER));
  const wantSha = expect ? expect.sha256 : recordedSha;
  const wantBytes = expect ? expect.bytes : recordedBytes;
  // A copy recorded with another digest is an older version of the file: no need to read it.
  if (!wantSha || recordedSha !== wantSha || !Number.isSafeInteger(wantBytes)) {
    await evict(cache, url);
    return null;
  }
  if (!expect) {
    const validator = res.headers.get(VALIDATOR_HEADER);
    if (!validator || (await currentValidator(url)) !== validator) {
      await evict(cache, url);
      return null;
    }
  }
  let bytes;
  try {
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch {
    await evict(cache, url);
    return null;
  }
  if (bytes.byteLength !== wantBytes || (await sha256(bytes)) !== wantSha) {
    await evict(cache, url);
    return null;
  }
  return bytes;
}

async function store(cache, url, bytes, sha, validator, contentType) {
  const headers = {
    'content-type': contentType || 'application/octet-stream',
    [SHA_HEADER]: sha,
    [BYTES_HEADER]: String(bytes.byteLength),
  };
  if (validator) headers[VALIDATOR_HEADER] = validator;
  try {
    await cache.put(url, new Response(bytes, { headers }));
  } catch {
    // Quota or a storage failure: the bytes are good, the next load downloads them again.
  }
}

/** The body of `res`, reporting progress; stops early once it exceeds the manifest's size. */
async function readBody(res, url, total, expect, progress) {
  const chunks = [];
  let loaded = 0;
  progress(0, total);
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  for (;;) {
    let step;
    try {
      step = await reader.read();
    } catch (e) {
      const of = total ? ` of ${total}` : '';
      throw fail('localrec/network', `the download of ${url} was cut after ${loaded}${of} bytes: ${e.message}`);
    }
    if (step.done) break;
    chunks.push(step.value);
    loaded += step.value.byteLength;
    if (expect && loaded > expect.bytes) {
      reader.cancel().catch(() => {});
      throw fail('localrec/integrity', `${url} is more than the ${expect.bytes} bytes the model manifest says`);
    }
    progress(loaded, total);
  }
  return concat(chunks, loaded);
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
 * One file's bytes, from the cache when an intact current copy is there, else from the
 * network (then cached). Returns null for an `optional` file the server does not have.
 * Progress: `{phase, file, loaded, total, cached}` in bytes.
 */
export async function fetchFile(
  url,
  { phase, report, cache = null, expect = null, optional = false, signal, httpCache = 'default' },
) {
  const progress = (loaded, total, cached = false) => report({ phase, file: url, loaded, total, cached });
  if (cache) {
    const hit = await readCached(cache, url, expect);
    if (hit) {
      progress(hit.byteLength, hit.byteLength, true);
      return hit;
    }
  }
  let res;
  try {
    // With a cache, the copy in it is the one that counts: keeping a second one in the
    // HTTP cache would only double the disk the model takes.
    res = await fetch(url, { signal, cache: cache ? 'no-store' : httpCache });
  } catch (e) {
    throw fail('localrec/network', `cannot fetch ${url}: ${e.message}`);
  }
  if (!res.ok) {
    if (optional && res.status === 404) return null;
    throw fail('localrec/network', `fetching ${url} answered HTTP ${res.status}`);
  }
  const total = expect?.bytes ?? (Number(res.headers.get('content-length')) || 0);
  const bytes = await readBody(res, url, total, expect, progress);
  if (expect && bytes.byteLength !== expect.bytes) {
    throw fail('localrec/integrity', `${url} is ${bytes.byteLength} bytes; the model manifest says ${expect.bytes}`);
  }
  const validator = validatorOf(res);
  // Hashing is needed to check the manifest, or to cache a file that has no manifest entry.
  if (!expect && !(cache && validator)) return bytes;
  const sha = await sha256(bytes);
  if (expect && sha === null) {
    throw fail(
      'localrec/integrity',
      `cannot check ${url} against the model manifest: SHA-256 needs crypto.subtle, ` +
        'which only a secure context (https or localhost) has',
    );
  }
  if (expect && sha !== expect.sha256) {
    throw fail('localrec/integrity', `${url} does not match the SHA-256 in the model manifest`);
  }
  if (cache && sha && (expect || validator)) {
    await store(cache, url, bytes, sha, validator, res.headers.get('content-type'));
  }
  return bytes;
}

/** The manifest's entries by path, or {} when the model has no manifest.json. */
async function fetchManifest(base, report) {
  const url = base + 'manifest.json';
  // Always asked of the server (a conditional request at most): a stale manifest from the
  // HTTP cache would fail the check of files the server has since replaced.
  const bytes = await fetchFile(url, { phase: 'manifest', report, optional: true, httpCache: 'no-cache' });
  if (!bytes) return {};
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw fail('localrec/config', `the model manifest ${url} is not valid JSON: ${e.message}`);
  }
  if (!Array.isArray(manifest?.files)) {
    throw fail('localrec/config', `the model manifest ${url} has no "files" list`);
  }
  const entries = {};
  for (const [i, f] of manifest.files.entries()) {
    const valid =
      typeof f?.path === 'string' &&
      Number.isSafeInteger(f.bytes) &&
      f.bytes >= 0 &&
      typeof f.sha256 === 'string' &&
      /^[0-9a-fA-F]{64}$/.test(f.sha256);
    if (!valid) {
      const why = `files[${i}] needs a path, a byte count and a hex sha256`;
      throw fail('localrec/config', `the model manifest ${url}: ${why}`);
    }
    entries[f.path] = { path: f.path, bytes: f.bytes, sha256: f.sha256.toLowerCase() };
  }
  return entries;
}

/**
 * The model's files as bytes: `{config, tokenizer, weights, sentence}` (`sentence` is null
 * when the model has no sentence_bert_config.json). `report` receives progress objects.
 */
export async function fetchModelFiles(modelUrl, report) {
  const base = modelUrl.endsWith('/') ? modelUrl : modelUrl + '/';
  const [cache, entries] = await Promise.all([openCache(), fetchManifest(base, report)]);
  // When one file fails the load has failed: stop the other downloads rather than finish them.
  const abort = new AbortController();
  const get = (name, optional = false) =>
    fetchFile(base + name, {
      phase: name === 'model.safetensors' ? 'weights' : 'model',
      report,
      cache,
      expect: entries[name] ?? null,
      // A file the manifest lists has to be there.
      optional: optional && !entries[name],
      signal: abort.signal,
    });
  try {
    const [config, tokenizer, sentence, weights] = await Promise.all([
      get('config.json'),
      get('tokenizer.json'),
      get('sentence_bert_config.json', true),
      get('model.safetensors'),
    ]);
    return { config, tokenizer, sentence, weights };
  } catch (e) {
    abort.abort();
    throw e;
  }
}

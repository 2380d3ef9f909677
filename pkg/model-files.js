// The model's files, for the encoder worker: each one fetched through download.js and
// checked against a size and SHA-256 someone vouches for:
//
// - a catalog's manifest (`encoder.files`): the Recommender passes them, so the model a
//   page loads for a catalog is the one the catalog was built with, wherever it is;
// - else the model folder's own manifest.json (`localrec export-web`), when the page names
//   the folder itself;
// - a folder with neither (an original Hugging Face folder) loads only when the page says
//   `allowUnverified`; its files are then neither checked nor cached.
import { LocalrecError } from './errors.js';
import { CACHE_NAMES, confine, download } from './download.js';
import { MAX_MODEL_MANIFEST_BYTES } from './limits.js';
import { ProgressTracker } from './progress.js';

const REQUIRED = ['config.json', 'tokenizer.json', 'model.safetensors'];
const OPTIONAL = ['sentence_bert_config.json'];
const HEX64 = /^[0-9a-f]{64}$/;

/** `files` entries (`{path, bytes, sha256}`) by path, checked; `where` names their source in messages. */
export function expectations(files, where) {
  if (!Array.isArray(files)) throw new LocalrecError('localrec/integrity', `${where} has no "files" list`);
  const out = {};
  for (const [i, f] of files.entries()) {
    const ok = typeof f?.path === 'string' && Number.isSafeInteger(f.bytes) && f.bytes >= 0 && typeof f.sha256 === 'string' && HEX64.test(f.sha256);
    if (!ok) throw new LocalrecError('localrec/integrity', `${where}: files[${i}] needs a path, a byte count and a lowercase hex sha256`);
    out[f.path] = { bytes: f.bytes, sha256: f.sha256 };
  }
  for (const name of REQUIRED) {
    if (!out[name]) throw new LocalrecError('localrec/integrity', `${where} does not list ${name}`);
  }
  return out;
}

/** The model folder's manifest.json entries, or `{missing: why}` when the folder has none. */
async function folderManifest(base, retry) {
  const url = confine('manifest.json', base, 'the model folder');
  let bytes;
  try {
    bytes = await download(url, { ...retry, maxBytes: MAX_MODEL_MANIFEST_BYTES, httpCache: 'no-cache', what: url });
  } catch (e) {
    if (e?.status === 404) return { missing: e.message };
    throw e;
  }
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new LocalrecError('localrec/config', `the model manifest ${url} is not valid JSON: ${e.message}`);
  }
  return expectations(manifest?.files, `the model manifest ${url}`);
}

/**
 * The model's files as bytes: `{config, tokenizer, weights, sentence}` (`sentence` is null
 * when the model has none). `files`: the entries a catalog vouches for, or null.
 * `onProgress` receives the tagged progress events of source `'model'`.
 */
export async function fetchModelFiles(modelUrl, { files = null, allowUnverified = false, retries, backoffMs, onProgress, signal } = {}) {
  const base = new URL('./', modelUrl.endsWith('/') ? modelUrl : `${modelUrl}/`).href;
  let expect = files ? expectations(files, "the catalog's encoder.files") : await folderManifest(base, { retries, backoffMs, signal });
  if (expect?.missing) {
    if (!allowUnverified) {
      throw new LocalrecError(
        'localrec/integrity',
        `the model folder ${base} has no manifest.json (${expect.missing}), so its files cannot be checked; ` +
          'publish it with `localrec export-web`, load it through its catalog, or pass allowUnverified: true',
      );
    }
    expect = null;
  }
  const names = expect ? [...REQUIRED, ...OPTIONAL.filter((n) => expect[n])] : [...REQUIRED, ...OPTIONAL];
  const tracker = new ProgressTracker('model', onProgress, names.map((n) => expect?.[n]?.bytes ?? 0));
  // When one file fails the load has failed: stop the other downloads rather than finish them.
  const abort = new AbortController();
  signal?.addEventListener('abort', () => abort.abort(), { once: true });
  const get = async (name, i) => {
    const url = confine(name, base, 'the model folder');
    tracker.initiate(i, url);
    try {
      const bytes = await download(url, {
        expect: expect?.[name] ?? null,
        cacheName: expect ? CACHE_NAMES.model : null,
        httpCache: 'default',
        retries,
        backoffMs,
        signal: abort.signal,
        onProgress: (p) => tracker.progress(i, url, p),
        what: url,
      });
      tracker.verified(i, url, bytes.byteLength, tracker.cached[i]);
      return bytes;
    } catch (e) {
      if (!expect && OPTIONAL.includes(name) && e?.status === 404) return null;
      throw e;
    }
  };
  try {
    const [config, tokenizer, weights, sentence = null] = await Promise.all(names.map(get));
    return { config, tokenizer, weights, sentence };
  } catch (e) {
    abort.abort();
    throw e;
  }
}

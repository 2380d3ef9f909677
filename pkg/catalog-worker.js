// The catalog's Web Worker: fetches the manifest, streams the shards into the wasm store
// (catalog-loader.js) and answers queries on what has verified so far. Requests and
// answers: see worker-runtime.js and client.js; loading notices go out as `status`.
import { CatalogLoader } from './catalog-loader.js';
import { LocalrecError } from './errors.js';
import { confine, download } from './download.js';
import { probeWebGpu, reportWebGpuFailure } from './gpu.js';
import { MAX_MANIFEST_BYTES } from './limits.js';
import { cpuModule, memory, webgpuModule } from './wasm-modules.js';
import { notify, requestCount, serve } from './worker-runtime.js';

// One catalog per worker (the page's Catalog owns its worker). The loader keeps streaming
// shards after `open` has answered.
let catalog = null;

/**
 * Where `recommend` scores. 'cpu' and 'webgpu' are what they say. 'auto' is not timed: it
 * scores on WebGPU when the adapter is real hardware, and on the CPU when there is none or
 * only a fallback (CPU-emulated) one, which would be slower than the CPU path.
 */
async function scoringBackend(backend) {
  if (backend === 'cpu') return { useGpu: false, reason: 'the CPU was asked for' };
  const probe = await probeWebGpu();
  if (probe.why) {
    if (backend === 'webgpu') throw new LocalrecError('localrec/backend-unavailable', `webgpu: ${probe.why}`);
    return { useGpu: false, reason: `no usable WebGPU adapter (${probe.why})` };
  }
  if (backend === 'auto' && probe.fallback) {
    return { useGpu: false, reason: 'the WebGPU adapter is a fallback (CPU-emulated) one, slower than the CPU' };
  }
  return { useGpu: true, reason: backend === 'webgpu' ? 'WebGPU was asked for' : 'a hardware WebGPU adapter is present' };
}

/** The manifest at `url`, revalidated with the server on every open (it changes on republish). */
function fetchManifest({ url, retries, backoffMs }, signal) {
  return download(url, { maxBytes: MAX_MANIFEST_BYTES, httpCache: 'no-cache', retries, backoffMs, signal, what: url });
}

// A republish seen mid-load (a shard gone or unlike its digest, and a different manifest
// at the URL) moves the load to the new version; so many times per open at the most.
const MAX_VERSION_SWITCHES = 2;

/**
 * One version of the catalog: a wasm store over the manifest `bytes`, every path it names
 * resolved and confined before any request, and WebGPU scoring set up when chosen.
 */
async function attach(glue, bytes, { url, maxBytes, backend }, choice) {
  const store = new glue.WasmCatalog(bytes, maxBytes);
  let manifest;
  let shardUrls;
  let modelUrl;
  try {
    manifest = store.manifest();
    shardUrls = manifest.shards.map((s, i) => confine(s.path, url, `the catalog's shard ${i}`));
    modelUrl = confine(manifest.encoder.model, url, "the catalog's encoder model folder");
  } catch (e) {
    store.free();
    throw e;
  }
  let scoring = 'cpu';
  let reason = choice.reason;
  if (choice.useGpu) {
    try {
      await store.useWebGpu();
      if (store.takeWebGpu()) {
        scoring = 'webgpu';
        glue.onDeviceLost((why) => {
          if (catalog?.scoring === 'webgpu') notify('lost', { reason: why });
        });
      }
    } catch (e) {
      if (backend === 'webgpu') {
        store.free();
        throw new LocalrecError('localrec/backend-unavailable', `webgpu: ${e.message}`);
      }
      reason = `WebGPU failed to start (${e.message})`;
    }
  }
  return { bytes, store, manifest, shardUrls, modelUrl, scoring, reason };
}

/** Whether two manifests' bytes are the same. */
function sameBytes(a, b) {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
}

/**
 * Loads `version` as the catalog, shard by shard. When a shard cannot be had and the
 * manifest at the URL has changed since (the catalog was republished during the load),
 * the load goes on with the new version: its shards come from the network or, where
 * they did not change, from Cache Storage; the page is told (`version`). Resolves once
 * the last version loaded has settled.
 */
async function load(glue, version, request, choice, onShard, switches = 0) {
  const emit = (status, progress) => notify('status', { status, progress });
  // A newer manifest that does not validate (or whose paths escape) is no version to
  // move to: the failed shard is then reported as it would have been.
  const recheck = switches < MAX_VERSION_SWITCHES ? async () => {
    const fresh = await fetchManifest(request);
    return sameBytes(fresh, version.bytes) ? null : attach(glue, fresh, request, choice).catch(() => null);
  } : null;
  const { cache, retries, backoffMs } = request;
  const loader = new CatalogLoader(version.store, version.manifest, request.url, version.shardUrls, { cache, retries, backoffMs, recheck }, emit);
  catalog = { ...version, loader };
  emit(loader.status());
  const next = await loader.run(onShard);
  if (!next) return;
  if (catalog?.loader !== loader) {
    next.store.free();
    return;
  }
  const old = version.store;
  setTimeout(() => old.free(), 0);
  notify('version', { manifest: next.manifest, modelUrl: next.modelUrl, scoring: next.scoring });
  await load(glue, next, request, choice, onShard, switches + 1);
}

async function open(request, { signal }) {
  const { wait, backend } = request;
  const choice = await scoringBackend(backend);
  const wasm = choice.useGpu ? webgpuModule() : cpuModule();
  wasm.catch(() => {});
  const bytes = await fetchManifest(request, signal);
  const glue = await wasm;
  const version = await attach(glue, bytes, request, choice);
  close();
  let firstUsable;
  const first = new Promise((resolve) => (firstUsable = resolve));
  const all = load(glue, version, request, choice, () => {
    if (catalog?.store.status().itemsLoaded > 0) firstUsable();
  });
  all.then(firstUsable, firstUsable);
  if (wait === 'all') await all;
  else if (wait !== 'manifest') await first;
  const now = opened();
  return { manifest: now.manifest, status: now.loader.status(), scoring: now.scoring, scoringReason: now.reason, modelUrl: now.modelUrl };
}

function close() {
  if (!catalog) return null;
  catalog.loader.close();
  // Freed once the loader has seen the abort; a query after close finds no catalog.
  const { store } = catalog;
  catalog = null;
  setTimeout(() => store.free(), 0);
  return null;
}

function opened() {
  if (!catalog) throw new LocalrecError('localrec/closed', 'the catalog is closed');
  return catalog;
}

/**
 * On WebGPU the scores are read back asynchronously: prepare, run, then rank. A shard
 * verified while the scores were on their way makes the job stale (`finishRecommend`
 * answers undefined): it is asked again over the grown catalog, a few times at most
 * (shards stop arriving).
 */
async function recommend({ request }) {
  for (let attempt = 0; ; attempt++) {
    const { store, scoring } = opened();
    if (scoring !== 'webgpu') return store.recommend(request);
    const job = store.prepareRecommend(request);
    try {
      await job.run().catch((e) => {
        reportWebGpuFailure(e);
        throw e;
      });
      const answer = opened().store.finishRecommend(job);
      if (answer !== undefined) return answer;
      if (attempt >= 8) throw new LocalrecError('localrec/timeout', 'the catalog kept growing while it was scored; ask again');
    } finally {
      job.free();
    }
  }
}

/** The items most like `itemId`: the scorer's item-to-item ranking (`rankBy: 'similar'`). */
async function similar({ itemId, k }) {
  const { store, loader } = opened();
  if (!store.embedding(itemId)) {
    const where = loader.status().complete ? 'in the catalog' : 'in the part of the catalog loaded so far';
    throw new LocalrecError('localrec/not-found', `item ${JSON.stringify(itemId)} is not ${where}`);
  }
  const answer = await recommend({ request: { events: [{ itemId, type: 'like' }], k, rankBy: 'similar' } });
  return { results: answer.results.map(({ itemId: id, score, item }) => ({ itemId: id, score, item })), partial: answer.partial, warnings: answer.warnings };
}

serve({
  open,
  close,
  item: ({ itemId }) => opened().store.item(itemId),
  items: ({ offset, limit, quantized }) => opened().store.items(offset, limit, Boolean(quantized)),
  embedding: ({ itemId }) => opened().store.embedding(itemId) ?? null,
  quantizedItem({ itemId }) {
    const item = opened().store.quantizedItem(itemId);
    return item ? { ...item, embedding: Int8Array.from(item.embedding) } : null;
  },
  nearest({ vector, k, excludeId }) {
    const { store } = opened();
    const complete = store.status().complete;
    return { results: store.nearest(vector, k, excludeId ?? undefined), partial: !complete, warnings: [] };
  },
  similar,
  recommend,
  requests: requestCount,
  memory,
});

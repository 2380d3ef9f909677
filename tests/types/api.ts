// Type-checks pkg/index.d.ts against the way a page uses every export (`make test` runs
// `tsc -p tests/types`). Never executed: it only has to compile.
import {
  CATALOG_CACHE_NAME, Catalog, ELEMENT_TAG, Encoder, LocalrecError, LocalrecRecommendations, MODEL_CACHE_NAME, Recommender,
  WASM_CACHE_NAME, limits,
} from '../../pkg/index.js';
import type {
  Answer, BackendInfo, Calibration, CatalogItem, CatalogManifest, CatalogStatus, ErrorCode, EventType, FileEntry,
  ForeignEvent, Neighbours, ProfileDocument, ProfileDocumentV1, ProfileSnapshot, ProfileSummary, Progress, RankBy, Recommendation, Recommendations, RecommenderResult,
  ResultList, ScoredItem, SelectDetail, StoredEvent, WorkerMemory,
} from '../../pkg/index.js';

/** The web component as a page uses it: typed by tag name, its events and its recommender. */
async function element(): Promise<string[]> {
  const el = document.createElement(ELEMENT_TAG);
  el.setAttribute('catalog', '/catalog/');
  el.addEventListener('localrec-select', (e) => {
    const detail: SelectDetail = e.detail;
    if (detail.because?.type === 'view') e.preventDefault();
    if (detail.because?.foreign) void `${detail.because.title} (${detail.because.catalog})`;
  });
  el.addEventListener('localrec-render', (e) => void e.detail.results.map((r) => r.itemId));
  el.addEventListener('localrec-error', (e) => void e.detail.error);
  document.body.append(el);
  const found: LocalrecRecommendations | null = document.querySelector('localrec-recommendations');
  const shown = await (found ?? el).refresh();
  void el.recommender?.profile.summary();
  return shown.map((r) => r.item.title);
}
void element;

function onProgress(p: Progress): string {
  switch (p.status) {
    case 'initiate':
    case 'progress':
      return `${p.source} ${p.file} ${p.loaded}/${p.total} ${p.fraction}`;
    case 'verified':
      return `${p.file} ${p.cached ? 'from cache' : 'downloaded'}`;
    case 'failed':
      return `${p.file}: ${p.error.code}`;
    case 'ready':
      return `${p.source} ready`;
  }
}

export async function usesEveryExport(signal: AbortSignal): Promise<void> {
  const names: string[] = [CATALOG_CACHE_NAME, MODEL_CACHE_NAME, WASM_CACHE_NAME];
  const k: number = limits.MAX_K + limits.DEFAULT_K;
  const types: readonly EventType[] = limits.EVENT_TYPES;
  const codes: readonly ErrorCode[] = limits.ERROR_CODES;
  const rankBy: RankBy = limits.RANK_BY[0];

  const enc = await Encoder.load('/model/', { backend: 'auto', onProgress, signal, allowUnverified: false });
  const vectors: Float32Array = await enc.embed(['a text'], { batchSize: 8, signal });
  const calibration: Calibration | null = enc.calibration;
  const memory: WorkerMemory = await enc.memory();
  const ids: number[][] = await enc.tokenize(['a text']);

  const files: FileEntry[] = [{ path: 'model.safetensors', bytes: 1, sha256: '0'.repeat(64) }];
  await Encoder.load('/elsewhere/', { files, workerUrl: '/my-worker.js' });

  const catalog = await Catalog.open('/catalog/', { wait: 'all', backend: 'cpu', onProgress, signal });
  const manifest: CatalogManifest = catalog.manifest;
  const status: CatalogStatus = await catalog.loaded;
  const item: CatalogItem | null = await catalog.item('1');
  const near: Neighbours = await catalog.nearest(vectors, { k, signal });
  const similar: Answer<ScoredItem> = await catalog.similar('1', { k: 5 });
  const recs: Recommendations = await catalog.recommend({ events: [{ itemId: '1', type: 'like' }], rankBy }, { signal });
  const first: Recommendation | undefined = recs.results[0];
  const q = await catalog.quantizedItem('1');
  const row: Int8Array | undefined = q?.embedding;
  const dims: number = Math.min(limits.MAX_EMBEDDING_DIMS, manifest.encoder.dims);
  const elsewhere: ForeignEvent = { embedding: Array.from(row ?? [], (v) => v * (q?.scale ?? 0)), type: 'like', ageDays: 1 };
  const across: Recommendations = await catalog.recommend({ foreign: [elsewhere] });
  const foreignIndex: number | undefined = across.results[0]?.because?.foreign;
  const why: string[] = recs.warnings;

  const rec = await Recommender.open('/catalog/', { profileName: 'site', onProgress, workerUrls: { catalog: '/w.js' } });
  const stored: StoredEvent = await rec.record({ itemId: 1, type: 'rate', value: 4 });
  const list: ResultList<RecommenderResult> = await rec.recommend({ k: 10, diversity: 0.3, signal });
  const partial: boolean = list.partial;
  const same: RecommenderResult[] = list.results;
  const why0 = list[0]?.because;
  const because: string = why0?.foreign ? `Because you liked ${why0.title} (${why0.catalog})` : '';
  const recordedIn: string | undefined = stored.catalog;
  const found: ResultList<ScoredItem> = await rec.search('space drama', { k: 5, signal });
  const like: ResultList<ScoredItem> = await rec.similar('1');
  const summary: ProfileSummary = await rec.profile.summary();
  const doc: ProfileDocument = await rec.profile.export();
  const snapshot: ProfileSnapshot | undefined = doc.snapshots[0];
  const old: ProfileDocumentV1 = { format: 'localrec-profile', version: 1, catalog: 'films', events: [{ itemId: '1', type: 'like' }], interests: [] };
  await rec.profile.import(old);
  const perCatalog: Record<string, number> = summary.eventsByCatalog;
  await rec.profile.import(JSON.stringify(doc));
  await rec.profile.clear();
  const info: BackendInfo = rec.backendInfo();
  await rec.addInterest('quiet space dramas', { signal });
  await rec.close();

  try {
    await catalog.close();
  } catch (e) {
    if (e instanceof LocalrecError) {
      const code: ErrorCode = e.code;
      void code;
    }
  }
  void [dims, across, foreignIndex, because, recordedIn, snapshot, perCatalog];
  void [names, types, codes, calibration, memory, ids, manifest, status, item, near, similar, first, why, stored, partial, same, found, like, summary, info];
}

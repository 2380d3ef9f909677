/** A stable error code: `localrec/<kind>` (the full list is `limits.ERROR_CODES`). */
export type ErrorCode =
  | 'localrec/config'
  | 'localrec/tokenizer'
  | 'localrec/weights'
  | 'localrec/input'
  | 'localrec/backend'
  | 'localrec/io'
  | 'localrec/format'
  | 'localrec/integrity'
  | 'localrec/network'
  | 'localrec/not-found'
  | 'localrec/closed'
  | 'localrec/aborted'
  | 'localrec/timeout'
  | 'localrec/storage'
  | 'localrec/worker'
  | 'localrec/internal'
  | 'localrec/backend-unavailable'
  | 'localrec/backend-lost'
  | 'localrec/csp';

/** An error from localrec, with a stable `code`. */
export class LocalrecError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string);
}

/** Which loader a progress event is about. */
export type ProgressSource = 'model' | 'catalog';

/**
 * Download and start-up progress of the model and the catalog, as a tagged union on
 * `status`. `fraction` is the source's overall progress in bytes, from 0 to 1.
 */
export type Progress =
  /** A file is asked for (`total`: its size when a manifest gives it, else 0). */
  | { status: 'initiate'; source: ProgressSource; file: string; loaded: 0; total: number; fraction: number }
  /** Bytes of a file arrive (at most every 100 ms). */
  | { status: 'progress'; source: ProgressSource; file: string; loaded: number; total: number; fraction: number }
  /** A file passed its size and SHA-256 check; `cached`: it came from Cache Storage. */
  | { status: 'verified'; source: ProgressSource; file: string; loaded: number; total: number; cached: boolean; fraction: number }
  /** A catalog shard was given up on (the rest still load). */
  | { status: 'failed'; source: 'catalog'; file: string; error: { code: ErrorCode; message: string }; fraction: number }
  /** The model is loaded, or every shard of the catalog has settled. */
  | { status: 'ready'; source: ProgressSource; fraction: 1 };

/** Every limit and vocabulary the library checks (generated from the Rust side). */
export declare const limits: {
  readonly MAX_K: number;
  readonly DEFAULT_K: number;
  readonly MAX_EVENTS: number;
  readonly MAX_INTERESTS: number;
  readonly MAX_TEXT_CHARS: number;
  readonly MAX_ITEM_ID_CHARS: number;
  readonly MAX_SCENARIO_CHARS: number;
  readonly MAX_PROFILE_NAME_CHARS: number;
  readonly MAX_IMPORT_CHARS: number;
  readonly PROFILE_FORMAT: 'localrec-profile';
  readonly PROFILE_VERSION: number;
  readonly EVENT_TYPES: readonly EventType[];
  readonly RATE_EVENT: 'rate';
  readonly RATING_RANGE: readonly [number, number];
  readonly DIVERSITY_RANGE: readonly [number, number];
  readonly RANK_BY: readonly RankBy[];
  readonly BACKENDS: readonly Backend[];
  readonly CATALOG_WAIT: readonly CatalogWait[];
  readonly STORAGE: readonly ProfileStorage[];
  readonly MAX_MANIFEST_BYTES: number;
  /** Widest embedding a catalog (and so a profile's item snapshot) may hold. */
  readonly MAX_EMBEDDING_DIMS: number;
  readonly DEFAULT_MAX_CATALOG_BYTES: number;
  readonly MAX_MODEL_MANIFEST_BYTES: number;
  readonly MAX_MODEL_FILE_BYTES: number;
  readonly ERROR_CODES: readonly ErrorCode[];
};

export type EventType = 'view' | 'click' | 'like' | 'dislike' | 'rate' | 'purchase';
export type RankBy = 'blend' | 'similar' | 'text' | 'collaborative';
export type CatalogWait = 'first' | 'manifest' | 'all';
export type ProfileStorage = 'indexeddb' | 'memory';

/** A model file a manifest vouches for. */
export interface FileEntry {
  path: string;
  bytes: number;
  /** 64 lowercase hex digits. */
  sha256: string;
}

export type Backend = 'auto' | 'webgpu' | 'cpu';

export interface EncoderLoadOptions {
  /** Which compute backend to use; `'auto'` picks one. */
  backend?: Backend;
  /** Called as bytes arrive (or files come from the cache) and when the model is ready. */
  onProgress?: (progress: Progress) => void;
  /**
   * The model files' sizes and SHA-256 as someone the page trusts vouches for them (a
   * catalog's `manifest.encoder.files`); default: the folder's own manifest.json.
   */
  files?: FileEntry[];
  /**
   * Load a folder that has no manifest.json (an original Hugging Face folder) without
   * checking its files; they are then not cached either. Default false: such a folder
   * rejects with `localrec/integrity`.
   */
  allowUnverified?: boolean;
  /** Aborts the load (`localrec/aborted`). */
  signal?: AbortSignal;
  /** The encoder worker's script, when the page serves its own copy (default: the package's). */
  workerUrl?: string | URL;
  /**
   * With `backend: 'auto'`: also time WebGPU when the browser's only adapter is a
   * fallback one (`isFallbackAdapter`: implemented on the CPU, such as SwiftShader).
   * Default false: such an adapter is skipped without downloading the WebGPU module.
   */
  timeFallbackAdapter?: boolean;
}

/**
 * The Cache Storage cache where verified model files are kept between visits:
 * `caches.delete(MODEL_CACHE_NAME)` empties it.
 */
export const MODEL_CACHE_NAME: 'localrec-model-v1';
/** The Cache Storage cache of verified wasm modules. */
export const WASM_CACHE_NAME: 'localrec-wasm-v1';

export interface EmbedOptions {
  /** Texts per model call (default 32): a whole number >= 1, else `localrec/input`. */
  batchSize?: number;
  /** Aborts the call (`localrec/aborted`). */
  signal?: AbortSignal;
}

/** One backend's speed on the calibration batch (8 short item texts). */
export interface BackendTiming {
  ms: number;
  sentencesPerSecond: number;
  texts: number;
}

/** How `backend: 'auto'` chose: both backends timed on the same batch. */
export interface Calibration {
  cpu: BackendTiming;
  /**
   * WebGPU's timing; or why it was not timed (its adapter is a CPU-emulated fallback);
   * or why it could not be used (missing, failed, too slow to start).
   */
  webgpu: BackendTiming | { skipped: string } | { error: { code: ErrorCode; message: string } };
  chosen: 'webgpu' | 'cpu';
  reason: string;
}

/** A sentence encoder running in a Web Worker. */
export class Encoder {
  private constructor();
  /**
   * Downloads (or takes from Cache Storage, after checking them again) and loads the
   * model in the folder at `modelUrl`. Rejects with `localrec/network` (HTTP error, cut
   * download after retries), `localrec/integrity` (size or SHA-256 unlike what `files` or
   * the folder's manifest vouch for, or nothing vouches), `localrec/config`,
   * `localrec/tokenizer` or `localrec/weights` (unusable files), `localrec/aborted`.
   */
  static load(modelUrl: string | URL, options?: EncoderLoadOptions): Promise<Encoder>;
  /**
   * The backend in use. `'webgpu'` forced where WebGPU is missing rejects with
   * `localrec/backend-unavailable`; if the WebGPU device is lost later, the encoder moves
   * to the CPU and pending calls complete there.
   */
  readonly backend: 'webgpu' | 'cpu';
  /** With `backend: 'auto'`: the figures behind the choice; otherwise null. */
  readonly calibration: Calibration | null;
  /** On WebGPU, the adapter wgpu opened its device on; null on the CPU. */
  readonly adapter: { vendor: string; architecture: string; description: string } | null;
  /** Why the encoder left WebGPU for the CPU after loading, or null. */
  readonly fallbackReason: string | null;
  /** Width of the embeddings (384 for all-MiniLM-L6-v2). */
  readonly dims: number;
  /**
   * `texts.length * dims` values, one unit-length row per text, in input order (empty for
   * an empty array). Anything but an array of strings, or a text over 1 MiB of UTF-8,
   * rejects with `localrec/input`; lone surrogates are read as U+FFFD.
   */
  embed(texts: string[], options?: EmbedOptions): Promise<Float32Array>;
  /** Token ids of each text, as the model sees them. */
  tokenize(texts: string[]): Promise<number[][]>;
  /** Bytes of the worker's wasm memories, for diagnostics. */
  memory(): Promise<WorkerMemory>;
  /** Network requests the worker has made (resource timing), for diagnostics. */
  requestCount(): Promise<number | null>;
  /** Frees the model and stops the worker. */
  close(): Promise<void>;
}

/**
 * The Cache Storage cache where verified catalog shards are kept between visits:
 * `caches.delete(CATALOG_CACHE_NAME)` empties it.
 */
export const CATALOG_CACHE_NAME: 'localrec-catalog-v1';

/** A catalog's manifest (docs/catalog-format.md), as validated by the loader. */
export interface CatalogManifest {
  format: 'localrec-catalog';
  version: number;
  name: string;
  created_by: string;
  items: number;
  encoder: {
    name: string;
    dims: number;
    pooling: string;
    normalized: boolean;
    max_seq_length: number;
    source_weights_sha256: string;
    weights_sha256: string;
    model: string;
    /** The model's files as the catalog vouches for them (absent in catalogs built before). */
    files?: FileEntry[];
  };
  quantization: { embeddings: string };
  collaborative: { dims: number; bias: boolean; params: Record<string, unknown> } | null;
  scenarios: string[];
  shards: { path: string; bytes: number; items: number; sha256: string }[];
}

/** A shard the loader gave up on, and why. */
export interface FailedShard {
  /** Its index in `manifest.shards`. */
  shard: number;
  path: string;
  /** `localrec/network` (HTTP error, retries spent), `localrec/integrity` (size or SHA-256), `localrec/format`. */
  code: ErrorCode;
  message: string;
  reason: string;
}

/** Where loading a catalog stands (`catalog.status`). */
export interface CatalogStatus {
  /** Increases with every status of one worker: a later one replaces an earlier one. */
  seq: number;
  /** Bytes of the shards settled so far plus the one downloading. */
  loaded: number;
  /** Bytes of all shards, from the manifest. */
  total: number;
  /** Items usable now (from verified shards). */
  itemsLoaded: number;
  itemsTotal: number;
  shardsLoaded: number;
  shardsTotal: number;
  /** Shards served from Cache Storage (verified again) rather than the network. */
  shardsFromCache: number;
  /** Shards downloaded. */
  shardsFetched: number;
  /** Milliseconds the worker spent parsing, hashing and verifying shard bytes so far. */
  verifyMs: number;
  failed: FailedShard[];
  /** Every shard loaded: queries see the whole catalog. */
  complete: boolean;
  /** Every shard loaded or failed: nothing more will arrive. */
  settled: boolean;
}

export interface CatalogOpenOptions {
  /** Called as shard bytes arrive and as each shard settles (`source: 'catalog'`). */
  onProgress?: (progress: Progress) => void;
  /** Keep verified shards in Cache Storage and use them on the next visit. Default true. */
  cache?: boolean;
  /** Further tries after a network error, a cut connection or a 408/429/5xx. Default 4. */
  retries?: number;
  /** First wait before a retry, doubled each time (with jitter). Default 250. */
  backoffMs?: number;
  /** Refuse a catalog whose shards add up to more bytes than this. Default 2^30. */
  maxBytes?: number;
  /** When `open` resolves: after the first usable shard (default), the manifest, or all shards. */
  wait?: 'first' | 'manifest' | 'all';
  /**
   * Where `recommend` scores: the CPU (default), WebGPU (rejects with
   * `localrec/backend-unavailable` without it), or 'auto' (WebGPU on a hardware adapter,
   * the CPU otherwise; not timed). If the WebGPU device is lost, scoring moves to the CPU
   * and pending calls complete there.
   */
  backend?: 'cpu' | 'webgpu' | 'auto';
  /** Aborts the open (`localrec/aborted`). */
  signal?: AbortSignal;
  /** The catalog worker's script, when the page serves its own copy (default: the package's). */
  workerUrl?: string | URL;
}

/** An item as the catalog holds it: its id, title, genres and any other metadata. */
export interface CatalogItem {
  itemId: string;
  title: string;
  genres: string[];
  [key: string]: unknown;
}

/** One item of a ranking. */
export interface ScoredItem {
  itemId: string;
  /** The cosine for `nearest`, the scorer's blended score otherwise. */
  score: number;
  item: CatalogItem;
}

/** What every query answers: the results, best first, and what this call saw. */
export interface Answer<T> {
  results: T[];
  /** True while shards are still missing (loading, or failed): the ranking saw part of the catalog. */
  partial: boolean;
  /** What this call ignored and why (events on items the catalog does not hold, an unknown scenario). */
  warnings: string[];
}

export type Neighbours = Answer<ScoredItem>;

/** Options of a long call. */
export interface CallOptions {
  /** Aborts the call (`localrec/aborted`). */
  signal?: AbortSignal;
}

/**
 * A catalog published as static files by `localrec build`, loaded in a Web Worker: every
 * shard in manifest order (whatever the visitor does, so the requests reveal nothing),
 * each verified against its SHA-256 before use and cached only then.
 */
export class Catalog {
  private constructor();
  /**
   * Opens the catalog whose manifest.json is at `url` (or in the folder `url`). Rejects
   * with `localrec/network` when the manifest cannot be fetched, `localrec/format` when
   * it is malformed, of another version, or claims absurd sizes or counts (before any
   * shard is fetched). Failures of single shards do not reject: see `status.failed`.
   */
  static open(url: string | URL, options?: CatalogOpenOptions): Promise<Catalog>;
  /** Why `scoring` is what it was chosen to be (asked for, adapter present or not, WebGPU lost). */
  readonly scoringReason: string;
  /** Why scoring left WebGPU for the CPU after opening, or null. */
  readonly fallbackReason: string | null;
  /** The model folder the manifest names, resolved under the catalog's folder. */
  readonly modelUrl: string;
  readonly manifest: CatalogManifest;
  /** The latest status. */
  readonly status: CatalogStatus;
  /** Resolves with the final status once every shard has loaded or failed. */
  readonly loaded: Promise<CatalogStatus>;
  /** Where `recommend` scores. */
  readonly scoring: 'cpu' | 'webgpu';
  /** The item, or null when it is not (yet) loaded. */
  item(itemId: string | number): Promise<CatalogItem | null>;
  /** Loaded items in catalog order; with `quantized`, each has `scale` and int8 `embedding`. */
  items(options?: { offset?: number; limit?: number; quantized?: boolean }): Promise<(CatalogItem & { scale?: number; embedding?: number[] })[]>;
  /** The item with its stored int8 row (`embedding[i] * scale` is its embedding), or null when it is not loaded. */
  quantizedItem(itemId: string | number): Promise<(CatalogItem & { scale: number; embedding: Int8Array }) | null>;
  /** The item's embedding, or null when it is not loaded. */
  embedding(itemId: string | number): Promise<Float32Array | null>;
  /** The loaded items nearest to `vector` by cosine. Wrong width or `k` outside 1..MAX_K: `localrec/input`. */
  nearest(vector: Float32Array | number[], options?: { k?: number; excludeId?: string | number } & CallOptions): Promise<Neighbours>;
  /** The loaded items most similar to `itemId`, itself excluded; `localrec/not-found` when it is not loaded. */
  similar(itemId: string | number, options?: { k?: number } & CallOptions): Promise<Neighbours>;
  /** Ranks the loaded items for a profile passed in with the call (nothing is kept). */
  recommend(request?: RecommendRequest, options?: CallOptions): Promise<Recommendations>;
  /** Bytes of the worker's wasm memories, for diagnostics. */
  memory(): Promise<WorkerMemory>;
  /** Network requests the worker has made (resource timing), for diagnostics. */
  requestCount(): Promise<number | null>;
  /** Stops loading and frees the catalog and its worker. */
  close(): Promise<void>;
}

/** One event of a profile. */
export interface ProfileEvent {
  itemId: string | number;
  type: EventType;
  /** The rating for 'rate' (1 to 5); a weight multiplier for the other types. */
  value?: number;
  /** Age in days; older events weigh less when the catalog sets a half-life. */
  ageDays?: number;
  /** The scenario the event happened in (one of `catalog.manifest.scenarios`). */
  scenario?: string;
}

/** A typed interest, encoded with the catalog's encoder. */
export interface ProfileInterest {
  embedding: Float32Array | number[];
  weight?: number;
  ageDays?: number;
}

/**
 * An event on another catalog's item: the item's embedding (its catalog's int8 row times
 * the scale, this catalog's encoder's width) stands in for the item.
 */
export interface ForeignEvent {
  embedding: Float32Array | number[];
  type: EventType;
  /** The rating for 'rate'. */
  value?: number;
  ageDays?: number;
}

export interface RecommendRequest {
  events?: ProfileEvent[];
  interests?: ProfileInterest[];
  /** Events on other catalogs' items (at most MAX_EVENTS). */
  foreign?: ForeignEvent[];
  /** Results wanted (default 10, at most 1000). */
  k?: number;
  /** MMR diversity from 0 (none) to 1. */
  diversity?: number;
  /** Item ids never to return. */
  exclude?: (string | number)[];
  /**
   * The scenario the user is in now (one of `catalog.manifest.scenarios`): the
   * catalog's scenario terms apply. An unknown one only adds a warning.
   */
  scenario?: string;
  /**
   * 'blend' (default): the catalog's tuned blend; 'similar': the item-item model and the
   * text, without the ALS fold-in or popularity (what `similar()` uses); 'text': the text
   * term alone; 'collaborative': the ALS term alone (an imported Spark model's own ranking).
   */
  rankBy?: 'blend' | 'similar' | 'text' | 'collaborative';
  /** Confidence per event type instead of the catalog's defaults (any subset). */
  eventWeights?: EventWeights;
}

/** Confidence per event type; a negative one (dislike) marks a known non-preference. */
export interface EventWeights {
  view?: number;
  click?: number;
  like?: number;
  dislike?: number;
  purchase?: number;
  /** Per star above or below 3 for 'rate'. */
  rate?: number;
}

export interface Recommendation {
  itemId: string;
  /** The blended score (standardized terms, weighted). */
  score: number;
  item: CatalogItem;
  /**
   * The history item (with the event's position), the interest, or the foreign event (its
   * position in `foreign`) that contributed most.
   */
  because: { itemId?: string; event?: number; interest?: number; foreign?: number; contribution: number } | null;
  /** The rating head's prediction (the catalog's rating scale), when the catalog has one. */
  predictedRating?: number;
}

export type Recommendations = Answer<Recommendation>;

/** An event as the page records it. */
export interface RecordEvent {
  itemId: string | number;
  type: EventType;
  /** The rating for 'rate' (the catalog's scale, 0 to 10); a weight multiplier for the other types. */
  value?: number;
  /** One of `manifest.scenarios`. */
  scenario?: string;
  /** Milliseconds since the epoch (default now); older events weigh less when the catalog sets a half-life. */
  time?: number;
}

export interface StoredEvent extends RecordEvent {
  itemId: string;
  time: number;
  /** The catalog it was recorded against (its manifest's `name`); none for events stored before catalogs were recorded. */
  catalog?: string;
  /** Its key in the profile. */
  id: number;
}

export interface RecommenderOptions {
  /** Where items are scored and text is encoded (default 'auto'). */
  backend?: 'auto' | 'webgpu' | 'cpu';
  /** Catalog loading (`source: 'catalog'`) and, once needed, the model's (`source: 'model'`). */
  onProgress?: (progress: Progress) => void;
  /** Where the profile is kept (default 'indexeddb'; falls back to memory, with `profile.summary().persistent` false). */
  storage?: 'indexeddb' | 'memory';
  /** Several profiles may live side by side (default 'default'). */
  profileName?: string;
  /** Confidence per event type instead of the catalog's defaults. */
  eventWeights?: EventWeights;
  /**
   * The encoder's folder (default: the catalog's `model/`). Wherever it is, its files must
   * be the ones the catalog's manifest vouches for (`encoder.files`).
   */
  modelUrl?: string;
  /** When `open` resolves: after the first verified shard (default), the manifest, or all shards. */
  wait?: 'first' | 'manifest' | 'all';
  /** Aborts the open (`localrec/aborted`). */
  signal?: AbortSignal;
  /** The workers' scripts, when the page serves its own copies (default: the package's). */
  workerUrls?: { catalog?: string | URL; encoder?: string | URL };
}

export interface RecommendOptions {
  /** Results wanted (default 10, at most 1000). */
  k?: number;
  /** One of `manifest.scenarios`: the catalog's scenario terms apply. */
  scenario?: string;
  /** MMR diversity from 0 (none) to 1. */
  diversity?: number;
  /** Item ids never to return, besides the ones acted on. */
  exclude?: (string | number)[];
  /** Keeps only the items it returns true for. */
  filter?: (item: CatalogItem) => boolean;
  /** Aborts the call (`localrec/aborted`). */
  signal?: AbortSignal;
}

export interface RecommenderResult {
  itemId: string;
  score: number;
  item: CatalogItem;
  /**
   * What contributed most: the item acted on (its event's index and `type`), the typed
   * interest (its id and text), or an event recorded against another catalog (`foreign:
   * true`, its `type`, the item's id, `catalog` and `title`).
   */
  because?: {
    itemId?: string; event?: number; type?: EventType; interest?: number; interestId?: number; text?: string;
    foreign?: true; catalog?: string; title?: string; contribution: number;
  } | null;
  predictedRating?: number;
}

/**
 * A list of results that also carries the `Answer` fields (`results` is the list itself),
 * so `Recommender` and `Catalog` answers read the same way.
 */
export type ResultList<T> = T[] & Answer<T>;

export interface ProfileSummary {
  storage: 'indexeddb' | 'memory';
  /** False when the profile lives only in this page's memory. */
  persistent: boolean;
  /**
   * The answer to `navigator.storage.persist()` (asked once when an IndexedDB profile
   * opens): true when the browser will not evict the profile under storage pressure;
   * null when not asked or not answered yet.
   */
  persisted: boolean | null;
  /** Why IndexedDB is not in use although it was asked for. */
  fallbackReason: string | null;
  /** Events of every catalog. */
  events: number;
  eventsByType: Record<string, number>;
  /** Events per catalog (manifest `name`); events from before catalogs were recorded count as this catalog's. */
  eventsByCatalog: Record<string, number>;
  interests: { id: number; text: string; time: number }[];
  /** Distinct items with events. */
  items: number;
  firstEvent: number | null;
  lastEvent: number | null;
}

/**
 * What the profile keeps of an item with events, so that other catalogs can score with
 * them: its catalog's int8 row in base64 (4 characters per 3 values), the scale, the
 * encoder that embedded it, its title.
 */
export interface ProfileSnapshot {
  catalog: string;
  itemId: string;
  encoder: { name: string; dims: number };
  scale: number;
  values: string;
  title: string;
}

/** `profile.export()`: the whole profile (every catalog's events), versioned. */
export interface ProfileDocument {
  format: 'localrec-profile';
  version: 2;
  exportedAt: string;
  /** The catalog it was exported from, and its encoder's name. */
  catalog: string;
  encoder: string;
  events: (RecordEvent & { catalog?: string })[];
  interests: { text: string; embedding: number[]; time: number }[];
  snapshots: ProfileSnapshot[];
}

/** A document of the earlier version (one catalog's events, no snapshots): `import()` still reads it. */
export interface ProfileDocumentV1 {
  format: 'localrec-profile';
  version: 1;
  exportedAt?: string;
  /** Its events are taken as this catalog's. */
  catalog?: string;
  encoder?: string;
  events: RecordEvent[];
  interests: { text: string; embedding: number[]; time?: number }[];
}

export interface Profile {
  summary(): Promise<ProfileSummary>;
  export(): Promise<ProfileDocument>;
  /**
   * Replaces the profile; a bad document rejects with `localrec/input`, one the device
   * cannot store with `localrec/storage`; either way nothing changes.
   */
  import(doc: ProfileDocument | ProfileDocumentV1 | string): Promise<ProfileSummary>;
  /** Deletes the profile from this device, or rejects with `localrec/storage` saying what is still stored. */
  clear(): Promise<void>;
}

export interface BackendInfo {
  requested: 'auto' | 'webgpu' | 'cpu';
  /** Where items are scored, why, and how fast the last `recommend` was. */
  scoring: { backend: 'cpu' | 'webgpu'; reason: string; fallbackReason: string | null; itemsLoaded: number; lastRecommendMs: number | null };
  /** Null until the encoder is needed (typed interests, search). */
  encoder: { backend: 'cpu' | 'webgpu'; calibration: unknown; adapter: unknown; fallbackReason: string | null } | null;
  profile: { storage: 'indexeddb' | 'memory'; persistent: boolean; persisted: boolean | null; fallbackReason: string | null };
}

/** Recommendations computed in the visitor's browser from a static catalog and a profile that never leaves the device. */
export class Recommender {
  static open(catalogUrl: string | URL, options?: RecommenderOptions): Promise<Recommender>;
  readonly catalog: Catalog;
  readonly profile: Profile;
  /** How long the last `recommend` took, in ms. */
  readonly lastRecommendMs: number | null;
  /** Records an event (no network); at `limits.MAX_EVENTS` the oldest events roll off. */
  record(event: RecordEvent): Promise<StoredEvent>;
  addInterest(text: string, options?: CallOptions): Promise<{ id: number; text: string }>;
  removeInterest(id: number): Promise<void>;
  recommend(options?: RecommendOptions): Promise<ResultList<RecommenderResult>>;
  similar(itemId: string | number, options?: { k?: number } & CallOptions): Promise<ResultList<ScoredItem>>;
  /**
   * Items whose text means what `text` says (the encoder's cosine), with results titled
   * like `text` first: titles and query are compared through `normalizeTitle` (default:
   * case and punctuation aside); a catalog with title conventions of its own passes its
   * own (the demo's www/title-match.js finds "Lion King, The (1994)" for "the lion king").
   */
  search(
    text: string,
    options?: { k?: number; normalizeTitle?: (title: string) => string } & CallOptions,
  ): Promise<ResultList<ScoredItem>>;
  backendInfo(): BackendInfo;
  /** Memory of the catalog's and the encoder's workers (wasm linear memories in bytes), for diagnostics. */
  memory(): Promise<{ catalog: WorkerMemory; encoder: WorkerMemory | null }>;
  /** Network requests the catalog's and encoder's workers have made (resource timing). */
  requestCount(): Promise<number>;
  close(): Promise<void>;
}

export interface WorkerMemory {
  /** Bytes of each instantiated module's linear memory. */
  wasm: { cpu?: number | null; webgpu?: number | null };
  /** The worker's used JS heap, where the browser reports it. */
  jsHeapUsed: number | null;
}

/** The tag `element.js` defines. */
export declare const ELEMENT_TAG: 'localrec-recommendations';

/** `detail` of the element's `localrec-select` event (cancelable: the page then handles the choice; it is recorded either way). */
export interface SelectDetail {
  itemId: string;
  item: CatalogItem | undefined;
  score: number | undefined;
  because: RecommenderResult['because'];
}

/**
 * `<localrec-recommendations catalog="..." k="10">`, defined when `element.js` (or the
 * package) is imported. Attributes: `catalog`, `k`, `heading`, `profile-name`, `backend`,
 * `storage`, `diversity`, `view-ms`, `model-url`. Events: `localrec-ready`
 * (`{recommender}`), `localrec-render` (`{results, partial, warnings}`), `localrec-select`
 * (`SelectDetail`), `localrec-error` (`{error}`).
 */
export declare class LocalrecRecommendations extends HTMLElement {
  /** The recommender once open, else null. */
  readonly recommender: Recommender | null;
  /** The results shown now. */
  readonly results: RecommenderResult[];
  /** Renders again from the profile as it is now; resolves with the results shown. */
  refresh(): Promise<RecommenderResult[]>;
}

declare global {
  interface HTMLElementTagNameMap {
    'localrec-recommendations': LocalrecRecommendations;
  }
  interface HTMLElementEventMap {
    'localrec-ready': CustomEvent<{ recommender: Recommender }>;
    'localrec-render': CustomEvent<{ results: RecommenderResult[]; partial: boolean; warnings: string[] }>;
    'localrec-select': CustomEvent<SelectDetail>;
    'localrec-error': CustomEvent<{ error: unknown }>;
  }
}

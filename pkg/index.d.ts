/** A stable error code: `localrec/<kind>`. */
export type ErrorCode =
  | 'localrec/config'
  | 'localrec/tokenizer'
  | 'localrec/weights'
  | 'localrec/input'
  | 'localrec/backend'
  | 'localrec/backend-unavailable'
  | 'localrec/backend-lost'
  | 'localrec/timeout'
  | 'localrec/network'
  | 'localrec/integrity'
  | 'localrec/format'
  | 'localrec/not-found'
  | 'localrec/closed'
  | 'localrec/worker'
  | 'localrec/internal'
  | (string & {});

/** An error from localrec, with a stable `code`. */
export class LocalrecError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string);
}

/** Download or start-up progress. */
export interface Progress {
  /** What is happening: the manifest, model files, weights, or initialisation. */
  phase: 'manifest' | 'model' | 'weights' | 'init';
  /** URL of the file being downloaded, when downloading. */
  file?: string;
  /** Bytes received so far for this file. */
  loaded: number;
  /** Expected bytes for this file, or 0 when unknown. */
  total: number;
  /**
   * For a file: `true` when it came, verified, from the browser's Cache Storage (one
   * event, `loaded === total`), `false` while it downloads. Absent for `'init'`.
   */
  cached?: boolean;
}

export type Backend = 'auto' | 'webgpu' | 'cpu';

export interface EncoderLoadOptions {
  /** Which compute backend to use; `'auto'` picks one. */
  backend?: Backend;
  /** Called as bytes arrive (or files come from the cache) and when the model starts. */
  onProgress?: (progress: Progress) => void;
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

export interface EmbedOptions {
  /** Texts per model call (default 32): a whole number >= 1, else `localrec/input`. */
  batchSize?: number;
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
   * download), `localrec/integrity` (size or SHA-256 unlike the manifest's),
   * `localrec/config`, `localrec/tokenizer` or `localrec/weights` (unusable files).
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
  /** Frees the model and stops the worker. */
  /** Bytes of the worker's wasm memories, for diagnostics. */
  memory(): Promise<WorkerMemory>;
  /** Network requests the worker has made (resource timing), for diagnostics. */
  requestCount(): Promise<number | null>;
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

/** Where loading a catalog stands; also what `onProgress` receives. */
export interface CatalogStatus {
  phase: 'catalog';
  /** Increases with every status: a later one replaces an earlier one. */
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
  /** The shard this status is about, when it is about one. */
  shard?: number;
}

export interface CatalogOpenOptions {
  /** Called as shard bytes arrive and as each shard settles. */
  onProgress?: (status: CatalogStatus) => void;
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
  /** Where `recommend` scores: the CPU (default), WebGPU (rejects with
   *  `localrec/backend-unavailable` without it), or 'auto' (WebGPU on a hardware adapter). */
  backend?: 'cpu' | 'webgpu' | 'auto';
}

/** An item as the catalog holds it: its id, title, genres and any other metadata. */
export interface CatalogItem {
  itemId: string;
  title: string;
  genres: string[];
  [key: string]: unknown;
}

export interface Neighbours {
  /** Best first; `score` is the cosine for `nearest`, the scorer's blended score for `similar`. */
  results: { itemId: string; score: number; item: CatalogItem }[];
  /** True while shards are still missing (loading, or failed). */
  partial: boolean;
  /** How many items were searched. */
  itemsSearched: number;
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
  /** Why `scoring` is what it was chosen to be (asked for, adapter present or not). */
  readonly scoringReason: string;
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
  /** The item's embedding, or null when it is not loaded. */
  embedding(itemId: string | number): Promise<Float32Array | null>;
  /** The loaded items nearest to `vector` by cosine. Wrong width: `localrec/input`. */
  nearest(vector: Float32Array | number[], options?: { k?: number; excludeId?: string | number }): Promise<Neighbours>;
  /** The loaded items most similar to `itemId`, itself excluded; `localrec/not-found` when it is not loaded. */
  similar(itemId: string | number, options?: { k?: number }): Promise<Neighbours>;
  /** Ranks the loaded items for a profile passed in with the call (nothing is kept). */
  recommend(request?: RecommendRequest): Promise<Recommendations>;
  /** Stops loading and frees the catalog and its worker. */
  /** Bytes of the worker's wasm memories, for diagnostics. */
  memory(): Promise<WorkerMemory>;
  /** Network requests the worker has made (resource timing), for diagnostics. */
  requestCount(): Promise<number | null>;
  close(): Promise<void>;
}

/** One event of a profile. */
export interface ProfileEvent {
  itemId: string | number;
  type: 'view' | 'click' | 'like' | 'dislike' | 'rate' | 'purchase';
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

export interface RecommendRequest {
  events?: ProfileEvent[];
  interests?: ProfileInterest[];
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
   * term alone.
   */
  rankBy?: 'blend' | 'similar' | 'text';
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
  /** The history item (with the event's position) or interest that contributed most. */
  because: { itemId?: string; event?: number; interest?: number; contribution: number } | null;
  /** The rating head's prediction (the catalog's rating scale), when the catalog has one. */
  predictedRating?: number;
}

export interface Recommendations {
  results: Recommendation[];
  /** True while shards are missing. */
  partial: boolean;
  /** E.g. events on items the catalog does not hold. */
  warnings: string[];
}

/** An event as the page records it. */
export interface RecordEvent {
  itemId: string | number;
  type: 'view' | 'click' | 'like' | 'dislike' | 'rate' | 'purchase';
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
  /** Its key in the profile. */
  id: number;
}

export interface RecommenderOptions {
  /** Where items are scored and text is encoded (default 'auto'). */
  backend?: 'auto' | 'webgpu' | 'cpu';
  /** Catalog loading (`phase: 'catalog'`, with the catalog status) and, once needed, model download (`phase: 'model:...'`). */
  onProgress?: (progress: { phase: string; [key: string]: unknown }) => void;
  /** Where the profile is kept (default 'indexeddb'; falls back to memory, with `profile.summary().persistent` false). */
  storage?: 'indexeddb' | 'memory';
  /** Several profiles may live side by side (default 'default'). */
  profileName?: string;
  /** Confidence per event type instead of the catalog's defaults. */
  eventWeights?: EventWeights;
  /** The encoder's folder (default: the catalog's `model/`). */
  modelUrl?: string;
  /** When `open` resolves: after the first verified shard (default), the manifest, or all shards. */
  wait?: 'first' | 'manifest' | 'all';
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
}

export interface RecommenderResult {
  itemId: string;
  score: number;
  item: CatalogItem;
  /** The liked item (and its event) or typed interest (with its text) that contributed most. */
  because?: { itemId?: string; event?: number; interest?: number; interestId?: number; text?: string; contribution: number } | null;
  predictedRating?: number;
}

export interface ProfileSummary {
  storage: 'indexeddb' | 'memory';
  /** False when the profile lives only in this page's memory. */
  persistent: boolean;
  /** Why IndexedDB is not in use although it was asked for. */
  fallbackReason: string | null;
  events: number;
  eventsByType: Record<string, number>;
  interests: { id: number; text: string; time: number }[];
  /** Distinct items with events. */
  items: number;
  firstEvent: number | null;
  lastEvent: number | null;
}

/** `profile.export()`: the whole profile, versioned. */
export interface ProfileDocument {
  format: 'localrec-profile';
  version: 1;
  exportedAt: string;
  catalog: string;
  encoder: string;
  events: RecordEvent[];
  interests: { text: string; embedding: number[]; time: number }[];
}

export interface Profile {
  summary(): Promise<ProfileSummary>;
  export(): Promise<ProfileDocument>;
  /** Replaces the profile; a bad document rejects with `localrec/input` and changes nothing. */
  import(doc: ProfileDocument | string): Promise<ProfileSummary>;
  clear(): Promise<void>;
}

export interface BackendInfo {
  requested: 'auto' | 'webgpu' | 'cpu';
  /** Where items are scored, why, and how fast the last `recommend` was. */
  scoring: { backend: 'cpu' | 'webgpu'; reason: string; itemsLoaded: number; lastRecommendMs: number | null };
  /** Null until the encoder is needed (typed interests, search). */
  encoder: { backend: 'cpu' | 'webgpu'; calibration: unknown; adapter: unknown; fallbackReason: string | null } | null;
  profile: { storage: 'indexeddb' | 'memory'; persistent: boolean; fallbackReason: string | null };
}

/** Recommendations computed in the visitor's browser from a static catalog and a profile that never leaves the device. */
export class Recommender {
  static open(catalogUrl: string | URL, options?: RecommenderOptions): Promise<Recommender>;
  readonly catalog: Catalog;
  readonly profile: Profile;
  /** Warnings of the last `recommend` (events on items the catalog does not hold, an unknown scenario). */
  readonly warnings: string[];
  /** How long the last `recommend` took, in ms. */
  readonly lastRecommendMs: number | null;
  record(event: RecordEvent): Promise<StoredEvent>;
  addInterest(text: string): Promise<{ id: number; text: string }>;
  removeInterest(id: number): Promise<void>;
  recommend(options?: RecommendOptions): Promise<RecommenderResult[]>;
  similar(itemId: string | number, options?: { k?: number }): Promise<{ itemId: string; score: number; item: CatalogItem }[]>;
  /**
   * Items whose text means what `text` says (the encoder's cosine), with a title equal to
   * the query (articles, years and punctuation aside) first: "the lion king" finds
   * "Lion King, The (1994)" before its sequels.
   */
  search(text: string, options?: { k?: number }): Promise<{ itemId: string; score: number; item: CatalogItem }[]>;
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

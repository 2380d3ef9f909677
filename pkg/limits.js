// Generated from src/limits.rs by its unit test (LOCALREC_BLESS=1 cargo test --lib limits): do not edit.
// Every limit and vocabulary the library checks, defined once in Rust.

/** Most results one request may ask for (`k`). */
export const MAX_K = 1000;

/** Results when a call names no `k`. */
export const DEFAULT_K = 10;

/** Most events a profile keeps (the oldest roll off) and one request may carry. */
export const MAX_EVENTS = 100000;

/** Most typed interests a profile keeps. */
export const MAX_INTERESTS = 1000;

/** Longest text (an interest, a search) in characters. */
export const MAX_TEXT_CHARS = 10000;

/** Longest item id in characters. */
export const MAX_ITEM_ID_CHARS = 1000;

/** Longest scenario name in characters. */
export const MAX_SCENARIO_CHARS = 200;

/** Longest profile name in characters. */
export const MAX_PROFILE_NAME_CHARS = 200;

/** Largest profile document `import()` reads, in characters of JSON. */
export const MAX_IMPORT_CHARS = 134217728;

/** The profile export document's `format`. */
export const PROFILE_FORMAT = 'localrec-profile';

/** The profile export document's `version`. */
export const PROFILE_VERSION = 2;

/** Kinds of events a profile records. */
export const EVENT_TYPES = Object.freeze(['view', 'click', 'like', 'dislike', 'rate', 'purchase']);

/** The event type that carries a rating (`value`, in `RATING_RANGE`). */
export const RATE_EVENT = 'rate';

/** The values a `rate` event may carry (inclusive); 3 is neutral. */
export const RATING_RANGE = Object.freeze([0, 10]);

/** The MMR strength `diversity` (inclusive). */
export const DIVERSITY_RANGE = Object.freeze([0, 1]);

/** How a recommend request may rank. */
export const RANK_BY = Object.freeze(['blend', 'similar', 'text', 'collaborative']);

/** Compute backends a page may ask for. */
export const BACKENDS = Object.freeze(['auto', 'cpu', 'webgpu']);

/** When `Catalog.open` resolves. */
export const CATALOG_WAIT = Object.freeze(['first', 'manifest', 'all']);

/** Where a profile is kept. */
export const STORAGE = Object.freeze(['indexeddb', 'memory']);

/** Largest catalog manifest.json read, in bytes. */
export const MAX_MANIFEST_BYTES = 16777216;

/** Widest embedding a catalog (and so a profile's item snapshot) may hold. */
export const MAX_EMBEDDING_DIMS = 4096;

/** Default cap on a catalog's shard bytes in one page. */
export const DEFAULT_MAX_CATALOG_BYTES = 1073741824;

/** Largest model manifest.json read, in bytes. */
export const MAX_MODEL_MANIFEST_BYTES = 1048576;

/** Largest model file downloaded, in bytes. */
export const MAX_MODEL_FILE_BYTES = 4294967296;

/** Every error code the library gives. */
export const ERROR_CODES = Object.freeze(['localrec/config', 'localrec/tokenizer', 'localrec/weights', 'localrec/input', 'localrec/backend', 'localrec/io', 'localrec/format', 'localrec/integrity', 'localrec/network', 'localrec/not-found', 'localrec/closed', 'localrec/aborted', 'localrec/timeout', 'localrec/storage', 'localrec/worker', 'localrec/internal', 'localrec/backend-unavailable', 'localrec/backend-lost', 'localrec/csp']);

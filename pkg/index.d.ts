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
  close(): Promise<void>;
}

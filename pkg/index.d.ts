/** A stable error code: `localrec/<kind>`. */
export type ErrorCode =
  | 'localrec/config'
  | 'localrec/tokenizer'
  | 'localrec/weights'
  | 'localrec/input'
  | 'localrec/backend'
  | 'localrec/backend-unavailable'
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
}

export type Backend = 'auto' | 'webgpu' | 'cpu';

export interface EncoderLoadOptions {
  /** Which compute backend to use; `'auto'` picks one. */
  backend?: Backend;
  /** Called as bytes arrive and when the model starts. */
  onProgress?: (progress: Progress) => void;
}

export interface EmbedOptions {
  /** Texts per model call (default 32). */
  batchSize?: number;
}

/** A sentence encoder running in a Web Worker. */
export class Encoder {
  private constructor();
  /** Downloads and loads the model in the folder at `modelUrl`. */
  static load(modelUrl: string | URL, options?: EncoderLoadOptions): Promise<Encoder>;
  /** The backend in use. */
  readonly backend: 'webgpu' | 'cpu';
  /** Width of the embeddings (384 for all-MiniLM-L6-v2). */
  readonly dims: number;
  /** `texts.length * dims` values, one unit-length row per text, in input order. */
  embed(texts: string[], options?: EmbedOptions): Promise<Float32Array>;
  /** Token ids of each text, as the model sees them. */
  tokenize(texts: string[]): Promise<number[][]>;
  /** Frees the model and stops the worker. */
  close(): Promise<void>;
}

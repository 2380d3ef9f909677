// The main thread's side of a worker: requests tagged `{type, id, ...}`, answers tagged
// `result`, `error` or `progress` with that id, and the worker's own notices (`status` of a
// loading catalog, `version` when it moved to a republished version, `lost` when its WebGPU device went away, `trap` when its wasm trapped).
//
// Supervision: a trapped wasm instance cannot be trusted again (wasm-bindgen's borrow
// flags stay set, memory may be half-written), so on `trap` every pending call rejects
// with `localrec/internal`, the worker is terminated and the owner (Encoder, Catalog) is
// told, so it can start a fresh worker from the verified cached files.
import { refusedByPolicy } from './csp.js';
import { LocalrecError, fromWire } from './errors.js';

/**
 * A module worker of `kind` ('encoder' or 'catalog'). The URLs are static literals inside
 * `new Worker(new URL(...))`, the one form bundlers rewrite into a bundled worker (webpack
 * only where `Worker` is the global); `workerUrl` (a page's own copy, or a test's
 * fault-injecting wrapper) replaces them. A worker on another origin (a CDN serving the
 * package, or a bundled app's assets) cannot be started directly: for the moment of the
 * call the global `Worker` is one that, refused, starts a same-origin blob loading the URL
 * the bundler wrote, so no second literal (which bundlers would emit unbundled) is needed.
 */
function startWorker(kind, workerUrl) {
  const Native = globalThis.Worker;
  if (workerUrl) return startAnyWorker(Native, new URL(workerUrl, globalThis.location?.href), { type: 'module' });
  globalThis.Worker = function CrossOriginWorker(url, options) {
    return startAnyWorker(Native, url, options);
  };
  try {
    if (kind === 'encoder') return new Worker(new URL('./encoder-worker.js', import.meta.url), { type: 'module' });
    return new Worker(new URL('./catalog-worker.js', import.meta.url), { type: 'module' });
  } finally {
    globalThis.Worker = Native;
  }
}

function startAnyWorker(Native, url, options) {
  try {
    return new Native(url, options);
  } catch (e) {
    if (e?.name !== 'SecurityError') throw e;
    const href = JSON.stringify(new URL(url, globalThis.location?.href).href);
    // A module worker imports the script; a classic one (webpack builds those) loads it.
    const source = options?.type === 'module' ? `import ${href};\n` : `importScripts(${href});\n`;
    return new Native(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })), options);
  }
}

export class WorkerClient {
  /**
   * `onStatus(status, progress)`: a catalog's loading notices; `onVersion({manifest,
   * modelUrl, scoring})`: the catalog was republished mid-load and loads that version now. `onLost(reason)`: the worker's WebGPU
   * device was lost (pending calls reject with `localrec/backend-lost`). `onTrap(message)`:
   * its wasm trapped (pending calls reject with `localrec/internal`; the worker is gone).
   */
  constructor(kind, { workerUrl, onStatus, onVersion, onLost, onTrap } = {}) {
    this.kind = kind;
    this.handlers = { onStatus, onVersion, onLost, onTrap };
    this.nextId = 1;
    this.pending = new Map();
    // Set once the worker is gone, so later calls reject at once instead of never settling.
    this.dead = null;
    try {
      this.worker = startWorker(kind, workerUrl);
    } catch (e) {
      throw new LocalrecError('localrec/worker', `cannot start the localrec ${kind} worker: ${e?.message ?? e}`);
    }
    this.worker.onmessage = (event) => this.receive(event.data);
    this.worker.onerror = (event) => {
      // The worker script itself failed (not found, as where a bundler did not emit it, a
      // syntax error, blocked by the page's Content-Security-Policy): nothing it was asked
      // will be answered.
      event.preventDefault?.();
      const failed = new LocalrecError('localrec/worker', `the localrec ${kind} worker failed: ${event.message || 'its script could not be loaded: it is not where the package looks for it (a bundler that does not emit the package\'s workers needs the setting in the package README, "Bundlers")'}`);
      const byPolicy = (v) => v.directive.startsWith('worker-src') || v.directive.startsWith('script-src');
      refusedByPolicy(`the localrec ${kind} worker`, byPolicy).then((refused) => this.fail(refused ?? failed));
    };
  }

  /** Sends `{type, ...params}`; resolves with the worker's result. */
  call(type, params = {}, { onProgress, signal, transfer = [] } = {}) {
    if (this.dead) return Promise.reject(this.dead);
    if (signal?.aborted) return Promise.reject(new LocalrecError('localrec/aborted', `${type} was aborted`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, onProgress, type };
      if (signal) {
        entry.onAbort = () => {
          if (!this.pending.delete(id)) return;
          this.post({ type: 'cancel', id });
          reject(new LocalrecError('localrec/aborted', `${type} was aborted`));
        };
        signal.addEventListener('abort', entry.onAbort, { once: true });
        entry.signal = signal;
      }
      this.pending.set(id, entry);
      try {
        this.worker.postMessage({ ...params, type, id }, transfer);
      } catch (e) {
        // Something in the message cannot be cloned; the worker never saw it.
        this.settle(id);
        reject(new LocalrecError('localrec/input', `cannot send ${type} to the worker: ${e.message}`));
      }
    });
  }

  /** @private */
  post(message) {
    try {
      this.worker.postMessage(message);
    } catch {
      // The worker is gone; nothing to tell it.
    }
  }

  /** @private Removes a pending call; returns its entry. */
  settle(id) {
    const entry = this.pending.get(id);
    if (!entry) return null;
    this.pending.delete(id);
    entry.signal?.removeEventListener('abort', entry.onAbort);
    return entry;
  }

  /** @private Rejects every pending call and every later one with `err`. */
  fail(err) {
    this.dead ??= err;
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(err);
  }

  /** @private */
  receive(data) {
    switch (data?.type) {
      case 'progress':
        this.pending.get(data.id)?.onProgress?.(data.progress);
        return;
      case 'result':
        this.settle(data.id)?.resolve(data.value);
        return;
      case 'error':
        this.settle(data.id)?.reject(fromWire(data.error));
        return;
      case 'status':
        this.handlers.onStatus?.(data.status, data.progress);
        return;
      case 'version':
        this.handlers.onVersion?.(data);
        return;
      case 'lost':
        this.fail(new LocalrecError('localrec/backend-lost', data.reason));
        this.handlers.onLost?.(data.reason);
        return;
      case 'trap': {
        const err = new LocalrecError('localrec/internal', `the localrec ${this.kind} worker hit an internal error and was replaced: ${data.message}`);
        this.worker.terminate();
        this.fail(err);
        this.handlers.onTrap?.(data.message);
        return;
      }
      default:
    }
  }

  /** Stops the worker; pending and later calls reject with `localrec/closed`. */
  terminate(message = `the ${this.kind} was closed`) {
    this.worker.terminate();
    this.fail(new LocalrecError('localrec/closed', message));
  }
}

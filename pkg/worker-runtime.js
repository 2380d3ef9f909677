// The worker's side of client.js: `serve(handlers)` answers `{type, id, ...}` requests from
// a handler table, reports progress, and turns a wasm trap into a `trap` notice.
//
// A trap (a Rust panic, running out of memory) is a `WebAssembly.RuntimeError`, thrown
// from the call that trapped or, inside an async wasm call, from a microtask (then it
// reaches the worker's `error` event and the call's promise never settles). Either way
// the instance is done for: the worker says `trap` once and answers nothing more, and the
// page replaces it.
import { LocalrecError, toWire } from './errors.js';

let trapped = null;

/** Whether `e` is a wasm trap. */
export const isTrap = (e) => e instanceof WebAssembly.RuntimeError;

/** Reports a trap (once) and marks this worker as done for. */
export function reportTrap(e, id) {
  if (trapped) return;
  trapped = String(e?.message ?? e);
  self.postMessage({ type: 'trap', id, message: trapped });
}

/** Tells the page something not tied to a request (`status`, `lost`). */
export function notify(type, fields) {
  if (!trapped) self.postMessage({ ...fields, type });
}

self.addEventListener('error', (event) => {
  if (isTrap(event.error)) {
    event.preventDefault();
    reportTrap(event.error);
  }
});
self.addEventListener('unhandledrejection', (event) => {
  if (isTrap(event.reason)) {
    event.preventDefault();
    reportTrap(event.reason);
  }
});

/**
 * Answers requests with `handlers[type](message, context)`; `context.progress(p)` streams
 * progress for that request and `context.signal` aborts when the page cancels it. A
 * result's `transfer` list (from `context.transfer`) is moved, not copied.
 */
export function serve(handlers) {
  const cancels = new Map();
  self.onmessage = async (event) => {
    const message = event.data ?? {};
    const { type, id } = message;
    if (type === 'cancel') {
      cancels.get(id)?.abort();
      return;
    }
    if (trapped) {
      self.postMessage({ type: 'trap', id, message: trapped });
      return;
    }
    const handler = Object.hasOwn(handlers, type) ? handlers[type] : null;
    const abort = new AbortController();
    cancels.set(id, abort);
    const transfer = [];
    const context = {
      progress: (progress) => self.postMessage({ type: 'progress', id, progress }),
      signal: abort.signal,
      transfer,
    };
    try {
      if (!handler) throw new LocalrecError('localrec/input', `unknown request ${JSON.stringify(type)}`);
      const value = await handler(message, context);
      if (!trapped) self.postMessage({ type: 'result', id, value }, transfer);
    } catch (e) {
      if (isTrap(e)) reportTrap(e, id);
      else if (!trapped) self.postMessage({ type: 'error', id, error: toWire(e) });
    } finally {
      cancels.delete(id);
    }
  };
}

/** Network requests this worker made (resource timing; Cache Storage hits are not requests). */
export function requestCount() {
  return globalThis.performance?.getEntriesByType?.('resource')?.length ?? null;
}

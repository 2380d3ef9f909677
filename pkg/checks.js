// Argument checks of the main-thread API (Encoder, Catalog, Recommender): each throws
// `localrec/input` naming the method and what was wrong. The limits and vocabularies come
// from limits.js, generated from the Rust side's src/limits.rs.
import { LocalrecError, describe, inputError } from './errors.js';
import { DIVERSITY_RANGE, MAX_K, MAX_TEXT_CHARS } from './limits.js';

/** `value` is one of `allowed`. */
export function checkOneOf(value, allowed, name, method) {
  if (!allowed.includes(value)) {
    throw inputError(`${method}(): ${name} is ${allowed.map((a) => `'${a}'`).join(', ')}, not ${JSON.stringify(value) ?? describe(value)}`);
  }
}

/** `value` is a whole number from `min` to `max`. */
export function checkWhole(value, name, method, min = 0, max = Number.MAX_SAFE_INTEGER) {
  if (!(Number.isSafeInteger(value) && value >= min && value <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw inputError(`${method}(): ${name} must be a whole number ${range}, not ${String(value)}`);
  }
}

/** `retries` is a whole number from 0 to 100 and `backoffMs` a number >= 0. */
export function checkRetry(retries, backoffMs, method) {
  checkWhole(retries, 'retries', method, 0, 100);
  if (!(Number.isFinite(backoffMs) && backoffMs >= 0)) throw inputError(`${method}(): backoffMs must be a number >= 0, not ${String(backoffMs)}`);
}

/** `k` is a whole number from 1 to MAX_K. */
export function checkK(k, method) {
  checkWhole(k, 'k', method, 1, MAX_K);
}

/** `value` is a finite number from `lo` to `hi`. */
export function checkRange(value, [lo, hi], name, method) {
  if (typeof value !== 'number' || !(value >= lo && value <= hi)) {
    throw inputError(`${method}(): ${name} must be a number from ${lo} to ${hi}, not ${describe(value)} ${String(value)}`);
  }
}

/** `diversity` is within DIVERSITY_RANGE. */
export function checkDiversity(diversity, method) {
  checkRange(diversity, DIVERSITY_RANGE, 'diversity', method);
}

/** `text` is a non-empty string of at most MAX_TEXT_CHARS characters. */
export function checkText(text, method) {
  if (typeof text !== 'string' || text.trim() === '' || text.length > MAX_TEXT_CHARS) {
    throw inputError(`${method}() takes a non-empty string of at most ${MAX_TEXT_CHARS} characters`);
  }
}

/** `texts` is an array of strings: checked here, since a value that cannot be cloned would fail in postMessage with no code. */
export function checkTexts(texts, method) {
  if (!Array.isArray(texts)) throw inputError(`${method}() takes an array of strings, not ${describe(texts)}`);
  for (let i = 0; i < texts.length; i++) {
    if (typeof texts[i] !== 'string') throw inputError(`${method}(): text ${i} is ${describe(texts[i])}, not a string`);
  }
}

/** `signal` is absent or an AbortSignal; one already aborted rejects the call at once. */
export function checkSignal(signal, method) {
  if (signal === undefined) return;
  if (typeof signal?.aborted !== 'boolean' || typeof signal.addEventListener !== 'function') {
    throw inputError(`${method}(): signal must be an AbortSignal`);
  }
  if (signal.aborted) throw new LocalrecError('localrec/aborted', `${method}() was aborted`);
}

/** `options` is an object (or undefined); returns it or {}. */
export function optionsOf(options, method) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) throw inputError(`${method}(): options must be an object, not ${describe(options)}`);
  return options;
}

/** A progress callback that cannot break loading by throwing. */
export function safeCallback(fn) {
  return (value) => {
    try {
      fn?.(value);
    } catch {
      // A throwing progress callback must not break the download.
    }
  };
}

// LocalrecError, the one error type the package rejects with, and how errors cross the
// worker boundary (structured clone keeps no class: `{code, message}` travels).

/** An error from localrec, with a stable `code` such as `localrec/network` (see ERROR_CODES). */
export class LocalrecError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'LocalrecError';
    this.code = code;
  }
}

/** What a worker posts for an error: its code, or `localrec/internal` for anything unexpected. */
export function toWire(e) {
  return { code: typeof e?.code === 'string' && e.code.startsWith('localrec/') ? e.code : 'localrec/internal', message: String(e?.message ?? e) };
}

/** The LocalrecError a worker's `{code, message}` stands for. */
export function fromWire(error) {
  return new LocalrecError(error?.code ?? 'localrec/internal', error?.message ?? 'unknown error');
}

/** `localrec/input`, for a caller's bad argument. */
export function inputError(message) {
  return new LocalrecError('localrec/input', message);
}

/** A value's kind for messages: 'null', 'an array', 'a string', ... */
export function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'undefined' ? 'undefined' : `a${/^[aeiou]/.test(type) ? 'n' : ''} ${type}`;
}

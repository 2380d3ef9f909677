// Progress events, one tagged union for every loader (see `Progress` in index.d.ts):
//
//   {status: 'initiate', source, file, loaded: 0, total, fraction}   a file is asked for
//   {status: 'progress', source, file, loaded, total, fraction}      its bytes arrive
//   {status: 'verified', source, file, loaded, total, cached, fraction}  it passed its check
//   {status: 'failed', source, file, error: {code, message}, fraction}   given up on (a shard)
//   {status: 'ready', source, fraction: 1}                           the source is usable
//
// `source` is 'model' or 'catalog'; `fraction` is the source's overall progress in bytes
// (settled files count whole), from 0 to 1.

export class ProgressTracker {
  /** `totals[i]`: the expected bytes of file i (0 when unknown). */
  constructor(source, onProgress, totals) {
    this.source = source;
    this.emit = onProgress ?? (() => {});
    this.totals = totals;
    this.loaded = totals.map(() => 0);
    this.cached = totals.map(() => false);
    this.sum = totals.reduce((a, b) => a + b, 0);
  }

  fraction() {
    if (this.sum === 0) return 0;
    return Math.min(1, this.loaded.reduce((a, b) => a + b, 0) / this.sum);
  }

  initiate(i, file) {
    this.emit({ status: 'initiate', source: this.source, file, loaded: 0, total: this.totals[i], fraction: this.fraction() });
  }

  progress(i, file, { loaded, total, cached }) {
    this.loaded[i] = this.totals[i] ? Math.min(loaded, this.totals[i]) : 0;
    this.cached[i] = cached;
    if (!cached) this.emit({ status: 'progress', source: this.source, file, loaded, total, fraction: this.fraction() });
  }

  verified(i, file, bytes, cached) {
    this.loaded[i] = this.totals[i];
    this.emit({ status: 'verified', source: this.source, file, loaded: bytes, total: bytes, cached: Boolean(cached), fraction: this.fraction() });
  }

  failed(i, file, error) {
    this.loaded[i] = this.totals[i];
    this.emit({ status: 'failed', source: this.source, file, error, fraction: this.fraction() });
  }

  ready() {
    this.emit({ status: 'ready', source: this.source, fraction: 1 });
  }
}

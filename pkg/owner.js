// What `Encoder` and `Catalog` share: one supervised worker each. The owner starts the
// worker and loads it (`loadWorker`, per subclass), runs calls on the live worker, and replaces
// a worker that failed: after a WebGPU loss it moves to the CPU and replays the pending
// call there; after a trap (the call that hit it rejected with `localrec/internal`) it
// starts a fresh worker, whose files come back verified from Cache Storage, so the next
// call works.
import { WorkerClient } from './client.js';
import { LocalrecError } from './errors.js';

export class WorkerOwner {
  /** `kind`: 'encoder' or 'catalog'; `request`: what `load` sends; `workerUrl`: a page's own worker script. */
  constructor(kind, request, workerUrl) {
    this.kind = kind;
    this.request = request;
    this.workerUrl = workerUrl;
    this.client = null;
    this.switching = null;
    this.closed = false;
    /** Set when WebGPU was lost after loading and the work moved to the CPU: why. */
    this.fallbackReason = null;
  }

  /** @private Starts a worker on `backend`, loads it and makes it this owner's. */
  async spawn(backend, { onProgress, signal } = {}) {
    const client = new WorkerClient(this.kind, {
      workerUrl: this.workerUrl,
      onStatus: (status, progress) => this.onStatus(client, status, progress),
      onVersion: (version) => this.onVersion(client, version),
      onLost: (reason) => this.fallBackToCpu(client, reason),
      onTrap: () => this.replaceWorker(client),
    });
    let answer;
    try {
      answer = await this.loadWorker(client, backend, { onProgress, signal });
    } catch (e) {
      client.terminate(`the ${this.kind} was closed`);
      throw e;
    }
    if (this.closed) {
      client.terminate(`the ${this.kind} was closed`);
      return;
    }
    this.client = client;
    this.workerLoaded(answer);
  }

  /** @private Subclasses: sends the load (or open) request to `client` for `backend`; resolves with its answer. */
  loadWorker() {
    throw new LocalrecError('localrec/internal', `${this.kind} has no load`);
  }

  /** @private Subclasses: takes in a load's answer. */
  workerLoaded() {}

  /** @private Subclasses: a worker's `status` notice (only catalogs send them). */
  onStatus() {}

  /** @private Subclasses: a worker's `version` notice (a catalog republished mid-load). */
  onVersion() {}

  /** @private Subclasses: whether the work runs on WebGPU now. */
  onWebGpu() {
    return false;
  }

  /**
   * Runs a call on the live worker. A WebGPU loss under it moves the work to the CPU and
   * runs the call again there; any other failure (a trap among them) is the caller's.
   * @private
   */
  async onLiveWorker(type, params, options = {}) {
    for (;;) {
      await this.switching;
      this.checkOpen();
      const client = this.client;
      try {
        return await client.call(type, params, options);
      } catch (e) {
        if (e?.code !== 'localrec/backend-lost' || this.closed) throw e;
        await this.fallBackToCpu(client, e.message);
      }
    }
  }

  /** @private After `lostClient`'s WebGPU device was lost. */
  fallBackToCpu(lostClient, reason) {
    if (this.client !== lostClient || this.closed) return this.switching;
    this.switching = this.restart(lostClient, 'cpu').then(() => this.movedToCpu(reason));
    return this.switching;
  }

  /** @private Once the work runs on the CPU after a WebGPU loss. */
  movedToCpu(reason) {
    this.fallbackReason = reason;
  }

  /** @private After `trappedClient`'s wasm trapped: a fresh worker (on the CPU if it was on WebGPU). */
  replaceWorker(trappedClient) {
    if (this.client !== trappedClient || this.closed) return this.switching;
    this.switching = this.restart(trappedClient, this.onWebGpu() ? 'cpu' : this.request.backend).catch(() => {
      // The next call reports the failure: the old client is dead.
    });
    return this.switching;
  }

  /** @private */
  async restart(oldClient, backend) {
    oldClient.worker.terminate();
    await this.spawn(backend);
  }

  /** How many network requests the worker has made (resource timing), for diagnostics. */
  async requestCount() {
    return this.onLiveWorker('requests');
  }

  /** Bytes of the worker's wasm memories (`{wasm: {cpu, webgpu}, jsHeapUsed}`), for diagnostics. */
  async memory() {
    return this.onLiveWorker('memory');
  }

  /** Frees what the worker holds and stops it. */
  async close() {
    if (this.closed) return;
    this.closed = true;
    const client = this.client;
    try {
      await client?.call('close');
    } catch {
      // A dead worker has nothing left to free.
    } finally {
      client?.terminate(`the ${this.kind} was closed`);
    }
  }

  /** @private */
  checkOpen() {
    if (this.closed) throw new LocalrecError('localrec/closed', `the ${this.kind} was closed`);
  }
}

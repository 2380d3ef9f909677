// The localrec side of the browser benchmark (driven by bench/browser/run.mjs): the same
// workloads and timing rules as the transformers.js peer page
// (../shared/bench/peers/pages/embed.js), through the public `Encoder` API.
// Query string: backend=cpu|webgpu|auto, model=<url of the model folder>.
//
// On load it measures the cold start (navigation start -> first embedding of one item
// string; performance.now() counts from navigation start) and exposes window.bench for
// the driver.
import { Encoder } from '/pkg/index.js';

const q = new URLSearchParams(location.search);
const backend = q.get('backend') || 'cpu';
const modelUrl = q.get('model') || '/model/';
// The peer page's first text, so both first embeddings do the same work.
const FIRST_TEXT = "Toy Story (1995). Genres: Animation, Children's, Comedy";

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

async function coldStart() {
  const t = { module_start_ms: performance.now() };
  const enc = await Encoder.load(modelUrl, { backend });
  t.load_done_ms = performance.now();
  await enc.embed([FIRST_TEXT]);
  t.first_embedding_ms = performance.now();
  return {
    timings: t,
    enc,
    info: {
      backend: enc.backend,
      dims: enc.dims,
      // 'auto': each backend's speed on the calibration batch and the choice; else null
      calibration: enc.calibration ?? null,
      // on WebGPU: the adapter wgpu opened its device on; else null
      adapter: enc.adapter ?? null,
      cross_origin_isolated: self.crossOriginIsolated,
      hardware_concurrency: navigator.hardwareConcurrency,
    },
  };
}

const ready = coldStart().then(
  (r) => {
    window.__enc = r.enc;
    document.getElementById('status').textContent = 'ready';
    return { timings: r.timings, info: r.info };
  },
  // The code travels separately so the driver can tell "backend not available" (skipped)
  // from a failure.
  (e) => ({ error: { code: e?.code ?? null, message: String(e?.message ?? e), stack: String(e?.stack ?? '') } }),
);

window.bench = {
  ready,
  // Runs one workload: `warm` untimed calls, then timed calls until both `minReps` and
  // `minMs` are reached (capped at maxReps, or earlier when the budget would be exceeded).
  // Batches cycle through `texts`, as on the peer page. Returns per-call milliseconds.
  async workload(texts, batch, { warm = 2, minReps = 5, maxReps = 30, minMs = 1500, budgetMs = 60000 } = {}) {
    const enc = window.__enc;
    const pick = (r) => Array.from({ length: batch }, (_, i) => texts[(r * batch + i) % texts.length]);
    const t0 = performance.now();
    for (let i = 0; i < warm; i++) await enc.embed(pick(i));
    const warmMs = performance.now() - t0;
    const times = [];
    const start = performance.now();
    for (let r = 0; r < maxReps; r++) {
      const s = performance.now();
      await enc.embed(pick(r + warm));
      times.push(performance.now() - s);
      const el = performance.now() - start;
      if (times.length >= minReps && (el >= minMs || el + warmMs >= budgetMs)) break;
    }
    return { times, warm_ms: warmMs, median_ms: median(times) };
  },
  // One text per call, as the peer page's reference check does; plain arrays for the driver.
  async embedEach(texts) {
    const out = [];
    for (const t of texts) out.push(Array.from(await window.__enc.embed([t])));
    return out;
  },
};

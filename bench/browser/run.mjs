#!/usr/bin/env node
// Browser benchmark of the localrec encoder, with transformers.js measured in the same
// run and the same headless Chromium (Debian's /usr/bin/chromium, never a downloaded one).
// A command, not a test: it prints a table, the goal ratios with pass/fail, and writes
// everything to bench-results/encoder-browser.json.
//
//   node bench/browser/run.mjs [--quick] [--no-peers] [--backends cpu,webgpu,auto]
//                              [--peer-configs default|all] [--no-f32] [--rounds N] [--out FILE]
//
//   --quick          fewer repetitions per workload: a smoke run, not for figures
//   --no-peers       localrec only (transformers.js is not run; goals that need it say n/a)
//   --backends LIST  localrec backends to run (default cpu,webgpu,auto; auto only does the
//                    cold start and batch 32, to show what it picks and its calibration)
//   --peer-configs   default: transformers.js WASM fp32 and q8, 1 thread (the goals'
//                    baselines); all: also 2 threads and WebGPU fp32
//   --no-f32         skip the extra run of localrec on the original f32 model
//   --rounds N       rounds of the head-to-head batch-32 phase (default 8; 0 skips it)
//
// transformers.js comes from the peers benchmark folder (PEERS_DIR, default
// ../shared/bench/peers beside the repository): it is copied to .cache/peers (its npm
// packages are installed there by its own setup.sh) and its page, server and data are
// used unchanged, so its figures are the ones its own harness would measure. Without that
// folder only --no-peers works; the texts are then built from data/ml-latest-small.
//
// Every configuration gets a fresh browser process and profile. Per configuration:
// cold start (navigation -> first embedding), bytes fetched, steady-state sentences/s
// for batches of 1/8/32/128 short item strings and 1/8 texts of 256 tokens, memory
// (renderer RSS and its peak, wasm linear memory of each module), cosine vs
// sentence-transformers, and a warm start (a second page in the same profile, as a
// returning visitor: its time, and how much of it was wasm, model and JS fetched). For
// localrec also what Encoder.load chose: enc.backend, enc.calibration ('auto'),
// enc.adapter, and whether the worker loaded the relaxed-SIMD CPU build. The package is
// sized per path (what a page on backend cpu, webgpu or auto downloads) and in total; the
// 4 MB goal is judged on the cpu path.
//
// The speed goals are judged head to head: after the configurations above, localrec cpu
// and transformers.js fp32 and q8 are opened again side by side (a browser each) and take
// turns, 2 warm-up and 8 timed batch-32 calls each per round (a few seconds of steady
// state, as in a configuration's own workload), so that all three are measured in the
// same minutes. The configurations run one after another, minutes apart, and on this
// shared machine the speed of everything drifts by up to 10% over that time: the same
// build measured 1.84x and 2.02x of transformers.js fp32 that way in one afternoon. The
// ratio of each round's figures is taken, and the goal is judged on their median; the
// ratio of the separate configurations' figures is printed beside it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from '../../www/serve.mjs';
import { CHROMIUM_ARGS, cosine } from '../../tests/browser/helpers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const PKG_SRC = path.join(ROOT, 'pkg');
// What is served and sized: a copy of pkg/ taken once it is stable, so that a rebuild
// during the run (`make pkg` writes pkg/wasm in place, twice: wasm-bindgen, then wasm-opt)
// cannot mix two builds in one set of figures.
const PKG = path.join(ROOT, '.cache/bench-pkg');
const WEB_MODEL = path.join(ROOT, '.cache/web-model/all-MiniLM-L6-v2');
const F32_MODEL = path.join(ROOT, '.cache/models/all-MiniLM-L6-v2');
const PEERS_SRC = path.resolve(process.env.PEERS_DIR || path.join(ROOT, '../shared/bench/peers'));
const PEERS_COPY = path.join(ROOT, '.cache/peers');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const QUICK = flag('--quick');
const NO_PEERS = flag('--no-peers');
const NO_F32 = flag('--no-f32');
const BACKENDS = opt('--backends', 'cpu,webgpu,auto').split(',').filter(Boolean);
const PEER_CONFIGS = opt('--peer-configs', 'default');
const OUT = path.resolve(ROOT, opt('--out', 'bench-results/encoder-browser.json'));
const ROUNDS = Number(opt('--rounds', QUICK ? '2' : '8'));
if (!Number.isInteger(ROUNDS) || ROUNDS < 0) usage('--rounds is a whole number');
for (const b of BACKENDS) if (!['cpu', 'webgpu', 'auto'].includes(b)) usage(`unknown backend ${b}`);
if (!['default', 'all'].includes(PEER_CONFIGS)) usage(`--peer-configs is default or all, not ${PEER_CONFIGS}`);

// The goals of issue 5. 4 MB is read as 4,000,000 bytes (the stricter reading).
const GOALS = { vsFp32: 2, vsQ8: 1, warmFirstMs: 1000, gzBytes: 4_000_000, minCosine: 0.9999 };

// The peers' workload plan: 128 short items, 16 texts of exactly 256 tokens.
const WORKLOADS = [['items', 1], ['items', 8], ['items', 32], ['items', 128], ['longs', 1], ['longs', 8]];
const WORKLOAD_BUDGET_MS = 100_000; // predicted time cap per workload (the peers' default)
// --quick only proves it works.
// At least 10 timed calls and 4 s per workload, for every library alike: with the peers' default
// (5 calls, 1.5 s) one slow moment on this shared machine moved a median by 10%.
const REPS = QUICK ? { minReps: 2, maxReps: 3, minMs: 0 } : { minReps: 10, maxReps: 40, minMs: 4000 };
const MIN_REPS = REPS.minReps;

function usage(why) {
  console.error(`bench/browser/run.mjs: ${why}\nusage: node bench/browser/run.mjs [--quick] [--no-peers] [--backends cpu,webgpu,auto] [--peer-configs default|all] [--no-f32] [--rounds N] [--out FILE]`);
  process.exit(2);
}

const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : null;
};
const r1 = (x) => (x == null ? null : Math.round(x * 10) / 10);
const r2 = (x) => (x == null ? null : Math.round(x * 100) / 100);
const r3 = (x) => (x == null ? null : Math.round(x * 1000) / 1000);
const r6 = (x) => (x == null ? null : Math.round(x * 1e6) / 1e6);
const loadavg = () => os.loadavg().map(r2);
const withTimeout = (p, ms, what) => {
  let timer;
  const t = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
};
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
// pkg/worker.js' relaxed-SIMD probe (set once pkg/ is snapshot)
let RELAXED_PROBE = null;

// ---------------------------------------------------------------------------------------
// Inputs: the package, the models, the peers folder, the texts.

/** The CPU module's wasm-bindgen glue, shared by both CPU builds. */
const CPU_GLUE = 'wasm/localrec_wasm.js';
const CPU_WASM = { simd128: 'wasm/localrec_wasm_bg.wasm', relaxed: 'wasm/localrec_wasm_relaxed_bg.wasm' };
const WEBGPU_GLUE = 'wasm/localrec_webgpu.js';
const WEBGPU_WASM = 'wasm/localrec_webgpu_bg.wasm';
const WASM_FILES = [CPU_GLUE, CPU_WASM.simd128, CPU_WASM.relaxed, WEBGPU_GLUE, WEBGPU_WASM];

/**
 * The relaxed-SIMD probe pkg/worker.js validates to pick the CPU build, read from the
 * worker itself so that the bench asks the browser exactly what the worker asks.
 */
function relaxedSimdProbe() {
  const src = fs.readFileSync(path.join(PKG, 'worker.js'), 'utf8');
  const m = src.match(/RELAXED_SIMD_PROBE\s*=\s*new Uint8Array\(\[([\d,\s]+)\]\)/);
  if (!m) throw new Error('pkg/worker.js has no RELAXED_SIMD_PROBE = new Uint8Array([...]) to read');
  return m[1].split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
}

/**
 * The browser-loaded files of pkg/ (package.json "files": JS and wasm), raw and gzip -9,
 * and what a page downloads on each path. `relaxed`: whether this Chromium validates the
 * worker's relaxed-SIMD probe (then the worker loads the relaxed CPU build).
 *   cpu:    the page/worker JS (index.js, worker.js, fetch.js, the CPU glue, which the
 *           worker imports statically whatever the backend) + the CPU wasm it picks;
 *   webgpu: the same JS + the WebGPU glue and wasm (no CPU wasm: backend 'webgpu' never
 *           initialises the CPU module);
 *   auto:   the webgpu path + the CPU wasm ('auto' loads and times both; without a WebGPU
 *           adapter it stops before importing the WebGPU module, i.e. the cpu path).
 */
function packageSize(relaxed) {
  const manifest = readJson(path.join(PKG, 'package.json'));
  const files = manifest.files.filter((f) => /\.(m?js|wasm)$/.test(f));
  const rows = files.map((f) => {
    const bytes = fs.readFileSync(path.join(PKG, f));
    return { file: f, raw_bytes: bytes.length, gzip_bytes: zlib.gzipSync(bytes, { level: 9 }).length };
  });
  const row = (f) => {
    const r = rows.find((x) => x.file === f);
    if (!r) throw new Error(`pkg/package.json "files" does not list ${f}`);
    return r;
  };
  const total = (list) => ({
    files: list,
    raw_bytes: list.reduce((a, f) => a + row(f).raw_bytes, 0),
    gzip_bytes: list.reduce((a, f) => a + row(f).gzip_bytes, 0),
  });
  const baseJs = files.filter((f) => /\.m?js$/.test(f) && f !== WEBGPU_GLUE);
  const cpuWasm = relaxed ? CPU_WASM.relaxed : CPU_WASM.simd128;
  const wasm = (r) => r.file.endsWith('.wasm');
  return {
    version: manifest.version,
    files: rows,
    relaxed_simd_in_this_browser: relaxed,
    cpu_wasm_loaded: cpuWasm,
    paths: {
      cpu: total([...baseJs, cpuWasm]),
      webgpu: total([...baseJs, WEBGPU_GLUE, WEBGPU_WASM]),
      auto: total([...baseJs, cpuWasm, WEBGPU_GLUE, WEBGPU_WASM]),
      webgpu_module_only: total([WEBGPU_GLUE, WEBGPU_WASM]),
      all_js_and_wasm: total(files),
    },
    paths_note: 'cpu/webgpu/auto: what a page downloads on that backend in this browser (JS + wasm, pkg/ only); all_js_and_wasm: every JS and wasm file of the npm package (index.d.ts and README.md are not counted)',
    wasm_raw_bytes: rows.filter(wasm).reduce((a, r) => a + r.raw_bytes, 0),
    wasm_gzip_bytes: rows.filter(wasm).reduce((a, r) => a + r.gzip_bytes, 0),
  };
}

const wasmDigests = () =>
  Object.fromEntries(WASM_FILES.filter((f) => f.endsWith('.wasm')).map((f) => [f, crypto.createHash('sha256').update(fs.readFileSync(path.join(PKG, f))).digest('hex')]));
const wasmMtime = () => new Date(Math.max(...WASM_FILES.map((f) => fs.statSync(path.join(PKG, f)).mtimeMs))).toISOString();

/** Newest modification time under a folder (0 when it is empty or absent). */
function newestMtime(dir) {
  let newest = 0;
  for (const e of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Checks the inputs and snapshots pkg/ into .cache/bench-pkg once nothing in it has
 * changed for 10 s (a build in progress is waited for, up to 3 minutes).
 */
async function requireInputs() {
  const wasmFiles = WASM_FILES.map((f) => path.join(PKG_SRC, f));
  const deadline = Date.now() + 180_000;
  let said = false;
  while (Date.now() < deadline && !(wasmFiles.every((f) => fs.existsSync(f)) && Date.now() - newestMtime(PKG_SRC) > 10_000)) {
    if (!said) log('waiting for pkg/ to be complete and unchanged for 10 s (a build may be in progress)');
    said = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
  const missing = [];
  const absent = wasmFiles.filter((f) => !fs.existsSync(f)).map((f) => path.relative(ROOT, f));
  if (absent.length) missing.push(`${absent.join(', ')} (run \`make pkg\`)`);
  if (!fs.existsSync(path.join(WEB_MODEL, 'manifest.json'))) missing.push(`${path.relative(ROOT, WEB_MODEL)} (run \`make web-model\`)`);
  if (missing.length) {
    console.error(`bench/browser/run.mjs: missing ${missing.join(' and ')}`);
    process.exit(1);
  }
  if (Date.now() - newestMtime(PKG_SRC) <= 10_000) log('pkg/ is still changing; measuring the current copy anyway');
  fs.rmSync(PKG, { recursive: true, force: true });
  fs.cpSync(PKG_SRC, PKG, { recursive: true, preserveTimestamps: true });
}

/**
 * Copies the peers folder to .cache/peers (the original is read-only) and runs its own
 * setup.sh there, which only installs its npm packages when the ONNX models are present.
 * Returns the copy's path.
 */
function preparePeers() {
  if (!fs.existsSync(path.join(PEERS_SRC, 'harness/server.mjs'))) throw new Error(`${PEERS_SRC} is not the peers benchmark folder (no harness/server.mjs)`);
  // What the peers' .gitignore keeps out of its tree: installs, the Python venv, results.
  const skip = new Set(['node_modules', 'results', 'models/venv', 'models/src', 'models/wheel']);
  const copy = (rel) => {
    const src = path.join(PEERS_SRC, rel);
    const dst = path.join(PEERS_COPY, rel);
    const st = fs.statSync(src);
    if (st.isDirectory()) {
      fs.mkdirSync(dst, { recursive: true });
      for (const name of fs.readdirSync(src)) {
        const child = rel ? `${rel}/${name}` : name;
        if (!skip.has(child)) copy(child);
      }
      return;
    }
    const old = fs.existsSync(dst) ? fs.statSync(dst) : null;
    if (old && old.size === st.size && old.mtimeMs === st.mtimeMs) return;
    fs.copyFileSync(src, dst);
    // The source is read-only; the copy must stay writable so the next sync can update it.
    fs.chmodSync(dst, st.mode | 0o200);
    fs.utimesSync(dst, st.atime, st.mtime);
  };
  copy('');
  const onnx = path.join(PEERS_COPY, 'models/web/sentence-transformers/all-MiniLM-L6-v2/onnx');
  for (const f of ['model.onnx', 'model_quantized.onnx']) {
    if (!fs.existsSync(path.join(onnx, f))) {
      // setup.sh would then build a ~6 GB Python venv to re-export the model: refuse.
      throw new Error(`${path.join(PEERS_SRC, 'models/web/...', f)} is missing; the peers' setup.sh would re-export it with a 6 GB Python venv, so this bench does not run it`);
    }
  }
  log(`peers: copied ${PEERS_SRC} to ${path.relative(ROOT, PEERS_COPY)}; running its setup.sh (npm ci on first use)`);
  const setup = spawnSync('bash', ['setup.sh'], { cwd: PEERS_COPY, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, CHROMIUM } });
  if (setup.status !== 0) throw new Error(`the peers' setup.sh failed (exit ${setup.status})`);
  return PEERS_COPY;
}

/** Minimal CSV line split (quoted fields may hold commas and doubled quotes). */
function csvFields(line) {
  const out = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') out.push(cur), (cur = '');
    else cur += c;
  }
  out.push(cur);
  return out;
}

/**
 * The benchmark texts: the peers' data/ (so both libraries embed the same strings), or,
 * without the peers folder, item strings of the same shape from MovieLens' movies.csv and
 * long texts made of many of them (the model truncates them at 256 tokens).
 */
function loadTexts(peersDir) {
  if (peersDir) {
    const data = path.join(peersDir, 'data');
    return {
      source: 'peers data/items.json and data/long_texts.json',
      meta: readJson(path.join(data, 'texts_meta.json')),
      items: readJson(path.join(data, 'items.json')),
      longs: readJson(path.join(data, 'long_texts.json')),
    };
  }
  const lines = fs.readFileSync(path.join(ROOT, 'data/ml-latest-small/movies.csv'), 'utf8').trim().split(/\r?\n/).slice(1);
  const strings = lines.map((l) => {
    const [, title, genres] = csvFields(l);
    return `${title}. Genres: ${genres.split('|').join(', ')}`;
  });
  const longs = Array.from({ length: 16 }, (_, i) => strings.slice(200 + i * 60, 200 + (i + 1) * 60).join(' '));
  return {
    source: 'data/ml-latest-small/movies.csv (peers folder absent); long texts are truncated to 256 tokens by the model',
    items: strings.slice(0, 128),
    longs,
  };
}

/** Reference embeddings by sentence-transformers: the peers' (both libraries) and ours. */
function loadReferences(peersDir) {
  const refs = [];
  if (peersDir) {
    const r = readJson(path.join(peersDir, 'models/web/reference.json'));
    refs.push({ name: 'peers_reference', texts: r.texts, embeddings: r.embeddings, forPeers: true });
  }
  const golden = fs.readFileSync(path.join(ROOT, 'tests/fixtures/minilm_golden.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  // transformers.js truncates at 512 tokens, sentence-transformers (and localrec) at 256:
  // the golden set has a text longer than 256 tokens, so it is localrec's check only.
  refs.push({ name: 'golden_fixture', texts: golden.map((g) => g.text), embeddings: golden.map((g) => g.embedding), forPeers: false });
  return refs;
}

// ---------------------------------------------------------------------------------------
// Servers. Both count the bytes they send, per path.

/**
 * localrec is served by the project's own www/serve.mjs. Its responses say
 * `Cache-Control: no-cache` with an ETag, so a second visit would revalidate and get 304s
 * from the browser's HTTP cache; the peers' server says `no-store`. To measure what the
 * library's own caching gives (as transformers.js' Cache Storage is measured), the
 * conditional headers are dropped before serve.mjs reads them (it reads them after its
 * first await; this listener runs synchronously right after its handler starts), so
 * every request is answered in full.
 */
async function serveLocalrec() {
  const server = await startServer({
    port: 0,
    host: '127.0.0.1',
    root: HERE,
    mounts: [
      { url: '/pkg', dir: PKG },
      { url: '/model', dir: WEB_MODEL },
      { url: '/model-f32', dir: F32_MODEL },
    ],
  });
  const sent = new Map();
  const statuses = {};
  server.on('request', (req, res) => {
    delete req.headers['if-none-match'];
    delete req.headers['if-modified-since'];
    const p = new URL(req.url, 'http://localhost').pathname;
    let bytes = 0;
    const count = (chunk) => {
      if (chunk && typeof chunk !== 'function') bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    };
    const write = res.write.bind(res);
    const end = res.end.bind(res);
    res.write = (chunk, ...rest) => (count(chunk), write(chunk, ...rest));
    res.end = (chunk, ...rest) => (count(chunk), end(chunk, ...rest));
    res.on('finish', () => {
      sent.set(p, (sent.get(p) || 0) + bytes);
      statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
    });
  });
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    takeStats() {
      const files = Object.fromEntries([...sent.entries()].sort((a, b) => b[1] - a[1]));
      const total = [...sent.values()].reduce((a, b) => a + b, 0);
      const out = { total, files, statuses: { ...statuses } };
      sent.clear();
      for (const k of Object.keys(statuses)) delete statuses[k];
      return out;
    },
    close: () => new Promise((r) => {
      server.closeAllConnections?.();
      server.close(() => r());
    }),
  };
}

/** Bytes fetched, by kind. `modelPrefixes`: the URL folders that hold model files. */
function byKind(stats, modelPrefixes) {
  const files = Object.entries(stats.files);
  const sum = (pred) => files.filter(([f]) => pred(f)).reduce((a, [, b]) => a + b, 0);
  const isModel = (f) => modelPrefixes.some((p) => f.startsWith(p));
  const isWasm = (f) => f.endsWith('.wasm');
  const isJs = (f) => /\.m?js$/.test(f);
  return {
    total_bytes: stats.total,
    model_bytes: sum(isModel),
    wasm_bytes: sum((f) => isWasm(f) && !isModel(f)),
    js_bytes: sum((f) => isJs(f) && !isModel(f)),
    other_bytes: sum((f) => !isModel(f) && !isWasm(f) && !isJs(f)),
    files: stats.files,
    ...(stats.statuses ? { http_statuses: stats.statuses } : {}),
  };
}

// ---------------------------------------------------------------------------------------
// Measurement, shared by both libraries so their figures mean the same thing.

function cpuSample() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { idle: f[3] + f[4], total: f.reduce((a, b) => a + b, 0) };
}
const HZ = 100; // USER_HZ of /proc/stat

// Waits (at most 30 s) until the whole machine has used under a quarter of a core for a
// second: the previous configuration's browser takes a while to exit, and a configuration
// that starts while it does measured up to 9% slower here, whichever library it runs.
async function quiet() {
  const t0 = Date.now();
  let prev = cpuSample();
  while (Date.now() - t0 < 30_000) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = cpuSample();
    const busy = (now.total - prev.total - (now.idle - prev.idle)) / HZ;
    prev = now;
    if (busy < 0.25) return { quiet: true, seconds: r1((Date.now() - t0) / 1000) };
  }
  return { quiet: false, seconds: r1((Date.now() - t0) / 1000) };
}
// Average cores busy with anything but this browser during a configuration: the machine
// is shared, and this says how much another job may have skewed the figures.
function otherCores(cpu0, cpu1, browserCpuS, wallS) {
  const busyS = (cpu1.total - cpu0.total - (cpu1.idle - cpu0.idle)) / HZ;
  return r1(Math.max(0, busyS - browserCpuS) / wallS);
}

function procMem(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1] || 0) * 1024;
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return { rss: kb('VmRSS'), hwm: kb('VmHWM'), webui: cmd.includes('--top-chrome-webui') };
  } catch {
    return null;
  }
}

/**
 * localrec's wasm lives in its Web Worker, which the page-level instrument cannot see.
 * Importing a wasm-bindgen glue module again from inside the worker yields the worker's
 * own module instance (one module map per realm), whose init returns the live exports
 * once it has been initialised. Two modules may live there: the CPU module
 * (wasm/localrec_wasm.js, which worker.js imports statically whatever the backend, and
 * initialises with the relaxed or the simd128 wasm for 'cpu' and 'auto') and the WebGPU
 * module (wasm/localrec_webgpu.js, imported for 'webgpu' and 'auto'; `withWebGpu` says
 * whether to look at it, so that a cpu worker is not made to import it). Init is handed
 * a source that rejects when awaited, so a module the worker never initialised (the CPU
 * module under backend 'webgpu') fails at once instead of fetching and instantiating a
 * wasm of its own. Also returns the wasm files the worker fetched from the network (its
 * resource timing; a copy from localrec's Cache Storage is not a fetch): which CPU build
 * it picked.
 */
async function workerWasm(page, withWebGpu) {
  const out = { bytes: 0, shared: false, modules: {}, fetched_wasm: [] };
  for (const w of page.workers()) {
    try {
      const m = await w.evaluate(async ([base, withWebGpu]) => {
        const wasmEntries = performance.getEntriesByType('resource').filter((e) => /\.wasm($|\?)/.test(e.name));
        const modules = {};
        const glues = [['cpu', 'wasm/localrec_wasm.js']];
        if (withWebGpu) glues.push(['webgpu', 'wasm/localrec_webgpu.js']);
        for (const [name, glue] of glues) {
          try {
            const mod = await import(new URL(glue, base).href);
            // a thenable, not a rejected promise: nothing rejects unless init awaits it
            const never = { then: (_, reject) => reject(new Error('not initialised by the worker')) };
            const exports = await mod.default({ module_or_path: never });
            const buf = exports.memory.buffer;
            modules[name] = { bytes: buf.byteLength, shared: typeof SharedArrayBuffer !== 'undefined' && buf instanceof SharedArrayBuffer };
          } catch (e) {
            modules[name] = { bytes: 0, not_initialised: String(e?.message ?? e) };
          }
        }
        // duration: request start -> last byte (instantiateStreaming compiles meanwhile)
        const timing = wasmEntries.map((e) => ({ path: new URL(e.name).pathname, fetch_ms: Math.round(e.responseEnd - e.startTime), transfer_bytes: e.transferSize }));
        return { modules, fetched: timing };
      }, [w.url(), withWebGpu]);
      if (!m.fetched.length && !Object.values(m.modules).some((x) => x.bytes)) continue; // not a localrec worker
      for (const [name, x] of Object.entries(m.modules)) {
        out.modules[name] = x.bytes ? (out.modules[name] ?? 0) + x.bytes : (out.modules[name] ?? 0);
        out.bytes += x.bytes;
        out.shared ||= !!x.shared;
      }
      out.fetched_wasm.push(...m.fetched);
    } catch {
      // not a localrec worker (or it is gone)
    }
  }
  return out;
}

/** A fresh browser process and profile for one configuration. */
async function withBrowser(extraArgs, initScript, withWebGpu, fn) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs], timeout: 60_000 });
  try {
    const context = await browser.newContext();
    if (initScript) await context.addInitScript({ path: initScript });
    const page = await context.newPage();
    const errors = [];
    const watch = (p) => {
      p.on('pageerror', (e) => errors.push(String(e).slice(0, 500)));
      p.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text().slice(0, 500));
      });
    };
    watch(page);
    const cdp = await context.newCDPSession(page);
    const bcdp = await browser.newBrowserCDPSession();
    const processes = async () => (await bcdp.send('SystemInfo.getProcessInfo')).processInfo;
    const memory = async (p = page, session = cdp) => {
      await session.send('HeapProfiler.collectGarbage');
      const heap = await session.send('Runtime.getHeapUsage');
      const pageWasm = await p.evaluate(() => self.__wasmMemory?.() ?? { bytes: 0 });
      const worker = await workerWasm(p, withWebGpu);
      const procs = await processes();
      const renderers = procs.filter((x) => x.type === 'renderer').map((x) => procMem(x.id)).filter((m) => m && !m.webui);
      const gpu = procs.filter((x) => x.type === 'GPU').map((x) => procMem(x.id)).filter(Boolean);
      const top = renderers.sort((a, b) => b.rss - a.rss)[0] || {};
      return {
        js_heap_used_bytes: heap.usedSize,
        wasm_memory_bytes: pageWasm.bytes + worker.bytes,
        wasm_shared_memory: worker.shared || undefined,
        // linear memory of each wasm module in the worker (cpu, webgpu), and the wasm
        // files the worker fetched (which CPU build it picked)
        worker_wasm_modules: worker.modules,
        worker_fetched_wasm: worker.fetched_wasm,
        renderer_rss_bytes: top.rss ?? null,
        renderer_peak_rss_bytes: Math.max(0, ...renderers.map((m) => m.hwm)) || null,
        gpu_process_rss_bytes: gpu[0]?.rss ?? null,
        gpu_process_peak_rss_bytes: gpu[0]?.hwm ?? null,
      };
    };
    const cpuSeconds = async () => (await processes()).reduce((a, x) => a + x.cpuTime, 0);
    // CPU seconds per process type (renderer, GPU, ...): where the time of a phase went
    const cpuByType = async () => {
      const out = {};
      for (const x of await processes()) out[x.type] = (out[x.type] ?? 0) + x.cpuTime;
      return out;
    };
    return await fn({ browser, context, page, memory, errors, watch, cpuSeconds, cpuByType });
  } finally {
    await browser.close().catch(() => {});
  }
}

function summarizeTimes(times, batch) {
  const med = median(times);
  return {
    reps: times.length,
    median_ms: r1(med),
    min_ms: r1(Math.min(...times)),
    max_ms: r1(Math.max(...times)),
    sentences_per_s: r1((batch * 1000) / med),
  };
}

/**
 * Runs one configuration: cold start, workloads, memory, accuracy, warm start.
 * `cfg.driver` knows the library's page; everything else is common.
 */
async function runConfig(cfg, texts, refs) {
  const res = { name: cfg.name, library: cfg.library, ...cfg.describe, loadavg_start: loadavg() };
  const t0 = Date.now();
  const cpu0 = cpuSample();
  let browserCpu = 0;
  await withBrowser(cfg.extraArgs ?? [], cfg.initScript, cfg.library === 'localrec' && cfg.describe.backend !== 'cpu', async ({ context, page, memory, errors, watch, cpuSeconds, cpuByType }) => {
    cfg.server.takeStats();
    const navStart = Date.now();
    await page.goto(cfg.url);
    const ready = await withTimeout(page.evaluate(() => window.bench.ready), 300_000, 'cold start');
    if (ready.error) {
      const e = ready.error;
      if (e.code === 'localrec/backend-unavailable') {
        res.skipped = `${e.code}: ${e.message}`;
        return;
      }
      throw new Error(typeof e === 'string' ? e : `${e.code ?? ''} ${e.stack || e.message}`);
    }
    res.info = ready.info;
    if (cfg.webgpu) res.webgpu_adapter = await webgpuAdapter(page);
    res.cold_start = { first_embedding_ms: r1(ready.timings.first_embedding_ms), ...cfg.driver.phases(ready.timings), driver_wall_ms: Date.now() - navStart };
    res.downloaded = byKind(cfg.server.takeStats(), cfg.modelPrefixes);
    const samples = [(res.memory_after_load = await memory())];
    if (cfg.library === 'localrec') {
      // What Encoder.load chose: enc.backend, enc.calibration ('auto'), enc.adapter
      // (WebGPU), and whether the CPU module is the relaxed-SIMD build. The worker's
      // `relaxedSimd` does not reach the page (Encoder keeps only backend, dims,
      // calibration and adapter), so the page validates the worker's own probe bytes, and
      // the worker's resource timing says which CPU wasm it really fetched.
      const probe = await page.evaluate((bytes) => WebAssembly.validate(new Uint8Array(bytes)), RELAXED_PROBE);
      const cpuWasm = (res.memory_after_load.worker_fetched_wasm ?? []).map((f) => f.path).filter((f) => /localrec_wasm(_relaxed)?_bg\.wasm$/.test(f));
      res.backend_in_use = ready.info.backend;
      res.calibration = ready.info.calibration ?? null;
      res.adapter = ready.info.adapter ?? null;
      res.relaxed_simd = {
        probe_validates_in_page: probe,
        cpu_wasm_fetched_by_worker: cpuWasm,
        used: cpuWasm.length ? cpuWasm.some((f) => f.includes('_relaxed_')) : null,
        ...(cpuWasm.length ? {} : { note: 'the worker loaded no CPU wasm (backend webgpu)' }),
      };
    }

    res.workloads = {};
    const perSentence = {};
    const cpuBefore = await cpuByType();
    const wallBefore = Date.now();
    for (const [kind, batch] of cfg.workloads ?? WORKLOADS) {
      const key = `${kind === 'items' ? 'short' : 'tok256'}_b${batch}`;
      // Skip what would take too long (CPU-emulated WebGPU), as the peers' harness does.
      // Before any short batch is measured, the cold start's first inference (one short
      // text, pipeline set-up included: an overestimate) stands in for it.
      const est = perSentence[kind] ?? (perSentence.items ? perSentence.items * 20 : kind === 'items' ? res.cold_start.first_inference_ms : null);
      const perCall = est ? est * batch : null;
      let warm = QUICK || (perCall && perCall > 10_000) ? 1 : 2;
      let reps = REPS;
      let reduced = null;
      const predicted = perCall ? perCall * (warm + MIN_REPS) : 0;
      if (predicted > WORKLOAD_BUDGET_MS) {
        // One warm-up and one timed call, where that fits, rather than no figure at all
        // (CPU-emulated WebGPU); marked as such.
        if (perCall * 2 <= WORKLOAD_BUDGET_MS * 2) {
          warm = 1;
          reps = { minReps: 1, maxReps: 1, minMs: 0 };
          reduced = `1 warm-up + 1 timed call: ${MIN_REPS} reps predicted ${Math.round(predicted / 1000)} s > budget ${WORKLOAD_BUDGET_MS / 1000} s`;
        } else {
          res.workloads[key] = { skipped: `predicted ${Math.round(predicted / 1000)} s > budget ${WORKLOAD_BUDGET_MS / 1000} s` };
          continue;
        }
      }
      log(`  ${cfg.name} ${key}${reduced ? ' (1 timed call)' : ''}`);
      const opts = { warm, ...reps, budgetMs: WORKLOAD_BUDGET_MS };
      const w = await withTimeout(cfg.driver.workload(page, texts, kind, batch, opts), WORKLOAD_BUDGET_MS * 3, `${cfg.name} ${key}`);
      res.workloads[key] = { batch, ...summarizeTimes(w.times, batch), warmup_ms: r1(w.warm_ms), ...(reduced ? { reduced } : {}) };
      perSentence[kind] = w.median_ms / batch;
    }
    const cpuAfter = await cpuByType();
    // Cores each browser process type kept busy during the workloads (the page's worker
    // is in the renderer; CPU-emulated WebGPU runs in the GPU process).
    res.cores_busy_during_workloads = Object.fromEntries(
      Object.entries(cpuAfter).map(([k, v]) => [k, r2((v - (cpuBefore[k] ?? 0)) / ((Date.now() - wallBefore) / 1000))]).filter(([, v]) => v >= 0.01),
    );
    samples.push((res.memory_after_workloads = await memory()));

    res.cosine_vs_sentence_transformers = {};
    for (const ref of cfg.cosine === false ? [] : refs) {
      if (cfg.library !== 'localrec' && !ref.forPeers) continue;
      // CPU-emulated WebGPU is slow: short texts only, as the peers' harness does, and no
      // more of them than fit in the workload budget at the measured speed.
      let idx = ref.texts.map((t, i) => i).filter((i) => !cfg.webgpu || ref.texts[i].length <= 200);
      const available = idx.length;
      if (cfg.webgpu && perSentence.items) idx = idx.slice(0, Math.max(1, Math.floor(WORKLOAD_BUDGET_MS / perSentence.items)));
      try {
        const vecs = await withTimeout(cfg.driver.embedEach(page, idx.map((i) => ref.texts[i])), 300_000, 'reference check');
        const cos = vecs.map((v, j) => cosine(v, ref.embeddings[idx[j]]));
        res.cosine_vs_sentence_transformers[ref.name] = {
          texts: cos.length,
          min: r6(Math.min(...cos)),
          mean: r6(cos.reduce((a, b) => a + b, 0) / cos.length),
          ...(cos.length < ref.texts.length ? { of_texts: ref.texts.length, note: `${available} short enough; ${cos.length} fit the budget` } : {}),
        };
      } catch (e) {
        // A slow backend is reported, not failed: the other figures stand.
        res.cosine_vs_sentence_transformers[ref.name] = { texts: 0, error: String(e?.message ?? e).slice(0, 300) };
        if (/^timeout/.test(String(e?.message))) break; // the page is still busy with it
      }
    }

    // A returning visitor: a second page in the same profile, whatever the library caches.
    if (cfg.warmStart !== false) {
      const p2 = await context.newPage();
      watch(p2);
      cfg.server.takeStats();
      await p2.goto(cfg.url);
      const again = await withTimeout(p2.evaluate(() => window.bench.ready), 300_000, 'warm start');
      if (again.error) throw new Error(`warm start: ${JSON.stringify(again.error)}`);
      res.warm_start = { first_embedding_ms: r1(again.timings.first_embedding_ms), ...cfg.driver.phases(again.timings), downloaded: byKind(cfg.server.takeStats(), cfg.modelPrefixes) };
      const warmMem = await memory(p2, await context.newCDPSession(p2));
      samples.push(warmMem);
      if (cfg.library === 'localrec') {
        // The bench strips conditional headers (see serveLocalrec), so the browser's HTTP
        // cache cannot answer 304: whatever is requested again is sent in full. What of the
        // warm start was the wasm, and what localrec served from its own Cache Storage:
        const d = res.warm_start.downloaded;
        const cached = await p2.evaluate(async () => {
          const out = [];
          for (const name of await caches.keys()) {
            const c = await caches.open(name);
            for (const r of await c.keys()) {
              const u = new URL(r.url);
              if (u.pathname.endsWith('.wasm')) out.push(`${name}: ${u.pathname}`);
            }
          }
          return out;
        });
        res.warm_start.refetch = {
          wasm_bytes: d.wasm_bytes,
          model_bytes: d.model_bytes,
          js_bytes: d.js_bytes,
          worker_wasm_fetches: warmMem.worker_fetched_wasm,
          wasm_in_cache_storage: cached,
          note: 'conditional request headers stripped: every request that reaches the server is answered in full (200), as with no HTTP cache; what localrec keeps in Cache Storage (model, and wasm where the worker caches it) is not requested',
        };
      }
    }
    res.peak_renderer_rss_bytes = Math.max(...samples.map((s) => s.renderer_peak_rss_bytes ?? 0)) || null;
    res.peak_wasm_memory_bytes = Math.max(...samples.map((s) => s.wasm_memory_bytes ?? 0)) || null;
    if (errors.length) res.page_errors = errors.slice(0, 5);
    browserCpu = await cpuSeconds();
  });
  res.other_processes_cores = otherCores(cpu0, cpuSample(), browserCpu, (Date.now() - t0) / 1000);
  res.loadavg_end = loadavg();
  res.config_seconds = r1((Date.now() - t0) / 1000);
  return res;
}

/** Opens every configuration's page, each in its own browser, then calls `fn(pages)`. */
async function openPages(cfgs, fn, opened = []) {
  if (opened.length === cfgs.length) return fn(opened);
  const cfg = cfgs[opened.length];
  return withBrowser(cfg.extraArgs ?? [], cfg.initScript, false, async ({ page }) => {
    await page.goto(cfg.url);
    const ready = await withTimeout(page.evaluate(() => window.bench.ready), 300_000, `${cfg.name} load`);
    if (ready.error) throw new Error(`${cfg.name}: ${ready.error.code ?? ''} ${ready.error.message ?? ready.error}`);
    return openPages(cfgs, fn, [...opened, { cfg, page }]);
  });
}

/**
 * The head-to-head phase (see the top of this file): the configurations' pages open side
 * by side; each round, each page in turn (the order rotating by round) runs `warm`
 * untimed and `calls` timed calls of batch 32, cycling through the same 128 short texts.
 * Returns per configuration each round's median call and the median of all its calls.
 */
async function headToHead(cfgs, texts, rounds, warm, calls) {
  const t0 = Date.now();
  const loadavgStart = loadavg();
  const perRound = cfgs.map(() => []);
  const all = cfgs.map(() => []);
  await openPages(cfgs, async (pages) => {
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < pages.length; j++) {
        const i = (j + r) % pages.length;
        const { cfg, page } = pages[i];
        const opts = { warm, minReps: calls, maxReps: calls, minMs: 0, budgetMs: WORKLOAD_BUDGET_MS };
        const w = await withTimeout(cfg.driver.workload(page, texts, 'items', 32, opts), WORKLOAD_BUDGET_MS, `${cfg.name} head to head`);
        perRound[i].push(median(w.times));
        all[i].push(...w.times);
      }
      log(`  head to head: round ${r + 1} of ${rounds}: ${cfgs.map((c, i) => `${c.name} ${r1((32 * 1000) / perRound[i][r])}`).join(', ')} sentences/s`);
    }
  });
  return {
    rounds,
    warm_up_calls_per_round: warm,
    calls_per_round: calls,
    batch: 32,
    loadavg_start: loadavgStart,
    loadavg_end: loadavg(),
    seconds: r1((Date.now() - t0) / 1000),
    configs: cfgs.map((c, i) => ({
      name: c.name,
      sentences_per_s: r1((32 * 1000) / median(all[i])),
      median_ms: r1(median(all[i])),
      round_sentences_per_s: perRound[i].map((ms) => r1((32 * 1000) / ms)),
    })),
  };
}

/** Each round's ratio of `a`'s speed to `b`'s in a head-to-head result, and their median. */
function roundRatios(h2h, a, b) {
  const x = h2h?.configs.find((c) => c.name === a);
  const y = h2h?.configs.find((c) => c.name === b);
  if (!x || !y) return null;
  const ratios = x.round_sentences_per_s.map((v, r) => v / y.round_sentences_per_s[r]);
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), ratios: ratios.map(r3), ours: x.sentences_per_s, peer: y.sentences_per_s };
}

async function webgpuAdapter(page) {
  return page.evaluate(async () => {
    if (!navigator.gpu) return { available: false };
    const a = await navigator.gpu.requestAdapter();
    if (!a) return { available: false, adapter: null };
    const i = a.info ?? {};
    return { available: true, vendor: i.vendor, architecture: i.architecture, description: i.description, is_fallback_adapter: a.isFallbackAdapter ?? i.isFallbackAdapter };
  });
}

// The two pages: transformers.js' (the peers', unchanged) and ours (bench/browser/page.js).
const tjsDriver = {
  phases: (t) => ({
    library_import_ms: r1(t.import_done_ms - t.module_start_ms),
    pipeline_create_ms: r1(t.pipeline_ready_ms - t.import_done_ms),
    first_inference_ms: r1(t.first_embedding_ms - t.pipeline_ready_ms),
    model_fetch_done_ms: r1(t.model_fetch_done_ms),
  }),
  // The peer page reads the same data/ files itself; `kind` names them.
  workload: (page, texts, kind, batch, opts) => page.evaluate(([k, b, o]) => window.bench.workload(k, b, o), [kind, batch, opts]),
  embedEach: (page, list) =>
    page.evaluate(async (ts) => {
      const out = [];
      for (const t of ts) out.push((await window.__extractor(t, { pooling: 'mean', normalize: true })).tolist()[0]);
      return out;
    }, list),
};

const localrecDriver = {
  phases: (t) => ({
    page_module_ms: r1(t.module_start_ms),
    load_ms: r1(t.load_done_ms - t.module_start_ms),
    first_inference_ms: r1(t.first_embedding_ms - t.load_done_ms),
  }),
  workload: (page, texts, kind, batch, opts) => page.evaluate(([ts, b, o]) => window.bench.workload(ts, b, o), [texts[kind], batch, opts]),
  embedEach: (page, list) => page.evaluate((ts) => window.bench.embedEach(ts), list),
};

// ---------------------------------------------------------------------------------------
// Report.

const mb = (b) => (b == null ? '-' : (b / 1e6).toFixed(1));
const mb2 = (b) => (b == null ? '-' : (b / 1e6).toFixed(2));
const mib = (b) => (b == null ? '-' : Math.round(b / 2 ** 20).toString());
const fmtRate = (w) => (!w ? '-' : w.skipped ? 'skip' : w.sentences_per_s.toFixed(1) + (w.reduced ? '*' : ''));
const sec = (ms) => (ms == null ? '-' : (ms / 1000).toFixed(2) + ' s');

function table(configs) {
  const head = ['config', 'runs on', 'b1', 'b8', 'b32', 'b128', 'tok256 b1', 'tok256 b8', 'first emb. cold', 'warm', 'fetched MB (model/wasm/js)', 'peak RSS MiB', 'min cos', 'other load'];
  const rows = configs.map((c) => {
    if (c.skipped || c.failed) return [c.name, c.skipped ? `skipped: ${c.skipped}` : `FAILED: ${c.failed}`];
    const w = c.workloads;
    const d = c.downloaded;
    const cos = Object.values(c.cosine_vs_sentence_transformers ?? {}).map((x) => x.min).filter((x) => x != null);
    // localrec: enc.backend (and the CPU build); transformers.js: its device
    const on = c.library === 'localrec' ? `${c.backend_in_use}${c.relaxed_simd?.used ? ' relaxed' : c.relaxed_simd?.used === false ? ' simd128' : ''}` : c.device;
    return [
      c.name,
      on,
      fmtRate(w.short_b1), fmtRate(w.short_b8), fmtRate(w.short_b32), fmtRate(w.short_b128), fmtRate(w.tok256_b1), fmtRate(w.tok256_b8),
      sec(c.cold_start.first_embedding_ms), sec(c.warm_start?.first_embedding_ms),
      `${mb(d.total_bytes)} (${mb(d.model_bytes)}/${mb(d.wasm_bytes)}/${mb2(d.js_bytes)})`,
      mib(c.peak_renderer_rss_bytes),
      cos.length ? Math.min(...cos).toFixed(6) : '-',
      `${c.other_processes_cores} cores`,
    ];
  });
  const full = rows.filter((r) => r.length === head.length);
  const widths = head.map((h, i) => Math.max(h.length, ...full.map((r) => String(r[i]).length)));
  const line = (r) => (r.length === head.length ? r.map((x, i) => (i === 0 ? String(x).padEnd(widths[i]) : String(x).padStart(widths[i]))).join('  ') : `${String(r[0]).padEnd(widths[0])}  ${r[1]}`);
  return [line(head), ...rows.map(line)].join('\n');
}

function evaluateGoals(result) {
  const by = (name) => result.configs.find((c) => c.name === name && !c.skipped && !c.failed);
  const ours = by('localrec cpu');
  const rate = (c) => c?.workloads?.short_b32?.sentences_per_s ?? null;
  const goals = [];
  const add = (goal, target, value, pass, note) => goals.push({ goal, target, value, pass, ...(note ? { note } : {}) });

  const fp32 = by('transformers.js wasm fp32 1 thread');
  const q8 = by('transformers.js wasm q8 1 thread');
  for (const [peer, label, target, ok] of [
    [fp32, 'WASM fp32', `>= ${GOALS.vsFp32}x`, (x) => x >= GOALS.vsFp32],
    [q8, 'WASM q8', `> ${GOALS.vsQ8}x`, (x) => x > GOALS.vsQ8],
  ]) {
    const goal = `cpu b32 short, vs transformers.js ${label} 1 thread`;
    const blocks = ours && peer ? rate(ours) / rate(peer) : null;
    const blockNote = blocks == null ? null : `separate configurations: ${blocks.toFixed(2)}x (${rate(ours)} vs ${rate(peer)} sentences/s)`;
    const h = peer ? roundRatios(result.head_to_head, 'localrec cpu', peer.name) : null;
    if (h) {
      add(goal, target, `${h.median.toFixed(3)}x head to head (median of ${h.ratios.length} rounds' ratios, ${h.min.toFixed(2)}-${h.max.toFixed(2)}; ${h.ours} vs ${h.peer} sentences/s)`, ok(h.median), blockNote);
    } else if (blocks != null) {
      add(goal, target, blockNote, ok(blocks), 'no head-to-head phase (--rounds 0 or it failed): judged on the separate configurations');
    } else add(goal, target, null, null, ours ? 'transformers.js not run' : 'localrec cpu not run');
  }
  if (ours) {
    // "Single-threaded": localrec's wasm memory is not shared, so it cannot run wasm threads.
    const shared = ours.memory_after_workloads?.wasm_shared_memory === true;
    add('cpu path single-threaded', '1 thread', shared ? 'shared wasm memory (threads possible)' : '1 thread (unshared wasm memory)', !shared);
    const cos = Object.entries(ours.cosine_vs_sentence_transformers).filter(([, v]) => v.min != null);
    const min = Math.min(...cos.map(([, v]) => v.min));
    add('cpu accuracy (shipped f16 web model): min cosine vs sentence-transformers', `>= ${GOALS.minCosine} (the peers' fp32 export check)`, min.toFixed(6), min >= GOALS.minCosine,
      `texts: ${cos.map(([k, v]) => `${k} ${v.texts}`).join(', ')}`);
    const warm = ours.warm_start?.first_embedding_ms;
    add('warm cache: page load -> first embedding', `<= ${GOALS.warmFirstMs} ms`, warm == null ? null : `${warm} ms`, warm == null ? null : warm <= GOALS.warmFirstMs);
  }
  // The 4 MB goal is the CPU path's: what a page using backend 'cpu' downloads here.
  // The WebGPU module is a separate download, made only for 'webgpu' and 'auto': its size
  // is printed beside it, with no verdict (the goal does not say it covers it).
  const P = result.package.paths;
  const gz = P.cpu.gzip_bytes;
  add(
    'package wasm+JS gzipped, cpu path (pkg JS + the CPU wasm this Chromium loads)',
    `<= 4 MB (${GOALS.gzBytes} bytes)`,
    `${(gz / 1e6).toFixed(2)} MB (${gz} bytes)`,
    gz <= GOALS.gzBytes,
    `${result.package.cpu_wasm_loaded}; beside it, not judged: the WebGPU module (localrec_webgpu.js + localrec_webgpu_bg.wasm) is ${(P.webgpu_module_only.gzip_bytes / 1e6).toFixed(2)} MB gz more, ` +
      `so the webgpu path downloads ${(P.webgpu.gzip_bytes / 1e6).toFixed(2)} MB gz and auto ${(P.auto.gzip_bytes / 1e6).toFixed(2)} MB gz (with an adapter); the whole package's JS + wasm is ${(P.all_js_and_wasm.gzip_bytes / 1e6).toFixed(2)} MB gz`,
  );
  return goals;
}

function printReport(result) {
  const p = result.package;
  const out = [];
  out.push('');
  out.push(`localrec browser encoder benchmark${result.quick ? ' (--quick: smoke run, not for figures)' : ''}`);
  out.push(`${result.versions.chromium}, ${result.machine.cpus} cores (${result.machine.cpu_model}), load average ${result.machine.loadavg_start.join(' ')} -> ${result.machine.loadavg_end.join(' ')}`);
  out.push(`texts: ${result.texts.source}`);
  out.push('');
  const m = result.texts.meta;
  const short = m ? `item strings of ${m.item_tokens_min}-${m.item_tokens_max} tokens` : 'MovieLens item strings';
  out.push(`sentences/s (median call), short = ${short}, tok256 = 256-token texts; first embedding = navigation -> first vector`);
  out.push(table(result.configs));
  if (result.configs.some((c) => Object.values(c.workloads ?? {}).some((w) => w.reduced))) out.push('*: one timed call after one warm-up (the full repetitions would exceed the per-workload budget)');
  // 'other load': cores busy with anything but this browser, averaged over the config.
  const busy = Math.max(0, ...result.configs.filter((c) => !c.skipped && !c.failed).map((c) => c.other_processes_cores ?? 0));
  if (busy >= 0.5) out.push(`note: other processes kept up to ${busy} of ${result.machine.cpus} cores busy during a configuration; single figures are unreliable, rerun when the machine is quiet`);
  out.push('');
  const size = (x) => `${mb2(x.raw_bytes)} MB raw / ${mb2(x.gzip_bytes)} MB gz`;
  const P = p.paths;
  out.push(`package (pkg/ as built at ${p.wasm_mtime}, gzip -9), what a page downloads (JS + wasm of pkg/):`);
  const js = P.cpu.files.filter((f) => f !== p.cpu_wasm_loaded).join(', ');
  out.push(`  cpu path     ${size(P.cpu)}  (${js} + ${p.cpu_wasm_loaded}: this Chromium ${p.relaxed_simd_in_this_browser ? 'validates' : 'rejects'} the worker's relaxed-SIMD probe)`);
  out.push(`  webgpu path  ${size(P.webgpu)}  (the same JS + wasm/localrec_webgpu.js + localrec_webgpu_bg.wasm; no CPU wasm)`);
  out.push(`  auto path    ${size(P.auto)}  (both: the CPU wasm, then the WebGPU module when an adapter exists)`);
  out.push(`  WebGPU module alone ${size(P.webgpu_module_only)}; whole package (every JS and wasm file) ${size(P.all_js_and_wasm)}`);
  out.push('');
  out.push('localrec: what Encoder.load chose (enc.backend, relaxed SIMD, enc.adapter, enc.calibration) and the warm start');
  for (const c of result.configs) {
    if (c.library !== 'localrec' || c.skipped || c.failed) continue;
    const rs = c.relaxed_simd;
    const simd = rs?.used == null ? 'no CPU wasm loaded' : `${rs.used ? 'relaxed SIMD' : 'simd128 (no relaxed SIMD)'}, worker fetched ${rs.cpu_wasm_fetched_by_worker.join(', ')}`;
    out.push(`  ${c.name}: enc.backend ${c.backend_in_use}; ${simd}; page probe validates: ${rs?.probe_validates_in_page}`);
    const busy = Object.entries(c.cores_busy_during_workloads ?? {}).map(([k, v]) => `${k} ${v}`).join(', ');
    if (busy) out.push(`    cores busy during the workloads, by browser process: ${busy}`);
    if (c.adapter) out.push(`    enc.adapter: ${JSON.stringify(c.adapter)}`);
    if (c.backend_in_use === 'webgpu' || c.webgpu_adapter) out.push(`    navigator.gpu adapter (page): ${JSON.stringify(c.webgpu_adapter)}`);
    if (c.calibration) {
      const cal = (x) => (!x ? '-' : x.error ? `error ${x.error.code}: ${x.error.message}` : x.skipped ? `skipped: ${x.skipped}` : `${x.sentencesPerSecond.toFixed(1)} sentences/s (${x.ms.toFixed(1)} ms for ${x.texts} texts)`);
      out.push(`    enc.calibration: cpu ${cal(c.calibration.cpu)}; webgpu ${cal(c.calibration.webgpu)}; chosen ${c.calibration.chosen} (${c.calibration.reason})`);
    } else out.push('    enc.calibration: null');
    if (c.warm_start) {
      const w = c.warm_start;
      const d = w.downloaded;
      const fetches = (w.refetch?.worker_wasm_fetches ?? []).map((f) => `${path.basename(f.path)} in ${f.fetch_ms} ms`).join(', ');
      out.push(`    warm start (a) as measured: ${w.first_embedding_ms} ms navigation -> first embedding (load ${w.load_ms} ms, first inference ${w.first_inference_ms} ms)`);
      const cached = w.refetch?.wasm_in_cache_storage ?? [];
      out.push(`    warm start (b) fetched ${mb2(d.total_bytes)} MB: wasm ${mb2(d.wasm_bytes)} MB${fetches ? ` (${fetches}, request -> last byte in the worker)` : ''}, model ${mb2(d.model_bytes)} MB, js ${mb2(d.js_bytes)} MB`);
      out.push(`      (conditional headers stripped: what is requested is re-sent in full, no 304s; wasm in Cache Storage: ${cached.length ? cached.map((x) => path.basename(x)).join(', ') : 'none'})`);
    }
  }
  if (result.head_to_head) {
    const h = result.head_to_head;
    out.push('');
    out.push(`head to head, batch 32 short (${h.rounds} rounds of ${h.warm_up_calls_per_round} warm-up + ${h.calls_per_round} timed calls each, taking turns; load average ${h.loadavg_start.join(' ')} -> ${h.loadavg_end.join(' ')}):`);
    for (const c of h.configs) out.push(`  ${c.name.padEnd(36)} ${String(c.sentences_per_s).padStart(6)} sentences/s (median call); by round: ${c.round_sentences_per_s.join(' ')}`);
    for (const peer of h.configs.slice(1)) {
      const x = roundRatios(h, h.configs[0].name, peer.name);
      out.push(`  ${h.configs[0].name} / ${peer.name}: by round ${x.ratios.map((v) => v.toFixed(2)).join(' ')}; median ${x.median.toFixed(3)}x`);
    }
  }
  out.push('');
  out.push('goals (issue 5):');
  for (const g of result.goals) {
    const verdict = g.pass === true ? 'PASS' : g.pass === false ? 'FAIL' : 'n/a ';
    out.push(`  ${verdict}  ${g.goal}: ${g.value ?? '-'} (goal ${g.target})${g.note ? ` [${g.note}]` : ''}`);
  }
  for (const f of result.failures) out.push(`  FAILED ${f.what}: ${f.error}`);
  out.push(`written to ${OUT.startsWith(ROOT + path.sep) ? path.relative(ROOT, OUT) : OUT}`);
  console.log(out.join('\n'));
}

// ---------------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  // peersDir: where the peers' data, reference embeddings and page instrument are read
  // from: the writable copy when transformers.js runs, the original when only its texts
  // are wanted (--no-peers), none when the folder is absent.
  let peersDir = null;
  if (!NO_PEERS) {
    if (!fs.existsSync(PEERS_SRC)) {
      console.error(
        `bench/browser/run.mjs: the peers benchmark folder ${PEERS_SRC} is absent, so transformers.js cannot be measured beside localrec.\n` +
          'Set PEERS_DIR to a copy of it, or run localrec alone with --no-peers.',
      );
      process.exit(1);
    }
    peersDir = preparePeers();
  } else if (fs.existsSync(path.join(PEERS_SRC, 'data/items.json'))) {
    peersDir = PEERS_SRC;
  }
  await requireInputs();
  RELAXED_PROBE = relaxedSimdProbe();

  const texts = loadTexts(peersDir);
  const refs = loadReferences(peersDir);
  const result = {
    bench: 'localrec browser encoder (bench/browser/run.mjs)',
    command: `node bench/browser/run.mjs ${args.join(' ')}`.trim(),
    started_at: new Date(started).toISOString(),
    quick: QUICK,
    machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, mem_gib: r1(os.totalmem() / 2 ** 30), loadavg_start: loadavg(), note: 'loadavg: 1, 5, 15 min; shared machine, compare ratios within one run' },
    versions: {},
    chromium_args: CHROMIUM_ARGS,
    texts: { source: texts.source, items: texts.items.length, long_texts: texts.longs.length, ...(texts.meta ? { meta: texts.meta } : {}) },
    repetitions: REPS,
    configs: [],
    failures: [],
  };

  // This Chromium's answer to the worker's relaxed-SIMD probe decides which CPU wasm the
  // cpu path downloads.
  const b = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const probePage = await b.newPage();
  const relaxed = await probePage.evaluate((bytes) => WebAssembly.validate(new Uint8Array(bytes)), RELAXED_PROBE);
  // the snapshot of pkg/ that was served and sized
  result.package = { ...packageSize(relaxed), wasm_sha256: wasmDigests(), wasm_mtime: wasmMtime() };
  result.versions = { chromium: `Chromium ${b.version()}`, node: process.version, 'playwright-core': readJson(path.join(ROOT, 'node_modules/playwright-core/package.json')).version, localrec: result.package.version };
  await b.close();

  const ours = await serveLocalrec();
  const peers = peersDir && !NO_PEERS ? await (await import(pathToFileURL(path.join(peersDir, 'harness/server.mjs')).href)).startServer(peersDir) : null;
  const instrument = peersDir ? path.join(peersDir, 'pages/instrument.js') : null;

  const configs = [];
  if (peers) {
    const nm = (n) => readJson(path.join(peersDir, 'node_modules', n, 'package.json')).version;
    result.versions['@huggingface/transformers'] = nm('@huggingface/transformers');
    result.versions['onnxruntime-web'] = nm('onnxruntime-web');
    const tjs = (device, dtype, threads, name) => ({
      name, library: 'transformers.js', describe: { device, dtype, threads }, driver: tjsDriver, server: peers, initScript: instrument,
      url: `${peers.origin}/pages/embed.html?device=${device}&dtype=${dtype}&threads=${threads}`, modelPrefixes: ['/models/'], webgpu: device === 'webgpu',
    });
    configs.push(tjs('wasm', 'fp32', '1', 'transformers.js wasm fp32 1 thread'));
    configs.push(tjs('wasm', 'q8', '1', 'transformers.js wasm q8 1 thread'));
    if (PEER_CONFIGS === 'all') {
      configs.push(tjs('wasm', 'fp32', '2', 'transformers.js wasm fp32 2 threads'));
      configs.push(tjs('wasm', 'q8', '2', 'transformers.js wasm q8 2 threads'));
      configs.push(tjs('webgpu', 'fp32', 'default', 'transformers.js webgpu fp32'));
    }
  }
  const lr = (backend, model, name, extra = {}) => ({
    name, library: 'localrec', describe: { backend, model }, driver: localrecDriver, server: ours, initScript: instrument,
    url: `${ours.origin}/page.html?backend=${backend}&model=${model}`, modelPrefixes: ['/model/', '/model-f32/'], webgpu: backend !== 'cpu', ...extra,
  });
  for (const backend of BACKENDS.filter((x) => x !== 'auto')) configs.push(lr(backend, '/model/', `localrec ${backend}`));
  // 'auto' (the default backend): what it picks here and its calibration figures; the
  // cold start includes timing both backends.
  if (BACKENDS.includes('auto')) configs.push(lr('auto', '/model/', 'localrec auto', { workloads: [['items', 32]], warmStart: false, cosine: false }));
  // The original f32 weights: accuracy and speed without the f16 conversion (no warm
  // start: it only answers whether f16 costs accuracy or speed).
  if (!NO_F32 && BACKENDS.includes('cpu') && fs.existsSync(path.join(F32_MODEL, 'model.safetensors'))) {
    configs.push(lr('cpu', '/model-f32/', 'localrec cpu, f32 model', { workloads: [['items', 32]], warmStart: false }));
  }

  try {
    for (const cfg of configs) {
      const waited = await quiet();
      log(`config ${cfg.name}${waited.quiet ? '' : ' (the machine did not go quiet)'} after ${waited.seconds} s of waiting`);
      try {
        const r = await runConfig(cfg, texts, refs);
        r.quiet_wait = waited;
        if (r.skipped) log(`  skipped: ${r.skipped}`);
        result.configs.push(r);
      } catch (e) {
        const error = String(e?.message ?? e).slice(0, 500);
        log(`FAILED ${cfg.name}: ${error}`);
        result.failures.push({ what: cfg.name, error });
        result.configs.push({ name: cfg.name, library: cfg.library, failed: error.split('\n')[0] });
      }
    }
    const pair = ['localrec cpu', 'transformers.js wasm fp32 1 thread', 'transformers.js wasm q8 1 thread']
      .map((name) => configs.find((c) => c.name === name && result.configs.some((r) => r.name === name && !r.skipped && !r.failed)));
    if (ROUNDS > 0 && pair[0] && (pair[1] || pair[2])) {
      const waited = await quiet();
      const h2hConfigs = pair.filter(Boolean);
      log(`head to head: ${h2hConfigs.map((c) => c.name).join(', ')}, ${ROUNDS} rounds (after ${waited.seconds} s of waiting)`);
      try {
        result.head_to_head = await headToHead(h2hConfigs, texts, ROUNDS, QUICK ? 1 : 2, QUICK ? 2 : 8);
      } catch (e) {
        const error = String(e?.message ?? e).slice(0, 500);
        log(`FAILED head to head: ${error}`);
        result.failures.push({ what: 'head to head', error });
      }
    }
  } finally {
    await ours.close();
    await peers?.close();
  }

  result.machine.loadavg_end = loadavg();
  result.goals = evaluateGoals(result);
  result.harness_seconds = r1((Date.now() - started) / 1000);
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
  printReport(result);
  // Goals are reported, not enforced (a benchmark on a shared machine); a configuration
  // that could not run at all is an error.
  process.exit(result.failures.length ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

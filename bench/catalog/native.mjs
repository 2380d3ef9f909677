#!/usr/bin/env node
// Native catalog benchmark: builds catalogs with the release CLI and measures what a
// publisher and a static host see. A command, not a test: it prints a table and writes
// everything to bench-results/catalog-native.json (`make bench-catalog-native`).
//
//   node bench/catalog/native.mjs [--bin target/release/localrec] [--model DIR]
//        [--wgpu-items N] [--no-wgpu] [--repeat N] [--big DIR] [--out FILE]
//
//   --wgpu-items N  wgpu builds the first N movies of ml-latest-small (default 1000),
//                   and the CPU builds the same subset for comparison. Where wgpu runs on
//                   Mesa lavapipe (a Vulkan driver emulated on the CPU) it encodes a few
//                   items/s, so all 9,742 would take most of an hour.
//   --no-wgpu       skip the wgpu build
//   --repeat N      parse+verify passes per catalog; the fastest counts (default 3)
//   --big DIR       the 87,585-title catalog, built beforehand by `make catalog-87k`
//                   (default .cache/catalogs/ml-32m-movies); its build figures come from
//                   DIR.build.json, which that target writes when it builds it
//
// Per catalog: build throughput (items/s: the build's own total time, reading inputs and
// loading the model included, and encoding alone is not split out), bytes per item on
// the wire (shard bytes / items; again with the model's web copy added, as a first visit
// downloads it too; and gzip -6 sizes for hosts that compress), shard count and sizes,
// and native parse+verify throughput (`localrec bench-catalog`: every shard streamed in
// 64 KiB chunks through ShardStream into a CatalogStore, SHA-256 included, from memory).
// The ml-latest-small builds go to .cache/bench/catalog-native/ (rebuilt from scratch on
// every run: a resumed build would time nothing).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const BIN = path.resolve(ROOT, opt('--bin', 'target/release/localrec'));
const MODEL = path.resolve(ROOT, opt('--model', '.cache/models/all-MiniLM-L6-v2'));
const WGPU_ITEMS = Number(opt('--wgpu-items', '1000'));
const NO_WGPU = flag('--no-wgpu');
const REPEAT = Number(opt('--repeat', '3'));
const BIG = path.resolve(ROOT, opt('--big', '.cache/catalogs/ml-32m-movies'));
const OUT = path.resolve(ROOT, opt('--out', 'bench-results/catalog-native.json'));
const WORK = path.join(ROOT, '.cache/bench/catalog-native');
const MOVIES = path.join(ROOT, 'data/ml-latest-small/movies.csv');
const RATINGS = path.join(ROOT, 'data/ml-latest-small/ratings.csv.gz');

function fail(message) {
  console.error(`bench/catalog/native.mjs: ${message}`);
  process.exit(1);
}
if (!Number.isInteger(WGPU_ITEMS) || WGPU_ITEMS < 1) fail(`--wgpu-items must be a positive integer, not ${opt('--wgpu-items')}`);
if (!Number.isInteger(REPEAT) || REPEAT < 1) fail(`--repeat must be a positive integer, not ${opt('--repeat')}`);
if (!fs.existsSync(BIN)) fail(`no localrec binary at ${BIN} (make cli builds it)`);
if (!fs.existsSync(path.join(MODEL, 'model.safetensors'))) fail(`no model in ${MODEL} (scripts/fetch-model.sh fetches it)`);

/** Runs localrec; its stderr (progress) passes through. Returns the last stdout line as JSON. */
function localrec(argv) {
  const started = process.hrtime.bigint();
  const r = spawnSync(BIN, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) fail(`localrec ${argv.join(' ')} failed (exit ${r.status ?? r.signal})`);
  const last = r.stdout.trim().split('\n').pop();
  try {
    return { report: JSON.parse(last), wall };
  } catch {
    return fail(`localrec ${argv[0]} printed no json summary: ${last}`);
  }
}

/** A fresh build; items/s from the build's own timer. */
function build(name, items, out, backend, extra = []) {
  fs.rmSync(out, { recursive: true, force: true });
  console.error(`building ${name} on ${backend} ...`);
  const { report, wall } = localrec([
    'build', '--items', items, '--model', MODEL, '--out', out, '--backend', backend, '--name', name, '--json', ...extra,
  ]);
  return {
    backend,
    items: report.items,
    seconds: report.seconds,
    wall_seconds: wall,
    items_per_s: report.items / report.seconds,
    encoded: report.encoded,
    reused: report.reused,
  };
}

function filesUnder(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : [p];
  });
}

/** What a visitor downloads: shards, manifest, model; per item, raw and gzipped. */
function wire(dir) {
  const manifestBytes = fs.readFileSync(path.join(dir, 'manifest.json'));
  const manifest = JSON.parse(manifestBytes);
  const shards = manifest.shards.map((s) => {
    const bytes = fs.readFileSync(path.join(dir, s.path));
    return { path: s.path, items: s.items, bytes: bytes.length, gzip_bytes: zlib.gzipSync(bytes, { level: 6 }).length };
  });
  const modelDir = path.join(dir, manifest.encoder.model);
  const model = filesUnder(modelDir).map((f) => {
    const bytes = fs.readFileSync(f);
    return { path: path.relative(dir, f), bytes: bytes.length, gzip_bytes: zlib.gzipSync(bytes, { level: 6 }).length };
  });
  const sum = (list, key) => list.reduce((a, x) => a + x[key], 0);
  const items = manifest.items;
  const shardBytes = sum(shards, 'bytes');
  const shardGzip = sum(shards, 'gzip_bytes');
  const modelBytes = sum(model, 'bytes');
  const modelGzip = sum(model, 'gzip_bytes');
  const sizes = shards.map((s) => s.bytes);
  return {
    items,
    dims: manifest.encoder.dims,
    manifest_bytes: manifestBytes.length,
    shards: shards.length,
    shard_bytes: shardBytes,
    shard_bytes_min: Math.min(...sizes),
    shard_bytes_max: Math.max(...sizes),
    shard_bytes_mean: shardBytes / shards.length,
    shard_gzip_bytes: shardGzip,
    model_bytes: modelBytes,
    model_gzip_bytes: modelGzip,
    bytes_per_item: shardBytes / items,
    bytes_per_item_with_manifest: (shardBytes + manifestBytes.length) / items,
    bytes_per_item_with_model: (shardBytes + manifestBytes.length + modelBytes) / items,
    gzip_bytes_per_item: shardGzip / items,
    gzip_bytes_per_item_with_model: (shardGzip + modelGzip) / items,
    shard_list: shards,
    model_files: model,
  };
}

function parseVerify(dir) {
  console.error(`parse+verify ${path.relative(ROOT, dir)} (best of ${REPEAT}) ...`);
  return localrec(['bench-catalog', dir, '--repeat', String(REPEAT), '--json']).report;
}

function vulkanDevice() {
  const r = spawnSync('vulkaninfo', ['--summary'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) return null;
  const field = (key) => r.stdout.match(new RegExp(`${key}\\s*=\\s*(.+)`))?.[1]?.trim() ?? null;
  return { device_name: field('deviceName'), device_type: field('deviceType'), driver_name: field('driverName') };
}

const started = new Date();
const loadStart = os.loadavg();
fs.mkdirSync(WORK, { recursive: true });
const vulkan = vulkanDevice();
const emulated = vulkan?.device_type === 'PHYSICAL_DEVICE_TYPE_CPU';

// ml-latest-small, all of it, on the CPU; then the first WGPU_ITEMS movies on cpu and wgpu.
const smallDir = path.join(WORK, 'ml-latest-small-cpu');
const small = { name: 'ml-latest-small', source: 'data/ml-latest-small/movies.csv + ratings.csv.gz' };
small.builds = [build('ml-latest-small', MOVIES, smallDir, 'cpu', ['--interactions', RATINGS])];
small.wire = wire(smallDir);
small.parse_verify = parseVerify(smallDir);

const lines = fs.readFileSync(MOVIES, 'utf8').split('\n');
const subsetFile = path.join(WORK, `movies-first-${WGPU_ITEMS}.csv`);
fs.writeFileSync(subsetFile, lines.slice(0, WGPU_ITEMS + 1).join('\n') + '\n');
const subset = {
  name: `ml-latest-small, first ${WGPU_ITEMS} movies`,
  source: `the first ${WGPU_ITEMS} rows of data/ml-latest-small/movies.csv (no ratings)`,
  builds: [build(`ml-latest-small-first-${WGPU_ITEMS}`, subsetFile, path.join(WORK, 'subset-cpu'), 'cpu')],
};
if (!NO_WGPU) {
  subset.builds.push(build(`ml-latest-small-first-${WGPU_ITEMS}`, subsetFile, path.join(WORK, 'subset-wgpu'), 'wgpu'));
}

// The 87k-title catalog, as `make catalog-87k` left it.
let big = null;
if (fs.existsSync(path.join(BIG, 'manifest.json'))) {
  big = { name: 'ml-32m-movies', source: 'data/ml-32m-movies/movies.csv.gz', builds: [] };
  const record = `${BIG}.build.json`;
  if (fs.existsSync(record)) {
    const r = JSON.parse(fs.readFileSync(record, 'utf8'));
    big.builds.push({
      backend: 'cpu',
      items: r.items,
      seconds: r.seconds,
      items_per_s: r.items / r.seconds,
      encoded: r.encoded,
      reused: r.reused,
      built_at: fs.statSync(record).mtime.toISOString(),
    });
  }
  big.wire = wire(BIG);
  big.parse_verify = parseVerify(BIG);
} else {
  console.error(`no catalog in ${BIG}: make catalog-87k builds it; its row is left out`);
}

const host = {
  cpus: os.cpus().length,
  cpu_model: os.cpus()[0]?.model ?? null,
  load_average_start: loadStart,
  load_average_end: os.loadavg(),
  vulkan,
  wgpu_note: emulated
    ? 'wgpu ran on a CPU-emulated Vulkan device (Mesa lavapipe/llvmpipe): its figure is not a GPU figure'
    : null,
};
const result = { started: started.toISOString(), host, catalogs: [small, subset, big].filter(Boolean) };
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');

// The table.
const f = (x, digits = 0) => (x == null || !Number.isFinite(x) ? '-' : x.toFixed(digits));
const rows = [['catalog', 'items', 'backend', 'build s', 'items/s', 'shards', 'shard MB', 'B/item', '+model B/item', 'gz B/item', 'verify MB/s', 'verify items/s', '1st shard ms']];
for (const c of result.catalogs) {
  for (const b of c.builds.length ? c.builds : [{ backend: '-' }]) {
    const w = c.wire ?? {};
    const v = c.parse_verify ?? {};
    const first = b === c.builds[0] || !c.builds.length;
    rows.push([
      c.name, String(b.items ?? w.items ?? '-'), b.backend + (b.backend === 'wgpu' && emulated ? ' (lavapipe)' : ''),
      f(b.seconds, 1), f(b.items_per_s, 1),
      first && c.wire ? String(w.shards) : '', first && c.wire ? f(w.shard_bytes / 1e6, 2) : '',
      first && c.wire ? f(w.bytes_per_item, 1) : '', first && c.wire ? f(w.bytes_per_item_with_model, 1) : '',
      first && c.wire ? f(w.gzip_bytes_per_item, 1) : '',
      first && c.parse_verify ? f(v.mb_per_s, 0) : '', first && c.parse_verify ? f(v.items_per_s, 0) : '',
      first && c.parse_verify ? f(v.first_shard_seconds * 1e3, 1) : '',
    ]);
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) console.log(r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
console.log('');
console.log(`host: ${host.cpus} CPUs (${host.cpu_model}), load average ${loadStart[0].toFixed(2)} at the start, ${host.load_average_end[0].toFixed(2)} at the end`);
if (vulkan) console.log(`wgpu device: ${vulkan.device_name} (${vulkan.device_type}, driver ${vulkan.driver_name})`);
if (host.wgpu_note) console.log(host.wgpu_note);
console.log(`build s / items/s: the whole \`localrec build\` (inputs read, model loaded, texts encoded, files written)`);
console.log(`B/item: shard bytes / items; +model: with manifest.json and the model's web copy (${f((small.wire.model_bytes) / 1e6, 1)} MB) added; gz: shards gzip -6`);
console.log(`verify: localrec bench-catalog, every shard streamed in 64 KiB chunks through ShardStream into a CatalogStore (SHA-256 and parse), from memory, best of ${REPEAT}`);
if (big && !big.builds.length) console.log(`the 87k catalog's build figures are missing: ${BIG}.build.json is written only when make catalog-87k builds it`);
console.log(`wrote ${path.relative(ROOT, OUT)}`);

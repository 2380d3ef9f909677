// The hand-scheduled dense kernel (scripts/dense-kernel.mjs) against the Rust body it
// replaces, bit for bit, in real Chromium, for both CPU builds; and the script's refusal
// to splice a module whose kernel layout is not the one its body is written for.
//
// `make pkg` keeps each CPU module as wasm-opt left it, Rust kernel body included, in
// .cache/wasm-build/{plain,relaxed}/opt.wasm, and splices the shipped module from it. Here
// the same module is loaded twice in Chromium, with the Rust body and with the spliced
// one (checked to be pkg/wasm's bytes), and the encoder's embeddings must agree in every
// bit: batches of 1 and 8 short texts (under 96 rows: the plain arithmetic over Strassen's
// parts) and all 32 golden texts in one batch (Strassen's seven products). Two kernels
// spliced for a wrong layout (two parameters swapped; the sign bits swapped) must be
// told apart, which shows that the comparison sees the kernel at all and that the long
// batch reaches the Strassen path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { serveDemo, launch, stopServer, openPage, golden, root } from './helpers.mjs';
import { LAYOUT, SECTION, readLayout, spliceKernel, withoutSection } from '../../scripts/dense-kernel.mjs';

const BUILD = path.join(root, '.cache/wasm-build');
const BUILDS = [
  { name: 'plain', shipped: 'localrec_wasm_bg.wasm' },
  { name: 'relaxed', shipped: 'localrec_wasm_relaxed_bg.wasm' },
];
const optModule = (build) => path.join(BUILD, build, 'opt.wasm');

const lines = golden();
const byLength = [...lines].sort((a, b) => a.input_ids.length - b.input_ids.length);
// The one text is long enough for whole 6-row tiles (a lone short tile starts from zeros
// whatever the bias pointer says); the eight shortest end in a part tile.
const BATCHES = {
  one: [lines[2].text],
  eight: byLength.slice(0, 8).map((l) => l.text),
  all: lines.map((l) => l.text),
};
const rows = (texts) => lines.filter((l) => texts.includes(l.text)).reduce((n, l) => n + l.input_ids.length, 0);

let scratch;
let served;
let browser;
before(async () => {
  for (const { name, shipped } of BUILDS) {
    for (const file of [optModule(name), path.join(root, 'pkg/wasm', shipped)]) {
      if (!existsSync(file)) throw new Error(`${file} is missing: run \`make pkg\` (make test does)`);
    }
  }
  scratch = mkdtempSync(path.join(os.tmpdir(), 'localrec-kernel-'));
  served = await serveDemo({ mounts: [{ url: '/kernel-check', dir: scratch }] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  stopServer(served?.server);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Embeds each of BATCHES (as one batch) with `wasm` under the CPU glue; {batch: Uint32 bits} or {error}. */
async function embedBits(wasm) {
  const { page, errors } = await openPage(browser, served.blank);
  try {
    const out = await page.evaluate(
      async ({ wasm, batches }) => {
        const get = async (f) => new Uint8Array(await (await fetch(`/model-f32/${f}`)).arrayBuffer());
        const files = ['config.json', 'tokenizer.json', 'model.safetensors', 'sentence_bert_config.json'];
        const [config, tokenizer, weights, sentence] = await Promise.all(files.map(get));
        // A query string gives each module its own instance of the glue.
        const glue = await import(`/kernel-check/localrec_wasm.js?${wasm}`);
        await glue.default({ module_or_path: `/kernel-check/${wasm}` });
        const encoder = glue.WasmEncoder.loadCpu(config, tokenizer, weights, sentence);
        const bits = {};
        for (const [name, texts] of Object.entries(batches)) {
          const vectors = await encoder.embed(texts, texts.length);
          bits[name] = Array.from(new Uint32Array(vectors.buffer, vectors.byteOffset, vectors.length));
        }
        encoder.free();
        return bits;
      },
      { wasm, batches: BATCHES },
    );
    assert.deepEqual(errors, [], `${wasm}: page errors`);
    return out;
  } catch (e) {
    return { error: String(e.message ?? e).split('\n')[0] };
  } finally {
    await page.close();
  }
}

/** How many values differ between two runs' bits of one batch. */
const differing = (a, b) => {
  assert.equal(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
};

const swap = (list, x, y) => list.map((p) => (p === x ? y : p === y ? x : p));

for (const { name, shipped } of BUILDS) {
  test(`${name} build: the spliced kernel gives the Rust body's bits on batches of 1, 8 and 32 texts, and wrong kernels are told apart`, { timeout: 600_000 }, async () => {
    assert.ok(rows(BATCHES.one) >= 6 && rows(BATCHES.eight) < 96, 'the 1- and 8-text batches fill whole tiles and stay under Strassen\'s 96 rows');
    assert.ok(rows(BATCHES.eight) % 6 !== 0, 'the 8-text batch ends in a part tile');
    assert.ok(rows(BATCHES.all) >= 96, 'the 32-text batch reaches Strassen\'s 96 rows');
    const opt = readFileSync(optModule(name));
    assert.deepEqual(readLayout(opt), { ...LAYOUT, params: [...LAYOUT.params] }, 'the layout Rust wrote is the script\'s');
    const spliced = spliceKernel(opt, name);
    assert.ok(Buffer.from(spliced).equals(readFileSync(path.join(root, 'pkg/wasm', shipped))), `pkg/wasm/${shipped} is the module spliced from ${optModule(name)}`);
    const variants = {
      rust: spliceKernel(opt, 'strip', { relaxedSimd: name === 'relaxed' }),
      spliced,
      'wrong-order': spliceKernel(opt, name, { assumeLayout: { ...LAYOUT, params: swap(LAYOUT.params, 'bias', 'bias2') } }),
      'wrong-signs': spliceKernel(opt, name, { assumeLayout: { ...LAYOUT, subtract_first: LAYOUT.subtract_second, subtract_second: LAYOUT.subtract_first } }),
    };
    copyFileSync(path.join(root, 'pkg/wasm/localrec_wasm.js'), path.join(scratch, 'localrec_wasm.js'));
    const bits = {};
    for (const [variant, bytes] of Object.entries(variants)) {
      const file = `${name}-${variant}.wasm`;
      writeFileSync(path.join(scratch, file), bytes);
      bits[variant] = await embedBits(file);
    }
    for (const variant of ['rust', 'spliced']) assert.ok(!bits[variant].error, `${variant}: ${bits[variant].error}`);
    for (const batch of Object.keys(BATCHES)) {
      assert.equal(differing(bits.rust[batch], bits.spliced[batch]), 0, `batch ${batch}: the spliced kernel differs from the Rust body`);
    }
    // A wrong kernel either fails or gives other bits: for the parameter order, on every
    // batch; for the sign bits, only where Strassen's products subtract.
    const told = (variant, batch) => Boolean(bits[variant].error) || differing(bits.rust[batch], bits[variant][batch]) > 0;
    for (const batch of Object.keys(BATCHES)) assert.ok(told('wrong-order', batch), `batch ${batch}: a kernel with bias and bias2 swapped went unnoticed`);
    assert.ok(!bits['wrong-signs'].error, `wrong-signs: ${bits['wrong-signs'].error}`);
    assert.equal(differing(bits.rust.one, bits['wrong-signs'].one), 0, 'the 1-text batch subtracts nothing');
    assert.equal(differing(bits.rust.eight, bits['wrong-signs'].eight), 0, 'the 8-text batch subtracts nothing');
    assert.ok(told('wrong-signs', 'all'), 'the 32-text batch: a kernel with the sign bits swapped went unnoticed');
  });
}

/** `module` with its layout section replaced by `text`. */
function withLayout(module, text) {
  const bytes = withoutSection(module, SECTION);
  const name = Buffer.from(SECTION);
  const payload = Buffer.from(text);
  const leb = (n) => {
    const out = [];
    do {
      out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
      n = Math.floor(n / 128);
    } while (n > 0);
    return out;
  };
  const body = Buffer.concat([Buffer.from(leb(name.length)), name, payload]);
  return Buffer.concat([bytes, Buffer.from([0, ...leb(body.length)]), body]);
}

test('the splice is refused, naming what differs, when the layout Rust wrote is not the script\'s or is missing', async () => {
  const opt = readFileSync(optModule('plain'));
  const line = (layout) =>
    `localrec_dense_tiles rows=${layout.rows} vecs=${layout.vecs} panel=${layout.panel} subtract_first=${layout.subtract_first} subtract_second=${layout.subtract_second} params=${layout.params.join(',')}`;
  assert.deepEqual(readLayout(withLayout(opt, line(LAYOUT))), { ...LAYOUT, params: [...LAYOUT.params] });
  const cases = [
    [{ ...LAYOUT, rows: 4 }, /rows: Rust has 4, this script 6/],
    [{ ...LAYOUT, params: swap(LAYOUT.params, 'len', 'tiles') }, /params: Rust has a,a_stride,w,tiles,len,/],
    [{ ...LAYOUT, subtract_second: 4 }, /subtract_second: Rust has 4, this script 2/],
  ];
  for (const mode of ['plain', 'relaxed']) {
    for (const [layout, message] of cases) {
      assert.throws(() => spliceKernel(withLayout(opt, line(layout)), mode), message);
    }
    assert.throws(() => spliceKernel(withoutSection(opt, SECTION), mode), /no localrec\.dense_layout section/);
  }
  // The command line: exit status 1, the reason on stderr, no output written.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'localrec-kernel-cli-'));
  try {
    writeFileSync(path.join(dir, 'in.wasm'), withLayout(opt, line({ ...LAYOUT, vecs: 3 })));
    const run = spawnSync(process.execPath, [path.join(root, 'scripts/dense-kernel.mjs'), path.join(dir, 'in.wasm'), 'relaxed', path.join(dir, 'out.wasm')], { encoding: 'utf8' });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /refusing to splice:\n\s+vecs: Rust has 3, this script 2/);
    assert.ok(!existsSync(path.join(dir, 'out.wasm')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

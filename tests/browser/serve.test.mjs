// The demo server (www/serve.mjs, which every browser test serves through) under faults,
// over real HTTP on 127.0.0.1: a file that vanishes or cannot be read mid-request, clients
// that abort downloads, and the Content-Security-Policy every response carries, enforced
// by real Chromium on a probe page and on the demo itself.
//
// Faults in the file system are injected through `createHandler`'s `fs` option (what
// files are opened with); the real kernel still does every read.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as fsp from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHandler } from '../../www/serve.mjs';
import { launch, serveDemo, stopServer, FULL_CATALOG } from './helpers.mjs';

let dir;
let content;
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'localrec-serve-'));
  // Larger than the loopback socket buffers, so that a download aborted after its
  // headers is still being read when the client goes away.
  content = Buffer.alloc(3 << 20);
  for (let i = 0; i < content.length; i += 4) content.writeUInt32LE((i * 2654435761) >>> 0, i);
  await fsp.writeFile(path.join(dir, 'other.txt'), 'other');
  await fsp.mkdir(path.join(dir, 'a-directory'));
});
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A server on a free loopback port with `createHandler(opts)`. */
async function serve(opts = {}) {
  const server = http.createServer(createHandler({ root: dir, mounts: [], quiet: true, ...opts }));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => stopServer(server) };
}

/**
 * One request on its own connection: {status, headers, body, complete} (`complete` false
 * when the server cut the body short), or {error} when no response came.
 */
function request(url, { method = 'GET', headers = {} } = {}) {
  return new Promise((resolve) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', () => {});
      res.on('close', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }),
      );
    });
    req.on('error', (e) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

/** Writes a fresh copy of the test file under `name` and returns its absolute path. */
async function freshFile(name) {
  const file = path.join(dir, name);
  await fsp.writeFile(file, content);
  return file;
}

const openFds = () => readdirSync('/proc/self/fd').length;

/** Waits until at most `limit` descriptors are open (sockets close asynchronously); returns the count. */
async function settleFds(limit, ms = 5000) {
  const until = Date.now() + ms;
  let n = openFds();
  while (n > limit && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    n = openFds();
  }
  return n;
}

const noProc = !existsSync('/proc/self/fd') && 'this system has no /proc/self/fd to count open files in';

test('a file deleted right after the server found it is served whole, then answered 404, and the server keeps serving', { timeout: 30_000 }, async () => {
  const target = await freshFile('vanishing.bin');
  // The file vanishes right after the server's first look at it, whether it looks with
  // stat or with open.
  let looked = false;
  const vanish = async (result) => {
    if (!looked) {
      looked = true;
      await fsp.unlink(target);
    }
    return result;
  };
  const fs = {
    ...fsp,
    stat: async (p, ...rest) => (p === target ? vanish(await fsp.stat(p, ...rest)) : fsp.stat(p, ...rest)),
    open: async (p, ...rest) => (p === target ? vanish(await fsp.open(p, ...rest)) : fsp.open(p, ...rest)),
  };
  const server = await serve({ fs });
  try {
    const first = await request(`${server.origin}/vanishing.bin`);
    assert.ok(looked && !existsSync(target), 'the file was deleted during the request');
    assert.equal(first.status, 200, JSON.stringify(first.error ?? first.status));
    assert.ok(first.complete, 'the response is whole');
    assert.ok(first.body.equals(content), 'the bytes are the file as it was when found');
    assert.equal((await request(`${server.origin}/vanishing.bin`)).status, 404);
    assert.equal((await request(`${server.origin}/other.txt`)).body.toString(), 'other');
  } finally {
    server.close();
  }
});

test('a file that cannot be opened answers 500 and the server keeps serving', { timeout: 30_000 }, async () => {
  const target = await freshFile('forbidden.bin');
  const denied = () => Object.assign(new Error(`EACCES: permission denied, open '${target}'`), { code: 'EACCES' });
  const fs = {
    ...fsp,
    open: async (p, ...rest) => {
      if (p === target) throw denied();
      return fsp.open(p, ...rest);
    },
  };
  const server = await serve({ fs });
  try {
    const res = await request(`${server.origin}/forbidden.bin`);
    assert.equal(res.status, 500, JSON.stringify(res.error ?? res.status));
    assert.equal((await request(`${server.origin}/other.txt`)).body.toString(), 'other');
  } finally {
    server.close();
  }
});

test('a read that fails cuts the response short, closes the file and the server keeps serving', { skip: noProc, timeout: 30_000 }, async () => {
  const target = await freshFile('unreadable.bin');
  const size = (await fsp.stat(target)).size;
  // Opens a directory in the file's place, which the kernel refuses to read (EISDIR),
  // and says it is the file: the failure comes from a real read after the headers.
  let opened = 0;
  const fs = {
    ...fsp,
    open: async (p, ...rest) => {
      if (p !== target) return fsp.open(p, ...rest);
      const handle = await fsp.open(path.join(dir, 'a-directory'), 'r');
      const stat = await fsp.stat(target);
      handle.stat = async () => stat;
      opened++;
      return handle;
    },
  };
  const server = await serve({ fs });
  try {
    const baseline = openFds();
    for (let i = 0; i < 10; i++) {
      // The first read fails before any byte went out: the connection is reset (had some
      // bytes gone, the body would end short of its Content-Length).
      const res = await request(`${server.origin}/unreadable.bin`);
      assert.ok(res.error === 'ECONNRESET' || res.complete === false, `a failed read passed off as a response: ${JSON.stringify({ status: res.status, length: res.body?.length, size })}`);
    }
    assert.equal(opened, 10);
    const after = await settleFds(baseline);
    assert.ok(after <= baseline, `${after - baseline} file handles left open after 10 failed reads`);
    assert.equal((await request(`${server.origin}/other.txt`)).body.toString(), 'other');
  } finally {
    server.close();
  }
});

test('downloads aborted by the client leave no file handle open', { skip: noProc, timeout: 60_000 }, async () => {
  // 32 MiB, sparse: the server is still reading it when each client leaves.
  const big = path.join(dir, 'big.bin');
  await fsp.truncate(await freshFile('big.bin'), 32 << 20);
  const server = await serve();
  try {
    const baseline = openFds();
    const ABORTED = 40;
    for (let i = 0; i < ABORTED; i++) {
      await new Promise((resolve) => {
        const req = http.get(`${server.origin}/big.bin`, { agent: false }, (res) => {
          assert.equal(res.statusCode, 200);
          res.once('data', () => req.destroy());
        });
        req.on('close', resolve);
        req.on('error', () => {});
      });
    }
    const after = await settleFds(baseline);
    assert.ok(after <= baseline, `${after - baseline} file handles left open after ${ABORTED} aborted downloads of ${big}`);
    assert.equal((await request(`${server.origin}/other.txt`)).body.toString(), 'other');
  } finally {
    server.close();
  }
});

/** A CSP header as {directive: [sources]}. */
function directives(header) {
  return Object.fromEntries(
    header.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([name, ...sources]) => [name, sources]),
  );
}

test('every response carries the strict policy: files, ranges, revalidations and errors alike', { timeout: 30_000 }, async () => {
  await fsp.writeFile(path.join(dir, 'page.html'), '<!doctype html><title>x</title>');
  const broken = {
    ...fsp,
    open: async (p, ...rest) => {
      if (p.endsWith('broken.bin')) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
      return fsp.open(p, ...rest);
    },
  };
  const server = await serve({ fs: broken });
  try {
    const page = await request(`${server.origin}/page.html`);
    const responses = {
      200: page,
      206: await request(`${server.origin}/page.html`, { headers: { Range: 'bytes=0-3' } }),
      304: await request(`${server.origin}/page.html`, { headers: { 'If-None-Match': page.headers.etag } }),
      400: await request(`${server.origin}/%E0`),
      404: await request(`${server.origin}/missing.html`),
      405: await request(`${server.origin}/page.html`, { method: 'POST' }),
      416: await request(`${server.origin}/page.html`, { headers: { Range: 'bytes=999-' } }),
      500: await request(`${server.origin}/broken.bin`),
    };
    const policy = page.headers['content-security-policy'];
    assert.ok(policy, 'a page is served with a Content-Security-Policy');
    for (const [status, res] of Object.entries(responses)) {
      assert.equal(res.status, Number(status));
      assert.equal(res.headers['content-security-policy'], policy, `the ${status} response's policy`);
    }
    const d = directives(policy);
    // Nothing but the page's own origin runs code, and wasm may compile.
    assert.deepEqual(d['script-src'], ["'self'", "'wasm-unsafe-eval'"]);
    assert.deepEqual(d['default-src'], ["'self'"]);
    for (const name of ['object-src', 'base-uri', 'frame-ancestors']) assert.deepEqual(d[name], ["'none'"], name);
    for (const [name, sources] of Object.entries(d)) {
      for (const loose of ["'unsafe-inline'", "'unsafe-eval'", '*', 'http:', 'https:']) {
        assert.ok(!sources.includes(loose), `${name} allows ${loose}`);
      }
    }
  } finally {
    server.close();
  }
});

// Chromium, not just the header: what the policy refuses and what the package needs.
test('Chromium enforces the policy: inline script, inline style and eval refused; own modules, module workers, wasm and fetches run', { timeout: 120_000 }, async () => {
  const probe = path.join(dir, 'probe');
  await fsp.mkdir(probe, { recursive: true });
  const files = {
    'index.html': `<!doctype html><html><head><meta charset="utf-8"><title>csp probe</title>
<script>window.inlineRan = true;</script></head>
<body><p id="p" style="color: rgb(255, 0, 0)">probe</p><script type="module" src="main.js"></script></body></html>`,
    'main.js': `const WASM = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
const result = { inlineScript: window.inlineRan === true };
try { result.eval = String(eval('1 + 1')); } catch (e) { result.eval = e.name; }
try { await WebAssembly.compile(WASM); result.wasm = 'compiled'; } catch (e) { result.wasm = e.name; }
result.fetch = await (await fetch('data.txt')).text();
result.worker = await new Promise((resolve) => {
  const w = new Worker('worker.js', { type: 'module' });
  w.onmessage = (e) => resolve(e.data);
  w.onerror = () => resolve('the worker did not start');
});
result.color = getComputedStyle(document.getElementById('p')).color;
window.result = result;
`,
    'worker.js': `const WASM = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
let wasm;
try { await WebAssembly.compile(WASM); wasm = 'compiled'; } catch (e) { wasm = e.name; }
const fetched = await (await fetch('data.txt')).text();
postMessage({ wasm, fetch: fetched });
`,
    'data.txt': 'fetched',
  };
  for (const [name, text] of Object.entries(files)) await fsp.writeFile(path.join(probe, name), text);
  const server = await serve({ root: probe });
  const browser = await launch();
  try {
    const page = await browser.newPage();
    // Registered by the browser itself, before the page's own code, and exempt from the policy.
    await page.addInitScript(() => {
      window.violations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.effectiveDirective));
    });
    await page.goto(`${server.origin}/`);
    await page.waitForFunction(() => window.result, null, { timeout: 60_000 });
    const { result, violations } = await page.evaluate(() => ({ result: window.result, violations: window.violations }));
    assert.deepEqual(result, {
      inlineScript: false,
      eval: 'EvalError',
      wasm: 'compiled',
      fetch: 'fetched',
      worker: { wasm: 'compiled', fetch: 'fetched' },
      color: 'rgb(0, 0, 0)',
    });
    assert.deepEqual([...new Set(violations)].sort(), ['script-src', 'script-src-elem', 'style-src-attr']);
  } finally {
    await browser.close();
    server.close();
  }
});

test('the demo page opens its catalog and recommends under the policy with no violation', { timeout: 300_000 }, async () => {
  if (!existsSync(path.join(FULL_CATALOG, 'manifest.json'))) {
    throw new Error(`${FULL_CATALOG} is missing: run \`make catalog\` (make test does)`);
  }
  const served = await serveDemo({ mounts: [{ url: '/catalog', dir: FULL_CATALOG }] });
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.addInitScript(() => {
      window.violations = [];
      document.addEventListener('securitypolicyviolation', (e) =>
        window.violations.push(`${e.effectiveDirective} ${e.blockedURI}`),
      );
    });
    const response = await page.goto(`${served.url}?backend=cpu`);
    assert.ok(response.headers()['content-security-policy'], 'the demo page is served with its policy');
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    await page.waitForSelector('#recommendations [data-item-id]', { timeout: 120_000 });
    assert.deepEqual(await page.evaluate(() => window.violations), []);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    stopServer(served.server);
  }
});

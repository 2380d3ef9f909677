// Static HTTP server for the demo and the browser tests: correct MIME types (wasm as
// application/wasm), Range requests, ETag/Last-Modified caching headers, the demo's
// Content-Security-Policy, loopback only.
//
//   node www/serve.mjs [--port N] [--host 127.0.0.1] [--mount /url=dir ...] [root]
//
// PORT in the environment overrides the default port 8080. The URL is printed once the
// server accepts connections.
//
// A file is opened once and everything (size, headers, bytes) comes from that open
// handle, so a file deleted or renamed over while it is served is served whole, as it
// was when opened (or answered 404 if it was gone before); a failed open answers 500, a
// failed read cuts the response short; an aborted request closes its handle
// (stream.pipeline). The process never dies of a request.
import { createServer } from 'node:http';
import * as nodeFs from 'node:fs/promises';
import { pipeline } from 'node:stream';
import path from 'node:path';

/**
 * What the demo page needs and nothing more: its own scripts, styles and workers, wasm
 * compilation ('wasm-unsafe-eval': WebAssembly.compile is refused without it), fetches to
 * its own origin (catalog, model, package), and the `data:` favicon. No inline script or
 * style, no eval, no plugins, no <base>, no framing; its forms are handled by script and
 * never submitted.
 */
export const DEMO_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "style-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
  '.bin': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.ts': 'text/plain; charset=utf-8',
};

export function parseArgs(argv) {
  const opts = { port: Number(process.env.PORT || 8080), host: '127.0.0.1', mounts: [], root: 'www', quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') opts.port = Number(argv[++i]);
    else if (a === '--host') opts.host = argv[++i];
    else if (a === '--mount') {
      const [url, dir] = argv[++i].split('=');
      opts.mounts.push({ url: url.replace(/\/$/, ''), dir });
    } else if (a === '--quiet') opts.quiet = true;
    else opts.root = a;
  }
  return opts;
}

function resolvePath(opts, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  // Longest mount first, so /model/web wins over /model.
  const mounts = [...opts.mounts].sort((a, b) => b.url.length - a.url.length);
  for (const m of mounts) {
    if (decoded === m.url || decoded.startsWith(m.url + '/')) {
      return safeJoin(m.dir, decoded.slice(m.url.length));
    }
  }
  return safeJoin(opts.root, decoded);
}

function safeJoin(dir, rel) {
  const base = path.resolve(dir);
  const full = path.resolve(base, '.' + path.posix.normalize('/' + rel));
  return full === base || full.startsWith(base + path.sep) ? full : null;
}

/** Errors of `open` that mean "there is no such file here" rather than "it failed". */
const NOT_FOUND = new Set(['ENOENT', 'ENOTDIR', 'ENAMETOOLONG', 'ELOOP']);

/**
 * Opens `file` (a directory's index.html for a directory) and stats the open handle.
 * Resolves to null when there is no regular file to serve; rejects when opening or
 * stating failed otherwise. The caller owns the handle.
 */
async function openFile(files, file) {
  for (let name = file, depth = 0; depth < 2; name = path.join(name, 'index.html'), depth++) {
    let handle;
    try {
      handle = await files.open(name, 'r');
    } catch (e) {
      if (NOT_FOUND.has(e?.code)) return null;
      throw e;
    }
    try {
      const stat = await handle.stat();
      if (stat.isFile()) return { handle, stat, name };
      if (!stat.isDirectory()) {
        await handle.close();
        return null;
      }
    } catch (e) {
      await handle.close().catch(() => {});
      throw e;
    }
    await handle.close();
  }
  return null;
}

/**
 * What a CDN sends so that pages of any origin may use its files: the package's modules
 * and workers, wasm, catalogs and models (fetched with CORS by the package's workers,
 * Range included).
 */
const CDN_HEADERS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Content-Length, Content-Range, Accept-Ranges, ETag',
  'Cross-Origin-Resource-Policy': 'cross-origin',
};

/**
 * The request handler behind `startServer`, for servers that add routes of their own.
 * `opts.csp`: the Content-Security-Policy of every response (default `DEMO_CSP`; null for
 * none). `opts.cdn`: serve as a CDN does (CORS for every origin, preflights answered, no
 * cross-origin isolation of its own). `opts.isolate`: false for no COOP/COEP. `opts.fs`: what files are opened with (default
 * node:fs/promises; tests pass one that injects faults).
 */
export function createHandler(opts) {
  const files = opts.fs ?? nodeFs;
  const csp = opts.csp === undefined ? DEMO_CSP : opts.csp;
  const handle = async (req, res) => {
    if (csp) res.setHeader('Content-Security-Policy', csp);
    if (opts.cdn) {
      for (const [name, value] of Object.entries(CDN_HEADERS)) res.setHeader(name, value);
    }
    const url = new URL(req.url, 'http://localhost');
    if (opts.cdn && req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Methods': 'GET, HEAD', 'Access-Control-Allow-Headers': 'Range', 'Access-Control-Max-Age': '600' }).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const requested = resolvePath(opts, url.pathname);
    if (!requested) {
      res.writeHead(400).end('bad path');
      return;
    }
    const opened = await openFile(files, requested);
    if (!opened) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    const { handle: fileHandle, stat, name: file } = opened;
    let streaming = false;
    try {
      const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
      const headers = {
        'Content-Type': MIME[path.extname(file).toLowerCase()] || 'application/octet-stream',
        'Accept-Ranges': 'bytes',
        ETag: etag,
        'Last-Modified': stat.mtime.toUTCString(),
        // Revalidate every time: the demo is rebuilt often; the library's own Cache API
        // layer, not HTTP caching, is what makes reloads fast and offline-capable.
        'Cache-Control': 'no-cache',
        // Cross-origin isolation, so pages may use SharedArrayBuffer (wasm threads);
        // `isolate: false` for a site that does without (a CDN never isolates).
        ...(opts.cdn || opts.isolate === false ? {} : {
          'Cross-Origin-Opener-Policy': 'same-origin',
          'Cross-Origin-Embedder-Policy': 'require-corp',
          'Cross-Origin-Resource-Policy': 'same-origin',
        }),
      };
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, headers).end();
        return;
      }
      let start = 0;
      let end = stat.size - 1;
      let status = 200;
      const range = req.headers.range;
      if (range) {
        const m = /^bytes=(\d*)-(\d*)$/.exec(range);
        if (!m || (m[1] === '' && m[2] === '')) {
          res.writeHead(416, { 'Content-Range': `bytes */${stat.size}` }).end();
          return;
        }
        if (m[1] === '') {
          start = Math.max(0, stat.size - Number(m[2]));
        } else {
          start = Number(m[1]);
          if (m[2] !== '') end = Math.min(end, Number(m[2]));
        }
        if (start > end || start >= stat.size) {
          res.writeHead(416, { 'Content-Range': `bytes */${stat.size}` }).end();
          return;
        }
        status = 206;
        headers['Content-Range'] = `bytes ${start}-${end}/${stat.size}`;
      }
      headers['Content-Length'] = String(stat.size === 0 ? 0 : end - start + 1);
      res.writeHead(status, headers);
      if (req.method === 'HEAD' || stat.size === 0) {
        res.end();
        return;
      }
      // The stream owns the handle from here (autoClose); pipeline destroys it, and so
      // closes the handle, when the client goes away or a read fails (the response is
      // then cut short, so the client cannot take it for the whole file).
      streaming = true;
      pipeline(fileHandle.createReadStream({ start, end }), res, (err) => {
        if (err && err.code !== 'ERR_STREAM_PREMATURE_CLOSE' && !opts.quiet) {
          console.error(`serve: reading ${file}: ${err.message}`);
        }
      });
    } finally {
      if (!streaming) await fileHandle.close().catch(() => {});
    }
  };
  return (req, res) =>
    handle(req, res).catch((err) => {
      if (!opts.quiet) console.error(`serve: ${req.method} ${req.url}: ${err?.message ?? err}`);
      if (res.headersSent) res.destroy();
      else res.writeHead(500, { 'Content-Type': 'text/plain' }).end('cannot read this file');
    });
}

export function startServer(opts) {
  const server = createServer(createHandler(opts));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve(server));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const opts = parseArgs(process.argv.slice(2));
  startServer(opts).then(
    (server) => {
      const { port } = server.address();
      console.log(`localrec demo: http://${opts.host}:${port}/`);
    },
    (err) => {
      console.error(`serve: cannot listen on ${opts.host}:${opts.port}: ${err.message}`);
      process.exit(1);
    },
  );
}

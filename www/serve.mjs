// Static HTTP server for the demo and the browser tests: correct MIME types (wasm as
// application/wasm), Range requests, ETag/Last-Modified caching headers, loopback only.
//
//   node www/serve.mjs [--port N] [--host 127.0.0.1] [--mount /url=dir ...] [root]
//
// PORT in the environment overrides the default port 8080. The URL is printed once the
// server accepts connections.
import { createServer } from 'node:http';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';

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

/** The request handler behind `startServer`, for servers that add routes of their own. */
export function createHandler(opts) {
  return async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    let file = resolvePath(opts, url.pathname);
    if (!file) {
      res.writeHead(400).end('bad path');
      return;
    }
    let stat;
    try {
      stat = await fs.stat(file);
      if (stat.isDirectory()) {
        file = path.join(file, 'index.html');
        stat = await fs.stat(file);
      }
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
    const headers = {
      'Content-Type': MIME[path.extname(file).toLowerCase()] || 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'Last-Modified': stat.mtime.toUTCString(),
      // Revalidate every time: the demo is rebuilt often; the library's own Cache API
      // layer, not HTTP caching, is what makes reloads fast and offline-capable.
      'Cache-Control': 'no-cache',
      // Cross-origin isolation, so pages may use SharedArrayBuffer (wasm threads).
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
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
    createReadStream(file, { start, end }).pipe(res);
  };
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

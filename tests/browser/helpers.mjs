// Shared set-up for browser tests: the project's own static server on a free loopback
// port and Debian's headless Chromium driven by playwright-core (never a downloaded browser).
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../www/serve.mjs';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--enable-unsafe-webgpu',
];

/** Serves www/ with pkg/ and the web model mounted, as `make demo` does. */
export async function serveDemo() {
  const server = await startServer({
    port: 0,
    host: '127.0.0.1',
    root: path.join(root, 'www'),
    mounts: [
      { url: '/pkg', dir: path.join(root, 'pkg') },
      { url: '/model', dir: path.join(root, '.cache/web-model/all-MiniLM-L6-v2') },
      { url: '/model-f32', dir: path.join(root, '.cache/models/all-MiniLM-L6-v2') },
    ],
  });
  const { port } = server.address();
  return { server, url: `http://127.0.0.1:${port}/` };
}

export async function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

export function golden() {
  return readFileSync(path.join(root, 'tests/fixtures/minilm_golden.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

export function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

// The npm package as a user gets it: `npm pack pkg/` holds every file the package needs,
// and the tarball, installed into a fresh app, runs in headless Chromium from a plain HTML
// page with no bundler. Neither reads the source tree. Each bundler: bundlers.test.mjs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { root } from './helpers.mjs';
import { assertRecommends, installedAppSession, unbundledOutcome } from './app-helpers.mjs';

const session = installedAppSession();

test('the packed tarball holds every file the package lists and imports, and no benchmark code', () => {
  const { files } = session;
  const manifest = JSON.parse(readFileSync(path.join(root, 'pkg/package.json'), 'utf8'));
  for (const f of manifest.files) assert.ok(files.includes(f), `the tarball holds ${f}`);
  // Every module the package imports is in it (a file left out of "files" breaks only the installed copy).
  for (const f of files.filter((x) => x.endsWith('.js'))) {
    const source = readFileSync(path.join(root, 'pkg', f), 'utf8');
    for (const [, dep] of source.matchAll(/(?:import|from)\s*\(?\s*'(\.\/[^']+)'/g)) {
      assert.ok(files.includes(path.posix.join(path.posix.dirname(f), dep)), `${f} imports ${dep}, which the tarball lacks`);
    }
  }
  // Measuring code does not ship.
  const glue = readFileSync(path.join(root, 'pkg/wasm/localrec_wasm.js'), 'utf8');
  assert.ok(!/WasmScorerBench|benchDense/.test(glue), 'the package exports no benchmark code');
});

test('the packed tarball works from a plain HTML page with no bundler', async () => {
  assertRecommends(await unbundledOutcome(session.browser, session.app));
});

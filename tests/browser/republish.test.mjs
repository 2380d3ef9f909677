// A catalog republished on its CDN: shards are content-addressed and written beside the
// old ones, the manifest last (`localrec build`), old files removed by `localrec gc` after
// a grace period. In real Chromium: a returning visitor gets only the new version and keeps
// their profile; a load under way when the catalog is replaced finishes on the new version.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { serveDemo, launch, openPage, stopServer, buildSmallCatalog, LOCALREC_BIN } from './helpers.mjs';

let served;
let browser;
/** Catalog folders by the name they are served under. */
const dirs = {};
// Per catalog name (the folder the test server mounts at /<name>/): requests it holds back
// until released, and files it answers with other bytes (a CDN mixing versions).
const held = new Map();
const mixed = new Map();

function intercept(req, res) {
  const pathname = new URL(req.url, 'http://localhost').pathname;
  const gate = held.get(pathname);
  if (gate) {
    held.delete(pathname);
    gate.arrived();
    // Let through late, as things are then (a mixed answer included).
    gate.released.then(() => intercept(req, res) || served.handle(req, res));
    return true;
  }
  const other = mixed.get(pathname);
  if (other) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': other.length });
    res.end(other);
    return true;
  }
  return false;
}

/** Holds the next request for `pathname`; `arrived` resolves when it comes, `release()` lets it through. */
function hold(pathname) {
  let release;
  let arrived;
  const gate = {
    released: new Promise((r) => (release = r)),
    arrivedPromise: new Promise((r) => (arrived = r)),
  };
  gate.arrived = arrived;
  held.set(pathname, gate);
  return { arrived: gate.arrivedPromise, release };
}

const manifestOf = (dir) => JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
const idsOf = (dir) => new Set(readFileSync(path.join(dir, '..', 'movies.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[0]));
const gc = (dir, grace) => JSON.parse(execFileSync(LOCALREC_BIN, ['gc', dir, '--grace', grace, '--json']).toString());

const V1 = { movies: 240, shardBytes: 30_000 };
const V2 = { movies: 200, shardBytes: 30_000, skip: 80, republish: true };

before(async () => {
  for (const name of ['returning', 'midway', 'mixing', 'hostile']) dirs[name] = buildSmallCatalog(`republish-${name}`, V1);
  served = await serveDemo({ intercept, mounts: Object.entries(dirs).map(([name, dir]) => ({ url: `/${name}`, dir })) });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  stopServer(served?.server);
});

test('a returning visitor after a republish gets only the new version, keeps their profile, and events on items gone are ignored with a warning', { timeout: 600_000 }, async () => {
  const context = await browser.newContext();
  const dir = dirs.returning;
  const v1 = manifestOf(dir);
  const v1Ids = idsOf(dir);
  const visit = async () => {
    const { page, errors } = await openPage(context, served.blank);
    const out = await page.evaluate(async () => {
      const { Recommender } = await import('/pkg/index.js');
      const rec = await Recommender.open('/returning/', { backend: 'cpu', profileName: 'returning', wait: 'all' });
      if ((await rec.profile.export()).events.length === 0) {
        // First visit: one item that stays (id 100) and one that the new version drops (id 2).
        await rec.record({ itemId: '100', type: 'like' });
        await rec.record({ itemId: '2', type: 'like' });
      }
      const top = await rec.recommend({ k: 20 });
      const events = (await rec.profile.export()).events.map((e) => e.itemId);
      const status = rec.catalog.status;
      const manifest = rec.catalog.manifest;
      await rec.close();
      const cache = await caches.open('localrec-catalog-v1');
      const cached = (await cache.keys()).map((r) => new URL(r.url).pathname).filter((p) => p.startsWith('/returning/'));
      return { ids: top.map((r) => r.itemId), warnings: top.warnings, events, items: status.itemsLoaded, complete: status.complete, shards: manifest.shards.map((s) => s.path), cached };
    });
    await page.close();
    assert.deepEqual(errors, []);
    return out;
  };

  const first = await visit();
  assert.equal(first.items, v1.items);
  assert.ok(first.ids.every((id) => v1Ids.has(id)));
  assert.deepEqual(first.warnings, []);

  // The publisher rebuilds the catalog over the published one: items 81..280 instead of 1..240.
  buildSmallCatalog('republish-returning', V2);
  const v2 = manifestOf(dir);
  const v2Ids = idsOf(dir);
  assert.ok(v1Ids.has('2') && !v2Ids.has('2') && v2Ids.has('100'), 'item 2 is gone, item 100 stays');
  served.requests.length = 0;

  const second = await visit();
  assert.deepEqual(second.events, ['100', '2'], 'the profile is kept whole, events on items gone included');
  assert.equal(second.complete, true);
  assert.equal(second.items, v2.items);
  assert.deepEqual(second.shards, v2.shards.map((s) => s.path), 'the page holds the new manifest');
  assert.ok(second.ids.length === 20 && second.ids.every((id) => v2Ids.has(id)), 'every result is an item of the new version');
  assert.ok(second.ids.some((id) => !v1Ids.has(id)), 'items only the new version has are recommended');
  assert.ok(second.warnings.some((w) => w.includes('"2"')), `a warning names the item gone: ${JSON.stringify(second.warnings)}`);
  assert.ok(served.requests.some((r) => r.path === '/returning/manifest.json'), 'the manifest was asked for again');
  assert.deepEqual(second.cached.sort(), v2.shards.map((s) => `/returning/${s.path}`).sort(), 'the old version\'s shards were evicted from Cache Storage');
  await context.close();
});

for (const how of ['gone', 'mixed']) {
  const name = how === 'gone' ? 'midway' : 'mixing';
  const what = how === 'gone'
    ? 'the old shards removed by localrec gc (404)'
    : 'a CDN answering an old shard\'s URL with other bytes';
  test(`a republish in the middle of a load (${what}): the loader reads the manifest again and finishes on the new version`, { timeout: 600_000 }, async () => {
    const dir = dirs[name];
    const v1 = manifestOf(dir);
    assert.ok(v1.shards.length >= 4, 'several shards');
    const gate = hold(`/${name}/${v1.shards[1].path}`);
    const { page, errors } = await openPage(browser, served.blank);
    const opening = page.evaluate(async (url) => {
      const { Catalog } = await import('/pkg/index.js');
      window.catalog = await Catalog.open(url, { wait: 'first', backoffMs: 10 });
      return { items: window.catalog.manifest.items, shards: window.catalog.manifest.shards.length };
    }, `/${name}/`);
    const opened = await opening;
    assert.equal(opened.items, v1.items);
    await gate.arrived;

    // The catalog is republished while shard 1 is on its way.
    buildSmallCatalog(`republish-${name}`, V2);
    const v2 = manifestOf(dir);
    const v2Ids = idsOf(dir);
    if (how === 'gone') {
      const removed = gc(dir, '0');
      assert.ok(removed.removed.includes(v1.shards[1].path), JSON.stringify(removed));
    } else {
      mixed.set(`/${name}/${v1.shards[1].path}`, readFileSync(path.join(dir, v2.shards[1].path)));
    }
    served.requests.length = 0;
    gate.release();

    const out = await page.evaluate(async () => {
      const final = await settle(() => window.catalog.loaded, 120_000);
      const top = await window.catalog.recommend({ events: [{ itemId: '100', type: 'like' }], k: 20 });
      const m = window.catalog.manifest;
      await window.catalog.close();
      return { final, ids: top.results.map((r) => r.itemId), warnings: top.warnings, items: m.items, shards: m.shards.map((s) => s.path) };
    });
    mixed.clear();
    await page.close();
    assert.ok(out.final.ok, JSON.stringify(out.final));
    assert.equal(out.final.value.complete, true, JSON.stringify(out.final.value));
    assert.equal(out.final.value.itemsLoaded, v2.items, 'every item of the new version, none of the old');
    assert.deepEqual(out.final.value.failed, []);
    assert.deepEqual(out.shards, v2.shards.map((s) => s.path), 'the catalog says it holds the new version');
    assert.ok(out.ids.length === 20 && out.ids.every((id) => v2Ids.has(id)), 'results come from the new version only');
    const manifests = served.requests.filter((r) => r.path === `/${name}/manifest.json`);
    assert.equal(manifests.length, 1, 'the manifest was fetched once more');
    assert.deepEqual(errors, []);
  });
}

test('a bad shard whose manifest was replaced by one that does not validate is reported as before; the load settles on the version it had', { timeout: 600_000 }, async () => {
  const dir = dirs.hostile;
  const v1 = manifestOf(dir);
  const gate = hold(`/hostile/${v1.shards[1].path}`);
  const { page, errors } = await openPage(browser, served.blank);
  await page.evaluate(async () => {
    const { Catalog } = await import('/pkg/index.js');
    window.catalog = await Catalog.open('/hostile/', { wait: 'first', backoffMs: 10 });
  });
  await gate.arrived;
  mixed.set(`/hostile/${v1.shards[1].path}`, Buffer.from('not the shard'));
  mixed.set('/hostile/manifest.json', Buffer.from('{"format": "localrec-catalog", "version": 1, "shards": "nonsense"}'));
  served.requests.length = 0;
  gate.release();
  const out = await page.evaluate(async () => {
    const final = await settle(() => window.catalog.loaded, 120_000);
    const m = window.catalog.manifest;
    await window.catalog.close();
    return { final, shards: m.shards.map((s) => s.path) };
  });
  mixed.clear();
  await page.close();
  assert.ok(out.final.ok, JSON.stringify(out.final));
  assert.equal(out.final.value.settled, true);
  assert.deepEqual(out.final.value.failed.map((f) => [f.shard, f.code]), [[1, 'localrec/format']], 'the bytes are no shard at all');
  assert.equal(out.final.value.itemsLoaded, v1.items - v1.shards[1].items, 'every other shard of the version it had');
  assert.deepEqual(out.shards, v1.shards.map((s) => s.path));
  assert.equal(served.requests.filter((r) => r.path === '/hostile/manifest.json').length, 1, 'the manifest was read once more');
  assert.deepEqual(errors, []);
});

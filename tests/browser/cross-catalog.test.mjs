// One profile across catalogs, in headless Chromium, on two catalogs built from the two
// genre halves of ml-latest-small (`localrec domains`, then `localrec build` of each
// half: `make domain-catalogs`, which `make test` runs first). Likes recorded against A
// move B's recommendations toward the liked items' neighbours, explained by the A item
// and catalog, with no request beyond the static files of both catalogs; export, clear
// and import cover both catalogs' events and item snapshots; a corrupt snapshot is refused
// and changes nothing; events imported without snapshots get them from their catalog's
// next recommend(); a catalog of another encoder leaves the foreign events out with a
// warning; a database written before snapshots is upgraded with its events kept.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SETTLE_SCRIPT, launch, root, serveDemo, stopServer } from './helpers.mjs';

export const DOMAIN_A = path.join(root, '.cache/catalogs/ml-latest-small-a');
export const DOMAIN_B = path.join(root, '.cache/catalogs/ml-latest-small-b');
const NAME_A = 'ml-latest-small-a';
const NAME_B = 'ml-latest-small-b';
/** Catalog B again under another name, its manifest naming another encoder. */
const OTHER = { name: 'ml-latest-small-b-other', encoder: 'another-encoder' };

const session = { served: null, browser: null };

before(async () => {
  for (const dir of [DOMAIN_A, DOMAIN_B]) {
    if (!existsSync(path.join(dir, 'manifest.json'))) throw new Error(`${dir} is missing: run \`make domain-catalogs\` (make test does)`);
  }
  const manifest = JSON.parse(readFileSync(path.join(DOMAIN_B, 'manifest.json'), 'utf8'));
  const other = JSON.stringify({ ...manifest, name: OTHER.name, encoder: { ...manifest.encoder, name: OTHER.encoder } });
  session.served = await serveDemo({
    mounts: [{ url: '/a', dir: DOMAIN_A }, { url: '/b', dir: DOMAIN_B }, { url: '/other', dir: DOMAIN_B }],
    intercept(req, res) {
      if (new URL(req.url, 'http://localhost').pathname !== '/other/manifest.json') return false;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
      res.end(other);
      return true;
    },
  });
  session.browser = await launch();
});

after(async () => {
  await session.browser?.close();
  stopServer(session.served?.server);
});

/** A blank page of the test origin in a fresh context (its own IndexedDB), with every request it or its workers make. */
async function pageIn() {
  const ctx = await session.browser.newContext();
  const page = await ctx.newPage();
  await page.addInitScript(SETTLE_SCRIPT);
  const errors = [];
  const requests = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.text().includes('localrec: internal error')) errors.push(m.text());
  });
  page.on('request', (r) => requests.push({ method: r.method(), url: r.url(), headers: r.headers(), body: r.postData() }));
  await page.goto(`${session.served.url}test-fixtures/blank.html`);
  return { ctx, page, errors, requests };
}

test('likes recorded against catalog A move catalog B toward the liked items\' neighbours, the reason names the A item and catalog, and nothing is sent', async (t) => {
  const { ctx, page, errors, requests } = await pageIn();
  const marks = {};
  await page.evaluate(async () => {
    const { Recommender } = await import('/pkg/index.js');
    window.a = await Recommender.open('/a/', { backend: 'cpu', wait: 'all', profileName: 'site' });
    window.b = await Recommender.open('/b/', { backend: 'cpu', wait: 'all', profileName: 'site' });
  });
  marks.opened = requests.length;
  const r = await page.evaluate(async () => {
    const { a, b } = window;
    const plain = await b.recommend({ k: 10 });
    // One taste, liked in A: the Star Wars trilogy (Action first: domain A). Its
    // neighbours in B are the science fiction B holds (Sci-Fi, Horror or Thriller first).
    const liked = ['260', '1196', '1210'];
    for (const itemId of liked) await a.record({ itemId, type: 'like' });
    const moved = await b.recommend({ k: 10 });
    // Nearness by embedding: A's rows for the liked items, B's for its results.
    const likedRows = await Promise.all(liked.map((id) => a.catalog.embedding(id)));
    const cos = (x, y) => {
      let dot = 0;
      let nx = 0;
      let ny = 0;
      for (let i = 0; i < x.length; i++) {
        dot += x[i] * y[i];
        nx += x[i] * x[i];
        ny += y[i] * y[i];
      }
      return dot / Math.sqrt(nx * ny);
    };
    const nearness = async (list) => {
      const rows = await Promise.all(list.map((x) => b.catalog.embedding(x.itemId)));
      return rows.map((row) => Math.max(...likedRows.map((l) => cos(row, l))));
    };
    const centroid = likedRows[0].map((_, i) => likedRows.reduce((s, row) => s + row[i], 0) / likedRows.length);
    const neighbours = (await b.catalog.nearest(centroid, { k: 100 })).results.map((x) => x.itemId);
    const titles = Object.fromEntries(await Promise.all(liked.map(async (id) => [id, (await a.catalog.item(id)).title])));
    const summaryB = await b.profile.summary();
    const exported = await b.profile.export();
    return {
      liked,
      titles,
      plain: plain.map((x) => x.itemId),
      moved: moved.map((x) => ({ itemId: x.itemId, because: x.because })),
      warnings: moved.warnings,
      plainNear: await nearness(plain),
      movedNear: await nearness(moved),
      neighbours,
      summaryB,
      snapshots: exported.snapshots.map((s) => ({ catalog: s.catalog, itemId: s.itemId, dims: s.encoder.dims, chars: s.values.length })),
    };
  });
  // The page's element shows the reason.
  await page.evaluate(async () => {
    await import('/pkg/index.js');
    const el = document.createElement('localrec-recommendations');
    el.setAttribute('catalog', '/b/');
    el.setAttribute('profile-name', 'site');
    el.setAttribute('backend', 'cpu');
    document.body.append(el);
  });
  await page.waitForFunction(() => document.querySelector('localrec-recommendations')?.results?.length === 10, null, { timeout: 120_000 });
  const reasons = await page.evaluate(() => [...document.querySelector('localrec-recommendations').shadowRoot.querySelectorAll('.reason')].map((e) => e.textContent));
  marks.acted = requests.length;
  await page.evaluate(async () => {
    await window.a.close();
    await window.b.close();
  });
  await ctx.close();

  const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.notDeepEqual(r.moved.map((x) => x.itemId), r.plain, 'the likes in A changed B\'s recommendations');
  const near = r.moved.filter((x) => r.neighbours.includes(x.itemId)).length;
  const nearBefore = r.plain.filter((id) => r.neighbours.includes(id)).length;
  t.diagnostic(`liked in A: ${r.liked.map((id) => r.titles[id]).join('; ')}; B's top 10 nearness (mean of each result's best cosine to a liked item) ${mean(r.plainNear).toFixed(3)} -> ${mean(r.movedNear).toFixed(3)}; among B's 100 items nearest the liked ones: ${nearBefore} -> ${near}; ${r.moved.filter((x) => x.because?.foreign).length} explained by A; top 10: ${r.moved.map((x) => x.itemId).join(' ')}`);
  assert.ok(mean(r.movedNear) > mean(r.plainNear) + 0.02, `B's top 10 moved nearer to the liked items: ${mean(r.plainNear)} -> ${mean(r.movedNear)}`);
  assert.ok(near > nearBefore, `more of B's top 10 are among its 100 items nearest the liked ones (${nearBefore} -> ${near})`);
  assert.ok(r.moved.every((x) => !r.liked.includes(x.itemId) || r.neighbours.includes(x.itemId)));
  const foreign = r.moved.filter((x) => x.because?.foreign);
  assert.ok(foreign.length > 0, `a result is explained by an A event: ${JSON.stringify(r.moved.map((x) => x.because))}`);
  for (const { because } of foreign) {
    assert.equal(because.catalog, NAME_A);
    assert.equal(because.type, 'like');
    assert.ok(r.liked.includes(because.itemId), because.itemId);
    assert.equal(because.title, r.titles[because.itemId]);
    assert.ok(Number.isFinite(because.contribution));
  }
  assert.deepEqual(r.warnings, [], 'the A events are used, not left out');
  assert.equal(r.summaryB.events, 3, 'B sees the one profile of the site');
  assert.deepEqual(r.summaryB.eventsByCatalog, { [NAME_A]: 3 });
  assert.equal(r.snapshots.length, 3, 'one snapshot per liked item');
  assert.ok(r.snapshots.every((s) => s.catalog === NAME_A && s.dims === 384 && s.chars === 512));
  assert.ok(
    reasons.some((text) => Object.values(r.titles).some((title) => text === `Because you liked ${title} (${NAME_A})`)),
    `the element shows the reason with the A title and catalog: ${JSON.stringify(reasons)}`,
  );
  // Privacy: GETs of static files of both catalogs (and the package) only, none caused by
  // recording, recommending or exporting.
  assert.deepEqual(errors, []);
  const acted = requests.slice(marks.opened, marks.acted).map((q) => new URL(q.url).pathname);
  assert.ok(acted.every((p) => p.startsWith('/b/') || p.startsWith('/pkg/')), `record/recommend/export made requests: ${JSON.stringify(acted)}`);
  for (const q of requests) {
    const u = new URL(q.url);
    assert.equal(q.method, 'GET', q.url);
    assert.equal(q.body ?? null, null, q.url);
    assert.equal(u.origin, new URL(session.served.url).origin, 'nothing leaves for another origin');
    assert.equal(u.search, '', `no query string: ${q.url}`);
    assert.ok(/^\/(pkg|a|b|test-fixtures)\//.test(u.pathname), `a static file: ${u.pathname}`);
    for (const id of r.liked) assert.ok(!u.pathname.includes(`/${id}`) && !JSON.stringify(q.headers).includes(r.titles[id]), q.url);
  }
  const catalogFiles = (dir, name) => {
    const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    return [`/${name}/manifest.json`, ...m.shards.map((s) => `/${name}/${s.path}`)];
  };
  const paths = new Set(requests.map((q) => new URL(q.url).pathname));
  for (const p of [...catalogFiles(DOMAIN_A, 'a'), ...catalogFiles(DOMAIN_B, 'b')]) assert.ok(paths.has(p), `the log holds ${p}`);
});

test('export, clear and import cover both catalogs\' events and snapshots; a version 1 document still imports; a corrupt snapshot is refused and nothing changes; a catalog\'s recommend() takes the snapshots its events lack, and a failure doing so is a warning', async () => {
  const { ctx, page, errors } = await pageIn();
  const r = await page.evaluate(async () => {
    const { Recommender } = await import('/pkg/index.js');
    const a = await Recommender.open('/a/', { backend: 'cpu', wait: 'all', profileName: 'io' });
    const b = await Recommender.open('/b/', { backend: 'cpu', wait: 'all', profileName: 'io' });
    const [x, y] = await a.catalog.items({ limit: 2, quantized: true });
    const [z] = await b.catalog.items({ limit: 1, quantized: true });
    await a.record({ itemId: x.itemId, type: 'like' });
    await a.record({ itemId: y.itemId, type: 'rate', value: 4.5 });
    await a.record({ itemId: x.itemId, type: 'view' });
    await b.record({ itemId: z.itemId, type: 'purchase' });
    await b.record({ itemId: 'not-in-b', type: 'view' });
    const exported = await b.profile.export();
    const text = JSON.stringify(exported);
    await a.profile.clear();
    const cleared = { a: await a.profile.summary(), b: await b.profile.summary(), doc: await b.profile.export() };
    const imported = await a.profile.import(text);
    const again = await b.profile.export();
    const afterImport = await b.recommend({ k: 5 });
    const snapshot = (doc, itemId) => doc.snapshots.find((s) => s.itemId === itemId);
    const decode = (s) => Array.from(atob(s.values), (c) => (c.charCodeAt(0) << 24) >> 24);
    // Refusals: each leaves the profile as it was.
    const good = JSON.parse(text);
    const first = good.snapshots[0];
    const withSnapshot = (patch) => ({ ...good, snapshots: [{ ...first, ...patch }, ...good.snapshots.slice(1)] });
    const bad = {
      shortValues: withSnapshot({ values: first.values.slice(0, -4) }),
      notBase64: withSnapshot({ values: `${'!'.repeat(first.values.length)}` }),
      tooWide: withSnapshot({ encoder: { name: first.encoder.name, dims: 1_000_000 } }),
      dimsMismatch: withSnapshot({ encoder: { name: first.encoder.name, dims: 385 } }),
      infiniteScale: withSnapshot({ scale: Number.POSITIVE_INFINITY }),
      noEncoderName: withSnapshot({ encoder: { dims: 384 } }),
      encoderNotObject: withSnapshot({ encoder: 'all-MiniLM-L6-v2' }),
      duplicate: { ...good, snapshots: [first, first] },
      badCatalog: { ...good, events: [{ ...good.events[0], catalog: 7 }] },
    };
    const refused = {};
    for (const [name, doc] of Object.entries(bad)) {
      const outcome = await settle(() => a.profile.import(doc));
      refused[name] = { ok: outcome.ok, code: outcome.code, message: outcome.message, doc: await b.profile.export() };
    }
    // A version 1 document: one catalog's events, no snapshots.
    const v1 = {
      format: 'localrec-profile', version: 1, exportedAt: new Date().toISOString(), catalog: 'ml-latest-small-b', encoder: 'all-MiniLM-L6-v2',
      events: [{ itemId: z.itemId, type: 'like', time: 1_700_000_000_000 }], interests: [],
    };
    const fromV1 = await b.profile.import(v1);
    const v1Export = await b.profile.export();
    const v1Recs = await b.recommend({ k: 5 });
    // One of catalog A: its items' embeddings were never stored, so B cannot use them.
    await b.profile.import({ ...v1, catalog: 'ml-latest-small-a', events: [{ itemId: x.itemId, type: 'like' }, { itemId: y.itemId, type: 'like' }] });
    const unsnapped = await b.recommend({ k: 5 });
    // Once A ranks with its shards loaded, it stores the snapshots those events lack, and B uses them.
    const beforeFill = (await b.profile.export()).snapshots.length;
    // A failure while taking them (here the catalog's worker) costs the answer nothing.
    a.catalog.quantizedItem = async () => {
      throw new Error('worker lost');
    };
    const aFailed = await a.recommend({ k: 5 });
    delete a.catalog.quantizedItem;
    const afterFailed = (await b.profile.export()).snapshots.length;
    const aRecs = await a.recommend({ k: 5 });
    const filled = await b.profile.export();
    const afterFill = await b.recommend({ k: 20 });
    // In memory, events and snapshots are kept the same way.
    const mem = await Recommender.open('/a/', { backend: 'cpu', wait: 'all', storage: 'memory' });
    await mem.record({ itemId: x.itemId, type: 'like' });
    const memDoc = await mem.profile.export();
    await mem.profile.import(text);
    const memAgain = await mem.profile.export();
    await mem.profile.clear();
    const memCleared = await mem.profile.export();
    await mem.profile.import({ ...v1, catalog: 'ml-latest-small-a', events: [{ itemId: x.itemId, type: 'like' }, { itemId: 'not-in-a', type: 'like' }] });
    await mem.recommend({ k: 5 });
    const memFilled = await mem.profile.export();
    await Promise.all([a.close(), b.close(), mem.close()]);
    return {
      x, y, z, exported, cleared, imported, again, afterImport: afterImport.map((i) => i.itemId), refused, fromV1, v1Export, v1Recs: v1Recs.map((i) => i.itemId),
      memDoc, memAgain, memCleared, memFilled, unsnappedWarnings: unsnapped.warnings, unsnappedBecause: unsnapped.map((i) => i.because),
      beforeFill, aFailed: { n: aFailed.length, warnings: aFailed.warnings }, afterFailed, aRecsWarnings: aRecs.warnings, filled, filledX: decode(snapshot(filled, x.itemId)), afterFillWarnings: afterFill.warnings, afterFillBecause: afterFill.map((i) => i.because),
      decodedX: decode(snapshot(exported, x.itemId)),
      decodedZ: decode(snapshot(exported, z.itemId)),
    };
  });
  const strip = (doc) => ({ ...doc, exportedAt: null });
  assert.equal(r.exported.version, 2);
  assert.deepEqual(r.exported.events.map((e) => [e.catalog, e.itemId, e.type]), [
    [NAME_A, r.x.itemId, 'like'], [NAME_A, r.y.itemId, 'rate'], [NAME_A, r.x.itemId, 'view'], [NAME_B, r.z.itemId, 'purchase'], [NAME_B, 'not-in-b', 'view'],
  ]);
  assert.deepEqual(r.exported.snapshots.map((s) => [s.catalog, s.itemId]).sort(), [[NAME_A, r.x.itemId], [NAME_A, r.y.itemId], [NAME_B, r.z.itemId]].sort(), 'one snapshot per (catalog, item) the catalog holds');
  for (const s of r.exported.snapshots) {
    assert.deepEqual(s.encoder, { name: 'all-MiniLM-L6-v2', dims: 384 });
    assert.equal(s.values.length, 512, 'base64 of 384 int8 values');
  }
  assert.deepEqual(r.decodedX, r.x.embedding, 'the snapshot holds the catalog\'s int8 row');
  assert.equal(r.exported.snapshots.find((s) => s.itemId === r.x.itemId).scale, r.x.scale);
  assert.equal(r.exported.snapshots.find((s) => s.itemId === r.x.itemId).title, r.x.title);
  assert.deepEqual(r.decodedZ, r.z.embedding);
  assert.equal(r.cleared.a.events, 0, 'clear from A clears every catalog');
  assert.equal(r.cleared.b.events, 0);
  assert.deepEqual([r.cleared.doc.events, r.cleared.doc.snapshots], [[], []]);
  assert.equal(r.imported.events, 5);
  assert.deepEqual(r.imported.eventsByCatalog, { [NAME_A]: 3, [NAME_B]: 2 });
  assert.deepEqual(strip(r.again), strip(r.exported), 'export, clear, import, export gives the same document');
  assert.ok(!r.afterImport.includes(r.z.itemId), 'B\'s own imported event still excludes its item');
  for (const [name, outcome] of Object.entries(r.refused)) {
    assert.equal(outcome.ok, false, `${name} was accepted`);
    assert.equal(outcome.code, 'localrec/input', name);
    assert.match(outcome.message, /profile was not changed/, name);
    assert.deepEqual(strip(outcome.doc), strip(r.exported), `${name}: the profile stays as it was`);
  }
  for (const name of ['shortValues', 'notBase64', 'tooWide', 'dimsMismatch', 'infiniteScale', 'noEncoderName', 'encoderNotObject', 'duplicate']) {
    assert.match(r.refused[name].message, /snapshot [01]/, `${name} names the snapshot: ${r.refused[name].message}`);
  }
  assert.match(r.refused.tooWide.message, /encoder\.dims/);
  assert.match(r.refused.shortValues.message, /384 int8 values in base64/);
  assert.match(r.refused.infiniteScale.message, /scale/);
  assert.match(r.refused.badCatalog.message, /event 0: catalog/);
  assert.equal(r.fromV1.events, 1);
  assert.deepEqual(r.fromV1.eventsByCatalog, { [NAME_B]: 1 }, 'a version 1 document\'s events are its catalog\'s');
  assert.deepEqual(r.v1Export.snapshots, []);
  assert.ok(!r.v1Recs.includes(r.z.itemId), 'and count as B\'s own');
  assert.deepEqual(r.unsnappedWarnings, [`2 events recorded against other catalogs (${NAME_A}) left out: the profile holds no embedding of their items (not loaded when the event was recorded, or imported without one)`]);
  assert.ok(r.unsnappedBecause.every((b) => !b?.foreign));
  assert.equal(r.beforeFill, 0);
  assert.equal(r.aFailed.n, 5, 'a failure taking snapshots still answers');
  assert.equal(r.aFailed.warnings.length, 1);
  assert.match(r.aFailed.warnings[0], /snapshots of 2 items .*could not be stored \(worker lost\)/);
  assert.equal(r.afterFailed, 0, 'and stores nothing');
  assert.deepEqual(r.aRecsWarnings, []);
  assert.deepEqual(r.filled.snapshots.map((s) => [s.catalog, s.itemId]).sort(), [[NAME_A, r.x.itemId], [NAME_A, r.y.itemId]].sort(), 'A\'s recommend() took the snapshots its imported events lacked');
  assert.deepEqual(r.filledX, r.x.embedding, 'the snapshot taken late holds the catalog\'s int8 row too');
  assert.deepEqual(r.afterFillWarnings, [], 'B leaves none of A\'s events out any more');
  assert.ok(r.afterFillBecause.some((b) => b?.foreign), `a result of B is explained by an A event: ${JSON.stringify(r.afterFillBecause)}`);
  assert.equal(r.memDoc.snapshots.length, 1, 'a memory profile keeps snapshots too');
  assert.deepEqual(strip(r.memAgain).snapshots, strip(r.exported).snapshots);
  assert.deepEqual([r.memCleared.events, r.memCleared.snapshots], [[], []]);
  assert.deepEqual(r.memFilled.snapshots.map((s) => s.itemId), [r.x.itemId], 'in memory too, recommend() takes a missing snapshot (and none for an item the catalog lacks)');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a catalog of another encoder leaves foreign events out with one warning (and typed interests of another width); a profile stored before catalogs were recorded is upgraded and kept', async () => {
  const { ctx, page, errors } = await pageIn();
  const r = await page.evaluate(async (other) => {
    const { Recommender } = await import('/pkg/index.js');
    const a = await Recommender.open('/a/', { backend: 'cpu', wait: 'all', profileName: 'enc' });
    const items = await a.catalog.items({ limit: 3 });
    for (const { itemId } of items) await a.record({ itemId, type: 'like' });
    const o = await Recommender.open('/other/', { backend: 'cpu', wait: 'all', profileName: 'enc' });
    const fresh = await Recommender.open('/other/', { backend: 'cpu', wait: 'all', profileName: 'empty' });
    // A typed interest of another catalog's encoder width, as a site's other catalog would
    // have stored it in the one profile.
    await new Promise((resolve, reject) => {
      const req = indexedDB.open('localrec-profile:enc');
      req.onsuccess = () => {
        const tx = req.result.transaction('interests', 'readwrite');
        tx.objectStore('interests').add({ text: 'wide', embedding: Array.from({ length: 8 }, () => 0.5), time: Date.now() });
        tx.oncomplete = () => {
          req.result.close();
          resolve();
        };
        tx.onerror = () => reject(tx.error);
      };
      req.onerror = () => reject(req.error);
    });
    const withForeign = await o.recommend({ k: 10 });
    const without = await fresh.recommend({ k: 10 });
    const name = o.catalog.manifest.name;
    // A database as an earlier version of the library left it: events without a catalog,
    // no snapshot store, no index.
    await new Promise((resolve, reject) => {
      const req = indexedDB.open('localrec-profile:legacy', 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        db.createObjectStore('events', { keyPath: 'id', autoIncrement: true }).add({ itemId: items[0].itemId, type: 'like', time: Date.now() });
        db.createObjectStore('interests', { keyPath: 'id', autoIncrement: true });
      };
      req.onsuccess = () => {
        req.result.close();
        resolve();
      };
      req.onerror = () => reject(req.error);
    });
    const legacy = await Recommender.open('/a/', { backend: 'cpu', wait: 'all', profileName: 'legacy' });
    const legacySummary = await legacy.profile.summary();
    const legacyRecs = await legacy.recommend({ k: 10 });
    await legacy.record({ itemId: items[1].itemId, type: 'like' });
    const legacyDoc = await legacy.profile.export();
    const stores = await new Promise((resolve) => {
      const req = indexedDB.open('localrec-profile:legacy');
      req.onsuccess = () => {
        const names = [...req.result.objectStoreNames];
        req.result.close();
        resolve(names);
      };
    });
    await Promise.all([a.close(), o.close(), fresh.close(), legacy.close()]);
    return {
      name,
      liked: items.map((i) => i.itemId),
      withForeign: withForeign.map((x) => ({ itemId: x.itemId, because: x.because })),
      warnings: withForeign.warnings,
      without: without.map((x) => x.itemId),
      legacySummary,
      legacyRecs: legacyRecs.map((x) => x.itemId),
      legacyDoc,
      stores,
    };
  }, OTHER);
  assert.equal(r.name, OTHER.name);
  const about = r.warnings.filter((w) => /another encoder/.test(w));
  assert.equal(about.length, 1, `one warning for the foreign events of another encoder: ${JSON.stringify(r.warnings)}`);
  assert.match(about[0], /^3 events recorded against other catalogs \(ml-latest-small-a: all-MiniLM-L6-v2, 384 dims\) left out/);
  assert.match(about[0], /another-encoder, 384 dims/);
  assert.ok(r.withForeign.every((x) => !x.because?.foreign), 'no result is explained by a foreign event');
  assert.deepEqual(r.warnings.filter((w) => /typed interest/.test(w)), ['1 typed interest left out: encoded for another catalog\'s encoder, not 384-dim like this catalog\'s']);
  assert.deepEqual(r.withForeign.map((x) => x.itemId), r.without, 'the foreign events are left out');
  assert.equal(r.legacySummary.events, 1, 'the upgrade keeps the stored event');
  assert.deepEqual(r.legacySummary.eventsByCatalog, { [NAME_A]: 1 }, 'an event without a catalog is the reading catalog\'s own');
  assert.ok(!r.legacyRecs.includes(r.liked[0]), 'and excludes its item there');
  assert.deepEqual(r.stores.sort(), ['events', 'interests', 'snapshots']);
  assert.deepEqual(r.legacyDoc.events.map((e) => e.catalog ?? null), [null, NAME_A]);
  assert.deepEqual(r.legacyDoc.snapshots.map((s) => s.itemId), [r.liked[1]]);
  assert.deepEqual(errors, []);
  await ctx.close();
});

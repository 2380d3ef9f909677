// The Recommender in headless Chromium on the ml-latest-small catalog (make catalog):
// the profile in IndexedDB (reloads, two tabs, memory fallback), import/export/clear,
// the encoder loaded only when text needs it, and a request log that shows nothing
// about the profile reaches the network.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fullCatalogBrowser, FULL_CATALOG, SETTLE_SCRIPT } from './helpers.mjs';
import { MAX_IMPORT_CHARS } from '../../pkg/limits.js';

const shared = fullCatalogBrowser();

/** A page in `context` (a fresh one by default: its own IndexedDB and caches), with every request it or its workers make. */
async function pageIn(context) {
  const ctx = context ?? (await shared.browser.newContext());
  const page = await ctx.newPage();
  await page.addInitScript(SETTLE_SCRIPT);
  const errors = [];
  const requests = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.text().includes('localrec: internal error')) errors.push(m.text());
  });
  page.on('request', (r) => {
    requests.push({ method: r.method(), url: r.url(), headers: r.headers(), body: r.postData() });
  });
  await page.goto(`${shared.served.url}test-fixtures/blank.html`);
  return { ctx, page, errors, requests };
}

test('a profile survives a reload, two tabs recording at once lose no event, and recommend leaves out what was acted on', async () => {
  const { ctx, page: a, errors } = await pageIn();
  const { page: b } = await pageIn(ctx);
  const recordIn = (page, ids) => page.evaluate(async (ids) => {
    const { Recommender } = await import('/pkg/index.js');
    const rec = await Recommender.open('/full/', { backend: 'cpu', profileName: 'tabs' });
    await Promise.all(ids.map((itemId) => rec.record({ itemId, type: 'view' })));
    await rec.close();
  }, ids);
  const first = Array.from({ length: 20 }, (_, i) => String(i + 1));
  const second = ['260', '1196', '1210', '2571', '1', '2355', '3114', '588', '595', '364', '6377', '4886', '8961', '2', '3', '5', '6', '7', '10', '11'];
  await Promise.all([recordIn(a, first), recordIn(b, second)]);
  await a.reload();
  const r = await a.evaluate(async () => {
    const { Recommender } = await import('/pkg/index.js');
    const rec = await Recommender.open('/full/', { backend: 'cpu', profileName: 'tabs', wait: 'all' });
    const summary = await rec.profile.summary();
    const top = await rec.recommend({ k: 10 });
    const other = await (await Recommender.open('/full/', { backend: 'cpu', profileName: 'someone-else' })).profile.summary();
    await rec.close();
    return { summary, top, other };
  });
  assert.equal(r.summary.events, 40, 'every event of both tabs is kept');
  assert.equal(r.summary.storage, 'indexeddb');
  assert.equal(r.summary.persistent, true);
  assert.equal(r.other.events, 0, 'profiles by name are separate');
  assert.equal(r.top.length, 10);
  const acted = new Set([...first, ...second]);
  assert.ok(r.top.every((x) => !acted.has(x.itemId) && x.item.title && typeof x.score === 'number'), JSON.stringify(r.top.map((x) => x.itemId)));
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('import refuses malformed, oversized, wrong-version and hostile documents and keeps the profile; export round-trips; clear empties it', async () => {
  const { ctx, page, errors } = await pageIn();
  const r = await page.evaluate(async (max) => {
    const { Recommender } = await import('/pkg/index.js');
    const rec = await Recommender.open('/full/', { backend: 'cpu', profileName: 'io' });
    await rec.record({ itemId: '1', type: 'like' });
    await rec.record({ itemId: 50, type: 'rate', value: 4.5, scenario: 'weekend' });
    await rec.record({ itemId: 'gone-from-the-catalog', type: 'like' });
    const exported = await rec.profile.export();
    const good = JSON.parse(JSON.stringify(exported));
    const bad = {
      notJson: '{"format": "localrec-profile", ',
      array: [],
      wrongFormat: { ...good, format: 'something-else' },
      wrongVersion: { ...good, version: 3 },
      badEvent: { ...good, events: [{ itemId: '1', type: 'stare' }] },
      badRating: { ...good, events: [{ itemId: '1', type: 'rate', value: Number.POSITIVE_INFINITY }] },
      tooMany: { ...good, events: Array.from({ length: 100_001 }, () => ({ itemId: '1', type: 'view' })) },
      oversized: 'x'.repeat(max + 1),
      hostile: JSON.parse('{"format": "localrec-profile", "version": 1, "events": [{"itemId": "1", "type": "like", "__proto__": {"polluted": true}}], "interests": [{"text": "x", "embedding": [1, 2]}]}'),
    };
    const refused = {};
    for (const [name, doc] of Object.entries(bad)) {
      const outcome = await settle(() => rec.profile.import(doc));
      refused[name] = { ok: outcome.ok, code: outcome.code, message: outcome.message, events: (await rec.profile.summary()).events };
    }
    const recs = await rec.recommend({ k: 5 });
    const warnings = recs.warnings;
    await rec.profile.clear();
    const cleared = await rec.profile.summary();
    const popular = await rec.recommend({ k: 5 });
    const restored = await rec.profile.import(JSON.stringify(exported));
    const again = await rec.profile.export();
    await rec.close();
    return { exported, refused, recs, warnings, cleared, popular, restored, again, polluted: ({}).polluted };
  }, MAX_IMPORT_CHARS);
  assert.equal(r.exported.format, 'localrec-profile');
  assert.equal(r.exported.version, 2);
  assert.equal(r.exported.events.length, 3);
  for (const [name, outcome] of Object.entries(r.refused)) {
    assert.equal(outcome.ok, false, `${name} was accepted`);
    assert.equal(outcome.code, 'localrec/input', name);
    assert.match(outcome.message, /profile was not changed/, name);
    assert.equal(outcome.events, 3, `${name}: the profile stays as it was`);
  }
  assert.match(r.refused.wrongVersion.message, /version 3/);
  assert.equal(r.polluted, undefined);
  assert.equal(r.recs.length, 5);
  assert.ok(r.warnings.some((w) => /gone-from-the-catalog/.test(w)), 'an unknown item is kept but ignored, with a warning');
  assert.equal(r.cleared.events, 0);
  assert.equal(r.popular.length, 5, 'an empty profile still gets popular items');
  assert.equal(r.restored.events, 3);
  assert.deepEqual(r.again.events, r.exported.events, 'export, import, export gives the same events');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('without IndexedDB the profile lives in memory with a visible flag, and nothing fails', async () => {
  const ctx = await shared.browser.newContext();
  await ctx.addInitScript(() => Object.defineProperty(window, 'indexedDB', { value: undefined }));
  const { page, errors } = await pageIn(ctx);
  const r = await page.evaluate(async () => {
    const { Recommender } = await import('/pkg/index.js');
    const rec = await Recommender.open('/full/', { backend: 'cpu' });
    await rec.record({ itemId: '1', type: 'like' });
    const summary = await rec.profile.summary();
    const top = await rec.recommend({ k: 3 });
    const info = rec.backendInfo();
    await rec.close();
    return { summary, top, info };
  });
  assert.equal(r.summary.storage, 'memory');
  assert.equal(r.summary.persistent, false);
  assert.match(r.summary.fallbackReason, /IndexedDB is unavailable/);
  assert.equal(r.summary.events, 1);
  assert.equal(r.top.length, 3);
  assert.equal(r.info.profile.persistent, false);
  assert.equal(r.info.scoring.backend, 'cpu');
  assert.match(r.info.scoring.reason, /CPU was asked for/);
  assert.ok(r.info.scoring.lastRecommendMs > 0, 'the last recommend is timed');
  assert.equal(r.info.encoder, null, 'no text was needed, so no encoder was loaded');
  assert.deepEqual(errors, []);
  await ctx.close();
});

/** Builds a profile, uses it, exports and clears it; returns the request log split by phase. */
async function session(events, interest) {
  const { ctx, page, errors, requests } = await pageIn();
  const marks = {};
  await page.evaluate(async () => {
    const { Recommender } = await import('/pkg/index.js');
    window.rec = await Recommender.open('/full/', { backend: 'cpu', wait: 'all', profileName: 'privacy' });
  });
  marks.opened = requests.length;
  const result = await page.evaluate(async (events) => {
    for (const e of events) await window.rec.record(e);
    const top = await window.rec.recommend({ k: 10, scenario: 'weekend' });
    const similar = await window.rec.similar(events[0].itemId, { k: 5 });
    const doc = await window.rec.profile.export();
    const summary = await window.rec.profile.summary();
    await window.rec.profile.clear();
    return { top: top.map((x) => x.itemId), similar: similar.map((x) => x.itemId), doc, summary };
  }, events);
  marks.acted = requests.length;
  const searched = await page.evaluate(async (interest) => {
    await window.rec.addInterest(interest);
    const found = await window.rec.search(interest, { k: 5 });
    const top = await window.rec.recommend({ k: 5 });
    const info = window.rec.backendInfo();
    await window.rec.close();
    return { found: found.map((x) => x.item.title), top: top.map((x) => x.because), info };
  }, interest);
  await ctx.close();
  return { requests, marks, result, searched, errors };
}

test('privacy: only GETs of static files, none caused by record/recommend/export/clear, and the catalog requests do not depend on the profile', async () => {
  const one = await session([{ itemId: '1', type: 'like' }, { itemId: '2355', type: 'like' }, { itemId: '296', type: 'dislike' }], 'space adventure with robots');
  const two = await session([{ itemId: '260', type: 'like', scenario: 'weekend' }, { itemId: '2959', type: 'rate', value: 5 }], 'quiet french romance');
  for (const s of [one, two]) {
    assert.deepEqual(s.errors, []);
    assert.equal(s.marks.acted, s.marks.opened, `record, recommend, similar, export and clear made requests: ${JSON.stringify(s.requests.slice(s.marks.opened).map((r) => r.url))}`);
    for (const r of s.requests) {
      assert.equal(r.method, 'GET', r.url);
      assert.equal(r.body ?? null, null, r.url);
      const u = new URL(r.url);
      assert.equal(u.origin, new URL(shared.served.url).origin, 'nothing leaves for another origin');
      assert.equal(u.search, '', `no query string: ${r.url}`);
      assert.ok(/^\/(pkg|full|test-fixtures)\//.test(u.pathname), `a static file: ${u.pathname}`);
      const headerText = JSON.stringify(r.headers);
      for (const secret of ['space adventure', 'french romance']) assert.ok(!headerText.includes(secret) && !r.url.includes(secret));
    }
    // Text needs the encoder: its files are fetched then, and only then.
    const modelBefore = s.requests.slice(0, s.marks.acted).filter((r) => r.url.includes('/full/model/'));
    assert.deepEqual(modelBefore, [], 'the encoder is not fetched before text needs it');
    assert.ok(s.requests.slice(s.marks.acted).some((r) => r.url.includes('/full/model/')), 'addInterest loads the model');
    assert.equal(s.result.top.length, 10);
    assert.equal(s.searched.found.length, 5);
    assert.ok(s.searched.top.some((b) => b?.text), 'a typed interest explains results with its text');
    assert.ok(s.searched.info.encoder?.backend, 'backendInfo names the encoder once loaded');
  }
  // The manifest and shards in order; the model's files (fetched in parallel) as a set.
  const paths = (s, model) => s.requests.map((r) => `${r.method} ${new URL(r.url).pathname}`)
    .filter((p) => p.includes(' /full/') && p.includes('/full/model/') === model);
  assert.deepEqual(paths(one, false), paths(two, false), 'two different profiles make the same catalog requests in the same order');
  assert.deepEqual(paths(one, true).sort(), paths(two, true).sort(), 'and the same model requests');
  const firstShard = JSON.parse(readFileSync(path.join(FULL_CATALOG, 'manifest.json'), 'utf8')).shards[0].path;
  assert.ok(paths(one, false).some((p) => p.endsWith(`/full/${firstShard}`)), 'the log holds the shards');
});

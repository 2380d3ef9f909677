// The profile store under IndexedDB faults, in headless Chromium on the ml-latest-small
// catalog: a refused write (quota, another tab upgrading the database) neither loses the
// profile nor splits it from what a reload shows; clear() and import() change the stored
// copy or reject with localrec/storage; the event cap holds across tabs by rolling off the
// oldest events; navigator.storage.persist() is asked without waiting; memory mode works.
// Faults are injected by wrapping IndexedDB's own methods in the page (`window.faults`).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fullCatalogBrowser, SETTLE_SCRIPT } from './helpers.mjs';
import { MAX_EVENTS } from '../../pkg/limits.js';

const session = fullCatalogBrowser();

/**
 * Page init script: `window.faults.NAME = n` makes the next n calls of IndexedDB's NAME
 * throw the DOMException a browser throws there (-1: every call); 0, the default, none.
 */
const FAULTS = () => {
  window.faults = { add: 0, clear: 0, getAll: 0, deleteDatabase: 0 };
  const inject = (proto, name, error) => {
    const original = proto[name];
    proto[name] = function (...args) {
      const left = window.faults[name];
      if (left !== 0) {
        if (left > 0) window.faults[name] = left - 1;
        throw error();
      }
      return original.apply(this, args);
    };
  };
  inject(IDBObjectStore.prototype, 'add', () => new DOMException('injected: the quota is exhausted', 'QuotaExceededError'));
  inject(IDBObjectStore.prototype, 'clear', () => new DOMException('injected: the connection to the backing store was lost', 'UnknownError'));
  inject(IDBObjectStore.prototype, 'getAll', () => new DOMException('injected: the backing store could not be read', 'UnknownError'));
  inject(IDBFactory.prototype, 'deleteDatabase', () => new DOMException('injected: the database could not be deleted', 'UnknownError'));
};

/** A fresh context (its own IndexedDB) with a blank page of the test origin and fault injection ready. */
async function freshPage(context) {
  const ctx = context ?? (await session.browser.newContext());
  if (!context) await ctx.addInitScript(FAULTS);
  const page = await ctx.newPage();
  await page.addInitScript(SETTLE_SCRIPT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${session.served.url}test-fixtures/blank.html`);
  return { ctx, page, errors };
}

/** Opens `window.rec` on the profile `profileName` (IndexedDB unless `storage` says otherwise). */
function openRec(page, profileName, storage = 'indexeddb') {
  return page.evaluate(async ({ profileName, storage }) => {
    const { Recommender } = await import('/pkg/index.js');
    window.rec = await Recommender.open('/full/', { backend: 'cpu', profileName, storage });
  }, { profileName, storage });
}

/** Reloads the page (dropping every injected fault) and opens the profile again: what the visitor sees next visit. */
async function afterReload(page, profileName) {
  await page.reload();
  await openRec(page, profileName);
  return page.evaluate(() => window.rec.profile.summary());
}

/** Records events on items `ids` in `window.rec`, one after another. */
function record(page, ids) {
  return page.evaluate(async (ids) => {
    for (const itemId of ids) await window.rec.record({ itemId, type: 'view' });
  }, ids);
}

/** Records one event under `settle`: {ok, value} or {ok: false, code, message, name}. */
function attemptRecord(page, itemId) {
  return page.evaluate((itemId) => settle(() => window.rec.record({ itemId, type: 'like' })), itemId);
}

/** `profile.clear()` under `settle`. */
function attemptClear(page) {
  return page.evaluate(() => settle(() => window.rec.profile.clear()));
}

/** `profile.import(doc)` under `settle`. */
function attemptImport(page, doc) {
  return page.evaluate((doc) => settle(() => window.rec.profile.import(doc)), doc);
}

const summary = (page) => page.evaluate(() => window.rec.profile.summary());

/**
 * A profile document of `events` views on items `${prefix}0`, `${prefix}1`, ... and
 * `interests` typed interests; the first `snapshots` events are of another catalog
 * ('elsewhere'), each item with its snapshot.
 */
function profileDocument(page, { events, prefix = 'item-', interests = 0, snapshots = 0 }) {
  return page.evaluate(({ events, prefix, interests, snapshots }) => {
    const dims = window.rec.catalog.manifest.encoder.dims;
    return {
      format: 'localrec-profile',
      version: 2,
      events: Array.from({ length: events }, (_, i) => ({
        itemId: `${prefix}${i}`, type: 'view', time: 1_700_000_000_000 + i, ...(i < snapshots ? { catalog: 'elsewhere' } : {}),
      })),
      interests: Array.from({ length: interests }, (_, i) => ({
        text: `interest ${i}`,
        embedding: Array.from({ length: dims }, (_, d) => (d === i % dims ? 1 : 0)),
      })),
      snapshots: Array.from({ length: snapshots }, (_, i) => ({
        catalog: 'elsewhere', itemId: `${prefix}${i}`, encoder: { name: 'all-MiniLM-L6-v2', dims }, scale: 0.01, values: btoa('\u0001'.repeat(dims)), title: `t${i}`,
      })),
    };
  }, { events, prefix, interests, snapshots });
}

test('a write IndexedDB refuses once is retried on a fresh connection and stays in IndexedDB, so a reload shows it', async () => {
  const { ctx, page, errors } = await freshPage();
  await openRec(page, 'once');
  await record(page, ['1', '2']);
  await page.evaluate(() => (window.faults.add = 1));
  const outcome = await attemptRecord(page, '3');
  assert.equal(outcome.ok, true, JSON.stringify(outcome));
  const now = await summary(page);
  assert.equal(now.storage, 'indexeddb', `one refused write moved the profile to memory: ${now.fallbackReason}`);
  assert.equal(now.fallbackReason, null);
  assert.equal(now.events, 3);
  const next = await afterReload(page, 'once');
  assert.equal(next.events, 3, 'the event recorded through the refused write is on disk');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('another tab upgrading the database closes this connection; the next write reopens it and nothing is lost', async () => {
  const { ctx, page, errors } = await freshPage();
  const { page: other } = await freshPage(ctx);
  await openRec(page, 'upgraded');
  await record(page, ['1', '2']);
  // What a newer version of a site's code does in another tab: open the database at a higher version.
  await other.evaluate(() => new Promise((resolve, reject) => {
    const request = indexedDB.open('localrec-profile:upgraded', 2);
    request.onsuccess = () => {
      request.result.close();
      resolve();
    };
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('the upgrade was blocked: this tab did not close its connection'));
  }));
  const outcome = await attemptRecord(page, '3');
  assert.equal(outcome.ok, true, JSON.stringify(outcome));
  const now = await summary(page);
  assert.equal(now.storage, 'indexeddb', `the upgrade moved the profile to memory: ${now.fallbackReason}`);
  assert.equal(now.events, 3, 'the profile after the upgrade is the stored one plus the new event');
  const next = await afterReload(page, 'upgraded');
  assert.equal(next.storage, 'indexeddb', `a database another tab upgraded no longer opens: ${next.fallbackReason}`);
  assert.equal(next.events, 3);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('when IndexedDB keeps refusing writes the profile moves to memory holding what was stored, and clear() still deletes the stored copy', async () => {
  const { ctx, page, errors } = await freshPage();
  await openRec(page, 'refusing');
  await record(page, ['1', '2', '3']);
  await page.evaluate(() => (window.faults.add = -1));
  const outcome = await attemptRecord(page, '4');
  assert.equal(outcome.ok, true, JSON.stringify(outcome));
  const fallen = await summary(page);
  assert.equal(fallen.storage, 'memory');
  assert.equal(fallen.persistent, false);
  assert.match(fallen.fallbackReason, /refused a write/);
  assert.equal(fallen.events, 4, 'the memory copy starts from the stored profile, not from empty');
  const cleared = await attemptClear(page);
  assert.equal(cleared.ok, true, JSON.stringify(cleared));
  assert.equal((await summary(page)).events, 0);
  const next = await afterReload(page, 'refusing');
  assert.equal(next.events, 0, 'a deleted profile came back on reload');
  assert.equal(next.storage, 'indexeddb');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('import() on a profile fallen back to memory is stored in IndexedDB or refused with localrec/storage, leaving the profile as it was', async () => {
  const { ctx, page, errors } = await freshPage();
  await openRec(page, 'import');
  await record(page, ['1', '2']);
  const doc = await profileDocument(page, { events: 5 });
  await page.evaluate(() => (window.faults.add = -1));
  await record(page, ['3']);
  assert.equal((await summary(page)).storage, 'memory');
  const refused = await attemptImport(page, doc);
  assert.equal(refused.ok, false, 'an import that only reached memory was reported as done');
  assert.equal(refused.code, 'localrec/storage');
  assert.equal(refused.name, 'LocalrecError');
  assert.match(refused.message, /not changed/);
  const unchanged = await summary(page);
  assert.equal(unchanged.events, 3, 'a refused import leaves the profile as it was');
  await page.evaluate(() => (window.faults.add = 0));
  const stored = await attemptImport(page, doc);
  assert.equal(stored.ok, true, JSON.stringify(stored));
  const now = await summary(page);
  assert.equal(now.storage, 'indexeddb', 'an import that reached IndexedDB ends the fallback');
  assert.equal(now.events, 5);
  const next = await afterReload(page, 'import');
  assert.equal(next.events, 5, 'the imported profile is what a reload shows');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('clear() that IndexedDB refuses rejects with localrec/storage saying what is still stored, and the profile stays whole', async () => {
  const { ctx, page, errors } = await freshPage();
  await openRec(page, 'undeletable');
  const doc = await profileDocument(page, { events: 3, interests: 1 });
  await page.evaluate((doc) => window.rec.profile.import(doc), doc);
  await page.evaluate(() => Object.assign(window.faults, { clear: -1, deleteDatabase: -1 }));
  const outcome = await attemptClear(page);
  assert.equal(outcome.ok, false, 'a clear() that deleted nothing on disk was reported as done');
  assert.equal(outcome.code, 'localrec/storage');
  assert.equal(outcome.name, 'LocalrecError');
  assert.match(outcome.message, /still holds 3 events and 1 interest\b/);
  const now = await summary(page);
  assert.equal(now.events, 3);
  assert.equal(now.interests.length, 1);
  const next = await afterReload(page, 'undeletable');
  assert.equal(next.events, 3, 'what the error said is stored is what a reload shows');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('clear() deletes the database when IndexedDB refuses to empty its stores, and a reload shows nothing', async () => {
  const { ctx, page, errors } = await freshPage();
  await openRec(page, 'delete-db');
  await record(page, ['1', '2']);
  await page.evaluate(() => (window.faults.clear = -1));
  const outcome = await attemptClear(page);
  assert.equal(outcome.ok, true, JSON.stringify(outcome));
  assert.equal((await summary(page)).events, 0);
  const next = await afterReload(page, 'delete-db');
  assert.equal(next.events, 0, 'a deleted profile came back on reload');
  assert.equal(next.storage, 'indexeddb');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a refused write whose stored profile cannot be read either is rejected with localrec/storage and changes nothing', async () => {
  const { ctx, page, errors } = await freshPage();
  await openRec(page, 'unreadable');
  await record(page, ['1', '2']);
  await page.evaluate(() => Object.assign(window.faults, { add: -1, getAll: -1 }));
  const outcome = await attemptRecord(page, '3');
  assert.equal(outcome.ok, false, 'the write landed in a memory copy that started from empty');
  assert.equal(outcome.code, 'localrec/storage');
  assert.match(outcome.message, /nothing was changed/);
  await page.evaluate(() => Object.assign(window.faults, { add: 0, getAll: 0 }));
  const now = await summary(page);
  assert.equal(now.storage, 'indexeddb');
  assert.equal(now.events, 2);
  assert.equal((await afterReload(page, 'unreadable')).events, 2);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('opening an IndexedDB profile asks navigator.storage.persist() without waiting for the answer, and records it', async () => {
  const ctx = await session.browser.newContext();
  await ctx.addInitScript(() => {
    window.persistCalls = 0;
    window.persistAnswer = new Promise((resolve) => (window.answerPersist = resolve));
    StorageManager.prototype.persisted = async () => false;
    StorageManager.prototype.persist = function () {
      window.persistCalls += 1;
      return window.persistAnswer;
    };
  });
  const { page, errors } = await freshPage(ctx);
  // The answer never comes unless the test gives it: open must not wait for it.
  await openRec(page, 'persist');
  const pending = await page.evaluate(async () => ({ calls: window.persistCalls, persisted: (await window.rec.profile.summary()).persisted }));
  assert.equal(pending.calls, 1);
  assert.equal(pending.persisted, null, 'no answer yet');
  const answered = await page.evaluate(async () => {
    window.answerPersist(true);
    await new Promise((resolve) => setTimeout(resolve, 0));
    return { summary: (await window.rec.profile.summary()).persisted, info: window.rec.backendInfo().profile.persisted };
  });
  assert.deepEqual(answered, { summary: true, info: true });
  await page.evaluate(async () => {
    const { Recommender } = await import('/pkg/index.js');
    await Recommender.open('/full/', { backend: 'cpu', storage: 'memory' });
  });
  assert.equal(await page.evaluate(() => window.persistCalls), 1, 'a memory profile has nothing to persist');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('at MAX_EVENTS the oldest events roll off, with their items\' snapshots: two tabs recording at once keep exactly MAX_EVENTS, the newest, and the export imports again', async () => {
  const { ctx, page: a, errors } = await freshPage();
  const { page: b } = await freshPage(ctx);
  await openRec(a, 'cap');
  const doc = await profileDocument(a, { events: MAX_EVENTS - 10, prefix: 'old-', snapshots: 40 });
  await a.evaluate((doc) => window.rec.profile.import(doc), doc);
  await openRec(b, 'cap');
  const ids = (tab) => Array.from({ length: 20 }, (_, i) => `${tab}-${i}`);
  const recordAll = (page, ids) => page.evaluate((ids) => Promise.all(ids.map((itemId) => settle(() => window.rec.record({ itemId, type: 'view' })))), ids);
  const outcomes = await Promise.all([recordAll(a, ids('a')), recordAll(b, ids('b'))]);
  assert.deepEqual(outcomes.flat().filter((o) => !o.ok), [], 'record() at the cap rejected');
  const r = await a.evaluate(async ({ recorded, max }) => {
    const exported = await window.rec.profile.export();
    const kept = new Set(exported.events.map((e) => e.itemId));
    const droppedOld = Array.from({ length: 30 }, (_, i) => `old-${i}`).filter((id) => !kept.has(id)).length;
    const imported = await settle(() => window.rec.profile.import(JSON.stringify(exported)));
    const after = await window.rec.profile.summary();
    // The same cap in memory.
    const { Recommender } = await import('/pkg/index.js');
    const mem = await Recommender.open('/full/', { backend: 'cpu', storage: 'memory' });
    const memDoc = { ...exported, events: exported.events.slice(0, max - 10) };
    await mem.profile.import(memDoc);
    const memRefused = [];
    for (let i = 0; i < 20; i++) {
      const outcome = await settle(() => mem.record({ itemId: `m-${i}`, type: 'view' }));
      if (!outcome.ok) memRefused.push(outcome.message);
    }
    const memExport = await mem.profile.export();
    return {
      snapshots: exported.snapshots.map((s) => s.itemId),
      memSnapshots: memExport.snapshots.length,
      count: exported.events.length,
      first: exported.events[0].itemId,
      recordedKept: recorded.filter((id) => kept.has(id)).length,
      droppedOld,
      importedOk: imported.ok,
      importedMessage: imported.message,
      afterEvents: after.events,
      memRefused,
      memCount: memExport.events.length,
      memFirst: memExport.events[0].itemId,
      memLast: memExport.events[memExport.events.length - 1].itemId,
    };
  }, { recorded: [...ids('a'), ...ids('b')], max: MAX_EVENTS });
  assert.equal(r.count, MAX_EVENTS, 'two tabs together passed the cap, or fell short of it');
  assert.equal(r.recordedKept, 40, 'every newly recorded event is kept');
  assert.equal(r.droppedOld, 30, 'the 30 oldest imported events rolled off');
  assert.equal(r.first, 'old-30');
  assert.deepEqual(r.snapshots, Array.from({ length: 10 }, (_, i) => `old-${30 + i}`), 'the snapshots of the items whose events rolled off went with them');
  assert.equal(r.memSnapshots, 0, 'in memory too');
  assert.equal(r.importedOk, true, `the export was refused by import: ${r.importedMessage}`);
  assert.equal(r.afterEvents, MAX_EVENTS);
  assert.deepEqual(r.memRefused, [], 'record() at the cap rejected in memory');
  assert.equal(r.memCount, MAX_EVENTS);
  assert.equal(r.memFirst, 'old-40', 'in memory too the oldest roll off');
  assert.equal(r.memLast, 'm-19');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a memory profile keeps working: record, import, export, clear, and nothing written to IndexedDB', async () => {
  const { ctx, page, errors } = await freshPage();
  await openRec(page, 'in-memory', 'memory');
  await record(page, ['1', '2', '3']);
  const doc = await profileDocument(page, { events: 4, interests: 2 });
  const r = await page.evaluate(async (doc) => {
    const rec = window.rec;
    const recorded = await rec.profile.summary();
    const exported = await rec.profile.export();
    const imported = await rec.profile.import(doc);
    const top = await rec.recommend({ k: 3 });
    await rec.profile.clear();
    const cleared = await rec.profile.summary();
    const databases = (await indexedDB.databases()).map((d) => d.name);
    return { recorded, exportedEvents: exported.events.length, imported, top: top.length, cleared, databases };
  }, doc);
  assert.equal(r.recorded.storage, 'memory');
  assert.equal(r.recorded.fallbackReason, null);
  assert.equal(r.recorded.events, 3);
  assert.equal(r.exportedEvents, 3);
  assert.equal(r.imported.events, 4);
  assert.equal(r.imported.interests.length, 2);
  assert.equal(r.top, 3);
  assert.equal(r.cleared.events, 0);
  assert.equal(r.cleared.interests.length, 0);
  assert.deepEqual(r.databases.filter((n) => n.startsWith('localrec-profile:')), []);
  assert.deepEqual(errors, []);
  await ctx.close();
});

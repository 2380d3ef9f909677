// <localrec-recommendations> on a plain HTML page (www/element.html, the demo's second
// page: one script, one tag) in real Chromium, under the demo's strict policy: k cards
// with data-item-id, list semantics and keyboard, a click recorded in IndexedDB and the
// list rendered again without the item, events for the page, no request carrying the profile;
// link cards with pictures for items that have a page and an image.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { F32_MODEL, FULL_CATALOG, LOCALREC_BIN, launch, openPage, root, serveDemo, stopServer } from './helpers.mjs';

/**
 * A small shop catalog from JSON lines whose items carry a page (`url`) and a picture
 * (`image`, relative: resolved against the catalog): cards become links with images.
 */
function shopCatalog() {
  const dir = path.join(root, 'target/tmp/browser-catalogs/element-shop');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const kinds = ['rain jacket', 'hiking boots', 'tent', 'sleeping bag', 'camping stove', 'trail map'];
  const lines = Array.from({ length: 24 }, (_, i) => JSON.stringify({
    id: `sku-${i}`,
    title: `${kinds[i % kinds.length]} ${i}`,
    url: `/test-fixtures/blank.html?item=sku-${i}`,
    image: `pictures/sku-${i}.jpg`,
  }));
  writeFileSync(path.join(dir, 'items.jsonl'), `${lines.join('\n')}\n`);
  execFileSync(LOCALREC_BIN, ['build', '--items', path.join(dir, 'items.jsonl'), '--model', F32_MODEL, '--out', path.join(dir, 'catalog'), '--name', 'shop'],
    { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
  return path.join(dir, 'catalog');
}

const session = { served: null, browser: null };
before(async () => {
  // The demo's layout: the element page at the root, the catalog at /catalog (and at /full
  // for pages of the tests' own).
  session.served = await serveDemo({
    mounts: [{ url: '/catalog', dir: FULL_CATALOG }, { url: '/full', dir: FULL_CATALOG }, { url: '/shop', dir: shopCatalog() }],
  });
  session.browser = await launch();
});
after(async () => {
  await session.browser?.close();
  stopServer(session.served?.server);
});

/** The page's cards (Playwright's CSS engine pierces the open shadow root). */
const cardIds = (page) => page.$$eval('localrec-recommendations [data-item-id]', (cards) => cards.map((c) => c.dataset.itemId));

/** Events of the profile `name` as IndexedDB holds them, read by a fresh Recommender in the page. */
function storedEvents(page, name = 'default') {
  return page.evaluate(async (profileName) => {
    const { Recommender } = await import('/pkg/index.js');
    const rec = await Recommender.open('/full/', { backend: 'cpu', profileName, wait: 'manifest' });
    const doc = await rec.profile.export();
    await rec.close();
    return doc.events.map((e) => ({ itemId: e.itemId, type: e.type }));
  }, name);
}

test('the element on a plain page renders k cards, a click is stored in IndexedDB and the list follows it, and no request carries the profile', { timeout: 600_000 }, async () => {
  const { served, browser } = session;
  const violations = [];
  const { page, errors } = await openPage(browser, 'about:blank');
  page.on('console', (m) => {
    if (/Content.Security.Policy/i.test(m.text())) violations.push(m.text());
  });
  served.requests.length = 0;
  // The demo's element page, with the test catalog mounted where the page expects it.
  await page.goto(`${served.url}element.html`);
  await page.evaluate(() => {
    window.seen = [];
    for (const type of ['localrec-ready', 'localrec-render', 'localrec-select', 'localrec-error']) {
      document.addEventListener(type, (e) => window.seen.push({ type, itemId: e.detail?.itemId, error: String(e.detail?.error?.message ?? '') }));
    }
  });
  await page.waitForFunction(() => document.querySelector('localrec-recommendations')?.results.length === 10, null, { timeout: 300_000 });
  const first = await cardIds(page);
  assert.equal(first.length, 10, 'k cards');
  // An element upgraded in place hears of each attribute first; it still opens once.
  assert.equal(served.requests.filter((r) => r.path === '/catalog/manifest.json').length, 1, 'the catalog was opened once');
  assert.equal(new Set(first).size, 10);

  // Accessible: a labelled list of list items, each card a native focusable control with its title as text.
  const a11y = await page.evaluate(() => {
    const root = document.querySelector('localrec-recommendations').shadowRoot;
    const list = root.querySelector('[part="list"]');
    const heading = root.getElementById(list.getAttribute('aria-labelledby'));
    const cards = [...root.querySelectorAll('[part="card"]')];
    return {
      role: list.getAttribute('role'),
      tag: list.tagName,
      items: list.children.length,
      allLi: [...list.children].every((c) => c.tagName === 'LI'),
      heading: heading?.textContent,
      controls: cards.map((c) => c.tagName),
      titled: cards.every((c) => c.querySelector('[part="title"]')?.textContent.length > 0),
      busy: list.getAttribute('aria-busy'),
      live: root.querySelector('[part="status"]').getAttribute('aria-live'),
    };
  });
  assert.deepEqual({ role: a11y.role, tag: a11y.tag, items: a11y.items, allLi: a11y.allLi, heading: a11y.heading, busy: a11y.busy, live: a11y.live },
    { role: 'list', tag: 'UL', items: 10, allLi: true, heading: 'Movies for you', busy: 'false', live: 'polite' });
  assert.ok(a11y.controls.every((t) => t === 'BUTTON' || t === 'A') && a11y.titled);

  // Keyboard: Tab reaches the first card, ArrowRight the second, End the last; Enter chooses.
  await page.keyboard.press('Tab');
  const focused = () => page.evaluate(() => document.querySelector('localrec-recommendations').shadowRoot.activeElement?.dataset.itemId);
  assert.equal(await focused(), first[0]);
  await page.keyboard.press('ArrowRight');
  assert.equal(await focused(), first[1]);
  await page.keyboard.press('End');
  assert.equal(await focused(), first[9]);
  await page.keyboard.press('Home');
  assert.equal(await focused(), first[0]);

  // A click: announced, stored on this device, and the list renders again without the item.
  const chosen = first[2];
  await page.click(`localrec-recommendations [data-item-id="${chosen}"]`);
  await page.waitForFunction((id) => {
    const el = document.querySelector('localrec-recommendations');
    return window.seen.filter((e) => e.type === 'localrec-render').length >= 2 && !el.results.some((r) => r.itemId === id);
  }, chosen, { timeout: 120_000 });
  const after = await cardIds(page);
  assert.equal(after.length, 10);
  assert.ok(!after.includes(chosen), 'the chosen item is not recommended again');
  const seen = await page.evaluate(() => window.seen);
  assert.deepEqual(seen.filter((e) => e.type === 'localrec-select').map((e) => e.itemId), [chosen]);
  assert.deepEqual(seen.filter((e) => e.type === 'localrec-error'), []);
  const stored = await storedEvents(page);
  assert.ok(stored.some((e) => e.itemId === chosen && e.type === 'click'), `IndexedDB holds the click: ${JSON.stringify(stored)}`);
  const reasons = await page.$$eval('localrec-recommendations [part="reason"]', (r) => r.map((x) => x.textContent));
  assert.ok(reasons.some((r) => r.startsWith('Because you opened ')), `a reason names the chosen film: ${JSON.stringify(reasons)}`);

  // Nothing the visitor did left the device: every request is a GET of a file of the
  // page, the package, the catalog or the model, and no URL holds an item id of theirs.
  for (const r of served.requests) {
    assert.equal(r.method, 'GET', JSON.stringify(r));
    assert.match(r.path, /^\/(element\.html|favicon\.ico|pkg\/[\w./-]+|(catalog|full)\/[\w./-]+)$/, JSON.stringify(r));
  }
  assert.deepEqual(errors, []);
  assert.deepEqual(violations, []);
  await page.close();
});

test('a view is recorded once a card has been half visible for view-ms, a cancelled localrec-select leaves the list, and attributes re-render', { timeout: 600_000 }, async () => {
  const { served, browser } = session;
  const { page, errors } = await openPage(browser, `${served.url}test-fixtures/blank.html`);
  await page.evaluate(async () => {
    await import('/pkg/element.js');
    const el = document.createElement('localrec-recommendations');
    el.setAttribute('catalog', '/full/');
    el.setAttribute('k', '4');
    el.setAttribute('profile-name', 'views');
    el.setAttribute('backend', 'cpu');
    el.setAttribute('view-ms', '300');
    el.addEventListener('localrec-select', (e) => e.preventDefault());
    document.body.append(el);
    window.el = el;
  });
  await page.waitForFunction(() => window.el.results.length === 4, null, { timeout: 300_000 });
  const shown = await cardIds(page);
  // Every card is on screen: each counts as viewed after 300 ms, once.
  await page.waitForFunction(async () => {
    const doc = await window.el.recommender.profile.export();
    return doc.events.filter((e) => e.type === 'view').length === 4;
  }, null, { timeout: 30_000 });
  await page.click(`localrec-recommendations [data-item-id="${shown[0]}"]`);
  await page.waitForTimeout(500);
  const events = await page.evaluate(async () => (await window.el.recommender.profile.export()).events.map((e) => `${e.type} ${e.itemId}`));
  assert.deepEqual(events.filter((e) => e.startsWith('view')).sort(), shown.map((id) => `view ${id}`).sort());
  assert.ok(events.includes(`click ${shown[0]}`), 'the click is recorded even when the page takes over');
  assert.deepEqual(await cardIds(page), shown, 'a cancelled select does not re-render');
  await page.evaluate(() => window.el.setAttribute('k', '6'));
  await page.waitForFunction(() => window.el.results.length === 6, null, { timeout: 120_000 });
  const six = await cardIds(page);
  assert.ok(shown.every((id) => !six.includes(id)), 'items viewed or clicked are not shown again');
  assert.deepEqual(errors, []);
  await page.close();
});

test('items with a url and an image become link cards with their picture; a click is stored before the link is followed', { timeout: 600_000 }, async () => {
  const { served, browser } = session;
  const { page, errors } = await openPage(browser, `${served.url}test-fixtures/blank.html`);
  await page.evaluate(async () => {
    await import('/pkg/element.js');
    const el = document.createElement('localrec-recommendations');
    for (const [name, value] of Object.entries({ catalog: '/shop/', k: '5', 'profile-name': 'shop', backend: 'cpu', 'view-ms': '0' })) el.setAttribute(name, value);
    document.body.append(el);
  });
  await page.waitForFunction(() => document.querySelector('localrec-recommendations')?.results.length === 5, null, { timeout: 300_000 });
  const cards = await page.$$eval('localrec-recommendations [part="card"]', (all) => all.map((c) => ({
    tag: c.tagName, id: c.dataset.itemId, href: c.getAttribute('href'), image: c.querySelector('img')?.getAttribute('src'), alt: c.querySelector('img')?.getAttribute('alt'),
  })));
  const origin = new URL(served.url).origin;
  for (const c of cards) {
    assert.equal(c.tag, 'A');
    assert.equal(c.href, `${origin}/test-fixtures/blank.html?item=${c.id}`);
    assert.equal(c.image, `${origin}/shop/pictures/${c.id}.jpg`, 'a relative image is resolved against the catalog');
    assert.equal(c.alt, '', 'the picture is decoration: the title names the card');
  }
  const chosen = cards[1].id;
  await Promise.all([page.waitForURL(`**/blank.html?item=${chosen}`, { timeout: 60_000 }), page.click(`localrec-recommendations [data-item-id="${chosen}"]`)]);
  // On the item's page (same origin, same profile): the click was stored before leaving.
  const stored = await page.evaluate(async () => {
    const { Recommender } = await import('/pkg/index.js');
    const rec = await Recommender.open('/shop/', { backend: 'cpu', profileName: 'shop', wait: 'manifest' });
    const doc = await rec.profile.export();
    await rec.close();
    return doc.events.map((e) => `${e.type} ${e.itemId}`);
  });
  assert.deepEqual(stored, [`click ${chosen}`]);
  assert.deepEqual(errors, []);
  await page.close();
});

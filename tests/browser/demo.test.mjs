// The demo page (www/) end to end in headless Chromium: the real page, served as
// `make demo` serves it, on the real ml-latest-small catalog, driven through its stable
// hooks (data-item-id, data-action, the search input), once with the CPU backend forced
// and once with WebGPU. Screenshots of the main states go to test-results/demo/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { serveDemo, launch, stopServer, root, FULL_CATALOG } from './helpers.mjs';

const SHOTS = path.join(root, 'test-results/demo');
let served;
let browser;

before(async () => {
  if (!existsSync(path.join(FULL_CATALOG, 'manifest.json'))) {
    throw new Error(`${FULL_CATALOG} is missing: run \`make catalog\` (make test does)`);
  }
  mkdirSync(SHOTS, { recursive: true });
  served = await serveDemo({ mounts: [{ url: '/catalog', dir: FULL_CATALOG }] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  stopServer(served?.server);
});

const KIDS = /Animation|Children/;

async function demoPage(backend, context) {
  const ctx = context ?? (await browser.newContext({ viewport: { width: 1100, height: 900 } }));
  const page = await ctx.newPage();
  const errors = [];
  const requests = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  await page.goto(`${served.url}?backend=${backend}`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
  return { ctx, page, errors, requests };
}

async function cards(page) {
  return page.$$eval('#recommendations [data-item-id]', (els) => els.map((e) => ({
    id: e.dataset.itemId, genres: e.dataset.genres, title: e.querySelector('h3').textContent, why: e.querySelector('.why')?.textContent ?? '',
  })));
}

/** Runs `action` and waits for the page to finish it (its list redrawn). */
async function redrawn(page, action) {
  const before = await page.evaluate(() => document.body.dataset.acted);
  await action();
  await page.waitForFunction((b) => document.body.dataset.acted !== b, before, { timeout: 120_000 });
}

/** Moves the diversity slider, one change event (as a released slider sends). */
function setDiversity(page, value) {
  return page.$eval('#diversity', (e, v) => {
    e.value = v;
    e.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

/** Types `query` in the search box and waits for its results. */
function searchFor(page, query) {
  return redrawn(page, async () => {
    await page.fill('input[type="search"]', query);
    await page.press('input[type="search"]', 'Enter');
  });
}

/** Searches `query` in the search box and likes the first result that is an animated or children's film. */
async function likeFromSearch(page, query) {
  await searchFor(page, query);
  const found = await page.$$eval('#search-results [data-item-id]', (els) => els.map((e) => ({ id: e.dataset.itemId, genres: e.dataset.genres })));
  const pick = found.find((f) => /Animation|Children/.test(f.genres));
  assert.ok(pick, `searching ${query} finds an animated or children's film: ${JSON.stringify(found)}`);
  await redrawn(page, () => page.click(`#search-results [data-item-id="${pick.id}"] [data-action="like"]`));
  return pick.id;
}

for (const backend of ['cpu', 'webgpu']) {
  test(`demo on ${backend}: likes from the search box, an interest, reload, delete everything, and no request from any action`, async () => {
    const { ctx, page, errors, requests } = await demoPage(backend);
    assert.equal(await page.evaluate(() => document.body.dataset.backend), backend, `scoring runs on ${backend}`);
    const popular = await cards(page);
    assert.ok(popular.length >= 10, 'a fresh profile sees popular movies');
    assert.equal(await page.textContent('#recs-h'), 'Popular movies');
    await page.screenshot({ path: path.join(SHOTS, `${backend}-1-fresh.png`), fullPage: true });

    const liked = [];
    for (const q of ['Toy Story', 'The Lion King', 'Finding Nemo']) liked.push(await likeFromSearch(page, q));
    assert.deepEqual(liked, ['1', '364', '6377'], 'each typed title is found first (Toy Story, Lion King, The (1994), Finding Nemo)');
    const afterLikes = await cards(page);
    const top10 = afterLikes.slice(0, 10);
    assert.ok(top10.every((c) => !liked.includes(c.id)), 'no liked film is recommended');
    assert.ok(top10.some((c) => /because you liked/.test(c.why)), 'cards say why');
    await page.screenshot({ path: path.join(SHOTS, `${backend}-2-three-likes.png`), fullPage: true });
    const kids = top10.filter((c) => KIDS.test(c.genres)).length;
    assert.ok(kids >= 5, `at least half of the top 10 are animated or children's films after three such likes: ${JSON.stringify(top10.map((c) => `${c.title} ${c.genres}`))}`);

    // Acting on the page sends nothing: like, dislike, hide, scenario, diversity.
    const mark = requests.length;
    const first = afterLikes[0].id;
    await redrawn(page, () => page.click(`#recommendations [data-item-id="${first}"] [data-action="hide"]`));
    assert.ok(!(await cards(page)).some((c) => c.id === first), 'a hidden film is gone');
    const second = (await cards(page))[0].id;
    await redrawn(page, () => page.click(`#recommendations [data-item-id="${second}"] [data-action="dislike"]`));
    await redrawn(page, () => page.selectOption('#scenario', 'weekend'));
    await redrawn(page, () => setDiversity(page, '0.6'));
    assert.deepEqual(requests.slice(mark), [], 'no request was caused by the actions');
    assert.equal(await page.textContent('#requests-last'), '0');

    // A typed interest moves the list its way (diversity back to 0, so MMR does not hide the move).
    await redrawn(page, () => setDiversity(page, '0'));
    const horrorBefore = (await cards(page)).slice(0, 10).filter((c) => /Horror/.test(c.genres)).length;
    await redrawn(page, async () => {
      await page.fill('#interest', 'horror');
      await page.press('#interest', 'Enter');
    });
    const withInterest = (await cards(page)).slice(0, 10);
    const horrorAfter = withInterest.filter((c) => /Horror/.test(c.genres)).length;
    assert.ok(horrorAfter > horrorBefore, `horror titles come up: ${horrorBefore} -> ${horrorAfter} (${await page.textContent('#backend')}): ${JSON.stringify(withInterest.map((c) => `${c.title} ${c.genres} ${c.why}`))}`);
    assert.ok(withInterest.some((c) => /matches: horror/.test(c.why)), 'a result says it matches the interest');
    await page.screenshot({ path: path.join(SHOTS, `${backend}-3-interest.png`), fullPage: true });
    assert.match(await page.textContent('#stored'), /5 events .*1 typed interests/);

    // Reload: the profile and its recommendations persist.
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    await page.waitForFunction(() => document.body.dataset.events === '5', null, { timeout: 60_000 });
    await redrawn(page, () => page.selectOption('#scenario', 'weekend'));
    assert.equal(await page.textContent('#recs-h'), 'Recommended for you');
    assert.ok((await cards(page)).length >= 10);
    assert.match(await page.textContent('#interests'), /horror/);

    // Delete everything: the profile is empty and the page shows popular movies again.
    await redrawn(page, () => page.click('#delete'));
    assert.equal(await page.evaluate(() => document.body.dataset.events), '0');
    assert.equal(await page.textContent('#recs-h'), 'Popular movies');
    assert.match(await page.textContent('#stored'), /Nothing stored yet/);
    await page.screenshot({ path: path.join(SHOTS, `${backend}-4-deleted.png`), fullPage: true });
    assert.deepEqual(errors, []);
    await ctx.close();
    console.log(`# demo ${backend}: ${kids} of the top 10 are animated or children's films after three such likes`);
  });
}

test('once loaded, the demo opens and searches with its server gone', async () => {
  // A server of its own, so that stopping it leaves the other tests theirs.
  const own = await serveDemo({ mounts: [{ url: '/catalog', dir: FULL_CATALOG }] });
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(`${own.url}?backend=cpu`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.offline), 'true', 'the service worker controls the page');
    const id = await likeFromSearch(page, 'Toy Story');
    await page.waitForFunction(() => document.body.dataset.events === '1');

    stopServer(own.server);
    const refused = await page.evaluate((u) => fetch(u).then(() => 'answered', () => 'refused'), `${own.url}no-such-file-${Date.now()}`);
    assert.equal(refused, 'refused', 'the server is gone');
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    await page.waitForFunction(() => document.body.dataset.events === '1', null, { timeout: 60_000 });
    assert.equal(await page.textContent('#recs-h'), 'Recommended for you');
    const offline = await cards(page);
    assert.ok(offline.length >= 10 && !offline.some((c) => c.id === id), 'recommendations from the cached catalog');
    assert.ok(offline.some((c) => /because you liked Toy Story \(1995\)/.test(c.why)), `reasons name the film liked before the reload: ${JSON.stringify(offline.map((c) => c.why))}`);
    await searchFor(page, 'Finding Nemo');
    const found = await page.$$eval('#search-results [data-item-id] h3', (els) => els.map((e) => e.textContent));
    assert.ok(found.some((t) => /Finding Nemo/.test(t)), `search runs on the cached model: ${JSON.stringify(found)}`);
    await page.screenshot({ path: path.join(SHOTS, 'offline.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    stopServer(own.server);
  }
});

test('the demo is usable on a phone-sized viewport, by keyboard, with labels and readable contrast', async () => {
  const ctx = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  const { page, errors } = await demoPage('cpu', ctx);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no horizontal scrolling (${overflow}px too wide)`);
  // Every control has an accessible name.
  const unnamed = await page.$$eval('button, input, select', (els) => els.filter((e) => {
    const label = e.getAttribute('aria-label') || e.labels?.[0]?.textContent || e.textContent;
    return !label || !label.trim();
  }).map((e) => e.outerHTML.slice(0, 80)));
  assert.deepEqual(unnamed, []);
  // The search box is reachable by keyboard.
  let focused = '';
  for (let i = 0; i < 8 && focused !== 'search'; i++) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement?.id ?? '');
  }
  assert.equal(focused, 'search');
  // Text contrast (WCAG AA, 4.5:1) of every visible element with text of its own,
  // against the first opaque background behind it, in the light and the dark scheme.
  for (const colorScheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme });
    const lowContrast = await page.evaluate(() => {
      const rgb = (c) => (c.match(/[\d.]+/g) ?? []).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgb(getComputedStyle(e).backgroundColor);
          if (c.length === 3 || c[3] > 0.99) return c.slice(0, 3);
        }
        return [255, 255, 255];
      };
      const bad = [];
      for (const el of document.querySelectorAll('body *')) {
        const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
        const style = getComputedStyle(el);
        if (!own || !el.getClientRects().length || style.visibility === 'hidden' || el.closest('.visually-hidden, .skip')) continue;
        const [a, b] = [lum(rgb(style.color).slice(0, 3)), lum(background(el))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        if (ratio < 4.5) bad.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
      }
      return bad;
    });
    assert.deepEqual(lowContrast, [], `every text has at least 4.5:1 contrast (${colorScheme})`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.screenshot({ path: path.join(SHOTS, 'phone.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await ctx.close();
});

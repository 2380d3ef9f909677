// The demo page: a movie recommender on the public `localrec` API. The catalog
// (ml-latest-small by default) and the profile live in this browser; the page only
// renders what the Recommender returns and records what the visitor does.

/**
 * Registers the service worker (sw.js) that lets the page open offline once loaded, and
 * waits (at most 3 s) until it controls the page: on a first visit the package, its worker
 * and the manifests then already go through it. Without service workers (an insecure
 * origin) the page works as before, online only.
 */
async function offlineReady() {
  if (!('serviceWorker' in navigator)) return false;
  try {
    await navigator.serviceWorker.register('sw.js');
    if (!navigator.serviceWorker.controller) {
      await Promise.race([
        new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true })),
        new Promise((resolve) => setTimeout(resolve, 3000)),
      ]);
    }
    return Boolean(navigator.serviceWorker.controller);
  } catch {
    return false;
  }
}
const OFFLINE = await offlineReady();
document.body.dataset.offline = String(OFFLINE);
const { Recommender } = await import('./pkg/index.js');
const { normalizeTitle } = await import('./title-match.js');

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// ?backend=cpu|webgpu|auto (tests force each); ?catalog=URL for another catalog.
const BACKEND = params.get('backend') ?? 'auto';
const CATALOG = params.get('catalog') ?? 'catalog/';
const ANIMATION_ROW = 6;

let rec = null;
const titles = new Map(); // itemId -> title, for reasons

/** Requests this page and its workers made (resource timing; cached files are not requests). */
async function requestCount() {
  const page = performance.getEntriesByType('resource').length;
  const workers = rec ? await rec.requestCount().catch(() => 0) : 0;
  return page + workers;
}

let lastActionRequests = 0;
async function showRequests() {
  $('requests').textContent = String(await requestCount());
  $('requests-last').textContent = String(lastActionRequests);
}

/** Runs a visitor's action, counting the requests it caused; `data-acted` counts finished actions. */
async function act(fn) {
  const before = await requestCount();
  try {
    await fn();
  } catch (e) {
    showError(e);
  }
  lastActionRequests = (await requestCount()) - before;
  await showRequests();
  document.body.dataset.acted = String(Number(document.body.dataset.acted ?? 0) + 1);
}

function showError(e) {
  const p = $('backend');
  p.textContent = `Something went wrong: ${e.message}${e.code ? ` (${e.code})` : ''}`;
  p.classList.add('error');
}

function year(item) {
  return item.year ?? item.meta?.year ?? '';
}

function reason(r) {
  const b = r.because;
  if (!b) return '';
  if (b.text) return `matches: ${b.text}`;
  // An event recorded on another catalog of the site: its title and catalog come with it.
  if (b.foreign) return b.title ? `because you liked ${b.title} (${b.catalog})` : '';
  if (b.itemId) return `because you liked ${titles.get(b.itemId) ?? 'a film you liked'}`;
  return '';
}

/** One movie card with its actions; `data-item-id` and `data-action` are stable test hooks. */
function card(r, { why = true } = {}) {
  const item = r.item;
  titles.set(r.itemId, item.title);
  const el = document.createElement('article');
  el.className = 'card';
  el.dataset.itemId = r.itemId;
  el.dataset.genres = (item.genres ?? []).join('|');
  const h = document.createElement('h3');
  h.textContent = item.title;
  const meta = document.createElement('p');
  meta.className = 'meta';
  meta.textContent = [year(item), (item.genres ?? []).join(', ')].filter(Boolean).join(' · ');
  el.append(h, meta);
  if (why) {
    const text = reason(r);
    if (text) {
      const p = document.createElement('p');
      p.className = 'why';
      p.textContent = text;
      el.append(p);
    }
  }
  const actions = document.createElement('div');
  actions.className = 'actions';
  for (const [action, label] of [['like', 'Like'], ['dislike', 'Dislike'], ['hide', 'Not interested']]) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.action = action;
    b.textContent = label;
    b.setAttribute('aria-label', `${label}: ${item.title}`);
    actions.append(b);
  }
  el.append(actions);
  return el;
}

async function onCardAction(event) {
  const button = event.target.closest('button[data-action]');
  const el = event.target.closest('[data-item-id]');
  if (!button || !el || !rec) return;
  const itemId = el.dataset.itemId;
  const scenario = $('scenario').value || undefined;
  const action = button.dataset.action;
  await act(async () => {
    // "Not interested" is a weak dislike: the film is never shown again, and counts a little against its kind.
    const event = action === 'hide' ? { itemId, type: 'dislike', value: 0.3, scenario } : { itemId, type: action, scenario };
    await rec.record(event);
    if (el.closest('#search-results')) el.remove();
    await refresh();
  });
}

// Refreshes run one after another, so a slow one (WebGPU) never overwrites a newer list.
let refreshing = Promise.resolve();
function refresh() {
  refreshing = refreshing.then(redraw, redraw);
  return refreshing;
}

async function redraw() {
  const summary = await rec.profile.summary();
  const k = 12;
  const results = await rec.recommend({
    k,
    scenario: $('scenario').value || undefined,
    diversity: Number($('diversity').value),
  });
  const personal = summary.events > 0 || summary.interests.length > 0;
  // Reasons name the liked film; after a reload it may not have been on screen yet.
  const unnamed = [...new Set(results.filter((r) => !r.because?.foreign).map((r) => r.because?.itemId).filter((id) => id && !titles.has(id)))];
  await Promise.all(unnamed.map(async (id) => {
    const item = await rec.catalog.item(id).catch(() => null);
    if (item) titles.set(id, item.title);
  }));
  $('recs-h').textContent = personal ? 'Recommended for you' : 'Popular movies';
  const grid = $('recommendations');
  grid.replaceChildren(...results.map((r) => card(r, { why: personal })));
  grid.setAttribute('aria-busy', 'false');
  document.body.dataset.recommendations = String(Date.now());
  showStored(summary);
  renderInterests(summary.interests);
  const info = rec.backendInfo();
  const ms = info.scoring.lastRecommendMs;
  const enc = info.encoder
    ? `; language model on ${info.encoder.backend}${info.encoder.calibration?.[info.encoder.backend]?.sentencesPerSecond ? ` (${info.encoder.calibration[info.encoder.backend].sentencesPerSecond.toFixed(0)} sentences/s)` : ''}`
    : '';
  $('backend').textContent = `Scoring ${info.scoring.itemsLoaded} movies on ${info.scoring.backend === 'webgpu' ? 'WebGPU' : 'the CPU'} (${info.scoring.reason}), ${ms ? `${ms.toFixed(0)} ms per list` : ''}${enc}.`;
  document.body.dataset.backend = info.scoring.backend;
}

function showStored(summary) {
  const t = summary.eventsByType;
  const parts = [`${summary.events} events (${t.like} likes, ${t.dislike} dislikes or hidden, ${t.rate} ratings, ${t.view + t.click} views and clicks)`,
    `${summary.interests.length} typed interests, each with its 384-number vector`];
  $('stored').textContent = summary.events || summary.interests.length
    ? `Stored in this browser: ${parts.join('; ')}.`
    : 'Nothing stored yet.';
  const kept = summary.persistent
    ? 'Kept in this browser\u2019s IndexedDB; nothing of it is ever sent anywhere.'
    : `Kept in this page\u2019s memory only (${summary.fallbackReason ?? 'by choice'}): it is gone when you leave.`;
  $('storage-note').textContent = OFFLINE
    ? `${kept} This page, the catalog and the model are kept too, so it opens without a network next time.`
    : kept;
  document.body.dataset.events = String(summary.events);
}

function renderInterests(interests) {
  const list = $('interests');
  list.replaceChildren(...interests.map((it) => {
    const li = document.createElement('li');
    li.textContent = it.text;
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = '×';
    b.setAttribute('aria-label', `Remove interest: ${it.text}`);
    b.addEventListener('click', () => act(async () => {
      await rec.removeInterest(it.id);
      await refresh();
    }));
    li.append(b);
    return li;
  }));
}

function onProgress(p) {
  if (p.source === 'catalog') {
    const bar = $('catalog-progress');
    bar.max = 1;
    bar.value = p.fraction;
    if (p.status !== 'ready') $('catalog-status').textContent = `Catalog: ${Math.round(p.fraction * 100)}% loaded and verified`;
  } else if (p.source === 'model') {
    const bar = $('model-progress');
    bar.max = 1;
    bar.value = p.fraction;
    $('model-status').textContent = p.status === 'ready'
      ? 'Language model: starting…'
      : `Language model: ${Math.round(p.fraction * 100)}% (${p.file ? p.file.split('/').pop() : ''})`;
  }
}

function modelReady() {
  const bar = $('model-progress');
  bar.value = bar.max;
  $('model-status').textContent = 'Language model: ready';
}

async function onSearch(event) {
  event.preventDefault();
  const q = $('search').value.trim();
  if (!q) return;
  await act(async () => {
    const found = await rec.search(q, { k: ANIMATION_ROW, normalizeTitle });
    modelReady();
    $('search-results').replaceChildren(...found.map((r) => card(r, { why: false })));
    document.body.dataset.searched = String(Date.now());
  });
}

async function onInterest(event) {
  event.preventDefault();
  const text = $('interest').value.trim();
  if (!text) return;
  await act(async () => {
    await rec.addInterest(text);
    modelReady();
    $('interest').value = '';
    await refresh();
  });
}

function download(name, text) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function main() {
  try {
    rec = await Recommender.open(CATALOG, { backend: BACKEND, onProgress });
  } catch (e) {
    $('catalog-status').textContent = `The catalog could not be loaded: ${e.message} (${e.code ?? 'error'})`;
    $('catalog-status').classList.add('error');
    return;
  }
  rec.catalog.loaded.then((status) => {
    $('catalog-status').textContent = status.complete
      ? `Catalog: ${status.itemsLoaded} movies, ${(status.total / 1e6).toFixed(1)} MB, verified`
      : `Catalog: ${status.itemsLoaded} of ${status.itemsTotal} movies (${status.failed.length} shards failed)`;
  });
  const scenario = $('scenario');
  const names = rec.catalog.manifest.scenarios ?? [];
  scenario.replaceChildren(new Option('Any time', ''), ...names.map((n) => new Option(n === 'weekday' ? 'A weeknight' : n === 'weekend' ? 'The weekend' : n, n)));
  const day = new Date().getDay();
  if (names.includes('weekend') && names.includes('weekday')) scenario.value = day === 0 || day === 6 ? 'weekend' : 'weekday';
  scenario.addEventListener('change', () => act(refresh));
  $('diversity').addEventListener('change', () => act(async () => {
    $('diversity-value').textContent = $('diversity').value;
    await refresh();
  }));
  $('diversity').addEventListener('input', () => ($('diversity-value').textContent = $('diversity').value));
  $('recommendations').addEventListener('click', onCardAction);
  $('search-results').addEventListener('click', onCardAction);
  $('search-form').addEventListener('submit', onSearch);
  $('interest-form').addEventListener('submit', onInterest);
  $('export').addEventListener('click', () => act(async () => {
    download('localrec-profile.json', JSON.stringify(await rec.profile.export(), null, 2));
  }));
  $('import').addEventListener('change', () => act(async () => {
    const file = $('import').files?.[0];
    if (!file) return;
    await rec.profile.import(await file.text());
    $('import').value = '';
    await refresh();
  }));
  $('delete').addEventListener('click', () => act(async () => {
    await rec.profile.clear();
    $('search-results').replaceChildren();
    await refresh();
  }));
  for (const id of ['search', 'search-button', 'interest', 'interest-button']) $(id).disabled = false;
  await refresh().catch(showError);
  rec.catalog.loaded.then(() => refresh().catch(showError));
  document.body.dataset.ready = 'true';
  setInterval(showRequests, 1000);
  await showRequests();
}

main();

// `<localrec-recommendations>`: private recommendations from two lines of HTML.
//
//   <script type="module" src="https://cdn.example/localrec/element.js"></script>
//   <localrec-recommendations catalog="https://cdn.example/catalog/" k="10"></localrec-recommendations>
//
// The element opens a `Recommender` on its catalog (the visitor's profile stays on this
// device, in IndexedDB), renders a list of cards (title, the reason, an image where the
// item's metadata has one), records what the visitor does with them (a card seen for a
// while is a `view`, a card chosen is a `click`) and renders again after a choice. The
// page hooks in through DOM events, styles it with CSS custom properties and `::part`,
// and reaches the recommender itself as `element.recommender`. Documented in
// pkg/README.md ("The web component").
//
// Accessibility: a labelled list (`role="list"` kept with list styling removed), one
// native link or button per card (Tab, Enter, Space), arrow keys, Home and End move
// between cards, a polite live region says what the list shows, and the default colours
// meet WCAG AA contrast.
import { Recommender } from './recommender.js';
import { DEFAULT_K, MAX_K } from './limits.js';

/** The element's tag: the contract pages write. */
export const ELEMENT_TAG = 'localrec-recommendations';

/** Item metadata keys read for a card's image and link, first present wins. */
const IMAGE_KEYS = ['image', 'imageUrl', 'image_url', 'thumbnail', 'poster'];
const LINK_KEYS = ['url', 'link', 'href'];

/** How long (ms) a card must stay half visible to count as viewed, unless `view-ms` says otherwise. */
const DEFAULT_VIEW_MS = 2000;

// The reason's verb for the event it names.
const VERBS = { view: 'viewed', click: 'opened', like: 'liked', rate: 'rated', purchase: 'bought' };

const STYLE = `
:host {
  display: block;
  font: var(--localrec-font, inherit);
  color: var(--localrec-color, #1b1b1b);
  --_gap: var(--localrec-gap, 0.75rem);
}
:host([hidden]) { display: none; }
.heading { font-size: 1.125rem; margin: 0 0 var(--_gap); }
.status { margin: 0 0 var(--_gap); color: var(--localrec-muted-color, #4a4a4a); font-size: 0.875rem; }
.status:empty { display: none; }
ul {
  list-style: none;
  margin: 0;
  padding: 0;
  display: grid;
  gap: var(--_gap);
  grid-template-columns: repeat(auto-fill, minmax(var(--localrec-card-min-width, 10rem), 1fr));
}
li { display: flex; }
.card {
  all: unset;
  box-sizing: border-box;
  display: flex;
  flex-direction: column;
  gap: 0.375rem;
  width: 100%;
  padding: var(--localrec-card-padding, 0.75rem);
  background: var(--localrec-card-background, #ffffff);
  color: inherit;
  border: var(--localrec-card-border, 1px solid #c4c4c4);
  border-radius: var(--localrec-radius, 0.5rem);
  cursor: pointer;
  text-decoration: none;
}
.card:hover { border-color: var(--localrec-accent, #0b57d0); }
.card:focus-visible { outline: 3px solid var(--localrec-accent, #0b57d0); outline-offset: 2px; }
img {
  width: 100%;
  height: var(--localrec-image-height, 9rem);
  object-fit: cover;
  border-radius: calc(var(--localrec-radius, 0.5rem) / 2);
  background: #eeeeee;
}
.title { font-weight: 600; }
.reason { font-size: 0.8125rem; color: var(--localrec-muted-color, #4a4a4a); }
`;

let sheet = null;

/**
 * The element's styles as a constructed stylesheet: unlike a <style> element it needs no
 * 'unsafe-inline' in the page's style-src.
 */
function styles() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
  }
  return sheet;
}

function firstOf(item, keys) {
  for (const key of keys) {
    const value = item?.[key] ?? item?.meta?.[key];
    if (typeof value === 'string' && value !== '') return value;
  }
  return null;
}

/** A URL from item metadata that is safe to put in a page: http(s) only, resolved against the catalog. */
function safeUrl(value, base) {
  if (!value) return null;
  try {
    const url = new URL(value, base);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

function make(tag, attrs = {}, text) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  if (text !== undefined) el.textContent = text;
  return el;
}

const Base = globalThis.HTMLElement ?? class {};

/**
 * `<localrec-recommendations catalog="..." k="10">`. Attributes: `catalog` (required),
 * `k`, `heading`, `profile-name`, `backend`, `storage`, `diversity`, `view-ms` (0: record
 * no views), `model-url`. Events (bubbling, composed): `localrec-ready`, `localrec-render`,
 * `localrec-select` (cancelable: `preventDefault()` leaves the rest to the page: no link
 * followed, no new rendering; the click is recorded either way),
 * `localrec-error`.
 */
export class LocalrecRecommendations extends Base {
  static observedAttributes = ['catalog', 'k', 'heading', 'profile-name', 'backend', 'storage', 'diversity', 'model-url'];

  constructor() {
    super();
    /** The `Recommender` once open (null before, and after an error or disconnect). */
    this.recommender = null;
    /** The results shown now. */
    this.results = [];
    this.opening = null;
    this.rendering = null;
    this.generation = 0;
    this.viewed = new Set();
    this.timers = new Map();
    this.live = false;
    const shadow = this.attachShadow({ mode: 'open' });
    shadow.adoptedStyleSheets = [styles()];
    this.headingEl = make('h2', { class: 'heading', part: 'heading', id: 'heading' });
    this.statusEl = make('p', { class: 'status', part: 'status', role: 'status', 'aria-live': 'polite' });
    this.listEl = make('ul', { part: 'list', role: 'list', 'aria-labelledby': 'heading', 'aria-busy': 'true' });
    shadow.append(this.headingEl, this.statusEl, this.listEl);
    this.listEl.addEventListener('click', (e) => this.chosen(e));
    this.listEl.addEventListener('keydown', (e) => this.moveFocus(e));
  }

  connectedCallback() {
    this.headingEl.textContent = this.getAttribute('heading') ?? 'Recommended for you';
    this.headingEl.hidden = this.getAttribute('heading') === '';
    this.live = true;
    this.open();
  }

  disconnectedCallback() {
    this.live = false;
    this.teardown();
  }

  attributeChangedCallback(name, before, after) {
    // An element upgraded in place hears of every attribute before it is connected: the
    // connection opens it once with all of them.
    if (before === after || !this.live) return;
    if (name === 'heading') {
      this.headingEl.textContent = after ?? 'Recommended for you';
      this.headingEl.hidden = after === '';
    } else if (name === 'k' || name === 'diversity') {
      this.refresh();
    } else {
      // Another catalog, profile or backend: start over.
      this.teardown();
      this.open();
    }
  }

  /** Renders again from the profile as it is now; resolves with the results shown. */
  async refresh() {
    if (!this.recommender) return this.opening ? this.opening.then(() => this.results) : [];
    const generation = this.generation;
    const run = (this.rendering ?? Promise.resolve()).then(() => (generation === this.generation ? this.render() : this.results));
    this.rendering = run.catch(() => {});
    return run;
  }

  /** @private */
  get k() {
    const k = Number(this.getAttribute('k') ?? DEFAULT_K);
    return Number.isInteger(k) && k >= 1 ? Math.min(k, MAX_K) : DEFAULT_K;
  }

  /** @private */
  open() {
    const catalog = this.getAttribute('catalog');
    const generation = ++this.generation;
    if (!catalog) {
      this.fail(new Error('the catalog attribute is missing'));
      return;
    }
    this.setStatus('Loading recommendations…');
    const options = {
      profileName: this.getAttribute('profile-name') ?? 'default',
      backend: this.getAttribute('backend') ?? 'auto',
      storage: this.getAttribute('storage') ?? 'indexeddb',
    };
    const modelUrl = this.getAttribute('model-url');
    if (modelUrl) options.modelUrl = modelUrl;
    this.opening = (async () => {
      try {
        const rec = await Recommender.open(catalog, options);
        if (generation !== this.generation) {
          await rec.close();
          return;
        }
        this.recommender = rec;
        this.emit('localrec-ready', { recommender: rec });
        await this.refresh();
      } catch (e) {
        if (generation === this.generation) this.fail(e);
      }
    })();
  }

  /** @private */
  teardown() {
    this.generation++;
    this.stopWatching();
    const rec = this.recommender;
    this.recommender = null;
    this.opening = null;
    this.rendering = null;
    rec?.close().catch(() => {});
  }

  /** @private */
  async render() {
    const rec = this.recommender;
    this.listEl.setAttribute('aria-busy', 'true');
    try {
      const diversity = Number(this.getAttribute('diversity') ?? 0);
      const results = await rec.recommend({ k: this.k, diversity: Number.isFinite(diversity) ? diversity : 0 });
      const titles = await this.reasonTitles(rec, results);
      if (rec !== this.recommender) return this.results;
      this.results = results.results;
      this.stopWatching();
      this.listEl.replaceChildren(...this.results.map((r, i) => this.card(r, i, titles)));
      this.setStatus(this.results.length ? '' : 'Nothing to recommend yet.');
      this.listEl.setAttribute('aria-busy', 'false');
      this.watchViews();
      this.emit('localrec-render', { results: this.results, partial: results.partial, warnings: results.warnings });
      return this.results;
    } catch (e) {
      if (rec === this.recommender) this.fail(e);
      throw e;
    }
  }

  /** @private Titles of the items reasons name, and the type of the event each reason is. */
  async reasonTitles(rec, results) {
    // An event of another catalog names its item's title itself (its id means nothing here).
    const ids = [...new Set(results.filter((r) => !r.because?.foreign).map((r) => r.because?.itemId).filter(Boolean))];
    const items = await Promise.all(ids.map((id) => rec.catalog.item(id).catch(() => null)));
    return new Map(ids.map((id, i) => [id, items[i]?.title ?? null]));
  }

  /** @private */
  reason(result, titles) {
    const b = result.because;
    if (!b) return '';
    if (b.text) return `Matches “${b.text}”`;
    if (b.foreign) return b.title ? `Because you ${VERBS[b.type] ?? 'liked'} ${b.title} (${b.catalog})` : '';
    const title = b.itemId ? titles.get(b.itemId) : null;
    if (!title) return '';
    return `Because you ${VERBS[b.type] ?? 'liked'} ${title}`;
  }

  /** @private One card: a link when the item has a URL, else a button. */
  card(result, index, titles) {
    const { item } = result;
    const li = make('li', { part: 'item' });
    const base = this.recommender?.catalog.url ?? document.baseURI;
    const href = safeUrl(firstOf(item, LINK_KEYS), base);
    const card = href ? make('a', { href }) : make('button', { type: 'button' });
    card.className = 'card';
    card.setAttribute('part', 'card');
    card.dataset.itemId = result.itemId;
    card.dataset.index = String(index);
    const image = safeUrl(firstOf(item, IMAGE_KEYS), base);
    if (image) card.append(make('img', { src: image, alt: '', loading: 'lazy', decoding: 'async', part: 'image' }));
    card.append(make('span', { class: 'title', part: 'title' }, item?.title ?? result.itemId));
    const why = this.reason(result, titles);
    if (why) card.append(make('span', { class: 'reason', part: 'reason' }, why));
    li.append(card);
    return li;
  }

  /**
   * @private A card chosen (click, Enter, Space): announced and recorded; then, unless the
   * page cancelled `localrec-select`, the link is followed or, for a button, the list
   * renders again.
   */
  async chosen(event) {
    const card = event.target.closest?.('.card');
    const rec = this.recommender;
    if (!card || !rec) return;
    const result = this.results[Number(card.dataset.index)];
    const selected = this.emit('localrec-select', { itemId: card.dataset.itemId, item: result?.item, score: result?.score, because: result?.because }, true);
    const link = card.tagName === 'A' ? card.href : null;
    // A plain click on a link waits for the click to be stored before the page is left;
    // one that opens another tab (a modifier, the middle button) leaves this page here.
    const sameTab = link && selected && !(event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || event.button > 0);
    if (!selected || sameTab) event.preventDefault();
    const stored = rec.record({ itemId: card.dataset.itemId, type: 'click' }).then(() => true, (e) => {
      this.emit('localrec-error', { error: e });
      return false;
    });
    if (sameTab) {
      // The visitor never waits long on storage.
      await Promise.race([stored, new Promise((resolve) => setTimeout(resolve, 500))]);
      globalThis.location.assign(link);
    } else if (!link && selected && (await stored)) {
      await this.refresh().catch(() => {});
    }
  }

  /** @private Arrow keys, Home and End move the focus between cards. */
  moveFocus(event) {
    const cards = [...this.listEl.querySelectorAll('.card')];
    const at = cards.indexOf(this.shadowRoot.activeElement);
    if (at < 0) return;
    const last = cards.length - 1;
    const to = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1, Home: 0, End: last }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    cards[Math.max(0, Math.min(last, to))].focus();
  }

  /** @private Records a `view` for each card at least half visible for `view-ms`. */
  watchViews() {
    const ms = Number(this.getAttribute('view-ms') ?? DEFAULT_VIEW_MS);
    if (!(ms > 0) || typeof IntersectionObserver === 'undefined') return;
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const id = entry.target.dataset.itemId;
        if (entry.isIntersecting && !this.viewed.has(id) && !this.timers.has(id)) {
          this.timers.set(id, setTimeout(() => this.viewedFor(id), ms));
        } else if (!entry.isIntersecting) {
          clearTimeout(this.timers.get(id));
          this.timers.delete(id);
        }
      }
    }, { threshold: 0.5 });
    for (const card of this.listEl.querySelectorAll('.card')) this.observer.observe(card);
  }

  /** @private */
  viewedFor(id) {
    this.timers.delete(id);
    if (this.viewed.has(id) || !this.recommender) return;
    this.viewed.add(id);
    // Not rendered again now: the list does not change under the visitor's eyes.
    this.recommender.record({ itemId: id, type: 'view' }).catch((e) => this.emit('localrec-error', { error: e }));
  }

  /** @private */
  stopWatching() {
    this.observer?.disconnect();
    this.observer = null;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** @private */
  setStatus(text) {
    this.statusEl.textContent = text;
  }

  /** @private */
  fail(error) {
    this.listEl.setAttribute('aria-busy', 'false');
    this.setStatus('Recommendations are unavailable.');
    this.emit('localrec-error', { error });
  }

  /** @private Dispatches `type`; returns false when a cancelable event was cancelled. */
  emit(type, detail, cancelable = false) {
    return this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true, cancelable }));
  }
}

if (globalThis.customElements && !customElements.get(ELEMENT_TAG)) {
  customElements.define(ELEMENT_TAG, LocalrecRecommendations);
}

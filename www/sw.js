// The demo's service worker: once the page has loaded, it also opens without a network.
//
// Network first: an online visitor always gets the current files, and the last good copy
// of each answers when the network does not. The big downloads (wasm, model weights,
// catalog shards) are left alone: the localrec package checks them against their
// manifests and keeps them in Cache Storage itself, so caching them here too would only
// store them twice. What comes through here is small: the page, its scripts, the
// package's scripts and the two manifests.
const CACHE = 'localrec-demo-v1';
// The page's own files, fetched before this worker controlled it on the first visit.
const SHELL = ['./', 'app.js', 'title-match.js', 'style.css'];
const KEPT_BY_THE_PACKAGE = /\.(wasm|safetensors|bin)$/;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  if (req.headers.has('range') || KEPT_BY_THE_PACKAGE.test(url.pathname)) return;
  event.respondWith(networkFirst(event));
});

async function networkFirst(event) {
  const req = event.request;
  try {
    const res = await fetch(req);
    if (res.ok) {
      const copy = res.clone();
      event.waitUntil(caches.open(CACHE).then((c) => c.put(req, copy)).catch(() => {}));
    }
    return res;
  } catch (err) {
    const cache = await caches.open(CACHE);
    // A page opened with other parameters (?backend=cpu) is the same page.
    const hit = (await cache.match(req)) ?? (req.mode === 'navigate' ? await cache.match('./') : undefined);
    if (hit) return hit;
    throw err;
  }
}

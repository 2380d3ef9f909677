// `search()`'s re-ranking: the encoder ranks by meaning, which can put a sequel above the
// title a visitor typed. Results whose title is the query, once both are normalized, move
// to the front; the rest keep the encoder's order. The default normalization is generic
// (case, composed characters and punctuation aside); a catalog with title conventions of
// its own passes its `normalizeTitle` (the demo's, for MovieLens, puts back an article
// moved to the end: "Matrix, The (1999)").

/** `text` as titles are compared by default: NFKC, lowercase, runs of anything but letters and digits as one space. */
export function normalizeText(text) {
  return String(text).normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
}

/** `results` ({item: {title}}, best first) with the ones titled `query` (per `normalize`) moved to the front. */
export function titlesFirst(query, results, normalize = normalizeText) {
  const q = normalize(query);
  if (!q) return results;
  const named = [];
  const rest = [];
  for (const r of results) (normalize(r.item?.title ?? '') === q ? named : rest).push(r);
  return named.length ? [...named, ...rest] : results;
}

// The default re-ranking of `Recommender.search`: a result whose title is the query (case,
// accents' composition and punctuation aside) moves to the front; the rest keep the
// encoder's order. A catalog with title conventions of its own (MovieLens moves articles
// to the end: "Matrix, The (1999)") passes its own `rerank(query, results)`.

/** `text` as titles are compared: NFKC, lowercase, runs of anything but letters and digits as one space. */
function normalize(text) {
  return String(text).normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
}

/** `results` ({item: {title}}, best first) with the ones titled `query` moved to the front. */
export function rerankExactTitle(query, results) {
  const q = normalize(query);
  if (!q) return results;
  const named = [];
  const rest = [];
  for (const r of results) (normalize(r.item?.title ?? '') === q ? named : rest).push(r);
  return named.length ? [...named, ...rest] : results;
}

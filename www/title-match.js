// The demo's title normalization for MovieLens titles, passed to `Recommender.search` as
// its `normalizeTitle`: the encoder ranks by meaning, which puts "Lion King 1½" above
// "Lion King, The (1994)" for the query "The Lion King". Normalized the MovieLens way (a
// moved article put back, a trailing year or alternate title dropped), the typed title
// matches and comes first. This is the catalog's convention, not the library's.

// Articles that catalogs (MovieLens among them) move to the end: "Matrix, The".
const TRAILING_ARTICLE = /^(.*), (the|a|an|les|la|le|l'|il|el|die|der|das|den|det)$/u;
const LEADING_ARTICLE = /^(the|a|an) /u;
// A trailing "(1994)" or "(2010-2013)", and a trailing alternate title in parentheses.
const TRAILING_PARENS = /\s*\([^()]*\)\s*$/u;

/**
 * A title or a query as they are compared: lowercase, trailing years and alternate
 * titles dropped, a moved article put back then dropped ("Lion King, The (1994)" and
 * "the lion king" both give "lion king"), punctuation as spaces.
 */
export function normalizeTitle(text) {
  let s = String(text).normalize('NFKC').toLowerCase().trim();
  for (let i = 0; i < 3 && TRAILING_PARENS.test(s); i++) {
    const cut = s.replace(TRAILING_PARENS, '');
    if (!cut.trim()) break;
    s = cut;
  }
  s = s.replace(TRAILING_ARTICLE, '$2 $1');
  s = s.replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
  return s.replace(LEADING_ARTICLE, '');
}

/** Whether `title` is what `query` names (see `normalizeTitle`). */
export function isTitle(query, title) {
  const q = normalizeTitle(query);
  return q !== '' && q === normalizeTitle(title);
}

// Title re-ranking for search(), in Node (pkg/search.js): a typed title comes first, with
// the library's default normalization and with the demo's MovieLens one (www/title-match.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTitle, normalizeTitle } from '../../www/title-match.js';
import { titlesFirst } from '../../pkg/search.js';

test('titles and queries normalize to the same words', () => {
  assert.equal(normalizeTitle('Lion King, The (1994)'), 'lion king');
  assert.equal(normalizeTitle('The Lion King'), 'lion king');
  assert.equal(normalizeTitle('Godfather: Part II, The (1974)'), 'godfather part ii');
  assert.equal(normalizeTitle('What Time Is It There? (Ni neibian jidian) (2001)'), 'what time is it there');
  assert.equal(normalizeTitle('City of Lost Children, The (Cité des enfants perdus, La) (1995)'), 'city of lost children');
  assert.equal(normalizeTitle('(500) Days of Summer (2009)'), '500 days of summer');
  assert.equal(normalizeTitle('(2009)'), '2009', 'a title that is only parentheses keeps them');
  assert.equal(normalizeTitle('Amélie'), 'amélie');
});

test('a title matches its own name only, whole', () => {
  assert.ok(isTitle('the lion king', 'Lion King, The (1994)'));
  assert.ok(isTitle('Matrix', 'Matrix, The (1999)'));
  assert.ok(!isTitle('Toy Story', 'Toy Story 2 (1999)'));
  assert.ok(!isTitle('Toy', 'Toys (1992)'));
  assert.ok(!isTitle('', ''), 'an empty query names nothing');
  assert.ok(!isTitle('heist gone wrong', 'Reservoir Dogs (1992)'));
});

test('re-ranking puts the typed title first and keeps the rest in their order', () => {
  const r = (title, score) => ({ itemId: title, score, item: { title } });
  const found = [r('Lion King 1½, The (2004)', 44), r('Lion (2016)', 42), r('Lion King, The (1994)', 39), r('Secondhand Lions (2003)', 30)];
  assert.deepEqual(titlesFirst('The Lion King', found, normalizeTitle).map((x) => x.itemId), ['Lion King, The (1994)', 'Lion King 1½, The (2004)', 'Lion (2016)', 'Secondhand Lions (2003)']);
  assert.deepEqual(titlesFirst('lions', found, normalizeTitle), found, 'no title named: unchanged');
});

test('the library\'s default moves an exact title (case and punctuation aside) first, and nothing else', () => {
  const r = (title) => ({ itemId: title, score: 0, item: { title } });
  const found = [r('Heat 2'), r('The Heat!'), r('Heat')];
  assert.deepEqual(titlesFirst('heat', found).map((x) => x.itemId), ['Heat', 'Heat 2', 'The Heat!']);
  assert.deepEqual(titlesFirst('the heat', found).map((x) => x.itemId), ['The Heat!', 'Heat 2', 'Heat']);
  assert.deepEqual(titlesFirst('lion king', found), found, 'no title named: unchanged');
});

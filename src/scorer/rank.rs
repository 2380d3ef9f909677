//! Ranking for one user (or a batch of users in an evaluation): every item scored with
//! one matrix product on the burn device, the terms standardized and blended, items
//! the user acted on removed, top-k, an optional diversity re-ranking (MMR over the
//! item embeddings), and per result the history item or interest that drove it.

use burn::prelude::*;

use super::metrics::top_k;
use super::model::{Blend, ItemSide, ScorerParams};
use super::profile::{Source, UserQuery, solve_with};
use crate::error::{Error, ErrorKind, Result};

/// Weight of the popularity bias added to every blend: it only breaks near-ties, and
/// ranks by popularity for a user with nothing else to go on.
pub const POPULARITY_TIEBREAK: f32 = 1e-3;

/// How the item matrix is held on the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// f32 values, one upload (the default).
    #[default]
    F32,
    /// Only `[q | c]` in f32 on the device; the text term is computed on the host from
    /// the int8 embedding rows the item side already holds (the query quantized to int8,
    /// integer dot products): a third of the bytes, for catalogs whose full f32 matrix
    /// would not fit in a wasm module's 4 GiB.
    Compact,
    /// f32 values in blocks of rows, each its own device buffer and product: the host
    /// never holds a second copy of the whole matrix, and no buffer passes a GPU's
    /// binding limits (WebGPU's default is 128 MiB).
    F32Blocks,
}

impl Precision {
    /// For `device`: on burn's CPU backend [`Precision::cpu`], elsewhere (a GPU) f32 in blocks.
    pub fn for_device(device: &Device, items: usize, width: usize) -> Precision {
        if *device == Device::flex() { Precision::cpu(items, width) } else { Precision::F32Blocks }
    }

    /// For burn's CPU backend: the full f32 matrix up to `COMPACT_ABOVE_BYTES`, compact above.
    pub fn cpu(items: usize, width: usize) -> Precision {
        if items.saturating_mul(width).saturating_mul(4) > COMPACT_ABOVE_BYTES { Precision::Compact } else { Precision::F32 }
    }
}

/// Size of a full f32 item matrix above which the CPU backend goes compact.
pub const COMPACT_ABOVE_BYTES: usize = 1 << 30;

/// Score columns per user in the product: collaborative, item-item, semantic, interest,
/// autoencoder.
const TERMS: usize = 5;

/// Bytes per upload block with [`Precision::F32Blocks`]: 64 MiB, under WebGPU's default
/// binding limit (128 MiB) whatever the matrix's width (with the autoencoder's decoder a
/// row can pass 1,000 f32 values); small in tests, so that they use several blocks.
const BLOCK_BYTES: usize = if cfg!(test) { 1000 * 56 * 4 } else { 64 << 20 };

/// The item matrix on a burn device and what ranking needs besides it.
#[derive(Debug)]
pub struct Scorer {
    device: Device,
    items: ItemSide,
    params: Option<ScorerParams>,
    /// `[n, k + r + v + d]`: each item's `[q | c | v | e]` (`v`: the autoencoder's decoder
    /// column and bias, `latent + 1` wide, or nothing), in row blocks (one block unless
    /// [`Precision::F32Blocks`]).
    matrix: Vec<Tensor<2>>,
    bias: Vec<f32>,
    /// Per scenario, each item's lift, standardized over the items.
    lift: Vec<Vec<f32>>,
    precision: Precision,
}

/// One user's three term scores over all items, before blending.
#[derive(Clone, Debug, PartialEq)]
pub struct Terms {
    /// `<p_u, q_i>` per item (zeros without factors).
    pub collaborative: Vec<f32>,
    /// `<a_u, c_i>` per item.
    pub item_item: Vec<f32>,
    /// `<s_u, e_i>` per item.
    pub semantic: Vec<f32>,
    /// `<t_u, e_i>` per item (the typed interests alone).
    pub interest: Vec<f32>,
    /// `<z_u, d_i> + b_i` per item: the autoencoder's logits (zeros without one).
    pub vae: Vec<f32>,
}

/// How to rank.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RankOptions {
    /// Results wanted.
    pub k: usize,
    /// MMR strength in `[0, 1]`: 0 ranks by score alone.
    pub diversity: f32,
    /// Item positions never returned (the user's history, hidden items).
    pub exclude: Vec<u32>,
    /// When given, only these positions are candidates.
    pub only: Option<Vec<u32>>,
    /// Term weights instead of the catalog's.
    pub blend: Option<Blend>,
    /// Whether to compute `because` for each result.
    pub explain: bool,
    /// The request's scenario (an index into the catalog's scenarios).
    pub scenario: Option<usize>,
}

/// Why an item was recommended: the contributor whose part of its score was largest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Because {
    /// A history event or a typed interest.
    pub source: Source,
    /// Its part of the item's blended score.
    pub contribution: f32,
}

/// One result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    /// Item position.
    pub index: u32,
    /// Blended score (standardized terms, weighted).
    pub score: f32,
    /// The main reason, when asked for and there is one.
    pub because: Option<Because>,
}

/// Mean and standard deviation of `v` (population); `(0, 0)` when empty.
fn moments(v: &[f32]) -> (f32, f32) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, var.sqrt() as f32)
}

impl Scorer {
    /// Puts the item matrix on `device` in f32. `params` is `None` for a text-only catalog.
    pub fn new(items: ItemSide, params: Option<ScorerParams>, device: &Device) -> Result<Scorer> {
        Scorer::with_precision(items, params, device, Precision::F32)
    }

    /// [`Scorer::new`] with the matrix held as [`Precision::for_device`] chooses.
    pub fn for_device(items: ItemSide, params: Option<ScorerParams>, device: &Device) -> Result<Scorer> {
        let width = params.as_ref().map_or(0, |p| p.als_dims + p.item_rank + p.vae_decoder().len()) + items.embedding_dims;
        let precision = Precision::for_device(device, items.len, width);
        Scorer::with_precision(items, params, device, precision)
    }

    /// [`Scorer::new`] with the matrix held as `precision` says.
    pub fn with_precision(items: ItemSide, params: Option<ScorerParams>, device: &Device, precision: Precision) -> Result<Scorer> {
        items.check()?;
        if let Some(p) = &params {
            p.check(items.record_dims, items.embedding_dims)?;
        } else if items.record_dims != 0 {
            return Err(Error::new(ErrorKind::Input, "item factors without scorer params"));
        }
        let (k, r) = params.as_ref().map_or((0, 0), |p| (p.als_dims, p.item_rank));
        // The decoder's columns `[d_i | b_i]` (after the first-layer row, which only the
        // fold-in reads).
        let decoder = params.as_ref().map_or(0..0, ScorerParams::vae_decoder);
        let v = decoder.len();
        let width = k + r + v + items.embedding_dims;
        // Rows `range` of the matrix, converted as they are written: the host never holds
        // the whole matrix in a second precision.
        let rows = |range: std::ops::Range<usize>, out: &mut dyn FnMut(&[f32])| {
            for i in range {
                let record = items.record(i);
                out(&record[..k]);
                out(&record[k + r..k + 2 * r]);
                out(&record[decoder.clone()]);
                out(&items.embedding(i));
            }
        };
        let matrix = match precision {
            Precision::F32 => {
                let mut data = Vec::with_capacity(items.len * width);
                rows(0..items.len, &mut |v| data.extend_from_slice(v));
                vec![Tensor::<2>::from_data(TensorData::new(data, [items.len, width]), device)]
            }
            Precision::Compact => {
                // At least one column, so a text-only catalog still has a matrix.
                let cols = (k + r + v).max(1);
                let mut data = Vec::with_capacity(items.len * cols);
                for i in 0..items.len {
                    let record = items.record(i);
                    data.extend_from_slice(&record[..k]);
                    data.extend_from_slice(&record[k + r..k + 2 * r]);
                    data.extend_from_slice(&record[decoder.clone()]);
                    if k + r + v == 0 {
                        data.push(0.0);
                    }
                }
                vec![Tensor::<2>::from_data(TensorData::new(data, [items.len, cols]), device)]
            }
            Precision::F32Blocks => {
                let block = (BLOCK_BYTES / (4 * width.max(1))).max(1);
                (0..items.len.div_ceil(block).max(1))
                    .map(|b| {
                        let range = b * block..((b + 1) * block).min(items.len);
                        let mut data = Vec::with_capacity(range.len() * width);
                        let n = range.len();
                        rows(range, &mut |v| data.extend_from_slice(v));
                        Tensor::<2>::from_data(TensorData::new(data, [n, width]), device)
                    })
                    .collect()
            }
        };
        let standardize = |v: Vec<f32>| -> Vec<f32> {
            let (mean, std) = moments(&v);
            v.iter().map(|b| if std > 0.0 { (b - mean) / std } else { 0.0 }).collect()
        };
        let bias = standardize(items.bias.clone());
        let lift = params.as_ref().map_or_else(Vec::new, |p| {
            (0..p.scenarios).map(|s| standardize((0..items.len).map(|i| items.record(i)[p.scenario_column(s)]).collect())).collect()
        });
        Ok(Scorer { device: device.clone(), items, params, matrix, bias, lift, precision })
    }

    /// How the item matrix is held.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Bytes of the item matrix on the device.
    pub fn matrix_bytes(&self) -> usize {
        self.matrix.iter().map(|m| m.dims()[0] * m.dims()[1] * 4).sum()
    }

    /// The items scored.
    pub fn items(&self) -> &ItemSide {
        &self.items
    }

    /// The catalog's scorer params.
    pub fn params(&self) -> Option<&ScorerParams> {
        self.params.as_ref()
    }

    /// The term scores of each query, with one `[n, D] x [D, 3 * users]` product.
    pub fn terms(&self, queries: &[&UserQuery]) -> Result<Vec<Terms>> {
        let out = self.product(queries)?;
        let data = out.try_into_data().map_err(read_failed)?;
        self.split(data, queries)
    }

    /// [`Scorer::terms`] for devices read back asynchronously (WebGPU in a browser).
    pub async fn terms_async(&self, queries: &[&UserQuery]) -> Result<Vec<Terms>> {
        let out = self.product(queries)?;
        let data = out.into_data_async().await.map_err(read_failed)?;
        self.split(data, queries)
    }

    /// # Shapes
    /// - output: `[n, 5 * queries]`, columns per query: collaborative, item-item, semantic,
    ///   interest, autoencoder
    fn product(&self, queries: &[&UserQuery]) -> Result<Tensor<2>> {
        let (k, r, v) = self.params.as_ref().map_or((0, 0, 0), |p| (p.als_dims, p.item_rank, p.vae_decoder().len()));
        let d = self.items.embedding_dims;
        let width = k + r + v + d;
        let cols = TERMS * queries.len();
        let mut q = vec![0.0f32; width * cols];
        for (u, query) in queries.iter().enumerate() {
            if query.p.len() != k || query.a.len() != r || query.s.len() != d || query.t.len() != d || query.z.len() != v {
                return Err(Error::new(ErrorKind::Input, "a user query does not match the catalog's dimensions"));
            }
            let c = TERMS * u;
            for (j, v) in query.p.iter().enumerate() {
                q[j * cols + c] = *v;
            }
            for (j, v) in query.a.iter().enumerate() {
                q[(k + j) * cols + c + 1] = *v;
            }
            for (j, x) in query.z.iter().enumerate() {
                q[(k + r + j) * cols + c + 4] = *x;
            }
            for (j, (x, w)) in query.s.iter().zip(&query.t).enumerate() {
                q[(k + r + v + j) * cols + c + 2] = *x;
                q[(k + r + v + j) * cols + c + 3] = *w;
            }
        }
        if self.precision == Precision::Compact {
            // The text rows are not on the device: keep `[q | c | v]`'s rows (or the one zero column).
            let rows = self.matrix.first().map_or(1, |m| m.dims()[1]);
            q.truncate(rows * cols);
            q.resize(rows * cols, 0.0);
            let q = Tensor::<2>::from_data(TensorData::new(q, [rows, cols]), &self.device);
            return Ok(self.multiply(q));
        }
        let q = Tensor::<2>::from_data(TensorData::new(q, [width, cols]), &self.device);
        Ok(self.multiply(q))
    }

    /// Every block of the matrix times `q`, the results stacked.
    fn multiply(&self, q: Tensor<2>) -> Tensor<2> {
        let mut parts: Vec<Tensor<2>> = self.matrix.iter().map(|m| m.clone().matmul(q.clone())).collect();
        match parts.len() {
            1 => parts.swap_remove(0),
            _ => Tensor::cat(parts, 0),
        }
    }

    fn split(&self, data: TensorData, queries: &[&UserQuery]) -> Result<Vec<Terms>> {
        let users = queries.len();
        let values = data.try_into_vec::<f32>().map_err(read_failed)?;
        let n = self.items.len;
        if values.len() != n * TERMS * users {
            return Err(Error::new(ErrorKind::Backend, "the device returned a wrongly sized score matrix"));
        }
        let cols = TERMS * users;
        Ok((0..users)
            .map(|u| {
                let column = |t: usize| (0..n).map(|i| values[i * cols + TERMS * u + t]).collect();
                let (semantic, interest) = if self.precision == Precision::Compact {
                    (self.text_scores(&queries[u].s), self.text_scores(&queries[u].t))
                } else {
                    (column(2), column(3))
                };
                Terms { collaborative: column(0), item_item: column(1), semantic, interest, vae: column(4) }
            })
            .collect())
    }

    /// `<s, e_i>` for every item from the int8 rows: `s` quantized to int8 with one
    /// scale, integer dot products, each rescaled by both rows' scales.
    fn text_scores(&self, s: &[f32]) -> Vec<f32> {
        let max = s.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if max == 0.0 {
            return vec![0.0; self.items.len];
        }
        let scale = max / 127.0;
        let sq: Vec<i8> = s.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8).collect();
        (0..self.items.len)
            .map(|i| {
                let dot: i32 = self.items.row(i).iter().zip(&sq).map(|(&a, &b)| a as i32 * b as i32).sum();
                dot as f32 * self.items.scales[i] * scale
            })
            .collect()
    }

    /// The weights for `query`: `blend` when given, else the catalog's (its foreign blend
    /// for a profile of foreign events without any on this catalog's items, its
    /// short-profile blend for a short profile), else semantic only.
    pub fn blend_for(&self, query: &UserQuery, blend: Option<Blend>) -> Blend {
        let sources = || query.contributors.iter().map(|c| c.source);
        let foreign_only = sources().any(|s| matches!(s, Source::Foreign(_)))
            && !sources().any(|s| matches!(s, Source::Event { .. }));
        let catalog = self.params.as_ref().map(|p| match (p.foreign_blend, p.short_blend) {
            (Some(foreign), _) if foreign_only => foreign,
            (_, Some(short)) if query.contributors.len() <= p.short_profile => short,
            _ => p.blend,
        });
        blend.or(catalog).unwrap_or(Blend { semantic: 1.0, collaborative: 0.0, item_item: 0.0, ..Blend::default() })
    }

    /// Number of scenarios the catalog knows.
    pub fn scenarios(&self) -> usize {
        self.lift.len()
    }

    /// Standardizes each term over `over` (all items when `None`) and blends; with a
    /// `scenario`, its item lifts count with the blend's scenario weight.
    /// Returns the scores and each term's effective multiplier (weight / std), which
    /// explanations need (collaborative, item-item, semantic, interest).
    pub fn blend(&self, terms: &Terms, blend: &Blend, over: Option<&[u32]>, scenario: Option<usize>) -> (Vec<f32>, [f32; 4]) {
        let lift = scenario.and_then(|s| self.lift.get(s)).filter(|_| blend.scenario != 0.0);
        let pick =
            |v: &[f32]| -> Vec<f32> { over.map_or_else(|| v.to_vec(), |o| o.iter().map(|&i| v[i as usize]).collect()) };
        let scale = |v: &[f32], w: f32| -> (f32, f32) {
            let (mean, std) = moments(&pick(v));
            if std > 1e-12 && w != 0.0 { (mean, w / std) } else { (0.0, 0.0) }
        };
        let parts = [
            (&terms.collaborative, scale(&terms.collaborative, blend.collaborative)),
            (&terms.item_item, scale(&terms.item_item, blend.item_item)),
            (&terms.semantic, scale(&terms.semantic, blend.semantic)),
            (&terms.interest, scale(&terms.interest, blend.interest)),
            (&terms.vae, scale(&terms.vae, blend.vae)),
        ];
        let scores = (0..self.items.len)
            .map(|i| {
                let mut s = (blend.popularity + POPULARITY_TIEBREAK) * self.bias[i];
                if let Some(lift) = lift {
                    s += blend.scenario * lift[i];
                }
                for (v, (mean, mul)) in &parts {
                    if *mul != 0.0 {
                        s += (v[i] - mean) * mul;
                    }
                }
                s
            })
            .collect();
        (scores, [parts[0].1.1, parts[1].1.1, parts[2].1.1, parts[3].1.1])
    }

    /// Ranks for one user whose terms were computed: blend, exclude, top-k, MMR, reasons.
    pub fn rank(&self, query: &UserQuery, terms: &Terms, opts: &RankOptions) -> Result<Vec<Ranked>> {
        if !(0.0..=1.0).contains(&opts.diversity) {
            return Err(Error::new(ErrorKind::Input, format!("diversity {} is outside 0..=1", opts.diversity)));
        }
        let blend = self.blend_for(query, opts.blend);
        if let Some(s) = opts.scenario
            && s >= self.lift.len()
        {
            return Err(Error::new(ErrorKind::Input, format!("scenario {s} is not one of the catalog's {}", self.lift.len())));
        }
        let (scores, multipliers) = self.blend(terms, &blend, opts.only.as_deref(), opts.scenario);
        let mut excluded = opts.exclude.clone();
        if let Some(only) = &opts.only {
            let mut allowed = vec![false; self.items.len];
            for &i in only {
                if let Some(a) = allowed.get_mut(i as usize) {
                    *a = true;
                }
            }
            excluded.extend((0..self.items.len as u32).filter(|&i| !allowed[i as usize]));
        }
        let picked = if opts.diversity > 0.0 && opts.k > 1 {
            let pool = top_k(&scores, (opts.k * 4).max(50), &excluded);
            mmr(&self.items, &pool, &scores, opts.k, opts.diversity)
        } else {
            top_k(&scores, opts.k, &excluded)
        };
        Ok(picked
            .into_iter()
            .map(|index| Ranked {
                index,
                score: scores[index as usize],
                because: if opts.explain { self.because(query, index, &multipliers) } else { None },
            })
            .collect())
    }

    /// The contributor with the largest positive part in item `index`'s score.
    fn because(&self, query: &UserQuery, index: u32, multipliers: &[f32; 4]) -> Option<Because> {
        let (k, r) = self.params.as_ref().map_or((0, 0), |p| (p.als_dims, p.item_rank));
        let alpha = self.params.as_ref().map_or(0.0, |p| p.alpha);
        let record = self.items.record(index as usize);
        let (q_i, c_i) = (&record[..k], &record[k + r..k + 2 * r]);
        let e_i = &self.items.embedding(index as usize);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        query
            .contributors
            .iter()
            .filter(|c| c.weight > 0.0)
            .map(|c| {
                let mut part = 0.0;
                if multipliers[0] != 0.0 && k > 0 {
                    // p = M^-1 sum (1 + alpha w_h) q_h, so h's share of <p, q_i> is exact.
                    part += multipliers[0] * (1.0 + alpha * c.weight) * dot(&solve_with(&query.chol, &c.q), q_i);
                }
                part += multipliers[1] * c.weight * dot(&c.a, c_i);
                if query.s_norm > 0.0 {
                    part += multipliers[2] * c.weight * dot(&c.e, e_i) / query.s_norm;
                }
                if query.t_norm > 0.0 && matches!(c.source, Source::Interest(_)) {
                    part += multipliers[3] * c.weight * dot(&c.e, e_i) / query.t_norm;
                }
                Because { source: c.source, contribution: part }
            })
            .filter(|b| b.contribution.is_finite() && b.contribution > 0.0)
            .max_by(|a, b| a.contribution.total_cmp(&b.contribution))
    }
}

/// Maximal marginal relevance over `pool` (best first): each pick maximizes
/// `(1 - diversity) * relevance - diversity * max cosine to the picks so far`, with
/// relevance the score rescaled to `[0, 1]` over the pool.
pub fn mmr(items: &ItemSide, pool: &[u32], scores: &[f32], k: usize, diversity: f32) -> Vec<u32> {
    if pool.is_empty() {
        return Vec::new();
    }
    let (lo, hi) =
        pool.iter().map(|&i| scores[i as usize]).fold((f32::MAX, f32::MIN), |(l, h), s| (l.min(s), h.max(s)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut left: Vec<u32> = pool.to_vec();
    let mut max_sim = vec![f32::MIN; left.len()];
    let mut picked = Vec::with_capacity(k.min(left.len()));
    while picked.len() < k && !left.is_empty() {
        let value = |j: usize| {
            let rel = (scores[left[j] as usize] - lo) / span;
            let sim = if picked.is_empty() { 0.0 } else { max_sim[j] };
            (1.0 - diversity) * rel - diversity * sim
        };
        // Ties keep the pool's order (best score, then position).
        let best = (0..left.len()).fold(0, |b, j| if value(j) > value(b) { j } else { b });
        let chosen = left.remove(best);
        max_sim.remove(best);
        for (j, &cand) in left.iter().enumerate() {
            max_sim[j] = max_sim[j].max(items.embedding_dot(cand as usize, chosen as usize));
        }
        picked.push(chosen);
    }
    picked
}

fn read_failed(e: impl std::fmt::Debug) -> Error {
    Error::new(ErrorKind::Backend, format!("reading scores from the device failed: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scorer::profile::{Event, Interest, user_query};

    /// Four items on two tastes: 0 and 1 (taste A), 2 and 3 (taste B).
    fn scorer() -> Scorer {
        let q = [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]];
        let mut factors = Vec::new();
        let mut gram = vec![0.0; 4];
        for v in &q {
            factors.extend_from_slice(v); // q
            factors.extend_from_slice(v); // a (r = 2)
            factors.extend_from_slice(v); // c
            for i in 0..2 {
                for j in 0..2 {
                    gram[i * 2 + j] += v[i] * v[j];
                }
            }
        }
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let items = ItemSide::new(6, factors, vec![3.0, 1.0, 2.0, 0.0], 2, &[1.0, 0.0, s, s, 0.0, 1.0, s, s]);
        let params = ScorerParams {
            blend: Blend { collaborative: 0.5, item_item: 0.5, semantic: 0.0, popularity: 0.0, scenario: 0.0, vae: 0.0, interest: 0.0 },
            ..ScorerParams::untuned(2, 2, 0.1, 10.0, gram)
        };
        Scorer::new(items, Some(params), &Device::flex()).unwrap()
    }

    fn recommend(scorer: &Scorer, events: &[Event], interests: &[Interest], opts: RankOptions) -> Vec<Ranked> {
        let query = user_query(scorer.items(), scorer.params(), events, interests).unwrap();
        let terms = scorer.terms(&[&query]).unwrap().remove(0);
        scorer.rank(&query, &terms, &opts).unwrap()
    }

    #[test]
    fn liking_an_item_ranks_its_taste_first_and_explains_it() {
        let s = scorer();
        let got = recommend(
            &s,
            &[Event { item: 0, weight: 1.0, age_days: 0.0 }],
            &[],
            RankOptions { k: 3, exclude: vec![0], explain: true, ..Default::default() },
        );
        // Item 1 is taste A; item 3 carries a little of it, item 2 none.
        assert_eq!(got.iter().map(|r| r.index).collect::<Vec<_>>(), vec![1, 3, 2]);
        assert_eq!(got[0].because.map(|b| b.source), Some(Source::Event { index: 0, item: 0 }));
    }

    #[test]
    fn a_cold_user_gets_the_popular_items_and_no_reasons() {
        let s = scorer();
        let got = recommend(&s, &[], &[], RankOptions { k: 10, explain: true, ..Default::default() });
        assert_eq!(got.iter().map(|r| r.index).collect::<Vec<_>>(), vec![0, 2, 1, 3]);
        assert!(got.iter().all(|r| r.because.is_none()));
    }

    #[test]
    fn batched_terms_equal_single_user_terms() {
        let s = scorer();
        let a = user_query(s.items(), s.params(), &[Event { item: 0, weight: 1.0, age_days: 0.0 }], &[]).unwrap();
        let b = user_query(s.items(), s.params(), &[Event { item: 3, weight: 2.0, age_days: 0.0 }], &[]).unwrap();
        let both = s.terms(&[&a, &b]).unwrap();
        assert_eq!(both[0], s.terms(&[&a]).unwrap()[0]);
        assert_eq!(both[1], s.terms(&[&b]).unwrap()[0]);
    }

    #[test]
    fn diversity_trades_a_near_duplicate_for_another_taste() {
        let s = scorer();
        let blend = Some(Blend { collaborative: 0.0, item_item: 0.0, semantic: 1.0, popularity: 0.0, scenario: 0.0, vae: 0.0, interest: 0.0 });
        let interest = [Interest { embedding: vec![1.0, 0.2], weight: 1.0, age_days: 0.0 }];
        let plain = recommend(&s, &[], &interest, RankOptions { k: 2, blend, ..Default::default() });
        let diverse = recommend(&s, &[], &interest, RankOptions { k: 2, blend, diversity: 0.9, ..Default::default() });
        assert_eq!(plain.iter().map(|r| r.index).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(diverse.iter().map(|r| r.index).collect::<Vec<_>>(), vec![0, 2]);
        let err = s.rank(
            &user_query(s.items(), s.params(), &[], &[]).unwrap(),
            &s.terms(&[&user_query(s.items(), s.params(), &[], &[]).unwrap()]).unwrap()[0],
            &RankOptions { k: 1, diversity: 2.0, ..Default::default() },
        );
        assert!(err.is_err());
    }

    #[test]
    fn only_restricts_candidates_and_k_past_the_end_returns_all() {
        let s = scorer();
        let got = recommend(
            &s,
            &[Event { item: 0, weight: 1.0, age_days: 0.0 }],
            &[],
            RankOptions { k: 99, only: Some(vec![2, 3]), ..Default::default() },
        );
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|r| r.index >= 2));
    }

    #[test]
    fn a_compact_matrix_and_one_uploaded_in_blocks_rank_as_the_full_f32_matrix_does() {
        use crate::scorer::bench::{synthetic, synthetic_events};
        let (items, params) = synthetic(3000, 16, 8, 32);
        let events = synthetic_events(3000, 20);
        let rank = |precision: Precision| {
            let s = Scorer::with_precision(items.clone(), Some(params.clone()), &Device::flex(), precision).unwrap();
            let query = user_query(s.items(), s.params(), &events, &[]).unwrap();
            let terms = s.terms(&[&query]).unwrap().remove(0);
            let exclude = events.iter().map(|e| e.item).collect();
            let got = s.rank(&query, &terms, &RankOptions { k: 20, exclude, ..Default::default() }).unwrap();
            (got.iter().map(|r| r.index).collect::<Vec<_>>(), s.matrix_bytes())
        };
        let (f32s, bytes32) = rank(Precision::F32);
        let (blocks, _) = rank(Precision::F32Blocks);
        let (compact, compact_bytes) = rank(Precision::Compact);
        assert_eq!(blocks, f32s);
        assert_eq!(compact_bytes * (16 + 8 + 32), bytes32 * (16 + 8), "the compact matrix holds [q | c] only");
        let shared = compact.iter().filter(|i| f32s.contains(i)).count();
        assert!(shared >= 18, "the int8 text term keeps {shared} of the f32 top 20");
        assert_eq!(Precision::cpu(1000, 576), Precision::F32);
        assert_eq!(Precision::cpu(1_000_000, 576), Precision::Compact);
    }

    #[test]
    fn a_typed_interest_moves_the_list_its_way_over_a_history_and_explains_it() {
        let s = scorer();
        let history = [Event { item: 0, weight: 1.0, age_days: 0.0 }];
        let blend = Some(Blend { interest: crate::scorer::model::INTEREST_WEIGHT, ..s.params().unwrap().blend });
        let opts = RankOptions { k: 3, exclude: vec![0], blend, explain: true, ..Default::default() };
        let before = recommend(&s, &history, &[], opts.clone());
        assert_eq!(before[0].index, 1, "taste A first");
        // Typing something like taste B (item 2's text).
        let interest = [Interest { embedding: vec![0.0, 1.0], weight: 1.0, age_days: 0.0 }];
        let after = recommend(&s, &history, &interest, opts);
        let at = |list: &[Ranked]| list.iter().position(|r| r.index == 2).unwrap_or(usize::MAX);
        assert!(at(&after) < at(&before), "item 2 (taste B) moves up: {before:?} -> {after:?}");
        assert_eq!(after[at(&after)].because.map(|b| b.source), Some(Source::Interest(0)), "and the interest is why");
    }
}

//! The item side of the scorer and the constants the device needs, as the catalog
//! carries them: per item a factor record `[q | a | c]` (ALS factors `q`, width `k`;
//! the low-rank item-item model's input rows `a` and output rows `c`, width `r` each)
//! and a popularity bias; in the manifest's `collaborative.params`, a [`ScorerParams`]
//! (fold-in constants, the ALS Gram matrix, blend weights, the text-to-factor map).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::catalog::shard::MAX_FACTOR_DIMS;
use crate::error::{Error, ErrorKind, Result};
use crate::limits::EVENT_TYPES;

use super::vae::VaeEncoder;

/// Version of [`ScorerParams`]; a reader refuses others.
pub const PARAMS_VERSION: u32 = 1;

/// Weights of the score's terms. Each term is standardized over the scored items (zero
/// mean, unit variance) before weighting, so the weights compare across catalogs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Blend {
    /// `<p_u, q_i>`: the ALS fold-in.
    pub collaborative: f32,
    /// `<a_u, c_i>`: the low-rank item-item model.
    pub item_item: f32,
    /// `<s_u, e_i>`: text embeddings.
    pub semantic: f32,
    /// The item's popularity bias.
    pub popularity: f32,
    /// The item's lift in the request's scenario (0 without one).
    #[serde(default)]
    pub scenario: f32,
    /// `<z_u, d_i> + b_i`: the autoencoder's decoder logits for the profile's latent mean
    /// (0 in catalogs without one).
    #[serde(default)]
    pub vae: f32,
    /// `<t_u, e_i>`: the typed interests' own text vector. Interaction logs hold no typed
    /// interests, so this weight is not tuned: it is [`INTEREST_WEIGHT`], strong enough
    /// that what a visitor types moves the list whatever their history.
    #[serde(default = "interest_weight")]
    pub interest: f32,
}

/// Default weight of the typed-interest term. The terms are standardized, and the
/// collaborative ones are heavy-tailed (a visitor's best matches sit 10-20 deviations up),
/// so at 1 a typed interest hardly moves a list with any history; on ml-latest-small,
/// "horror" over a profile of three animated likes and two dislikes brings 0 horror films
/// into the top 10 at 1, 2 at 3 and 4 at 5, with half the list still the history's kind.
pub const INTEREST_WEIGHT: f32 = 5.0;

fn interest_weight() -> f32 {
    INTEREST_WEIGHT
}

impl Default for Blend {
    fn default() -> Self {
        Blend { collaborative: 0.7, item_item: 0.3, semantic: 0.0, popularity: 0.0, scenario: 0.0, vae: 0.0, interest: INTEREST_WEIGHT }
    }
}

/// The rating head: `r = mean + b_i + <w_u, [q_i, 1]>`, over the implicit head's item
/// factors `q_i` (shared by both heads), an item rating bias `b_i` (a record column)
/// and a user vector `w_u` solved on the device from the user's own ratings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatingHead {
    /// Mean rating of the log.
    pub mean: f32,
    /// Ridge regularization of the user's solve.
    pub reg: f32,
    /// Lowest rating in the log (predictions are clamped to it).
    pub min: f32,
    /// Highest rating in the log.
    pub max: f32,
}

/// Confidence per event type (`EVENT_TYPES`, in its order): how much one event says about
/// the user's taste. A negative weight marks a negative event (a dislike): it counts in
/// the ALS fold-in as a known non-preference and pushes the semantic vector away. The
/// `rate` weight applies per star above or below the neutral rating. In JSON, an object
/// keyed by event type.
#[derive(Clone, Debug, PartialEq)]
pub struct EventWeights([f32; EVENT_TYPES.len()]);

impl EventWeights {
    /// The weight of event type `kind`, or None for a type `EVENT_TYPES` does not hold.
    pub fn of(&self, kind: &str) -> Option<f32> {
        EVENT_TYPES.iter().position(|t| *t == kind).map(|i| self.0[i])
    }

    /// These weights with `kind`'s set to `weight`; an unknown type or a non-finite weight
    /// is refused, naming `what`.
    pub fn with(mut self, kind: &str, weight: f32, what: &str) -> Result<EventWeights> {
        let Some(i) = EVENT_TYPES.iter().position(|t| *t == kind) else {
            return Err(Error::new(
                ErrorKind::Input,
                format!("{what}: {kind:?} is not an event type ({})", EVENT_TYPES.join(", ")),
            ));
        };
        if !weight.is_finite() {
            return Err(Error::new(ErrorKind::Input, format!("{what}.{kind} must be a finite number")));
        }
        self.0[i] = weight;
        Ok(self)
    }
}

impl Default for EventWeights {
    fn default() -> Self {
        // view, click, like, dislike, rate (per star), purchase: EVENT_TYPES' order.
        EventWeights([0.3, 0.5, 1.0, -1.0, 0.5, 1.0])
    }
}

impl Serialize for EventWeights {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(EVENT_TYPES.len()))?;
        for (kind, weight) in EVENT_TYPES.iter().zip(&self.0) {
            map.serialize_entry(kind, weight)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for EventWeights {
    /// Every event type, each once, nothing else.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let given = std::collections::BTreeMap::<String, f32>::deserialize(deserializer)?;
        let mut weights = EventWeights::default();
        for (kind, weight) in &given {
            weights = weights.with(kind, *weight, "event_weights").map_err(serde::de::Error::custom)?;
        }
        match EVENT_TYPES.iter().find(|t| !given.contains_key(**t)) {
            Some(missing) => Err(serde::de::Error::custom(format!("event_weights has no weight for {missing:?}"))),
            None => Ok(weights),
        }
    }
}

/// How the ALS user solve regularizes, matching how the item factors were trained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegScaling {
    /// `lambda = reg`, whatever the profile (Hu, Koren and Volinsky; `scorer::als`).
    #[default]
    Constant,
    /// `lambda = reg * n_u`, `n_u` the user's positive contributors (at least 1, so a
    /// profile of dislikes alone still has a definite system): Spark MLlib's ALS, which
    /// weights lambda by the number of a user's ratings above 0 (ALS-WR, Zhou et al. 2008).
    PerPositive,
}

impl RegScaling {
    fn is_constant(&self) -> bool {
        *self == RegScaling::Constant
    }
}

/// A dense row-major f32 matrix, base64 little-endian in JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows * cols` values.
    pub data: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
struct MatrixJson {
    rows: usize,
    cols: usize,
    f32le: String,
}

impl Serialize for Matrix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        MatrixJson { rows: self.rows, cols: self.cols, f32le: B64.encode(bytes) }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Matrix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let json = MatrixJson::deserialize(d)?;
        let bytes = B64.decode(json.f32le.as_bytes()).map_err(D::Error::custom)?;
        let expected = json.rows.checked_mul(json.cols).and_then(|n| n.checked_mul(4));
        if expected != Some(bytes.len()) {
            return Err(D::Error::custom(format!(
                "matrix of {} x {} holds {} bytes",
                json.rows,
                json.cols,
                bytes.len()
            )));
        }
        let data: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if data.iter().any(|v| !v.is_finite()) {
            return Err(D::Error::custom("matrix holds a non-finite value"));
        }
        Ok(Matrix { rows: json.rows, cols: json.cols, data })
    }
}

/// Everything the device needs besides the item records (the manifest's
/// `collaborative.params`). Nothing about any user is in here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScorerParams {
    /// [`PARAMS_VERSION`].
    pub version: u32,
    /// ALS factor width `k`: record columns `0..k`.
    pub als_dims: usize,
    /// Item-item rank `r`: record columns `k..k+r` (input rows) and `k+r..k+2r` (output
    /// rows); 0 when the catalog has no item-item model.
    pub item_rank: usize,
    /// ALS regularization (the fold-in's `lambda`).
    pub reg: f32,
    /// ALS confidence scale (`c = 1 + alpha * value`).
    pub alpha: f32,
    /// How the fold-in's `lambda` grows with the profile: a constant `reg` (localrec's
    /// trainer), or `reg` times the number of positive contributors (Spark's ALS-WR).
    /// Left out of the JSON when constant, so catalogs built before it read the same.
    #[serde(default, skip_serializing_if = "RegScaling::is_constant")]
    pub reg_scaling: RegScaling,
    /// `Q^T Q` over all items' ALS factors (`k x k`), so the fold-in needs no pass over
    /// the catalog.
    pub gram: Matrix,
    /// Term weights.
    pub blend: Blend,
    /// Term weights for a short profile (at most `short_profile` events and interests),
    /// tuned on held-out users cut to a few items: with little history the text
    /// carries more of the signal.
    #[serde(default)]
    pub short_blend: Option<Blend>,
    /// Largest profile that uses `short_blend`.
    #[serde(default = "default_short_profile")]
    pub short_profile: usize,
    /// Ridge map from `[e, 1]` (unit text embedding and a constant) to the user-side
    /// columns `[q | a]`: a typed interest counts as an item with these factors.
    pub text_map: Option<Matrix>,
    /// Default event confidences.
    pub event_weights: EventWeights,
    /// Half-life of an event's weight, in days (0: no decay).
    pub half_life_days: f32,
    /// The autoencoder's shared encoder, when the catalog has one: its record columns
    /// (each item's first-layer row, decoder column and decoder bias) follow `[q | a | c]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vae: Option<VaeEncoder>,
    /// Scenario lift columns per record (after the autoencoder's), one per name of the
    /// manifest's `scenarios`, in that order.
    #[serde(default)]
    pub scenarios: usize,
    /// Weight of an event recorded in another scenario than the request's (1: the
    /// scenario does not change the user's vectors).
    #[serde(default = "one")]
    pub other_scenario_weight: f32,
    /// Weight of an event recorded against another catalog (a foreign event, scored
    /// through its item's embedding: the semantic term and this catalog's text map)
    /// beside the profile's events on this catalog's own items; 0 ignores foreign events
    /// there. Learned on held-out users at build time (1 in catalogs built before).
    #[serde(default = "one")]
    pub foreign_weight: f32,
    /// Term weights for a profile with foreign events and none on this catalog's items
    /// (a visitor new to this catalog whom another catalog of the site knows), learned on
    /// held-out users at build time; `None`: the catalog's other blends apply.
    #[serde(default)]
    pub foreign_blend: Option<Blend>,
    /// The rating head, when the log had explicit ratings; its item bias is the
    /// record's last column.
    #[serde(default)]
    pub rating: Option<RatingHead>,
}

fn one() -> f32 {
    1.0
}

fn default_short_profile() -> usize {
    SHORT_PROFILE
}

/// Profiles of at most this many events and interests use the short blend.
pub const SHORT_PROFILE: usize = 5;

impl ScorerParams {
    /// The params of a model before tuning: ALS fold-in `k = als_dims` with `reg` and
    /// `alpha`, the item factors' `k x k` Gram matrix, an item-item model of `item_rank`;
    /// the default blend and event weights, and no short blend, text map, decay,
    /// scenarios or rating head.
    pub fn untuned(als_dims: usize, item_rank: usize, reg: f32, alpha: f32, gram: Vec<f32>) -> Self {
        ScorerParams {
            version: PARAMS_VERSION,
            als_dims,
            item_rank,
            reg,
            alpha,
            reg_scaling: RegScaling::Constant,
            gram: Matrix { rows: als_dims, cols: als_dims, data: gram },
            blend: Blend::default(),
            short_blend: None,
            short_profile: SHORT_PROFILE,
            text_map: None,
            event_weights: EventWeights::default(),
            half_life_days: 0.0,
            vae: None,
            scenarios: 0,
            other_scenario_weight: 1.0,
            foreign_weight: 1.0,
            foreign_blend: None,
            rating: None,
        }
    }

    /// Width of an item's factor record: `k + 2r`, the autoencoder's columns, the scenario
    /// lifts, the rating bias.
    /// Saturates rather than wraps: the widths come from a manifest, and [`ScorerParams::check`]
    /// caps each before any of this is used, so a sum past `usize` can only be refused.
    pub fn record_dims(&self) -> usize {
        self.scenario_column(self.scenarios).saturating_add(usize::from(self.rating.is_some()))
    }

    /// Record column of the autoencoder's first-layer row (its decoder column follows at
    /// `+ hidden`, the decoder bias at `+ hidden + latent`).
    pub fn vae_column(&self) -> usize {
        self.als_dims.saturating_add(self.item_rank.saturating_mul(2))
    }

    /// Record columns of the autoencoder (0 without one).
    pub fn vae_dims(&self) -> usize {
        self.vae.as_ref().map_or(0, VaeEncoder::record_dims)
    }

    /// Record columns of the autoencoder's decoder column and bias, the part the item
    /// matrix holds (empty without one).
    pub fn vae_decoder(&self) -> std::ops::Range<usize> {
        let start = self.vae_column().saturating_add(self.vae.as_ref().map_or(0, |e| e.hidden));
        start..start.saturating_add(self.vae.as_ref().map_or(0, |e| e.latent + 1))
    }

    /// Record column of scenario `s`'s lift.
    pub fn scenario_column(&self, s: usize) -> usize {
        self.vae_column().saturating_add(self.vae_dims()).saturating_add(s)
    }

    /// Record column of the rating head's item bias.
    pub fn rating_column(&self) -> usize {
        self.scenario_column(self.scenarios)
    }

    /// Reads and checks params from the manifest's `collaborative.params` object.
    pub fn from_json(
        params: &serde_json::Map<String, serde_json::Value>,
        record_dims: usize,
        embedding_dims: usize,
    ) -> Result<ScorerParams> {
        let p: ScorerParams = serde_json::from_value(serde_json::Value::Object(params.clone())).map_err(|e| {
            Error::with_source(ErrorKind::Format, "manifest.json: collaborative.params is malformed", e)
        })?;
        p.check(record_dims, embedding_dims)?;
        Ok(p)
    }

    /// Checks sizes and values against the catalog's shapes.
    pub fn check(&self, record_dims: usize, embedding_dims: usize) -> Result<()> {
        let bad = |m: String| Err(Error::new(ErrorKind::Format, format!("manifest.json: collaborative.params: {m}")));
        if self.version != PARAMS_VERSION {
            return bad(format!("version {} is not {PARAMS_VERSION}", self.version));
        }
        // Each width alone fits a shard's factor record, so no sum or product of them
        // below (nor the scorer's `k + 2r`, `k + r + d`) comes near overflowing.
        for (name, width) in [("als_dims", self.als_dims), ("item_rank", self.item_rank), ("scenarios", self.scenarios)] {
            if width > MAX_FACTOR_DIMS {
                return bad(format!("{name} {width} exceeds a record's {MAX_FACTOR_DIMS} factors"));
            }
        }
        if let Some(vae) = &self.vae
            && let Err(e) = vae.check()
        {
            return bad(format!("vae: {e}"));
        }
        if self.record_dims() != record_dims {
            return bad(format!(
                "als_dims + 2 * item_rank + the autoencoder's hidden + latent + 1 + scenarios (+ 1 with a rating head) = {} but records have {record_dims} factors",
                self.record_dims()
            ));
        }
        if self.gram.rows != self.als_dims || self.gram.cols != self.als_dims {
            return bad(format!(
                "gram is {} x {}, not {} x {}",
                self.gram.rows, self.gram.cols, self.als_dims, self.als_dims
            ));
        }
        if let Some(m) = &self.text_map
            && (m.rows != embedding_dims + 1 || m.cols != self.als_dims + self.item_rank)
        {
            return bad(format!(
                "text_map is {} x {}, not {} x {}",
                m.rows,
                m.cols,
                embedding_dims + 1,
                self.als_dims + self.item_rank
            ));
        }
        let finite = [self.reg, self.alpha, self.half_life_days, self.other_scenario_weight, self.foreign_weight];
        if finite.iter().any(|v| !v.is_finite()) || self.reg <= 0.0 || self.alpha < 0.0 || self.half_life_days < 0.0 {
            return bad("reg must be > 0, alpha and half_life_days >= 0, all finite".into());
        }
        let blends = [("blend", Some(&self.blend)), ("short_blend", self.short_blend.as_ref()), ("foreign_blend", self.foreign_blend.as_ref())];
        for (name, blend) in blends {
            if let Some(b) = blend
                && ![b.collaborative, b.item_item, b.semantic, b.popularity, b.scenario, b.vae, b.interest].iter().all(|v| v.is_finite())
            {
                return bad(format!("{name} holds a weight that is not a finite number"));
            }
        }
        if !(self.other_scenario_weight > 0.0 && self.other_scenario_weight <= 1.0) {
            return bad(format!("other_scenario_weight {} is outside (0, 1]", self.other_scenario_weight));
        }
        if self.foreign_weight < 0.0 {
            return bad(format!("foreign_weight {} is negative", self.foreign_weight));
        }
        if let Some(h) = &self.rating
            && !([h.mean, h.reg, h.min, h.max].iter().all(|v| v.is_finite()) && h.reg > 0.0 && h.min < h.max)
        {
            return bad("rating: reg must be > 0, min < max, all finite".into());
        }
        Ok(())
    }
}

/// The item side in memory, in catalog order: what `rank` scores. Embeddings are kept as
/// the catalog ships them (int8 rows) with a per-row scale that makes each unit length,
/// so the scorer holds a quarter of f32's bytes for them and ranks what the browser sees.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemSide {
    /// Number of items.
    pub len: usize,
    /// Factor record width (`k + 2r`; 0 for a text-only catalog).
    pub record_dims: usize,
    /// `len * record_dims` factors.
    pub factors: Vec<f32>,
    /// Popularity bias per item (standardized log count); zeros when unknown.
    pub bias: Vec<f32>,
    /// Text embedding width.
    pub embedding_dims: usize,
    /// `len * embedding_dims` int8 embedding values.
    pub embeddings: Vec<i8>,
    /// Per item: the factor that turns its int8 row into a unit vector.
    pub scales: Vec<f32>,
}

impl ItemSide {
    /// An item side from f32 embeddings (quantized here to int8 rows, as in a shard).
    pub fn new(record_dims: usize, factors: Vec<f32>, bias: Vec<f32>, embedding_dims: usize, embeddings: &[f32]) -> ItemSide {
        let len = bias.len();
        let mut side = ItemSide {
            len,
            record_dims,
            factors,
            bias,
            embedding_dims,
            embeddings: Vec::with_capacity(embeddings.len()),
            scales: Vec::with_capacity(len),
        };
        for row in embeddings.chunks_exact(embedding_dims.max(1)).take(len) {
            let q = crate::catalog::QuantizedRow::quantize(row);
            side.push_embedding(q.scale, &q.values);
        }
        side
    }

    /// Appends an int8 row whose values times `scale` approximate the embedding; the kept
    /// scale makes the row unit length.
    pub fn push_embedding(&mut self, scale: f32, values: &[i8]) {
        let norm = values.iter().map(|&v| (v as f32).powi(2)).sum::<f32>().sqrt();
        self.scales.push(if norm > 0.0 && scale.is_finite() { 1.0 / norm } else { 0.0 });
        self.embeddings.extend_from_slice(values);
    }

    /// Checks that the buffers fit the sizes and hold finite values.
    pub fn check(&self) -> Result<()> {
        let fits = self.factors.len() == self.len * self.record_dims
            && self.bias.len() == self.len
            && self.embeddings.len() == self.len * self.embedding_dims
            && self.scales.len() == self.len;
        if !fits {
            return Err(Error::new(ErrorKind::Input, "item side: buffer sizes do not match the item count"));
        }
        if let Some(i) = (0..self.len).find(|&i| {
            self.record(i).iter().any(|v| !v.is_finite()) || !self.bias[i].is_finite() || !self.scales[i].is_finite()
        }) {
            return Err(Error::new(ErrorKind::Format, format!("item {i} has a non-finite factor, bias or embedding value")));
        }
        Ok(())
    }

    /// Item `i`'s factor record.
    pub fn record(&self, i: usize) -> &[f32] {
        &self.factors[i * self.record_dims..(i + 1) * self.record_dims]
    }

    /// Item `i`'s int8 embedding row (times `scales[i]`: unit length).
    pub fn row(&self, i: usize) -> &[i8] {
        &self.embeddings[i * self.embedding_dims..(i + 1) * self.embedding_dims]
    }

    /// Item `i`'s unit text embedding.
    pub fn embedding(&self, i: usize) -> Vec<f32> {
        let s = self.scales[i];
        self.row(i).iter().map(|&v| v as f32 * s).collect()
    }

    /// Cosine of items `i` and `j` (integer dot product of their rows).
    pub fn embedding_dot(&self, i: usize, j: usize) -> f32 {
        let dot: i32 = self.row(i).iter().zip(self.row(j)).map(|(&a, &b)| a as i32 * b as i32).sum();
        dot as f32 * self.scales[i] * self.scales[j]
    }

    /// Bytes held per item (factors, bias, embedding row and scale).
    pub fn bytes_per_item(&self) -> usize {
        self.record_dims * 4 + 4 + self.embedding_dims + 4
    }

    /// The items at `indices`, in that order (e.g. the cold candidates of an evaluation).
    pub fn subset(&self, indices: &[u32]) -> ItemSide {
        let mut out = ItemSide {
            len: indices.len(),
            record_dims: self.record_dims,
            factors: Vec::with_capacity(indices.len() * self.record_dims),
            bias: Vec::with_capacity(indices.len()),
            embedding_dims: self.embedding_dims,
            embeddings: Vec::with_capacity(indices.len() * self.embedding_dims),
            scales: Vec::with_capacity(indices.len()),
        };
        for &i in indices {
            let i = i as usize;
            out.factors.extend_from_slice(self.record(i));
            out.bias.push(self.bias[i]);
            out.embeddings.extend_from_slice(self.row(i));
            out.scales.push(self.scales[i]);
        }
        out
    }
}

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// The item side and params of a loaded catalog (its verified part, in store order):
/// embeddings dequantized to unit length, factors and biases as the shards hold them.
/// A text-only catalog gives no params and empty records.
pub fn from_store(store: &crate::catalog::CatalogStore) -> Result<(ItemSide, Option<ScorerParams>)> {
    let d = store.dims();
    let params = match &store.manifest().collaborative {
        Some(c) => Some(ScorerParams::from_json(&c.params, c.dims, d)?),
        None => None,
    };
    let record_dims = params.as_ref().map_or(0, ScorerParams::record_dims);
    let n = store.len();
    let mut side = ItemSide {
        len: n,
        record_dims,
        factors: Vec::with_capacity(n * record_dims),
        bias: Vec::with_capacity(n),
        embedding_dims: d,
        embeddings: Vec::with_capacity(n * d),
        scales: Vec::with_capacity(n),
    };
    for i in 0..n as u32 {
        let (Some(item), Some((scale, row))) = (store.item(i), store.quantized(i)) else {
            return Err(Error::new(ErrorKind::Input, format!("store item {i} is missing")));
        };
        if item.factors.len() != record_dims {
            return Err(Error::new(ErrorKind::Format, format!("item {:?} has {} factors, not {record_dims}", item.id, item.factors.len())));
        }
        side.factors.extend_from_slice(&item.factors);
        side.bias.push(item.bias.unwrap_or(0.0));
        side.push_embedding(scale, row);
    }
    side.check()?;
    Ok((side, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ScorerParams {
        ScorerParams {
            short_blend: Some(Blend { collaborative: 1.0, item_item: 0.0, semantic: 2.0, popularity: 0.0, scenario: 0.0, vae: 0.0, interest: INTEREST_WEIGHT }),
            text_map: Some(Matrix { rows: 4, cols: 3, data: (0..12).map(|v| v as f32 * 0.25).collect() }),
            half_life_days: 30.0,
            ..ScorerParams::untuned(2, 1, 1.0, 10.0, vec![1.0, 0.5, 0.5, 2.0])
        }
    }

    #[test]
    fn an_item_side_with_a_non_finite_factor_or_bias_is_refused_naming_the_item() {
        let mut side = ItemSide::new(2, vec![0.1, 0.2, 0.3, 0.4], vec![0.0, 1.0], 2, &[1.0, 0.0, 0.0, 1.0]);
        assert!(side.check().is_ok());
        side.factors[3] = f32::NAN;
        assert!(side.check().unwrap_err().to_string().contains("item 1"));
        side.factors[3] = 0.4;
        side.bias[0] = f32::INFINITY;
        assert!(side.check().unwrap_err().to_string().contains("item 0"));
        side.bias.pop();
        assert!(side.check().unwrap_err().to_string().contains("sizes"));
    }

    #[test]
    fn int8_embeddings_come_back_unit_length_and_their_dot_is_the_cosine() {
        let side = ItemSide::new(0, vec![], vec![0.0, 0.0], 3, &[0.6, 0.8, 0.0, 0.0, 0.6, 0.8]);
        let e0 = side.embedding(0);
        let norm: f32 = e0.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert!((side.embedding_dot(0, 1) - 0.48).abs() < 0.01);
    }

    #[test]
    fn params_round_trip_through_manifest_json() {
        let p = params();
        let json = serde_json::to_value(&p).unwrap();
        let back = ScorerParams::from_json(json.as_object().unwrap(), 4, 3).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn params_of_the_wrong_shape_or_value_are_refused() {
        let json = serde_json::to_value(params()).unwrap();
        let map = json.as_object().unwrap();
        assert!(ScorerParams::from_json(map, 5, 3).unwrap_err().to_string().contains("records have 5"));
        assert!(ScorerParams::from_json(map, 4, 384).unwrap_err().to_string().contains("text_map"));
        let mut bad = map.clone();
        bad["gram"]["f32le"] = serde_json::Value::String("AAAA".into());
        assert!(ScorerParams::from_json(&bad, 4, 3).unwrap_err().to_string().contains("malformed"));
        let mut nan = params();
        nan.reg = f32::NAN;
        let err = nan.check(4, 3).unwrap_err();
        assert!(err.to_string().contains("finite"), "{err}");
        // A weight past f32's range reads as infinity, and would rank every item NaN.
        for key in ["short_blend", "foreign_blend"] {
            let mut huge = map.clone();
            huge.insert(key.into(), serde_json::json!({"collaborative": 1, "item_item": 0, "semantic": 1e39, "popularity": 0}));
            let err = ScorerParams::from_json(&huge, 4, 3).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("finite"), "{err}");
        }
        let mut negative = params();
        negative.foreign_weight = -1.0;
        assert!(negative.check(4, 3).unwrap_err().to_string().contains("foreign_weight"));
    }

    #[test]
    fn an_autoencoder_of_the_wrong_shape_or_value_is_refused() {
        use crate::scorer::vae::{EncoderLayer, VaeEncoder};
        let layer = |w: Option<Matrix>| EncoderLayer { w, b: vec![0.0; 3], gain: vec![1.0; 3], shift: vec![0.0; 3] };
        let vae = VaeEncoder {
            hidden: 3,
            latent: 2,
            layers: vec![layer(None), layer(Some(Matrix { rows: 3, cols: 3, data: vec![0.1; 9] }))],
            mu_w: Matrix { rows: 3, cols: 2, data: vec![0.1; 6] },
            mu_b: vec![0.0; 2],
        };
        // Records: [q (2) | a, c (1 each) | first layer (3) | decoder (2) | bias].
        let with = |vae: VaeEncoder| ScorerParams { vae: Some(vae), ..params() };
        let good = with(vae.clone());
        assert_eq!((good.vae_column(), good.record_dims()), (4, 10));
        let json = serde_json::to_value(&good).unwrap();
        assert_eq!(ScorerParams::from_json(json.as_object().unwrap(), 10, 3).unwrap(), good);
        let refused = |p: ScorerParams, records: usize, what: &str| {
            let err = p.check(records, 3).unwrap_err().to_string();
            assert!(err.contains(what), "{err}");
        };
        refused(good.clone(), 4, "records have 4");
        let mut bad = vae.clone();
        bad.layers[1].w = Some(Matrix { rows: 3, cols: 2, data: vec![0.1; 6] });
        refused(with(bad), 10, "vae: layer 1");
        let mut bad = vae.clone();
        bad.layers[0].w = Some(Matrix { rows: 3, cols: 3, data: vec![0.1; 9] });
        refused(with(bad), 10, "vae: layer 0");
        let mut bad = vae.clone();
        bad.layers[1].gain[2] = f32::INFINITY;
        refused(with(bad), 10, "vae: layer 1");
        let mut bad = vae.clone();
        bad.mu_b.push(0.0);
        refused(with(bad), 10, "vae: the latent head");
        let mut bad = vae.clone();
        bad.layers.clear();
        refused(with(bad), 10, "vae: 0 layers");
        let mut bad = vae.clone();
        bad.hidden = usize::MAX;
        refused(with(bad), 10, "vae: widths");
        // A weight past f32's range in the JSON reads as infinity.
        let mut huge = json.as_object().unwrap().clone();
        huge["vae"]["mu_b"] = serde_json::json!([1e39, 0.0]);
        let err = ScorerParams::from_json(&huge, 10, 3).unwrap_err().to_string();
        assert!(err.contains("vae"), "{err}");
    }

    #[test]
    fn params_whose_widths_would_wrap_the_record_width_are_refused() {
        // 2 * 2^63 wraps to 0: unchecked, `k + 2r` matched the records' 2 factors and the
        // scorer then sliced `record[k + r..k + 2r]` backwards.
        let mut p = ScorerParams::untuned(2, 0, 1.0, 10.0, vec![1.0, 0.0, 0.0, 1.0]);
        p.item_rank = (usize::MAX >> 1) + 1;
        let err = p.check(2, 3).unwrap_err();
        assert!(err.to_string().contains("item_rank"), "{err}");
        // 2 + (2^64 - 1) + 1 for the rating column wraps to the records' 2 as well.
        let rated = ScorerParams {
            rating: Some(RatingHead { mean: 3.0, reg: 1.0, min: 1.0, max: 5.0 }),
            ..ScorerParams::untuned(2, 0, 1.0, 10.0, vec![1.0, 0.0, 0.0, 1.0])
        };
        let mut json = serde_json::to_value(rated).unwrap();
        json["scenarios"] = serde_json::json!(u64::MAX);
        let err = ScorerParams::from_json(json.as_object().unwrap(), 2, 3).unwrap_err();
        assert!(err.to_string().contains(&format!("scenarios {} exceeds", u64::MAX)), "{err}");
        assert_eq!(p.record_dims(), usize::MAX, "the width saturates instead of wrapping");
    }
}

//! A catalog held in memory as its shards arrive: what the browser's loader fills and
//! what queries read. [`ShardStream`] takes one shard's bytes in chunks, parsing and
//! hashing as they come, and hands over its items only once the byte count and SHA-256
//! match the manifest ([`VerifiedShard`]); [`CatalogStore`] keeps the items of verified
//! shards, answers lookups and nearest-neighbour queries over the loaded part, and says
//! whether that part is the whole catalog.
//!
//! No I/O here: the caller fetches, retries and caches.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::manifest::Manifest;
use super::shard::{CatalogItem, ShardParser};
use crate::error::{Error, ErrorKind, Result};

/// One shard's bytes on their way in: parsed and hashed incrementally, held back until
/// [`ShardStream::finish`] has checked them against the manifest.
#[derive(Debug)]
pub struct ShardStream {
    index: usize,
    path: String,
    first: u64,
    bytes: u64,
    sha256: String,
    parser: ShardParser,
    hasher: Sha256,
    pending: Vec<CatalogItem>,
    fed: u64,
}

/// The items of a shard whose size and SHA-256 matched its manifest entry.
#[derive(Debug)]
pub struct VerifiedShard {
    index: usize,
    items: Vec<CatalogItem>,
}

impl VerifiedShard {
    /// The shard's position in the manifest.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its items, in shard order.
    pub fn items(&self) -> &[CatalogItem] {
        &self.items
    }
}

impl ShardStream {
    /// A stream for the manifest's shard `index`.
    pub fn new(manifest: &Manifest, index: usize) -> Result<ShardStream> {
        let (Some(entry), Some(expect)) = (manifest.shards.get(index), manifest.expectation(index)) else {
            return Err(Error::new(ErrorKind::Input, format!("the catalog has no shard {index}")));
        };
        let first = manifest.shards[..index].iter().map(|s| s.items).sum();
        Ok(ShardStream {
            index,
            path: entry.path.clone(),
            first,
            bytes: entry.bytes,
            sha256: entry.sha256.clone(),
            parser: ShardParser::new(expect),
            hasher: Sha256::new(),
            pending: Vec::new(),
            fed: 0,
        })
    }

    /// Bytes taken so far: where a resumed download (an HTTP Range request) continues.
    pub fn bytes_fed(&self) -> u64 {
        self.fed
    }

    /// Items parsed so far (not yet usable: they wait for the checksum).
    pub fn items_parsed(&self) -> u32 {
        self.parser.items_parsed()
    }

    /// Takes the next chunk. Refuses more bytes than the manifest's size before parsing
    /// them, so an oversized response cannot make the parser buffer without bound.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        let fed = self.fed + chunk.len() as u64;
        if fed > self.bytes {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("{}: more than the {} bytes the manifest gives", self.at(), self.bytes),
            ));
        }
        self.fed = fed;
        self.hasher.update(chunk);
        let items = self.parser.feed(chunk).map_err(|e| e.context(self.at()))?;
        self.pending.extend(items);
        Ok(())
    }

    /// Ends the stream: the size, then the SHA-256, then the parse must all check out.
    pub fn finish(self) -> Result<VerifiedShard> {
        let at = self.at();
        if self.fed != self.bytes {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("{at}: {} bytes arrived; the manifest gives {}", self.fed, self.bytes),
            ));
        }
        let digest: String = self.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if digest != self.sha256 {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("{at}: sha-256 {digest} does not match the manifest's {}", self.sha256),
            ));
        }
        let header = self.parser.finish().map_err(|e| e.context(at.clone()))?;
        if u64::from(header.first) != self.first {
            return Err(Error::new(
                ErrorKind::Format,
                format!("{at}: its header says it starts at item {}; the manifest puts it at {}", header.first, self.first),
            ));
        }
        Ok(VerifiedShard { index: self.index, items: self.pending })
    }

    fn at(&self) -> String {
        format!("shard {} ({})", self.index, self.path)
    }
}

/// Where each shard of the catalog stands.
#[derive(Clone, Debug, PartialEq)]
pub enum ShardState {
    /// Not loaded yet.
    Pending,
    /// Verified and in the store.
    Loaded,
    /// Given up on, with the reason.
    Failed(String),
}

/// [`CatalogStore::load_status`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadStatus {
    /// Items verified and usable.
    pub items_loaded: usize,
    /// Items the manifest lists.
    pub items_total: u64,
    /// Shards verified.
    pub shards_loaded: usize,
    /// Shards the manifest lists.
    pub shards_total: usize,
    /// Shards given up on, with why.
    pub failed: Vec<FailedShard>,
    /// Whether every shard is loaded.
    pub complete: bool,
}

/// A shard given up on.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FailedShard {
    /// Its position in the manifest.
    pub shard: usize,
    /// Why.
    pub reason: String,
}

/// An item of the store, without its embedding (which lives in one contiguous matrix).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredItem {
    /// The item's id from the items file.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Genres or categories.
    pub genres: Vec<String>,
    /// Other metadata as the text of a JSON object, or empty.
    pub meta: String,
    /// Collaborative factors (empty when the catalog has none).
    pub factors: Vec<f32>,
    /// Collaborative bias, when the catalog has biases.
    pub bias: Option<f32>,
}

/// The verified part of a catalog.
#[derive(Debug)]
pub struct CatalogStore {
    manifest: Manifest,
    states: Vec<ShardState>,
    items: Vec<StoredItem>,
    /// int8 embeddings, `dims` per item, in the order items were added.
    values: Vec<i8>,
    /// Per item: the row's scale divided by the dequantized row's norm, so a dot product
    /// with a unit query is the cosine.
    row_factor: Vec<f32>,
    scales: Vec<f32>,
    by_id: HashMap<String, u32>,
}

/// One answer of [`CatalogStore::nearest`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbour {
    /// Index into the store (see [`CatalogStore::item`]).
    pub index: u32,
    /// Cosine similarity to the query.
    pub score: f32,
}

impl CatalogStore {
    /// An empty store for `manifest` (already validated by [`Manifest::from_json`]).
    pub fn new(manifest: Manifest) -> CatalogStore {
        let states = vec![ShardState::Pending; manifest.shards.len()];
        CatalogStore {
            manifest,
            states,
            items: Vec::new(),
            values: Vec::new(),
            row_factor: Vec::new(),
            scales: Vec::new(),
            by_id: HashMap::new(),
        }
    }

    /// The catalog's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Embedding width.
    pub fn dims(&self) -> usize {
        self.manifest.encoder.dims
    }

    /// Each shard's state, in manifest order.
    pub fn shard_states(&self) -> &[ShardState] {
        &self.states
    }

    /// Where loading stands, in the shape the browser API reports it.
    pub fn load_status(&self) -> LoadStatus {
        LoadStatus {
            items_loaded: self.len(),
            items_total: self.manifest.items,
            shards_loaded: self.states.iter().filter(|s| **s == ShardState::Loaded).count(),
            shards_total: self.states.len(),
            failed: self
                .states
                .iter()
                .enumerate()
                .filter_map(|(shard, s)| match s {
                    ShardState::Failed(reason) => Some(FailedShard { shard, reason: reason.clone() }),
                    _ => None,
                })
                .collect(),
            complete: self.is_complete(),
        }
    }

    /// Items loaded so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is loaded yet.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether every shard is loaded: queries then see the whole catalog.
    pub fn is_complete(&self) -> bool {
        self.states.iter().all(|s| *s == ShardState::Loaded)
    }

    /// Starts a stream for shard `index`; refused for a shard already loaded.
    pub fn stream(&self, index: usize) -> Result<ShardStream> {
        if self.states.get(index) == Some(&ShardState::Loaded) {
            return Err(Error::new(ErrorKind::Input, format!("shard {index} is already loaded")));
        }
        ShardStream::new(&self.manifest, index)
    }

    /// Adds a verified shard's items. A shard whose id repeats one already loaded is
    /// refused whole (and marked failed), so a lookup never has two answers.
    pub fn add(&mut self, shard: VerifiedShard) -> Result<usize> {
        let index = shard.index;
        if index >= self.states.len() || self.states[index] == ShardState::Loaded {
            return Err(Error::new(ErrorKind::Input, format!("shard {index} is not a pending shard of this catalog")));
        }
        let dims = self.dims();
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = shard.items.iter().find(|it| self.by_id.contains_key(&it.id) || !seen.insert(it.id.as_str())) {
            let message = format!("shard {index}: id {:?} appears more than once in the catalog", dup.id);
            self.states[index] = ShardState::Failed(message.clone());
            return Err(Error::new(ErrorKind::Format, message));
        }
        let count = shard.items.len();
        self.values.reserve(count * dims);
        for item in shard.items {
            let norm = item.embedding.values.iter().map(|&q| f32::from(q) * f32::from(q)).sum::<f32>().sqrt() * item.embedding.scale;
            self.row_factor.push(if norm > 0.0 { item.embedding.scale / norm } else { 0.0 });
            self.scales.push(item.embedding.scale);
            self.values.extend_from_slice(&item.embedding.values);
            self.by_id.insert(item.id.clone(), self.items.len() as u32);
            self.items.push(StoredItem {
                id: item.id,
                title: item.title,
                genres: item.genres,
                meta: item.meta,
                factors: item.factors,
                bias: item.bias,
            });
        }
        self.states[index] = ShardState::Loaded;
        Ok(count)
    }

    /// Records that shard `index` could not be loaded (it stays out of the store).
    pub fn mark_failed(&mut self, index: usize, reason: impl Into<String>) {
        if let Some(state) = self.states.get_mut(index)
            && *state != ShardState::Loaded
        {
            *state = ShardState::Failed(reason.into());
        }
    }

    /// The item at `index`.
    pub fn item(&self, index: u32) -> Option<&StoredItem> {
        self.items.get(index as usize)
    }

    /// The store index of the item with this id, when it is loaded.
    pub fn index_of(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// The item's stored int8 row and its scale.
    pub fn quantized(&self, index: u32) -> Option<(f32, &[i8])> {
        let d = self.dims();
        let i = index as usize;
        (i < self.items.len()).then(|| (self.scales[i], &self.values[i * d..(i + 1) * d]))
    }

    /// The item as JSON, the shape the browser API returns: `{itemId, title, genres,
    /// ...metadata}` (the metadata's own keys never replace those three); with
    /// `quantized`, also its stored `scale` and int8 `embedding` values. `null` when
    /// there is no such item.
    pub fn item_json(&self, index: u32, quantized: bool) -> serde_json::Value {
        use serde_json::{Map, Value};
        let Some(item) = self.item(index) else { return Value::Null };
        let mut out = Map::new();
        if let Ok(Value::Object(meta)) = serde_json::from_str::<Value>(&item.meta) {
            out.extend(meta);
        }
        out.insert("itemId".into(), item.id.clone().into());
        out.insert("title".into(), item.title.clone().into());
        out.insert("genres".into(), item.genres.clone().into());
        if quantized && let Some((scale, row)) = self.quantized(index) {
            out.insert("scale".into(), scale.into());
            out.insert("embedding".into(), row.iter().map(|&q| Value::from(q)).collect());
        }
        Value::Object(out)
    }

    /// The item's embedding as f32 (`values * scale`).
    pub fn embedding(&self, index: u32) -> Option<Vec<f32>> {
        self.quantized(index).map(|(scale, row)| row.iter().map(|&q| f32::from(q) * scale).collect())
    }

    /// The `k` loaded items most similar (cosine) to `query`, best first, skipping
    /// `exclude`. Ties keep store order.
    ///
    /// # Shapes
    /// `query`: `[dims]`.
    pub fn nearest(&self, query: &[f32], k: usize, exclude: Option<u32>) -> Result<Vec<Neighbour>> {
        let d = self.dims();
        if query.len() != d {
            return Err(Error::new(
                ErrorKind::Input,
                format!("query has {} values; this catalog's embeddings have {d}", query.len()),
            ));
        }
        if query.iter().any(|v| !v.is_finite()) {
            return Err(Error::new(ErrorKind::Input, "query has a value that is not a finite number"));
        }
        if k > crate::limits::MAX_K {
            return Err(Error::new(ErrorKind::Input, format!("k is {k}; at most {}", crate::limits::MAX_K)));
        }
        let norm = query.iter().map(|v| v * v).sum::<f32>().sqrt();
        if k == 0 || norm == 0.0 || self.items.is_empty() {
            return Ok(Vec::new());
        }
        let unit: Vec<f32> = query.iter().map(|v| v / norm).collect();
        // A min-heap of the best k by (score, -index), kept as a sorted small vector:
        // k is small next to the catalog, so a linear insert beats a heap's overhead.
        let mut best: Vec<Neighbour> = Vec::with_capacity(k.min(self.items.len()) + 1);
        for (i, row) in self.values.chunks_exact(d).enumerate() {
            if exclude == Some(i as u32) {
                continue;
            }
            let score = dot_i8(row, &unit) * self.row_factor[i];
            if best.len() == k && score <= best[k - 1].score {
                continue;
            }
            let at = best.partition_point(|n| n.score >= score);
            best.insert(at, Neighbour { index: i as u32, score });
            best.truncate(k);
        }
        Ok(best)
    }
}

/// `sum(row[j] * x[j])` with the int8 row widened to f32, in eight partial sums so the
/// compiler can keep them in vector lanes.
fn dot_i8(row: &[i8], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (rc, rr) = row.split_at(row.len() / 8 * 8);
    let (xc, xr) = x.split_at(rc.len());
    for (r, v) in rc.chunks_exact(8).zip(xc.chunks_exact(8)) {
        for j in 0..8 {
            acc[j] += f32::from(r[j]) * v[j];
        }
    }
    let tail: f32 = rr.iter().zip(xr).map(|(&q, &v)| f32::from(q) * v).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::manifest::{CatalogEncoder, Quantization, ShardEntry};
    use crate::catalog::quantize::QuantizedRow;
    use crate::catalog::shard::write_shard;
    use crate::encoder::web::sha256_hex;

    const DIMS: usize = 8;

    fn item(id: &str, seed: u32) -> CatalogItem {
        let e: Vec<f32> = (0..DIMS).map(|j| ((seed * 31 + j as u32 * 17) % 13) as f32 - 6.0).collect();
        CatalogItem {
            id: id.into(),
            title: format!("title {id}"),
            genres: vec!["Drama".into()],
            meta: String::new(),
            embedding: QuantizedRow::quantize(&e),
            factors: vec![],
            bias: None,
        }
    }

    /// A two-shard catalog: (manifest, shard bytes).
    fn catalog(first: &[CatalogItem], second: &[CatalogItem]) -> (Manifest, Vec<Vec<u8>>) {
        let a = write_shard(first, 0, DIMS, 0, false).unwrap();
        let b = write_shard(second, first.len() as u32, DIMS, 0, false).unwrap();
        let entry = |path: &str, bytes: &[u8], items: usize| ShardEntry {
            path: path.into(),
            bytes: bytes.len() as u64,
            items: items as u64,
            sha256: sha256_hex(bytes),
        };
        let manifest = Manifest {
            format: "localrec-catalog".into(),
            version: 1,
            name: "test".into(),
            created_by: "test".into(),
            items: (first.len() + second.len()) as u64,
            encoder: CatalogEncoder {
                name: "test".into(),
                dims: DIMS,
                pooling: "mean".into(),
                normalized: true,
                max_seq_length: 128,
                source_weights_sha256: "0".repeat(64),
                weights_sha256: "0".repeat(64),
                model: "model/".into(),
                files: vec![],
            },
            quantization: Quantization { embeddings: "int8-row-scale".into() },
            collaborative: None,
            scenarios: vec![],
            shards: vec![entry("shards/0.bin", &a, first.len()), entry("shards/1.bin", &b, second.len())],
        };
        manifest.validate().unwrap();
        (manifest, vec![a, b])
    }

    fn items(prefix: &str, n: u32, seed: u32) -> Vec<CatalogItem> {
        (0..n).map(|i| item(&format!("{prefix}{i}"), seed + i)).collect()
    }

    fn load(store: &CatalogStore, index: usize, bytes: &[u8], chunk: usize) -> Result<VerifiedShard> {
        let mut stream = store.stream(index)?;
        for c in bytes.chunks(chunk) {
            stream.feed(c)?;
        }
        stream.finish()
    }

    #[test]
    fn shards_fed_in_any_chunking_load_with_their_items_and_embeddings() {
        let (first, second) = (items("a", 5, 1), items("b", 4, 40));
        let (manifest, shards) = catalog(&first, &second);
        for chunk in [1, 7, 64, usize::MAX] {
            let mut store = CatalogStore::new(manifest.clone());
            let shard = load(&store, 0, &shards[0], chunk).unwrap();
            store.add(shard).unwrap();
            assert!(!store.is_complete(), "one shard of two is a partial catalog");
            store.add(load(&store, 1, &shards[1], chunk).unwrap()).unwrap();
            assert!(store.is_complete());
            assert_eq!(store.len(), 9);
            let b2 = store.index_of("b2").unwrap();
            assert_eq!(store.item(b2).unwrap().title, "title b2");
            assert_eq!(store.embedding(b2).unwrap(), second[2].embedding.dequantize());
        }
    }

    #[test]
    fn nothing_is_usable_before_the_checksum_and_a_flipped_byte_is_refused() {
        let (manifest, mut shards) = catalog(&items("a", 5, 1), &items("b", 4, 40));
        let store = CatalogStore::new(manifest);
        let last = shards[1].len() - 1;
        shards[1][last] ^= 1;
        let err = load(&store, 1, &shards[1], 16).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(err.to_string().contains("shard 1 (shards/1.bin)"), "{err}");
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn truncated_and_oversized_streams_are_integrity_errors() {
        let (manifest, shards) = catalog(&items("a", 5, 1), &items("b", 4, 40));
        let store = CatalogStore::new(manifest);
        let short = load(&store, 0, &shards[0][..shards[0].len() - 3], 8).unwrap_err();
        assert_eq!(short.kind(), ErrorKind::Integrity, "{short}");
        let mut long = shards[0].clone();
        long.extend_from_slice(&[0; 4]);
        let err = load(&store, 0, &long, 8).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
        assert!(err.to_string().contains("more than"), "{err}");
    }

    #[test]
    fn a_shard_in_the_wrong_place_is_refused_even_with_a_matching_checksum() {
        let (mut manifest, shards) = catalog(&items("a", 4, 1), &items("b", 4, 40));
        // Swap the entries: sizes and digests match the swapped files, positions do not.
        manifest.shards.swap(0, 1);
        let store = CatalogStore::new(manifest);
        let err = load(&store, 0, &shards[1], 8).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Format, "{err}");
    }

    #[test]
    fn a_repeated_id_across_shards_fails_that_shard_and_keeps_the_rest() {
        let (manifest, shards) = catalog(&items("a", 3, 1), &items("a", 3, 9));
        let mut store = CatalogStore::new(manifest);
        store.add(load(&store, 0, &shards[0], 8).unwrap()).unwrap();
        let err = store.add(load(&store, 1, &shards[1], 8).unwrap()).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
        assert_eq!(store.len(), 3);
        assert!(matches!(store.shard_states()[1], ShardState::Failed(_)));
    }

    #[test]
    fn nearest_ranks_by_cosine_over_the_loaded_items_and_skips_the_excluded() {
        let (first, second) = (items("a", 6, 1), items("b", 6, 50));
        let (manifest, shards) = catalog(&first, &second);
        let mut store = CatalogStore::new(manifest);
        store.add(load(&store, 0, &shards[0], 999).unwrap()).unwrap();
        let query = first[3].embedding.dequantize();
        let top = store.nearest(&query, 3, None).unwrap();
        assert_eq!(top[0].index, store.index_of("a3").unwrap());
        assert!((top[0].score - 1.0).abs() < 1e-5, "{top:?}");
        assert!(top.windows(2).all(|w| w[0].score >= w[1].score));
        let all: Vec<f32> = (0..6u32)
            .map(|i| crate::encoder::cosine(&query, &store.embedding(i).unwrap()))
            .collect();
        for n in &top {
            assert!((n.score - all[n.index as usize]).abs() < 1e-5);
        }
        let without = store.nearest(&query, 3, Some(top[0].index)).unwrap();
        assert!(without.iter().all(|n| n.index != top[0].index));
        assert!(store.nearest(&query[..4], 3, None).is_err(), "wrong width is refused");
        assert!(store.nearest(&[f32::NAN; DIMS], 3, None).is_err());
        let huge = store.nearest(&query, 1 << 31, None).unwrap_err();
        assert!(huge.to_string().contains("at most"), "a k past MAX_K is refused, not a capacity overflow: {huge}");
    }
}

//! The pure logic of `localrec build`: cutting a catalog into shards, splitting the work
//! into parts and checkpoint chunks, checking quantized embeddings, assembling shard
//! bytes and the manifest, and merging parts. The CLI does the files and the encoder.
//!
//! Every boundary here is a function of the items alone (never of timing or of which
//! items were already encoded), so a resumed build, a build in parts and a build in one
//! go run the encoder on the same groups of items and write the same bytes.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::input::SourceItem;
use super::manifest::{
    self, CatalogEncoder, Collaborative, MAX_SHARD_BYTES, MAX_SHARDS, Manifest, Quantization, ShardEntry,
};
use super::quantize::QuantizedRow;
use super::shard::{CatalogItem, HEADER_LEN, MAX_SHARD_ITEMS, record_len, write_shard};
use crate::encoder::cosine;
use crate::error::{Error, ErrorKind, Result};

/// Default target size of a shard: big enough that a catalog is a few requests, small
/// enough that the browser can use the first shard while later ones download.
pub const DEFAULT_SHARD_BYTES: u64 = 2 << 20;
/// Least cosine between an embedding and its int8 copy (docs/catalog-format.md).
pub const MIN_QUANTIZED_COSINE: f32 = 0.99;
/// Value of a part file's `format` key.
pub const PART_FORMAT: &str = "localrec-catalog-part";
/// Folder of part files in a catalog being built in parts.
pub const PARTS_DIR: &str = "parts";

/// `--part i/n`: the i-th of n parts (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Which part.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl std::str::FromStr for Part {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let parsed = s.split_once('/').and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if index < count && count <= MAX_SHARDS => Ok(Part { index, count }),
            _ => Err(Error::new(
                ErrorKind::Input,
                format!("part {s:?} is not i/n with 0 <= i < n <= {MAX_SHARDS} (e.g. 0/4)"),
            )),
        }
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Part {
    /// File name of this part's description in [`PARTS_DIR`].
    pub fn file_name(&self) -> String {
        format!("part-{}-of-{}.json", self.index, self.count)
    }
}

/// Size of each item's shard record (length prefix included), before any embedding exists.
pub fn record_lens(items: &[SourceItem], dims: usize, factor_dims: usize, has_bias: bool) -> Vec<usize> {
    items.iter().map(|i| record_len(&i.id, &i.title, &i.genres, &i.meta_json(), dims, factor_dims, has_bias)).collect()
}

/// Cuts items into shards, in order: a shard takes records until the next one would
/// take it past `target_bytes` (a record larger than that gets a shard of its own).
pub fn plan_shards(record_lens: &[usize], target_bytes: u64) -> Result<Vec<Range<usize>>> {
    let target = target_bytes.clamp(1, MAX_SHARD_BYTES);
    let mut shards = Vec::new();
    let (mut start, mut bytes) = (0usize, HEADER_LEN as u64);
    for (i, &len) in record_lens.iter().enumerate() {
        let full = bytes + len as u64 > target || i - start >= MAX_SHARD_ITEMS as usize;
        if i > start && full {
            shards.push(start..i);
            (start, bytes) = (i, HEADER_LEN as u64);
        }
        bytes += len as u64;
    }
    if start < record_lens.len() {
        shards.push(start..record_lens.len());
    }
    if shards.len() > MAX_SHARDS {
        return Err(Error::new(
            ErrorKind::Input,
            format!(
                "{} shards of at most {target} bytes exceed the format's {MAX_SHARDS}; raise --shard-bytes",
                shards.len()
            ),
        ));
    }
    Ok(shards)
}

/// The shards (by index) part `part` builds: those whose first item falls in the part's
/// share of the items, `[i*N/n, (i+1)*N/n)`. Parts follow shard boundaries so that their
/// shards are the very shards of a build in one go; a part may get none.
pub fn part_shards(shards: &[Range<usize>], part: Part) -> Range<usize> {
    let items = shards.last().map_or(0, |s| s.end);
    let bound = |p: usize| items * p / part.count;
    let (lo, hi) = (bound(part.index), bound(part.index + 1));
    let first = shards.partition_point(|s| s.start < lo);
    let end = shards.partition_point(|s| s.start < hi);
    first..end
}

/// Checkpoint chunks: each shard cut into runs of `chunk` items from its own start. The
/// encoder batches within a chunk, so fixed chunks mean the same batches, and the same
/// bits, however often a build is interrupted.
pub fn checkpoint_chunks(shards: &[Range<usize>], chunk: usize) -> Vec<Range<usize>> {
    let chunk = chunk.max(1);
    shards.iter().flat_map(|s| s.clone().step_by(chunk).map(move |a| a..(a + chunk).min(s.end))).collect()
}

/// SHA-256 over length-prefixed fields: no two different field lists hash alike.
#[derive(Clone, Default)]
pub struct FieldHasher(Sha256);

impl FieldHasher {
    /// Starts a digest for `purpose`, so digests for different purposes never collide.
    pub fn new(purpose: &str) -> Self {
        let mut h = Self(Sha256::new());
        h.field(purpose.as_bytes());
        h
    }

    /// Adds one field.
    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// Adds every item: the fields that reach a shard and the text that is embedded.
    pub fn items(&mut self, items: &[SourceItem]) -> &mut Self {
        self.field(&(items.len() as u64).to_le_bytes());
        for item in items {
            self.field(item.id.as_bytes()).field(item.title.as_bytes()).field(item.meta_json().as_bytes());
            self.field(item.encoder_text().as_bytes()).field(&(item.genres.len() as u64).to_le_bytes());
            for g in &item.genres {
                self.field(g.as_bytes());
            }
        }
        self
    }

    /// The digest.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const CHUNK_MAGIC: [u8; 4] = *b"LRCK";
const CHUNK_VERSION: u16 = 1;
const CHUNK_HEADER: usize = 4 + 2 + 2 + 4 + 4 + 4 + 32;

/// Serialises a checkpoint chunk: the f32 embeddings of items `start..start+n`, tagged
/// with the build's `key` and closed by a SHA-256 of everything before it.
pub fn encode_chunk(key: &[u8; 32], start: usize, dims: usize, embeddings: &[f32]) -> Vec<u8> {
    let count = embeddings.len() / dims.max(1);
    let mut out = Vec::with_capacity(CHUNK_HEADER + embeddings.len() * 4 + 32);
    out.extend_from_slice(&CHUNK_MAGIC);
    out.extend_from_slice(&CHUNK_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(dims as u32).to_le_bytes());
    out.extend_from_slice(&(start as u32).to_le_bytes());
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out.extend_from_slice(key);
    for v in embeddings {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// Reads a checkpoint chunk back; `None` unless it is intact and is exactly the chunk
/// `range` of this build (`key`) at `dims`: anything else is stale and re-encoded.
pub fn decode_chunk(bytes: &[u8], key: &[u8; 32], range: &Range<usize>, dims: usize) -> Option<Vec<f32>> {
    let values = range.len() * dims;
    if bytes.len() != CHUNK_HEADER + values * 4 + 32 {
        return None;
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    let u32_at = |i: usize| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]) as usize;
    let header_ok = body[..4] == CHUNK_MAGIC
        && body[4..6] == CHUNK_VERSION.to_le_bytes()
        && u32_at(8) == dims
        && u32_at(12) == range.start
        && u32_at(16) == range.len()
        && body[20..52] == key[..];
    if !header_ok || Sha256::digest(body).as_slice() != digest {
        return None;
    }
    let data: Vec<f32> =
        body[CHUNK_HEADER..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    data.iter().all(|v| v.is_finite()).then_some(data)
}

/// Quantizes an embedding and checks the copy: finite, and cosine >= 0.99 with the
/// original. `what` names the item in the error.
pub fn quantize_checked(embedding: &[f32], what: impl FnOnce() -> String) -> Result<QuantizedRow> {
    let Some(row) = QuantizedRow::try_quantize(embedding) else {
        return Err(Error::new(ErrorKind::Backend, format!("{}: the encoder returned a non-finite embedding", what())));
    };
    let c = cosine(embedding, &row.dequantize());
    if c < MIN_QUANTIZED_COSINE {
        return Err(Error::new(
            ErrorKind::Backend,
            format!(
                "{}: its int8 embedding has cosine {c:.4} with the encoder's, below {MIN_QUANTIZED_COSINE}",
                what()
            ),
        ));
    }
    Ok(row)
}

/// What a collaborative trainer adds to a catalog: the manifest's `collaborative`
/// object, the scenarios it knows, and per item its factors and bias.
#[derive(Clone, Debug, PartialEq)]
pub struct CollaborativeSide {
    /// The manifest's `collaborative` object (`dims`, `bias`, the scorer's `params`).
    pub manifest: Collaborative,
    /// Scenario names, for the manifest's `scenarios`.
    pub scenarios: Vec<String>,
    /// `items * manifest.dims` factors, row-major in catalog order.
    pub factors: Vec<f32>,
    /// One bias per item when `manifest.bias`.
    pub bias: Option<Vec<f32>>,
}

/// Checks that a trained side fits the catalog, so shard writing cannot fail halfway.
pub fn check_collaborative(side: &CollaborativeSide, items: usize) -> Result<()> {
    let fits = side.factors.len() == items * side.manifest.dims
        && side.bias.as_ref().map(Vec::len) == side.manifest.bias.then_some(items)
        && side.factors.iter().chain(side.bias.iter().flatten()).all(|v| v.is_finite());
    if fits {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Format,
            "the collaborative side does not fit the catalog (sizes or non-finite values)",
        ))
    }
}

/// Shard `range` of the catalog as bytes: items with their quantized embeddings
/// (`embeddings[k]` belongs to item `range.start + k`) and, when trained, factors and bias.
pub fn shard_bytes(
    items: &[SourceItem],
    range: Range<usize>,
    embeddings: &[QuantizedRow],
    dims: usize,
    collaborative: Option<&CollaborativeSide>,
) -> Result<Vec<u8>> {
    if embeddings.len() != range.len() || range.end > items.len() {
        return Err(Error::new(ErrorKind::Format, "shard items and embeddings do not line up"));
    }
    let factor_dims = collaborative.map_or(0, |c| c.manifest.dims);
    let has_bias = collaborative.is_some_and(|c| c.manifest.bias);
    let records: Vec<CatalogItem> = range
        .clone()
        .zip(embeddings)
        .map(|(i, embedding)| CatalogItem {
            id: items[i].id.clone(),
            title: items[i].title.clone(),
            genres: items[i].genres.clone(),
            meta: items[i].meta_json(),
            embedding: embedding.clone(),
            factors: collaborative
                .map_or_else(Vec::new, |c| c.factors[i * factor_dims..(i + 1) * factor_dims].to_vec()),
            bias: collaborative.and_then(|c| c.bias.as_ref()).map(|b| b[i]),
        })
        .collect();
    write_shard(&records, range.start as u32, dims, factor_dims, has_bias)
}

/// Hex digits of a shard's SHA-256 in its file name.
pub const SHARD_NAME_DIGEST_CHARS: usize = 16;

/// Path of shard `index` whose bytes hash to `sha256_hex`. The digest in the name makes
/// shard files content-addressed: a republished catalog writes its shards beside the old
/// ones, so a CDN or a browser cache can never hand a visitor a shard of another version
/// under a name this manifest uses.
pub fn shard_path(index: usize, sha256_hex: &str) -> String {
    let digest = sha256_hex.get(..SHARD_NAME_DIGEST_CHARS).unwrap_or(sha256_hex);
    format!("shards/{index:05}-{digest}.bin")
}

/// Everything of a manifest except its shard list: the same for every part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogHead {
    /// A label for people.
    pub name: String,
    /// Items in the whole catalog.
    pub items: u64,
    /// The encoder identity.
    pub encoder: CatalogEncoder,
    /// The collaborative side, if trained.
    pub collaborative: Option<Collaborative>,
    /// Scenario names.
    pub scenarios: Vec<String>,
}

impl CatalogHead {
    /// The manifest of a catalog with these shards, validated.
    pub fn manifest(&self, shards: Vec<ShardEntry>) -> Result<Manifest> {
        let m = Manifest {
            format: manifest::FORMAT.into(),
            version: manifest::VERSION,
            name: self.name.clone(),
            created_by: format!("localrec {}", env!("CARGO_PKG_VERSION")),
            items: self.items,
            encoder: self.encoder.clone(),
            quantization: Quantization { embeddings: "int8-row-scale".into() },
            collaborative: self.collaborative.clone(),
            scenarios: self.scenarios.clone(),
            shards,
        };
        m.validate()?;
        Ok(m)
    }
}

/// A part's record of what it built (`parts/part-i-of-n.json`), for `localrec merge`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartFile {
    /// Always [`PART_FORMAT`].
    pub format: String,
    /// `1`.
    pub version: u32,
    /// This part's index.
    pub part: usize,
    /// Number of parts.
    pub parts: usize,
    /// Digest of the inputs (items, interactions, model, shard plan): parts of different
    /// builds never merge.
    pub inputs_sha256: String,
    /// Shards in the whole catalog.
    pub shard_count: usize,
    /// The manifest's fields other than its shards.
    pub head: CatalogHead,
    /// This part's shards: (catalog shard index, entry).
    pub shards: Vec<(usize, ShardEntry)>,
}

fn merge_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Input, message)
}

/// Joins part files into the catalog's manifest. Refuses a missing, repeated or foreign
/// part, and shards that do not cover the catalog exactly once.
pub fn merge_parts(parts: &[PartFile]) -> Result<Manifest> {
    let first = parts
        .first()
        .ok_or_else(|| merge_error(format!("no part files in {PARTS_DIR}/ (build with --part i/n first)")))?;
    let n = first.parts;
    let mut slots: Vec<Option<&PartFile>> = vec![None; n];
    for p in parts {
        let label = format!("part {}/{}", p.part, p.parts);
        if p.format != PART_FORMAT || p.version != 1 {
            return Err(merge_error(format!("{label}: not a localrec part file of version 1")));
        }
        if p.parts != n
            || p.inputs_sha256 != first.inputs_sha256
            || p.head != first.head
            || p.shard_count != first.shard_count
        {
            return Err(merge_error(format!(
                "{label} comes from another build than part {}/{} (different inputs, model, options or part count)",
                first.part, first.parts
            )));
        }
        match slots.get_mut(p.part) {
            Some(slot @ None) => *slot = Some(p),
            Some(Some(_)) => return Err(merge_error(format!("{label} is there twice"))),
            None => return Err(merge_error(format!("{label}: part index out of range"))),
        }
    }
    let missing: Vec<String> = (0..n).filter(|&i| slots[i].is_none()).map(|i| format!("{i}/{n}")).collect();
    if !missing.is_empty() {
        return Err(merge_error(format!("part {} missing: build it with --part before merging", missing.join(", "))));
    }
    let mut shards: Vec<Option<ShardEntry>> = vec![None; first.shard_count];
    for (index, entry) in parts.iter().flat_map(|p| &p.shards) {
        match shards.get_mut(*index) {
            Some(slot @ None) => *slot = Some(entry.clone()),
            _ => {
                return Err(merge_error(format!("shard {index} is claimed twice or is out of range")));
            }
        }
    }
    let shards = shards
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.ok_or_else(|| merge_error(format!("no part built shard {i}"))))
        .collect::<Result<Vec<_>>>()?;
    first.head.manifest(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_stay_under_the_target_unless_one_record_is_bigger() {
        let lens = [100, 100, 100, 500, 50, 50, 10];
        let plan = plan_shards(&lens, HEADER_LEN as u64 + 250).unwrap();
        assert_eq!(plan, vec![0..2, 2..3, 3..4, 4..7]);
        assert_eq!(plan_shards(&lens, u64::MAX).unwrap(), vec![0..7]);
        assert_eq!(plan_shards(&[], 1000).unwrap(), Vec::<Range<usize>>::new());
    }

    #[test]
    fn parts_cover_every_shard_exactly_once_in_order() {
        let lens = vec![100; 97];
        let plan = plan_shards(&lens, 1000).unwrap();
        for count in [1, 2, 3, 7, 40] {
            let mut next = 0;
            for index in 0..count {
                let r = part_shards(&plan, Part { index, count });
                assert_eq!(r.start, next, "{index}/{count}");
                next = r.end;
            }
            assert_eq!(next, plan.len(), "{count} parts");
        }
        // Part i gets the shards starting in its share of the items.
        let r = part_shards(&plan, Part { index: 1, count: 2 });
        assert!(plan[r.start].start >= 97 / 2 && plan[r.start - 1].start < 97 / 2);
    }

    #[test]
    fn part_strings_parse_and_refuse_nonsense() {
        assert_eq!("1/4".parse::<Part>().unwrap(), Part { index: 1, count: 4 });
        for bad in ["4/4", "1", "a/b", "0/0", "-1/2"] {
            assert!(bad.parse::<Part>().is_err(), "{bad}");
        }
    }

    #[test]
    fn chunks_restart_at_every_shard() {
        assert_eq!(checkpoint_chunks(&[0..5, 5..7], 2), vec![0..2, 2..4, 4..5, 5..7]);
    }

    #[test]
    fn chunks_round_trip_and_any_change_makes_them_stale() {
        let key = [7u8; 32];
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.25).collect();
        let bytes = encode_chunk(&key, 10, 4, &data);
        assert_eq!(decode_chunk(&bytes, &key, &(10..13), 4), Some(data));
        assert_eq!(decode_chunk(&bytes, &[8u8; 32], &(10..13), 4), None);
        assert_eq!(decode_chunk(&bytes, &key, &(11..14), 4), None);
        assert_eq!(decode_chunk(&bytes, &key, &(10..13), 3), None);
        assert_eq!(decode_chunk(&bytes[..bytes.len() - 1], &key, &(10..13), 4), None);
        let mut flipped = bytes.clone();
        flipped[CHUNK_HEADER + 5] ^= 1;
        assert_eq!(decode_chunk(&flipped, &key, &(10..13), 4), None);
    }

    #[test]
    fn quantization_below_the_cosine_floor_names_the_item() {
        let unit: Vec<f32> = (0..384).map(|j| if j % 2 == 0 { 0.05 } else { -0.05 }).collect();
        assert!(quantize_checked(&unit, || "item 0".into()).is_ok());
        // One huge value makes the scale coarse: the small values all round to zero.
        let mut spiky = vec![0.0039f32; 4000];
        spiky[0] = 1.0;
        let err = quantize_checked(&spiky, || "item 3 (id \"x\")".into()).unwrap_err().to_string();
        assert!(err.starts_with("item 3 (id \"x\"): its int8 embedding has cosine"), "{err}");
        assert!(quantize_checked(&[f32::NAN, 1.0], || "item 4".into()).is_err());
    }

    fn head() -> CatalogHead {
        CatalogHead {
            name: "t".into(),
            items: 3,
            encoder: CatalogEncoder {
                name: "m".into(),
                dims: 4,
                pooling: "mean".into(),
                normalized: true,
                max_seq_length: 8,
                source_weights_sha256: "0".repeat(64),
                weights_sha256: "1".repeat(64),
                model: "model/".into(),
                files: vec![],
            },
            collaborative: None,
            scenarios: vec![],
        }
    }

    fn part(index: usize, shards: Vec<(usize, ShardEntry)>) -> PartFile {
        PartFile {
            format: PART_FORMAT.into(),
            version: 1,
            part: index,
            parts: 2,
            inputs_sha256: "ab".into(),
            shard_count: 2,
            head: head(),
            shards,
        }
    }

    fn entry(items: u64) -> ShardEntry {
        ShardEntry { path: "shards/x.bin".into(), bytes: 100, items, sha256: "c".repeat(64) }
    }

    #[test]
    fn merge_joins_parts_in_shard_order_and_names_what_is_wrong() {
        let p0 = part(0, vec![(0, entry(2))]);
        let p1 = part(1, vec![(1, entry(1))]);
        let m = merge_parts(&[p1.clone(), p0.clone()]).unwrap();
        assert_eq!(m.items, 3);
        assert_eq!(m.shards.iter().map(|s| s.items).collect::<Vec<_>>(), vec![2, 1]);

        let err = merge_parts(std::slice::from_ref(&p0)).unwrap_err().to_string();
        assert!(err.contains("part 1/2 missing"), "{err}");
        let mut foreign = p1.clone();
        foreign.inputs_sha256 = "cd".into();
        assert!(merge_parts(&[p0.clone(), foreign]).unwrap_err().to_string().contains("another build"));
        assert!(merge_parts(&[p0.clone(), p0.clone()]).unwrap_err().to_string().contains("twice"));
        let mut gap = p1.clone();
        gap.shards.clear();
        assert!(merge_parts(&[p0, gap]).unwrap_err().to_string().contains("no part built shard 1"));
        assert!(merge_parts(&[]).is_err());
    }

    #[test]
    fn shard_bytes_carry_items_in_order_with_their_catalog_index() {
        let items = crate::catalog::input::parse_items(b"id,title,genres\na,A,x|y\nb,B,\nc,C,z\n", "i.csv").unwrap();
        let rows: Vec<QuantizedRow> = (0..2).map(|k| QuantizedRow::quantize(&[k as f32, 1.0, 0.0, -1.0])).collect();
        let bytes = shard_bytes(&items, 1..3, &rows, 4, None).unwrap();
        let expect = crate::catalog::ShardExpectation { items: 2, dims: 4, factor_dims: 0 };
        let (header, got) = crate::catalog::parse_shard(&bytes, expect).unwrap();
        assert_eq!(header.first, 1);
        assert_eq!(got.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), vec!["b", "c"]);
        assert_eq!(got[1].genres, vec!["z"]);
        assert_eq!(got[0].embedding, rows[0]);
        let lens = record_lens(&items, 4, 0, false);
        assert_eq!(bytes.len(), HEADER_LEN + lens[1] + lens[2]);
        assert!(shard_bytes(&items, 0..3, &rows, 4, None).is_err());
    }
}

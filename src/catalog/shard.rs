//! Shard files (docs/catalog-format.md, "Shard files"): a 32-byte header, then one
//! length-prefixed record per item, written by [`write_shard`] and read by
//! [`ShardParser`] from a byte stream in chunks of any size.
//!
//! The parser never trusts a length it has not bounded: header counts and widths are
//! checked against the manifest's expectations and fixed limits before anything is
//! allocated, and each record must use exactly the bytes its length prefix claims.

use super::quantize::QuantizedRow;
use crate::error::{Error, ErrorKind, Result};

/// The first four bytes of every shard.
pub const MAGIC: [u8; 4] = *b"LRCS";
/// The shard format version this code reads and writes.
pub const VERSION: u16 = 1;
/// Size of the header this version writes.
pub const HEADER_LEN: usize = 32;
/// Largest record (after its length prefix).
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Most records in one shard.
pub const MAX_SHARD_ITEMS: u32 = 10_000_000;
/// Widest embedding.
pub const MAX_DIMS: usize = 4096;
/// Widest factor vector.
pub const MAX_FACTOR_DIMS: usize = 2048;
/// Largest header a reader accepts (future versions may append fields).
const MAX_HEADER_LEN: usize = 4096;

const EMBEDDING_INT8: u8 = 1;
const FACTORS_NONE: u8 = 0;
const FACTORS_F32: u8 = 1;
const FLAG_BIAS: u16 = 1;

/// One item as a shard stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogItem {
    /// The item's id from the items file.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Genres or categories, possibly none.
    pub genres: Vec<String>,
    /// Other metadata as the text of a JSON object, or empty.
    pub meta: String,
    /// The item's text embedding, quantized.
    pub embedding: QuantizedRow,
    /// Collaborative factors (empty when the catalog has none).
    pub factors: Vec<f32>,
    /// Collaborative bias, when the catalog has biases.
    pub bias: Option<f32>,
}

/// A shard's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardHeader {
    /// Number of records.
    pub items: u32,
    /// Catalog index of the first record.
    pub first: u32,
    /// Embedding width.
    pub dims: u16,
    /// Factor width (0: none).
    pub factor_dims: u16,
    /// Whether each record ends with a bias.
    pub has_bias: bool,
}

/// What the manifest says a shard holds; the parser refuses a header that disagrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardExpectation {
    /// Records, from the manifest's shard entry.
    pub items: u32,
    /// Embedding width, from the manifest's encoder.
    pub dims: usize,
    /// Factor width, from the manifest's collaborative side (0: none).
    pub factor_dims: usize,
}

fn format_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Format, message)
}

/// Serialises a shard: `items` starting at catalog index `first`. Every item must have
/// `dims` embedding values, `factor_dims` factors, and a bias exactly when `has_bias`.
pub fn write_shard(items: &[CatalogItem], first: u32, dims: usize, factor_dims: usize, has_bias: bool) -> Result<Vec<u8>> {
    if dims == 0 || dims > MAX_DIMS || factor_dims > MAX_FACTOR_DIMS {
        return Err(format_error(format!("cannot write a shard with {dims} dims and {factor_dims} factor dims")));
    }
    let count = u32::try_from(items.len()).ok().filter(|&n| n <= MAX_SHARD_ITEMS);
    let count = count.ok_or_else(|| format_error(format!("a shard holds at most {MAX_SHARD_ITEMS} items")))?;
    let mut out = Vec::with_capacity(HEADER_LEN + items.len() * (dims + 64));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(&(dims as u16).to_le_bytes());
    out.push(EMBEDDING_INT8);
    out.push(if factor_dims > 0 { FACTORS_F32 } else { FACTORS_NONE });
    out.extend_from_slice(&(factor_dims as u16).to_le_bytes());
    out.extend_from_slice(&(if has_bias { FLAG_BIAS } else { 0 }).to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);
    debug_assert_eq!(out.len(), HEADER_LEN);

    for (i, item) in items.iter().enumerate() {
        let at = || format!("item {} ({:?})", first as usize + i, item.id);
        if item.id.is_empty() {
            return Err(format_error(format!("{}: empty id", at())));
        }
        if item.embedding.values.len() != dims || !item.embedding.scale.is_finite() || item.embedding.scale < 0.0 {
            return Err(format_error(format!("{}: embedding must have {dims} values and a finite scale", at())));
        }
        if item.factors.len() != factor_dims || item.factors.iter().any(|f| !f.is_finite()) {
            return Err(format_error(format!("{}: factors must be {factor_dims} finite values", at())));
        }
        if item.bias.is_some() != has_bias || item.bias.is_some_and(|b| !b.is_finite()) {
            return Err(format_error(format!("{}: bias must be {}", at(), if has_bias { "a finite value" } else { "absent" })));
        }
        if item.genres.len() > u8::MAX as usize {
            return Err(format_error(format!("{}: more than 255 genres", at())));
        }
        let mut record = Vec::with_capacity(dims + 64);
        put_str16(&mut record, &item.id).map_err(|e| e.context(at()))?;
        put_str16(&mut record, &item.title).map_err(|e| e.context(at()))?;
        record.push(item.genres.len() as u8);
        for genre in &item.genres {
            put_str16(&mut record, genre).map_err(|e| e.context(at()))?;
        }
        record.extend_from_slice(&(item.meta.len() as u32).to_le_bytes());
        record.extend_from_slice(item.meta.as_bytes());
        record.extend_from_slice(&item.embedding.scale.to_le_bytes());
        record.extend(item.embedding.values.iter().map(|&q| q as u8));
        for f in &item.factors {
            record.extend_from_slice(&f.to_le_bytes());
        }
        if let Some(b) = item.bias {
            record.extend_from_slice(&b.to_le_bytes());
        }
        if record.len() > MAX_RECORD_BYTES {
            return Err(format_error(format!("{}: record of {} bytes exceeds {MAX_RECORD_BYTES}", at(), record.len())));
        }
        debug_assert_eq!(
            4 + record.len(),
            record_len(&item.id, &item.title, &item.genres, &item.meta, dims, factor_dims, has_bias)
        );
        out.extend_from_slice(&(record.len() as u32).to_le_bytes());
        out.extend_from_slice(&record);
    }
    Ok(out)
}

/// Bytes one record takes in a shard, its `u32` length prefix included; lets a writer cut
/// shards to a target size before any embedding exists.
pub fn record_len(
    id: &str,
    title: &str,
    genres: &[String],
    meta: &str,
    dims: usize,
    factor_dims: usize,
    has_bias: bool,
) -> usize {
    let texts = 2 + id.len() + 2 + title.len() + 1 + genres.iter().map(|g| 2 + g.len()).sum::<usize>() + 4 + meta.len();
    4 + texts + 4 + dims + 4 * factor_dims + if has_bias { 4 } else { 0 }
}

fn put_str16(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = u16::try_from(s.len()).map_err(|_| format_error(format!("text of {} bytes exceeds 65535", s.len())))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Reads a shard from a stream: feed it chunks as they arrive, take the items each
/// [`ShardParser::feed`] completes, and call [`ShardParser::finish`] at the end.
#[derive(Debug)]
pub struct ShardParser {
    expect: ShardExpectation,
    buf: Vec<u8>,
    /// Bytes of `buf` already parsed.
    pos: usize,
    header: Option<ShardHeader>,
    parsed: u32,
    /// Bytes fed so far.
    total: u64,
}

impl ShardParser {
    /// A parser for a shard the manifest describes as `expect`.
    pub fn new(expect: ShardExpectation) -> Self {
        Self { expect, buf: Vec::new(), pos: 0, header: None, parsed: 0, total: 0 }
    }

    /// The header, once its bytes have arrived.
    pub fn header(&self) -> Option<ShardHeader> {
        self.header
    }

    /// Records parsed so far.
    pub fn items_parsed(&self) -> u32 {
        self.parsed
    }

    /// Bytes fed so far.
    pub fn bytes_fed(&self) -> u64 {
        self.total
    }

    /// Takes the next chunk of the shard; returns the items it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<CatalogItem>> {
        self.total += chunk.len() as u64;
        // Keep the buffer small: drop what was parsed before appending.
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
        let mut items = Vec::new();
        if self.header.is_none() && !self.parse_header()? {
            return Ok(items);
        }
        let header = self.header.expect("parsed above");
        while self.parsed < header.items {
            let rest = &self.buf[self.pos..];
            if rest.len() < 4 {
                break;
            }
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if len > MAX_RECORD_BYTES {
                return Err(self.record_error(format!("claims {len} bytes, more than {MAX_RECORD_BYTES}")));
            }
            if rest.len() < 4 + len {
                break;
            }
            let item = parse_record(&rest[4..4 + len], &header).map_err(|m| self.record_error(m))?;
            self.pos += 4 + len;
            self.parsed += 1;
            items.push(item);
        }
        if self.parsed == header.items && self.pos < self.buf.len() {
            return Err(format_error(format!(
                "shard has {} bytes after its last record",
                self.buf.len() - self.pos
            )));
        }
        Ok(items)
    }

    /// Checks that the stream ended exactly after the last record.
    pub fn finish(self) -> Result<ShardHeader> {
        let Some(header) = self.header else {
            return Err(format_error(format!("shard ended after {} bytes, inside its header", self.total)));
        };
        if self.parsed < header.items {
            return Err(format_error(format!(
                "shard ended after {} bytes, inside record {} of {} (truncated?)",
                self.total, self.parsed, header.items
            )));
        }
        Ok(header)
    }

    fn record_error(&self, message: String) -> Error {
        format_error(format!("record {}: {message}", self.parsed))
    }

    /// Parses the header once enough bytes are buffered; `Ok(false)` while waiting.
    fn parse_header(&mut self) -> Result<bool> {
        let b = &self.buf[self.pos..];
        if b.len() >= 4 && b[..4] != MAGIC {
            return Err(format_error("not a localrec shard (wrong magic number)"));
        }
        if b.len() < 8 {
            return Ok(false);
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(format_error(format!("shard version {version} is not supported (this reader knows {VERSION})")));
        }
        let header_len = u16::from_le_bytes([b[6], b[7]]) as usize;
        if !(HEADER_LEN..=MAX_HEADER_LEN).contains(&header_len) {
            return Err(format_error(format!("shard header length {header_len} is invalid")));
        }
        if b.len() < header_len {
            return Ok(false);
        }
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let header = ShardHeader {
            items: u32_at(8),
            first: u32_at(12),
            dims: u16_at(16),
            factor_dims: u16_at(20),
            has_bias: u16_at(22) & FLAG_BIAS != 0,
        };
        let (embedding_encoding, factor_encoding, flags) = (b[18], b[19], u16_at(22));
        if embedding_encoding != EMBEDDING_INT8 {
            return Err(format_error(format!("unknown embedding encoding {embedding_encoding}")));
        }
        let factors_ok = matches!((factor_encoding, header.factor_dims), (FACTORS_NONE, 0))
            || (factor_encoding == FACTORS_F32 && header.factor_dims > 0);
        if !factors_ok || flags & !FLAG_BIAS != 0 {
            return Err(format_error(format!(
                "invalid factor encoding {factor_encoding} with {} factor dims, or unknown flags {flags:#x}",
                header.factor_dims
            )));
        }
        let e = self.expect;
        if header.items != e.items || header.items > MAX_SHARD_ITEMS {
            return Err(format_error(format!("shard header says {} items; the manifest says {}", header.items, e.items)));
        }
        if header.dims as usize != e.dims || header.factor_dims as usize != e.factor_dims {
            return Err(format_error(format!(
                "shard has {} dims and {} factor dims; the manifest says {} and {}",
                header.dims, header.factor_dims, e.dims, e.factor_dims
            )));
        }
        self.pos += header_len;
        self.header = Some(header);
        Ok(true)
    }
}

/// Parses one whole shard held in memory.
pub fn parse_shard(bytes: &[u8], expect: ShardExpectation) -> Result<(ShardHeader, Vec<CatalogItem>)> {
    let mut parser = ShardParser::new(expect);
    let items = parser.feed(bytes)?;
    Ok((parser.finish()?, items))
}

/// A cursor over one record's bytes; every read is bounds-checked.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| format!("{what} runs past the end of the record"))?;
        let out = &self.b[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u16(&mut self, what: &str) -> std::result::Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f32(&mut self, what: &str) -> std::result::Result<f32, String> {
        let v = f32::from_bits(self.u32(what)?);
        if v.is_finite() { Ok(v) } else { Err(format!("{what} is not finite")) }
    }

    fn text(&mut self, len: usize, what: &str) -> std::result::Result<String, String> {
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| format!("{what} is not valid utf-8"))
    }
}

fn parse_record(b: &[u8], h: &ShardHeader) -> std::result::Result<CatalogItem, String> {
    let mut r = Reader { b, at: 0 };
    let len = r.u16("id length")? as usize;
    let id = r.text(len, "id")?;
    if id.is_empty() {
        return Err("empty id".into());
    }
    let len = r.u16("title length")? as usize;
    let title = r.text(len, "title")?;
    let genre_count = r.take(1, "genre count")?[0] as usize;
    let mut genres = Vec::with_capacity(genre_count);
    for _ in 0..genre_count {
        let len = r.u16("genre length")? as usize;
        genres.push(r.text(len, "genre")?);
    }
    let len = r.u32("meta length")? as usize;
    let meta = r.text(len, "meta")?;
    let scale = r.f32("embedding scale")?;
    if scale < 0.0 {
        return Err("embedding scale is negative".into());
    }
    let values = r.take(h.dims as usize, "embedding")?.iter().map(|&v| v as i8).collect();
    let mut factors = Vec::with_capacity(h.factor_dims as usize);
    for _ in 0..h.factor_dims {
        factors.push(r.f32("factor")?);
    }
    let bias = if h.has_bias { Some(r.f32("bias")?) } else { None };
    if r.at != b.len() {
        return Err(format!("{} bytes left over after its fields", b.len() - r.at));
    }
    Ok(CatalogItem { id, title, genres, meta, embedding: QuantizedRow { scale, values }, factors, bias })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(i: usize, dims: usize, factor_dims: usize, bias: bool) -> CatalogItem {
        let e: Vec<f32> = (0..dims).map(|j| ((i * 31 + j * 7) % 13) as f32 - 6.0).collect();
        CatalogItem {
            id: format!("m{i}"),
            title: format!("Title {i} — é"),
            genres: vec!["Drama".into(), "Sci-Fi".into()][..i % 3].to_vec(),
            meta: if i.is_multiple_of(2) { format!("{{\"year\":{}}}", 1990 + i) } else { String::new() },
            embedding: QuantizedRow::quantize(&e),
            factors: (0..factor_dims).map(|j| j as f32 * 0.5 - i as f32).collect(),
            bias: bias.then_some(i as f32 * 0.1),
        }
    }

    fn sample(n: usize, dims: usize, factor_dims: usize, bias: bool) -> (Vec<CatalogItem>, Vec<u8>, ShardExpectation) {
        let items: Vec<CatalogItem> = (0..n).map(|i| item(i, dims, factor_dims, bias)).collect();
        let bytes = write_shard(&items, 100, dims, factor_dims, bias).unwrap();
        (items, bytes, ShardExpectation { items: n as u32, dims, factor_dims })
    }

    #[test]
    fn round_trip_in_one_piece_and_in_every_chunk_size() {
        for (factor_dims, bias) in [(0, false), (4, true)] {
            let (items, bytes, expect) = sample(7, 16, factor_dims, bias);
            let (header, got) = parse_shard(&bytes, expect).unwrap();
            assert_eq!((header.first, header.items), (100, 7));
            assert_eq!(got, items);
            for chunk in [1, 2, 3, 5, 31, 64] {
                let mut parser = ShardParser::new(expect);
                let mut streamed = Vec::new();
                for piece in bytes.chunks(chunk) {
                    streamed.extend(parser.feed(piece).unwrap());
                }
                parser.finish().unwrap();
                assert_eq!(streamed, items, "chunk {chunk}");
            }
        }
    }

    #[test]
    fn record_len_predicts_the_written_size() {
        for (factor_dims, bias) in [(0, false), (3, true)] {
            let (items, bytes, _) = sample(5, 12, factor_dims, bias);
            let predicted: usize = items
                .iter()
                .map(|i| record_len(&i.id, &i.title, &i.genres, &i.meta, 12, factor_dims, bias))
                .sum();
            assert_eq!(HEADER_LEN + predicted, bytes.len());
        }
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let (_, bytes, expect) = sample(3, 8, 2, true);
        for cut in 0..bytes.len() {
            assert!(parse_shard(&bytes[..cut], expect).is_err(), "cut at {cut} parsed");
        }
    }

    #[test]
    fn every_single_bit_flip_is_an_error_or_a_parse_never_a_panic() {
        let (_, bytes, expect) = sample(3, 8, 2, true);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let _ = parse_shard(&b, expect);
            }
        }
    }

    #[test]
    fn wrong_magic_version_counts_and_widths_are_named() {
        let (_, bytes, expect) = sample(2, 8, 0, false);
        let mut b = bytes.clone();
        b[0] = b'X';
        assert!(parse_shard(&b, expect).unwrap_err().to_string().contains("magic"));
        let mut b = bytes.clone();
        b[4] = 9;
        assert!(parse_shard(&b, expect).unwrap_err().to_string().contains("version 9"));
        let wrong_items = ShardExpectation { items: 3, ..expect };
        assert!(parse_shard(&bytes, wrong_items).unwrap_err().to_string().contains("the manifest says 3"));
        let wrong_dims = ShardExpectation { dims: 16, ..expect };
        assert!(parse_shard(&bytes, wrong_dims).unwrap_err().to_string().contains("dims"));
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(parse_shard(&extra, expect).unwrap_err().to_string().contains("after its last record"));
    }

    #[test]
    fn an_oversized_record_length_is_refused_before_buffering_it() {
        let (_, bytes, expect) = sample(1, 8, 0, false);
        let mut b = bytes[..HEADER_LEN].to_vec();
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut parser = ShardParser::new(expect);
        assert!(parser.feed(&b).unwrap_err().to_string().contains("more than"));
    }

    #[test]
    fn writer_refuses_items_that_do_not_fit_the_shard() {
        let mut bad = item(0, 8, 0, false);
        bad.embedding.values.pop();
        assert!(write_shard(&[bad], 0, 8, 0, false).is_err());
        let mut nan = item(0, 8, 2, false);
        nan.factors[1] = f32::NAN;
        assert!(write_shard(&[nan], 0, 8, 2, false).is_err());
    }
}

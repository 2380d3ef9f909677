//! What the fuzz targets do with an input, in one file that both the targets
//! (`fuzz/fuzz_targets/*.rs`) and the regression test
//! (`tests/integration/fuzz_regressions.rs`) include, so a saved input replays through
//! exactly the code the fuzzer ran.
//!
//! A function here returns normally for every input, accepted or refused; it panics only
//! when a parser broke a promise: it panicked itself, parsing in one piece and in chunks
//! disagreed, a manifest did not survive its own round trip, or an error message did not
//! start in lowercase (the project's rule for every message).
//!
//! A shard input is a 10-byte prefix, then the shard's bytes:
//!
//! | bytes | meaning |
//! |---|---|
//! | 0..4 | the manifest's `items` for this shard (`u32`, little-endian) |
//! | 4 | embedding width: `1 + b % 64` |
//! | 5 | factor width: `b % 9` |
//! | 6..10 | chunk sizes, used in turn: `b` bytes; `0` feeds an empty chunk, then all the rest |
//!
//! Missing prefix bytes count as zero.

// Each fuzz target uses half of this file; the regression test uses all of it.
#![allow(dead_code)]

use localrec::catalog::{
    CatalogEncoder, CatalogItem, CatalogStore, Collaborative, Manifest, Quantization, ShardEntry, ShardExpectation,
    ShardHeader, ShardParser, parse_shard,
};
use localrec::encoder::web::sha256_hex;

/// Bytes before the shard in a shard input.
pub const SHARD_PREFIX_LEN: usize = 10;

/// A shard input taken apart.
pub struct ShardInput<'a> {
    /// What the (made-up) manifest says the shard holds.
    pub expect: ShardExpectation,
    /// Chunk sizes, used in turn.
    pub chunks: [u8; 4],
    /// The shard's bytes.
    pub shard: &'a [u8],
}

impl<'a> ShardInput<'a> {
    /// Splits a fuzz input into prefix and shard.
    pub fn split(data: &'a [u8]) -> ShardInput<'a> {
        let mut prefix = [0u8; SHARD_PREFIX_LEN];
        let n = data.len().min(SHARD_PREFIX_LEN);
        prefix[..n].copy_from_slice(&data[..n]);
        ShardInput {
            expect: ShardExpectation {
                items: u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]),
                dims: 1 + prefix[4] as usize % 64,
                factor_dims: prefix[5] as usize % 9,
            },
            chunks: [prefix[6], prefix[7], prefix[8], prefix[9]],
            shard: &data[n..],
        }
    }

    /// The fuzz input for `shard` (`expect.dims` must be 1..=64, `factor_dims` 0..=8).
    pub fn join(expect: ShardExpectation, chunks: [u8; 4], shard: &[u8]) -> Vec<u8> {
        assert!((1..=64).contains(&expect.dims) && expect.factor_dims <= 8, "{expect:?} cannot be encoded");
        let mut out = expect.items.to_le_bytes().to_vec();
        out.push((expect.dims - 1) as u8);
        out.push(expect.factor_dims as u8);
        out.extend_from_slice(&chunks);
        out.extend_from_slice(shard);
        out
    }

    /// The shard cut into the chunks the prefix asks for.
    pub fn pieces(&self) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = self.shard;
        let mut turn = 0;
        while !rest.is_empty() {
            let size = self.chunks[turn % 4] as usize;
            turn += 1;
            let (piece, tail) = if size == 0 {
                out.push(&rest[..0]);
                (rest, &rest[rest.len()..])
            } else {
                rest.split_at(size.min(rest.len()))
            };
            out.push(piece);
            rest = tail;
        }
        out
    }
}

fn assert_lowercase(what: &str, message: &str) {
    assert!(
        !message.starts_with(|c: char| c.is_uppercase()),
        "{what}: error message starts with a capital letter: {message:?}"
    );
}

/// Feeds the pieces one by one, and keeps feeding after an error (a caller might), then
/// finishes; the first error is the answer.
fn parse_in_pieces(input: &ShardInput) -> Result<(ShardHeader, Vec<CatalogItem>), String> {
    let mut parser = ShardParser::new(input.expect);
    let mut items = Vec::new();
    let mut first_error = None;
    for piece in input.pieces() {
        match parser.feed(piece) {
            Ok(done) if first_error.is_none() => items.extend(done),
            Ok(_) => {}
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let finished = parser.finish();
    match (first_error, finished) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(e.to_string()),
        (None, Ok(header)) => Ok((header, items)),
    }
}

/// A valid one-shard manifest whose entry matches `shard` byte for byte, so the shard
/// gets past the size and SHA-256 checks and into the parser.
fn one_shard_manifest(expect: ShardExpectation, shard: &[u8]) -> Manifest {
    Manifest {
        format: "localrec-catalog".into(),
        version: 1,
        name: "fuzz".into(),
        created_by: "localrec fuzz".into(),
        items: expect.items.into(),
        encoder: CatalogEncoder {
            name: "fuzz".into(),
            dims: expect.dims,
            pooling: "mean".into(),
            normalized: true,
            max_seq_length: 256,
            source_weights_sha256: "0".repeat(64),
            weights_sha256: "0".repeat(64),
            model: "model/".into(),
            files: vec![],
        },
        quantization: Quantization { embeddings: "int8-row-scale".into() },
        collaborative: (expect.factor_dims > 0).then(|| Collaborative {
            dims: expect.factor_dims,
            bias: false,
            params: Default::default(),
        }),
        scenarios: vec![],
        shards: vec![ShardEntry {
            path: "shards/00000.bin".into(),
            bytes: shard.len() as u64,
            items: expect.items.into(),
            sha256: sha256_hex(shard),
        }],
    }
}

/// The shard target: the shard parsed in one piece, in the prefix's chunks, and through
/// the browser's path (`ShardStream` into a `CatalogStore`, then queries). Returns the
/// one-piece parse's item count or error message.
pub fn shard(data: &[u8]) -> Result<usize, String> {
    let input = ShardInput::split(data);
    let whole = parse_shard(input.shard, input.expect).map_err(|e| e.to_string());
    let pieces = parse_in_pieces(&input);
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => assert!(a == b, "the shard parsed differently in one piece and in chunks"),
        (Err(a), Err(b)) => {
            assert_lowercase("shard in one piece", a);
            assert_lowercase("shard in chunks", b);
        }
        (a, b) => panic!(
            "the shard parsed in one piece: {}; in chunks: {}",
            a.as_ref().map_or_else(|e| e.clone(), |(_, i)| format!("{} items", i.len())),
            b.as_ref().map_or_else(|e| e.clone(), |(_, i)| format!("{} items", i.len())),
        ),
    }

    let mut store = CatalogStore::new(one_shard_manifest(input.expect, input.shard));
    let verified = store.stream(0).and_then(|mut stream| {
        for piece in input.pieces() {
            stream.feed(piece)?;
        }
        stream.finish()
    });
    // The stream checks the header's `first` against the manifest (0 here) on top of
    // what the parser checks.
    let parses = whole.as_ref().is_ok_and(|(header, _)| header.first == 0);
    match &verified {
        Ok(_) => assert!(parses, "the store took a shard the parser refused"),
        Err(e) => {
            assert!(!parses, "the store refused a shard the parser took: {e}");
            assert_lowercase("shard stream", &e.to_string());
        }
    }
    if let Ok(shard) = verified {
        match store.add(shard) {
            Ok(_) => {
                let dims = store.dims();
                for i in 0..store.len() as u32 {
                    let _ = store.item_json(i, true);
                }
                let query: Vec<f32> = (0..dims).map(|j| j as f32 - 3.0).collect();
                let _ = store.nearest(&query, 3, Some(0));
            }
            Err(e) => assert_lowercase("store", &e.to_string()),
        }
    }
    whole.map(|(_, items)| items.len())
}

/// The manifest target: a manifest that parses must serialise, parse again, and come
/// back equal; a store must accept it. Returns the parse's error message, if any.
pub fn manifest(data: &[u8]) -> Result<(), String> {
    let manifest = match Manifest::from_json(data) {
        Ok(m) => m,
        Err(e) => {
            let message = e.to_string();
            assert_lowercase("manifest", &message);
            return Err(message);
        }
    };
    let json = manifest.to_json().expect("a parsed manifest serialises");
    let again = Manifest::from_json(&json).unwrap_or_else(|e| panic!("a re-serialised manifest does not parse: {e}"));
    assert!(again == manifest, "a manifest changed in its round trip through json");
    let store = CatalogStore::new(manifest);
    let shards = store.manifest().shards.len();
    // The first and last shard: a stream sums the items before its shard, and a manifest
    // may list 100,000 shards.
    for index in [0, shards.saturating_sub(1)].into_iter().filter(|&i| i < shards) {
        store.stream(index).expect("a stream opens for every shard of a valid manifest");
    }
    Ok(())
}

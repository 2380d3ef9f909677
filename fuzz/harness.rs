//! What the fuzz targets do with an input, in one file that the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`), the regression replay
//! (`tests/integration/fuzz_regressions.rs`) and the bounded stable-toolchain fuzzer
//! (`tests/integration/fuzz_bounded.rs`) all include, so a saved input replays through
//! exactly the code the fuzzer ran.
//!
//! A function here returns normally for every input, accepted or refused; it panics only
//! when the code under test broke a promise: it panicked itself, parsing in one piece and
//! in chunks disagreed, a manifest did not survive its own round trip, one layer accepted
//! what the next refused, or an error message did not start in lowercase (the project's
//! rule for every message).
//!
//! | target | input |
//! |---|---|
//! | `shard` | a 10-byte prefix, then a shard file (below) |
//! | `manifest` | `manifest.json` |
//! | `scorer_params` | a JSON object whose keys replace a small valid manifest's (normally `collaborative` and `scenarios`); a shard of [`PARAMS_ITEMS`] items with the factor width and bias it asks for is made to match |
//! | `recommend_request` | a `recommend` request (JSON), answered over [`tiny_catalogs`] |
//! | `model_config` | `config.json`, then optionally a NUL byte and `sentence_bert_config.json` |
//! | `weights` | a safetensors file, read for [`tiny_bert_config`] |
//! | `tokenizer` | `tokenizer.json`, then texts encoded with it |
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

// Each fuzz target uses part of this file; the tests use all of it.
#![allow(dead_code)]

use burn::prelude::Device;
use localrec::catalog::{
    CatalogEncoder, CatalogItem, CatalogStore, Collaborative, Manifest, Quantization, QuantizedRow, ShardEntry,
    ShardExpectation, ShardHeader, ShardParser, parse_shard, write_shard,
};
use localrec::encoder::weights::{build_model, expected_tensors, read_weights};
use localrec::encoder::web::sha256_hex;
use localrec::encoder::{Activation, BertConfig, CpuModel, TextTokenizer};
use localrec::scorer::api;
use localrec::scorer::model::{self, Blend, Matrix, RatingHead, ScorerParams};
use localrec::scorer::rank::Scorer;
use localrec::scorer::vae::{EncoderLayer, VaeEncoder};
use serde_json::{Value, json};

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
            tuning: None,
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
    // A writer refuses what no reader would read (numbers can grow in the round trip:
    // `9e9` comes back as `9000000000.0`).
    let json = match manifest.to_json() {
        Ok(json) => json,
        Err(e) if e.to_string().contains("readers take at most") => return Err(e.to_string()),
        Err(e) => panic!("a parsed manifest does not serialise: {e}"),
    };
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

// ---------------------------------------------------------------------------------------
// The scorer's inputs: the catalog's params, and the page's requests.

/// Embedding width of the catalogs the scorer targets build.
pub const PARAMS_DIMS: usize = 8;
/// Items in the shard the `scorer_params` target builds.
pub const PARAMS_ITEMS: usize = 6;

/// Item `i` of a made-up catalog (id `i + 1`): `dims` embedding values, `factor_dims`
/// factors and a bias when asked, all finite and all different.
pub fn synthetic_item(i: usize, dims: usize, factor_dims: usize, bias: bool) -> CatalogItem {
    let e: Vec<f32> = (0..dims).map(|j| (((i * 37 + j * 11) % 23) as f32 - 11.0) / 11.0).collect();
    CatalogItem {
        id: (i + 1).to_string(),
        title: format!("Item {} ({})", i + 1, 1990 + i),
        genres: vec![["Drama", "Comedy", "Horror"][i % 3].to_string()],
        meta: format!("{{\"year\":{}}}", 1990 + i),
        embedding: QuantizedRow::quantize(&e),
        factors: (0..factor_dims).map(|j| (((i * 7 + j * 3) % 11) as f32 - 5.0) * 0.1).collect(),
        bias: bias.then_some((i % 5) as f32 * 0.25 - 0.5),
    }
}

/// A manifest for `shards` (their bytes and item counts, in catalog order).
pub fn catalog_manifest(
    dims: usize,
    collaborative: Option<Collaborative>,
    scenarios: Vec<String>,
    shards: &[(&[u8], usize)],
) -> Manifest {
    let entries: Vec<ShardEntry> = shards
        .iter()
        .enumerate()
        .map(|(i, (bytes, items))| ShardEntry {
            path: format!("shards/{i:05}.bin"),
            bytes: bytes.len() as u64,
            items: *items as u64,
            sha256: sha256_hex(bytes),
        })
        .collect();
    // The encoder and the rest as for the shard target (its `dims` from the expectation).
    let base = one_shard_manifest(ShardExpectation { items: 0, dims, factor_dims: 0 }, &[]);
    Manifest { items: entries.iter().map(|s| s.items).sum(), collaborative, scenarios, shards: entries, ..base }
}

/// A store for `manifest` with the shards at `load` (index, bytes) streamed in, in
/// 1000-byte pieces as a download arrives. Returns the first refusal's message.
fn load_store(manifest: Manifest, load: &[(usize, &[u8])]) -> Result<CatalogStore, String> {
    let mut store = CatalogStore::new(manifest);
    for &(index, bytes) in load {
        let added = store.stream(index).and_then(|mut stream| {
            for piece in bytes.chunks(1000) {
                stream.feed(piece)?;
            }
            stream.finish()
        });
        let added = added.and_then(|shard| store.add(shard));
        if let Err(e) = added {
            let message = e.to_string();
            assert_lowercase("store", &message);
            return Err(message);
        }
    }
    Ok(store)
}

/// Answers `request` (JSON) over a catalog; `Err` holds the refusal's message.
fn answer(store: &CatalogStore, scorer: &Scorer, request: &str) -> Result<(), String> {
    // Only these two calls, and the answer unread: their signatures are all this relies on.
    let request = api::parse_request(request).map_err(|e| e.to_string())?;
    match api::recommend(store, scorer, &request) {
        Ok(_) => Ok(()),
        Err(e) => {
            let message = e.to_string();
            assert_lowercase("recommend", &message);
            Err(message)
        }
    }
}

/// The `scorer_params` target: the input's keys replace those of a valid one-shard
/// manifest (normally `collaborative`, whose `params` the scorer reads, and `scenarios`);
/// the shard is written to match the factor width and bias it asks for. The manifest is
/// parsed, the shard streamed into a store, the scorer's item side and params read from
/// it (`model::from_store`), a `Scorer` built on the CPU device as the browser builds it,
/// and two fixed requests answered. Returns what happened, or the first refusal.
pub fn scorer_params(data: &[u8]) -> Result<String, String> {
    let Ok(Value::Object(overrides)) = serde_json::from_slice::<Value>(data) else {
        return Err("fuzz input: not a json object".into());
    };
    let collaborative = overrides.get("collaborative");
    let factor_dims = collaborative
        .and_then(|c| c.get("dims"))
        .and_then(Value::as_u64)
        .map_or(0, |d| d.min(localrec::catalog::shard::MAX_FACTOR_DIMS as u64) as usize);
    let bias = collaborative.and_then(|c| c.get("bias")).and_then(Value::as_bool).unwrap_or(false);
    let dims = overrides
        .get("encoder")
        .and_then(|e| e.get("dims"))
        .and_then(Value::as_u64)
        .filter(|d| (1..=64).contains(d))
        .map_or(PARAMS_DIMS, |d| d as usize);
    let items: Vec<CatalogItem> = (0..PARAMS_ITEMS).map(|i| synthetic_item(i, dims, factor_dims, bias)).collect();
    let shard = write_shard(&items, 0, dims, factor_dims, bias).expect("the harness writes a valid shard");
    let mut manifest = serde_json::to_value(catalog_manifest(dims, None, vec![], &[(&shard, PARAMS_ITEMS)]))
        .expect("a manifest is json");
    for (key, value) in overrides {
        manifest[key] = value;
    }
    let text = serde_json::to_vec(&manifest).expect("a json value serialises");
    let manifest = Manifest::from_json(&text).map_err(|e| {
        assert_lowercase("manifest", &e.to_string());
        e.to_string()
    })?;
    let scenario = manifest.scenarios.first().cloned();
    let dims = manifest.encoder.dims;
    let store = load_store(manifest, &[(0, &shard)])?;
    let (side, params) = model::from_store(&store).map_err(|e| {
        assert_lowercase("from_store", &e.to_string());
        e.to_string()
    })?;
    if let (Some(p), Some(c)) = (&params, &store.manifest().collaborative) {
        // Checked here, apart from the code under test: accepted widths must add up to the
        // records' width without wrapping (release builds wrap silently).
        let width = p.item_rank.checked_mul(2).and_then(|w| w.checked_add(p.als_dims));
        let vae = p.vae.as_ref().map_or(Some(0), |v| v.hidden.checked_add(v.latent).and_then(|w| w.checked_add(1)));
        let width = width.and_then(|w| w.checked_add(vae?)).and_then(|w| w.checked_add(p.scenarios));
        let width = width.and_then(|w| w.checked_add(usize::from(p.rating.is_some())));
        assert!(width == Some(c.dims), "params accepted whose widths add up to {width:?} unwrapped, not the records' {}", c.dims);
    }
    let shape = params.as_ref().map(|p| {
        let vae = p.vae.as_ref().map_or("none".to_string(), |v| format!("{}/{}", v.hidden, v.latent));
        format!("k {} r {} vae {vae} scenarios {} rating {}", p.als_dims, p.item_rank, p.scenarios, p.rating.is_some())
    });
    let scorer = Scorer::for_device(side, params, &Device::flex())
        .unwrap_or_else(|e| panic!("model::from_store accepted params that the scorer refuses: {e}"));
    let scenario_json = scenario.map_or(String::new(), |s| format!(",\"scenario\":{}", json!(s)));
    let embedding: Vec<f32> = (0..dims).map(|j| if j % 3 == 0 { 1.0 } else { -0.25 }).collect();
    let requests = [
        format!(
            r#"{{"events":[{{"itemId":"1","type":"like"}},{{"itemId":"2","type":"rate","value":4.5,"ageDays":3}},
            {{"itemId":"3","type":"dislike","ageDays":40}},{{"itemId":"unknown","type":"view"}}],
            "interests":[{{"embedding":{},"weight":1}}],"k":4,"diversity":0.3{scenario_json}}}"#,
            json!(embedding)
        ),
        r#"{"events":[{"itemId":"4","type":"click"}],"k":3,"rankBy":"similar"}"#.to_string(),
        "{}".to_string(),
    ];
    let answers: Vec<String> = requests
        .iter()
        .map(|r| answer(&store, &scorer, r).map_or_else(|e| e, |()| "answered".to_string()))
        .collect();
    Ok(format!("{}: {}", shape.unwrap_or_else(|| "text only".into()), answers.join("; ")))
}

/// Record columns of [`tiny_vae`]'s autoencoder.
pub const TINY_VAE_DIMS: usize = 4 + 2 + 1;

/// A two-layer autoencoder of hidden width 4 and latent width 2 with fixed weights.
pub fn tiny_vae() -> VaeEncoder {
    let v = |n: usize, at: f32| -> Vec<f32> { (0..n).map(|i| at + ((i % 5) as f32 - 2.0) * 0.1).collect() };
    let layer = |w: Option<Matrix>| EncoderLayer { w, b: v(4, 0.0), gain: v(4, 1.0), shift: v(4, 0.0) };
    VaeEncoder {
        hidden: 4,
        latent: 2,
        layers: vec![layer(None), layer(Some(Matrix { rows: 4, cols: 4, data: v(16, 0.0) }))],
        mu_w: Matrix { rows: 4, cols: 2, data: v(8, 0.0) },
        mu_b: v(2, 0.0),
    }
}

/// Params for the catalogs of [`tiny_catalogs`] (and the `scorer_params` seeds): ALS
/// width `k`, item-item rank `r`, an autoencoder ([`tiny_vae`]), `scenarios` lift columns,
/// a rating head, a text map and a short-profile blend, the Gram matrix of the items'
/// factors.
pub fn tiny_params(items: &[CatalogItem], k: usize, r: usize, scenarios: usize, dims: usize) -> ScorerParams {
    let mut gram = vec![0.0f32; k * k];
    for item in items {
        for a in 0..k {
            for b in 0..k {
                gram[a * k + b] += item.factors[a] * item.factors[b];
            }
        }
    }
    let cols = k + r;
    ScorerParams {
        short_blend: Some(Blend { collaborative: 0.2, item_item: 0.3, semantic: 1.0, popularity: 0.1, scenario: 0.5, vae: 0.0, interest: 5.0 }),
        text_map: Some(Matrix {
            rows: dims + 1,
            cols,
            data: (0..(dims + 1) * cols).map(|v| ((v % 7) as f32 - 3.0) * 0.05).collect(),
        }),
        half_life_days: 30.0,
        scenarios,
        other_scenario_weight: 0.5,
        rating: Some(RatingHead { mean: 3.5, reg: 1.0, min: 0.5, max: 5.0 }),
        vae: Some(tiny_vae()),
        blend: Blend { collaborative: 0.7, item_item: 0.3, semantic: 0.2, popularity: 0.05, scenario: 0.5, vae: 1.0, interest: 5.0 },
        ..ScorerParams::untuned(k, r, 0.1, 2.0, gram)
    }
}

/// The catalogs `recommend_request` answers over, as the browser holds them while
/// shards arrive: (name, store, scorer). `collaborative`: 12 of 16 items loaded (its
/// second shard pending), factors, scenarios `weekday`/`weekend`, a rating head;
/// `text`: 10 items and no collaborative side; `empty`: the collaborative catalog
/// before any shard arrived.
pub fn tiny_catalogs() -> Vec<(&'static str, CatalogStore, Scorer)> {
    let (k, r, scenarios, dims) = (3, 2, 2, PARAMS_DIMS);
    let record = k + 2 * r + TINY_VAE_DIMS + scenarios + 1;
    let all: Vec<CatalogItem> = (0..16).map(|i| synthetic_item(i, dims, record, true)).collect();
    let params = tiny_params(&all, k, r, scenarios, dims);
    let collaborative = Collaborative {
        dims: record,
        bias: true,
        params: serde_json::to_value(&params).expect("params are json").as_object().expect("an object").clone(),
        tuning: None,
    };
    let first = write_shard(&all[..12], 0, dims, record, true).expect("a valid shard");
    let second = write_shard(&all[12..], 12, dims, record, true).expect("a valid shard");
    let names = vec!["weekday".to_string(), "weekend".to_string()];
    let manifest = catalog_manifest(dims, Some(collaborative), names, &[(&first, 12), (&second, 4)]);
    let text: Vec<CatalogItem> = (0..10).map(|i| synthetic_item(i, dims, 0, false)).collect();
    let text_shard = write_shard(&text, 0, dims, 0, false).expect("a valid shard");
    let catalogs = [
        ("collaborative", load_store(manifest.clone(), &[(0, &first)])),
        ("text", load_store(catalog_manifest(dims, None, vec![], &[(&text_shard, 10)]), &[(0, &text_shard)])),
        ("empty", load_store(manifest, &[])),
    ];
    catalogs
        .into_iter()
        .map(|(name, store)| {
            let store = store.expect("the tiny catalogs load");
            let (side, params) = model::from_store(&store).expect("the tiny catalogs' params are valid");
            let scorer = Scorer::for_device(side, params, &Device::flex()).expect("the tiny catalogs score");
            (name, store, scorer)
        })
        .collect()
}

thread_local! {
    static CATALOGS: Vec<(&'static str, CatalogStore, Scorer)> = tiny_catalogs();
}

/// The `recommend_request` target: the input (as text, invalid UTF-8 replaced) is parsed
/// as a request and answered over each of [`tiny_catalogs`]. Returns each catalog's
/// outcome, as `Err` when the parse or the first (collaborative) catalog refused.
pub fn recommend_request(data: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(data);
    let request = api::parse_request(&text).map_err(|e| {
        assert_lowercase("parse_request", &e.to_string());
        e.to_string()
    })?;
    CATALOGS.with(|catalogs| {
        let outcomes: Vec<String> = catalogs
            .iter()
            .map(|(name, store, scorer)| match api::recommend(store, scorer, &request) {
                Ok(_) => format!("{name}: answered"),
                Err(e) => {
                    assert_lowercase("recommend", &e.to_string());
                    format!("{name}: {e}")
                }
            })
            .collect();
        let all = outcomes.join("; ");
        if outcomes.first().is_some_and(|o| o.ends_with(": answered")) { Ok(all) } else { Err(all) }
    })
}

// ---------------------------------------------------------------------------------------
// The model files the browser downloads.

/// The `model_config` target: `config.json`, and after the first NUL byte (if any)
/// `sentence_bert_config.json`. An accepted config must be consistent, and every tensor
/// it asks for must fit a 32-bit address space (the browser's wasm32). Returns the
/// config's shape, or the refusal.
pub fn model_config(data: &[u8]) -> Result<String, String> {
    let (config, sentence) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let config = BertConfig::from_json(config, sentence).map_err(|e| {
        assert_lowercase("config", &e.to_string());
        e.to_string()
    })?;
    assert!(config.num_heads > 0 && config.hidden_size % config.num_heads == 0, "heads do not divide the width: {config:?}");
    assert!(
        (2..=config.max_position_embeddings).contains(&config.max_seq_length),
        "max_seq_length outside 2..=max_position_embeddings: {config:?}"
    );
    assert!(config.layer_norm_eps.is_finite() && config.layer_norm_eps > 0.0, "bad epsilon: {config:?}");
    let mut total = 0u64;
    for (name, shape) in expected_tensors(&config) {
        let count = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
        let count = count.filter(|&n| n <= u32::MAX as u64);
        let count = count.unwrap_or_else(|| panic!("tensor {name} of shape {shape:?} does not fit wasm32's usize"));
        total = total.checked_add(count).unwrap_or_else(|| panic!("the tensor sizes overflow u64: {config:?}"));
    }
    assert!(total <= u32::MAX as u64, "the model's {total} values do not fit wasm32's usize: {config:?}");
    Ok(format!(
        "hidden {} layers {} heads {} vocab {} positions {} max_seq {}",
        config.hidden_size,
        config.num_layers,
        config.num_heads,
        config.vocab_size,
        config.max_position_embeddings,
        config.max_seq_length
    ))
}

/// A BERT small enough to load thousands of times a second (hidden 4, 2 heads, 1 layer,
/// vocabulary 10, 6 positions): the config the `weights` target reads every input for.
pub fn tiny_bert_config() -> BertConfig {
    BertConfig {
        hidden_size: 4,
        num_layers: 1,
        num_heads: 2,
        intermediate_size: 8,
        vocab_size: 10,
        max_position_embeddings: 6,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        activation: Activation::Gelu,
        pad_token_id: 0,
        max_seq_length: 6,
    }
}

/// The `weights` target: a safetensors file (Hugging Face or localrec names) read for
/// [`tiny_bert_config`], then what the browser does with accepted weights: the CPU
/// kernels' model built and run on two short sequences, and the burn model built on the
/// CPU device. Accepted weights must have every tensor in the config's shape, and both
/// engines must take them. Returns the tensor count, or the refusal.
pub fn weights(data: &[u8]) -> Result<String, String> {
    let config = tiny_bert_config();
    let tensors = read_weights(data, &config).map_err(|e| {
        assert_lowercase("weights", &e.to_string());
        e.to_string()
    })?;
    for (name, shape) in expected_tensors(&config) {
        let tensor = tensors.get(&name).unwrap_or_else(|| panic!("accepted weights lack {name}"));
        assert!(tensor.shape == shape, "{name} is {:?}, not {shape:?}", tensor.shape);
        assert!(tensor.data.len() == shape.iter().product::<usize>(), "{name} holds {} values", tensor.data.len());
        assert!(tensor.data.iter().all(|v| v.is_finite()), "{name} holds a non-finite value");
    }
    let cpu = CpuModel::from_tensors(tensors.clone(), &config)
        .unwrap_or_else(|e| panic!("read_weights accepted weights that the cpu kernels refuse: {e}"));
    let sequences: [&[u32]; 2] = [&[1, 2, 3], &[4]];
    let rows = cpu.embed(&sequences).unwrap_or_else(|e| panic!("the cpu kernels cannot embed two sequences: {e}"));
    assert!(rows.len() == 2 * config.hidden_size, "{} values for two rows", rows.len());
    build_model(&tensors, &config, &Device::flex())
        .unwrap_or_else(|e| panic!("read_weights accepted weights that the burn model refuses: {e}"));
    Ok(format!("{} tensors", tensors.len()))
}

/// Longest sequence the `tokenizer` target asks for.
pub const TOKENIZER_MAX_LEN: usize = 8;

/// The `tokenizer` target: `tokenizer.json` read as the encoder reads it (truncation at
/// [`TOKENIZER_MAX_LEN`]), then texts of every kind encoded: ASCII, accents, CJK, emoji,
/// control characters, empty, longer than the truncation. Returns the token counts, or the
/// refusal.
pub fn tokenizer(data: &[u8]) -> Result<String, String> {
    let tokenizer = TextTokenizer::from_json(data, TOKENIZER_MAX_LEN).map_err(|e| {
        assert_lowercase("tokenizer", &e.to_string());
        e.to_string()
    })?;
    let texts = ["Toy Story (1995)", "", "ÉTÉ naïve 東京 \u{1F600}", "a\u{0}b\tc\u{200B}d", "one two three four five six seven eight nine"];
    let counts: Vec<String> = texts
        .iter()
        .map(|text| match tokenizer.encode(text) {
            Ok(ids) => ids.len().to_string(),
            Err(e) => {
                assert_lowercase("tokenize", &e.to_string());
                "refused".to_string()
            }
        })
        .collect();
    Ok(counts.join(" "))
}

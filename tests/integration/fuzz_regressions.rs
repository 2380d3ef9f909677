//! The fuzz targets' inputs as regression tests: every file in
//! tests/fixtures/fuzz-regressions/{shard,manifest}/ (hand-made hostile inputs, and any
//! input the fuzzer ever crashed on) replays through the targets' own code
//! (fuzz/harness.rs) without a panic; the seed corpus `make fuzz` starts from is built
//! here from ml-latest-small's movies and checked to parse.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use localrec::catalog::build::{CollaborativeSide, shard_bytes};
use localrec::catalog::{
    CatalogEncoder, Collaborative, Manifest, QuantizedRow, Quantization, ShardEntry, ShardExpectation, parse_items,
};
use localrec::encoder::web::sha256_hex;

#[path = "../../fuzz/harness.rs"]
mod harness;

use harness::ShardInput;

fn regressions(kind: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-regressions").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every saved input of `kind` through `target`. Files named `bad-*` must be
/// refused and `ok-*` accepted; any other name (a fuzzer's `crash-*`, `oom-*`,
/// `timeout-*`) only has to come back without a panic. Returns how many files ran.
fn replay<T>(kind: &str, target: fn(&[u8]) -> Result<T, String>) -> usize {
    let files = regressions(kind);
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        match catch_unwind(AssertUnwindSafe(|| target(&bytes))) {
            Err(_) => failures.push(format!("{name}: panicked (message above)")),
            Ok(Ok(_)) if name.starts_with("bad-") => failures.push(format!("{name}: accepted")),
            Ok(Err(e)) if name.starts_with("ok-") => failures.push(format!("{name}: refused: {e}")),
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{kind} regressions failed:\n{}", failures.join("\n"));
    files.len()
}

#[test]
fn every_saved_shard_input_is_refused_or_parsed_without_a_panic() {
    let ran = replay("shard", harness::shard);
    assert!(ran >= 20, "only {ran} shard inputs: the hand-made ones are missing");
}

#[test]
fn every_saved_manifest_input_is_refused_or_round_trips_without_a_panic() {
    let ran = replay("manifest", harness::manifest);
    assert!(ran >= 20, "only {ran} manifest inputs: the hand-made ones are missing");
}

/// (name, fuzz input) for the shard target: real movies written by the builder's own
/// shard writer, in each layout a shard can have, fed in different chunkings.
fn seed_shards() -> Vec<(String, Vec<u8>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/ml-latest-small/movies.csv");
    let movies = parse_items(&std::fs::read(&path).unwrap(), "movies.csv").unwrap();
    // (first movie, items, dims, factor dims, bias, chunk sizes)
    let layouts: [(usize, usize, usize, usize, bool, [u8; 4]); 6] = [
        (0, 3, 8, 0, false, [0, 0, 0, 0]),
        (3, 4, 16, 0, false, [1, 2, 3, 5]),
        (100, 2, 16, 4, true, [7, 13, 31, 64]),
        (2000, 2, 64, 8, false, [255, 1, 255, 1]),
        (5000, 1, 1, 8, true, [32, 0, 4, 4]),
        (0, 0, 4, 0, false, [0, 0, 0, 0]),
    ];
    layouts
        .iter()
        .enumerate()
        .map(|(n, &(start, count, dims, factor_dims, bias, chunks))| {
            let items = movies[start..start + count].to_vec();
            let embeddings: Vec<QuantizedRow> = (0..count)
                .map(|i| {
                    let e: Vec<f32> = (0..dims).map(|j| (((i * 37 + j * 11) % 23) as f32 - 11.0) / 11.0).collect();
                    QuantizedRow::quantize(&e)
                })
                .collect();
            let side = (factor_dims > 0).then(|| CollaborativeSide {
                manifest: Collaborative { dims: factor_dims, bias, params: Default::default() },
                scenarios: vec![],
                factors: (0..count * factor_dims).map(|k| k as f32 * 0.25 - 1.0).collect(),
                bias: bias.then(|| (0..count).map(|i| i as f32 * 0.5).collect()),
            });
            let shard = shard_bytes(&items, 0..count, &embeddings, dims, side.as_ref()).unwrap();
            let expect = ShardExpectation { items: count as u32, dims, factor_dims };
            (format!("seed-{n}-{count}x{dims}-f{factor_dims}"), ShardInput::join(expect, chunks, &shard))
        })
        .collect()
}

/// (name, manifest.json) for the manifest target: one like `localrec build` writes, one
/// with a collaborative side whose params hold nested values and awkward floats.
fn seed_manifests() -> Vec<(String, Vec<u8>)> {
    let encoder = CatalogEncoder {
        name: "all-MiniLM-L6-v2".into(),
        dims: 384,
        pooling: "mean".into(),
        normalized: true,
        max_seq_length: 256,
        source_weights_sha256: sha256_hex(b"source"),
        weights_sha256: sha256_hex(b"web"),
        model: "model/".into(),
        files: vec![],
    };
    let shards: Vec<ShardEntry> = (0..3)
        .map(|i| ShardEntry {
            path: format!("shards/{i:05}.bin"),
            bytes: 2_000_000 + i,
            items: 3000 + i,
            sha256: sha256_hex(&i.to_le_bytes()),
        })
        .collect();
    let plain = Manifest {
        format: "localrec-catalog".into(),
        version: 1,
        name: "ml-latest-small".into(),
        created_by: "localrec 0.1.0".into(),
        items: shards.iter().map(|s| s.items).sum(),
        encoder,
        quantization: Quantization { embeddings: "int8-row-scale".into() },
        collaborative: None,
        scenarios: vec![],
        shards,
    };
    let params = serde_json::json!({
        "lambda": 0.1, "alpha": 1e-7, "tiny": 5e-324, "big": 1.7976931348623157e308,
        "blend": {"weights": [0.25, -0.5, 3], "name": "é"},
    });
    let collaborative = Manifest {
        collaborative: Some(Collaborative { dims: 32, bias: true, params: params.as_object().unwrap().clone() }),
        scenarios: vec!["watch".into(), "rate".into()],
        ..plain.clone()
    };
    vec![
        ("seed-plain.json".into(), plain.to_json().unwrap()),
        ("seed-collaborative.json".into(), collaborative.to_json().unwrap()),
    ]
}

/// Writes the seed corpus into `$LOCALREC_FUZZ_SEEDS/{shard,manifest}/` when that is set
/// (`make fuzz` does); the checks run either way.
#[test]
fn seed_inputs_are_accepted_by_the_fuzz_targets_and_written_on_request() {
    let shards = seed_shards();
    for (name, input) in &shards {
        let expect = ShardInput::split(input).expect.items as usize;
        assert_eq!(harness::shard(input), Ok(expect), "{name}: a seed the parser refuses only fuzzes the header check");
    }
    let manifests = seed_manifests();
    for (name, json) in &manifests {
        assert_eq!(harness::manifest(json), Ok(()), "{name}");
    }
    if let Some(dir) = std::env::var_os("LOCALREC_FUZZ_SEEDS") {
        let write = |kind: &str, files: &[(String, Vec<u8>)]| {
            let dir = Path::new(&dir).join(kind);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in files {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        };
        write("shard", &shards);
        write("manifest", &manifests);
    }
}

#[test]
fn chunk_sizes_from_the_prefix_cover_the_shard_exactly_once() {
    let shard: Vec<u8> = (0..=255).collect();
    for chunks in [[0, 0, 0, 0], [1, 2, 3, 5], [255, 7, 0, 1], [200, 200, 200, 200]] {
        let expect = ShardExpectation { items: 1, dims: 3, factor_dims: 2 };
        let input = ShardInput::join(expect, chunks, &shard);
        let split = ShardInput::split(&input);
        assert_eq!(split.expect, expect);
        assert_eq!(split.pieces().concat(), shard, "{chunks:?}");
        if chunks[0] != 0 {
            assert_eq!(split.pieces()[0].len(), chunks[0] as usize);
        }
    }
    let short = ShardInput::split(&[5, 0]);
    assert_eq!((short.expect.items, short.expect.dims, short.shard.len()), (5, 1, 0));
}

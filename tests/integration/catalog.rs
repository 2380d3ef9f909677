//! `localrec build`, `merge` and `inspect` with the real model, on the first 300 movies
//! of ml-latest-small and their ratings (written to a scratch folder by the tests): the
//! catalog reads back natively with the input's ids, titles, genres and embeddings; builds
//! are byte-identical when repeated, resumed or made in parts; bad input fails naming
//! file and line and leaves nothing behind; `inspect` names a damaged shard.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use localrec::catalog::{CatalogItem, Manifest, parse_shard};
use localrec::encoder::web::sha256_hex;
use localrec::native::NativeBackend;
use localrec::{Encoder, cosine};

use super::common::{model_dir, model_files};

const ITEMS: usize = 300;
/// Small shards, so a 300-item catalog has several and parts have something to split.
const SHARD_BYTES: &str = "40000";
const BATCH: &str = "16";
/// A small collaborative side, so the slice's shards stay small.
const FACTORS: &str = "8";
const ITEM_RANK: &str = "8";
const NAME: &str = "ml-slice";
/// Ratings of movies outside the slice kept in its ratings file: they must be counted
/// as skipped.
const FOREIGN_RATINGS: usize = 25;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(super) fn localrec(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_localrec"));
    cmd.args(args);
    for var in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"] {
        cmd.env_remove(var);
    }
    cmd.output().expect("localrec starts")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(super) fn succeed(args: &[&str]) -> serde_json::Value {
    let out = localrec(args);
    assert!(out.status.success(), "localrec {args:?} failed: {}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null)
}

/// Asserts the run failed without a panic and returns its stderr.
pub(super) fn fail(args: &[&str]) -> String {
    let out = localrec(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "localrec {args:?} should fail; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Scratch folders live under this process's folder in cargo's test tmpdir; folders of
/// earlier runs whose process is gone are removed (each holds model copies of 45 MB).
fn scratch_root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        if let Ok(entries) = std::fs::read_dir(&base) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let pid = name.strip_prefix("localrec-catalog-").and_then(|p| p.parse::<u32>().ok());
                if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                    std::fs::remove_dir_all(entry.path()).ok();
                }
            }
        }
        base.join(format!("localrec-catalog-{}", std::process::id()))
    })
}

/// A fresh, empty scratch path (not created).
pub(super) fn scratch(name: &str) -> PathBuf {
    let dir = scratch_root().join(name);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(scratch_root()).unwrap();
    dir
}

pub(super) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One movie of the slice as the test reads movies.csv itself.
struct Movie {
    id: String,
    title: String,
    genres: Vec<String>,
}

impl Movie {
    fn text(&self) -> String {
        if self.genres.is_empty() {
            self.title.clone()
        } else {
            format!("{}. Genres: {}", self.title, self.genres.join(", "))
        }
    }

    fn year(&self) -> Option<u32> {
        let t = self.title.trim_end();
        let tail = t.get(t.len().checked_sub(6)?..)?;
        (tail.starts_with('(') && tail.ends_with(')')).then(|| tail[1..5].parse().ok()).flatten()
    }
}

struct Slice {
    movies: PathBuf,
    ratings: PathBuf,
    rows: Vec<Movie>,
    ratings_used: u64,
}

/// The first 300 movies of ml-latest-small, their ratings plus a few of other movies.
fn slice() -> &'static Slice {
    static SLICE: OnceLock<Slice> = OnceLock::new();
    SLICE.get_or_init(|| {
        let dir = scratch("input");
        std::fs::create_dir_all(&dir).unwrap();
        let all = std::fs::read_to_string(repo().join("data/ml-latest-small/movies.csv")).unwrap();
        let lines: Vec<&str> = all.lines().take(ITEMS + 1).collect();
        let movies = dir.join("movies.csv");
        std::fs::write(&movies, lines.join("\n") + "\n").unwrap();
        let rows: Vec<Movie> = lines[1..]
            .iter()
            .map(|line| {
                let (id, rest) = line.split_once(',').unwrap();
                let (title, genres) = rest.rsplit_once(',').unwrap();
                let title = match title.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                    Some(quoted) => quoted.replace("\"\"", "\""),
                    None => title.to_owned(),
                };
                let genres = if genres == "(no genres listed)" {
                    vec![]
                } else {
                    genres.split('|').map(str::to_owned).collect()
                };
                Movie { id: id.into(), title, genres }
            })
            .collect();

        let mut gz = Vec::new();
        std::fs::File::open(repo().join("data/ml-latest-small/ratings.csv.gz")).unwrap().read_to_end(&mut gz).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_string(&mut text).unwrap();
        let ids: std::collections::HashSet<&str> = rows.iter().map(|m| m.id.as_str()).collect();
        let mut kept = vec![text.lines().next().unwrap().to_owned()];
        let (mut used, mut foreign) = (0u64, 0usize);
        for line in text.lines().skip(1) {
            let movie = line.split(',').nth(1).unwrap();
            if ids.contains(movie) {
                used += 1;
                kept.push(line.to_owned());
            } else if foreign < FOREIGN_RATINGS {
                foreign += 1;
                kept.push(line.to_owned());
            }
        }
        let ratings = dir.join("ratings.csv");
        std::fs::write(&ratings, kept.join("\n") + "\n").unwrap();
        Slice { movies, ratings, rows, ratings_used: used }
    })
}

/// Arguments of the reference build into `out`, plus `extra`.
fn build_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let sl = slice();
    let mut args = vec![
        "build",
        "--items",
        s(&sl.movies),
        "--interactions",
        s(&sl.ratings),
        "--model",
        s(model_dir_static()),
        "--out",
        s(out),
        "--shard-bytes",
        SHARD_BYTES,
        "--batch",
        BATCH,
        "--name",
        NAME,
        "--factors",
        FACTORS,
        "--item-rank",
        ITEM_RANK,
        // The records are the linear models' alone (the autoencoder has its own tests).
        "--vae-weight",
        "0",
        "--json",
    ];
    args.extend_from_slice(extra);
    args
}

/// Arguments of `localrec train` on `out` with the reference build's settings, plus `extra`.
fn train_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let sl = slice();
    let mut args =
        vec!["train", s(out), "--interactions", s(&sl.ratings), "--factors", FACTORS, "--item-rank", ITEM_RANK, "--vae-weight", "0", "--json"];
    args.extend_from_slice(extra);
    args
}

fn model_dir_static() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(model_dir)
}

/// The reference catalog, built once, and its build's JSON summary.
fn reference() -> &'static (PathBuf, serde_json::Value) {
    static REF: OnceLock<(PathBuf, serde_json::Value)> = OnceLock::new();
    REF.get_or_init(|| {
        let out = scratch("reference");
        let report = succeed(&build_args(&out, &[]));
        (out, report)
    })
}

/// Every file under `dir` (relative path, bytes), sorted.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn assert_same_files(a: &Path, b: &Path) {
    let (fa, fb) = (files(a), files(b));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&fa), names(&fb), "{} and {} hold different files", a.display(), b.display());
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{name} differs between {} and {}", a.display(), b.display());
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, bytes) in files(from) {
        let path = to.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Shard `i`'s path in `dir`'s manifest (content-addressed: the name carries its digest).
fn shard_rel(dir: &Path, i: usize) -> String {
    let manifest = Manifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    manifest.shards[i].path.clone()
}

/// Reads a catalog natively: manifest, then every shard checked against it.
fn read_catalog(dir: &Path) -> (Manifest, Vec<CatalogItem>) {
    let manifest = Manifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut items = Vec::new();
    for (i, shard) in manifest.shards.iter().enumerate() {
        let bytes = std::fs::read(dir.join(&shard.path)).unwrap();
        assert_eq!(bytes.len() as u64, shard.bytes, "{}", shard.path);
        assert_eq!(sha256_hex(&bytes), shard.sha256, "{}", shard.path);
        let (header, got) = parse_shard(&bytes, manifest.expectation(i).unwrap()).unwrap();
        assert_eq!(header.first as usize, items.len(), "{}", shard.path);
        items.extend(got);
    }
    (manifest, items)
}

#[test]
fn build_reads_back_with_the_input_ids_titles_genres_years_and_embeddings() {
    let (dir, report) = reference();
    let sl = slice();
    let (manifest, items) = read_catalog(dir);
    assert_eq!(manifest.items as usize, ITEMS);
    assert_eq!(manifest.name, NAME);
    assert!(manifest.shards.len() >= 3, "40 kB shards split 300 items: {}", manifest.shards.len());
    assert!(manifest.shards.iter().all(|s| s.bytes <= 40_000));
    let collaborative = manifest.collaborative.as_ref().expect("interactions train a collaborative side");
    // [q | a | c] and the rating head's item bias (the slice's log has ratings).
    assert_eq!((collaborative.dims, collaborative.bias), (8 + 2 * 8 + 1, true));
    assert!(manifest.scenarios.is_empty());
    let enc = &manifest.encoder;
    assert_eq!(
        (enc.name.as_str(), enc.dims, enc.max_seq_length, enc.model.as_str()),
        ("all-MiniLM-L6-v2", 384, 256, "model/")
    );
    assert_eq!(enc.source_weights_sha256, "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db");
    assert_eq!(enc.weights_sha256, sha256_hex(&std::fs::read(dir.join("model/model.safetensors")).unwrap()));
    assert!(!dir.join(".build").exists(), "the checkpoint is removed after a complete build");

    assert_eq!(items.len(), ITEMS);
    for (item, movie) in items.iter().zip(&sl.rows) {
        assert_eq!((&item.id, &item.title, &item.genres), (&movie.id, &movie.title, &movie.genres));
        let want_meta = movie.year().map(|y| format!("{{\"year\":{y}}}")).unwrap_or_default();
        assert_eq!(item.meta, want_meta, "{}", movie.title);
        assert!(item.factors.len() == 25 && item.bias.is_some_and(f32::is_finite));
    }
    assert!(items.iter().any(|i| i.title.contains(", The")), "the slice has quoted titles with commas");

    let encoder = Encoder::load(&model_files(), &NativeBackend::Cpu.device().unwrap()).unwrap();
    let texts: Vec<String> = sl.rows.iter().map(Movie::text).collect();
    let expected = encoder.embed(&texts.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    let mut worst = 1.0f32;
    for (k, item) in items.iter().enumerate() {
        let c = cosine(&item.embedding.dequantize(), expected.row(k));
        assert!(c >= 0.99, "item {k} ({:?}): cosine {c}", item.title);
        worst = worst.min(c);
    }
    // int8 rows keep about 0.9999 of the encoder's vector; a wrong text or a row in the
    // wrong place falls far below.
    assert!(worst >= 0.999, "worst cosine {worst}");

    let ix = &report["interactions"];
    assert_eq!(ix["used"].as_u64(), Some(sl.ratings_used));
    assert_eq!(ix["skipped_unknown_item"].as_u64(), Some(FOREIGN_RATINGS as u64));
    assert_eq!(ix["lines"].as_u64(), Some(sl.ratings_used + FOREIGN_RATINGS as u64));
    assert_eq!((report["encoded"].as_u64(), report["reused"].as_u64()), (Some(ITEMS as u64), Some(0)));
}

#[test]
fn two_builds_of_the_same_input_are_byte_identical() {
    let (reference, _) = reference();
    let again = scratch("again");
    succeed(&build_args(&again, &[]));
    assert_same_files(reference, &again);
    std::fs::remove_dir_all(&again).ok();
}

#[test]
fn an_interrupted_build_resumes_from_its_checkpoint_and_gives_the_same_bytes() {
    let (reference, _) = reference();
    let out = scratch("resumed");
    let err = fail(&build_args(&out, &["--stop-after", "100"]));
    let stopped: u64 = err
        .split("stopped after encoding ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no encoded count in: {err}"));
    assert!((100..ITEMS as u64).contains(&stopped), "{stopped}");
    assert!(
        !out.join("manifest.json").exists() && !out.join("shards").exists(),
        "an interrupted build writes no catalog"
    );
    let checkpoint = std::fs::read_dir(out.join(".build")).unwrap().next().unwrap().unwrap().path();
    let mut chunks: Vec<PathBuf> = std::fs::read_dir(&checkpoint).unwrap().map(|e| e.unwrap().path()).collect();
    chunks.sort();
    assert!(chunks.len() >= 2, "{chunks:?}");

    // A damaged chunk is stale: it is encoded again, the intact one is reused.
    let mut bytes = std::fs::read(&chunks[1]).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&chunks[1], &bytes).unwrap();
    let damaged_items: u64 = {
        let name = chunks[1].file_stem().unwrap().to_string_lossy().into_owned();
        let (a, b) = name.split_once('-').unwrap();
        b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap()
    };

    let report = succeed(&build_args(&out, &[]));
    let (encoded, reused) = (report["encoded"].as_u64().unwrap(), report["reused"].as_u64().unwrap());
    assert_eq!(reused, stopped - damaged_items, "{report}");
    assert_eq!(encoded, ITEMS as u64 - reused, "{report}");
    assert_same_files(reference, &out);
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn parts_built_separately_and_merged_equal_one_build() {
    let out = scratch("parts");
    // Training needs the whole catalog, so parts carry text only: compare with such a build.
    let err = fail(&build_args(&out, &["--part", "1/2"]));
    assert!(err.contains("--no-train"), "{err}");
    let reference = scratch("parts-reference");
    succeed(&build_args(&reference, &["--no-train"]));
    let reference = reference.as_path();
    let second = succeed(&build_args(&out, &["--part", "1/2", "--no-train"]));
    assert_eq!(second["manifest"], false);
    let err = fail(&["merge", "--out", s(&out)]);
    assert!(err.contains("part 0/2 missing"), "{err}");
    let first = succeed(&build_args(&out, &["--part", "0/2", "--no-train"]));
    let built = first["items"].as_u64().unwrap() + second["items"].as_u64().unwrap();
    assert_eq!(built, ITEMS as u64, "every item is encoded by exactly one part");
    assert!(first["items"].as_u64().unwrap() > 0 && second["items"].as_u64().unwrap() > 0);
    assert!(!out.join("manifest.json").exists(), "parts write no manifest");
    succeed(&["merge", "--out", s(&out), "--json"]);
    assert_same_files(reference, &out);
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn bad_input_fails_naming_file_and_line_and_leaves_no_output() {
    let dir = scratch("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let model = model_dir();
    let header = b"movieId,title,genres\n".as_slice();
    let good = b"1,Toy Story (1995),Animation\n2,Heat (1995),Crime\n".as_slice();
    // (items file name, its bytes, the ratings file's bytes, the error's end)
    type Case<'a> = (&'a str, Vec<u8>, Option<&'a [u8]>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "movies.csv",
            [header, good, b"1,Again (1999),Drama\n"].concat(),
            None,
            "movies.csv:4: duplicate id \"1\" (first on line 2)",
        ),
        (
            "movies.csv",
            [b"movieId,name,genres\n".as_slice(), good].concat(),
            None,
            "movies.csv:1: missing column \"title\"",
        ),
        ("movies.csv", [header, good, b"3,Caf\xe9 (2001),Drama\n"].concat(), None, "movies.csv:4: not valid utf-8"),
        ("movies.csv", header.to_vec(), None, "movies.csv: no items"),
        ("items.jsonl", Vec::new(), None, "items.jsonl: no items"),
        (
            "items.jsonl",
            b"{\"id\": 1, \"title\": \"A\"}\n{\"id\": 2, \"title\": 3}\n".to_vec(),
            None,
            "items.jsonl:2: \"title\" must be a string",
        ),
        (
            "movies.csv",
            [header, good].concat(),
            Some(b"userId,movieId,rating\n1,1,4.0\n1,2,lots\n"),
            "ratings.csv:3: rating \"lots\" is not a number",
        ),
        (
            "movies.csv",
            [header, good].concat(),
            Some(b"userId,rating\n1,4.0\n"),
            "ratings.csv:1: missing column \"item_id\"",
        ),
        (
            "movies.csv",
            [header, good].concat(),
            Some(b"userId,movieId\n1,1\n\xff,2\n"),
            "ratings.csv:3: not valid utf-8",
        ),
    ];
    for (k, (items_name, items, ratings, want)) in cases.into_iter().enumerate() {
        let case = dir.join(format!("case{k}"));
        std::fs::create_dir_all(&case).unwrap();
        let items_path = case.join(items_name);
        std::fs::write(&items_path, items).unwrap();
        let out = case.join("out");
        let mut args = vec!["build", "--items", s(&items_path), "--model", s(&model), "--out", s(&out)];
        let ratings_path = case.join("ratings.csv");
        if let Some(r) = ratings {
            std::fs::write(&ratings_path, r).unwrap();
            args.extend(["--interactions", s(&ratings_path)]);
        }
        let err = fail(&args);
        let want = format!("{}/{want}", case.display());
        assert!(err.contains(&want), "case {k}: {err:?} should contain {want:?}");
        assert!(!out.exists(), "case {k}: nothing may be written for bad input");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn other_item_formats_build_json_lines_latin1_dat_and_gzipped_csv() {
    let dir = scratch("formats");
    std::fs::create_dir_all(&dir).unwrap();
    let jsonl = concat!(
        r#"{"id": 10, "title": "Bees", "text": "a documentary about bees", "genres": ["Documentary"], "url": "https://example.invalid/10"}"#,
        "\n",
        r#"{"id": "b-2", "title": "Heat (1995)", "year": 1995}"#,
        "\n"
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let ml32m = std::fs::read(repo().join("data/ml-32m-movies/movies.csv.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(ml32m.as_slice()).read_to_string(&mut text).unwrap();
    let head: Vec<&str> = text.lines().take(6).collect();
    gz.write_all((head.join("\n") + "\n").as_bytes()).unwrap();
    // (file name, bytes, the first items' (id, title, genres, meta))
    type Expected<'a> = Vec<(&'a str, &'a str, Vec<&'a str>, &'a str)>;
    let cases: Vec<(&str, Vec<u8>, Expected)> = vec![
        (
            "items.jsonl",
            jsonl.as_bytes().to_vec(),
            vec![
                ("10", "Bees", vec!["Documentary"], r#"{"url":"https://example.invalid/10"}"#),
                ("b-2", "Heat (1995)", vec![], r#"{"year":1995}"#),
            ],
        ),
        (
            "movies.dat",
            b"73::Mis\xe9rables, Les (1995)::Drama|Musical\n570::Slingshot, The (K\xe5disbellan ) (1993)::Comedy|Drama\n".to_vec(),
            vec![
                ("73", "Misérables, Les (1995)", vec!["Drama", "Musical"], r#"{"year":1995}"#),
                ("570", "Slingshot, The (Kådisbellan ) (1993)", vec!["Comedy", "Drama"], r#"{"year":1993}"#),
            ],
        ),
        (
            "movies.csv.gz",
            gz.finish().unwrap(),
            vec![("1", "Toy Story (1995)", vec!["Adventure", "Animation", "Children", "Comedy", "Fantasy"], r#"{"year":1995}"#)],
        ),
    ];
    for (name, bytes, want) in cases {
        let items = dir.join(name);
        std::fs::write(&items, bytes).unwrap();
        let out = dir.join(format!("{name}.catalog"));
        succeed(&["build", "--items", s(&items), "--model", s(&model_dir()), "--out", s(&out), "--json"]);
        let (_, got) = read_catalog(&out);
        for (k, (id, title, genres, meta)) in want.iter().enumerate() {
            assert_eq!(
                (got[k].id.as_str(), got[k].title.as_str(), got[k].meta.as_str()),
                (*id, *title, *meta),
                "{name}"
            );
            assert_eq!(got[k].genres, *genres, "{name}");
        }
        if name == "movies.csv.gz" {
            assert_eq!(got.len(), 5);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inspect_verifies_a_good_catalog_and_names_a_flipped_or_truncated_shard() {
    let (reference, _) = reference();
    let summary = succeed(&["inspect", s(reference), "--json"]);
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["items"], ITEMS);
    assert_eq!(summary["encoder"]["dims"], 384);
    assert_eq!(summary["collaborative"]["dims"], 25, "{summary}");
    assert_eq!(summary["collaborative"]["params"]["als_dims"], 8);
    assert!(summary["collaborative"]["params"]["gram"].get("f32le").is_none(), "matrices are left out");
    let shards = summary["shards"].as_u64().unwrap();
    assert!(shards >= 3 && summary["bytes_per_item"].as_f64().unwrap() > 384.0);
    let text = localrec(&["inspect", s(reference)]);
    assert!(text.status.success());
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("collaborative  25 dims, with bias (ALS 8, item-item rank 8, 0 scenario lifts, rating head: mean")
    );

    let copy = scratch("inspect");
    copy_dir(reference, &copy);
    let (rel1, rel2) = (shard_rel(&copy, 1), shard_rel(&copy, 2));
    let shard1 = copy.join(&rel1);
    let original = std::fs::read(&shard1).unwrap();
    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x01;
    std::fs::write(&shard1, &flipped).unwrap();
    let err = fail(&["inspect", s(&copy)]);
    assert!(err.contains(&format!("shard 1 ({rel1})")) && err.contains("sha256"), "{err}");

    std::fs::write(&shard1, &original).unwrap();
    let shard2 = copy.join(&rel2);
    let bytes = std::fs::read(&shard2).unwrap();
    std::fs::write(&shard2, &bytes[..bytes.len() - 7]).unwrap();
    let out = localrec(&["inspect", s(&copy), "--json"]);
    assert!(!out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["ok"], false);
    let problems = summary["problems"].to_string();
    assert!(problems.contains(&format!("shard 2 ({rel2})")) && problems.contains("bytes"), "{problems}");
    assert!(!problems.contains("shard 1"), "the restored shard verifies: {problems}");

    std::fs::write(&shard2, &bytes).unwrap();
    let tokenizer = copy.join("model/tokenizer.json");
    let mut t = std::fs::read(&tokenizer).unwrap();
    t[10] ^= 0x20;
    std::fs::write(&tokenizer, t).unwrap();
    let err = fail(&["inspect", s(&copy)]);
    assert!(err.contains("model/tokenizer.json"), "{err}");
    std::fs::remove_dir_all(&copy).ok();
}

/// Serves `dir` over HTTP on the loopback interface until `stop` is set (at most two
/// minutes), one request per connection.
fn serve(dir: PathBuf, stop: &'static AtomicBool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            stream.set_nonblocking(false).ok();
            stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_owned();
            let path = line.split(' ').nth(1).unwrap_or("/").trim_start_matches('/').to_owned();
            let response = match std::fs::read(dir.join(&path)) {
                Ok(body) if !path.contains("..") => {
                    let mut r =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                            .into_bytes();
                    r.extend(body);
                    r
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
            };
            stream.write_all(&response).ok();
        }
    });
    format!("http://{addr}/")
}

#[test]
fn inspect_reads_a_catalog_over_http_and_names_a_missing_shard_by_url() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let (reference, _) = reference();
    let copy = scratch("http");
    copy_dir(reference, &copy);
    let url = serve(copy.clone(), &STOP);
    let summary = succeed(&["inspect", &url, "--json"]);
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["items"], ITEMS);
    let via_manifest = succeed(&["inspect", &format!("{url}manifest.json"), "--json"]);
    assert_eq!(via_manifest["ok"], true);

    let rel0 = shard_rel(&copy, 0);
    std::fs::remove_file(copy.join(&rel0)).unwrap();
    let err = fail(&["inspect", &url]);
    assert!(err.contains(&format!("{url}{rel0}")) && err.contains("404"), "{err}");
    STOP.store(true, Ordering::Relaxed);
    std::fs::remove_dir_all(&copy).ok();
}

/// The catalog as the browser loads it: every shard streamed through `ShardStream` in
/// small chunks into a `CatalogStore`, then the scorer's item side taken from it.
fn browser_scorer(dir: &Path) -> (localrec::catalog::CatalogStore, localrec::scorer::rank::Scorer) {
    use localrec::catalog::CatalogStore;
    let manifest = Manifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut store = CatalogStore::new(manifest.clone());
    for (i, shard) in manifest.shards.iter().enumerate() {
        let bytes = std::fs::read(dir.join(&shard.path)).unwrap();
        let mut stream = store.stream(i).unwrap();
        for chunk in bytes.chunks(4096) {
            stream.feed(chunk).unwrap();
        }
        store.add(stream.finish().unwrap()).unwrap();
    }
    assert!(store.is_complete());
    let (items, params) = localrec::scorer::model::from_store(&store).unwrap();
    let scorer = localrec::scorer::rank::Scorer::new(items, params, &NativeBackend::Cpu.device().unwrap()).unwrap();
    (store, scorer)
}

#[test]
fn a_trained_catalog_recommends_on_the_browser_path_from_its_own_params() {
    use localrec::scorer::profile::{Event, Source, user_query};
    use localrec::scorer::rank::RankOptions;
    let (dir, report) = reference();
    let tuning = &report["collaborative"]["tuning"];
    assert!(tuning["users"].as_u64().unwrap() >= 10, "the blend was tuned on held-out users: {report}");
    let (store, scorer) = browser_scorer(dir);
    let params = scorer.params().expect("scorer params in the manifest");
    assert_eq!((params.als_dims, params.item_rank), (8, 8));
    assert!(params.text_map.is_some());

    // A user who liked the slice's animated children's films.
    let children = |i: u32| {
        let g = &store.item(i).unwrap().genres;
        g.iter().any(|g| g == "Animation" || g == "Children")
    };
    let liked: Vec<u32> = (0..store.len() as u32).filter(|&i| children(i)).take(4).collect();
    assert_eq!(liked.len(), 4, "the slice has animated children's films");
    let events: Vec<Event> = liked.iter().map(|&item| Event { item, weight: 1.0, age_days: 0.0 }).collect();
    let query = user_query(scorer.items(), scorer.params(), &events, &[]).unwrap();
    let terms = scorer.terms(&[&query]).unwrap().remove(0);
    let got = scorer
        .rank(&query, &terms, &RankOptions { k: 10, exclude: liked.clone(), explain: true, ..Default::default() })
        .unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|r| !liked.contains(&r.index)), "liked films are never recommended");
    // Personalized: not the popularity order a user with no history gets.
    let empty = user_query(scorer.items(), scorer.params(), &[], &[]).unwrap();
    let popular = scorer
        .rank(&empty, &scorer.terms(&[&empty]).unwrap()[0], &RankOptions { k: 10, ..Default::default() })
        .unwrap();
    assert_ne!(popular.iter().map(|r| r.index).collect::<Vec<_>>(), got.iter().map(|r| r.index).collect::<Vec<_>>());
    // The text term alone finds the same kind of film.
    let semantic =
        localrec::scorer::model::Blend { collaborative: 0.0, item_item: 0.0, semantic: 1.0, popularity: 0.0, scenario: 0.0, vae: 0.0, interest: 0.0 };
    let by_text = scorer
        .rank(
            &query,
            &terms,
            &RankOptions { k: 10, exclude: liked.clone(), blend: Some(semantic), ..Default::default() },
        )
        .unwrap();
    let share = by_text.iter().filter(|r| children(r.index)).count();
    let base = (0..store.len() as u32).filter(|&i| children(i)).count() as f64 / store.len() as f64;
    assert!(share >= 5, "{share}/10 children's films by text; base rate {base:.3}");
    for r in &got {
        let because = r.because.expect("each result has a reason");
        assert!(matches!(because.source, Source::Event { item, .. } if liked.contains(&item)));
    }
}

#[test]
fn a_build_learns_how_to_rank_another_catalogs_likes_and_the_browser_path_uses_it() {
    use localrec::scorer::api::{Because, parse_request, recommend};
    let (dir, report) = reference();
    let foreign = &report["collaborative"]["tuning"]["foreign"];
    assert!(foreign["alone"]["users"].as_u64().unwrap() >= 10, "simulated on held-out users: {foreign}");
    let (store, scorer) = browser_scorer(dir);
    let params = scorer.params().unwrap();
    let blend = params.foreign_blend.expect("the manifest carries the foreign blend");
    assert_eq!(foreign["blend"]["popularity"].as_f64().unwrap(), blend.popularity as f64);
    assert_eq!(foreign["weight"].as_f64().unwrap(), params.foreign_weight as f64);

    // Likes recorded against another catalog of the same encoder: the page sends the
    // liked items' stored int8 rows, dequantized.
    let children: Vec<u32> = (0..store.len() as u32)
        .filter(|&i| store.item(i).unwrap().genres.iter().any(|g| g == "Animation" || g == "Children"))
        .take(4)
        .collect();
    let foreign_events: Vec<serde_json::Value> = children
        .iter()
        .map(|&i| serde_json::json!({"embedding": store.embedding(i).unwrap(), "type": "like"}))
        .collect();
    let ask = |events: serde_json::Value, foreign: &[serde_json::Value], scorer: &localrec::scorer::rank::Scorer| {
        let request = parse_request(&serde_json::json!({"events": events, "foreign": foreign, "k": 10}).to_string()).unwrap();
        recommend(&store, scorer, &request).unwrap()
    };
    let ids = |r: &localrec::scorer::api::Recommendations| r.results.iter().map(|x| x.item_id.clone()).collect::<Vec<_>>();
    let alone = ask(serde_json::json!([]), &foreign_events, &scorer);
    let cold = ask(serde_json::json!([]), &[], &scorer);
    assert_ne!(ids(&alone), ids(&cold), "foreign likes move a cold list");
    assert!(alone.results.iter().all(|r| matches!(r.because, Some(Because::Foreign { .. }))), "and are the reason");

    // Beside own events, a foreign like weighs the catalog's foreign weight: 0 ignores it.
    let own = serde_json::json!([{"itemId": store.item(children[0]).unwrap().id, "type": "like"}]);
    let with_weight = |w: f32| {
        let mut p = params.clone();
        p.foreign_weight = w;
        localrec::scorer::rank::Scorer::new(scorer.items().clone(), Some(p), &NativeBackend::Cpu.device().unwrap()).unwrap()
    };
    let ignored = ask(own.clone(), &foreign_events[1..], &with_weight(0.0));
    assert_eq!(ids(&ignored), ids(&ask(own.clone(), &[], &scorer)));
    assert_ne!(ids(&ask(own, &foreign_events[1..], &with_weight(1.0))), ids(&ignored));
}

#[test]
fn train_on_a_text_only_catalog_gives_the_items_and_params_of_a_build_that_trained() {
    let (reference, _) = reference();
    let out = scratch("train-later");
    succeed(&build_args(&out, &["--no-train"]));
    let (text_only, _) = read_catalog(&out);
    assert!(text_only.collaborative.is_none());
    let report = succeed(&train_args(&out, &[]));
    // k + 2r = 24 factors and the rating head's item bias (the log has half-star ratings).
    assert_eq!(report["collaborative"]["dims"], 25, "{report}");
    // The same items; factors, biases and params equal to float rounding: the text-only
    // build plans other shards, so the encoder saw other batches and its embeddings
    // differ in the last bits (as documented for checkpoints). The shard ranges stay
    // those of the text-only build (a build plans them for the bigger records).
    let (want_manifest, want_items) = read_catalog(reference);
    let (got_manifest, got_items) = read_catalog(&out);
    let (got_c, want_c) = (got_manifest.collaborative.clone().unwrap(), want_manifest.collaborative.clone().unwrap());
    assert_eq!((got_c.dims, got_c.bias), (want_c.dims, want_c.bias));
    for key in ["blend", "short_blend", "als_dims", "item_rank", "reg", "alpha", "rating"] {
        assert_eq!(got_c.params.get(key), want_c.params.get(key), "collaborative.params.{key}");
    }
    assert_eq!(got_items.len(), want_items.len());
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-3 * (1.0 + a.abs().max(b.abs()));
    for (got, want) in got_items.iter().zip(&want_items) {
        assert_eq!(got.id, want.id);
        assert!(cosine(&got.embedding.dequantize(), &want.embedding.dequantize()) > 0.9999, "{}: embedding", got.id);
        assert_eq!(got.factors.len(), want.factors.len());
        assert!(got.factors.iter().zip(&want.factors).all(|(a, b)| close(*a, *b)), "{}: factors", got.id);
        assert!(close(got.bias.unwrap(), want.bias.unwrap()), "{}: bias", got.id);
    }
    assert_eq!(got_manifest.shards.len(), text_only.shards.len());
    let err = fail(&["train", s(&out), "--interactions", s(&slice().ratings), "--factors", "0"]);
    assert!(err.contains("--factors"), "{err}");
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn a_republished_catalog_keeps_the_old_shards_beside_the_new_until_gc_after_the_grace_period() {
    let (reference, _) = reference();
    let out = scratch("republish");
    copy_dir(reference, &out);
    let old = read_catalog(&out).0;
    let names = |m: &Manifest| m.shards.iter().map(|s| s.path.clone()).collect::<Vec<_>>();
    for (i, shard) in old.shards.iter().enumerate() {
        assert_eq!(shard.path, format!("shards/{i:05}-{}.bin", &shard.sha256[..16]), "named after its content");
    }
    // A new version: other factors, so every shard's bytes (and name) change.
    let sl = slice();
    succeed(&["train", s(&out), "--interactions", s(&sl.ratings), "--factors", "4", "--item-rank", ITEM_RANK, "--json"]);
    let new = read_catalog(&out).0;
    assert!(names(&new).iter().all(|p| !names(&old).contains(p)), "every shard has a new name");
    // A visitor who fetched the old manifest still finds every shard it names.
    for shard in &old.shards {
        let bytes = std::fs::read(out.join(&shard.path)).unwrap();
        assert_eq!(localrec::encoder::web::sha256_hex(&bytes), shard.sha256, "{} kept as it was", shard.path);
    }
    let mut unnamed = names(&old);
    unnamed.sort();

    // Within the grace period nothing goes; a dry run removes nothing either.
    let kept = succeed(&["gc", s(&out), "--grace", "1h", "--json"]);
    assert_eq!(kept["unnamed"], serde_json::json!(unnamed), "{kept}");
    assert_eq!(kept["removed"], serde_json::json!([]));
    let dry = succeed(&["gc", s(&out), "--grace", "0", "--dry-run", "--json"]);
    assert_eq!(dry["removed"], serde_json::json!([]));
    assert!(old.shards.iter().all(|s| out.join(&s.path).exists()));

    let removed = succeed(&["gc", s(&out), "--grace", "0s", "--json"]);
    assert_eq!(removed["removed"], serde_json::json!(unnamed), "{removed}");
    assert!(old.shards.iter().all(|s| !out.join(&s.path).exists()));
    assert_eq!(succeed(&["inspect", s(&out), "--json"])["ok"], true, "the current version is whole");
    let again = succeed(&["gc", s(&out), "--grace", "0", "--json"]);
    assert_eq!(again["unnamed"], serde_json::json!([]));
    assert!(fail(&["gc", s(&out), "--grace", "1w"]).contains("grace"));
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn a_retrain_without_a_search_keeps_the_choices_the_build_searched_for() {
    let (reference, _) = reference();
    let (built, _) = read_catalog(reference);
    let c = built.collaborative.unwrap();
    let chosen = &c.tuning.as_ref().expect("the build searched")["chosen"];
    let (reg, alpha) = (c.params["reg"].as_f64().unwrap(), c.params["alpha"].as_f64().unwrap());
    assert!((reg, alpha) != (100.0, 10.0), "the search moved off the defaults, or this test shows nothing: {chosen}");
    let out = scratch("retrain-cached");
    for (path, bytes) in files(reference) {
        let to = out.join(path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, bytes).unwrap();
    }
    let report = succeed(&train_args(&out, &["--tune-budget", "0"]));
    assert!(report["collaborative"]["tuning"]["search"]["trials"].as_array().unwrap().is_empty(), "{report}");
    let (retrained, _) = read_catalog(&out);
    let params = retrained.collaborative.unwrap().params;
    assert_eq!((params["reg"].as_f64().unwrap(), params["alpha"].as_f64().unwrap()), (reg, alpha));
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn scenarios_and_the_rating_head_are_trained_tuned_and_used_on_the_browser_path() {
    use localrec::scorer::api::{RecommendRequest, parse_request, recommend};
    let (reference, _) = reference();
    let out = scratch("scenarios");
    copy_dir(reference, &out);
    let report = succeed(&train_args(&out, &["--scenario", "weekday-weekend"]));
    let tuning = &report["collaborative"]["tuning"];
    // The ablation's four rows, each with its setting, chosen on held-out users.
    for row in ["hybrid", "hybrid+lift", "hybrid+events", "hybrid+scenario"] {
        let r = &tuning["scenario"][row];
        assert!(r["recall@20"].as_f64().is_some_and(f64::is_finite) && r["weight"].is_number(), "{row}: {tuning}");
    }
    assert_eq!(tuning["scenario"]["hybrid"]["weight"], 0.0);
    let rmse = &tuning["rating"]["rmse"];
    assert!(tuning["rating"]["held_out_ratings"].as_u64().unwrap() > 0, "{tuning}");
    for key in ["mean", "item_bias", "head"] {
        assert!(rmse[key].as_f64().is_some_and(|v| v > 0.0 && v < 2.5), "{key}: {rmse}");
    }

    let (store, scorer) = browser_scorer(&out);
    assert_eq!(store.manifest().scenarios, vec!["weekday", "weekend"]);
    let params = scorer.params().unwrap();
    assert_eq!((params.scenarios, params.rating.is_some()), (2, true));
    assert_eq!(params.record_dims(), 8 + 2 * 8 + 2 + 1);
    let ids: Vec<String> = (0..4u32).map(|i| store.item(i).unwrap().id.clone()).collect();
    let ask = |json: serde_json::Value| -> serde_json::Value {
        let request: RecommendRequest = parse_request(&json.to_string()).unwrap();
        serde_json::to_value(recommend(&store, &scorer, &request).unwrap()).unwrap()
    };

    // Ratings give each result a predicted rating on the log's scale.
    let rated = ask(serde_json::json!({
        "events": [{"itemId": ids[0], "type": "rate", "value": 5.0}, {"itemId": ids[1], "type": "rate", "value": 1.5}],
        "k": 5,
    }));
    let head = params.rating.unwrap();
    for r in rated["results"].as_array().unwrap() {
        let stars = r["predictedRating"].as_f64().expect("predictedRating");
        assert!((head.min as f64..=head.max as f64).contains(&stars), "{stars}");
    }

    // A scenario the catalog knows changes nothing that breaks; an unknown one warns.
    let events = serde_json::json!([{"itemId": ids[0], "type": "like", "scenario": "weekend"}, {"itemId": ids[2], "type": "like", "scenario": "weekday"}]);
    let weekend = ask(serde_json::json!({"events": events, "k": 10, "scenario": "weekend"}));
    assert_eq!(weekend["warnings"].as_array().unwrap().len(), 0, "{weekend}");
    assert_eq!(weekend["results"].as_array().unwrap().len(), 10);
    let unknown = ask(serde_json::json!({"events": events, "k": 10, "scenario": "holiday"}));
    let warning = unknown["warnings"][0].as_str().unwrap();
    assert!(warning.contains("holiday") && warning.contains("weekday, weekend"), "{warning}");
    let plain = ask(serde_json::json!({"events": events, "k": 10}));
    assert_eq!(unknown["results"], plain["results"], "an unknown scenario ranks as no scenario");

    // rankBy: similar leaves popularity out; text ranks by the text term alone; others are refused.
    let similar = ask(serde_json::json!({"events": [{"itemId": ids[0], "type": "like"}], "k": 5, "rankBy": "similar"}));
    assert!(similar["results"].as_array().unwrap().iter().all(|r| r["itemId"] != ids[0].as_str()));
    let bad = parse_request(r#"{"rankBy": "vibes"}"#).unwrap();
    let err = recommend(&store, &scorer, &bad).unwrap_err().to_string();
    assert!(err.contains("rankBy"), "{err}");
    let e0 = store.embedding(3).unwrap();
    let text = ask(serde_json::json!({"interests": [{"embedding": e0}], "k": 1, "rankBy": "text"}));
    assert_eq!(text["results"][0]["itemId"], ids[3].as_str(), "an item's own embedding finds it first by text");
    std::fs::remove_dir_all(&out).ok();
}

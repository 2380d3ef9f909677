//! `localrec inspect`: verifies a catalog as a browser would read it, from a folder or
//! over HTTP(S): the manifest, every shard (size and SHA-256 against the manifest, then
//! parsed record by record), and the model folder against its own manifest.
//!
//! It checks everything before it answers, so one run lists every broken file; any
//! problem makes it exit non-zero.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use localrec::catalog::manifest::{MAX_MANIFEST_BYTES, MAX_SHARD_BYTES, is_safe_relative_path};
use localrec::catalog::{CatalogStore, MANIFEST_FILE, Manifest, ShardParser};
use localrec::encoder::web::{self, ModelManifest};
use localrec::{Error, ErrorKind, Result};
use localrec::limits::MAX_MODEL_FILE_BYTES;
use sha2::{Digest, Sha256};

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Catalog folder, its manifest.json, or an http(s):// URL of either.
    catalog: String,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Also write every item, once the catalog verified, as JSON lines to this file (`-`:
    /// stdout): `{itemId, title, genres, ...metadata, scale, embedding}`, the shape the
    /// browser's `Catalog.items({quantized: true})` returns.
    #[arg(long, value_name = "FILE")]
    items: Option<PathBuf>,
    /// Answer a recommend request (JSON, the browser's `Catalog.recommend` argument) read
    /// from this file (`-`: stdin) once the catalog verified, with the browser's code path;
    /// the answer goes to stdout as JSON.
    #[arg(long, value_name = "FILE")]
    recommend: Option<PathBuf>,
}

/// Bytes read at a time while hashing and parsing.
const READ_CHUNK: usize = 256 << 10;

/// Where the catalog's files come from.
enum Source {
    Dir(PathBuf),
    Http { base: String, agent: ureq::Agent },
}

impl Source {
    fn new(arg: &str) -> Source {
        if arg.starts_with("http://") || arg.starts_with("https://") {
            let base = if arg.ends_with(".json") {
                arg[..=arg.rfind('/').unwrap_or(arg.len() - 1)].to_owned()
            } else if arg.ends_with('/') {
                arg.to_owned()
            } else {
                format!("{arg}/")
            };
            let agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(600)))
                .http_status_as_error(false)
                .build()
                .new_agent();
            Source::Http { base, agent }
        } else {
            let path = PathBuf::from(arg);
            let dir = if path.is_file() { path.parent().map(PathBuf::from).unwrap_or_default() } else { path };
            Source::Dir(dir)
        }
    }

    /// Where `rel` is, for messages.
    fn locate(&self, rel: &str) -> String {
        match self {
            Source::Dir(dir) => dir.join(rel).display().to_string(),
            Source::Http { base, .. } => format!("{base}{rel}"),
        }
    }

    /// A reader over the file `rel`.
    fn open(&self, rel: &str) -> Result<Box<dyn Read>> {
        let at = self.locate(rel);
        match self {
            Source::Dir(dir) => {
                let file = std::fs::File::open(dir.join(rel))
                    .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot read {at}"), e))?;
                Ok(Box::new(file))
            }
            Source::Http { agent, .. } => {
                let response = agent
                    .get(&at)
                    .call()
                    .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot fetch {at}"), e))?;
                let status = response.status();
                if !status.is_success() {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("cannot fetch {at}: http status {}", status.as_u16()),
                    ));
                }
                Ok(Box::new(response.into_body().into_reader()))
            }
        }
    }

    /// Reads all of `rel`, refusing more than `max` bytes.
    fn read(&self, rel: &str, max: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open(rel)?
            .take(max + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot read {}", self.locate(rel)), e))?;
        if out.len() as u64 > max {
            return Err(Error::new(ErrorKind::Format, format!("{} is larger than {max} bytes", self.locate(rel))));
        }
        Ok(out)
    }

    /// Streams `rel` (at most `max` + 1 bytes) through `each`; returns its size and SHA-256.
    fn stream(&self, rel: &str, max: u64, mut each: impl FnMut(&[u8])) -> Result<(u64, String)> {
        let mut reader = self.open(rel)?.take(max + 1);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::with_source(ErrorKind::Io, format!("cannot read {}", self.locate(rel)), e));
                }
            };
            hasher.update(&buf[..n]);
            each(&buf[..n]);
            total += n as u64;
        }
        Ok((total, hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()))
    }
}

/// A failed check: what and where, and whether bytes differ from their manifest
/// (integrity) or are malformed (format, I/O).
struct Problem {
    kind: ErrorKind,
    message: String,
}

fn problem(at: &str, e: Error) -> Problem {
    Problem { kind: e.kind(), message: format!("{at}: {e}") }
}

/// Checks size and digest against what a manifest says.
fn compare(at: &str, size: u64, sha: &str, want_size: u64, want_sha: &str) -> Option<Problem> {
    if size != want_size {
        let size = if size > want_size { format!("more than {want_size}") } else { size.to_string() };
        return Some(Problem {
            kind: ErrorKind::Integrity,
            message: format!("{at}: {size} bytes; the manifest says {want_size}"),
        });
    }
    if sha != want_sha {
        return Some(Problem {
            kind: ErrorKind::Integrity,
            message: format!("{at}: sha256 is {sha}; the manifest says {want_sha}"),
        });
    }
    None
}

/// Verifies every shard: returns the problems found.
fn check_shards(source: &Source, manifest: &Manifest, problems: &mut Vec<Problem>) {
    let mut ids: HashSet<String> = HashSet::new();
    let mut first = 0u64;
    for (i, shard) in manifest.shards.iter().enumerate() {
        let at = format!("shard {i} ({})", shard.path);
        let Some(expect) = manifest.expectation(i) else {
            continue;
        };
        let mut parser = ShardParser::new(expect);
        let mut parse_error: Option<Error> = None;
        let mut duplicate: Option<String> = None;
        let mut header_first = None;
        let streamed = source.stream(&shard.path, shard.bytes.min(MAX_SHARD_BYTES), |chunk| {
            if parse_error.is_some() {
                return;
            }
            match parser.feed(chunk) {
                Ok(items) => {
                    header_first = parser.header().map(|h| h.first);
                    for item in items {
                        if duplicate.is_none() && !ids.insert(item.id.clone()) {
                            duplicate = Some(item.id);
                        }
                    }
                }
                Err(e) => parse_error = Some(e),
            }
        });
        let (size, sha) = match streamed {
            Ok(done) => done,
            Err(e) => {
                problems.push(problem(&at, e));
                first += shard.items;
                continue;
            }
        };
        // The digest decides first: a reader uses no record of a shard that fails it.
        if let Some(p) = compare(&at, size, &sha, shard.bytes, &shard.sha256) {
            problems.push(p);
        } else if let Some(e) = parse_error {
            problems.push(problem(&at, e));
        } else if let Err(e) = parser.finish() {
            problems.push(problem(&at, e));
        } else if header_first != Some(first as u32) {
            problems.push(Problem {
                kind: ErrorKind::Format,
                message: format!(
                    "{at}: its header says it starts at item {header_first:?}; the manifest puts it at {first}"
                ),
            });
        } else if let Some(id) = duplicate {
            problems.push(Problem {
                kind: ErrorKind::Format,
                message: format!("{at}: id {id:?} appears more than once in the catalog"),
            });
        }
        first += shard.items;
    }
}

/// Verifies the model folder against its manifest and the catalog's encoder record.
/// Returns (files, bytes) of the model.
fn check_model(source: &Source, manifest: &Manifest, problems: &mut Vec<Problem>) -> (usize, u64) {
    let dir = manifest.encoder.model.trim_end_matches('/');
    let rel = |name: &str| format!("{dir}/{name}");
    let at = format!("model ({dir}/)");
    let model = match source.read(&rel(web::MANIFEST_FILE), 1 << 20).and_then(|b| {
        serde_json::from_slice::<ModelManifest>(&b).map_err(|e| {
            Error::with_source(ErrorKind::Format, "model manifest.json is not a localrec model manifest", e)
        })
    }) {
        Ok(m) if m.format == web::MANIFEST_FORMAT => m,
        Ok(_) => {
            problems.push(Problem {
                kind: ErrorKind::Format,
                message: format!("{at}: manifest.json is not a localrec model manifest"),
            });
            return (0, 0);
        }
        Err(e) => {
            problems.push(problem(&at, e));
            return (0, 0);
        }
    };
    let e = &manifest.encoder;
    let id = &model.encoder;
    if id.name != e.name
        || id.dims != e.dims
        || id.max_seq_length != e.max_seq_length
        || id.source_weights_sha256 != e.source_weights_sha256
    {
        problems.push(Problem {
            kind: ErrorKind::Integrity,
            message: format!(
                "{at}: its encoder ({}, {} dims) is not the one the catalog was built with ({}, {} dims)",
                id.name, id.dims, e.name, e.dims
            ),
        });
    }
    let mut bytes = 0;
    for file in &model.files {
        let file_at = format!("model file {}", rel(&file.path));
        if !is_safe_relative_path(&file.path) {
            problems.push(Problem { kind: ErrorKind::Format, message: format!("{file_at}: unsafe path") });
            continue;
        }
        match source.stream(&rel(&file.path), file.bytes.min(MAX_MODEL_FILE_BYTES), |_| {}) {
            Ok((size, sha)) => {
                if let Some(p) = compare(&file_at, size, &sha, file.bytes, &file.sha256) {
                    problems.push(p);
                } else if file.path == "model.safetensors" && sha != e.weights_sha256 {
                    problems.push(Problem {
                        kind: ErrorKind::Integrity,
                        message: format!(
                            "{file_at}: sha256 is {sha}; the catalog's encoder.weights_sha256 is {}",
                            e.weights_sha256
                        ),
                    });
                }
            }
            Err(err) => problems.push(problem(&file_at, err)),
        }
        bytes += file.bytes;
    }
    // The catalog vouches for its model: the model manifest must list exactly its files.
    if e.files.is_empty() {
        problems.push(Problem {
            kind: ErrorKind::Integrity,
            message: format!("{at}: the catalog lists no encoder files to vouch for its model (built before they were recorded); rebuild it"),
        });
    } else if e.files != model.files {
        problems.push(Problem {
            kind: ErrorKind::Integrity,
            message: format!("{at}: the model manifest's files are not the ones the catalog's encoder.files vouches for"),
        });
    }
    if !model.files.iter().any(|f| f.path == "model.safetensors") {
        problems.push(Problem {
            kind: ErrorKind::Format,
            message: format!("{at}: the model manifest lists no model.safetensors"),
        });
    }
    (model.files.len() + 1, bytes)
}

/// Reads the catalog into a [`CatalogStore`] (the browser's loader, minus the network)
/// and writes its items as JSON lines.
/// The catalog read through the browser's store, every shard streamed and verified.
fn load_store(source: &Source, manifest: &Manifest) -> Result<CatalogStore> {
    let mut store = CatalogStore::new(manifest.clone());
    for (i, shard) in manifest.shards.iter().enumerate() {
        let mut stream = store.stream(i)?;
        let mut failed = None;
        source.stream(&shard.path, shard.bytes, |chunk| {
            if failed.is_none() {
                failed = stream.feed(chunk).err();
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        store.add(stream.finish()?)?;
    }
    Ok(store)
}

fn write_items(source: &Source, manifest: &Manifest, out: &Path) -> Result<()> {
    let store = load_store(source, manifest)?;
    let mut text = String::new();
    for i in 0..store.len() as u32 {
        text.push_str(&store.item_json(i, true).to_string());
        text.push('\n');
    }
    if out == Path::new("-") {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(out, text)
        .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot write {}", out.display()), e))
}

/// `localrec inspect`.
pub fn inspect(args: InspectArgs) -> Result<()> {
    let source = Source::new(&args.catalog);
    let manifest = Manifest::from_json(&source.read(MANIFEST_FILE, MAX_MANIFEST_BYTES as u64)?)
        .map_err(|e| e.context(source.locate(MANIFEST_FILE)))?;
    let mut problems = Vec::new();
    if let Some(c) = &manifest.collaborative
        && let Err(e) = localrec::scorer::model::ScorerParams::from_json(&c.params, c.dims, manifest.encoder.dims)
    {
        problems.push(problem("manifest.json", e));
    }
    check_shards(&source, &manifest, &mut problems);
    let (model_files, model_bytes) = check_model(&source, &manifest, &mut problems);
    if problems.is_empty()
        && let Some(out) = &args.items
    {
        write_items(&source, &manifest, out)?;
    }
    if let Some(request) = &args.recommend {
        if !problems.is_empty() {
            return Err(Error::new(ErrorKind::Integrity, "the catalog did not verify; no recommendations"));
        }
        let text = if request == Path::new("-") {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
                .map_err(|e| Error::with_source(ErrorKind::Io, "cannot read the request from stdin", e))?;
            t
        } else {
            std::fs::read_to_string(request)
                .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot read {}", request.display()), e))?
        };
        let store = load_store(&source, &manifest)?;
        let (items, params) = localrec::scorer::model::from_store(&store)?;
        let scorer = localrec::scorer::rank::Scorer::new(items, params, &localrec::native::NativeBackend::Cpu.device()?)?;
        let answer = localrec::scorer::api::recommend(&store, &scorer, &localrec::scorer::api::parse_request(&text)?)?;
        let text = serde_json::to_string(&answer)
            .map_err(|e| Error::with_source(ErrorKind::Format, "cannot write the recommendations as json", e))?;
        println!("{text}");
        return Ok(());
    }

    let bytes: u64 = manifest.shards.iter().map(|s| s.bytes).sum();
    let per_item = if manifest.items == 0 { 0.0 } else { bytes as f64 / manifest.items as f64 };
    let e = &manifest.encoder;
    if args.json {
        let summary = serde_json::json!({
            "catalog": args.catalog,
            "ok": problems.is_empty(),
            "name": manifest.name,
            "created_by": manifest.created_by,
            "items": manifest.items,
            "shards": manifest.shards.len(),
            "bytes": bytes,
            "bytes_per_item": per_item,
            "encoder": e,
            "model": {"path": e.model, "files": model_files, "bytes": model_bytes},
            "collaborative": manifest.collaborative.as_ref().map(|c| {
                // The params without their matrices, which are for machines.
                let mut params = c.params.clone();
                for key in ["gram", "text_map"] {
                    if let Some(serde_json::Value::Object(m)) = params.get_mut(key) {
                        m.remove("f32le");
                    }
                }
                serde_json::json!({"dims": c.dims, "bias": c.bias, "params": params})
            }),
            "scenarios": manifest.scenarios,
            "problems": problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>(),
        });
        println!("{summary}");
    } else {
        println!("catalog        {} ({:?}, {})", args.catalog, manifest.name, manifest.created_by);
        println!(
            "items          {} in {} shards, {bytes} bytes ({per_item:.0} bytes per item)",
            manifest.items,
            manifest.shards.len()
        );
        println!(
            "encoder        {}, {} dims, {} pooling{}, at most {} tokens",
            e.name,
            e.dims,
            e.pooling,
            if e.normalized { ", normalized" } else { "" },
            e.max_seq_length
        );
        println!("identity       source weights sha256 {}", e.source_weights_sha256);
        println!("               web weights sha256 {}", e.weights_sha256);
        println!("model          {} ({model_files} files, {model_bytes} bytes)", e.model);
        match &manifest.collaborative {
            Some(c) => {
                let get = |k: &str| c.params.get(k).map_or_else(|| "?".to_string(), |v| v.to_string());
                let rating = c.params.get("rating").filter(|v| !v.is_null()).map_or(String::new(), |r| {
                    format!(", rating head: mean {} on {}..{}", r["mean"], r["min"], r["max"])
                });
                let vae = c.params.get("vae").filter(|v| !v.is_null()).map_or(String::new(), |v| {
                    format!(", autoencoder {}/{}", v["hidden"], v["latent"])
                });
                println!(
                    "collaborative  {} dims{} (ALS {}, item-item rank {}{vae}, {} scenario lifts{rating}), blend {}",
                    c.dims,
                    if c.bias { ", with bias" } else { "" },
                    get("als_dims"),
                    get("item_rank"),
                    c.params.get("scenarios").map_or_else(|| "0".to_string(), |v| v.to_string()),
                    get("blend")
                );
            }
            None => println!("collaborative  none"),
        }
        println!(
            "scenarios      {}",
            if manifest.scenarios.is_empty() { "none".into() } else { manifest.scenarios.join(", ") }
        );
        for p in &problems {
            eprintln!("problem: {}", p.message);
        }
        if problems.is_empty() {
            println!("verified       every shard and model file matches the manifest");
        }
    }
    match problems.first() {
        None => Ok(()),
        Some(first) => {
            let kind =
                if problems.iter().any(|p| p.kind == ErrorKind::Integrity) { ErrorKind::Integrity } else { first.kind };
            let more =
                if problems.len() > 1 { format!(" (and {} more problems)", problems.len() - 1) } else { String::new() };
            Err(Error::new(kind, format!("the catalog failed verification: {}{more}", first.message)))
        }
    }
}

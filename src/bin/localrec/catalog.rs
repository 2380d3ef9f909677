//! `localrec build` and `localrec merge`: the files around the catalog logic in
//! `localrec::catalog::build`.
//!
//! A build reads and checks every input before it creates anything in OUT, keeps
//! encoded embeddings as checkpoint chunks under OUT/.build/ (so an interrupted build
//! resumes without re-encoding), writes every file under a temporary name and renames it
//! at the end, and writes the manifest last.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use localrec::catalog::build::{
    self, CatalogHead, CollaborativeSide, DEFAULT_SHARD_BYTES, FieldHasher, PARTS_DIR, Part, PartFile, hex,
};
use localrec::catalog::input::{Interactions, ScenarioRule, SourceItem};
use localrec::catalog::shard::MAX_RECORD_BYTES;
use localrec::catalog::{CatalogEncoder, MANIFEST_FILE, QuantizedRow, ShardEntry};
use localrec::encoder::web::{self, FileEntry, ModelManifest, WebFile, export_web, sha256_hex};
use localrec::native::{NativeBackend, read_input, read_model_dir, rename, write_atomic, write_temp};
use localrec::scorer::metrics::MetricSums;
use localrec::scorer::sparse::Csr;
use localrec::scorer::train::{LogExtras, TrainConfig, TrainProgress, Tuning, train_tuned};
use localrec::scorer::imported::ImportedFactors;
use localrec::scorer::tune::TuneOptions;
use localrec::{Encoder, Error, ErrorKind, ModelFiles, Result};

use super::progress::Progress;

/// Folder (under OUT) of build state that is not part of the catalog.
const BUILD_DIR: &str = ".build";
/// Prefix of checkpoint folders in [`BUILD_DIR`]; the rest is the build's key.
const CHECKPOINT_PREFIX: &str = "embeddings-";
/// Model folder inside a catalog.
const MODEL_DIR: &str = "model";

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Items: JSON lines {"id", "title", "text"?, "genres"?, ...}, MovieLens movies.csv, or
    /// ML-1M movies.dat (Latin-1); .gz accepted.
    #[arg(long)]
    items: PathBuf,
    /// Interactions: CSV user_id,item_id[,rating][,timestamp][,scenario] with a header,
    /// MovieLens ratings.csv, or ML-1M ratings.dat; .gz accepted. Validated and counted.
    #[arg(long)]
    interactions: Option<PathBuf>,
    /// Model folder (the original, or a web copy made by export-web).
    #[arg(long, default_value = crate::DEFAULT_MODEL_DIR)]
    model: PathBuf,
    /// Output folder: manifest.json, shards/, model/.
    #[arg(long)]
    out: PathBuf,
    /// Compute backend: cpu (burn Flex) or wgpu.
    #[arg(long, default_value = "cpu")]
    backend: NativeBackend,
    /// Target size of a shard in bytes.
    #[arg(long, default_value_t = DEFAULT_SHARD_BYTES)]
    shard_bytes: u64,
    /// Catalog name for the manifest (default: the output folder's name).
    #[arg(long)]
    name: Option<String>,
    /// Build only part i of n (e.g. 0/4) into OUT; `localrec merge --out OUT` joins the parts.
    #[arg(long)]
    part: Option<Part>,
    /// Texts per model call; a checkpoint is written every 8 calls.
    #[arg(long, default_value_t = localrec::DEFAULT_BATCH_SIZE)]
    batch: usize,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// Do not train the collaborative side from the interactions (only check them).
    #[arg(long)]
    no_train: bool,
    /// Hyper-parameters of the collaborative side.
    #[command(flatten)]
    tune: super::tuning::TuneArgs,
    /// With ratings, the lowest rating that counts as a positive interaction.
    #[arg(long, default_value_t = 4.0)]
    positive_rating: f32,
    /// Derive each event's scenario from its timestamp (UTC), replacing a scenario
    /// column: weekday-weekend or daypart.
    #[arg(long)]
    scenario: Option<ScenarioRule>,
    /// Share of the best held-out accuracy (Recall@20 + NDCG@20) the short-profile blend
    /// (at most 5 events) may give up for lists less like the popularity chart.
    #[arg(long, default_value_t = localrec::scorer::train::SHORT_TOLERANCE)]
    short_tolerance: f64,
    /// Testing: stop with an error once this many items were encoded (checkpoint kept).
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
    #[command(flatten)]
    item_columns: super::columns::ItemColumnArgs,
    #[command(flatten)]
    interaction_columns: super::columns::InteractionColumnArgs,
    #[command(flatten)]
    spark: super::spark::SparkAlsArgs,
    /// Item embeddings computed elsewhere instead of encoding here: Parquet (a file or a
    /// folder of part files) with columns id and a list<float> of the --model encoder's
    /// width, e.g. from `localrec embed --items` on Spark executors.
    #[arg(long, conflicts_with_all = ["part", "stop_after"])]
    embeddings: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The folder the parts were built into.
    #[arg(long)]
    out: PathBuf,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::with_source(ErrorKind::Io, what, e)
}

fn input_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Input, message)
}

/// The model's web copy: the folder's own files when it already is one (its manifest
/// checked), else a fresh `export-web` of it.
fn web_copy(dir: &Path, files: &ModelFiles) -> Result<(Vec<WebFile>, ModelManifest)> {
    let manifest_path = dir.join(web::MANIFEST_FILE);
    let existing = std::fs::read(&manifest_path).ok().and_then(|b| {
        let m: ModelManifest = serde_json::from_slice(&b).ok()?;
        (m.format == web::MANIFEST_FORMAT).then_some((m, b))
    });
    if let Some((manifest, bytes)) = existing {
        let mut out = Vec::new();
        for f in &manifest.files {
            if !localrec::catalog::manifest::is_safe_relative_path(&f.path) {
                return Err(Error::new(
                    ErrorKind::Format,
                    format!("{}: unsafe path {:?}", manifest_path.display(), f.path),
                ));
            }
            let path = dir.join(&f.path);
            let data = std::fs::read(&path).map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
            if data.len() as u64 != f.bytes || sha256_hex(&data) != f.sha256 {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!("{} does not match the size and sha256 in {}", path.display(), manifest_path.display()),
                ));
            }
            out.push(WebFile { path: f.path.clone(), bytes: data });
        }
        out.push(WebFile { path: web::MANIFEST_FILE.into(), bytes });
        return Ok((out, manifest));
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let out = export_web(files, &name)?;
    let manifest_bytes =
        out.iter().find(|f| f.path == web::MANIFEST_FILE).map(|f| f.bytes.as_slice()).unwrap_or_default();
    let manifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| Error::with_source(ErrorKind::Config, "export-web wrote an unreadable manifest", e))?;
    Ok((out, manifest))
}

/// The catalog's record of its encoder, from the web copy.
fn catalog_encoder(web_files: &[WebFile], manifest: &ModelManifest) -> Result<CatalogEncoder> {
    let weights = web_files
        .iter()
        .find(|f| f.path == "model.safetensors")
        .ok_or_else(|| Error::new(ErrorKind::Weights, "the web copy of the model has no model.safetensors"))?;
    Ok(CatalogEncoder {
        name: manifest.encoder.name.clone(),
        dims: manifest.encoder.dims,
        pooling: manifest.encoder.pooling.clone(),
        normalized: true,
        max_seq_length: manifest.encoder.max_seq_length,
        source_weights_sha256: manifest.encoder.source_weights_sha256.clone(),
        weights_sha256: sha256_hex(&weights.bytes),
        model: format!("{MODEL_DIR}/"),
        files: web_files
            .iter()
            .filter(|f| f.path != web::MANIFEST_FILE)
            .map(|f| FileEntry { path: f.path.clone(), bytes: f.bytes.len() as u64, sha256: sha256_hex(&f.bytes) })
            .collect(),
    })
}

/// An interactions file's figures for the summary.
fn interactions_report(file: &str, i: &Interactions) -> serde_json::Value {
    serde_json::json!({
        "file": file,
        "lines": i.lines,
        "used": i.rows.len(),
        "skipped_unknown_item": i.skipped_unknown_item,
        "first_unknown": i.first_unknown.as_ref().map(|(id, line)| serde_json::json!({"id": id, "line": line})),
        "users": i.users.len(),
        "scenarios": i.scenarios,
    })
}

/// Removes a folder and its contents if it exists.
fn remove_dir(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error(format!("cannot remove {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// Embeddings of the items a build writes, quantized and checked.
struct Encoded {
    /// Catalog index of `rows[0]`.
    base: usize,
    rows: Vec<QuantizedRow>,
    encoded: usize,
    reused: usize,
}

/// Everything the encoding step needs.
struct EncodeJob<'a> {
    encoder: &'a Encoder,
    items: &'a [SourceItem],
    sequences: &'a [Vec<u32>],
    items_name: &'a str,
    chunks: Vec<Range<usize>>,
    key: [u8; 32],
    checkpoint: PathBuf,
    batch: usize,
    stop_after: Option<usize>,
}

fn chunk_path(dir: &Path, range: &Range<usize>) -> PathBuf {
    dir.join(format!("{:09}-{:09}.bin", range.start, range.end))
}

impl EncodeJob<'_> {
    fn quantize(&self, i: usize, embedding: &[f32]) -> Result<QuantizedRow> {
        let item = &self.items[i];
        build::quantize_checked(embedding, || format!("{}:{}: item {:?}", self.items_name, item.line, item.id))
    }

    /// Loads intact checkpoint chunks, encodes the others (writing each as it is done),
    /// and quantizes every row.
    fn run(&self) -> Result<Encoded> {
        let base = self.chunks.first().map_or(0, |c| c.start);
        let dims = self.encoder.dims();
        let mut rows: Vec<Option<QuantizedRow>> = vec![None; self.chunks.last().map_or(0, |c| c.end) - base];
        let mut todo = Vec::new();
        let mut reused = 0;
        for chunk in &self.chunks {
            let saved = std::fs::read(chunk_path(&self.checkpoint, chunk)).ok();
            match saved.and_then(|b| build::decode_chunk(&b, &self.key, chunk, dims)) {
                Some(data) => {
                    for (i, e) in chunk.clone().zip(data.chunks_exact(dims)) {
                        rows[i - base] = Some(self.quantize(i, e)?);
                    }
                    reused += chunk.len();
                }
                None => todo.push(chunk.clone()),
            }
        }
        let total: usize = todo.iter().map(|c| c.len()).sum();
        if reused > 0 {
            eprintln!("resuming: {reused} items from the checkpoint, {total} to encode");
        }
        let mut progress = Progress::new("encoding", "items", total as u64);
        let mut encoded = 0;
        for chunk in todo {
            let embeddings = self.encoder.embed_tokens(&self.sequences[chunk.clone()], self.batch)?;
            write_atomic(
                &chunk_path(&self.checkpoint, &chunk),
                &build::encode_chunk(&self.key, chunk.start, dims, &embeddings.data),
            )?;
            for (i, e) in chunk.clone().zip(embeddings.rows()) {
                rows[i - base] = Some(self.quantize(i, e)?);
            }
            encoded += chunk.len();
            progress.inc(chunk.len() as u64);
            if self.stop_after.is_some_and(|n| encoded >= n) {
                progress.finish();
                return Err(input_error(format!(
                    "stopped after encoding {encoded} items (--stop-after); the checkpoint is kept: run the same command again to resume"
                )));
            }
        }
        progress.finish();
        let rows = rows
            .into_iter()
            .map(|r| r.ok_or_else(|| Error::new(ErrorKind::Backend, "an item was not encoded")))
            .collect::<Result<_>>()?;
        Ok(Encoded { base, rows, encoded, reused })
    }
}

/// Training's messages: each stage, and each ALS iteration with its time and an ETA.
struct TrainMessages {
    /// ALS iterations per run.
    iterations: usize,
    /// When the current stage started.
    started: Instant,
}

impl TrainMessages {
    fn new(iterations: usize) -> Self {
        TrainMessages { iterations, started: Instant::now() }
    }
}

impl TrainProgress for TrainMessages {
    fn stage(&mut self, name: &str) {
        self.started = Instant::now();
        eprintln!("training: {name}");
    }

    fn trial(&mut self, trial: &localrec::scorer::tune::Trial) {
        eprintln!("{}", super::tuning::trial_line(trial));
    }

    fn als_iteration(&mut self, iteration: usize) {
        let each = self.started.elapsed().as_secs_f64() / iteration.max(1) as f64;
        let left = self.iterations.saturating_sub(iteration) as f64 * each;
        eprintln!("training: als iteration {iteration}/{}, {each:.1} s each, eta {left:.0} s", self.iterations);
    }
}

/// The training config and tuner options with Spark's factors in: the ALS width, reg
/// and alpha are the imported model's (the tuner searches only the rest: item-item, blend).
pub(crate) fn with_imported(mut cfg: TrainConfig, mut opts: TuneOptions, imported: Option<ImportedFactors>) -> (TrainConfig, TuneOptions) {
    if let Some(f) = &imported {
        cfg.als.factors = f.factors;
        cfg.als.reg = f.reg;
        cfg.als.alpha = f.alpha;
        opts.factors = vec![f.factors];
        opts.reg = vec![f.reg];
        opts.alpha = vec![f.alpha];
    }
    cfg.imported = imported;
    (cfg, opts)
}

/// What the log says besides positives: each positive's scenario (its latest event's)
/// and the explicit ratings.
pub(crate) fn log_extras(interactions: &Interactions) -> LogExtras {
    let mut extras = LogExtras { scenario_names: interactions.scenarios.clone(), ..LogExtras::default() };
    for r in &interactions.rows {
        if let Some(s) = r.scenario {
            extras.scenarios.insert((r.user, r.item), s);
        }
        if let Some(v) = r.rating {
            extras.ratings.push((r.user, r.item, v));
        }
    }
    extras
}

/// The scenario ablation's four rows (none, lift, events, both) with their settings.
pub(crate) fn scenario_json(
    t: &localrec::scorer::train::ScenarioTuning,
    sums: &[MetricSums; 4],
    metrics: impl Fn(&MetricSums) -> serde_json::Value,
) -> serde_json::Value {
    let names = ["hybrid", "hybrid+lift", "hybrid+events", "hybrid+scenario"];
    let rows: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip(t.settings().iter().zip(sums))
        .map(|(n, (set, s))| {
            let mut v = metrics(s);
            // Through text so that 0.1f32 reads 0.1, not 0.10000000149011612.
            let plain = |x: f32| x.to_string().parse::<f64>().unwrap_or(f64::NAN);
            v["weight"] = serde_json::json!(plain(set.weight));
            v["other_scenario_weight"] = serde_json::json!(plain(set.other_scenario_weight));
            (n.to_string(), v)
        })
        .collect();
    rows.into()
}

/// The short-profile tuning: the chosen blend and the most accurate one, each with its
/// held-out metrics and how much of its top 20 is the popularity top 20.
pub(crate) fn short_json(t: &localrec::scorer::train::ShortTuning) -> serde_json::Value {
    let plain = |x: f32| x.to_string().parse::<f64>().unwrap_or(f64::NAN);
    let one = |(b, s): (localrec::scorer::model::Blend, MetricSums)| {
        let (r, n20, n100) = s.means();
        serde_json::json!({
            "blend": {"collaborative": plain(b.collaborative), "item_item": plain(b.item_item), "semantic": plain(b.semantic), "popularity": plain(b.popularity)},
            "recall@20": r, "ndcg@20": n20, "ndcg@100": n100, "popular_overlap": s.popular_overlap(),
        })
    };
    serde_json::json!({"tolerance": t.tolerance, "users": t.chosen.1.users, "chosen": one(t.chosen), "most_accurate": one(t.most_accurate)})
}

/// The cross-domain search: the chosen foreign blend against the popularity chart on
/// simulated users with foreign likes alone, and each foreign weight beside own events.
pub(crate) fn foreign_json(f: &localrec::scorer::cross::ForeignTuning) -> serde_json::Value {
    let metrics = |s: &MetricSums| {
        let (r, n20, _) = s.means();
        serde_json::json!({"users": s.users, "recall@20": r, "ndcg@20": n20})
    };
    let weights: Vec<serde_json::Value> =
        f.weights.iter().map(|(w, s)| serde_json::json!({"weight": w, "held_out": metrics(s)})).collect();
    serde_json::json!({
        "weight": f.weight,
        "blend": super::eval::blend_json(&f.blend),
        "alone": metrics(&f.alone),
        "alone_popularity": metrics(&f.alone_popularity),
        "weights": weights,
    })
}

/// The tuning part of a build or train report.
pub(crate) fn tuning_json(t: &Tuning) -> serde_json::Value {
    let metrics = |s: &MetricSums| {
        let (r, n20, n100) = s.means();
        serde_json::json!({"users": s.users, "recall@20": r, "ndcg@20": n20, "ndcg@100": n100})
    };
    let mut out = metrics(&t.sums);
    out["search"] = super::tuning::search_json(&t.search);
    if let Some(s) = &t.short {
        out["short_profile"] = short_json(s);
    }
    if let Some(s) = &t.scenario {
        out["scenario"] = scenario_json(s, &s.sums, metrics);
    }
    if let Some(f) = &t.foreign {
        out["foreign"] = foreign_json(f);
    }
    if let Some(r) = &t.rating {
        let (mean, item, head) = r.errors.rmse();
        out["rating"] = serde_json::json!({
            "reg": r.reg,
            "held_out_ratings": r.errors.count,
            "rmse": {"mean": mean, "item_bias": item, "head": head},
        });
    }
    out
}

/// Trains the collaborative side: positives (ratings at or above `positive_rating`,
/// every event when there are no ratings) of each user, repeated events adding
/// confidence; embeddings as the shards hold them (int8, dequantized, unit length);
/// scenarios and ratings when the log has them.
pub(crate) fn train_side(
    cfg: &TrainConfig,
    opts: &TuneOptions,
    interactions: &Interactions,
    extras: &LogExtras,
    rows: &[QuantizedRow],
    dims: usize,
    positive_rating: f32,
) -> Result<(CollaborativeSide, Option<Tuning>)> {
    let triplets: Vec<(u32, u32, f32)> = interactions
        .rows
        .iter()
        .filter(|r| r.rating.is_none_or(|v| v >= positive_rating))
        .map(|r| (r.user, r.item, 1.0))
        .collect();
    if triplets.is_empty() {
        return Err(input_error("no positive interaction to train on (see --positive-rating)"));
    }
    let matrix = Csr::from_triplets(interactions.users.len(), rows.len(), &triplets)?;
    let mut embeddings = Vec::with_capacity(rows.len() * dims);
    for row in rows {
        let mut e: Vec<f32> = row.values.iter().map(|&v| v as f32 * row.scale).collect();
        localrec::scorer::model::normalize(&mut e);
        embeddings.extend(e);
    }
    let t = Instant::now();
    let device = NativeBackend::Cpu.device()?;
    let (trained, tuning) = train_tuned(&matrix, &embeddings, dims, cfg, opts, extras, &device, &mut TrainMessages::new(cfg.als.iterations))?;
    eprintln!(
        "trained the collaborative side in {:.1} s: {} users, {} positives, k = {}, item-item rank {}, {} scenarios, rating head: {}, {} items from text only",
        t.elapsed().as_secs_f64(),
        interactions.users.len(),
        matrix.nnz(),
        trained.params.als_dims,
        trained.params.item_rank,
        trained.params.scenarios,
        if trained.params.rating.is_some() { "yes" } else { "no" },
        trained.cold_items
    );
    let params = serde_json::to_value(&trained.params)
        .map_err(|e| Error::with_source(ErrorKind::Format, "cannot write the scorer params", e))?;
    let serde_json::Value::Object(params) = params else {
        return Err(Error::new(ErrorKind::Format, "the scorer params are not a JSON object"));
    };
    let side = CollaborativeSide {
        manifest: localrec::catalog::Collaborative {
            dims: trained.params.record_dims(),
            bias: true,
            params,
            tuning: tuning.as_ref().map(|t| super::tuning::search_manifest_json(&t.search)),
        },
        scenarios: extras.scenario_names.clone(),
        factors: trained.factors,
        bias: Some(trained.bias),
    };
    Ok((side, tuning))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// `localrec build`.
pub fn build(args: BuildArgs) -> Result<()> {
    let started = Instant::now();
    if args.batch == 0 {
        return Err(input_error("--batch must be at least 1"));
    }
    if args.shard_bytes == 0 {
        return Err(input_error("--shard-bytes must be at least 1"));
    }

    // 1. Every input is read and checked before OUT is touched.
    let items_name = display(&args.items);
    let items = args.item_columns.parse(&read_input(&args.items)?, &items_name)?;
    eprintln!("read {} items from {items_name}", items.len());
    let (interactions, interactions_digest) = match &args.interactions {
        Some(path) => {
            let bytes = read_input(path)?;
            let index: HashMap<&str, u32> =
                items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i as u32)).collect();
            let mut parsed = args.interaction_columns.parse(&bytes, &display(path), &index)?;
            if let Some(rule) = args.scenario {
                parsed.derive_scenarios(rule).map_err(|e| e.context(display(path)))?;
            }
            eprintln!(
                "read {} interactions from {}: {} used, {} skipped (item id not in the catalog{}), {} users",
                parsed.lines,
                display(path),
                parsed.rows.len(),
                parsed.skipped_unknown_item,
                parsed
                    .first_unknown
                    .as_ref()
                    .map(|(id, line)| format!(", first {id:?} on line {line}"))
                    .unwrap_or_default(),
                parsed.users.len(),
            );
            (Some(parsed), sha256_hex(&bytes))
        }
        None => (None, String::new()),
    };

    let files = read_model_dir(&args.model)?;
    let (web_files, web_manifest) = web_copy(&args.model, &files)?;
    let encoder_id = catalog_encoder(&web_files, &web_manifest)?;
    let encoder = Encoder::load(&files, &args.backend.device()?)?;
    let dims = encoder.dims();
    // Imported embeddings are checked here, before OUT is touched; then nothing is encoded.
    let imported_rows = match &args.embeddings {
        Some(path) => {
            let values = super::spark::imported_embeddings(path, &items, &items_name, &encoder)?;
            let rows = items
                .iter()
                .zip(values.chunks_exact(dims))
                .map(|(it, e)| build::quantize_checked(e, || format!("{}: item {:?}", path.display(), it.id)))
                .collect::<Result<Vec<_>>>()?;
            eprintln!("read {} embeddings from {}", rows.len(), path.display());
            Some(rows)
        }
        None => None,
    };
    let sequences = match imported_rows {
        Some(_) => Vec::new(),
        None => items
            .iter()
            .map(|it| {
                encoder
                    .tokenizer()
                    .encode(&it.encoder_text())
                    .map_err(|e| e.context(format!("{items_name}:{}: item {:?}", it.line, it.id)))
            })
            .collect::<Result<Vec<_>>>()?,
    };

    // 2. The collaborative side's shape (trained once the embeddings exist) and the shard plan.
    let train_cfg = match &interactions {
        Some(_) if !args.no_train => {
            if args.part.is_some() {
                return Err(input_error(
                    "training the collaborative side needs the whole catalog: build without --part, or pass --no-train",
                ));
            }
            localrec::scorer::train::check_short_tolerance(args.short_tolerance)?;
            let index: HashMap<&str, u32> = items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i as u32)).collect();
            let imported = args.spark.imported(&index, items.len())?;
            let start = TrainConfig { short_tolerance: args.short_tolerance, ..TrainConfig::default() };
            Some(with_imported(args.tune.base(start), args.tune.options()?, imported))
        }
        _ if args.spark.spark_als.is_some() => {
            return Err(input_error(
                "--spark-als needs --interactions (and no --no-train): the log trains the item-item model, the text map and the blend over Spark's factors",
            ));
        }
        _ => None,
    };
    // Records: [q | a | c], a lift per scenario, the rating head's bias when rated.
    let extras = match (&train_cfg, &interactions) {
        (Some(_), Some(i)) => Some(log_extras(i)),
        _ => None,
    };
    let factor_dims = match (&train_cfg, &extras) {
        // The tuner chooses `k + 2r` within the budget: shards are cut for the widest; an
        // imported ALS width is what it is.
        (Some((c, _)), Some(e)) => {
            let widest = args.tune.max_record_dims().max(c.imported.as_ref().map_or(0, |f| f.factors));
            widest + e.scenario_names.len() + usize::from(e.has_ratings())
        }
        _ => 0,
    };
    let has_bias = train_cfg.is_some();
    let lens = build::record_lens(&items, dims, factor_dims, has_bias);
    if let Some((item, len)) = items.iter().zip(&lens).find(|(_, len)| **len - 4 > MAX_RECORD_BYTES) {
        return Err(input_error(format!(
            "{items_name}:{}: item {:?} needs a {len}-byte record; at most {MAX_RECORD_BYTES} fit",
            item.line, item.id
        )));
    }
    let plan = build::plan_shards(&lens, args.shard_bytes)?;
    let our_shards = args.part.map_or(0..plan.len(), |p| build::part_shards(&plan, p));

    let out = args.out.as_path();
    let name = args.name.clone().unwrap_or_else(|| {
        let dir = out
            .file_name()
            .map(|n| n.to_owned())
            .or_else(|| std::path::absolute(out).ok()?.file_name().map(|n| n.to_owned()));
        dir.map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "catalog".into())
    });
    let model_digest = {
        let mut h = FieldHasher::new("localrec model files");
        h.field(&files.config)
            .field(&files.tokenizer)
            .field(&files.weights)
            .field(files.sentence_config.as_deref().unwrap_or(b""));
        h.finish()
    };
    let chunk_size = args.batch.saturating_mul(8);
    let key = {
        // What decides the embeddings' bits: texts, model, backend, and the groups the
        // encoder sees (shard plan, chunk size, batch size).
        let mut h = FieldHasher::new("localrec build checkpoint v1");
        h.items(&items).field(&model_digest).field(args.backend.name().as_bytes());
        h.field(&(args.batch as u64).to_le_bytes()).field(&(chunk_size as u64).to_le_bytes());
        for shard in &plan {
            h.field(&(shard.start as u64).to_le_bytes()).field(&(shard.end as u64).to_le_bytes());
        }
        h.finish()
    };
    let inputs = {
        let mut h = FieldHasher::new("localrec build inputs v1");
        h.items(&items)
            .field(&model_digest)
            .field(interactions_digest.as_bytes())
            .field(&args.shard_bytes.to_le_bytes());
        h.finish()
    };

    // 3. Encode, resuming from the checkpoint (unless the embeddings were imported). Only
    // now is OUT created.
    let build_dir = out.join(BUILD_DIR);
    let checkpoint = build_dir.join(format!("{CHECKPOINT_PREFIX}{}", &hex(&key)[..16]));
    if imported_rows.is_none() {
        std::fs::create_dir_all(&checkpoint).map_err(|e| io_error(format!("cannot create {}", checkpoint.display()), e))?;
    }
    if args.part.is_none() && build_dir.is_dir() {
        // Checkpoints of other inputs are stale. (Parts leave them: parts of one build
        // may run side by side in one folder.)
        for entry in std::fs::read_dir(&build_dir)
            .map_err(|e| io_error(format!("cannot read {}", build_dir.display()), e))?
            .flatten()
        {
            if entry.path() != checkpoint && entry.file_name().to_string_lossy().starts_with(CHECKPOINT_PREFIX) {
                remove_dir(&entry.path())?;
            }
        }
    }
    let job = EncodeJob {
        encoder: &encoder,
        items: &items,
        sequences: &sequences,
        items_name: &items_name,
        chunks: build::checkpoint_chunks(&plan[our_shards.clone()], chunk_size),
        key,
        checkpoint: checkpoint.clone(),
        batch: args.batch,
        stop_after: args.stop_after,
    };
    let encoded = match imported_rows {
        Some(rows) => Encoded { base: 0, rows, encoded: 0, reused: 0 },
        None => job.run()?,
    };

    // 4. Train the collaborative side on the embeddings as the browser will see them.
    let mut tuning = None;
    let collaborative: Option<CollaborativeSide> = match (&train_cfg, &interactions, &extras) {
        (Some((cfg, opts)), Some(interactions), Some(extras)) => {
            let (side, sums) = train_side(cfg, opts, interactions, extras, &encoded.rows, dims, args.positive_rating)?;
            build::check_collaborative(&side, items.len())?;
            tuning = sums;
            Some(side)
        }
        _ => None,
    };
    let head = CatalogHead {
        name,
        items: items.len() as u64,
        encoder: encoder_id,
        collaborative: collaborative.as_ref().map(|c| c.manifest.clone()),
        scenarios: collaborative.as_ref().map(|c| c.scenarios.clone()).unwrap_or_default(),
    };

    // 5. Shards under temporary names, then renamed together; the model; the manifest last.
    let mut entries = Vec::new();
    let mut temps = Vec::new();
    for s in our_shards.clone() {
        let range = plan[s].clone();
        let rows = &encoded.rows[range.start - encoded.base..range.end - encoded.base];
        let bytes = build::shard_bytes(&items, range.clone(), rows, dims, collaborative.as_ref())?;
        let sha256 = sha256_hex(&bytes);
        let path = build::shard_path(s, &sha256);
        temps.push((write_temp(&out.join(&path), &bytes)?, out.join(&path)));
        entries.push((s, ShardEntry { path, bytes: bytes.len() as u64, items: range.len() as u64, sha256 }));
    }
    for (tmp, path) in &temps {
        rename(tmp, path)?;
    }
    for file in &web_files {
        write_atomic(&out.join(MODEL_DIR).join(&file.path), &file.bytes)?;
    }
    let shard_total: u64 = entries.iter().map(|(_, e)| e.bytes).sum();
    let wrote_manifest = match args.part {
        None => {
            let manifest = head.manifest(entries.iter().map(|(_, e)| e.clone()).collect())?;
            // Last: visitors mid-load keep the old manifest's shards, which stay beside
            // the new ones until `localrec gc`.
            write_atomic(&out.join(MANIFEST_FILE), &manifest.to_json()?)?;
            remove_dir(&build_dir)?;
            true
        }
        Some(part) => {
            let record = PartFile {
                format: build::PART_FORMAT.into(),
                version: 1,
                part: part.index,
                parts: part.count,
                inputs_sha256: hex(&inputs),
                shard_count: plan.len(),
                head: head.clone(),
                shards: entries.clone(),
            };
            let json = serde_json::to_vec_pretty(&record)
                .map_err(|e| Error::with_source(ErrorKind::Format, "cannot write the part file", e))?;
            write_atomic(&out.join(PARTS_DIR).join(part.file_name()), &json)?;
            // This part's chunks are in its shards now; other parts may still need theirs.
            for chunk in &job.chunks {
                let _ = std::fs::remove_file(chunk_path(&checkpoint, chunk));
            }
            let _ = std::fs::remove_dir(&checkpoint);
            let _ = std::fs::remove_dir(&build_dir);
            false
        }
    };

    let what = match args.part {
        Some(p) => format!("part {p} ({} of {} shards)", entries.len(), plan.len()),
        None => "catalog".into(),
    };
    eprintln!(
        "wrote {what} to {}: {} items in {} shards, {shard_total} bytes; encoded {}, {} from the checkpoint, {:.1} s",
        out.display(),
        encoded.rows.len(),
        entries.len(),
        encoded.encoded,
        encoded.reused,
        started.elapsed().as_secs_f64()
    );
    if args.part.is_some() {
        eprintln!("when every part is built: localrec merge --out {}", out.display());
    }
    if args.json {
        let report = serde_json::json!({
            "out": display(out),
            "name": head.name,
            "part": args.part.map(|p| p.to_string()),
            "catalog_items": items.len(),
            "items": encoded.rows.len(),
            "shards": entries.len(),
            "shard_bytes": shard_total,
            "encoded": encoded.encoded,
            "reused": encoded.reused,
            "manifest": wrote_manifest,
            "interactions": interactions.as_ref().zip(args.interactions.as_deref()).map(|(i, path)| interactions_report(&display(path), i)),
            "collaborative": collaborative.as_ref().map(|c| serde_json::json!({
                "dims": c.manifest.dims,
                "blend": c.manifest.params.get("blend"),
                "tuning": tuning.as_ref().map(tuning_json),
            })),
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!("{report}");
    }
    Ok(())
}

/// Reads every part file in OUT/parts/.
fn read_parts(dir: &Path) -> Result<Vec<PartFile>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| io_error(format!("cannot read {} (build with --part i/n first)", dir.display()), e))?;
    let mut parts = Vec::new();
    let mut names: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("part-") && n.to_string_lossy().ends_with(".json"))
        })
        .collect();
    names.sort();
    for path in names {
        let bytes = std::fs::read(&path).map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
        let part: PartFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::with_source(ErrorKind::Format, format!("{} is not a part file", path.display()), e))?;
        parts.push(part);
    }
    Ok(parts)
}

/// `localrec merge`: the manifest of a catalog built in parts.
pub fn merge(args: MergeArgs) -> Result<()> {
    let out = args.out.as_path();
    let parts_dir = out.join(PARTS_DIR);
    let manifest = build::merge_parts(&read_parts(&parts_dir)?)?;
    // The parts' files must still be what the parts wrote.
    let mut progress = Progress::new("verifying", "shards", manifest.shards.len() as u64);
    for (i, shard) in manifest.shards.iter().enumerate() {
        let path = out.join(&shard.path);
        let bytes = std::fs::read(&path)
            .map_err(|e| io_error(format!("shard {i} ({}): cannot read {}", shard.path, path.display()), e))?;
        if bytes.len() as u64 != shard.bytes || sha256_hex(&bytes) != shard.sha256 {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("shard {i} ({}) changed since its part was built (size or sha256 differ)", shard.path),
            ));
        }
        progress.inc(1);
    }
    progress.finish();
    let weights = out.join(MODEL_DIR).join("model.safetensors");
    let bytes = std::fs::read(&weights).map_err(|e| io_error(format!("cannot read {}", weights.display()), e))?;
    if sha256_hex(&bytes) != manifest.encoder.weights_sha256 {
        return Err(Error::new(
            ErrorKind::Integrity,
            format!("{} is not the model the parts were built with", weights.display()),
        ));
    }
    write_atomic(&out.join(MANIFEST_FILE), &manifest.to_json()?)?;
    remove_dir(&parts_dir)?;
    remove_dir(&out.join(BUILD_DIR))?;
    let bytes: u64 = manifest.shards.iter().map(|s| s.bytes).sum();
    eprintln!(
        "merged {} items in {} shards ({bytes} bytes) into {}",
        manifest.items,
        manifest.shards.len(),
        out.join(MANIFEST_FILE).display()
    );
    if args.json {
        let report = serde_json::json!({
            "out": display(out),
            "items": manifest.items,
            "shards": manifest.shards.len(),
            "shard_bytes": bytes,
        });
        println!("{report}");
    }
    Ok(())
}

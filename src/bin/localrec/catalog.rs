//! `localrec build` and `localrec merge`: flags in, files read and checked, then
//! `localrec::publish::Builder` (or `publish::builder::merge`) writing into OUT through a
//! `publish::DirSink`, and the summary out.
//!
//! Every input is read and checked before anything is created in OUT; the builder keeps
//! encoded embeddings as checkpoint chunks under OUT/.build/ (so an interrupted build
//! resumes without re-encoding), renames the shards together at the end, and writes the
//! manifest last.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use localrec::catalog::build::{self, DEFAULT_SHARD_BYTES, Part};
use localrec::catalog::input::ScenarioRule;
use localrec::catalog::MANIFEST_FILE;
use localrec::encoder::web::sha256_hex;
use localrec::native::{NativeBackend, read_input, read_model_dir, web_copy};
use localrec::publish::report::{interactions_json, tuning_json};
use localrec::publish::{self, BuildOptions, Builder, DirSink, Model, Training};
use localrec::scorer::train::TrainConfig;
use localrec::{Encoder, Error, ErrorKind, Result};

use super::progress::Lines;

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
    #[arg(long, default_value = localrec::native::DEFAULT_MODEL_DIR)]
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

fn input_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Input, message)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The catalog's name: `--name`, else the output folder's.
fn catalog_name(name: Option<&str>, out: &Path) -> String {
    name.map(str::to_owned).unwrap_or_else(|| {
        let dir = out
            .file_name()
            .map(|n| n.to_owned())
            .or_else(|| std::path::absolute(out).ok()?.file_name().map(|n| n.to_owned()));
        dir.map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "catalog".into())
    })
}

/// `localrec build`.
pub fn build(args: BuildArgs) -> Result<()> {
    let started = Instant::now();

    // 1. Every input is read and checked before OUT is touched (the options by the builder).
    let items_name = display(&args.items);
    let items = args.item_columns.parse(&read_input(&args.items)?, &items_name)?;
    eprintln!("read {} items from {items_name}", items.len());
    let index: HashMap<&str, u32> = items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i as u32)).collect();
    let (interactions, interactions_digest) = match &args.interactions {
        Some(path) => {
            let bytes = read_input(path)?;
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

    // 2. The collaborative side's settings (trained once the embeddings exist).
    let training = match &interactions {
        Some(_) if !args.no_train => {
            localrec::scorer::train::check_short_tolerance(args.short_tolerance)?;
            let imported = args.spark.imported(&index, items.len())?;
            let start = TrainConfig { short_tolerance: args.short_tolerance, ..TrainConfig::default() };
            let (config, options) = publish::collaborative::with_imported(args.tune.base(start), args.tune.options()?, imported);
            Some(Training {
                config,
                options,
                max_record_dims: args.tune.max_record_dims(),
                positive_rating: args.positive_rating,
            })
        }
        _ if args.spark.spark_als.is_some() => {
            return Err(input_error(
                "--spark-als needs --interactions (and no --no-train): the log trains the item-item model, the text map and the blend over Spark's factors",
            ));
        }
        _ => None,
    };
    let mut lines = Lines::new(
        training.as_ref().map_or(0, |t| t.config.als.iterations),
        training.as_ref().map_or_else(Default::default, |t| t.options.budget),
    );
    let options = BuildOptions {
        name: catalog_name(args.name.as_deref(), &args.out),
        shard_bytes: args.shard_bytes,
        part: args.part,
        batch: args.batch,
        stop_after: args.stop_after,
        training,
    };
    let model = Model {
        files: &files,
        web_files: &web_files,
        web_manifest: &web_manifest,
        encoder: &encoder,
        backend: args.backend.name(),
    };
    let log = interactions.as_ref().map(|i| (i, interactions_digest.as_str()));
    let builder = Builder::new(&items, &items_name, log, model, imported_rows, options)?;

    // 3. Encode (only now is OUT created), train, write.
    let out = args.out.as_path();
    let report = builder.run(&mut DirSink::new(out), &mut lines)?;

    let shard_total: u64 = report.shards.iter().map(|(_, e)| e.bytes).sum();
    let what = match args.part {
        Some(p) => format!("part {p} ({} of {} shards)", report.shards.len(), report.plan_shards),
        None => "catalog".into(),
    };
    eprintln!(
        "wrote {what} to {}: {} items in {} shards, {shard_total} bytes; encoded {}, {} from the checkpoint, {:.1} s",
        out.display(),
        report.items,
        report.shards.len(),
        report.encoded,
        report.reused,
        started.elapsed().as_secs_f64()
    );
    if args.part.is_some() {
        eprintln!("when every part is built: localrec merge --out {}", out.display());
    }
    if args.json {
        let summary = serde_json::json!({
            "out": display(out),
            "name": report.head.name,
            "part": args.part.map(|p| p.to_string()),
            "catalog_items": items.len(),
            "items": report.items,
            "shards": report.shards.len(),
            "shard_bytes": shard_total,
            "encoded": report.encoded,
            "reused": report.reused,
            "manifest": report.manifest,
            "interactions": interactions.as_ref().zip(args.interactions.as_deref()).map(|(i, path)| interactions_json(&display(path), i)),
            "collaborative": report.collaborative.as_ref().map(|c| serde_json::json!({
                "dims": c.manifest.dims,
                "blend": c.manifest.params.get("blend"),
                "tuning": report.tuning.as_ref().map(tuning_json),
            })),
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!("{summary}");
    }
    Ok(())
}

/// `localrec merge`: the manifest of a catalog built in parts.
pub fn merge(args: MergeArgs) -> Result<()> {
    let out = args.out.as_path();
    let manifest = publish::builder::merge(&mut DirSink::new(out), &mut Lines::new(0, Default::default()))?;
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

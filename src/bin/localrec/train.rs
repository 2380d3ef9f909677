//! `localrec train`: (re)trains the collaborative side of a built catalog from an
//! interaction log, without encoding anything again: the shards' int8 embeddings are
//! what the trainer reads (as in `build`), every shard is written again with the new
//! factors under its new content's name, beside the old one, and the manifest is written
//! last (`localrec gc` removes the old shards once no visitor can still be reading them).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use localrec::catalog::build::shard_path;
use localrec::catalog::{CatalogItem, MANIFEST_FILE, Manifest, QuantizedRow, parse_shard, write_shard};
use localrec::encoder::web::sha256_hex;
use localrec::native::{read_input, rename, write_atomic, write_temp};
use localrec::scorer::train::TrainConfig;
use localrec::{Error, ErrorKind, Result};

/// `localrec train` arguments.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// A catalog folder built by `localrec build`; its shards and manifest are rewritten.
    catalog: PathBuf,
    /// Interactions: CSV user_id,item_id[,rating][,timestamp][,scenario], MovieLens
    /// ratings.csv or ML-1M ratings.dat; .gz accepted.
    #[arg(long)]
    interactions: PathBuf,
    /// Hyper-parameters of the collaborative side.
    #[command(flatten)]
    tune: super::tuning::TuneArgs,
    /// With ratings, the lowest rating that counts as a positive interaction.
    #[arg(long, default_value_t = 4.0)]
    positive_rating: f32,
    /// Derive each event's scenario from its timestamp (UTC), replacing a scenario
    /// column: weekday-weekend or daypart.
    #[arg(long)]
    scenario: Option<localrec::catalog::ScenarioRule>,
    /// Share of the best held-out accuracy (Recall@20 + NDCG@20) the short-profile blend
    /// (at most 5 events) may give up for lists less like the popularity chart.
    #[arg(long, default_value_t = localrec::scorer::train::SHORT_TOLERANCE)]
    short_tolerance: f64,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    interaction_columns: super::columns::InteractionColumnArgs,
    #[command(flatten)]
    spark: super::spark::SparkAlsArgs,
}

/// `localrec train`.
pub fn train(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    let opts = args.tune.options()?;
    localrec::scorer::train::check_short_tolerance(args.short_tolerance)?;
    let dir = &args.catalog;
    let manifest = Manifest::from_json(&read_input(&dir.join(MANIFEST_FILE))?)?;
    let mut items: Vec<CatalogItem> = Vec::with_capacity(manifest.items as usize);
    for (i, shard) in manifest.shards.iter().enumerate() {
        let bytes = read_input(&dir.join(&shard.path))?;
        if bytes.len() as u64 != shard.bytes || sha256_hex(&bytes) != shard.sha256 {
            return Err(Error::new(ErrorKind::Integrity, format!("{}: does not match the manifest; rebuild the catalog", shard.path)));
        }
        let Some(expect) = manifest.expectation(i) else {
            return Err(Error::new(ErrorKind::Format, format!("the manifest has no shard {i}")));
        };
        items.extend(parse_shard(&bytes, expect).map_err(|e| e.context(&shard.path))?.1);
    }
    let index: HashMap<&str, u32> = items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i as u32)).collect();
    let log = args.interactions.display().to_string();
    let mut interactions = args.interaction_columns.parse(&read_input(&args.interactions)?, &log, &index)?;
    if let Some(rule) = args.scenario {
        interactions.derive_scenarios(rule).map_err(|e| e.context(&log))?;
    }
    eprintln!(
        "read {} interactions from {log}: {} used, {} skipped (item id not in the catalog), {} users",
        interactions.lines,
        interactions.rows.len(),
        interactions.skipped_unknown_item,
        interactions.users.len()
    );
    let mut start = TrainConfig { short_tolerance: args.short_tolerance, ..TrainConfig::default() };
    if let Some(chosen) = manifest.collaborative.as_ref().and_then(|c| c.tuning.as_ref()).map(|t| &t["chosen"]) {
        start = super::tuning::TuneArgs::previous(chosen, start);
    }
    let imported = args.spark.imported(&index, items.len())?;
    let (cfg, opts) = super::catalog::with_imported(args.tune.base(start), opts, imported);
    let rows: Vec<QuantizedRow> = items.iter().map(|it| it.embedding.clone()).collect();
    let dims = manifest.encoder.dims;
    let (side, tuning) = super::catalog::train_side(&cfg, &opts, &interactions, &super::catalog::log_extras(&interactions), &rows, dims, args.positive_rating)?;
    localrec::catalog::build::check_collaborative(&side, items.len())?;

    let factor_dims = side.manifest.dims;
    let mut next = manifest.clone();
    next.collaborative = Some(side.manifest.clone());
    next.scenarios = side.scenarios.clone();
    let mut temps = Vec::new();
    let mut first = 0usize;
    for (s, entry) in manifest.shards.iter().enumerate() {
        let range = first..first + entry.items as usize;
        let records: Vec<CatalogItem> = range
            .clone()
            .map(|i| CatalogItem {
                factors: side.factors[i * factor_dims..(i + 1) * factor_dims].to_vec(),
                bias: side.bias.as_ref().map(|b| b[i]),
                ..items[i].clone()
            })
            .collect();
        let bytes = write_shard(&records, first as u32, dims, factor_dims, side.manifest.bias)?;
        // Under its new content's name, beside the old file (see `build::shard_path`).
        let sha256 = sha256_hex(&bytes);
        next.shards[s].path = shard_path(s, &sha256);
        let path = dir.join(&next.shards[s].path);
        temps.push((write_temp(&path, &bytes)?, path));
        next.shards[s].bytes = bytes.len() as u64;
        next.shards[s].sha256 = sha256;
        first = range.end;
    }
    for (tmp, path) in &temps {
        rename(tmp, path)?;
    }
    write_atomic(&dir.join(MANIFEST_FILE), &next.to_json()?)?;
    let bytes: u64 = next.shards.iter().map(|s| s.bytes).sum();
    eprintln!(
        "trained {} in {:.1} s: {} items, {} shards, {bytes} bytes",
        dir.display(),
        started.elapsed().as_secs_f64(),
        items.len(),
        next.shards.len()
    );
    if args.json {
        let report = serde_json::json!({
            "catalog": dir.display().to_string(),
            "items": items.len(),
            "shard_bytes": bytes,
            "collaborative": {
                "dims": factor_dims,
                "blend": side.manifest.params.get("blend"),
                "tuning": tuning.as_ref().map(super::catalog::tuning_json),
            },
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!("{report}");
    }
    Ok(())
}

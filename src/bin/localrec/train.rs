//! `localrec train`: (re)trains the collaborative side of a built catalog from an
//! interaction log, without encoding anything again: the shards' int8 embeddings are
//! what the trainer reads (as in `build`); `localrec::publish::builder::retrain` writes
//! every shard again with the new factors under its new content's name, beside the old
//! one, and the manifest last (`localrec gc` removes the old shards once no visitor can
//! still be reading them).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use localrec::Result;
use localrec::catalog::QuantizedRow;
use localrec::native::read_input;
use localrec::publish::{DirSink, Training, builder};
use localrec::publish::collaborative::{log_extras, train_side, with_imported};
use localrec::publish::report::tuning_json;
use localrec::scorer::train::TrainConfig;

use super::progress::Lines;

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
    let mut sink = DirSink::new(dir);
    let (manifest, items) = builder::read_catalog(&mut sink)?;
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
    let (cfg, opts) = with_imported(args.tune.base(start), opts, imported);
    let rows: Vec<QuantizedRow> = items.iter().map(|it| it.embedding.clone()).collect();
    let mut lines = Lines::new(cfg.als.iterations, opts.budget);
    let training = Training { config: cfg, options: opts, max_record_dims: 0, positive_rating: args.positive_rating };
    let extras = log_extras(&interactions);
    let dims = manifest.encoder.dims;
    let (side, tuning) = train_side(&training, &interactions, &extras, &rows, dims, &mut lines)?;
    let next = builder::retrain(&mut sink, &manifest, &items, &side)?;
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
                "dims": side.manifest.dims,
                "blend": side.manifest.params.get("blend"),
                "tuning": tuning.as_ref().map(tuning_json),
            },
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!("{report}");
    }
    Ok(())
}

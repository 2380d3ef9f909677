//! `localrec eval`: the quality of the scorer on a fixed split (PROTOCOL.md of ML-1M's
//! splits): train on `train.csv`, choose the blend on the validation users, fold in
//! each evaluation user and rank every candidate with the same code the browser runs.
//! With the cold-item files present it also runs the cold-item protocol.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use localrec::catalog::{Interactions, ScenarioRule, SourceItem, parse_interactions, parse_items};
use localrec::native::{NativeBackend, read_input, read_model_dir};
use localrec::scorer::metrics::MetricSums;
use localrec::scorer::model::Blend;
use localrec::scorer::sparse::Csr;
use localrec::scorer::cold::tune_vae_cold;
use localrec::scorer::ease;
use localrec::publish::report::{blend_json, scenario_json, search_json, short_json};
use localrec::scorer::train::{
    EvalUser, LogExtras, POPULARITY_GRID, SEMANTIC_GRID, TrainConfig, Trained, accuracy, blend_grid,
    covered_items, evaluate, restrict_columns, scenario_ablation, scorer_for, split_by_scenario, train, train_reusing, tune_blend_with,
    tune_scenarios, tune_short_blend,
};
use localrec::scorer::tune::{item_item_sums, tune};
use localrec::{Encoder, Error, ErrorKind, Result};

use super::progress::{Lines, Progress};

/// `localrec eval` arguments.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// Items file (JSON lines, CSV or ML-1M movies.dat), for the item texts.
    #[arg(long)]
    pub(crate) items: PathBuf,
    /// Split folder: train.csv, {validation,test}_{foldin,holdout}.csv, and optionally
    /// cold_items.txt, cold_train.csv, cold_test_{foldin,holdout}.csv.
    #[arg(long)]
    pub(crate) splits: PathBuf,
    /// Model folder for the item texts' embeddings.
    #[arg(long, default_value = localrec::native::DEFAULT_MODEL_DIR)]
    pub(crate) model: PathBuf,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
    /// Encoder backend.
    #[arg(long, default_value = "cpu")]
    pub(crate) backend: NativeBackend,
    /// Hyper-parameters: chosen on the validation users within --tune-budget, or fixed.
    #[command(flatten)]
    pub(crate) tune: super::tuning::TuneArgs,
    /// An interaction log with timestamps or a scenario column (e.g. ML-1M's
    /// ratings_pos.dat.gz), joined to the split's rows by user and item id: the
    /// scenario ablation runs when its events have scenarios.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Derive each logged event's scenario from its timestamp (UTC):
    /// weekday-weekend or daypart.
    #[arg(long, requires = "log")]
    scenario: Option<ScenarioRule>,
    /// Share of the best held-out accuracy (Recall@20 + NDCG@20) the short-profile blend
    /// (at most 5 events) may give up for lists less like the popularity chart.
    #[arg(long, default_value_t = localrec::scorer::train::SHORT_TOLERANCE)]
    pub(crate) short_tolerance: f64,
    /// Run the cross-domain protocol instead (docs/cross-domain.md): the items split into
    /// two domains (genre-halves), a model of domain B only, and each user's domain-A
    /// likes ranking domain B as foreign events.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(localrec::catalog::domains::DOMAIN_SPLITS))]
    pub(crate) cross_domain: Option<String>,
}

/// Scenario of each (user id, catalog item) of a log, and the scenario names.
pub(crate) struct ScenarioLog {
    names: Vec<String>,
    of: HashMap<(String, u32), u32>,
}

impl ScenarioLog {
    fn read(path: &Path, rule: Option<ScenarioRule>, index: &HashMap<&str, u32>) -> Result<Option<ScenarioLog>> {
        let mut log = parse_interactions(&read_input(path)?, &path.display().to_string(), index)?;
        if let Some(rule) = rule {
            log.derive_scenarios(rule)?;
        }
        if log.scenarios.is_empty() {
            eprintln!("{}: no scenario column and no --scenario rule: no scenario ablation", path.display());
            return Ok(None);
        }
        // The latest event on a pair decides (the file order is the log's).
        let mut of = HashMap::new();
        for r in &log.rows {
            if let Some(s) = r.scenario {
                of.insert((log.users[r.user as usize].clone(), r.item), s);
            }
        }
        Ok(Some(ScenarioLog { names: log.scenarios, of }))
    }

    fn get(&self, rows: &Interactions, user: u32, item: u32) -> Option<u32> {
        self.of.get(&(rows.users[user as usize].clone(), item)).copied()
    }
}

const MODELS: [&str; 5] = ["popularity", "collaborative", "semantic", "hybrid", "item_item"];

fn blends(hybrid: Blend) -> [Blend; 5] {
    [
        Blend { collaborative: 0.0, item_item: 0.0, semantic: 0.0, popularity: 1.0, scenario: 0.0, vae: 0.0, interest: 0.0 },
        Blend { collaborative: 1.0, item_item: 0.0, semantic: 0.0, popularity: 0.0, scenario: 0.0, vae: 0.0, interest: 0.0 },
        Blend { collaborative: 0.0, item_item: 0.0, semantic: 1.0, popularity: 0.0, scenario: 0.0, vae: 0.0, interest: 0.0 },
        hybrid,
        Blend { collaborative: 0.0, item_item: 1.0, semantic: 0.0, popularity: 0.0, scenario: 0.0, vae: 0.0, interest: 0.0 },
    ]
}

/// The hybrid without one term: the best blend of the grid with that weight at 0, chosen
/// on validation (what each term buys).
const ABLATION: [(&str, fn(&Blend) -> f32); 4] = [
    ("without_item_item", |b| b.item_item),
    ("without_semantic", |b| b.semantic),
    ("without_popularity", |b| b.popularity),
    ("without_vae", |b| b.vae),
];

/// The candidates: catalog indices of the items in the training file, in ascending
/// item id (numeric when every id is a number), which is the protocol's tie order.
pub(crate) struct Candidates {
    pub(crate) catalog: Vec<u32>,
    pub(crate) position: HashMap<u32, u32>,
}

impl Candidates {
    pub(crate) fn new(items: &[SourceItem], mut catalog: Vec<u32>) -> Candidates {
        catalog.sort_unstable();
        catalog.dedup();
        let numeric: Option<Vec<u64>> = catalog.iter().map(|&i| items[i as usize].id.parse().ok()).collect();
        match numeric {
            Some(ids) => {
                let mut pairs: Vec<(u64, u32)> = ids.into_iter().zip(catalog).collect();
                pairs.sort_unstable();
                catalog = pairs.into_iter().map(|(_, i)| i).collect();
            }
            None => catalog.sort_by(|&a, &b| items[a as usize].id.cmp(&items[b as usize].id)),
        }
        let position = catalog.iter().enumerate().map(|(p, &i)| (i, p as u32)).collect();
        Candidates { catalog, position }
    }
}

pub(crate) fn read_split(dir: &Path, name: &str, index: &HashMap<&str, u32>) -> Result<Interactions> {
    let path = dir.join(name);
    parse_interactions(&read_input(&path)?, &path.display().to_string(), index)
}

/// Users x candidates, value 1 per (user, item) pair.
pub(crate) fn matrix(rows: &Interactions, candidates: &Candidates) -> Result<Csr> {
    let triplets: Vec<(u32, u32, f32)> =
        rows.rows.iter().filter_map(|r| candidates.position.get(&r.item).map(|&p| (r.user, p, 1.0))).collect();
    let mut csr = Csr::from_triplets(rows.users.len(), candidates.catalog.len(), &triplets)?;
    // Duplicate lines would have summed; the protocol's positives are binary.
    csr.values.iter_mut().for_each(|v| *v = 1.0);
    Ok(csr)
}

/// Evaluation users from a fold-in and a held-out file, by user id; items outside
/// the candidates are dropped, as the protocol says. With a scenario log, each item's
/// scenario (all of a user's, or none).
pub(crate) fn users(
    fold_in: &Interactions,
    held_out: &Interactions,
    candidates: &Candidates,
    log: Option<&ScenarioLog>,
) -> Vec<EvalUser> {
    let mut by_user: BTreeMap<&str, (EvalUser, bool)> = BTreeMap::new();
    for (file, is_held) in [(fold_in, false), (held_out, true)] {
        for r in &file.rows {
            let Some(&p) = candidates.position.get(&r.item) else {
                continue;
            };
            let (user, complete) =
                by_user.entry(file.users[r.user as usize].as_str()).or_insert((EvalUser::default(), true));
            let scenario = log.and_then(|l| l.get(file, r.user, r.item));
            *complete &= scenario.is_some();
            let s = scenario.unwrap_or(0);
            if is_held {
                user.held_out.push(p);
                user.held_out_scenarios.push(s);
            } else {
                user.fold_in.push(p);
                user.fold_in_scenarios.push(s);
            }
        }
    }
    by_user
        .into_values()
        .filter(|(u, _)| !u.held_out.is_empty())
        .map(|(mut u, complete)| {
            if !complete {
                u.fold_in_scenarios.clear();
                u.held_out_scenarios.clear();
            }
            u
        })
        .collect()
}

pub(crate) fn row(s: &MetricSums) -> serde_json::Value {
    let (r, n20, n100) = s.means();
    let round = |v: f64| (v * 10_000.0).round() / 10_000.0;
    serde_json::json!({"recall@20": round(r), "ndcg@20": round(n20), "ndcg@100": round(n100)})
}

/// Every item's text embedding (row-major) and the width.
pub(crate) fn embed_items(model: &Path, backend: NativeBackend, items: &[SourceItem]) -> Result<(Vec<f32>, usize)> {
    let encoder = Encoder::load(&read_model_dir(model)?, &backend.device()?)?;
    let dims = encoder.dims();
    let t = Instant::now();
    let mut embeddings = Vec::with_capacity(items.len().saturating_mul(dims));
    let mut encoding = Progress::new("encoding", "items", items.len() as u64);
    for chunk in items.chunks(256) {
        let texts: Vec<String> = chunk.iter().map(SourceItem::encoder_text).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        embeddings.extend_from_slice(&encoder.embed(&refs)?.data);
        encoding.inc(chunk.len() as u64);
    }
    encoding.finish();
    eprintln!("encoded {} item texts in {:.1} s", items.len(), t.elapsed().as_secs_f64());
    Ok((embeddings, dims))
}

/// `localrec eval`.
pub fn eval(args: EvalArgs) -> Result<()> {
    let started = Instant::now();
    localrec::scorer::train::check_short_tolerance(args.short_tolerance)?;
    let items_name = args.items.display().to_string();
    let items = parse_items(&read_input(&args.items)?, &items_name)?;
    let index: HashMap<&str, u32> = items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i as u32)).collect();

    let train_rows = read_split(&args.splits, "train.csv", &index)?;
    let candidates = Candidates::new(&items, train_rows.rows.iter().map(|r| r.item).collect());
    if candidates.catalog.is_empty() {
        return Err(Error::new(ErrorKind::Input, "train.csv has no interaction with an item of the items file"));
    }
    eprintln!(
        "{} items, {} candidates, {} training users",
        items.len(),
        candidates.catalog.len(),
        train_rows.users.len()
    );

    let (embeddings, dims) = embed_items(&args.model, args.backend, &items)?;
    let candidate_embeddings = |c: &Candidates| -> Vec<f32> {
        c.catalog.iter().flat_map(|&i| embeddings[i as usize * dims..(i as usize + 1) * dims].iter().copied()).collect()
    };

    let opts = args.tune.options()?;
    let base = args.tune.base(TrainConfig { short_tolerance: args.short_tolerance, ..TrainConfig::default() });
    let scenario_log = match &args.log {
        Some(path) => ScenarioLog::read(path, args.scenario, &index)?,
        None => None,
    };
    let mut extras = LogExtras::default();
    if let Some(log) = &scenario_log {
        extras.scenario_names = log.names.clone();
        for r in &train_rows.rows {
            if let (Some(&p), Some(s)) = (candidates.position.get(&r.item), log.get(&train_rows, r.user, r.item)) {
                extras.scenarios.insert((r.user, p), s);
            }
        }
        eprintln!(
            "scenarios {:?}: {} of {} training positives have one",
            log.names,
            extras.scenarios.len(),
            train_rows.rows.len()
        );
    }
    let device = NativeBackend::Cpu.device()?;
    let mut lines = Lines::new(base.als.iterations, opts.budget);
    let split_users = |name: &str, c: &Candidates| -> Result<Vec<EvalUser>> {
        let f = read_split(&args.splits, &format!("{name}_foldin.csv"), &index)?;
        let h = read_split(&args.splits, &format!("{name}_holdout.csv"), &index)?;
        Ok(users(&f, &h, c, scenario_log.as_ref()))
    };
    let validation = split_users("validation", &candidates)?;
    let test = split_users("test", &candidates)?;
    let train_matrix = matrix(&train_rows, &candidates)?;
    let (mut cfg, mut search, reuse) =
        tune(&train_matrix, &validation, &candidate_embeddings(&candidates), dims, &base, &opts, &device, &mut lines)?;
    lines.settle();
    eprintln!(
        "chosen on {} validation users in {:.1} s ({} trials, {} skipped for the budget): k {}, reg {}, alpha {}, ease lambda {} (full rank: {}), item-item rank {}",
        validation.len(),
        search.seconds,
        search.trials.len(),
        search.skipped,
        cfg.als.factors,
        cfg.als.reg,
        cfg.als.alpha,
        cfg.ease_lambda,
        search.full_rank_ease_lambda,
        cfg.item_rank
    );
    let t = Instant::now();
    let trained: Trained =
        train_reusing(&train_matrix, &candidate_embeddings(&candidates), dims, &cfg, &extras, &reuse, &mut lines)?;
    eprintln!("trained on train.csv in {:.1} s", t.elapsed().as_secs_f64());
    let scorer = scorer_for(&trained, &candidate_embeddings(&candidates), dims, &device)?;
    let (hybrid, _) = tune_blend_with(&scorer, &validation, opts.vae_weight)?;
    let t = Instant::now();
    search.vae_cold = tune_vae_cold(&trained, &train_matrix, &candidate_embeddings(&candidates), dims, &cfg, &validation, &hybrid, &device)?;
    if let Some(c) = &search.vae_cold {
        cfg.vae_cold = c.chosen;
        let curve: Vec<String> = c.grid.iter().map(|(s, m)| format!("{s}: {:.4}", m.means().0)).collect();
        eprintln!(
            "autoencoder weight on cold items chosen on {} simulated cold items in {:.1} s: {} (validation Recall@20 {})",
            c.items,
            t.elapsed().as_secs_f64(),
            c.chosen,
            curve.join(", ")
        );
    }
    let short = tune_short_blend(&scorer, &validation, cfg.als.seed, cfg.short_tolerance)?;
    for (what, (blend, sums)) in [("most accurate", short.most_accurate), ("chosen", short.chosen)] {
        let (sr, sn, _) = sums.means();
        eprintln!(
            "short-profile blend (3 fold-in items), {what}: {blend:?}, validation Recall@20 {sr:.4}, NDCG@20 {sn:.4}, {:.0}% of each top 20 also in the popularity top 20",
            100.0 * sums.popular_overlap()
        );
    }
    eprintln!(
        "blend chosen on {} validation users: collaborative {}, item-item {}, semantic {}, popularity {}, autoencoder {}",
        validation.len(),
        hybrid.collaborative,
        hybrid.item_item,
        hybrid.semantic,
        hybrid.popularity,
        hybrid.vae
    );
    // The reference: EASE at full rank with the lambda best at full rank (not what ships:
    // the catalog holds rank `item_rank`, its lambda chosen at that rank).
    let covered = covered_items(&train_matrix, cfg.item_item_max);
    let ease_b = match reuse.item_item {
        Some((lambda, b)) if lambda == search.full_rank_ease_lambda => b,
        _ => ease::ease(ease::item_gram(&restrict_columns(&train_matrix, &covered)?), covered.len(), search.full_rank_ease_lambda)?,
    };
    let has_vae = trained.params.vae.is_some();
    let grid = blend_grid(cfg.item_rank > 0, has_vae, &SEMANTIC_GRID, &POPULARITY_GRID);
    let val_grid = evaluate(&scorer, &validation, &grid, None, 1.0)?;
    let ablated: Vec<(&str, Blend)> = ABLATION
        .iter()
        .filter(|(name, _)| has_vae || *name != "without_vae")
        .filter_map(|(name, weight)| {
            let best = (0..grid.len())
                .filter(|&g| weight(&grid[g]) == 0.0)
                .reduce(|b, g| if accuracy(&val_grid[g]) > accuracy(&val_grid[b]) { g } else { b })?;
            Some((*name, grid[best]))
        })
        .collect();
    let mut report = serde_json::Map::new();
    for (name, users) in [("validation", &validation), ("test", &test)] {
        let sums = evaluate(&scorer, users, &blends(hybrid), None, 1.0)?;
        let mut models: serde_json::Map<String, serde_json::Value> =
            MODELS.iter().zip(&sums).map(|(m, s)| (m.to_string(), row(s))).collect();
        models.insert("ease".into(), row(&item_item_sums(&ease_b, &covered, candidates.catalog.len(), users)));
        if has_vae {
            let alone = Blend { collaborative: 0.0, item_item: 0.0, semantic: 0.0, popularity: 0.0, scenario: 0.0, vae: 1.0, interest: 0.0 };
            models.insert("autoencoder".into(), row(&evaluate(&scorer, users, &[alone], None, 1.0)?[0]));
        }
        let ablation_blends: Vec<Blend> = ablated.iter().map(|a| a.1).collect();
        for ((what, blend), s) in ablated.iter().zip(evaluate(&scorer, users, &ablation_blends, None, 1.0)?) {
            let mut v = row(&s);
            v["blend"] = blend_json(blend);
            models.insert(format!("hybrid_{what}"), v);
        }
        report.insert(name.into(), models.into());
    }
    report.insert("blend".into(), blend_json(&hybrid));
    if hybrid.vae == 0.0 {
        // As a build does: an autoencoder the blend leaves out is not part of the catalog.
        search.vae = None;
    }
    report.insert("tuning".into(), search_json(&search));
    report.insert("short_profile".into(), short_json(&short));

    if let Some(log) = &scenario_log {
        let (val, tst) = (split_by_scenario(&validation), split_by_scenario(&test));
        let tuned = tune_scenarios(&scorer, &val, hybrid)?;
        eprintln!(
            "scenario terms chosen on {} validation (user, scenario) groups: {:?}",
            val.len(),
            tuned.chosen
        );
        let mut ablation = serde_json::Map::new();
        ablation.insert("names".into(), serde_json::json!(log.names));
        ablation.insert("rule".into(), serde_json::json!(args.scenario.map(ScenarioRule::name)));
        for (name, groups) in [("validation", &val), ("test", &tst)] {
            let sums = scenario_ablation(&scorer, groups, hybrid, &tuned)?;
            let mut rows = scenario_json(&tuned, &sums, row);
            rows["groups"] = serde_json::json!(groups.len());
            ablation.insert(name.into(), rows);
        }
        report.insert("scenarios".into(), ablation.into());
    }

    let cold_file = args.splits.join("cold_items.txt");
    if cold_file.exists() {
        let t = Instant::now();
        let text = String::from_utf8(read_input(&cold_file)?)
            .map_err(|e| Error::with_source(ErrorKind::Input, "cold_items.txt is not UTF-8", e))?;
        let cold_catalog: Vec<u32> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|id| {
                index.get(id).copied().ok_or_else(|| {
                    Error::new(ErrorKind::Input, format!("cold_items.txt: item {id:?} is not in {items_name}"))
                })
            })
            .collect::<Result<_>>()?;
        let cold_train = read_split(&args.splits, "cold_train.csv", &index)?;
        // The cold model's items: the candidates and the cold items (which have no rows).
        let all: Vec<u32> = candidates.catalog.iter().chain(&cold_catalog).copied().collect();
        let cold_candidates = Candidates::new(&items, all);
        // An autoencoder the blend leaves out is not trained again, as a build does.
        let cold_cfg = TrainConfig { vae: cfg.vae.clone().filter(|_| hybrid.vae != 0.0), ..cfg.clone() };
        let cold_trained = train(
            &matrix(&cold_train, &cold_candidates)?,
            &candidate_embeddings(&cold_candidates),
            dims,
            &cold_cfg,
            &LogExtras::default(),
            &mut lines,
        )?;
        let cold_scorer = scorer_for(&cold_trained, &candidate_embeddings(&cold_candidates), dims, &device)?;
        let only: Vec<u32> = cold_catalog.iter().map(|i| cold_candidates.position[i]).collect();
        let cold_users = split_users("cold_test", &cold_candidates)?;
        let sums = evaluate(&cold_scorer, &cold_users, &[blends(hybrid)[2], hybrid], Some(&only), 1.0)?;
        let mut models = serde_json::Map::new();
        for (m, s) in ["semantic", "hybrid"].iter().zip(&sums) {
            let (r, n, _) = s.means();
            models.insert(
                m.to_string(),
                serde_json::json!({"recall@20": (r * 1e4).round() / 1e4, "ndcg@20": (n * 1e4).round() / 1e4}),
            );
        }
        report.insert("cold".into(), models.into());
        eprintln!(
            "cold protocol: {} cold items ({} got their factors from text), {} users, in {:.1} s",
            only.len(),
            cold_trained.cold_items,
            cold_users.len(),
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());

    if args.json {
        println!("{}", serde_json::Value::Object(report));
        return Ok(());
    }
    for (split, models) in report.iter().filter(|(k, _)| *k != "scenarios") {
        println!("{split}");
        println!("  {:<14} {:>9} {:>9} {:>9}", "model", "Recall@20", "NDCG@20", "NDCG@100");
        if let Some(models) = models.as_object() {
            for (m, v) in models {
                let f = |key: &str| v.get(key).and_then(|x| x.as_f64()).map_or("-".to_string(), |x| format!("{x:.4}"));
                println!("  {:<14} {:>9} {:>9} {:>9}", m, f("recall@20"), f("ndcg@20"), f("ndcg@100"));
            }
        }
    }
    if let Some(a) = report.get("scenarios") {
        println!("scenarios {} (the scenario protocol: each user once per scenario of their held-out items)", a["names"]);
        println!("  {:<11} {:>6} {:<16} {:>6} {:>6} {:>9} {:>9}", "split", "groups", "model", "lift", "other", "Recall@20", "NDCG@20");
        for split in ["validation", "test"] {
            for m in ["hybrid", "hybrid+lift", "hybrid+events", "hybrid+scenario"] {
                let v = &a[split][m];
                let f = |key: &str| v[key].as_f64().map_or("-".to_string(), |x| format!("{x:.4}"));
                println!(
                    "  {:<11} {:>6} {:<16} {:>6} {:>6} {:>9} {:>9}",
                    split,
                    a[split]["groups"].to_string(),
                    m,
                    v["weight"].to_string(),
                    v["other_scenario_weight"].to_string(),
                    f("recall@20"),
                    f("ndcg@20")
                );
            }
        }
    }
    Ok(())
}

//! The cross-domain protocol (docs/cross-domain.md): `localrec eval --cross-domain
//! genre-halves` measures how well a visitor's likes in one catalog of a site rank
//! another catalog they never touched, and `localrec domains` writes the two halves of
//! an items file as the items of two catalogs (the browser test's films and their other
//! half).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use localrec::catalog::domains::{DOMAIN_SPLITS, Domains, genre_halves};
use localrec::catalog::{Interactions, QuantizedRow, SourceItem, parse_items};
use localrec::native::{NativeBackend, read_input};
use localrec::publish::report::{blend_json, foreign_json, search_json};
use localrec::scorer::cross::tune_foreign;
use localrec::scorer::model::Blend;
use localrec::scorer::train::{EvalUser, ForeignTable, TrainConfig, evaluate, evaluate_with, scorer_for, train_reusing, tune_blend};
use localrec::scorer::tune::tune;
use localrec::{Error, ErrorKind, Result};

use super::eval::{Candidates, EvalArgs, embed_items, matrix, read_split, row};
use super::progress::Lines;

/// `localrec domains` arguments.
#[derive(clap::Args)]
pub struct DomainsArgs {
    /// Items file (JSON lines, CSV or ML-1M movies.dat).
    #[arg(long)]
    items: PathBuf,
    /// How to split the items.
    #[arg(long, default_value = "genre-halves", value_parser = clap::builder::PossibleValuesParser::new(DOMAIN_SPLITS))]
    split: String,
    /// Output folder: a.jsonl and b.jsonl, the items of each domain as JSON lines (as
    /// `build --items` reads them).
    #[arg(long)]
    out: PathBuf,
}

fn split_items(items: &[SourceItem], split: &str) -> Result<Domains> {
    match split {
        "genre-halves" => genre_halves(items),
        other => Err(Error::new(ErrorKind::Input, format!("unknown domain split {other:?}: expected one of {DOMAIN_SPLITS:?}"))),
    }
}

fn domains_json(d: &Domains, split: &str) -> serde_json::Value {
    serde_json::json!({
        "split": split,
        "a": {"genres": d.a_genres, "items": d.items(false).len()},
        "b": {"genres": d.b_genres, "items": d.items(true).len()},
    })
}

/// `localrec domains`: prints what went where as JSON.
pub fn domains(args: DomainsArgs) -> Result<()> {
    let name = args.items.display().to_string();
    let items = parse_items(&read_input(&args.items)?, &name)?;
    let d = split_items(&items, &args.split)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot create {}", args.out.display()), e))?;
    for (b, file) in [(false, "a.jsonl"), (true, "b.jsonl")] {
        let mut text = Vec::new();
        for i in d.items(b) {
            let it = &items[i as usize];
            let mut object = it.meta.clone();
            object.insert("id".into(), it.id.clone().into());
            object.insert("title".into(), it.title.clone().into());
            object.insert("genres".into(), it.genres.clone().into());
            if let Some(t) = &it.text {
                object.insert("text".into(), t.clone().into());
            }
            let line = serde_json::to_string(&object)
                .map_err(|e| Error::with_source(ErrorKind::Input, format!("item {:?} cannot be written", it.id), e))?;
            writeln!(text, "{line}").map_err(|e| Error::with_source(ErrorKind::Io, "cannot buffer an item", e))?;
        }
        let path = args.out.join(file);
        std::fs::write(&path, text).map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot write {}", path.display()), e))?;
    }
    println!("{}", domains_json(&d, &args.split));
    Ok(())
}

/// The evaluation users of one split seen across the domains: their likes in A (fold-in
/// and held-out: A is not evaluated) as foreign rows (item indices), their held-out
/// positives in B to find, their B fold-in as what is left out of the ranking (`cross`)
/// or folded in (`own`). Users with no A like or nothing to find in B are left out.
fn cross_users(
    fold_in: &Interactions,
    held_out: &Interactions,
    domains: &Domains,
    candidates: &Candidates,
) -> (Vec<EvalUser>, Vec<EvalUser>) {
    /// One user's likes in A, and their fold-in and held-out positions among B's candidates.
    #[derive(Default)]
    struct Sides {
        a: Vec<u32>,
        b_fold: Vec<u32>,
        b_held: Vec<u32>,
    }
    let mut by_user: std::collections::BTreeMap<&str, Sides> = Default::default();
    for (file, held) in [(fold_in, false), (held_out, true)] {
        for r in &file.rows {
            let sides = by_user.entry(file.users[r.user as usize].as_str()).or_default();
            match (domains.in_b.get(r.item as usize).copied().flatten(), candidates.position.get(&r.item)) {
                (Some(false), _) => sides.a.push(r.item),
                (Some(true), Some(&p)) if held => sides.b_held.push(p),
                (Some(true), Some(&p)) => sides.b_fold.push(p),
                _ => {}
            }
        }
    }
    let (mut cross, mut own) = (Vec::new(), Vec::new());
    for Sides { a, b_fold, b_held } in by_user.into_values() {
        if a.is_empty() || b_held.is_empty() {
            continue;
        }
        cross.push(EvalUser { held_out: b_held.clone(), foreign: a, known: b_fold.clone(), ..EvalUser::default() });
        own.push(EvalUser::new(b_fold, b_held));
    }
    (cross, own)
}

/// `localrec eval --cross-domain SPLIT`: domain B's model is built from train.csv's rows
/// on B's items and tuned, as `localrec build` tunes a catalog, on the validation users'
/// B interactions (the foreign weight and blend included, on B's own simulated halves:
/// nothing of domain A is seen before the report). Then each validation and test user's
/// A likes rank B's items.
pub fn eval(args: &EvalArgs, split: &str) -> Result<()> {
    let started = Instant::now();
    let items_name = args.items.display().to_string();
    let items = parse_items(&read_input(&args.items)?, &items_name)?;
    let index: std::collections::HashMap<&str, u32> =
        items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i as u32)).collect();
    let domains = split_items(&items, split)?;
    let train_rows = read_split(&args.splits, "train.csv", &index)?;
    let in_b = |i: u32| domains.in_b.get(i as usize).copied().flatten() == Some(true);
    let candidates = Candidates::new(&items, train_rows.rows.iter().map(|r| r.item).filter(|&i| in_b(i)).collect());
    if candidates.catalog.is_empty() {
        return Err(Error::new(ErrorKind::Input, "train.csv has no interaction with an item of domain B"));
    }
    eprintln!(
        "domains {split}: A {:?} ({} items), B {:?} ({} items, {} with training interactions)",
        domains.a_genres,
        domains.items(false).len(),
        domains.b_genres,
        domains.items(true).len(),
        candidates.catalog.len()
    );
    let (embeddings, dims) = embed_items(&args.model, args.backend, &items)?;
    let b_embeddings: Vec<f32> = candidates
        .catalog
        .iter()
        .flat_map(|&i| embeddings[i as usize * dims..(i as usize + 1) * dims].iter().copied())
        .collect();
    // What the device sends for a foreign event: the other catalog's stored int8 row.
    let snapshots: Vec<f32> = embeddings.chunks(dims).flat_map(|e| QuantizedRow::quantize(e).dequantize()).collect();

    let split_users = |name: &str| -> Result<(Vec<EvalUser>, Vec<EvalUser>)> {
        let f = read_split(&args.splits, &format!("{name}_foldin.csv"), &index)?;
        let h = read_split(&args.splits, &format!("{name}_holdout.csv"), &index)?;
        Ok(cross_users(&f, &h, &domains, &candidates))
    };
    // Domain B's own validation users, as a build of catalog B would hold them out.
    let validation_b: Vec<EvalUser> = {
        let f = read_split(&args.splits, "validation_foldin.csv", &index)?;
        let h = read_split(&args.splits, "validation_holdout.csv", &index)?;
        super::eval::users(&f, &h, &candidates, None).into_iter().filter(|u| !u.fold_in.is_empty()).collect()
    };
    let device = NativeBackend::Cpu.device()?;
    let base = args.tune.base(TrainConfig { short_tolerance: args.short_tolerance, ..TrainConfig::default() });
    let train_matrix = matrix(&train_rows, &candidates)?;
    let opts = args.tune.options()?;
    let mut lines = Lines::new(base.als.iterations, opts.budget);
    let (cfg, search, reuse) = tune(&train_matrix, &validation_b, &b_embeddings, dims, &base, &opts, &device, &mut lines)?;
    lines.settle();
    let trained = train_reusing(&train_matrix, &b_embeddings, dims, &cfg, &Default::default(), &reuse, &mut lines)?;
    let scorer = scorer_for(&trained, &b_embeddings, dims, &device)?;
    let (hybrid, _) = tune_blend(&scorer, &validation_b)?;
    let foreign = tune_foreign(&scorer, &validation_b, hybrid)?
        .ok_or_else(|| Error::new(ErrorKind::Input, "too few validation users have likes in both halves of domain B"))?;
    eprintln!(
        "domain B tuned on {} validation users: blend {hybrid:?}; foreign blend {:?}, foreign weight {}",
        validation_b.len(),
        foreign.blend,
        foreign.weight
    );

    let popularity = Blend { collaborative: 0.0, item_item: 0.0, semantic: 0.0, popularity: 1.0, scenario: 0.0, vae: 0.0, interest: 0.0 };
    let semantic = Blend { semantic: 1.0, popularity: 0.0, ..popularity };
    let table = ForeignTable { embeddings: &snapshots, dims, weight: 1.0 };
    let mut report = serde_json::Map::new();
    for name in ["validation", "test"] {
        let (cross, own) = split_users(name)?;
        let sums = evaluate_with(&scorer, &cross, &[popularity, semantic, foreign.blend], None, 1.0, Some(&table))?;
        let own_sums = evaluate(&scorer, &own, &[hybrid], None, 1.0)?;
        let mut models = serde_json::Map::new();
        for (m, s) in ["popularity", "semantic", "cross_domain"].iter().zip(&sums).chain([("own_domain", &own_sums[0])].iter().map(|(m, s)| (m, *s))) {
            let mut v = row(s);
            v["users"] = s.users.into();
            models.insert(m.to_string(), v);
        }
        report.insert(name.into(), models.into());
    }
    report.insert("domains".into(), domains_json(&domains, split));
    report.insert("foreign".into(), foreign_json(&foreign));
    report.insert("blend".into(), blend_json(&hybrid));
    report.insert("tuning".into(), search_json(&search));
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    if args.json {
        println!("{}", serde_json::Value::Object(report));
        return Ok(());
    }
    for split in ["validation", "test"] {
        println!("{split} (domain B ranked from domain-A likes)");
        println!("  {:<14} {:>6} {:>9} {:>9}", "model", "users", "Recall@20", "NDCG@20");
        for (m, v) in report[split].as_object().into_iter().flatten() {
            let f = |key: &str| v[key].as_f64().map_or("-".to_string(), |x| format!("{x:.4}"));
            println!("  {:<14} {:>6} {:>9} {:>9}", m, v["users"].to_string(), f("recall@20"), f("ndcg@20"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_users_fold_in_a_and_find_b_leaving_out_what_b_already_shows() {
        let item = |id: &str, g: &str| SourceItem {
            id: id.into(),
            title: id.into(),
            text: None,
            genres: vec![g.into()],
            meta: Default::default(),
            line: 1,
        };
        let items = [item("1", "Action"), item("2", "Action"), item("3", "War"), item("4", "War"), item("5", "War")];
        let domains = genre_halves(&items).unwrap();
        // Items 3..5 (indices 2..4) are domain B; 5 has no training row, so it is no candidate.
        let candidates = Candidates::new(&items, vec![2, 3]);
        let log = |rows: &[(&str, u32)]| {
            let mut users: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
            users.dedup();
            Interactions {
                rows: rows
                    .iter()
                    .map(|(u, i)| localrec::catalog::input::Interaction {
                        user: users.iter().position(|x| x == u).unwrap() as u32,
                        item: *i,
                        rating: None,
                        timestamp: None,
                        scenario: None,
                    })
                    .collect(),
                users,
                ..Default::default()
            }
        };
        let fold_in = log(&[("u", 0), ("u", 2), ("v", 1)]);
        let held_out = log(&[("u", 3), ("u", 1), ("v", 4)]);
        let (cross, own) = cross_users(&fold_in, &held_out, &domains, &candidates);
        assert_eq!(cross.len(), 1, "v has nothing to find among B's candidates");
        assert_eq!(cross[0].foreign, vec![0, 1], "every A like of u, fold-in and held-out");
        assert_eq!((cross[0].held_out.clone(), cross[0].known.clone()), (vec![1], vec![0]));
        assert!(cross[0].fold_in.is_empty());
        assert_eq!((own[0].fold_in.clone(), own[0].held_out.clone()), (vec![0], vec![1]));
    }
}

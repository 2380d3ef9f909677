//! How the collaborative side's training reads as JSON: the tuner's search (in the
//! build and train summaries, `eval --json`, and without wall times in the manifest's
//! `collaborative.tuning`), the short-profile and scenario tunings, and an interactions
//! file's figures. One place, so that every command and the manifest say it alike.

use crate::catalog::input::Interactions;
use crate::scorer::cross::ForeignTuning;
use crate::scorer::metrics::MetricSums;
use crate::scorer::model::Blend;
use crate::scorer::fit::Tuning;
use crate::scorer::train::{ScenarioTuning, ShortTuning};
use crate::scorer::tune::{Setting, Trial, TuneReport};

/// Through text, so that 0.1f32 reads 0.1, not 0.10000000149011612.
pub fn plain(x: f32) -> f64 {
    x.to_string().parse::<f64>().unwrap_or(f64::NAN)
}

fn metrics(s: &MetricSums) -> serde_json::Value {
    let (r, n20, n100) = s.means();
    serde_json::json!({"recall@20": r, "ndcg@20": n20, "ndcg@100": n100})
}

/// One trial as JSON: its setting and validation metrics.
fn trial_json(t: &Trial) -> serde_json::Value {
    let mut v = match t.setting {
        Setting::Als { factors, reg, alpha, iterations } => serde_json::json!({
            "model": "als", "factors": factors, "reg": plain(reg), "alpha": plain(alpha), "iterations": iterations,
        }),
        Setting::ItemItem { lambda, items, rank } => {
            serde_json::json!({"model": "item_item", "ease_lambda": plain(lambda), "items": items, "rank": rank})
        }
        Setting::Layout { factors, item_rank } => {
            serde_json::json!({"model": "hybrid", "factors": factors, "item_rank": item_rank})
        }
        Setting::Autoencoder { hidden, latent, epochs } => {
            serde_json::json!({"model": "autoencoder", "hidden": hidden, "latent": latent, "epochs": epochs})
        }
    };
    v["validation"] = metrics(&t.sums);
    v["seconds"] = serde_json::json!((t.seconds * 100.0).round() / 100.0);
    v
}

/// The search as JSON (build and train summaries, the manifest, `eval --json`): the chosen
/// values, then every trial in the order run with its validation metrics.
pub fn search_json(r: &TuneReport) -> serde_json::Value {
    let vae_dims = r.vae.as_ref().map_or(0, |v| v.hidden + v.latent + 1);
    serde_json::json!({
        "chosen": {
            "factors": r.factors,
            "reg": plain(r.reg),
            "alpha": plain(r.alpha),
            "ease_lambda": plain(r.ease_lambda),
            "full_rank_ease_lambda": plain(r.full_rank_ease_lambda),
            "item_rank": r.item_rank,
            "factor_bytes": r.factors.saturating_add(r.item_rank.saturating_mul(2)).saturating_add(vae_dims).saturating_mul(4),
            "vae": r.vae.as_ref().map(|v| serde_json::json!({
                "hidden": v.hidden, "latent": v.latent, "epochs": v.epochs,
                "cold_weight": plain(r.vae_cold.as_ref().map_or(1.0, |c| c.chosen)),
            })),
        },
        "vae_cold": r.vae_cold.as_ref().map(|c| serde_json::json!({
            "items": c.items,
            "grid": c.grid.iter().map(|(w, s)| serde_json::json!({"weight": plain(*w), "validation": metrics(s)})).collect::<Vec<_>>(),
        })),
        "users": r.users,
        "budget_seconds": r.budget_seconds,
        "seconds": (r.seconds * 10.0).round() / 10.0,
        "complete": r.skipped == 0,
        "skipped": r.skipped,
        "trials": r.trials.iter().map(trial_json).collect::<Vec<_>>(),
    })
}

/// [`search_json`] without the wall times, for the manifest: two builds of the same input
/// must give the same bytes (which they do when the search completed within its budget).
pub fn search_manifest_json(r: &TuneReport) -> serde_json::Value {
    let mut v = search_json(r);
    if let Some(o) = v.as_object_mut() {
        o.remove("seconds");
    }
    if let Some(trials) = v["trials"].as_array_mut() {
        trials.iter_mut().filter_map(|t| t.as_object_mut()).for_each(|t| {
            t.remove("seconds");
        });
    }
    v
}

/// A blend's weights of the collaborative, item-item, semantic, popularity and
/// autoencoder terms.
pub fn blend_json(b: &Blend) -> serde_json::Value {
    serde_json::json!({"collaborative": plain(b.collaborative), "item_item": plain(b.item_item), "semantic": plain(b.semantic), "popularity": plain(b.popularity), "vae": plain(b.vae)})
}

/// The scenario ablation's four rows (none, lift, events, both) with their settings.
pub fn scenario_json(
    t: &ScenarioTuning,
    sums: &[MetricSums; 4],
    metrics: impl Fn(&MetricSums) -> serde_json::Value,
) -> serde_json::Value {
    let names = ["hybrid", "hybrid+lift", "hybrid+events", "hybrid+scenario"];
    let rows: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip(t.settings().iter().zip(sums))
        .map(|(n, (set, s))| {
            let mut v = metrics(s);
            v["weight"] = serde_json::json!(plain(set.weight));
            v["other_scenario_weight"] = serde_json::json!(plain(set.other_scenario_weight));
            (n.to_string(), v)
        })
        .collect();
    rows.into()
}

/// The short-profile tuning: the chosen blend and the most accurate one, each with its
/// held-out metrics and how much of its top 20 is the popularity top 20.
pub fn short_json(t: &ShortTuning) -> serde_json::Value {
    let one = |(b, s): (Blend, MetricSums)| {
        let (r, n20, n100) = s.means();
        serde_json::json!({
            "blend": blend_json(&b),
            "recall@20": r, "ndcg@20": n20, "ndcg@100": n100, "popular_overlap": s.popular_overlap(),
        })
    };
    serde_json::json!({"tolerance": t.tolerance, "users": t.chosen.1.users, "chosen": one(t.chosen), "most_accurate": one(t.most_accurate)})
}

/// The cross-domain search: the chosen foreign blend against the popularity chart on
/// simulated users with foreign likes alone, and each foreign weight beside own events.
pub fn foreign_json(f: &ForeignTuning) -> serde_json::Value {
    let metrics = |s: &MetricSums| {
        let (r, n20, _) = s.means();
        serde_json::json!({"users": s.users, "recall@20": r, "ndcg@20": n20})
    };
    let weights: Vec<serde_json::Value> =
        f.weights.iter().map(|(w, s)| serde_json::json!({"weight": w, "held_out": metrics(s)})).collect();
    serde_json::json!({
        "weight": f.weight,
        "blend": blend_json(&f.blend),
        "alone": metrics(&f.alone),
        "alone_popularity": metrics(&f.alone_popularity),
        "weights": weights,
    })
}

/// The tuning part of a build or train report.
pub fn tuning_json(t: &Tuning) -> serde_json::Value {
    let metrics = |s: &MetricSums| {
        let (r, n20, n100) = s.means();
        serde_json::json!({"users": s.users, "recall@20": r, "ndcg@20": n20, "ndcg@100": n100})
    };
    let mut out = metrics(&t.sums);
    out["search"] = search_json(&t.search);
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

/// An interactions file's figures for a build summary.
pub fn interactions_json(file: &str, i: &Interactions) -> serde_json::Value {
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

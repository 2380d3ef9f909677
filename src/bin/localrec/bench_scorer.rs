//! `localrec bench-scorer`: recommend() latency natively on synthetic catalogs of
//! several sizes (the browser figures come from bench/scorer/browser.mjs), fold-in time
//! per event, and memory per item, beside a plain brute-force dot-product top-k over the
//! same vectors.

use std::time::Instant;

use localrec::native::NativeBackend;
use localrec::scorer::metrics::top_k;
use localrec::scorer::bench::{synthetic, synthetic_events, with_autoencoder};
use localrec::scorer::profile::user_query;
use localrec::scorer::rank::{Precision, RankOptions, Scorer};
use localrec::scorer::vae::VaeConfig;
use localrec::{Error, ErrorKind, Result};

/// `localrec bench-scorer` arguments.
#[derive(clap::Args)]
pub struct BenchScorerArgs {
    /// Catalog sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    items: Vec<usize>,
    /// ALS factors k.
    #[arg(long, default_value_t = 64)]
    factors: usize,
    /// Item-item rank r.
    #[arg(long, default_value_t = 128)]
    item_rank: usize,
    /// Autoencoder hidden width (0: no autoencoder term).
    #[arg(long, default_value_t = 0)]
    vae_hidden: usize,
    /// Autoencoder latent width.
    #[arg(long, default_value_t = 200)]
    vae_latent: usize,
    /// Events in the profile.
    #[arg(long, default_value_t = 20)]
    events: usize,
    /// Timed repetitions (the best is reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

fn best(repeat: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(best)
}

/// `localrec bench-scorer`.
pub fn bench_scorer(args: BenchScorerArgs) -> Result<()> {
    let device = NativeBackend::Cpu.device()?;
    let d = 384;
    if !args.json {
        println!(
            "{:>9} {:>12} {:>14} {:>14} {:>10} {:>12} {:>7}",
            "items", "fold-in ms", "recommend ms", "brute ms", "ratio", "bytes/item", "matrix"
        );
    }
    for &n in &args.items {
        if n < args.events.max(1) {
            return Err(Error::new(ErrorKind::Input, format!("{n} items is fewer than --events {}", args.events)));
        }
        let (items, params) = synthetic(n, args.factors, args.item_rank, d);
        // The trainer's encoder depth (RecVAE's 5 layers).
        let (items, params) = if args.vae_hidden > 0 {
            with_autoencoder(items, params, args.vae_hidden, args.vae_latent, VaeConfig::default().layers)
        } else {
            (items, params)
        };
        let decoder = if args.vae_hidden > 0 { args.vae_latent + 1 } else { 0 };
        let events = synthetic_events(n, args.events);
        let side_bytes = items.bytes_per_item() * n;
        // The browser's CPU rule: f16 once the f32 matrix passes 1 GiB.
        let precision = Precision::cpu(n, args.factors + args.item_rank + decoder + d);
        let scorer = Scorer::with_precision(items, Some(params), &device, precision)?;
        let matrix_bytes = scorer.matrix_bytes();
        let fold_in = best(args.repeat, || user_query(scorer.items(), scorer.params(), &events, &[]).map(|_| ()))?;
        let exclude: Vec<u32> = events.iter().map(|e| e.item).collect();
        let recommend = best(args.repeat, || {
            let query = user_query(scorer.items(), scorer.params(), &events, &[])?;
            let terms = scorer.terms(&[&query])?.remove(0);
            scorer.rank(&query, &terms, &RankOptions { k: 20, exclude: exclude.clone(), explain: true, ..Default::default() })?;
            Ok(())
        })?;
        // The plain baseline: one precomputed f32 query against [q | c | v | e] rows, top-20.
        let width = args.factors + args.item_rank + decoder + d;
        let flat: Vec<f32> = (0..n * width).map(|i| ((i * 2654435761) % 1000) as f32 / 1000.0 - 0.5).collect();
        let q: Vec<f32> = (0..width).map(|i| ((i * 40503) % 1000) as f32 / 1000.0 - 0.5).collect();
        let brute = best(args.repeat, || {
            let scores: Vec<f32> = flat.chunks_exact(width).map(|row| localrec::scorer::linalg::dot(row, &q)).collect();
            std::hint::black_box(top_k(&scores, 20, &exclude));
            Ok(())
        })?;
        let per_item = (side_bytes + matrix_bytes) as f64 / n as f64;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "items": n, "factors": args.factors, "item_rank": args.item_rank, "events": args.events,
                    "vae_hidden": args.vae_hidden, "vae_latent": if args.vae_hidden > 0 { args.vae_latent } else { 0 },
                    "fold_in_ms": fold_in, "fold_in_ms_per_event": fold_in / args.events as f64,
                    "recommend_ms": recommend, "brute_force_ms": brute, "ratio": recommend / brute,
                    "bytes_per_item": per_item, "matrix": format!("{precision:?}").to_lowercase(),
                })
            );
        } else {
            println!(
                "{n:>9} {fold_in:>12.3} {recommend:>14.2} {brute:>14.2} {:>10.2} {per_item:>12.0} {:>7}",
                recommend / brute,
                format!("{precision:?}").to_lowercase()
            );
        }
    }
    Ok(())
}

//! `localrec bench-scorer`: recommend() latency natively on synthetic catalogs of
//! several sizes (the browser figures come from bench/scorer/browser.mjs), fold-in time
//! per event, and memory per item, beside a plain brute-force dot-product top-k over the
//! same vectors.

use std::time::Instant;

use localrec::native::NativeBackend;
use localrec::scorer::metrics::top_k;
use localrec::scorer::model::{Blend, EventWeights, ItemSide, Matrix, PARAMS_VERSION, SHORT_PROFILE, ScorerParams};
use localrec::scorer::profile::{Event, user_query};
use localrec::scorer::rank::{RankOptions, Scorer};
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

/// A deterministic pseudo-random stream for the synthetic vectors.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }
}

fn synthetic(n: usize, k: usize, r: usize, d: usize) -> (ItemSide, ScorerParams) {
    let mut rng = Lcg(7);
    let record = k + 2 * r;
    let factors: Vec<f32> = (0..n * record).map(|_| rng.next() * 0.2).collect();
    let mut embeddings: Vec<f32> = (0..n * d).map(|_| rng.next()).collect();
    for row in embeddings.chunks_exact_mut(d) {
        localrec::scorer::model::normalize(row);
    }
    let bias: Vec<f32> = (0..n).map(|_| rng.next()).collect();
    let mut gram = vec![0.0f32; k * k];
    for row in factors.chunks_exact(record) {
        for a in 0..k {
            for b in 0..k {
                gram[a * k + b] += row[a] * row[b];
            }
        }
    }
    let params = ScorerParams {
        version: PARAMS_VERSION,
        als_dims: k,
        item_rank: r,
        reg: 100.0,
        alpha: 10.0,
        gram: Matrix { rows: k, cols: k, data: gram },
        blend: Blend { collaborative: 1.0, item_item: 0.5, semantic: 0.2, popularity: 0.05 },
        short_blend: None,
        short_profile: SHORT_PROFILE,
        text_map: None,
        event_weights: EventWeights::default(),
        half_life_days: 0.0,
    };
    (ItemSide { len: n, record_dims: record, factors, bias, embedding_dims: d, embeddings }, params)
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
            "{:>9} {:>12} {:>14} {:>14} {:>10} {:>12}",
            "items", "fold-in ms", "recommend ms", "brute ms", "ratio", "bytes/item"
        );
    }
    for &n in &args.items {
        if n < args.events.max(1) {
            return Err(Error::new(ErrorKind::Input, format!("{n} items is fewer than --events {}", args.events)));
        }
        let (items, params) = synthetic(n, args.factors, args.item_rank, d);
        let events: Vec<Event> =
            (0..args.events).map(|i| Event { item: (i * (n / args.events)) as u32, weight: 1.0, age_days: 0.0 }).collect();
        let side_bytes = (items.factors.len() + items.embeddings.len() + items.bias.len()) * 4;
        let scorer = Scorer::new(items, Some(params), &device)?;
        let matrix_bytes = n * (args.factors + args.item_rank + d) * 4;
        let fold_in = best(args.repeat, || user_query(scorer.items(), scorer.params(), &events, &[]).map(|_| ()))?;
        let exclude: Vec<u32> = events.iter().map(|e| e.item).collect();
        let recommend = best(args.repeat, || {
            let query = user_query(scorer.items(), scorer.params(), &events, &[])?;
            let terms = scorer.terms(&[&query])?.remove(0);
            scorer.rank(&query, &terms, &RankOptions { k: 20, exclude: exclude.clone(), explain: true, ..Default::default() })?;
            Ok(())
        })?;
        // The plain baseline: one precomputed f32 query against [q | c | e] rows, top-20.
        let width = args.factors + args.item_rank + d;
        let mut rng = Lcg(9);
        let flat: Vec<f32> = (0..n * width).map(|_| rng.next()).collect();
        let q: Vec<f32> = (0..width).map(|_| rng.next()).collect();
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
                    "fold_in_ms": fold_in, "fold_in_ms_per_event": fold_in / args.events as f64,
                    "recommend_ms": recommend, "brute_force_ms": brute, "ratio": recommend / brute,
                    "bytes_per_item": per_item,
                })
            );
        } else {
            println!(
                "{n:>9} {fold_in:>12.3} {recommend:>14.2} {brute:>14.2} {:>10.2} {per_item:>12.0}",
                recommend / brute
            );
        }
    }
    Ok(())
}

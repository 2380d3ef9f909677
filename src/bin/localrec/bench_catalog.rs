//! `localrec bench-catalog`: how fast a catalog's shards parse and verify natively, on
//! the browser loader's path (each shard streamed in chunks through a `ShardStream`,
//! hashed, parsed, then added to a `CatalogStore`). The files are read into memory
//! first, so the figure is the parser's and the hash's, not the disk's.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use localrec::catalog::{CatalogStore, MANIFEST_FILE, Manifest};
use localrec::{Error, ErrorKind, Result};

#[derive(clap::Args)]
pub struct BenchCatalogArgs {
    /// Catalog folder (manifest.json and its shards).
    catalog: PathBuf,
    /// Timed passes over the whole catalog; the fastest counts.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Bytes handed to a shard stream at a time, like a network response's chunks.
    #[arg(long, default_value_t = 64 << 10)]
    chunk: usize,
    /// Print the summary as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

struct Pass {
    total: Duration,
    first_shard: Duration,
}

/// One pass: manifest parsed, every shard streamed, verified and added.
fn load(manifest_bytes: &[u8], shards: &[Vec<u8>], chunk: usize) -> Result<Pass> {
    let start = Instant::now();
    let mut store = CatalogStore::new(Manifest::from_json(manifest_bytes)?);
    let mut first_shard = None;
    for (i, bytes) in shards.iter().enumerate() {
        let mut stream = store.stream(i)?;
        for piece in bytes.chunks(chunk) {
            stream.feed(piece)?;
        }
        store.add(stream.finish()?)?;
        first_shard.get_or_insert(start.elapsed());
    }
    let total = start.elapsed();
    if !store.is_complete() {
        return Err(Error::new(ErrorKind::Format, "the catalog did not load completely"));
    }
    Ok(Pass { total, first_shard: first_shard.unwrap_or(total) })
}

/// `localrec bench-catalog`.
pub fn bench_catalog(args: BenchCatalogArgs) -> Result<()> {
    if args.repeat == 0 || args.chunk == 0 {
        return Err(Error::new(ErrorKind::Input, "--repeat and --chunk must be at least 1"));
    }
    let manifest_path = args.catalog.join(MANIFEST_FILE);
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot read {}", path.display()), e))
    };
    let manifest_bytes = read(&manifest_path)?;
    let manifest = Manifest::from_json(&manifest_bytes).map_err(|e| e.context(manifest_path.display()))?;
    let read_start = Instant::now();
    let shards = manifest.shards.iter().map(|s| read(&args.catalog.join(&s.path))).collect::<Result<Vec<_>>>()?;
    let read_seconds = read_start.elapsed().as_secs_f64();
    let bytes: u64 = shards.iter().map(|s| s.len() as u64).sum();

    let mut passes = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        passes.push(load(&manifest_bytes, &shards, args.chunk).map_err(|e| e.context(args.catalog.display()))?);
    }
    let best = passes.iter().min_by_key(|p| p.total).map_or(0.0, |p| p.total.as_secs_f64());
    let first_shard = passes.iter().map(|p| p.first_shard).min().map_or(0.0, |d| d.as_secs_f64());
    let report = serde_json::json!({
        "catalog": args.catalog.display().to_string(),
        "items": manifest.items,
        "shards": manifest.shards.len(),
        "shard_bytes": bytes,
        "manifest_bytes": manifest_bytes.len(),
        "chunk_bytes": args.chunk,
        "read_seconds": read_seconds,
        "pass_seconds": passes.iter().map(|p| p.total.as_secs_f64()).collect::<Vec<_>>(),
        "best_seconds": best,
        "first_shard_seconds": first_shard,
        "mb_per_s": bytes as f64 / best / 1e6,
        "items_per_s": manifest.items as f64 / best,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{}: {} items, {} shards, {:.2} MB; parse+verify best of {}: {:.3} s = {:.0} MB/s, {:.0} items/s; first shard usable after {:.1} ms",
            args.catalog.display(),
            manifest.items,
            manifest.shards.len(),
            bytes as f64 / 1e6,
            args.repeat,
            best,
            bytes as f64 / best / 1e6,
            manifest.items as f64 / best,
            first_shard * 1e3,
        );
    }
    Ok(())
}

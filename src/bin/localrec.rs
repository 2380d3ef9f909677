//! `localrec`: the publisher's command-line tool.
//!
//! * `embed`: JSON lines of texts in, JSON lines of token ids and embeddings out.
//! * `export-web`: writes the browser copy of a model (f16 weights, manifest with SHA-256).
//! * `bench`: encoder throughput and peak memory per backend, as a table and JSON.
//! * `build`: items and interactions in, a catalog folder out (manifest, shards, model);
//!   `merge` joins a catalog built in parts (`build --part i/n`).
//! * `gc`: removes files a published catalog's manifest no longer names, after a grace period.
//! * `inspect`: verifies a catalog folder or URL and summarises it.
//! * `bench-catalog`: parse+verify throughput of a catalog folder, on the browser loader's path.
//! * `train`: (re)trains a built catalog's collaborative side from an interaction log.
//! * `bench-scorer`: recommend() latency natively, beside a brute-force top-k.
//! * `eval`: quality on a fixed split (PROTOCOL.md): popularity, collaborative, semantic, hybrid.

// Beside this file rather than in src/bin/, where cargo would take them for binaries.
#[path = "localrec/bench_catalog.rs"]
mod bench_catalog;
#[path = "localrec/bench_scorer.rs"]
mod bench_scorer;
#[path = "localrec/catalog.rs"]
mod catalog;
#[path = "localrec/columns.rs"]
mod columns;
#[path = "localrec/cross_domain.rs"]
mod cross_domain;
#[path = "localrec/eval.rs"]
mod eval;
#[path = "localrec/gc.rs"]
mod gc;
#[path = "localrec/inspect.rs"]
mod inspect;
#[path = "localrec/progress.rs"]
mod progress;
#[path = "localrec/spark.rs"]
mod spark;
#[path = "localrec/train.rs"]
mod train;
#[path = "localrec/tuning.rs"]
mod tuning;

use std::io::{BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use localrec::encoder::web::export_web;
use localrec::native::{DEFAULT_MODEL_DIR, NativeBackend, read_model_dir};
use localrec::{Encoder, Error, ErrorKind, Result};
use serde::Deserialize;


#[derive(Parser)]
#[command(name = "localrec", version, about = "Build, inspect and benchmark localrec catalogs and models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read JSON lines {"text": ...} on stdin, write {"text", "input_ids", "embedding"} lines on stdout
    /// (with --items: an items file in, {"id", "embedding"} lines out).
    Embed {
        /// Model folder (config.json, tokenizer.json, model.safetensors).
        #[arg(long, default_value = DEFAULT_MODEL_DIR)]
        model: PathBuf,
        /// Compute backend: cpu (burn Flex) or wgpu.
        #[arg(long, default_value = "cpu")]
        backend: NativeBackend,
        /// Texts per model call.
        #[arg(long, default_value_t = localrec::DEFAULT_BATCH_SIZE)]
        batch: usize,
        /// Read stdin as an items file (JSON lines, or CSV with its header, as `build
        /// --items` reads them) and embed each item's text exactly as `build` does: what a
        /// Spark executor pipes a partition through for `build --embeddings`.
        #[arg(long)]
        items: bool,
        #[command(flatten)]
        columns: columns::ItemColumnArgs,
    },
    /// Write the web copy of a model: config, tokenizer, f16 weights under localrec's names, manifest.json.
    ExportWeb {
        /// Source model folder.
        #[arg(long, default_value = DEFAULT_MODEL_DIR)]
        model: PathBuf,
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Model name recorded in the manifest (default: the source folder's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Benchmark the encoder: sentences/s per batch size and backend, peak memory.
    Bench {
        /// Model folder.
        #[arg(long, default_value = DEFAULT_MODEL_DIR)]
        model: PathBuf,
        /// Backends to measure, comma-separated.
        #[arg(long, default_value = "cpu,wgpu", value_delimiter = ',')]
        backends: Vec<NativeBackend>,
        /// Seconds to spend on each measurement (at least one batch runs).
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Also write the JSON report to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Internal: measure one backend in this process and print its JSON.
        #[arg(long, hide = true)]
        child: bool,
    },
    /// Build a catalog: items (and interactions) in; manifest.json, shards/ and model/ out.
    Build(catalog::BuildArgs),
    /// Write the manifest of a catalog built in parts (`build --part i/n`) once every part is done.
    Merge(catalog::MergeArgs),
    /// Remove the files of a catalog folder that its manifest no longer names (earlier versions' shards) once the manifest is older than --grace.
    Gc(gc::GcArgs),
    /// Verify a catalog (folder or http(s) URL): every shard and model file against the manifest.
    Inspect(inspect::InspectArgs),
    /// Time parsing and verifying a catalog folder's shards (in memory, best of --repeat).
    BenchCatalog(bench_catalog::BenchCatalogArgs),
    /// Train (or retrain) a built catalog's collaborative side from an interaction log; rewrites its shards.
    Train(train::TrainArgs),
    /// Time recommend() natively on synthetic catalogs beside a brute-force top-k.
    BenchScorer(bench_scorer::BenchScorerArgs),
    /// Evaluate the scorer on a fixed split (train, validation and test users; cold items), or across two domains (--cross-domain).
    Eval(eval::EvalArgs),
    /// Split an items file into two domains (a.jsonl, b.jsonl) as `eval --cross-domain` does: the items of two catalogs of one site.
    Domains(cross_domain::DomainsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed { model, backend, batch, items, columns } => {
            embed(&model, backend, batch, items.then_some(&columns))
        }
        Command::ExportWeb { model, out, name } => export(&model, &out, name),
        Command::Bench { model, backends, seconds, json, child } => bench(&model, &backends, seconds, json, child),
        Command::Build(args) => catalog::build(args),
        Command::Merge(args) => catalog::merge(args),
        Command::Gc(args) => gc::gc(args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::BenchCatalog(args) => bench_catalog::bench_catalog(args),
        Command::Eval(args) => match args.cross_domain.clone() {
            Some(split) => cross_domain::eval(&args, &split),
            None => eval::eval(args),
        },
        Command::Domains(args) => cross_domain::domains(args),
        Command::Train(args) => train::train(args),
        Command::BenchScorer(args) => bench_scorer::bench_scorer(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("localrec: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn load_encoder(model: &Path, backend: NativeBackend) -> Result<Encoder> {
    let files = read_model_dir(model)?;
    let device = backend.device()?;
    Encoder::load(&files, &device)
}

#[derive(Deserialize)]
struct EmbedInput {
    text: String,
}

/// Reads every input line before encoding, so bad input fails before any output is written.
fn read_texts(input: impl Read) -> Result<Vec<String>> {
    let mut texts = Vec::new();
    let mut reader = std::io::BufReader::new(input);
    let mut raw = Vec::new();
    let mut line_no = 0usize;
    loop {
        raw.clear();
        let n = reader
            .read_until(b'\n', &mut raw)
            .map_err(|e| Error::with_source(ErrorKind::Io, "cannot read standard input", e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let line = std::str::from_utf8(&raw)
            .map_err(|e| Error::with_source(ErrorKind::Input, format!("line {line_no}: not valid utf-8"), e))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: EmbedInput = serde_json::from_str(line).map_err(|e| {
            Error::with_source(
                ErrorKind::Input,
                format!("line {line_no}: expected a json object with a string \"text\""),
                e,
            )
        })?;
        texts.push(parsed.text);
    }
    Ok(texts)
}

/// `localrec embed`; `items`: read stdin as an items file with these columns.
fn embed(model: &Path, backend: NativeBackend, batch: usize, items: Option<&columns::ItemColumnArgs>) -> Result<()> {
    if batch == 0 {
        return Err(Error::new(ErrorKind::Input, "--batch must be at least 1"));
    }
    // With --items, each output line carries the item's id instead of its text.
    let (texts, item_ids) = if let Some(columns) = items {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::with_source(ErrorKind::Io, "cannot read standard input", e))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let parsed = columns.parse(&bytes, "stdin")?;
        (parsed.iter().map(|it| it.encoder_text()).collect(), Some(parsed.into_iter().map(|it| it.id).collect::<Vec<_>>()))
    } else {
        (read_texts(std::io::stdin().lock())?, None)
    };
    if texts.is_empty() {
        return Ok(());
    }
    let encoder = load_encoder(model, backend)?;
    let mut ids = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        ids.push(encoder.tokenizer().encode(text).map_err(|e| e.context(format!("text {}", i + 1)))?);
    }

    let mut progress = progress::Progress::new("embedding", "texts", texts.len() as u64);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    // Chunks bound memory and let the progress bar move; within a chunk the encoder
    // groups texts by length.
    let chunk = batch.max(1) * 8;
    for (start, chunk_ids) in (0..ids.len()).step_by(chunk).zip(ids.chunks(chunk)) {
        let vectors = encoder.embed_tokens(chunk_ids, batch)?;
        for (k, row) in vectors.rows().enumerate() {
            let record = match &item_ids {
                Some(ids) => serde_json::json!({"id": ids[start + k], "embedding": row}),
                None => serde_json::json!({
                    "text": texts[start + k],
                    "input_ids": chunk_ids[k],
                    "embedding": row,
                }),
            };
            serde_json::to_writer(&mut out, &record)
                .map_err(|e| Error::with_source(ErrorKind::Io, "cannot write standard output", e))?;
            out.write_all(b"\n").map_err(|e| Error::with_source(ErrorKind::Io, "cannot write standard output", e))?;
        }
        progress.inc(chunk_ids.len() as u64);
    }
    progress.finish();
    out.flush().map_err(|e| Error::with_source(ErrorKind::Io, "cannot write standard output", e))
}

fn export(model: &Path, out: &Path, name: Option<String>) -> Result<()> {
    let files = read_model_dir(model)?;
    let name = name.unwrap_or_else(|| {
        model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
    });
    let web = export_web(&files, &name)?;
    std::fs::create_dir_all(out)
        .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot create {}", out.display()), e))?;
    for file in &web {
        let path = out.join(&file.path);
        // Write then rename, so an interrupted export never leaves a half file that
        // looks complete.
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, &file.bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot write {}", path.display()), e))?;
        eprintln!("wrote {} ({} bytes)", path.display(), file.bytes.len());
    }
    Ok(())
}

mod bench_data {
    /// Short item texts like the catalog's, "Title (Year). Genres: A, B": about 20 tokens.
    pub fn item_texts() -> Vec<String> {
        include_str!("../../data/ml-latest-small/movies.csv")
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (rest, genres) = line.rsplit_once(',')?;
                let (_, title) = rest.split_once(',')?;
                let title = title.trim_matches('"').replace("\"\"", "\"");
                Some(format!("{title}. Genres: {}", genres.replace('|', ", ")))
            })
            .collect()
    }
}

/// Short item texts per second a tuned matrix kernel would allow on the reference 2-core
/// machine (0.4 GFLOP per item at about 190-210 GFLOP/s).
const CPU_CEILING_SHORT_PER_S: f64 = 450.0;

/// Multiply-adds of one sequence of `tokens` through MiniLM-shaped layers, times two.
fn flops_per_sequence(config: &localrec::BertConfig, tokens: usize) -> f64 {
    let (h, i, t) = (config.hidden_size as f64, config.intermediate_size as f64, tokens as f64);
    let dense = 2.0 * t * (4.0 * h * h + 2.0 * h * i);
    let attention = 2.0 * 2.0 * t * t * h;
    config.num_layers as f64 * (dense + attention)
}

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn bench_one(model: &Path, backend: NativeBackend, seconds: f64) -> Result<serde_json::Value> {
    let load_start = Instant::now();
    let encoder = load_encoder(model, backend)?;
    let load_s = load_start.elapsed().as_secs_f64();
    let items = bench_data::item_texts();
    let short: Vec<Vec<u32>> = items.iter().take(512).map(|t| encoder.tokenizer().encode(t)).collect::<Result<_>>()?;
    let long_text = items.join(" ");
    let long_ids = encoder.tokenizer().encode(&long_text)?;
    let mut rows = Vec::new();
    let workloads: Vec<(&str, usize)> = vec![("short", 1), ("short", 8), ("short", 32), ("short", 128), ("long256", 8)];
    for (kind, batch) in workloads {
        let mut sentences = 0usize;
        let mut tokens = 0usize;
        let mut flops = 0.0;
        let mut offset = 0usize;
        let make_batch = |offset: usize| -> Vec<Vec<u32>> {
            if kind == "short" {
                (0..batch).map(|k| short[(offset + k) % short.len()].clone()).collect()
            } else {
                vec![long_ids.clone(); batch]
            }
        };
        // Warm-up: first-call costs (kernel compilation on wgpu, allocations) are not throughput.
        encoder.embed_tokens(&make_batch(0), batch)?;
        let start = Instant::now();
        while sentences == 0 || start.elapsed().as_secs_f64() < seconds {
            let seqs = make_batch(offset);
            offset += batch;
            encoder.embed_tokens(&seqs, batch)?;
            sentences += seqs.len();
            tokens += seqs.iter().map(Vec::len).sum::<usize>();
            // Useful work only: padding the encoder adds is not counted.
            flops += seqs.iter().map(|s| flops_per_sequence(encoder.config(), s.len())).sum::<f64>();
        }
        let elapsed = start.elapsed().as_secs_f64();
        let per_s = sentences as f64 / elapsed;
        rows.push(serde_json::json!({
            "share_of_cpu_ceiling": (kind == "short" && backend == NativeBackend::Cpu)
                .then(|| per_s / CPU_CEILING_SHORT_PER_S),
            "workload": kind,
            "batch": batch,
            "sentences": sentences,
            "mean_tokens": tokens as f64 / sentences as f64,
            "seconds": elapsed,
            "sentences_per_s": per_s,
            "gflop_per_s": flops / elapsed / 1e9,
        }));
    }
    Ok(serde_json::json!({
        "backend": backend.name(),
        "load_seconds": load_s,
        "peak_rss_bytes": peak_rss_bytes(),
        "results": rows,
    }))
}

fn bench(model: &Path, backends: &[NativeBackend], seconds: f64, json: Option<PathBuf>, child: bool) -> Result<()> {
    if child {
        let backend = *backends.first().ok_or_else(|| Error::new(ErrorKind::Input, "no backend given"))?;
        println!("{}", bench_one(model, backend, seconds)?);
        return Ok(());
    }
    // One process per backend, so each one's peak memory is its own.
    let exe =
        std::env::current_exe().map_err(|e| Error::with_source(ErrorKind::Io, "cannot find own executable", e))?;
    let mut reports = Vec::new();
    for backend in backends {
        eprintln!("benchmarking the encoder on {} ...", backend.name());
        let output = std::process::Command::new(&exe)
            .args(["bench", "--child", "--backends", backend.name(), "--seconds", &seconds.to_string()])
            .arg("--model")
            .arg(model)
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| Error::with_source(ErrorKind::Io, "cannot start the benchmark process", e))?;
        if !output.status.success() {
            eprintln!("localrec: {} backend skipped: its benchmark failed", backend.name());
            reports.push(serde_json::json!({"backend": backend.name(), "error": "benchmark failed; see stderr"}));
            continue;
        }
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| Error::with_source(ErrorKind::Io, "benchmark process printed no json", e))?;
        reports.push(report);
    }
    let host = serde_json::json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    });
    let full = serde_json::json!({"encoder_bench": reports, "host": host});

    println!(
        "{:<8} {:<8} {:>5} {:>8} {:>12} {:>10} {:>9}",
        "backend", "texts", "batch", "tokens", "sentences/s", "GFLOP/s", "ceiling"
    );
    for report in &reports {
        let backend = report["backend"].as_str().unwrap_or("?");
        for row in report["results"].as_array().into_iter().flatten() {
            let ceiling = row["share_of_cpu_ceiling"].as_f64().map(|f| format!("{:.0}%", f * 100.0));
            println!(
                "{:<8} {:<8} {:>5} {:>8.1} {:>12.1} {:>10.1} {:>9}",
                backend,
                row["workload"].as_str().unwrap_or("?"),
                row["batch"],
                row["mean_tokens"].as_f64().unwrap_or(0.0),
                row["sentences_per_s"].as_f64().unwrap_or(0.0),
                row["gflop_per_s"].as_f64().unwrap_or(0.0),
                ceiling.as_deref().unwrap_or("-"),
            );
        }
        if let Some(peak) = report["peak_rss_bytes"].as_u64() {
            println!(
                "{:<8} peak memory {:.0} MiB, model load {:.2} s",
                backend,
                peak as f64 / 1048576.0,
                report["load_seconds"].as_f64().unwrap_or(0.0)
            );
        }
    }
    let text =
        serde_json::to_string_pretty(&full).map_err(|e| Error::with_source(ErrorKind::Io, "cannot format json", e))?;
    println!("{text}");
    if let Some(path) = json {
        std::fs::write(&path, text + "\n")
            .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot write {}", path.display()), e))?;
    }
    Ok(())
}

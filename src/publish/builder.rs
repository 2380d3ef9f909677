//! The publisher's pipeline: items (and an interaction log) in, a catalog out through a
//! [`Sink`]. [`Builder`] owns the shard plan, the checkpoint chunks an interrupted build
//! resumes from (`--stop-after`), parts (`--part i/n`), training the collaborative side,
//! the record layout, and the order of writes: shards under temporary names renamed
//! together, the model, the manifest last. [`merge`] joins a catalog built in parts;
//! [`read_catalog`] and [`retrain`] are `localrec train`'s read and rewrite.
//!
//! The pure pieces (plans, chunk bytes, shard bytes, part files) are
//! `catalog::build`; here they are put in order. The caller reads the inputs and
//! implements the sink and the progress.

use std::ops::Range;

use super::collaborative::{Training, log_extras, train_side};
use super::progress::PublishProgress;
use super::sink::Sink;
use crate::catalog::build::{
    self, CatalogHead, CollaborativeSide, FieldHasher, PARTS_DIR, Part, PartFile, hex,
};
use crate::catalog::input::{Interactions, SourceItem};
use crate::catalog::shard::MAX_RECORD_BYTES;
use crate::catalog::{CatalogEncoder, CatalogItem, MANIFEST_FILE, Manifest, QuantizedRow, ShardEntry, parse_shard, write_shard};
use crate::encoder::ModelFiles;
use crate::encoder::web::{self, FileEntry, ModelManifest, WebFile, sha256_hex};
use crate::error::{Error, ErrorKind, Result};
use crate::scorer::fit::Tuning;
use crate::scorer::train::LogExtras;
use crate::Encoder;

/// Folder (under the output) of build state that is not part of the catalog.
pub const BUILD_DIR: &str = ".build";
/// Prefix of checkpoint folders in [`BUILD_DIR`]; the rest is the build's key.
const CHECKPOINT_PREFIX: &str = "embeddings-";
/// Model folder inside a catalog.
pub const MODEL_DIR: &str = "model";

fn input_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Input, message)
}

/// The model a catalog is built with: its files (for the checkpoint key), its web copy
/// (written into the catalog), and the encoder loaded from it.
pub struct Model<'a> {
    /// The files as read.
    pub files: &'a ModelFiles,
    /// The web copy's files, its manifest among them.
    pub web_files: &'a [WebFile],
    /// The web copy's manifest.
    pub web_manifest: &'a ModelManifest,
    /// The loaded encoder.
    pub encoder: &'a Encoder,
    /// The backend's name: it decides the embeddings' bits, so it is in the checkpoint key.
    pub backend: &'a str,
}

/// What a build makes, besides its inputs.
pub struct BuildOptions {
    /// The manifest's `name`.
    pub name: String,
    /// Target size of a shard.
    pub shard_bytes: u64,
    /// Only this part of the catalog (no training, a part file instead of the manifest).
    pub part: Option<Part>,
    /// Texts per model call; a checkpoint chunk is 8 calls.
    pub batch: usize,
    /// Testing: stop with an error once this many items were encoded (checkpoint kept).
    pub stop_after: Option<usize>,
    /// Train the collaborative side from the interactions.
    pub training: Option<Training>,
}

/// What a build wrote.
pub struct BuildReport {
    /// The manifest's fields other than its shards.
    pub head: CatalogHead,
    /// Shards in the whole catalog's plan.
    pub plan_shards: usize,
    /// The shards written: (index in the plan, entry).
    pub shards: Vec<(usize, ShardEntry)>,
    /// Items in those shards.
    pub items: usize,
    /// Items encoded by this run.
    pub encoded: usize,
    /// Items read back from the checkpoint.
    pub reused: usize,
    /// Whether the manifest was written (not for a part).
    pub manifest: bool,
    /// The trained side, if any.
    pub collaborative: Option<CollaborativeSide>,
    /// The tuner's and the held-out evaluation's report, if it ran.
    pub tuning: Option<Tuning>,
}

/// A checked build, ready to run: the plan is cut, nothing is written yet.
pub struct Builder<'a> {
    items: &'a [SourceItem],
    items_name: &'a str,
    interactions: Option<&'a Interactions>,
    /// What the log says besides positives, when the build trains.
    extras: Option<LogExtras>,
    model: Model<'a>,
    options: BuildOptions,
    /// Embeddings computed elsewhere (`--embeddings`), quantized; then nothing is encoded.
    imported: Option<Vec<QuantizedRow>>,
    sequences: Vec<Vec<u32>>,
    plan: Vec<Range<usize>>,
    /// Digest of what decides the embeddings' bits.
    key: [u8; 32],
    /// Digest of the inputs, for the part file.
    inputs: [u8; 32],
    encoder_id: CatalogEncoder,
}

impl<'a> Builder<'a> {
    /// Checks the options against the inputs (every record must fit a shard) and cuts the
    /// shard plan. `interactions_sha256` is the log file's digest ("" without one): parts
    /// of builds from different logs never merge.
    pub fn new(
        items: &'a [SourceItem],
        items_name: &'a str,
        interactions: Option<(&'a Interactions, &str)>,
        model: Model<'a>,
        imported: Option<Vec<QuantizedRow>>,
        options: BuildOptions,
    ) -> Result<Builder<'a>> {
        if options.batch == 0 {
            return Err(input_error("--batch must be at least 1"));
        }
        if options.shard_bytes == 0 {
            return Err(input_error("--shard-bytes must be at least 1"));
        }
        if options.part.is_some() && options.training.is_some() {
            return Err(input_error(
                "training the collaborative side needs the whole catalog: build without --part, or pass --no-train",
            ));
        }
        if imported.as_ref().is_some_and(|rows| rows.len() != items.len()) {
            return Err(input_error("the imported embeddings do not match the items"));
        }
        let encoder_id = catalog_encoder(model.web_files, model.web_manifest)?;
        let dims = model.encoder.dims();
        let sequences = match imported {
            Some(_) => Vec::new(),
            None => items
                .iter()
                .map(|it| {
                    model
                        .encoder
                        .tokenizer()
                        .encode(&it.encoder_text())
                        .map_err(|e| e.context(format!("{items_name}:{}: item {:?}", it.line, it.id)))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let extras = match (&options.training, interactions) {
            (Some(_), Some((log, _))) => Some(log_extras(log)),
            _ => None,
        };
        // Records: [q | a | c], a lift per scenario, the rating head's bias when rated.
        let factor_dims = match (&options.training, &extras) {
            // The tuner chooses `k + 2r` within the budget: shards are cut for the widest; an
            // imported ALS width is what it is.
            (Some(t), Some(e)) => {
                let widest = t.max_record_dims.max(t.config.imported.as_ref().map_or(0, |f| f.factors));
                widest.saturating_add(e.scenario_names.len()).saturating_add(usize::from(e.has_ratings()))
            }
            _ => 0,
        };
        let has_bias = extras.is_some();
        let lens = build::record_lens(items, dims, factor_dims, has_bias);
        if let Some((item, len)) = items.iter().zip(&lens).find(|(_, len)| **len - 4 > MAX_RECORD_BYTES) {
            return Err(input_error(format!(
                "{items_name}:{}: item {:?} needs a {len}-byte record; at most {MAX_RECORD_BYTES} fit",
                item.line, item.id
            )));
        }
        let plan = build::plan_shards(&lens, options.shard_bytes)?;
        let (key, inputs) = digests(items, &model, &options, &plan, interactions.map_or("", |(_, digest)| digest));
        Ok(Builder {
            items,
            items_name,
            interactions: interactions.map(|(log, _)| log),
            extras,
            model,
            options,
            imported,
            sequences,
            plan,
            key,
            inputs,
            encoder_id,
        })
    }

    /// Encodes (resuming from the checkpoint), trains, and writes the catalog or the part
    /// through `sink`: shards, the model, then the manifest (or the part file).
    pub fn run(self, sink: &mut dyn Sink, progress: &mut dyn PublishProgress) -> Result<BuildReport> {
        let dims = self.model.encoder.dims();
        let our_shards = self.options.part.map_or(0..self.plan.len(), |p| build::part_shards(&self.plan, p));
        let checkpoint = format!("{BUILD_DIR}/{CHECKPOINT_PREFIX}{}", hex(&self.key).get(..16).unwrap_or_default());
        let chunks = build::checkpoint_chunks(&self.plan[our_shards.clone()], chunk_size(self.options.batch));

        // 1. Encode, resuming from the checkpoint (unless the embeddings were imported).
        // Only now is the output created.
        self.open_checkpoint(&checkpoint, sink)?;
        let encoded = match &self.imported {
            Some(rows) => Encoded { base: 0, rows: rows.clone(), encoded: 0, reused: 0 },
            None => self.encode(&chunks, &checkpoint, sink, progress)?,
        };

        // 2. Train the collaborative side on the embeddings as the browser will see them.
        let (collaborative, tuning) = match (&self.options.training, self.interactions, &self.extras) {
            (Some(t), Some(log), Some(extras)) => {
                let (side, tuning) = train_side(t, log, extras, &encoded.rows, dims, progress)?;
                (Some(side), tuning)
            }
            _ => (None, None),
        };
        let head = CatalogHead {
            name: self.options.name.clone(),
            items: self.items.len() as u64,
            encoder: self.encoder_id.clone(),
            collaborative: collaborative.as_ref().map(|c| c.manifest.clone()),
            scenarios: collaborative.as_ref().map(|c| c.scenarios.clone()).unwrap_or_default(),
        };

        // 3. Shards under temporary names, then renamed together; the model; the manifest last.
        let mut entries = Vec::new();
        for s in our_shards {
            let range = self.plan[s].clone();
            let rows = encoded
                .rows
                .get(range.start - encoded.base..range.end - encoded.base)
                .ok_or_else(|| Error::new(ErrorKind::Format, "shard items and embeddings do not line up"))?;
            let bytes = build::shard_bytes(self.items, range.clone(), rows, dims, collaborative.as_ref())?;
            let sha256 = sha256_hex(&bytes);
            let path = build::shard_path(s, &sha256);
            sink.stage(&path, &bytes)?;
            entries.push((s, ShardEntry { path, bytes: bytes.len() as u64, items: range.len() as u64, sha256 }));
        }
        sink.commit()?;
        for file in self.model.web_files {
            sink.write(&format!("{MODEL_DIR}/{}", file.path), &file.bytes)?;
        }
        self.seal(&head, &entries, &chunks, &checkpoint, sink)?;
        Ok(BuildReport {
            head,
            plan_shards: self.plan.len(),
            shards: entries,
            items: encoded.rows.len(),
            encoded: encoded.encoded,
            reused: encoded.reused,
            manifest: self.options.part.is_none(),
            collaborative,
            tuning,
        })
    }

    /// Creates this build's checkpoint folder (unless nothing is encoded) and, for a whole
    /// build, removes the checkpoints of other inputs, which are stale. (Parts leave them:
    /// parts of one build may run side by side in one folder.)
    fn open_checkpoint(&self, checkpoint: &str, sink: &mut dyn Sink) -> Result<()> {
        if self.imported.is_none() {
            sink.create_dir(checkpoint)?;
        }
        if self.options.part.is_none() {
            for name in sink.list(BUILD_DIR)? {
                let path = format!("{BUILD_DIR}/{name}");
                if path != checkpoint && name.starts_with(CHECKPOINT_PREFIX) {
                    sink.remove_dir(&path)?;
                }
            }
        }
        Ok(())
    }

    /// The last write: the manifest of a whole build (then its build state goes), or a
    /// part's file for `merge` (then the chunks now in its shards go).
    fn seal(
        &self,
        head: &CatalogHead,
        entries: &[(usize, ShardEntry)],
        chunks: &[Range<usize>],
        checkpoint: &str,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        let Some(part) = self.options.part else {
            let manifest = head.manifest(entries.iter().map(|(_, e)| e.clone()).collect())?;
            // Last: visitors mid-load keep the old manifest's shards, which stay beside
            // the new ones until `localrec gc`.
            sink.write(MANIFEST_FILE, &manifest.to_json()?)?;
            return sink.remove_dir(BUILD_DIR);
        };
        let record = PartFile {
            format: build::PART_FORMAT.into(),
            version: 1,
            part: part.index,
            parts: part.count,
            inputs_sha256: hex(&self.inputs),
            shard_count: self.plan.len(),
            head: head.clone(),
            shards: entries.to_vec(),
        };
        let json = serde_json::to_vec_pretty(&record)
            .map_err(|e| Error::with_source(ErrorKind::Format, "cannot write the part file", e))?;
        sink.write(&format!("{PARTS_DIR}/{}", part.file_name()), &json)?;
        // Other parts may still need their chunks.
        for chunk in chunks {
            sink.tidy(&chunk_path(checkpoint, chunk));
        }
        sink.tidy(checkpoint);
        sink.tidy(BUILD_DIR);
        Ok(())
    }

    fn quantize(&self, i: usize, embedding: &[f32]) -> Result<QuantizedRow> {
        let item = &self.items[i];
        build::quantize_checked(embedding, || format!("{}:{}: item {:?}", self.items_name, item.line, item.id))
    }

    /// Loads intact checkpoint chunks, encodes the others (writing each as it is done),
    /// and quantizes every row.
    fn encode(
        &self,
        chunks: &[Range<usize>],
        checkpoint: &str,
        sink: &mut dyn Sink,
        progress: &mut dyn PublishProgress,
    ) -> Result<Encoded> {
        let base = chunks.first().map_or(0, |c| c.start);
        let dims = self.model.encoder.dims();
        let mut rows: Vec<Option<QuantizedRow>> = vec![None; chunks.last().map_or(0, |c| c.end) - base];
        let mut todo = Vec::new();
        let mut reused = 0;
        for chunk in chunks {
            let saved = sink.read(&chunk_path(checkpoint, chunk)).ok();
            match saved.and_then(|b| build::decode_chunk(&b, &self.key, chunk, dims)) {
                Some(data) => {
                    for (i, e) in chunk.clone().zip(data.chunks_exact(dims)) {
                        rows[i - base] = Some(self.quantize(i, e)?);
                    }
                    reused += chunk.len();
                }
                None => todo.push(chunk.clone()),
            }
        }
        let total: usize = todo.iter().map(|c| c.len()).sum();
        if reused > 0 {
            progress.note(&format!("resuming: {reused} items from the checkpoint, {total} to encode"));
        }
        progress.start("encoding", "items", total as u64);
        let mut encoded = 0;
        for chunk in todo {
            let embeddings = self.model.encoder.embed_tokens(&self.sequences[chunk.clone()], self.options.batch)?;
            sink.write(&chunk_path(checkpoint, &chunk), &build::encode_chunk(&self.key, chunk.start, dims, &embeddings.data))?;
            for (i, e) in chunk.clone().zip(embeddings.rows()) {
                rows[i - base] = Some(self.quantize(i, e)?);
            }
            encoded += chunk.len();
            progress.advance(chunk.len() as u64);
            if self.options.stop_after.is_some_and(|n| encoded >= n) {
                progress.finish();
                return Err(input_error(format!(
                    "stopped after encoding {encoded} items (--stop-after); the checkpoint is kept: run the same command again to resume"
                )));
            }
        }
        progress.finish();
        let rows = rows
            .into_iter()
            .map(|r| r.ok_or_else(|| Error::new(ErrorKind::Backend, "an item was not encoded")))
            .collect::<Result<_>>()?;
        Ok(Encoded { base, rows, encoded, reused })
    }
}

/// The checkpoint key (what decides the embeddings' bits: texts, model, backend, and the
/// groups the encoder sees: shard plan, chunk size, batch size) and the inputs' digest
/// (items, model, interactions, shard size: parts of different builds never merge).
fn digests(
    items: &[SourceItem],
    model: &Model<'_>,
    options: &BuildOptions,
    plan: &[Range<usize>],
    interactions_sha256: &str,
) -> ([u8; 32], [u8; 32]) {
    let model_digest = {
        let files = model.files;
        let mut h = FieldHasher::new("localrec model files");
        h.field(&files.config)
            .field(&files.tokenizer)
            .field(&files.weights)
            .field(files.sentence_config.as_deref().unwrap_or(b""));
        h.finish()
    };
    let mut key = FieldHasher::new("localrec build checkpoint v1");
    key.items(items).field(&model_digest).field(model.backend.as_bytes());
    key.field(&(options.batch as u64).to_le_bytes()).field(&(chunk_size(options.batch) as u64).to_le_bytes());
    for shard in plan {
        key.field(&(shard.start as u64).to_le_bytes()).field(&(shard.end as u64).to_le_bytes());
    }
    let mut inputs = FieldHasher::new("localrec build inputs v1");
    inputs
        .items(items)
        .field(&model_digest)
        .field(interactions_sha256.as_bytes())
        .field(&options.shard_bytes.to_le_bytes());
    (key.finish(), inputs.finish())
}

/// Embeddings of the items a build writes, quantized and checked.
struct Encoded {
    /// Catalog index of `rows[0]`.
    base: usize,
    rows: Vec<QuantizedRow>,
    encoded: usize,
    reused: usize,
}

/// Items per checkpoint chunk: 8 model calls.
fn chunk_size(batch: usize) -> usize {
    batch.saturating_mul(8)
}

fn chunk_path(checkpoint: &str, range: &Range<usize>) -> String {
    format!("{checkpoint}/{:09}-{:09}.bin", range.start, range.end)
}

/// The catalog's record of its encoder, from the web copy.
fn catalog_encoder(web_files: &[WebFile], manifest: &ModelManifest) -> Result<CatalogEncoder> {
    let weights = web_files
        .iter()
        .find(|f| f.path == "model.safetensors")
        .ok_or_else(|| Error::new(ErrorKind::Weights, "the web copy of the model has no model.safetensors"))?;
    Ok(CatalogEncoder {
        name: manifest.encoder.name.clone(),
        dims: manifest.encoder.dims,
        pooling: manifest.encoder.pooling.clone(),
        normalized: true,
        max_seq_length: manifest.encoder.max_seq_length,
        source_weights_sha256: manifest.encoder.source_weights_sha256.clone(),
        weights_sha256: sha256_hex(&weights.bytes),
        model: format!("{MODEL_DIR}/"),
        files: web_files
            .iter()
            .filter(|f| f.path != web::MANIFEST_FILE)
            .map(|f| FileEntry { path: f.path.clone(), bytes: f.bytes.len() as u64, sha256: sha256_hex(&f.bytes) })
            .collect(),
    })
}

/// Joins the parts of a catalog built with `--part i/n` once every part is done: checks
/// that their shards and the model are still what the parts wrote, writes the manifest,
/// and removes the part files and the build state.
pub fn merge(sink: &mut dyn Sink, progress: &mut dyn PublishProgress) -> Result<Manifest> {
    let mut names: Vec<String> =
        sink.list(PARTS_DIR)?.into_iter().filter(|n| n.starts_with("part-") && n.ends_with(".json")).collect();
    names.sort();
    let mut parts = Vec::new();
    for name in names {
        let path = format!("{PARTS_DIR}/{name}");
        let bytes = sink.read(&path)?;
        let part: PartFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::with_source(ErrorKind::Format, format!("{path} is not a part file"), e))?;
        parts.push(part);
    }
    let manifest = build::merge_parts(&parts)?;
    // The parts' files must still be what the parts wrote.
    progress.start("verifying", "shards", manifest.shards.len() as u64);
    for (i, shard) in manifest.shards.iter().enumerate() {
        let bytes = sink.read(&shard.path).map_err(|e| e.context(format!("shard {i} ({})", shard.path)))?;
        if bytes.len() as u64 != shard.bytes || sha256_hex(&bytes) != shard.sha256 {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("shard {i} ({}) changed since its part was built (size or sha256 differ)", shard.path),
            ));
        }
        progress.advance(1);
    }
    progress.finish();
    let weights = format!("{MODEL_DIR}/model.safetensors");
    if sha256_hex(&sink.read(&weights)?) != manifest.encoder.weights_sha256 {
        return Err(Error::new(ErrorKind::Integrity, format!("{weights} is not the model the parts were built with")));
    }
    sink.write(MANIFEST_FILE, &manifest.to_json()?)?;
    sink.remove_dir(PARTS_DIR)?;
    sink.remove_dir(BUILD_DIR)?;
    Ok(manifest)
}

/// A built catalog read back for retraining: its manifest and every item, each shard
/// checked against the manifest first.
pub fn read_catalog(sink: &mut dyn Sink) -> Result<(Manifest, Vec<CatalogItem>)> {
    let manifest = Manifest::from_json(&sink.read(MANIFEST_FILE)?)?;
    let mut items: Vec<CatalogItem> = Vec::new();
    for (i, shard) in manifest.shards.iter().enumerate() {
        let bytes = sink.read(&shard.path)?;
        if bytes.len() as u64 != shard.bytes || sha256_hex(&bytes) != shard.sha256 {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("{}: does not match the manifest; rebuild the catalog", shard.path),
            ));
        }
        let Some(expect) = manifest.expectation(i) else {
            return Err(Error::new(ErrorKind::Format, format!("the manifest has no shard {i}")));
        };
        items.extend(parse_shard(&bytes, expect).map_err(|e| e.context(&shard.path))?.1);
    }
    Ok((manifest, items))
}

/// Writes a catalog again with a new collaborative side: every shard under its new
/// content's name beside the old one (see `build::shard_path`), renamed together, then
/// the manifest. Returns the new manifest.
pub fn retrain(
    sink: &mut dyn Sink,
    manifest: &Manifest,
    items: &[CatalogItem],
    side: &CollaborativeSide,
) -> Result<Manifest> {
    build::check_collaborative(side, items.len())?;
    let factor_dims = side.manifest.dims;
    let dims = manifest.encoder.dims;
    let mut next = manifest.clone();
    next.collaborative = Some(side.manifest.clone());
    next.scenarios = side.scenarios.clone();
    let mut first = 0usize;
    for (s, entry) in manifest.shards.iter().enumerate() {
        let range = first..first.saturating_add(usize::try_from(entry.items).unwrap_or(usize::MAX));
        let records: Vec<CatalogItem> = items
            .get(range.clone())
            .ok_or_else(|| Error::new(ErrorKind::Format, "the manifest's shards do not hold its items"))?
            .iter()
            .zip(range.clone())
            .map(|(item, i)| CatalogItem {
                factors: side.factors[i * factor_dims..(i + 1) * factor_dims].to_vec(),
                bias: side.bias.as_ref().map(|b| b[i]),
                ..item.clone()
            })
            .collect();
        let bytes = write_shard(&records, first as u32, dims, factor_dims, side.manifest.bias)?;
        let sha256 = sha256_hex(&bytes);
        next.shards[s].path = build::shard_path(s, &sha256);
        sink.stage(&next.shards[s].path, &bytes)?;
        next.shards[s].bytes = bytes.len() as u64;
        next.shards[s].sha256 = sha256;
        first = range.end;
    }
    sink.commit()?;
    sink.write(MANIFEST_FILE, &next.to_json()?)?;
    Ok(next)
}

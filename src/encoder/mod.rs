//! The sentence encoder: a BERT-family transformer (all-MiniLM-L6-v2 by default) in burn,
//! tokenized by the tokenizers crate, mean-pooled and L2-normalised, at parity with
//! sentence-transformers.
//!
//! [`Encoder::load`] takes the model's files as bytes ([`ModelFiles`]); reading them
//! from a folder or a URL is the caller's job (the native helpers in [`crate::native`],
//! or JavaScript in the browser).

mod config;
pub mod cpu;
pub mod dense;
mod model;
mod pooling;
mod tokenize;
pub mod weights;
pub mod web;

use burn::prelude::*;

pub use config::{Activation, BertConfig};
pub use cpu::CpuModel;
pub use model::{BertEmbeddings, BertModel, EncoderLayer, SelfAttention};
pub use pooling::mean_pool_normalized;
pub use tokenize::{MAX_TEXT_BYTES, PaddedBatch, TextTokenizer, pad_batch};

use crate::error::{Error, ErrorKind, Result};

/// The files of a sentence encoder, as bytes.
#[derive(Clone, Debug, Default)]
pub struct ModelFiles {
    /// Hugging Face `config.json`.
    pub config: Vec<u8>,
    /// `tokenizer.json`.
    pub tokenizer: Vec<u8>,
    /// `model.safetensors`, Hugging Face names (f32/f16/bf16) or the localrec web copy (f16).
    pub weights: Vec<u8>,
    /// sentence-transformers' `sentence_bert_config.json`, when the model has one; it sets
    /// the truncation length (256 for all-MiniLM-L6-v2).
    pub sentence_config: Option<Vec<u8>>,
}

/// Default number of texts run through the model at once.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// Most padded tokens in one model call: bounds the attention scores' memory for long texts.
const MAX_BATCH_TOKENS: usize = 8192;

/// Padding allowed in a batch: its longest sequence may exceed its shortest by a quarter,
/// or by this many tokens, whichever is more. Measured natively (`localrec bench`): 128
/// short items per call ran at 70 items/s when padded up to twice their length, 144 when
/// split this way.
const PADDING_SLACK: usize = 4;

/// How an encoder computes its forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The burn model ([`BertModel`]) on the encoder's device: Flex, wgpu or WebGPU.
    Burn,
    /// The CPU engine ([`CpuModel`]): packed dense kernels and in-place attention on
    /// unpadded f32 buffers, on the Flex device only. In wasm (one thread, no rayon) it
    /// runs about twice as fast as burn's Flex path; natively burn's multi-threaded
    /// matrix product wins.
    CpuKernels,
}

impl Engine {
    /// What [`Encoder::load`] uses on `device`: the CPU engine on Flex in wasm, burn
    /// everywhere else.
    pub fn default_for(device: &Device) -> Engine {
        if cfg!(target_arch = "wasm32") && *device == Device::flex() { Engine::CpuKernels } else { Engine::Burn }
    }
}

/// The loaded model, in the form its engine runs.
#[derive(Debug)]
enum Model {
    Burn(BertModel),
    Cpu(CpuModel),
}

/// Sentence embeddings: `len` rows of `dims` values, row-major, each of unit length.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    /// Width of each row.
    pub dims: usize,
    /// `len * dims` values.
    pub data: Vec<f32>,
}

impl Embeddings {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dims).unwrap_or(0)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }

    /// Iterates over rows.
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.dims.max(1))
    }
}

/// A loaded sentence encoder on one burn device.
#[derive(Debug)]
pub struct Encoder {
    config: BertConfig,
    tokenizer: TextTokenizer,
    model: Model,
    device: Device,
}

impl Encoder {
    /// Parses the config and tokenizer, checks and loads the weights onto `device`, for
    /// the device's default engine ([`Engine::default_for`]).
    pub fn load(files: &ModelFiles, device: &Device) -> Result<Self> {
        Self::load_with_engine(files, device, Engine::default_for(device))
    }

    /// [`Encoder::load`] with a chosen engine; [`Engine::CpuKernels`] needs the Flex device.
    pub fn load_with_engine(files: &ModelFiles, device: &Device, engine: Engine) -> Result<Self> {
        if engine == Engine::CpuKernels && *device != Device::flex() {
            return Err(Error::new(ErrorKind::Input, "the cpu kernels engine runs on the flex device only"));
        }
        let config = BertConfig::from_json(&files.config, files.sentence_config.as_deref())?;
        let tokenizer = TextTokenizer::from_json(&files.tokenizer, config.max_seq_length)?;
        let tensors = weights::read_weights(&files.weights, &config)?;
        let model = match engine {
            Engine::Burn => Model::Burn(weights::build_model(&tensors, &config, device)?),
            Engine::CpuKernels => Model::Cpu(CpuModel::from_tensors(tensors, &config)?),
        };
        Ok(Self { config, tokenizer, model, device: device.clone() })
    }

    /// The engine computing the forward pass.
    pub fn engine(&self) -> Engine {
        match self.model {
            Model::Burn(_) => Engine::Burn,
            Model::Cpu(_) => Engine::CpuKernels,
        }
    }

    /// Width of the embeddings (384 for MiniLM).
    pub fn dims(&self) -> usize {
        self.config.hidden_size
    }

    /// The architecture in use.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The tokenizer in use.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Token ids of each text, truncated to the model's maximum length.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| self.tokenizer.encode(t).map_err(|e| e.context(format!("text {i}"))))
            .collect()
    }

    /// Embeds texts in batches of [`DEFAULT_BATCH_SIZE`]; rows come back in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Embeddings> {
        self.embed_tokens(&self.tokenize(texts)?, DEFAULT_BATCH_SIZE)
    }

    /// Embeds already-tokenized sequences, `batch_size` at a time.
    ///
    /// Sequences are sorted by length and cut into batches of at most `batch_size` whose
    /// padding stays small (see `group_by_length`); the rows still come back in input order.
    pub fn embed_tokens(&self, sequences: &[Vec<u32>], batch_size: usize) -> Result<Embeddings> {
        let dims = self.dims();
        let mut data = vec![0.0f32; sequences.len() * dims];
        for indices in self.plan_batches(sequences, batch_size)? {
            let rows = match &self.model {
                Model::Cpu(cpu) => cpu.embed(&indices.iter().map(|&i| sequences[i].as_slice()).collect::<Vec<_>>())?,
                Model::Burn(model) => {
                    let pooled = self.forward_batch(model, &self.pad(sequences, &indices));
                    self.rows_from(pooled.try_into_data().map_err(read_failed)?, indices.len())?
                }
            };
            scatter_rows(&mut data, dims, &indices, &rows);
        }
        Ok(Embeddings { dims, data })
    }

    /// [`Encoder::embed_tokens`] for devices whose results can only be read back
    /// asynchronously (WebGPU in a browser); works on every device.
    pub async fn embed_tokens_async(&self, sequences: &[Vec<u32>], batch_size: usize) -> Result<Embeddings> {
        let Model::Burn(model) = &self.model else { return self.embed_tokens(sequences, batch_size) };
        let dims = self.dims();
        let mut data = vec![0.0f32; sequences.len() * dims];
        for indices in self.plan_batches(sequences, batch_size)? {
            let pooled = self.forward_batch(model, &self.pad(sequences, &indices));
            let rows = self.rows_from(pooled.into_data_async().await.map_err(read_failed)?, indices.len())?;
            scatter_rows(&mut data, dims, &indices, &rows);
        }
        Ok(Embeddings { dims, data })
    }

    /// Validates sequences and groups them, shortest first, into batches (by index). The
    /// burn engine pads a batch to its longest sequence, so its batches also keep padding
    /// small; the CPU engine pads nothing.
    fn plan_batches(&self, sequences: &[Vec<u32>], batch_size: usize) -> Result<Vec<Vec<usize>>> {
        if batch_size == 0 {
            return Err(Error::new(ErrorKind::Input, "batch size must be at least 1"));
        }
        for (i, seq) in sequences.iter().enumerate() {
            if seq.is_empty() || seq.len() > self.config.max_seq_length {
                return Err(Error::new(
                    ErrorKind::Input,
                    format!("sequence {i} has {} tokens; expected 1..={}", seq.len(), self.config.max_seq_length),
                ));
            }
            if let Some(&id) = seq.iter().find(|&&id| id as usize >= self.config.vocab_size) {
                return Err(Error::new(
                    ErrorKind::Input,
                    format!("sequence {i} holds token id {id}, outside the vocabulary of {}", self.config.vocab_size),
                ));
            }
        }
        let lengths: Vec<usize> = sequences.iter().map(Vec::len).collect();
        Ok(group_by_length(&lengths, batch_size, matches!(self.model, Model::Burn(_))))
    }

    fn pad(&self, sequences: &[Vec<u32>], indices: &[usize]) -> PaddedBatch {
        let seqs: Vec<&[u32]> = indices.iter().map(|&i| sequences[i].as_slice()).collect();
        pad_batch(&seqs, self.config.pad_token_id)
    }

    /// Runs the model and pooling over one padded batch, leaving the result on the device.
    ///
    /// # Shapes
    /// - output: `[padded.batch, hidden]`
    fn forward_batch(&self, model: &BertModel, padded: &PaddedBatch) -> Tensor<2> {
        let shape = [padded.batch, padded.seq];
        let ids = Tensor::<2, Int>::from_data(TensorData::new(padded.ids.clone(), shape), &self.device);
        let mask = Tensor::<2>::from_data(TensorData::new(padded.mask.clone(), shape), &self.device);
        let hidden = model.forward(ids, padded.has_padding.then(|| mask.clone()));
        mean_pool_normalized(hidden, mask)
    }

    fn rows_from(&self, data: TensorData, batch: usize) -> Result<Vec<f32>> {
        let rows = data
            .try_into_vec::<f32>()
            .map_err(|e| Error::new(ErrorKind::Backend, format!("embeddings came back in an unexpected type: {e:?}")))?;
        if rows.len() != batch * self.dims() {
            return Err(Error::new(ErrorKind::Backend, "the device returned a wrongly sized embedding batch"));
        }
        Ok(rows)
    }
}

fn read_failed(e: impl std::fmt::Debug) -> Error {
    Error::new(ErrorKind::Backend, format!("reading embeddings from the device failed: {e:?}"))
}

/// Copies a batch's rows to their places in the output, by input index.
fn scatter_rows(data: &mut [f32], dims: usize, indices: &[usize], rows: &[f32]) {
    for (k, &i) in indices.iter().enumerate() {
        data[i * dims..(i + 1) * dims].copy_from_slice(&rows[k * dims..(k + 1) * dims]);
    }
}

/// Cuts sequences of the given lengths into batches: indices sorted by length (stable, so
/// equal lengths keep input order), at most `batch_size` per batch, at most
/// `MAX_BATCH_TOKENS` padded tokens, and, when `limit_padding`, a new batch once the
/// padded length would pass the batch's shortest sequence by more than a quarter (or
/// `PADDING_SLACK` tokens).
fn group_by_length(lengths: &[usize], batch_size: usize, limit_padding: bool) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        let len = lengths[i];
        if let Some(&first) = current.first() {
            // Lengths ascend, so `len` would be the batch's padded length.
            let full = current.len() >= batch_size;
            let too_many_tokens = len * (current.len() + 1) > MAX_BATCH_TOKENS;
            let shortest = lengths[first];
            let too_much_padding = limit_padding && len > shortest + (shortest / 4).max(PADDING_SLACK);
            if full || too_many_tokens || too_much_padding {
                batches.push(std::mem::take(&mut current));
            }
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Cosine similarity of two vectors (`0.0` when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += x as f64 * y as f64;
        na += x as f64 * x as f64;
        nb += y as f64 * y as f64;
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { (dot / (na.sqrt() * nb.sqrt())) as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_size_padding_and_token_limits_and_cover_every_index_once() {
        let lengths = [5, 256, 3, 12, 40, 7, 200, 3, 30, 256];
        let batches = group_by_length(&lengths, 4, true);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for batch in &batches {
            assert!(batch.len() <= 4);
            let max = batch.iter().map(|&i| lengths[i]).max().unwrap();
            let min = batch.iter().map(|&i| lengths[i]).min().unwrap();
            assert!(max <= min + (min / 4).max(PADDING_SLACK), "{batch:?}");
            assert!(max * batch.len() <= MAX_BATCH_TOKENS);
        }
        // Short texts share a batch; the two 256-token texts share theirs.
        assert_eq!(batches[0], vec![2, 7, 0, 5]);
        assert!(batches.contains(&vec![1, 9]), "{batches:?}");
    }

    #[test]
    fn long_sequences_are_capped_by_the_token_budget() {
        let lengths = vec![256; 100];
        for limit_padding in [true, false] {
            for batch in group_by_length(&lengths, 128, limit_padding) {
                assert!(batch.len() * 256 <= MAX_BATCH_TOKENS);
            }
        }
    }

    #[test]
    fn without_a_padding_limit_mixed_lengths_fill_whole_batches() {
        let lengths = [5, 40, 3, 12, 30, 7];
        assert_eq!(group_by_length(&lengths, 4, false), vec![vec![2, 0, 5, 3], vec![4, 1]]);
        assert!(group_by_length(&lengths, 4, true).len() > 2);
    }
}

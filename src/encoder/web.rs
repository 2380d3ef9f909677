//! The web copy of a model (`localrec export-web`): config and tokenizer as they are,
//! weights as f16 safetensors already under localrec's names and burn's layout, and a
//! small manifest giving each file's size and SHA-256 so the browser can verify what it
//! downloads before caching it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[cfg(feature = "publish")]
use super::{BertConfig, ModelFiles, weights};
#[cfg(feature = "publish")]
use crate::error::{Error, ErrorKind, Result};

/// Name of the manifest file in a web model folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Value of the manifest's `format` key.
pub const MANIFEST_FORMAT: &str = "localrec-model";

/// One file of the web copy, listed in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the manifest.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the contents.
    pub sha256: String,
}

/// What the web copy holds, written as `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Manifest schema version.
    pub version: u32,
    /// The encoder's identity: embeddings from different identities never mix.
    pub encoder: EncoderIdentity,
    /// The files, each with its size and checksum.
    pub files: Vec<FileEntry>,
}

/// Identity of an encoder, shared with catalog manifests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderIdentity {
    /// Human-readable model name, e.g. `all-MiniLM-L6-v2`.
    pub name: String,
    /// Embedding width.
    pub dims: usize,
    /// Pooling: always `mean` (over real tokens), then L2 normalisation.
    pub pooling: String,
    /// Truncation length in tokens.
    pub max_seq_length: usize,
    /// SHA-256 of the original weights file the copy was made from.
    pub source_weights_sha256: String,
    /// Weights dtype in this copy (`f16`).
    pub weights_dtype: String,
}

/// A file to write, with its bytes.
#[cfg(feature = "publish")]
#[derive(Clone, Debug)]
pub struct WebFile {
    /// Path relative to the output folder.
    pub path: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds the web copy of `files`: the files to write, the manifest last. The
/// publisher's only (cargo feature `publish`): the browser reads web copies.
#[cfg(feature = "publish")]
pub fn export_web(files: &ModelFiles, name: &str) -> Result<Vec<WebFile>> {
    let config = BertConfig::from_json(&files.config, files.sentence_config.as_deref())?;
    // Fail now, not in the browser, if the tokenizer cannot be read.
    super::TextTokenizer::from_json(&files.tokenizer, config.max_seq_length)?;
    let tensors = weights::read_weights(&files.weights, &config)?;
    let web_weights = weights::to_web_safetensors(&tensors)?;
    // The truncation length travels in sentence_bert_config.json, written even when the
    // source had none, so the web copy tokenizes exactly as the native model did.
    let sentence = serde_json::to_vec_pretty(&serde_json::json!({
        "max_seq_length": config.max_seq_length,
        "do_lower_case": false,
    }))
    .map_err(|e| Error::with_source(ErrorKind::Config, "cannot write sentence_bert_config.json", e))?;

    let mut out = vec![
        WebFile { path: "config.json".into(), bytes: files.config.clone() },
        WebFile { path: "tokenizer.json".into(), bytes: files.tokenizer.clone() },
        WebFile { path: "sentence_bert_config.json".into(), bytes: sentence },
        WebFile { path: "model.safetensors".into(), bytes: web_weights },
    ];
    let manifest = ModelManifest {
        format: MANIFEST_FORMAT.into(),
        version: 1,
        encoder: EncoderIdentity {
            name: name.into(),
            dims: config.hidden_size,
            pooling: "mean".into(),
            max_seq_length: config.max_seq_length,
            source_weights_sha256: sha256_hex(&files.weights),
            weights_dtype: "f16".into(),
        },
        files: out
            .iter()
            .map(|f| FileEntry { path: f.path.clone(), bytes: f.bytes.len() as u64, sha256: sha256_hex(&f.bytes) })
            .collect(),
    };
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::with_source(ErrorKind::Config, "cannot write the model manifest", e))?;
    manifest_bytes.push(b'\n');
    out.push(WebFile { path: MANIFEST_FILE.into(), bytes: manifest_bytes });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_test_vector() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}

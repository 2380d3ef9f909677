//! `manifest.json` (docs/catalog-format.md): what a catalog holds and the checksum of
//! every shard, validated against fixed limits before a reader allocates anything.

use serde::{Deserialize, Serialize};

use super::shard::{MAX_DIMS, MAX_FACTOR_DIMS, MAX_SHARD_ITEMS, ShardExpectation};
use crate::encoder::web::FileEntry;
use crate::error::{Error, ErrorKind, Result};
pub use crate::limits::MAX_MANIFEST_BYTES;
use crate::limits::MAX_MODEL_FILE_BYTES;

/// Value of the manifest's `format` key.
pub const FORMAT: &str = "localrec-catalog";
/// The manifest version this code reads and writes.
pub const VERSION: u32 = 1;
/// Most shards in one catalog.
pub const MAX_SHARDS: usize = 100_000;
/// Largest shard file.
pub const MAX_SHARD_BYTES: u64 = 1 << 30;
/// Most items in one catalog.
pub const MAX_ITEMS: u64 = 100_000_000;
/// Name of the manifest in a catalog folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Most files in a model's web copy.
pub const MAX_MODEL_FILES: usize = 64;

/// The whole manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`] for manifests this code reads.
    pub version: u32,
    /// A label for people.
    pub name: String,
    /// The writer, e.g. `localrec 0.1.0`.
    pub created_by: String,
    /// Number of items: the sum of the shards' `items`.
    pub items: u64,
    /// The encoder whose embeddings the shards hold.
    pub encoder: CatalogEncoder,
    /// How embeddings are stored.
    pub quantization: Quantization,
    /// The collaborative side, when the catalog has one.
    pub collaborative: Option<Collaborative>,
    /// Scenario names the collaborative side knows.
    #[serde(default)]
    pub scenarios: Vec<String>,
    /// The shards, in catalog order.
    pub shards: Vec<ShardEntry>,
}

/// The encoder's identity as a catalog records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogEncoder {
    /// Model name, e.g. `all-MiniLM-L6-v2`.
    pub name: String,
    /// Embedding width.
    pub dims: usize,
    /// Always `mean`.
    pub pooling: String,
    /// Whether embeddings were L2-normalised before quantization.
    pub normalized: bool,
    /// Truncation length in tokens.
    pub max_seq_length: usize,
    /// SHA-256 of the original weights the encoder came from: its identity. Queries must
    /// come from an encoder with the same identity.
    pub source_weights_sha256: String,
    /// SHA-256 of the web copy's weights file in `model`.
    pub weights_sha256: String,
    /// The web copy of the model, relative to the manifest (`model/`).
    pub model: String,
    /// Every file of the web copy with its size and SHA-256: the catalog vouches for the
    /// model, so a browser refuses model files that are not these (wherever it loads them
    /// from). Catalogs written before this field have none; readers then refuse to load
    /// the model for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
}

/// Embedding storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// Always `int8-row-scale` in version 1.
    pub embeddings: String,
}

/// The collaborative side's shape and constants; the scorer fills `params`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Collaborative {
    /// Factor width `k`; every shard's `factor_dims`.
    pub dims: usize,
    /// Whether records carry an item bias.
    pub bias: bool,
    /// Constants the browser needs (fold-in, blend), documented by the scorer.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// For the publisher, not the browser: the hyper-parameters the trainer chose on
    /// held-out users, every setting it tried and their validation scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<serde_json::Value>,
}

/// One shard in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Path relative to the manifest.
    pub path: String,
    /// Exact file size.
    pub bytes: u64,
    /// Number of items.
    pub items: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
}

fn manifest_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Format, message)
}

/// A path that would lead a reader outside the catalog's folder: an integrity failure,
/// refused before anything is fetched.
fn escape_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Integrity, message)
}

impl Manifest {
    /// Parses and validates a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(manifest_error(format!("manifest.json is {} bytes; at most {MAX_MANIFEST_BYTES} are read", bytes.len())));
        }
        // The format and version are checked first, so a manifest of another version
        // gets that error rather than a field-by-field complaint.
        let head: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::with_source(ErrorKind::Format, "manifest.json is not valid json", e))?;
        if head.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(manifest_error(format!("manifest.json is not a localrec catalog (format is not \"{FORMAT}\")")));
        }
        match head.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == VERSION as u64 => {}
            other => {
                return Err(manifest_error(format!(
                    "catalog version {} is not supported (this reader knows {VERSION})",
                    other.map_or("missing".to_string(), |v| v.to_string())
                )));
            }
        }
        let manifest: Manifest = serde_json::from_value(head)
            .map_err(|e| Error::with_source(ErrorKind::Format, format!("manifest.json does not match the catalog format: {e}"), e))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks limits, shard paths and checksums' form, and that counts add up.
    pub fn validate(&self) -> Result<()> {
        if self.quantization.embeddings != "int8-row-scale" {
            return Err(manifest_error(format!("unknown embedding quantization {:?}", self.quantization.embeddings)));
        }
        let dims = self.encoder.dims;
        if dims == 0 || dims > MAX_DIMS {
            return Err(manifest_error(format!("encoder dims {dims} is outside 1..={MAX_DIMS}")));
        }
        if let Some(c) = &self.collaborative
            && c.dims > MAX_FACTOR_DIMS
        {
            return Err(manifest_error(format!("collaborative dims {} exceeds {MAX_FACTOR_DIMS}", c.dims)));
        }
        if self.items > MAX_ITEMS {
            return Err(manifest_error(format!("manifest claims {} items; at most {MAX_ITEMS} are supported", self.items)));
        }
        if self.shards.len() > MAX_SHARDS {
            return Err(manifest_error(format!("manifest lists {} shards; at most {MAX_SHARDS}", self.shards.len())));
        }
        let mut sum = 0u64;
        for (i, shard) in self.shards.iter().enumerate() {
            let at = format!("shard {i} ({:?})", shard.path);
            if !is_safe_relative_path(&shard.path) {
                return Err(escape_error(format!("{at}: path must be relative, without `..` or a scheme")));
            }
            if shard.bytes > MAX_SHARD_BYTES || shard.bytes < super::shard::HEADER_LEN as u64 {
                return Err(manifest_error(format!("{at}: {} bytes is outside {}..={MAX_SHARD_BYTES}", shard.bytes, super::shard::HEADER_LEN)));
            }
            if shard.items > MAX_SHARD_ITEMS as u64 {
                return Err(manifest_error(format!("{at}: {} items exceeds {MAX_SHARD_ITEMS}", shard.items)));
            }
            if !is_sha256_hex(&shard.sha256) {
                return Err(manifest_error(format!("{at}: sha256 must be 64 lowercase hex digits")));
            }
            sum += shard.items;
        }
        if sum != self.items {
            return Err(manifest_error(format!("the shards hold {sum} items; the manifest says {}", self.items)));
        }
        if !is_safe_relative_path(self.encoder.model.trim_end_matches('/')) {
            return Err(escape_error("encoder model path must be relative, without `..` or a scheme"));
        }
        self.validate_model_files()
    }

    /// The encoder's `files`: safe paths, sane sizes, hex digests, each path once, and the
    /// weights file agreeing with `weights_sha256`.
    fn validate_model_files(&self) -> Result<()> {
        let files = &self.encoder.files;
        if files.len() > MAX_MODEL_FILES {
            return Err(manifest_error(format!("encoder files lists {} files; at most {MAX_MODEL_FILES}", files.len())));
        }
        for (i, f) in files.iter().enumerate() {
            let at = format!("encoder file {i} ({:?})", f.path);
            if !is_safe_relative_path(&f.path) {
                return Err(escape_error(format!("{at}: path must be relative, without `..` or a scheme")));
            }
            if f.bytes > MAX_MODEL_FILE_BYTES {
                return Err(manifest_error(format!("{at}: {} bytes exceeds {MAX_MODEL_FILE_BYTES}", f.bytes)));
            }
            if !is_sha256_hex(&f.sha256) {
                return Err(manifest_error(format!("{at}: sha256 must be 64 lowercase hex digits")));
            }
            if files[..i].iter().any(|g| g.path == f.path) {
                return Err(manifest_error(format!("{at}: listed twice")));
            }
            if f.path == "model.safetensors" && f.sha256 != self.encoder.weights_sha256 {
                return Err(manifest_error(format!("{at}: sha256 differs from encoder weights_sha256")));
            }
        }
        Ok(())
    }

    /// What the shard at `index` must contain.
    pub fn expectation(&self, index: usize) -> Option<ShardExpectation> {
        let shard = self.shards.get(index)?;
        Some(ShardExpectation {
            items: shard.items as u32,
            dims: self.encoder.dims,
            factor_dims: self.collaborative.as_ref().map_or(0, |c| c.dims),
        })
    }

    /// Serialises the manifest (pretty, with a final newline; compact where pretty would
    /// pass what a reader reads, as deeply nested params would). A manifest that no
    /// reader would read even compact is refused rather than written.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let failed = |e| Error::with_source(ErrorKind::Format, "cannot serialise the manifest", e);
        let mut out = serde_json::to_vec_pretty(self).map_err(failed)?;
        if out.len() >= MAX_MANIFEST_BYTES {
            out = serde_json::to_vec(self).map_err(failed)?;
        }
        out.push(b'\n');
        if out.len() > MAX_MANIFEST_BYTES {
            return Err(manifest_error(format!(
                "the manifest would be {} bytes; readers take at most {MAX_MANIFEST_BYTES}",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// A path a manifest may name: `/`-separated segments of ASCII letters, digits, `.`,
/// `_`, `-` and `~`, none empty, `.` or `..`. Nothing a URL parser would rewrite gets
/// through (whitespace and control characters, which it strips; `%`, which it decodes
/// into `..`; `\`, which it reads as `/`; `:`, `?` and `#`), so the path a browser
/// resolves is the path checked here.
pub fn is_safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~'))
        })
}

/// Whether `s` is a SHA-256 as manifests write it: 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            name: "test".into(),
            created_by: "localrec test".into(),
            items: 5,
            encoder: CatalogEncoder {
                name: "all-MiniLM-L6-v2".into(),
                dims: 384,
                pooling: "mean".into(),
                normalized: true,
                max_seq_length: 256,
                source_weights_sha256: "0".repeat(64),
                weights_sha256: "1".repeat(64),
                model: "model/".into(),
                files: vec![FileEntry { path: "model.safetensors".into(), bytes: 10, sha256: "1".repeat(64) }],
            },
            quantization: Quantization { embeddings: "int8-row-scale".into() },
            collaborative: None,
            scenarios: vec![],
            shards: vec![
                ShardEntry { path: "shards/00000.bin".into(), bytes: 1000, items: 3, sha256: "a".repeat(64) },
                ShardEntry { path: "shards/00001.bin".into(), bytes: 800, items: 2, sha256: "b".repeat(64) },
            ],
        }
    }

    #[test]
    fn round_trips_through_json() {
        let m = sample();
        assert_eq!(Manifest::from_json(&m.to_json().unwrap()).unwrap(), m);
    }

    #[test]
    fn a_manifest_too_large_pretty_is_written_compact_and_one_too_large_for_readers_is_refused() {
        let with_params = |value: serde_json::Value| {
            let mut params = serde_json::Map::new();
            params.insert("n".into(), value);
            Manifest { collaborative: Some(Collaborative { dims: 8, bias: false, params, tuning: None }), ..sample() }
        };
        // 20,000 arrays nested 40 deep: 1.6 MB compact, far past the limit once indented
        // (a parsed manifest the bounded fuzzer found written as 197 MB).
        let nested = (0..40).fold(serde_json::json!(0), |v, _| serde_json::json!([v]));
        let deep = with_params(serde_json::Value::Array(vec![nested; 20_000]));
        let json = deep.to_json().unwrap();
        assert!(json.len() < 2 << 20, "{} bytes", json.len());
        assert_eq!(Manifest::from_json(&json).unwrap(), deep);
        let huge = with_params(serde_json::Value::String("x".repeat(MAX_MANIFEST_BYTES)));
        let err = huge.to_json().unwrap_err().to_string();
        assert!(err.contains("readers take at most"), "{err}");
    }

    #[test]
    fn absurd_or_inconsistent_manifests_are_refused_with_the_reason() {
        type Change = Box<dyn Fn(&mut Manifest)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|m| m.items = 6), "the manifest says 6"),
            (Box::new(|m| m.shards[0].bytes = u64::MAX), "bytes is outside"),
            (Box::new(|m| m.shards[1].items = 1 << 40), "items exceeds"),
            (Box::new(|m| m.shards[0].path = "../etc/passwd".into()), "path must be relative"),
            (Box::new(|m| m.shards[0].path = "https://evil.example/x".into()), "path must be relative"),
            (Box::new(|m| m.shards[0].sha256 = "XYZ".into()), "sha256"),
            (Box::new(|m| m.encoder.dims = 1 << 20), "encoder dims"),
            (Box::new(|m| m.items = u64::MAX), "items; at most"),
            // What a WHATWG URL parser would strip or decode into another place.
            (Box::new(|m| m.shards[0].path = " /\t/evil.example/x.bin".into()), "path must be relative"),
            (Box::new(|m| m.shards[0].path = "shards/%2e%2e/%2e%2e/x.bin".into()), "path must be relative"),
            (Box::new(|m| m.shards[0].path = "shards\\..\\x.bin".into()), "path must be relative"),
            (Box::new(|m| m.shards[0].path = "shards/x.bin?v=2".into()), "path must be relative"),
            (Box::new(|m| m.shards[0].path = "//evil.example/x.bin".into()), "path must be relative"),
            (Box::new(|m| m.encoder.model = "%2e%2e/".into()), "encoder model path"),
            (Box::new(|m| m.encoder.files[0].path = "../model.safetensors".into()), "path must be relative"),
            (Box::new(|m| m.encoder.files[0].sha256 = "2".repeat(64)), "differs from encoder weights_sha256"),
            (Box::new(|m| m.encoder.files.push(m.encoder.files[0].clone())), "listed twice"),
        ];
        for (change, want) in cases {
            let mut m = sample();
            change(&mut m);
            let json = serde_json::to_vec(&m).unwrap();
            let err = Manifest::from_json(&json).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should mention {want:?}");
        }
    }

    #[test]
    fn other_formats_and_versions_say_so() {
        let err = Manifest::from_json(br#"{"format":"localrec-catalog","version":2}"#).unwrap_err();
        assert!(err.to_string().contains("version 2 is not supported"), "{err}");
        let err = Manifest::from_json(br#"{"format":"something","version":1}"#).unwrap_err();
        assert!(err.to_string().contains("not a localrec catalog"), "{err}");
        assert!(Manifest::from_json(b"{").is_err());
    }
}

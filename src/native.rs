//! Native-only helpers around the I/O-free core: reading a model folder, starting a
//! burn device by name, and (with the `publish` feature) the publisher's files: atomic
//! writes, gzipped inputs, a model folder's web copy. The browser build does none of this (JavaScript
//! fetches the files and the wasm layer starts WebGPU asynchronously).

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::encoder::ModelFiles;
#[cfg(feature = "publish")]
use crate::encoder::web::{self, ModelManifest, WebFile};
use crate::error::{Error, ErrorKind, Result};

/// Where the project's set-up (`scripts/fetch-model.sh`) puts the model: the commands' default.
pub const DEFAULT_MODEL_DIR: &str = ".cache/models/all-MiniLM-L6-v2";

fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot read {}", path.display()), e))
}

/// Reads `config.json`, `tokenizer.json`, `model.safetensors` and, when present,
/// `sentence_bert_config.json` from a model folder.
pub fn read_model_dir(dir: impl AsRef<Path>) -> Result<ModelFiles> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(Error::new(ErrorKind::Io, format!("model folder {} does not exist", dir.display())));
    }
    let sentence_path = dir.join("sentence_bert_config.json");
    Ok(ModelFiles {
        config: read(dir, "config.json")?,
        tokenizer: read(dir, "tokenizer.json")?,
        weights: read(dir, "model.safetensors")?,
        sentence_config: if sentence_path.is_file() { Some(read(dir, "sentence_bert_config.json")?) } else { None },
    })
}

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::with_source(ErrorKind::Io, what, e)
}

/// Where [`write_atomic`] writes before renaming: a hidden name in the same folder (so
/// the rename stays on one file system) that carries the process id, so two builds
/// writing the same file never share a temporary.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk, then renames it
/// over `path`: readers and interrupted runs see the old file or the new one, never half
/// of one. Creates missing parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_temp(path, bytes).and_then(|tmp| rename(&tmp, path))
}

/// The first half of [`write_atomic`]: writes and flushes the temporary file and returns
/// its path, for callers that rename a group of files only once all are written.
pub fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io_error(format!("cannot create {}", parent.display()), e))?;
    }
    let tmp = temp_path(path);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(format!("cannot write {}", path.display()), e));
    }
    Ok(tmp)
}

/// Renames `from` to `to`, naming `to` in the error.
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| io_error(format!("cannot write {}", to.display()), e))
}

/// Reads a whole input file; gzip data (by its magic bytes, whatever the name) is
/// decompressed.
#[cfg(feature = "publish")]
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(bytes.as_slice()), &mut out)
        .map_err(|e| Error::with_source(ErrorKind::Input, format!("{}: not a valid gzip file", path.display()), e))?;
    Ok(out)
}

/// The model's web copy: the folder's own files when it already is one (its manifest
/// checked), else a fresh `export-web` of it.
#[cfg(feature = "publish")]
pub fn web_copy(dir: &Path, files: &ModelFiles) -> Result<(Vec<WebFile>, ModelManifest)> {
    let manifest_path = dir.join(web::MANIFEST_FILE);
    let existing = std::fs::read(&manifest_path).ok().and_then(|b| {
        let m: ModelManifest = serde_json::from_slice(&b).ok()?;
        (m.format == web::MANIFEST_FORMAT).then_some((m, b))
    });
    if let Some((manifest, bytes)) = existing {
        let mut out = Vec::new();
        for f in &manifest.files {
            if !crate::catalog::manifest::is_safe_relative_path(&f.path) {
                return Err(Error::new(
                    ErrorKind::Format,
                    format!("{}: unsafe path {:?}", manifest_path.display(), f.path),
                ));
            }
            let path = dir.join(&f.path);
            let data = std::fs::read(&path).map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
            if data.len() as u64 != f.bytes || web::sha256_hex(&data) != f.sha256 {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!("{} does not match the size and sha256 in {}", path.display(), manifest_path.display()),
                ));
            }
            out.push(WebFile { path: f.path.clone(), bytes: data });
        }
        out.push(WebFile { path: web::MANIFEST_FILE.into(), bytes });
        return Ok((out, manifest));
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let out = web::export_web(files, &name)?;
    let manifest_bytes =
        out.iter().find(|f| f.path == web::MANIFEST_FILE).map(|f| f.bytes.as_slice()).unwrap_or_default();
    let manifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| Error::with_source(ErrorKind::Config, "export-web wrote an unreadable manifest", e))?;
    Ok((out, manifest))
}

/// A compute backend selectable natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeBackend {
    /// burn's Flex: pure-Rust CPU, multi-threaded.
    Cpu,
    /// burn-wgpu on the machine's Vulkan/Metal/DX12 device.
    Wgpu,
}

impl std::str::FromStr for NativeBackend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "wgpu" => Ok(Self::Wgpu),
            other => Err(Error::new(ErrorKind::Input, format!("unknown backend `{other}` (expected cpu or wgpu)"))),
        }
    }
}

impl NativeBackend {
    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
        }
    }

    /// Starts the device and proves it computes, so a missing GPU driver is a clear error
    /// here rather than a panic in the middle of a batch.
    pub fn device(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::flex()),
            Self::Wgpu => {
                #[cfg(feature = "wgpu")]
                {
                    let device = Device::wgpu(DeviceKind::DefaultDevice);
                    let probe = device.clone();
                    let works = std::panic::catch_unwind(move || {
                        let t = Tensor::<1>::from_floats([1.0, 2.0], &probe);
                        (t * 2.0).sum().into_scalar::<f32>()
                    });
                    match works {
                        Ok(v) if (v - 6.0).abs() < 1e-6 => Ok(device),
                        Ok(v) => Err(Error::new(ErrorKind::Backend, format!("wgpu device computed {v} for 6"))),
                        Err(_) => Err(Error::new(
                            ErrorKind::Backend,
                            "no usable wgpu adapter (install a Vulkan driver, e.g. Debian's mesa-vulkan-drivers)",
                        )),
                    }
                }
                #[cfg(not(feature = "wgpu"))]
                Err(Error::new(ErrorKind::Backend, "this build has no wgpu backend (enable the `wgpu` feature)"))
            }
        }
    }
}

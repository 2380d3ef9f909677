//! Native-only helpers around the I/O-free core: reading a model folder and starting a
//! burn device by name. The browser build does neither (JavaScript fetches the files and
//! the wasm layer starts WebGPU asynchronously).

use std::path::Path;

use burn::prelude::*;

use crate::encoder::ModelFiles;
use crate::error::{Error, ErrorKind, Result};

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

//! The WebAssembly boundary: the only code that imports `wasm_bindgen`, `js_sys` or
//! `web_sys`. It converts JavaScript values to the core's types and back, and turns every
//! error into a JS `Error` with a stable `code` (`"localrec/<kind>"`). Nothing panics
//! across the boundary: inputs are checked, and a panic hook reports any bug to the
//! console instead of leaving a silent trap.

use std::rc::Rc;

use burn::prelude::Device;
use js_sys::{Array, Float32Array, Promise, Reflect, Uint32Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

mod catalog;
#[cfg(feature = "bench")]
mod scorer_bench;

use crate::encoder::{Encoder, ModelFiles};
use crate::error::Error;

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&JsValue::from_str(&format!("localrec: internal error: {info}")));
    }));
}

/// Converts a core error into a JS `Error` whose `code` is `localrec/<kind>`.
fn to_js(err: Error) -> JsValue {
    let js = js_sys::Error::new(&err.to_string());
    // Setting a property on a fresh Error object cannot fail.
    let _ = Reflect::set(&js, &"code".into(), &format!("localrec/{}", err.kind().as_str()).into());
    js.into()
}

fn texts_from_js(texts: &Array) -> Result<Vec<String>, JsValue> {
    texts
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_string().ok_or_else(|| {
                to_js(Error::new(crate::error::ErrorKind::Input, format!("text {i} is not a string")))
            })
        })
        .collect()
}

/// The sentence encoder on burn's CPU backend (Flex with simd128) or on the browser's
/// WebGPU, loaded from the bytes of the model's files.
#[wasm_bindgen]
pub struct WasmEncoder {
    // Shared with in-flight `embed` promises, so freeing the JS object mid-call is safe.
    inner: Rc<Encoder>,
    backend: &'static str,
}

fn model_files(config: &[u8], tokenizer: &[u8], weights: &[u8], sentence_config: Option<Vec<u8>>) -> ModelFiles {
    ModelFiles { config: config.to_vec(), tokenizer: tokenizer.to_vec(), weights: weights.to_vec(), sentence_config }
}

#[cfg(feature = "webgpu")]
thread_local! {
    // burn registers one WebGPU runtime per page (worker); later encoders reuse it.
    static WEBGPU: std::cell::RefCell<Option<Device>> = const { std::cell::RefCell::new(None) };
}

/// The browser's WebGPU device, acquired on first use.
#[cfg(feature = "webgpu")]
async fn webgpu_device() -> Result<Device, Error> {
    if let Some(device) = WEBGPU.with(|d| d.borrow().clone()) {
        return Ok(device);
    }
    let device = Device::wgpu_options()
        .graphics_api(burn::tensor::wgpu::WgpuBackend::WebGpu)
        .init_async()
        .await
        .map_err(|e| Error::new(crate::error::ErrorKind::Backend, format!("webgpu could not be initialised: {e}")))?;
    WEBGPU.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

#[wasm_bindgen]
impl WasmEncoder {
    /// Loads a model from its files' bytes; `sentenceConfig` may be `undefined`.
    #[wasm_bindgen(js_name = loadCpu)]
    pub fn load_cpu(
        config: &[u8],
        tokenizer: &[u8],
        weights: &[u8],
        sentence_config: Option<Vec<u8>>,
    ) -> Result<WasmEncoder, JsValue> {
        let files = model_files(config, tokenizer, weights, sentence_config);
        let inner = Encoder::load(&files, &Device::flex()).map_err(to_js)?;
        Ok(WasmEncoder { inner: Rc::new(inner), backend: "cpu" })
    }

    /// Loads a model onto the browser's WebGPU (burn-wgpu); resolves to a `WasmEncoder`.
    /// Rejects with `localrec/backend` when WebGPU cannot be initialised, or when this
    /// build has no WebGPU support.
    #[wasm_bindgen(js_name = loadWebGpu)]
    pub async fn load_webgpu(
        config: Vec<u8>,
        tokenizer: Vec<u8>,
        weights: Vec<u8>,
        sentence_config: Option<Vec<u8>>,
    ) -> Result<WasmEncoder, JsValue> {
        #[cfg(feature = "webgpu")]
        {
            let device = webgpu_device().await.map_err(to_js)?;
            let files = ModelFiles { config, tokenizer, weights, sentence_config };
            let inner = Encoder::load(&files, &device).map_err(to_js)?;
            Ok(WasmEncoder { inner: Rc::new(inner), backend: "webgpu" })
        }
        #[cfg(not(feature = "webgpu"))]
        {
            let _ = (config, tokenizer, weights, sentence_config);
            Err(to_js(Error::new(crate::error::ErrorKind::Backend, "this build of localrec has no webgpu support")))
        }
    }

    /// The backend this encoder runs on: `"cpu"` or `"webgpu"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.to_string()
    }

    /// Width of the embeddings.
    #[wasm_bindgen(getter)]
    pub fn dims(&self) -> usize {
        self.inner.dims()
    }

    /// Token ids of each text: an array of `Uint32Array`.
    pub fn tokenize(&self, texts: &Array) -> Result<Array, JsValue> {
        let texts = texts_from_js(texts)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ids = self.inner.tokenize(&refs).map_err(to_js)?;
        Ok(ids.iter().map(|seq| JsValue::from(Uint32Array::from(seq.as_slice()))).collect())
    }

    /// Embeds texts: resolves to a `Float32Array` of `texts.length * dims` values,
    /// row-major. Asynchronous because WebGPU results are read back asynchronously.
    pub fn embed(&self, texts: &Array, batch_size: Option<usize>) -> Promise {
        let encoder = Rc::clone(&self.inner);
        let texts = texts_from_js(texts);
        future_to_promise(async move {
            let texts = texts?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let ids = encoder.tokenize(&refs).map_err(to_js)?;
            let batch = batch_size.unwrap_or(crate::DEFAULT_BATCH_SIZE).max(1);
            let vectors = encoder.embed_tokens_async(&ids, batch).await.map_err(to_js)?;
            Ok(Float32Array::from(vectors.data.as_slice()).into())
        })
    }
}

/// Times the CPU path's packed dense kernel on an `[m, k] x [k, n]` product of
/// deterministic values, `reps` times; returns GFLOP/s. For the benchmark page.
#[cfg(feature = "bench")]
#[wasm_bindgen(js_name = benchDense)]
pub fn bench_dense(m: usize, k: usize, n: usize, reps: usize) -> Result<f64, JsValue> {
    if m == 0 || k == 0 || n == 0 || m.saturating_mul(k).max(k.saturating_mul(n)) > 1 << 24 {
        return Err(to_js(Error::new(crate::error::ErrorKind::Input, "bench shape must be non-empty and at most 2^24 values per matrix")));
    }
    let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let w: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5).collect();
    let dense = crate::encoder::dense::PackedDense::new(&w, k, n, None)
        .ok_or_else(|| to_js(Error::new(crate::error::ErrorKind::Input, "bench shape mismatch")))?;
    let now = || js_sys::Date::now();
    let mut checksum = 0.0f32;
    let started = now();
    let mut out = Vec::new();
    for _ in 0..reps.max(1) {
        dense.forward_into(&x, false, &mut out);
        checksum += out[0];
    }
    let seconds = (now() - started).max(1e-3) / 1e3;
    // Keeps the products from being optimised away.
    if checksum.is_nan() {
        return Err(JsValue::from_str("nan"));
    }
    Ok(2.0 * (m * k * n * reps.max(1)) as f64 / seconds / 1e9)
}

//! The WebAssembly boundary: the only code that imports `wasm_bindgen`, `js_sys` or
//! `web_sys`. It converts JavaScript values to the core's types and back, and turns every
//! error into a JS `Error` with a stable `code` (`"localrec/<kind>"`). Nothing panics
//! across the boundary: inputs are checked, and a panic hook reports any bug to the
//! console instead of leaving a silent trap.

use js_sys::{Array, Float32Array, Reflect, Uint32Array};
use wasm_bindgen::prelude::*;

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

/// The sentence encoder on burn's CPU backend (Flex with simd128), loaded from the bytes
/// of the model's files.
#[wasm_bindgen]
pub struct WasmEncoder {
    inner: Encoder,
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
        let files = ModelFiles {
            config: config.to_vec(),
            tokenizer: tokenizer.to_vec(),
            weights: weights.to_vec(),
            sentence_config,
        };
        let inner = Encoder::load(&files, &burn::prelude::Device::flex()).map_err(to_js)?;
        Ok(WasmEncoder { inner })
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

    /// Embeds texts: a `Float32Array` of `texts.length * dims` values, row-major.
    pub fn embed(&self, texts: &Array, batch_size: Option<usize>) -> Result<Float32Array, JsValue> {
        let texts = texts_from_js(texts)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ids = self.inner.tokenize(&refs).map_err(to_js)?;
        let batch = batch_size.unwrap_or(crate::DEFAULT_BATCH_SIZE).max(1);
        let vectors = self.inner.embed_tokens(&ids, batch).map_err(to_js)?;
        Ok(Float32Array::from(vectors.data.as_slice()))
    }
}

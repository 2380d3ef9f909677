//! The scorer's browser benchmark (bench/scorer/browser.mjs): a synthetic catalog built
//! inside wasm, `recommend` timed by the page, and the same vectors handed to JavaScript
//! for a brute-force top-k beside it.

use std::rc::Rc;

use js_sys::{Float32Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::to_js;
use crate::scorer::bench::{synthetic, synthetic_events};
use crate::scorer::profile::{Event, user_query};
use crate::scorer::rank::{RankOptions, Scorer};

/// A synthetic catalog and profile on burn's CPU backend or the browser's WebGPU.
#[wasm_bindgen]
pub struct WasmScorerBench {
    // Shared with in-flight `recommendAsync` promises.
    inner: Rc<Inner>,
}

struct Inner {
    scorer: Scorer,
    events: Vec<Event>,
    k: usize,
    r: usize,
}

impl Inner {
    fn new(items: usize, factors: usize, item_rank: usize, events: usize, device: &burn::prelude::Device) -> Result<Inner, JsValue> {
        let (side, params) = synthetic(items, factors, item_rank, 384);
        let scorer = Scorer::for_device(side, Some(params), device).map_err(to_js)?;
        Ok(Inner { scorer, events: synthetic_events(items, events), k: factors, r: item_rank })
    }

    fn options(&self) -> RankOptions {
        RankOptions { k: 20, exclude: self.events.iter().map(|e| e.item).collect(), explain: true, ..Default::default() }
    }
}

#[wasm_bindgen]
impl WasmScorerBench {
    /// `items` items with `factors` ALS factors, item-item rank `itemRank`, 384-dim
    /// embeddings; a profile of `events` likes.
    #[wasm_bindgen(constructor)]
    pub fn new(items: usize, factors: usize, item_rank: usize, events: usize) -> Result<WasmScorerBench, JsValue> {
        let inner = Inner::new(items, factors, item_rank, events, &burn::prelude::Device::flex())?;
        Ok(WasmScorerBench { inner: Rc::new(inner) })
    }

    /// The same on the browser's WebGPU (the WebGPU build only).
    #[wasm_bindgen(js_name = newWebGpu)]
    pub async fn new_webgpu(items: usize, factors: usize, item_rank: usize, events: usize) -> Result<WasmScorerBench, JsValue> {
        #[cfg(feature = "webgpu")]
        {
            let device = super::webgpu_device().await.map_err(to_js)?;
            let inner = Inner::new(items, factors, item_rank, events, &device)?;
            Ok(WasmScorerBench { inner: Rc::new(inner) })
        }
        #[cfg(not(feature = "webgpu"))]
        {
            let _ = (items, factors, item_rank, events);
            Err(to_js(crate::error::Error::new(crate::error::ErrorKind::Backend, "this build of localrec has no webgpu support")))
        }
    }

    /// One full recommendation (fold-in, product, blend, top-20, reasons) on the CPU;
    /// returns the number of results.
    pub fn recommend(&self) -> Result<usize, JsValue> {
        let inner = &self.inner;
        let query = user_query(inner.scorer.items(), inner.scorer.params(), &inner.events, &[]).map_err(to_js)?;
        let terms = inner.scorer.terms(&[&query]).map_err(to_js)?.remove(0);
        inner.scorer.rank(&query, &terms, &inner.options()).map(|r| r.len()).map_err(to_js)
    }

    /// [`WasmScorerBench::recommend`] with the scores read back asynchronously, as
    /// WebGPU requires (works on the CPU too); resolves to the number of results.
    #[wasm_bindgen(js_name = recommendAsync)]
    pub fn recommend_async(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let query = user_query(inner.scorer.items(), inner.scorer.params(), &inner.events, &[]).map_err(to_js)?;
            let terms = inner.scorer.terms_async(&[&query]).await.map_err(to_js)?.remove(0);
            let ranked = inner.scorer.rank(&query, &terms, &inner.options()).map_err(to_js)?;
            Ok(JsValue::from(ranked.len()))
        })
    }

    /// The fold-in alone (all three user vectors).
    #[wasm_bindgen(js_name = foldIn)]
    pub fn fold_in(&self) -> Result<(), JsValue> {
        let inner = &self.inner;
        user_query(inner.scorer.items(), inner.scorer.params(), &inner.events, &[]).map(|_| ()).map_err(to_js)
    }

    /// The item matrix as the scorer multiplies it, row-major `[q | c | e]` per item.
    pub fn matrix(&self) -> Float32Array {
        let items = self.inner.scorer.items();
        let (k, r) = (self.inner.k, self.inner.r);
        let width = self.width();
        let out = Float32Array::new_with_length((items.len * width) as u32);
        let mut row = Vec::with_capacity(width);
        for i in 0..items.len {
            let record = items.record(i);
            row.clear();
            row.extend_from_slice(&record[..k]);
            row.extend_from_slice(&record[k + r..k + 2 * r]);
            row.extend(items.embedding(i));
            out.subarray((i * width) as u32, ((i + 1) * width) as u32).copy_from(&row);
        }
        out
    }

    /// Width of a matrix row.
    pub fn width(&self) -> usize {
        self.inner.k + self.inner.r + self.inner.scorer.items().embedding_dims
    }

    /// Bytes the scorer holds per item: its item side and the matrix on the device.
    #[wasm_bindgen(js_name = bytesPerItem)]
    pub fn bytes_per_item(&self) -> f64 {
        let scorer = &self.inner.scorer;
        scorer.items().bytes_per_item() as f64 + scorer.matrix_bytes() as f64 / scorer.items().len.max(1) as f64
    }

    /// How the item matrix is held: `f32`, `f32blocks` or `compact` (see `Precision`).
    pub fn precision(&self) -> String {
        format!("{:?}", self.inner.scorer.precision()).to_lowercase()
    }
}

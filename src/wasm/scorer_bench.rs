//! The scorer's browser benchmark (bench/scorer/browser.mjs): a synthetic catalog built
//! inside wasm, `recommend` timed by the page, and the same vectors handed to JavaScript
//! for a brute-force top-k beside it.

use js_sys::Float32Array;
use wasm_bindgen::prelude::*;

use super::to_js;
use crate::scorer::bench::{synthetic, synthetic_events};
use crate::scorer::profile::{Event, user_query};
use crate::scorer::rank::{RankOptions, Scorer};

/// A synthetic catalog and profile on burn's CPU backend.
#[wasm_bindgen]
pub struct WasmScorerBench {
    scorer: Scorer,
    events: Vec<Event>,
    k: usize,
    r: usize,
}

#[wasm_bindgen]
impl WasmScorerBench {
    /// `items` items with `factors` ALS factors, item-item rank `itemRank`, 384-dim
    /// embeddings; a profile of `events` likes.
    #[wasm_bindgen(constructor)]
    pub fn new(items: usize, factors: usize, item_rank: usize, events: usize) -> Result<WasmScorerBench, JsValue> {
        let (side, params) = synthetic(items, factors, item_rank, 384);
        let scorer = Scorer::new(side, Some(params), &burn::prelude::Device::flex()).map_err(to_js)?;
        Ok(WasmScorerBench { scorer, events: synthetic_events(items, events), k: factors, r: item_rank })
    }

    /// One full recommendation (fold-in, product, blend, top-20, reasons); returns the
    /// number of results.
    pub fn recommend(&self) -> Result<usize, JsValue> {
        let query = user_query(self.scorer.items(), self.scorer.params(), &self.events, &[]).map_err(to_js)?;
        let terms = self.scorer.terms(&[&query]).map_err(to_js)?.remove(0);
        let exclude = self.events.iter().map(|e| e.item).collect();
        let opts = RankOptions { k: 20, exclude, explain: true, ..Default::default() };
        self.scorer.rank(&query, &terms, &opts).map(|r| r.len()).map_err(to_js)
    }

    /// The fold-in alone (all three user vectors).
    #[wasm_bindgen(js_name = foldIn)]
    pub fn fold_in(&self) -> Result<(), JsValue> {
        user_query(self.scorer.items(), self.scorer.params(), &self.events, &[]).map(|_| ()).map_err(to_js)
    }

    /// The item matrix as the scorer multiplies it, row-major `[q | c | e]` per item.
    pub fn matrix(&self) -> Float32Array {
        let items = self.scorer.items();
        let (k, r) = (self.k, self.r);
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
        self.k + self.r + self.scorer.items().embedding_dims
    }

    /// Bytes the scorer holds per item: its item side and the matrix on the device.
    #[wasm_bindgen(js_name = bytesPerItem)]
    pub fn bytes_per_item(&self) -> f64 {
        let items = self.scorer.items();
        (items.bytes_per_item() + self.width() * 4) as f64
    }
}

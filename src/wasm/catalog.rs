//! The catalog across the wasm boundary: the worker's loader feeds shard bytes in as they
//! arrive (`beginShard`, `feed`, `finishShard`), and queries read the verified part.
//! Results cross as JSON text, which the worker parses once; embeddings as typed arrays.

use std::collections::HashMap;

use js_sys::{Float32Array, Int8Array};
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;

use super::to_js;
use crate::catalog::{CatalogStore, Manifest, ShardState, ShardStream};
use crate::scorer::{api, model, rank::Scorer};
use crate::error::{Error, ErrorKind};

/// A catalog being loaded or loaded: the manifest, the shards' streams in progress and
/// the verified items.
#[wasm_bindgen]
pub struct WasmCatalog {
    store: CatalogStore,
    streams: HashMap<usize, ShardStream>,
    /// The scorer over the items loaded when it was built (rebuilt when more arrive).
    scorer: Option<(usize, Scorer)>,
}

fn input_error(message: impl Into<String>) -> JsValue {
    to_js(Error::new(ErrorKind::Input, message))
}

#[wasm_bindgen]
impl WasmCatalog {
    /// Parses and validates `manifest.json`'s bytes; refuses absurd sizes and counts
    /// before anything is allocated for them.
    /// `maxBytes` caps the sum of the shards' sizes: a catalog must fit in this page's
    /// memory, and saying so up front beats failing after a long download.
    #[wasm_bindgen(constructor)]
    pub fn new(manifest: &[u8], max_bytes: f64) -> Result<WasmCatalog, JsValue> {
        let manifest = Manifest::from_json(manifest).map_err(to_js)?;
        let total: u64 = manifest.shards.iter().map(|s| s.bytes).sum();
        if total as f64 > max_bytes {
            return Err(to_js(Error::new(
                ErrorKind::Format,
                format!("the catalog's shards add up to {total} bytes; this loader takes at most {max_bytes} (maxBytes)"),
            )));
        }
        Ok(WasmCatalog { store: CatalogStore::new(manifest), streams: HashMap::new(), scorer: None })
    }

    /// The manifest as JSON text (as validated).
    #[wasm_bindgen(js_name = manifestJson)]
    pub fn manifest_json(&self) -> Result<String, JsValue> {
        serde_json::to_string(self.store.manifest())
            .map_err(|e| to_js(Error::with_source(ErrorKind::Format, "cannot serialise the manifest", e)))
    }

    /// Starts (or restarts from byte 0) the stream of shard `index`.
    #[wasm_bindgen(js_name = beginShard)]
    pub fn begin_shard(&mut self, index: usize) -> Result<(), JsValue> {
        let stream = self.store.stream(index).map_err(to_js)?;
        self.streams.insert(index, stream);
        Ok(())
    }

    /// Feeds the next bytes of shard `index`; returns the items parsed so far (held back
    /// until the checksum). On error the stream is dropped: begin again to retry.
    pub fn feed(&mut self, index: usize, chunk: &[u8]) -> Result<u32, JsValue> {
        let stream = self.streams.get_mut(&index).ok_or_else(|| input_error(format!("shard {index} has no stream begun")))?;
        match stream.feed(chunk) {
            Ok(()) => Ok(stream.items_parsed()),
            Err(e) => {
                self.streams.remove(&index);
                Err(to_js(e))
            }
        }
    }

    /// Bytes of shard `index` taken so far (0 without a stream).
    #[wasm_bindgen(js_name = bytesFed)]
    pub fn bytes_fed(&self, index: usize) -> f64 {
        self.streams.get(&index).map_or(0.0, |s| s.bytes_fed() as f64)
    }

    /// Ends shard `index`'s stream: verifies size, SHA-256 and format, then makes its
    /// items usable. Returns how many it added.
    #[wasm_bindgen(js_name = finishShard)]
    pub fn finish_shard(&mut self, index: usize) -> Result<u32, JsValue> {
        let stream = self.streams.remove(&index).ok_or_else(|| input_error(format!("shard {index} has no stream begun")))?;
        let shard = stream.finish().map_err(to_js)?;
        self.store.add(shard).map(|n| n as u32).map_err(to_js)
    }

    /// Gives up on shard `index` for this session, with the reason.
    #[wasm_bindgen(js_name = failShard)]
    pub fn fail_shard(&mut self, index: usize, reason: &str) {
        self.streams.remove(&index);
        self.store.mark_failed(index, reason);
    }

    /// `{itemsLoaded, itemsTotal, shardsLoaded, shardsTotal, failed: [{shard, reason}], complete}` as JSON.
    pub fn status(&self) -> String {
        let states = self.store.shard_states();
        let failed: Vec<Value> = states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                ShardState::Failed(reason) => Some(json!({ "shard": i, "reason": reason })),
                _ => None,
            })
            .collect();
        json!({
            "itemsLoaded": self.store.len(),
            "itemsTotal": self.store.manifest().items,
            "shardsLoaded": states.iter().filter(|s| **s == ShardState::Loaded).count(),
            "shardsTotal": states.len(),
            "failed": failed,
            "complete": self.store.is_complete(),
        })
        .to_string()
    }

    /// The item with this id as JSON (`null` when it is not loaded).
    pub fn item(&self, id: &str) -> String {
        self.store.index_of(id).map_or(Value::Null, |i| self.store.item_json(i, false)).to_string()
    }

    /// Loaded items `offset..offset + limit`, in catalog order, as a JSON array; with
    /// `quantized`, each also carries `scale` and its int8 `embedding` values.
    pub fn items(&self, offset: usize, limit: usize, quantized: bool) -> String {
        let end = offset.saturating_add(limit).min(self.store.len());
        let rows: Vec<Value> = (offset.min(end)..end)
            .map(|i| self.store.item_json(i as u32, quantized))
            .collect();
        Value::Array(rows).to_string()
    }

    /// The item's embedding (`values * scale`), or `undefined` when it is not loaded.
    pub fn embedding(&self, id: &str) -> Option<Float32Array> {
        let index = self.store.index_of(id)?;
        self.store.embedding(index).map(|e| Float32Array::from(e.as_slice()))
    }

    /// The item's stored int8 row, or `undefined`.
    #[wasm_bindgen(js_name = quantizedEmbedding)]
    pub fn quantized_embedding(&self, id: &str) -> Option<Int8Array> {
        let index = self.store.index_of(id)?;
        self.store.quantized(index).map(|(_, row)| Int8Array::from(row))
    }

    /// The `k` loaded items nearest to `query` (cosine), as JSON
    /// `[{itemId, score, item}]`; `excludeId` (optional) is left out.
    pub fn nearest(&self, query: &[f32], k: usize, exclude_id: Option<String>) -> Result<String, JsValue> {
        let exclude = exclude_id.as_deref().and_then(|id| self.store.index_of(id));
        let found = self.store.nearest(query, k, exclude).map_err(to_js)?;
        let rows: Vec<Value> = found
            .iter()
            .map(|n| {
                let item = self.store.item_json(n.index, false);
                json!({ "itemId": item["itemId"].clone(), "score": n.score, "item": item })
            })
            .collect();
        Ok(Value::Array(rows).to_string())
    }

    /// Recommendations for a profile, on burn's CPU backend: `request` is JSON
    /// `{events: [{itemId, type, value?, ageDays?}], interests: [{embedding, weight?,
    /// ageDays?}], k?, diversity?, exclude?}`; the answer is JSON `{results: [{itemId,
    /// score, item, because}], partial, warnings}`. The profile comes in with the call
    /// and is not kept.
    pub fn recommend(&mut self, request: &str) -> Result<String, JsValue> {
        let request = api::parse_request(request).map_err(to_js)?;
        if self.scorer.as_ref().is_none_or(|(n, _)| *n != self.store.len()) {
            let (items, params) = model::from_store(&self.store).map_err(to_js)?;
            let scorer = Scorer::new(items, params, &burn::prelude::Device::flex()).map_err(to_js)?;
            self.scorer = Some((self.store.len(), scorer));
        }
        let Some((_, scorer)) = &self.scorer else { return Err(input_error("the scorer is not ready")) };
        api::recommend(&self.store, scorer, &request).map(|v| v.to_string()).map_err(to_js)
    }
}

//! The catalog across the wasm boundary: the worker's loader feeds shard bytes in as they
//! arrive (`beginShard`, `feed`, `finishShard`), and queries read the verified part.
//! Requests come in as JS objects and results go out as JS objects, converted by serde
//! (`from_js`, `to_js_value`); embeddings cross as typed arrays.

use std::collections::HashMap;
use std::rc::Rc;

use burn::prelude::Device;
use js_sys::{Float32Array, Int8Array, Promise};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{from_js, to_js, to_js_value};
use crate::catalog::{CatalogStore, Manifest, ShardStream};
use crate::error::{Error, ErrorKind};
use crate::scorer::{api, model, rank::Scorer};

/// One of `nearest`'s answers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Match {
    item_id: String,
    score: f32,
    item: serde_json::Value,
}

/// A catalog being loaded or loaded: the manifest, the shards' streams in progress and
/// the verified items.
#[wasm_bindgen]
pub struct WasmCatalog {
    store: CatalogStore,
    streams: HashMap<usize, ShardStream>,
    /// The scorer over the items loaded when it was built (rebuilt when more arrive),
    /// and whether it is on WebGPU.
    scorer: Option<(usize, Rc<Scorer>)>,
    device: Device,
}

/// One recommendation in flight on an asynchronous device (WebGPU): the user vectors
/// and, once `run` resolved, the term scores. `WasmCatalog.finishRecommend` ranks them.
#[wasm_bindgen]
pub struct RecommendJob {
    scorer: Rc<Scorer>,
    items: usize,
    request: api::RecommendRequest,
    prepared: api::Prepared,
    terms: Rc<std::cell::RefCell<Option<crate::scorer::rank::Terms>>>,
}

#[wasm_bindgen]
impl RecommendJob {
    /// Computes the term scores on the device; resolves when they are read back.
    pub fn run(&self) -> Promise {
        let scorer = self.scorer.clone();
        let query = self.prepared.query.clone();
        let slot = self.terms.clone();
        future_to_promise(async move {
            let mut terms = scorer.terms_async(&[&query]).await.map_err(to_js)?;
            *slot.borrow_mut() = terms.pop();
            Ok(JsValue::UNDEFINED)
        })
    }
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
        Ok(WasmCatalog { store: CatalogStore::new(manifest), streams: HashMap::new(), scorer: None, device: Device::flex() })
    }

    /// The manifest as validated, as a JS object.
    pub fn manifest(&self) -> Result<JsValue, JsValue> {
        to_js_value(self.store.manifest())
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

    /// `{itemsLoaded, itemsTotal, shardsLoaded, shardsTotal, failed: [{shard, reason}], complete}`.
    pub fn status(&self) -> Result<JsValue, JsValue> {
        to_js_value(&self.store.load_status())
    }

    /// The item with this id (`null` when it is not loaded).
    pub fn item(&self, id: &str) -> Result<JsValue, JsValue> {
        match self.store.index_of(id) {
            Some(i) => to_js_value(&self.store.item_json(i, false)),
            None => Ok(JsValue::NULL),
        }
    }

    /// Loaded items `offset..offset + limit`, in catalog order; with `quantized`, each
    /// also carries `scale` and its int8 `embedding` values.
    pub fn items(&self, offset: usize, limit: usize, quantized: bool) -> Result<JsValue, JsValue> {
        let end = offset.saturating_add(limit).min(self.store.len());
        let rows: Vec<serde_json::Value> =
            (offset.min(end)..end).map(|i| self.store.item_json(i as u32, quantized)).collect();
        to_js_value(&rows)
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

    /// The item with its stored `scale` and int8 `embedding` values, as `items(.., true)`
    /// gives them (`null` when it is not loaded): what a profile keeps of an item so that
    /// other catalogs can score with its events.
    #[wasm_bindgen(js_name = quantizedItem)]
    pub fn quantized_item(&self, id: &str) -> Result<JsValue, JsValue> {
        match self.store.index_of(id) {
            Some(i) => to_js_value(&self.store.item_json(i, true)),
            None => Ok(JsValue::NULL),
        }
    }

    /// The `k` loaded items nearest to `query` (cosine): `[{itemId, score, item}]`;
    /// `excludeId` (optional) is left out. `k` past [`crate::limits::MAX_K`] is refused.
    pub fn nearest(&self, query: &[f32], k: usize, exclude_id: Option<String>) -> Result<JsValue, JsValue> {
        let exclude = exclude_id.as_deref().and_then(|id| self.store.index_of(id));
        let found = self.store.nearest(query, k, exclude).map_err(to_js)?;
        let rows: Vec<Match> = found
            .iter()
            .filter_map(|n| {
                let item_id = self.store.item(n.index)?.id.clone();
                Some(Match { item_id, score: n.score, item: self.store.item_json(n.index, false) })
            })
            .collect();
        to_js_value(&rows)
    }

    /// Recommendations for a profile on burn's CPU backend: `request` is
    /// `{events: [{itemId, type, value?, ageDays?, scenario?}], interests: [{embedding,
    /// weight?, ageDays?}], k?, diversity?, exclude?, scenario?, rankBy?, eventWeights?}`;
    /// the answer is `{results: [{itemId, score, item, because, predictedRating?}],
    /// partial, warnings}`. The profile comes in with the call and is not kept. On WebGPU
    /// use `prepareRecommend`, `RecommendJob.run` and `finishRecommend`.
    pub fn recommend(&mut self, request: JsValue) -> Result<JsValue, JsValue> {
        let request: api::RecommendRequest = from_js(request, "the recommend request")?;
        let scorer = self.current_scorer()?;
        to_js_value(&api::recommend(&self.store, &scorer, &request).map_err(to_js)?)
    }

    /// Moves scoring to the browser's WebGPU (the WebGPU build only); later calls
    /// rebuild the item matrix there.
    #[wasm_bindgen(js_name = useWebGpu)]
    pub fn use_webgpu(&mut self) -> Promise {
        #[cfg(feature = "webgpu")]
        {
            // The device is acquired first; the catalog takes it in `setDevice`.
            future_to_promise(async move {
                super::webgpu_device().await.map_err(to_js)?;
                Ok(JsValue::TRUE)
            })
        }
        #[cfg(not(feature = "webgpu"))]
        {
            let err = to_js(Error::new(ErrorKind::Backend, "this build of localrec has no webgpu support"));
            future_to_promise(async move { Err(err) })
        }
    }

    /// Takes the WebGPU device acquired by `useWebGpu`; returns whether scoring is now there.
    #[wasm_bindgen(js_name = takeWebGpu)]
    pub fn take_webgpu(&mut self) -> bool {
        #[cfg(feature = "webgpu")]
        if let Some(device) = super::WEBGPU.with(|d| d.borrow().clone()) {
            self.device = device;
            self.scorer = None;
            return true;
        }
        false
    }

    /// Starts a recommendation whose scores are computed asynchronously.
    #[wasm_bindgen(js_name = prepareRecommend)]
    pub fn prepare_recommend(&mut self, request: JsValue) -> Result<RecommendJob, JsValue> {
        let request: api::RecommendRequest = from_js(request, "the recommend request")?;
        let scorer = self.current_scorer()?;
        let prepared = api::prepare(&self.store, &scorer, &request).map_err(to_js)?;
        Ok(RecommendJob {
            scorer,
            items: self.store.len(),
            request,
            prepared,
            terms: Rc::new(std::cell::RefCell::new(None)),
        })
    }

    /// Ranks a job whose `run` resolved: the same answer as `recommend`, or `undefined`
    /// when a shard arrived while the scores were computed (the job is stale: ask again).
    #[wasm_bindgen(js_name = finishRecommend)]
    pub fn finish_recommend(&self, job: &RecommendJob) -> Result<JsValue, JsValue> {
        if job.items != self.store.len() {
            return Ok(JsValue::UNDEFINED);
        }
        let terms = job.terms.borrow_mut().take().ok_or_else(|| input_error("the job has not run"))?;
        let answer = api::finish(&self.store, &job.scorer, &job.request, &job.prepared, &terms).map_err(to_js)?;
        to_js_value(&answer)
    }

    /// Which device scores: `"cpu"` or `"webgpu"`.
    #[wasm_bindgen(js_name = scoringBackend)]
    pub fn scoring_backend(&self) -> String {
        if self.device == Device::flex() { "cpu".into() } else { "webgpu".into() }
    }
}

impl WasmCatalog {
    fn current_scorer(&mut self) -> Result<Rc<Scorer>, JsValue> {
        if let Some((n, scorer)) = &self.scorer
            && *n == self.store.len()
        {
            return Ok(scorer.clone());
        }
        let (items, params) = model::from_store(&self.store).map_err(to_js)?;
        let scorer = Rc::new(Scorer::for_device(items, params, &self.device).map_err(to_js)?);
        self.scorer = Some((self.store.len(), scorer.clone()));
        Ok(scorer)
    }
}

// localrec: the browser library's entry module. It only re-exports: everything heavy runs
// in Web Workers (encoder-worker.js, catalog-worker.js); the classes here post messages,
// so the page's main thread stays free. Importing it defines <localrec-recommendations>
// (element.js), as importing element.js alone does.

export { Catalog } from './catalog.js';
export { ELEMENT_TAG, LocalrecRecommendations } from './element.js';
export { CATALOG_CACHE_NAME, MODEL_CACHE_NAME, WASM_CACHE_NAME } from './download.js';
export { Encoder } from './encoder.js';
export { LocalrecError } from './errors.js';
export * as limits from './limits.js';
export { Recommender } from './recommender.js';

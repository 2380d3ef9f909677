//! The collaborative scorer: everything between a catalog's item vectors and a ranked
//! list for one user. Offline, `train` fits the item side (implicit ALS factors, a
//! low-rank EASE item-item model, a ridge map from text embeddings into both, and the
//! blend weights, chosen on held-out users). On the device, `profile` folds the
//! user's own events into user vectors (the exact ALS fold-in, a k x k solve) and
//! `rank` scores every item with one matrix product on the burn backend, then
//! excludes, re-ranks for diversity and explains. `metrics` is the evaluation
//! protocol's arithmetic, shared by `localrec eval` and tests.
//!
//! No I/O here: the caller reads files or streams shards.

pub mod als;
pub mod api;
pub mod bench;
#[cfg(feature = "publish")]
pub mod cold;
#[cfg(feature = "publish")]
pub mod cross;
#[cfg(feature = "publish")]
pub mod ease;
#[cfg(feature = "publish")]
pub mod evaluate;
#[cfg(feature = "publish")]
pub mod fit;
#[cfg(feature = "publish")]
pub mod imported;
pub mod linalg;
pub mod metrics;
pub mod model;
pub mod profile;
pub mod rating;
pub mod rank;
pub mod sparse;
pub mod vae;
#[cfg(feature = "publish")]
pub mod train;
#[cfg(feature = "publish")]
pub mod trial;
#[cfg(feature = "publish")]
pub mod tune;

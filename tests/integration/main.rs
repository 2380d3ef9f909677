//! Integration tests, linked into one binary so the large burn dependency is linked once.
//!
//! - `parity`: sentence-transformers parity on the golden fixture, CPU and wgpu.
//! - `bad_input`: the library's answers to bad input.
//! - `cli`: the `localrec` binary.
//! - `catalog`: `localrec build`, `merge` and `inspect` on a slice of ml-latest-small.
//! - `fuzz_regressions`: the fuzz targets' saved inputs (tests/fixtures/fuzz-regressions/)
//!   and seed corpus, through the targets' own code (fuzz/harness.rs).
//! - `spark`: a real Spark ALS model imported; fold-in parity with Spark's user factors.
//! - `fuzz_bounded`: the same targets fuzzed for a time budget each on stable
//!   (`LOCALREC_FUZZ_SECONDS`, default 20).

mod bad_input;
mod catalog;
mod cli;
mod common;
mod fuzz_bounded;
mod fuzz_regressions;
mod parity;
mod spark;

//! Integration tests, linked into one binary so the large burn dependency is linked once.
//!
//! - `parity`: sentence-transformers parity on the golden fixture, CPU and wgpu.
//! - `bad_input`: the library's answers to bad input.
//! - `cli`: the `localrec` binary.

mod bad_input;
mod cli;
mod common;
mod parity;

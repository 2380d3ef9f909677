//! Bounded fuzzing on the stable toolchain, so that `cargo test` (and `make test`, and a
//! cold CI) fuzzes every target without nightly or cargo-fuzz: the targets' own code
//! (fuzz/harness.rs) fed inputs generated from the seed corpus and the saved regression
//! inputs, for a time budget per target.
//!
//! Inputs come from a seeded xorshift generator, so a run is reproducible: the same seed
//! gives the same sequence of inputs (how far it gets depends on the budget). Each input
//! is a parent from the pool with one to four mutations: bit flips, interesting bytes and
//! integers, byte inserts, deletes and duplications, splices between two pool inputs,
//! tokens from the seeds' own keys; and, on the JSON part of an input (all of it, the
//! safetensors header, either half of a config pair), JSON-aware ones: a number replaced
//! by an extreme (0, -1, 2^31, 2^32, 2^53, 2^64 - 1, 1e308, 5e-324, ...) or moved by an
//! amount that makes arithmetic on it wrap (`x + 2^63`, `x + 2^32`, `2^64 - x`), a value replaced
//! by a huge array or string, deep nesting, null or another type, keys dropped, renamed,
//! added from the seeds' vocabulary or duplicated, array elements dropped or repeated.
//! An input whose outcome is new joins the pool, a coarse coverage signal without
//! instrumentation: for a refusal its message (digits masked), for an accepted input the
//! target's answer with the shape of its JSON (keys, kinds, array lengths by power of two,
//! numbers by class).
//!
//! A panic is caught; the input is shrunk (while it panics at the same place), written to
//! `tests/fixtures/fuzz-regressions/<target>/crash-*` (replayed from then on by
//! `fuzz_regressions.rs`) and the test fails naming the file, the message and the stack.
//! An abort (an allocation that fails) cannot be caught: rerun with `LOCALREC_FUZZ_TRACE=1`
//! and the input about to run is kept in the test's temporary folder, named on stderr.
//!
//! Each target prints one line to stderr (past the test harness's capture): executions,
//! distinct accepted and refused outcomes, crashes, and the slowest input's time (with
//! `LOCALREC_FUZZ_TRACE=1` that input is kept too).
//!
//! Environment: `LOCALREC_FUZZ_SECONDS` (per target, default 20; 0 runs the pool once),
//! `LOCALREC_FUZZ_SEED` (default 1), `LOCALREC_FUZZ_SEEDS_ONLY` (start from the generated
//! seeds alone, without the saved inputs: what the fuzzer finds by itself).

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::fuzz_regressions::{harness, regression_inputs, seeds};

/// Seconds per target when `LOCALREC_FUZZ_SECONDS` is unset.
const DEFAULT_SECONDS: f64 = 20.0;
/// Most inputs kept in a target's pool besides the seeds and saved inputs, and their bytes.
const POOL_CAP: usize = 1024;
const POOL_BYTES: usize = 64 << 20;
/// Distinct crash sites reported per target before the run stops.
const MAX_CRASHES: usize = 5;
/// Time spent shrinking one crash input.
const SHRINK_BUDGET: Duration = Duration::from_secs(3);

/// Where a target's input holds JSON text, for the JSON-aware mutations.
#[derive(Clone, Copy, PartialEq)]
enum JsonPart {
    /// Binary throughout (a shard).
    None,
    /// The whole input.
    Whole,
    /// `config.json`, then after a NUL byte `sentence_bert_config.json`: either half.
    NulPair,
    /// A safetensors file: the header after the 8-byte length, which is rewritten to fit.
    SafetensorsHeader,
}

struct Target {
    name: &'static str,
    run: fn(&[u8]) -> Result<String, String>,
    json: JsonPart,
    ext: &'static str,
    /// Longest input generated.
    max_len: usize,
}

fn target(name: &'static str, run: fn(&[u8]) -> Result<String, String>, json: JsonPart, ext: &'static str, max_len: usize) -> Target {
    Target { name, run, json, ext, max_len }
}

fn shard(data: &[u8]) -> Result<String, String> {
    harness::shard(data).map(|n| format!("{n} items"))
}

fn manifest(data: &[u8]) -> Result<String, String> {
    harness::manifest(data).map(|()| "ok".to_string())
}

fn targets(name: &str) -> Target {
    match name {
        "shard" => target("shard", shard, JsonPart::None, "bin", 1 << 16),
        "manifest" => target("manifest", manifest, JsonPart::Whole, "json", 1 << 21),
        "scorer_params" => target("scorer_params", harness::scorer_params, JsonPart::Whole, "json", 1 << 20),
        "recommend_request" => target("recommend_request", harness::recommend_request, JsonPart::Whole, "json", 1 << 22),
        "model_config" => target("model_config", harness::model_config, JsonPart::NulPair, "bin", 1 << 16),
        "weights" => target("weights", harness::weights, JsonPart::SafetensorsHeader, "safetensors", 1 << 16),
        "tokenizer" => target("tokenizer", harness::tokenizer, JsonPart::Whole, "json", 1 << 14),
        other => panic!("no fuzz target {other}"),
    }
}

/// xorshift64*: small, fast, and the same sequence on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// FNV-1a, for per-target seeds and crash file names.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

// ---------------------------------------------------------------------------------------
// Byte-level mutations.

const INTERESTING_BYTES: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'-'];

fn interesting_int(rng: &mut Rng) -> u64 {
    *rng.pick(&[
        0,
        1,
        2,
        0x7f,
        0x80,
        0xff,
        0x100,
        0x7fff,
        0xffff,
        0x1_0000,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x1_0000_0000,
        1 << 53,
        i64::MAX as u64,
        1 << 63,
        u64::MAX,
        u64::MAX - 1,
    ])
}

fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>], dictionary: &[Vec<u8>]) {
    let len = data.len();
    match rng.below(11) {
        0 if len > 0 => {
            let at = rng.below(len);
            data[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            data[at] = rng.next() as u8;
        }
        2 if len > 0 => {
            let at = rng.below(len);
            data[at] = *rng.pick(&INTERESTING_BYTES);
        }
        3 => {
            // An interesting integer, 1 to 8 bytes little-endian, over what was there.
            let width = *rng.pick(&[1usize, 2, 4, 8]);
            if len >= width {
                let at = rng.below(len - width + 1);
                let value = interesting_int(rng).to_le_bytes();
                data[at..at + width].copy_from_slice(&value[..width]);
            }
        }
        4 if len > 0 => {
            // A small step up or down on a u32.
            let at = rng.below(len);
            let end = (at + 4).min(len);
            let mut word = [0u8; 4];
            word[..end - at].copy_from_slice(&data[at..end]);
            let step = 1 + rng.below(16) as u32;
            let value = if rng.one_in(2) { u32::from_le_bytes(word).wrapping_add(step) } else { u32::from_le_bytes(word).wrapping_sub(step) };
            data[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
        }
        5 => {
            let at = rng.below(len + 1);
            let bytes: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
            data.splice(at..at, bytes).for_each(drop);
        }
        6 if len > 0 => {
            let at = rng.below(len);
            let most = if rng.one_in(4) { len } else { 64 };
            let n = 1 + rng.below((len - at).min(most));
            data.drain(at..at + n);
        }
        7 if len > 0 => {
            // A range copied to another place (repeated records, fields, array items).
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(256));
            let copy = data[at..at + n].to_vec();
            let to = rng.below(len + 1);
            data.splice(to..to, copy).for_each(drop);
        }
        8 if !pool.is_empty() => {
            // Splice: this input's head, another's tail.
            let other = rng.pick(pool);
            let head = rng.below(len + 1);
            let tail = rng.below(other.len() + 1);
            data.truncate(head);
            data.extend_from_slice(&other[tail..]);
        }
        9 if !dictionary.is_empty() => {
            let at = rng.below(len + 1);
            let token = rng.pick(dictionary).clone();
            data.splice(at..at, token).for_each(drop);
        }
        _ => {
            if len > 0 {
                let at = rng.below(len);
                data[at] = data[at].wrapping_add(1);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON-aware mutations.

/// Numbers at the edges: of u8/u16/u32/u64/i64, of f32 and f64, of the format's caps.
fn extreme_number(rng: &mut Rng) -> Value {
    let n = |text: &str| -> Value { serde_json::from_str(text).expect("a json number") };
    n(*rng.pick(&[
        "0",
        "-1",
        "1",
        "-0.0",
        "0.5",
        "2",
        "255",
        "256",
        "1000",
        "1001",
        "1024",
        "1025",
        "2048",
        "2049",
        "4096",
        "4097",
        "65535",
        "65536",
        "100000",
        "100001",
        "10000000",
        "100000000",
        "2147483647",
        "2147483648",
        "-2147483648",
        "4294967295",
        "4294967296",
        "9007199254740992",
        "9007199254740993",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "1e20",
        "1e308",
        "-1e308",
        "5e-324",
        "1.4e-45",
        "1e-7",
        "3.4028235e38",
        "3.5e38",
        "-3.5e38",
    ]))
}

/// `x` moved by an amount that makes arithmetic on it wrap: `2 * (x + 2^63)` is `2x` in
/// u64, `x + 2^32` is `x` in u32, `2^64 - x` is `-x`.
fn wrapped_number(rng: &mut Rng, x: &serde_json::Number) -> Value {
    let Some(x) = x.as_u64() else { return extreme_number(rng) };
    let moved = match rng.below(7) {
        0 => x.wrapping_add(1 << 63),
        1 => x.wrapping_add(1 << 32),
        2 => x.wrapping_add(1 << 31),
        3 => 0u64.wrapping_sub(x),
        4 => x.wrapping_mul(2),
        5 => x.wrapping_add(1),
        _ => x.wrapping_sub(1),
    };
    Value::from(moved)
}

/// A string of up to about `room` bytes (its JSON text may be six times longer).
fn long_string(rng: &mut Rng, room: usize) -> String {
    let n = (*rng.pick(&[0usize, 1, 255, 256, 4096, 65536, 1 << 20])).min(room / 6);
    let unit = *rng.pick(&["a", "é", "\u{1F600}", "/", "..", "\\", "%2e", "\0", " \t\n"]);
    unit.repeat(n.div_ceil(unit.len().max(1)))
}

/// How many copies of `item` fit in `room` bytes of JSON (at least one).
fn copies(item: &Value, wanted: usize, room: usize) -> usize {
    let size = serde_json::to_vec(item).map_or(1, |b| b.len() + 1);
    wanted.min(room / size).max(1)
}

/// A value of a random kind, extreme where it can be, of about `room` bytes at most.
fn extreme_value(rng: &mut Rng, siblings: &[Value], room: usize) -> Value {
    match rng.below(10) {
        0..=3 => extreme_number(rng),
        4 => Value::String(long_string(rng, room)),
        5 => {
            // A huge array of one repeated element (a number, or a sibling's value).
            let item = if !siblings.is_empty() && rng.one_in(2) { rng.pick(siblings).clone() } else { extreme_number(rng) };
            let n = copies(&item, *rng.pick(&[2usize, 16, 1000, 100_001]), room);
            Value::Array(vec![item; n])
        }
        6 => {
            let depth = *rng.pick(&[2usize, 64, 127, 128, 129, 5000]);
            (0..depth).fold(Value::Null, |inner, _| Value::Array(vec![inner]))
        }
        7 => rng.pick(&[Value::Null, Value::Bool(true), Value::Bool(false)]).clone(),
        8 => Value::Object(Default::default()),
        _ => Value::Array(vec![]),
    }
}

/// Every node of `value`, as a path of keys and indices (at most `limit`).
#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(value: &Value, limit: usize) -> Vec<Vec<Step>> {
    let mut out = vec![Vec::new()];
    let mut i = 0;
    while i < out.len() && out.len() < limit {
        let node = at(value, &out[i]).expect("a path just collected");
        let children: Vec<Step> = match node {
            Value::Object(map) => map.keys().map(|k| Step::Key(k.clone())).collect(),
            // Long arrays: the first few elements stand for the rest.
            Value::Array(items) => (0..items.len().min(8)).map(Step::Index).collect(),
            _ => Vec::new(),
        };
        for child in children {
            let mut path = out[i].clone();
            path.push(child);
            out.push(path);
        }
        i += 1;
    }
    out
}

fn at<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

fn at_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get_mut(k),
        Step::Index(i) => v.get_mut(i),
    })
}

/// One change to a parsed JSON document.
fn mutate_tree(rng: &mut Rng, root: &mut Value, keys: &[String], room: usize) {
    let mut all = paths(root, 4096);
    // Half the time a number: sizes and counts are where arithmetic goes wrong.
    if rng.one_in(2) {
        let numbers: Vec<Vec<Step>> = all.iter().filter(|p| matches!(at(root, p), Some(Value::Number(_)))).cloned().collect();
        if !numbers.is_empty() {
            all = numbers;
        }
    }
    let path = rng.pick(&all).clone();
    let siblings: Vec<Value> = match path.split_last() {
        Some((_, parent)) => match at(root, parent) {
            Some(Value::Object(m)) => m.values().cloned().collect(),
            Some(Value::Array(a)) => a.iter().take(4).cloned().collect(),
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    let node = at_mut(root, &path).expect("a path of this document");
    match node {
        Value::Number(n) if rng.below(3) > 0 => *node = if rng.one_in(2) { wrapped_number(rng, n) } else { extreme_number(rng) },
        Value::Object(map) if !rng.one_in(3) => match rng.below(4) {
            0 | 1 if !map.is_empty() => {
                let key = map.keys().nth(rng.below(map.len())).expect("a key").clone();
                map.remove(&key);
            }
            2 if !keys.is_empty() => {
                let key = rng.pick(keys).clone();
                let value = extreme_value(rng, &siblings, room);
                map.insert(key, value);
            }
            _ if !map.is_empty() => {
                // Renamed: case, a prefix or suffix, or emptied.
                let key = map.keys().nth(rng.below(map.len())).expect("a key").clone();
                let value = map.remove(&key).expect("the key");
                let renamed = match rng.below(3) {
                    0 => key.to_uppercase(),
                    1 => format!("{key}_"),
                    _ => String::new(),
                };
                map.insert(renamed, value);
            }
            _ => *node = extreme_value(rng, &siblings, room),
        },
        Value::Array(items) if !rng.one_in(3) => match rng.below(4) {
            0 if !items.is_empty() => {
                items.remove(rng.below(items.len()));
            }
            1 if !items.is_empty() => {
                let item = items[rng.below(items.len())].clone();
                let n = copies(&item, *rng.pick(&[1usize, 10, 1000, 100_001]), room);
                let at = rng.below(items.len() + 1);
                items.splice(at..at, std::iter::repeat_n(item, n)).for_each(drop);
            }
            2 if items.len() > 1 => {
                let (a, b) = (rng.below(items.len()), rng.below(items.len()));
                items.swap(a, b);
            }
            _ => items.clear(),
        },
        Value::String(s) if rng.one_in(2) => {
            *s = match rng.below(4) {
                0 => long_string(rng, room),
                1 if !keys.is_empty() => rng.pick(keys).clone(),
                2 => s.to_uppercase(),
                _ => String::new(),
            }
        }
        _ => *node = extreme_value(rng, &siblings, room),
    }
}

/// Start offsets of each `"key":` in JSON text (a string token followed by a colon).
fn key_offsets(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'"' {
            let start = i;
            i += 1;
            while i < text.len() && text[i] != b'"' {
                i += if text[i] == b'\\' { 2 } else { 1 };
            }
            let end = (i + 1).min(text.len());
            let mut j = end;
            while j < text.len() && text[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < text.len() && text[j] == b':' {
                out.push((start, j + 1));
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Byte ranges of number tokens in JSON-ish text.
fn number_ranges(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let starts = text[i].is_ascii_digit() || (text[i] == b'-' && text.get(i + 1).is_some_and(u8::is_ascii_digit));
        let after_word = i > 0 && (text[i - 1].is_ascii_alphanumeric() || text[i - 1] == b'_');
        if starts && !after_word {
            let start = i;
            i += 1;
            while i < text.len() && (text[i].is_ascii_digit() || b".eE+-".contains(&text[i])) {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

/// One JSON-aware change to `text`: on the parsed tree when it parses, then maybe a
/// duplicated key (which a parsed tree cannot hold); on the tokens when it does not.
/// `max_len` bounds what the changes add.
fn mutate_json(rng: &mut Rng, text: &[u8], keys: &[String], max_len: usize) -> Vec<u8> {
    let room = max_len.saturating_sub(text.len()).max(256);
    let mut out = match serde_json::from_slice::<Value>(text) {
        Ok(mut tree) if !rng.one_in(4) => {
            mutate_tree(rng, &mut tree, keys, room);
            serde_json::to_vec(&tree).expect("a json value serialises")
        }
        _ => {
            let mut out = text.to_vec();
            let numbers = number_ranges(&out);
            if !numbers.is_empty() && rng.one_in(2) {
                let (a, b) = *rng.pick(&numbers);
                out.splice(a..b, extreme_number(rng).to_string().into_bytes()).for_each(drop);
            } else {
                let offsets = key_offsets(&out);
                if !offsets.is_empty() {
                    // The key and what follows up to the next comma or brace, dropped.
                    let (a, b) = *rng.pick(&offsets);
                    let end = out[b..].iter().position(|&c| c == b',' || c == b'}').map_or(out.len(), |p| b + p + 1);
                    out.drain(a..end);
                }
            }
            out
        }
    };
    if rng.one_in(3) {
        // A key said twice in its object, the second time with an extreme value.
        let offsets = key_offsets(&out);
        if !offsets.is_empty() {
            let (a, b) = *rng.pick(&offsets);
            let mut dup = out[a..b].to_vec();
            dup.extend_from_slice(extreme_value(rng, &[], room).to_string().as_bytes());
            dup.push(b',');
            if dup.len() < 1 << 20 {
                out.splice(a..a, dup).for_each(drop);
            }
        }
    }
    out
}

/// Applies a JSON-aware change to the JSON part of `data`.
fn mutate_json_part(rng: &mut Rng, data: &mut Vec<u8>, part: JsonPart, keys: &[String], max_len: usize) {
    match part {
        JsonPart::None => {}
        JsonPart::Whole => *data = mutate_json(rng, data, keys, max_len),
        JsonPart::NulPair => match data.iter().position(|&b| b == 0) {
            Some(nul) if rng.one_in(2) => {
                let second = mutate_json(rng, &data[nul + 1..], keys, max_len);
                data.truncate(nul + 1);
                data.extend(second);
            }
            Some(nul) => {
                let first = mutate_json(rng, &data[..nul], keys, max_len);
                data.splice(..nul, first).for_each(drop);
            }
            None if rng.one_in(4) => {
                let sentence = format!("\0{{\"max_seq_length\":{}}}", extreme_number(rng));
                data.extend_from_slice(sentence.as_bytes());
            }
            None => *data = mutate_json(rng, data, keys, max_len),
        },
        JsonPart::SafetensorsHeader => {
            if data.len() < 8 {
                return;
            }
            let n = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
            let Some(end) = usize::try_from(n).ok().and_then(|n| n.checked_add(8)).filter(|&e| e <= data.len()) else {
                return;
            };
            let header = mutate_json(rng, &data[8..end], keys, max_len);
            // Usually the length is fixed up to fit (so the header is what gets tested).
            let length = if rng.one_in(8) { n } else { header.len() as u64 };
            data.splice(8..end, header).for_each(drop);
            data[..8].copy_from_slice(&length.to_le_bytes());
        }
    }
}

/// The seeds' keys and string values, the vocabulary for inserted keys and tokens.
pub(super) fn vocabulary(inputs: &[Vec<u8>]) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut keys = HashSet::new();
    for input in inputs {
        for (a, b) in key_offsets(input) {
            let token = &input[a..b];
            if let Some(end) = token.iter().rposition(|&c| c == b'"')
                && end > 0
                && let Ok(key) = std::str::from_utf8(&token[1..end])
                && key.len() <= 64
            {
                keys.insert(key.to_string());
            }
        }
    }
    let mut keys: Vec<String> = keys.into_iter().collect();
    keys.sort();
    let mut tokens: Vec<Vec<u8>> = keys.iter().map(|k| format!("\"{k}\":").into_bytes()).collect();
    for t in ["null", "true", "[", "]", "{", "}", ",", "\"", "1e308", "-1", "4294967296", "LRCS"] {
        tokens.push(t.as_bytes().to_vec());
    }
    (keys, tokens)
}

// ---------------------------------------------------------------------------------------
// Running inputs and catching panics.

/// A caught panic: its message and where it was raised.
#[derive(Clone, Debug)]
struct Crash {
    message: String,
    location: String,
    backtrace: String,
}

thread_local! {
    /// Whether this thread runs fuzz inputs (its panics are recorded, not printed).
    static FUZZING: Cell<bool> = const { Cell::new(false) };
    static WANT_BACKTRACE: Cell<bool> = const { Cell::new(false) };
    static CAUGHT: RefCell<Option<Crash>> = const { RefCell::new(None) };
}

/// Records the panics of fuzzing threads; every other thread's go to the hook before.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !FUZZING.with(Cell::get) {
                return previous(info);
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(a panic without a message)".into());
            let location = info.location().map_or("unknown".into(), |l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let backtrace = if WANT_BACKTRACE.with(Cell::get) {
                std::backtrace::Backtrace::force_capture().to_string()
            } else {
                String::new()
            };
            CAUGHT.with(|c| *c.borrow_mut() = Some(Crash { message, location, backtrace }));
        }));
    });
}

/// Runs one input: its outcome, or the panic.
fn execute(target: &Target, input: &[u8]) -> Result<Result<String, String>, Crash> {
    FUZZING.with(|f| f.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    FUZZING.with(|f| f.set(false));
    outcome.map_err(|_| {
        CAUGHT.with(|c| c.borrow_mut().take()).unwrap_or_else(|| Crash {
            message: "(panic not recorded)".into(),
            location: "unknown".into(),
            backtrace: String::new(),
        })
    })
}

/// A smaller input that still panics at `location`: chunks removed, halves first.
fn shrink(target: &Target, input: &[u8], location: &str) -> Vec<u8> {
    let started = Instant::now();
    let mut best = input.to_vec();
    let mut chunk = best.len() / 2;
    while chunk > 0 && started.elapsed() < SHRINK_BUDGET {
        let mut at = 0;
        while at < best.len() && started.elapsed() < SHRINK_BUDGET {
            let mut candidate = best.clone();
            candidate.drain(at..(at + chunk).min(best.len()));
            match execute(target, &candidate) {
                Err(crash) if crash.location == location => best = candidate,
                _ => at += chunk,
            }
        }
        chunk /= 2;
    }
    best
}

/// The shape of a JSON value: keys, kinds, array lengths by power of two, short strings,
/// numbers by class. Accepted inputs of a new shape join the pool, so the fuzzer keeps
/// building on inputs that got past the parser with something new in them.
fn shape(value: &Value, out: &mut String) {
    if out.len() > 600 {
        return;
    }
    match value {
        Value::Null => out.push('z'),
        Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        Value::Number(n) => out.push_str(match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(0), _, _) => "0",
            (Some(u), _, _) if u <= 1024 => "n",
            (Some(u), _, _) if u <= u32::MAX as u64 => "N",
            (Some(_), _, _) => "U",
            (None, Some(_), _) => "-",
            (_, _, Some(f)) if f.abs() > f32::MAX as f64 => "F",
            (_, _, Some(f)) if f != 0.0 && f.abs() < f32::MIN_POSITIVE as f64 => "e",
            _ => ".",
        }),
        Value::String(s) if s.len() <= 12 => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        Value::String(s) => out.push_str(&format!("s{}", s.len().ilog2())),
        Value::Array(items) => {
            out.push_str(&format!("[{}", items.len().checked_ilog2().map_or(0, |l| l + 1)));
            for item in items.iter().take(3) {
                shape(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (key, item) in map {
                out.push_str(key);
                out.push(':');
                shape(item, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

/// The shape of an input's JSON part (empty when there is none or it does not parse).
fn input_shape(input: &[u8], part: JsonPart) -> String {
    let parts: Vec<&[u8]> = match part {
        // A shard: the prefix's item count, widths and chunking.
        JsonPart::None => return format!("{:?}", &input[..input.len().min(harness::SHARD_PREFIX_LEN)]),
        JsonPart::Whole => vec![input],
        JsonPart::NulPair => input.splitn(2, |&b| b == 0).collect(),
        JsonPart::SafetensorsHeader => {
            let n = input.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
            let end = usize::try_from(n).ok().and_then(|n| n.checked_add(8)).filter(|&e| e <= input.len());
            end.map_or(vec![], |end| vec![&input[8..end]])
        }
    };
    let mut out = String::new();
    for text in parts {
        if let Ok(value) = serde_json::from_slice::<Value>(text) {
            shape(&value, &mut out);
        }
        out.push('|');
    }
    out
}

/// A refusal with its digits and quoted text masked, so refusals that differ only in a
/// number or in the text they quote count as one outcome. A quote ends at its quote mark
/// before a separator or the end: quoted input may hold the mark itself.
fn signature(outcome: &str) -> String {
    let chars: Vec<char> = outcome.chars().take(400).collect();
    let mut out = String::with_capacity(chars.len());
    let mut quote = None;
    for (i, &c) in chars.iter().enumerate() {
        let closes = chars.get(i + 1).is_none_or(|n| matches!(n, ',' | ';' | ':' | ' ' | ')' | ']'));
        match quote {
            Some(q) if c == q && closes => {
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None if c == '"' || c == '`' => {
                out.push(c);
                out.push('…');
                quote = Some(c);
            }
            None if c.is_ascii_digit() => {
                if !out.ends_with('#') {
                    out.push('#');
                }
            }
            None => out.push(c),
        }
    }
    out
}

fn seconds() -> f64 {
    std::env::var("LOCALREC_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).filter(|s: &f64| s.is_finite() && *s >= 0.0).unwrap_or(DEFAULT_SECONDS)
}

fn seed() -> u64 {
    std::env::var("LOCALREC_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

/// What one bounded run saw.
struct Report {
    executions: u64,
    accepted: usize,
    refused: usize,
    crashes: Vec<(PathBuf, Crash)>,
}

/// Fuzzes `name` for the budget: the pool (seeds and saved inputs) first, then
/// mutations. Crash inputs are shrunk and saved.
fn fuzz(name: &str) -> Report {
    install_panic_hook();
    let target = targets(name);
    let budget = Duration::from_secs_f64(seconds());
    let run_seed = seed();
    let mut rng = Rng::new(fnv(name.as_bytes()) ^ run_seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut pool: Vec<Vec<u8>> = seeds(name).into_iter().map(|(_, bytes)| bytes).collect();
    if std::env::var_os("LOCALREC_FUZZ_SEEDS_ONLY").is_none() {
        pool.extend(regression_inputs(name));
    }
    let fixed = pool.len();
    let mut pool_bytes = 0usize;
    let (keys, dictionary) = vocabulary(&pool);
    let trace = std::env::var_os("LOCALREC_FUZZ_TRACE")
        .map(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-{name}-current.{}", target.ext)));
    if let Some(path) = &trace {
        let _ = writeln!(std::io::stderr(), "fuzz {name}: each input is written to {} before it runs", path.display());
    }

    let mut accepted = HashSet::new();
    let mut refused = HashSet::new();
    let mut accepted_inputs: Vec<usize> = Vec::new();
    let mut crash_sites: HashSet<String> = HashSet::new();
    let mut crashes = Vec::new();
    let mut executions = 0u64;
    let mut slowest = (Duration::ZERO, Vec::new());
    let started = Instant::now();
    let mut next = 0usize;
    loop {
        let fixed_input = (next < fixed).then_some(next);
        let input = if let Some(i) = fixed_input {
            next += 1;
            pool[i].clone()
        } else {
            if started.elapsed() >= budget {
                break;
            }
            // Parents that were accepted reach deeper code: three times in four, one of those.
            // Of two candidates the shorter, so the huge inputs some mutations make stay rare.
            let mut candidate = || {
                if !accepted_inputs.is_empty() && !rng.one_in(4) {
                    accepted_inputs[rng.below(accepted_inputs.len())]
                } else {
                    rng.below(pool.len())
                }
            };
            let (a, b) = (candidate(), candidate());
            let parent = if pool[a].len() <= pool[b].len() { a } else { b };
            let mut data = pool[parent].clone();
            for _ in 0..1 + rng.below(4) {
                if target.json != JsonPart::None && rng.one_in(2) {
                    mutate_json_part(&mut rng, &mut data, target.json, &keys, target.max_len);
                } else {
                    mutate_bytes(&mut rng, &mut data, &pool, &dictionary);
                }
            }
            data.truncate(target.max_len);
            data
        };
        if let Some(path) = &trace {
            let _ = std::fs::write(path, &input);
        }
        executions += 1;
        let began = Instant::now();
        let result = execute(&target, &input);
        if began.elapsed() > slowest.0 {
            slowest = (began.elapsed(), input.clone());
        }
        match result {
            Ok(outcome) => {
                let new = match &outcome {
                    Ok(text) => accepted.insert(format!("{text} {}", input_shape(&input, target.json))),
                    Err(text) => refused.insert(signature(text)),
                };
                match fixed_input {
                    _ if !new => {}
                    Some(i) => {
                        if outcome.is_ok() {
                            accepted_inputs.push(i);
                        }
                    }
                    None => {
                        let full = pool.len() - fixed >= POOL_CAP || pool_bytes + input.len() > POOL_BYTES;
                        pool_bytes += input.len();
                        let slot = if !full || pool.len() == fixed {
                            pool.push(input);
                            pool.len() - 1
                        } else {
                            let slot = fixed + rng.below(pool.len() - fixed);
                            pool_bytes -= pool[slot].len();
                            pool[slot] = input;
                            slot
                        };
                        if outcome.is_ok() {
                            accepted_inputs.push(slot);
                        }
                    }
                }
            }
            Err(crash) => {
                if crash_sites.insert(crash.location.clone()) {
                    let small = shrink(&target, &input, &crash.location);
                    WANT_BACKTRACE.with(|w| w.set(true));
                    let again = execute(&target, &small).err().unwrap_or(crash);
                    WANT_BACKTRACE.with(|w| w.set(false));
                    let path = save_crash(&target, &small, &again);
                    crashes.push((path, again));
                    if crashes.len() >= MAX_CRASHES {
                        break;
                    }
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let report = Report { executions, accepted: accepted.len(), refused: refused.len(), crashes };
    let _ = writeln!(
        std::io::stderr(),
        "fuzz {name}: {} executions in {elapsed:.1} s (seed {run_seed}), {} distinct accepted, {} distinct refused, {} crashes; slowest input {} ms",
        report.executions,
        report.accepted,
        report.refused,
        report.crashes.len(),
        slowest.0.as_millis()
    );
    if let Some(path) = &trace {
        let path = path.with_file_name(format!("fuzz-{name}-slowest.{}", target.ext));
        let _ = std::fs::write(&path, &slowest.1);
        let _ = writeln!(std::io::stderr(), "fuzz {name}: the slowest input is in {}", path.display());
    }
    report
}

/// Writes a crash input beside the regression inputs: `crash-<file>-<line>-<hash>`.
fn save_crash(target: &Target, input: &[u8], crash: &Crash) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-regressions").join(target.name);
    let site: String = crash
        .location
        .rsplit('/')
        .next()
        .unwrap_or("unknown")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = dir.join(format!("crash-{site}-{:08x}.{}", fnv(input) as u32, target.ext));
    std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)).unwrap_or_else(|e| {
        panic!("fuzz {}: cannot save a crash input at {}: {e}", target.name, path.display())
    });
    path
}

fn assert_no_crashes(name: &str) {
    let report = fuzz(name);
    assert!(report.executions > 0, "fuzz {name}: nothing ran");
    if !report.crashes.is_empty() {
        let lines: Vec<String> = report
            .crashes
            .iter()
            .map(|(path, crash)| {
                let stack: Vec<&str> = crash.backtrace.lines().take(60).collect();
                format!("{}\n  panicked at {}: {}\n{}", path.display(), crash.location, crash.message, stack.join("\n"))
            })
            .collect();
        panic!(
            "fuzz {name}: {} crash input(s) saved (replayed by fuzz_regressions from now on):\n{}",
            report.crashes.len(),
            lines.join("\n\n")
        );
    }
}

#[test]
fn fuzzing_the_shard_parser_for_the_budget_finds_no_panic() {
    assert_no_crashes("shard");
}

#[test]
fn fuzzing_the_manifest_parser_for_the_budget_finds_no_panic() {
    assert_no_crashes("manifest");
}

#[test]
fn fuzzing_the_scorer_params_for_the_budget_finds_no_panic() {
    assert_no_crashes("scorer_params");
}

#[test]
fn fuzzing_recommend_requests_for_the_budget_finds_no_panic() {
    assert_no_crashes("recommend_request");
}

#[test]
fn fuzzing_the_model_config_for_the_budget_finds_no_panic() {
    assert_no_crashes("model_config");
}

#[test]
fn fuzzing_the_weights_reader_for_the_budget_finds_no_panic() {
    assert_no_crashes("weights");
}

#[test]
fn fuzzing_the_tokenizer_file_for_the_budget_finds_no_panic() {
    assert_no_crashes("tokenizer");
}

#[test]
fn the_generator_is_reproducible_and_its_json_mutations_keep_json_parseable_often() {
    let seed = b"{\"a\":[1,2,{\"b\":\"x\"}],\"c\":3.5}".to_vec();
    let keys = vec!["a".to_string(), "k".to_string()];
    let run = |s: u64| {
        let mut rng = Rng::new(s);
        (0..200).map(|_| mutate_json(&mut rng, &seed, &keys, 1 << 16)).collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7), "the same seed gives the same inputs");
    assert_ne!(run(7), run(8));
    let parsed = run(7).iter().filter(|m| serde_json::from_slice::<Value>(m).is_ok()).count();
    assert!(parsed > 100, "only {parsed} of 200 mutations parse: the tree mutations are not used");
    let changed = run(7).iter().filter(|m| **m != seed).count();
    assert!(changed > 150, "only {changed} of 200 mutations changed the input");
    assert_eq!(number_ranges(b"[12,-3.5e7,x1]"), vec![(1, 3), (4, 10)]);
    assert_eq!(key_offsets(b"{\"a\" :1,\"b\\\"\":[\"c\"]}"), vec![(1, 6), (8, 14)]);
}

#[test]
fn refusals_that_differ_only_in_numbers_or_quoted_text_count_as_one_outcome() {
    assert_eq!(signature("item \"12\" at 3: `x`, 45"), signature("item \"abc\" at 9: `yy`, 6"));
    assert_ne!(signature("k is 5"), signature("diversity is 5"));
    // A quoted field name holding the quote mark itself.
    assert_eq!(
        signature("unknown field `a`b`, expected one of `k`, `events`"),
        signature("unknown field `c`, expected one of `k`, `events`")
    );
}

#[test]
fn a_safetensors_header_mutation_rewrites_the_length_to_fit() {
    let header = br#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header);
    file.extend_from_slice(&1.0f32.to_le_bytes());
    let mut rng = Rng::new(3);
    let mut fitted = 0;
    for _ in 0..100 {
        let mut data = file.clone();
        mutate_json_part(&mut rng, &mut data, JsonPart::SafetensorsHeader, &[], 1 << 16);
        let n = u64::from_le_bytes(data[..8].try_into().unwrap()) as usize;
        fitted += usize::from(n + 8 + 4 == data.len());
    }
    assert!(fitted > 80, "{fitted} of 100 headers fit their length");
}

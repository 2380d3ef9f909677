//! Every limit and vocabulary the browser API checks, defined once. The Rust side
//! enforces them where requests are answered; the JavaScript package imports the same
//! values from `pkg/limits.js`, which is generated from this file (the unit test below
//! fails when the committed copy differs; `LOCALREC_BLESS=1 cargo test --lib limits`
//! rewrites it), so the two can never drift.

use crate::error::ErrorKind;

/// Most results one request may ask for (`k`).
pub const MAX_K: usize = 1000;
/// Results when a request names no `k`.
pub const DEFAULT_K: usize = 10;
/// Most events a profile keeps (the oldest roll off) and one request may carry.
pub const MAX_EVENTS: usize = 100_000;
/// Most typed interests a profile keeps.
pub const MAX_INTERESTS: usize = 1_000;
/// Longest text (an interest, a search) in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// Longest item id in characters.
pub const MAX_ITEM_ID_CHARS: usize = 1_000;
/// Longest scenario name in characters.
pub const MAX_SCENARIO_CHARS: usize = 200;
/// Longest profile name in characters.
pub const MAX_PROFILE_NAME_CHARS: usize = 200;
/// Largest profile document `import()` reads, in characters of JSON.
pub const MAX_IMPORT_CHARS: usize = 128 << 20;
/// The profile export document's `format` and `version`.
pub const PROFILE_FORMAT: &str = "localrec-profile";
/// See [`PROFILE_FORMAT`].
pub const PROFILE_VERSION: u32 = 2;
/// Kinds of events a profile records.
pub const EVENT_TYPES: [&str; 6] = ["view", "click", "like", "dislike", "rate", "purchase"];
/// The event type that carries a rating (`value`, in `RATING_RANGE`).
pub const RATE_EVENT: &str = EVENT_TYPES[4];
/// The values a `rate` event may carry (inclusive); 3 is neutral.
pub const RATING_RANGE: (f32, f32) = (0.0, 10.0);
/// The MMR strength `diversity` (inclusive).
pub const DIVERSITY_RANGE: (f32, f32) = (0.0, 1.0);
/// How a recommend request may rank: the tuned blend, item-to-item, text alone, or the
/// collaborative (ALS) term alone.
pub const RANK_BY: [&str; 4] = ["blend", "similar", "text", "collaborative"];
/// Compute backends a page may ask for.
pub const BACKENDS: [&str; 3] = ["auto", "cpu", "webgpu"];
/// When `Catalog.open` resolves: after the first usable shard, the manifest, or every shard.
pub const CATALOG_WAIT: [&str; 3] = ["first", "manifest", "all"];
/// Where a profile is kept.
pub const STORAGE: [&str; 2] = ["indexeddb", "memory"];
/// Largest catalog `manifest.json` read, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;
/// Widest embedding a catalog (and so a profile's item snapshot) may hold.
pub const MAX_EMBEDDING_DIMS: usize = crate::catalog::shard::MAX_DIMS;
/// Default cap on a catalog's shard bytes in one page (its items must fit in wasm memory).
pub const DEFAULT_MAX_CATALOG_BYTES: u64 = 1 << 30;
/// Largest model manifest read, in bytes.
pub const MAX_MODEL_MANIFEST_BYTES: usize = 1 << 20;
/// Largest model file downloaded, in bytes.
pub const MAX_MODEL_FILE_BYTES: u64 = 4 << 30;

/// Every error code the library gives (`localrec/<kind>`), Rust's and the JS layer's.
pub const ERROR_KINDS: [ErrorKind; 19] = [
    ErrorKind::Config,
    ErrorKind::Tokenizer,
    ErrorKind::Weights,
    ErrorKind::Input,
    ErrorKind::Backend,
    ErrorKind::Io,
    ErrorKind::Format,
    ErrorKind::Integrity,
    ErrorKind::Network,
    ErrorKind::NotFound,
    ErrorKind::Closed,
    ErrorKind::Aborted,
    ErrorKind::Timeout,
    ErrorKind::Storage,
    ErrorKind::Worker,
    ErrorKind::Internal,
    ErrorKind::BackendUnavailable,
    ErrorKind::BackendLost,
    ErrorKind::Csp,
];

/// `pkg/limits.js`: the constants above as an ES module.
pub fn render_js() -> String {
    use std::fmt::Write as _;
    let list = |items: &[&str]| format!("Object.freeze([{}])", items.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", "));
    let range = |(lo, hi): (f32, f32)| format!("Object.freeze([{lo}, {hi}])");
    let codes: Vec<String> = ERROR_KINDS.iter().map(|k| format!("localrec/{}", k.as_str())).collect();
    let code_refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let rows: Vec<(&str, &str, String)> = vec![
        ("MAX_K", "Most results one request may ask for (`k`).", MAX_K.to_string()),
        ("DEFAULT_K", "Results when a call names no `k`.", DEFAULT_K.to_string()),
        ("MAX_EVENTS", "Most events a profile keeps (the oldest roll off) and one request may carry.", MAX_EVENTS.to_string()),
        ("MAX_INTERESTS", "Most typed interests a profile keeps.", MAX_INTERESTS.to_string()),
        ("MAX_TEXT_CHARS", "Longest text (an interest, a search) in characters.", MAX_TEXT_CHARS.to_string()),
        ("MAX_ITEM_ID_CHARS", "Longest item id in characters.", MAX_ITEM_ID_CHARS.to_string()),
        ("MAX_SCENARIO_CHARS", "Longest scenario name in characters.", MAX_SCENARIO_CHARS.to_string()),
        ("MAX_PROFILE_NAME_CHARS", "Longest profile name in characters.", MAX_PROFILE_NAME_CHARS.to_string()),
        ("MAX_IMPORT_CHARS", "Largest profile document `import()` reads, in characters of JSON.", MAX_IMPORT_CHARS.to_string()),
        ("PROFILE_FORMAT", "The profile export document's `format`.", format!("'{PROFILE_FORMAT}'")),
        ("PROFILE_VERSION", "The profile export document's `version`.", PROFILE_VERSION.to_string()),
        ("EVENT_TYPES", "Kinds of events a profile records.", list(&EVENT_TYPES)),
        ("RATE_EVENT", "The event type that carries a rating (`value`, in `RATING_RANGE`).", format!("'{RATE_EVENT}'")),
        ("RATING_RANGE", "The values a `rate` event may carry (inclusive); 3 is neutral.", range(RATING_RANGE)),
        ("DIVERSITY_RANGE", "The MMR strength `diversity` (inclusive).", range(DIVERSITY_RANGE)),
        ("RANK_BY", "How a recommend request may rank.", list(&RANK_BY)),
        ("BACKENDS", "Compute backends a page may ask for.", list(&BACKENDS)),
        ("CATALOG_WAIT", "When `Catalog.open` resolves.", list(&CATALOG_WAIT)),
        ("STORAGE", "Where a profile is kept.", list(&STORAGE)),
        ("MAX_MANIFEST_BYTES", "Largest catalog manifest.json read, in bytes.", MAX_MANIFEST_BYTES.to_string()),
        ("MAX_EMBEDDING_DIMS", "Widest embedding a catalog (and so a profile's item snapshot) may hold.", MAX_EMBEDDING_DIMS.to_string()),
        ("DEFAULT_MAX_CATALOG_BYTES", "Default cap on a catalog's shard bytes in one page.", DEFAULT_MAX_CATALOG_BYTES.to_string()),
        ("MAX_MODEL_MANIFEST_BYTES", "Largest model manifest.json read, in bytes.", MAX_MODEL_MANIFEST_BYTES.to_string()),
        ("MAX_MODEL_FILE_BYTES", "Largest model file downloaded, in bytes.", MAX_MODEL_FILE_BYTES.to_string()),
        ("ERROR_CODES", "Every error code the library gives.", list(&code_refs)),
    ];
    let mut out = String::from(
        "// Generated from src/limits.rs by its unit test (LOCALREC_BLESS=1 cargo test --lib limits): do not edit.\n\
         // Every limit and vocabulary the library checks, defined once in Rust.\n",
    );
    for (name, doc, value) in rows {
        let _ = write!(out, "\n/** {doc} */\nexport const {name} = {value};\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkg_limits_js_is_generated_from_these_constants() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pkg/limits.js");
        let want = render_js();
        if std::env::var_os("LOCALREC_BLESS").is_some() {
            std::fs::write(&path, &want).expect("write pkg/limits.js");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(have == want, "pkg/limits.js is not what src/limits.rs generates; run LOCALREC_BLESS=1 cargo test --lib limits");
    }

    #[test]
    fn every_error_kind_is_listed_once() {
        let mut names: Vec<&str> = ERROR_KINDS.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ERROR_KINDS.len());
    }
}

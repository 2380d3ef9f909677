//! `localrec gc`: removes the files of a published catalog folder that its manifest no
//! longer names (shards of earlier versions, model files of an earlier model), once the
//! manifest has been in place for a grace period the publisher chooses.
//!
//! Why the manifest's age: `build` and `train` write a new version's shards beside the old
//! ones and the manifest last, so a visitor who fetched the old manifest just before it
//! was replaced still finds every old shard. Such a visitor fetched it before the new
//! manifest's modification time; once the grace period has passed since then, every load
//! of the old version has had that long to finish.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use localrec::catalog::{MANIFEST_FILE, Manifest};
use localrec::native::read_input;
use localrec::{Error, ErrorKind, Result};

#[derive(clap::Args)]
pub struct GcArgs {
    /// The published catalog folder (holding manifest.json).
    catalog: PathBuf,
    /// How long the current manifest must have been in place before the files it does not
    /// name are removed: seconds, or a number with s, m, h or d (e.g. 90s, 30m, 24h, 7d).
    #[arg(long, value_parser = parse_grace)]
    grace: Duration,
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

/// Folders of a catalog whose files are named by the manifest; other folders (a build's
/// checkpoints, parts of a build in progress) and files at the top are never touched.
fn owned_folders(manifest: &Manifest) -> Vec<String> {
    let mut folders = vec!["shards".to_owned()];
    let model = manifest.encoder.model.trim_end_matches('/');
    if !model.is_empty() && !model.contains('/') {
        folders.push(model.to_owned());
    }
    folders
}

fn parse_grace(text: &str) -> std::result::Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds_per: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: a grace period is a whole number with s, m, h or d")),
    };
    let n: u64 = number.parse().map_err(|_| format!("{text:?}: a grace period starts with a whole number"))?;
    n.checked_mul(seconds_per).map(Duration::from_secs).ok_or_else(|| format!("{text:?}: too long a grace period"))
}

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::with_source(ErrorKind::Io, what, e)
}

pub fn gc(args: GcArgs) -> Result<()> {
    let dir = args.catalog.as_path();
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest = Manifest::from_json(&read_input(&manifest_path)?).map_err(|e| e.context(MANIFEST_FILE))?;
    let modified = std::fs::metadata(&manifest_path)
        .and_then(|m| m.modified())
        .map_err(|e| io_error(format!("cannot read the modification time of {}", manifest_path.display()), e))?;
    let age = SystemTime::now().duration_since(modified).unwrap_or_default();

    let mut named: HashSet<String> = manifest.shards.iter().map(|s| s.path.clone()).collect();
    let model = manifest.encoder.model.trim_end_matches('/');
    named.extend(manifest.encoder.files.iter().map(|f| format!("{model}/{}", f.path)));
    // The model's own manifest is not in `files` (it names them); it belongs to the model.
    named.insert(format!("{model}/{MANIFEST_FILE}"));

    let mut unnamed = Vec::new();
    for folder in owned_folders(&manifest) {
        unnamed.extend(unnamed_files(dir, &folder, &named)?);
    }
    unnamed.sort();
    let due = age >= args.grace;
    // Sized once, before anything is removed.
    let unnamed_bytes: u64 = unnamed.iter().filter_map(|rel| std::fs::metadata(dir.join(rel)).ok()).map(|m| m.len()).sum();
    let mut removed = Vec::new();
    if due && !args.dry_run {
        for rel in &unnamed {
            let path = dir.join(rel);
            std::fs::remove_file(&path).map_err(|e| io_error(format!("cannot remove {}", path.display()), e))?;
            removed.push(rel.clone());
        }
    }
    if !due {
        eprintln!(
            "kept {} files the manifest no longer names: it has been in place {} s of the {} s grace period",
            unnamed.len(),
            age.as_secs(),
            args.grace.as_secs()
        );
    } else if args.dry_run {
        eprintln!("would remove {} files ({} bytes) the manifest no longer names", unnamed.len(), unnamed_bytes);
    } else {
        eprintln!("removed {} files the manifest no longer names from {}", removed.len(), dir.display());
    }
    if args.json {
        let report = serde_json::json!({
            "catalog": dir.display().to_string(),
            "manifest_age_seconds": age.as_secs(),
            "grace_seconds": args.grace.as_secs(),
            "unnamed": unnamed,
            "unnamed_bytes": if removed.is_empty() { unnamed_bytes } else { 0 },
            "removed": removed,
            "dry_run": args.dry_run,
        });
        println!("{report}");
    }
    Ok(())
}

/// Files under `dir/folder` (relative to `dir`, `/`-separated) that `named` does not hold.
fn unnamed_files(dir: &Path, folder: &str, named: &HashSet<String>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut todo = vec![folder.to_owned()];
    while let Some(rel) = todo.pop() {
        let entries = match std::fs::read_dir(dir.join(&rel)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(format!("cannot read {}", dir.join(&rel).display()), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error(format!("cannot read {}", dir.join(&rel).display()), e))?;
            let name = format!("{rel}/{}", entry.file_name().to_string_lossy());
            let kind = entry.file_type().map_err(|e| io_error(format!("cannot read {}", entry.path().display()), e))?;
            if kind.is_dir() {
                todo.push(name);
            } else if kind.is_file() && !named.contains(&name) {
                out.push(name);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_grace;
    use std::time::Duration;

    #[test]
    fn grace_periods_read_seconds_and_units_and_refuse_the_rest() {
        assert_eq!(parse_grace("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_grace("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_grace("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_grace("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "h", "1w", "-1s", "1.5h", "99999999999999999999d"] {
            assert!(parse_grace(bad).is_err(), "{bad:?}");
        }
    }
}

//! A Spark MLlib ALS model, as `ALSModel.save(path)` writes it: `metadata/` (one JSON
//! line whose `rank` is the factor width), `itemFactors/` and `userFactors/` (Parquet,
//! columns `id: int` and `features: array<float>`), and the id map a publisher keeps
//! beside it, because Spark forces integer ids (CSV with the header `spark_id,item_id`,
//! or Parquet with those columns).
//!
//! The saved model does not carry the estimator's `regParam`, `alpha` or
//! `implicitPrefs` (they are `ALS` params, not `ALSModel` ones), so the caller passes them
//! as [`SparkFoldIn`]. The device's fold-in then solves Spark's own user equations (see
//! [`crate::scorer::model::RegScaling::PerPositive`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::parquet::{as_f32_list, as_i64, column, for_each_row};
use crate::error::{Error, ErrorKind, Result};

/// The estimator settings the model was trained with, which its saved folder lacks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparkFoldIn {
    /// `ALS.regParam` (Spark's default 0.1): the fold-in's lambda per positive rating.
    pub reg_param: f32,
    /// `ALS.alpha` (Spark's default 1.0): confidence `1 + alpha * |r|`.
    pub alpha: f32,
}

impl Default for SparkFoldIn {
    fn default() -> Self {
        SparkFoldIn { reg_param: 0.1, alpha: 1.0 }
    }
}

/// One side's factors: Spark ids and `ids.len() x rank` values, in the files' order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Factors {
    /// Spark's integer ids.
    pub ids: Vec<i64>,
    /// Row-major factors, `rank` per id.
    pub values: Vec<f32>,
}

impl Factors {
    /// The factors of the `i`-th id.
    pub fn row(&self, i: usize, rank: usize) -> &[f32] {
        self.values.get(i * rank..(i + 1) * rank).unwrap_or_default()
    }
}

/// A saved ALS model's item side (the user side is read on request: a catalog does not
/// ship it, and it is as large as the user base).
#[derive(Clone, Debug, PartialEq)]
pub struct SparkAls {
    /// The model folder.
    pub dir: PathBuf,
    /// Factor width (`metadata`'s `rank`).
    pub rank: usize,
    /// `itemFactors`.
    pub items: Factors,
}

/// Widest factors accepted: a catalog record holds at most this many.
const MAX_RANK: usize = crate::catalog::shard::MAX_FACTOR_DIMS;

/// Reads `dir/metadata` and `dir/itemFactors`, checking the class, the rank, each row's
/// width and values, and that no id repeats.
pub fn read_als(dir: &Path) -> Result<SparkAls> {
    let meta_dir = dir.join("metadata");
    let meta_file = std::fs::read_dir(&meta_dir)
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Io,
                format!("cannot read {} (is {} an ALSModel.save folder?)", meta_dir.display(), dir.display()),
                e,
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part-")))
        .min()
        .ok_or_else(|| Error::new(ErrorKind::Input, format!("{} holds no part file", meta_dir.display())))?;
    let text = std::fs::read(&meta_file)
        .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot read {}", meta_file.display()), e))?;
    let meta: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::with_source(ErrorKind::Format, format!("{} is not JSON", meta_file.display()), e))?;
    let class = meta.get("class").and_then(|c| c.as_str()).unwrap_or_default();
    if !class.ends_with("ALSModel") {
        return Err(Error::new(
            ErrorKind::Input,
            format!("{}: class {class:?} is not org.apache.spark.ml.recommendation.ALSModel", meta_file.display()),
        ));
    }
    let rank = meta
        .get("rank")
        .and_then(|r| r.as_u64())
        .and_then(|r| usize::try_from(r).ok())
        .filter(|&r| (1..=MAX_RANK).contains(&r))
        .ok_or_else(|| {
            Error::new(ErrorKind::Input, format!("{}: rank must be an integer in 1..={MAX_RANK}", meta_file.display()))
        })?;
    let items = read_factors(&dir.join("itemFactors"), rank)?;
    if items.ids.is_empty() {
        return Err(Error::new(ErrorKind::Input, format!("{}: no item factors", dir.join("itemFactors").display())));
    }
    Ok(SparkAls { dir: dir.to_path_buf(), rank, items })
}

/// Reads a factors folder (`itemFactors` or `userFactors`): `id` and `features` of
/// `rank` finite values per row, no id twice.
pub fn read_factors(path: &Path, rank: usize) -> Result<Factors> {
    let mut out = Factors::default();
    let mut seen = HashMap::new();
    for_each_row(path, |file, number, row| {
        let at = || format!("{}: row {number}", file.display());
        let id = column(row, "id")
            .and_then(as_i64)
            .ok_or_else(|| Error::new(ErrorKind::Input, format!("{}: no integer column `id`", at())))?;
        let features = column(row, "features")
            .ok_or_else(|| Error::new(ErrorKind::Input, format!("{}: no column `features`", at())))
            .and_then(|f| as_f32_list(f).map_err(|m| Error::new(ErrorKind::Input, format!("{}: `features` is {m}", at()))))?;
        if features.len() != rank || features.iter().any(|v| !v.is_finite()) {
            return Err(Error::new(
                ErrorKind::Input,
                format!("{}: id {id} has {} features (want {rank} finite values)", at(), features.len()),
            ));
        }
        if let Some(first) = seen.insert(id, number) {
            return Err(Error::new(ErrorKind::Input, format!("{}: id {id} again (first on row {first})", at())));
        }
        out.ids.push(id);
        out.values.extend(features);
        Ok(())
    })?;
    Ok(out)
}

/// Spark id to catalog item id.
pub type IdMap = HashMap<i64, String>;

/// Reads an id map: CSV (or TSV, by a `.tsv` name) with the header `spark_id,item_id`, or
/// Parquet (a `.parquet` file or a folder of part files) with those columns. Neither id may
/// repeat: one Spark id per item and one item per Spark id.
pub fn read_id_map(path: &Path) -> Result<IdMap> {
    let mut map = IdMap::new();
    let mut items: HashMap<String, String> = HashMap::new();
    let mut add = |spark: i64, item: String, at: String| -> Result<()> {
        if item.is_empty() {
            return Err(Error::new(ErrorKind::Input, format!("{at}: empty item_id")));
        }
        if let Some(before) = items.insert(item.clone(), at.clone()) {
            return Err(Error::new(ErrorKind::Input, format!("{at}: item_id {item:?} again (first at {before})")));
        }
        if map.insert(spark, item).is_some() {
            return Err(Error::new(ErrorKind::Input, format!("{at}: spark_id {spark} again")));
        }
        Ok(())
    };
    let name = path.to_string_lossy();
    if path.is_dir() || name.ends_with(".parquet") {
        for_each_row(path, |file, number, row| {
            let at = format!("{}: row {number}", file.display());
            let spark = column(row, "spark_id").and_then(as_i64);
            let item = column(row, "item_id").and_then(super::parquet::as_id);
            match (spark, item) {
                (Some(s), Some(i)) => add(s, i, at),
                _ => Err(Error::new(ErrorKind::Input, format!("{at}: want an integer spark_id and an item_id"))),
            }
        })?;
    } else {
        let bytes = crate::native::read_input(path)?;
        let delimiter = if name.ends_with(".tsv") || name.ends_with(".tsv.gz") { b'\t' } else { b',' };
        let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(bytes.as_slice());
        let headers = reader
            .headers()
            .map_err(|e| Error::with_source(ErrorKind::Input, format!("{name}:1: unreadable header"), e))?
            .clone();
        let position = |want: &str| headers.iter().position(|h| h.trim() == want);
        let (Some(s_col), Some(i_col)) = (position("spark_id"), position("item_id")) else {
            return Err(Error::new(ErrorKind::Input, format!("{name}:1: the header must name spark_id and item_id")));
        };
        for record in reader.records() {
            let record = record.map_err(|e| Error::with_source(ErrorKind::Input, format!("{name}: unreadable line"), e))?;
            let line = record.position().map_or(0, |p| p.line());
            let at = format!("{name}:{line}");
            let spark = record.get(s_col).and_then(|v| v.trim().parse::<i64>().ok());
            let item = record.get(i_col).map(|v| v.trim().to_string());
            match (spark, item) {
                (Some(s), Some(i)) => add(s, i, at)?,
                _ => return Err(Error::new(ErrorKind::Input, format!("{at}: spark_id must be an integer"))),
            }
        }
    }
    if map.is_empty() {
        return Err(Error::new(ErrorKind::Input, format!("{name}: the id map is empty")));
    }
    Ok(map)
}

/// How a Spark model's items met the catalog's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matched {
    /// Per catalog item, the row of its factors in [`SparkAls::items`], if Spark has one.
    pub rows: Vec<Option<usize>>,
    /// Catalog items with factors.
    pub matched: usize,
    /// Spark items the id map does not name.
    pub unmapped: usize,
    /// Spark items whose mapped id is not in the catalog.
    pub not_in_catalog: usize,
    /// The first such item id.
    pub first_not_in_catalog: Option<String>,
}

/// Matches the model's items to the catalog's (`catalog`: item id to position, `len`
/// items). Items Spark never saw keep no row: the trainer gives them factors from their
/// text. A model that matches no catalog item is refused (a wrong id map).
pub fn match_items(model: &SparkAls, ids: &IdMap, catalog: &HashMap<&str, u32>, len: usize) -> Result<Matched> {
    let mut m = Matched { rows: vec![None; len], ..Matched::default() };
    for (row, spark) in model.items.ids.iter().enumerate() {
        let Some(item) = ids.get(spark) else {
            m.unmapped += 1;
            continue;
        };
        match catalog.get(item.as_str()).and_then(|&i| m.rows.get_mut(i as usize)) {
            Some(slot) => {
                *slot = Some(row);
                m.matched += 1;
            }
            None => {
                m.not_in_catalog += 1;
                m.first_not_in_catalog.get_or_insert_with(|| item.clone());
            }
        }
    }
    if m.matched == 0 {
        return Err(Error::new(
            ErrorKind::Input,
            format!(
                "no item of {} maps to a catalog item ({} unmapped by the id map, {} mapped to ids not in the catalog{})",
                model.dir.display(),
                m.unmapped,
                m.not_in_catalog,
                m.first_not_in_catalog.as_ref().map(|i| format!(", first {i:?}")).unwrap_or_default()
            ),
        ));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, body: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("localrec-idmap-{}-{name}", std::process::id()));
        std::fs::write(&path, body).unwrap();
        path
    }

    #[test]
    fn an_id_map_reads_csv_and_tsv_with_its_header_in_any_order() {
        let csv = temp("a.csv", "item_id,spark_id\n\"Toy Story, 1995\",0\ntt2,1\n");
        let map = read_id_map(&csv).unwrap();
        assert_eq!(map[&0], "Toy Story, 1995");
        assert_eq!(map[&1], "tt2");
        let tsv = temp("b.tsv", "spark_id\titem_id\n5\tx\n");
        assert_eq!(read_id_map(&tsv).unwrap()[&5], "x");
        for p in [csv, tsv] {
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn an_id_map_refuses_repeats_bad_ids_and_a_wrong_header_with_the_line() {
        for (body, want) in [
            ("spark_id,item_id\n1,a\n1,b\n", "spark_id 1 again"),
            ("spark_id,item_id\n1,a\n2,a\n", ":3: item_id \"a\" again"),
            ("spark_id,item_id\n1,a\nx,b\n", ":3: spark_id must be an integer"),
            ("id,item\n1,a\n", "must name spark_id and item_id"),
            ("spark_id,item_id\n", "empty"),
        ] {
            let path = temp("bad.csv", body);
            let err = read_id_map(&path).unwrap_err();
            assert!(err.to_string().contains(want), "{body:?}: {err}");
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn matching_counts_what_the_catalog_lacks_and_refuses_a_wrong_map() {
        let model = SparkAls {
            dir: "m".into(),
            rank: 1,
            items: Factors { ids: vec![10, 11, 12], values: vec![0.1, 0.2, 0.3] },
        };
        let ids: IdMap = [(10, "a".to_string()), (11, "zz".to_string())].into();
        let catalog: HashMap<&str, u32> = [("a", 1u32), ("b", 0)].into();
        let m = match_items(&model, &ids, &catalog, 2).unwrap();
        assert_eq!(m.rows, vec![None, Some(0)]);
        assert_eq!((m.matched, m.unmapped, m.not_in_catalog), (1, 1, 1));
        assert_eq!(m.first_not_in_catalog.as_deref(), Some("zz"));
        let none: HashMap<&str, u32> = [("q", 0u32)].into();
        assert!(match_items(&model, &ids, &none, 1).unwrap_err().to_string().contains("no item of m maps"));
    }
}

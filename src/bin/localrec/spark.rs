//! The flags that bring in what Spark computed, shared by `build` and `train`:
//! `--spark-als DIR --id-map FILE` (a saved `ALSModel` whose item factors replace
//! localrec's ALS) and, on `build`, `--embeddings PATH` (item embeddings computed on the
//! executors instead of encoding here). The readers are `localrec::publish`.

use std::collections::HashMap;
use std::path::PathBuf;

use localrec::catalog::input::SourceItem;
use localrec::publish::{embeddings, spark};
use localrec::scorer::imported::{ImportedFactors, RegScaling};
use localrec::{Encoder, Error, ErrorKind, Result};

/// `--spark-als` and its settings.
#[derive(clap::Args, Clone, Debug)]
pub struct SparkAlsArgs {
    /// A Spark MLlib `ALSModel.save` folder (metadata/, itemFactors/): its item factors
    /// replace localrec's ALS (--factors, --reg, --alpha and --iterations do not apply),
    /// and the device folds users in as Spark does (lambda times the user's positive
    /// ratings). Needs --id-map; the log still trains the rest.
    #[arg(long, requires = "id_map")]
    pub spark_als: Option<PathBuf>,
    /// Spark id to catalog item id: CSV (or .tsv) with the header spark_id,item_id, or
    /// Parquet with those columns.
    #[arg(long, requires = "spark_als")]
    pub id_map: Option<PathBuf>,
    /// The `regParam` the Spark model was trained with (a saved model does not keep it).
    #[arg(long, default_value_t = spark::SparkFoldIn::default().reg_param)]
    pub spark_reg_param: f32,
    /// The `alpha` the Spark model was trained with (implicitPrefs=true).
    #[arg(long, default_value_t = spark::SparkFoldIn::default().alpha)]
    pub spark_alpha: f32,
}

impl SparkAlsArgs {
    /// The imported item factors in catalog order (`index`: item id to position), or
    /// `None` without `--spark-als`. Prints how the model's items met the catalog's.
    pub fn imported(&self, index: &HashMap<&str, u32>, items: usize) -> Result<Option<ImportedFactors>> {
        let (Some(dir), Some(map)) = (&self.spark_als, &self.id_map) else {
            return Ok(None);
        };
        let model = spark::read_als(dir)?;
        let ids = spark::read_id_map(map)?;
        let matched = spark::match_items(&model, &ids, index, items)?;
        let k = model.rank;
        let mut q = vec![0.0f32; items * k];
        for (dst, row) in q.chunks_exact_mut(k).zip(&matched.rows) {
            if let Some(row) = row {
                dst.copy_from_slice(model.items.row(*row, k));
            }
        }
        eprintln!(
            "read spark als {} (rank {k}): {} of {} catalog items matched; {} model items not in the id map, {} mapped to ids not in the catalog{}",
            dir.display(),
            matched.matched,
            items,
            matched.unmapped,
            matched.not_in_catalog,
            matched.first_not_in_catalog.as_ref().map(|i| format!(" (first {i:?})")).unwrap_or_default()
        );
        let imported = ImportedFactors {
            factors: k,
            q,
            known: matched.rows.iter().map(Option::is_some).collect(),
            reg: self.spark_reg_param,
            alpha: self.spark_alpha,
            reg_scaling: RegScaling::PerPositive,
        };
        imported.check(items).map_err(|e| e.context(dir.display()))?;
        Ok(Some(imported))
    }
}

/// Items checked against the local encoder when embeddings are imported: enough to catch
/// vectors from another model, few enough to cost a second.
const SPOT_CHECK: usize = 8;

/// The imported embeddings in catalog order, `items * dims`. Every item must have one;
/// a few are encoded here and must agree (cosine >= 0.99) with what was imported, so a
/// catalog never ships vectors of another encoder than the one its manifest names (the
/// browser encodes typed interests with that one).
pub fn imported_embeddings(
    path: &std::path::Path,
    items: &[SourceItem],
    items_name: &str,
    encoder: &Encoder,
) -> Result<Vec<f32>> {
    let dims = encoder.dims();
    let mut by_id = embeddings::read_embeddings(path, dims)?;
    let mut out = Vec::with_capacity(items.len().saturating_mul(dims));
    for item in items {
        let Some(v) = by_id.remove(&item.id) else {
            return Err(Error::new(
                ErrorKind::Input,
                format!("{}: no embedding for item {:?} ({items_name}:{})", path.display(), item.id, item.line),
            ));
        };
        out.extend(v);
    }
    if !by_id.is_empty() {
        eprintln!("{}: {} embeddings of ids not in {items_name} left out", path.display(), by_id.len());
    }
    let step = (items.len() / SPOT_CHECK).max(1);
    let picked: Vec<usize> = (0..items.len()).step_by(step).take(SPOT_CHECK).collect();
    let texts: Vec<String> = picked.iter().map(|&i| items[i].encoder_text()).collect();
    let local = encoder.embed(&texts.iter().map(String::as_str).collect::<Vec<_>>())?;
    for (&i, here) in picked.iter().zip(local.rows()) {
        let there = &out[i * dims..(i + 1) * dims];
        let cosine = localrec::cosine(here, there);
        if !(cosine >= 0.99) {
            return Err(Error::new(
                ErrorKind::Input,
                format!(
                    "{}: item {:?}'s embedding is not what the --model encoder makes of its text (cosine {cosine:.3}); embed with that model",
                    path.display(),
                    items[i].id,
                ),
            ));
        }
    }
    Ok(out)
}

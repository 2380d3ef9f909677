//! Item embeddings computed elsewhere (a Spark job piping partitions through
//! `localrec embed --items`): Parquet with a column `id` (the catalog's item id; a
//! string, or an integer written in decimal) and one vector column (`list<float>`,
//! `list<double>`, or Arrow's `fixed_size_list<float>`), a file or a folder of part
//! files. The caller checks that every catalog item has one and that the vectors come
//! from the encoder the manifest names.

use std::collections::HashMap;
use std::path::Path;

use parquet::record::Field;

use super::parquet::{as_f32_list, as_id, column, for_each_row};
use crate::error::{Error, ErrorKind, Result};

/// Reads embeddings of width `dims`: finite values, not all zero, one per id.
pub fn read_embeddings(path: &Path, dims: usize) -> Result<HashMap<String, Vec<f32>>> {
    let mut out: HashMap<String, Vec<f32>> = HashMap::new();
    for_each_row(path, |file, number, row| {
        let at = || format!("{}: row {number}", file.display());
        let id = column(row, "id")
            .and_then(as_id)
            .ok_or_else(|| Error::new(ErrorKind::Input, format!("{}: no string or integer column `id`", at())))?;
        let vector = row
            .get_column_iter()
            .find(|(name, f)| name.as_str() != "id" && matches!(f, Field::ListInternal(_)))
            .ok_or_else(|| Error::new(ErrorKind::Input, format!("{}: no list column beside `id`", at())))
            .and_then(|(name, f)| {
                as_f32_list(f).map_err(|m| Error::new(ErrorKind::Input, format!("{}: `{name}` is {m}", at())))
            })?;
        if vector.len() != dims {
            return Err(Error::new(
                ErrorKind::Input,
                format!("{}: item {id:?} has a {}-dimensional embedding; the encoder makes {dims}", at(), vector.len()),
            ));
        }
        if vector.iter().any(|v| !v.is_finite()) || vector.iter().all(|&v| v == 0.0) {
            return Err(Error::new(
                ErrorKind::Input,
                format!("{}: item {id:?} has a non-finite or all-zero embedding", at()),
            ));
        }
        if out.insert(id.clone(), vector).is_some() {
            return Err(Error::new(ErrorKind::Input, format!("{}: item {id:?} again", at())));
        }
        Ok(())
    })?;
    Ok(out)
}

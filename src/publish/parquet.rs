//! Parquet input: one file, or a folder of part files as Spark writes them (`part-*.parquet`
//! beside `_SUCCESS` and `.crc` files, which are skipped). Rows are read through the
//! `parquet` crate's row API, so no Arrow is linked; values are looked up by column name.

use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};

use crate::error::{Error, ErrorKind, Result};

/// The Parquet files of `path`: the file itself, or the folder's `*.parquet` files in name
/// order (hidden files and Spark's `_SUCCESS`/`_metadata` left out). A folder without any
/// is refused: an empty import is a mistake, not an empty model.
pub fn parquet_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        if !path.is_file() {
            return Err(Error::new(ErrorKind::Io, format!("{} does not exist", path.display())));
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot read {}", path.display()), e))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            !name.starts_with('.') && !name.starts_with('_') && name.ends_with(".parquet") && p.is_file()
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::new(ErrorKind::Input, format!("{} holds no .parquet file", path.display())));
    }
    Ok(files)
}

/// Calls `each` with every row of every Parquet file of `path` (see [`parquet_files`]),
/// with the file and the row's 1-based number in it, for messages.
pub fn for_each_row(path: &Path, mut each: impl FnMut(&Path, usize, &Row) -> Result<()>) -> Result<()> {
    for file in parquet_files(path)? {
        let handle = std::fs::File::open(&file)
            .map_err(|e| Error::with_source(ErrorKind::Io, format!("cannot open {}", file.display()), e))?;
        let reader = SerializedFileReader::new(handle)
            .map_err(|e| Error::with_source(ErrorKind::Format, format!("{} is not a parquet file", file.display()), e))?;
        let rows = reader
            .get_row_iter(None)
            .map_err(|e| Error::with_source(ErrorKind::Format, format!("cannot read the rows of {}", file.display()), e))?;
        for (i, row) in rows.enumerate() {
            let number = i.saturating_add(1);
            let row = row.map_err(|e| {
                Error::with_source(ErrorKind::Format, format!("{}: row {number} is unreadable", file.display()), e)
            })?;
            each(&file, number, &row)?;
        }
    }
    Ok(())
}

/// The value of column `name` in `row`.
pub fn column<'r>(row: &'r Row, name: &str) -> Option<&'r Field> {
    row.get_column_iter().find(|(n, _)| n.as_str() == name).map(|(_, f)| f)
}

/// An integer column's value (any Parquet integer type), or `None` for another type.
pub fn as_i64(field: &Field) -> Option<i64> {
    match *field {
        Field::Byte(v) => Some(v.into()),
        Field::Short(v) => Some(v.into()),
        Field::Int(v) => Some(v.into()),
        Field::Long(v) => Some(v),
        Field::UByte(v) => Some(v.into()),
        Field::UShort(v) => Some(v.into()),
        Field::UInt(v) => Some(v.into()),
        Field::ULong(v) => i64::try_from(v).ok(),
        _ => None,
    }
}

/// An id column as text: a string as it is, an integer in decimal (how a catalog whose
/// ids are numbers spells them), `None` for another type.
pub fn as_id(field: &Field) -> Option<String> {
    match field {
        Field::Str(s) => Some(s.clone()),
        other => as_i64(other).map(|v| v.to_string()),
    }
}

/// A `list<float>` (or `list<double>`, or Arrow's `fixed_size_list`, which Parquet stores
/// as a list) as f32 values; `Err` names what the column holds instead. Nulls inside the
/// list are refused: a vector with a hole has no meaning.
pub fn as_f32_list(field: &Field) -> std::result::Result<Vec<f32>, String> {
    let Field::ListInternal(list) = field else {
        return Err(format!("a {field:?} value, not a list of floats").chars().take(80).collect());
    };
    list.elements()
        .iter()
        .map(|e| match *e {
            Field::Float(v) => Ok(v),
            Field::Double(v) => Ok(v as f32),
            Field::Float16(v) => Ok(v.to_f32()),
            ref other => Err(format!("a list holding {other:?}").chars().take(80).collect()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_lists_its_part_files_in_order_and_skips_spark_markers() {
        let dir = std::env::temp_dir().join(format!("localrec-parquet-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["part-00001.snappy.parquet", "part-00000.snappy.parquet", "_SUCCESS", ".part-00000.snappy.parquet.crc"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let names: Vec<String> = parquet_files(&dir)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["part-00000.snappy.parquet", "part-00001.snappy.parquet"]);
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(parquet_files(&empty).unwrap_err().to_string().contains("no .parquet file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_is_not_parquet_is_refused_with_its_name() {
        let path = std::env::temp_dir().join(format!("localrec-not-parquet-{}.parquet", std::process::id()));
        std::fs::write(&path, b"id,features\n1,2\n").unwrap();
        let err = for_each_row(&path, |_, _, _| Ok(())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Format);
        assert!(err.to_string().contains("is not a parquet file"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn ids_and_vectors_are_read_from_the_types_spark_and_arrow_write() {
        assert_eq!(as_id(&Field::Int(7)), Some("7".into()));
        assert_eq!(as_id(&Field::Str("tt01".into())), Some("tt01".into()));
        assert_eq!(as_id(&Field::Float(1.0)), None);
        assert_eq!(as_i64(&Field::ULong(u64::MAX)), None);
    }
}

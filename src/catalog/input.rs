//! A publisher's item and interaction files, parsed from bytes (the CLI reads the files
//! and un-gzips them): generic JSON lines and CSV, MovieLens `movies.csv` /
//! `ratings.csv` (ml-latest-small, the ml-32m title list) and ML-1M's `::`-separated
//! `movies.dat` / `ratings.dat`.
//!
//! Every error says which file and line it is about (`movies.csv:17: ...`): a publisher
//! fixes the input, not this code.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::shard::MAX_RECORD_BYTES;
use crate::error::{Error, ErrorKind, Result};

/// Genres a MovieLens file gives a movie that has none.
const MOVIELENS_NO_GENRES: &str = "(no genres listed)";
/// Longest id, title or genre: shards store them as str16.
const MAX_TEXT_FIELD: usize = u16::MAX as usize;
/// Most genres per item: shards store the count in a byte.
const MAX_GENRES: usize = u8::MAX as usize;
/// Largest metadata object; a record (embedding included) must stay under 1 MiB.
const MAX_META_BYTES: usize = MAX_RECORD_BYTES / 2;

/// How an items file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemFormat {
    /// One JSON object per line: `{"id", "title", "text"?, "genres"?, ...}`.
    JsonLines,
    /// CSV with a header: MovieLens `movieId,title,genres`, or `id,title[,text][,genres],...`.
    Csv,
    /// ML-1M `MovieID::Title::Genres`, Latin-1 unless the file is valid UTF-8.
    Dat,
}

/// How an interactions file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InteractionFormat {
    /// CSV with a header: `user_id,item_id[,rating][,timestamp][,scenario]` or MovieLens
    /// `userId,movieId,rating,timestamp`.
    Csv,
    /// ML-1M `UserID::MovieID[::Rating[::Timestamp]]`.
    Dat,
}

/// The name without a trailing `.gz`, lowercased, for guessing a format.
fn plain_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    lower.strip_suffix(".gz").map(str::to_owned).unwrap_or(lower)
}

fn first_line(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    bytes.split(|&b| b == b'\n').find(|l| !l.trim_ascii().is_empty()).unwrap_or(b"")
}

/// The field separator of a CSV or TSV file: a tab for a `.tsv` name (or `.tab`, each
/// optionally `.gz`), or for a first line with tabs and no comma; else a comma.
fn delimiter(name: &str, bytes: &[u8]) -> u8 {
    let name = plain_name(name);
    let line = first_line(bytes);
    let tabs = line.contains(&b'\t') && !line.contains(&b',');
    if name.ends_with(".tsv") || name.ends_with(".tab") || (!name.ends_with(".csv") && tabs) { b'\t' } else { b',' }
}

/// Guesses an items file's format from its name (`.jsonl`, `.ndjson`, `.json`, `.csv`,
/// `.dat`, each optionally `.gz`), else from its first line.
pub fn detect_item_format(name: &str, bytes: &[u8]) -> ItemFormat {
    let name = plain_name(name);
    if [".jsonl", ".ndjson", ".json"].iter().any(|ext| name.ends_with(ext)) {
        return ItemFormat::JsonLines;
    }
    if name.ends_with(".dat") {
        return ItemFormat::Dat;
    }
    if [".csv", ".tsv", ".tab"].iter().any(|ext| name.ends_with(ext)) {
        return ItemFormat::Csv;
    }
    let line = first_line(bytes);
    if line.trim_ascii_start().starts_with(b"{") {
        ItemFormat::JsonLines
    } else if line.windows(2).any(|w| w == b"::") {
        ItemFormat::Dat
    } else {
        ItemFormat::Csv
    }
}

/// Guesses an interactions file's format: `.dat` (or a first line with `::`) is ML-1M,
/// anything else CSV.
pub fn detect_interaction_format(name: &str, bytes: &[u8]) -> InteractionFormat {
    if plain_name(name).ends_with(".dat") || first_line(bytes).windows(2).any(|w| w == b"::") {
        InteractionFormat::Dat
    } else {
        InteractionFormat::Csv
    }
}

/// One item as the items file gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceItem {
    /// Its id, as text (a JSON number's digits, a CSV field).
    pub id: String,
    /// Display title, as given.
    pub title: String,
    /// The text to embed, when the file gives one.
    pub text: Option<String>,
    /// Genres or categories.
    pub genres: Vec<String>,
    /// Every other field (`year` from a MovieLens title, `url`, `image`, ...).
    pub meta: Map<String, Value>,
    /// Line of the items file the item starts on (1-based), for error messages.
    pub line: usize,
}

impl SourceItem {
    /// What the encoder embeds: the item's `text`, else `"Title. Genres: A, B"`, else
    /// the title alone.
    pub fn encoder_text(&self) -> String {
        match &self.text {
            Some(text) => text.clone(),
            None if self.genres.is_empty() => self.title.clone(),
            None => format!("{}. Genres: {}", self.title, self.genres.join(", ")),
        }
    }

    /// The metadata as a shard stores it: a JSON object's text, or empty for none. Keys
    /// come out sorted (whatever order serde_json's map keeps), so the same input gives
    /// the same bytes.
    pub fn meta_json(&self) -> String {
        if self.meta.is_empty() {
            return String::new();
        }
        let sorted: std::collections::BTreeMap<&String, &Value> = self.meta.iter().collect();
        serde_json::to_string(&sorted).unwrap_or_default()
    }
}

fn input_error(file: &str, line: usize, message: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Input, format!("{file}:{line}: {message}"))
}

/// Splits text into lines (1-based numbers), without their `\n` or `\r\n`.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut pieces: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // A final newline does not start another line.
    if pieces.last().is_some_and(|l| l.is_empty()) {
        pieces.pop();
    }
    pieces.into_iter().enumerate().map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
}

fn utf8<'a>(bytes: &'a [u8], file: &str, line: usize) -> Result<&'a str> {
    std::str::from_utf8(bytes)
        .map_err(|e| input_error(file, line, format!("not valid utf-8 (byte {})", e.valid_up_to() + 1)))
}

/// ML-1M files are Latin-1 as GroupLens ships them; a copy converted to UTF-8 reads as
/// UTF-8. A Latin-1 file with any accented letter is never valid UTF-8, so the whole file
/// decides.
fn decode_dat(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| b as char).collect()),
    }
}

/// The year at the end of a MovieLens title, `"Heat (1995)"` -> 1995.
pub fn title_year(title: &str) -> Option<u16> {
    let t = title.trim_end().as_bytes();
    let tail = t.get(t.len().checked_sub(6)?..)?;
    if tail[0] != b'(' || tail[5] != b')' || !tail[1..5].iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(&tail[1..5]).ok()?.parse().ok()
}

fn split_genres(field: &str, movielens: bool) -> Vec<String> {
    if movielens && field.trim() == MOVIELENS_NO_GENRES {
        return Vec::new();
    }
    field.split('|').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned).collect()
}

/// Checks what every format must satisfy and that ids are unique; then the list.
fn finish_items(items: Vec<SourceItem>, file: &str) -> Result<Vec<SourceItem>> {
    if items.is_empty() {
        return Err(Error::new(ErrorKind::Input, format!("{file}: no items (the file has no item lines)")));
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    for item in &items {
        let at = |m: String| input_error(file, item.line, m);
        if item.id.is_empty() {
            return Err(at("empty id".into()));
        }
        if item.id.len() > MAX_TEXT_FIELD || item.title.len() > MAX_TEXT_FIELD {
            return Err(at(format!("id or title longer than {MAX_TEXT_FIELD} bytes")));
        }
        if item.title.is_empty() {
            return Err(at(format!("item {:?} has an empty title", item.id)));
        }
        if item.genres.len() > MAX_GENRES || item.genres.iter().any(|g| g.len() > MAX_TEXT_FIELD) {
            return Err(at(format!("more than {MAX_GENRES} genres, or a genre longer than {MAX_TEXT_FIELD} bytes")));
        }
        let meta = item.meta_json().len();
        if meta > MAX_META_BYTES {
            return Err(at(format!("metadata of {meta} bytes exceeds {MAX_META_BYTES}")));
        }
        if let Some(first) = seen.insert(&item.id, item.line) {
            return Err(at(format!("duplicate id {:?} (first on line {first})", item.id)));
        }
    }
    Ok(items)
}

/// Parses an items file, guessing its format from `file` (its name) and its bytes.
pub fn parse_items(bytes: &[u8], file: &str) -> Result<Vec<SourceItem>> {
    parse_items_as(bytes, file, detect_item_format(file, bytes))
}

/// Parses an items file of a known format; `file` names it in errors.
pub fn parse_items_as(bytes: &[u8], file: &str, format: ItemFormat) -> Result<Vec<SourceItem>> {
    parse_items_mapped(bytes, file, format, &ItemColumns::default())
}

/// Which CSV/TSV columns hold what, when the header does not use the names the reader
/// knows (`movieId`/`item_id`/`itemId`/`id`, `title`, `text`, `genres`). `None` (empty)
/// keeps the known names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemColumns {
    /// The item id column.
    pub id: Option<String>,
    /// The display title column.
    pub title: Option<String>,
    /// Columns whose non-empty values, one per line in this order, are the text to embed.
    pub text: Vec<String>,
    /// The genres column (`|`-separated).
    pub genres: Option<String>,
}

impl ItemColumns {
    /// Whether any column is mapped.
    pub fn is_default(&self) -> bool {
        *self == ItemColumns::default()
    }
}

/// Parses an items file of a known format with a column mapping (CSV and TSV only).
pub fn parse_items_mapped(bytes: &[u8], file: &str, format: ItemFormat, columns: &ItemColumns) -> Result<Vec<SourceItem>> {
    if format != ItemFormat::Csv && !columns.is_default() {
        return Err(Error::new(ErrorKind::Input, format!("{file}: column names apply to csv and tsv items files only")));
    }
    let items = match format {
        ItemFormat::JsonLines => json_items(bytes, file)?,
        ItemFormat::Csv => csv_items(bytes, file, columns)?,
        ItemFormat::Dat => dat_items(bytes, file)?,
    };
    finish_items(items, file)
}

fn json_items(bytes: &[u8], file: &str) -> Result<Vec<SourceItem>> {
    let mut items = Vec::new();
    for (line, raw) in lines(bytes) {
        let text = utf8(raw, file, line)?;
        if text.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| input_error(file, line, format!("not valid json ({e})")))?;
        let Value::Object(mut object) = value else {
            return Err(input_error(file, line, "expected a json object {\"id\", \"title\", ...}"));
        };
        let id = match object.remove("id") {
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(input_error(file, line, "\"id\" must be a string or a number")),
            None => return Err(input_error(file, line, "missing \"id\"")),
        };
        let title = match object.remove("title") {
            Some(Value::String(s)) => s,
            Some(_) => return Err(input_error(file, line, "\"title\" must be a string")),
            None => return Err(input_error(file, line, "missing \"title\"")),
        };
        let text = match object.remove("text") {
            Some(Value::String(s)) => Some(s),
            None | Some(Value::Null) => None,
            Some(_) => return Err(input_error(file, line, "\"text\" must be a string")),
        };
        let genres = match object.remove("genres") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => split_genres(&s, false),
            Some(Value::Array(list)) => list
                .into_iter()
                .map(|g| match g {
                    Value::String(s) => Ok(s),
                    _ => Err(input_error(file, line, "\"genres\" must be strings")),
                })
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .filter(|g| !g.trim().is_empty())
                .collect(),
            Some(_) => {
                return Err(input_error(file, line, "\"genres\" must be an array of strings or a `|`-separated string"));
            }
        };
        items.push(SourceItem { id, title, text, genres, meta: object, line });
    }
    Ok(items)
}

fn dat_items(bytes: &[u8], file: &str) -> Result<Vec<SourceItem>> {
    let text = decode_dat(bytes);
    let mut items = Vec::new();
    for (line, raw) in lines(text.as_bytes()) {
        // Splitting the decoded text keeps every line valid UTF-8.
        let raw = std::str::from_utf8(raw).map_err(|_| input_error(file, line, "not valid utf-8"))?;
        if raw.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = raw.split("::").collect();
        if fields.len() != 3 {
            return Err(input_error(
                file,
                line,
                format!("expected MovieID::Title::Genres (3 fields), found {}", fields.len()),
            ));
        }
        items.push(movielens_item(fields[0].trim(), fields[1], fields[2], line));
    }
    Ok(items)
}

fn movielens_item(id: &str, title: &str, genres: &str, line: usize) -> SourceItem {
    let mut meta = Map::new();
    if let Some(year) = title_year(title) {
        meta.insert("year".into(), Value::from(year));
    }
    SourceItem { id: id.into(), title: title.into(), text: None, genres: split_genres(genres, true), meta, line }
}

/// Finds a header column by any of its accepted names (case-insensitive).
fn column(header: &[String], names: &[&str]) -> Option<usize> {
    header.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
}

fn missing_column(file: &str, line: usize, names: &[&str], header: &[String]) -> Error {
    let wanted = names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(" or ");
    input_error(file, line, format!("missing column {wanted} (the header has {})", header.join(", ")))
}

/// Item id columns, first the MovieLens one.
const ITEM_ID_COLUMNS: [&str; 4] = ["movieId", "item_id", "itemId", "id"];

/// The column named `given`, else one of the known `names`.
fn mapped_column(header: &[String], given: Option<&String>, names: &[&str]) -> Option<usize> {
    match given {
        Some(name) => column(header, &[name.as_str()]),
        None => column(header, names),
    }
}

/// A required column, mapped or known, or an error naming what the header has.
fn required_column(file: &str, line: usize, header: &[String], given: Option<&String>, names: &[&str]) -> Result<usize> {
    mapped_column(header, given, names).ok_or_else(|| match given {
        Some(name) => missing_column(file, line, &[name.as_str()], header),
        None => missing_column(file, line, names, header),
    })
}

fn csv_items(bytes: &[u8], file: &str, columns: &ItemColumns) -> Result<Vec<SourceItem>> {
    let mut records = CsvRecords::new(bytes, file);
    let Some((header_line, header)) = records.next_text()? else {
        return Err(Error::new(ErrorKind::Input, format!("{file}: no items (the file is empty)")));
    };
    let id_col = required_column(file, header_line, &header, columns.id.as_ref(), &ITEM_ID_COLUMNS)?;
    let title_col = required_column(file, header_line, &header, columns.title.as_ref(), &["title"])?;
    let genres_col = match &columns.genres {
        Some(_) => Some(required_column(file, header_line, &header, columns.genres.as_ref(), &[])?),
        None => column(&header, &["genres"]),
    };
    let text_cols: Vec<usize> = if columns.text.is_empty() {
        column(&header, &["text"]).into_iter().collect()
    } else {
        columns.text.iter().map(|c| required_column(file, header_line, &header, Some(c), &[])).collect::<Result<_>>()?
    };
    let movielens = header[id_col].eq_ignore_ascii_case("movieId");
    let mut items = Vec::new();
    while let Some((line, fields)) = records.next_row(header.len(), " (quote fields that hold commas)")? {
        let genres = genres_col.map(|c| fields[c].as_str()).unwrap_or("");
        let mut item = if movielens {
            movielens_item(fields[id_col].trim(), &fields[title_col], genres, line)
        } else {
            SourceItem {
                id: fields[id_col].trim().to_owned(),
                title: fields[title_col].clone(),
                text: None,
                genres: split_genres(genres, false),
                meta: Map::new(),
                line,
            }
        };
        let parts: Vec<&str> = text_cols.iter().map(|&c| fields[c].as_str()).filter(|t| !t.trim().is_empty()).collect();
        item.text = (!parts.is_empty()).then(|| parts.join("\n"));
        for (c, name) in header.iter().enumerate() {
            let known = [id_col, title_col].contains(&c) || genres_col == Some(c) || text_cols.contains(&c);
            if !known && !fields[c].is_empty() && !item.meta.contains_key(name) {
                item.meta.insert(name.clone(), Value::String(fields[c].clone()));
            }
        }
        items.push(item);
    }
    Ok(items)
}

/// CSV or TSV records through the `csv` crate (RFC 4180: a field in double quotes may
/// hold the separator, newlines and `""` for a quote), each with the line it starts on;
/// fields are checked to be UTF-8 one by one, so an error names its line.
struct CsvRecords<'a> {
    reader: csv::Reader<&'a [u8]>,
    bytes: &'a [u8],
    record: csv::ByteRecord,
    file: &'a str,
    /// A byte offset already counted and the line it is on, so each record's line is
    /// counted from the last one's.
    counted: (usize, usize),
}

impl<'a> CsvRecords<'a> {
    fn new(bytes: &'a [u8], file: &'a str) -> Self {
        let b = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter(file, b))
            .from_reader(b);
        Self { reader, bytes: b, record: csv::ByteRecord::new(), file, counted: (0, 1) }
    }

    /// The line the record just read starts on (its byte offset kept in `counted`). The
    /// crate's own position can still sit on the previous record's line ending (after the
    /// `\r` of `\r\n`), so line endings are stepped over and lines counted here.
    fn start_line(&mut self) -> usize {
        let byte = self.record.position().and_then(|p| usize::try_from(p.byte()).ok()).unwrap_or(0);
        let mut start = byte.min(self.bytes.len());
        while matches!(self.bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let (from, line) = self.counted;
        let newlines = self.bytes.get(from..start).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        self.counted = (start.max(from), line + newlines);
        self.counted.1
    }

    /// Whether the record just read is the last and opens a quote it never closes (the
    /// `csv` crate reads such a field to the end of the file): an odd number of quotes
    /// from its start on.
    fn unclosed_quote(&self) -> bool {
        let rest = self.bytes.get(self.counted.0..).unwrap_or_default();
        let at_end = usize::try_from(self.reader.position().byte()).is_ok_and(|end| end >= self.bytes.len());
        at_end && rest.iter().filter(|&&c| c == b'"').count() % 2 == 1
    }

    /// The next record with its fields as text (UTF-8 checked).
    fn next_text(&mut self) -> Result<Option<(usize, Vec<String>)>> {
        let more = self.reader.read_byte_record(&mut self.record).map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            Error::with_source(ErrorKind::Input, format!("{}:{line}: unreadable csv", self.file), e)
        })?;
        if !more {
            return Ok(None);
        }
        let line = self.start_line();
        let fields =
            self.record.iter().map(|f| utf8(f, self.file, line).map(str::to_owned)).collect::<Result<Vec<_>>>()?;
        Ok(Some((line, fields)))
    }

    /// The next non-blank record as text, which must have `width` fields like the
    /// header; `hint` ends the error message when it does not.
    fn next_row(&mut self, width: usize, hint: &str) -> Result<Option<(usize, Vec<String>)>> {
        while let Some((line, fields)) = self.next_text()? {
            if fields.len() == 1 && fields[0].trim().is_empty() {
                continue;
            }
            if fields.len() != width && self.unclosed_quote() {
                return Err(input_error(self.file, line, "a quoted field is never closed"));
            }
            if fields.len() != width {
                return Err(input_error(
                    self.file,
                    line,
                    format!("expected {width} fields as in the header, found {}{hint}", fields.len()),
                ));
            }
            return Ok(Some((line, fields)));
        }
        Ok(None)
    }
}

/// One user-item event, by interned user and catalog index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interaction {
    /// Index into [`Interactions::users`].
    pub user: u32,
    /// Catalog index of the item.
    pub item: u32,
    /// The rating, when the file gives one.
    pub rating: Option<f32>,
    /// Seconds since the epoch, when given.
    pub timestamp: Option<i64>,
    /// Index into [`Interactions::scenarios`], when given.
    pub scenario: Option<u32>,
}

/// An interactions file, parsed and checked against the catalog's ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Interactions {
    /// User ids, in order of first appearance.
    pub users: Vec<String>,
    /// Scenario names, in order of first appearance.
    pub scenarios: Vec<String>,
    /// Events whose item is in the catalog, in file order.
    pub rows: Vec<Interaction>,
    /// Event lines read (blank lines and the header not counted).
    pub lines: u64,
    /// Events skipped because their item id is not in the catalog.
    pub skipped_unknown_item: u64,
    /// The first unknown item id and its line, to show the publisher.
    pub first_unknown: Option<(String, usize)>,
}

/// Builds events from fields, interning users and scenarios.
struct InteractionBuilder<'a> {
    out: Interactions,
    users: HashMap<String, u32>,
    scenarios: HashMap<String, u32>,
    item_index: &'a HashMap<&'a str, u32>,
    file: &'a str,
}

impl InteractionBuilder<'_> {
    fn push(
        &mut self,
        line: usize,
        user: &str,
        item: &str,
        rating: Option<&str>,
        timestamp: Option<&str>,
        scenario: Option<&str>,
    ) -> Result<()> {
        self.out.lines += 1;
        let (user, item) = (user.trim(), item.trim());
        if user.is_empty() || item.is_empty() {
            return Err(input_error(self.file, line, "empty user or item id"));
        }
        let rating = match rating.map(str::trim).filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => match r.parse::<f32>() {
                Ok(v) if v.is_finite() => Some(v),
                _ => return Err(input_error(self.file, line, format!("rating {r:?} is not a number"))),
            },
        };
        let timestamp = match timestamp.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(
                t.parse::<i64>()
                    .map_err(|_| input_error(self.file, line, format!("timestamp {t:?} is not an integer")))?,
            ),
        };
        let Some(&item) = self.item_index.get(item) else {
            self.out.skipped_unknown_item += 1;
            if self.out.first_unknown.is_none() {
                self.out.first_unknown = Some((item.to_owned(), line));
            }
            return Ok(());
        };
        let user = intern(&mut self.users, &mut self.out.users, user);
        let scenario = scenario
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| intern(&mut self.scenarios, &mut self.out.scenarios, s));
        self.out.rows.push(Interaction { user, item, rating, timestamp, scenario });
        Ok(())
    }
}

/// How to derive a scenario for each event from its timestamp (UTC), when the log has
/// no scenario column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioRule {
    /// `weekday` (Monday to Friday) or `weekend`.
    WeekdayWeekend,
    /// `night` (0-6 h), `morning` (6-12 h), `afternoon` (12-18 h) or `evening`.
    Daypart,
}

impl std::str::FromStr for ScenarioRule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "weekday-weekend" => Ok(ScenarioRule::WeekdayWeekend),
            "daypart" => Ok(ScenarioRule::Daypart),
            other => Err(format!("unknown scenario rule {other:?}: expected weekday-weekend or daypart")),
        }
    }
}

impl ScenarioRule {
    /// The rule's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioRule::WeekdayWeekend => "weekday-weekend",
            ScenarioRule::Daypart => "daypart",
        }
    }

    /// The rule's scenario names, in index order.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            ScenarioRule::WeekdayWeekend => &["weekday", "weekend"],
            ScenarioRule::Daypart => &["night", "morning", "afternoon", "evening"],
        }
    }

    /// The scenario index of a Unix timestamp (seconds, UTC).
    pub fn of(self, timestamp: i64) -> u32 {
        let day = timestamp.div_euclid(86_400);
        match self {
            // 1970-01-01 was a Thursday: Monday is 0.
            ScenarioRule::WeekdayWeekend => u32::from((day + 3).rem_euclid(7) >= 5),
            ScenarioRule::Daypart => (timestamp.rem_euclid(86_400) / 21_600) as u32,
        }
    }
}

impl Interactions {
    /// Replaces every event's scenario by the one `rule` derives from its timestamp.
    /// Fails, naming the first, when an event has no timestamp.
    pub fn derive_scenarios(&mut self, rule: ScenarioRule) -> Result<()> {
        if let Some(n) = self.rows.iter().position(|r| r.timestamp.is_none()) {
            return Err(Error::new(
                ErrorKind::Input,
                format!("event {n} has no timestamp to derive a scenario from; give the log a timestamp column"),
            ));
        }
        for r in &mut self.rows {
            r.scenario = r.timestamp.map(|t| rule.of(t));
        }
        self.scenarios = rule.names().iter().map(|s| s.to_string()).collect();
        Ok(())
    }
}

fn intern(map: &mut HashMap<String, u32>, names: &mut Vec<String>, name: &str) -> u32 {
    if let Some(&i) = map.get(name) {
        return i;
    }
    let i = names.len() as u32;
    map.insert(name.to_owned(), i);
    names.push(name.to_owned());
    i
}

/// Parses an interactions file, guessing its format. `item_index` maps the catalog's ids
/// to their catalog index; events naming another id are counted and skipped, not errors.
pub fn parse_interactions(bytes: &[u8], file: &str, item_index: &HashMap<&str, u32>) -> Result<Interactions> {
    parse_interactions_as(bytes, file, detect_interaction_format(file, bytes), item_index)
}

const USER_COLUMNS: [&str; 3] = ["user_id", "userId", "user"];
const INTERACTION_ITEM_COLUMNS: [&str; 4] = ["item_id", "movieId", "itemId", "item"];

/// Parses an interactions file of a known format.
pub fn parse_interactions_as(
    bytes: &[u8],
    file: &str,
    format: InteractionFormat,
    item_index: &HashMap<&str, u32>,
) -> Result<Interactions> {
    parse_interactions_mapped(bytes, file, format, item_index, &InteractionColumns::default())
}

/// Which CSV/TSV columns of an interactions file hold what, when the header does not use
/// the known names (`user_id`/`userId`/`user`, `item_id`/`movieId`/`itemId`/`item`,
/// `rating`, `timestamp`, `scenario`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InteractionColumns {
    /// The user id column.
    pub user: Option<String>,
    /// The item id column.
    pub item: Option<String>,
    /// The rating column.
    pub rating: Option<String>,
    /// The timestamp column (seconds since the epoch).
    pub timestamp: Option<String>,
}

/// Parses an interactions file of a known format with a column mapping (CSV and TSV only).
pub fn parse_interactions_mapped(
    bytes: &[u8],
    file: &str,
    format: InteractionFormat,
    item_index: &HashMap<&str, u32>,
    columns: &InteractionColumns,
) -> Result<Interactions> {
    if format != InteractionFormat::Csv && *columns != InteractionColumns::default() {
        return Err(Error::new(ErrorKind::Input, format!("{file}: column names apply to csv and tsv interactions files only")));
    }
    let mut b = InteractionBuilder {
        out: Interactions::default(),
        users: HashMap::new(),
        scenarios: HashMap::new(),
        item_index,
        file,
    };
    match format {
        InteractionFormat::Dat => {
            let text = decode_dat(bytes);
            for (line, raw) in lines(text.as_bytes()) {
                let raw = std::str::from_utf8(raw).map_err(|_| input_error(file, line, "not valid utf-8"))?;
                if raw.trim().is_empty() {
                    continue;
                }
                let f: Vec<&str> = raw.split("::").collect();
                if !(2..=4).contains(&f.len()) {
                    return Err(input_error(
                        file,
                        line,
                        format!("expected UserID::MovieID[::Rating[::Timestamp]], found {} fields", f.len()),
                    ));
                }
                b.push(line, f[0], f[1], f.get(2).copied(), f.get(3).copied(), None)?;
            }
        }
        InteractionFormat::Csv => {
            let mut records = CsvRecords::new(bytes, file);
            let Some((header_line, header)) = records.next_text()? else {
                return Ok(b.out);
            };
            let user = required_column(file, header_line, &header, columns.user.as_ref(), &USER_COLUMNS)?;
            let item = required_column(file, header_line, &header, columns.item.as_ref(), &INTERACTION_ITEM_COLUMNS)?;
            // A named optional column must be there; an unnamed one may be missing.
            let optional = |given: Option<&String>, known: &str| match given {
                Some(_) => required_column(file, header_line, &header, given, &[]).map(Some),
                None => Ok(column(&header, &[known])),
            };
            let rating = optional(columns.rating.as_ref(), "rating")?;
            let timestamp = optional(columns.timestamp.as_ref(), "timestamp")?;
            let scenario = column(&header, &["scenario"]);
            while let Some((line, fields)) = records.next_row(header.len(), "")? {
                let get = |c: Option<usize>| c.map(|c| fields[c].as_str());
                b.push(line, &fields[user], &fields[item], get(rating), get(timestamp), get(scenario))?;
            }
        }
    }
    Ok(b.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn movielens_csv_keeps_quoted_commas_titles_as_given_and_takes_the_year() {
        let csv = concat!(
            "movieId,title,genres\r\n",
            "1,Toy Story (1995),Adventure|Animation\r\n",
            "11,\"American President, The (1995)\",Comedy|Drama\r\n",
            "12,\"Say \"\"Hi\"\" (2001) \",(no genres listed)\r\n",
        )
        .as_bytes();
        let items = parse_items(csv, "movies.csv").unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].id, "11");
        assert_eq!(items[1].title, "American President, The (1995)");
        assert_eq!(items[1].genres, vec!["Comedy", "Drama"]);
        assert_eq!(items[1].meta_json(), r#"{"year":1995}"#);
        assert_eq!(items[2].title, "Say \"Hi\" (2001) ");
        assert!(items[2].genres.is_empty());
        assert_eq!(items[2].meta["year"], 2001);
        assert_eq!(items[0].encoder_text(), "Toy Story (1995). Genres: Adventure, Animation");
        assert_eq!(items[2].encoder_text(), "Say \"Hi\" (2001) ");
        assert_eq!(items[2].line, 4);
    }

    #[test]
    fn a_quoted_field_may_span_lines_and_later_errors_name_the_right_line() {
        let csv = b"id,title,text\n1,A,\"two\nlines\"\n2,B,ok\n2,C,dup\n";
        let err = parse_items(csv, "items.csv").unwrap_err().to_string();
        assert!(err.contains("items.csv:5: duplicate id \"2\" (first on line 4)"), "{err}");
        let items = parse_items(b"id,title,text\n1,A,\"two\nlines\"\n", "items.csv").unwrap();
        assert_eq!(items[0].text.as_deref(), Some("two\nlines"));
        assert_eq!(items[0].encoder_text(), "two\nlines");
    }

    #[test]
    fn generic_csv_puts_other_columns_in_meta_and_has_no_year() {
        let items =
            parse_items(b"id,title,url,genres\nx1,Heat (1995),https://e.x/1,A|B\nx2,Two,,\n", "items.csv").unwrap();
        assert_eq!(items[0].meta_json(), r#"{"url":"https://e.x/1"}"#);
        assert_eq!(items[1].meta_json(), "");
        assert!(items[1].genres.is_empty());
    }

    #[test]
    fn ml1m_dat_is_decoded_as_latin1_unless_it_is_utf8() {
        let latin1 = b"73::Mis\xe9rables, Les (1995)::Drama|Musical\n1::Toy Story (1995)::Animation|Children's\n";
        let items = parse_items(latin1, "movies.dat").unwrap();
        assert_eq!(items[0].title, "Misérables, Les (1995)");
        assert_eq!(items[0].meta["year"], 1995);
        assert_eq!(items[1].genres, vec!["Animation", "Children's"]);
        let utf8 = "73::Misérables, Les (1995)::Drama\n";
        assert_eq!(parse_items(utf8.as_bytes(), "movies.dat").unwrap()[0].title, "Misérables, Les (1995)");
        let err = parse_items(b"1::Only two\n", "movies.dat").unwrap_err().to_string();
        assert!(err.starts_with("movies.dat:1: expected MovieID::Title::Genres"), "{err}");
    }

    #[test]
    fn json_lines_take_string_or_number_ids_and_keep_other_keys_as_meta() {
        let jsonl = br#"{"id": 7, "title": "Seven", "genres": ["Crime", "Drama"], "year": 1995, "image": "7.jpg"}

{"id": "b", "title": "Bee", "text": "a documentary about bees", "genres": null}
"#;
        let items = parse_items(jsonl, "items.jsonl").unwrap();
        assert_eq!(items[0].id, "7");
        assert_eq!(items[0].meta_json(), r#"{"image":"7.jpg","year":1995}"#);
        assert_eq!(items[1].encoder_text(), "a documentary about bees");
        assert_eq!(items[1].line, 3);
        for (bad, want) in [
            (&br#"{"title": "x"}"#[..], "items.jsonl:1: missing \"id\""),
            (br#"{"id": [1], "title": "x"}"#, "must be a string or a number"),
            (br#"{"id": 1}"#, "missing \"title\""),
            (br#"[1, 2]"#, "expected a json object"),
            (b"{\"id\": 1, \"title\": \"caf\xe9\"}", "items.jsonl:1: not valid utf-8"),
            (br#"{"id": 1, "title": ""}"#, "empty title"),
        ] {
            let err = parse_items(bad, "items.jsonl").unwrap_err().to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
    }

    #[test]
    fn formats_are_detected_by_name_then_content() {
        assert_eq!(detect_item_format("movies.csv.gz", b""), ItemFormat::Csv);
        assert_eq!(detect_item_format("x.JSONL", b""), ItemFormat::JsonLines);
        assert_eq!(detect_item_format("movies.dat", b""), ItemFormat::Dat);
        assert_eq!(detect_item_format("items", b"\n  {\"id\":1}"), ItemFormat::JsonLines);
        assert_eq!(detect_item_format("items", b"1::A::B"), ItemFormat::Dat);
        assert_eq!(detect_item_format("items", b"id,title"), ItemFormat::Csv);
        assert_eq!(detect_interaction_format("ratings.dat.gz", b""), InteractionFormat::Dat);
        assert_eq!(detect_interaction_format("r", b"1::2::5::0"), InteractionFormat::Dat);
        assert_eq!(detect_interaction_format("ratings.csv", b"userId,movieId"), InteractionFormat::Csv);
    }

    #[test]
    fn bad_items_files_name_the_file_and_line() {
        let cases: [(&[u8], &str, &str); 7] = [
            (b"", "movies.csv", "movies.csv: no items"),
            (b"movieId,title,genres\n", "movies.csv", "movies.csv: no items"),
            (b"movieId,name,genres\n1,A,B\n", "movies.csv", "movies.csv:1: missing column \"title\""),
            (b"movieId,title,genres\n1,A,B\n2,B\n", "movies.csv", "movies.csv:3: expected 3 fields"),
            (b"movieId,title,genres\n1,\"A,B\n", "movies.csv", "movies.csv:2: a quoted field is never closed"),
            (b"movieId,title,genres\n1,A,B\n2,\xff\xfe,B\n", "movies.csv", "movies.csv:3: not valid utf-8"),
            (b"movieId,title,genres\n1,A,B\n,C,D\n", "movies.csv", "movies.csv:3: empty id"),
        ];
        for (bytes, file, want) in cases {
            let err = parse_items(bytes, file).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Input);
            assert!(err.to_string().starts_with(want), "{err} should start with {want}");
        }
    }

    #[test]
    fn tsv_and_mapped_columns_read_like_csv_with_the_known_names() {
        let tsv = b"sku\tname\tblurb\tmaker\tcats\n7\tLamp, brass\tA lamp.\tAcme\tHome|Light\n8\tChair\t\tAcme\t\n";
        let columns = ItemColumns {
            id: Some("sku".into()),
            title: Some("name".into()),
            text: vec!["name".into(), "blurb".into()],
            genres: Some("cats".into()),
        };
        let items = parse_items_mapped(tsv, "items.tsv", ItemFormat::Csv, &columns).unwrap();
        assert_eq!(items[0].id, "7");
        assert_eq!(items[0].title, "Lamp, brass");
        assert_eq!(items[0].text.as_deref(), Some("Lamp, brass\nA lamp."));
        assert_eq!(items[0].genres, vec!["Home", "Light"]);
        assert_eq!(items[0].meta_json(), r#"{"maker":"Acme"}"#);
        assert_eq!(items[1].text.as_deref(), Some("Chair"));
        let unnamed = b"id\ttitle\nx\tA, B\n";
        assert_eq!(parse_items(unnamed, "items").unwrap()[0].title, "A, B");
        let err = parse_items_mapped(tsv, "items.tsv", ItemFormat::Csv, &ItemColumns { id: Some("nope".into()), ..columns })
            .unwrap_err();
        assert!(err.to_string().starts_with("items.tsv:1: missing column \"nope\""), "{err}");

        let log = b"who\twhat\tstars\nu1\t7\t4.5\n";
        let columns = InteractionColumns {
            user: Some("who".into()),
            item: Some("what".into()),
            rating: Some("stars".into()),
            timestamp: None,
        };
        let parsed =
            parse_interactions_mapped(log, "log.tsv", InteractionFormat::Csv, &index(&["7"]), &columns).unwrap();
        assert_eq!(parsed.rows[0].rating, Some(4.5));
        assert_eq!(parsed.users, vec!["u1"]);
        let err = parse_interactions_mapped(b"1::7::5\n", "r.dat", InteractionFormat::Dat, &index(&["7"]), &columns)
            .unwrap_err();
        assert!(err.to_string().contains("csv and tsv interactions files only"), "{err}");
    }

    #[test]
    fn years_come_only_from_a_four_digit_parenthesis_at_the_end() {
        assert_eq!(title_year("Heat (1995)"), Some(1995));
        assert_eq!(title_year("Kådisbellan ) (1993) "), Some(1993));
        assert_eq!(title_year("Babylon 5 (1994-1998)"), None);
        assert_eq!(title_year("Mona (1983))"), None);
        assert_eq!(title_year("(19x5)"), None);
        assert_eq!(title_year("é"), None);
    }

    fn index<'a>(ids: &[&'a str]) -> HashMap<&'a str, u32> {
        ids.iter().enumerate().map(|(i, &id)| (id, i as u32)).collect()
    }

    #[test]
    fn interactions_intern_users_count_unknown_items_and_keep_optional_columns() {
        let ids = index(&["1", "3"]);
        let csv = b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,99,3,1\n\n2,1,,\n";
        let got = parse_interactions(csv, "ratings.csv", &ids).unwrap();
        assert_eq!(got.users, vec!["1", "2"]);
        assert_eq!(got.lines, 4);
        assert_eq!(got.skipped_unknown_item, 1);
        assert_eq!(got.first_unknown, Some(("99".into(), 4)));
        assert_eq!(got.rows.len(), 3);
        assert_eq!(
            got.rows[1],
            Interaction { user: 0, item: 1, rating: Some(4.5), timestamp: Some(964981247), scenario: None }
        );
        assert_eq!(got.rows[2], Interaction { user: 1, item: 0, rating: None, timestamp: None, scenario: None });

        let generic = b"user_id,item_id,scenario\nu,3,home\nv,3,search\nu,1,home\n";
        let got = parse_interactions(generic, "events.csv", &ids).unwrap();
        assert_eq!(got.scenarios, vec!["home", "search"]);
        assert_eq!(got.rows[2].scenario, Some(0));

        let dat = b"1::3::5::978300019\n2::1::4::978300055\n";
        let got = parse_interactions(dat, "ratings.dat", &ids).unwrap();
        assert_eq!(
            got.rows[0],
            Interaction { user: 0, item: 1, rating: Some(5.0), timestamp: Some(978300019), scenario: None }
        );
    }

    #[test]
    fn malformed_interaction_lines_are_errors_naming_file_and_line() {
        let ids = index(&["1"]);
        let cases: [(&[u8], &str, &str); 6] = [
            (b"user,rating\n1,5\n", "r.csv", "r.csv:1: missing column \"item_id\""),
            (b"userId,movieId,rating\n1,1,5\n1,1,great\n", "r.csv", "r.csv:3: rating \"great\" is not a number"),
            (
                b"userId,movieId,rating,timestamp\n1,1,5,soon\n",
                "r.csv",
                "r.csv:2: timestamp \"soon\" is not an integer",
            ),
            (b"userId,movieId\n1,1,5\n", "r.csv", "r.csv:2: expected 2 fields"),
            (b"userId,movieId\n,1\n", "r.csv", "r.csv:2: empty user or item id"),
            (b"1::1::5::0\n1\n", "r.dat", "r.dat:2: expected UserID::MovieID"),
        ];
        for (bytes, file, want) in cases {
            let err = parse_interactions(bytes, file, &ids).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err} should start with {want}");
        }
    }

    #[test]
    fn scenarios_derived_from_timestamps_follow_the_utc_calendar_and_clock() {
        // 2000-12-31 22:12:40 UTC, a Sunday evening; 2001-01-01 was a Monday.
        assert_eq!(ScenarioRule::WeekdayWeekend.of(978300760), 1);
        assert_eq!(ScenarioRule::WeekdayWeekend.of(978307200), 0);
        assert_eq!(ScenarioRule::Daypart.of(978300760), 3);
        assert_eq!(ScenarioRule::Daypart.of(978307200 + 7 * 3600), 1);
        assert_eq!(ScenarioRule::WeekdayWeekend.of(-1), 0, "1969-12-31 was a Wednesday");
        let index: HashMap<&str, u32> = [("1", 0)].into_iter().collect();
        let mut log = parse_interactions(b"user_id,item_id,timestamp\nu,1,978300760\n", "a.csv", &index).unwrap();
        log.derive_scenarios(ScenarioRule::WeekdayWeekend).unwrap();
        assert_eq!((log.scenarios.clone(), log.rows[0].scenario), (vec!["weekday".to_string(), "weekend".to_string()], Some(1)));
        let mut bare = parse_interactions(b"user_id,item_id\nu,1\n", "b.csv", &index).unwrap();
        assert!(bare.derive_scenarios(ScenarioRule::Daypart).unwrap_err().to_string().contains("no timestamp"));
    }
}

//! Reading an output back: the rows of one file a [`Sink`](crate::Sink) wrote, as the rows it was
//! given.
//!
//! Each format is read as the exact inverse of its encoder, one line, CSV record or Parquet batch
//! at a time, so memory stays flat however large the file:
//!
//! - JSONL: one object per line. JSON: the same objects, `[` before the first, `,` after every
//!   one but the last (the next starts on a new line), `]` and a newline after the last. An object's
//!   values are taken by key in schema order; a missing key reads as null.
//! - CSV: a header of the schema's names, then one RFC 4180 record per row. A field is the text
//!   [`Sink::write_chunk`](crate::Sink::write_chunk) wrote for the value: the empty field for
//!   null, `true`/`false`, a number as JSON prints it, a string as it is.
//! - gzip: any number of members (the sinks write one per commit), read as one stream.
//! - Parquet: one part, every row group in order, each Arrow column turned back into wire values.
//!
//! Every value read is checked against the schema as the sink checks what it writes, so a file
//! that reads back yields rows that a sink of the same schema accepts.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use iptvportal_catalog::ColumnType;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::{Number, Value};

use crate::error::Error;
use crate::schema::{ColumnSpec, Schema, fits, shorten};
use crate::spec::{Compression, Format, SinkSpec};

/// The read buffer of a pass over a file (and of its decompressed stream).
const BUFFER: usize = 256 * 1024;

/// Calls `each` with every row of the output file at `path`, in file order, read as `spec` wrote
/// it (its format, compression and schema): each row is the values in `spec`'s schema column
/// order, as the sink was given them ("wire values", as the portal sent them).
///
/// `path` is the one file of a text format, or one Parquet part (read parts in index order for
/// the whole output). `bytes` is how much of the file is committed, the manifest's
/// [`FileRecord::bytes`](crate::FileRecord::bytes) or the position's `bytes`: a text file is read
/// only that far, so the uncommitted tail of a file still being written (a torn row, an unfinished
/// gzip member) is never read. A file shorter than `bytes` fails with [`Error::Changed`]. A Parquet
/// part is committed whole: `bytes` must then be its size, or the same error says it is not.
/// Without `bytes` the whole file is read. A text file read before its dump finished holds no
/// closing `]` (JSON); that is not an error.
///
/// What comes back is exactly what the sink was given, but for what a format cannot tell apart:
///
/// - CSV writes null and the empty string alike, as the empty field. An empty field reads as null,
///   except in a non-nullable text column, which cannot hold null: there it is the empty string.
///   So `""` written to a nullable text column reads back as null from CSV.
/// - Parquet stores each value with its column's type: an integer written to a float column
///   (`3`) reads back as a float (`3.0`). The text formats give it back as written (`3`).
/// - Parquet stores a timestamp as microseconds, not as text. It reads back as
///   `YYYY-MM-DD HH:MM:SS`, with a fraction only when it is not zero and without trailing zeros
///   (`…:05.25`), the form the portal sends: `…:05.250` written reads back as `…:05.25`. The text
///   formats give back the text as written.
///
/// `each` may stop the read by failing; its error is returned as it is. A file that is not what
/// the spec writes fails with [`Error::Io`] of kind [`io::ErrorKind::InvalidData`], its message
/// naming the line (JSONL, JSON), the record and line (CSV) or the record (Parquet, 1-based in
/// the part) and the column: malformed text, a header or Parquet schema other than the spec's
/// columns, a key that is no column, a value that does not fit its column. A Parquet part that
/// does not decode fails with [`Error::Parquet`]; a spec that [`crate::open`] refuses fails as it
/// does there ([`Error::Config`], and for Parquet in a build without the `parquet` feature).
pub fn read_rows(
    path: &Path,
    spec: &SinkSpec,
    bytes: Option<u64>,
    each: &mut dyn FnMut(Vec<Value>) -> Result<(), Error>,
) -> Result<(), Error> {
    spec.validate()?;
    #[cfg(not(feature = "parquet"))]
    if spec.format == Format::Parquet {
        return Err(crate::no_parquet());
    }
    let columns = Columns::new(path, &spec.schema);
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    #[cfg(feature = "parquet")]
    if spec.format == Format::Parquet {
        if let Some(bytes) = bytes.filter(|&b| b != len) {
            return Err(changed(path, len, bytes));
        }
        return parquet_rows::read(file, &columns, each);
    }
    let committed = match bytes {
        Some(bytes) if bytes > len => return Err(changed(path, len, bytes)),
        Some(bytes) => bytes,
        None => len,
    };
    if committed == 0 {
        return Ok(());
    }
    let raw = BufReader::with_capacity(BUFFER, file.take(committed));
    let reader: Box<dyn BufRead> = match spec.compression {
        Compression::Gzip { .. } => {
            Box::new(BufReader::with_capacity(BUFFER, flate2::bufread::MultiGzDecoder::new(raw)))
        }
        Compression::None => Box::new(raw),
    };
    match spec.format {
        Format::Csv => read_csv(reader, &columns, each),
        Format::Json => read_lines(reader, &columns, true, each),
        _ => read_lines(reader, &columns, false, each),
    }
}

/// A file shorter (text) or of another size (Parquet) than its committed length.
fn changed(path: &Path, len: u64, bytes: u64) -> Error {
    Error::Changed {
        path: path.to_owned(),
        reason: format!("it is {len} bytes, the manifest says {bytes}"),
    }
}

/// The schema being read, with what every format's reader needs of it.
struct Columns<'a> {
    path: &'a Path,
    schema: &'a Schema,
    /// Each column name's first index.
    index: HashMap<&'a str, usize>,
}

impl<'a> Columns<'a> {
    fn new(path: &'a Path, schema: &'a Schema) -> Columns<'a> {
        let mut index = HashMap::with_capacity(schema.columns.len());
        for (i, c) in schema.columns.iter().enumerate() {
            index.entry(c.name.as_str()).or_insert(i);
        }
        Columns { path, schema, index }
    }

    fn width(&self) -> usize {
        self.schema.columns.len()
    }

    /// The error of data that is not what the spec writes; `detail` says where and what.
    fn invalid(&self, detail: impl fmt::Display) -> Error {
        Error::io(self.path, io::Error::new(io::ErrorKind::InvalidData, detail.to_string()))
    }

    /// Checks every value of a row read at `at` against its column, as the sink checks a row
    /// before it writes it.
    fn check(&self, row: &[Value], at: &dyn fmt::Display) -> Result<(), Error> {
        for (col, value) in self.schema.columns.iter().zip(row) {
            if !fits(col, value) {
                let expected =
                    if col.nullable { col.ty.to_string() } else { format!("non-null {}", col.ty) };
                return Err(self.invalid(format!(
                    "{at}, column {}: expected {expected}, got {}",
                    col.name,
                    shorten(value)
                )));
            }
        }
        Ok(())
    }

    /// The row of one JSON object, its values by key in column order, read at `at`.
    fn object(&self, text: &[u8], at: &dyn fmt::Display) -> Result<Vec<Value>, Error> {
        let mut row = vec![Value::Null; self.width()];
        let mut seen = vec![false; self.width()];
        let mut de = serde_json::Deserializer::from_slice(text);
        ObjectSeed { columns: self, row: &mut row, seen: &mut seen }
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(|e| {
                // The position serde_json appends is within the line, always on its line 1.
                let message = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                let message = message.strip_suffix(&suffix).unwrap_or(&message);
                self.invalid(format!("{at}: {message} (byte {} of the object)", e.column()))
            })?;
        self.check(&row, at)?;
        Ok(row)
    }
}

/// Reads JSONL (`array` false) or JSON (`array` true) line by line.
///
/// Every object the sinks write is on one line (`serde_json` escapes line breaks in strings): JSONL
/// ends each with a newline; JSON puts `[` before the first, `,` and a newline after every one
/// but the last, and `]` and a newline after it. The committed part of an unfinished JSON file
/// ends after an object, without `]`. A blank line is skipped.
fn read_lines(
    mut reader: impl BufRead,
    columns: &Columns<'_>,
    array: bool,
    each: &mut dyn FnMut(Vec<Value>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut line = Vec::new();
    let mut number = 0u64;
    // JSON only: whether the `[` was read, whether the `]` was, whether an object may come next
    // (at the start, and after a `,`).
    let (mut opened, mut closed, mut separated) = (!array, false, true);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(|e| Error::io(columns.path, e))? == 0 {
            return Ok(());
        }
        number += 1;
        let at = Line(number);
        let mut text = line.trim_ascii();
        if array {
            if !opened {
                text = text
                    .strip_prefix(b"[")
                    .ok_or_else(|| columns.invalid(format!("{at}: the JSON array has no [")))?
                    .trim_ascii_start();
                opened = true;
            }
            if closed {
                if text.is_empty() {
                    continue;
                }
                return Err(columns.invalid(format!("{at}: text after the array's closing ]")));
            }
            if let Some(rest) = text.strip_suffix(b"]") {
                closed = true;
                text = rest.trim_ascii_end();
            }
            let more = match text.strip_suffix(b",") {
                Some(rest) => {
                    text = rest.trim_ascii_end();
                    true
                }
                None => false,
            };
            if more && (closed || text.is_empty()) {
                return Err(columns.invalid(format!("{at}: a comma that separates no objects")));
            }
            if text.is_empty() {
                continue;
            }
            if !separated {
                return Err(columns
                    .invalid(format!("{at}: no comma between this object and the one before")));
            }
            separated = more;
        } else if text.is_empty() {
            continue;
        }
        each(columns.object(text, &at)?)?;
    }
}

/// A line of a text file, 1-based, in messages.
struct Line(u64);

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.0)
    }
}

/// A record of a Parquet part, 1-based, in messages.
#[cfg_attr(not(feature = "parquet"), expect(dead_code, reason = "Parquet parts only"))]
struct Record(u64);

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}", self.0)
    }
}

/// Reads one JSON object into `row`, each value at its key's column.
struct ObjectSeed<'a, 'b> {
    columns: &'a Columns<'b>,
    row: &'a mut [Value],
    seen: &'a mut [bool],
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let columns = &self.columns.schema.columns;
        while let Some(first) = map.next_key_seed(KeySeed(&self.columns.index))? {
            // A name the schema holds twice is written twice: each key fills the next column of
            // that name.
            let name = &columns[first].name;
            let Some(i) =
                (first..columns.len()).find(|&i| !self.seen[i] && columns[i].name == *name)
            else {
                return Err(de::Error::custom(format!("the key {name:?} appears twice")));
            };
            self.row[i] = map.next_value()?;
            self.seen[i] = true;
        }
        Ok(())
    }
}

/// Reads an object's key as the index of the first column of that name.
struct KeySeed<'a, 'b>(&'a HashMap<&'b str, usize>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a column name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        self.0
            .get(key)
            .copied()
            .ok_or_else(|| E::custom(format!("the key {key:?} is not a column of the schema")))
    }
}

/// Reads CSV: the header, which must be the schema's names, then one record per row.
fn read_csv(
    reader: impl Read,
    columns: &Columns<'_>,
    each: &mut dyn FnMut(Vec<Value>) -> Result<(), Error>,
) -> Result<(), Error> {
    let failure = |e: csv::Error| {
        let message = e.to_string();
        match e.into_kind() {
            csv::ErrorKind::Io(e) => Error::io(columns.path, e),
            _ => columns.invalid(message),
        }
    };
    // The writer's dialect: `,`, `"` doubled inside quoted fields, no comments, no trimming.
    // Records end in `\n`; the reader takes `\r\n` too, and a bare `\r` is always quoted.
    let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(Tail::new(reader));
    // A stream that holds nothing (a committed part of empty gzip members) has no header.
    let empty = csv.byte_headers().map_err(failure)?.is_empty();
    if empty && csv.is_done() {
        return Ok(());
    }
    let header = csv.byte_headers().map_err(failure)?;
    if !header.iter().eq(columns.schema.names().map(str::as_bytes)) {
        let found: Vec<_> = header.iter().map(String::from_utf8_lossy).collect();
        let expected: Vec<_> = columns.schema.names().collect();
        return Err(columns.invalid(format!(
            "line 1: the header is {found:?}, the schema's columns are {expected:?}"
        )));
    }
    let mut record = csv::ByteRecord::new();
    let mut number = 0u64;
    // Each row is handed on once the next record (or the end) is read: the CSV reader takes a
    // last record cut short (its quote never closed, its line never ended) as complete, which
    // only the end of the stream tells.
    let mut pending = None;
    while csv.read_byte_record(&mut record).map_err(failure)? {
        number += 1;
        let at = CsvAt { record: number, line: record.position().map(csv::Position::line) };
        let row = columns
            .schema
            .columns
            .iter()
            .zip(record.iter())
            .map(|(col, field)| {
                csv_value(col, field).map_err(|detail| {
                    columns.invalid(format!("{at}, column {}: {detail}", col.name))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The reader refuses a record whose width is not the header's.
        debug_assert_eq!(row.len(), columns.width());
        columns.check(&row, &at)?;
        if let Some(row) = pending.replace(row) {
            each(row)?;
        }
    }
    let tail = csv.get_ref();
    let cut = if tail.odd_quotes {
        Some("inside a quoted field")
    } else if tail.last.is_some_and(|b| b != b'\n') {
        Some("inside a record, not at the end of a line")
    } else {
        None
    };
    if let Some(cut) = cut {
        let line = csv.position().line();
        return Err(columns.invalid(format!("line {line}: the file ends {cut}")));
    }
    match pending {
        Some(row) => each(row),
        None => Ok(()),
    }
}

/// A reader that notes what a CSV stream ends in: its last byte, and whether it holds an odd
/// number of quotes. The sinks quote in pairs (a quoted field opens and closes, a quote inside it
/// is doubled), so an odd count means a quoted field never closed.
struct Tail<R> {
    inner: R,
    last: Option<u8>,
    odd_quotes: bool,
}

impl<R> Tail<R> {
    fn new(inner: R) -> Tail<R> {
        Tail { inner, last: None, odd_quotes: false }
    }
}

impl<R: Read> Read for Tail<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = &buf[..n];
        if let Some(&last) = read.last() {
            self.last = Some(last);
        }
        self.odd_quotes = read.iter().fold(self.odd_quotes, |odd, &b| odd ^ (b == b'"'));
        Ok(n)
    }
}

/// A CSV record in messages: its number (1-based, after the header) and the line it starts on.
struct CsvAt {
    record: u64,
    line: Option<u64>,
}

impl fmt::Display for CsvAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}", self.record)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// The value a CSV field holds in `col`: the inverse of the text sink's `csv_field`.
fn csv_value(col: &ColumnSpec, field: &[u8]) -> Result<Value, String> {
    if field.is_empty() {
        // Null and the empty string are both the empty field; only a non-nullable text column
        // tells them apart (it holds no null).
        return Ok(if col.ty == ColumnType::Text && !col.nullable {
            Value::String(String::new())
        } else {
            Value::Null
        });
    }
    let text = std::str::from_utf8(field).map_err(|e| format!("the field is not UTF-8 ({e})"))?;
    Ok(match col.ty {
        // A number as JSON printed it, read as JSON reads it: `3` an integer, `3.0` a float.
        ColumnType::Integer | ColumnType::Float => {
            let number = (text.trim_ascii() == text)
                .then(|| serde_json::from_str::<Number>(text).ok())
                .flatten()
                .ok_or_else(|| format!("{text:?} is not a number"))?;
            Value::Number(number)
        }
        ColumnType::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("{text:?} is not true or false")),
        },
        // Text and timestamps are their text.
        _ => Value::String(text.to_owned()),
    })
}

/// `YYYY-MM-DD HH:MM:SS` of `micros` microseconds since 1970-01-01 00:00:00, with the fraction
/// when it is not zero, trailing zeros dropped: the form the portal sends, which
/// [`parse_timestamp`](iptvportal_catalog::time::parse_timestamp) reads back to `micros`. `None`
/// outside the years 0 to 9999, which that form cannot hold.
#[cfg_attr(not(feature = "parquet"), cfg(test))]
fn format_micros(micros: i64) -> Option<String> {
    use iptvportal_catalog::time::{format_timestamp, parse_timestamp};
    let mut text = format_timestamp(micros.div_euclid(1_000_000));
    let fraction = micros.rem_euclid(1_000_000);
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    (parse_timestamp(&text) == Some(micros)).then_some(text)
}

#[cfg(feature = "parquet")]
mod parquet_rows {
    //! Parquet parts back to rows.

    use std::fs::File;

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    use arrow_array::{
        Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    use iptvportal_catalog::ColumnType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use serde_json::{Number, Value};

    use super::{Columns, Record, format_micros};
    use crate::error::Error;
    use crate::parquet::arrow_schema as arrow_schema_of;
    use crate::schema::ColumnSpec;

    /// Rows per batch read: the batch's columns are what the read holds in memory.
    const BATCH_ROWS: usize = 4096;

    /// Reads every row of the part `file`.
    pub(super) fn read(
        file: File,
        columns: &Columns<'_>,
        each: &mut dyn FnMut(Vec<Value>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let path = columns.path;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?;
        // The part's columns must be the ones the sink writes for the schema: names and types in
        // order. Nullability is the schema's to check, value by value.
        let expected = arrow_schema_of(columns.schema);
        let found = builder.schema();
        let same = found.fields().len() == expected.fields().len()
            && found
                .fields()
                .iter()
                .zip(expected.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        if !same {
            let show = |s: &arrow_schema::Schema| {
                s.fields()
                    .iter()
                    .map(|f| format!("{}: {}", f.name(), f.data_type()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(columns.invalid(format!(
                "the part's columns are ({}), the schema's are ({})",
                show(found),
                show(&expected)
            )));
        }
        let reader =
            builder.with_batch_size(BATCH_ROWS).build().map_err(|e| Error::parquet(path, e))?;
        let mut number = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| Error::parquet(path, e))?;
            let cells = columns
                .schema
                .columns
                .iter()
                .zip(batch.columns())
                .map(|(col, array)| {
                    Cells::of(col, array).ok_or_else(|| {
                        columns.invalid(format!(
                            "column {} holds {}, not {}",
                            col.name,
                            array.data_type(),
                            col.ty
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            for i in 0..batch.num_rows() {
                number += 1;
                let at = Record(number);
                let row = columns
                    .schema
                    .columns
                    .iter()
                    .zip(&cells)
                    .map(|(col, cells)| {
                        cells
                            .value(i)
                            .map_err(|d| columns.invalid(format!("{at}, column {}: {d}", col.name)))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                columns.check(&row, &at)?;
                each(row)?;
            }
        }
        Ok(())
    }

    /// One column of a batch, as the array type its column type is written with.
    enum Cells<'a> {
        Integer(&'a Int64Array),
        Float(&'a Float64Array),
        Boolean(&'a BooleanArray),
        Text(&'a StringArray),
        Timestamp(&'a TimestampMicrosecondArray),
    }

    impl<'a> Cells<'a> {
        /// `array` as `col`'s type writes it, or `None` when it is another array type.
        fn of(col: &ColumnSpec, array: &'a ArrayRef) -> Option<Cells<'a>> {
            Some(match col.ty {
                ColumnType::Integer => Cells::Integer(array.as_primitive_opt::<Int64Type>()?),
                ColumnType::Float => Cells::Float(array.as_primitive_opt::<Float64Type>()?),
                ColumnType::Boolean => Cells::Boolean(array.as_boolean_opt()?),
                ColumnType::Timestamp => {
                    Cells::Timestamp(array.as_primitive_opt::<TimestampMicrosecondType>()?)
                }
                // Text, and any type written as text (see `arrow_schema`).
                _ => Cells::Text(array.as_string_opt::<i32>()?),
            })
        }

        /// The wire value of row `i`.
        fn value(&self, i: usize) -> Result<Value, String> {
            let array: &dyn Array = match self {
                Cells::Integer(a) => *a,
                Cells::Float(a) => *a,
                Cells::Boolean(a) => *a,
                Cells::Text(a) => *a,
                Cells::Timestamp(a) => *a,
            };
            if array.is_null(i) {
                return Ok(Value::Null);
            }
            Ok(match self {
                Cells::Integer(a) => Value::from(a.value(i)),
                Cells::Float(a) => {
                    let v = a.value(i);
                    Value::Number(
                        Number::from_f64(v).ok_or_else(|| format!("{v} is not a JSON number"))?,
                    )
                }
                Cells::Boolean(a) => Value::Bool(a.value(i)),
                Cells::Text(a) => Value::String(a.value(i).to_owned()),
                Cells::Timestamp(a) => {
                    let micros = a.value(i);
                    Value::String(format_micros(micros).ok_or_else(|| {
                        format!("timestamp {micros} µs lies outside the years 0 to 9999")
                    })?)
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use iptvportal_catalog::time::days_in_month;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::spec::SinkPosition;

    /// Every column type, nullable and not.
    fn schema() -> Schema {
        Schema {
            columns: vec![
                ColumnSpec::new("id", ColumnType::Integer, false),
                ColumnSpec::new("n", ColumnType::Integer, true),
                ColumnSpec::new("f", ColumnType::Float, true),
                ColumnSpec::new("b", ColumnType::Boolean, true),
                ColumnSpec::new("t", ColumnType::Text, true),
                ColumnSpec::new("s", ColumnType::Text, false),
                ColumnSpec::new("ts", ColumnType::Timestamp, true),
            ],
        }
    }

    /// The text formats, plain and gzip.
    const TEXT: [(Format, Compression); 6] = [
        (Format::Jsonl, Compression::None),
        (Format::Jsonl, Compression::Gzip { level: 1 }),
        (Format::Csv, Compression::None),
        (Format::Csv, Compression::Gzip { level: 6 }),
        (Format::Json, Compression::None),
        (Format::Json, Compression::Gzip { level: 1 }),
    ];

    /// Every format this build writes, and gzip for the text ones.
    fn configs() -> Vec<(Format, Compression)> {
        let mut configs = TEXT.to_vec();
        if cfg!(feature = "parquet") {
            configs.push((Format::Parquet, Compression::None));
        }
        configs
    }

    fn spec_with(dir: &Path, format: Format, compression: Compression, schema: Schema) -> SinkSpec {
        let mut spec = SinkSpec::new(dir, "t", format, compression, schema);
        // Small parts and row groups, so that a few rows span several of each.
        spec.parquet.part_rows = 4;
        spec.parquet.row_group_rows = 3;
        spec.with_id_column(Some("id"))
    }

    fn spec(dir: &Path, format: Format, compression: Compression) -> SinkSpec {
        spec_with(dir, format, compression, schema())
    }

    /// Writes `chunks` with a real sink, committing after each, and finishes.
    fn write(spec: &SinkSpec, chunks: &[Vec<Vec<Value>>]) -> SinkPosition {
        let mut sink = crate::open(spec, None).unwrap();
        for chunk in chunks {
            sink.write_chunk(chunk).unwrap();
            sink.commit().unwrap();
        }
        sink.finish().unwrap()
    }

    fn read(path: &Path, spec: &SinkSpec, bytes: Option<u64>) -> Result<Vec<Vec<Value>>, Error> {
        let mut rows = Vec::new();
        read_rows(path, spec, bytes, &mut |row| {
            rows.push(row);
            Ok(())
        })?;
        Ok(rows)
    }

    /// Every file of the manifest, in order, read to its committed length (and whole).
    fn read_back(spec: &SinkSpec, pos: &SinkPosition) -> Vec<Vec<Value>> {
        let mut rows = Vec::new();
        for file in &pos.files {
            let path = spec.dir.join(&file.name);
            let committed = read(&path, spec, Some(file.bytes)).unwrap();
            assert_eq!(committed.len() as u64, file.rows, "{}", file.name);
            assert_eq!(read(&path, spec, None).unwrap(), committed, "{}", file.name);
            rows.extend(committed);
        }
        rows
    }

    /// `…:05.250` as Parquet gives it back: `…:05.25`; `…:05.000` as `…:05`.
    fn canonical(ts: &str) -> String {
        match ts.split_once('.') {
            Some((whole, fraction)) => match fraction.trim_end_matches('0') {
                "" => whole.to_owned(),
                fraction => format!("{whole}.{fraction}"),
            },
            None => ts.to_owned(),
        }
    }

    /// What a format gives back of `rows`, as the docs of [`read_rows`] list.
    fn expected(format: Format, schema: &Schema, rows: &[Vec<Value>]) -> Vec<Vec<Value>> {
        rows.iter()
            .map(|row| {
                schema
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(col, v)| match (format, col.ty, v) {
                        (Format::Parquet, ColumnType::Float, Value::Number(n)) => {
                            json!(n.as_f64().unwrap())
                        }
                        (Format::Parquet, ColumnType::Timestamp, Value::String(s)) => {
                            json!(canonical(s))
                        }
                        (Format::Csv, ColumnType::Text, Value::String(s))
                            if s.is_empty() && col.nullable =>
                        {
                            Value::Null
                        }
                        _ => v.clone(),
                    })
                    .collect()
            })
            .collect()
    }

    fn tricky_rows() -> Vec<Vec<Value>> {
        let null = Value::Null;
        vec![
            vec![
                json!(1),
                json!(2),
                json!(1.5),
                json!(true),
                json!("plain"),
                json!("s"),
                json!("2024-02-29 12:30:00"),
            ],
            vec![
                json!(2),
                null.clone(),
                json!(3),
                json!(false),
                json!(""),
                json!(""),
                json!("2023-01-01 10:00:00.250"),
            ],
            vec![
                json!(i64::MIN),
                json!(i64::MAX),
                json!(1e-7),
                null.clone(),
                json!("a,\"b\"\nc\r\nd\re"),
                json!("123"),
                null.clone(),
            ],
            vec![
                json!(4),
                json!(0),
                json!(-0.0),
                json!(true),
                json!("true"),
                json!("null"),
                json!("1969-12-31 23:59:59.000001"),
            ],
            vec![
                json!(5),
                null.clone(),
                null.clone(),
                null.clone(),
                null.clone(),
                json!("é漢🎉 \t"),
                json!("0000-01-01 00:00:00"),
            ],
            vec![
                json!(6),
                json!(-1),
                json!(1e300),
                json!(false),
                json!(" 12 "),
                json!("["),
                json!("9999-12-31 23:59:59.999999"),
            ],
            vec![
                json!(7),
                null.clone(),
                json!(9_007_199_254_740_992_i64),
                null.clone(),
                json!("},{\"x\":1}]"),
                json!("\""),
                json!("2000-01-01 00:00:00.000"),
            ],
            vec![json!(8), json!(1), json!(1.0), json!(true), json!("-2.5e3"), json!(","), null],
        ]
    }

    #[test]
    fn every_format_reads_back_the_rows_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let rows = tricky_rows();
        let chunks = vec![rows[..2].to_vec(), vec![], rows[2..5].to_vec(), rows[5..].to_vec()];
        for (i, (format, compression)) in configs().into_iter().enumerate() {
            let spec = spec(&dir.path().join(i.to_string()), format, compression);
            let pos = write(&spec, &chunks);
            if format == Format::Parquet {
                assert_eq!(pos.files.len(), 2, "two parts: 5 rows and 3");
            }
            let got = read_back(&spec, &pos);
            assert_eq!(got, expected(format, &spec.schema, &rows), "{format} {compression:?}");
        }
    }

    /// Reads back what a fresh sink of `format` writes of `rows`, in one chunk.
    fn round_trip(dir: &Path, format: Format, rows: &[Vec<Value>]) -> Vec<Vec<Value>> {
        let spec = spec(&dir.join(format.as_str()), format, Compression::None);
        read_back(&spec, &write(&spec, &[rows.to_vec()]))
    }

    #[test]
    fn text_formats_give_back_what_they_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let rows = tricky_rows();
        assert_eq!(round_trip(dir.path(), Format::Jsonl, &rows), rows);
        assert_eq!(round_trip(dir.path(), Format::Json, &rows), rows);
        let csv = round_trip(dir.path(), Format::Csv, &rows);
        assert_eq!(csv[1][2], json!(3), "an integer in a float column stays one");
        assert!(csv[1][2].is_i64());
        assert_eq!(csv[1][4], Value::Null, "the empty string of a nullable text column");
        assert_eq!(csv[1][5], json!(""), "the empty string of a non-null text column");
        assert_eq!(csv[2][5], json!("123"), "text that looks like a number stays text");
        assert_eq!(csv[3][4], json!("true"));
        assert_eq!(csv[6][6], json!("2000-01-01 00:00:00.000"));
        assert!(csv[7][2].is_f64() && csv[7][2] == json!(1.0));
    }

    #[cfg(feature = "parquet")]
    #[test]
    fn parquet_gives_back_values_of_the_column_types() {
        let dir = tempfile::tempdir().unwrap();
        let parquet = round_trip(dir.path(), Format::Parquet, &tricky_rows());
        assert!(parquet[1][2].is_f64() && parquet[1][2] == json!(3.0));
        assert_eq!(parquet[1][4], json!(""));
        assert_eq!(parquet[1][6], json!("2023-01-01 10:00:00.25"));
        assert_eq!(parquet[6][6], json!("2000-01-01 00:00:00"));
        assert_eq!(parquet[3][6], json!("1969-12-31 23:59:59.000001"));
        assert_eq!(parquet[2][0], json!(i64::MIN));
    }

    #[test]
    fn an_empty_table_reads_back_as_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        for (i, (format, compression)) in configs().into_iter().enumerate() {
            let spec = spec(&dir.path().join(i.to_string()), format, compression);
            let pos = write(&spec, &[vec![]]);
            assert_eq!(pos.files.len(), 1);
            assert_eq!(read_back(&spec, &pos), Vec::<Vec<Value>>::new(), "{format}");
        }
        // Nothing committed at all: an empty file.
        let spec = spec(dir.path(), Format::Csv, Compression::gzip());
        std::fs::write(spec.text_path(), b"").unwrap();
        assert_eq!(read(&spec.text_path(), &spec, Some(0)).unwrap(), Vec::<Vec<Value>>::new());
    }

    #[test]
    fn bytes_limits_reading_to_the_committed_part() {
        let dir = tempfile::tempdir().unwrap();
        let rows = tricky_rows();
        for (i, (format, compression)) in TEXT.into_iter().enumerate() {
            let spec = spec(&dir.path().join(i.to_string()), format, compression);
            let mut sink = crate::open(&spec, None).unwrap();
            sink.write_chunk(&rows[..3]).unwrap();
            let first = sink.commit().unwrap().unwrap();
            sink.write_chunk(&rows[3..5]).unwrap();
            let second = sink.commit().unwrap().unwrap();
            // Written but never committed: the crash came first.
            sink.write_chunk(&rows[5..]).unwrap();
            drop(sink);
            let path = spec.text_path();
            let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            std::io::Write::write_all(&mut file, b"\n{\"id\":9,\"n\x00").unwrap();
            drop(file);
            let what = format!("{format} {compression:?}");
            let got = read(&path, &spec, Some(first.bytes)).unwrap();
            assert_eq!(got, expected(format, &spec.schema, &rows[..3]), "{what}");
            let got = read(&path, &spec, Some(second.bytes)).unwrap();
            assert_eq!(got, expected(format, &spec.schema, &rows[..5]), "{what}");
            // The whole file holds the torn tail.
            let Err(Error::Io { path: at, source }) = read(&path, &spec, None) else {
                panic!("{what}: the torn tail read")
            };
            assert_eq!(at, path);
            if compression == Compression::None {
                assert_eq!(source.kind(), io::ErrorKind::InvalidData, "{what}: {source}");
            }
            // Shorter than committed: changed since.
            let len = std::fs::metadata(&path).unwrap().len();
            let Err(Error::Changed { reason, .. }) = read(&path, &spec, Some(len + 1)) else {
                panic!("{what}: read past the end")
            };
            assert_eq!(reason, format!("it is {len} bytes, the manifest says {}", len + 1));
        }
    }

    #[cfg(feature = "parquet")]
    #[test]
    fn a_parquet_part_is_read_whole_and_only_at_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), Format::Parquet, Compression::None);
        let pos = write(&spec, &[tricky_rows()[..2].to_vec()]);
        let part = spec.part_path(0);
        assert_eq!(read(&part, &spec, Some(pos.files[0].bytes)).unwrap().len(), 2);
        let Err(Error::Changed { reason, .. }) = read(&part, &spec, Some(pos.files[0].bytes - 1))
        else {
            panic!("read a part of another size")
        };
        assert!(reason.starts_with("it is "), "{reason}");
        // Another schema's part.
        let other = spec_with(
            dir.path(),
            Format::Parquet,
            Compression::None,
            Schema { columns: vec![ColumnSpec::new("id", ColumnType::Text, false)] },
        );
        let message = invalid_data(read(&part, &other, None));
        assert!(message.starts_with("the part's columns are (id: Int64, n: Int64"), "{message}");
        assert!(message.ends_with("the schema's are (id: Utf8)"), "{message}");
        // Not Parquet at all.
        std::fs::write(&part, b"PAR1 and then nothing").unwrap();
        assert!(matches!(read(&part, &spec, None), Err(Error::Parquet { .. })));
    }

    /// The message of an [`io::ErrorKind::InvalidData`] error.
    fn invalid_data(result: Result<Vec<Vec<Value>>, Error>) -> String {
        match result {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::InvalidData => {
                source.to_string()
            }
            other => panic!("not invalid data: {other:?}"),
        }
    }

    /// Reads `text` as the file of a two-column spec (`id` integer, `name` nullable text).
    fn read_text(format: Format, text: &str) -> Result<Vec<Vec<Value>>, Error> {
        let dir = tempfile::tempdir().unwrap();
        let schema = Schema {
            columns: vec![
                ColumnSpec::new("id", ColumnType::Integer, false),
                ColumnSpec::new("name", ColumnType::Text, true),
            ],
        };
        let spec = spec_with(dir.path(), format, Compression::None, schema);
        std::fs::write(spec.text_path(), text).unwrap();
        read(&spec.text_path(), &spec, None)
    }

    #[test]
    fn jsonl_reads_keys_by_name_and_refuses_what_no_sink_writes() {
        let rows = read_text(Format::Jsonl, "{\"name\":\"a\",\"id\":1}\n\n{\"id\":2}\n").unwrap();
        assert_eq!(rows, [vec![json!(1), json!("a")], vec![json!(2), Value::Null]]);
        for (text, message) in [
            ("{\"id\":1}\n{\"id\":", "line 2: EOF while parsing a value (byte 6 of the object)"),
            ("{\"id\":1,\"x\":2}\n", "line 1: the key \"x\" is not a column of the schema"),
            ("{\"id\":1,\"id\":2}\n", "line 1: the key \"id\" appears twice"),
            ("[1,2]\n", "line 1: invalid type: sequence, expected a JSON object"),
            ("{\"id\":1} x\n", "line 1: trailing characters"),
            ("{\"id\":1.5}\n", "line 1, column id: expected non-null integer, got 1.5"),
            ("{\"name\":\"a\"}\n", "line 1, column id: expected non-null integer, got null"),
            ("{\"id\":1,\"name\":7}\n", "line 1, column name: expected text, got 7"),
        ] {
            let found = invalid_data(read_text(Format::Jsonl, text));
            assert!(found.starts_with(message), "{text:?}: {found}");
        }
    }

    #[test]
    fn json_reads_the_array_line_by_line_and_checks_its_punctuation() {
        let two = vec![vec![json!(1), json!("a")], vec![json!(2), Value::Null]];
        let whole = "[{\"id\":1,\"name\":\"a\"},\n{\"id\":2,\"name\":null}]\n";
        assert_eq!(read_text(Format::Json, whole).unwrap(), two);
        // The committed part of an unfinished file.
        let open = "[{\"id\":1,\"name\":\"a\"},\n{\"id\":2,\"name\":null}";
        assert_eq!(read_text(Format::Json, open).unwrap(), two);
        assert_eq!(read_text(Format::Json, "[").unwrap(), Vec::<Vec<Value>>::new());
        assert_eq!(read_text(Format::Json, "[]\n").unwrap(), Vec::<Vec<Value>>::new());
        for (text, message) in [
            ("{\"id\":1}]\n", "line 1: the JSON array has no ["),
            ("[{\"id\":1}\n{\"id\":2}]\n", "line 2: no comma between this object and the one"),
            ("[{\"id\":1},]\n", "line 1: a comma that separates no objects"),
            ("[{\"id\":1}]\n{\"id\":2}\n", "line 2: text after the array's closing ]"),
            ("[{\"id\":1},\n{\"id\":true}]\n", "line 2, column id: expected non-null integer"),
        ] {
            let found = invalid_data(read_text(Format::Json, text));
            assert!(found.starts_with(message), "{text:?}: {found}");
        }
    }

    #[test]
    fn csv_inverts_each_field_and_refuses_what_no_sink_writes() {
        let rows = read_text(Format::Csv, "id,name\n1,\n2,\"\"\n3,\"x,\"\"y\"\"\r\nz\"\n").unwrap();
        assert_eq!(
            rows,
            [
                vec![json!(1), Value::Null],
                vec![json!(2), Value::Null],
                vec![json!(3), json!("x,\"y\"\r\nz")]
            ]
        );
        for (text, message) in [
            ("name,id\n", "line 1: the header is [\"name\", \"id\"], the schema's columns are"),
            ("id\n1\n", "line 1: the header is [\"id\"]"),
            ("id,name\n1,a\n2\n", "CSV error: record 2 (line: 3, byte: 12): found record with 1"),
            ("id,name\n1,a\nx,b\n", "record 2 (line 3), column id: \"x\" is not a number"),
            ("id,name\n 1,a\n", "record 1 (line 2), column id: \" 1\" is not a number"),
            ("id,name\n1.5,a\n", "record 1 (line 2), column id: expected non-null integer"),
            ("id,name\n,a\n", "record 1 (line 2), column id: expected non-null integer, got null"),
            ("id,name\n1,\"a\n", "line 3: the file ends inside a quoted field"),
            ("id,name\n1,a\n2,b", "line 3: the file ends inside a record, not at the end"),
            ("id,name", "line 1: the file ends inside a record, not at the end of a line"),
        ] {
            let found = invalid_data(read_text(Format::Csv, text));
            assert!(found.starts_with(message), "{text:?}: {found}");
        }
        let dir = tempfile::tempdir().unwrap();
        let schema = Schema {
            columns: vec![
                ColumnSpec::new("b", ColumnType::Boolean, true),
                ColumnSpec::new("t", ColumnType::Timestamp, true),
            ],
        };
        let spec = spec_with(dir.path(), Format::Csv, Compression::None, schema);
        for (text, message) in [
            (&b"b,t\nTrue,\n"[..], "record 1 (line 2), column b: \"True\" is not true or false"),
            (b"b,t\n,2024-02-30 00:00:00\n", "record 1 (line 2), column t: expected timestamp"),
            (b"b,t\n\xff,\n", "record 1 (line 2), column b: the field is not UTF-8"),
        ] {
            std::fs::write(spec.text_path(), text).unwrap();
            let found = invalid_data(read(&spec.text_path(), &spec, None));
            assert!(found.starts_with(message), "{text:?}: {found}");
        }
    }

    #[test]
    fn a_failing_callback_stops_the_read_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        for (i, (format, compression)) in configs().into_iter().enumerate() {
            let spec = spec(&dir.path().join(i.to_string()), format, compression);
            let pos = write(&spec, &[tricky_rows()]);
            let mut seen = 0;
            let result = read_rows(&spec.dir.join(&pos.files[0].name), &spec, None, &mut |_| {
                seen += 1;
                Err(Error::Config { message: "enough".into() })
            });
            assert!(matches!(result, Err(Error::Config { message }) if message == "enough"));
            assert_eq!(seen, 1, "{format}");
        }
    }

    #[test]
    fn timestamps_format_as_the_portal_sends_them() {
        let micros = |s| iptvportal_catalog::time::parse_timestamp(s).unwrap();
        for text in [
            "1970-01-01 00:00:00",
            "2024-02-29 23:59:59.5",
            "2023-01-01 10:00:00.25",
            "1969-12-31 23:59:59.000001",
            "0000-01-01 00:00:00",
            "9999-12-31 23:59:59.999999",
        ] {
            assert_eq!(format_micros(micros(text)).as_deref(), Some(text));
        }
        assert_eq!(
            format_micros(micros("2023-01-01 10:00:00.250000")).unwrap(),
            "2023-01-01 10:00:00.25"
        );
        assert_eq!(format_micros(micros("0000-01-01 00:00:00") - 1), None);
        assert_eq!(format_micros(micros("9999-12-31 23:59:59.999999") + 1), None);
        assert_eq!(format_micros(i64::MIN), None);
        assert_eq!(format_micros(i64::MAX), None);
    }

    #[cfg(not(feature = "parquet"))]
    #[test]
    fn without_the_feature_parquet_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), Format::Parquet, Compression::None);
        let Err(Error::Config { message }) = read(&spec.part_path(0), &spec, None) else {
            panic!("parquet read")
        };
        assert!(message.contains("feature \"parquet\""), "{message}");
    }

    /// Text with what trips encoders up: separators, quotes, line breaks, JSON and CSV
    /// look-alikes, the empty string, non-ASCII.
    fn text() -> impl Strategy<Value = String> {
        const TRICKY: &[&str] = &[
            "",
            " ",
            "123",
            "-1.5",
            "1e5",
            "true",
            "false",
            "null",
            "\"",
            "\"\"",
            ",",
            "\n",
            "\r",
            "\r\n",
            " x ",
            "a,b",
            "é漢🎉",
            "[",
            "]",
            "{}",
            "},",
            "\u{feff}x",
            "\\",
            "\t",
            "\0",
        ];
        prop_oneof![
            3 => proptest::sample::select(TRICKY).prop_map(str::to_owned),
            2 => any::<String>(),
            2 => "[ ,\"\r\n\\\\{}\\[\\]a0é]{0,8}",
        ]
    }

    /// A timestamp as the portal may send it: 0 to 6 fraction digits, trailing zeros or not.
    fn timestamp() -> impl Strategy<Value = String> {
        (
            0i64..=9999,
            1i64..=12,
            0i64..31,
            0i64..24,
            0i64..60,
            0i64..60,
            proptest::option::of("[0-9]{1,6}"),
        )
            .prop_map(|(year, month, day, hour, minute, second, fraction)| {
                let day = 1 + day % days_in_month(year, month);
                let mut text =
                    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}");
                if let Some(fraction) = fraction {
                    text.push('.');
                    text.push_str(&fraction);
                }
                text
            })
    }

    /// A float column's value: any finite float, or an integer it holds exactly.
    fn float() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            1 => (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
            1 => proptest::sample::select(&[0.0, -0.0, 0.1, 1e-7, 1e300, 5e-324, 1.0][..])
                .prop_map(Value::from),
        ]
    }

    fn nullable(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
        prop_oneof![1 => Just(Value::Null), 3 => values]
    }

    fn row() -> impl Strategy<Value = Vec<Value>> {
        (
            any::<i64>(),
            nullable(any::<i64>().prop_map(Value::from)),
            nullable(float()),
            nullable(any::<bool>().prop_map(Value::Bool)),
            nullable(text().prop_map(Value::String)),
            text(),
            nullable(timestamp().prop_map(Value::String)),
        )
            .prop_map(|(id, n, f, b, t, s, ts)| vec![Value::from(id), n, f, b, t, json!(s), ts])
    }

    fn chunks() -> impl Strategy<Value = Vec<Vec<Vec<Value>>>> {
        proptest::collection::vec(proptest::collection::vec(row(), 0..6), 0..5)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// Whatever rows a sink of any format writes, the file reads back as them (but for the
        /// documented differences), from the manifest's committed lengths and whole.
        #[test]
        fn any_rows_round_trip_through_every_format(chunks in chunks()) {
            let dir = tempfile::tempdir().unwrap();
            let rows = chunks.concat();
            for (i, (format, compression)) in configs().into_iter().enumerate() {
                let spec = spec(&dir.path().join(i.to_string()), format, compression);
                let pos = write(&spec, &chunks);
                let got = read_back(&spec, &pos);
                prop_assert_eq!(
                    &got,
                    &expected(format, &spec.schema, &rows),
                    "{} {:?}",
                    format,
                    compression
                );
            }
        }
    }
}

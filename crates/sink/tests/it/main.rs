//! The sink crate's integration tests, in one binary: encoders' exact bytes, Parquet read back,
//! gzip members, crash-and-resume, and the errors an operator sees.

mod crash_resume;
mod errors;
mod formats;
mod manifest;
mod parquet_read;
mod parts;

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use iptvportal_sink::{ColumnSpec, ColumnType, Compression, Format, OutputFile, Schema, SinkSpec};
use serde_json::{Value, json};

/// A schema with one column of each type: `id`, then nullable text, float, boolean, timestamp.
pub(crate) fn sample_schema() -> Schema {
    Schema {
        columns: vec![
            ColumnSpec::new("id", ColumnType::Integer, false),
            ColumnSpec::new("name", ColumnType::Text, true),
            ColumnSpec::new("balance", ColumnType::Float, true),
            ColumnSpec::new("active", ColumnType::Boolean, true),
            ColumnSpec::new("created", ColumnType::Timestamp, true),
        ],
    }
}

/// Rows that exercise escaping: nulls, Cyrillic, quotes, commas, line breaks, fractions.
pub(crate) fn sample_rows() -> Vec<Vec<Value>> {
    vec![
        vec![
            json!(1),
            json!("Первый канал"),
            json!(10.5),
            json!(true),
            json!("2023-01-01 10:00:00"),
        ],
        vec![
            json!(2),
            json!("say \"hi\", then\nleave"),
            json!(-0.1),
            json!(false),
            json!("2023-06-30 23:59:59.25"),
        ],
        vec![json!(5), Value::Null, Value::Null, Value::Null, Value::Null],
        vec![json!(7), json!(""), json!(3), json!(true), json!("1999-12-31 00:00:00")],
        vec![
            json!(8),
            json!("tab\there"),
            json!(1e-7),
            json!(false),
            json!("2024-02-29 12:30:00.000001"),
        ],
    ]
}

pub(crate) fn spec(dir: &Path, format: Format, compression: Compression) -> SinkSpec {
    SinkSpec::new(dir, "channel", format, compression, sample_schema())
}

/// The output of a text spec as plain bytes (gzip decompressed with a multi-member reader).
pub(crate) fn text_output(spec: &SinkSpec) -> Vec<u8> {
    let raw = std::fs::read(text_path(spec)).unwrap();
    if spec.compression == Compression::None {
        return raw;
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(raw.as_slice()), &mut out)
        .unwrap();
    out
}

/// The one file of a text spec.
pub(crate) fn text_path(spec: &SinkSpec) -> std::path::PathBuf {
    match spec.files().remove(0) {
        OutputFile::Path(path) => path,
        other => panic!("not a text spec: {other}"),
    }
}

/// The Parquet parts of a spec, in order.
pub(crate) fn parquet_parts(spec: &SinkSpec) -> Vec<std::path::PathBuf> {
    let mut parts: Vec<_> = std::fs::read_dir(&spec.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet") && spec.files()[0].matches(p))
        .collect();
    parts.sort();
    parts
}

/// Reads every part of a Parquet spec: the schema of each part and all rows, as JSON values
/// (timestamps as microseconds since the epoch).
pub(crate) fn parquet_output(spec: &SinkSpec) -> (Vec<SchemaRef>, Vec<Vec<Value>>) {
    let mut schemas = Vec::new();
    let mut rows = Vec::new();
    for part in parquet_parts(spec) {
        let file = std::fs::File::open(&part).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        schemas.push(reader.schema().clone());
        for batch in reader.build().unwrap() {
            rows.extend(batch_rows(&batch.unwrap()));
        }
    }
    (schemas, rows)
}

fn batch_rows(batch: &RecordBatch) -> Vec<Vec<Value>> {
    (0..batch.num_rows())
        .map(|i| {
            batch
                .columns()
                .iter()
                .map(|c| {
                    if c.is_null(i) {
                        return Value::Null;
                    }
                    match c.data_type() {
                        DataType::Int64 => json!(c.as_primitive::<Int64Type>().value(i)),
                        DataType::Float64 => json!(c.as_primitive::<Float64Type>().value(i)),
                        DataType::Boolean => json!(c.as_boolean().value(i)),
                        DataType::Utf8 => json!(c.as_string::<i32>().value(i)),
                        DataType::Timestamp(..) => {
                            json!(c.as_primitive::<TimestampMicrosecondType>().value(i))
                        }
                        other => panic!("unexpected type {other}"),
                    }
                })
                .collect()
        })
        .collect()
}

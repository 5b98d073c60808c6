//! Reading dump output back, for the test suites of `iptvportal-dump` and `iptvportal-cli`; and
//! an in-memory row source ([`source::FakeSource`]) for the `traverse` and `dump` suites.
//!
//! Both suites check what a dump wrote against what the simulator holds: text outputs as bytes
//! (decompressed when gzipped), Parquet parts as rows of JSON values, the simulator's SQLite file as
//! rows of JSON values. This crate is the one copy of those readers. It is a dev-dependency only:
//! every function panics, naming what failed, instead of returning an error, as a test wants.

#![deny(missing_docs)]
#![expect(
    clippy::missing_panics_doc,
    reason = "a test kit: every function panics on any failure, as the crate docs say"
)]

pub mod moto;
pub mod source;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use arrow_array::{
    Array, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

/// The bytes of a text output file, decompressed when its name ends in `.gz` (every gzip member,
/// as the sinks write one per commit).
pub fn read_output(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") { gunzip(&raw) } else { raw }
}

/// The decompressed bytes of a gzip stream of one or more members.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// The Parquet parts of `table` in `dir` (`{table}-NNNNN.parquet`), in name order.
pub fn parquet_parts(dir: &Path, table: &str) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("{table}-")) && name.ends_with(".parquet")
        })
        .collect();
    parts.sort();
    parts
}

/// How [`read_parquet`] renders a timestamp cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timestamps {
    /// As stored: microseconds since the epoch, a JSON number.
    Micros,
    /// As the text formats write it: a `YYYY-MM-DD HH:MM:SS` string (see [`format_micros`]).
    Text,
}

/// What [`read_parquet`] found in a list of parts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParquetRows {
    /// The distinct Arrow schemas of the parts, each in its `Debug` form (one, in a good dump).
    pub schemas: BTreeSet<String>,
    /// The column names of the last record batch read; empty when there were no batches.
    pub names: Vec<String>,
    /// Every row of every part, in part order, as JSON values in column order (null as null).
    pub rows: Vec<Vec<Value>>,
}

/// Reads Parquet parts in the order given. Integer, float, boolean and string columns come back
/// as the JSON values they hold; timestamps as `timestamps` says; any other type panics.
pub fn read_parquet(parts: &[PathBuf], timestamps: Timestamps) -> ParquetRows {
    let mut out = ParquetRows::default();
    for part in parts {
        let file = std::fs::File::open(part).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        out.schemas.insert(format!("{:?}", reader.schema()));
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            out.names = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
            for i in 0..batch.num_rows() {
                out.rows.push(
                    batch.columns().iter().map(|c| cell(c.as_ref(), i, timestamps)).collect(),
                );
            }
        }
    }
    out
}

fn cell(column: &dyn Array, i: usize, timestamps: Timestamps) -> Value {
    if column.is_null(i) {
        return Value::Null;
    }
    let any = column.as_any();
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        json!(a.value(i))
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        json!(a.value(i))
    } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
        json!(a.value(i))
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        json!(a.value(i))
    } else if let Some(a) = any.downcast_ref::<TimestampMicrosecondArray>() {
        match timestamps {
            Timestamps::Micros => json!(a.value(i)),
            Timestamps::Text => json!(format_micros(a.value(i))),
        }
    } else {
        panic!("unexpected column type {:?}", column.data_type())
    }
}

/// `YYYY-MM-DD HH:MM:SS` of microseconds since the epoch, the fraction dropped: the text the
/// simulator stored for a whole-second timestamp (the catalog's one calendar, proleptic Gregorian).
pub fn format_micros(micros: i64) -> String {
    iptvportal_catalog::time::format_timestamp(micros.div_euclid(1_000_000))
}

/// The rows `sql` selects from the SQLite file `db` (opened read-only), each value as stored:
/// null, integer, real or text as the JSON value; a blob panics (the simulator stores none).
pub fn sqlite_rows(db: &Path, sql: &str) -> Vec<Vec<Value>> {
    use rusqlite::types::ValueRef;
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let width = stmt.column_count();
    stmt.query_map([], |row| {
        (0..width)
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => json!(n),
                    ValueRef::Real(x) => json!(x),
                    ValueRef::Text(t) => json!(std::str::from_utf8(t).unwrap()),
                    ValueRef::Blob(_) => panic!("no blobs in the simulator"),
                })
            })
            .collect()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// A JSON object with its members in written order. `serde_json`'s `Map` sorts its keys, and the
/// order of the keys (a row's columns, a progress line's fields) is part of what tests check.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ordered(pub Vec<(String, Value)>);

impl Ordered {
    /// Parses one JSON object.
    pub fn parse(text: &str) -> Ordered {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not a JSON object ({e}): {text}"))
    }

    /// The keys, in written order.
    pub fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// The values, in written order.
    pub fn into_values(self) -> Vec<Value> {
        self.0.into_iter().map(|(_, v)| v).collect()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Replaces the value of `key` where it is.
    pub fn set(&mut self, key: &str, value: Value) {
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        }
    }
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Ordered, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Ordered(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

impl serde::Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

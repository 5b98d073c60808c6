//! Shared helpers: a simulator, a client, reading outputs back, and the expected rows.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow_array::{
    Array, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use iptvportal_catalog::ColumnType;
use iptvportal_client::{Client, ClientConfig, RetryPolicy};
use iptvportal_dump::{DumpConfig, Format};
use iptvportal_sim::{Sim, SimConfig};
use serde_json::{Value, json};

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

pub(crate) async fn sim(config: SimConfig) -> Sim {
    Sim::start(config).await.unwrap()
}

pub(crate) fn client(sim: &Sim) -> Client {
    let config = ClientConfig::new(sim.url())
        .unwrap()
        .credentials("admin", "admin")
        .timeout(Duration::from_secs(10))
        .retry(RetryPolicy::default().base_delay(Duration::from_millis(5)));
    Client::new(config).unwrap()
}

/// A config with test-friendly retries: fast, and enough of them for the fault runs.
pub(crate) fn config(table: &str, dir: &Path) -> DumpConfig {
    DumpConfig::new(table, dir)
        .chunk_size(100)
        .retry_backoff(1.0)
        .batch_timeout(Duration::from_secs(5))
}

/// The output file of a text format, or the Parquet parts in name order.
pub(crate) fn output_files(dir: &Path, table: &str, format: Format, gzip: bool) -> Vec<PathBuf> {
    let ext = match format {
        Format::Jsonl => "jsonl",
        Format::Csv => "csv",
        Format::Json => "json",
        _ => {
            let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    name.starts_with(&format!("{table}-")) && name.ends_with(".parquet")
                })
                .collect();
            parts.sort();
            return parts;
        }
    };
    vec![dir.join(format!("{table}.{ext}{}", if gzip { ".gz" } else { "" }))]
}

/// The decompressed bytes of a text output.
pub(crate) fn text_bytes(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out).unwrap();
        out
    } else {
        raw
    }
}

/// The rows of an output as JSON values in column order (CSV values stay strings).
pub(crate) fn read_rows(
    dir: &Path,
    table: &str,
    format: Format,
    gzip: bool,
) -> (Vec<String>, Vec<Vec<Value>>) {
    let files = output_files(dir, table, format, gzip);
    match format {
        Format::Jsonl => {
            let text = String::from_utf8(text_bytes(&files[0])).unwrap();
            objects(text.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
        }
        Format::Json => {
            let array: Vec<Value> = serde_json::from_slice(&text_bytes(&files[0])).unwrap();
            objects(array)
        }
        Format::Csv => {
            let bytes = text_bytes(&files[0]);
            let mut reader = csv::Reader::from_reader(bytes.as_slice());
            let names = reader.headers().unwrap().iter().map(str::to_owned).collect();
            let rows = reader
                .records()
                .map(|r| r.unwrap().iter().map(|s| Value::String(s.to_owned())).collect())
                .collect();
            (names, rows)
        }
        _ => parquet_rows(&files),
    }
}

fn objects(items: Vec<Value>) -> (Vec<String>, Vec<Vec<Value>>) {
    let names: Vec<String> =
        items.first().map(|o| o.as_object().unwrap().keys().cloned().collect()).unwrap_or_default();
    let rows = items
        .into_iter()
        .map(|o| {
            let o = o.as_object().unwrap();
            assert_eq!(
                o.keys().cloned().collect::<Vec<_>>(),
                names,
                "every object has the same keys in order"
            );
            o.values().cloned().collect()
        })
        .collect();
    (names, rows)
}

/// Reads Parquet parts in order; timestamps come back as `YYYY-MM-DD HH:MM:SS` strings.
pub(crate) fn parquet_rows(files: &[PathBuf]) -> (Vec<String>, Vec<Vec<Value>>) {
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for path in files {
        let file = std::fs::File::open(path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            names = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
            for i in 0..batch.num_rows() {
                rows.push(batch.columns().iter().map(|c| cell(c.as_ref(), i)).collect());
            }
        }
    }
    (names, rows)
}

fn cell(column: &dyn Array, i: usize) -> Value {
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
        json!(format_micros(a.value(i)))
    } else {
        panic!("unexpected column type {:?}", column.data_type())
    }
}

/// `YYYY-MM-DD HH:MM:SS` of microseconds since the epoch (civil-from-days, proleptic Gregorian).
fn format_micros(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The rows of `table` in the simulator's SQLite file, `where` as SQL, typed as the catalog says.
pub(crate) fn expected_rows(
    db: &Path,
    table: &str,
    sql_where: &str,
) -> (Vec<String>, Vec<Vec<Value>>) {
    let t = iptvportal_catalog::table(table).unwrap();
    let names: Vec<String> = t.column_names().map(str::to_owned).collect();
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let sql = format!(
        "SELECT {} FROM {table} {} ORDER BY {}",
        names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "),
        if sql_where.is_empty() { String::new() } else { format!("WHERE {sql_where}") },
        t.id_column.unwrap_or("rowid"),
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows = stmt
        .query_map([], |row| {
            Ok(t.columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let v: rusqlite::types::Value = row.get(i).unwrap();
                    match (v, c.ty) {
                        (rusqlite::types::Value::Null, _) => Value::Null,
                        (rusqlite::types::Value::Integer(n), ColumnType::Boolean) => json!(n != 0),
                        (rusqlite::types::Value::Integer(n), _) => json!(n),
                        (rusqlite::types::Value::Real(f), _) => json!(f),
                        (rusqlite::types::Value::Text(s), _) => json!(s),
                        (other, _) => panic!("unexpected {other:?}"),
                    }
                })
                .collect())
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (names, rows)
}

/// The expected rows as CSV renders them: strings, null as empty.
pub(crate) fn as_csv(rows: &[Vec<Value>]) -> Vec<Vec<Value>> {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| match v {
                    Value::Null => json!(""),
                    Value::String(s) => json!(s),
                    other => json!(other.to_string()),
                })
                .collect()
        })
        .collect()
}

/// Every output file's (decompressed, for gzip) content, or Parquet's rows, for equality checks.
pub(crate) fn snapshot(dir: &Path, table: &str, format: Format, gzip: bool) -> Value {
    if format == Format::Parquet {
        let (names, rows) = parquet_rows(&output_files(dir, table, format, gzip));
        json!({"names": names, "rows": rows})
    } else {
        json!(String::from_utf8(text_bytes(&output_files(dir, table, format, gzip)[0])).unwrap())
    }
}

//! Shared helpers: a simulator, a client, reading outputs back, and the expected rows.

use std::path::{Path, PathBuf};
use std::time::Duration;

use iptvportal_catalog::ColumnType;
use iptvportal_client::{Client, ClientConfig, RetryPolicy};
use iptvportal_dump::{DumpConfig, Format};
use iptvportal_sim::{Sim, SimConfig};
use iptvportal_testkit::{
    Ordered, ParquetRows, Timestamps, parquet_parts, read_output, read_parquet, sqlite_rows,
};
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
        _ => return parquet_parts(dir, table),
    };
    vec![dir.join(format!("{table}.{ext}{}", if gzip { ".gz" } else { "" }))]
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
            let text = String::from_utf8(read_output(&files[0])).unwrap();
            objects(text.lines().map(Ordered::parse).collect())
        }
        Format::Json => {
            let array: Vec<Ordered> = serde_json::from_slice(&read_output(&files[0])).unwrap();
            objects(array)
        }
        Format::Csv => {
            let bytes = read_output(&files[0]);
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

fn objects(items: Vec<Ordered>) -> (Vec<String>, Vec<Vec<Value>>) {
    let names: Vec<String> = items
        .first()
        .map(|o| o.keys().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let rows = items
        .into_iter()
        .map(|o| {
            assert_eq!(o.keys(), names, "every object has the same keys in order");
            o.into_values()
        })
        .collect();
    (names, rows)
}

/// Reads Parquet parts in order; timestamps come back as `YYYY-MM-DD HH:MM:SS` strings.
pub(crate) fn parquet_rows(files: &[PathBuf]) -> (Vec<String>, Vec<Vec<Value>>) {
    let ParquetRows { names, rows, .. } = read_parquet(files, Timestamps::Text);
    (names, rows)
}

/// The rows of `table` in the simulator's SQLite file, `where` as SQL, typed as the catalog says.
pub(crate) fn expected_rows(
    db: &Path,
    table: &str,
    sql_where: &str,
) -> (Vec<String>, Vec<Vec<Value>>) {
    let t = iptvportal_catalog::table(table).unwrap();
    let names: Vec<String> = t.column_names().map(str::to_owned).collect();
    let sql = format!(
        "SELECT {} FROM {table} {} ORDER BY {}",
        names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "),
        if sql_where.is_empty() { String::new() } else { format!("WHERE {sql_where}") },
        t.id_column.unwrap_or("rowid"),
    );
    let rows = sqlite_rows(db, &sql)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(t.columns)
                .map(|(v, c)| match (v, c.ty) {
                    (Value::Number(n), ColumnType::Boolean) if n.is_i64() => {
                        json!(n.as_i64() != Some(0))
                    }
                    (v, _) => v,
                })
                .collect()
        })
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
        json!(String::from_utf8(read_output(&output_files(dir, table, format, gzip)[0])).unwrap())
    }
}

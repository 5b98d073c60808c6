//! Running the Python checker (`tests/py/check_output.py`): one process per batch, because
//! importing pyarrow, pandas and DuckDB costs more than checking a few dozen outputs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::files::Output;

/// The venv's interpreter and the files it needs.
pub(crate) struct Checker {
    pub(crate) python: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) db: PathBuf,
}

impl Checker {
    /// Checks a batch (`cells` and `compare` items) and returns the verdict object.
    pub(crate) fn run(
        &self,
        name: &str,
        cells: &[Value],
        compare: &[Value],
    ) -> Result<Value, String> {
        self.run_script(name, "check_output.py", json!({ "cells": cells, "compare": compare }))
    }

    /// Runs `tests/py/{script}` on `batch` (given the database and the catalog too) and returns
    /// its verdict object.
    pub(crate) fn run_script(
        &self,
        name: &str,
        script: &str,
        batch: Value,
    ) -> Result<Value, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut batch = batch;
        batch["db"] = json!(self.db);
        batch["catalog"] = json!(root.join("../crates/catalog/catalog.toml"));
        let path = self.work.join(format!("{name}.batch.json"));
        std::fs::write(&path, batch.to_string()).map_err(|e| format!("{}: {e}", path.display()))?;
        let out = Command::new(&self.python)
            .arg(root.join("py").join(script))
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.python.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "the checker failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let verdict: Value = serde_json::from_str(stdout.trim())
            .map_err(|e| format!("the checker printed no verdict ({e}): {stdout}"))?;
        let _ = std::fs::write(self.work.join(format!("{name}.verdict.json")), verdict.to_string());
        Ok(verdict)
    }
}

/// One output to read back and compare with the database.
pub(crate) fn cell(
    name: &str,
    table: &str,
    output: Output,
    dir: &Path,
    where_sql: Option<&str>,
    columns: Option<&[&str]>,
) -> Value {
    json!({
        "name": name,
        "table": table,
        "format": output.format_name(),
        "compress": output.gzip,
        "dir": dir,
        "where_sql": where_sql,
        "columns": columns,
    })
}

/// [`cell`] for a dump with `--order-by`: `order_sql` is that order as SQLite SQL, with
/// PostgreSQL's NULL order written out (`last_seen IS NULL, last_seen, id`), since the simulator
/// sorts as a PostgreSQL-backed portal does.
pub(crate) fn ordered_cell(
    name: &str,
    table: &str,
    output: Output,
    dir: &Path,
    where_sql: Option<&str>,
    order_sql: &str,
) -> Value {
    let mut cell = cell(name, table, output, dir, where_sql, None);
    cell["order_sql"] = Value::from(order_sql);
    cell
}

/// Two Parquet outputs that must hold the same schema and rows.
pub(crate) fn compare(name: &str, table: &str, reference: &Path, actual: &Path) -> Value {
    json!({ "name": name, "table": table, "reference": reference, "actual": actual })
}

/// `Ok` for a verdict entry whose `ok` is true, else its detail.
pub(crate) fn entry_outcome(entry: &Value) -> Result<(), String> {
    if entry["ok"].as_bool() == Some(true) {
        Ok(())
    } else {
        Err(entry["detail"].as_str().unwrap_or("no detail").to_owned())
    }
}

//! Read connections to the generated database, and running compiled selects on them.
//!
//! SQLite blocks, so each select runs on tokio's blocking pool with a connection of its own. A small
//! pool (one connection per worker) lets parallel selects really run in parallel while bounding the
//! number of threads a burst of requests can occupy.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use iptvportal_catalog::ColumnType;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value as Json;
use tokio::sync::Semaphore;

use crate::Error;
use crate::sql::Compiled;

/// A fixed set of read-only connections handed out one per running select.
pub(crate) struct Pool {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    /// Opens `size` connections to `path`.
    pub(crate) fn open(path: &Path, size: usize) -> Result<Arc<Pool>, Error> {
        let conns = (0..size).map(|_| open_reader(path)).collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Pool { idle: Mutex::new(conns), permits: Arc::new(Semaphore::new(size)) }))
    }

    /// Runs `query` on an idle connection, waiting for one if all are busy, and returns the rows as
    /// the JSON text of an array of arrays. The error string is SQLite's message, passed through to
    /// the client as the real portal does.
    pub(crate) async fn select(self: &Arc<Self>, query: Compiled) -> Result<Vec<u8>, String> {
        let permit = Arc::clone(&self.permits).acquire_owned().await.map_err(|e| e.to_string())?;
        let conn = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let Some(conn) = conn else {
            return Err("no idle database connection".to_owned());
        };
        let pool = Arc::clone(self);
        // If the request is dropped mid-query the blocking task still finishes and returns the
        // connection, so the pool never shrinks; it holds the permit until then, so no other
        // request can take the permit of a connection that is still busy.
        tokio::task::spawn_blocking(move || {
            let result = run(&conn, &query);
            pool.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(conn);
            drop(permit);
            result.map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("query task failed: {e}"))?
    }
}

/// A read connection: read-only at the file level and again at the connection level, with the
/// Unicode case functions and case-sensitive LIKE the dialect promises.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, Error> {
    let db_err = |source| Error::Database { path: PathBuf::from(path), source };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    // Read-write at the file level only so that WAL files can be managed; `query_only` refuses any
    // write, so even a statement that slipped past validation could not change the data.
    conn.pragma_update(None, "query_only", true).map_err(db_err)?;
    conn.pragma_update(None, "case_sensitive_like", true).map_err(db_err)?;
    register_functions(&conn).map_err(db_err)?;
    Ok(conn)
}

/// Registers `unicode_lower` and `unicode_upper`: SQLite's `lower`/`upper` fold only ASCII, so
/// `ilike` on Cyrillic text would otherwise be case-sensitive.
pub(crate) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    for (name, upper) in [("unicode_lower", false), ("unicode_upper", true)] {
        conn.create_scalar_function(name, 1, flags, move |ctx| {
            Ok(match ctx.get_raw(0) {
                ValueRef::Null => None,
                ValueRef::Text(t) => {
                    let s = String::from_utf8_lossy(t);
                    Some(if upper { s.to_uppercase() } else { s.to_lowercase() })
                }
                // Numbers have no case; SQLite's own lower() turns them into text the same way.
                ValueRef::Integer(i) => Some(i.to_string()),
                ValueRef::Real(f) => Some(f.to_string()),
                ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
            })
        })?;
    }
    Ok(())
}

/// Runs `query` and writes its rows straight from SQLite's values into JSON text, without a
/// `serde_json::Value` per cell: building and dropping those was half the simulator's CPU
/// (docs/benchmarks.md), and the simulator shares the machine with the dump it serves.
fn run(conn: &Connection, query: &Compiled) -> rusqlite::Result<Vec<u8>> {
    let mut stmt = conn.prepare_cached(&query.sql)?;
    let width = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(query.params.iter()))?;
    let mut out = Vec::with_capacity(4096);
    out.push(b'[');
    let mut first = true;
    while let Some(row) = rows.next()? {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'[');
        for i in 0..width {
            if i > 0 {
                out.push(b',');
            }
            let ty = query.types.get(i).copied().flatten();
            write_json(&mut out, row.get_ref(i)?, ty);
        }
        out.push(b']');
    }
    out.push(b']');
    Ok(out)
}

/// Writes a stored value as the wire carries it: the catalog type decides what SQLite cannot
/// (booleans are stored as 0/1 and must come back as `true`/`false`). The text is what
/// `serde_json` would write for the same `Value`.
fn write_json(out: &mut Vec<u8>, value: ValueRef<'_>, ty: Option<ColumnType>) {
    let written = match (value, ty) {
        (ValueRef::Null, _) => serde_json::to_writer(&mut *out, &()),
        (ValueRef::Integer(i), Some(ColumnType::Boolean)) => {
            serde_json::to_writer(&mut *out, &(i != 0))
        }
        (ValueRef::Integer(i), Some(ColumnType::Float)) => {
            serde_json::to_writer(&mut *out, &float(i as f64))
        }
        (ValueRef::Integer(i), _) => serde_json::to_writer(&mut *out, &i),
        (ValueRef::Real(f), _) => serde_json::to_writer(&mut *out, &float(f)),
        (ValueRef::Text(t) | ValueRef::Blob(t), _) => {
            serde_json::to_writer(&mut *out, &String::from_utf8_lossy(t))
        }
    };
    // Writing into a Vec cannot fail, and every value here is serializable.
    written.expect("serializing a SQLite value into a Vec");
}

fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_written_as_serde_json_would_write_them() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (i INTEGER, b INTEGER, f REAL, fi INTEGER, s TEXT, n TEXT, x BLOB);
             INSERT INTO t VALUES (-7, 1, 0.1, 3, 'Первый \"канал\"\\n\t', NULL, X'FF41');
             INSERT INTO t VALUES (9223372036854775807, 0, 1e300, -2, '', NULL, X'');",
        )
        .unwrap();
        let query = Compiled {
            sql: "SELECT i, b, f, fi, s, n, x FROM t ORDER BY rowid".to_owned(),
            params: Vec::new(),
            types: vec![
                Some(ColumnType::Integer),
                Some(ColumnType::Boolean),
                Some(ColumnType::Float),
                Some(ColumnType::Float),
                Some(ColumnType::Text),
                None,
                None,
            ],
        };
        let text = run(&conn, &query).unwrap();
        let expected = serde_json::json!([
            [-7, true, 0.1, 3.0, "Первый \"канал\"\\n\t", null, "\u{FFFD}A"],
            [9_223_372_036_854_775_807_i64, false, 1e300, -2.0, "", null, ""],
        ]);
        assert_eq!(String::from_utf8(text).unwrap(), serde_json::to_string(&expected).unwrap());

        let empty = Compiled { sql: "SELECT i FROM t WHERE 0".to_owned(), ..query };
        assert_eq!(run(&conn, &empty).unwrap(), b"[]");
    }
}

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

    /// Runs `query` on an idle connection, waiting for one if all are busy. The error string is
    /// SQLite's message, passed through to the client as the real portal does.
    pub(crate) async fn select(self: &Arc<Self>, query: Compiled) -> Result<Vec<Json>, String> {
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

fn run(conn: &Connection, query: &Compiled) -> rusqlite::Result<Vec<Json>> {
    let mut stmt = conn.prepare_cached(&query.sql)?;
    let width = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(query.params.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            let ty = query.types.get(i).copied().flatten();
            values.push(to_json(row.get_ref(i)?, ty));
        }
        out.push(Json::Array(values));
    }
    Ok(out)
}

/// A stored value as the wire carries it: the catalog type decides what SQLite cannot (booleans are
/// stored as 0/1 and must come back as `true`/`false`).
fn to_json(value: ValueRef<'_>, ty: Option<ColumnType>) -> Json {
    match (value, ty) {
        (ValueRef::Null, _) => Json::Null,
        (ValueRef::Integer(i), Some(ColumnType::Boolean)) => Json::Bool(i != 0),
        (ValueRef::Integer(i), Some(ColumnType::Float)) => float(i as f64),
        (ValueRef::Integer(i), _) => Json::from(i),
        (ValueRef::Real(f), _) => float(f),
        (ValueRef::Text(t) | ValueRef::Blob(t), _) => {
            Json::String(String::from_utf8_lossy(t).into_owned())
        }
    }
}

fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

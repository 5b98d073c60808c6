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
    for arity in [3, 4] {
        conn.create_scalar_function("regexp_replace", arity, flags, |ctx| {
            let text = |i: usize| -> rusqlite::Result<Option<String>> {
                Ok(match ctx.get_raw(i) {
                    ValueRef::Null => None,
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Some(String::from_utf8_lossy(t).into_owned())
                    }
                    ValueRef::Integer(v) => Some(v.to_string()),
                    ValueRef::Real(f) => Some(f.to_string()),
                })
            };
            // Strict, as PostgreSQL's: any NULL argument gives NULL.
            let (Some(source), Some(pattern), Some(replacement)) = (text(0)?, text(1)?, text(2)?)
            else {
                return Ok(None);
            };
            let flags = if ctx.len() == 4 { text(3)? } else { Some(String::new()) };
            let Some(flags) = flags else { return Ok(None) };
            regexp_replace(&source, &pattern, &replacement, &flags)
                .map(Some)
                .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))
        })?;
    }
    // Registered on every connection (it costs nothing unused); the compiler writes
    // `COLLATE unicode` only under `Collation::Unicode`.
    conn.create_collation(crate::sql::UNICODE_COLLATION, unicode_order)?;
    Ok(())
}

/// PostgreSQL's `regexp_replace(source, pattern, replacement [, flags])`: the first match
/// replaced, or every match with flag `g`; `i` ignores case, `c` respects it. In the replacement
/// `\1`…`\9` are groups, `\&` the whole match, `\\` a backslash. The pattern is read by Rust's
/// regex syntax, which agrees with PostgreSQL's advanced expressions on everything a portal
/// client plausibly sends (classes, `\d`, quantifiers, groups, alternation, anchors) but has no
/// back-references in the pattern.
pub(crate) fn regexp_replace(
    source: &str,
    pattern: &str,
    replacement: &str,
    flags: &str,
) -> Result<String, String> {
    let (mut global, mut ignore_case) = (false, false);
    for f in flags.chars() {
        match f {
            'g' => global = true,
            'i' => ignore_case = true,
            'c' => ignore_case = false,
            other => return Err(format!("invalid regular expression option: \"{other}\"")),
        }
    }
    let re = regex_automata::meta::Regex::builder()
        .syntax(regex_automata::util::syntax::Config::new().case_insensitive(ignore_case))
        .build(pattern)
        .map_err(|e| format!("invalid regular expression: {e}"))?;
    let mut out = String::with_capacity(source.len());
    let mut last = 0;
    for caps in re.captures_iter(source) {
        let Some(m) = caps.get_match() else { continue };
        out.push_str(&source[last..m.start()]);
        let mut chars = replacement.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('&') => out.push_str(&source[m.range()]),
                Some(d @ '1'..='9') => {
                    let group = d as usize - '0' as usize;
                    if let Some(span) = caps.get_group(group) {
                        out.push_str(&source[span.range()]);
                    }
                }
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        }
        last = m.end();
        if !global {
            break;
        }
    }
    out.push_str(&source[last..]);
    Ok(out)
}

/// [`Collation::Unicode`](crate::Collation::Unicode): the texts compared with every letter
/// lowercased and `ё` read as `е` (as Russian dictionaries and locales order them at the first
/// level), then, on a tie, by code point, so that different texts never compare equal.
pub(crate) fn unicode_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |s: &str| {
        s.chars()
            .flat_map(char::to_lowercase)
            .map(|c| if c == 'ё' { 'е' } else { c })
            .collect::<Vec<_>>()
    };
    if a == b {
        return std::cmp::Ordering::Equal;
    }
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

/// Runs `query` and writes its rows straight from SQLite's values into JSON text, without a
/// `serde_json::Value` per cell: building and dropping those was half the simulator's CPU
/// (docs/benchmarks.md), and the simulator shares the machine with the dump it serves.
fn run(conn: &Connection, query: &Compiled) -> rusqlite::Result<Vec<u8>> {
    let mut stmt = conn.prepare_cached(&query.sql)?;
    let width = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(query.params.iter()))?;
    discard(&mut rows, width, query.skip)?;
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

/// Reads up to `n` rows and throws them away: a materialized OFFSET
/// ([`OffsetModel::Materialize`](crate::OffsetModel::Materialize)).
/// Every column of every row is read, so SQLite hands each value over as a query result, as
/// PostgreSQL's executor produces each skipped tuple before its Limit node drops it. Returns how
/// many rows there were (fewer than `n` when the result ends first).
fn discard(rows: &mut rusqlite::Rows<'_>, width: usize, n: u64) -> rusqlite::Result<u64> {
    let mut read = 0;
    // Folded over every value and passed to `black_box`, so that no read can be optimized away.
    let mut digest = 0_u64;
    while read < n {
        let Some(row) = rows.next()? else { break };
        for i in 0..width {
            let folded = match row.get_ref(i)? {
                ValueRef::Null => 0,
                ValueRef::Integer(v) => v.cast_unsigned(),
                ValueRef::Real(f) => f.to_bits(),
                ValueRef::Text(b) | ValueRef::Blob(b) => {
                    b.len() as u64 ^ u64::from(b.first().copied().unwrap_or(0))
                }
            };
            digest = digest.rotate_left(5) ^ folded;
        }
        read += 1;
    }
    std::hint::black_box(digest);
    Ok(read)
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
    use crate::OffsetModel;

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
            skip: 0,
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

    /// A generated database of a few hundred rows per table, removed when dropped.
    struct SmallDb(crate::TempDb);

    /// Rows of `terminal`; `subscriber` has half as many.
    const TERMINALS: u64 = 300;

    impl SmallDb {
        fn new() -> SmallDb {
            let path = crate::temp_db_path();
            let db = SmallDb(crate::TempDb(path.clone()));
            let mut rows = crate::default_rows();
            rows.insert("terminal", TERMINALS);
            rows.insert("subscriber", TERMINALS / 2);
            crate::generate::ensure_database(&path, 5, &rows, false).expect("generating");
            db
        }

        fn reader(&self) -> Connection {
            open_reader(&self.0.0).expect("opening a reader")
        }
    }

    /// Compiles `select` under `model` and runs it.
    fn answer(conn: &Connection, select: &Json, model: OffsetModel) -> (Compiled, Vec<u8>) {
        let parsed = iptvportal_query::Select::from_json(select).expect("a valid select");
        let compiled = crate::sql::compile(&parsed, model, crate::Collation::C)
            .expect("a select the catalog accepts");
        let rows = run(conn, &compiled).unwrap_or_else(|e| panic!("{select}: {e}"));
        (compiled, rows)
    }

    /// What a proptest case varies besides limit and offset: the columns and tables, the filters
    /// that fit them, and the orders (with ties, and none at all).
    struct Shape {
        base: Json,
        filters: Vec<Json>,
        orders: Vec<Json>,
    }

    fn shapes() -> Vec<Shape> {
        use serde_json::json;
        let terminal_filters = vec![
            json!({"gte":["id",150]}),
            json!({"is":["inet_addr",null]}),
            json!({"like":["mac_addr","00%"]}),
            json!({"lt":["id",0]}),
        ];
        let terminal_orders = vec![
            json!("id"),
            json!("id DESC"),
            json!("subscriber_id"),
            json!("subscriber_id DESC"),
            json!(["inet_addr", "id DESC"]),
            json!("last_seen DESC"),
        ];
        let join = json!([
            {"table":"terminal","as":"t"},
            {"join":"subscriber","join_type":"left","as":"s","on":{"eq":[{"t":"subscriber_id"},{"s":"id"}]}}
        ]);
        vec![
            Shape {
                base: json!({"data":["*"],"from":"terminal"}),
                filters: terminal_filters.clone(),
                orders: terminal_orders.clone(),
            },
            Shape {
                base: json!({"data":["mac_addr","id"],"from":"terminal"}),
                filters: terminal_filters.clone(),
                orders: terminal_orders,
            },
            Shape {
                base: json!({"data":["*"],"from":"subscriber"}),
                filters: vec![json!({"is":["disabled",true]}), json!({"gt":["billing",0]})],
                orders: vec![json!("id"), json!("billing DESC"), json!("type")],
            },
            Shape {
                base: json!({
                    "data":["subscriber_id",{"function":"count","args":"*","as":"n"}],
                    "from":"terminal","group_by":"subscriber_id"
                }),
                filters: terminal_filters.clone(),
                orders: vec![json!("subscriber_id"), json!("n DESC")],
            },
            Shape {
                base: json!({"data":[{"function":"count","args":"*"},{"function":"max","args":"id"}],"from":"terminal"}),
                filters: terminal_filters.clone(),
                orders: vec![],
            },
            Shape {
                base: json!({"data":[{"function":"distinct","args":["subscriber_id"]}],"from":"terminal"}),
                filters: terminal_filters,
                orders: vec![json!("subscriber_id DESC")],
            },
            Shape {
                base: json!({"data":[{"t":"id"},{"s":"username"},{"s":"disabled"}],"from":join}),
                filters: vec![json!({"is":[{"s":"disabled"},false]})],
                orders: vec![json!({"s":"username"}), json!({"t":"id DESC"})],
            },
        ]
    }

    fn page_bound() -> impl proptest::strategy::Strategy<Value = u64> {
        use proptest::prelude::*;
        let max = i64::MAX.cast_unsigned();
        // Mostly within the table (and just past its end), sometimes at the edge of what is
        // allowed, where `limit + offset` overflows.
        prop_oneof![
            8 => 0..TERMINALS + 20,
            1 => Just(max),
            1 => (0..3_u64).prop_map(move |d| max - d),
        ]
    }

    /// Materialize answers every select with the bytes native gives, and really does move the
    /// OFFSET out of the SQL when it should.
    #[test]
    fn materialize_answers_exactly_what_native_answers() {
        use proptest::prelude::*;
        use proptest::sample::Index;
        use proptest::test_runner::{Config, TestRunner};

        let db = SmallDb::new();
        let conn = db.reader();
        let shapes = shapes();
        let cases = (
            0..shapes.len(),
            proptest::option::of(any::<Index>()),
            proptest::option::of(any::<Index>()),
            proptest::option::of(page_bound()),
            proptest::option::of(page_bound()),
        );
        let mut runner = TestRunner::new(Config { cases: 1024, ..Config::default() });
        let result = runner.run(&cases, |(shape, filter, order, limit, offset)| {
            let shape = &shapes[shape];
            let mut select = shape.base.clone();
            if let Some(f) = filter {
                select["where"] = f.get(&shape.filters).clone();
            }
            if let Some(o) = order.filter(|_| !shape.orders.is_empty()) {
                select["order_by"] = o.get(&shape.orders).clone();
            }
            if let Some(l) = limit {
                select["limit"] = l.into();
            }
            if let Some(o) = offset {
                select["offset"] = o.into();
            }
            let (_, native) = answer(&conn, &select, OffsetModel::Native);
            let (compiled, materialized) = answer(&conn, &select, OffsetModel::Materialize);
            prop_assert!(
                native == materialized,
                "{select}: {}",
                first_difference(&native, &materialized)
            );
            let skips = offset.is_some_and(|o| o > 0) && limit != Some(0);
            prop_assert_eq!(
                compiled.skip,
                if skips { offset.unwrap_or(0) } else { 0 },
                "{}",
                select
            );
            prop_assert_eq!(
                compiled.sql.contains("OFFSET"),
                offset.is_some() && !skips,
                "{}",
                select
            );
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    /// Where two answers part, with some context: the whole bodies would drown the message.
    fn first_difference(a: &[u8], b: &[u8]) -> String {
        let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let around = |s: &[u8]| {
            String::from_utf8_lossy(&s[at.saturating_sub(60)..(at + 60).min(s.len())]).into_owned()
        };
        format!(
            "{} vs {} bytes, first difference at byte {at}: native …{}… materialize …{}…",
            a.len(),
            b.len(),
            around(a),
            around(b)
        )
    }

    #[test]
    fn discard_reads_at_most_what_there_is() {
        let db = SmallDb::new();
        let conn = db.reader();
        let mut stmt = conn.prepare("SELECT * FROM terminal ORDER BY id").unwrap();
        for (n, read) in [
            (0, 0),
            (1, 1),
            (TERMINALS - 1, TERMINALS - 1),
            (TERMINALS, TERMINALS),
            (u64::MAX, TERMINALS),
        ] {
            let mut rows = stmt.query([]).unwrap();
            assert_eq!(discard(&mut rows, 6, n).unwrap(), read, "{n}");
            // The next row is the one after the discarded ones.
            let next: Option<i64> = rows.next().unwrap().map(|r| r.get(0).unwrap());
            let want: Option<i64> = conn
                .query_row("SELECT id FROM terminal ORDER BY id LIMIT 1 OFFSET ?", [read], |r| {
                    r.get(0)
                })
                .ok();
            assert_eq!(next, want, "{n}");
        }
    }
}

//! Changing a simulator database the way a portal's data changes: rows inserted, updated and
//! deleted, by `iptvportal-sim mutate` ([`mutate`]) and, while serving, by `serve --mutate-rate`
//! ([`Mutator`]).
//!
//! New rows come from the generator the tables were made with ([`generate_row`]), so they look
//! like the others; foreign keys point at rows that exist at the time. Which column of a table
//! records when a row last changed, and which columns an update rewrites, is the one table
//! [`CHANGES`] with the catalog's change columns.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use iptvportal_catalog::time::format_timestamp;
use iptvportal_catalog::{Column, ColumnType, Table};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::Error;
use crate::generate::{ForeignIds, RowContext, generate_row, mix};

/// Which columns an update of each generated table rewrites besides its change column.
///
/// The *change column* (the catalog's `change_column`) records when a row last changed, as an
/// incremental sync reads it (`WHERE last_seen > boundary`): inserts and updates set it to the
/// mutation's instant, and the schema indexes it. Two tables have one: `terminal.last_seen`
/// (when the box was last seen, which every contact moves forward) and `terminal_playlog.start`
/// (an append-only log whose rows are written when a play starts). The other timestamps record
/// creation (`subscriber.created_at`, `terminal.registered`) or a schedule
/// (`tv_program.start`/`stop`), which an update does not move, so those tables change without
/// one: an update rewrites the listed non-key columns only.
///
/// `tv_category`'s name and genre are a function of its id in the generator, so its updates
/// rewrite `genre` with the value it already has. A catalog table missing here has no change
/// column and its updates rewrite every non-id column.
pub(crate) const CHANGES: &[(&str, &[&str])] = &[
    ("subscriber", &["billing"]),
    ("terminal", &["inet_addr"]),
    ("package", &["cost"]),
    ("subscriber_package", &["enabled"]),
    ("media", &["name"]),
    ("tv_channel", &["sort"]),
    ("tv_program", &["title"]),
    ("tv_category", &["genre"]),
    ("tv_program_category", &["category_id"]),
    ("terminal_playlog", &["program_id"]),
];

/// The change column of `table`, if the catalog names one.
pub(crate) fn change_column(table: &str) -> Option<&'static str> {
    iptvportal_catalog::table(table).and_then(|t| t.change_column)
}

/// The columns an update of `table` rewrites besides its change column ([`CHANGES`]).
fn updated_columns(table: &Table) -> Vec<&'static Column> {
    match CHANGES.iter().find(|(name, ..)| *name == table.name) {
        Some((_, columns)) => columns.iter().filter_map(|c| table.column(c)).collect(),
        None => table.columns.iter().filter(|c| table.id_column != Some(c.name)).collect(),
    }
}

/// How many rows of a table one mutation inserts, updates and deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mutation {
    /// New rows, with ids above the current maximum (for a table with an id column).
    pub insert: u64,
    /// Existing rows given new values, and their change column set to the mutation's instant.
    pub update: u64,
    /// Existing rows removed.
    pub delete: u64,
}

impl Mutation {
    /// `insert` new rows, `update` and `delete` existing ones.
    pub fn new(insert: u64, update: u64, delete: u64) -> Mutation {
        Mutation { insert, update, delete }
    }

    fn is_empty(self) -> bool {
        self == Mutation::default()
    }
}

/// What a mutation did to one table. Its `Display` is the line `iptvportal-sim mutate` prints:
/// `terminal: inserted 10 (ids 5021..=5030), updated 5, deleted 3`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MutationReport {
    /// The table.
    pub table: &'static str,
    /// Rows inserted.
    pub inserted: u64,
    /// Their ids, for a table with an id column: above every id the table has had.
    pub inserted_ids: Option<RangeInclusive<i64>>,
    /// Rows updated: as many as asked, or every row the deletes left.
    pub updated: u64,
    /// Rows deleted: as many as asked, or every row the table had.
    pub deleted: u64,
}

impl fmt::Display for MutationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: inserted {}", self.table, self.inserted)?;
        if let Some(ids) = &self.inserted_ids {
            write!(f, " (ids {}..={})", ids.start(), ids.end())?;
        }
        write!(f, ", updated {}, deleted {}", self.updated, self.deleted)
    }
}

/// Changes the simulator database at `path`: every table of `tables` (catalog names) gets
/// `mutation`, all in one transaction. Which rows are updated and deleted, and the new values, are
/// drawn from `seed` (a RNG per table), so the same seed on the same database state makes the same
/// changes. Change columns (`terminal.last_seen`, `terminal_playlog.start`; docs/simulator.md)
/// of inserted and updated rows get `at` (seconds since 1970-01-01 UTC), or now when `None`.
///
/// Deletes are drawn first, then updates among the rows left, then inserts, whose ids follow the
/// highest id the table has ever had (its maximum, or a higher one a mutation issued and deleted
/// since, recorded in the simulator's meta table), so a deleted id is never issued again. The file must be a
/// simulator database; a server may be serving it (SQLite's WAL keeps its reads consistent).
pub fn mutate(
    path: &Path,
    tables: &[&str],
    mutation: Mutation,
    seed: u64,
    at: Option<i64>,
) -> Result<Vec<MutationReport>, Error> {
    let tables = resolve_tables(tables)?;
    let mut conn = open_writer(path)?;
    let db_err = |source| Error::Database { path: path.to_owned(), source };
    let at = at.unwrap_or_else(now);
    let tx = conn.transaction().map_err(db_err)?;
    let mut reports = Vec::with_capacity(tables.len());
    for table in tables {
        let mut rng = StdRng::seed_from_u64(mix(seed, table.name, 3));
        reports.push(mutate_table(&tx, table, mutation, at, &mut rng).map_err(db_err)?);
    }
    tx.commit().map_err(db_err)?;
    Ok(reports)
}

/// The catalog tables named, or an error naming the known ones.
pub(crate) fn resolve_tables(names: &[&str]) -> Result<Vec<&'static Table>, Error> {
    names
        .iter()
        .map(|name| {
            iptvportal_catalog::table(name).ok_or_else(|| Error::Config {
                reason: format!("unknown table {name:?}: use one of {}", table_names()),
            })
        })
        .collect()
}

/// Every catalog table's name, comma-separated, for messages.
pub(crate) fn table_names() -> String {
    iptvportal_catalog::TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// A write connection to an existing simulator database: never creates the file, refuses one
/// without the simulator's meta table.
fn open_writer(path: &Path) -> Result<Connection, Error> {
    let unusable =
        |reason: &str| Error::Unusable { path: PathBuf::from(path), reason: reason.to_owned() };
    if !path.is_file() {
        return Err(unusable("no such database file (`iptvportal-sim serve --db FILE` makes one)"));
    }
    let db_err = |source| Error::Database { path: PathBuf::from(path), source };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    let ours: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [crate::generate::META_TABLE],
            |row| row.get(0),
        )
        .optional()
        .unwrap_or(None);
    if ours.is_none() {
        return Err(unusable("not a simulator database"));
    }
    // The generator writes WAL files already; readers in another connection (or process) keep
    // reading their snapshot while a mutation commits.
    conn.pragma_update(None, "journal_mode", "WAL").map_err(db_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(db_err)?;
    Ok(conn)
}

/// Now, in whole seconds since 1970-01-01 UTC: the simulator's clock.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Applies `m` to `table` inside the caller's transaction.
fn mutate_table(
    conn: &Connection,
    table: &'static Table,
    m: Mutation,
    at: i64,
    rng: &mut StdRng,
) -> rusqlite::Result<MutationReport> {
    let name = table.name;
    let (lo, hi): (Option<i64>, Option<i64>) =
        conn.query_row(&format!("SELECT min(rowid), max(rowid) FROM \"{name}\""), [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    // The highest id ever issued: a deleted row's id is never issued again, as a sequence would.
    let mark_key = format!("max_id:{name}");
    let mark: Option<i64> = if table.id_column.is_some() {
        conn.query_row(
            &format!("SELECT value FROM {META} WHERE key = ?1", META = crate::generate::META_TABLE),
            [&mark_key],
            |row| row.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
    } else {
        None
    };
    let top = hi.max(mark);
    let picked = pick_rows(conn, name, lo.zip(hi), m.delete.saturating_add(m.update), rng)?;
    let split = picked.len().min(usize::try_from(m.delete).unwrap_or(usize::MAX));
    let (deleted, updated) = picked.split_at(split);

    let mut delete = conn.prepare_cached(&format!("DELETE FROM \"{name}\" WHERE rowid = ?1"))?;
    for rowid in deleted {
        delete.execute([rowid])?;
    }

    let foreign = DbIds { conn, error: std::cell::RefCell::new(None) };
    let change = change_column(name).and_then(|c| table.column(c));
    let stamp = Value::Text(format_timestamp(at));
    let columns = updated_columns(table);
    let mut updated_n = 0;
    if !columns.is_empty() || change.is_some() {
        let mut sets: Vec<&str> = columns.iter().map(|c| c.name).collect();
        sets.extend(change.map(|c| c.name));
        let assignments: Vec<String> =
            sets.iter().enumerate().map(|(i, c)| format!("\"{c}\" = ?{}", i + 1)).collect();
        let mut update = conn.prepare_cached(&format!(
            "UPDATE \"{name}\" SET {} WHERE rowid = ?{}",
            assignments.join(", "),
            sets.len() + 1
        ))?;
        let list: Vec<String> = columns.iter().map(|c| format!("\"{}\"", c.name)).collect();
        let mut current = conn.prepare_cached(&format!(
            "SELECT {} FROM \"{name}\" WHERE rowid = ?1",
            if list.is_empty() { "rowid".to_owned() } else { list.join(", ") }
        ))?;
        for &rowid in updated {
            let old: Vec<Value> = current
                .query_row([rowid], |row| (0..columns.len()).map(|i| row.get(i)).collect())?;
            let id = table.id_column.map(|_| rowid);
            let mut ctx = RowContext::new(name, id, &foreign);
            let mut values: Vec<Value> =
                columns.iter().zip(&old).map(|(c, old)| changed(&mut ctx, rng, c, old)).collect();
            foreign.check()?;
            if change.is_some() {
                values.push(stamp.clone());
            }
            values.push(Value::Integer(rowid));
            update.execute(rusqlite::params_from_iter(values.iter()))?;
            updated_n += 1;
        }
    }

    let mut inserted_ids = None;
    if m.insert > 0 {
        let placeholders = vec!["?"; table.columns.len()].join(", ");
        let mut insert =
            conn.prepare_cached(&format!("INSERT INTO \"{name}\" VALUES ({placeholders})"))?;
        let change_at = change.and_then(|c| table.columns.iter().position(|x| x.name == c.name));
        let first = table.id_column.map(|_| top.unwrap_or(0).saturating_add(1));
        let mut row = Vec::with_capacity(table.columns.len());
        let mut last = None;
        for k in 0..m.insert {
            let id = first.map(|f| f.saturating_add(i64::try_from(k).unwrap_or(i64::MAX)));
            generate_row(table, &mut RowContext::new(name, id, &foreign), rng, &mut row);
            foreign.check()?;
            if let Some(slot) = change_at.and_then(|i| row.get_mut(i)) {
                *slot = stamp.clone();
            }
            insert.execute(rusqlite::params_from_iter(row.iter()))?;
            last = id;
        }
        inserted_ids = first.zip(last).map(|(f, l)| f..=l);
    }
    let new_mark = inserted_ids.as_ref().map(|ids| *ids.end()).or(top);
    if let Some(new_mark) = new_mark.filter(|_| table.id_column.is_some()) {
        conn.execute(
            &format!(
                "INSERT OR REPLACE INTO {META} (key, value) VALUES (?1, ?2)",
                META = crate::generate::META_TABLE
            ),
            [mark_key, new_mark.to_string()],
        )?;
    }
    Ok(MutationReport {
        table: name,
        inserted: m.insert,
        inserted_ids,
        updated: updated_n,
        deleted: deleted.len() as u64,
    })
}

/// A new value for `column` of an updated row whose value is `old`: a boolean is flipped; any
/// other column is drawn again (up to eight times) until it differs, so an update really changes
/// the row unless the generator has only the one value for it.
fn changed(ctx: &mut RowContext<'_>, rng: &mut StdRng, column: &Column, old: &Value) -> Value {
    if column.ty == ColumnType::Boolean
        && let Value::Integer(b) = old
    {
        return Value::Integer(i64::from(*b == 0));
    }
    let mut value = ctx.column(rng, column);
    for _ in 0..7 {
        if value != *old {
            break;
        }
        value = ctx.column(rng, column);
    }
    value
}

/// Up to `n` distinct rowids of `table` (whose rowids span `range`), drawn from `rng`. A sparse
/// table is sampled by seeking from random points of its rowid range (no full scan, for large
/// tables at a high `--mutate-rate`); a dense one, or one that seeking cannot fill, by sampling
/// its full list of rowids.
fn pick_rows(
    conn: &Connection,
    table: &str,
    range: Option<(i64, i64)>,
    n: u64,
    rng: &mut StdRng,
) -> rusqlite::Result<Vec<i64>> {
    let Some((lo, hi)) = range.filter(|_| n > 0) else { return Ok(Vec::new()) };
    let span = u64::try_from(hi.saturating_sub(lo)).unwrap_or(u64::MAX).saturating_add(1);
    if span > n.saturating_mul(4) {
        let mut seek = conn.prepare_cached(&format!(
            "SELECT rowid FROM \"{table}\" WHERE rowid >= ?1 ORDER BY rowid LIMIT 1"
        ))?;
        let mut seen = BTreeSet::new();
        let mut chosen = Vec::new();
        let mut attempts = n.saturating_mul(16).saturating_add(64);
        while (chosen.len() as u64) < n && attempts > 0 {
            attempts -= 1;
            let from = rng.random_range(lo..=hi);
            if let Some(rowid) = seek.query_row([from], |row| row.get(0)).optional()?
                && seen.insert(rowid)
            {
                chosen.push(rowid);
            }
        }
        if chosen.len() as u64 == n {
            return Ok(chosen);
        }
    }
    let mut all = conn.prepare_cached(&format!("SELECT rowid FROM \"{table}\" ORDER BY rowid"))?;
    let rowids: Vec<i64> = all.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
    let amount = rowids.len().min(usize::try_from(n).unwrap_or(usize::MAX));
    Ok(rand::seq::index::sample(rng, rowids.len(), amount).into_iter().map(|i| rowids[i]).collect())
}

/// Foreign keys of mutated rows: an existing id of the referenced table, found by seeking from a
/// random point of its id range. The generator's interface cannot fail, so a SQLite error is kept
/// and returned by [`DbIds::check`] after the row.
struct DbIds<'c> {
    conn: &'c Connection,
    error: std::cell::RefCell<Option<rusqlite::Error>>,
}

impl DbIds<'_> {
    fn try_pick(&self, rng: &mut StdRng, table: &str) -> rusqlite::Result<Option<i64>> {
        let (lo, hi): (Option<i64>, Option<i64>) = self.conn.query_row(
            &format!("SELECT min(rowid), max(rowid) FROM \"{table}\""),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let Some((lo, hi)) = lo.zip(hi) else { return Ok(None) };
        let from = rng.random_range(lo..=hi);
        self.conn
            .prepare_cached(&format!(
                "SELECT rowid FROM \"{table}\" WHERE rowid >= ?1 ORDER BY rowid LIMIT 1"
            ))?
            .query_row([from], |row| row.get(0))
            .optional()
    }

    /// The first error a pick met since the last check.
    fn check(&self) -> rusqlite::Result<()> {
        self.error.take().map_or(Ok(()), Err)
    }
}

impl ForeignIds for DbIds<'_> {
    fn pick(&self, rng: &mut StdRng, table: &str) -> Option<i64> {
        self.try_pick(rng, table).unwrap_or_else(|e| {
            self.error.borrow_mut().get_or_insert(e);
            None
        })
    }
}

/// How often the [`Mutator`] commits what is due.
const TICK: Duration = Duration::from_millis(100);

/// `serve --mutate-rate`: a thread with a write connection of its own that mutates the served
/// database `per_second` times a second while the server reads it. Every tick (0.1 s) it commits,
/// in one transaction per tick, the mutations due since the last one: the n-th mutation is an
/// insert when n mod 5 is 0 or 1, an update when it is 2 or 3, and a delete when it is 4 (2:2:1),
/// applied to every table it was given, with change columns set to now. Readers are unaffected:
/// the database is in WAL mode and each select is one statement, which reads one snapshot.
///
/// A tick that falls behind drops what is more than a second overdue. Stopped and joined on drop.
pub(crate) struct Mutator {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Mutator {
    /// Opens the write connection (so a failure stops the simulator from starting) and starts the
    /// thread.
    pub(crate) fn start(
        path: &Path,
        tables: Vec<&'static Table>,
        per_second: u32,
        seed: u64,
    ) -> Result<Mutator, Error> {
        let mut conn = open_writer(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sim-mutator".to_owned())
            .spawn(move || {
                let mut rng = StdRng::seed_from_u64(mix(seed, "mutate-rate", 3));
                let started = Instant::now();
                let rate = u64::from(per_second);
                let mut done: u64 = 0;
                let mut total = Mutation::default();
                while !stopping.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    let elapsed = started.elapsed().as_millis();
                    let due = u64::try_from(elapsed * u128::from(rate) / 1000).unwrap_or(u64::MAX);
                    let from = done.max(due.saturating_sub(rate));
                    let m = due_between(from, due);
                    done = due;
                    if m.is_empty() {
                        continue;
                    }
                    match apply(&mut conn, &tables, m, now(), &mut rng) {
                        Ok(()) => {
                            total.insert += m.insert;
                            total.update += m.update;
                            total.delete += m.delete;
                            tracing::debug!(?m, "mutated");
                        }
                        Err(e) => tracing::warn!(error = %e, "mutation failed"),
                    }
                }
                tracing::info!(
                    inserted = total.insert,
                    updated = total.update,
                    deleted = total.delete,
                    "mutator stopped"
                );
            })
            .map_err(|source| Error::Io { what: "starting the mutator".to_owned(), source })?;
        Ok(Mutator { stop, thread: Some(thread) })
    }
}

impl Drop for Mutator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The kinds of the mutations numbered `from..to` in the 2:2:1 cycle of [`Mutator`].
fn due_between(from: u64, to: u64) -> Mutation {
    let mut m = Mutation::default();
    for n in from..to {
        match n % 5 {
            0 | 1 => m.insert += 1,
            2 | 3 => m.update += 1,
            _ => m.delete += 1,
        }
    }
    m
}

fn apply(
    conn: &mut Connection,
    tables: &[&'static Table],
    m: Mutation,
    at: i64,
    rng: &mut StdRng,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for table in tables {
        mutate_table(&tx, table, m, at, rng)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_table_has_one_entry_naming_its_columns() {
        for table in iptvportal_catalog::TABLES {
            let entries: Vec<_> = CHANGES.iter().filter(|(name, ..)| *name == table.name).collect();
            assert_eq!(entries.len(), 1, "{}", table.name);
            let (_, updated) = entries[0];
            let change = table.change_column;
            if let Some(change) = change {
                let column = table.column(change).expect("the change column exists");
                assert_eq!(column.ty, ColumnType::Timestamp, "{}.{change}", table.name);
            }
            assert!(!updated.is_empty(), "{}", table.name);
            for c in *updated {
                assert!(table.column(c).is_some(), "{}.{c}", table.name);
                assert_ne!(table.id_column, Some(*c), "{}.{c}: the id never changes", table.name);
                assert_ne!(change, Some(*c), "{}.{c}", table.name);
            }
        }
        assert_eq!(change_column("terminal"), Some("last_seen"));
        assert_eq!(change_column("subscriber"), None);
        assert_eq!(change_column("nosuch"), None);
    }

    #[test]
    fn the_cycle_is_two_inserts_two_updates_one_delete() {
        assert_eq!(due_between(0, 5), Mutation::new(2, 2, 1));
        assert_eq!(due_between(0, 50), Mutation::new(20, 20, 10));
        assert_eq!(due_between(3, 4), Mutation::new(0, 1, 0));
        assert_eq!(due_between(4, 7), Mutation::new(2, 0, 1));
        assert!(due_between(9, 9).is_empty());
    }

    #[test]
    fn reports_read_as_one_line() {
        let report = MutationReport {
            table: "terminal",
            inserted: 10,
            inserted_ids: Some(501..=510),
            updated: 5,
            deleted: 3,
        };
        assert_eq!(
            report.to_string(),
            "terminal: inserted 10 (ids 501..=510), updated 5, deleted 3"
        );
        let report = MutationReport { table: "tv_program_category", inserted_ids: None, ..report };
        assert_eq!(report.to_string(), "tv_program_category: inserted 10, updated 5, deleted 3");
    }
}

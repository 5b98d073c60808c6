//! `sync`: a table kept as a series of runs, a snapshot and then exact deltas (new, changed and
//! deleted rows), each run a dump of a window fixed before its first request.
//!
//! The layout under the output directory `out`, per table:
//!
//! ```text
//! out/.terminal.lock                   the table's lock (the same as `dump`'s: one writer)
//! out/terminal/sync.json               the runs: window, state, counts, files (atomic)
//! out/terminal/run-00001/              run 1, the snapshot: an ordinary dump directory
//!     terminal.jsonl  .terminal.state.json  deleted.jsonl  .held-ids
//! out/terminal/run-00002/              run 2, a delta: the rows new or changed in its window
//! ```
//!
//! A run is committed in three steps, each durable before the next: its record with the window
//! (state `running`) in `sync.json`; its rows, by the dump's own commit protocol into its
//! directory; its deletes and held ids, then its record `complete`. A run killed anywhere reruns
//! with the recorded window, so it resumes its dump exactly and then writes the very files an
//! uninterrupted run would have; runs before it are never touched.
//!
//! The window (what a run fetches, [`Window`]):
//! - **ids** `(after, upto]`: `upto` is the portal's largest id when the run starts, `after` the
//!   previous run's high-water mark. New rows are the ones above `after`.
//! - **cursor** `(after, upto]` on the change column (the catalog's, or one given): `upto` is the
//!   portal's latest value less the lag, so that a row committed late with an older value (by
//!   less than the lag) is already visible when the window is fixed; the next window starts at
//!   exactly this `upto`, so a row equal to the boundary is fetched once. The portal's own latest
//!   value is the clock, so clock skew and time zones between this machine and the portal do not
//!   matter.
//! - a delta fetches `id <= ids.upto AND (id > ids.after OR cursor in its window)`, in id order.
//!
//! Deletes: the ids every earlier run holds (`.held-ids`, sorted, 8 bytes each) and this run's
//! are counted against the portal's by range, one count request per range, and only a range
//! whose counts differ is cut into 16 and counted again, down to a leaf whose ids are read from
//! the portal and compared one by one. A sync of unchanged data costs one count; requests grow
//! with the changes, not the table.
//!
//! A table without an id column cannot be merged by key: every run is a full snapshot.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use iptvportal_checkpoint::{CheckpointStore, DumpState, FileStore, LockMode, TableLock};
use iptvportal_query::{Expr, Function, Operand, OrderBy, Q, Select};
use iptvportal_sink::{ColumnType, Crc32, FileRecord, Format, IdRange, Problem, ProblemKind};
use iptvportal_traverse::RowSource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::wide;
use crate::writer::blocking;
use crate::{DumpConfig, Error, Portal};

/// The name of a table's sync record, in `out/{table}/`.
pub const SYNC_FILE: &str = "sync.json";
/// The name of a run's deletes file, in its directory: one `{"id": N}` line per deleted id, in
/// id order.
pub const DELETES_FILE: &str = "deleted.jsonl";
/// The ids the runs hold after a run, in its directory: sorted little-endian `i64`s.
const HELD_FILE: &str = ".held-ids";
/// The version of `sync.json` this build writes.
const VERSION: u32 = 1;
/// A range whose counts differ is read id by id once it holds at most this many held ids, or
/// when it differs by at least as many ids as a cut makes parts.
const LEAF: u64 = 5_000;
/// Ids read from the portal per request at a leaf.
const ID_PAGE: u64 = 50_000;

/// How a sync reads changes, beside the dump's own options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncOptions {
    /// The change column; the catalog's when `None`.
    pub cursor: Option<String>,
    /// How long a row may take to commit after its change column was set: the window ends this
    /// much before the portal's latest value.
    pub lag: Duration,
}

impl SyncOptions {
    /// The lag unless set: five minutes, longer than a portal's write transactions take.
    pub const DEFAULT_LAG: Duration = Duration::from_secs(300);
    /// The shortest lag: the change column has whole seconds, and a row changed later within the
    /// latest second has that very value.
    pub const MIN_LAG: Duration = Duration::from_secs(1);

    /// The defaults: the catalog's change column, a lag of [`SyncOptions::DEFAULT_LAG`].
    pub fn new() -> SyncOptions {
        SyncOptions { cursor: None, lag: SyncOptions::DEFAULT_LAG }
    }

    /// Sets the change column.
    #[must_use]
    pub fn cursor(mut self, column: impl Into<String>) -> SyncOptions {
        self.cursor = Some(column.into());
        self
    }

    /// Sets the lag.
    #[must_use]
    pub fn lag(mut self, lag: Duration) -> SyncOptions {
        self.lag = lag;
        self
    }
}

impl Default for SyncOptions {
    fn default() -> SyncOptions {
        SyncOptions::new()
    }
}

/// Why a sync cannot go on. Nothing of the runs already committed was touched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncProblem {
    /// The runs were fetched from another portal.
    #[error("the sync in {} is of the portal {recorded}, not {now}", dir.display())]
    OtherPortal {
        /// The table's sync directory.
        dir: PathBuf,
        /// The portal its runs came from.
        recorded: String,
        /// The portal of this run.
        now: String,
    },
    /// The runs were written with other options.
    #[error("the sync in {} was started with other options ({})", dir.display(), differences.join("; "))]
    OtherOptions {
        /// The table's sync directory.
        dir: PathBuf,
        /// What differs, each `what: recorded, now this`.
        differences: Vec<String>,
    },
    /// The change column cannot be used.
    #[error("the change column {column:?} {reason}")]
    Cursor {
        /// The column asked for.
        column: String,
        /// Why not.
        reason: String,
    },
    /// The columns asked for leave out the id column, which the runs are merged by.
    #[error("the columns asked for leave out {id}, the id column a sync merges its runs by")]
    IdLeftOut {
        /// The id column.
        id: String,
    },
    /// The lag is shorter than a second.
    #[error("the lag must be at least 1 second, got {0:?}")]
    Lag(Duration),
    /// The record of the runs cannot be read or is not consistent.
    #[error("the sync record {} cannot be followed: {detail}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// There is no complete run to read.
    #[error("{} holds no complete sync run", dir.display())]
    NoRuns {
        /// The table's sync directory.
        dir: PathBuf,
    },
    /// A file of the sync cannot be read or written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// What one run of a table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunKind {
    /// The first run of a table with an id column: every row up to the window's id.
    Snapshot,
    /// A later run: rows new or changed in its window, and the ids deleted since.
    Delta,
    /// A run of a table without an id column: every row, each run.
    Full,
}

impl RunKind {
    /// Its name in the record and on screen.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunKind::Snapshot => "snapshot",
            RunKind::Delta => "delta",
            RunKind::Full => "full",
        }
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunState {
    /// Its window is fixed; its files are being written (or it was interrupted).
    Running,
    /// Its files, deletes and counts are committed.
    Complete,
}

/// The ids a run fetches: above `after`, up to `upto` (both `None` when unbounded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IdWindow {
    /// The previous run's high-water mark (exclusive).
    pub after: Option<i64>,
    /// The portal's largest id when the run began (inclusive); `None` for an empty table.
    pub upto: Option<i64>,
}

/// The change column's window of a run: values above `after`, up to `upto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CursorWindow {
    /// The column.
    pub column: String,
    /// The previous run's `upto` (exclusive); `None` before the first value.
    pub after: Option<String>,
    /// The portal's latest value less the lag (inclusive); `None` while the column holds none.
    pub upto: Option<String>,
}

/// What a run fetches, fixed before its first request and recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Window {
    /// The id window, for a table with an id column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<IdWindow>,
    /// The change column's window, for a table with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<CursorWindow>,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bound = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        let mut parts = Vec::new();
        if let Some(ids) = &self.ids {
            parts.push(format!(
                "ids ({}, {}]",
                bound(ids.after.map(|v| v.to_string())),
                bound(ids.upto.map(|v| v.to_string()))
            ));
        }
        if let Some(c) = &self.cursor {
            parts.push(format!(
                "{} ({}, {}]",
                c.column,
                bound(c.after.clone()),
                bound(c.upto.clone())
            ));
        }
        if parts.is_empty() { f.write_str("every row") } else { f.write_str(&parts.join(", ")) }
    }
}

/// A run's deletes file as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeletesRecord {
    /// Its name in the run's directory.
    pub name: String,
    /// The ids it lists.
    pub ids: u64,
    /// Its length.
    pub bytes: u64,
    /// Its CRC-32.
    pub crc32: Crc32,
}

/// One run of a table, as `sync.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// Its number, from 1.
    pub run: u32,
    /// Snapshot, delta or full.
    pub kind: RunKind,
    /// Running or complete.
    pub state: RunState,
    /// What it fetches.
    pub window: Window,
    /// When its window was fixed (RFC 3339).
    pub started_at: String,
    /// When it was committed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Rows in its files.
    #[serde(default)]
    pub rows: u64,
    /// Of those, rows above the previous high-water mark.
    #[serde(default)]
    pub new: u64,
    /// Of those, rows at or below it (changed in the window).
    #[serde(default)]
    pub changed: u64,
    /// Ids deleted since the previous run (or left the filter).
    #[serde(default)]
    pub deleted: u64,
    /// Ids on the portal that no run holds: rows committed after their window was fixed with an
    /// id below its high-water mark and a change column outside every later window.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unheld: u64,
    /// The ids every run holds after this one.
    #[serde(default)]
    pub held: u64,
    /// The largest id any run holds after this one: the next run's `ids.after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_water: Option<i64>,
    /// Its row files, as its dump's manifest has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRecord>,
    /// Its deletes file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletes: Option<DeletesRecord>,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RunRecord {
    /// A run just begun: its window fixed, nothing fetched yet.
    fn running(run: u32, kind: RunKind, window: Window, started_at: String) -> RunRecord {
        RunRecord {
            run,
            kind,
            state: RunState::Running,
            window,
            started_at,
            finished_at: None,
            rows: 0,
            new: 0,
            changed: 0,
            deleted: 0,
            unheld: 0,
            held: 0,
            high_water: None,
            files: Vec::new(),
            deletes: None,
        }
    }

    /// The directory of this run's files, in `table_dir`.
    pub fn dir(&self, table_dir: &Path) -> PathBuf {
        table_dir.join(run_dir_name(self.run))
    }
}

/// What shapes a sync's files, recorded so that every run writes alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SyncShape {
    /// The file format.
    pub format: Format,
    /// gzip.
    pub compress: bool,
    /// The filter (JSONSQL), AND-ed into every run's window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The columns asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// The columns left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_columns: Vec<String>,
    /// The id column the runs merge by, if the table has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_column: Option<String>,
    /// The change column, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The lag, in seconds.
    pub lag_secs: u64,
}

/// A table's runs: `out/{table}/sync.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SyncRecord {
    /// The format version.
    pub version: u32,
    /// The table.
    pub table: String,
    /// The portal the runs come from (its URL without credentials, or a name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<String>,
    /// What shapes the files.
    pub shape: SyncShape,
    /// The runs, in order.
    pub runs: Vec<RunRecord>,
}

impl SyncRecord {
    /// The last complete run.
    pub fn last_complete(&self) -> Option<&RunRecord> {
        self.runs.iter().rev().find(|r| r.state == RunState::Complete)
    }
}

/// The directory of `table`'s sync in `out`.
pub fn table_dir(out: &Path, table: &str) -> PathBuf {
    out.join(table)
}

fn run_dir_name(run: u32) -> String {
    format!("run-{run:05}")
}

/// Reads `table`'s sync record in `out`; `None` when it has none.
pub fn load(out: &Path, table: &str) -> Result<Option<SyncRecord>, Error> {
    let path = table_dir(out, table).join(SYNC_FILE);
    let problem = |problem| Error::Sync { table: table.to_owned(), problem };
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
            return Ok(None);
        }
        Err(source) => return Err(problem(SyncProblem::Io { path, source })),
    };
    let value: Value = serde_json::from_slice(&text)
        .map_err(|e| problem(SyncProblem::Record { path: path.clone(), detail: e.to_string() }))?;
    let version = value.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version != u64::from(VERSION) {
        let detail = format!("format version {version}, this build reads {VERSION}");
        return Err(problem(SyncProblem::Record { path, detail }));
    }
    let record: SyncRecord = serde_json::from_value(value)
        .map_err(|e| problem(SyncProblem::Record { path: path.clone(), detail: e.to_string() }))?;
    if let Some(detail) = inconsistency(&record, table) {
        return Err(problem(SyncProblem::Record { path, detail }));
    }
    Ok(Some(record))
}

/// What makes a record impossible to follow: runs out of order, a running run before the last.
fn inconsistency(record: &SyncRecord, table: &str) -> Option<String> {
    if record.table != table {
        return Some(format!("it is the record of {}", record.table));
    }
    for (k, run) in record.runs.iter().enumerate() {
        if usize::try_from(run.run).ok() != Some(k + 1) {
            return Some(format!("run {} is listed in place {}", run.run, k + 1));
        }
        if run.state == RunState::Running && k + 1 != record.runs.len() {
            return Some(format!("run {} is running but is not the last", run.run));
        }
    }
    None
}

/// Writes `bytes` to `path` atomically: a temp file, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp_name = path.file_name().unwrap_or_default().to_owned();
    temp_name.push(".tmp");
    let temp = dir.join(temp_name);
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, path)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

fn save(out: &Path, record: &SyncRecord) -> Result<(), Error> {
    let path = table_dir(out, &record.table).join(SYNC_FILE);
    let mut text = serde_json::to_vec_pretty(record).expect("a record serializes");
    text.push(b'\n');
    write_atomic(&path, &text).map_err(|source| Error::Sync {
        table: record.table.clone(),
        problem: SyncProblem::Io { path, source },
    })
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// A run whose window is fixed and recorded, ready for its dump ([`PreparedRun::config`]), then
/// [`PreparedRun::finish`]. It holds the table's lock until dropped.
#[derive(Debug)]
pub struct PreparedRun {
    /// The dump that fetches this run's rows.
    pub config: DumpConfig,
    /// The run as recorded (`running`).
    pub run: RunRecord,
    /// Whether the run was recorded by an earlier, interrupted invocation and is resumed.
    pub resumed: bool,
    out: PathBuf,
    record: SyncRecord,
    _lock: TableLock,
}

/// Fixes the next run of `base.table` (or takes up the interrupted one) and records it: the
/// table's lock, its sync record checked against these options and this portal, the window
/// read from the portal.
pub async fn prepare(
    portal: &dyn Portal,
    base: &DumpConfig,
    options: &SyncOptions,
) -> Result<PreparedRun, Error> {
    base.validate()?;
    let table = base.table.clone();
    if options.lag < SyncOptions::MIN_LAG {
        return Err(Error::Sync { table, problem: SyncProblem::Lag(options.lag) });
    }
    let shape = shape_of(base, options)?;
    let out = base.output_dir.clone();
    fs::create_dir_all(&out).map_err(|source| Error::OutputDir {
        table: table.clone(),
        dir: out.clone(),
        source,
    })?;
    let lock =
        lock_table(&out, &table, LockMode::Create).await?.ok_or_else(|| Error::OutputDir {
            table: table.clone(),
            dir: out.clone(),
            source: io::ErrorKind::NotFound.into(),
        })?;
    let mut record = checked_record(&out, &table, portal.identity(), shape)?;
    let dir = table_dir(&out, &table);
    let (run, resumed) = match record.runs.last() {
        Some(last) if last.state == RunState::Running => (last.clone(), true),
        previous => {
            let run = next_run(portal, base, &record.shape, previous).await?;
            fs::create_dir_all(&dir).map_err(|source| Error::OutputDir {
                table: table.clone(),
                dir: dir.clone(),
                source,
            })?;
            record.runs.push(run.clone());
            save(&out, &record)?;
            (run, false)
        }
    };
    let filter = run_filter(base.where_clause.as_ref(), record.shape.id_column.as_deref(), &run)
        .map_err(|e| base.invalid(crate::Invalid::Filter(e.to_string())))?;
    let mut config = base.clone();
    config.output_dir = run.dir(&dir);
    config.where_clause = filter;
    config.resume = true;
    config.resume_offset = None;
    Ok(PreparedRun { config, run, resumed, out, record, _lock: lock })
}

/// What shapes `base`'s runs: its options, its id column and its change column, checked.
fn shape_of(base: &DumpConfig, options: &SyncOptions) -> Result<SyncShape, Error> {
    let table = &base.table;
    let known = iptvportal_catalog::table(table);
    let id_column = known.and_then(|t| t.id_column).map(str::to_owned);
    let cursor = match &options.cursor {
        Some(column) => {
            let refuse = |reason: String| Error::Sync {
                table: table.clone(),
                problem: SyncProblem::Cursor { column: column.clone(), reason },
            };
            if id_column.is_none() {
                return Err(refuse(format!(
                    "cannot be used: {table} has no id column to merge changed rows by"
                )));
            }
            match known.map(|t| t.column(column)) {
                Some(None) => return Err(refuse(format!("is not a column of {table}"))),
                Some(Some(c)) if c.ty != ColumnType::Timestamp => {
                    return Err(refuse(format!("is a {} column, not a timestamp", c.ty)));
                }
                _ => Some(column.clone()),
            }
        }
        None => known.and_then(|t| t.change_column).map(str::to_owned),
    };
    // The runs are merged by id: every run's files must hold it.
    if let (Some(id), Some(columns)) = (&id_column, base.requested_columns(known))
        && !columns.iter().any(|c| c == id)
    {
        return Err(Error::Sync {
            table: table.clone(),
            problem: SyncProblem::IdLeftOut { id: id.clone() },
        });
    }
    let filter = match &base.where_clause {
        Some(expr) => Some(
            expr.to_json()
                .map_err(|e| base.invalid(crate::Invalid::Filter(e.to_string())))?
                .to_string(),
        ),
        None => None,
    };
    Ok(SyncShape {
        format: base.format,
        compress: base.compress,
        filter,
        columns: base.columns.clone(),
        exclude_columns: base.exclude_columns.clone(),
        id_column,
        cursor,
        lag_secs: options.lag.as_secs(),
    })
}

/// The lock of `table` in `out` (the one `dump` takes there too).
async fn lock_table(out: &Path, table: &str, mode: LockMode) -> Result<Option<TableLock>, Error> {
    FileStore::new(out).lock(table, mode).await.map_err(|source| Error::of_lock(table, source))
}

/// `table`'s record in `out`, checked against this portal and these options, or a new one.
fn checked_record(
    out: &Path,
    table: &str,
    identity: Option<String>,
    shape: SyncShape,
) -> Result<SyncRecord, Error> {
    let problem = |problem| Error::Sync { table: table.to_owned(), problem };
    let dir = table_dir(out, table);
    let Some(record) = load(out, table)? else {
        return Ok(SyncRecord {
            version: VERSION,
            table: table.to_owned(),
            portal: identity,
            shape,
            runs: Vec::new(),
        });
    };
    if let (Some(recorded), Some(now)) = (&record.portal, &identity)
        && recorded != now
    {
        return Err(problem(SyncProblem::OtherPortal {
            dir,
            recorded: recorded.clone(),
            now: now.clone(),
        }));
    }
    let differences = differences(&record.shape, &shape);
    if !differences.is_empty() {
        return Err(problem(SyncProblem::OtherOptions { dir, differences }));
    }
    Ok(record)
}

/// The run after `previous`, its window read from the portal.
async fn next_run(
    portal: &dyn Portal,
    base: &DumpConfig,
    shape: &SyncShape,
    previous: Option<&RunRecord>,
) -> Result<RunRecord, Error> {
    let source = portal.source(base, Arc::new(|| {}));
    let window = fix_window(
        source.as_ref(),
        &base.table,
        shape.id_column.as_deref(),
        shape.cursor.as_deref(),
        Duration::from_secs(shape.lag_secs),
        previous,
    )
    .await?;
    let kind = match (&shape.id_column, previous) {
        (None, _) => RunKind::Full,
        (Some(_), None) => RunKind::Snapshot,
        (Some(_), Some(_)) => RunKind::Delta,
    };
    let run = previous.map_or(1, |p| p.run.saturating_add(1));
    Ok(RunRecord::running(run, kind, window, now_rfc3339()))
}

/// The tables with a sync in `out`: the subdirectories holding a `sync.json`, by name.
pub fn tables(out: &Path) -> Vec<String> {
    let mut tables: Vec<String> = fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(SYNC_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    tables.sort();
    tables
}

/// Checks every run of `table`'s sync in `out`, one report per run (named `{table}/run-NNNNN`):
/// its files against its dump's manifest, as `verify` checks a dump, and its deletes file and
/// held ids against the record. A run directory the record does not list is a problem of the
/// last report.
pub async fn verify(out: &Path, table: &str) -> Result<Vec<crate::TableReport>, Error> {
    let record = load(out, table)?.ok_or_else(|| Error::Sync {
        table: table.to_owned(),
        problem: SyncProblem::NoRuns { dir: table_dir(out, table) },
    })?;
    let dir = table_dir(out, table);
    let mut reports = Vec::new();
    for run in &record.runs {
        let run_dir = run.dir(&dir);
        let name = format!("{table}/{}", run_dir_name(run.run));
        let checked = crate::verify_dir(&run_dir, &[table.to_owned()])
            .await
            .map_err(|source| Error::Checkpoint { table: table.to_owned(), source })?;
        let mut report = match checked.into_iter().next() {
            Some(mut report) if report.unverified.is_none() || run.state == RunState::Complete => {
                report.table = name;
                report
            }
            // A run whose dump has not committed a chunk yet has no state: it is running.
            _ => crate::verify::TableReport::new(name, &run_dir),
        };
        if run.state == RunState::Complete {
            check_run_files(run, &run_dir, &mut report.problems);
            // Only a complete run is complete, whatever its dump says.
        } else {
            report.complete = false;
        }
        report.run = Some(run.run);
        reports.push(report);
    }
    let listed: Vec<String> = record.runs.iter().map(|r| run_dir_name(r.run)).collect();
    let extra: Vec<PathBuf> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("run-")))
        .filter(|e| !listed.iter().any(|l| e.file_name().to_str() == Some(l.as_str())))
        .map(|e| e.path())
        .collect();
    if let Some(last) = reports.last_mut() {
        for path in extra {
            last.problems.push(Problem::new(path, ProblemKind::Unlisted));
        }
    }
    Ok(reports)
}

/// The deletes file of a complete run against its record, and the last run's held ids.
fn check_run_files(run: &RunRecord, run_dir: &Path, problems: &mut Vec<Problem>) {
    if let Some(deletes) = &run.deletes {
        let path = run_dir.join(&deletes.name);
        match fs::read(&path) {
            Err(_) => problems.push(Problem::new(path, ProblemKind::Missing)),
            Ok(bytes) if wide(bytes.len()) != deletes.bytes => problems.push(Problem::new(
                path,
                ProblemKind::Size { found: wide(bytes.len()), expected: deletes.bytes },
            )),
            Ok(bytes) if Crc32::of(&bytes) != deletes.crc32 => problems.push(Problem::new(
                path,
                ProblemKind::Checksum { found: Crc32::of(&bytes), expected: deletes.crc32 },
            )),
            Ok(_) => {}
        }
    }
    let held = run_dir.join(HELD_FILE);
    if let Ok(meta) = fs::metadata(&held)
        && meta.len() != run.held * 8
    {
        problems.push(Problem::new(
            held,
            ProblemKind::Size { found: meta.len(), expected: run.held * 8 },
        ));
    }
}

/// Deletes `base.table`'s runs in `base.output_dir` (its sync directory), holding its lock, so
/// that the next run is a snapshot. A table with no runs is left as it is.
pub async fn reset(base: &DumpConfig) -> Result<(), Error> {
    base.validate()?;
    let table = base.table.clone();
    let out = base.output_dir.clone();
    let lock = lock_table(&out, &table, LockMode::IfPresent).await?;
    let dir = table_dir(&out, &table);
    if !dir.join(SYNC_FILE).exists() {
        return Ok(());
    }
    let result = fs::remove_dir_all(&dir).and_then(|()| sync_dir(&out));
    drop(lock);
    result.map_err(|source| Error::Sync { table, problem: SyncProblem::Io { path: dir, source } })
}

/// What differs between the recorded shape and this run's, in words.
fn differences(recorded: &SyncShape, now: &SyncShape) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: {a}, now {b}"));
        }
    };
    let none = || "none".to_owned();
    differ("format", recorded.format.to_string(), now.format.to_string());
    differ("gzip", recorded.compress.to_string(), now.compress.to_string());
    differ(
        "filter",
        recorded.filter.clone().unwrap_or_else(none),
        now.filter.clone().unwrap_or_else(none),
    );
    differ(
        "columns",
        recorded.columns.as_ref().map_or_else(|| "all".to_owned(), |c| c.join(",")),
        now.columns.as_ref().map_or_else(|| "all".to_owned(), |c| c.join(",")),
    );
    differ("excluded columns", recorded.exclude_columns.join(","), now.exclude_columns.join(","));
    differ(
        "id column",
        recorded.id_column.clone().unwrap_or_else(none),
        now.id_column.clone().unwrap_or_else(none),
    );
    differ(
        "change column",
        recorded.cursor.clone().unwrap_or_else(none),
        now.cursor.clone().unwrap_or_else(none),
    );
    differ("lag", format!("{}s", recorded.lag_secs), format!("{}s", now.lag_secs));
    out
}

/// Reads the window of the next run from the portal.
async fn fix_window(
    source: &dyn RowSource,
    table: &str,
    id: Option<&str>,
    cursor: Option<&str>,
    lag: Duration,
    previous: Option<&RunRecord>,
) -> Result<Window, Error> {
    let mut window = Window::default();
    if let Some(id) = id {
        let upto = max_of(source, table, id).await?;
        let upto = match upto {
            Value::Null => None,
            v => Some(v.as_i64().ok_or_else(|| unexpected(table, id, &v))?),
        };
        let after = previous.and_then(|p| p.high_water);
        window.ids = Some(IdWindow { after, upto });
    }
    if let Some(column) = cursor {
        let after = previous
            .and_then(|p| p.window.cursor.as_ref())
            .and_then(|c| c.upto.clone().or_else(|| c.after.clone()));
        let latest = max_of(source, table, column).await?;
        let upto = match latest {
            Value::Null => after.clone(),
            Value::String(s) => {
                // Whole seconds, rounded down: a value with a fraction in the last second
                // before the end falls in the next window, never in none.
                let secs = iptvportal_catalog::time::parse_timestamp(&s)
                    .ok_or_else(|| unexpected(table, column, &Value::String(s.clone())))?
                    .div_euclid(1_000_000);
                let lag = i64::try_from(lag.as_secs()).unwrap_or(i64::MAX);
                let upto = window_end(secs, unix_now(), lag);
                // The window never goes back: an empty one ends where the last ended.
                let last = after.as_deref().and_then(iptvportal_catalog::time::parse_timestamp);
                match last.map(|micros| micros.div_euclid(1_000_000)) {
                    Some(last) if last >= upto => after.clone(),
                    _ => Some(iptvportal_catalog::time::format_timestamp(upto)),
                }
            }
            other => return Err(unexpected(table, column, &other)),
        };
        window.cursor = Some(CursorWindow { column: column.to_owned(), after, upto });
    }
    Ok(window)
}

/// Where a change column's window ends, in seconds: `latest` is the portal's latest value, `now`
/// this machine's clock (UTC).
///
/// A row may commit up to `lag` after its value was set, so values newer than `lag` before the
/// portal's present may still be appearing: the window ends `lag` before it. The portal's
/// present is at least its latest value, so `latest - lag` is always safe. When this machine's
/// clock says the portal has been quiet for longer than the lag (`now - lag` past `latest`), the
/// window takes in the latest value itself: nothing can still be committing with it, and a
/// quiet portal's last changes are not held back until the next change.
fn window_end(latest: i64, now: i64, lag: i64) -> i64 {
    latest.saturating_sub(lag).max(now.saturating_sub(lag).min(latest))
}

/// This machine's clock, in whole seconds since 1970-01-01 UTC.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn unexpected(table: &str, column: &str, value: &Value) -> Error {
    Error::Fetch {
        table: table.to_owned(),
        source: Box::new(iptvportal_traverse::Error::Unexpected {
            what: format!("reading the largest {column} of {table}"),
            detail: format!("a value that is not of the column's type: {value}"),
        }),
    }
}

fn fetch_error(table: &str, what: String, source: iptvportal_traverse::BoxError) -> Error {
    Error::Fetch {
        table: table.to_owned(),
        source: Box::new(iptvportal_traverse::Error::Source { what, source }),
    }
}

fn query_error(table: &str, e: iptvportal_query::Error) -> Error {
    Error::Fetch { table: table.to_owned(), source: Box::new(e.into()) }
}

/// The largest value of `column` in `table` (no filter: the window is the table's).
async fn max_of(source: &dyn RowSource, table: &str, column: &str) -> Result<Value, Error> {
    let q = |e| query_error(table, e);
    let call = Function::new("max", vec![Operand::column(column).map_err(q)?]).map_err(q)?;
    let select = Select::from(table).map_err(q)?.data(vec![Operand::Function(call)]);
    let rows = source
        .select(&select)
        .await
        .map_err(|e| fetch_error(table, format!("reading the largest {column} of {table}"), e))?;
    Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()).unwrap_or(Value::Null))
}

/// The filter of a run's dump: the user's, AND-ed with its window.
fn run_filter(
    user: Option<&Expr>,
    id: Option<&str>,
    run: &RunRecord,
) -> Result<Option<Expr>, iptvportal_query::Error> {
    let mut parts: Vec<Q> = user.cloned().map(Q::from_expr).into_iter().collect();
    if let (Some(id), Some(ids)) = (id, &run.window.ids) {
        if let Some(upto) = ids.upto {
            parts.push(Q::lte(id, upto)?);
        }
        if run.kind == RunKind::Delta {
            let mut either = Vec::new();
            if let Some(after) = ids.after {
                either.push(Q::gt(id, after)?);
            }
            if let Some(c) = &run.window.cursor
                && let Some(upto) = &c.upto
                && c.after.as_ref() != Some(upto)
            {
                let mut changed = Q::lte(&c.column, upto.as_str())?;
                if let Some(after) = &c.after {
                    changed = Q::gt(&c.column, after.as_str())? & changed;
                }
                either.push(changed);
            }
            // A delta with no id bound (every id was deleted) and no cursor fetches every id up
            // to `upto`: what is there is new.
            if let Some(first) = either.pop() {
                parts.push(either.into_iter().fold(first, |acc, q| q | acc));
            }
        }
    }
    Ok(parts.into_iter().reduce(|a, b| a & b).map(Q::into_expr))
}

impl PreparedRun {
    /// Commits the run after its dump completed: reads its ids, finds the deleted ones, writes
    /// its deletes and held ids, and records it complete.
    pub async fn finish(mut self, portal: &dyn Portal) -> Result<RunRecord, Error> {
        let table = self.config.table.clone();
        let run_dir = self.config.output_dir.clone();
        let state = FileStore::new(&run_dir)
            .load(&table)
            .await
            .map_err(|source| Error::Checkpoint { table: table.clone(), source })?;
        let Some(state) = state.filter(|s| s.is_complete) else {
            return Err(Error::Sync {
                table: table.clone(),
                problem: SyncProblem::Record {
                    path: run_dir.clone(),
                    detail: "the run's dump is not complete".to_owned(),
                },
            });
        };
        let mut run = self.run.clone();
        run.rows = state.dumped_rows;
        run.files = state.sink.files.clone();
        if let Some(id) = self.record.shape.id_column.clone() {
            self.commit_ids(portal, &state, &id, &mut run).await?;
        } else {
            run.new = run.rows;
            run.held = run.rows;
        }
        run.state = RunState::Complete;
        run.finished_at = Some(now_rfc3339());
        // `prepare` recorded the run last, and nothing else writes the record meanwhile.
        if let Some(recorded) = self.record.runs.last_mut() {
            *recorded = run.clone();
        }
        save(&self.out, &self.record)?;
        // Only the last run's held ids are read again.
        let table_dir = table_dir(&self.out, &table);
        for earlier in self.record.runs.iter().filter(|r| r.run < run.run) {
            let _ = fs::remove_file(earlier.dir(&table_dir).join(HELD_FILE));
        }
        Ok(run)
    }

    /// Reads the run's ids, finds what was deleted, and writes the deletes and held ids.
    async fn commit_ids(
        &self,
        portal: &dyn Portal,
        state: &DumpState,
        id: &str,
        run: &mut RunRecord,
    ) -> Result<(), Error> {
        let table = self.config.table.clone();
        let run_dir = self.config.output_dir.clone();
        let io = |path: &Path| {
            let (table, path) = (table.clone(), path.to_owned());
            move |source| Error::Sync { table, problem: SyncProblem::Io { path, source } }
        };
        let id = id.to_owned();
        // Every file of the run, in order, holds ascending ids (id-range, or OFFSET by id).
        let spec = crate::verify::sink_spec(&run_dir, state);
        let files: Vec<(PathBuf, u64)> =
            state.sink.files.iter().map(|f| (run_dir.join(&f.name), f.bytes)).collect();
        let (id_, spec_) = (id.clone(), spec.clone());
        let ids = blocking(move || {
            let mut ids = Vec::new();
            for (path, bytes) in &files {
                crate::verify::read_ids(path, &spec_, &id_, *bytes, &mut |v| ids.push(v))?;
            }
            Ok::<_, iptvportal_sink::Error>(ids)
        })
        .await
        .map_err(|source| Error::Sink { table: table.clone(), source: Box::new(source) })?;
        if wide(ids.len()) != run.rows {
            return Err(Error::Sync {
                table: table.clone(),
                problem: SyncProblem::Record {
                    path: run_dir.clone(),
                    detail: format!("{} of the run's {} rows have an {id}", ids.len(), run.rows),
                },
            });
        }
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Sync {
                table: table.clone(),
                problem: SyncProblem::Record {
                    path: run_dir.clone(),
                    detail: format!("the run's rows are not in ascending order of {id}"),
                },
            });
        }
        let after = run.window.ids.as_ref().and_then(|w| w.after);
        run.new = after.map_or(wide(ids.len()), |a| wide(ids.iter().filter(|&&v| v > a).count()));
        run.changed = run.rows.saturating_sub(run.new);

        // The ids held before this run, merged with this run's.
        let table_dir = table_dir(&self.out, &table);
        let previous = self
            .record
            .runs
            .iter()
            .rev()
            .find(|r| r.run < run.run && r.state == RunState::Complete)
            .map(|r| r.dir(&table_dir).join(HELD_FILE));
        let merged_path = run_dir.join(format!("{HELD_FILE}.merged"));
        let (prev_, merged_) = (previous.clone(), merged_path.clone());
        // Nothing new to hold (a delta of changed rows only, or of nothing): the previous file
        // is the merged one, read in place.
        let (merged, merged_path) = blocking(move || {
            if let Some(prev) = prev_.as_deref()
                && holds_all(prev, &ids)?
            {
                let len = fs::metadata(prev)?.len() / 8;
                return Ok((len, prev.to_owned()));
            }
            merge_held(prev_.as_deref(), &ids, &merged_).map(|len| (len, merged_))
        })
        .await
        .map_err(io(&merged_path))?;
        let reused = previous.as_deref() == Some(merged_path.as_path());

        let source = portal.source(&self.config, Arc::new(|| {}));
        let user = self.base_filter()?;
        let mut held = IdFile::open(&merged_path).map_err(io(&merged_path))?;
        let asker = Asker { source, table: table.clone(), id: id.clone(), filter: user };
        let found = find_deleted(&asker, self.config.max_parallel, &mut held).await?;
        run.deleted = wide(found.deleted.len());
        run.unheld = found.unheld;
        run.held = merged.saturating_sub(run.deleted);

        let held_path = run_dir.join(HELD_FILE);
        let deletes_path = run_dir.join(DELETES_FILE);
        let (m, h, d, id_) =
            (merged_path.clone(), held_path.clone(), deletes_path.clone(), id.clone());
        let deleted = found.deleted;
        let (high_water, deletes) = blocking(move || {
            let high_water = commit_held(&m, reused, &deleted, &h)?;
            let deletes = write_deletes(&d, &id_, &deleted)?;
            sync_dir(d.parent().unwrap_or(Path::new(".")))?;
            Ok::<_, io::Error>((high_water, deletes))
        })
        .await
        .map_err(io(&deletes_path))?;
        run.high_water = high_water.or(run.window.ids.as_ref().and_then(|w| w.after));
        run.deletes = Some(deletes);
        Ok(())
    }

    /// The user's filter, as recorded.
    fn base_filter(&self) -> Result<Option<Expr>, Error> {
        Error::parse_filter(&self.config.table, self.record.shape.filter.as_deref())
    }
}

/// Writes the sorted union of the ids in `previous` (a held-ids file) and `ids` (sorted) to
/// `to`, durably; returns how many.
fn merge_held(previous: Option<&Path>, ids: &[i64], to: &Path) -> io::Result<u64> {
    let mut out = BufWriter::new(File::create(to)?);
    let mut reader = match previous {
        Some(path) => Some(BufReader::new(File::open(path)?)),
        None => None,
    };
    let mut next_prev = || -> io::Result<Option<i64>> {
        let Some(r) = reader.as_mut() else { return Ok(None) };
        let mut b = [0u8; 8];
        match r.read_exact(&mut b) {
            Ok(()) => Ok(Some(i64::from_le_bytes(b))),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    };
    let mut count = 0u64;
    let mut prev = next_prev()?;
    let mut it = ids.iter().copied().peekable();
    loop {
        let take = match (prev, it.peek().copied()) {
            (None, None) => break,
            (Some(p), None) => {
                prev = next_prev()?;
                p
            }
            (None, Some(n)) => {
                it.next();
                n
            }
            (Some(p), Some(n)) => {
                if p < n {
                    prev = next_prev()?;
                    p
                } else {
                    it.next();
                    if p == n {
                        prev = next_prev()?;
                    }
                    n
                }
            }
        };
        out.write_all(&take.to_le_bytes())?;
        count += 1;
    }
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    Ok(count)
}

/// Makes `merged` less `deleted` the held ids at `held`; returns the largest. With nothing
/// deleted the merged ids are the held ones: linked (a previous run's file, `reused`, which is
/// never rewritten) or renamed into place, not copied.
fn commit_held(
    merged: &Path,
    reused: bool,
    deleted: &[i64],
    held: &Path,
) -> io::Result<Option<i64>> {
    if !deleted.is_empty() {
        let high_water = write_held(merged, deleted, held)?;
        if !reused {
            fs::remove_file(merged)?;
        }
        return Ok(high_water);
    }
    match fs::remove_file(held) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    if reused {
        fs::hard_link(merged, held)?;
    } else {
        fs::rename(merged, held)?;
    }
    let mut file = IdFile::open(held)?;
    if file.len == 0 { Ok(None) } else { file.at(file.len - 1).map(Some) }
}

/// Whether the held-ids file `held` holds every one of `ids` (sorted), read once in order.
fn holds_all(held: &Path, ids: &[i64]) -> io::Result<bool> {
    if ids.is_empty() {
        return Ok(true);
    }
    let mut reader = BufReader::with_capacity(1 << 20, File::open(held)?);
    let mut b = [0u8; 8];
    let mut wanted = ids.iter().copied().peekable();
    while let Some(&want) = wanted.peek() {
        match reader.read_exact(&mut b) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
        let id = i64::from_le_bytes(b);
        if id == want {
            wanted.next();
        } else if id > want {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes the ids of `merged` but `deleted` (both sorted) to `to` atomically; returns the
/// largest written.
fn write_held(merged: &Path, deleted: &[i64], to: &Path) -> io::Result<Option<i64>> {
    let mut temp_name = to.file_name().unwrap_or_default().to_owned();
    temp_name.push(".tmp");
    let temp = to.with_file_name(temp_name);
    let mut reader = BufReader::new(File::open(merged)?);
    let mut out = BufWriter::new(File::create(&temp)?);
    let mut deleted = deleted.iter().copied().peekable();
    let mut largest = None;
    let mut b = [0u8; 8];
    loop {
        match reader.read_exact(&mut b) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let id = i64::from_le_bytes(b);
        while deleted.peek().is_some_and(|&d| d < id) {
            deleted.next();
        }
        if deleted.peek() == Some(&id) {
            continue;
        }
        out.write_all(&b)?;
        largest = Some(id);
    }
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, to)?;
    Ok(largest)
}

/// Writes the deletes file: one `{"<id>": N}` line per id.
fn write_deletes(path: &Path, id: &str, deleted: &[i64]) -> io::Result<DeletesRecord> {
    let key = serde_json::to_string(id).expect("a string serializes");
    let mut text = Vec::with_capacity(deleted.len() * 16);
    for d in deleted {
        writeln!(text, "{{{key}:{d}}}")?;
    }
    write_atomic(path, &text)?;
    Ok(DeletesRecord {
        name: DELETES_FILE.to_owned(),
        ids: wide(deleted.len()),
        bytes: wide(text.len()),
        crc32: Crc32::of(&text),
    })
}

/// A sorted file of ids, searched in place.
struct IdFile {
    file: File,
    len: u64,
}

impl IdFile {
    fn open(path: &Path) -> io::Result<IdFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len() / 8;
        Ok(IdFile { file, len })
    }

    fn at(&mut self, index: u64) -> io::Result<i64> {
        let mut b = [0u8; 8];
        self.file.seek(SeekFrom::Start(index * 8))?;
        self.file.read_exact(&mut b)?;
        Ok(i64::from_le_bytes(b))
    }

    /// The index of the first id `> value` (`strict`) or `>= value`.
    fn bound(&mut self, value: i64, strict: bool) -> io::Result<u64> {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = self.at(mid)?;
            if at < value || (strict && at == value) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    fn span(&mut self, range: IdRange) -> io::Result<(u64, u64)> {
        Ok((self.bound(range.min, false)?, self.bound(range.max, true)?))
    }

    fn ids(&mut self, (from, to): (u64, u64)) -> io::Result<Vec<i64>> {
        let mut bytes = vec![0u8; usize::try_from((to - from) * 8).unwrap_or(usize::MAX)];
        self.file.seek(SeekFrom::Start(from * 8))?;
        self.file.read_exact(&mut bytes)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }
}

/// The ids held that the portal no longer has, and how many it has that none holds.
#[derive(Debug, Default)]
struct Found {
    deleted: Vec<i64>,
    unheld: u64,
}

/// What the deletes check asks the portal, shared by its concurrent requests.
#[derive(Clone)]
struct Asker {
    source: Arc<dyn RowSource>,
    table: String,
    id: String,
    filter: Option<Expr>,
}

impl Asker {
    async fn count(self, range: IdRange) -> Result<u64, Error> {
        let counter = crate::verify::Counter {
            source: self.source.as_ref(),
            table: &self.table,
            filter: self.filter.clone(),
        };
        counter.count(Some((&self.id, range))).await
    }

    async fn ids(self, range: IdRange) -> Result<Vec<i64>, Error> {
        ids_in(self.source.as_ref(), &self.table, &self.id, self.filter.as_ref(), range).await
    }
}

/// Runs `ask` on every range, at most `parallel` at once, and returns the answers in order.
async fn ask_all<T, F>(
    asker: &Asker,
    ranges: &[IdRange],
    parallel: usize,
    ask: fn(Asker, IdRange) -> F,
) -> Result<Vec<T>, Error>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, Error>> + Send + 'static,
{
    let mut answers: Vec<Option<T>> = ranges.iter().map(|_| None).collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    loop {
        while next < ranges.len() && tasks.len() < parallel.max(1) {
            let (asker, range, at) = (asker.clone(), ranges[next], next);
            tasks.spawn(async move { (at, ask(asker, range).await) });
            next += 1;
        }
        let Some(done) = tasks.join_next().await else { break };
        let (at, answer) = match done {
            Ok(done) => done,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        answers[at] = Some(answer?);
    }
    Ok(answers.into_iter().map(|a| a.expect("every range was asked")).collect())
}

/// Compares the held ids with the portal's by counts over ranges, narrowing a difference down
/// to leaves whose ids are read and compared one by one. Requests run `parallel` at once.
async fn find_deleted(asker: &Asker, parallel: usize, held: &mut IdFile) -> Result<Found, Error> {
    let mut found = Found::default();
    if held.len == 0 {
        return Ok(found);
    }
    let io = |e: io::Error| Error::Sync {
        table: asker.table.clone(),
        problem: SyncProblem::Io { path: PathBuf::from(HELD_FILE), source: e },
    };
    let first = held.at(0).map_err(io)?;
    let last = held.at(held.len - 1).map_err(io)?;
    let mut level = vec![IdRange { min: first, max: last }];
    while !level.is_empty() {
        let spans =
            level.iter().map(|r| held.span(*r)).collect::<io::Result<Vec<_>>>().map_err(io)?;
        let theirs = ask_all(asker, &level, parallel, Asker::count).await?;
        let mut leaves = Vec::new();
        let mut next = Vec::new();
        for ((range, span), theirs) in level.iter().zip(spans).zip(theirs) {
            let mine = span.1 - span.0;
            if mine == theirs {
                continue;
            }
            // Many differences (as many as the parts a cut would make) are likely in every
            // part: reading the ids costs less than counting the parts first. A few are found
            // by cutting, which reads only the parts that hold them.
            let differences = mine.abs_diff(theirs);
            if mine <= LEAF
                || differences >= crate::verify::SPLIT as u64
                || crate::verify::width(*range) <= u128::from(LEAF)
            {
                leaves.push((*range, span));
            } else {
                next.extend(crate::verify::cut(*range));
            }
        }
        // A leaf of many ids is read in pages cut at its held ids, so that its pages are asked
        // `parallel` at once like everything else; the pages tile the leaf, in order.
        let mut pages: Vec<(usize, IdRange)> = Vec::new();
        for (k, (range, span)) in leaves.iter().enumerate() {
            let mut start = range.min;
            let mut at = span.0 + ID_PAGE;
            while at < span.1 {
                let bound = held.at(at).map_err(io)?;
                if bound > start {
                    pages.push((k, IdRange { min: start, max: bound - 1 }));
                    start = bound;
                }
                at += ID_PAGE;
            }
            pages.push((k, IdRange { min: start, max: range.max }));
        }
        let ranges: Vec<IdRange> = pages.iter().map(|(_, r)| *r).collect();
        let mut read = ask_all(asker, &ranges, parallel, Asker::ids).await?.into_iter();
        let mut portal_of: Vec<Vec<i64>> = leaves.iter().map(|_| Vec::new()).collect();
        for (k, _) in &pages {
            portal_of[*k].extend(read.next().into_iter().flatten());
        }
        for ((_, span), portal) in leaves.into_iter().zip(portal_of) {
            let ours = held.ids(span).map_err(io)?;
            let (mut a, mut b) = (0, 0);
            while a < ours.len() || b < portal.len() {
                match (ours.get(a), portal.get(b)) {
                    (Some(x), Some(y)) if x == y => {
                        a += 1;
                        b += 1;
                    }
                    (Some(x), Some(y)) if x < y => {
                        found.deleted.push(*x);
                        a += 1;
                    }
                    (Some(x), None) => {
                        found.deleted.push(*x);
                        a += 1;
                    }
                    _ => {
                        found.unheld += 1;
                        b += 1;
                    }
                }
            }
        }
        level = next;
    }
    found.deleted.sort_unstable();
    Ok(found)
}

/// The portal's ids in `range` under `filter`, ascending, by keyset pages.
async fn ids_in(
    source: &dyn RowSource,
    table: &str,
    id: &str,
    filter: Option<&Expr>,
    range: IdRange,
) -> Result<Vec<i64>, Error> {
    let q = |e| query_error(table, e);
    let mut ids = Vec::new();
    let mut from = range.min;
    loop {
        let mut condition = Q::gte(id, from).map_err(q)? & Q::lte(id, range.max).map_err(q)?;
        if let Some(filter) = filter {
            condition = Q::from_expr(filter.clone()) & condition;
        }
        let select = Select::from(table)
            .map_err(q)?
            .data(vec![Operand::column(id).map_err(q)?])
            .filter(condition.into_expr())
            .order_by(OrderBy::asc(id).map_err(q)?)
            .limit(ID_PAGE);
        let page = source
            .select_i64s(&select)
            .await
            .map_err(|e| fetch_error(table, format!("reading the ids of {table} in {range}"), e))?;
        let full = wide(page.len()) == ID_PAGE;
        ids.extend(page);
        match ids.last() {
            Some(&last) if full && last < range.max => from = last + 1,
            _ => return Ok(ids),
        }
    }
}

#[cfg(test)]
mod tests {
    use iptvportal_testkit::source::FakeSource;

    use super::*;

    /// A held-ids file of `ids` (sorted) in `dir`.
    fn held(dir: &Path, ids: &[i64]) -> IdFile {
        let path = dir.join(HELD_FILE);
        let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
        fs::write(&path, bytes).unwrap();
        IdFile::open(&path).unwrap()
    }

    fn asker(source: &Arc<FakeSource>) -> Asker {
        let source: Arc<dyn RowSource> = source.clone();
        Asker { source, table: "t".into(), id: "id".into(), filter: None }
    }

    #[tokio::test]
    async fn deletes_are_found_exactly_and_unchanged_data_costs_one_count() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<i64> = (1..=200_000).map(|i| i * 3).collect();
        let mut file = held(dir.path(), &ids);

        let same = Arc::new(FakeSource::with_ids(ids.iter().copied()));
        let found = find_deleted(&asker(&same), 3, &mut file).await.unwrap();
        assert!(found.deleted.is_empty());
        assert_eq!(same.requests().len(), 1);

        // A few deletes are narrowed by counts; only their parts' ids are read.
        let lost = [3, 90_000, 299_997, 600_000];
        let few = Arc::new(FakeSource::with_ids(ids.iter().copied().filter(|i| !lost.contains(i))));
        let found = find_deleted(&asker(&few), 3, &mut file).await.unwrap();
        assert_eq!(found.deleted, lost);
        assert_eq!(found.unheld, 0);
        assert!(few.requests().len() < 120, "{}", few.requests().len());

        // Deletes everywhere: the ids are read, a page at a time, rather than counted.
        let lost: Vec<i64> = ids.iter().copied().filter(|i| i % 97 == 0).collect();
        let many = Arc::new(FakeSource::with_ids(ids.iter().copied().filter(|i| i % 97 != 0)));
        let found = find_deleted(&asker(&many), 3, &mut file).await.unwrap();
        assert_eq!(found.deleted, lost);
        assert!(many.requests().len() <= 1 + 5, "{}", many.requests().len());

        // An id the portal has and no run holds is counted, not taken for a delete.
        let late = Arc::new(FakeSource::with_ids(ids.iter().copied().chain([4])));
        let found = find_deleted(&asker(&late), 3, &mut file).await.unwrap();
        assert_eq!((found.deleted, found.unheld), (vec![], 1));
        // The limit docs/sync.md states: a delete and a late id in one range cancel out.
        let both =
            Arc::new(FakeSource::with_ids(ids.iter().copied().chain([4]).filter(|&i| i != 6)));
        let found = find_deleted(&asker(&both), 3, &mut file).await.unwrap();
        assert_eq!((found.deleted, found.unheld), (vec![], 0));
    }

    #[test]
    fn held_ids_merge_and_lose_the_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let previous = dir.path().join("previous");
        fs::write(&previous, [1i64, 5, 9].iter().flat_map(|i| i.to_le_bytes()).collect::<Vec<_>>())
            .unwrap();
        let merged = dir.path().join("merged");
        assert_eq!(merge_held(Some(&previous), &[2, 5, 10, 11], &merged).unwrap(), 6);
        let to = dir.path().join("held");
        assert_eq!(write_held(&merged, &[2, 11], &to).unwrap(), Some(10));
        let mut file = IdFile::open(&to).unwrap();
        assert_eq!(file.ids((0, file.len)).unwrap(), [1, 5, 9, 10]);
        assert_eq!(file.span(IdRange { min: 2, max: 9 }).unwrap(), (1, 3));
        assert_eq!(write_held(&merged, &[1, 2, 5, 9, 10, 11], &to).unwrap(), None);
        // A run whose ids the held ones all include (changed rows only) writes no new file.
        assert!(holds_all(&previous, &[1, 9]).unwrap());
        assert!(holds_all(&previous, &[]).unwrap());
        assert!(!holds_all(&previous, &[5, 6]).unwrap());
        assert!(!holds_all(&previous, &[9, 10]).unwrap());
        assert!(!holds_all(&previous, &[0]).unwrap());
    }

    #[test]
    fn a_window_ends_the_lag_before_the_latest_change_unless_the_portal_is_quiet() {
        // Live: the latest change is now; the window leaves the last lag to the next run.
        assert_eq!(window_end(1_000, 1_000, 300), 700);
        // This machine's clock a little ahead: still the lag before the latest.
        assert_eq!(window_end(1_000, 1_100, 300), 800);
        // Quiet for longer than the lag: the latest change itself.
        assert_eq!(window_end(1_000, 1_400, 300), 1_000);
        // A portal clock ahead of this one (a zone east of UTC): the lag before its latest.
        assert_eq!(window_end(5_000, 1_400, 300), 4_700);
    }

    fn run(
        kind: RunKind,
        ids: Option<(Option<i64>, Option<i64>)>,
        cursor: Option<(Option<&str>, Option<&str>)>,
    ) -> RunRecord {
        let window = Window {
            ids: ids.map(|(after, upto)| IdWindow { after, upto }),
            cursor: cursor.map(|(after, upto)| CursorWindow {
                column: "last_seen".into(),
                after: after.map(str::to_owned),
                upto: upto.map(str::to_owned),
            }),
        };
        RunRecord::running(2, kind, window, String::new())
    }

    #[test]
    fn a_runs_filter_is_its_window_and_the_users() {
        let json = |run: &RunRecord, user: Option<Expr>| {
            run_filter(user.as_ref(), Some("id"), run)
                .unwrap()
                .map(|e| e.to_json().unwrap().to_string())
        };
        let snapshot = run(
            RunKind::Snapshot,
            Some((None, Some(100))),
            Some((None, Some("2025-01-01 00:00:00"))),
        );
        assert_eq!(json(&snapshot, None).as_deref(), Some(r#"{"lte":["id",100]}"#));
        let delta = run(
            RunKind::Delta,
            Some((Some(100), Some(120))),
            Some((Some("2025-01-01 00:00:00"), Some("2025-01-02 00:00:00"))),
        );
        assert_eq!(
            json(&delta, None).as_deref(),
            Some(
                r#"{"and":[{"lte":["id",120]},{"or":[{"gt":["id",100]},{"and":[{"gt":["last_seen","2025-01-01 00:00:00"]},{"lte":["last_seen","2025-01-02 00:00:00"]}]}]}]}"#
            )
        );
        // An empty cursor window adds nothing; the user's filter comes first.
        let quiet = run(
            RunKind::Delta,
            Some((Some(100), Some(100))),
            Some((Some("2025-01-01 00:00:00"), Some("2025-01-01 00:00:00"))),
        );
        let user = Q::eq("subscriber_id", 7).unwrap().into_expr();
        assert_eq!(
            json(&quiet, Some(user)).as_deref(),
            Some(r#"{"and":[{"eq":["subscriber_id",7]},{"lte":["id",100]},{"gt":["id",100]}]}"#)
        );
    }
}

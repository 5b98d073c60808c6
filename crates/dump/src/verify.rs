//! Checking a dump directory: every table's files against the manifest its checkpoint holds and,
//! on request, its rows against the portal's own count.
//!
//! [`verify_dir`] reads no portal. For each table it loads the state, rebuilds from it the spec
//! the sink wrote with (the same [`DumpConfig`] path a dump takes, so names and the id column
//! cannot disagree) and hands both to [`iptvportal_sink::verify`] at full depth: names, sizes,
//! CRC-32s, Parquet footers. A state that does not load is that table's problem, not the others'.
//!
//! [`recount`] then asks the portal, for each file's id range, how many rows the dump's filter
//! selects there, and compares with the rows the manifest records. Where they differ it narrows
//! the difference down: the range is cut into [`SPLIT`] equal parts, the file is read once to
//! count its ids per part (only the id: one JSON key, one CSV field, one Parquet column, with
//! memory that does not grow with the file), the portal counts each part, and the parts that
//! differ are cut again, until a part is at most [`NARROW_ENOUGH`] ids wide or [`MAX_DEPTH`]
//! levels deep. At most [`SPLIT`] ranges are cut at each level, so a recount costs a bounded
//! number of requests and file reads however many rows changed.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use iptvportal_checkpoint::{CheckpointStore, DumpState, FileStore, LockMode};
use iptvportal_query::{Expr, Function, Operand, OrderBy, Q, Select};
use iptvportal_sink::{
    Compression, Depth, FileRecord, Format, IdRange, Problem, ProblemKind, SinkSpec,
};
use iptvportal_traverse::{RowSource, Strategy};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::{DumpConfig, Error};

/// Into how many equal parts a differing id range is cut.
pub const SPLIT: usize = 16;

/// A differing range at most this many ids wide is not cut further.
pub const NARROW_ENOUGH: u64 = 1000;

/// How many times a differing range is cut at most.
pub const MAX_DEPTH: usize = 4;

/// The read buffer of a recount's pass over a file.
const BUFFER: usize = 256 * 1024;

/// What a check found of one table, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableStatus {
    /// Complete, and every file is as its manifest says (and the portal agrees, if asked).
    Ok,
    /// Not complete, and what is committed holds.
    Incomplete,
    /// Something differs, or the table could not be checked at all.
    Problems,
}

impl TableStatus {
    /// The status as one word: `ok`, `incomplete` or `problems`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TableStatus::Ok => "ok",
            TableStatus::Incomplete => "incomplete",
            TableStatus::Problems => "problems",
        }
    }
}

impl fmt::Display for TableStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a table could not be checked.
#[derive(Debug)]
#[non_exhaustive]
pub enum Unverified {
    /// The directory holds no state of the table.
    Missing {
        /// The directory.
        dir: PathBuf,
    },
    /// The state does not load: edited, damaged, of a newer version, unreadable.
    Checkpoint(iptvportal_checkpoint::Error),
    /// Reading the output failed (an I/O error, not a difference).
    Output(iptvportal_sink::Error),
}

impl fmt::Display for Unverified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unverified::Missing { dir } => write!(f, "no checkpoint in {}", dir.display()),
            Unverified::Checkpoint(e) => write!(f, "{e}"),
            Unverified::Output(e) => write!(f, "its output could not be read: {e}"),
        }
    }
}

/// One count of the dump compared with the portal's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceCount {
    /// The file counted; `None` for the whole dump.
    pub file: Option<String>,
    /// The ids counted; `None` for every row the filter selects.
    pub ids: Option<IdRange>,
    /// The rows the dump holds there.
    pub dumped: u64,
    /// The rows the portal holds there.
    pub portal: u64,
}

/// A way the dump and the portal differ.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// Rows of a file's id range: the narrowest range found to differ.
    Range {
        /// The file's name in the directory.
        file: String,
        /// The ids.
        ids: IdRange,
        /// The rows the file holds there.
        dumped: u64,
        /// The rows the portal holds there.
        portal: u64,
    },
    /// The whole dump, whose rows are in no id order to split by.
    Table {
        /// The rows the dump holds.
        dumped: u64,
        /// The rows the portal holds.
        portal: u64,
    },
    /// Rows the portal holds outside every file's id range (a complete dump holds them all).
    Outside {
        /// How many.
        portal: u64,
    },
    /// The dump came from another portal than the one asked: nothing was counted.
    OtherPortal {
        /// The portal the checkpoint names.
        dumped_from: String,
        /// The portal asked.
        portal: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Range { file, ids, dumped, portal } => {
                write!(f, "ids {ids}: {} in {file}, {portal} on the portal", rows(*dumped))
            }
            Mismatch::Table { dumped, portal } => {
                write!(f, "{} in the dump, {portal} on the portal", rows(*dumped))
            }
            Mismatch::Outside { portal } => {
                write!(f, "{} on the portal lie outside the ids of the dump's files", rows(*portal))
            }
            Mismatch::OtherPortal { dumped_from, portal } => {
                write!(f, "it was dumped from {dumped_from}, not from {portal}: not recounted")
            }
        }
    }
}

/// Why a recount compared nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Uncounted {
    /// The dump is incomplete and its rows are in no id order: what it holds is no range of the
    /// table that the portal could count.
    Incomplete,
}

impl fmt::Display for Uncounted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uncounted::Incomplete => {
                f.write_str("an incomplete dump whose rows are not in id order cannot be recounted")
            }
        }
    }
}

/// What [`recount`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceReport {
    /// Every count compared: each file's id range, then (a complete dump) the whole dump.
    pub counts: Vec<SourceCount>,
    /// The differences, narrowest first found, in id order per file.
    pub mismatches: Vec<Mismatch>,
    /// Why nothing was compared, when nothing was.
    pub uncounted: Option<Uncounted>,
}

/// What a check found of one table.
#[derive(Debug)]
#[non_exhaustive]
pub struct TableReport {
    /// The table (`{table}/run-NNNNN` for a sync run).
    pub table: String,
    /// The run's number, when this is a run of a sync rather than a dumped table.
    pub run: Option<u32>,
    /// The directory checked.
    pub dir: PathBuf,
    /// Whether the checkpoint says the dump is complete.
    pub complete: bool,
    /// The rows the checkpoint says are committed.
    pub rows: u64,
    /// The output's format, when the state loaded.
    pub format: Option<Format>,
    /// The output's compression, when the state loaded.
    pub compression: Option<Compression>,
    /// The portal the dump came from, when the checkpoint names it.
    pub portal: Option<String>,
    /// The manifest: every committed file with its rows, bytes, CRC-32 and ids.
    pub files: Vec<FileRecord>,
    /// The state predates the manifest (format version 1): only names and sizes were checked.
    pub sizes_only: bool,
    /// Why the table could not be checked, if it could not.
    pub unverified: Option<Unverified>,
    /// Every way the files differ from the manifest, in file order.
    pub problems: Vec<Problem>,
    /// The recount on the portal, once [`recount`] ran.
    pub source: Option<SourceReport>,
    pub(crate) checked: Option<Box<Checked>>,
}

/// What a loaded state gives a recount.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) state: DumpState,
    pub(crate) spec: SinkSpec,
    /// Where the files are when they are objects in a bucket (`{table}/{name}`): a file whose
    /// ids a recount reads is downloaded into `spec.dir` for that, and removed after.
    pub(crate) remote: Option<std::sync::Arc<dyn iptvportal_store::Destination>>,
}

impl TableReport {
    /// A report of `table` in `dir` that found nothing yet: not complete, no rows, no problem.
    pub fn new(table: String, dir: &Path) -> TableReport {
        TableReport {
            table,
            run: None,
            dir: dir.to_owned(),
            complete: false,
            rows: 0,
            format: None,
            compression: None,
            portal: None,
            files: Vec::new(),
            sizes_only: false,
            unverified: None,
            problems: Vec::new(),
            source: None,
            checked: None,
        }
    }

    /// Records what `state`, the table's loaded checkpoint, says the output holds.
    pub(crate) fn describe(&mut self, state: &DumpState) {
        self.complete = state.is_complete;
        self.rows = state.dumped_rows;
        self.format = Some(state.shape.format);
        self.compression = Some(state.shape.compression);
        self.portal.clone_from(&state.shape.portal);
        self.files.clone_from(&state.sink.files);
        self.sizes_only = state.version < 2;
    }

    /// The table's status: problems over incomplete over ok.
    pub fn status(&self) -> TableStatus {
        let mismatched = self.source.as_ref().is_some_and(|s| !s.mismatches.is_empty());
        if self.unverified.is_some() || !self.problems.is_empty() || mismatched {
            TableStatus::Problems
        } else if self.complete {
            TableStatus::Ok
        } else {
            TableStatus::Incomplete
        }
    }

    /// How many files the checkpoint says are committed: the manifest's, or for a state without
    /// one, the text file or the closed Parquet parts.
    pub fn file_count(&self) -> usize {
        match &self.checked {
            Some(c) if self.sizes_only => match c.state.shape.format {
                Format::Parquet => c.state.sink.file_index as usize,
                _ => usize::from(c.state.sink.bytes > 0 || c.state.is_complete),
            },
            _ => self.files.len(),
        }
    }
}

/// Checks the dumps in `dir`: `tables` (each once, in the order given), or with none, every table
/// that has a state there. Each report says what was found; only a directory that cannot be
/// listed is an error. A missing directory holds no state: with no tables asked, the result is
/// empty.
pub async fn verify_dir(
    dir: &Path,
    tables: &[String],
) -> Result<Vec<TableReport>, iptvportal_checkpoint::Error> {
    let store = FileStore::new(dir);
    let loaded: Vec<(String, Result<Option<DumpState>, iptvportal_checkpoint::Error>)> =
        if tables.is_empty() {
            store.list().await?.into_iter().map(|(t, s)| (t, s.map(Some))).collect()
        } else {
            let mut seen = HashSet::new();
            let mut loaded = Vec::new();
            for table in tables.iter().filter(|t| seen.insert(t.as_str())) {
                // A name that cannot name a state file (`../x`) names no state: it is not read.
                let state = if names_a_file(table) { store.load(table).await } else { Ok(None) };
                loaded.push((table.clone(), state));
            }
            loaded
        };
    // Each table is checked holding its lock, as a writer would, so that no dump changes its
    // files halfway through the check; a table that a dump is writing now is not checked (its
    // files are moving), and says so. A directory where no lock can be taken (read-only) has no
    // writer either: it is checked as it is.
    let mut held = Vec::new();
    let mut loaded = loaded;
    for (table, state) in &mut loaded {
        match store.lock(table, LockMode::IfPresent).await {
            Ok(lock) => held.push(lock),
            Err(locked @ iptvportal_checkpoint::Error::Locked { .. }) => *state = Err(locked),
            Err(_) => {}
        }
    }
    let dir = dir.to_owned();
    // Checksums read every byte of the output: file work, off the async workers.
    let checked = tokio::task::spawn_blocking(move || {
        let reports = loaded.into_iter().map(|(table, state)| check(&dir, table, state)).collect();
        drop(held);
        reports
    })
    .await;
    match checked {
        Ok(reports) => Ok(reports),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn names_a_file(table: &str) -> bool {
    !table.is_empty() && !table.contains(['/', '\\']) && !table.starts_with('.')
}

/// Checks one table's output against its loaded state.
fn check(
    dir: &Path,
    table: String,
    loaded: Result<Option<DumpState>, iptvportal_checkpoint::Error>,
) -> TableReport {
    let mut report = TableReport::new(table, dir);
    let state = match loaded {
        Ok(Some(state)) => state,
        Ok(None) => {
            report.unverified = Some(Unverified::Missing { dir: dir.to_owned() });
            return report;
        }
        Err(e) => {
            report.unverified = Some(Unverified::Checkpoint(e));
            return report;
        }
    };
    let spec = sink_spec(dir, &state);
    report.describe(&state);
    let checked = iptvportal_sink::verify(&spec, &state.sink, state.is_complete, Depth::Full)
        .and_then(|mut problems| {
            // The table's files of another format: stale, whatever this output's state.
            let stale = iptvportal_sink::stale_outputs(&spec)?;
            problems.extend(stale.into_iter().map(|p| Problem::new(p, ProblemKind::Unlisted)));
            Ok(problems)
        });
    match checked {
        Ok(problems) => report.problems = problems,
        Err(e) => report.unverified = Some(Unverified::Output(e)),
    }
    report.checked = Some(Box::new(Checked { state, spec, remote: None }));
    report
}

/// The spec the dump wrote with: the state's format, compression, text parts and schema through
/// the dump's own [`DumpConfig::sink_spec`]. Parquet options stay at their defaults: they shape
/// the layout inside a part, never a file's name.
pub(crate) fn sink_spec(dir: &Path, state: &DumpState) -> SinkSpec {
    let mut config = DumpConfig::new(&state.table, dir).format(state.shape.format);
    if let Compression::Gzip { level } = state.shape.compression {
        config = config.compress(true).compression_level(level);
    }
    config.text_part_rows = state.shape.part_rows;
    config.sink_spec(state.schema.clone())
}

/// Recounts `report`'s table on the portal behind `source`, and records what it found in
/// `report.source`. `portal` is the identity of the portal asked (a client's URL without secrets,
/// or a name such as `demo`): a checkpoint naming another portal is reported and not recounted.
///
/// A table whose files differ from their manifest, or that could not be checked, is not
/// recounted: its files are not the dump's. Fails when the portal does (after the source's own
/// retries) or a file cannot be read.
pub async fn recount(
    report: &mut TableReport,
    source: &dyn RowSource,
    portal: Option<&str>,
) -> Result<(), Error> {
    let Some(checked) = report.checked.as_deref() else { return Ok(()) };
    if report.unverified.is_some() || !report.problems.is_empty() {
        return Ok(());
    }
    let found = recount_checked(checked, source, portal).await?;
    report.source = Some(found);
    Ok(())
}

async fn recount_checked(
    checked: &Checked,
    source: &dyn RowSource,
    portal: Option<&str>,
) -> Result<SourceReport, Error> {
    let (state, spec) = (&checked.state, &checked.spec);
    let mut out = SourceReport::default();
    if let (Some(from), Some(now)) = (&state.shape.portal, portal)
        && from != now
    {
        out.mismatches
            .push(Mismatch::OtherPortal { dumped_from: from.clone(), portal: now.to_owned() });
        return Ok(out);
    }
    let counter = Counter { source, table: &state.table, filter: filter(state)? };
    let whole = |portal| SourceCount { file: None, ids: None, dumped: state.dumped_rows, portal };
    match spec.id_column.as_deref().filter(|id| in_id_order(state, id)) {
        Some(id) => {
            let mut inside = 0;
            for record in &state.sink.files {
                let Some(ids) = record.ids else { continue };
                let portal = counter.count(Some((id, ids))).await?;
                inside += portal;
                out.counts.push(SourceCount {
                    file: Some(record.name.clone()),
                    ids: Some(ids),
                    dumped: record.rows,
                    portal,
                });
                if portal != record.rows {
                    let path = spec.dir.join(&record.name);
                    if let Some(dest) = &checked.remote {
                        download(dest.as_ref(), state, &record.name, &path).await?;
                    }
                    let target = Target { path: &path, record, spec, id };
                    let narrowed = narrow(&counter, &target, ids, portal).await;
                    if checked.remote.is_some() {
                        let _ = std::fs::remove_file(&path);
                    }
                    out.mismatches.extend(narrowed?);
                }
            }
            // A complete dump holds every row: any outside its files' ranges is missing from it.
            if state.is_complete {
                let portal = counter.count(None).await?;
                out.counts.push(whole(portal));
                if portal > inside {
                    out.mismatches.push(Mismatch::Outside { portal: portal - inside });
                }
            }
        }
        None if state.is_complete => {
            let portal = counter.count(None).await?;
            out.counts.push(whole(portal));
            if portal != state.dumped_rows {
                out.mismatches.push(Mismatch::Table { dumped: state.dumped_rows, portal });
            }
        }
        None => out.uncounted = Some(Uncounted::Incomplete),
    }
    Ok(out)
}

/// Downloads the object of `state`'s file `name` to `to`, for a recount to read.
async fn download(
    dest: &dyn iptvportal_store::Destination,
    state: &DumpState,
    name: &str,
    to: &Path,
) -> Result<(), Error> {
    let key = format!("{}/{name}", state.table);
    let failed = |reason: String| Error::Checkpoint {
        table: state.table.clone(),
        source: iptvportal_checkpoint::Error::Remote { reason },
    };
    match dest.download(&key, to).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(failed(format!("{}/{key} is gone since it was checked", dest.display()))),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// Whether the dump's rows are in order of `id` (either way), so that every file holds exactly
/// the rows of its id range: ID_RANGE always is; OFFSET when its order starts with the id (the
/// default, ascending id, is recorded as no order).
fn in_id_order(state: &DumpState, id: &str) -> bool {
    if state.shape.strategy == Strategy::IdRange {
        return true;
    }
    match state.shape.order_by.first() {
        None => true,
        Some(first) => OrderBy::parse(first)
            .is_ok_and(|order| order.column.table.is_none() && order.column.name == id),
    }
}

/// The dump's filter, from the JSONSQL text its state records.
fn filter(state: &DumpState) -> Result<Option<Expr>, Error> {
    Error::parse_filter(&state.table, state.shape.filter.as_deref())
}

/// Counts rows of one table on the portal, under the dump's filter.
pub(crate) struct Counter<'a> {
    pub(crate) source: &'a dyn RowSource,
    pub(crate) table: &'a str,
    pub(crate) filter: Option<Expr>,
}

impl Counter<'_> {
    /// The rows the filter selects, with `ids` of the id column only when given.
    pub(crate) async fn count(&self, ids: Option<(&str, IdRange)>) -> Result<u64, Error> {
        let what = match ids {
            Some((_, range)) => format!("counting rows of {} with ids {range}", self.table),
            None => format!("counting rows of {}", self.table),
        };
        let fetch = |source: iptvportal_traverse::Error| Error::Fetch {
            table: self.table.to_owned(),
            source: Box::new(source),
        };
        let query = |e: iptvportal_query::Error| fetch(e.into());
        let range = match ids {
            Some((column, range)) => Some(
                Q::gte(column, range.min).map_err(query)?
                    & Q::lte(column, range.max).map_err(query)?,
            ),
            None => None,
        };
        let condition = match (self.filter.clone().map(Q::from_expr), range) {
            (Some(filter), Some(range)) => Some(filter & range),
            (a, b) => a.or(b),
        };
        let mut select = Select::from(self.table)
            .map_err(query)?
            .data(vec![Operand::Function(Function::count_star())]);
        if let Some(condition) = condition {
            select = select.filter(condition.into_expr());
        }
        let rows = self.source.select(&select).await.map_err(|source| {
            fetch(iptvportal_traverse::Error::Source { what: what.clone(), source })
        })?;
        let Some(value) = rows.first().and_then(|row| row.first()) else {
            // No row at all can only mean nothing matched.
            return Ok(0);
        };
        let count = value.as_u64().or_else(|| value.as_str().and_then(|s| s.parse().ok()));
        count.ok_or_else(|| {
            fetch(iptvportal_traverse::Error::Unexpected {
                what,
                detail: format!("a count that is not a whole number: {value}"),
            })
        })
    }
}

/// One committed file whose ids a recount reads back.
struct Target<'a> {
    path: &'a Path,
    record: &'a FileRecord,
    spec: &'a SinkSpec,
    id: &'a str,
}

/// A range being narrowed, with its two counts.
#[derive(Debug, Clone, Copy)]
struct Counted {
    ids: IdRange,
    dumped: u64,
    portal: u64,
}

/// Narrows the difference in `ids` of `file` (which holds `file.record.rows` rows there, and the
/// portal `portal`) down to the narrowest ranges that differ, in id order.
async fn narrow(
    counter: &Counter<'_>,
    file: &Target<'_>,
    ids: IdRange,
    portal: u64,
) -> Result<Vec<Mismatch>, Error> {
    let mut found = Vec::new();
    let mut differing = vec![Counted { ids, dumped: file.record.rows, portal }];
    for depth in 0..=MAX_DEPTH {
        let mut to_cut = Vec::new();
        for range in differing.drain(..) {
            let narrow_enough = width(range.ids) <= u128::from(NARROW_ENOUGH);
            if depth == MAX_DEPTH || narrow_enough || to_cut.len() >= SPLIT {
                found.push(range);
            } else {
                to_cut.push(range);
            }
        }
        if to_cut.is_empty() {
            break;
        }
        let cuts: Vec<Vec<IdRange>> = to_cut.iter().map(|r| cut(r.ids)).collect();
        let dumped = count_in_file(file, &cuts.concat()).await?;
        let mut dumped = dumped.into_iter();
        for (parent, parts) in to_cut.into_iter().zip(cuts) {
            let before = differing.len();
            for (part, dumped) in parts.into_iter().zip(dumped.by_ref()) {
                let portal = counter.count(Some((file.id, part))).await?;
                if portal != dumped {
                    differing.push(Counted { ids: part, dumped, portal });
                }
            }
            // Every part agrees although the whole did not: the portal changed meanwhile, and
            // the whole range is the narrowest there is to report.
            if differing.len() == before {
                found.push(parent);
            }
        }
    }
    found.sort_by_key(|r| r.ids.min);
    Ok(found
        .into_iter()
        .map(|r| Mismatch::Range {
            file: file.record.name.clone(),
            ids: r.ids,
            dumped: r.dumped,
            portal: r.portal,
        })
        .collect())
}

/// How many ids `range` spans.
pub(crate) fn width(range: IdRange) -> u128 {
    u128::from(range.max.abs_diff(range.min)) + 1
}

/// `range` cut into [`SPLIT`] equal parts (fewer when it holds fewer ids), in order. Part `k`
/// starts `k / parts` of the way in, so every part holds at least one id.
pub(crate) fn cut(range: IdRange) -> Vec<IdRange> {
    let width = width(range);
    let parts = width.min(SPLIT as u128);
    let start = |k: u128| {
        i128::from(range.min) + i128::try_from(k * width / parts).expect("at most 2^64 ids")
    };
    let id = |at: i128| i64::try_from(at).expect("inside the range");
    (0..parts).map(|k| IdRange { min: id(start(k)), max: id(start(k + 1) - 1) }).collect()
}

/// How many of `file`'s ids fall in each of `parts` (sorted, disjoint), from one read of it.
async fn count_in_file(file: &Target<'_>, parts: &[IdRange]) -> Result<Vec<u64>, Error> {
    let (path, spec, id) = (file.path.to_owned(), file.spec.clone(), file.id.to_owned());
    let (bytes, parts_owned) = (file.record.bytes, parts.to_vec());
    let table = spec.table.clone();
    let counted = tokio::task::spawn_blocking(move || {
        let mut counts = vec![0; parts_owned.len()];
        let mut tally = |value: i64| {
            let at = parts_owned.partition_point(|r| r.max < value);
            if parts_owned.get(at).is_some_and(|r| r.min <= value) {
                counts[at] += 1;
            }
        };
        read_ids(&path, &spec, &id, bytes, &mut tally).map(|()| counts)
    })
    .await;
    match counted {
        Ok(Ok(counts)) => Ok(counts),
        Ok(Err(source)) => Err(Error::Sink { table, source: Box::new(source) }),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Calls `each` with every id in the first `bytes` bytes of `path` (its committed part), read
/// as `spec` wrote it. Memory stays flat: a line, a CSV record or a Parquet batch of one column
/// at a time.
pub(crate) fn read_ids(
    path: &Path,
    spec: &SinkSpec,
    id: &str,
    bytes: u64,
    each: &mut dyn FnMut(i64),
) -> Result<(), iptvportal_sink::Error> {
    let io = |e: io::Error| iptvportal_sink::Error::Io { path: path.to_owned(), source: e };
    let bad = |detail: String| io(io::Error::new(io::ErrorKind::InvalidData, detail));
    let file = File::open(path).map_err(io)?;
    if spec.format == Format::Parquet {
        return read_parquet_ids(file, id, each).map_err(bad);
    }
    let committed = BufReader::with_capacity(BUFFER, file.take(bytes));
    let mut reader: Box<dyn BufRead> = match spec.compression {
        Compression::Gzip { .. } => Box::new(BufReader::with_capacity(
            BUFFER,
            flate2::bufread::MultiGzDecoder::new(committed),
        )),
        _ => Box::new(committed),
    };
    if spec.format == Format::Csv {
        return read_csv_ids(reader, id, each).map_err(|e| match e {
            CsvFailure::Io(e) => io(e),
            CsvFailure::Data(detail) => bad(detail),
        });
    }
    // JSONL, or JSON: `[` before the first object, `,` after every one but the last, `]` after
    // it, each object on a line of its own.
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            return Ok(());
        }
        number += 1;
        let mut text = line.trim_ascii();
        text = text.strip_prefix(b"[").unwrap_or(text).trim_ascii();
        text = text.strip_suffix(b"]").unwrap_or(text).trim_ascii();
        text = text.strip_suffix(b",").unwrap_or(text).trim_ascii();
        if text.is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_slice(text);
        let value = IdOf(id)
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| bad(format!("line {number}: {e}")))?;
        if let Some(value) = value {
            each(value);
        }
    }
}

enum CsvFailure {
    Io(io::Error),
    Data(String),
}

fn read_csv_ids(reader: impl Read, id: &str, each: &mut dyn FnMut(i64)) -> Result<(), CsvFailure> {
    let failure = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(e) => CsvFailure::Io(e),
        other => CsvFailure::Data(format!("{other:?}")),
    };
    let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
    let header = csv.byte_headers().map_err(failure)?;
    let Some(column) = header.iter().position(|name| name == id.as_bytes()) else {
        return Err(CsvFailure::Data(format!("its header has no column {id}")));
    };
    let mut record = csv::ByteRecord::new();
    while csv.read_byte_record(&mut record).map_err(failure)? {
        let value = record.get(column).and_then(|f| std::str::from_utf8(f).ok());
        // An empty field is a null: no id.
        if let Some(value) = value.and_then(|v| v.parse().ok()) {
            each(value);
        }
    }
    Ok(())
}

fn read_parquet_ids(file: File, id: &str, each: &mut dyn FnMut(i64)) -> Result<(), String> {
    use arrow_array::{Array, Int64Array};
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let schema = builder.parquet_schema();
    let Some(leaf) = schema.columns().iter().position(|c| c.name() == id) else {
        return Err(format!("it has no column {id}"));
    };
    let mask = ProjectionMask::leaves(schema, [leaf]);
    let reader =
        builder.with_projection(mask).with_batch_size(8192).build().map_err(|e| e.to_string())?;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let Some(ids) = batch.column(0).as_any().downcast_ref::<Int64Array>() else {
            return Err(format!("its column {id} does not hold integers"));
        };
        if ids.null_count() == 0 {
            ids.values().iter().for_each(|&v| each(v));
        } else {
            ids.iter().flatten().for_each(&mut *each);
        }
    }
    Ok(())
}

/// Reads one JSON object for its integer under key `.0` (`None` when absent, null or not an
/// integer), skipping every other value without building it.
struct IdOf<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for IdOf<'_> {
    type Value = Option<i64>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for IdOf<'_> {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<i64>, A::Error> {
        let mut id = None;
        while let Some(is_id) = map.next_key_seed(IsKey(self.0))? {
            if is_id {
                id = map.next_value::<Value>()?.as_i64();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(id)
    }
}

/// Whether a key is `.0`, compared without keeping it.
struct IsKey<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for IsKey<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for IsKey<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// `n rows`, or `1 row`.
fn rows(n: u64) -> String {
    if n == 1 { "1 row".to_owned() } else { format!("{n} rows") }
}

#[cfg(test)]
mod tests {
    use iptvportal_sink::{ColumnSpec, ColumnType, Schema, SinkPosition};
    use iptvportal_testkit::source::FakeSource;
    use serde_json::json;

    use super::*;

    fn schema() -> Schema {
        Schema {
            columns: vec![
                ColumnSpec::new("name", ColumnType::Text, true),
                ColumnSpec::new("id", ColumnType::Integer, false),
            ],
        }
    }

    /// Writes `ids` through the real sink as `format` and returns its spec and final position.
    fn write(
        dir: &Path,
        format: Format,
        gzip: bool,
        ids: impl IntoIterator<Item = i64>,
    ) -> (SinkSpec, SinkPosition) {
        let mut config = DumpConfig::new("t", dir).format(format).compress(gzip);
        config.parquet.part_rows = u64::MAX;
        let spec = config.sink_spec(schema()).with_id_column(Some("id"));
        let mut sink = iptvportal_sink::open(&spec, None).unwrap();
        let rows: Vec<Vec<Value>> =
            ids.into_iter().map(|id| vec![json!(format!("n\n{id},\"")), json!(id)]).collect();
        for chunk in rows.chunks(700) {
            sink.write_chunk(chunk).unwrap();
            sink.commit().unwrap();
        }
        (spec, sink.finish().unwrap())
    }

    #[test]
    fn ranges_are_cut_into_sixteen_parts_that_cover_them() {
        let r = |min, max| IdRange { min, max };
        let parts = cut(r(0, 99));
        assert_eq!(parts.len(), SPLIT);
        assert_eq!((parts[0], parts[15]), (r(0, 5), r(93, 99)));
        assert!(parts.windows(2).all(|w| w[0].max + 1 == w[1].min));
        assert_eq!(cut(r(5, 7)), [r(5, 5), r(6, 6), r(7, 7)]);
        assert_eq!(cut(r(-3, -3)), [r(-3, -3)]);
        let all = cut(r(i64::MIN, i64::MAX));
        assert_eq!((all[0].min, all[15].max), (i64::MIN, i64::MAX));
        assert_eq!(width(all[0]), 1 << 60);
    }

    #[test]
    fn ids_are_read_back_from_every_format() {
        for (format, gzip) in [
            (Format::Jsonl, false),
            (Format::Json, false),
            (Format::Json, true),
            (Format::Csv, true),
            (Format::Csv, false),
            (Format::Parquet, false),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let ids: Vec<i64> = (1..=2000).map(|i| i * 3 - 1000).collect();
            let (spec, position) = write(dir.path(), format, gzip, ids.clone());
            let record = &position.files[0];
            assert_eq!(record.ids, Some(IdRange { min: -997, max: 5000 }), "{format}");
            let mut read = Vec::new();
            let path = dir.path().join(&record.name);
            read_ids(&path, &spec, "id", record.bytes, &mut |id| read.push(id)).unwrap();
            assert_eq!(read, ids, "{format} gzip {gzip}");
        }
    }

    #[test]
    fn only_the_committed_bytes_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, position) = write(dir.path(), Format::Jsonl, true, 1..=100);
        let path = dir.path().join(&position.files[0].name);
        // An unfinished chunk after the committed length is not the dump's.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut file, b"garbage that is not gzip").unwrap();
        let mut read = 0;
        read_ids(&path, &spec, "id", position.files[0].bytes, &mut |_| read += 1).unwrap();
        assert_eq!(read, 100);
    }

    #[tokio::test]
    async fn a_difference_is_narrowed_to_the_ranges_that_hold_it() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, position) = write(dir.path(), Format::Jsonl, false, 1..=50_000);
        let lost = [12_345, 12_346, 40_000];
        let source = FakeSource::with_ids((1..=50_000).filter(|id| !lost.contains(id)));
        let counter = Counter { source: &source, table: "t", filter: None };
        let record = &position.files[0];
        let path = dir.path().join(&record.name);
        let target = Target { path: &path, record, spec: &spec, id: "id" };
        let whole = record.ids.unwrap();
        let found = narrow(&counter, &target, whole, 49_997).await.unwrap();
        let ranges: Vec<(IdRange, u64, u64)> = found
            .iter()
            .map(|m| match m {
                Mismatch::Range { ids, dumped, portal, file } => {
                    assert_eq!(file, "t.jsonl");
                    (*ids, *dumped, *portal)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        // Two levels: 50,000 ids, then 3,125 a part, then 195 or 196.
        assert_eq!(ranges.len(), 2, "{ranges:?}");
        for (ids, dumped, portal) in &ranges {
            assert!(width(*ids) <= 196, "{ids}");
            let inside = lost.iter().filter(|l| (ids.min..=ids.max).contains(l)).count() as u64;
            assert_eq!(dumped - portal, inside, "{ids}");
            assert_eq!(u128::from(*dumped), width(*ids));
        }
        assert_eq!(
            found[0].to_string(),
            format!("ids {}: 196 rows in t.jsonl, 194 on the portal", ranges[0].0)
        );
        // One count for each of 16 parts of the whole, then of 16 parts of each of two.
        assert_eq!(source.requests().len(), 16 * 3);
    }

    #[tokio::test]
    async fn a_difference_everywhere_costs_a_bounded_number_of_requests() {
        let dir = tempfile::tempdir().unwrap();
        // 200,000,000 ids wide: four levels of cuts still leave parts of 3,000 ids.
        let ids = (1..=20_000).map(|i| i * 10_000);
        let (spec, position) = write(dir.path(), Format::Csv, true, ids.clone());
        // Every 7th row is gone: every range of every level differs.
        let source = FakeSource::with_ids(ids.filter(|id| id / 10_000 % 7 != 0));
        let counter = Counter { source: &source, table: "t", filter: None };
        let record = &position.files[0];
        let path = dir.path().join(&record.name);
        let target = Target { path: &path, record, spec: &spec, id: "id" };
        let found =
            narrow(&counter, &target, record.ids.unwrap(), 20_000 - 20_000 / 7).await.unwrap();
        // 16 parts of the whole, then 16 of each of at most 16 at every further level.
        assert_eq!(source.requests().len(), 16 + 3 * 16 * 16);
        assert!(
            found.iter().any(|m| matches!(m, Mismatch::Range { ids, .. } if width(*ids) > 1000))
        );
        let lost: u64 = found
            .iter()
            .map(|m| match m {
                Mismatch::Range { dumped, portal, .. } => dumped - portal,
                other => panic!("{other:?}"),
            })
            .sum();
        assert_eq!(lost, 20_000 / 7, "the ranges reported hold every lost row");
    }
}

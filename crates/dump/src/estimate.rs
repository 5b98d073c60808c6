//! What a dump would do, found without doing it: the strategy, the rows, the requests, the output's
//! size and the time, from the checkpoint, a count and one measured chunk (`iptvportal plan`).
//!
//! Nothing is written where the dump writes: the checkpoint is read, never locked or saved, and
//! the probe chunk is encoded by the real sink in a temporary directory that is removed before
//! [`estimate`] returns. So the bytes are the sink's own, not a guess per format.
//!
//! The time is a model over what was measured:
//! - every page of rows costs what the probe page cost (fetched twice, the faster taken: the
//!   first read pays for cold caches once); for OFFSET another probe fetches the
//!   deepest page, and the cost of the pages in between is taken as growing linearly from the
//!   first to the deepest (the portal skips every row before a page, so cost grows with depth);
//! - a sequential traversal fetches the next page while the sink writes this one, so each page
//!   costs the larger of its fetch and its write (encoding, commit with `fsync`, checkpoint save,
//!   all measured on the probe chunk);
//! - parallel ID_RANGE keeps `max_parallel` pages in flight: the probe fetches that many pages at
//!   once, and a page costs the larger of its share of their time and its write, after the first
//!   page of the id scan and one full fetch that fill the pipeline (what the portal and this
//!   machine really overlap is measured, not assumed);
//!   its id scan (one request at a time, beside the row requests) is taken as costing a row
//!   page each and bounds the time from below;
//! - the count, measured, goes first.
//!
//! The portal's own limits are not modelled (a portal that serves fewer requests at once than
//! asked, a table that changes meanwhile).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use iptvportal_checkpoint::{CheckpointStore, DumpState, FileStore};
use iptvportal_query::{Function, Operand, Select};
use iptvportal_sink::{Depth, SinkPosition};
use iptvportal_traverse::{Cursor, RowSource, Strategy, Traversal, TraversalSpec};
use serde_json::Value;

use crate::plan::{Plan, Start};
use crate::source::Portal;
use crate::writer::blocking;
use crate::{DumpConfig, Error};

/// What a dump of one table would do, as [`estimate`] found it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Estimate {
    /// The table.
    pub table: String,
    /// The strategy the run uses: `auto` resolved as the dump resolves it.
    pub strategy: Strategy,
    /// The rows of the table under the filter: those a resume has done plus those it has left.
    pub rows: u64,
    /// The smallest and largest id under the filter, for a table with an id column.
    pub ids: Option<(i64, i64)>,
    /// Where the run would start.
    pub start: StartPoint,
    /// The rows the run would fetch.
    pub to_fetch: u64,
    /// The requests the run would send after its count: pages of rows, and for parallel
    /// ID_RANGE the pages of its id scan.
    pub requests: u64,
    /// The size of the finished output, in bytes.
    pub bytes: u64,
    /// How long the run would take.
    pub duration: Duration,
    /// What was measured; `None` when the run has nothing to fetch.
    pub probe: Option<Probe>,
    /// How long the count took (a run with more tables than it runs at once counts them all
    /// first, to start the largest first).
    pub count: Duration,
    /// The work `dump_many` orders tables by.
    pub(crate) work: u64,
}

/// Where a run would start, from the checkpoint in the output directory.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartPoint {
    /// No checkpoint (or one that is not read: no resume, a resume offset): a fresh output.
    Fresh,
    /// The checkpoint is continued after `rows` rows, at `cursor`.
    Resume {
        /// Rows done.
        rows: u64,
        /// Where the traversal continues.
        cursor: Cursor,
    },
    /// The checkpoint says the output is complete, and its files hold, down to their checksums.
    Complete {
        /// Rows in the output.
        rows: u64,
        /// Bytes of its files.
        bytes: u64,
    },
    /// The run would refuse the checkpoint: the error it would stop with. The numbers of the
    /// estimate are a fresh run's (what a reset would start).
    Refused(Error),
}

/// The measurements an estimate is made of.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Probe {
    /// Rows of the probe page: a chunk, or fewer at the end of the table.
    pub rows: u64,
    /// How long the first page took to fetch (the faster of two fetches).
    pub fetch: Duration,
    /// OFFSET with more than one page: how long the deepest page took.
    pub last_fetch: Option<Duration>,
    /// Parallel ID_RANGE with more than one page: that many pages fetched at once, and how long
    /// they took together.
    pub at_once: Option<(u64, Duration)>,
    /// How long the sink took to encode and commit the probe page, and the checkpoint to save.
    pub write: Duration,
    /// Bytes of a finished output holding the probe rows alone.
    pub bytes: u64,
    /// Bytes of a finished output holding no row (a CSV header, `[]`, a Parquet footer).
    pub empty_bytes: u64,
}

/// Estimates a dump of `config` from `portal`: reads the checkpoint as the dump would (without
/// locking it), counts the rows and reads the id range, fetches one page (two for OFFSET) and
/// encodes it with the sink in a temporary directory. Writes nothing in the output directory
/// and creates no directory there.
///
/// Fails as the dump would on a configuration it refuses and on a table or column the portal
/// refuses; a checkpoint the dump would refuse is [`StartPoint::Refused`], not a failure.
pub async fn estimate(portal: &dyn Portal, config: &DumpConfig) -> Result<Estimate, Error> {
    config.validate()?;
    let (start, plan) = start_point(config, portal.identity()).await?;

    let source = portal.source(config, Arc::new(|| {}));
    let fetch_error =
        |source| Error::Fetch { table: config.table.clone(), source: Box::new(source) };
    // The count a run starts with, from the same cursor (sequentially: a parallel traversal
    // would send its first id scan page alongside).
    let counted = Instant::now();
    let traversal =
        Traversal::start(Arc::clone(&source), plan.spec.clone().max_parallel(1), plan.cursor)
            .await
            .map_err(fetch_error)?;
    let remaining = traversal.remaining_rows();
    drop(traversal);
    let count = counted.elapsed();
    let done = match &start {
        StartPoint::Resume { rows, .. } => *rows,
        _ => 0,
    };
    let rows = done + remaining;
    let ids = id_range(source.as_ref(), &plan.spec, config).await?;
    let to_fetch = match start {
        StartPoint::Complete { .. } => 0,
        _ => remaining,
    };
    let mut estimate = Estimate {
        table: config.table.clone(),
        strategy: plan.spec.strategy,
        rows,
        ids,
        start,
        to_fetch,
        requests: 0,
        bytes: 0,
        duration: Duration::ZERO,
        probe: None,
        count,
        work: crate::service::work(config, to_fetch),
    };
    if to_fetch == 0 {
        estimate.bytes = match &estimate.start {
            StartPoint::Complete { bytes, .. } => *bytes,
            _ => encode(config, &plan, &[], &config.table).await?.empty_bytes,
        };
        return Ok(estimate);
    }

    let spec = &plan.spec;
    let (page, fetch, last_fetch, at_once) =
        fetch_probes(&source, spec, plan.cursor, to_fetch).await.map_err(fetch_error)?;
    let encoded = encode(config, &plan, &page, &config.table).await?;
    let probe = Probe {
        rows: page.len() as u64,
        fetch,
        last_fetch,
        at_once,
        write: encoded.write,
        bytes: encoded.bytes,
        empty_bytes: encoded.empty_bytes,
    };
    estimate.requests = spec.page_requests(to_fetch) + spec.scan_requests(to_fetch);
    estimate.bytes = output_bytes(&probe, rows);
    estimate.duration = count + traversal_time(spec, &probe, to_fetch);
    estimate.probe = Some(probe);
    Ok(estimate)
}

/// Where a run of `config` starts, read as the dump reads it (the checkpoint unlocked, the files
/// checked as the run checks them), and the plan the numbers are made from: the run's, or for a
/// checkpoint that is complete or refused, a fresh run's.
async fn start_point(
    config: &DumpConfig,
    identity: Option<String>,
) -> Result<(StartPoint, Plan), Error> {
    let store = FileStore::new(&config.output_dir);
    let fresh = || async {
        let config = config.clone().resume(false);
        match crate::plan::plan(&config, &store, identity.clone()).await? {
            Start::Run(plan) => Ok(*plan),
            // Not reading the checkpoint, a plan never finds it complete.
            Start::AlreadyComplete(_) => unreachable!("a plan without resume reads no checkpoint"),
        }
    };
    Ok(match crate::plan::plan(config, &store, identity.clone()).await {
        Ok(Start::AlreadyComplete(state)) => {
            let start = match check_complete(config, &state).await {
                Ok(()) => StartPoint::Complete {
                    rows: state.dumped_rows,
                    bytes: state.sink.files.iter().map(|f| f.bytes).sum(),
                },
                Err(e) => StartPoint::Refused(e),
            };
            (start, fresh().await?)
        }
        Ok(Start::Run(plan)) => match &plan.resume {
            None => (StartPoint::Fresh, *plan),
            Some(state) => match check_resumable(config, state).await {
                Ok(()) => {
                    (StartPoint::Resume { rows: state.dumped_rows, cursor: plan.cursor }, *plan)
                }
                Err(e) => (StartPoint::Refused(e), fresh().await?),
            },
        },
        Err(e @ (Error::ShapeMismatch { .. } | Error::Checkpoint { .. })) => {
            (StartPoint::Refused(e), fresh().await?)
        }
        Err(e) => return Err(e),
    })
}

/// The first page's rows and fetch time, the deepest page's fetch time, and the pages fetched at
/// once with their time.
type Fetched = (Vec<Vec<Value>>, Duration, Option<Duration>, Option<(u64, Duration)>);

/// The fetches an estimate measures, from `cursor` with `to_fetch` rows left: the first page
/// (its rows and the faster of two fetches), for OFFSET the deepest page, for parallel ID_RANGE
/// that many pages at once.
async fn fetch_probes(
    source: &Arc<dyn RowSource>,
    spec: &TraversalSpec,
    cursor: Cursor,
    to_fetch: u64,
) -> Result<Fetched, iptvportal_traverse::Error> {
    // Fetched twice, the faster taken: the first read of a table's rows pays for cold caches on
    // both ends (measured: 20-25 % more than the pages that follow), which a run pays once.
    let mut fetch = Duration::MAX;
    let mut page = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        page = Traversal::first_page(source.as_ref(), spec, cursor).await?;
        fetch = fetch.min(started.elapsed());
    }
    let last_fetch = match cursor {
        Cursor::Offset { offset } if to_fetch > spec.chunk_size => {
            let deepest = offset + (to_fetch - 1) / spec.chunk_size * spec.chunk_size;
            let started = Instant::now();
            Traversal::first_page(source.as_ref(), spec, Cursor::Offset { offset: deepest })
                .await?;
            Some(started.elapsed())
        }
        _ => None,
    };
    // Parallel ID_RANGE: as many pages at once as the run keeps in flight, so that what the
    // portal and this machine overlap is measured rather than assumed.
    let pages = spec.page_requests(to_fetch);
    let at_once = match spec.strategy {
        Strategy::IdRange if spec.max_parallel > 1 && pages > 1 => {
            let n = u64::try_from(spec.max_parallel).unwrap_or(u64::MAX).min(pages);
            let mut requests = tokio::task::JoinSet::new();
            let started = Instant::now();
            for _ in 0..n {
                let (source, spec) = (Arc::clone(source), spec.clone());
                requests.spawn(async move {
                    Traversal::first_page(source.as_ref(), &spec, cursor).await
                });
            }
            while let Some(joined) = requests.join_next().await {
                joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
            }
            Some((n, started.elapsed()))
        }
        _ => None,
    };
    Ok((page, fetch, last_fetch, at_once))
}

/// How long a run of `estimates` takes with `jobs` tables at once, as `dump_many` runs them: in
/// the order given, or, when they cannot all run at once, after counting them all (at once) by
/// most work first; each table starts when one before it ends.
pub fn total_duration<'a>(
    estimates: impl IntoIterator<Item = &'a Estimate>,
    jobs: usize,
) -> Duration {
    let estimates: Vec<&Estimate> = estimates.into_iter().collect();
    let jobs = jobs.clamp(1, estimates.len().max(1));
    let queued = estimates.len() > jobs;
    let order: Vec<usize> = if queued {
        let sizes = estimates.iter().enumerate();
        crate::service::largest_first(
            sizes.map(|(i, e)| (i, e.work, e.strategy == Strategy::Offset)).collect(),
            jobs,
        )
    } else {
        (0..estimates.len()).collect()
    };
    let counting = if queued {
        estimates.iter().map(|e| e.count).max().unwrap_or_default()
    } else {
        Duration::ZERO
    };
    let mut slots = vec![counting; jobs];
    for index in order {
        if let Some(earliest) = slots.iter_mut().min() {
            *earliest += estimates[index].duration;
        }
    }
    slots.into_iter().max().unwrap_or_default()
}

/// The size of the finished output of `rows` rows: the empty output's, plus the probe's bytes per
/// row for every row.
fn output_bytes(probe: &Probe, rows: u64) -> u64 {
    if probe.rows == 0 {
        return probe.empty_bytes;
    }
    let per_row = probe.bytes.saturating_sub(probe.empty_bytes) as f64 / probe.rows as f64;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a non-negative estimate of bytes, rounded"
    )]
    let body = (per_row * rows as f64).round() as u64;
    probe.empty_bytes + body
}

/// The model of the module's docs: the traversal of `rows` rows after the count.
fn traversal_time(spec: &TraversalSpec, probe: &Probe, rows: u64) -> Duration {
    let pages = spec.page_requests(rows);
    // The write of a page, scaled from the probe's rows to a chunk's (a short probe page is a
    // table smaller than a chunk: one page, written as it was measured).
    let write = if probe.rows == 0 {
        probe.write
    } else {
        probe.write.mul_f64(spec.chunk_size.min(rows).max(1) as f64 / probe.rows as f64)
    };
    let first = probe.fetch;
    let last = probe.last_fetch.unwrap_or(first);
    let fetch = |page: u64| {
        if pages <= 1 {
            first
        } else {
            let at = page as f64 / (pages - 1) as f64;
            first.mul_f64(1.0 - at) + last.mul_f64(at)
        }
    };
    if spec.strategy == Strategy::IdRange && spec.max_parallel > 1 {
        // A page's share of the pages fetched at once; without that measurement (a single page),
        // the fetch divided by the parallelism.
        let share = match probe.at_once {
            Some((n, took)) if n > 0 => took.div_f64(n as f64),
            _ => first.div_f64(spec.max_parallel as f64),
        };
        // The first ranges wait for the first page of the id scan, taken as costing a page.
        let rows_time = first * 2 + share.max(write).mul_f64(pages.saturating_sub(1) as f64);
        let scan_time = first.mul_f64(spec.scan_requests(rows) as f64);
        return rows_time.max(scan_time);
    }
    (0..pages).map(|page| fetch(page).max(write)).sum()
}

/// The id range under the config's filter, for a table whose id column the catalog knows or
/// that is walked by id.
async fn id_range(
    source: &dyn RowSource,
    spec: &TraversalSpec,
    config: &DumpConfig,
) -> Result<Option<(i64, i64)>, Error> {
    let known = iptvportal_catalog::table(&config.table).and_then(|t| t.id_column).is_some();
    if !known && spec.strategy != Strategy::IdRange {
        return Ok(None);
    }
    let what = format!("reading the id range of {}", config.table);
    let fetch_error = |source: iptvportal_traverse::Error| Error::Fetch {
        table: config.table.clone(),
        source: Box::new(source),
    };
    let query_error = |e: iptvportal_query::Error| fetch_error(e.into());
    let call = |name: &str| -> Result<Operand, Error> {
        let column = Operand::column(spec.id_column.as_str()).map_err(query_error)?;
        Ok(Operand::Function(Function::new(name, vec![column]).map_err(query_error)?))
    };
    let mut select = Select::from(config.table.as_str())
        .map_err(query_error)?
        .data(vec![call("min")?, call("max")?]);
    select.where_.clone_from(&spec.filter);
    let rows = source.select(&select).await.map_err(|source| {
        fetch_error(iptvportal_traverse::Error::Source { what: what.clone(), source })
    })?;
    match rows.first().map(Vec::as_slice) {
        None | Some([Value::Null, Value::Null]) => Ok(None),
        Some([min, max]) => match (min.as_i64(), max.as_i64()) {
            (Some(min), Some(max)) => Ok(Some((min, max))),
            _ => Err(fetch_error(iptvportal_traverse::Error::Unexpected {
                what,
                detail: format!("expected two integers, got {min} and {max}"),
            })),
        },
        Some(other) => Err(fetch_error(iptvportal_traverse::Error::Unexpected {
            what,
            detail: format!("expected [[min, max]], got {}", Value::from(other.to_vec())),
        })),
    }
}

/// What the dump checks of a complete output before it says so: every file, down to its CRC-32.
async fn check_complete(config: &DumpConfig, state: &DumpState) -> Result<(), Error> {
    let spec = config.sink_spec(state.schema.clone());
    let position = state.sink.clone();
    blocking(move || iptvportal_sink::check_outputs(&spec, &position, true, Depth::Full))
        .await
        .map_err(|source| Error::Sink { table: config.table.clone(), source: Box::new(source) })
}

/// What the dump checks of an output before it continues it: every file the manifest names, at
/// its size (a state that never committed holds nothing to check).
async fn check_resumable(config: &DumpConfig, state: &DumpState) -> Result<(), Error> {
    if state.sink == SinkPosition::default() || state.schema.columns.is_empty() {
        return Ok(());
    }
    let spec = config.sink_spec(state.schema.clone());
    let position = state.sink.clone();
    blocking(move || iptvportal_sink::check_outputs(&spec, &position, false, Depth::Sizes))
        .await
        .map_err(|source| Error::Sink { table: config.table.clone(), source: Box::new(source) })
}

/// What encoding the probe page cost and weighed.
struct Encoded {
    write: Duration,
    bytes: u64,
    empty_bytes: u64,
}

/// A fresh `.iptvportal-plan-*` directory on the disk the dump would write to, so that the
/// commit's `fsync`s are timed where the dump's will be (`/tmp` is often a tmpfs, where an
/// `fsync` costs nothing): in `out` when it exists, else in its nearest existing ancestor, which
/// `--out` is created under. Where none of these takes a directory (read-only), the system's
/// temporary directory. `out` itself is never created.
fn scratch_dir(
    out: &std::path::Path,
) -> Result<tempfile::TempDir, (std::path::PathBuf, std::io::Error)> {
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix(".iptvportal-plan-");
        b
    };
    // A relative path's last ancestor is "", the current directory.
    let on_its_disk = out
        .ancestors()
        .map(|a| if a.as_os_str().is_empty() { std::path::Path::new(".") } else { a })
        .find(|a| a.is_dir());
    if let Some(dir) = on_its_disk
        && let Ok(temp) = builder().tempdir_in(dir)
    {
        return Ok(temp);
    }
    builder().tempdir().map_err(|e| (std::env::temp_dir(), e))
}

/// Encodes `rows` with the run's sink (format, compression, schema, Parquet layout) in a fresh
/// temporary directory, commits, saves a checkpoint beside it as the run would after the chunk,
/// and finishes; and finishes an empty output beside it. The directory is removed on return.
async fn encode(
    config: &DumpConfig,
    plan: &Plan,
    rows: &[Vec<Value>],
    table: &str,
) -> Result<Encoded, Error> {
    let temp = scratch_dir(&config.output_dir).map_err(|(path, e)| Error::Sink {
        table: table.to_owned(),
        source: Box::new(iptvportal_sink::Error::Io { path, source: e }),
    })?;
    let sink_error = |source| Error::Sink { table: table.to_owned(), source: Box::new(source) };
    let schema = plan.schema.clone().unwrap_or_else(|| plan.infer_schema(rows));
    let at = |name: &str| -> Result<DumpConfig, Error> {
        let dir = temp.path().join(name);
        std::fs::create_dir(&dir)
            .map_err(|e| sink_error(iptvportal_sink::Error::Io { path: dir.clone(), source: e }))?;
        let mut probe = config.clone();
        probe.output_dir = dir;
        Ok(probe)
    };
    let (empty, full) = (at("empty")?, at("probe")?);
    let empty_spec = empty.sink_spec(schema.clone());
    let full_spec = full.sink_spec(schema);
    let owned = rows.to_vec();
    let (write, position) = blocking(move || {
        let sink = iptvportal_sink::open(&empty_spec, None)?;
        let empty = sink.finish()?;
        // Opened once per run: not part of a chunk's cost.
        let mut sink = iptvportal_sink::open(&full_spec, None)?;
        let started = Instant::now();
        sink.write_chunk(&owned)?;
        let committed = sink.commit()?;
        let write = started.elapsed();
        let full = sink.finish()?;
        Ok((write, (empty, full, committed)))
    })
    .await
    .map_err(sink_error)?;
    let (empty_position, full_position, committed) = position;
    // The checkpoint the run saves after each chunk, with this chunk's position.
    let store = FileStore::new(&full.output_dir);
    let mut state = DumpState::fresh(table, plan.cursor, SystemTime::now(), plan.shape.clone());
    if let Some(position) = committed {
        state.record_commit(position, plan.cursor, 1);
    }
    let started = Instant::now();
    store
        .save(&state)
        .await
        .map_err(|source| Error::Checkpoint { table: table.to_owned(), source })?;
    let write = write + started.elapsed();
    let size = |p: &SinkPosition| p.files.iter().map(|f| f.bytes).sum::<u64>();
    let encoded =
        Encoded { write, bytes: size(&full_position), empty_bytes: size(&empty_position) };
    drop(temp);
    Ok(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(work: u64, seconds: u64, count_ms: u64) -> Estimate {
        Estimate {
            table: "t".into(),
            strategy: Strategy::Offset,
            rows: work,
            ids: None,
            start: StartPoint::Fresh,
            to_fetch: work,
            requests: 1,
            bytes: 0,
            duration: Duration::from_secs(seconds),
            probe: None,
            count: Duration::from_millis(count_ms),
            work,
        }
    }

    #[test]
    fn tables_are_scheduled_as_dump_many_runs_them() {
        let s = Duration::from_secs;
        let three = [estimate(10, 4, 0), estimate(30, 6, 0), estimate(20, 2, 0)];
        assert_eq!(total_duration(&three, 1), s(12));
        // Three at once: the longest.
        assert_eq!(total_duration(&three, 3), s(6));
        assert_eq!(total_duration(&three, 8), s(6));
        // Two at once: counted first (0 here), largest work first: 6 | 2 then 4 → 6.
        assert_eq!(total_duration(&three, 2), s(6));
        let counted = [estimate(10, 4, 500), estimate(30, 6, 0), estimate(20, 2, 0)];
        assert_eq!(total_duration(&counted, 2), Duration::from_millis(6500));
        assert_eq!(total_duration(&Vec::new(), 2), Duration::ZERO);
    }

    #[test]
    fn offset_pages_grow_linearly_from_the_first_to_the_deepest() {
        let spec = TraversalSpec::new("t").chunk_size(10);
        let ms = Duration::from_millis;
        let probe = Probe {
            rows: 10,
            fetch: ms(10),
            last_fetch: Some(ms(30)),
            at_once: None,
            write: ms(1),
            bytes: 1010,
            empty_bytes: 10,
        };
        // 25 rows: pages at 0, 10, 20 cost 10, 20, 30 ms.
        assert_eq!(traversal_time(&spec, &probe, 25), ms(60));
        assert_eq!(output_bytes(&probe, 25), 10 + 2500);
        // A write slower than the fetch is what each page costs.
        let slow = Probe { write: ms(50), last_fetch: None, ..probe.clone() };
        assert_eq!(traversal_time(&spec, &slow, 25), ms(150));
        // Parallel ID_RANGE: a fill, then a page's share of the pages fetched at once (or, not
        // measured, the fetch divided by the parallelism).
        let parallel = spec.clone().strategy(Strategy::IdRange).max_parallel(2);
        let flat = Probe { last_fetch: None, ..probe };
        assert_eq!(traversal_time(&parallel, &flat, 25), ms(2 * 10 + 2 * 5));
        let measured = Probe { at_once: Some((2, ms(16))), ..flat };
        assert_eq!(traversal_time(&parallel, &measured, 25), ms(2 * 10 + 2 * 8));
    }

    #[test]
    fn the_probe_scratch_dir_is_on_the_dumps_disk_and_never_creates_out() {
        let root = tempfile::tempdir().unwrap();
        let listing = |dir: &std::path::Path| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        // --out exists: the scratch dir is in it, and gone when dropped.
        let out = root.path().join("dumps");
        std::fs::create_dir(&out).unwrap();
        let scratch = scratch_dir(&out).unwrap();
        assert_eq!(scratch.path().parent(), Some(out.as_path()));
        assert!(listing(&out)[0].starts_with(".iptvportal-plan-"), "{:?}", listing(&out));
        drop(scratch);
        assert!(listing(&out).is_empty());
        // --out and its parent missing: the nearest existing ancestor, and --out not created.
        let missing = root.path().join("a/b/out");
        let scratch = scratch_dir(&missing).unwrap();
        assert_eq!(scratch.path().parent(), Some(root.path()));
        assert!(!root.path().join("a").exists());
    }
}

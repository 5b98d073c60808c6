//! `iptvportal dump`: tables to files through the dump orchestrator, with progress, a summary,
//! per-table errors and interruption that keeps every committed chunk.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use iptvportal_checkpoint::{CheckpointStore, FileStore};
use iptvportal_client::Client;
use iptvportal_dump::sync::{PreparedRun, RunRecord, SyncOptions};
use iptvportal_dump::{
    AsyncDumpManager, DumpConfig, DumpService, DumpStats, Error, NamedPortal, Portal,
};
use iptvportal_query::{Q, check_value_types, parse_filters_typed, parse_where_json};

use crate::args::{ConnectionArgs, DumpArgs, ProgressMode, SyncArgs};
use crate::bars::Bars;
use crate::config::Storage;
use crate::failure::{self, Hinted};
use crate::progress;
use crate::summary::{self, Report, Status, SummaryFile, SummaryRow};

/// The exit code of an interrupted (and resumable) run: 128 + SIGINT, as shells report it; the
/// same for SIGTERM and SIGHUP, so that a script tells "interrupted, rerun to resume" by one code.
const INTERRUPTED: u8 = 130;

/// What is printed when a run stops on a signal.
const INTERRUPTED_LINE: &str = "interrupted: run the same command again to resume";

/// What a run of the dump pipeline is for.
#[derive(Clone, Copy)]
enum Mode<'a> {
    /// `iptvportal dump`.
    Dump,
    /// `iptvportal sync`: each table's dump is its next run.
    Sync(&'a SyncArgs),
}

/// Runs `iptvportal dump`.
pub(super) async fn run(
    connection: &ConnectionArgs,
    args: &DumpArgs,
    storage: &Storage,
) -> anyhow::Result<ExitCode> {
    run_mode(connection, args, storage, Mode::Dump).await
}

/// Runs `iptvportal sync`: the dump pipeline (progress, summary, signals), each table's dump
/// being its next run.
pub(super) async fn run_sync(
    connection: &ConnectionArgs,
    args: &SyncArgs,
    storage: &Storage,
) -> anyhow::Result<ExitCode> {
    run_mode(connection, &args.dump, storage, Mode::Sync(args)).await
}

async fn run_mode(
    connection: &ConnectionArgs,
    args: &DumpArgs,
    storage: &Storage,
    mode: Mode<'_>,
) -> anyhow::Result<ExitCode> {
    let started_at = SystemTime::now();
    // Before anything else: a summary that cannot be written would leave a cron job blind, so
    // the run does not begin.
    let summary_file = args.summary.as_deref().map(SummaryFile::check).transpose()?;
    let mut tables = Vec::new();
    let (exit_code, rows, error) = match dump(connection, args, storage, mode, &mut tables).await {
        Ok((exit_code, rows)) => (exit_code, rows, Ok(())),
        // The run stopped as a whole before its tables ran (a bad filter, no portal given):
        // every table failed with that error, as far as its checkpoint goes.
        Err(e) => {
            let line = failure::render(&e);
            let mut rows = Vec::new();
            for table in &tables {
                let state = FileStore::new(&args.out).load(table).await.ok().flatten();
                let strategy = state.as_ref().map(|s| s.shape.strategy);
                let status = Status::Failed;
                rows.push(SummaryRow::stopped(table, status, None, state.as_ref(), strategy, None));
            }
            (1, rows, Err((e, line)))
        }
    };
    let report = Report {
        started_at,
        finished_at: SystemTime::now(),
        exit_code,
        error: error.as_ref().err().map(|(_, line)| line.clone()),
        tables: rows,
    };
    if progress_mode(args) == ProgressMode::Json {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", report.event_line()).and_then(|()| out.flush());
    }
    let written = summary_file.map(|file| file.write(&report.json()).map_err(|e| file.failed(&e)));
    match (error, written) {
        (Err((e, _)), _) => Err(e),
        (Ok(()), Some(Err(line))) => {
            eprintln!("{line}");
            Ok(ExitCode::from(exit_code.max(1)))
        }
        (Ok(()), _) => Ok(ExitCode::from(exit_code)),
    }
}

/// How progress is shown: `--quiet` shows none, whatever `--progress` says, but still the summary.
fn progress_mode(args: &DumpArgs) -> ProgressMode {
    if crate::output::quiet() { ProgressMode::None } else { args.progress }
}

/// The dump itself, up to the summary table and the error lines on stderr: the exit code and the
/// summary's rows. `tables` is the list to dump, once it is known.
async fn dump(
    connection: &ConnectionArgs,
    args: &DumpArgs,
    storage: &Storage,
    purpose: Mode<'_>,
    tables: &mut Vec<String>,
) -> anyhow::Result<(u8, Vec<SummaryRow>)> {
    // Everything that needs neither the portal nor the disk is checked first, so that a typo fails
    // without a login and without touching the output directory.
    *tables = table_list(args)?;
    let tables = &*tables;
    if let Mode::Sync(_) = purpose {
        refuse_for_sync(args)?;
    }
    let command = matches!(purpose, Mode::Sync(_)).then_some("sync");
    let remote = crate::remote::target(args, storage, command)?.map(Arc::new);
    let mut configs = match &remote {
        None => configs(args, connection, tables)?,
        Some(remote) => remote.stage_configs(configs_at(args, connection, tables)?),
    };
    // Kept until the end: with --demo it is the portal.
    let connected = super::connect(connection).await?;
    let client = connected.client.clone();

    let quiet = crate::output::quiet();
    let mode = progress_mode(args);
    // What a fresh run of each table takes; a resumed one says otherwise once it starts.
    let planned: Vec<progress::Planned> =
        configs.iter().map(|c| (c.table.clone(), c.strategy_for(None))).collect();
    let bars = match mode {
        ProgressMode::Bar => Some(Bars::new(&planned, true)),
        ProgressMode::Auto if std::io::stderr().is_terminal() => Some(Bars::new(&planned, false)),
        _ => None,
    };
    let callback = match &bars {
        Some(bars) => Some(bars.callback()),
        None => progress::callback(mode, &planned),
    };

    // A demo portal listens on a new port every run, over the same generated data: it is known
    // by its name (and its row counts), so that an interrupted demo dump resumes.
    let portal: Arc<dyn Portal> = if connection.demo {
        let name = crate::demo::identity(&connection.demo_rows);
        Arc::new(NamedPortal::new(client.clone(), name))
    } else {
        Arc::new(client.clone())
    };
    let service = crate::remote::service(Arc::clone(&portal), remote.clone());
    let interrupted = watch_signals(service.clone(), bars.clone(), connected.before_exit())?;

    // Results by table, in the order the tables were given.
    let (to_run, mut results, prepared) =
        start(purpose, args, &client, portal.as_ref(), remote.as_deref(), &mut configs).await;
    if !interrupted.load(Ordering::SeqCst) && !to_run.is_empty() {
        let (indexes, configs): (Vec<usize>, Vec<DumpConfig>) = to_run.into_iter().unzip();
        let outcomes = service.dump_many(configs, args.jobs, callback).await;
        if let Some(remote) = &remote {
            remote.release().await;
        }
        for (index, outcome) in indexes.into_iter().zip(outcomes?) {
            results[index] = Some(outcome);
        }
    }
    let interrupted = interrupted.load(Ordering::SeqCst);

    // A sync commits each run whose dump completed: its deletes, then its record.
    let runs = commit_runs(portal.as_ref(), prepared, &configs, &mut results).await;

    let mut summary = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for (config, result) in configs.iter().zip(results) {
        let (status, error) = match result {
            Some(Ok(stats)) => {
                summary.push(SummaryRow::of(&stats));
                warnings.extend(stats.warnings);
                continue;
            }
            // A table stopped by the interruption is not a failure: its checkpoint resumes it.
            Some(Err(Error::Cancelled { .. })) | None if interrupted => (Status::Cancelled, None),
            Some(Err(e)) => {
                let line = failure::render_dump(&e);
                errors.push(line.clone());
                let status = if matches!(e, Error::Cancelled { .. }) {
                    Status::Cancelled
                } else {
                    Status::Failed
                };
                (status, Some(line))
            }
            None => (Status::Cancelled, None),
        };
        summary.push(stopped(&service, config, status, error.as_deref()).await);
    }
    show_summary(bars.as_ref(), &summary, quiet, mode);
    for (table, run) in &runs {
        crate::output::note(&run_line(table, run));
    }
    if let Some(remote) = &remote {
        remote.note_published(&summary);
    }
    for w in &warnings {
        crate::output::note(&failure::render_warning(w));
    }
    for e in &errors {
        eprintln!("{e}");
    }
    if interrupted {
        eprintln!("{INTERRUPTED_LINE}");
        return Ok((INTERRUPTED, summary));
    }
    Ok((u8::from(!errors.is_empty()), summary))
}

/// Results by table (in the order given), each `None` until it ran.
type Results = Vec<Option<Result<DumpStats, Error>>>;

/// What runs, by index into `configs`: for `dump` each table's configuration after `--reset`;
/// for `sync` each table's next run, prepared (its window fixed and recorded), which becomes its
/// configuration. A table refused on the way has its result already.
async fn start(
    purpose: Mode<'_>,
    args: &DumpArgs,
    client: &Client,
    portal: &dyn Portal,
    remote: Option<&crate::remote::Remote>,
    configs: &mut [DumpConfig],
) -> (Vec<(usize, DumpConfig)>, Results, Vec<Option<PreparedRun>>) {
    let mut results: Results = (0..configs.len()).map(|_| None).collect();
    let mut prepared: Vec<Option<PreparedRun>> = (0..configs.len()).map(|_| None).collect();
    let mut to_run = Vec::new();
    for index in 0..configs.len() {
        let config = configs[index].clone();
        let reset = match purpose {
            Mode::Dump if args.reset => reset(client, remote, &config).await,
            Mode::Sync(_) if args.reset => iptvportal_dump::sync::reset(&config).await,
            _ => Ok(()),
        };
        if let Err(e) = reset {
            results[index] = Some(Err(e));
            continue;
        }
        let Mode::Sync(sync) = purpose else {
            to_run.push((index, config));
            continue;
        };
        match iptvportal_dump::sync::prepare(portal, &config, &sync_options(sync)).await {
            Ok(run) => {
                // The table's dump is its run's, in the run's directory.
                configs[index] = run.config.clone();
                to_run.push((index, run.config.clone()));
                prepared[index] = Some(run);
            }
            Err(e) => results[index] = Some(Err(e)),
        }
    }
    (to_run, results, prepared)
}

/// Commits each prepared run whose dump completed; one that cannot be committed is failed.
async fn commit_runs(
    portal: &dyn Portal,
    prepared: Vec<Option<PreparedRun>>,
    configs: &[DumpConfig],
    results: &mut Results,
) -> Vec<(String, RunRecord)> {
    let mut runs = Vec::new();
    for (index, run) in prepared.into_iter().enumerate() {
        let (Some(run), Some(Ok(_))) = (run, &results[index]) else { continue };
        match run.finish(portal).await {
            Ok(record) => runs.push((configs[index].table.clone(), record)),
            Err(e) => results[index] = Some(Err(e)),
        }
    }
    runs
}

/// The options of `sync` that `dump` does not have.
fn sync_options(args: &SyncArgs) -> SyncOptions {
    let mut options = SyncOptions::new().lag(args.lag);
    if let Some(cursor) = &args.cursor {
        options = options.cursor(cursor.clone());
    }
    options
}

/// The options of `dump` that a sync cannot take: its runs are keyed by id, in id order, and
/// always resume.
fn refuse_for_sync(args: &DumpArgs) -> anyhow::Result<()> {
    let refused = [
        (args.order_by.is_some(), "--order-by", "a sync writes every run in id order"),
        (args.resume_offset.is_some(), "--resume-offset", "a run resumes from its own checkpoint"),
        (args.no_resume, "--no-resume", "--reset starts the table's runs over"),
    ];
    match refused.into_iter().find(|(given, ..)| *given) {
        Some((_, flag, why)) => {
            Err(Hinted::new(format!("sync does not take {flag}"), format!("leave it out: {why}"))
                .into())
        }
        None => Ok(()),
    }
}

/// The line a committed run prints: what it was, its window and what it found.
fn run_line(table: &str, run: &RunRecord) -> String {
    let mut line = format!(
        "{table}: run {} ({}, {}): {} new, {} changed, {} deleted; {} rows held",
        run.run,
        run.kind.as_str(),
        run.window,
        run.new,
        run.changed,
        run.deleted,
        run.held
    );
    if run.unheld > 0 {
        let _ = write!(
            line,
            "; {} ids on the portal are in no run (committed late below the high-water mark)",
            run.unheld
        );
    }
    if run.kind == iptvportal_dump::sync::RunKind::Full {
        line.push_str(" (no id column: every run is a full copy)");
    } else if run.window.cursor.is_none() {
        line.push_str(" (no change column: rows updated in place are not seen; see --cursor)");
    }
    line
}

/// The summary's row of a table that did not finish: rows and files as its checkpoint has them
/// committed (a damaged checkpoint is as good as none here; the error line says what is wrong
/// with it), and this run's progress.
async fn stopped(
    service: &DumpService,
    config: &DumpConfig,
    status: Status,
    error: Option<&str>,
) -> SummaryRow {
    let table = &config.table;
    let state = FileStore::new(&config.output_dir).load(table).await.ok().flatten();
    let strategy = config.strategy_for(state.as_ref().map(|s| s.shape.strategy));
    let progress = service.get_stats(table);
    SummaryRow::stopped(table, status, progress.as_ref(), state.as_ref(), Some(strategy), error)
}

/// Leaves the bars drawn in their final state, then prints the summary table under them (with
/// `--quiet` too, without its hints; never with `--progress none`). A run whose every table was
/// refused before its first request has only its error lines.
fn show_summary(bars: Option<&Bars>, summary: &[SummaryRow], quiet: bool, mode: ProgressMode) {
    if let Some(bars) = bars {
        let ended: Vec<(&str, &'static str, u64)> =
            summary.iter().map(|r| (r.table.as_str(), r.status.bar_state(), r.rows)).collect();
        bars.finish(&ended);
    }
    if !(quiet || mode != ProgressMode::None) || summary.iter().all(SummaryRow::refused) {
        return;
    }
    let mut shown = summary.to_vec();
    if quiet {
        for row in &mut shown {
            row.hint = None;
        }
    }
    eprint!("{}", summary::summary(&shown));
}

/// The configuration of each of `tables` (see [`table_list`]), from the options alone: every
/// check that needs neither the portal nor the disk, shared with `plan`, so that both refuse a
/// command line with the same words.
pub(super) fn configs(
    args: &DumpArgs,
    connection: &ConnectionArgs,
    tables: &[String],
) -> anyhow::Result<Vec<DumpConfig>> {
    failure::local_path(&args.out, "--out")?;
    if let Some(stage) = &args.stage {
        return Err(Hinted::new(
            format!("--stage {} is only for --out s3://bucket/prefix", stage.display()),
            "leave --stage out: a local dump writes into --out directly",
        )
        .into());
    }
    configs_at(args, connection, tables)
}

/// [`configs`] for any `--out`, a bucket too (whose caller stages each table).
fn configs_at(
    args: &DumpArgs,
    connection: &ConnectionArgs,
    tables: &[String],
) -> anyhow::Result<Vec<DumpConfig>> {
    let excluded = excluded_columns(args)?;
    let columns_given = args.columns.iter().any(|c| !c.trim().is_empty());
    if let Some(both) = tables.iter().find(|t| columns_given && excluded.contains_key(*t)) {
        return Err(Hinted::new(
            format!("--columns and --exclude-columns both name the columns of {both}"),
            "give one of them (--columns applies to every table of the command)",
        )
        .into());
    }
    // Per table: a value is read as its column's type, which may differ between tables.
    let filters =
        tables.iter().map(|t| filter(args, t)).collect::<anyhow::Result<Vec<Option<Q>>>>()?;
    Ok(tables
        .iter()
        .zip(&filters)
        .map(|(t, filter)| {
            let excluded = excluded.get(t).map_or(&[][..], Vec::as_slice);
            config(t, args, connection, filter.as_ref(), excluded)
        })
        .collect())
}

/// The tables to dump: the catalog's with `--all` but the `--exclude`d ones, else the ones
/// given, each once. An `--exclude` that names no table of the catalog is refused, so that a typo
/// does not dump the table it meant to leave out.
pub(super) fn table_list(args: &DumpArgs) -> anyhow::Result<Vec<String>> {
    if let Some(unknown) = args.exclude.iter().find(|t| iptvportal_catalog::table(t).is_none()) {
        return Err(Hinted::new(
            format!("--exclude names {unknown:?}, which is not a table of the catalog"),
            format!("the tables of --all are {}", catalog_tables()),
        )
        .into());
    }
    let given: Vec<String> = if args.all {
        iptvportal_catalog::TABLES
            .iter()
            .map(|t| t.name.to_owned())
            .filter(|t| !args.exclude.contains(t))
            .collect()
    } else {
        args.tables.clone()
    };
    let mut seen = std::collections::HashSet::new();
    Ok(given.into_iter().filter(|t| seen.insert(t.clone())).collect())
}

/// The catalog's table names, for a message.
fn catalog_tables() -> String {
    iptvportal_catalog::TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// `--exclude-columns`: the columns to leave out, by table. Every `TABLE.COLUMN` is checked
/// against the catalog before anything is sent, also for a table not dumped this time, so that a
/// typo never lets the column it meant to leave out through.
fn excluded_columns(args: &DumpArgs) -> anyhow::Result<HashMap<String, Vec<String>>> {
    let mut excluded: HashMap<String, Vec<String>> = HashMap::new();
    for item in args.exclude_columns.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        let Some((table, column)) = item.split_once('.') else {
            return Err(Hinted::new(
                format!("--exclude-columns takes TABLE.COLUMN, got {item:?}"),
                "name the table too, e.g. --exclude-columns subscriber.password",
            )
            .into());
        };
        let Some(known) = iptvportal_catalog::table(table) else {
            return Err(Hinted::new(
                format!("--exclude-columns names {table:?}, which is not a table of the catalog"),
                format!("the catalog's tables are {}", catalog_tables()),
            )
            .into());
        };
        if known.column(column).is_none() {
            let columns: Vec<&str> = known.column_names().collect();
            return Err(Hinted::new(
                format!("--exclude-columns names {item:?}, but {table} has no column {column:?}"),
                format!("the columns of {table} are {}", columns.join(", ")),
            )
            .into());
        }
        let columns = excluded.entry(table.to_owned()).or_default();
        if !columns.iter().any(|c| c == column) {
            columns.push(column.to_owned());
        }
    }
    Ok(excluded)
}

/// The filter of `table`: the `--where` lookups AND-ed with `--where-json`, every value read as
/// (and checked against) its column's type where the catalog knows the table.
fn filter(args: &DumpArgs, table: &str) -> anyhow::Result<Option<Q>> {
    let types = super::select::column_types(table);
    let lookups = parse_filters_typed(&args.filters, &types)?;
    let raw = args.where_json.as_deref().map(parse_where_json).transpose()?;
    if let Some(expr) = &raw {
        check_value_types(expr, &types)?;
    }
    let raw = raw.map(Q::from);
    Ok(match (lookups, raw) {
        (Some(a), Some(b)) => Some(a & b),
        (a, b) => a.or(b),
    })
}

fn config(
    table: &str,
    args: &DumpArgs,
    connection: &ConnectionArgs,
    filter: Option<&Q>,
    excluded: &[String],
) -> DumpConfig {
    let mut config = DumpConfig::new(table, &args.out)
        .format(args.format)
        .compress(args.compress)
        .chunk_size(args.chunk_size)
        .strategy(args.strategy)
        .max_parallel(args.parallel)
        .resume(!args.no_resume)
        .batch_timeout(connection.timeout)
        .max_retries(connection.max_retries)
        .retry_backoff(args.retry_backoff);
    if let Some(level) = args.compress_level {
        config = config.compression_level(level);
    }
    if let Some(offset) = args.resume_offset {
        config = config.resume_offset(offset);
    }
    if let Some(order) = &args.order_by {
        config = config.order_by(order.clone());
    }
    if let Some(q) = filter {
        config = config.where_clause(q.clone());
    }
    let columns: Vec<&str> =
        args.columns.iter().map(|c| c.trim()).filter(|c| !c.is_empty()).collect();
    if !columns.is_empty() {
        config = config.columns(columns);
    }
    if !excluded.is_empty() {
        config = config.exclude_columns(excluded);
    }
    match (args.part_rows, args.format) {
        (Some(rows), iptvportal_dump::DumpFormat::Parquet) => {
            let mut parquet = config.parquet.clone();
            parquet.part_rows = rows;
            config = config.parquet(parquet);
        }
        (Some(rows), _) => config = config.text_part_rows(rows),
        (None, _) => {}
    }
    config
}

/// `--reset` for one table. The orchestrator validates the configuration before deleting
/// anything, so a command that is going to fail does not lose the previous output first.
async fn reset(
    client: &Client,
    remote: Option<&crate::remote::Remote>,
    config: &DumpConfig,
) -> Result<(), Error> {
    let manager = match remote {
        None => AsyncDumpManager::new(client.clone(), config.clone()),
        Some(remote) => {
            AsyncDumpManager::with_store(client.clone(), config.clone(), remote.store(config))
        }
    };
    manager.reset().await
}

/// Watches for SIGINT, SIGTERM and SIGHUP (a closed terminal or SSH session). The first cancels every dump (each commits the chunk it is
/// writing, drops its requests, saves its checkpoint) and is remembered in the returned flag; a
/// second one exits at once, which is safe because a checkpoint never runs ahead of durable
/// output. `before_exit` runs first (it deletes the `--demo` portal's database, which no
/// destructor will).
fn watch_signals(
    service: DumpService,
    bars: Option<Bars>,
    before_exit: Option<Box<dyn FnOnce() + Send>>,
) -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let mut signals = Signals::new()?;
    let interrupted = Arc::clone(&flag);
    tokio::spawn(async move {
        signals.next().await;
        interrupted.store(true, Ordering::SeqCst);
        loop {
            service.cancel_all();
            // `dump_many` starts queued tables after the running ones stop; cancelling again
            // stops those too, before their first chunk.
            tokio::select! {
                () = signals.next() => {
                    // Erased first: a bar redrawn over the message would hide it.
                    if let Some(bars) = &bars {
                        bars.clear();
                    }
                    eprintln!("{INTERRUPTED_LINE}");
                    if let Some(before_exit) = before_exit {
                        before_exit();
                    }
                    std::process::exit(i32::from(INTERRUPTED));
                }
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    });
    Ok(flag)
}

/// SIGINT, SIGTERM and SIGHUP as one stream. All are registered when this is built (not when
/// first polled), so a signal arriving right after start is not lost to the default handler
/// (which, for SIGHUP, would end the process with 129 and no word).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(unix)]
    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

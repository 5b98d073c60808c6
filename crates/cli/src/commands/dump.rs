//! `iptvportal dump`: tables to files through the dump orchestrator, with progress, a summary,
//! per-table errors and interruption that keeps every committed chunk.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use iptvportal_client::Client;
use iptvportal_dump::{AsyncDumpManager, DumpConfig, DumpService, DumpStats, Error, NamedPortal};
use iptvportal_query::{Q, parse_filters, parse_where_json};

use crate::args::{ConnectionArgs, DumpArgs, ProgressMode};
use crate::bars::Bars;
use crate::failure;
use crate::progress::{self, SummaryRow};

/// The exit code of an interrupted (and resumable) run: 128 + SIGINT, as shells report it.
const INTERRUPTED: u8 = 130;

/// What is printed when a run stops on a signal.
const INTERRUPTED_LINE: &str = "interrupted: run the same command again to resume";

/// Runs `iptvportal dump`.
pub(super) async fn run(connection: &ConnectionArgs, args: &DumpArgs) -> anyhow::Result<ExitCode> {
    // Everything that needs neither the portal nor the disk is checked first, so that a typo fails
    // without a login and without touching the output directory.
    let tables = table_list(args);
    let filter = filter(args)?;
    // Kept until the end: with --demo it is the portal.
    let connected = super::connect(connection).await?;
    let client = connected.client.clone();
    let configs: Vec<DumpConfig> =
        tables.iter().map(|t| config(t, args, connection, filter.as_ref())).collect();

    let bars = match args.progress {
        ProgressMode::Bar => Some(Bars::new(&tables, true)),
        ProgressMode::Auto if std::io::stderr().is_terminal() => Some(Bars::new(&tables, false)),
        _ => None,
    };
    let callback = match &bars {
        Some(bars) => Some(bars.callback()),
        None => progress::callback(args.progress),
    };

    // A demo portal listens on a new port every run, over the same generated data: it is known
    // by its name (and its row counts), so that an interrupted demo dump resumes.
    let service = if connection.demo {
        let name = crate::demo::identity(&connection.demo_rows);
        DumpService::new(NamedPortal::new(client.clone(), name))
    } else {
        DumpService::new(client.clone())
    };
    let interrupted = watch_signals(service.clone(), bars.clone(), connected.before_exit())?;

    // Results by table, in the order the tables were given.
    let mut results: Vec<Option<Result<DumpStats, Error>>> =
        (0..configs.len()).map(|_| None).collect();
    let mut to_run = Vec::new();
    for (index, config) in configs.into_iter().enumerate() {
        if args.reset
            && let Err(e) = reset(&client, &config).await
        {
            results[index] = Some(Err(e));
            continue;
        }
        to_run.push((index, config));
    }

    if !interrupted.load(Ordering::SeqCst) && !to_run.is_empty() {
        let (indexes, configs): (Vec<usize>, Vec<DumpConfig>) = to_run.into_iter().unzip();
        let outcomes = service.dump_many(configs, args.jobs, callback).await?;
        for (index, outcome) in indexes.into_iter().zip(outcomes) {
            results[index] = Some(outcome);
        }
    }
    let interrupted = interrupted.load(Ordering::SeqCst);
    // The bars stay drawn in their final state; everything below prints under them.
    if let Some(bars) = &bars {
        bars.finish();
    }

    let mut summary = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for result in results.into_iter().flatten() {
        match result {
            Ok(stats) => {
                summary.push(SummaryRow::of(&stats));
                warnings.extend(stats.warnings);
            }
            // A table stopped by the interruption is not a failure: its checkpoint resumes it.
            Err(Error::Cancelled { .. }) if interrupted => {}
            Err(e) => errors.push(failure::render_dump(&e)),
        }
    }
    if args.progress != ProgressMode::None && !summary.is_empty() {
        eprint!("{}", progress::summary(&summary));
    }
    for w in &warnings {
        eprintln!("{}", failure::render_warning(w));
    }
    for e in &errors {
        eprintln!("{e}");
    }
    if interrupted {
        eprintln!("{INTERRUPTED_LINE}");
        return Ok(ExitCode::from(INTERRUPTED));
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The tables to dump: the catalog's with `--all`, else the ones given, each once.
fn table_list(args: &DumpArgs) -> Vec<String> {
    let given: Vec<String> = if args.all {
        iptvportal_catalog::TABLES.iter().map(|t| t.name.to_owned()).collect()
    } else {
        args.tables.clone()
    };
    let mut seen = std::collections::HashSet::new();
    given.into_iter().filter(|t| seen.insert(t.clone())).collect()
}

/// The filter: the `--where` lookups AND-ed with `--where-json`.
fn filter(args: &DumpArgs) -> anyhow::Result<Option<Q>> {
    let lookups = parse_filters(&args.filters)?;
    let raw = args.where_json.as_deref().map(parse_where_json).transpose()?.map(Q::from);
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
    if let Some(rows) = args.parquet_part_rows {
        let mut parquet = config.parquet.clone();
        parquet.part_rows = rows;
        config = config.parquet(parquet);
    }
    config
}

/// `--reset` for one table. The orchestrator validates the configuration before deleting
/// anything, so a command that is going to fail does not lose the previous output first.
async fn reset(client: &Client, config: &DumpConfig) -> Result<(), Error> {
    AsyncDumpManager::new(client.clone(), config.clone()).reset().await
}

/// Watches for SIGINT and SIGTERM. The first cancels every dump (each commits the chunk it is
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

/// SIGINT and SIGTERM as one stream. Both are registered when this is built (not when first
/// polled), so a signal arriving right after start is not lost to the default handler.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
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
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

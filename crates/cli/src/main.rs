//! `iptvportal`: the operator's tool for the admin API of an `IPTVPortal`.
//!
//! The only crate of the workspace that prints. Every failure ends as one line on stderr,
//! `error: <what happened>; <what to do>`, and exit code 1; bad arguments exit 2 (clap); an
//! interrupted `dump` exits 130 and resumes when run again.

mod args;
mod bars;
mod commands;
mod config;
mod demo;
mod failure;
mod output;
mod progress;
mod reference;
mod remote;
mod settings;
mod summary;

use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use clap::FromArgMatches;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    // A bug must still end as one readable line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        eprintln!("error: internal error: {}; please report this bug", what.replace('\n', " "));
    }));
    // Parsed in two steps so that the config file can tell a value given on the command line
    // from one clap filled in as its default.
    let matches = settings::matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if cli.debug {
        init_debug_logging();
    }
    output::set_quiet(cli.quiet);
    if let Err(e) = settings::resolve(&mut cli, &matches) {
        eprintln!("{}", failure::render(&e));
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads(&cli, cores()))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!(
                "error: cannot start the async runtime: {e}; check the system's thread limits"
            );
            return ExitCode::FAILURE;
        }
    };
    // Not `stdout().lock()`: `dump --progress json` prints from the runtime's worker threads, which
    // would wait forever for a lock held by this one.
    let mut out = BufWriter::new(std::io::stdout());
    let result = runtime.block_on(commands::run(&cli, &mut out)).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        // `iptvportal select … | head` closes the pipe early: that is the reader's choice, not a failure.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", failure::render(&e));
            ExitCode::FAILURE
        }
    }
}

/// Request logs of our own crates on stderr. Other crates stay at `warn`: the HTTP stack's own
/// debug output is noise here, and our logs never carry headers or params.
fn init_debug_logging() {
    let filter =
        tracing_subscriber::EnvFilter::new("warn,iptvportal=debug,iptvportal_client=debug");
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The async runtime's workers: the cores the sink threads leave, and at least one per table
/// dumped at once (plus one for the `--demo` portal, which serves from the same runtime).
///
/// Each table dumped at once has a sink thread of its own that encodes, compresses and writes
/// (CPU work), while the workers send requests and decode the responses. The runtime's default,
/// one worker per core, ignores the sink threads: on two cores a single-table dump ran two workers
/// beside its sink thread, which took the same CPU time for the same rows, decoded two responses
/// at once more often, and so met higher peaks of memory the longer the dump ran
/// (docs/benchmarks.md, scenario 4). Commands without sink threads keep one worker per core.
fn worker_threads(cli: &Cli, cores: usize) -> usize {
    let sink_threads = match &cli.command {
        Command::Dump(d) | Command::Sync(crate::args::SyncArgs { dump: d, .. }) if d.all => d.jobs,
        Command::Dump(d) | Command::Sync(crate::args::SyncArgs { dump: d, .. }) => {
            d.jobs.min(d.tables.len())
        }
        _ => 0,
    };
    let at_least = sink_threads.max(1) + usize::from(cli.connection.demo);
    let cores = cores.max(1);
    cores.saturating_sub(sink_threads).max(at_least).min(cores)
}

/// The cores this process may run on (1 when that cannot be told).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(args: &str, cores: usize) -> usize {
        // Parsed as `main` parses, so that an IPTVPORTAL_USERNAME of the environment running the
        // tests does not collide with `--demo`.
        let args = format!("iptvportal {args}");
        let matches = settings::command().try_get_matches_from(args.split_whitespace()).unwrap();
        worker_threads(&Cli::from_arg_matches(&matches).unwrap(), cores)
    }

    #[test]
    fn workers_take_the_cores_the_sink_threads_leave() {
        assert_eq!(workers("dump terminal", 2), 1);
        assert_eq!(workers("dump terminal", 8), 7);
        assert_eq!(workers("dump terminal media --jobs 1", 8), 7);
        assert_eq!(workers("dump terminal media", 8), 6);
        assert_eq!(workers("dump --all --jobs 4", 8), 4);
        assert_eq!(workers("select --from terminal", 4), 4);
        assert_eq!(workers("auth", 2), 2);
        assert_eq!(workers("auth", 1), 1);
    }

    #[test]
    fn at_least_one_worker_per_table_dumped_at_once() {
        assert_eq!(workers("dump terminal media", 2), 2);
        assert_eq!(workers("dump terminal media tv_channel --jobs 3", 4), 3);
        assert_eq!(workers("dump --all --jobs 6", 8), 6);
        assert_eq!(workers("dump --all --jobs 6", 4), 4);
        assert_eq!(workers("dump terminal", 0), 1);
    }

    #[test]
    fn the_demo_portal_gets_a_worker_of_its_own() {
        assert_eq!(workers("dump --demo terminal", 2), 2);
        assert_eq!(workers("dump --demo --all --jobs 2", 8), 6);
        assert_eq!(workers("dump --demo --all --jobs 3", 4), 4);
        assert_eq!(workers("auth --demo", 1), 1);
    }
}

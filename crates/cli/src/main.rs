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

use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::args::Cli;

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
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if cli.debug {
        init_debug_logging();
    }
    if let Err(e) = config::apply(&mut cli, &matches) {
        eprintln!("{}", failure::render(&e));
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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

//! `iptvportal-e2e`: the black-box end-to-end run. It starts `iptvportal-sim` as a process, drives
//! the real `iptvportal` binary against it, reads every output back with the tools users use
//! (pyarrow, DuckDB, pandas, Python's gzip/csv/json) and compares it with the simulator's SQLite
//! file; it kills dumps with SIGKILL and checks that they resume to identical output, runs against a
//! faulty portal, feeds the binary bad input, and scans everything for secrets.
//!
//! Run through `cargo xtask e2e`, which builds the binaries and the Python environment; see
//! docs/e2e.md. The summary ends with `N passed, M failed`; the exit status is 1 on any failure.

mod files;
mod proc;
mod python;
mod report;
mod scenarios;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::proc::{Cli, Sim};
use crate::python::Checker;
use crate::report::Report;

/// The simulator's one account. The password is distinctive so the secrets scan cannot miss it.
pub(crate) const USER: &str = "e2e-operator";
pub(crate) const PASSWORD: &str = "Pw-e2e-7Qx9-never-in-output";

/// Rows per table: a few thousand for the tables the scenarios dump; the rest keep the defaults.
const ROWS: &str = "subscriber=2500,terminal=4000,tv_program=3000";

/// Every catalog table, for `--all` (listed here because the harness links no workspace crate).
pub(crate) const TABLES: [&str; 10] = [
    "subscriber",
    "terminal",
    "package",
    "subscriber_package",
    "media",
    "tv_channel",
    "tv_program",
    "tv_category",
    "tv_program_category",
    "terminal_playlog",
];

/// The simulator's data flags: the fault run uses the same, so both serve the same rows.
pub(crate) fn sim_args(seed: u64) -> Vec<String> {
    ["--rows", ROWS, "--seed", &seed.to_string(), "--user", USER, "--password", PASSWORD]
        .map(str::to_owned)
        .to_vec()
}

/// What every scenario needs.
pub(crate) struct Ctx {
    pub(crate) cli: Cli,
    pub(crate) cli_bin: PathBuf,
    pub(crate) sim_bin: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) checker: Checker,
    pub(crate) seed: u64,
}

/// The command line.
struct Options {
    cli: PathBuf,
    sim: PathBuf,
    python: PathBuf,
    work: PathBuf,
    seed: u64,
    kills: u64,
    trial: Option<u64>,
    only: Option<Vec<String>>,
}

const USAGE: &str = "usage: iptvportal-e2e --cli PATH --sim PATH --python PATH --work DIR \
[--seed N] [--kills N] [--trial N] [--only matrix,kill,faults,integrity,bad-input,sync,s3,secrets]";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        cli: PathBuf::new(),
        sim: PathBuf::new(),
        python: PathBuf::new(),
        work: PathBuf::new(),
        seed: 1,
        kills: 150,
        trial: None,
        only: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--cli" => options.cli = value.into(),
            "--sim" => options.sim = value.into(),
            "--python" => options.python = value.into(),
            "--work" => options.work = value.into(),
            "--seed" => options.seed = number()?,
            "--kills" => options.kills = number()?,
            "--trial" => options.trial = Some(number()?),
            "--only" => options.only = Some(value.split(',').map(str::to_owned).collect()),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if [&options.cli, &options.sim, &options.python, &options.work]
        .iter()
        .any(|p| p.as_os_str().is_empty())
    {
        return Err("--cli, --sim, --python and --work are required".to_owned());
    }
    if options.trial.is_some() && options.only.is_none() {
        options.only = Some(vec!["kill".to_owned()]);
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut report = Report::default();
    let wanted = |phase: &str| options.only.as_ref().is_none_or(|o| o.iter().any(|p| p == phase));

    // A fresh work directory: every file in it is this run's, which the secrets scan relies on.
    let _ = std::fs::remove_dir_all(&options.work);
    if let Err(e) = std::fs::create_dir_all(options.work.join("logs")) {
        eprintln!("error: {}: {e}", options.work.display());
        return ExitCode::FAILURE;
    }
    let work = std::fs::canonicalize(&options.work).unwrap_or(options.work.clone());

    report.phase("simulator");
    let db = work.join("sim.db");
    let sim_args = sim_args(options.seed);
    let sim_args: Vec<&str> = sim_args.iter().map(String::as_str).collect();
    let sim = match Sim::start(&options.sim, &db, &sim_args, &work.join("sim-main.log")) {
        Ok(sim) => sim,
        Err(e) => {
            report.check("start the simulator", Err(e));
            eprint!("{}", report.finish(started.elapsed()));
            return ExitCode::FAILURE;
        }
    };
    report.fact(format!("simulator at {} (seed {}, rows {ROWS})", sim.url, options.seed));
    let ctx = Ctx {
        cli: Cli::new(&options.cli, &work.join("logs"), &sim.url, USER, PASSWORD),
        cli_bin: options.cli.clone(),
        sim_bin: options.sim.clone(),
        checker: Checker { python: options.python.clone(), work: work.clone(), db },
        work,
        seed: options.seed,
    };

    if wanted("matrix") {
        report.phase("matrix");
        scenarios::matrix::run(&ctx, &mut report);
    }
    let refs = if wanted("kill") || wanted("faults") || wanted("integrity") {
        report.phase("references");
        scenarios::kill::references(&ctx, &mut report)
    } else {
        std::collections::HashMap::new()
    };
    if wanted("kill") {
        report.phase("kill");
        scenarios::kill::run(&ctx, &mut report, &refs, options.kills, options.trial);
    }
    if wanted("faults") {
        report.phase("faults");
        scenarios::faults::run(&ctx, &mut report, &refs);
    }
    if wanted("integrity") {
        report.phase("integrity");
        scenarios::integrity::run(&ctx, &mut report, &refs);
    }
    if wanted("bad-input") {
        report.phase("bad-input");
        scenarios::bad_input::run(&ctx, &mut report);
    }
    if wanted("sync") {
        report.phase("sync");
        scenarios::sync::run(&ctx, &mut report);
    }
    if wanted("s3") {
        report.phase("s3");
        scenarios::s3::run(&ctx, &mut report);
    }
    report.check("the simulator stops on SIGTERM", sim.stop());
    if wanted("secrets") {
        report.phase("secrets");
        scenarios::secrets::run(&ctx, &mut report);
    }

    let summary = report.finish(started.elapsed());
    // The summary goes to stdout (the closing counts line is what CI reads); progress went to stderr.
    print!("{summary}");
    if report.failed() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_parses() {
        let args: Vec<String> = [
            "--cli", "a", "--sim", "b", "--python", "c", "--work", "d", "--trial", "7", "--seed",
            "3",
        ]
        .map(str::to_owned)
        .to_vec();
        let options = parse(&args).unwrap();
        assert_eq!((options.seed, options.trial), (3, Some(7)));
        assert_eq!(
            options.only,
            Some(vec!["kill".to_owned()]),
            "--trial replays the kill phase only"
        );
        assert!(parse(&args[..4]).is_err(), "the paths are required");
    }
}

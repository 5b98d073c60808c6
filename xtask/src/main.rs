//! `cargo xtask`: the project's automation, needing nothing beyond cargo.
//!
//! - `cargo xtask codegen [--check]`: regenerate the checked-in files that derive from one source of
//!   truth (today: the table catalog). `--check` fails when a file is stale; it also runs as a test.
//! - `cargo xtask e2e [--seed N] [--kills N] [--trial N] [--only PHASES]`: the black-box end-to-end
//!   run (release binaries, the simulator as a process, Python readers); see docs/e2e.md.
//! - `cargo xtask bench [--quick] [--json FILE] [--only NAME[,NAME]]`: speed and memory of the
//!   release binaries against the simulator; see docs/benchmarks.md. `--quick` also runs as a test.

mod bench;
mod codegen;
mod e2e;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["codegen"] => codegen::run(codegen::Mode::Write),
        ["codegen", "--check"] => codegen::run(codegen::Mode::Check),
        ["e2e", rest @ ..] => e2e::run(rest),
        ["venv"] => e2e::venv(),
        ["bench", rest @ ..] => {
            let Some(options) = bench_options(rest) else {
                eprintln!(
                    "usage: cargo xtask bench [--quick] [--json FILE] [--only NAME[,NAME]] (scenarios: {})",
                    bench::SCENARIOS.join(", ")
                );
                return ExitCode::from(2);
            };
            bench::run(&options)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask codegen [--check] | venv | e2e [--seed N] [--kills N] [--trial N] [--only PHASES] | bench [--quick] [--json FILE] [--only NAME[,NAME]]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `bench`'s flags, or `None` when they do not parse.
fn bench_options(args: &[&str]) -> Option<bench::Options> {
    let mut options = bench::Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--quick" => options.quick = true,
            "--json" => options.json = Some(PathBuf::from(args.next()?)),
            "--only" => {
                let names = args.next()?.split(',').map(str::trim).filter(|n| !n.is_empty());
                options.only.extend(names.map(str::to_owned));
            }
            _ => return None,
        }
    }
    Some(options)
}

/// The workspace root (the parent of this crate's manifest directory).
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

//! The fault run: a simulator that answers 5xx, cuts connections, hangs, rate-limits and expires
//! sessions every two seconds; dumps with a short timeout and enough retries must still produce
//! exactly the fault-free reference output.

use std::collections::HashMap;
use std::time::Duration;

use super::Strategy;
use super::kill::{Reference, TABLE, dump_args};
use crate::files::{self, Format, Output};
use crate::proc::{Cli, Sim};
use crate::report::Report;
use crate::{Ctx, python};

/// The simulator's fault flags (seeded by `--seed`, so a failure replays).
const FAULTS: [&str; 10] = [
    "--fail-rate",
    "0.05",
    "--reset-rate",
    "0.05",
    "--timeout-rate",
    "0.03",
    "--rate-limit",
    "25",
    "--session-ttl",
    "2",
];

pub(crate) fn run(ctx: &Ctx, report: &mut Report, refs: &HashMap<String, Reference>) {
    let mut args: Vec<String> = crate::sim_args(ctx.seed);
    args.extend(FAULTS.iter().map(|&a| a.to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sim = match Sim::start(
        &ctx.sim_bin,
        &ctx.work.join("fault-sim.db"),
        &args,
        &ctx.work.join("sim-faults.log"),
    ) {
        Ok(sim) => sim,
        Err(e) => return report.check("faults: start the simulator", Err(e)),
    };
    let cli =
        Cli::new(&ctx.cli_bin, &ctx.work.join("logs"), &sim.url, crate::USER, crate::PASSWORD);
    let runs = [
        (Output { format: Format::Jsonl, gzip: false }, Strategy::Offset, false),
        (Output { format: Format::Csv, gzip: true }, Strategy::Parallel3, true),
        (Output { format: Format::Parquet, gzip: false }, Strategy::IdRange, false),
        (Output { format: Format::Json, gzip: true }, Strategy::Parallel3, false),
    ];
    let mut compare = Vec::new();
    for (output, strategy, debug) in runs {
        let name = format!("faults {} {}", output.label(), strategy.label());
        let Some(reference) = refs.get(&output.label()) else { continue };
        let dir = ctx.work.join("faults").join(format!("{}-{}", output.label(), strategy.label()));
        let mut args = dump_args(&dir, output, strategy);
        // Bigger chunks than the kill trials (fewer requests, so the run stays short), a short
        // timeout so a hang costs a second, and enough retries that 13% failing requests (plus
        // 429s) cannot exhaust a chunk's budget.
        let chunk = args.iter().position(|a| a == "--chunk-size").map_or(0, |i| i + 1);
        "250".clone_into(&mut args[chunk]);
        args.extend(
            ["--timeout", "1", "--max-retries", "12", "--retry-backoff", "1.2"].map(str::to_owned),
        );
        if debug {
            args.push("--debug".to_owned());
        }
        let run = cli.cmd(&args).run(Duration::from_secs(300));
        let retries = run.stderr.matches("retrying").count();
        let logins = run.stderr.matches("method=\"authorize_user\"").count();
        let logged = if debug {
            format!(", --debug logged {retries} retries and {logins} logins")
        } else {
            String::new()
        };
        report.fact(format!("{name}: {:.1}s{logged}", run.elapsed.as_secs_f64()));
        if let Err(e) = run.success() {
            report.check(&name, Err(e));
            continue;
        }
        if output.format == Format::Parquet {
            compare.push(python::compare(&name, TABLE, &reference.dir, &dir));
        } else {
            let outcome = files::read_decoded(&output.text_file(&dir, TABLE)).and_then(|bytes| {
                if bytes == reference.bytes {
                    Ok(())
                } else {
                    let ids = files::ids(output.format, &bytes)?;
                    let (lost, duplicated) = files::lost_and_duplicated(&reference.ids, &ids);
                    Err(format!(
                        "differs from the fault-free output ({lost} lost, {duplicated} duplicated)"
                    ))
                }
            });
            report.check(&name, outcome);
        }
    }
    if !compare.is_empty() {
        match ctx.checker.run("faults", &[], &compare) {
            Ok(verdict) => {
                for entry in verdict["compare"].as_array().into_iter().flatten() {
                    report
                        .check(entry["name"].as_str().unwrap_or("?"), python::entry_outcome(entry));
                }
            }
            Err(e) => report.check("faults: python checker", Err(e)),
        }
    }
    report.check("faults: the simulator stops on SIGTERM", sim.stop());
}

//! Scenario 7: `iptvportal plan`'s time estimate against the dump it estimates, on the simulator
//! with latency. Each variant runs `plan` (which writes nothing: its `--out` must not appear) and
//! then the dump with the same options; the ratio is how far the estimate is off,
//! `|estimate / dump seconds - 1|`, the medians of the repetitions.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use super::process::run_measured;
use super::report::{Row, Target, median};
use super::{Bench, DumpSpec, Sample, credentials, remove_dir, summarize};

/// The largest error of the estimate the target allows: a quarter of the real time.
const MAX_ERROR: f64 = 0.25;

impl Bench<'_> {
    /// Scenario 7 against `slow`, the simulator with the plan's latency.
    pub(super) fn plan_estimates(&self, slow: &str) -> Result<Vec<Row>> {
        let n = self.plan.big;
        let latency = self.plan.latency_ms;
        let variants = [
            (format!("id-range, latency {latency} ms"), DumpSpec::terminal(n)),
            (
                format!("id-range parallel 3, latency {latency} ms"),
                DumpSpec { parallel: 3, ..DumpSpec::terminal(n) },
            ),
            (
                format!("offset, latency {latency} ms"),
                DumpSpec { strategy: "offset", ..DumpSpec::terminal(n) },
            ),
        ];
        let mut estimates: Vec<Vec<f64>> = variants.iter().map(|_| Vec::new()).collect();
        let mut dumps: Vec<Vec<Sample>> = variants.iter().map(|_| Vec::new()).collect();
        for rep in 1..=self.plan.repetitions {
            for (i, (name, spec)) in variants.iter().enumerate() {
                let label = format!("s7-v{i}-r{rep}");
                let estimate = self
                    .plan_seconds(slow, spec, &label)
                    .with_context(|| format!("7 plan / {name}, run {rep}"))?;
                let dumped = self
                    .dump(slow, spec, &label)
                    .with_context(|| format!("7 plan / {name}, run {rep}"))?;
                eprintln!(
                    "  7 plan / {name} (run {rep}): estimate {estimate:.2} s, dump {:.2} s ({:+.0} %)",
                    dumped.seconds,
                    (estimate / dumped.seconds - 1.0) * 100.0
                );
                estimates[i].push(estimate);
                dumps[i].push(dumped);
            }
        }
        let mut rows = Vec::new();
        for (((name, _), estimated), dumped) in variants.iter().zip(estimates).zip(dumps) {
            let mut row = summarize("7 plan", &format!("dump {name}"), &dumped);
            let error = median(&estimated) / row.median_seconds - 1.0;
            row.compare(
                error.abs(),
                &format!(
                    "|plan's estimate / dump seconds - 1| (estimate {:.2} s, {:+.0} %)",
                    median(&estimated),
                    error * 100.0
                ),
                Some(Target::AtMost(MAX_ERROR)),
                !self.plan.quick,
            );
            rows.push(row);
        }
        Ok(rows)
    }

    /// Runs `iptvportal plan` with the options of `spec` and returns its total estimate in
    /// seconds; checks that it wrote nothing.
    fn plan_seconds(&self, url: &str, spec: &DumpSpec, label: &str) -> Result<f64> {
        let out = self.work.join("out").join(format!("{label}-plan"));
        remove_dir(&out)?;
        let mut command = plan_command(&self.tools.cli, url, spec, self.plan.chunk, &out);
        let measured = run_measured(&mut command, &self.logs, &format!("{label}-plan"))?;
        ensure!(!out.exists(), "plan created {}", out.display());
        let plan: Value = serde_json::from_str(&measured.stdout).context("plan's JSON")?;
        let planned = plan["tables"].as_array().map_or(0, Vec::len);
        ensure!(planned == spec.tables.len(), "plan listed {planned} tables: {plan}");
        plan["total"]["seconds"].as_f64().context("plan printed no total.seconds")
    }
}

/// `iptvportal plan` with the options `Bench::dump_command` gives the dump of `spec`.
fn plan_command(cli: &Path, url: &str, spec: &DumpSpec, chunk: u64, out: &Path) -> Command {
    let mut command = Command::new(cli);
    command
        .args(["--portal", url, "plan"])
        .args(spec.tables.iter().map(|(t, _)| t))
        .arg("--out")
        .arg(out)
        .args(["--format", spec.format, "--strategy", spec.strategy])
        .args(["--chunk-size", &chunk.to_string()])
        .args(["--parallel", &spec.parallel.to_string(), "--jobs", &spec.jobs.to_string()])
        .args(["--plan-format", "json"]);
    if spec.compress {
        command.arg("--compress");
    }
    credentials(&mut command);
    command
}

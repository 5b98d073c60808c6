//! Scenario 8: how far the ETA of `--progress json` is from the time the dump really had left.
//!
//! Each variant runs a real dump with `--progress json` and stamps every line as it arrives; the
//! dump's end is when the process exits. At the first line past 10 %, 25 %, 50 % and 75 % of the
//! rows that carries an ETA, the error is `|eta - actual remaining| / actual remaining`; a row of
//! the report is one variant at one fraction, its ratio the median over the repetitions. The
//! targets are the issue's: within 25 % from 10 % of the rows on, within 10 % from 50 % on.
//!
//! The variants: OFFSET (whose chunks cost more the further they go, the simulator's OFFSET
//! materializing the skipped rows as `PostgreSQL` does), id-range with `--parallel 3` under
//! latency (whose commits come in bursts), and `--all` with `--jobs 2` under latency, read from
//! the `overall` event (the run as a whole). A binary without that event (before it existed) is
//! read the way its bars computed the overall ETA: the rows left of the tables started, over the
//! sum of their rates. On every `overall` event the bench also checks the invariant that the
//! run's ETA is never shorter than the slowest running table's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::report::{Row, Target, median};
use super::{Bench, Sample, credentials, dumped_rows, remove_dir, summarize};

/// The fractions of the rows at which the ETA is read.
const FRACTIONS: [f64; 4] = [0.10, 0.25, 0.50, 0.75];

/// One dump of the scenario: what to run and against which simulator.
struct EtaVariant {
    name: String,
    /// The tables and their rows; all of the catalog's with `all`.
    tables: Vec<(&'static str, u64)>,
    all: bool,
    strategy: &'static str,
    parallel: usize,
    jobs: usize,
    chunk: u64,
    latency_ms: u64,
}

/// What one run's progress lines say: per fraction, the ETA and the seconds really left.
struct Reading {
    seconds: f64,
    rows: u64,
    /// `(eta, actual)` per fraction of [`FRACTIONS`]; `None` where no line had an ETA.
    at: Vec<Option<(f64, f64)>>,
}

impl Bench<'_> {
    /// Scenario 8: the ETA error of each variant at each fraction of the rows.
    pub(super) fn eta(&self) -> Result<Vec<Row>> {
        let quick = self.plan.quick;
        let n = self.plan.big;
        let each = if quick { 600 } else { 30_000 };
        let all_tables: Vec<(&'static str, u64)> =
            iptvportal_tables().into_iter().map(|t| (t, each)).collect();
        let variants = [
            EtaVariant {
                name: "offset, latency 0".to_owned(),
                tables: vec![("terminal", n)],
                all: false,
                strategy: "offset",
                parallel: 1,
                jobs: 1,
                chunk: self.plan.chunk,
                latency_ms: 0,
            },
            EtaVariant {
                name: "id-range parallel 3, latency 100 ms".to_owned(),
                tables: vec![("terminal", n)],
                all: false,
                strategy: "id-range",
                parallel: 3,
                jobs: 1,
                chunk: self.plan.chunk,
                latency_ms: if quick { 20 } else { 100 },
            },
            EtaVariant {
                name: format!("--all ({} tables of {each} rows), --jobs 2, latency 50 ms", {
                    all_tables.len()
                }),
                tables: all_tables.clone(),
                all: true,
                strategy: "auto",
                parallel: 1,
                jobs: 2,
                chunk: if quick { 200 } else { 2000 },
                latency_ms: if quick { 5 } else { 50 },
            },
        ];
        let mut rows = Vec::new();
        for (i, variant) in variants.iter().enumerate() {
            let db = if variant.all {
                self.db("all-tables", each)
            } else {
                self.db("terminal", variant.tables[0].1)
            };
            let sim = self.sim(&db, &variant.tables, variant.latency_ms)?;
            let mut readings = Vec::new();
            for rep in 1..=self.plan.repetitions {
                let label = format!("s8-v{i}-r{rep}");
                let reading = self
                    .eta_run(sim.url(), variant, &label)
                    .with_context(|| format!("8 eta / {}, run {rep}", variant.name))?;
                let errors: Vec<String> = reading
                    .at
                    .iter()
                    .zip(FRACTIONS)
                    .map(|(at, f)| match at {
                        Some((eta, actual)) => format!(
                            "{:.0} %: eta {eta:.1} s, left {actual:.1} s ({:+.0} %)",
                            f * 100.0,
                            (eta / actual - 1.0) * 100.0
                        ),
                        None => format!("{:.0} %: no eta", f * 100.0),
                    })
                    .collect();
                eprintln!(
                    "  8 eta / {} (run {rep}): {:.2} s; {}",
                    variant.name,
                    reading.seconds,
                    errors.join("; ")
                );
                readings.push(reading);
            }
            rows.extend(self.eta_rows(variant, &readings));
        }
        Ok(rows)
    }

    /// The report's rows of one variant: one per fraction.
    fn eta_rows(&self, variant: &EtaVariant, readings: &[Reading]) -> Vec<Row> {
        let samples: Vec<Sample> = readings
            .iter()
            .map(|r| Sample { seconds: r.seconds, peak_rss_kib: None, rows: r.rows, bytes: None })
            .collect();
        FRACTIONS
            .iter()
            .enumerate()
            .map(|(i, fraction)| {
                let name = format!("{}: at {:.0} % of rows", variant.name, fraction * 100.0);
                let mut row = summarize("8 eta", &name, &samples);
                let errors: Vec<f64> = readings
                    .iter()
                    .filter_map(|r| r.at[i])
                    .map(|(eta, actual)| (eta - actual).abs() / actual)
                    .collect();
                let bound = if *fraction >= 0.5 { 0.10 } else { 0.25 };
                if errors.is_empty() {
                    // Only the quick sizes can leave a fraction without an ETA (a chunk or two).
                    row.ratio_meaning = Some("no line with an ETA at this fraction".to_owned());
                } else {
                    row.compare(
                        median(&errors),
                        "|eta - actual seconds left| / actual seconds left, median of the runs",
                        Some(Target::AtMost(bound)),
                        !self.plan.quick,
                    );
                }
                row
            })
            .collect()
    }

    /// Runs one dump with `--progress json`, stamping each line as it arrives.
    fn eta_run(&self, url: &str, variant: &EtaVariant, label: &str) -> Result<Reading> {
        let out = self.work.join("out").join(label);
        remove_dir(&out)?;
        let mut command = Command::new(&self.tools.cli);
        command.args(["--portal", url, "dump"]);
        if variant.all {
            command.arg("--all");
        } else {
            command.args(variant.tables.iter().map(|(t, _)| t));
        }
        command
            .arg("--out")
            .arg(&out)
            .args(["--format", "jsonl", "--strategy", variant.strategy])
            .args(["--chunk-size", &variant.chunk.to_string()])
            .args(["--parallel", &variant.parallel.to_string()])
            .args(["--jobs", &variant.jobs.to_string(), "--progress", "json"]);
        credentials(&mut command);
        let err_path = self.logs.join(format!("{label}.stderr"));
        let stderr =
            File::create(&err_path).with_context(|| format!("creating {}", err_path.display()))?;
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
        let started = Instant::now();
        let mut child = command.spawn().with_context(|| format!("starting {command:?}"))?;
        let stdout = child.stdout.take().context("the dump's stdout")?;
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading the dump's progress")?;
            lines.push((started.elapsed().as_secs_f64(), line));
        }
        let status = child.wait().context("waiting for the dump")?;
        let end = started.elapsed().as_secs_f64();
        if !status.success() {
            bail!(
                "{label} failed ({status}): {}",
                std::fs::read_to_string(&err_path).unwrap_or_default().trim()
            );
        }
        let log = self.logs.join(format!("{label}.stdout"));
        let mut text = String::new();
        for (t, l) in &lines {
            let _ = writeln!(text, "{t:.4} {l}");
        }
        std::fs::write(&log, text).with_context(|| format!("writing {}", log.display()))?;
        let mut rows = 0;
        for (table, expected) in &variant.tables {
            let dumped = dumped_rows(&out, table)?;
            ensure!(dumped == *expected, "{table}: dumped {dumped} rows, the table has {expected}");
            rows += dumped;
        }
        remove_dir(&out)?;
        let etas = if variant.all { overall_etas(&lines)? } else { table_etas(&lines)? };
        let at = FRACTIONS
            .iter()
            .map(|f| {
                etas.iter()
                    .find(|(_, done, _)| *done as f64 >= f * rows as f64)
                    .map(|&(t, _, eta)| (eta, end - t))
            })
            .collect();
        Ok(Reading { seconds: end, rows, at })
    }
}

/// `(arrival, rows done, eta)` of every running line of a one-table dump that has an ETA.
fn table_etas(lines: &[(f64, String)]) -> Result<Vec<(f64, u64, f64)>> {
    let mut etas = Vec::new();
    for (t, line) in lines {
        let v: Value = serde_json::from_str(line).with_context(|| format!("parsing {line}"))?;
        if v.get("event").is_some() || v["state"] != "running" {
            continue;
        }
        if let (Some(done), Some(eta)) = (v["dumped_rows"].as_u64(), v["eta_seconds"].as_f64()) {
            etas.push((*t, done, eta));
        }
    }
    Ok(etas)
}

/// `(arrival, rows done, eta)` of the run as a whole: the `overall` events, checked against
/// the slowest running table's ETA; or, from a binary without them, the overall ETA its bars
/// showed, from the tables' lines.
fn overall_etas(lines: &[(f64, String)]) -> Result<Vec<(f64, u64, f64)>> {
    let mut etas = Vec::new();
    let mut fallback = Vec::new();
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    let mut seen_event = false;
    for (t, line) in lines {
        let v: Value = serde_json::from_str(line).with_context(|| format!("parsing {line}"))?;
        match v.get("event").and_then(Value::as_str) {
            Some("overall") => {
                seen_event = true;
                let (Some(done), Some(eta)) =
                    (v["dumped_rows"].as_u64(), v["eta_seconds"].as_f64())
                else {
                    continue;
                };
                if v["state"] != "running" {
                    continue;
                }
                let slowest = last
                    .values()
                    .filter(|l| l["state"] == "running")
                    .filter_map(|l| l["eta_seconds"].as_f64())
                    .fold(0.0, f64::max);
                // Both are rounded to 0.1 s from the same snapshots.
                ensure!(
                    eta + 1e-9 >= slowest,
                    "the overall ETA {eta} s is shorter than a running table's {slowest} s: {line}"
                );
                etas.push((*t, done, eta));
            }
            Some(_) => {}
            None => {
                let table = v["table"].as_str().context("a progress line without a table")?;
                last.insert(table.to_owned(), v.clone());
                if let Some(entry) = bars_before(&last) {
                    fallback.push((*t, entry.0, entry.1));
                }
            }
        }
    }
    Ok(if seen_event { etas } else { fallback })
}

/// The overall ETA as the bars computed it before the `overall` event existed: the rows left of
/// the tables started so far over the sum of the running tables' rates of this run.
fn bars_before(last: &BTreeMap<String, Value>) -> Option<(u64, f64)> {
    let (mut rows, mut total, mut rate, mut running) = (0, 0, 0.0, 0);
    for l in last.values() {
        let done = l["dumped_rows"].as_u64().unwrap_or(0);
        rows += done;
        total += l["total_rows"].as_u64().unwrap_or(done);
        if !matches!(l["state"].as_str(), Some("done" | "failed" | "cancelled" | "paused")) {
            running += 1;
            rate += l["rows_per_second"].as_f64().unwrap_or(0.0);
        }
    }
    (running > 0 && rate > 0.0).then(|| (rows, total.saturating_sub(rows) as f64 / rate))
}

/// The catalog's tables, which `--all` dumps, from `iptvportal tables`' source: the catalog file.
fn iptvportal_tables() -> Vec<&'static str> {
    const CATALOG: &str = include_str!("../../../crates/catalog/catalog.toml");
    CATALOG
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_lists_every_table_once() {
        let tables = iptvportal_tables();
        assert!(tables.contains(&"terminal") && tables.contains(&"terminal_playlog"), "{tables:?}");
        let mut unique = tables.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), tables.len(), "{tables:?}");
    }

    #[test]
    fn the_overall_eta_is_checked_against_the_slowest_table() {
        let line = |table: &str, eta: f64| {
            format!(
                r#"{{"table":"{table}","state":"running","dumped_rows":10,"total_rows":100,"percent":10.0,"rows_per_second":5.0,"eta_seconds":{eta},"chunk":1}}"#
            )
        };
        let overall = |eta: f64| {
            format!(
                r#"{{"event":"overall","state":"running","dumped_rows":20,"total_rows":200,"percent":10.0,"rows_per_second":10.0,"eta_seconds":{eta},"tables":2,"waiting":0,"running":2,"paused":0,"done":0,"failed":0,"cancelled":0}}"#
            )
        };
        let good = [(0.1, line("a", 3.0)), (0.2, line("b", 9.0)), (0.2, overall(9.0))];
        assert_eq!(overall_etas(&good).unwrap(), vec![(0.2, 20, 9.0)]);
        let bad = [(0.1, line("a", 3.0)), (0.2, line("b", 9.0)), (0.2, overall(8.0))];
        assert!(overall_etas(&bad).is_err());
        // Without the event, the old bars' estimate: 180 rows left at 10 rows/s.
        let old = [(0.1, line("a", 3.0)), (0.2, line("b", 9.0))];
        assert_eq!(overall_etas(&old).unwrap(), vec![(0.1, 10, 18.0), (0.2, 20, 18.0)]);
    }
}

//! `cargo xtask bench [--quick] [--json FILE]`: the dump's speed and memory against the simulator,
//! measured on the real binaries as separate processes.
//!
//! It builds `iptvportal`, `iptvportal-sim` and the `bench-fetch` baseline in release, starts the
//! simulator on loopback (one generated database file per size under `target/bench/db/`, reused
//! by every simulator of a run and by later runs), runs each scenario's variants interleaved (so
//! that a burst of load on the shared machine hits all of them alike), repeats them (3 times; once
//! with `--quick`) and reports the median wall time, rows/s, output bytes per row and the peak
//! resident set of the dump process (`VmHWM`, polled every 20 ms). Every run's row count is read
//! back from the checkpoint the dump wrote, so a run that exported the wrong rows fails the bench.
//!
//! Scenarios and targets (design §10; the numbers of one machine are in `docs/benchmarks.md`):
//! 1. traversal: OFFSET vs ID_RANGE (latency 0), ID_RANGE parallel 3 vs sequential (latency 20 ms);
//!    OFFSET also against a simulator with SQLite's cheap native skip, for information only (the
//!    default simulator pays for every skipped row, as the real portal's `PostgreSQL` does);
//! 2. pipeline: a JSONL dump vs a fetch-and-discard loop sending the same requests;
//! 3. formats: jsonl, csv, json (plain and gzip) and parquet;
//! 4. memory: peak RSS of 100,000 vs 1,000,000 rows (jsonl and parquet, parallel 3);
//! 5. many tables: four tables with `--jobs 2` vs `--jobs 1` (latency 20 ms);
//! 6. verify: `iptvportal verify` of a 1,000,000-row dump (jsonl gzip and parquet) vs the dump.
//! 7. plan: `iptvportal plan`'s time estimate vs the dump it estimates (latency 20 ms), within 25 %.
//! 8. eta: the ETA of `--progress json` vs the time really left, at 10 %, 25 %, 50 % and 75 % of
//!    the rows, for OFFSET, parallel id-range and `--all --jobs 2`; within 25 % from 10 % of the
//!    rows on, within 10 % from 50 % on.
//! 9. sync: `iptvportal sync` of 1,000,000 `terminal` rows, a snapshot, then deltas after 1 %
//!    inserted, 1 % updated, 0.1 % deleted and nothing changed (`xtask/src/bench/sync.rs`); each
//!    delta within 0.05 of the snapshot's wall time (latency 0; at 20 ms for information).
//! 10. s3: `dump --out s3://` to `moto_server` on loopback vs into a local directory, 1,000,000
//!     `terminal` rows, parquet and jsonl (`xtask/src/bench/s3.rs`): rows/s ratio >= 0.5, with
//!     moto's CPU share of the run; peak RSS of jsonl at 1,000,000 rows (ten parts) within 1.15
//!     of 100,000 rows (one part), and for information with glibc returning freed buffers. Needs
//!     `moto_server` (`cargo xtask venv`), or fails saying so.
//!
//! `--only NAME[,NAME]` runs those scenarios alone ([`SCENARIOS`] names them).
//!
//! `--quick` runs the same scenarios on a few thousand rows: it proves the harness works end to end
//! and enforces no target. A unit test runs it against debug binaries, so the harness cannot rot.

mod eta;
mod plan;
mod process;
mod report;
mod s3;
mod sync;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::project_root;
use process::{SimProcess, run_measured};
use report::{Machine, Report, Row, Target, median};

/// The command line of `cargo xtask bench`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// Small sizes, one repetition, no target enforced.
    pub(crate) quick: bool,
    /// Where the JSON report goes (default `target/bench/bench.json`).
    pub(crate) json: Option<PathBuf>,
    /// The scenarios to run, by name (`--only eta,plan`); every one when empty.
    pub(crate) only: Vec<String>,
}

/// The names `--only` takes, in the order the scenarios run.
pub(crate) const SCENARIOS: [&str; 10] = [
    "traversal",
    "pipeline",
    "formats",
    "plan",
    "memory",
    "many-tables",
    "verify",
    "eta",
    "sync",
    "s3",
];

/// Runs the bench: build, measure, print the table, write the JSON file.
pub(crate) fn run(options: &Options) -> Result<()> {
    let root = project_root();
    let tools = Tools::build(&root, Profile::Release)?;
    let work = root.join("target/bench");
    if let Some(unknown) = options.only.iter().find(|n| !SCENARIOS.contains(&n.as_str())) {
        bail!("--only: no scenario {unknown:?}; the scenarios are {}", SCENARIOS.join(", "));
    }
    let mut plan = if options.quick { Plan::quick() } else { Plan::full() };
    plan.only.clone_from(&options.only);
    let report = run_plan(&tools, &plan, &work)?;
    print!("{}", report.table());
    let json = options.json.clone().unwrap_or_else(|| work.join("bench.json"));
    write_json(&report, &json)?;
    let (pass, miss) = report.verdicts();
    if options.quick {
        println!(
            "\nquick mode: the harness works; targets are not checked. JSON: {}",
            json.display()
        );
    } else {
        println!("\ntargets: {pass} pass, {miss} miss. JSON: {}", json.display());
    }
    Ok(())
}

fn write_json(report: &Report, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Sizes and repetitions of a run.
#[derive(Debug, Clone)]
struct Plan {
    quick: bool,
    repetitions: usize,
    chunk: u64,
    /// `terminal` rows of scenarios 1 to 3.
    big: u64,
    /// `terminal` rows of the two memory runs (and of the s3 scenario's).
    memory_small: u64,
    memory_large: u64,
    /// Rows of each of the four tables of scenario 5.
    many: u64,
    /// Simulator latency of the parallel and many-table scenarios.
    latency_ms: u64,
    /// `--only`: the scenarios to run; every one when empty.
    only: Vec<String>,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            quick: false,
            repetitions: 3,
            chunk: 5000,
            big: 500_000,
            memory_small: 100_000,
            memory_large: 1_000_000,
            many: 50_000,
            latency_ms: 20,
            only: Vec::new(),
        }
    }

    fn quick() -> Plan {
        Plan {
            quick: true,
            repetitions: 1,
            chunk: 1000,
            big: 4000,
            memory_small: 2000,
            memory_large: 6000,
            many: 1500,
            latency_ms: 20,
            only: Vec::new(),
        }
    }

    /// Whether the scenario called `name` (one of [`SCENARIOS`]) runs.
    fn runs(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|n| n == name)
    }
}

/// Which cargo profile the measured binaries come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Release,
    /// The test's: the workspace's debug build is already there, a release one would take minutes.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "only the quick-mode test runs debug binaries")
    )]
    Debug,
}

/// The binaries the bench drives.
#[derive(Debug, Clone)]
struct Tools {
    cli: PathBuf,
    sim: PathBuf,
    fetch: PathBuf,
}

impl Tools {
    /// Builds the three binaries in one cargo invocation (so features unify as in a plain build)
    /// and takes their paths from cargo's own artifact messages.
    fn build(root: &Path, profile: Profile) -> Result<Tools> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command.current_dir(root).arg("build");
        if profile == Profile::Release {
            command.arg("--release");
        } else {
            command.arg("--quiet");
        }
        command
            .args(["-p", "iptvportal-cli", "-p", "iptvportal-sim", "-p", "xtask"])
            .args(["--features", "xtask/bench-fetch"])
            .args(["--bin", "iptvportal", "--bin", "iptvportal-sim", "--bin", "bench-fetch"])
            .arg("--message-format=json-render-diagnostics")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        eprintln!("building the binaries ({profile:?})");
        let output = command.output().context("running cargo build")?;
        ensure!(output.status.success(), "cargo build failed ({})", output.status);
        let mut found = [None, None, None];
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Ok(message) = serde_json::from_str::<Value>(line) else { continue };
            let (Some(name), Some(exe)) =
                (message["target"]["name"].as_str(), message["executable"].as_str())
            else {
                continue;
            };
            let slot = match name {
                "iptvportal" => 0,
                "iptvportal-sim" => 1,
                "bench-fetch" => 2,
                _ => continue,
            };
            found[slot] = Some(PathBuf::from(exe));
        }
        let [Some(cli), Some(sim), Some(fetch)] = found else {
            bail!("cargo build did not report all three executables: {found:?}");
        };
        Ok(Tools { cli, sim, fetch })
    }
}

/// One run's measurements.
#[derive(Debug, Clone)]
struct Sample {
    seconds: f64,
    peak_rss_kib: Option<u64>,
    rows: u64,
    bytes: Option<u64>,
}

/// Runs a variant once; the argument labels its logs and output directory.
type RunOnce<'a> = Box<dyn Fn(&str) -> Result<Sample> + 'a>;

/// A variant of a scenario: a name and how to run it once.
struct Variant<'a> {
    name: String,
    run: RunOnce<'a>,
}

impl<'a> Variant<'a> {
    fn new(name: impl Into<String>, run: impl Fn(&str) -> Result<Sample> + 'a) -> Variant<'a> {
        Variant { name: name.into(), run: Box::new(run) }
    }
}

/// A dump to run with `iptvportal dump`.
#[derive(Debug, Clone)]
struct DumpSpec {
    tables: Vec<(&'static str, u64)>,
    format: &'static str,
    compress: bool,
    strategy: &'static str,
    parallel: usize,
    jobs: usize,
}

impl DumpSpec {
    fn terminal(rows: u64) -> DumpSpec {
        DumpSpec {
            tables: vec![("terminal", rows)],
            format: "jsonl",
            compress: false,
            strategy: "id-range",
            parallel: 1,
            jobs: 1,
        }
    }
}

/// What every scenario shares: the binaries, the sizes and the working directories.
struct Bench<'a> {
    tools: &'a Tools,
    plan: &'a Plan,
    work: PathBuf,
    logs: PathBuf,
}

/// Runs every scenario of `plan` with `tools`, working under `work`.
fn run_plan(tools: &Tools, plan: &Plan, work: &Path) -> Result<Report> {
    let logs = work.join("logs");
    for dir in [work.join("db"), work.join("out"), logs.clone()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut machine = Machine::probe();
    let bench = Bench { tools, plan, work: work.to_owned(), logs };
    let mut rows = Vec::new();
    if ["traversal", "pipeline", "formats", "plan"].iter().any(|s| plan.runs(s)) {
        let terminal = [("terminal", plan.big)];
        let db = bench.db("terminal", plan.big);
        let fast = bench.sim(&db, &terminal, 0)?;
        let slow = bench.sim(&db, &terminal, plan.latency_ms)?;
        let native = bench.sim_with(&db, &terminal, 0, &["--offset", "native"])?;
        if plan.runs("traversal") {
            rows.extend(bench.traversal(fast.url(), native.url(), slow.url())?);
        }
        if plan.runs("pipeline") {
            rows.extend(bench.pipeline(fast.url())?);
        }
        if plan.runs("formats") {
            rows.extend(bench.formats(fast.url())?);
        }
        if plan.runs("plan") {
            rows.extend(bench.plan_estimates(slow.url())?);
        }
    }
    if plan.runs("memory") {
        rows.extend(bench.memory()?);
    }
    if plan.runs("many-tables") {
        rows.extend(bench.many_tables()?);
    }
    if plan.runs("verify") {
        rows.extend(bench.verify()?);
    }
    if plan.runs("eta") {
        rows.extend(bench.eta()?);
    }
    if plan.runs("sync") {
        rows.extend(bench.sync()?);
    }
    if plan.runs("s3") {
        rows.extend(bench.s3()?);
    }
    machine.load_after = report::load_average();
    Ok(Report {
        mode: if plan.quick { "quick" } else { "full" },
        repetitions: plan.repetitions,
        machine,
        rows,
    })
}

impl Bench<'_> {
    /// The database file for `name` at `rows` rows: one file per size, since the simulator
    /// generates a file only when it is absent (an existing one is served as it is).
    fn db(&self, name: &str, rows: u64) -> PathBuf {
        self.work.join("db").join(format!("{name}-{rows}.db"))
    }

    /// A simulator with the default settings (OFFSET materialized) but `latency_ms`.
    fn sim(&self, db: &Path, rows: &[(&str, u64)], latency_ms: u64) -> Result<SimProcess> {
        self.sim_with(db, rows, latency_ms, &[])
    }

    /// A simulator with further `serve` flags; they name its log file too.
    fn sim_with(
        &self,
        db: &Path,
        rows: &[(&str, u64)],
        latency_ms: u64,
        extra: &[&str],
    ) -> Result<SimProcess> {
        let stem = db.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let flags: String = extra.iter().flat_map(|f| ["-", f.trim_start_matches('-')]).collect();
        let log = self.logs.join(format!("sim-{stem}-latency{latency_ms}{flags}.log"));
        SimProcess::start(&self.tools.sim, db, rows, latency_ms, extra, &log)
    }

    /// Scenario 1: OFFSET vs ID_RANGE, and parallel vs sequential ID_RANGE under latency. OFFSET
    /// runs twice: against `fast`, the default simulator, which pays for every skipped row as the
    /// real portal's `PostgreSQL` does (the target's ratio), and against `native`, a simulator over
    /// the same file with SQLite's own OFFSET, whose cheap skips the ratio column shows for
    /// comparison only.
    fn traversal(&self, fast: &str, native: &str, slow: &str) -> Result<Vec<Row>> {
        let n = self.plan.big;
        let latency = self.plan.latency_ms;
        let offset = DumpSpec { strategy: "offset", ..DumpSpec::terminal(n) };
        let parallel = DumpSpec { parallel: 3, ..DumpSpec::terminal(n) };
        let mut rows = self.measure(
            "1 traversal",
            &[
                Variant::new("offset, latency 0", |l| self.dump(fast, &offset, l)),
                Variant::new("offset, native SQLite skip, latency 0", |l| {
                    self.dump(native, &offset, l)
                }),
                Variant::new("id-range, latency 0", |l| self.dump(fast, &DumpSpec::terminal(n), l)),
                Variant::new(format!("id-range, latency {latency} ms"), |l| {
                    self.dump(slow, &DumpSpec::terminal(n), l)
                }),
                Variant::new(format!("id-range parallel 3, latency {latency} ms"), |l| {
                    self.dump(slow, &parallel, l)
                }),
            ],
        )?;
        let id_range = rows[2].median_seconds;
        let speedup = rows[0].median_seconds / id_range;
        rows[2].compare(
            speedup,
            "OFFSET seconds (skipped rows materialized, as PostgreSQL does) / ID_RANGE seconds",
            Some(Target::AtLeast(3.0)),
            !self.plan.quick,
        );
        let native_speedup = rows[1].median_seconds / id_range;
        rows[1].compare(
            native_speedup,
            "OFFSET seconds with SQLite's native skip / ID_RANGE seconds (information, no target)",
            None,
            !self.plan.quick,
        );
        let speedup = rows[3].median_seconds / rows[4].median_seconds;
        rows[4].compare(
            speedup,
            "sequential ID_RANGE seconds / parallel 3 seconds, same latency",
            Some(Target::AtLeast(2.4)),
            !self.plan.quick,
        );
        Ok(rows)
    }

    /// Scenario 2: the dump against a loop that fetches the same pages and discards them.
    fn pipeline(&self, fast: &str) -> Result<Vec<Row>> {
        let n = self.plan.big;
        let mut rows = self.measure(
            "2 pipeline",
            &[
                Variant::new("fetch and discard (bench-fetch)", |l| self.fetch(fast, n, l)),
                Variant::new("dump jsonl, id-range", |l| {
                    self.dump(fast, &DumpSpec::terminal(n), l)
                }),
            ],
        )?;
        let efficiency = rows[1].rows_per_sec / rows[0].rows_per_sec;
        rows[1].compare(
            efficiency,
            "dump rows/s / fetch-and-discard rows/s",
            Some(Target::AtLeast(0.8)),
            !self.plan.quick,
        );
        Ok(rows)
    }

    /// Scenario 3: every format, plain and gzip.
    fn formats(&self, fast: &str) -> Result<Vec<Row>> {
        let n = self.plan.big;
        let specs: Vec<DumpSpec> = [
            ("jsonl", false),
            ("jsonl", true),
            ("csv", false),
            ("csv", true),
            ("json", false),
            ("json", true),
            ("parquet", false),
        ]
        .into_iter()
        .map(|(format, compress)| DumpSpec { format, compress, ..DumpSpec::terminal(n) })
        .collect();
        let variants: Vec<Variant<'_>> = specs
            .iter()
            .map(|spec| {
                let name = format!("{}{}", spec.format, if spec.compress { " gzip" } else { "" });
                Variant::new(name, move |l| self.dump(fast, spec, l))
            })
            .collect();
        let mut rows = self.measure("3 formats", &variants)?;
        let base = rows[0].median_seconds;
        for row in &mut rows[1..] {
            let ratio = base / row.median_seconds;
            row.compare(ratio, "jsonl seconds / this format's seconds", None, !self.plan.quick);
        }
        Ok(rows)
    }

    /// Scenario 4: peak memory of a small and a large table, parallel 3.
    fn memory(&self) -> Result<Vec<Row>> {
        let (small, large) = (self.plan.memory_small, self.plan.memory_large);
        let small_db = self.db("terminal", small);
        let large_db = self.db("terminal", large);
        let small_sim = self.sim(&small_db, &[("terminal", small)], 0)?;
        let large_sim = self.sim(&large_db, &[("terminal", large)], 0)?;
        let spec = |rows, format| DumpSpec { format, parallel: 3, ..DumpSpec::terminal(rows) };
        let (js, jl) = (spec(small, "jsonl"), spec(large, "jsonl"));
        let (ps, pl) = (spec(small, "parquet"), spec(large, "parquet"));
        let mut rows = self.measure(
            "4 memory",
            &[
                Variant::new(format!("jsonl {small} rows"), |l| self.dump(small_sim.url(), &js, l)),
                Variant::new(format!("jsonl {large} rows"), |l| self.dump(large_sim.url(), &jl, l)),
                Variant::new(format!("parquet {small} rows"), |l| {
                    self.dump(small_sim.url(), &ps, l)
                }),
                Variant::new(format!("parquet {large} rows"), |l| {
                    self.dump(large_sim.url(), &pl, l)
                }),
            ],
        )?;
        for pair in [0, 2] {
            let base = rows[pair].peak_rss_mib.context("no peak RSS was sampled")?;
            let big = rows[pair + 1].peak_rss_mib.context("no peak RSS was sampled")?;
            rows[pair + 1].compare(
                big / base,
                &format!("peak RSS at {large} rows / at {small} rows"),
                Some(Target::AtMost(1.15)),
                !self.plan.quick,
            );
        }
        Ok(rows)
    }

    /// Scenario 5: four tables with two jobs against one, under latency.
    fn many_tables(&self) -> Result<Vec<Row>> {
        let n = self.plan.many;
        let tables: Vec<(&'static str, u64)> =
            ["terminal", "tv_program", "terminal_playlog", "subscriber"]
                .into_iter()
                .map(|t| (t, n))
                .collect();
        let db = self.db("four-tables", n);
        let sim = self.sim(&db, &tables, self.plan.latency_ms)?;
        let spec = |jobs| DumpSpec { tables: tables.clone(), jobs, ..DumpSpec::terminal(n) };
        let (one, two) = (spec(1), spec(2));
        let mut rows = self.measure(
            "5 many tables",
            &[
                Variant::new("4 tables, --jobs 1", |l| self.dump(sim.url(), &one, l)),
                Variant::new("4 tables, --jobs 2", |l| self.dump(sim.url(), &two, l)),
            ],
        )?;
        let speedup = rows[0].median_seconds / rows[1].median_seconds;
        rows[1].compare(
            speedup,
            "--jobs 1 seconds / --jobs 2 seconds",
            Some(Target::AtLeast(1.7)),
            !self.plan.quick,
        );
        Ok(rows)
    }

    /// Scenario 6: `iptvportal verify` of a large dump (every file read, every CRC-32 and Parquet
    /// footer checked) against the dump itself, each pair measured back to back.
    fn verify(&self) -> Result<Vec<Row>> {
        let large = self.plan.memory_large;
        let db = self.db("terminal", large);
        let sim = self.sim(&db, &[("terminal", large)], 0)?;
        let specs = [
            DumpSpec { compress: true, parallel: 3, ..DumpSpec::terminal(large) },
            DumpSpec { format: "parquet", parallel: 3, ..DumpSpec::terminal(large) },
        ];
        let mut samples: Vec<(Vec<Sample>, Vec<Sample>, Vec<Sample>)> =
            vec![Default::default(); specs.len()];
        for rep in 1..=self.plan.repetitions {
            for (i, spec) in specs.iter().enumerate() {
                let label = format!("s6-v{i}-r{rep}");
                let (dumped, out) = self.dump_kept(sim.url(), spec, &label)?;
                let mut command = Command::new(&self.tools.cli);
                command.arg("verify").arg(&out);
                let measured = run_measured(&mut command, &self.logs, &format!("{label}-verify"))?;
                // A verify that finds a problem exits 1, which fails the run above.
                // The same dump again: "already complete" after checking every file's CRC-32.
                let state = out.join(".terminal.state.json");
                let before = std::fs::read(&state).context("reading the state")?;
                let mut again = self.dump_command(sim.url(), spec, &out);
                let rerun = run_measured(&mut again, &self.logs, &format!("{label}-rerun"))?;
                ensure!(
                    std::fs::read(&state).context("reading the state")? == before,
                    "the rerun of {} did not find the dump complete",
                    out.display()
                );
                eprintln!(
                    "  6 verify / {} (run {rep}): dump {:.2} s, verify {:.2} s, rerun {:.2} s",
                    spec.format, dumped.seconds, measured.seconds, rerun.seconds
                );
                let reran = Sample {
                    seconds: rerun.seconds,
                    peak_rss_kib: rerun.peak_rss_kib,
                    rows: dumped.rows,
                    bytes: None,
                };
                let verified = Sample {
                    seconds: measured.seconds,
                    peak_rss_kib: measured.peak_rss_kib,
                    rows: dumped.rows,
                    bytes: None,
                };
                samples[i].0.push(dumped);
                samples[i].1.push(verified);
                samples[i].2.push(reran);
                remove_dir(&out)?;
            }
        }
        let mut rows = Vec::new();
        for (spec, (dumps, verifies, reruns)) in specs.iter().zip(samples) {
            let name = format!("{}{}", spec.format, if spec.compress { " gzip" } else { "" });
            let dump = summarize("6 verify", &format!("dump {name} {large} rows"), &dumps);
            let mut verify =
                summarize("6 verify", &format!("verify {name} {large} rows"), &verifies);
            verify.compare(
                verify.median_seconds / dump.median_seconds,
                "verify seconds / dump seconds",
                Some(Target::AtMost(0.2)),
                !self.plan.quick,
            );
            let mut rerun = summarize(
                "6 verify",
                &format!("rerun of the complete dump {name} {large} rows"),
                &reruns,
            );
            rerun.compare(
                rerun.median_seconds / dump.median_seconds,
                "rerun seconds / dump seconds (information, no target)",
                None,
                !self.plan.quick,
            );
            rows.extend([dump, verify, rerun]);
        }
        Ok(rows)
    }

    /// Runs every variant `repetitions` times, interleaved, and summarizes each.
    fn measure(&self, scenario: &str, variants: &[Variant<'_>]) -> Result<Vec<Row>> {
        let reps = self.plan.repetitions;
        let mut samples: Vec<Vec<Sample>> = variants.iter().map(|_| Vec::new()).collect();
        for rep in 1..=reps {
            for (i, variant) in variants.iter().enumerate() {
                let label = format!("s{}-v{i}-r{rep}", scenario.split(' ').next().unwrap_or("x"));
                let sample = (variant.run)(&label)
                    .with_context(|| format!("{scenario} / {}, run {rep}", variant.name))?;
                eprintln!(
                    "  {scenario} / {} (run {rep}/{reps}): {} rows in {:.2} s, peak {} KiB",
                    variant.name,
                    sample.rows,
                    sample.seconds,
                    sample.peak_rss_kib.map_or_else(|| "?".to_owned(), |k| k.to_string())
                );
                samples[i].push(sample);
            }
        }
        Ok(variants.iter().zip(samples).map(|(v, s)| summarize(scenario, &v.name, &s)).collect())
    }

    /// Runs `iptvportal dump` once and checks, from its checkpoints, that it exported every row.
    fn dump(&self, url: &str, spec: &DumpSpec, label: &str) -> Result<Sample> {
        let (sample, out) = self.dump_kept(url, spec, label)?;
        // The outputs of a large run are hundreds of MiB; only the numbers are kept.
        remove_dir(&out)?;
        Ok(sample)
    }

    /// The `iptvportal dump` command of `spec` into `out`.
    fn dump_command(&self, url: &str, spec: &DumpSpec, out: &Path) -> Command {
        let mut command = Command::new(&self.tools.cli);
        command
            .args(["--portal", url, "dump"])
            .args(spec.tables.iter().map(|(t, _)| t))
            .arg("--out")
            .arg(out)
            .args(["--format", spec.format, "--strategy", spec.strategy])
            .args(["--chunk-size", &self.plan.chunk.to_string()])
            .args(["--parallel", &spec.parallel.to_string(), "--jobs", &spec.jobs.to_string()])
            .args(["--progress", "none"]);
        if spec.compress {
            command.arg("--compress");
        }
        credentials(&mut command);
        command
    }

    /// [`Bench::dump`], keeping the output in the directory it returns.
    fn dump_kept(&self, url: &str, spec: &DumpSpec, label: &str) -> Result<(Sample, PathBuf)> {
        let out = self.work.join("out").join(label);
        remove_dir(&out)?;
        let mut command = self.dump_command(url, spec, &out);
        let measured = run_measured(&mut command, &self.logs, label)?;
        let mut rows = 0;
        for (table, expected) in &spec.tables {
            let dumped = dumped_rows(&out, table)?;
            ensure!(dumped == *expected, "{table}: dumped {dumped} rows, the table has {expected}");
            rows += dumped;
        }
        let bytes = data_bytes(&out)?;
        let sample = Sample {
            seconds: measured.seconds,
            peak_rss_kib: measured.peak_rss_kib,
            rows,
            bytes: Some(bytes),
        };
        Ok((sample, out))
    }

    /// Runs the fetch-and-discard baseline once over `terminal`.
    fn fetch(&self, url: &str, expected: u64, label: &str) -> Result<Sample> {
        let mut command = Command::new(&self.tools.fetch);
        command.args(["--portal", url, "--table", "terminal"]);
        command.args(["--chunk-size", &self.plan.chunk.to_string()]);
        credentials(&mut command);
        let measured = run_measured(&mut command, &self.logs, label)?;
        let rows: u64 =
            measured.stdout.trim().parse().context("bench-fetch printed no row count")?;
        ensure!(rows == expected, "bench-fetch fetched {rows} rows, the table has {expected}");
        Ok(Sample {
            seconds: measured.seconds,
            peak_rss_kib: measured.peak_rss_kib,
            rows,
            bytes: None,
        })
    }
}

/// The simulator's default account, and no other portal setting from the environment.
fn credentials(command: &mut Command) {
    command
        .env("IPTVPORTAL_USERNAME", "admin")
        .env("IPTVPORTAL_PASSWORD", "admin")
        .env_remove("IPTVPORTAL_URL")
        .env_remove("IPTVPORTAL_DOMAIN");
}

fn summarize(scenario: &str, variant: &str, samples: &[Sample]) -> Row {
    let seconds: Vec<f64> = samples.iter().map(|s| s.seconds).collect();
    let median_seconds = median(&seconds);
    let rows = samples.last().map_or(0, |s| s.rows);
    let peak = samples.iter().filter_map(|s| s.peak_rss_kib).max();
    let bytes = samples.last().and_then(|s| s.bytes);
    Row {
        scenario: scenario.to_owned(),
        variant: variant.to_owned(),
        rows,
        seconds,
        median_seconds,
        rows_per_sec: rows as f64 / median_seconds,
        bytes_per_row: bytes.filter(|_| rows > 0).map(|b| b as f64 / rows as f64),
        peak_rss_mib: peak.map(|k| k as f64 / 1024.0),
        ratio: None,
        ratio_meaning: None,
        target: None,
        verdict: None,
    }
}

/// `dumped_rows` of a table's checkpoint, which the dump writes next to its output.
fn dumped_rows(out: &Path, table: &str) -> Result<u64> {
    let path = out.join(format!(".{table}.state.json"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let state: Value = serde_json::from_str(&text)?;
    ensure!(state["is_complete"] == Value::Bool(true), "{table}: the checkpoint is not complete");
    state["dumped_rows"].as_u64().with_context(|| format!("{}: no dumped_rows", path.display()))
}

/// Bytes of the data files in `out` (the checkpoints, dot files, excluded).
fn data_bytes(out: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(out).with_context(|| format!("listing {}", out.display()))? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo xtask bench --quick` on debug binaries: every scenario end to end on a few thousand
    /// rows. Under `cargo test --workspace` the cli and sim binaries are already built (their
    /// integration tests need them), so this costs the runs themselves: about 3 s, and a few more
    /// for `moto_server` to start (scenario 10 needs it: `cargo xtask venv`, which CI runs before
    /// the tests). (The first run on a fresh checkout also compiles `bench-fetch`, about 45 s on 2
    /// cores.)
    #[test]
    fn quick_bench_runs_end_to_end() {
        let root = project_root();
        let tools = Tools::build(&root, Profile::Debug).expect("building the binaries");
        let work = root.join("target/bench-test");
        let report = run_plan(&tools, &Plan::quick(), &work).expect("the quick bench");
        let table = report.table();
        for (scenario, variants) in [
            ("1 traversal", 5),
            ("2 pipeline", 2),
            ("3 formats", 7),
            ("4 memory", 4),
            ("5 many tables", 2),
            ("7 plan", 3),
            ("8 eta", 12),
            ("10 s3", 6),
        ] {
            let rows: Vec<&Row> = report.rows.iter().filter(|r| r.scenario == scenario).collect();
            assert_eq!(rows.len(), variants, "{scenario}:\n{table}");
            for r in rows {
                assert!(r.rows > 0 && r.rows_per_sec > 0.0, "{scenario} / {}:\n{table}", r.variant);
            }
        }
        // A snapshot and four deltas per latency, each with its phases read from its log.
        let sync: Vec<&Row> = report.rows.iter().filter(|r| r.scenario == "9 sync").collect();
        assert_eq!(sync.len(), 10, "{table}");
        assert!(
            sync.iter().all(|r| r.ratio_meaning.as_deref().is_some_and(|m| !m.contains('?'))),
            "{table}"
        );
        assert!(report.rows.iter().all(|r| r.verdict != Some(report::Verdict::Miss)), "{table}");
        // The native-skip OFFSET run is information: a ratio, no target.
        let native = report
            .rows
            .iter()
            .find(|r| r.variant.contains("native"))
            .unwrap_or_else(|| panic!("{table}"));
        assert!(native.ratio.is_some() && native.target.is_none(), "{table}");
        write_json(&report, &work.join("bench.json")).expect("writing the JSON");
    }
}

//! Incremental sync (issue 14): `iptvportal sync` and `iptvportal materialize` against a
//! simulator of their own whose database `iptvportal-sim mutate` changes between runs and
//! during one. The SQLite file is the truth every output is compared with.
//!
//! 1. **Kill trials**: SIGKILLs at seeded moments spread over each run's duration (and some
//!    aimed at the moment the run's dump has completed, before its deletes and record are
//!    committed), over snapshot and delta runs in JSONL, CSV+gzip and Parquet, each followed by
//!    the same command. The rerun exits 0, `iptvportal verify` passes every run directory, the
//!    run's files equal an uninterrupted run's of the same window, `materialize` equals SQLite,
//!    and while a run is left killed `materialize` and the DuckDB query still read the last
//!    complete run. The uninterrupted run is a second sync with its own `--out` (`sync.json`
//!    records the portal, so it cannot share one) against the same simulator at the same
//!    database state: nothing changes the database between the two, so it reads an identical
//!    copy of the data.
//! 2. **History**: one scripted series of changes, synced after each step into three `--out`
//!    directories (JSONL, CSV+gzip, Parquet): a snapshot; inserts; updates; deletes; all three;
//!    updates tied on the window's end (fetched by the run whose window ends there and not by
//!    the next); a mutation committed while the runs fetch (with `--chunk-size 100 --parallel
//!    1`, so they take a while) and the run after it; then a portal whose latest change is
//!    ahead of this machine's clock, so that a window ends `--lag` before it: ties on that end,
//!    and rows committed late, older than the latest change by less than the lag. After every
//!    run, `materialize` (and, the last time, every other format) equals SQLite, the DuckDB
//!    query of docs/sync.md does too, and `sync.json`'s counts agree with the mutations and with
//!    SQLite.
//!
//! Every mutation's instant is given (`--at`), so the windows do not depend on this machine's
//! clock: the first values are in 2025, after every generated one and long before now, so a
//! window takes in the portal's latest value itself (the portal has been quiet for longer than
//! the lag); the last ones are in 2099, so it ends the lag before it.

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::strings;
use crate::files::{self, Format, Output};
use crate::proc::{Cli, Run, Sim, Spawned};
use crate::report::Report;
use crate::{Ctx, python};

const TABLE: &str = "terminal";

/// The phase's simulator: `terminal` big enough for runs of many chunks, the rest small.
const ROWS: &str = "terminal=20000,subscriber=500,package=20,subscriber_package=300,media=50,\
tv_channel=30,tv_program=200,tv_category=10,tv_program_category=200,terminal_playlog=200";

const LAG: &str = "60s";
const LIMIT: Duration = Duration::from_secs(60);

/// The syncs of the history and of the kill trials.
const OUTPUTS: [Output; 3] = [
    Output { format: Format::Jsonl, gzip: false },
    Output { format: Format::Csv, gzip: true },
    Output { format: Format::Parquet, gzip: false },
];

/// Chunk size of the history's runs and of the kill trials' (many chunks per run).
const HISTORY_CHUNK: &str = "500";
const KILL_CHUNK: &str = "200";

/// Kill trials run until this many kills have landed or [`KILL_BUDGET`] has passed (twice that
/// at most, while fewer than [`MIN_KILLS`] have); at least [`MIN_KILLS`] must have.
const KILL_TARGET: u64 = 120;
const MIN_KILLS: u64 = 100;
const KILL_BUDGET: Duration = Duration::from_secs(80);
/// Snapshot trials per output, before the delta rounds.
const SNAPSHOT_TRIALS: u64 = 3;
/// The changes of each delta round of the kill trials: a few thousand rows.
const ROUND: (u64, u64, u64) = (150, 2500, 80);
/// Killed states copied for the DuckDB query to read, per output.
const KILLED_COPIES: u64 = 6;

/// The marked block of docs/sync.md that holds the DuckDB queries.
const BEGIN: &str = "<!-- duckdb-materialize: begin -->";
const END: &str = "<!-- duckdb-materialize: end -->";

/// What the phase needs besides the context.
struct Env<'a> {
    ctx: &'a Ctx,
    cli: Cli,
    db: PathBuf,
    root: PathBuf,
    queries: Option<Queries>,
    snapshots: Cell<u32>,
}

/// Runs the phase on a simulator of its own.
pub(crate) fn run(ctx: &Ctx, report: &mut Report) {
    let started = Instant::now();
    let seed = ctx.seed.to_string();
    let args =
        ["--rows", ROWS, "--seed", &seed, "--user", crate::USER, "--password", crate::PASSWORD];
    let db = ctx.work.join("sync-sim.db");
    let sim = match Sim::start(&ctx.sim_bin, &db, &args, &ctx.work.join("sim-sync.log")) {
        Ok(sim) => sim,
        Err(e) => return report.check("sync: start the simulator", Err(e)),
    };
    let logs = ctx.work.join("logs-sync");
    let _ = std::fs::create_dir_all(&logs);
    let queries = doc_queries();
    report.check(
        "sync: docs/sync.md's marked block holds the DuckDB queries (JSONL and Parquet runs)",
        queries.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    let env = Env {
        ctx,
        cli: Cli::new(&ctx.cli_bin, &logs, &sim.url, crate::USER, crate::PASSWORD),
        db,
        root: ctx.work.join("sync"),
        queries: queries.ok(),
        snapshots: Cell::new(0),
    };
    let kill_started = Instant::now();
    kill_trials(&env, report);
    let kill_took = kill_started.elapsed();
    let history_started = Instant::now();
    history(&env, report);
    let history_took = history_started.elapsed();
    report.check("sync: the simulator stops on SIGTERM", sim.stop());
    report.fact(format!(
        "sync timings: kill trials {:.1}s, history {:.1}s, phase {:.1}s",
        kill_took.as_secs_f64(),
        history_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
}

// ---------------------------------------------------------------------------------------------
// Commands, files and the checker.

/// The sync command of one output.
fn sync_args(out: &Path, output: Output, chunk: &str, parallel: &str) -> Vec<String> {
    let mut args = strings(&["sync", TABLE, "--out"]);
    args.push(out.display().to_string());
    args.extend(output.args());
    args.extend(strings(&[
        "--lag",
        LAG,
        "--chunk-size",
        chunk,
        "--parallel",
        parallel,
        "--progress",
        "none",
    ]));
    args
}

/// The file name `materialize` writes an output of this kind to.
fn file_name(stem: &str, output: Output) -> String {
    format!("{stem}.{}", output.label())
}

fn read_json(path: &Path) -> Option<Value> {
    std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// The runs `sync.json` in `out` lists (none without one).
fn runs(out: &Path) -> Vec<Value> {
    read_json(&out.join(TABLE).join("sync.json"))
        .and_then(|record| record["runs"].as_array().cloned())
        .unwrap_or_default()
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn run_dir(out: &Path, run: u64) -> PathBuf {
    out.join(TABLE).join(format!("run-{run:05}"))
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join(format!(".{TABLE}.state.json"))
}

/// Whether the dump of a run directory has completed (its checkpoint says so).
fn dump_complete(dir: &Path) -> bool {
    read_json(&state_file(dir)).is_some_and(|s| s["is_complete"].as_bool() == Some(true))
}

/// How many rows a mutation changed, from its line (`terminal: inserted 10 (ids 5021..=5030),
/// updated 5, deleted 3`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mutated {
    inserted: u64,
    updated: u64,
    deleted: u64,
}

fn parse_mutated(line: &str) -> Option<Mutated> {
    let number = |word: &str| -> Option<u64> {
        let rest = line.split(word).nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    Some(Mutated {
        inserted: number("inserted ")?,
        updated: number("updated ")?,
        deleted: number("deleted ")?,
    })
}

/// The text of each fenced SQL block (a fence with the info string `sql`) in `markdown`.
fn sql_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let fence = line.trim_start().starts_with("```");
        match current.as_mut() {
            None if fence && line.trim_start().trim_start_matches('`').trim() == "sql" => {
                current = Some(String::new());
            }
            Some(_) if fence => blocks.extend(current.take()),
            Some(text) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// The DuckDB queries of docs/sync.md, with their `{dir}` and `{table}` placeholders.
#[derive(Debug, Clone)]
struct Queries {
    jsonl: String,
    parquet: String,
}

impl Queries {
    /// The query over the runs of `out` (the directory `sync --out` names), for an output
    /// whose format has one.
    fn over(&self, output: Output, out: &Path) -> Option<String> {
        let template = match output.format {
            Format::Jsonl => &self.jsonl,
            Format::Parquet => &self.parquet,
            Format::Csv | Format::Json => return None,
        };
        Some(template.replace("{dir}", &out.display().to_string()).replace("{table}", TABLE))
    }
}

/// Reads the queries from docs/sync.md: the document is what is tested.
fn doc_queries() -> Result<Queries, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/sync.md");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let block = text
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(block, _)| block)
        .ok_or_else(|| format!("no `{BEGIN}` … `{END}` block in {}", path.display()))?;
    let blocks = sql_blocks(block);
    let (parquet, jsonl): (Vec<String>, Vec<String>) =
        blocks.into_iter().partition(|q| q.contains("read_parquet("));
    match (jsonl.as_slice(), parquet.as_slice()) {
        ([jsonl], [parquet]) => {
            for q in [jsonl, parquet] {
                if !q.contains("{dir}") || !q.contains("{table}") {
                    return Err(format!(
                        "a query without the {{dir}} and {{table}} placeholders: {q}"
                    ));
                }
            }
            Ok(Queries { jsonl: jsonl.clone(), parquet: parquet.clone() })
        }
        _ => Err(format!(
            "the block holds {} ```sql queries with read_parquet and {} without; one of each is expected",
            parquet.len(),
            jsonl.len()
        )),
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py/check_sync.py")
}

impl Env<'_> {
    /// `iptvportal-sim mutate` of the phase's database.
    fn mutate(
        &self,
        (insert, update, delete): (u64, u64, u64),
        seed: u64,
        at: &str,
    ) -> Result<Mutated, String> {
        let out = Command::new(&self.ctx.sim_bin)
            .arg("mutate")
            .arg("--db")
            .arg(&self.db)
            .args(["--table", TABLE, "--insert", &insert.to_string(), "--update"])
            .args([update.to_string(), "--delete".to_owned(), delete.to_string()])
            .args(["--seed", &seed.to_string(), "--at", at])
            .output()
            .map_err(|e| format!("iptvportal-sim mutate: {e}"))?;
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "iptvportal-sim mutate exited {}: {}{}",
                out.status,
                said,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        parse_mutated(&said).ok_or_else(|| format!("iptvportal-sim mutate said: {said}"))
    }

    /// A consistent copy of the database as it is now (read while the simulator serves it).
    fn snapshot(&self) -> Result<PathBuf, String> {
        let n = self.snapshots.get() + 1;
        self.snapshots.set(n);
        let dir = self.root.join("db");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let to = dir.join(format!("{n:03}.db"));
        let out = Command::new(&self.ctx.checker.python)
            .arg(script())
            .arg("snapshot")
            .arg(&self.db)
            .arg(&to)
            .output()
            .map_err(|e| format!("python: {e}"))?;
        if out.status.success() {
            Ok(to)
        } else {
            Err(format!("snapshot of the database: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// `iptvportal materialize`, which needs no portal.
    fn materialize(&self, out: &Path, to: &Path, output: Output) -> Run {
        let mut args = vec!["materialize".to_owned(), out.display().to_string(), TABLE.to_owned()];
        args.extend(["--out".to_owned(), to.display().to_string()]);
        args.extend(output.args());
        self.cli.cmd(&args).no_portal().run(LIMIT)
    }

    fn sync(&self, out: &Path, output: Output, chunk: &str) -> Run {
        self.cli.cmd(&sync_args(out, output, chunk, "3")).run(LIMIT)
    }

    /// Checks a batch with `check_sync.py`, records every item, and returns the verdict's items.
    fn check(&self, report: &mut Report, batch: &str, items: &[Value]) -> Vec<Value> {
        if items.is_empty() {
            return Vec::new();
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = self.ctx.work.join(format!("{batch}.batch.json"));
        let body =
            json!({ "catalog": root.join("../crates/catalog/catalog.toml"), "items": items });
        let outcome = std::fs::write(&path, body.to_string())
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|()| {
                Command::new(&self.ctx.checker.python)
                    .arg(script())
                    .arg("check")
                    .arg(&path)
                    .output()
                    .map_err(|e| format!("python: {e}"))
            })
            .and_then(|out| {
                let stdout = String::from_utf8_lossy(&out.stdout);
                if !out.status.success() {
                    return Err(format!(
                        "the checker failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                serde_json::from_str::<Value>(stdout.trim())
                    .map_err(|e| format!("the checker printed no verdict ({e}): {stdout}"))
            });
        match outcome {
            Ok(verdict) => {
                let verdict_path = self.ctx.work.join(format!("{batch}.verdict.json"));
                let _ = std::fs::write(verdict_path, verdict.to_string());
                let entries = verdict["items"].as_array().cloned().unwrap_or_default();
                if entries.len() != items.len() {
                    report.check(
                        &format!("{batch}: python checker"),
                        Err(format!("{} verdicts for {} items", entries.len(), items.len())),
                    );
                }
                for entry in &entries {
                    report
                        .check(entry["name"].as_str().unwrap_or("?"), python::entry_outcome(entry));
                }
                entries
            }
            Err(e) => {
                report.check(&format!("{batch}: python checker"), Err(e));
                Vec::new()
            }
        }
    }
}

fn table_item(
    name: &str,
    db: &Path,
    file: &Path,
    output: Output,
    before: Option<&[PathBuf]>,
) -> Value {
    json!({
        "kind": "table", "name": name, "db": db, "before_dbs": before, "table": TABLE,
        "path": file, "format": output.format_name(), "compress": output.gzip,
    })
}

fn duckdb_item(name: &str, db: &Path, sql: &str, before: Option<&[PathBuf]>) -> Value {
    json!({ "kind": "duckdb", "name": name, "db": db, "before_dbs": before, "table": TABLE, "sql": sql })
}

fn counts_item(name: &str, db: &Path, out: &Path, run: u64) -> Value {
    json!({
        "kind": "counts", "name": name, "db": db, "table": TABLE,
        "sync": out.join(TABLE).join("sync.json"), "run": run,
    })
}

fn parquet_item(name: &str, reference: &Path, actual: &Path) -> Value {
    json!({ "kind": "parquet_same", "name": name, "table": TABLE, "reference": reference, "actual": actual })
}

/// A record or checkpoint without what differs between two runs of the same window: the
/// moments they ran at, and the checkpoint's seal over them.
fn without_times(mut value: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for key in ["started_at", "finished_at", "last_updated_at", "completed_at", "check"]
                {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
}

// ---------------------------------------------------------------------------------------------
// Kill trials.

/// Where a kill found the run: what its files and record said right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Landing {
    /// The run was not recorded yet: its window was being read.
    BeforeWindow,
    /// Recorded `running`, its dump not complete.
    InDump,
    /// Its dump complete, the run still `running`: deletes and held ids being committed.
    AfterDump,
    /// Recorded `complete`, the process not yet exited.
    AfterComplete,
}

fn landing(out: &Path, run: u64) -> Landing {
    let runs = runs(out);
    match usize::try_from(run - 1).ok().and_then(|i| runs.get(i)) {
        None => Landing::BeforeWindow,
        Some(r) if r["state"] == "complete" => Landing::AfterComplete,
        Some(_) if dump_complete(&run_dir(out, run)) => Landing::AfterDump,
        Some(_) => Landing::InDump,
    }
}

#[derive(Debug, Default)]
struct KillTally {
    trials: u64,
    rounds: u64,
    kills: u64,
    landings: [u64; 4],
    /// Kills aimed at the end of the dump (the checkpoint complete).
    aimed: u64,
    finished_first: u64,
    resumes: u64,
    /// `materialize` runs on a killed sync.
    killed_reads: u64,
    /// Killed syncs the DuckDB query read.
    killed_queries: [u64; 3],
    lost: u64,
    duplicated: u64,
}

/// One output's syncs: the reference (uninterrupted) and the one the trials kill.
struct Chain {
    index: usize,
    output: Output,
    base: PathBuf,
    reference: PathBuf,
    trial: PathBuf,
    /// `materialize` of `trial` as of its last complete run, and the database it equals.
    last: Option<(PathBuf, PathBuf)>,
}

/// The instant of the kill trials' round `round`: hours from 2025-01-01 (after every generated
/// value, before the history's).
fn round_instant(round: u64) -> String {
    format!("2025-01-{:02} {:02}:00:00", 1 + round / 24, round % 24)
}

fn kill_trials(env: &Env<'_>, report: &mut Report) {
    let started = Instant::now();
    let mut tally = KillTally::default();
    let mut items = Vec::new();
    let db = match env.snapshot() {
        Ok(db) => db,
        Err(e) => return report.check("sync kill trials: a copy of the database", Err(e)),
    };
    let mut chains = snapshot_trials(env, report, &db, &mut tally, &mut items);
    for round in 1..=500 {
        // Past the budget only until the fewest kills that count have landed (a busy machine),
        // and never past twice the budget.
        let late = started.elapsed() > KILL_BUDGET;
        if tally.kills >= KILL_TARGET
            || (late && tally.kills >= MIN_KILLS)
            || started.elapsed() > KILL_BUDGET * 2
            || chains.is_empty()
        {
            break;
        }
        tally.rounds += 1;
        let seed = env.ctx.seed.wrapping_mul(7919).wrapping_add(round);
        let db = env.mutate(ROUND, seed, &round_instant(round)).and_then(|_| env.snapshot());
        let db = match db {
            Ok(db) => db,
            Err(e) => return report.check("sync kill trials: a round's changes", Err(e)),
        };
        for chain in &mut chains {
            // This round's uninterrupted run: the reference, and the span kill moments are
            // drawn from.
            let run = env.sync(&chain.reference, chain.output, KILL_CHUNK);
            if let Err(e) = run.success() {
                let label = chain.output.label();
                report.check(
                    &format!("sync kill {label} round {round}: the uninterrupted run"),
                    Err(e),
                );
                continue;
            }
            trial(env, report, chain, run.elapsed, &db, &mut tally, &mut items);
        }
    }
    for entry in env.check(report, "sync-kill", &items) {
        tally.lost += entry["lost"].as_u64().unwrap_or(0);
        tally.duplicated += entry["duplicated"].as_u64().unwrap_or(0);
    }
    kill_report(report, &tally, started.elapsed());
}

/// An uninterrupted snapshot per output and [`SNAPSHOT_TRIALS`] killed ones, each into a
/// directory of its own; the last is where the output's delta trials go on.
fn snapshot_trials(
    env: &Env<'_>,
    report: &mut Report,
    db: &Path,
    tally: &mut KillTally,
    items: &mut Vec<Value>,
) -> Vec<Chain> {
    let mut chains = Vec::new();
    for (index, output) in OUTPUTS.into_iter().enumerate() {
        let base = env.root.join("kill").join(output.label());
        let reference = base.join("reference");
        let run = env.sync(&reference, output, KILL_CHUNK);
        if let Err(e) = run.success() {
            let label = output.label();
            report.check(&format!("sync kill {label}: the uninterrupted snapshot"), Err(e));
            continue;
        }
        let mut chain = Chain { index, output, base, reference, trial: PathBuf::new(), last: None };
        for i in 0..SNAPSHOT_TRIALS {
            chain.trial = chain.base.join(format!("snapshot-{i}"));
            chain.last = None;
            trial(env, report, &mut chain, run.elapsed, db, tally, items);
        }
        chains.push(chain);
    }
    chains
}

fn kill_report(report: &mut Report, tally: &KillTally, took: Duration) {
    let [before, in_dump, after_dump, after_complete] = tally.landings;
    report.fact(format!(
        "sync kill trials: {} trials ({} snapshot, {} delta rounds of {:?} inserts/updates/deletes, chunks of {KILL_CHUNK}), {} SIGKILLs landed: {before} while the window was read, {in_dump} during the dump, {after_dump} after the dump before the run was recorded complete, {after_complete} after it was ({} aimed at the dump's end); {} draws fell after the run had finished; {} resumed runs; materialize read {} killed syncs, the DuckDB query {:?} (jsonl, csv.gz, parquet); rows lost {}, duplicated {}; {:.1}s",
        tally.trials,
        SNAPSHOT_TRIALS * 3,
        tally.rounds,
        ROUND,
        tally.kills,
        tally.aimed,
        tally.finished_first,
        tally.resumes,
        tally.killed_reads,
        tally.killed_queries,
        tally.lost,
        tally.duplicated,
        took.as_secs_f64()
    ));
    report.check(
        "sync kill trials: at least 100 SIGKILLs landed",
        if tally.kills >= MIN_KILLS {
            Ok(())
        } else {
            Err(format!("{} of {MIN_KILLS}", tally.kills))
        },
    );
    report.check(
        "sync kill trials: kills landed during the dump and after it, before the run was complete",
        if in_dump >= 10 && after_dump >= 3 {
            Ok(())
        } else {
            Err(format!("{in_dump} during the dump, {after_dump} after it"))
        },
    );
    report.check(
        "sync kill trials: no row lost or duplicated",
        if tally.lost == 0 && tally.duplicated == 0 {
            Ok(())
        } else {
            Err(format!("{} lost, {} duplicated", tally.lost, tally.duplicated))
        },
    );
}

fn trial(
    env: &Env<'_>,
    report: &mut Report,
    chain: &mut Chain,
    span: Duration,
    db: &Path,
    tally: &mut KillTally,
    items: &mut Vec<Value>,
) {
    let no = tally.trials;
    tally.trials += 1;
    let run = count(runs(&chain.trial).len()) + 1;
    let kind = if run == 1 { "snapshot" } else { "delta" };
    let name = format!("sync kill trial {no} ({} {kind} run {run})", chain.output.label());
    let outcome = one_trial(env, chain, span, db, no, run, &name, tally, items);
    report.check(&name, outcome.map_err(|e| format!("{e} (seed {})", env.ctx.seed)));
}

/// Waits until the run's dump has completed, then returns whether the process still runs.
fn wait_for_dump_end(spawned: &mut Spawned, dir: &Path) -> bool {
    let start = Instant::now();
    loop {
        if !matches!(spawned.child.try_wait(), Ok(None)) {
            return false;
        }
        if dump_complete(dir) || start.elapsed() > LIMIT {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[expect(clippy::too_many_arguments, reason = "one trial's whole context")]
fn one_trial(
    env: &Env<'_>,
    chain: &mut Chain,
    span: Duration,
    db: &Path,
    no: u64,
    run: u64,
    name: &str,
    tally: &mut KillTally,
    items: &mut Vec<Value>,
) -> Result<(), String> {
    let dir = chain.trial.clone();
    let args = sync_args(&dir, chain.output, KILL_CHUNK, "3");
    let mut rng = StdRng::seed_from_u64(env.ctx.seed.wrapping_mul(1_000_039).wrapping_add(no));
    let kills = rng.random_range(1..=4u32);
    let mut killed = false;
    for k in 0..kills {
        let aimed = rng.random_bool(0.25) && !dump_complete(&run_dir(&dir, run));
        let delay = span.mul_f64(rng.random_range(0.0..1.0));
        let mut spawned = env.cli.cmd(&args).spawn();
        let running = if aimed {
            tally.aimed += 1;
            wait_for_dump_end(&mut spawned, &run_dir(&dir, run))
        } else {
            std::thread::sleep(delay);
            matches!(spawned.child.try_wait(), Ok(None))
        };
        if !running {
            tally.finished_first += 1;
            killed = false;
            if k > 0 {
                tally.resumes += 1;
            }
            let finished = spawned.finish(LIMIT);
            finished.success().map_err(|e| format!("a run that was not killed failed: {e}"))?;
            break;
        }
        spawned.child.kill().map_err(|e| format!("kill: {e}"))?;
        let _ = spawned.child.wait();
        killed = true;
        tally.kills += 1;
        let landed = landing(&dir, run);
        tally.landings[landed as usize] += 1;
        if k == 0 && landed != Landing::AfterComplete {
            killed_reads(env, chain, no, name, tally, items)?;
        }
    }
    if killed {
        tally.resumes += 1;
        let rerun = env.cli.cmd(&args).run(LIMIT);
        rerun.success().map_err(|e| format!("the rerun after SIGKILL failed: {e}"))?;
    }
    // A kill after the run was recorded complete leaves the rerun a run of its own (an empty
    // delta): the reference gets one too, at the same data.
    align(env, &chain.reference, &dir, chain.output)?;
    let total = count(runs(&dir).len());
    for n in run..=total {
        same_run(&chain.reference, &dir, n, chain.output, name, items, tally)?;
        super::integrity::verify_ok(&env.cli, &run_dir(&dir, n))
            .map_err(|e| format!("run {n}: {e}"))?;
    }
    let leftovers: Vec<String> = files::walk(&dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tmp" || e == "piece" || e == "merged"))
        .map(|p| p.display().to_string())
        .collect();
    if !leftovers.is_empty() {
        return Err(format!("temp files left: {leftovers:?}"));
    }
    let to =
        chain.base.join("materialized").join(file_name(&format!("trial-{no:03}"), chain.output));
    let _ = std::fs::create_dir_all(to.parent().unwrap_or(&chain.base));
    env.materialize(&dir, &to, chain.output).success().map_err(|e| format!("materialize: {e}"))?;
    items.push(table_item(
        &format!("{name}: materialize equals SQLite"),
        db,
        &to,
        chain.output,
        None,
    ));
    chain.last = Some((to, db.to_owned()));
    Ok(())
}

/// Right after a kill that left the run unfinished: `materialize` reads the last complete run
/// (refuses, before the first), and so does the DuckDB query (on a copy of the killed state).
fn killed_reads(
    env: &Env<'_>,
    chain: &Chain,
    no: u64,
    name: &str,
    tally: &mut KillTally,
    items: &mut Vec<Value>,
) -> Result<(), String> {
    let to =
        chain.base.join("materialized").join(file_name(&format!("killed-{no:03}"), chain.output));
    let _ = std::fs::create_dir_all(to.parent().unwrap_or(&chain.base));
    let read = env.materialize(&chain.trial, &to, chain.output);
    tally.killed_reads += 1;
    let Some((last, last_db)) = &chain.last else {
        if read.code == Some(0) || to.exists() {
            return Err("materialize of a sync without a complete run succeeded".to_owned());
        }
        if !read.stderr.contains("no complete sync run") {
            return Err(format!(
                "materialize without a complete run: {}",
                crate::proc::last_lines(&read.stderr, 3)
            ));
        }
        return Ok(());
    };
    read.success().map_err(|e| format!("materialize right after a SIGKILL: {e}"))?;
    if chain.output.format == Format::Parquet {
        items.push(parquet_item(
            &format!("{name}: materialize after the kill equals the last complete run's"),
            last,
            &to,
        ));
    } else if files::read_decoded(&to)? != files::read_decoded(last)? {
        return Err("materialize after the kill differs from the last complete run's".to_owned());
    }
    if tally.killed_queries[chain.index] < KILLED_COPIES
        && let Some(queries) = &env.queries
    {
        let copy = chain.base.join(format!("killed-{no:03}"));
        copy_tree(&chain.trial, &copy)?;
        if let Some(sql) = queries.over(chain.output, &copy) {
            tally.killed_queries[chain.index] += 1;
            items.push(duckdb_item(
                &format!("{name}: the DuckDB query of the killed sync equals SQLite as of its last complete run"),
                last_db,
                &sql,
                None,
            ));
        }
    }
    Ok(())
}

/// Copies every file under `from` to the same place under `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    for path in files::walk(from) {
        let Ok(rel) = path.strip_prefix(from) else { continue };
        let target = to.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::copy(&path, &target).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs the sync with fewer runs until both have as many (an extra run is an empty delta).
fn align(env: &Env<'_>, a: &Path, b: &Path, output: Output) -> Result<(), String> {
    for _ in 0..4 {
        let (na, nb) = (runs(a).len(), runs(b).len());
        if na == nb {
            return Ok(());
        }
        let behind = if na < nb { a } else { b };
        env.sync(behind, output, KILL_CHUNK)
            .success()
            .map_err(|e| format!("an extra run of {}: {e}", behind.display()))?;
    }
    Err(format!("{} and {} do not reach the same number of runs", a.display(), b.display()))
}

/// Run `n` of `actual` holds the files of the uninterrupted run `n` of `reference`: the same
/// names, the same bytes (decoded, for gzip; the checkpoint but its times), the same rows
/// (Parquet, by the checker), and the same record in sync.json but its times.
fn same_run(
    reference: &Path,
    actual: &Path,
    n: u64,
    output: Output,
    name: &str,
    items: &mut Vec<Value>,
    tally: &mut KillTally,
) -> Result<(), String> {
    let (r, a) = (run_dir(reference, n), run_dir(actual, n));
    let list = |d: &Path| -> Vec<PathBuf> {
        files::walk(d).iter().filter_map(|p| p.strip_prefix(d).ok().map(Path::to_owned)).collect()
    };
    let (names, actual_names) = (list(&r), list(&a));
    if names != actual_names {
        return Err(format!("run {n} holds {actual_names:?}, the uninterrupted run {names:?}"));
    }
    let state = format!(".{TABLE}.state.json");
    for rel in &names {
        let file = rel.to_string_lossy();
        let (rp, ap) = (r.join(rel), a.join(rel));
        if file.ends_with(".parquet") {
            items.push(parquet_item(
                &format!("{name}: run {n} {file} holds the uninterrupted run's rows"),
                &rp,
                &ap,
            ));
            continue;
        }
        let same = if file == state {
            read_json(&rp).map(without_times) == read_json(&ap).map(without_times)
        } else {
            files::read_decoded(&rp)? == files::read_decoded(&ap)?
        };
        if !same {
            let mut why = format!("run {n}: {file} differs from the uninterrupted run's");
            if *rel == output.text_file(Path::new(""), TABLE) {
                let ids =
                    |p: &Path| files::read_decoded(p).and_then(|b| files::ids(output.format, &b));
                if let (Ok(want), Ok(got)) = (ids(&rp), ids(&ap)) {
                    let (lost, duplicated) = files::lost_and_duplicated(&want, &got);
                    tally.lost += lost;
                    tally.duplicated += duplicated;
                    let _ = write!(why, " ({lost} rows lost, {duplicated} duplicated)");
                }
            }
            return Err(why);
        }
    }
    let record = |out: &Path| {
        let runs = runs(out);
        usize::try_from(n - 1).ok().and_then(|i| runs.get(i).cloned()).map(without_times)
    };
    let (want, got) = (record(reference), record(actual));
    if want != got {
        return Err(format!(
            "run {n}'s record in sync.json differs from the uninterrupted run's: {} vs {}",
            got.unwrap_or_default(),
            want.unwrap_or_default()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The history.

/// What a run's record must say (`None`: not checked here; the checker also counts every run
/// without a concurrent mutation in SQLite).
#[derive(Debug, Clone, Default)]
struct Expect {
    new: Option<u64>,
    changed: Option<(u64, u64)>,
    deleted: Option<(u64, u64)>,
    cursor_upto: Option<String>,
    ids_upto: Option<i64>,
}

impl Expect {
    fn exact(new: u64, changed: u64, deleted: u64, upto: &str) -> Expect {
        Expect {
            new: Some(new),
            changed: Some((changed, changed)),
            deleted: Some((deleted, deleted)),
            cursor_upto: Some(upto.to_owned()),
            ids_upto: None,
        }
    }

    fn check(&self, record: &Value, kind: &str) -> Result<(), String> {
        let mut problems = Vec::new();
        if record["state"] != "complete" {
            problems.push(format!("state {}", record["state"]));
        }
        if record["kind"] != kind {
            problems.push(format!("kind {}, expected {kind}", record["kind"]));
        }
        let n = |key: &str| record[key].as_u64();
        if let Some(new) = self.new
            && n("new") != Some(new)
        {
            problems.push(format!("new {:?}, expected {new}", n("new")));
        }
        for (key, range) in [("changed", self.changed), ("deleted", self.deleted)] {
            if let Some((lo, hi)) = range
                && !n(key).is_some_and(|v| (lo..=hi).contains(&v))
            {
                problems.push(format!("{key} {:?}, expected {lo}..={hi}", n(key)));
            }
        }
        let window = &record["window"];
        if let Some(upto) = &self.cursor_upto
            && window["cursor"]["upto"].as_str() != Some(upto)
        {
            problems
                .push(format!("the window ends at {}, expected {upto}", window["cursor"]["upto"]));
        }
        if let Some(upto) = self.ids_upto
            && window["ids"]["upto"].as_i64() != Some(upto)
        {
            problems.push(format!("ids up to {}, expected {upto}", window["ids"]["upto"]));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}

/// The history's quiet-portal instants: day `d` of March 2025 at hour `h`.
fn march(d: u32, h: u32) -> String {
    format!("2025-03-{d:02} {h:02}:00:00")
}

/// The instants of a portal ahead of this machine's clock.
const AHEAD_TIES: &str = "2099-01-01 00:00:00";
const AHEAD_LATEST: &str = "2099-01-01 00:01:00";
const AHEAD_LATE: &str = "2099-01-01 00:00:40";
const AHEAD_NEXT: &str = "2099-01-01 00:02:00";

struct History<'e, 'a> {
    env: &'e Env<'a>,
    outs: Vec<(Output, PathBuf)>,
    run: u64,
}

/// One change of a step: `(insert, update, delete)` at an instant.
type Change<'s> = ((u64, u64, u64), &'s str);

impl History<'_, '_> {
    /// Applies the changes, in order, with seeds of their own; their sum.
    fn apply(&self, changes: &[Change<'_>]) -> Result<Mutated, String> {
        let mut sum = Mutated::default();
        for (i, (amounts, at)) in changes.iter().enumerate() {
            let seed =
                self.env.ctx.seed.wrapping_mul(104_729).wrapping_add(self.run * 10 + count(i));
            let m = self.env.mutate(*amounts, seed, at)?;
            sum.inserted += m.inserted;
            sum.updated += m.updated;
            sum.deleted += m.deleted;
        }
        Ok(sum)
    }

    /// One step: changes, a run of every output, and the checks of the run.
    fn step(
        &mut self,
        report: &mut Report,
        label: &str,
        changes: &[Change<'_>],
        expect: &dyn Fn(&Mutated, &[Value]) -> Expect,
        every_format: bool,
    ) {
        self.run += 1;
        let mutated = match self.apply(changes) {
            Ok(m) => m,
            Err(e) => {
                return report.check(&format!("sync run {} ({label}): mutate", self.run), Err(e));
            }
        };
        for (output, out) in &self.outs {
            let run = self.env.sync(out, *output, HISTORY_CHUNK);
            report.check(
                &format!("sync run {} ({label}, {}): exit 0", self.run, output.label()),
                run.success(),
            );
        }
        self.check_run(report, label, &|_, runs| expect(&mutated, runs), None, every_format);
    }

    /// The checks after run `self.run`: its record, `materialize`, the DuckDB query, the counts.
    /// With `before`, a mutation ran beside the runs: the rows are checked against the database
    /// before and after it, and the counts only by `expect`.
    fn check_run(
        &self,
        report: &mut Report,
        label: &str,
        expect: &dyn Fn(usize, &[Value]) -> Expect,
        before: Option<&[PathBuf]>,
        every_format: bool,
    ) {
        let k = self.run;
        let db = &self.env.db;
        let mut items = Vec::new();
        let kind = if k == 1 { "snapshot" } else { "delta" };
        for (index, (output, out)) in self.outs.iter().enumerate() {
            let name = format!("sync run {k} ({label}, {})", output.label());
            let runs = runs(out);
            let record = usize::try_from(k - 1).ok().and_then(|i| runs.get(i));
            report.check(
                &format!("{name}: sync.json"),
                record
                    .ok_or_else(|| format!("sync.json lists {} runs", runs.len()))
                    .and_then(|r| expect(index, &runs).check(r, kind)),
            );
            let dir = self.env.root.join("history").join("materialized").join(output.label());
            let _ = std::fs::create_dir_all(&dir);
            let formats: Vec<Output> = if every_format {
                let mut all = vec![*output];
                all.extend(files::Output::ALL.into_iter().filter(|o| o != output));
                all
            } else {
                vec![*output]
            };
            for format in formats {
                let to = dir.join(file_name(&format!("run-{k:02}"), format));
                let made = self.env.materialize(out, &to, format);
                let check = format!("{name}: materialize to {} equals SQLite", format.label());
                match made.success() {
                    Ok(()) => items.push(table_item(&check, db, &to, format, before)),
                    Err(e) => report.check(&check, Err(e)),
                }
            }
            if let Some(sql) = self.env.queries.as_ref().and_then(|q| q.over(*output, out)) {
                items.push(duckdb_item(
                    &format!("{name}: the DuckDB query of docs/sync.md equals SQLite"),
                    db,
                    &sql,
                    before,
                ));
            }
            if before.is_none() {
                items.push(counts_item(
                    &format!("{name}: sync.json's counts agree with SQLite"),
                    db,
                    out,
                    k,
                ));
            }
        }
        self.env.check(report, &format!("sync-history-{k:02}"), &items);
    }

    /// A run while a mutation commits: all three syncs start (slowly: small chunks, one request
    /// at a time), and once each has fixed its window the mutation runs.
    fn concurrent(&mut self, report: &mut Report) -> Option<Mutated> {
        self.run += 1;
        let k = self.run;
        let label = "a mutation while the runs fetch";
        let name = format!("sync run {k} ({label})");
        let seed = self.env.ctx.seed.wrapping_mul(104_729).wrapping_add(k * 10);
        // The states a row read beside the mutation may be in: as of the last run, and right
        // before the mutation.
        let before = self.env.snapshot().and_then(|last| {
            self.env.mutate((0, 4000, 0), seed, &march(7, 0))?;
            Ok(vec![last, self.env.snapshot()?])
        });
        let before = match before {
            Ok(b) => b,
            Err(e) => {
                report.check(&format!("{name}: mutate"), Err(e));
                return None;
            }
        };
        let previous_high: Vec<Option<i64>> = self
            .outs
            .iter()
            .map(|(_, out)| runs(out).last().and_then(|r| r["high_water"].as_i64()))
            .collect();
        let mut spawned: Vec<Spawned> = self
            .outs
            .iter()
            .map(|(output, out)| self.env.cli.cmd(&sync_args(out, *output, "100", "1")).spawn())
            .collect();
        let waiting = Instant::now();
        while waiting.elapsed() < LIMIT
            && self.outs.iter().zip(spawned.iter_mut()).any(|((_, out), s)| {
                count(runs(out).len()) < k && matches!(s.child.try_wait(), Ok(None))
            })
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let during = self.env.mutate((300, 600, 150), seed + 1, &march(7, 12));
        let overlapped = spawned
            .iter_mut()
            .map(|s| s.child.try_wait())
            .filter(|w| matches!(w, Ok(None)))
            .count();
        for ((output, _), s) in self.outs.iter().zip(spawned) {
            report.check(&format!("{name}, {}: exit 0", output.label()), s.finish(LIMIT).success());
        }
        let during = match during {
            Ok(m) => m,
            Err(e) => {
                report.check(&format!("{name}: mutate"), Err(e));
                return None;
            }
        };
        let changed: Vec<String> = self
            .outs
            .iter()
            .map(|(output, out)| {
                let runs = runs(out);
                let record = usize::try_from(k - 1).ok().and_then(|i| runs.get(i));
                let n = |key: &str| record.and_then(|r| r[key].as_u64()).unwrap_or_default();
                format!("{} {} changed, {} deleted", output.label(), n("changed"), n("deleted"))
            })
            .collect();
        report.fact(format!(
            "sync history: {overlapped} of 3 runs were still running when the mutation beside them ({} inserts, {} updates, {} deletes) had committed; of the 4000 rows updated before, the runs read: {}",
            during.inserted,
            during.updated,
            during.deleted,
            changed.join(", ")
        ));
        report.check(
            &format!("{name}: the mutation committed while a run was fetching"),
            if overlapped > 0 { Ok(()) } else { Err("every run had finished first".to_owned()) },
        );
        let at = march(7, 0);
        let expect = |index: usize, _: &[Value]| Expect {
            new: Some(0),
            changed: Some((4000 - during.updated - during.deleted, 4000)),
            deleted: Some((0, during.deleted)),
            cursor_upto: Some(at.clone()),
            ids_upto: previous_high[index],
        };
        self.check_run(report, label, &expect, Some(&before), false);
        Some(during)
    }
}

fn history(env: &Env<'_>, report: &mut Report) {
    let started = Instant::now();
    let outs = OUTPUTS.iter().map(|o| (*o, env.root.join("history").join(o.label()))).collect();
    let mut h = History { env, outs, run: 0 };
    let none: &[Change<'_>] = &[];
    h.step(report, "snapshot", none, &|_, _| Expect::exact(0, 0, 0, "").snapshot(), false);
    let (t1, t2, t3, t4, t5, t6) =
        (march(1, 0), march(2, 0), march(3, 0), march(4, 0), march(5, 0), march(6, 0));
    h.step(
        report,
        "inserts",
        &[((1500, 0, 0), &t1)],
        &|m, _| Expect::exact(m.inserted, 0, 0, &t1),
        false,
    );
    h.step(
        report,
        "updates",
        &[((0, 2000, 0), &t2)],
        &|m, _| Expect::exact(0, m.updated, 0, &t2),
        false,
    );
    // A delete changes no change column: the window's end stays.
    h.step(
        report,
        "deletes",
        &[((0, 0, 800), &t3)],
        &|m, _| Expect::exact(0, 0, m.deleted, &t2),
        false,
    );
    h.step(
        report,
        "inserts, updates and deletes",
        &[((700, 1200, 400), &t4)],
        &|m, _| Expect::exact(m.inserted, m.updated, m.deleted, &t4),
        false,
    );
    // Every changed row holds the window's end value: the run takes them in (its end is
    // inclusive) and the next does not take them again (its start is exclusive).
    h.step(
        report,
        "ties on the window's end",
        &[((50, 500, 0), &t5)],
        &|m, _| Expect::exact(m.inserted, m.updated, 0, &t5),
        false,
    );
    h.step(
        report,
        "after the ties",
        &[((0, 700, 100), &t6)],
        &|m, _| Expect::exact(0, m.updated, m.deleted, &t6),
        false,
    );
    if let Some(during) = h.concurrent(report) {
        let t7 = march(7, 12);
        h.step(
            report,
            "after the mutation beside the runs",
            none,
            &|_, runs| {
                let deleted = runs
                    .iter()
                    .rev()
                    .nth(1)
                    .and_then(|r| r["deleted"].as_u64())
                    .unwrap_or(u64::MAX);
                Expect::exact(
                    during.inserted,
                    during.updated,
                    during.deleted.wrapping_sub(deleted),
                    &t7,
                )
            },
            false,
        );
    }
    // The portal's latest change is now ahead of this machine's clock: the window ends the lag
    // before it. Updates on that end are ties the run takes in; the inserted rows are new.
    h.step(
        report,
        "ties, the window ending the lag before the latest change",
        &[((0, 300, 0), AHEAD_TIES), ((20, 0, 0), AHEAD_LATEST)],
        &|m, _| Expect::exact(m.inserted, m.updated, 0, AHEAD_TIES),
        false,
    );
    // Rows committed late, 20 s older than the latest change (within the lag), and a new latest
    // change a minute on: the next window takes them in, with the last run's inserted rows
    // (their value was past its end) and not the ties again.
    h.step(
        report,
        "rows committed late within the lag",
        &[((0, 250, 0), AHEAD_LATE), ((10, 0, 0), AHEAD_NEXT)],
        &|m, _| Expect {
            changed: Some((m.updated, m.updated + 20)),
            ..Expect::exact(m.inserted, 0, 0, AHEAD_LATEST)
        },
        true,
    );
    report.fact(format!(
        "sync history: {} runs of each of {} in {:.1}s",
        h.run,
        OUTPUTS.map(Output::label).join(", "),
        started.elapsed().as_secs_f64()
    ));
}

impl Expect {
    /// A snapshot's expectation: nothing changed or deleted; new rows counted by the checker.
    fn snapshot(self) -> Expect {
        Expect { new: None, cursor_upto: None, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mutation_line_parses() {
        let line = "terminal: inserted 10 (ids 5021..=5030), updated 5, deleted 3\n";
        assert_eq!(parse_mutated(line), Some(Mutated { inserted: 10, updated: 5, deleted: 3 }));
        assert_eq!(parse_mutated("terminal: nothing"), None);
    }

    #[test]
    fn sql_blocks_are_found_in_markdown() {
        let md = "text\n```sql\nSELECT 1;\n```\n```sh\nls\n```\n```sql\nSELECT 2;\n```\n";
        assert_eq!(sql_blocks(md), vec!["SELECT 1;\n".to_owned(), "SELECT 2;\n".to_owned()]);
    }

    #[test]
    fn docs_sync_md_holds_both_queries() {
        let queries = doc_queries().unwrap();
        let sql = queries.over(OUTPUTS[2], Path::new("/x/y")).unwrap();
        assert!(sql.contains("/x/y/terminal/sync.json") && !sql.contains("{dir}"), "{sql}");
        assert!(queries.over(OUTPUTS[1], Path::new("/x")).is_none());
    }

    #[test]
    fn times_are_left_out_of_a_comparison() {
        let a = json!({"run": 1, "started_at": "x", "files": [{"check": "1", "rows": 2}]});
        let b = json!({"run": 1, "started_at": "y", "files": [{"check": "2", "rows": 2}]});
        assert_eq!(without_times(a), without_times(b));
    }

    #[test]
    fn round_instants_ascend() {
        assert_eq!(round_instant(1), "2025-01-01 01:00:00");
        assert_eq!(round_instant(25), "2025-01-02 01:00:00");
        assert!(round_instant(499) < march(1, 0));
    }
}

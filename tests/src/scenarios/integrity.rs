//! Integrity (issue 12): one writer per table, the manifest of every file in the checkpoint,
//! `iptvportal verify` (files, and with `--source` the portal's rows), and Parquet durable per
//! chunk below one part.
//!
//! 1. **Overlap**: a second dump of a table another run is writing is refused at once, whenever
//!    it starts and whenever it is killed, and the first finishes to the reference output.
//! 2. **Tampering**: a truncated, extended, deleted, added or changed file is named by `verify`
//!    (exit 1) and refused by a rerun of the dump; a hand-edited checkpoint is refused.
//! 3. **Below one part**: a Parquet dump of [`BIG_ROWS`] rows (all in one part, so everything
//!    is in pieces until the end) killed at random moments: the checkpoint advances per chunk,
//!    every resume ends in the reference output, and a kill costs at most `parallel + 1` chunk
//!    requests, counted by the simulator (`GET /stats`) and by the dump's `--debug` log.
//! 4. **`--source`**: rows deleted from the portal after a dump: `verify --source` names the
//!    range. Last, on a simulator of its own, so no other scenario sees the changed rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::kill::{Reference, TABLE, dump_args};
use super::{Strategy, strings};
use crate::files::{self, Format, Output};
use crate::proc::{Cli, Run, Sim};
use crate::report::Report;
use crate::{Ctx, python};

const LIMIT: Duration = Duration::from_secs(120);

/// The words of the refusal of a second writer.
const LOCKED: &str = "is being written by another run";

/// The outputs of the overlap and tampering checks: a plain text file, a gzip one, Parquet parts.
const OUTPUTS: [Output; 3] = [
    Output { format: Format::Jsonl, gzip: false },
    Output { format: Format::Csv, gzip: true },
    Output { format: Format::Parquet, gzip: false },
];

const OVERLAP_TRIALS: u64 = 50;

/// Rows of the table dumped below one Parquet part (the size: generating and dumping it
/// costs seconds, see the phase's facts).
const BIG_ROWS: u64 = 300_000;
const BIG_CHUNK: u64 = 5000;
const BELOW_PART_TRIALS: u64 = 12;

/// Runs every check of the phase.
pub(crate) fn run(ctx: &Ctx, report: &mut Report, refs: &HashMap<String, Reference>) {
    let root = ctx.work.join("integrity");
    let started = Instant::now();
    overlap(ctx, report, refs, &root.join("overlap"));
    let overlap_took = started.elapsed();
    let started = Instant::now();
    tampering(ctx, report, refs, &root.join("tamper"));
    let tamper_took = started.elapsed();

    // A simulator of its own: a bigger table, and a database `--source` may change.
    let started = Instant::now();
    let rows = format!("terminal={BIG_ROWS}");
    let seed = ctx.seed.to_string();
    let args =
        ["--rows", &rows, "--seed", &seed, "--user", crate::USER, "--password", crate::PASSWORD];
    let db = ctx.work.join("integrity-sim.db");
    let sim = match Sim::start(&ctx.sim_bin, &db, &args, &ctx.work.join("sim-integrity.log")) {
        Ok(sim) => sim,
        Err(e) => return report.check("integrity: start the simulator", Err(e)),
    };
    let sim_took = started.elapsed();
    // Its own log directory: a second `Cli` numbers its logs from 0 again.
    let cli = Cli::new(
        &ctx.cli_bin,
        &ctx.work.join("logs-integrity"),
        &sim.url,
        crate::USER,
        crate::PASSWORD,
    );
    let _ = std::fs::create_dir_all(ctx.work.join("logs-integrity"));
    let started = Instant::now();
    let reference = below_one_part(ctx, report, &sim, &cli, &root.join("below-part"));
    let below_took = started.elapsed();
    let started = Instant::now();
    if let Some(reference) = reference {
        source(ctx, report, &cli, &db, &reference);
    }
    let source_took = started.elapsed();
    report.check("integrity: the simulator stops on SIGTERM", sim.stop());
    report.fact(format!(
        "integrity timings: overlap {:.1}s, tampering {:.1}s, simulator with {BIG_ROWS} rows {:.1}s, below one part {:.1}s, --source {:.1}s",
        overlap_took.as_secs_f64(),
        tamper_took.as_secs_f64(),
        sim_took.as_secs_f64(),
        below_took.as_secs_f64(),
        source_took.as_secs_f64()
    ));
}

/// `iptvportal verify DIR EXTRA…`; without `--source` it must need no portal, so none is given.
fn verify(cli: &Cli, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["verify".to_owned(), dir.display().to_string()];
    args.extend(strings(extra));
    let cmd = cli.cmd(&args);
    if extra.contains(&"--source") { cmd } else { cmd.no_portal() }.run(LIMIT)
}

/// `Ok` when `iptvportal verify DIR` exits 0: every file of the directory is as its manifest says.
pub(crate) fn verify_ok(cli: &Cli, dir: &Path) -> Result<(), String> {
    let run = verify(cli, dir, &[]);
    if run.code == Some(0) {
        Ok(())
    } else {
        Err(format!(
            "iptvportal verify exited {:?}: {}",
            run.code,
            crate::proc::last_lines(&format!("{}{}", run.stdout, run.stderr), 4)
        ))
    }
}

/// A finished text output equals the reference's bytes (decoded).
fn text_matches(output: Output, dir: &Path, reference: &Reference) -> Result<(), String> {
    let bytes = files::read_decoded(&output.text_file(dir, TABLE))?;
    if bytes == reference.bytes {
        return Ok(());
    }
    let ids = files::ids(output.format, &bytes)?;
    let (lost, duplicated) = files::lost_and_duplicated(&reference.ids, &ids);
    Err(format!("differs from the reference ({lost} rows lost, {duplicated} duplicated)"))
}

/// Runs the Parquet comparisons of a batch and records each.
fn check_compare(ctx: &Ctx, report: &mut Report, batch: &str, compare: &[serde_json::Value]) {
    if compare.is_empty() {
        return;
    }
    match ctx.checker.run(batch, &[], compare) {
        Ok(verdict) => {
            for entry in verdict["compare"].as_array().into_iter().flatten() {
                report.check(entry["name"].as_str().unwrap_or("?"), python::entry_outcome(entry));
            }
        }
        Err(e) => report.check(&format!("{batch}: python checker"), Err(e)),
    }
}

/// What became of the second dump of an overlap trial.
#[derive(Debug)]
struct OverlapTally {
    /// Exited 1 with the refusal while the first ran.
    refused: u64,
    /// Killed before it had exited.
    killed: u64,
    /// Started or decided after the first had finished writing, and exited 0.
    after: u64,
    /// How long the last refusal took, from the start of the process.
    refusal: Duration,
    /// The second dump starts after a random share of the reference dump's time, up to this
    /// share. Halved whenever a second dump started after the first had finished: the
    /// reference's time includes the process start, the login and the count, which the first
    /// dump has done before it holds the lock, and on a slow machine they weigh more (one CI
    /// run had 13 of 50 second dumps start too late at a fixed 0.6).
    delay: f64,
}

fn overlap(ctx: &Ctx, report: &mut Report, refs: &HashMap<String, Reference>, root: &Path) {
    let mut tally = OverlapTally {
        refused: 0,
        killed: 0,
        after: 0,
        refusal: Duration::from_millis(100),
        delay: 0.6,
    };
    let mut compare = Vec::new();
    for trial in 0..OVERLAP_TRIALS {
        let index = usize::try_from(trial).unwrap_or(0);
        let output = OUTPUTS[index % OUTPUTS.len()];
        let strategy = Strategy::ALL[(index / OUTPUTS.len()) % Strategy::ALL.len()];
        let Some(reference) = refs.get(&output.label()) else { continue };
        let name = format!("integrity overlap {trial} ({} {})", output.label(), strategy.label());
        let dir = root.join(format!("trial-{trial:02}"));
        let mut rng = StdRng::seed_from_u64(ctx.seed.wrapping_mul(1_000_033).wrapping_add(trial));
        let outcome = overlap_trial(ctx, &dir, output, strategy, reference, &mut rng, &mut tally)
            .and_then(|()| verify_ok(&ctx.cli, &dir));
        if let Err(e) = outcome {
            report.check(&name, Err(e));
            continue;
        }
        if output.format == Format::Parquet {
            compare.push(python::compare(&name, TABLE, &reference.dir, &dir));
        } else {
            report.check(&name, text_matches(output, &dir, reference));
        }
    }
    check_compare(ctx, report, "integrity-overlap", &compare);
    report.fact(format!(
        "integrity overlap: {OVERLAP_TRIALS} trials; the second dump was refused {} times (the last in {}ms), killed before it exited {} times, ran after the first had finished {} times",
        tally.refused, tally.refusal.as_millis(), tally.killed, tally.after
    ));
    report.check(
        "integrity overlap: at least a fifth of the second dumps were refused, the rest mostly killed first",
        if tally.refused * 5 >= OVERLAP_TRIALS && tally.after * 5 < OVERLAP_TRIALS {
            Ok(())
        } else {
            Err(format!("{tally:?}"))
        },
    );
}

/// One overlap trial: dump A holds the table's lock; dump B (the same command) starts a random
/// moment later and is killed (SIGKILL) a random moment after that, if it is still running.
fn overlap_trial(
    ctx: &Ctx,
    dir: &Path,
    output: Output,
    strategy: Strategy,
    reference: &Reference,
    rng: &mut StdRng,
    tally: &mut OverlapTally,
) -> Result<(), String> {
    let args = dump_args(dir, output, strategy);
    let mut a = ctx.cli.cmd(&args).spawn();
    let lock = dir.join(format!(".{TABLE}.lock"));
    let state = dir.join(format!(".{TABLE}.state.json"));
    let pid = a.child.id();
    let waiting = Instant::now();
    // B starts once A holds the lock (else B might win it and A would be the one refused).
    while files::flock_holder(&lock) != Some(pid)
        && matches!(a.child.try_wait(), Ok(None))
        && waiting.elapsed() < LIMIT
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let span = reference.took.as_secs_f64();
    std::thread::sleep(Duration::from_secs_f64(span * tally.delay * rng.random_range(0.0..1.0)));
    let kill_after = tally.refusal.mul_f64(rng.random_range(0.0..2.0));
    let mut b = ctx.cli.cmd(&args).spawn();
    let b_started = Instant::now();
    // `Some((code, A still running, A's checkpoint complete))` when B exited by itself.
    let mut exited = None;
    loop {
        if let Ok(Some(status)) = b.child.try_wait() {
            let a_running = matches!(a.child.try_wait(), Ok(None));
            exited = Some((status.code(), a_running, is_complete(&state)));
            break;
        }
        if b_started.elapsed() >= kill_after {
            b.child.kill().map_err(|e| format!("kill: {e}"))?;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let b = b.finish(LIMIT);
    let a = a.finish(LIMIT);
    a.success().map_err(|e| format!("the first dump failed: {e}"))?;
    match exited {
        None => tally.killed += 1,
        Some((Some(0), true, false)) => {
            return Err("the second dump exited 0 while the first was writing".to_owned());
        }
        Some((Some(0), _, _)) => {
            tally.after += 1;
            tally.delay /= 2.0;
        }
        Some((Some(1), _, _)) if b.stderr.contains(LOCKED) => {
            tally.refused += 1;
            // Kill moments are drawn up to twice the last refusal's time: about half of them
            // land before it, half after.
            tally.refusal = b.elapsed;
        }
        Some((code, a_running, _)) => {
            return Err(format!(
                "the second dump exited {code:?} (the first still running: {a_running}) without `{LOCKED}`: {}",
                crate::proc::last_lines(&b.stderr, 3)
            ));
        }
    }
    Ok(())
}

fn read_state(path: &Path) -> Option<serde_json::Value> {
    std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

fn is_complete(state: &Path) -> bool {
    read_state(state).is_some_and(|s| s["is_complete"].as_bool() == Some(true))
}

/// Ways to damage a finished output.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    Truncate,
    Extend,
    Delete,
    /// Parquet only: a text output is one file, so there is no file of its own to add.
    AddPart,
    Flip,
}

impl Tamper {
    const ALL: [Tamper; 5] =
        [Tamper::Truncate, Tamper::Extend, Tamper::Delete, Tamper::AddPart, Tamper::Flip];

    fn label(self) -> &'static str {
        match self {
            Tamper::Truncate => "truncated",
            Tamper::Extend => "extended",
            Tamper::Delete => "deleted",
            Tamper::AddPart => "added",
            Tamper::Flip => "flipped",
        }
    }

    /// Damages the output in `dir`; the file to be named.
    fn apply(self, dir: &Path, output: Output) -> Result<PathBuf, String> {
        let data = if output.format == Format::Parquet {
            dir.join(format!("{TABLE}-00000.parquet"))
        } else {
            output.text_file(dir, TABLE)
        };
        let io = |e: std::io::Error| format!("{}: {e}", data.display());
        let mut bytes = std::fs::read(&data).map_err(io)?;
        match self {
            Tamper::Truncate => {
                bytes.truncate(bytes.len() / 2);
                std::fs::write(&data, &bytes).map_err(io)?;
            }
            Tamper::Extend => {
                bytes.extend_from_slice(b"{\"id\": 1}\n");
                std::fs::write(&data, &bytes).map_err(io)?;
            }
            Tamper::Delete => std::fs::remove_file(&data).map_err(io)?,
            Tamper::AddPart => {
                let added = dir.join(format!("{TABLE}-00099.parquet"));
                std::fs::write(&added, &bytes).map_err(io)?;
                return Ok(added);
            }
            Tamper::Flip => {
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x20;
                std::fs::write(&data, &bytes).map_err(io)?;
            }
        }
        Ok(data)
    }
}

fn tampering(ctx: &Ctx, report: &mut Report, refs: &HashMap<String, Reference>, root: &Path) {
    let mut cases = 0;
    for output in OUTPUTS {
        let Some(reference) = refs.get(&output.label()) else { continue };
        let base = root.join(output.label());
        let untouched = base.join("untouched");
        report.check(
            &format!("integrity tampering {}: verify passes an untouched copy", output.label()),
            files::copy_dir(&reference.dir, &untouched)
                .and_then(|()| verify_ok(&ctx.cli, &untouched)),
        );
        for tamper in Tamper::ALL {
            if matches!(tamper, Tamper::AddPart) && output.format != Format::Parquet {
                continue;
            }
            cases += 1;
            let dir = base.join(tamper.label());
            let name = format!("integrity tampering {} {}", output.label(), tamper.label());
            let outcome = files::copy_dir(&reference.dir, &dir)
                .and_then(|()| tamper.apply(&dir, output))
                .and_then(|file| refused(ctx, &dir, output, &file));
            report.check(&name, outcome);
        }
        cases += 1;
        let dir = base.join("edited-state");
        report.check(
            &format!("integrity tampering {} edited checkpoint", output.label()),
            files::copy_dir(&reference.dir, &dir).and_then(|()| edited_state(ctx, &dir, output)),
        );
    }
    report.fact(format!("integrity tampering: {cases} damaged copies of 3 outputs"));
}

/// `verify` names `file` and exits 1; a rerun of the dump exits 1, points at `iptvportal verify`
/// and changes nothing.
fn refused(ctx: &Ctx, dir: &Path, output: Output, file: &Path) -> Result<(), String> {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let run = verify(&ctx.cli, dir, &[]);
    let said = format!("{}{}", run.stdout, run.stderr);
    if run.code != Some(1) {
        return Err(format!("verify exited {:?}: {}", run.code, crate::proc::last_lines(&said, 3)));
    }
    if !said.lines().any(|l| l.contains(&name)) {
        return Err(format!("verify does not name {name}: {}", crate::proc::last_lines(&said, 3)));
    }
    let before = files::snapshot(dir);
    let rerun = ctx.cli.cmd(&dump_args(dir, output, Strategy::Offset)).run(LIMIT);
    if rerun.code != Some(1) || !rerun.stderr.contains("iptvportal verify") {
        return Err(format!(
            "the rerun exited {:?} without pointing at `iptvportal verify`: {}",
            rerun.code,
            crate::proc::last_lines(&rerun.stderr, 3)
        ));
    }
    match files::snapshot_diff(before.as_ref(), files::snapshot(dir).as_ref()) {
        Some(diff) => Err(format!("the refused rerun changed the directory: {diff}")),
        None => Ok(()),
    }
}

/// A checkpoint edited by hand (`dumped_rows` one less) is refused by the dump, which names it,
/// and by `verify`.
fn edited_state(ctx: &Ctx, dir: &Path, output: Output) -> Result<(), String> {
    let path = dir.join(format!(".{TABLE}.state.json"));
    let mut state = read_state(&path).ok_or("the reference has no readable checkpoint")?;
    let rows = state["dumped_rows"].as_u64().ok_or("no dumped_rows in the checkpoint")?;
    state["dumped_rows"] = serde_json::Value::from(rows - 1);
    let text = serde_json::to_string_pretty(&state).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    let run = ctx.cli.cmd(&dump_args(dir, output, Strategy::Offset)).run(LIMIT);
    let named = format!(".{TABLE}.state.json");
    if run.code != Some(1) || !run.stderr.contains(&named) {
        return Err(format!(
            "the dump exited {:?} without naming {named}: {}",
            run.code,
            crate::proc::last_lines(&run.stderr, 3)
        ));
    }
    let run = verify(&ctx.cli, dir, &[]);
    if run.code == Some(1) {
        Ok(())
    } else {
        Err(format!("verify exited {:?} on an edited checkpoint", run.code))
    }
}

/// What one dump of the big table cost the simulator, and what its `--debug` log says it sent.
#[derive(Debug, Clone, Copy, Default)]
struct Requests {
    /// Selects the simulator counted (`GET /stats` before and after).
    selects: u64,
    /// Row requests: one per chunk, and the last, short or empty, one.
    rows: u64,
    /// Id scan pages of a parallel traversal.
    scans: u64,
    /// The count every run starts with.
    counts: u64,
}

impl Requests {
    /// The `traversal request` lines of a `--debug` log, by what each asks for.
    fn logged(stderr: &str) -> Requests {
        let mut requests = Requests::default();
        for line in stderr.lines().filter(|l| l.contains("traversal request")) {
            if line.contains("what=\"counting") {
                requests.counts += 1;
            } else if line.contains("what=\"scanning") {
                requests.scans += 1;
            } else if line.contains("what=\"fetching") {
                requests.rows += 1;
            }
        }
        requests
    }
}

fn big_args(dir: &Path, parallel: u64) -> Vec<String> {
    let mut args = strings(&["dump", TABLE, "--out"]);
    args.push(dir.display().to_string());
    args.extend(strings(&["--format", "parquet", "--strategy", "id-range", "--parallel"]));
    args.push(parallel.to_string());
    args.extend(strings(&["--chunk-size", &BIG_CHUNK.to_string(), "--progress", "none"]));
    // Every request is logged: the row requests are told apart from the id scan's pages.
    args.push("--debug".to_owned());
    args
}

/// A dump's files at a kill: committed pieces (and the one being written), visible parts.
fn pieces_and_parts(dir: &Path) -> (u64, u64) {
    let (mut pieces, mut parts) = (0, 0);
    for path in files::walk(dir) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if name.starts_with(&format!(".{TABLE}-")) && ext == "piece" {
            pieces += 1;
        } else if name.starts_with(&format!("{TABLE}-")) && ext == "parquet" {
            parts += 1;
        }
    }
    (pieces, parts)
}

/// Uninterrupted runs, one per parallelism: the request counts and durations the trials are
/// measured against.
fn uninterrupted(
    cli: &Cli,
    sim: &Sim,
    root: &Path,
) -> Result<HashMap<u64, (Requests, Duration)>, String> {
    let mut baseline = HashMap::new();
    for parallel in [1, 3] {
        let dir = root.join(format!("reference-p{parallel}"));
        let before = sim.select_calls()?;
        let run = cli.cmd(&big_args(&dir, parallel)).run(LIMIT);
        run.success().map_err(|e| format!("--parallel {parallel}: {e}"))?;
        let mut requests = Requests::logged(&run.stderr);
        requests.selects = sim.select_calls()? - before;
        baseline.insert(parallel, (requests, run.elapsed));
    }
    Ok(baseline)
}

/// Kill trials of a Parquet dump that stays below one part. Returns the uninterrupted output
/// (sequential), for `--source`.
fn below_one_part(
    ctx: &Ctx,
    report: &mut Report,
    sim: &Sim,
    cli: &Cli,
    root: &Path,
) -> Option<PathBuf> {
    let reference = root.join("reference-p1");
    let baseline = match uninterrupted(cli, sim, root) {
        Ok(baseline) => baseline,
        Err(e) => {
            report.check("integrity below one part: the uninterrupted dumps", Err(e));
            return None;
        }
    };
    let mut compare = Vec::new();
    compare.push(python::compare(
        "integrity below one part: --parallel 3 equals --parallel 1",
        TABLE,
        &reference,
        &root.join("reference-p3"),
    ));
    // What every run costs besides its chunks and id scan: the selects the simulator counted
    // beyond the row requests and scan pages the log shows (the count).
    let overhead: HashMap<u64, u64> = baseline
        .iter()
        .map(|(&p, (r, _))| (p, r.selects.saturating_sub(r.rows + r.scans)))
        .collect();
    for parallel in [1, 3] {
        let (requests, took) = &baseline[&parallel];
        report.fact(format!(
            "integrity below one part: uninterrupted --parallel {parallel}: {} selects ({} row requests, {} id scan pages, {} per run besides: the count), {:.2}s",
            requests.selects, requests.rows, requests.scans, overhead[&parallel], took.as_secs_f64()
        ));
    }
    report.check(
        "integrity below one part: the --debug log shows every select the simulator counted",
        if baseline.values().all(|(r, _)| {
            r.rows >= BIG_ROWS / BIG_CHUNK && r.selects == r.rows + r.scans + r.counts
        }) {
            Ok(())
        } else {
            Err(format!("{baseline:?}"))
        },
    );

    let mut spans: HashMap<u64, Duration> = baseline.iter().map(|(&p, r)| (p, r.1)).collect();
    let mut kills = 0u64;
    let mut mid = Vec::new();
    let mut worst: HashMap<u64, (u64, u64)> = HashMap::new();
    for trial in 0..BELOW_PART_TRIALS {
        let parallel = if trial % 2 == 0 { 1 } else { 3 };
        let name = format!("integrity below one part: trial {trial} (--parallel {parallel})");
        let dir = root.join(format!("trial-{trial:02}"));
        let mut rng = StdRng::seed_from_u64(ctx.seed.wrapping_mul(1_000_037).wrapping_add(trial));
        let (uninterrupted, _) = baseline[&parallel];
        let delay = spans[&parallel].mul_f64(rng.random_range(0.15..0.9));
        let outcome =
            killed_and_resumed(cli, sim, &dir, parallel, delay, uninterrupted, overhead[&parallel]);
        match outcome {
            Err(e) => report.check(&name, Err(e)),
            Ok(measured) => {
                // A dump that finished first ran faster than the uninterrupted one did (a machine
                // busy with other work then): its time is the span of the next kill moments.
                if let Trial::Finished(took) = measured {
                    spans.insert(parallel, took);
                }
                if let Trial::Killed(Resumed { dumped, chunks, all }) = measured {
                    kills += 1;
                    mid.push(dumped);
                    let entry = worst.entry(parallel).or_default();
                    *entry = (entry.0.max(chunks), entry.1.max(all));
                    // Without an id scan every select past the count is a chunk request.
                    let counted = if parallel == 1 { chunks.max(all) } else { chunks };
                    report.check(
                        &format!("{name}: at most parallel + 1 chunk requests refetched"),
                        if counted <= parallel + 1 {
                            Ok(())
                        } else {
                            Err(format!("{chunks} chunk requests refetched ({all} selects in all)"))
                        },
                    );
                }
                compare.push(python::compare(&name, TABLE, &reference, &dir));
            }
        }
    }
    check_compare(ctx, report, "integrity-below-part", &compare);
    let advanced = mid.iter().filter(|&&d| d > 0 && d < BIG_ROWS).count();
    mid.sort_unstable();
    report.fact(format!(
        "integrity below one part: {BELOW_PART_TRIALS} trials of {BIG_ROWS} rows in chunks of {BIG_CHUNK}, {kills} SIGKILLs resumed; dumped_rows at the kills {mid:?} (below {BIG_ROWS}: in pieces only, no part file); most chunk requests refetched after a kill: --parallel 1 {} (selects {}), --parallel 3 {} (selects {}, id scan pages included)",
        worst.get(&1).map_or(0, |w| w.0),
        worst.get(&1).map_or(0, |w| w.1),
        worst.get(&3).map_or(0, |w| w.0),
        worst.get(&3).map_or(0, |w| w.1),
    ));
    report.check(
        "integrity below one part: most trials were killed mid-dump",
        if kills * 2 >= BELOW_PART_TRIALS { Ok(()) } else { Err(format!("{kills} kills")) },
    );
    report.check(
        "integrity below one part: the checkpoint advanced below one part",
        if advanced > 0 { Ok(()) } else { Err(format!("dumped_rows at the kills: {mid:?}")) },
    );
    Some(reference)
}

/// A killed and resumed dump of the big table.
struct Resumed {
    /// The checkpoint's `dumped_rows` right after the kill.
    dumped: u64,
    /// Row requests beyond the uninterrupted run's (the `--debug` logs of both runs).
    chunks: u64,
    /// Selects beyond the uninterrupted run's and the resume's own count (`GET /stats`).
    all: u64,
}

/// What a kill trial of the big table came to.
enum Trial {
    /// The dump finished before the kill, in this time: nothing to resume, nothing refetched.
    Finished(Duration),
    Killed(Resumed),
}

/// Dumps, SIGKILLs after `delay`, checks the files and the checkpoint at the kill, and resumes.
fn killed_and_resumed(
    cli: &Cli,
    sim: &Sim,
    dir: &Path,
    parallel: u64,
    delay: Duration,
    uninterrupted: Requests,
    overhead: u64,
) -> Result<Trial, String> {
    let before = sim.select_calls()?;
    let mut spawned = cli.cmd(&big_args(dir, parallel)).spawn();
    std::thread::sleep(delay);
    if !matches!(spawned.child.try_wait(), Ok(None)) {
        let run = spawned.finish(LIMIT);
        return run.success().map(|()| Trial::Finished(run.elapsed));
    }
    spawned.child.kill().map_err(|e| format!("kill: {e}"))?;
    let killed = spawned.finish(LIMIT);
    let (pieces, parts) = pieces_and_parts(dir);
    let state = read_state(&dir.join(format!(".{TABLE}.state.json")));
    let dumped = state.as_ref().and_then(|s| s["dumped_rows"].as_u64()).unwrap_or(0);
    if dumped < BIG_ROWS {
        if parts > 0 {
            return Err(format!("{parts} part files below one part ({dumped} rows)"));
        }
        if !dumped.is_multiple_of(BIG_CHUNK) || dumped > pieces * BIG_CHUNK {
            return Err(format!(
                "the checkpoint says {dumped} rows; {pieces} pieces of {BIG_CHUNK} rows are on disk"
            ));
        }
        // Every piece but the one being written and one committed but not yet in the
        // checkpoint is in the checkpoint.
        if dumped < pieces.saturating_sub(2) * BIG_CHUNK {
            return Err(format!(
                "the checkpoint says {dumped} rows with {pieces} pieces of {BIG_CHUNK} on disk: it does not advance per chunk"
            ));
        }
    }
    let resumed = cli.cmd(&big_args(dir, parallel)).run(LIMIT);
    resumed.success().map_err(|e| format!("the resume failed: {e}"))?;
    let selects = sim.select_calls()? - before;
    let (k, r) = (Requests::logged(&killed.stderr), Requests::logged(&resumed.stderr));
    Ok(Trial::Killed(Resumed {
        dumped,
        chunks: (k.rows + r.rows).saturating_sub(uninterrupted.rows),
        all: selects.saturating_sub(uninterrupted.selects + overhead),
    }))
}

/// Deletes the rows with ids in `lo..=hi` from the simulator's SQLite file (live: the simulator
/// reads it on every select); how many.
fn delete_rows(ctx: &Ctx, db: &Path, lo: i64, hi: i64) -> Result<u64, String> {
    let script = "import sqlite3, sys\n\
        c = sqlite3.connect(sys.argv[1], timeout=30)\n\
        n = c.execute('DELETE FROM terminal WHERE id BETWEEN ? AND ?', (int(sys.argv[2]), int(sys.argv[3]))).rowcount\n\
        c.commit()\n\
        print(n)\n";
    let out = std::process::Command::new(&ctx.checker.python)
        .args(["-c", script])
        .arg(db)
        .args([lo.to_string(), hi.to_string()])
        .output()
        .map_err(|e| format!("python: {e}"))?;
    if !out.status.success() {
        return Err(format!("python: {}", String::from_utf8_lossy(&out.stderr)));
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|e| format!("python said: {e}"))
}

/// Whether `text` names an id range `a..b` (two numbers on one line) that meets `lo..=hi` and is
/// narrower than `widest`.
fn names_range(text: &str, lo: i64, hi: i64, widest: i64) -> bool {
    text.lines().any(|line| {
        let numbers: Vec<i64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        numbers.windows(2).any(|w| w[0] <= hi && w[1] >= lo && w[0] < w[1] && w[1] - w[0] < widest)
    })
}

/// Rows deleted from the portal after a complete dump: `verify` still passes (the files are
/// intact), `verify --source` exits 1 and names a narrow range around the deleted ids.
fn source(ctx: &Ctx, report: &mut Report, cli: &Cli, db: &Path, dir: &Path) {
    let (lo, hi) = (150_000, 150_300);
    let deleted = match delete_rows(ctx, db, lo, hi) {
        Ok(n) if n > 0 => n,
        Ok(_) => {
            return report.check(
                "integrity --source: delete rows",
                Err(format!("no row with an id in {lo}..={hi}")),
            );
        }
        Err(e) => return report.check("integrity --source: delete rows", Err(e)),
    };
    report.check("integrity --source: verify without --source still passes", verify_ok(cli, dir));
    let run = verify(cli, dir, &["--source"]);
    let said = format!("{}{}", run.stdout, run.stderr);
    let widest = i64::try_from(BIG_ROWS).unwrap_or(i64::MAX) / 16;
    let outcome = if run.code != Some(1) {
        Err(format!("exit {:?}: {}", run.code, crate::proc::last_lines(&said, 4)))
    } else if !names_range(&said, lo, hi, widest) {
        Err(format!(
            "no narrow range around {lo}..={hi} named: {}",
            crate::proc::last_lines(&said, 4)
        ))
    } else {
        Ok(())
    };
    report.fact(format!(
        "integrity --source: {deleted} rows with ids in {lo}..={hi} deleted from the portal; verify --source said: {}",
        crate::proc::last_lines(&said, 3)
    ));
    report.check("integrity --source: verify --source names the deleted range", outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_range_must_meet_the_deleted_ids_and_be_narrow() {
        let line =
            "terminal: terminal-00000.parquet: ids 149934..=150077 hold 70 rows, the portal 0";
        assert!(names_range(line, 150_000, 150_300, 1000));
        assert!(!names_range(line, 160_000, 160_300, 1000), "elsewhere");
        assert!(!names_range("ids 1..=590709 differ", 150_000, 150_300, 1000), "too wide");
    }

    #[test]
    fn the_debug_log_tells_row_requests_from_scan_pages() {
        let log = "DEBUG x: traversal request what=\"counting rows of terminal\"\n\
                   DEBUG x: traversal request what=\"fetching the first rows of terminal\"\n\
                   DEBUG x: traversal request what=\"fetching rows of terminal with ids in (1, 9]\"\n\
                   DEBUG x: traversal request what=\"scanning the ids of terminal after 9\"\n\
                   DEBUG y: select method=\"select\" rows=5\n";
        let r = Requests::logged(log);
        assert_eq!((r.counts, r.rows, r.scans), (1, 2, 1));
    }
}

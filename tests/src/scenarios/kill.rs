//! Kill trials: SIGKILL real dump processes at seeded random moments, rerun the same command until
//! it exits 0, and require the output to equal an uninterrupted dump's (design §5): the same bytes
//! (decoded, for gzip), and for Parquet the same schema and rows; no row lost, none duplicated;
//! and `iptvportal verify` passes the finished output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Strategy, strings};
use crate::Ctx;
use crate::files::{self, Format, Output};
use crate::python;
use crate::report::Report;

/// The table the trials dump: a few thousand rows, with nulls and id gaps.
pub(crate) const TABLE: &str = "terminal";

const LIMIT: Duration = Duration::from_secs(120);

/// The most the trials may take; they stop early when the machine is slow, and the check below
/// still requires [`MIN_KILLS`].
const BUDGET: Duration = Duration::from_secs(240);

/// The fewest kills that make the phase count.
const MIN_KILLS: u64 = 100;

/// An uninterrupted dump of [`TABLE`] in one output.
pub(crate) struct Reference {
    pub(crate) dir: PathBuf,
    /// How long the uninterrupted dump took: kill moments are drawn up to this.
    pub(crate) took: Duration,
    /// Decoded bytes of a text output (empty for Parquet).
    pub(crate) bytes: Vec<u8>,
    pub(crate) ids: Vec<i64>,
}

/// The dump command of a trial (and of its reference).
pub(crate) fn dump_args(dir: &Path, output: Output, strategy: Strategy) -> Vec<String> {
    let mut args = strings(&["dump", TABLE, "--out"]);
    args.push(dir.display().to_string());
    args.extend(output.args());
    args.extend(strategy.args());
    // Small chunks: many commits, so a random moment often falls between fetch and commit.
    args.extend(strings(&["--chunk-size", "25", "--progress", "none"]));
    if output.format == Format::Parquet {
        // Several parts, so that kills land before, inside and after part closes.
        args.extend(strings(&["--part-rows", "600"]));
    }
    args
}

/// Dumps [`TABLE`] once per output, uninterrupted.
pub(crate) fn references(ctx: &Ctx, report: &mut Report) -> HashMap<String, Reference> {
    let mut refs = HashMap::new();
    for output in Output::ALL {
        let dir = ctx.work.join("reference").join(output.label());
        let run = ctx.cli.cmd(&dump_args(&dir, output, Strategy::Offset)).run(LIMIT);
        let outcome = run.success().and_then(|()| {
            if output.format == Format::Parquet {
                return Ok((Vec::new(), Vec::new()));
            }
            let bytes = files::read_decoded(&output.text_file(&dir, TABLE))?;
            let ids = files::ids(output.format, &bytes)?;
            Ok((bytes, ids))
        });
        match outcome {
            Ok((bytes, ids)) => {
                refs.insert(output.label(), Reference { dir, took: run.elapsed, bytes, ids });
            }
            Err(e) => report.check(&format!("reference {}", output.label()), Err(e)),
        }
    }
    let took: Vec<String> =
        refs.iter().map(|(k, r)| format!("{k} {}ms", r.took.as_millis())).collect();
    report.fact(format!("references ({TABLE}): {}", took.join(", ")));
    refs
}

/// Totals of the trials.
#[derive(Debug, Default)]
struct Tally {
    trials: u64,
    kills: u64,
    finished_before_kill: u64,
    /// Kills that found a checkpoint with committed rows: the ones that test resume, not restart.
    mid_dump: u64,
    resumes: u64,
    lost: u64,
    duplicated: u64,
}

/// Runs trials until `target` kills have landed (or only trial `only`, to replay one).
pub(crate) fn run(
    ctx: &Ctx,
    report: &mut Report,
    refs: &HashMap<String, Reference>,
    target: u64,
    only: Option<u64>,
) {
    let configs: Vec<(Output, Strategy)> =
        Output::ALL.into_iter().flat_map(|o| Strategy::ALL.map(|s| (o, s))).collect();
    let mut tally = Tally::default();
    let mut compare = Vec::new();
    // The span kill moments are drawn from, per output: the reference's duration at first, then
    // that of the last uninterrupted run, since a machine busy with other work while the reference
    // ran would otherwise make most moments fall after the end.
    let mut spans: HashMap<String, f64> =
        refs.iter().map(|(k, r)| (k.clone(), r.took.as_secs_f64())).collect();
    let started = std::time::Instant::now();
    let trials: Box<dyn Iterator<Item = u64>> = match only {
        Some(t) => Box::new(std::iter::once(t)),
        None => Box::new(0..target * 3),
    };
    for trial in trials {
        if only.is_none() && (tally.kills >= target || started.elapsed() > BUDGET) {
            break;
        }
        let (output, strategy) = configs[usize::try_from(trial).unwrap_or(0) % configs.len()];
        let Some(reference) = refs.get(&output.label()) else { continue };
        let name = format!("kill trial {trial} ({} {})", output.label(), strategy.label());
        let dir = ctx.work.join("kill").join(format!("trial-{trial:03}"));
        // Each trial has its own generator, so `--trial N` replays exactly trial N's moments.
        let mut rng = StdRng::seed_from_u64(ctx.seed.wrapping_mul(1_000_003).wrapping_add(trial));
        let args = dump_args(&dir, output, strategy);
        tally.trials += 1;
        let span = spans.entry(output.label()).or_insert(0.1);
        let outcome = one_trial(ctx, &args, span, &mut rng, &mut tally);
        if let Err(e) = outcome {
            report.check(
                &name,
                Err(format!("{e} (replay: cargo xtask e2e --seed {} --trial {trial})", ctx.seed)),
            );
            continue;
        }
        if let Err(e) = finished_cleanly(ctx, &dir) {
            report.check(
                &name,
                Err(format!("{e} (replay: cargo xtask e2e --seed {} --trial {trial})", ctx.seed)),
            );
            continue;
        }
        if output.format == Format::Parquet {
            compare.push(python::compare(&name, TABLE, &reference.dir, &dir));
            continue;
        }
        let outcome = files::read_decoded(&output.text_file(&dir, TABLE)).and_then(|bytes| {
            let ids = files::ids(output.format, &bytes)?;
            let (lost, duplicated) = files::lost_and_duplicated(&reference.ids, &ids);
            tally.lost += lost;
            tally.duplicated += duplicated;
            if bytes != reference.bytes {
                return Err(format!("output differs from the uninterrupted dump's ({lost} rows lost, {duplicated} duplicated)"));
            }
            Ok(())
        });
        report.check(
            &name,
            outcome.map_err(|e| {
                format!("{e} (replay: cargo xtask e2e --seed {} --trial {trial})", ctx.seed)
            }),
        );
    }
    if !compare.is_empty() {
        match ctx.checker.run("kill", &[], &compare) {
            Ok(verdict) => {
                for entry in verdict["compare"].as_array().into_iter().flatten() {
                    tally.lost += entry["lost"].as_u64().unwrap_or(0);
                    tally.duplicated += entry["duplicated"].as_u64().unwrap_or(0);
                    report
                        .check(entry["name"].as_str().unwrap_or("?"), python::entry_outcome(entry));
                }
            }
            Err(e) => report.check("kill trials: python checker", Err(e)),
        }
    }
    report.fact(format!(
        "kill trials: {} trials, {} SIGKILLs ({} after some rows were committed; {} draws fell after the dump had finished), {} resumed runs, rows lost {}, rows duplicated {}",
        tally.trials, tally.kills, tally.mid_dump, tally.finished_before_kill, tally.resumes, tally.lost, tally.duplicated
    ));
    if only.is_none() {
        report.check(
            "kill trials: at least 100 SIGKILLs landed (or --kills, if fewer)",
            if tally.kills >= target.min(MIN_KILLS) {
                Ok(())
            } else {
                Err(format!("{} of {}", tally.kills, target.min(MIN_KILLS)))
            },
        );
    }
    report.check(
        "kill trials: no row lost or duplicated",
        if tally.lost == 0 && tally.duplicated == 0 {
            Ok(())
        } else {
            Err(format!("{} lost, {} duplicated", tally.lost, tally.duplicated))
        },
    );
}

/// No temp file, unclosed part or Parquet piece survives a completed dump, and every file it
/// holds is as its manifest says (`iptvportal verify`).
fn finished_cleanly(ctx: &Ctx, dir: &Path) -> Result<(), String> {
    let leftovers: Vec<String> = files::walk(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tmp" || e == "piece"))
        .map(|p| p.display().to_string())
        .collect();
    if !leftovers.is_empty() {
        return Err(format!("temp files left: {leftovers:?}"));
    }
    super::integrity::verify_ok(&ctx.cli, dir)
}

/// One trial: one to three kills at random moments, then reruns until the dump exits 0.
fn one_trial(
    ctx: &Ctx,
    args: &[String],
    span: &mut f64,
    rng: &mut StdRng,
    tally: &mut Tally,
) -> Result<(), String> {
    let kills = rng.random_range(1..=3u32);
    // Moments up to the whole uninterrupted duration (process start and login included), so that
    // kills fall early, mid-way and near the end; a resumed run is shorter, so later kills of a
    // trial more often find it finished.
    for k in 0..kills {
        let delay = Duration::from_secs_f64(*span * rng.random_range(0.0..1.0));
        let mut spawned = ctx.cli.cmd(args).spawn();
        std::thread::sleep(delay);
        if !matches!(spawned.child.try_wait(), Ok(None)) {
            tally.finished_before_kill += 1;
            let run = spawned.finish(LIMIT);
            if k == 0 {
                *span = run.elapsed.as_secs_f64();
            } else {
                tally.resumes += 1;
            }
            return run.success().map_err(|e| format!("a run that was not killed failed: {e}"));
        }
        spawned.child.kill().map_err(|e| format!("kill: {e}"))?;
        let _ = spawned.child.wait();
        tally.kills += 1;
        if committed_rows(args) > 0 {
            tally.mid_dump += 1;
        }
    }
    // The design's promise is that the same command simply resumes: a failing rerun is a failure,
    // not something to retry away.
    tally.resumes += 1;
    let run = ctx.cli.cmd(args).run(LIMIT);
    run.success().map_err(|e| format!("the resume after SIGKILL failed: {e}"))
}

/// Rows the checkpoint of the trial's output directory says are committed (0 without one).
fn committed_rows(args: &[String]) -> u64 {
    let Some(dir) = args.iter().position(|a| a == "--out").and_then(|i| args.get(i + 1)) else {
        return 0;
    };
    let state = Path::new(dir).join(format!(".{TABLE}.state.json"));
    std::fs::read(state)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|v| v["dumped_rows"].as_u64())
        .unwrap_or(0)
}

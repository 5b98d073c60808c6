//! The key guarantee, end to end: a real `iptvportal dump` process killed at random instants (or
//! interrupted by a signal) and rerun finishes with the output of an uninterrupted dump.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Output as ProcessOutput, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::dumping::{Output, Rng, assert_same, dump_process, output, portal, text_parts};

/// Rows of `terminal`, rows per chunk, rows per Parquet part and the portal's latency: about fifty
/// chunks, so that a dump takes a few hundred milliseconds and kills land all over it, and Parquet
/// parts rotate every few chunks.
const ROWS: u64 = 3000;
const CHUNK: &str = "40";
const PART_ROWS: &str = "240";
const LATENCY_MS: u64 = 4;
/// Kills per scenario at least.
const MIN_KILLS: u32 = 25;

struct Scenario {
    name: &'static str,
    format: &'static str,
    gzip: bool,
    /// Text in parts of `PART_ROWS` rows (`--part-rows`) instead of one file.
    parts: bool,
    strategy: &'static [&'static str],
}

const OFFSET: &[&str] = &["--strategy", "offset"];
const ID_RANGE: &[&str] = &["--strategy", "id-range", "--parallel", "1"];
const PARALLEL: &[&str] = &["--strategy", "id-range", "--parallel", "3"];

/// Every format, each strategy over several of them, and text in parts.
const SCENARIOS: [Scenario; 8] = [
    Scenario { name: "jsonl", format: "jsonl", gzip: false, parts: false, strategy: OFFSET },
    Scenario { name: "jsonl.gz", format: "jsonl", gzip: true, parts: false, strategy: ID_RANGE },
    Scenario { name: "csv", format: "csv", gzip: false, parts: false, strategy: PARALLEL },
    Scenario { name: "csv.gz", format: "csv", gzip: true, parts: false, strategy: OFFSET },
    Scenario { name: "json", format: "json", gzip: false, parts: false, strategy: ID_RANGE },
    Scenario { name: "json.gz", format: "json", gzip: true, parts: false, strategy: PARALLEL },
    Scenario { name: "parquet", format: "parquet", gzip: false, parts: false, strategy: PARALLEL },
    Scenario { name: "json.gz-p", format: "json", gzip: true, parts: true, strategy: PARALLEL },
];

impl Scenario {
    fn command(&self, url: &str, out: &Path) -> std::process::Command {
        let mut cmd = dump_process(url, out);
        cmd.arg("terminal")
            .args(["--format", self.format, "--chunk-size", CHUNK])
            .args(self.strategy)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if self.gzip {
            cmd.arg("--compress");
        }
        if self.format == "parquet" || self.parts {
            cmd.args(["--part-rows", PART_ROWS]);
        }
        cmd
    }

    fn output(&self, dir: &Path) -> Output {
        if self.parts {
            let ext = format!("{}{}", self.format, if self.gzip { ".gz" } else { "" });
            text_parts(dir, "terminal", &ext)
        } else {
            output(dir, "terminal", self.format, self.gzip)
        }
    }
}

/// What one scenario did.
struct Tally {
    /// How long the uninterrupted dump took.
    whole: Duration,
    kills: u32,
    runs: u32,
    rounds: u32,
}

#[test]
fn killed_dumps_resume_to_the_same_output() {
    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap();
        // The low 64 bits of the nanoseconds: any value is as good a seed as another.
        #[expect(clippy::cast_possible_truncation, reason = "only the low bits are wanted")]
        let nanos = now.as_nanos() as u64;
        nanos
    });
    // Printed first, so that a failure shows it (the harness prints a failing test's output).
    eprintln!("crash test seed {seed}; replay with CRASH_SEED={seed}");
    // One portal per scenario: a killed client abandons its requests mid-query, and the
    // simulator's connection pool is sized for one client's parallelism, not seven.
    let portals: Vec<_> = SCENARIOS.iter().map(|_| portal(ROWS, LATENCY_MS)).collect();
    let root = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = SCENARIOS
            .iter()
            .zip(&portals)
            .zip(0u64..)
            .map(|((scenario, portal), i)| {
                let (url, root) = (portal.url(), root.path());
                s.spawn(move || crash_and_resume(url, root, scenario, seed.wrapping_add(i)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for (scenario, t) in SCENARIOS.iter().zip(&tallies) {
        eprintln!(
            "{:<9} {:<38} whole dump {:>4} ms, {:>3} kills, {:>3} runs, {} rounds",
            scenario.name,
            scenario.strategy.join(" "),
            t.whole.as_millis(),
            t.kills,
            t.runs,
            t.rounds
        );
    }
    eprintln!(
        "{} kills in {:.1}s",
        tallies.iter().map(|t| t.kills).sum::<u32>(),
        started.elapsed().as_secs_f64()
    );
}

/// Rounds of: a fresh directory, runs killed with SIGKILL after a random delay until one
/// completes, then the output compared with the reference; until `MIN_KILLS` kills happened.
fn crash_and_resume(url: &str, root: &Path, scenario: &Scenario, seed: u64) -> Tally {
    let context = |what: &str| format!("seed {seed}, {}: {what}", scenario.name);
    let mut rng = Rng::new(seed);
    let reference = root.join(format!("{}-reference", scenario.name));
    let began = Instant::now();
    let done = scenario.command(url, &reference).output().unwrap();
    assert!(done.status.success(), "{}", context(&stderr(&done)));
    // Delays are drawn up to the length of a whole run, so kills land in every phase: login,
    // counting, opening and cutting back files, mid-chunk, mid-commit, finishing.
    let whole = began.elapsed();
    let want = scenario.output(&reference);
    if scenario.parts {
        let Output::Text(text) = &want else { unreachable!("text parts read as text") };
        let parts = text.windows(9).filter(|w| w == b"terminal-").count();
        assert!(parts >= 12, "{}", context(&format!("{parts} parts of 240 rows for 3000 rows")));
    }

    let mut tally = Tally { whole, kills: 0, runs: 0, rounds: 0 };
    while tally.kills < MIN_KILLS {
        tally.rounds += 1;
        let dir = root.join(format!("{}-{}", scenario.name, tally.rounds));
        loop {
            tally.runs += 1;
            assert!(tally.runs < 500, "{}", context("no progress after 500 runs"));
            let child = scenario.command(url, &dir).spawn().unwrap();
            // Up to 70% of a whole run: most runs die, some before their first commit, so that
            // a round sees several kills and resumes, not one kill and a completion.
            let (killed, out) = run_until(child, whole.mul_f64(0.7 * rng.unit()));
            if killed {
                assert_eq!(out.status.signal(), Some(9), "{}", context(&stderr(&out)));
                tally.kills += 1;
                continue;
            }
            assert!(out.status.success(), "{}", context(&stderr(&out)));
            break;
        }
        let round = format!("round {}", tally.rounds);
        assert_same(&scenario.output(&dir), &want, &context(&round));
        let verified = crate::bare().arg("verify").arg(&dir).output().unwrap();
        let said = String::from_utf8_lossy(&verified.stdout);
        assert!(verified.status.success(), "{}", context(&format!("verify: {said}")));
        let leftovers: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                std::path::Path::new(n).extension().is_some_and(|e| e.eq_ignore_ascii_case("tmp"))
            })
            .collect();
        assert!(leftovers.is_empty(), "{}", context(&format!("temp files left: {leftovers:?}")));
    }
    tally
}

/// Lets `child` run for `delay`, then kills it with SIGKILL unless it has exited. Returns whether
/// it was killed, and its output.
pub(crate) fn run_until(mut child: Child, delay: Duration) -> (bool, ProcessOutput) {
    let deadline = Instant::now() + delay;
    loop {
        if child.try_wait().unwrap().is_some() {
            return (false, child.wait_with_output().unwrap());
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(3)));
    }
    // `Child::kill` is SIGKILL on Unix: no handler runs, nothing is flushed.
    let killed = child.kill().is_ok();
    let out = child.wait_with_output().unwrap();
    // It may have exited on its own between the last look and the kill.
    (killed && out.status.signal() == Some(9), out)
}

fn stderr(out: &ProcessOutput) -> String {
    format!("exit {:?}, stderr: {}", out.status, String::from_utf8_lossy(&out.stderr))
}

/// The state file's committed row count, once it exists.
pub(crate) fn committed_rows(dir: &Path) -> u64 {
    std::fs::read(dir.join(".terminal.state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["dumped_rows"].as_u64())
        .unwrap_or(0)
}

/// Starts `cmd`, waits until its checkpoint in `dir` holds `rows` rows, sends it `signals` one
/// after the other and returns its stderr, once it has exited with 130 (interrupted).
pub(crate) fn interrupt(
    mut cmd: std::process::Command,
    dir: &Path,
    rows: u64,
    signals: &[&str],
    name: &str,
) -> String {
    let child = cmd.spawn().unwrap();
    let waited = Instant::now();
    while committed_rows(dir) < rows {
        assert!(waited.elapsed() < Duration::from_secs(20), "{name}: no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    for s in signals {
        signal(child.id(), s);
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{name}: {text}");
    text
}

pub(crate) fn signal(pid: u32, name: &str) {
    let status =
        std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
    assert!(status.unwrap().success(), "kill -{name} {pid}");
}

#[test]
fn a_signal_stops_the_dump_resumably_and_a_second_one_at_once() {
    let portal = portal(3000, 5);
    let root = tempfile::tempdir().unwrap();
    let command = |dir: &Path| {
        let mut cmd = portal.dump_process(dir);
        cmd.args(["terminal", "--chunk-size", "20", "--format", "csv", "--strategy", "id-range"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    let reference = root.path().join("reference");
    assert!(command(&reference).status().unwrap().success());
    let want = output(&reference, "terminal", "csv", false);

    for (name, signals) in [("int", &["INT"][..]), ("term", &["TERM"]), ("twice", &["INT", "INT"])]
    {
        let dir = root.path().join(name);
        let text = interrupt(command(&dir), &dir, 200, signals, name);
        assert!(
            text.lines().any(|l| l == "interrupted: run the same command again to resume"),
            "{name}: {text}"
        );
        assert!(!text.contains("error:") && !text.contains("panicked"), "{name}: {text}");
        let rows = committed_rows(&dir);
        assert!(rows < 3000, "{name}: the dump finished before the signal ({rows} rows)");

        let rerun = command(&dir).output().unwrap();
        assert!(rerun.status.success(), "{name}: {}", stderr(&rerun));
        assert_same(&output(&dir, "terminal", "csv", false), &want, name);
    }
}

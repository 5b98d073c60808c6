//! Scenario 9: `iptvportal sync` (issue 14), a snapshot of `terminal` and then deltas after the
//! simulator's data changed, against the target that a delta after 1 % of the rows changed costs
//! at most 0.05 of the snapshot's wall time, and that the requests a delta sends grow with the
//! changes, not with the table.
//!
//! A series runs against one simulator over a database generated anew for it (the series mutates
//! it, so it is not the file the other scenarios share): the snapshot once, then
//! `repetitions` times, interleaved, a delta after each of four changes made with
//! `iptvportal-sim mutate` while the simulator serves the file:
//! - 1 % of the rows inserted: the id path (rows above the last run's high-water mark);
//! - 1 % of the rows updated: the cursor path (`last_seen` in the run's window);
//! - 0.1 % of the rows deleted: the deletes, found by count requests over id ranges;
//! - nothing changed: what a delta costs when there is nothing to fetch.
//!
//! Inserts and updates are written with `mutate --at` an instant an hour ago (a minute later for
//! each mutation), so that with the default lag of 5 minutes every changed row falls in the
//! next run's window (the window ends at `min(now - lag, latest change)` or `latest - lag`).
//! Every run's record (`sync.json`) must count exactly the rows mutated as new, changed and
//! deleted, or the scenario fails.
//!
//! Requests are the simulator's `select_calls` from `GET /stats` before and after each run (the
//! login is counted apart). Each run has `--debug`, whose request lines (timestamped, with their
//! duration) and the dump's own seconds from `--summary` split its wall time into phases: start
//! and login, the window (the largest id and change value, the run recorded), the dump, reading
//! the run's ids and merging them into the held ids, the deletes' count requests, and the commit
//! (held ids, deletes file, record) and exit.
//!
//! Two series: at latency 0 (the target's) and at the bench's latency (20 ms), for information.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::process::{SimProcess, run_measured};
use super::report::{Row, Target, median};
use super::{Bench, Sample, credentials, remove_dir, summarize};

/// The most a delta may cost, as a fraction of the snapshot's wall time.
const MAX_RATIO: f64 = 0.05;
/// The lag every run uses: the CLI's default.
const LAG: &str = "5m";
/// How long before now the first mutation's instant is: well past the lag.
const AT_BEFORE_NOW_SECS: i64 = 3600;

/// What changed before a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Insert,
    Update,
    Delete,
    Nothing,
}

impl Change {
    const ALL: [Change; 4] = [Change::Insert, Change::Update, Change::Delete, Change::Nothing];

    /// The rows inserted, updated and deleted, for a table of `n` rows.
    fn mutation(self, n: u64) -> (u64, u64, u64) {
        let percent = (n / 100).max(1);
        let per_mille = (n / 1000).max(1);
        match self {
            Change::Insert => (percent, 0, 0),
            Change::Update => (0, percent, 0),
            Change::Delete => (0, 0, per_mille),
            Change::Nothing => (0, 0, 0),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Change::Insert => "insert",
            Change::Update => "update",
            Change::Delete => "delete",
            Change::Nothing => "nothing",
        }
    }

    fn variant(self, n: u64, latency_ms: u64) -> String {
        let (insert, update, delete) = self.mutation(n);
        let what = match self {
            Change::Insert => format!("delta after {insert} inserts (id path)"),
            Change::Update => format!("delta after {update} updates (cursor path)"),
            Change::Delete => format!("delta after {delete} deletes (count descent)"),
            Change::Nothing => "delta with no changes".to_owned(),
        };
        format!("{what}, latency {latency_ms} ms")
    }
}

/// Where one run's wall time went, in seconds (see the module's docs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Phases {
    /// Spawn to the login's answer.
    start: f64,
    /// The login to the dump's first request: the window's requests, the run recorded.
    window: f64,
    window_requests: usize,
    /// The dump, as its `--summary` times it.
    dump: f64,
    dump_requests: usize,
    /// The dump's end to the first request of the deletes: the run's ids read, merged.
    merge: f64,
    /// The deletes' first request sent to the last one answered.
    deletes: f64,
    delete_requests: usize,
    /// The last request to the exit: held ids and deletes written, the record, the summary.
    commit: f64,
}

impl Phases {
    fn describe(&self) -> String {
        let ms = |s: f64| format!("{:.0} ms", s * 1000.0);
        format!(
            "start+login {}, window {} ({} req), dump {} ({} req), ids+merge {}, deletes {} ({} req), commit+exit {}",
            ms(self.start),
            ms(self.window),
            self.window_requests,
            ms(self.dump),
            self.dump_requests,
            ms(self.merge),
            ms(self.deletes),
            self.delete_requests,
            ms(self.commit)
        )
    }

    /// The median of each phase over `all` (so they need not add up to the median run).
    fn median_of(all: &[Phases]) -> Option<Phases> {
        if all.is_empty() {
            return None;
        }
        let m = |f: fn(&Phases) -> f64| median(&all.iter().map(f).collect::<Vec<_>>());
        let n = |f: fn(&Phases) -> usize| {
            let mut v: Vec<usize> = all.iter().map(f).collect();
            v.sort_unstable();
            v[v.len() / 2]
        };
        Some(Phases {
            start: m(|p| p.start),
            window: m(|p| p.window),
            window_requests: n(|p| p.window_requests),
            dump: m(|p| p.dump),
            dump_requests: n(|p| p.dump_requests),
            merge: m(|p| p.merge),
            deletes: m(|p| p.deletes),
            delete_requests: n(|p| p.delete_requests),
            commit: m(|p| p.commit),
        })
    }
}

/// One measured run of `iptvportal sync`.
#[derive(Debug, Clone)]
struct SyncRun {
    sample: Sample,
    /// `select` requests the simulator answered during the run.
    selects: u64,
    /// `authorize_user` requests (the login).
    logins: u64,
    /// `None` when the `--debug` log could not be read as expected.
    phases: Option<Phases>,
}

/// The counts a run's record must hold.
#[derive(Debug, Clone, Copy)]
struct Expected {
    run: u64,
    kind: &'static str,
    new: u64,
    changed: u64,
    deleted: u64,
}

/// One series' fixed parts: its simulator, database and output directory.
struct Series<'s> {
    sim: &'s SimProcess,
    db: &'s Path,
    out: &'s Path,
}

impl Bench<'_> {
    /// Scenario 9: a series at latency 0 (the target) and one at the bench's latency.
    pub(super) fn sync(&self) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for latency in [0, self.plan.latency_ms] {
            rows.extend(self.sync_series(latency)?);
        }
        Ok(rows)
    }

    /// A snapshot, then the deltas, `repetitions` rounds of [`Change::ALL`].
    fn sync_series(&self, latency_ms: u64) -> Result<Vec<Row>> {
        let n = self.plan.memory_large;
        let db = self.work.join("db").join(format!("sync-terminal-{n}.db"));
        // Generated anew from the seed: the previous series mutated it.
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.clone().into_os_string();
            name.push(suffix);
            let file = PathBuf::from(name);
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing {}", file.display()));
                }
                _ => {}
            }
        }
        let sim = self.sim(&db, &[("terminal", n)], latency_ms)?;
        let out = self.work.join("out").join(format!("s9-latency{latency_ms}"));
        remove_dir(&out)?;
        let series = Series { sim: &sim, db: &db, out: &out };
        let enforce = latency_ms == 0 && !self.plan.quick;

        let expected = Expected { run: 1, kind: "snapshot", new: n, changed: 0, deleted: 0 };
        let snapshot = self
            .sync_run(&series, expected, &format!("s9-l{latency_ms}-snapshot"))
            .with_context(|| format!("9 sync / snapshot, latency {latency_ms} ms"))?;
        report_run(&format!("snapshot of {n} rows, latency {latency_ms} ms"), 1, 1, &snapshot);

        let first_at = unix_now() - AT_BEFORE_NOW_SECS;
        let mut mutations = 0;
        let mut run_number = 1;
        let mut deltas: Vec<Vec<SyncRun>> = Change::ALL.iter().map(|_| Vec::new()).collect();
        let reps = self.plan.repetitions;
        for rep in 1..=reps {
            for (i, change) in Change::ALL.into_iter().enumerate() {
                let variant = change.variant(n, latency_ms);
                let label = format!("s9-l{latency_ms}-r{rep}-{}", change.label());
                let (new, changed, deleted) = change.mutation(n);
                if change != Change::Nothing {
                    let at = format_timestamp(first_at + 60 * mutations);
                    let seed = 1000 + u64::try_from(mutations).unwrap_or(0);
                    mutations += 1;
                    let line = self
                        .mutate(series.db, change.mutation(n), seed, &at, &label)
                        .with_context(|| format!("9 sync / {variant}, run {rep}: mutate"))?;
                    eprintln!("  9 sync / mutate --at '{at}': {line}");
                }
                run_number += 1;
                let expected = Expected { run: run_number, kind: "delta", new, changed, deleted };
                let run = self
                    .sync_run(&series, expected, &label)
                    .with_context(|| format!("9 sync / {variant}, run {rep}"))?;
                report_run(&variant, rep, reps, &run);
                deltas[i].push(run);
            }
        }

        let mut rows = Vec::new();
        let mut snapshot_row = summarize(
            "9 sync",
            &format!("snapshot of {n} rows, latency {latency_ms} ms"),
            std::slice::from_ref(&snapshot.sample),
        );
        snapshot_row.ratio_meaning = Some(format!(
            "none, the deltas' baseline; {} selects (+{} login); {}",
            snapshot.selects,
            snapshot.logins,
            snapshot.phases.as_ref().map_or_else(|| "phases: ?".to_owned(), Phases::describe)
        ));
        let base = snapshot_row.median_seconds;
        rows.push(snapshot_row);
        for (change, runs) in Change::ALL.into_iter().zip(deltas) {
            let samples: Vec<Sample> = runs.iter().map(|r| r.sample.clone()).collect();
            let mut row = summarize("9 sync", &change.variant(n, latency_ms), &samples);
            let selects: Vec<String> = runs.iter().map(|r| r.selects.to_string()).collect();
            let phases: Vec<Phases> = runs.iter().filter_map(|r| r.phases).collect();
            let meaning = format!(
                "{}delta seconds / snapshot seconds; selects per run {} (+{} login); median phases: {}",
                if latency_ms == 0 { "" } else { "(information, no target) " },
                selects.join(", "),
                runs.first().map_or(0, |r| r.logins),
                Phases::median_of(&phases).map_or_else(|| "?".to_owned(), |p| p.describe())
            );
            let target = (latency_ms == 0).then_some(Target::AtMost(MAX_RATIO));
            row.compare(row.median_seconds / base, &meaning, target, enforce);
            rows.push(row);
        }
        drop(sim);
        // A million rows' snapshot is some 160 MB; only the numbers are kept.
        remove_dir(&out)?;
        Ok(rows)
    }

    /// Runs `iptvportal sync terminal` once into the series' directory: its wall time and peak
    /// memory, the requests the simulator counted, its phases; checks its record.
    fn sync_run(&self, series: &Series<'_>, expected: Expected, label: &str) -> Result<SyncRun> {
        let summary = self.logs.join(format!("{label}.summary.json"));
        let mut command = Command::new(&self.tools.cli);
        command
            .args(["--portal", series.sim.url(), "--debug", "sync", "terminal", "--out"])
            .arg(series.out)
            .args(["--format", "jsonl", "--chunk-size", &self.plan.chunk.to_string()])
            .args(["--parallel", "3", "--lag", LAG, "--progress", "none", "--summary"])
            .arg(&summary);
        credentials(&mut command);
        let before = sim_stats(series.sim.url())?;
        let spawned = unix_seconds(SystemTime::now());
        let measured = run_measured(&mut command, &self.logs, label)?;
        let after = sim_stats(series.sim.url())?;
        let (rows, bytes) = check_record(series.out, expected)?;
        let log = std::fs::read_to_string(self.logs.join(format!("{label}.stderr")))
            .context("reading the sync's log")?;
        let dump_seconds = std::fs::read_to_string(&summary)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|v| v["tables"][0]["seconds"].as_f64());
        let phases = dump_seconds.and_then(|d| phases(&log, d, spawned, measured.seconds));
        Ok(SyncRun {
            sample: Sample {
                seconds: measured.seconds,
                peak_rss_kib: measured.peak_rss_kib,
                rows,
                bytes: Some(bytes),
            },
            selects: after.1.saturating_sub(before.1),
            logins: after.0.saturating_sub(before.0),
            phases,
        })
    }

    /// `iptvportal-sim mutate` of `terminal` in `db`: the line it printed.
    fn mutate(
        &self,
        db: &Path,
        (insert, update, delete): (u64, u64, u64),
        seed: u64,
        at: &str,
        label: &str,
    ) -> Result<String> {
        let mut command = Command::new(&self.tools.sim);
        command
            .args(["mutate", "--db"])
            .arg(db)
            .args(["--table", "terminal", "--insert", &insert.to_string()])
            .args(["--update", &update.to_string(), "--delete", &delete.to_string()])
            .args(["--seed", &seed.to_string(), "--at", at])
            .env("RUST_LOG", "warn");
        let measured = run_measured(&mut command, &self.logs, &format!("{label}-mutate"))?;
        Ok(measured.stdout.trim().to_owned())
    }
}

/// One progress line on stderr.
fn report_run(variant: &str, rep: usize, reps: usize, run: &SyncRun) {
    eprintln!(
        "  9 sync / {variant} (run {rep}/{reps}): {} rows in {:.3} s, {} selects, peak {} KiB; {}",
        run.sample.rows,
        run.sample.seconds,
        run.selects,
        run.sample.peak_rss_kib.map_or_else(|| "?".to_owned(), |k| k.to_string()),
        run.phases.as_ref().map_or_else(|| "phases: ?".to_owned(), Phases::describe)
    );
}

/// Checks the last run of `out/terminal/sync.json` against `expected`; its rows and the bytes
/// of its row files.
fn check_record(out: &Path, expected: Expected) -> Result<(u64, u64)> {
    let path = out.join("terminal").join("sync.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let record: Value = serde_json::from_str(&text).context("sync.json")?;
    let run = record["runs"].as_array().and_then(|r| r.last()).context("sync.json: no run")?;
    let count = |key: &str| run[key].as_u64().unwrap_or(0);
    let found = (
        count("run"),
        run["kind"].as_str().unwrap_or("?"),
        run["state"].as_str().unwrap_or("?"),
        (count("new"), count("changed"), count("deleted"), count("unheld")),
    );
    let wanted = (
        expected.run,
        expected.kind,
        "complete",
        (expected.new, expected.changed, expected.deleted, 0),
    );
    ensure!(
        found == wanted,
        "{}: the last run is (run, kind, state, (new, changed, deleted, unheld)) {found:?}, \
         the mutations made it {wanted:?}",
        path.display()
    );
    let rows = count("rows");
    ensure!(rows == expected.new + expected.changed, "{}: rows {rows}", path.display());
    let bytes = run["files"]
        .as_array()
        .map_or(0, |files| files.iter().filter_map(|f| f["bytes"].as_u64()).sum());
    Ok((rows, bytes))
}

/// `(authorize_calls, select_calls)` of the simulator's `GET /stats`, over a plain HTTP/1.1
/// request (the bench has no HTTP client). Reading them is not counted.
fn sim_stats(url: &str) -> Result<(u64, u64)> {
    let host = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .with_context(|| format!("not an http URL: {url}"))?;
    let mut stream = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET /stats HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
        .context("GET /stats")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).context("GET /stats")?;
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        bail!("GET /stats: no body: {answer}");
    };
    ensure!(head.starts_with("HTTP/1.1 200"), "GET /stats: {}", head.lines().next().unwrap_or(""));
    let stats: Value = serde_json::from_str(body).with_context(|| format!("GET /stats: {body}"))?;
    let get = |key: &str| stats[key].as_u64().with_context(|| format!("no {key} in {stats}"));
    Ok((get("authorize_calls")?, get("select_calls")?))
}

/// Splits a run's wall time (`seconds` from `spawned`, Unix seconds) into [`Phases`], from its
/// `--debug` log and the dump's own seconds. A request is the dump's if it was sent before the
/// dump ended (the dump starts with its count, `counting rows`), the deletes' if after.
fn phases(log: &str, dump: f64, spawned: f64, seconds: f64) -> Option<Phases> {
    // (answered, sent, is the login), in Unix seconds.
    let mut requests: Vec<(f64, f64, bool)> = Vec::new();
    let mut counting = None;
    for line in log.lines() {
        let Some((stamp, rest)) = line.split_once(' ') else { continue };
        let Some(t) = parse_log_time(stamp) else { continue };
        if rest.contains("request ok") {
            let elapsed = rest.split_once("elapsed_ms=")?.1.split_whitespace().next()?;
            let elapsed: f64 = elapsed.parse::<f64>().ok()? / 1000.0;
            requests.push((t, t - elapsed, rest.contains("method=\"authorize_user\"")));
        } else if counting.is_none() && rest.contains("what=\"counting rows") {
            counting = Some(t);
        }
    }
    let login = requests.iter().find(|r| r.2)?.0;
    let counting = counting?;
    let dump_end = counting + dump;
    let selects: Vec<&(f64, f64, bool)> = requests.iter().filter(|r| !r.2).collect();
    let finish: Vec<&&(f64, f64, bool)> =
        selects.iter().filter(|r| r.0 >= counting && r.1 >= dump_end).collect();
    let end = spawned + seconds;
    let (merge, deletes, commit) = match (finish.first(), finish.last()) {
        (Some(first), Some(last)) => (first.1 - dump_end, last.0 - first.1, end - last.0),
        _ => (0.0, 0.0, end - dump_end),
    };
    Some(Phases {
        start: login - spawned,
        window: counting - login,
        window_requests: selects.iter().filter(|r| r.0 < counting).count(),
        dump,
        dump_requests: selects.iter().filter(|r| r.0 >= counting && r.1 < dump_end).count(),
        merge,
        deletes,
        delete_requests: finish.len(),
        commit,
    })
}

/// Seconds since 1970-01-01 UTC.
fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    )
    .unwrap_or(0)
}

/// A log line's timestamp, `2026-12-02T00:21:13.497740Z`, in Unix seconds.
fn parse_log_time(stamp: &str) -> Option<f64> {
    let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.splitn(3, ':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: f64 = t.next()?.parse().ok()?;
    let whole = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60;
    #[expect(clippy::cast_precision_loss, reason = "seconds since 1970 fit in 53 bits")]
    Some(whole as f64 + second)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of Unix seconds: `mutate --at`'s form.
fn format_timestamp(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_convert_both_ways() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(format_timestamp(1_709_210_096), "2024-02-29 12:34:56");
        assert_eq!(days_from_civil(2024, 2, 29), 1_709_210_096 / 86_400);
        for days in [-1, 0, 59, 10_957, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        let t = parse_log_time("2024-02-29T12:34:56.250000Z").expect("a log timestamp");
        assert!((t - 1_709_210_096.25).abs() < 1e-6, "{t}");
        assert_eq!(parse_log_time("INFO"), None);
    }

    #[test]
    fn phases_split_a_delta_log() {
        let base = "2026-12-02T00:00:";
        let ok = |t: &str, id: u32, ms: u32| {
            format!(
                "{base}{t}Z DEBUG iptvportal_client::client: request ok method=\"select\" \
                 table=\"terminal\" id={id} attempt=1 rows=1 elapsed_ms={ms}"
            )
        };
        let log = [
            format!(
                "{base}01.010000Z DEBUG iptvportal_client::client: request ok \
                 method=\"authorize_user\" table=\"-\" id=1 attempt=1 rows=1 elapsed_ms=0"
            ),
            ok("01.011000", 2, 0),
            ok("01.012000", 3, 0),
            format!(
                "{base}01.020000Z DEBUG iptvportal_traverse::spec: traversal request \
                 what=\"counting rows of terminal\""
            ),
            ok("01.021000", 4, 1),
            ok("01.120000", 5, 90),
            // The dump ends at 01.130; the deletes' count is sent at 01.160.
            ok("01.210000", 6, 50),
            ok("01.215000", 7, 4),
            "terminal: run 2 (delta ...)".to_owned(),
        ]
        .join("\n");
        let spawned = parse_log_time(&format!("{base}01.000000Z")).expect("a timestamp");
        let p = phases(&log, 0.110, spawned, 0.250).expect("phases");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(p.start, 0.010) && close(p.window, 0.010), "{p:?}");
        assert_eq!((p.window_requests, p.dump_requests, p.delete_requests), (2, 2, 2), "{p:?}");
        assert!(close(p.merge, 0.030) && close(p.deletes, 0.055), "{p:?}");
        assert!(close(p.commit, 0.035), "{p:?}");
        let sum = p.start + p.window + p.dump + p.merge + p.deletes + p.commit;
        assert!(close(sum, 0.250), "{sum}");
    }
}

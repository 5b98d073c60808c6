//! What `dump` tells the user while it runs: progress lines (plain or JSON, per table and, with
//! several tables, for the run as a whole). What it says when it ends is `summary`'s.
//!
//! Progress arrives through the orchestrator's callback, after every committed chunk and at every
//! change of state, from whichever worker thread committed it. Plain lines are throttled per table
//! (a big table commits hundreds of chunks; a line each would bury everything else); JSON lines are
//! not, since a program reading them wants every commit.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iptvportal_dump::{DumpProgress, ProgressCallback, RunState, Strategy};

use crate::args::ProgressMode;
use crate::bars::Overall;

/// How often a table's plain progress line is repeated while its state stays the same.
const PLAIN_INTERVAL: Duration = Duration::from_secs(1);

/// A table a run is to dump, with the strategy it is expected to take (before its dump says which
/// it took): the ETA of the run as a whole gives a waiting table the duration of the tables of its
/// strategy.
pub(crate) type Planned = (String, Strategy);

/// The numbers of one progress report, taken from a [`DumpProgress`] so that formatting can be
/// tested with plain values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    pub(crate) table: String,
    pub(crate) strategy: Strategy,
    pub(crate) state: &'static str,
    pub(crate) dumped_rows: u64,
    pub(crate) total_rows: Option<u64>,
    pub(crate) percent: Option<f64>,
    pub(crate) rows_per_second: f64,
    pub(crate) eta_seconds: Option<f64>,
    pub(crate) chunks: u64,
    pub(crate) elapsed_seconds: f64,
}

impl Snapshot {
    pub(crate) fn of(p: &DumpProgress) -> Snapshot {
        Snapshot {
            table: p.table.clone(),
            strategy: p.strategy(),
            state: p.state.as_str(),
            dumped_rows: p.dumped_rows,
            total_rows: p.total_rows,
            percent: p.percent_complete(),
            rows_per_second: p.rows_per_second(),
            eta_seconds: p.eta_seconds(),
            chunks: p.chunks_completed,
            elapsed_seconds: p.elapsed_seconds(),
        }
    }

    /// `terminal: 45000/500000 rows (9.0%), 12000 rows/s, eta 38s`, or a line naming the new state.
    pub(crate) fn plain_line(&self) -> String {
        let t = &self.table;
        let rows = match (self.total_rows, self.percent) {
            (Some(total), Some(pct)) => format!("{}/{total} rows ({pct:.1}%)", self.dumped_rows),
            _ => format!("{} rows", self.dumped_rows),
        };
        match self.state {
            "starting" => format!("{t}: starting"),
            "running" => {
                let eta = self.eta_seconds.map_or_else(|| "?".to_owned(), duration);
                format!("{t}: {rows}, {:.0} rows/s, eta {eta}", self.rows_per_second)
            }
            "done" => format!("{t}: done, {rows} in {}", duration(self.elapsed_seconds)),
            // A dump refused before it counted anything has no numbers worth showing.
            state if self.total_rows.is_none() => format!("{t}: {state}"),
            state => format!("{t}: {state} at {rows}"),
        }
    }

    /// The JSON line: the keys documented in docs/dump.md in that order, `null` where a value is
    /// not known yet.
    pub(crate) fn json_line(&self) -> String {
        let line = JsonLine {
            table: &self.table,
            state: self.state,
            dumped_rows: self.dumped_rows,
            total_rows: self.total_rows,
            percent: self.percent.map(|p| round(p, 2)),
            rows_per_second: round(self.rows_per_second, 1),
            eta_seconds: self.eta_seconds.map(|s| round(s, 1)),
            chunk: self.chunks,
        };
        serde_json::to_string(&line).expect("plain fields always serialize")
    }
}

/// One `--progress json` line; a struct, so that the keys keep the documented order.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    table: &'a str,
    state: &'a str,
    dumped_rows: u64,
    total_rows: Option<u64>,
    percent: Option<f64>,
    rows_per_second: f64,
    eta_seconds: Option<f64>,
    chunk: u64,
}

/// Every table of a run with its last progress, `None` until its first.
type LastLines = Mutex<Vec<(Planned, Option<Snapshot>)>>;

/// The `overall` event of `--progress json`: the run as a whole, after each table's line when
/// there are several (docs/dump.md).
fn overall_line(o: &Overall) -> String {
    let state = o.state();
    let line = OverallLine {
        event: "overall",
        state,
        dumped_rows: o.rows,
        total_rows: o.total,
        percent: (o.total > 0).then(|| round(o.rows as f64 * 100.0 / o.total as f64, 2)),
        rows_per_second: round(o.rate, 1),
        eta_seconds: if state == "done" { Some(0.0) } else { o.eta().map(|s| round(s, 1)) },
        tables: o.tables,
        waiting: o.waiting,
        running: o.running,
        paused: o.paused,
        done: o.done,
        failed: o.failed,
        cancelled: o.cancelled,
    };
    serde_json::to_string(&line).expect("plain fields always serialize")
}

/// One `overall` event; a struct, so that the keys keep the documented order.
#[derive(serde::Serialize)]
struct OverallLine {
    event: &'static str,
    state: &'static str,
    dumped_rows: u64,
    total_rows: u64,
    percent: Option<f64>,
    rows_per_second: f64,
    eta_seconds: Option<f64>,
    tables: usize,
    waiting: usize,
    running: usize,
    paused: usize,
    done: usize,
    failed: usize,
    cancelled: usize,
}

/// `x` rounded to `digits` decimals, for numbers that a JSON reader shows as they are.
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// `38s`, `2m05s`, `1h02m`: short enough for a progress line, precise enough to plan by.
pub(crate) fn duration(seconds: f64) -> String {
    if seconds < 10.0 {
        return format!("{seconds:.1}s");
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive, finite number of seconds, rounded for display"
    )]
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Builds the progress callback for `mode`, or none when nothing is to be shown.
pub(crate) fn callback(mode: ProgressMode, tables: &[Planned]) -> Option<ProgressCallback> {
    match mode {
        ProgressMode::None => None,
        ProgressMode::Json => {
            // With more than one table, each table's line is followed by the run's (the
            // `overall` event), from the last line of every table.
            let seen: Option<LastLines> = (tables.len() > 1)
                .then(|| Mutex::new(tables.iter().map(|t| (t.clone(), None)).collect()));
            Some(Arc::new(move |p: &DumpProgress| {
                let snapshot = Snapshot::of(p);
                let mut text = snapshot.json_line();
                // Held until both lines are written, so that the run's lines stay in order.
                let mut seen = seen.as_ref().map(|s| s.lock().expect("not poisoned"));
                if let Some(seen) = seen.as_mut() {
                    if let Some(slot) = seen.iter_mut().find(|((t, _), _)| *t == snapshot.table) {
                        slot.1 = Some(snapshot);
                    }
                    text.push('\n');
                    text.push_str(&overall_line(&Overall::of(
                        seen.iter().map(|((_, strategy), s)| (*strategy, s.as_ref())),
                    )));
                }
                // A closed stdout (the reader went away) must not stop the dump; the files are
                // the product, progress is a courtesy.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}").and_then(|()| out.flush());
            }))
        }
        // Bars are drawn by `bars::Bars`; a caller that asks here for them gets plain lines.
        ProgressMode::Auto | ProgressMode::Plain | ProgressMode::Bar => {
            let last: Mutex<HashMap<String, (Instant, RunState)>> = Mutex::new(HashMap::new());
            Some(Arc::new(move |p: &DumpProgress| {
                let now = Instant::now();
                let mut last = last.lock().expect("not poisoned");
                let due = match last.get(&p.table) {
                    Some((at, state)) => {
                        *state != p.state || now.duration_since(*at) >= PLAIN_INTERVAL
                    }
                    None => true,
                };
                // A table refused before it counted anything has only its error to show, and
                // that follows as an `error:` line.
                if p.state == RunState::Failed && p.total_rows.is_none() {
                    return;
                }
                if due {
                    last.insert(p.table.clone(), (now, p.state));
                    eprintln!("{}", Snapshot::of(p).plain_line());
                }
            }))
        }
    }
}

/// `812 B`, `4.1 KiB`, `12.7 MiB`, `1.3 GiB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn snapshot(state: &'static str) -> Snapshot {
        Snapshot {
            table: "terminal".to_owned(),
            strategy: Strategy::IdRange,
            state,
            dumped_rows: 45_000,
            total_rows: Some(500_000),
            percent: Some(9.0),
            rows_per_second: 12_000.4,
            eta_seconds: Some(37.9),
            chunks: 9,
            elapsed_seconds: 3.75,
        }
    }

    #[test]
    fn plain_lines() {
        assert_eq!(
            snapshot("running").plain_line(),
            "terminal: 45000/500000 rows (9.0%), 12000 rows/s, eta 38s"
        );
        assert_eq!(snapshot("starting").plain_line(), "terminal: starting");
        assert_eq!(
            snapshot("done").plain_line(),
            "terminal: done, 45000/500000 rows (9.0%) in 3.8s"
        );
        assert_eq!(
            snapshot("cancelled").plain_line(),
            "terminal: cancelled at 45000/500000 rows (9.0%)"
        );
        let unknown =
            Snapshot { total_rows: None, percent: None, eta_seconds: None, ..snapshot("running") };
        assert_eq!(unknown.plain_line(), "terminal: 45000 rows, 12000 rows/s, eta ?");
    }

    #[test]
    fn json_lines_carry_the_documented_keys() {
        let text = snapshot("running").json_line();
        let keys = [
            "table",
            "state",
            "dumped_rows",
            "total_rows",
            "percent",
            "rows_per_second",
            "eta_seconds",
            "chunk",
        ];
        // Every key, in the documented order.
        let at: Vec<usize> =
            keys.iter().map(|k| text.find(&format!("\"{k}\":")).expect(k)).collect();
        assert!(at.is_sorted(), "{text}");
        let line: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line.as_object().unwrap().len(), keys.len(), "{text}");
        assert_eq!(line["rows_per_second"], json!(12000.4));
        assert_eq!(line["eta_seconds"], json!(37.9));
    }

    #[test]
    fn the_overall_event_carries_the_documented_keys() {
        let a = Snapshot { table: "media".to_owned(), ..snapshot("done") };
        let o =
            Overall::of(crate::bars::tests::by_id([Some(&snapshot("running")), Some(&a), None]));
        let text = overall_line(&o);
        let keys = [
            "event",
            "state",
            "dumped_rows",
            "total_rows",
            "percent",
            "rows_per_second",
            "eta_seconds",
            "tables",
            "waiting",
            "running",
            "paused",
            "done",
            "failed",
            "cancelled",
        ];
        let at: Vec<usize> =
            keys.iter().map(|k| text.find(&format!("\"{k}\":")).expect(k)).collect();
        assert!(at.is_sorted(), "{text}");
        let line: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line.as_object().unwrap().len(), keys.len(), "{text}");
        assert_eq!(line["event"], json!("overall"));
        assert_eq!(line["dumped_rows"], json!(90_000));
        assert_eq!(line["waiting"], json!(1));
        // The waiting table is expected to take as long as the two seen (3.75 s in, 37.9 s left;
        // done in 3.75 s) did on average, after the running one.
        assert_eq!(line["eta_seconds"], json!(round(37.9 + f64::midpoint(41.65, 3.75), 1)));
    }

    #[test]
    fn durations_and_sizes_are_short() {
        assert_eq!(duration(0.25), "0.2s");
        assert_eq!(duration(38.4), "38s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(3725.0), "1h02m");
        assert_eq!(size(812), "812 B");
        assert_eq!(size(4198), "4.1 KiB");
        assert_eq!(size(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}

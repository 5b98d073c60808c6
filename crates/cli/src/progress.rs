//! What `dump` tells the user while it runs and when it ends: progress lines and the summary.
//!
//! Progress arrives through the orchestrator's callback, after every committed chunk and at every
//! change of state, from whichever worker thread committed it. Plain lines are throttled per table
//! (a big table commits hundreds of chunks; a line each would bury everything else); JSON lines are
//! not, since a program reading them wants every commit.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iptvportal_dump::{DumpProgress, DumpStats, Outcome, ProgressCallback, RunState};

use crate::args::ProgressMode;

/// How often a table's plain progress line is repeated while its state stays the same.
const PLAIN_INTERVAL: Duration = Duration::from_secs(1);

/// The numbers of one progress report, taken from a [`DumpProgress`] so that formatting can be
/// tested with plain values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    pub(crate) table: String,
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

fn round(x: f64, digits: i32) -> f64 {
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
pub(crate) fn callback(mode: ProgressMode) -> Option<ProgressCallback> {
    match mode {
        ProgressMode::None => None,
        ProgressMode::Json => Some(Arc::new(|p: &DumpProgress| {
            let line = Snapshot::of(p).json_line();
            // A closed stdout (the reader went away) must not stop the dump; the files are the
            // product, progress is a courtesy.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        })),
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

/// Rows above which an OFFSET dump is worth switching to id-range: past this, the server's cost of
/// skipping to each page dominates (docs/dump.md, "Strategies").
const LARGE_OFFSET_TABLE: u64 = 100_000;

/// One row of the end-of-run summary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SummaryRow {
    pub(crate) table: String,
    pub(crate) rows: u64,
    pub(crate) files: usize,
    pub(crate) bytes: u64,
    /// Seconds and rows/s of this run; `None` when it did nothing.
    pub(crate) timing: Option<(f64, f64)>,
    /// The strategy the output was walked with (`auto` resolved): `offset` or `id-range`.
    pub(crate) strategy: &'static str,
    /// The output files, by name: `terminal.jsonl`, `terminal-00000..00002.parquet`.
    pub(crate) output: String,
    pub(crate) note: String,
    /// Advice printed below the table (an OFFSET dump of a large table).
    pub(crate) hint: Option<String>,
}

impl SummaryRow {
    pub(crate) fn of(stats: &DumpStats) -> SummaryRow {
        let already = stats.outcome == Outcome::AlreadyComplete;
        let mut notes = Vec::new();
        if already {
            notes.push("already complete".to_owned());
        }
        match stats.warnings.len() {
            0 => {}
            1 => notes.push("1 warning".to_owned()),
            n => notes.push(format!("{n} warnings")),
        }
        let table = &stats.config.table;
        let rows = stats.progress.dumped_rows;
        // Only where id-range can work: a table the catalog knows without an id column cannot.
        // Only for an offset asked for by name: `auto` chose offset only where id-range cannot
        // walk the table (no id, another order, a resume offset) or a checkpoint was offset's.
        let has_id = iptvportal_catalog::table(table).is_none_or(|t| t.id_column.is_some());
        let hint = (stats.config.strategy == iptvportal_dump::DumpStrategy::Offset
            && rows > LARGE_OFFSET_TABLE
            && has_id)
            .then(|| {
                format!(
                    "hint: {table} ({rows} rows) was dumped with --strategy offset, whose cost per chunk grows with the offset; --strategy id-range keeps it constant (with --reset, or into another --out)"
                )
            });
        let names: Vec<String> = stats
            .files
            .iter()
            .filter_map(|f| f.path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        SummaryRow {
            table: table.clone(),
            rows,
            files: stats.files.len(),
            bytes: stats.bytes(),
            timing: (!already)
                .then(|| (stats.progress.elapsed_seconds(), stats.progress.rows_per_second())),
            strategy: stats.strategy.as_str(),
            output: file_names(&names),
            note: notes.join(", "),
            hint,
        }
    }
}

/// One file's name, or the first and last of a numbered series: `terminal-00000..00002.parquet`.
fn file_names(names: &[String]) -> String {
    match names {
        [] => "-".to_owned(),
        [one] => one.clone(),
        [first, .., last] => {
            // Parquet parts differ in their number only: `{table}-{n}.parquet`.
            let split = |s: &'_ str| -> Option<(String, String, String)> {
                let (base, rest) = s.rsplit_once('-')?;
                let (n, ext) = rest.split_once('.')?;
                Some((base.to_owned(), n.to_owned(), ext.to_owned()))
            };
            match (split(first), split(last)) {
                (Some((base, a, ext)), Some((base2, b, ext2))) if base == base2 && ext == ext2 => {
                    format!("{base}-{a}..{b}.{ext}")
                }
                _ => format!("{first} .. {last}"),
            }
        }
    }
}

/// The summary as aligned text: a header, then one line per table.
pub(crate) fn summary(rows: &[SummaryRow]) -> String {
    let mut cells = vec![
        ["table", "rows", "files", "size", "time", "rows/s", "strategy", "output", ""]
            .map(String::from),
    ];
    for r in rows {
        let (time, rate) = r.timing.map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |(s, rps)| (duration(s), format!("{rps:.0}")),
        );
        cells.push([
            r.table.clone(),
            r.rows.to_string(),
            r.files.to_string(),
            size(r.bytes),
            time,
            rate,
            r.strategy.to_owned(),
            r.output.clone(),
            r.note.clone(),
        ]);
    }
    // The table name and the output and note read left to right; numbers line up on the right.
    let mut text = crate::output::aligned_table(&cells, |i| i != 0 && i < 6);
    for hint in rows.iter().filter_map(|r| r.hint.as_deref()) {
        text.push_str(hint);
        text.push('\n');
    }
    text
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
    fn durations_and_sizes_are_short() {
        assert_eq!(duration(0.25), "0.2s");
        assert_eq!(duration(38.4), "38s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(3725.0), "1h02m");
        assert_eq!(size(812), "812 B");
        assert_eq!(size(4198), "4.1 KiB");
        assert_eq!(size(3 * 1024 * 1024 / 2), "1.5 MiB");
    }

    #[test]
    fn the_summary_is_aligned() {
        let rows = [
            SummaryRow {
                table: "terminal".to_owned(),
                rows: 3000,
                files: 1,
                bytes: 412_345,
                timing: Some((0.61, 4918.0)),
                strategy: "id-range",
                output: "terminal.jsonl".to_owned(),
                note: String::new(),
                hint: None,
            },
            SummaryRow {
                table: "package".to_owned(),
                rows: 40,
                files: 1,
                bytes: 5120,
                timing: None,
                strategy: "offset",
                output: "package-00000..00002.parquet".to_owned(),
                note: "already complete".to_owned(),
                hint: Some("hint: use id-range".to_owned()),
            },
        ];
        expect_test::expect![[r"
            table     rows  files       size  time  rows/s  strategy  output
            terminal  3000      1  402.7 KiB  0.6s    4918  id-range  terminal.jsonl
            package     40      1    5.0 KiB     -       -  offset    package-00000..00002.parquet  already complete
            hint: use id-range
        "]].assert_eq(&summary(&rows));
    }

    #[test]
    fn numbered_files_are_shown_as_a_range() {
        let names = ["terminal-00000.parquet", "terminal-00001.parquet", "terminal-00002.parquet"]
            .map(String::from);
        assert_eq!(file_names(&names), "terminal-00000..00002.parquet");
        assert_eq!(file_names(&names[..1]), "terminal-00000.parquet");
        assert_eq!(file_names(&[]), "-");
    }
}

//! Live progress bars: one per table and an overall line, redrawn in place on stderr.
//!
//! Every number comes from the orchestrator's [`DumpProgress`] (rates and ETA of this run only),
//! not from indicatif's own estimates, which would count a resumed table's earlier rows as done
//! in this run.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use iptvportal_dump::{DumpProgress, ProgressCallback};

use crate::progress::{Snapshot, duration};

/// Redraws per second at most: smooth enough to read, cheap enough for hundreds of chunks a second.
const REFRESH_HZ: u8 = 10;

/// The bars of one `dump` run. Clones share the bars.
#[derive(Clone)]
pub(crate) struct Bars {
    inner: Arc<Inner>,
}

struct Inner {
    multi: MultiProgress,
    overall: ProgressBar,
    tables: Mutex<Vec<TableBar>>,
}

struct TableBar {
    name: String,
    bar: ProgressBar,
    last: Option<Snapshot>,
}

impl Bars {
    /// Bars for `tables`, in that order, each `waiting` until its dump starts. `forced` draws them
    /// even when stderr is not a terminal (`--progress bar`), which indicatif would otherwise hide.
    pub(crate) fn new(tables: &[String], forced: bool) -> Bars {
        let target = if forced && !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            ProgressDrawTarget::term_like_with_hz(Box::new(ForcedStderr), REFRESH_HZ)
        } else {
            ProgressDrawTarget::stderr_with_hz(REFRESH_HZ)
        };
        let multi = MultiProgress::with_draw_target(target);
        let width = tables.iter().map(|t| t.chars().count()).max().unwrap_or(0).max("all".len());
        let style =
            ProgressStyle::with_template(&format!("{{prefix:{width}}} [{{bar:24}}] {{msg}}"))
                .expect("a valid template")
                .progress_chars("=> ");
        let tables: Vec<TableBar> = tables
            .iter()
            .map(|name| {
                // Length 1 until the count is known: a length of 0 would draw as a full bar.
                let bar = multi.add(ProgressBar::new(1).with_style(style.clone()));
                bar.set_prefix(name.clone());
                bar.set_message("waiting");
                TableBar { name: name.clone(), bar, last: None }
            })
            .collect();
        let overall = multi.add(ProgressBar::new(0).with_style(style));
        overall.set_prefix("all");
        let bars = Bars { inner: Arc::new(Inner { multi, overall, tables: Mutex::new(tables) }) };
        bars.redraw_overall(&bars.inner.tables.lock().expect("not poisoned"));
        bars
    }

    /// The progress callback that moves the bars.
    pub(crate) fn callback(&self) -> ProgressCallback {
        let bars = self.clone();
        Arc::new(move |p: &DumpProgress| bars.update(&Snapshot::of(p)))
    }

    fn update(&self, s: &Snapshot) {
        let mut tables = self.inner.tables.lock().expect("not poisoned");
        let Some(entry) = tables.iter_mut().find(|t| t.name == s.table) else { return };
        if let Some(total) = s.total_rows {
            entry.bar.set_length(total.max(s.dumped_rows));
        }
        entry.bar.set_position(s.dumped_rows);
        entry.bar.set_message(table_message(s));
        entry.last = Some(s.clone());
        self.redraw_overall(&tables);
    }

    fn redraw_overall(&self, tables: &[TableBar]) {
        let overall = Overall::of(tables.iter().map(|t| t.last.as_ref()));
        self.inner.overall.set_length(overall.total.max(overall.rows).max(1));
        self.inner.overall.set_position(overall.rows);
        self.inner.overall.set_message(overall.message());
    }

    /// Leaves every bar drawn in its final state, so that what follows (the summary, the
    /// interruption's message) prints below them instead of being overdrawn.
    pub(crate) fn finish(&self) {
        let tables = self.inner.tables.lock().expect("not poisoned");
        for t in tables.iter() {
            if t.last.is_none() {
                t.bar.set_message("not started");
            }
            t.bar.finish();
        }
        self.redraw_overall(&tables);
        self.inner.overall.finish();
        // indicatif leaves the cursor at the end of the last bar (a terminal wraps there); a
        // newline makes sure what follows starts on a line of its own, also in a file.
        eprintln!();
    }

    /// Erases the bars: before exiting at once on a second signal.
    pub(crate) fn clear(&self) {
        let _ = self.inner.multi.clear();
        eprintln!();
    }
}

/// `45000/500000 rows  9.0%  12000 rows/s  eta 38s  running`.
fn table_message(s: &Snapshot) -> String {
    let rows = match (s.total_rows, s.percent) {
        (Some(total), Some(pct)) => format!("{}/{total} rows {pct:5.1}%", s.dumped_rows),
        _ => format!("{} rows", s.dumped_rows),
    };
    match s.state {
        "starting" => "starting".to_owned(),
        "running" => {
            let eta = s.eta_seconds.map_or_else(|| "?".to_owned(), duration);
            format!("{rows}  {:.0} rows/s  eta {eta}  running", s.rows_per_second)
        }
        "done" => format!("{rows}  in {}  done", duration(s.elapsed_seconds)),
        state => format!("{rows}  {state}"),
    }
}

/// The sums over every table, for the overall line.
#[derive(Debug, Default, PartialEq)]
struct Overall {
    rows: u64,
    /// Rows counted so far; tables that have not started yet are not counted.
    total: u64,
    rate: f64,
    tables: usize,
    waiting: usize,
    running: usize,
    paused: usize,
    done: usize,
    failed: usize,
    cancelled: usize,
}

impl Overall {
    fn of<'a>(snapshots: impl Iterator<Item = Option<&'a Snapshot>>) -> Overall {
        let mut o = Overall::default();
        for s in snapshots {
            o.tables += 1;
            let Some(s) = s else {
                o.waiting += 1;
                continue;
            };
            o.rows += s.dumped_rows;
            o.total += s.total_rows.unwrap_or(s.dumped_rows);
            match s.state {
                "done" => o.done += 1,
                "failed" => o.failed += 1,
                "cancelled" => o.cancelled += 1,
                "paused" => o.paused += 1,
                _ => {
                    o.running += 1;
                    o.rate += s.rows_per_second;
                }
            }
        }
        o
    }

    /// The state of the run as a whole.
    fn state(&self) -> &'static str {
        if self.running + self.waiting + self.paused > 0 {
            if self.running == 0 && self.paused > 0 { "paused" } else { "running" }
        } else if self.failed > 0 {
            "failed"
        } else if self.cancelled > 0 {
            "cancelled"
        } else {
            "done"
        }
    }

    /// `45000/120000 rows 37.5%  15000 rows/s  eta 5s  running (2 running, 1 done, 3 waiting)`.
    fn message(&self) -> String {
        let pct = if self.total > 0 { self.rows as f64 * 100.0 / self.total as f64 } else { 0.0 };
        let mut text = format!("{}/{} rows {pct:5.1}%", self.rows, self.total);
        if self.running > 0 {
            let left = self.total.saturating_sub(self.rows) as f64;
            let eta = if self.rate > 0.0 { duration(left / self.rate) } else { "?".to_owned() };
            let _ = write!(text, "  {:.0} rows/s  eta {eta}", self.rate);
        }
        let counts: Vec<String> = [
            (self.running, "running"),
            (self.paused, "paused"),
            (self.done, "done"),
            (self.failed, "failed"),
            (self.cancelled, "cancelled"),
            (self.waiting, "waiting"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        format!("{text}  {} ({} of {} tables)", self.state(), counts.join(", "), self.tables)
    }
}

/// stderr as a terminal of 100 columns whatever it is: `--progress bar` into a file or a pipe
/// still draws (with cursor movements), which is what forcing means.
#[derive(Debug)]
struct ForcedStderr;

impl TermLike for ForcedStderr {
    fn width(&self) -> u16 {
        100
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { write!(std::io::stderr(), "\x1b[{n}A") } else { Ok(()) }
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { write!(std::io::stderr(), "\x1b[{n}B") } else { Ok(()) }
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { write!(std::io::stderr(), "\x1b[{n}C") } else { Ok(()) }
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { write!(std::io::stderr(), "\x1b[{n}D") } else { Ok(()) }
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        writeln!(std::io::stderr(), "{s}")
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        write!(std::io::stderr(), "{s}")
    }

    fn clear_line(&self) -> std::io::Result<()> {
        write!(std::io::stderr(), "\r\x1b[2K")
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(table: &str, state: &'static str, rows: u64, total: u64, rate: f64) -> Snapshot {
        Snapshot {
            table: table.to_owned(),
            state,
            dumped_rows: rows,
            total_rows: Some(total),
            percent: Some(rows as f64 * 100.0 / total as f64),
            rows_per_second: rate,
            eta_seconds: Some((total - rows) as f64 / rate),
            chunks: 3,
            elapsed_seconds: 2.0,
        }
    }

    #[test]
    fn table_lines() {
        let s = snap("terminal", "running", 45_000, 500_000, 12_000.0);
        expect_test::expect!["45000/500000 rows   9.0%  12000 rows/s  eta 38s  running"]
            .assert_eq(&table_message(&s));
        let s = snap("terminal", "done", 500_000, 500_000, 12_000.0);
        expect_test::expect!["500000/500000 rows 100.0%  in 2.0s  done"]
            .assert_eq(&table_message(&s));
        let s = snap("terminal", "cancelled", 100, 500, 12.0);
        expect_test::expect!["100/500 rows  20.0%  cancelled"].assert_eq(&table_message(&s));
    }

    #[test]
    fn the_overall_line_sums_the_tables() {
        let a = snap("terminal", "running", 40_000, 100_000, 10_000.0);
        let b = snap("package", "done", 40, 40, 400.0);
        let o = Overall::of([Some(&a), Some(&b), None].into_iter());
        expect_test::expect!["40040/100040 rows  40.0%  10000 rows/s  eta 6.0s  running (1 running, 1 done, 1 waiting of 3 tables)"]
            .assert_eq(&o.message());
        let c = snap("media", "failed", 10, 600, 1.0);
        let o = Overall::of([Some(&b), Some(&c)].into_iter());
        assert_eq!(o.state(), "failed");
    }
}

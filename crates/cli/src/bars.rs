//! Live progress bars: one per table and an overall line, redrawn in place on stderr.
//!
//! Every number comes from the orchestrator's [`DumpProgress`] (rates and ETA of this run only),
//! not from indicatif's own estimates, which would count a resumed table's earlier rows as done
//! in this run.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use iptvportal_dump::{DumpProgress, ProgressCallback, Strategy};

use crate::progress::{Planned, Snapshot, duration};

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
    /// The strategy the table is expected to take, until its dump says which it took.
    strategy: Strategy,
    bar: ProgressBar,
    last: Option<Snapshot>,
}

impl Bars {
    /// Bars for `tables`, in that order, each `waiting` until its dump starts. `forced` draws them
    /// even when stderr is not a terminal (`--progress bar`), which indicatif would otherwise hide.
    pub(crate) fn new(tables: &[Planned], forced: bool) -> Bars {
        let target = if forced && !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            ProgressDrawTarget::term_like_with_hz(Box::new(ForcedStderr), REFRESH_HZ)
        } else {
            ProgressDrawTarget::stderr_with_hz(REFRESH_HZ)
        };
        Bars::with_target(tables, target)
    }

    /// Bars for `tables` drawn on `target`.
    fn with_target(tables: &[Planned], target: ProgressDrawTarget) -> Bars {
        let multi = MultiProgress::with_draw_target(target);
        let width =
            tables.iter().map(|(t, _)| t.chars().count()).max().unwrap_or(0).max("all".len());
        let style =
            ProgressStyle::with_template(&format!("{{prefix:{width}}} [{{bar:24}}] {{msg}}"))
                .expect("a valid template")
                .progress_chars("=> ");
        let tables: Vec<TableBar> = tables
            .iter()
            .map(|(name, strategy)| {
                // Length 1 until the count is known: a length of 0 would draw as a full bar.
                let bar = multi.add(ProgressBar::new(1).with_style(style.clone()));
                bar.set_prefix(name.clone());
                bar.set_message("waiting");
                TableBar { name: name.clone(), strategy: *strategy, bar, last: None }
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
        let overall = Overall::of(tables.iter().map(|t| (t.strategy, t.last.as_ref())));
        self.inner.overall.set_length(overall.total.max(overall.rows).max(1));
        self.inner.overall.set_position(overall.rows);
        self.inner.overall.set_message(overall.message());
    }

    /// Leaves every bar drawn in its final state, so that what follows (the summary, the
    /// interruption's message) prints below them instead of being overdrawn. `ended` is how each
    /// table ended (`done`, `failed`, `cancelled`) with its rows: a table that never reported
    /// (never started, refused before its dump began) is drawn so instead of `waiting`. Only a
    /// done table's bar is drawn full; a failed or cancelled one stays where it stopped.
    pub(crate) fn finish(&self, ended: &[(&str, &'static str, u64)]) {
        let mut tables = self.inner.tables.lock().expect("not poisoned");
        for t in tables.iter_mut() {
            let end = ended.iter().find(|(table, ..)| *table == t.name);
            if t.last.is_none() {
                let (state, rows) = end.map_or(("cancelled", 0), |&(_, state, rows)| (state, rows));
                let s = Snapshot {
                    table: t.name.clone(),
                    strategy: t.strategy,
                    state,
                    dumped_rows: rows,
                    total_rows: None,
                    percent: None,
                    rows_per_second: 0.0,
                    eta_seconds: None,
                    chunks: 0,
                    elapsed_seconds: 0.0,
                };
                // Its total is unknown: the bar stays empty, the message says the rows.
                t.bar.set_message(table_message(&s));
                t.last = Some(s);
            }
            finish_bar(&t.bar, t.last.as_ref().is_some_and(|s| s.state == "done"));
        }
        self.redraw_overall(&tables);
        let overall = Overall::of(tables.iter().map(|t| (t.strategy, t.last.as_ref())));
        finish_bar(&self.inner.overall, overall.state() == "done");
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

/// Leaves `bar` drawn: full when `done`, else where it stopped (indicatif's `finish` would fill it).
fn finish_bar(bar: &ProgressBar, done: bool) {
    if done {
        bar.finish();
    } else {
        bar.abandon();
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

/// The sums over every table, for the overall line and the `overall` event of `--progress json`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Overall {
    pub(crate) rows: u64,
    /// Rows counted so far; tables that have not started yet are not counted.
    pub(crate) total: u64,
    pub(crate) rate: f64,
    /// Of each table holding a slot (running or paused): its ETA when it has one, the seconds it
    /// has run, and its strategy.
    holding: Vec<(Option<f64>, f64, Strategy)>,
    /// Seconds each table that worked in this run takes in all, by its strategy: its time when
    /// done, its time so far plus its ETA while running.
    durations: Vec<(Strategy, f64)>,
    /// The strategy each waiting table is expected to take.
    queued: Vec<Strategy>,
    pub(crate) tables: usize,
    pub(crate) waiting: usize,
    pub(crate) running: usize,
    pub(crate) paused: usize,
    pub(crate) done: usize,
    pub(crate) failed: usize,
    pub(crate) cancelled: usize,
}

impl Overall {
    /// The run as a whole from each table's last snapshot (`None` for a table waiting for a
    /// slot, with the strategy it is expected to take).
    pub(crate) fn of<'a>(
        snapshots: impl Iterator<Item = (Strategy, Option<&'a Snapshot>)>,
    ) -> Overall {
        let mut o = Overall::default();
        for (expected, s) in snapshots {
            o.tables += 1;
            let Some(s) = s else {
                o.waiting += 1;
                o.queued.push(expected);
                continue;
            };
            o.rows += s.dumped_rows;
            o.total += s.total_rows.unwrap_or(s.dumped_rows);
            match s.state {
                "done" => {
                    o.done += 1;
                    // An already complete table did no work: it says nothing of how long one takes.
                    if s.rows_per_second > 0.0 {
                        o.durations.push((s.strategy, s.elapsed_seconds));
                    }
                }
                "failed" => o.failed += 1,
                "cancelled" => o.cancelled += 1,
                state => {
                    if state == "paused" {
                        o.paused += 1;
                    } else {
                        o.running += 1;
                        o.rate += s.rows_per_second;
                    }
                    o.holding.push((s.eta_seconds, s.elapsed_seconds, s.strategy));
                    if let Some(eta) = s.eta_seconds {
                        o.durations.push((s.strategy, s.elapsed_seconds + eta));
                    }
                }
            }
        }
        o
    }

    /// Seconds until every table is done, as a schedule: each table holding a slot ends at its
    /// own ETA, and each waiting table takes the slot that frees first for the mean duration of
    /// the tables of its strategy seen so far, or of all of them when none has that strategy
    /// (sizes are unknown until tables are counted; an OFFSET table's cost grows with its depth,
    /// so the tables walked by id are a poor guide to it). The slots are the tables holding one
    /// while others wait: `--jobs`, once the queue is full. `None` while nothing can be
    /// estimated.
    ///
    /// **Invariant:** never shorter than the slowest running table's ETA, nor than the work left
    /// (every slot's ETA and every waiting table's mean duration) spread over the slots. (A sum
    /// of rows left over a sum of rates is not: an OFFSET table's rows get slower as it goes.)
    pub(crate) fn eta(&self) -> Option<f64> {
        let mean = |strategy: Strategy| {
            let of = |same: bool| {
                let d: Vec<f64> = self
                    .durations
                    .iter()
                    .filter(|(s, _)| !same || *s == strategy)
                    .map(|&(_, d)| d)
                    .collect();
                (!d.is_empty()).then(|| d.iter().sum::<f64>() / d.len() as f64)
            };
            of(true).or_else(|| of(false))
        };
        // A table without an ETA yet (counting, or before its first chunk) takes the mean too.
        let mut slots: Vec<f64> = self
            .holding
            .iter()
            .map(|&(eta, elapsed, strategy)| {
                eta.or_else(|| mean(strategy).map(|m| (m - elapsed).max(0.0)))
            })
            .collect::<Option<_>>()?;
        let slowest = slots.iter().copied().fold(0.0, f64::max);
        if self.queued.is_empty() {
            return (!slots.is_empty()).then_some(slowest);
        }
        let queued: Vec<f64> = self.queued.iter().map(|&s| mean(s)).collect::<Option<_>>()?;
        if slots.is_empty() {
            slots.push(0.0);
        }
        let spread = (slots.iter().sum::<f64>() + queued.iter().sum::<f64>()) / slots.len() as f64;
        // Filling the first free slot keeps the schedule at least both bounds; they are taken
        // explicitly all the same, so that the invariant does not rest on the loop.
        for duration in queued {
            let first_free = slots.iter_mut().min_by(|a, b| a.total_cmp(b)).expect("a slot");
            *first_free += duration;
        }
        let schedule = slots.iter().copied().fold(0.0, f64::max);
        Some(schedule.max(slowest).max(spread))
    }

    /// The state of the run as a whole.
    pub(crate) fn state(&self) -> &'static str {
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
            let eta = self.eta().map_or_else(|| "?".to_owned(), duration);
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
pub(crate) mod tests {
    use super::*;

    fn snap(table: &str, state: &'static str, rows: u64, total: u64, rate: f64) -> Snapshot {
        Snapshot {
            table: table.to_owned(),
            strategy: Strategy::IdRange,
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

    /// Snapshots of tables walked by id, for [`Overall::of`]; `None` is a table waiting.
    pub(crate) fn by_id<const N: usize>(
        snapshots: [Option<&Snapshot>; N],
    ) -> impl Iterator<Item = (Strategy, Option<&Snapshot>)> {
        snapshots.into_iter().map(|s| (Strategy::IdRange, s))
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
        let o = Overall::of(by_id([Some(&a), Some(&b), None]));
        // The waiting table takes the mean duration of the two others (8 s and 2 s) after 6 s.
        expect_test::expect!["40040/100040 rows  40.0%  10000 rows/s  eta 11s  running (1 running, 1 done, 1 waiting of 3 tables)"]
            .assert_eq(&o.message());
        let c = snap("media", "failed", 10, 600, 1.0);
        let o = Overall::of(by_id([Some(&b), Some(&c)]));
        assert_eq!(o.state(), "failed");
    }

    #[test]
    fn the_overall_eta_is_never_shorter_than_the_slowest_table() {
        // An OFFSET table near its end: 90 % done, 50 s left. The rows left over the rates summed
        // would say (60,000 + 10,000) / 12,000 = 5.8 s.
        let fast = snap("terminal", "running", 40_000, 100_000, 10_000.0);
        let slow = Snapshot {
            eta_seconds: Some(50.0),
            ..snap("media", "running", 90_000, 100_000, 2000.0)
        };
        let o = Overall::of(by_id([Some(&fast), Some(&slow)]));
        assert_eq!(o.eta(), Some(50.0));
        assert!(o.message().contains("eta 50s"), "{}", o.message());
    }

    #[test]
    fn waiting_tables_queue_for_the_first_free_slot() {
        // Two slots: 6 s and 20 s left (2 s in each, so 8 s and 22 s in all), a table done in
        // 2 s; the mean is 32 / 3 s. The first waiting table starts at 6 s and ends at 16.7 s,
        // the second starts then and ends at 27.3 s, after the slow table's 20 s.
        let a = snap("terminal", "running", 40_000, 100_000, 10_000.0);
        let b = Snapshot { eta_seconds: Some(20.0), ..snap("media", "running", 10, 100, 5.0) };
        let c = snap("package", "done", 40, 40, 20.0);
        let o = Overall::of(by_id([Some(&a), Some(&b), Some(&c), None, None]));
        let eta = o.eta().unwrap();
        assert!((eta - (6.0 + 2.0 * 32.0 / 3.0)).abs() < 1e-9, "{eta}");
        // A table counting (no ETA yet) is taken to need the mean, less what it has run.
        let counting = Snapshot { eta_seconds: None, ..snap("tv_program", "starting", 0, 1, 0.0) };
        let o = Overall::of(by_id([Some(&a), Some(&counting)]));
        let eta = o.eta().unwrap();
        assert!((eta - 6.0).abs() < 1e-9, "{eta}");
        // Nothing measured yet: no estimate.
        let o = Overall::of(by_id([Some(&counting), None]));
        assert_eq!(o.eta(), None);
        // An already complete table (no rows this run) is no measure of a table's duration.
        let already = snap("package", "done", 40, 40, 0.0);
        let o = Overall::of(by_id([Some(&already), Some(&counting), None]));
        assert_eq!(o.eta(), None);
    }

    #[test]
    fn a_waiting_table_takes_the_duration_of_its_strategy() {
        // Two id-range tables done in 2 s each, a third with 1 s left after 2 s (3 s in all), an
        // OFFSET table with 10 s left after 5 s (15 s in all), and a second OFFSET table waiting.
        // It takes the OFFSET table's 15 s in the slot that frees first, at 1 s: 16 s. The mean
        // of all four (5.5 s) would end it at 6.5 s, before the running OFFSET table.
        let a = snap("terminal", "done", 100, 100, 50.0);
        let b = snap("media", "done", 100, 100, 50.0);
        let c = snap("tv_channel", "running", 50, 100, 50.0);
        let offset = Snapshot {
            strategy: Strategy::Offset,
            eta_seconds: Some(10.0),
            elapsed_seconds: 5.0,
            ..snap("subscriber_package", "running", 50, 150, 10.0)
        };
        let id = Strategy::IdRange;
        let tables = [
            (id, Some(&a)),
            (id, Some(&b)),
            (id, Some(&c)),
            (id, Some(&offset)),
            (Strategy::Offset, None),
        ];
        assert_eq!(Overall::of(tables.into_iter()).eta(), Some(16.0));
        // A waiting id-range table takes the id-range tables' 3 s (c), at 1 s: the OFFSET table's
        // 10 s is the longer.
        let tables = [(id, Some(&c)), (id, Some(&offset)), (id, None)];
        assert_eq!(Overall::of(tables.into_iter()).eta(), Some(10.0));
        // With no table of its strategy seen yet, a waiting table takes the mean of all.
        let tables = [(id, Some(&c)), (Strategy::Offset, None)];
        assert_eq!(Overall::of(tables.into_iter()).eta(), Some(4.0));
    }

    /// A terminal 200 columns wide that keeps what is drawn on it; cursor movements are dropped,
    /// so the last lines are the last frame.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            let mut text = self.0.lock().unwrap();
            text.push_str(s);
            text.push('\n');
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn failed_and_cancelled_tables_end_where_they_stopped() {
        let screen = Screen::default();
        let tables = ["terminal", "media", "package", "tv_program"]
            .map(|t| (t.to_owned(), Strategy::IdRange));
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(screen.clone()), REFRESH_HZ);
        let bars = Bars::with_target(&tables, target);
        bars.update(&snap("terminal", "done", 3000, 3000, 1500.0));
        bars.update(&snap("media", "running", 1200, 3000, 600.0));
        bars.update(&snap("media", "failed", 1200, 3000, 600.0));
        bars.update(&snap("tv_program", "cancelled", 500, 2000, 250.0));
        // `package` never reported: its reset failed before its dump began.
        bars.finish(&[
            ("terminal", "done", 3000),
            ("media", "failed", 1200),
            ("package", "failed", 40),
            ("tv_program", "cancelled", 500),
        ]);
        // indicatif pads every line to the width of the terminal instead of ending it.
        let text: Vec<char> = screen.0.lock().unwrap().chars().collect();
        let lines: Vec<String> =
            text.chunks(200).map(|l| l.iter().collect::<String>().trim_end().to_owned()).collect();
        let frame = lines[lines.len().saturating_sub(5)..].join("\n");
        expect_test::expect![[r"
            terminal   [========================] 3000/3000 rows 100.0%  in 2.0s  done
            media      [=========>              ] 1200/3000 rows  40.0%  failed
            package    [                        ] 40 rows  failed
            tv_program [======>                 ] 500/2000 rows  25.0%  cancelled
            all        [==============>         ] 4740/8040 rows  59.0%  failed (1 done, 2 failed, 1 cancelled of 4 tables)"]].assert_eq(&frame);
    }
}

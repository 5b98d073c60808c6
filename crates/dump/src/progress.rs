//! `DumpProgress`: counters, rates and estimates of one table's dump.
//!
//! The ETA extrapolates what this run's chunks have cost so far, the way the strategy's cost
//! grows. An id-range chunk costs the same wherever it is (a keyset page reads its own rows and no
//! others), so the ETA is the rows left at the rate of a recent window. An OFFSET chunk costs the
//! server every row it skips (`PostgreSQL` reads them and drops them), so a chunk's time grows
//! linearly with its offset and the whole dump is quadratic: a recent rate, extrapolated, promises
//! the end far too early. There the time per row is fitted as `a + b·offset` over every chunk of
//! this run, and the ETA is the fit summed over the chunks left ([`offset_eta`]).
//!
//! Both estimators are pure functions of `(rows done, seconds)` samples, one per commit, on a
//! clock that stops while the dump is paused; the tests below feed them synthetic timestamps.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use iptvportal_traverse::Strategy;
/// What a table's dump is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunState {
    /// Counting and opening files.
    Starting,
    /// Fetching and writing chunks.
    Running,
    /// Paused: no request is being sent.
    Paused,
    /// A request failed transiently and is about to be retried.
    Retrying,
    /// Finished; the output is complete.
    Done,
    /// Stopped by an error; the checkpoint allows a resume.
    Failed,
    /// Stopped by a cancellation; the checkpoint allows a resume.
    Cancelled,
}

impl RunState {
    /// A lowercase name for display and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Retrying => "retrying",
            RunState::Done => "done",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }
}

/// The fewest recent commits the id-range rate is taken over.
const WINDOW: usize = 20;

/// The shortest span, in seconds, the id-range rate is taken over. Parallel fetches commit in
/// bursts (`--parallel` chunks at once, then a wait for the next ones), and a window of few
/// commits would measure a burst instead of the pace.
const WINDOW_SPAN: f64 = 3.0;

/// Commits kept for the estimates. Past it, every other one of the older half is dropped: the
/// OFFSET fit then sees intervals of two chunks there (which [`offset_eta`] accounts for), and
/// the recent window keeps every commit.
const MAX_SAMPLES: usize = 4096;

/// One commit: the rows done after it, and when, in seconds of this run's unpaused clock.
type Sample = (u64, f64);

/// Progress of one table's dump. The counters cover every run of the dump (a resumed run starts
/// from the checkpoint's); rates and times cover this run only, so resuming does not inflate them.
#[derive(Debug, Clone)]
pub struct DumpProgress {
    /// The table.
    pub table: String,
    /// Rows written to the output, over all runs.
    pub dumped_rows: u64,
    /// Rows expected in all (counted when this run started), when known.
    pub total_rows: Option<u64>,
    /// Chunks written, over all runs.
    pub chunks_completed: u64,
    /// The OFFSET cursor, or the rows done for ID_RANGE.
    pub current_offset: u64,
    /// The last id done (ID_RANGE).
    pub current_id: Option<i64>,
    /// What the dump is doing.
    pub state: RunState,
    /// Requests of this run retried after a transient failure.
    pub retries: u64,
    /// When the dump first started (the first run's start when resumed).
    pub started_at: SystemTime,
    /// When the dump completed.
    pub completed_at: Option<SystemTime>,
    strategy: Strategy,
    run_started: Instant,
    run_finished: Option<Instant>,
    rows_at_run_start: u64,
    /// Time this run spent paused, which the ETA's clock leaves out.
    paused: Duration,
    paused_since: Option<Instant>,
    /// The most rows one chunk brought: the chunk size, for the OFFSET estimate.
    chunk_rows: u64,
    /// This run's commits, oldest first.
    samples: VecDeque<Sample>,
}

impl DumpProgress {
    pub(crate) fn new(
        table: &str,
        strategy: Strategy,
        started_at: SystemTime,
        dumped_rows: u64,
        chunks_completed: u64,
    ) -> DumpProgress {
        DumpProgress {
            table: table.to_owned(),
            dumped_rows,
            total_rows: None,
            chunks_completed,
            current_offset: dumped_rows,
            current_id: None,
            state: RunState::Starting,
            retries: 0,
            started_at,
            completed_at: None,
            strategy,
            run_started: Instant::now(),
            run_finished: None,
            rows_at_run_start: dumped_rows,
            paused: Duration::ZERO,
            paused_since: None,
            chunk_rows: 0,
            samples: VecDeque::new(),
        }
    }

    /// The strategy this run walks the table with, which decides how the ETA extrapolates.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Seconds of this run's clock at `at`: since the run started, paused time left out.
    fn clock(&self, at: Instant) -> f64 {
        let paused = self.paused + self.paused_since.map_or(Duration::ZERO, |p| at - p);
        at.saturating_duration_since(self.run_started).saturating_sub(paused).as_secs_f64()
    }

    pub(crate) fn record_chunk(&mut self, rows: u64) {
        self.record_chunk_at(rows, Instant::now());
    }

    /// [`DumpProgress::record_chunk`] committed at `at`.
    fn record_chunk_at(&mut self, rows: u64, at: Instant) {
        self.dumped_rows += rows;
        self.chunks_completed += 1;
        self.chunk_rows = self.chunk_rows.max(rows);
        if self.samples.len() == MAX_SAMPLES {
            let recent = self.samples.split_off(MAX_SAMPLES / 2);
            let older = std::mem::take(&mut self.samples);
            self.samples = older.into_iter().step_by(2).chain(recent).collect();
        }
        let now = self.clock(at);
        self.samples.push_back((self.dumped_rows, now));
    }

    /// The dump stops sending requests: its clock stops until [`DumpProgress::unpause`].
    pub(crate) fn pause(&mut self) {
        self.state = RunState::Paused;
        self.paused_since.get_or_insert_with(Instant::now);
    }

    /// The dump runs again after [`DumpProgress::pause`].
    pub(crate) fn unpause(&mut self) {
        self.state = RunState::Running;
        if let Some(since) = self.paused_since.take() {
            self.paused += since.elapsed();
        }
    }

    pub(crate) fn finish(&mut self, state: RunState) {
        self.state = state;
        self.run_finished = Some(Instant::now());
        if state == RunState::Done {
            self.completed_at = Some(SystemTime::now());
        }
    }

    /// Percent of the expected rows written, when the total is known (100 for an empty table).
    pub fn percent_complete(&self) -> Option<f64> {
        let total = self.total_rows?;
        Some(if total == 0 {
            100.0
        } else {
            (self.dumped_rows as f64 / total as f64 * 100.0).min(100.0)
        })
    }

    /// Seconds since this run started (until it finished, once it has).
    pub fn elapsed_seconds(&self) -> f64 {
        self.run_finished
            .unwrap_or_else(Instant::now)
            .duration_since(self.run_started)
            .as_secs_f64()
    }

    /// Rows per second written by this run.
    pub fn rows_per_second(&self) -> f64 {
        let elapsed = self.elapsed_seconds();
        if elapsed <= 0.0 {
            0.0
        } else {
            (self.dumped_rows - self.rows_at_run_start) as f64 / elapsed
        }
    }

    /// Rows written by this run.
    pub fn rows_this_run(&self) -> u64 {
        self.dumped_rows - self.rows_at_run_start
    }

    /// Seconds left, as of the last commit, when the total is known and this run has committed
    /// enough to measure: id-range at the rate of the recent window, OFFSET by
    /// the fitted cost growing with the offset.
    pub fn eta_seconds(&self) -> Option<f64> {
        let total = self.total_rows?;
        if total <= self.dumped_rows {
            return Some(0.0);
        }
        // The interval before the first commit also holds the count and the first request's
        // round trip, which no later chunk pays: it is used only while there is nothing else.
        let samples: Vec<Sample> = if self.samples.len() >= 2 {
            self.samples.iter().copied().collect()
        } else {
            let first = self.samples.front().copied();
            std::iter::once((self.rows_at_run_start, 0.0)).chain(first).collect()
        };
        match self.strategy {
            Strategy::Offset => offset_eta(&samples, total, self.chunk_rows),
            _ => window_eta(&samples, total),
        }
    }
}

/// Seconds left to reach `total` rows from the last of `samples`, at the pace of the most recent
/// window of at least [`WINDOW`] commits and [`WINDOW_SPAN`] seconds (or all of them, when there
/// are fewer): the estimate for a constant cost per chunk. The pace is the least-squares slope of
/// time against rows over the window, not the rate between its two ends: commits of parallel
/// fetches come in bursts, and the two ends may fall at different points of a burst.
fn window_eta(samples: &[Sample], total: u64) -> Option<f64> {
    let &(done, now) = samples.last()?;
    let last = samples.len() - 1;
    // Samples are in time order: the ones before `spanning` are at least WINDOW_SPAN old.
    let spanning = samples.partition_point(|s| s.1 <= now - WINDOW_SPAN);
    let window = &samples[last.saturating_sub(WINDOW).min(spanning.saturating_sub(1))..];
    let points: Vec<Point> =
        window.iter().map(|&(rows, t)| Point { x: rows as f64, y: t, w: 1.0 }).collect();
    if done == window[0].0 || now - window[0].1 < 1e-3 {
        return None;
    }
    let (_, seconds_per_row) = slope(&points)?;
    (seconds_per_row > 0.0).then(|| total.saturating_sub(done) as f64 * seconds_per_row)
}

/// Seconds left to reach `total` rows from the last of `samples` when a chunk of `chunk` rows at
/// offset `x` costs `chunk · (a + b·x)`: the OFFSET estimate.
///
/// Every interval between two commits is one point: its seconds per row against the offset its
/// chunks started at. (The traversal reads one chunk ahead, so an interval is the fetch of the
/// chunk it ends with, started when the one before it arrived.) A robust line through them
/// ([`robust_line`]) gives `a` and `b`; the ETA is its sum over the chunks left, plus the empty
/// page that ends a table whose rows are a whole number of chunks (it still skips every row).
fn offset_eta(samples: &[Sample], total: u64, chunk: u64) -> Option<f64> {
    let &(done, _) = samples.last()?;
    let left = total.saturating_sub(done);
    let chunk = chunk.max(1);
    let points: Vec<Point> = samples
        .iter()
        .zip(samples.iter().skip(1))
        .filter(|(a, b)| b.0 > a.0)
        .map(|(a, b)| {
            let rows = b.0 - a.0;
            // An interval of k chunks starts them at x, x + chunk, …: their mean start.
            let x = a.0 as f64 + rows.saturating_sub(chunk) as f64 / 2.0;
            Point { x, y: (b.1 - a.1) / rows as f64, w: rows as f64 }
        })
        .collect();
    let (per_row, per_row_offset) = robust_line(&points)?;
    let (full, rest) = (left / chunk, left % chunk);
    let (offset, size, chunks) = (done as f64, chunk as f64, full as f64);
    // The rows left times their chunk's start offset, summed: chunks at offset, offset + size,
    // …, then a partial one.
    let row_offsets = size * (chunks * offset + size * chunks * (chunks - 1.0) / 2.0)
        + rest as f64 * (offset + chunks * size);
    let mut seconds = per_row * left as f64 + per_row_offset * row_offsets;
    if rest == 0 {
        seconds += per_row_offset * size * total as f64;
    }
    Some(seconds.max(0.0))
}

/// One interval of [`offset_eta`]: seconds per row `y` at offset `x`, of weight `w` rows.
#[derive(Debug, Clone, Copy)]
struct Point {
    x: f64,
    y: f64,
    w: f64,
}

/// `(a, b)` of `y = a + b·x`, robust to noise that scales with the cost (a loaded machine slows
/// every request by a share, not by a constant): least squares weighted by rows over the fitted
/// cost squared, iterated, then fitted again without the points whose relative residual is more
/// than three (normal-scaled) median absolute deviations. `b` is never negative: a cost that
/// shrinks with the offset is noise, and is taken as flat.
fn robust_line(points: &[Point]) -> Option<(f64, f64)> {
    let (mut a, mut b) = line(points)?;
    let mut ys: Vec<f64> = points.iter().map(|p| p.y).collect();
    ys.sort_by(f64::total_cmp);
    // A floor under the fitted cost, so that a line near zero somewhere gives no point all the
    // weight.
    let floor = ys[ys.len() / 2] / 4.0;
    let fitted = |a: f64, b: f64, p: &Point| (a + b * p.x).max(floor);
    let reweighed = |a: f64, b: f64, p: &Point| Point { w: p.w / fitted(a, b, p).powi(2), ..*p };
    for _ in 0..3 {
        let weighed: Vec<Point> = points.iter().map(|p| reweighed(a, b, p)).collect();
        (a, b) = line(&weighed)?;
    }
    let residuals: Vec<f64> =
        points.iter().map(|p| (p.y - a - b * p.x).abs() / fitted(a, b, p)).collect();
    let mut sorted = residuals.clone();
    sorted.sort_by(f64::total_cmp);
    let mad = sorted[sorted.len() / 2] * 1.4826;
    let kept: Vec<Point> = points
        .iter()
        .zip(&residuals)
        .filter(|(_, r)| **r <= 3.0 * mad)
        .map(|(p, _)| reweighed(a, b, p))
        .collect();
    if mad > 0.0 && kept.len() >= 3 && kept.len() < points.len() {
        (a, b) = line(&kept)?;
    }
    if b >= 0.0 {
        return Some((a, b));
    }
    let w: f64 = points.iter().map(|p| p.w).sum();
    Some((points.iter().map(|p| p.w * p.y).sum::<f64>() / w, 0.0))
}

/// Weighted least squares `(a, b)`; flat (`b` = 0) through fewer than three points or where every
/// point is at one offset.
fn line(points: &[Point]) -> Option<(f64, f64)> {
    if points.len() < 3 {
        let w: f64 = points.iter().map(|p| p.w).sum();
        return (w > 0.0).then(|| (points.iter().map(|p| p.w * p.y).sum::<f64>() / w, 0.0));
    }
    slope(points)
}

/// Weighted least squares `(a, b)`, flat where every point is at one `x`.
fn slope(points: &[Point]) -> Option<(f64, f64)> {
    let w: f64 = points.iter().map(|p| p.w).sum();
    if points.is_empty() || w <= 0.0 {
        return None;
    }
    let mx = points.iter().map(|p| p.w * p.x).sum::<f64>() / w;
    let my = points.iter().map(|p| p.w * p.y).sum::<f64>() / w;
    let sxx: f64 = points.iter().map(|p| p.w * (p.x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| p.w * (p.x - mx) * (p.y - my)).sum();
    if sxx <= f64::EPSILON * mx.abs().max(1.0) {
        return Some((my, 0.0));
    }
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise factor in `1 ± spread` (a linear congruential generator).
    struct Noise(u64);

    impl Noise {
        fn factor(&mut self, spread: f64) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let unit = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
            1.0 + spread * (2.0 * unit - 1.0)
        }
    }

    /// The commits of an OFFSET dump of `total` rows in chunks of `chunk` whose chunk at offset x
    /// takes `chunk · (a + b·x)` seconds times the noise, and the moment it really ends (after the
    /// empty page at `total`, when the rows are a whole number of chunks).
    fn offset_run(total: u64, chunk: u64, a: f64, b: f64, noise: &mut Noise) -> (Vec<Sample>, f64) {
        let mut samples = Vec::new();
        let (mut done, mut t) = (0, 0.0);
        while done < total {
            let rows = chunk.min(total - done);
            t += rows as f64 * (a + b * done as f64) * noise.factor(0.1);
            done += rows;
            samples.push((done, t));
        }
        if total.is_multiple_of(chunk) {
            t += chunk as f64 * b * total as f64 * noise.factor(0.1);
        }
        (samples, t)
    }

    /// The relative error of `estimate` at the first commit past each fraction of the rows.
    fn errors(
        samples: &[Sample],
        end: f64,
        total: u64,
        estimate: impl Fn(&[Sample]) -> Option<f64>,
    ) -> Vec<(f64, f64)> {
        [0.10, 0.25, 0.50, 0.75]
            .into_iter()
            .map(|fraction| {
                let i = samples.iter().position(|s| s.0 as f64 >= fraction * total as f64).unwrap();
                let eta = estimate(&samples[..=i]).unwrap();
                let actual = end - samples[i].1;
                (fraction, (eta - actual).abs() / actual)
            })
            .collect()
    }

    /// The bounds: within 25 % from 10 % of the rows on, within 10 % from 50 % on.
    fn assert_within_bounds(errors: &[(f64, f64)], what: &str) {
        for &(fraction, error) in errors {
            let bound = if fraction >= 0.5 { 0.10 } else { 0.25 };
            assert!(
                error <= bound,
                "{what}: at {fraction}, error {error:.3} > {bound}: {errors:?}"
            );
        }
    }

    #[test]
    fn the_offset_model_predicts_a_quadratic_workload() {
        // The simulator's shape at the bench's size: 500,000 rows, chunks of 5,000, 2 µs a row
        // and a skip that makes the last chunk about 25 times the first; ±10 % noise per chunk.
        let (total, chunk) = (500_000, 5000);
        for seed in 1..=20 {
            let mut noise = Noise(seed);
            let (samples, end) = offset_run(total, chunk, 2e-6, 9.2e-11, &mut noise);
            let model = errors(&samples, end, total, |s| offset_eta(s, total, chunk));
            assert_within_bounds(&model, &format!("seed {seed}"));
            // A recent rate, extrapolated, misses the growing cost: at 10 % it promises the end
            // in less than half the time.
            let window = errors(&samples, end, total, |s| window_eta(s, total));
            assert!(window[0].1 > 0.5, "seed {seed}: {window:?}");
        }
    }

    #[test]
    fn the_offset_model_needs_no_skip_cost_to_be_right() {
        // A flat cost (no skip at all): the fitted slope is noise around zero.
        let (total, chunk) = (200_000, 2000);
        let mut noise = Noise(7);
        let (samples, end) = offset_run(total, chunk, 5e-6, 0.0, &mut noise);
        let model = errors(&samples, end, total, |s| offset_eta(s, total, chunk));
        assert_within_bounds(&model, "flat");
    }

    #[test]
    fn an_outlier_chunk_does_not_bend_the_fit() {
        let (total, chunk) = (500_000, 5000);
        let mut noise = Noise(3);
        let (mut samples, end) = offset_run(total, chunk, 2e-6, 9.2e-11, &mut noise);
        // The 5th chunk waited 2 s for a retry: every later commit moves by as much.
        for s in &mut samples[4..] {
            s.1 += 2.0;
        }
        let model = errors(&samples, end + 2.0, total, |s| offset_eta(s, total, chunk));
        assert_within_bounds(&model, "outlier");
    }

    #[test]
    fn the_window_spans_bursts_of_parallel_commits() {
        // Ten chunks in flight at a time commit together once a second: 10 chunks/s.
        let (total, chunk) = (1_000_000, 2000);
        let mut noise = Noise(11);
        let mut samples = Vec::new();
        let mut done = 0;
        for second in 1.. {
            let burst = f64::from(second) + noise.factor(0.05) - 1.0;
            for i in 0..10 {
                done += chunk;
                samples.push((done, burst + f64::from(i) * 0.002));
            }
            if done >= total {
                break;
            }
        }
        let end = samples.last().unwrap().1;
        let windowed = errors(&samples, end, total, |s| window_eta(s, total));
        assert_within_bounds(&windowed, "bursts");
        // Twenty commits alone are two bursts, whose staircase is no line: its slope is a
        // quarter off the pace (10 chunks a second, 1e-4 seconds a row).
        let last = samples.len() / 2 + 9;
        let twenty: Vec<Point> = samples[last + 1 - WINDOW..=last]
            .iter()
            .map(|&(rows, t)| Point { x: rows as f64, y: t, w: 1.0 })
            .collect();
        let (_, seconds_per_row) = slope(&twenty).unwrap();
        assert!((seconds_per_row / 5e-5 - 1.0).abs() > 0.2, "{seconds_per_row}");
    }

    #[test]
    fn progress_estimates_by_its_strategy() {
        let (total, chunk) = (500_000, 5000);
        let mut noise = Noise(5);
        let (samples, end) = offset_run(total, chunk, 2e-6, 9.2e-11, &mut noise);
        let half = samples.iter().position(|s| s.0 >= total / 2).unwrap();
        let actual = end - samples[half].1;
        let mut errors = Vec::new();
        for strategy in [Strategy::Offset, Strategy::IdRange] {
            let mut p = DumpProgress::new("terminal", strategy, SystemTime::now(), 0, 0);
            p.total_rows = Some(total);
            assert_eq!(p.eta_seconds(), None, "nothing committed yet");
            let start = p.run_started;
            let mut before = 0;
            for &(rows, t) in &samples[..=half] {
                p.record_chunk_at(rows - before, start + Duration::from_secs_f64(t));
                before = rows;
            }
            let eta = p.eta_seconds().unwrap();
            errors.push((eta - actual).abs() / actual);
        }
        assert!(errors[0] <= 0.10 && errors[1] > 0.25, "{errors:?}");
    }

    #[test]
    fn a_long_run_keeps_few_samples_and_its_estimate() {
        // 10,000 chunks: past MAX_SAMPLES the older half is thinned, the estimate holds.
        let (total, chunk) = (10_000_000, 1000);
        let mut noise = Noise(9);
        let (samples, end) = offset_run(total, chunk, 2e-6, 2e-12, &mut noise);
        let mut p = DumpProgress::new("terminal", Strategy::Offset, SystemTime::now(), 0, 0);
        p.total_rows = Some(total);
        let start = p.run_started;
        let at = samples.iter().position(|s| s.0 >= total * 3 / 4).unwrap();
        let mut before = 0;
        for &(rows, t) in &samples[..=at] {
            p.record_chunk_at(rows - before, start + Duration::from_secs_f64(t));
            before = rows;
        }
        assert!(p.samples.len() <= MAX_SAMPLES, "{}", p.samples.len());
        let actual = end - samples[at].1;
        let error = (p.eta_seconds().unwrap() - actual).abs() / actual;
        assert!(error <= 0.10, "{error}");
    }

    #[test]
    fn paused_time_is_off_the_clock() {
        let mut p = DumpProgress::new("terminal", Strategy::IdRange, SystemTime::now(), 0, 0);
        let start = p.run_started;
        p.paused = Duration::from_secs(2);
        p.paused_since = Some(start + Duration::from_secs(10));
        // 2 s of an earlier pause and 3 s of this one: 8 s of 13 ran.
        assert!((p.clock(start + Duration::from_secs(13)) - 8.0).abs() < 1e-9);
        p.paused_since = None;
        assert!((p.clock(start + Duration::from_secs(13)) - 11.0).abs() < 1e-9);
    }

    #[test]
    fn a_finished_or_empty_table_has_no_time_left() {
        let mut p = DumpProgress::new("terminal", Strategy::Offset, SystemTime::now(), 0, 0);
        assert_eq!(p.eta_seconds(), None, "no total yet");
        p.total_rows = Some(0);
        assert_eq!(p.eta_seconds(), Some(0.0));
    }
}

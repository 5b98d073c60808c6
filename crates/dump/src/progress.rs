//! `DumpProgress`: counters, rates and estimates of one table's dump.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

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

/// How many recent samples the ETA's rate is taken over.
const WINDOW: usize = 20;

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
    run_started: Instant,
    run_finished: Option<Instant>,
    rows_at_run_start: u64,
    samples: VecDeque<(Instant, u64)>,
}

impl DumpProgress {
    pub(crate) fn new(
        table: &str,
        started_at: SystemTime,
        dumped_rows: u64,
        chunks_completed: u64,
    ) -> DumpProgress {
        let now = Instant::now();
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
            run_started: now,
            run_finished: None,
            rows_at_run_start: dumped_rows,
            samples: VecDeque::from([(now, dumped_rows)]),
        }
    }

    pub(crate) fn record_chunk(&mut self, rows: u64) {
        self.dumped_rows += rows;
        self.chunks_completed += 1;
        let now = Instant::now();
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back((now, self.dumped_rows));
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

    /// Seconds left at the recent rate, when the total is known and the rate measurable.
    pub fn eta_seconds(&self) -> Option<f64> {
        let remaining = self.total_rows?.saturating_sub(self.dumped_rows);
        if remaining == 0 {
            return Some(0.0);
        }
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let span = last.0.duration_since(first.0);
        let rows = last.1 - first.1;
        if rows == 0 || span < Duration::from_millis(1) {
            return None;
        }
        Some(remaining as f64 / (rows as f64 / span.as_secs_f64()))
    }
}

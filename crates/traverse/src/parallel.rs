//! Parallel ID_RANGE traversal: id ranges of exactly one chunk, fetched concurrently, handed on in
//! id order.
//!
//! The ranges come from an **id scan**: pages of ids alone (`select id … where <filter> and id >
//! after order by id limit n`), read ahead of the fetches. Every `chunk_size`-th id becomes the
//! inclusive upper bound of a range, so each range holds exactly one chunk of matching rows when
//! it is fetched and costs exactly one request, however unevenly the ids are spread and however
//! selective the filter is. Each range is fetched by keyset inside its bounds, so a range that grew
//! after the scan (rows inserted) simply takes another request, and one that shrank returns less.
//! After the last full range comes an unbounded tail (`id > last bound`): the scan's remainder of
//! less than a chunk, plus any row added during the traversal, exactly as a sequential traversal
//! would see it. The output is identical to a sequential ID_RANGE traversal.
//!
//! **Invariant:** at most `max_parallel` row requests are in flight, plus at most one id scan page
//! (a light request: one column, no row data). A row request starts only while the chunks waiting
//! for their turn plus the row requests in flight are at most `max_parallel`, except that the head
//! range may always fetch its next page (it is the one that unblocks delivery). So at most
//! `max_parallel + 2` chunks are waiting or on their way: memory is bounded by
//! `(max_parallel + 2) * chunk_size` rows, plus one scan page (at most [`SCAN_IDS`] ids, read as
//! plain integers through [`RowSource::select_i64s`]) and the planned bounds (one per chunk of the
//! page). When fetching is the bottleneck nothing waits and all `max_parallel` requests run; when
//! writing is, more chunks waiting would buy nothing (measured in docs/benchmarks.md: the same
//! speed at 20 ms latency as the earlier bound of `max_parallel` waiting chunks on top of the
//! requests, and 1-2 MiB less peak memory). The scan does not take a row request's place because
//! it would cost one latency per page out of the fetches' time.
//!
//! Measured in docs/benchmarks.md against the earlier plan (ranges cut from `count`, `min(id)` and
//! `max(id)`, 80 % of a chunk each): that plan needed ~135 requests for 100 chunks on a table with
//! clustered id gaps, this one ~100 plus one scan page per four chunks.

use std::collections::VecDeque;
use std::sync::Arc;

use iptvportal_query::{CompareOp, Operand, OrderBy, Select};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::spec::{IdPosition, and, fetch, not_ascending};
use crate::{Chunk, Cursor, Error, RowSource, TraversalSpec};

type Rows = Vec<Vec<Value>>;

/// Ids in one scan page, at most: ~200 KB of response and 160 KB of ids, whatever the chunk size.
const SCAN_IDS: u64 = 20_000;
/// Chunks' worth of ids in one scan page, unless that exceeds [`SCAN_IDS`].
const SCAN_CHUNKS: u64 = 4;

pub(crate) struct ParallelTraversal {
    source: Arc<dyn RowSource>,
    spec: TraversalSpec,
    query: Select,
    id: IdPosition,
    window: usize,
    planner: Planner,
    /// Started ranges in id order; the front is the one being delivered.
    ranges: VecDeque<Range>,
    tasks: JoinSet<Fetched>,
    /// Requests in flight: row fetches and the scan.
    in_flight: usize,
    /// Row fetches in flight, at most `window`.
    fetching: usize,
}

/// A finished request.
enum Fetched {
    /// Rows of the range with this index.
    Range(u64, Result<Rows, Error>),
    /// A page of the id scan.
    Scan(Result<Vec<i64>, Error>),
}

/// One id range `(after, hi]`, fetched by keyset from `after`.
struct Range {
    index: u64,
    /// Exclusive lower bound of what is still to fetch: the last id fetched so far.
    after: Option<i64>,
    /// Inclusive upper bound; `None` for the tail.
    hi: Option<i64>,
    in_flight: bool,
    /// No more rows in this range.
    done: bool,
    /// Fetched chunks waiting for their turn, with the last id of each.
    ready: VecDeque<(Rows, i64)>,
}

/// What a request for the rows of a range is, in errors and logs.
fn range_what(table: &str, after: Option<i64>, hi: Option<i64>) -> String {
    match (after, hi) {
        (Some(after), Some(hi)) => format!("fetching rows of {table} with ids in ({after}, {hi}]"),
        (None, Some(hi)) => format!("fetching rows of {table} with ids up to {hi}"),
        (Some(after), None) => format!("fetching rows of {table} after id {after}"),
        (None, None) => format!("fetching rows of {table}"),
    }
}

/// Turns the id scan into ranges of one chunk each, on demand.
struct Planner {
    chunk_size: u64,
    /// Ids asked for per scan page.
    scan_limit: u64,
    /// Exclusive lower bound of the next scan page: the last id scanned so far.
    scan_after: Option<i64>,
    /// Ids scanned since the last planned bound.
    since_bound: u64,
    scan_in_flight: bool,
    /// A short scan page came back: every id there was is scanned.
    scan_done: bool,
    /// Inclusive upper bounds of the ranges scanned but not started yet, ascending.
    bounds: VecDeque<i64>,
    /// Exclusive lower bound of the next range.
    next_after: Option<i64>,
    tail_planned: bool,
    next_index: u64,
}

/// Ids asked for per page of the id scan, for chunks of `chunk_size` rows.
pub(crate) fn scan_limit(chunk_size: u64) -> u64 {
    chunk_size.saturating_mul(SCAN_CHUNKS).clamp(1, SCAN_IDS)
}

impl Planner {
    fn new(after: Option<i64>, chunk_size: u64) -> Planner {
        Planner {
            chunk_size,
            scan_limit: scan_limit(chunk_size),
            scan_after: after,
            since_bound: 0,
            scan_in_flight: false,
            scan_done: false,
            bounds: VecDeque::new(),
            next_after: after,
            tail_planned: false,
            next_index: 0,
        }
    }

    /// Whether to ask for the next scan page now: the planned bounds run low, and no page is on
    /// its way.
    fn wants_scan(&self, low_water: usize) -> bool {
        !self.scan_done && !self.scan_in_flight && self.bounds.len() <= low_water
    }

    /// Takes in a scan page: every `chunk_size`-th id becomes a bound.
    fn scanned(&mut self, ids: &[i64], what: &str) -> Result<(), Error> {
        self.scan_in_flight = false;
        for &id in ids {
            if let Some(previous) = self.scan_after.filter(|&p| id <= p) {
                return Err(not_ascending(what, id, previous));
            }
            self.scan_after = Some(id);
            self.since_bound += 1;
            if self.since_bound == self.chunk_size {
                self.bounds.push_back(id);
                self.since_bound = 0;
            }
        }
        self.scan_done = (ids.len() as u64) < self.scan_limit;
        Ok(())
    }

    fn next_range(&mut self) -> Option<Range> {
        let after = self.next_after;
        let hi = match self.bounds.pop_front() {
            Some(hi) => {
                self.next_after = Some(hi);
                Some(hi)
            }
            None if self.scan_done && !self.tail_planned => {
                self.tail_planned = true;
                None
            }
            None => return None,
        };
        let index = self.next_index;
        self.next_index += 1;
        Some(Range { index, after, hi, in_flight: false, done: false, ready: VecDeque::new() })
    }

    fn exhausted(&self) -> bool {
        self.tail_planned
    }
}

impl ParallelTraversal {
    /// The traversal of the rows after `after`, with the first scan page already requested, so
    /// that it runs while the caller counts.
    pub(crate) fn new(
        source: Arc<dyn RowSource>,
        spec: TraversalSpec,
        after: Option<i64>,
    ) -> Result<Self, Error> {
        let (query, id) = spec.keyset_select()?;
        let query = query.limit(spec.chunk_size);
        let planner = Planner::new(after, spec.chunk_size);
        let mut traversal = ParallelTraversal {
            source,
            window: spec.max_parallel,
            spec,
            query,
            id,
            planner,
            ranges: VecDeque::new(),
            tasks: JoinSet::new(),
            in_flight: 0,
            fetching: 0,
        };
        traversal.spawn_scan()?;
        Ok(traversal)
    }

    /// The next chunk in id order. With `issue` false no new request is sent: only what is already
    /// in flight can complete (used to drain on pause).
    pub(crate) async fn next_chunk(&mut self, issue: bool) -> Result<Option<Chunk>, Error> {
        loop {
            if issue {
                self.fill()?;
            }
            while let Some(head) = self.ranges.front_mut() {
                if let Some((rows, last)) = head.ready.pop_front() {
                    let finished = head.done && head.ready.is_empty();
                    // A finished range vouches for every id up to its bound, not just its last row.
                    let after =
                        if finished { head.hi.map_or(last, |hi| hi.max(last)) } else { last };
                    if finished {
                        self.ranges.pop_front();
                    }
                    return Ok(Some(Chunk { rows, cursor: Cursor::Id { after: Some(after) } }));
                }
                if !head.done {
                    break;
                }
                // An empty range: nothing to hand on.
                self.ranges.pop_front();
            }
            if self.ranges.is_empty() && self.planner.exhausted() {
                return Ok(None);
            }
            if self.in_flight == 0 {
                if issue {
                    return Err(Error::Unexpected {
                        what: format!("fetching rows of {}", self.spec.table),
                        detail: "the parallel traversal stalled with nothing in flight".to_owned(),
                    });
                }
                return Ok(None);
            }
            self.complete_one().await?;
        }
    }

    /// Issues requests while the window has room: the head's next page first, then the id scan
    /// when its bounds run low, then new ranges.
    fn fill(&mut self) -> Result<(), Error> {
        loop {
            let buffered: usize = self.ranges.iter().map(|r| r.ready.len()).sum();
            let can_fetch = self.fetching < self.window;
            let room = can_fetch && buffered + self.fetching <= self.window;
            let next = self.ranges.iter().position(|r| !r.done && !r.in_flight);
            match next {
                Some(pos) if room || (can_fetch && pos == 0 && self.ranges[0].ready.is_empty()) => {
                    self.spawn(pos)?;
                }
                _ if buffered < self.window && self.planner.wants_scan(2 * self.window) => {
                    self.spawn_scan()?;
                }
                _ if room => match self.planner.next_range() {
                    Some(range) => self.ranges.push_back(range),
                    None => return Ok(()),
                },
                _ => return Ok(()),
            }
        }
    }

    /// What the next (or the pending) scan page is, in errors and logs.
    fn scan_what(&self) -> String {
        match self.planner.scan_after {
            Some(after) => format!("scanning the ids of {} after {after}", self.spec.table),
            None => format!("scanning the ids of {}", self.spec.table),
        }
    }

    fn spawn_scan(&mut self) -> Result<(), Error> {
        let id = self.spec.id_column.as_str();
        let mut query = Select::from(self.spec.table.as_str())?
            .data(vec![Operand::column(id)?])
            .order_by(OrderBy::asc(id)?)
            .limit(self.planner.scan_limit);
        query.where_ = self.spec.filter_after(self.planner.scan_after)?;
        let what = self.scan_what();
        self.planner.scan_in_flight = true;
        self.in_flight += 1;
        let source = Arc::clone(&self.source);
        self.tasks.spawn(async move {
            tracing::debug!(what, "traversal request");
            let ids = source.select_i64s(&query).await;
            Fetched::Scan(ids.map_err(|source| Error::Source { what, source }))
        });
        Ok(())
    }

    fn spawn(&mut self, pos: usize) -> Result<(), Error> {
        let range = &mut self.ranges[pos];
        let upper = range.hi.map(|hi| self.spec.id_compare(CompareOp::Lte, hi)).transpose()?;
        let mut query = self.query.clone();
        query.where_ = and(self.spec.filter_after(range.after)?, upper);
        let what = range_what(&self.spec.table, range.after, range.hi);
        let index = range.index;
        range.in_flight = true;
        self.in_flight += 1;
        self.fetching += 1;
        let source = Arc::clone(&self.source);
        self.tasks.spawn(async move {
            Fetched::Range(index, fetch(source.as_ref(), &query, &what).await)
        });
        Ok(())
    }

    async fn complete_one(&mut self) -> Result<(), Error> {
        let joined = self.tasks.join_next().await.expect("a request is in flight");
        let fetched = joined.map_err(|e| Error::Unexpected {
            what: format!("fetching rows of {}", self.spec.table),
            detail: format!("a request task failed: {e}"),
        })?;
        self.in_flight -= 1;
        let (index, result) = match fetched {
            Fetched::Range(index, result) => {
                self.fetching -= 1;
                (index, result)
            }
            Fetched::Scan(result) => {
                // The planner has not moved since the page was asked for: the same words as the
                // request's own errors.
                let what = self.scan_what();
                return self.planner.scanned(&result?, &what);
            }
        };
        let mut rows = result?;
        let chunk_size = self.spec.chunk_size;
        let id = self.id;
        let table = self.spec.table.clone();
        let range = self
            .ranges
            .iter_mut()
            .find(|r| r.index == index)
            .expect("a range in flight is never dropped");
        range.in_flight = false;
        let full = rows.len() as u64 >= chunk_size;
        let what = range_what(&table, range.after, range.hi);
        let last = id.last_id_and_strip(&mut rows, range.after, &what)?;
        if let (Some(last), Some(hi)) = (last, range.hi)
            && last > hi
        {
            return Err(Error::Unexpected {
                what,
                detail: format!("id {last} is beyond the requested bound {hi}"),
            });
        }
        range.done = !full || last.is_some() && last == range.hi;
        if let Some(last) = last {
            range.after = Some(last);
            range.ready.push_back((rows, last));
        }
        Ok(())
    }
}

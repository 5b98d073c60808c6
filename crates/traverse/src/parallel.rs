//! Parallel ID_RANGE traversal: planned id ranges fetched concurrently, handed on in id order.
//!
//! The id span after the cursor is cut into ranges expected to hold about one chunk each (from the
//! up-front count and min/max). Each range is fetched by keyset inside its bounds, so a range denser
//! than planned simply takes more requests, and an empty one costs a single request that returns
//! nothing. After the last planned range comes an unbounded tail (`id > max`), which catches rows
//! added during the traversal exactly as a sequential traversal would: the output is identical.
//!
//! **Invariant:** at most `max_parallel` requests are in flight, and no new range is started while
//! `max_parallel` chunks wait for their turn, except that the head range may always fetch (it is
//! the one that unblocks delivery). Waiting chunks are bounded separately from requests so that a
//! slow head does not drain the pipe to one request. Memory is therefore bounded by
//! `2 * max_parallel * chunk_size` rows.
//!
//! Ranges are planned for about 80% of a chunk: a range planned at exactly one chunk overflows
//! about half the time (ids are not evenly spread) and then needs a tiny follow-up request that
//! the head of the window waits for. Measured in docs/benchmarks.md.

use std::collections::VecDeque;
use std::sync::Arc;

use iptvportal_query::{CompareOp, Select};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::spec::{IdPosition, IdStats, and, fetch};
use crate::{Chunk, Cursor, Error, RowSource, TraversalSpec};

type Rows = Vec<Vec<Value>>;

pub(crate) struct ParallelTraversal {
    source: Arc<dyn RowSource>,
    spec: TraversalSpec,
    query: Select,
    id: IdPosition,
    window: usize,
    planner: Planner,
    /// Started ranges in id order; the front is the one being delivered.
    ranges: VecDeque<Range>,
    tasks: JoinSet<(u64, Result<Rows, Error>)>,
    in_flight: usize,
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

/// Cuts the id span into ranges on demand, so that planning costs nothing up front whatever the
/// table's size. Bounds are computed in `i128` so that ids near `i64::MAX` cannot overflow.
struct Planner {
    /// Exclusive lower bound of the next range.
    next_after: i128,
    /// Largest id at planning time; `None` when nothing matched.
    max: Option<i128>,
    width: i128,
    tail_planned: bool,
    next_index: u64,
}

impl Planner {
    fn new(after: Option<i64>, stats: IdStats, chunk_size: u64) -> Planner {
        let start = after.map(i128::from);
        let (next_after, max, width) = match stats.bounds {
            Some((min, max)) if stats.count > 0 => {
                let lower = start.unwrap_or(i128::MIN).max(i128::from(min) - 1);
                let span = i128::from(max) - lower;
                // Expected rows per id = count / span, so a range of chunk * span / count ids holds
                // about one chunk.
                let count = i128::from(stats.count);
                let width = ((i128::from(chunk_size) * span + count - 1) / count).max(1);
                (lower, Some(i128::from(max)), width)
            }
            _ => (start.unwrap_or(i128::MIN), None, 1),
        };
        Planner { next_after, max, width, tail_planned: false, next_index: 0 }
    }

    fn next_range(&mut self) -> Option<Range> {
        let (after, hi) = match self.max {
            Some(max) if self.next_after < max => {
                let hi = (self.next_after + self.width).min(max);
                let after = self.next_after;
                self.next_after = hi;
                (after, Some(to_i64(hi)))
            }
            _ if !self.tail_planned => {
                self.tail_planned = true;
                (self.next_after, None)
            }
            _ => return None,
        };
        let index = self.next_index;
        self.next_index += 1;
        let after = (after >= i128::from(i64::MIN)).then(|| to_i64(after));
        Some(Range { index, after, hi, in_flight: false, done: false, ready: VecDeque::new() })
    }

    fn exhausted(&self) -> bool {
        self.tail_planned
    }
}

fn to_i64(v: i128) -> i64 {
    i64::try_from(v).expect("range bounds stay within the ids the server returned")
}

impl ParallelTraversal {
    pub(crate) fn new(
        source: Arc<dyn RowSource>,
        spec: TraversalSpec,
        after: Option<i64>,
        stats: IdStats,
    ) -> Result<Self, Error> {
        let (query, id) = spec.keyset_select()?;
        let query = query.limit(spec.chunk_size);
        let planner = Planner::new(after, stats, (spec.chunk_size * 4 / 5).max(1));
        tracing::debug!(table = %spec.table, count = stats.count, width = planner.width, "planned id ranges");
        Ok(ParallelTraversal {
            source,
            window: spec.max_parallel,
            spec,
            query,
            id,
            planner,
            ranges: VecDeque::new(),
            tasks: JoinSet::new(),
            in_flight: 0,
        })
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

    /// Issues requests while the window has room.
    fn fill(&mut self) -> Result<(), Error> {
        loop {
            let buffered: usize = self.ranges.iter().map(|r| r.ready.len()).sum();
            let can_fetch = self.in_flight < self.window;
            let room = can_fetch && buffered < self.window;
            let next = self.ranges.iter().position(|r| !r.done && !r.in_flight);
            match next {
                Some(pos) if room || (can_fetch && pos == 0 && self.ranges[0].ready.is_empty()) => {
                    self.spawn(pos)?;
                }
                _ if room => match self.planner.next_range() {
                    Some(range) => self.ranges.push_back(range),
                    None => return Ok(()),
                },
                _ => return Ok(()),
            }
        }
    }

    fn spawn(&mut self, pos: usize) -> Result<(), Error> {
        let range = &mut self.ranges[pos];
        let upper = range.hi.map(|hi| self.spec.id_compare(CompareOp::Lte, hi)).transpose()?;
        let mut query = self.query.clone();
        query.where_ = and(self.spec.filter_after(range.after)?, upper);
        let what = match (range.after, range.hi) {
            (Some(after), Some(hi)) => {
                format!("fetching rows of {} with ids in ({after}, {hi}]", self.spec.table)
            }
            (None, Some(hi)) => format!("fetching rows of {} with ids up to {hi}", self.spec.table),
            (Some(after), None) => format!("fetching rows of {} after id {after}", self.spec.table),
            (None, None) => format!("fetching rows of {}", self.spec.table),
        };
        let index = range.index;
        range.in_flight = true;
        self.in_flight += 1;
        let source = Arc::clone(&self.source);
        self.tasks.spawn(async move { (index, fetch(source.as_ref(), &query, &what).await) });
        Ok(())
    }

    async fn complete_one(&mut self) -> Result<(), Error> {
        let joined = self.tasks.join_next().await.expect("a request is in flight");
        let (index, result) = joined.map_err(|e| Error::Unexpected {
            what: format!("fetching rows of {}", self.spec.table),
            detail: format!("a request task failed: {e}"),
        })?;
        self.in_flight -= 1;
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
        let what = format!("fetching rows of {table}");
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

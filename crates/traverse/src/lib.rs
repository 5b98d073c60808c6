//! Traversal strategies: turn (table, filter, chunk size) into an ordered sequence of chunks.
//!
//! The dump engine pulls chunks with [`Traversal::next_chunk`] and commits each one before asking for
//! the next, so a traversal is a pull-based state machine rather than a stream: nothing is fetched
//! that the caller has not made room for, which is what keeps memory bounded by chunk size times
//! parallelism, and what lets a pause stop issuing requests at once.
//!
//! Three strategies (design §4):
//! - **OFFSET**: `limit`/`offset` pages in `order_by` order; stops on a short chunk.
//! - **ID_RANGE**: keyset pages, `id > last_id` ordered by id; no OFFSET anywhere, so the cost of a
//!   chunk does not grow with its depth.
//! - **parallel ID_RANGE** (`max_parallel > 1`): ranges planned from `count`, `min(id)`, `max(id)`
//!   (one request), up to `max_parallel` requests in flight, a range denser than planned continued
//!   by keyset, and chunks handed on in id order through a bounded reorder window, so the output is
//!   identical to a sequential ID_RANGE traversal.
//!
//! Every chunk carries the [`Cursor`] after it: a checkpoint that stores it resumes exactly there.
//!
//! The crate consumes rows through the [`RowSource`] seam (one method: run a select), which the
//! portal client implements through a thin adapter and tests implement in memory.

#![deny(missing_docs)]

mod error;
mod keyset;
mod offset;
mod parallel;
mod source;
mod spec;

pub use error::Error;
pub use source::{BoxError, RowSource};
pub use spec::{Cursor, Strategy, TraversalSpec};

use std::sync::Arc;

use serde_json::Value;

/// One chunk of rows, in output order, with the cursor that resumes right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The rows, each an array in the order of the spec's columns.
    pub rows: Vec<Vec<Value>>,
    /// Where a traversal resumed from this chunk's end continues.
    pub cursor: Cursor,
}

/// A running traversal. Create it with [`Traversal::start`], then call [`Traversal::next_chunk`]
/// until it returns `None`.
pub struct Traversal {
    inner: Inner,
    remaining: u64,
}

enum Inner {
    Offset(offset::OffsetTraversal),
    Keyset(keyset::KeysetTraversal),
    Parallel(parallel::ParallelTraversal),
}

impl Traversal {
    /// Validates `spec`, counts the rows still to traverse from `from` (one request; parallel
    /// ID_RANGE asks for `min(id)` and `max(id)` in the same request) and returns the traversal.
    pub async fn start(
        source: Arc<dyn RowSource>,
        spec: TraversalSpec,
        from: Cursor,
    ) -> Result<Traversal, Error> {
        spec.validate()?;
        match (spec.strategy, &from) {
            (Strategy::Offset, Cursor::Offset { .. }) | (Strategy::IdRange, Cursor::Id { .. }) => {}
            _ => {
                return Err(Error::Config {
                    reason: format!(
                        "a {} cursor cannot resume a {} traversal",
                        from.strategy(),
                        spec.strategy
                    ),
                });
            }
        }
        let (inner, remaining) = match (spec.strategy, from) {
            (Strategy::Offset, Cursor::Offset { offset }) => {
                let total = spec::count(source.as_ref(), &spec, spec.filter.clone()).await?;
                (
                    Inner::Offset(offset::OffsetTraversal::new(source, &spec, offset)?),
                    total.saturating_sub(offset),
                )
            }
            (Strategy::IdRange, Cursor::Id { after }) if spec.max_parallel <= 1 => {
                let filter = spec.filter_after(after)?;
                let remaining = spec::count(source.as_ref(), &spec, filter).await?;
                (Inner::Keyset(keyset::KeysetTraversal::new(source, spec, after)?), remaining)
            }
            (Strategy::IdRange, Cursor::Id { after }) => {
                let stats = spec::id_stats(source.as_ref(), &spec, after).await?;
                let remaining = stats.count;
                (
                    Inner::Parallel(parallel::ParallelTraversal::new(source, spec, after, stats)?),
                    remaining,
                )
            }
            _ => unreachable!("strategy and cursor were matched above"),
        };
        Ok(Traversal { inner, remaining })
    }

    /// How many rows matched from the start cursor on, counted when the traversal started. The
    /// table may change while it runs, so this is an estimate for progress, not a promise.
    pub fn remaining_rows(&self) -> u64 {
        self.remaining
    }

    /// The next chunk in output order, or `None` when the traversal is complete. May issue
    /// requests; a parallel traversal keeps up to `max_parallel` in flight.
    pub async fn next_chunk(&mut self) -> Result<Option<Chunk>, Error> {
        match &mut self.inner {
            Inner::Offset(t) => t.next_chunk().await,
            Inner::Keyset(t) => t.next_chunk().await,
            Inner::Parallel(t) => t.next_chunk(true).await,
        }
    }

    /// The next chunk that needs no new request: what requests already in flight complete, in
    /// output order. `None` once nothing more can be delivered without a request. This is how a
    /// pause lets in-flight work commit without sending anything new.
    pub async fn next_in_flight(&mut self) -> Result<Option<Chunk>, Error> {
        match &mut self.inner {
            // Sequential strategies have nothing in flight between calls.
            Inner::Offset(_) | Inner::Keyset(_) => Ok(None),
            Inner::Parallel(t) => t.next_chunk(false).await,
        }
    }
}

impl std::fmt::Debug for Traversal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let strategy = match self.inner {
            Inner::Offset(_) => "offset",
            Inner::Keyset(_) => "id-range",
            Inner::Parallel(_) => "id-range parallel",
        };
        f.debug_struct("Traversal")
            .field("strategy", &strategy)
            .field("remaining", &self.remaining)
            .finish()
    }
}

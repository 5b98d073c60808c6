//! Traversal strategies: turn (table, filter, chunk size) into an ordered sequence of chunks.
//!
//! The dump engine pulls chunks with [`Traversal::next_chunk`] and commits each one before asking for
//! the next, so a traversal is a pull-based state machine rather than a stream. It reads ahead by a
//! bounded amount only, so that fetching overlaps with the caller writing what it was handed:
//! memory is bounded by 2 chunks for the sequential strategies (the one handed on and the one in
//! flight) and by `max_parallel + 2` chunks for parallel ID_RANGE. Nothing is issued on its own:
//! requests are sent only from `next_chunk`, so a pause stops issuing them at once and
//! [`Traversal::next_in_flight`] drains what is already in flight.
//!
//! Three strategies (design §4):
//! - **OFFSET**: `limit`/`offset` pages in `order_by` order; stops on a short chunk. One request of
//!   read-ahead.
//! - **ID_RANGE**: keyset pages, `id > last_id` ordered by id; no OFFSET anywhere, so the cost of a
//!   chunk does not grow with its depth. One request of read-ahead.
//! - **parallel ID_RANGE** (`max_parallel > 1`): ranges of exactly one chunk, cut from a scan of
//!   the ids alone that runs ahead of the fetches, up to `max_parallel` requests in flight, a range
//!   that grew since the scan continued by keyset, and chunks handed on in id order through a
//!   bounded reorder window, so the output is identical to a sequential ID_RANGE traversal.
//!
//! A caller with no preference asks for [`StrategyChoice::Auto`] and resolves it per table
//! ([`StrategyChoice::resolve`]): ID_RANGE where the table can be walked by id, OFFSET elsewhere.
//! A traversal always runs a resolved [`Strategy`].
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
mod readahead;
mod source;
mod spec;

pub use error::{Error, Invalid};
pub use source::{BoxError, RowSource};
pub use spec::{Cursor, Strategy, StrategyChoice, TraversalSpec, UnknownStrategy};

use std::sync::Arc;

use serde_json::Value;

use crate::readahead::ReadAhead;

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
    Offset(ReadAhead<offset::OffsetPages>),
    Keyset(ReadAhead<keyset::KeysetPages>),
    Parallel(parallel::ParallelTraversal),
}

impl Traversal {
    /// Validates `spec`, counts the rows still to traverse from `from` (one request; parallel
    /// ID_RANGE sends the first page of its id scan alongside) and returns the traversal.
    pub async fn start(
        source: Arc<dyn RowSource>,
        spec: TraversalSpec,
        from: Cursor,
    ) -> Result<Traversal, Error> {
        spec.validate()?;
        match (spec.strategy, &from) {
            (Strategy::Offset, Cursor::Offset { .. }) | (Strategy::IdRange, Cursor::Id { .. }) => {}
            _ => {
                return Err(Error::Config(Invalid::CursorMismatch {
                    cursor: from.strategy(),
                    strategy: spec.strategy,
                }));
            }
        }
        let (inner, remaining) = match (spec.strategy, from) {
            (Strategy::Offset, Cursor::Offset { offset }) => {
                let total = spec::count(source.as_ref(), &spec, spec.filter.clone()).await?;
                let pages = offset::OffsetPages::new(&spec, offset)?;
                (
                    Inner::Offset(ReadAhead::new(source, spec.chunk_size, pages)),
                    total.saturating_sub(offset),
                )
            }
            (Strategy::IdRange, Cursor::Id { after }) if spec.max_parallel <= 1 => {
                let filter = spec.filter_after(after)?;
                let remaining = spec::count(source.as_ref(), &spec, filter).await?;
                let chunk_size = spec.chunk_size;
                let pages = keyset::KeysetPages::new(spec, after)?;
                (Inner::Keyset(ReadAhead::new(source, chunk_size, pages)), remaining)
            }
            (Strategy::IdRange, Cursor::Id { after }) => {
                let filter = spec.filter_after(after)?;
                let count_spec = spec.clone();
                let counting = Arc::clone(&source);
                // The id scan's first page is already on its way while the count runs.
                let parallel = parallel::ParallelTraversal::new(source, spec, after)?;
                let remaining = spec::count(counting.as_ref(), &count_spec, filter).await?;
                (Inner::Parallel(parallel), remaining)
            }
            _ => unreachable!("strategy and cursor were matched above"),
        };
        Ok(Traversal { inner, remaining })
    }

    /// Fetches the one page a traversal from `from` asks for first, and nothing else: no count,
    /// no read-ahead, no id scan. The rows are as [`Traversal::next_chunk`] hands them on (an id
    /// fetched only to walk by is stripped). For parallel ID_RANGE it is the sequential keyset page
    /// from `from`: the columns, filter and order of each of its ranges, bounded by the chunk size
    /// instead of an upper id. What one request of a traversal costs is measured with it.
    pub async fn first_page(
        source: &dyn RowSource,
        spec: &TraversalSpec,
        from: Cursor,
    ) -> Result<Vec<Vec<Value>>, Error> {
        spec.validate()?;
        let rows = match (spec.strategy, from) {
            (Strategy::Offset, Cursor::Offset { offset }) => {
                let mut pages = offset::OffsetPages::new(spec, offset)?;
                let (query, what) = readahead::Pager::request(&pages)?;
                let rows = spec::fetch(source, &query, &what).await?;
                readahead::Pager::accept(&mut pages, rows, &what)?
            }
            (Strategy::IdRange, Cursor::Id { after }) => {
                let mut pages = keyset::KeysetPages::new(spec.clone(), after)?;
                let (query, what) = readahead::Pager::request(&pages)?;
                let rows = spec::fetch(source, &query, &what).await?;
                readahead::Pager::accept(&mut pages, rows, &what)?
            }
            (strategy, cursor) => {
                return Err(Error::Config(Invalid::CursorMismatch {
                    cursor: cursor.strategy(),
                    strategy,
                }));
            }
        };
        Ok(rows.map(|chunk| chunk.rows).unwrap_or_default())
    }

    /// How many rows matched from the start cursor on, counted when the traversal started. The
    /// table may change while it runs, so this is an estimate for progress, not a promise.
    pub fn remaining_rows(&self) -> u64 {
        self.remaining
    }

    /// The next chunk in output order, or `None` when the traversal is complete. May issue
    /// requests, which keep running after it returns: a sequential traversal handing on a full
    /// chunk has already sent the request for the next one, and a parallel traversal keeps up to
    /// `max_parallel` in flight. Dropping the traversal aborts them.
    ///
    /// Cancel-safe: if the returned future is dropped before it completes, the requests it was
    /// waiting for stay in flight and the next call picks them up where it left off.
    pub async fn next_chunk(&mut self) -> Result<Option<Chunk>, Error> {
        match &mut self.inner {
            Inner::Offset(t) => t.next_chunk(true).await,
            Inner::Keyset(t) => t.next_chunk(true).await,
            Inner::Parallel(t) => t.next_chunk(true).await,
        }
    }

    /// The next chunk that needs no new request: what requests already in flight complete, in
    /// output order. `None` once nothing more can be delivered without a request. This is how a
    /// pause lets in-flight work commit without sending anything new; the next
    /// [`Traversal::next_chunk`] issues requests again and continues right after the last chunk
    /// delivered.
    pub async fn next_in_flight(&mut self) -> Result<Option<Chunk>, Error> {
        match &mut self.inner {
            Inner::Offset(t) => t.next_chunk(false).await,
            Inner::Keyset(t) => t.next_chunk(false).await,
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

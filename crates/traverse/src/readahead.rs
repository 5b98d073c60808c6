//! One request of read-ahead for the sequential strategies.
//!
//! A sequential traversal is a walk over pages, each request built from where the previous page
//! ended ([`Pager`]). [`ReadAhead`] runs that walk one request ahead of the caller: when it hands
//! on a full page it has already issued the request for the next one, so fetching page k+1 overlaps
//! with the caller writing page k.
//!
//! **Invariant:** at most one request is in flight, and it is always the one for the page right
//! after the last page handed on, so the pager's state never moves while it runs. Memory is
//! therefore bounded by two chunks: the one the caller holds and the one being fetched. The request
//! runs in a task owned by a [`JoinSet`], so dropping the traversal aborts it, and an await on it
//! that is dropped (the caller's `select!` cancelling) leaves it in flight for the next call.

use std::sync::Arc;

use iptvportal_query::Select;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::spec::fetch;
use crate::{Chunk, Error, RowSource};

type Rows = Vec<Vec<Value>>;

/// A sequential walk over pages: what to ask for next, and what a page answered means.
pub(crate) trait Pager {
    /// The request for the page after everything accepted so far, and how errors name it.
    fn request(&self) -> Result<(Select, String), Error>;

    /// Takes the page the last [`Pager::request`] returned and moves past it. `None` for an empty
    /// page.
    fn accept(&mut self, rows: Rows, what: &str) -> Result<Option<Chunk>, Error>;
}

/// A [`Pager`] run with one request in flight ahead of the caller.
pub(crate) struct ReadAhead<P> {
    pager: P,
    source: Arc<dyn RowSource>,
    chunk_size: u64,
    /// The request in flight, if any: at most one.
    task: JoinSet<Result<Rows, Error>>,
    /// How errors name the request in flight.
    what: String,
    /// A short page came back: there is nothing after it.
    done: bool,
}

impl<P: Pager> ReadAhead<P> {
    pub(crate) fn new(source: Arc<dyn RowSource>, chunk_size: u64, pager: P) -> Self {
        ReadAhead {
            pager,
            source,
            chunk_size,
            task: JoinSet::new(),
            what: String::new(),
            done: false,
        }
    }

    /// The next chunk, or `None` when the walk is complete. With `issue` false no new request is
    /// sent: only the one in flight, if any, can complete (used to drain on pause).
    pub(crate) async fn next_chunk(&mut self, issue: bool) -> Result<Option<Chunk>, Error> {
        if self.task.is_empty() {
            if self.done || !issue {
                return Ok(None);
            }
            self.issue()?;
        }
        // `join_next` is cancel-safe, and nothing below awaits: a caller that stops waiting here
        // finds the same request in flight on its next call.
        let joined = self.task.join_next().await.expect("a request is in flight");
        let rows = joined.map_err(|e| Error::Unexpected {
            what: self.what.clone(),
            detail: format!("a request task failed: {e}"),
        })??;
        // A short page is the last one: no extra empty request to find the end.
        let full = rows.len() as u64 >= self.chunk_size;
        let chunk = self.pager.accept(rows, &self.what)?;
        self.done = !full;
        if issue && !self.done {
            self.issue()?;
        }
        Ok(chunk)
    }

    fn issue(&mut self) -> Result<(), Error> {
        let (query, what) = self.pager.request()?;
        let source = Arc::clone(&self.source);
        self.what.clone_from(&what);
        self.task.spawn(async move { fetch(source.as_ref(), &query, &what).await });
        Ok(())
    }
}

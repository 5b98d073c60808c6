//! The one error type of the traversal layer.

use crate::BoxError;

/// What can stop a traversal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec cannot be traversed as given (chunk size 0, no id column for ID_RANGE, …).
    #[error("invalid traversal: {reason}")]
    Config {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A query could not be built (an invalid identifier in the spec).
    #[error(transparent)]
    Query(#[from] iptvportal_query::Error),
    /// The row source failed on a request (after its own retries).
    #[error("{what}: {source}")]
    Source {
        /// Which request, e.g. `fetching rows at offset 5000`.
        what: String,
        /// The backend's error, unchanged.
        #[source]
        source: BoxError,
    },
    /// The source answered something a traversal cannot use (a count that is not a number, an id
    /// that is not an integer, ids out of order).
    #[error("unexpected response while {what}: {detail}")]
    Unexpected {
        /// Which request.
        what: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

impl Error {
    /// The backend's error, when the source failed.
    pub fn source_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Error::Source { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

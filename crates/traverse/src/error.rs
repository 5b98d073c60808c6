//! The one error type of the traversal layer.

use crate::BoxError;

/// What can stop a traversal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec cannot be traversed as given (chunk size 0, an order ID_RANGE cannot walk, …).
    #[error("invalid traversal: {0}")]
    Config(Invalid),
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

/// Why a [`TraversalSpec`](crate::TraversalSpec) cannot be traversed from a cursor: the one
/// definition of these rules, which the dump's own validation applies before any request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// The chunk size is 0.
    #[error("chunk size must be at least 1")]
    ZeroChunkSize,
    /// The parallelism is 0.
    #[error("parallelism must be at least 1")]
    ZeroParallel,
    /// ID_RANGE walks ascending id; another order was asked for.
    #[error("id-range always walks ascending {id_column}")]
    IdRangeOrder {
        /// The id column.
        id_column: String,
    },
    /// The cursor belongs to another strategy than the spec's.
    #[error("a {cursor} cursor cannot resume a {strategy} traversal")]
    CursorMismatch {
        /// The cursor's strategy.
        cursor: crate::Strategy,
        /// The spec's strategy.
        strategy: crate::Strategy,
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

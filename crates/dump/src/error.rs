//! The one error type of the dump orchestrator.

use std::path::PathBuf;

use iptvportal_checkpoint::ShapeDifference;

/// Why a table's dump stopped. Every message starts with the table and says what to do; the
/// checkpoint and the committed output are intact in every case, so a later run resumes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option is invalid. Nothing was sent and no file was touched.
    #[error("{table}: {reason}")]
    Config {
        /// The table.
        table: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The output directory cannot be created or written.
    #[error("{table}: cannot write to the output directory {}: {source}; choose another --out or fix its permissions", dir.display())]
    OutputDir {
        /// The table.
        table: String,
        /// The directory.
        dir: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint exists for other options than the ones given.
    #[error(
        "{table}: the checkpoint in {} was written with other options ({}); rerun with the same options to resume, or start over with --reset",
        dir.display(),
        differences.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    ShapeMismatch {
        /// The table.
        table: String,
        /// The output directory.
        dir: PathBuf,
        /// What differs.
        differences: Vec<ShapeDifference>,
    },
    /// Fetching rows failed: a query error (at once) or a transient failure that outlasted the
    /// retries.
    #[error("{table}: {source}")]
    Fetch {
        /// The table.
        table: String,
        /// The traversal's error, which carries the portal's.
        #[source]
        source: Box<iptvportal_traverse::Error>,
    },
    /// Writing the output failed (a full disk, a value that does not fit its column, damaged
    /// output on resume).
    #[error("{table}: {source}")]
    Sink {
        /// The table.
        table: String,
        /// The sink's error.
        #[source]
        source: Box<iptvportal_sink::Error>,
    },
    /// Reading or writing the checkpoint failed.
    #[error("{table}: {source}")]
    Checkpoint {
        /// The table.
        table: String,
        /// The store's error.
        #[source]
        source: iptvportal_checkpoint::Error,
    },
    /// Two configurations of one `dump_many` call would write the same files.
    #[error("{first} and {second} would both write {}; give them different output directories", file.display())]
    Conflict {
        /// The first table.
        first: String,
        /// The second table.
        second: String,
        /// A file both would write.
        file: PathBuf,
    },
    /// The dump was cancelled; what was committed is kept and a rerun resumes.
    #[error("{table}: cancelled after {rows} rows; run the same command again to resume")]
    Cancelled {
        /// The table.
        table: String,
        /// Rows committed so far.
        rows: u64,
    },
}

impl Error {
    /// The table the error is about, if it is about one.
    pub fn table(&self) -> Option<&str> {
        match self {
            Error::Config { table, .. }
            | Error::OutputDir { table, .. }
            | Error::ShapeMismatch { table, .. }
            | Error::Fetch { table, .. }
            | Error::Sink { table, .. }
            | Error::Checkpoint { table, .. }
            | Error::Cancelled { table, .. } => Some(table),
            Error::Conflict { .. } => None,
        }
    }

    /// Whether the portal's own error (after the client's retries) was transient, i.e. a later run
    /// may well succeed unchanged.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Fetch { source, .. } => source
                .source_error()
                .and_then(|e| e.downcast_ref::<iptvportal_client::Error>())
                .is_some_and(iptvportal_client::Error::is_retryable),
            _ => false,
        }
    }
}

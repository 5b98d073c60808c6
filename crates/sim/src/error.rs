//! The one error type of the simulator library.

use std::path::PathBuf;

/// Everything that can stop the simulator from starting or serving.
///
/// Errors a *client* causes (a bad select, a wrong password) are not here: they are answered on the
/// wire as JSON-RPC errors, and the simulator keeps serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value out of range or naming something that does not exist.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The database file exists but was not written by the simulator, so it is not ours to replace.
    #[error("refusing to overwrite {}: not a simulator database", path.display())]
    ForeignDatabase {
        /// The file.
        path: PathBuf,
    },
    /// A file [`mutate`](crate::mutate) cannot change: absent, or not a simulator database.
    #[error("cannot mutate {}: {reason}", path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// SQLite failed while generating or opening the database.
    #[error("database {}: {source}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file system operation failed (removing a stale database, binding the listener).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task (database generation) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

//! The one error type of the checkpoint layer.

use std::path::PathBuf;

/// What can go wrong reading or writing a checkpoint. Each message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing, syncing or renaming a state file failed.
    #[error("checkpoint {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A state file that is not a valid state (truncated by hand, edited, another program's file).
    #[error(
        "checkpoint {} is unreadable ({detail})",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A state file written by a newer version of this tool.
    #[error(
        "checkpoint {} has format version {found}, newer than this tool's {supported}",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// Another run holds the table: one writer per table.
    #[error(
        "{table} in {place} is being written by another run{}",
        pid.map_or_else(String::new, |pid| format!(" (pid {pid})"))
    )]
    Locked {
        /// The table.
        table: String,
        /// Where its output is (the directory).
        place: String,
        /// The other run's process id, when it recorded it.
        pid: Option<u32>,
    },
    /// The checkpoint lives with the data on object storage, and reading or committing it there
    /// failed, or the bucket does not hold what it names. The reason is one line that names the
    /// bucket and what to do (never a credential).
    #[error("{reason}")]
    Remote {
        /// What went wrong, and how to fix it.
        reason: String,
    },
}

impl Error {
    /// An I/O failure on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
}

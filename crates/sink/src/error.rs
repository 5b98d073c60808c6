//! The one error type of the sink crate.

use std::fmt;
use std::path::PathBuf;

use iptvportal_catalog::ColumnType;

/// Identifies the row a [`Error::TypeMismatch`] is about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RowId {
    /// The row's `id` value as JSON (`42`), when the schema has an `id` column: what an operator
    /// can look up in the portal.
    Id(String),
    /// The row's 1-based number in the output, when there is no `id` column to name it by.
    Number(u64),
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowId::Id(v) => write!(f, "id {v}"),
            RowId::Number(n) => write!(f, "row {n}"),
        }
    }
}

/// Everything that can go wrong while encoding, committing or resuming an output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing, syncing, renaming or removing a file failed.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// A value does not fit its column's type (or is null in a non-nullable column).
    ///
    /// The sink never widens or truncates to make a value fit: the dump stops here instead.
    #[error("table {table}, column {column}, {row_id}: expected {}, got {value}", describe(*.expected, *.nullable))]
    TypeMismatch {
        /// The table being written.
        table: String,
        /// The column the value is in.
        column: String,
        /// Which row it is.
        row_id: RowId,
        /// The column's type.
        expected: ColumnType,
        /// Whether the column allows null (a null in a non-nullable column is a mismatch too).
        nullable: bool,
        /// The offending value as JSON, shortened when long.
        value: String,
    },

    /// A row has a different number of values than the schema has columns.
    #[error("table {table}, {row_id}: expected {expected} values, got {found}")]
    RowWidth {
        /// The table being written.
        table: String,
        /// Which row it is.
        row_id: RowId,
        /// The number of columns in the schema.
        expected: usize,
        /// The number of values the row holds.
        found: usize,
    },

    /// A requested column is not in the catalog's description of the table.
    #[error("table {table} has no column {column}")]
    UnknownColumn {
        /// The table.
        table: String,
        /// The column that was asked for.
        column: String,
    },

    /// The sink's configuration is inconsistent (e.g. gzip with Parquet).
    #[error("invalid sink configuration: {message}")]
    Config {
        /// What is wrong, in words.
        message: String,
    },

    /// The output on disk does not match the checkpoint it is being resumed from.
    #[error("cannot resume {}: {reason}; the output was damaged or removed", path.display())]
    ResumeMismatch {
        /// The output file that does not match.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },

    /// A finished output is no longer what its checkpoint says it wrote (truncated, extended,
    /// removed, or a part added).
    #[error("{} changed since it was written: {reason}", path.display())]
    Changed {
        /// The file that does not match (or, for a part that is missing, the part's name).
        path: PathBuf,
        /// What does not match.
        reason: String,
    },

    /// The Parquet or Arrow writer failed.
    #[error("parquet error on {}: {source}", path.display())]
    Parquet {
        /// The part file being written.
        path: PathBuf,
        /// The writer's error, boxed so that the parquet crate's version is not part of our API.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// `integer`, or `non-null integer` for a column that refuses null.
fn describe(ty: ColumnType, nullable: bool) -> String {
    if nullable { ty.to_string() } else { format!("non-null {ty}") }
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    /// Wraps a Parquet or Arrow error with the part file it happened on.
    pub(crate) fn parquet(
        path: impl Into<PathBuf>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Parquet { path: path.into(), source: Box::new(source) }
    }

    /// Whether the error is about the data (a value or row that does not fit the schema), as
    /// opposed to the machine (disk, configuration, damaged output). Retrying does not help either
    /// kind; the distinction tells the operator where to look.
    pub fn is_data_error(&self) -> bool {
        matches!(self, Error::TypeMismatch { .. } | Error::RowWidth { .. })
    }
}

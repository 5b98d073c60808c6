//! The one error type of the dump orchestrator, and the typed reasons a configuration is refused.
//!
//! Messages say what happened in the orchestrator's own words: a library user never saw the
//! command line, so no message names a flag. What to do about an error is the caller's to say
//! (the CLI matches on the variants below and adds its flags).

use std::fmt;
use std::path::PathBuf;

use iptvportal_checkpoint::ShapeDifference;

/// Why a table's dump stopped. Every message starts with the table; the checkpoint and the
/// committed output are intact in every case, so a later run resumes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option is invalid. Nothing was sent and no file was touched.
    #[error("{table}: {invalid}")]
    Config {
        /// The table.
        table: String,
        /// What is wrong.
        invalid: Invalid,
    },
    /// The output directory cannot be created or written.
    #[error("{table}: cannot write to the output directory {}: {source}", dir.display())]
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
        "{table}: the checkpoint in {} was written with other options ({})",
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
    /// Another run is writing the table (one writer per table); nothing was touched.
    #[error(
        "{table} in {place} is being written by another run{}",
        pid.map_or_else(String::new, |pid| format!(" (pid {pid})"))
    )]
    Locked {
        /// The table.
        table: String,
        /// Where its output is.
        place: String,
        /// The other run's process id, where the system tells it.
        pid: Option<u32>,
    },
    /// Two configurations of one `dump_many` call would write the same files.
    #[error("{first} and {second} would both write {}", file.display())]
    Conflict {
        /// The first table.
        first: String,
        /// The second table.
        second: String,
        /// A file both would write.
        file: PathBuf,
    },
    /// A sync's runs cannot go on as asked; the runs committed are untouched.
    #[error("{table}: {problem}")]
    Sync {
        /// The table.
        table: String,
        /// What is wrong.
        problem: crate::sync::SyncProblem,
    },
    /// The dump was cancelled; what was committed is kept and a later run resumes.
    #[error("{table}: cancelled after {rows} rows")]
    Cancelled {
        /// The table.
        table: String,
        /// Rows committed so far.
        rows: u64,
    },
}

impl Error {
    /// The error of taking `table`'s lock: another run holds it, or the store failed.
    pub(crate) fn of_lock(table: &str, source: iptvportal_checkpoint::Error) -> Error {
        match source {
            iptvportal_checkpoint::Error::Locked { table, place, pid } => {
                Error::Locked { table, place, pid }
            }
            source => Error::Checkpoint { table: table.to_owned(), source },
        }
    }

    /// The filter a checkpoint or a sync record holds as JSONSQL text, read back.
    pub(crate) fn parse_filter(
        table: &str,
        text: Option<&str>,
    ) -> Result<Option<iptvportal_query::Expr>, Error> {
        let Some(text) = text else { return Ok(None) };
        let invalid = |reason: String| Error::Config {
            table: table.to_owned(),
            invalid: crate::Invalid::Filter(reason),
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        iptvportal_query::Expr::from_json(&value).map(Some).map_err(|e| invalid(e.to_string()))
    }

    /// The table the error is about, if it is about one.
    pub fn table(&self) -> Option<&str> {
        match self {
            Error::Config { table, .. }
            | Error::OutputDir { table, .. }
            | Error::ShapeMismatch { table, .. }
            | Error::Fetch { table, .. }
            | Error::Sink { table, .. }
            | Error::Checkpoint { table, .. }
            | Error::Locked { table, .. }
            | Error::Sync { table, .. }
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

/// An option of [`DumpConfig`](crate::DumpConfig): which one an [`Invalid`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Setting {
    /// `table`.
    Table,
    /// `chunk_size`.
    ChunkSize,
    /// `strategy`.
    Strategy,
    /// `compress`.
    Compress,
    /// `compression_level`.
    CompressionLevel,
    /// `resume_offset`.
    ResumeOffset,
    /// `order_by`.
    OrderBy,
    /// `where_clause`.
    WhereClause,
    /// `columns`.
    Columns,
    /// `exclude_columns`.
    ExcludeColumns,
    /// `batch_timeout`.
    BatchTimeout,
    /// `retry_backoff`.
    RetryBackoff,
    /// `max_parallel`.
    MaxParallel,
    /// `max_retries`.
    MaxRetries,
    /// `text_part_rows`.
    TextPartRows,
}

/// What is wrong with a [`DumpConfig`](crate::DumpConfig), found before any request or file.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Invalid {
    /// The table name is not an identifier.
    TableName,
    /// The traversal refuses the options (chunk size or parallelism 0, an order other than
    /// ascending id for ID_RANGE); its reason says which.
    Traversal(iptvportal_traverse::Invalid),
    /// The request timeout is zero.
    ZeroTimeout,
    /// Text parts of zero rows.
    ZeroPartRows,
    /// The backoff factor is below 1 or not a number.
    RetryBackoff(f64),
    /// gzip was asked for Parquet, which is always compressed (zstd).
    CompressParquet,
    /// The gzip level is out of range.
    GzipLevel(u32),
    /// A gzip level was given with compression off.
    LevelWithoutCompress,
    /// A resume offset was given for a strategy other than OFFSET.
    ResumeOffsetNeedsOffset,
    /// The column list is empty.
    NoColumns,
    /// A column name is not an identifier.
    ColumnName(String),
    /// A column is listed twice.
    DuplicateColumn(String),
    /// Both a column list and columns to exclude are given.
    ColumnsAndExclude,
    /// Columns to exclude are given for a table the catalog does not know, whose columns are
    /// unknown.
    ExcludeUnknownTable,
    /// Every column of the table is excluded.
    ExcludesEveryColumn,
    /// The catalog does not know the column for this table.
    UnknownColumn {
        /// The column asked for.
        column: String,
        /// The table.
        table: String,
        /// The columns the catalog knows, in order.
        known: Vec<String>,
    },
    /// The order is not `col [ASC|DESC]`, several separated by commas.
    OrderBy {
        /// The order as given.
        text: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The order names a column the catalog does not know.
    UnknownOrderColumn(String),
    /// ID_RANGE was asked for a table without an id column.
    NoIdColumn(String),
    /// The filter cannot be turned into JSONSQL.
    Filter(String),
    /// A filter's value is not of its column's type in the catalog (a boolean for a timestamp,
    /// text for an integer), or a pattern lookup is on a column that is not text: the query
    /// crate's [`FilterType`](iptvportal_query::Error::FilterType) or
    /// [`PatternNeedsText`](iptvportal_query::Error::PatternNeedsText).
    FilterValue(iptvportal_query::Error),
    /// A count above its bound (chunk size, parallelism, retries), refused before any request:
    /// the bounds are [`DumpConfig`](crate::DumpConfig)'s `MAX_*` constants.
    TooLarge {
        /// The option.
        setting: Setting,
        /// The value given.
        value: u64,
        /// The most it may be.
        max: u64,
    },
    /// The request timeout is longer than
    /// [`DumpConfig::MAX_BATCH_TIMEOUT`](crate::DumpConfig::MAX_BATCH_TIMEOUT).
    LongTimeout(std::time::Duration),
}

impl Invalid {
    /// The option that is wrong.
    pub fn setting(&self) -> Setting {
        use iptvportal_traverse::Invalid as T;
        match self {
            Invalid::TableName => Setting::Table,
            Invalid::Traversal(T::ZeroChunkSize) => Setting::ChunkSize,
            Invalid::Traversal(T::ZeroParallel) => Setting::MaxParallel,
            Invalid::ZeroTimeout | Invalid::LongTimeout(_) => Setting::BatchTimeout,
            Invalid::ZeroPartRows => Setting::TextPartRows,
            Invalid::TooLarge { setting, .. } => *setting,
            Invalid::RetryBackoff(_) => Setting::RetryBackoff,
            Invalid::CompressParquet => Setting::Compress,
            Invalid::GzipLevel(_) | Invalid::LevelWithoutCompress => Setting::CompressionLevel,
            Invalid::ResumeOffsetNeedsOffset => Setting::ResumeOffset,
            Invalid::NoColumns
            | Invalid::ColumnName(_)
            | Invalid::DuplicateColumn(_)
            | Invalid::UnknownColumn { .. } => Setting::Columns,
            Invalid::ColumnsAndExclude
            | Invalid::ExcludeUnknownTable
            | Invalid::ExcludesEveryColumn => Setting::ExcludeColumns,
            Invalid::Traversal(T::IdRangeOrder { .. })
            | Invalid::OrderBy { .. }
            | Invalid::UnknownOrderColumn(_) => Setting::OrderBy,
            Invalid::Traversal(_) | Invalid::NoIdColumn(_) => Setting::Strategy,
            Invalid::Filter(_) | Invalid::FilterValue(_) => Setting::WhereClause,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::TableName => f.write_str("a table name has only letters, digits and _"),
            Invalid::Traversal(reason) => reason.fmt(f),
            Invalid::ZeroTimeout => f.write_str("the request timeout must be more than 0 seconds"),
            Invalid::ZeroPartRows => f.write_str("a part must hold at least 1 row"),
            Invalid::RetryBackoff(factor) => write!(
                f,
                "retry backoff must be a number from 1 to {}, got {factor}",
                crate::DumpConfig::MAX_RETRY_BACKOFF
            ),
            Invalid::LongTimeout(timeout) => write!(
                f,
                "the request timeout must be at most {} seconds, got {}",
                crate::DumpConfig::MAX_BATCH_TIMEOUT.as_secs(),
                timeout.as_secs_f64()
            ),
            Invalid::TooLarge { setting, value, max } => {
                let what = match setting {
                    Setting::ChunkSize => "the chunk size",
                    Setting::MaxParallel => "the parallelism",
                    Setting::MaxRetries => "the retries of a request",
                    Setting::TextPartRows => "the rows per part",
                    _ => "the value",
                };
                write!(f, "{what} must be at most {max}, got {value}")
            }
            Invalid::FilterValue(reason) => reason.fmt(f),
            Invalid::CompressParquet => f.write_str(
                "gzip applies to jsonl, csv and json; parquet files are always compressed (zstd)",
            ),
            Invalid::GzipLevel(level) => {
                let levels = iptvportal_sink::Compression::GZIP_LEVELS;
                write!(f, "gzip level must be {} to {}, got {level}", levels.start(), levels.end())
            }
            Invalid::LevelWithoutCompress => f.write_str("a gzip level needs compression on"),
            Invalid::ResumeOffsetNeedsOffset => {
                f.write_str("a resume offset needs the offset strategy; id-range resumes by id")
            }
            Invalid::NoColumns => f.write_str("the column list is empty"),
            Invalid::ColumnName(column) => write!(f, "invalid column name {column:?}"),
            Invalid::DuplicateColumn(column) => write!(f, "column {column} is listed twice"),
            Invalid::ColumnsAndExclude => {
                f.write_str("both a column list and columns to exclude are given")
            }
            Invalid::ExcludeUnknownTable => f.write_str(
                "the catalog does not know the columns of this table, so none can be excluded",
            ),
            Invalid::ExcludesEveryColumn => f.write_str("every column is excluded"),
            Invalid::UnknownColumn { column, table, known } => {
                write!(f, "unknown column {column} (columns of {table}: {})", known.join(", "))
            }
            Invalid::OrderBy { text, reason } => write!(f, "bad order by {text:?}: {reason}"),
            Invalid::UnknownOrderColumn(column) => {
                write!(f, "cannot order by unknown column {column}")
            }
            Invalid::NoIdColumn(table) => {
                write!(f, "{table} has no id column, so it cannot be walked by id range")
            }
            Invalid::Filter(reason) => write!(f, "the filter cannot be sent: {reason}"),
        }
    }
}

/// Something the user should know about a dump that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// The table is not in the catalog and no columns were given, so the output names its
    /// columns by position (`col1`, `col2`, …).
    ColumnsByPosition {
        /// The table.
        table: String,
    },
    /// The up-front count and the rows dumped disagree: the table changed during the dump.
    CountMismatch {
        /// The table.
        table: String,
        /// The strategy that ran: OFFSET paging can skip or repeat rows when the table changes.
        strategy: iptvportal_traverse::Strategy,
        /// Rows counted when the run started (plus rows done before it).
        counted: u64,
        /// Rows in the finished output.
        dumped: u64,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::ColumnsByPosition { table } => write!(
                f,
                "{table} is not in the catalog and no columns were given: columns are named by position (col1, col2, …)"
            ),
            Warning::CountMismatch { table, strategy, counted, dumped } => {
                write!(
                    f,
                    "{table}: counted {counted} rows up front but dumped {dumped}; the table changed during the dump"
                )?;
                if *strategy == iptvportal_traverse::Strategy::Offset {
                    f.write_str(", and OFFSET paging can skip or repeat rows when it does")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iptvportal_traverse::Invalid as T;

    #[test]
    fn each_refusal_names_the_setting_it_is_about() {
        let cases = [
            (Invalid::Traversal(T::ZeroChunkSize), Setting::ChunkSize),
            (Invalid::Traversal(T::ZeroParallel), Setting::MaxParallel),
            (Invalid::Traversal(T::IdRangeOrder { id_column: "id".into() }), Setting::OrderBy),
            (Invalid::NoIdColumn("t".into()), Setting::Strategy),
            (Invalid::GzipLevel(10), Setting::CompressionLevel),
            (Invalid::CompressParquet, Setting::Compress),
            (Invalid::ResumeOffsetNeedsOffset, Setting::ResumeOffset),
            (Invalid::DuplicateColumn("a".into()), Setting::Columns),
            (Invalid::ColumnsAndExclude, Setting::ExcludeColumns),
            (Invalid::ExcludesEveryColumn, Setting::ExcludeColumns),
            (Invalid::Filter("x".into()), Setting::WhereClause),
            (
                Invalid::TooLarge { setting: Setting::ChunkSize, value: 2_000_000, max: 1_000_000 },
                Setting::ChunkSize,
            ),
            (Invalid::LongTimeout(std::time::Duration::from_secs(4000)), Setting::BatchTimeout),
        ];
        for (invalid, setting) in cases {
            assert_eq!(invalid.setting(), setting, "{invalid}");
        }
        assert_eq!(Invalid::GzipLevel(10).to_string(), "gzip level must be 0 to 9, got 10");
    }
}

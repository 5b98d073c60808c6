//! `DumpConfig`: every option of one table's dump, with the seed's defaults, and its validation.

use std::path::PathBuf;
use std::time::Duration;

use iptvportal_catalog::Table;
use iptvportal_client::RetryPolicy;
use iptvportal_query::{Expr, OrderBy, is_identifier};
use iptvportal_sink::{Compression, Format, ParquetOptions, Schema, SinkSpec};
use iptvportal_traverse::{Strategy, TraversalSpec};

use crate::{Error, Invalid};

/// The output format of a dump (the seed's `DumpFormat`).
pub type DumpFormat = Format;
/// The traversal strategy of a dump (the seed's `DumpStrategy`).
pub type DumpStrategy = Strategy;

/// Everything about one table's dump. Build it with [`DumpConfig::new`] and the builder methods;
/// the defaults are the seed's.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DumpConfig {
    /// The table to export.
    pub table: String,
    /// Where the output files and the checkpoint go.
    pub output_dir: PathBuf,
    /// Rows per request (default 5000).
    pub chunk_size: u64,
    /// OFFSET (default) or ID_RANGE.
    pub strategy: DumpStrategy,
    /// JSONL (default), CSV, JSON or Parquet.
    pub format: DumpFormat,
    /// gzip the text formats (default off).
    pub compress: bool,
    /// The gzip level when `compress` is on; the sink's measured default when `None`.
    pub compression_level: Option<u32>,
    /// Continue from the checkpoint when there is one (default on). Off starts over.
    pub resume: bool,
    /// Start over from this row (OFFSET only), discarding any checkpoint.
    pub resume_offset: Option<u64>,
    /// Sort order for OFFSET, e.g. `"id ASC"` (default: ascending id).
    pub order_by: Option<String>,
    /// The filter, AND-ed into every request.
    pub where_clause: Option<Expr>,
    /// The columns to export, in order (default: every column).
    pub columns: Option<Vec<String>>,
    /// Timeout of one request (default 30 s).
    pub batch_timeout: Duration,
    /// Retries of one chunk's request for transient failures (default 3; the budget refills for
    /// every chunk).
    pub max_retries: u32,
    /// Backoff factor: the n-th retry waits `retry_backoff^n` seconds, with jitter (default 1.5).
    pub retry_backoff: f64,
    /// Row requests in flight at once for ID_RANGE (default 3; 1 is sequential); above 1 the
    /// traversal also reads ids ahead, one request at a time, to plan its ranges.
    pub max_parallel: usize,
    /// Layout of Parquet part files.
    pub parquet: ParquetOptions,
}

impl DumpConfig {
    /// Rows per request unless set: the traversal's (the seed's 5000).
    pub const DEFAULT_CHUNK_SIZE: u64 = TraversalSpec::DEFAULT_CHUNK_SIZE;
    /// The strategy unless set.
    pub const DEFAULT_STRATEGY: DumpStrategy = Strategy::Offset;
    /// The format unless set.
    pub const DEFAULT_FORMAT: DumpFormat = Format::Jsonl;
    /// The timeout of one request unless set, in seconds.
    pub const DEFAULT_BATCH_TIMEOUT_SECS: u64 = 30;
    /// Retries of one chunk's request unless set: the client's.
    pub const DEFAULT_MAX_RETRIES: u32 = RetryPolicy::DEFAULT_MAX_RETRIES;
    /// The backoff factor unless set: the client's.
    pub const DEFAULT_RETRY_BACKOFF: f64 = RetryPolicy::DEFAULT_BACKOFF;
    /// Row requests in flight at once for ID_RANGE unless set.
    pub const DEFAULT_MAX_PARALLEL: usize = 3;

    /// A dump of `table` into `output_dir` with the seed's defaults.
    pub fn new(table: impl Into<String>, output_dir: impl Into<PathBuf>) -> DumpConfig {
        DumpConfig {
            table: table.into(),
            output_dir: output_dir.into(),
            chunk_size: DumpConfig::DEFAULT_CHUNK_SIZE,
            strategy: DumpConfig::DEFAULT_STRATEGY,
            format: DumpConfig::DEFAULT_FORMAT,
            compress: false,
            compression_level: None,
            resume: true,
            resume_offset: None,
            order_by: None,
            where_clause: None,
            columns: None,
            batch_timeout: Duration::from_secs(DumpConfig::DEFAULT_BATCH_TIMEOUT_SECS),
            max_retries: DumpConfig::DEFAULT_MAX_RETRIES,
            retry_backoff: DumpConfig::DEFAULT_RETRY_BACKOFF,
            max_parallel: DumpConfig::DEFAULT_MAX_PARALLEL,
            parquet: ParquetOptions::default(),
        }
    }

    /// Sets the chunk size.
    #[must_use]
    pub fn chunk_size(mut self, rows: u64) -> Self {
        self.chunk_size = rows;
        self
    }

    /// Sets the strategy.
    #[must_use]
    pub fn strategy(mut self, strategy: DumpStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets the format.
    #[must_use]
    pub fn format(mut self, format: DumpFormat) -> Self {
        self.format = format;
        self
    }

    /// Turns gzip on or off.
    #[must_use]
    pub fn compress(mut self, on: bool) -> Self {
        self.compress = on;
        self
    }

    /// Sets the gzip level.
    #[must_use]
    pub fn compression_level(mut self, level: u32) -> Self {
        self.compression_level = Some(level);
        self
    }

    /// Turns resuming from a checkpoint on or off.
    #[must_use]
    pub fn resume(mut self, on: bool) -> Self {
        self.resume = on;
        self
    }

    /// Starts over from row `offset` (OFFSET only).
    #[must_use]
    pub fn resume_offset(mut self, offset: u64) -> Self {
        self.resume_offset = Some(offset);
        self
    }

    /// Sets the OFFSET sort order (`"col [ASC|DESC]"`, several separated by commas).
    #[must_use]
    pub fn order_by(mut self, order_by: impl Into<String>) -> Self {
        self.order_by = Some(order_by.into());
        self
    }

    /// Sets the filter: a [`Q`](iptvportal_query::Q) or a raw JSONSQL [`Expr`].
    #[must_use]
    pub fn where_clause(mut self, filter: impl Into<Expr>) -> Self {
        self.where_clause = Some(filter.into());
        self
    }

    /// Sets the columns.
    #[must_use]
    pub fn columns<I: IntoIterator<Item = S>, S: Into<String>>(mut self, columns: I) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn batch_timeout(mut self, timeout: Duration) -> Self {
        self.batch_timeout = timeout;
        self
    }

    /// Sets the retries per chunk.
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the backoff factor.
    #[must_use]
    pub fn retry_backoff(mut self, factor: f64) -> Self {
        self.retry_backoff = factor;
        self
    }

    /// Sets the parallelism of ID_RANGE.
    #[must_use]
    pub fn max_parallel(mut self, requests: usize) -> Self {
        self.max_parallel = requests;
        self
    }

    /// Sets the Parquet layout.
    #[must_use]
    pub fn parquet(mut self, options: ParquetOptions) -> Self {
        self.parquet = options;
        self
    }

    /// The compression the sink uses.
    pub(crate) fn compression(&self) -> Compression {
        match (self.compress, self.compression_level) {
            (false, _) => Compression::None,
            (true, None) => Compression::gzip(),
            (true, Some(level)) => Compression::Gzip { level },
        }
    }

    /// What the sink writes for this dump, with `schema`.
    pub(crate) fn sink_spec(&self, schema: Schema) -> SinkSpec {
        let mut spec = SinkSpec::new(
            &self.output_dir,
            self.table.as_str(),
            self.format,
            self.compression(),
            schema,
        );
        spec.parquet = self.parquet.clone();
        // The manifest records each file's id range: the catalog's id column, or for a table it
        // does not know, a column named `id` if there is one.
        let known = iptvportal_catalog::table(&self.table);
        let id = match known {
            Some(t) => t.id_column.map(str::to_owned),
            None => Some(id_column(None)),
        };
        spec.with_id_column(id.as_deref())
    }

    /// The parsed sort order.
    pub(crate) fn parsed_order_by(&self) -> Result<Vec<OrderBy>, Error> {
        let Some(text) = &self.order_by else { return Ok(Vec::new()) };
        text.split(',')
            .map(|item| {
                OrderBy::parse(item.trim()).map_err(|e| {
                    self.invalid(Invalid::OrderBy { text: text.clone(), reason: e.to_string() })
                })
            })
            .collect()
    }

    pub(crate) fn invalid(&self, invalid: Invalid) -> Error {
        Error::Config { table: self.table.clone(), invalid }
    }

    /// Checks everything that can be checked without the portal or the disk (for a table the
    /// catalog knows, its columns too), so that a bad option fails before any request is sent or
    /// any file touched. A dump runs this itself; it is public for callers that act before one.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_for(iptvportal_catalog::table(&self.table))
    }

    fn validate_for(&self, known: Option<&Table>) -> Result<(), Error> {
        if !is_identifier(&self.table) {
            return Err(self.invalid(Invalid::TableName));
        }
        if self.batch_timeout.is_zero() {
            return Err(self.invalid(Invalid::ZeroTimeout));
        }
        if !(self.retry_backoff.is_finite() && self.retry_backoff >= 1.0) {
            return Err(self.invalid(Invalid::RetryBackoff(self.retry_backoff)));
        }
        if self.compress && self.format == Format::Parquet {
            return Err(self.invalid(Invalid::CompressParquet));
        }
        if let Some(level) = self.compression_level
            && !Compression::GZIP_LEVELS.contains(&level)
        {
            return Err(self.invalid(Invalid::GzipLevel(level)));
        }
        if self.compression_level.is_some() && !self.compress {
            return Err(self.invalid(Invalid::LevelWithoutCompress));
        }
        if self.resume_offset.is_some() && self.strategy != Strategy::Offset {
            return Err(self.invalid(Invalid::ResumeOffsetNeedsOffset));
        }
        if let Some(columns) = &self.columns {
            self.validate_columns(columns, known)?;
        }
        let order_by = self.parsed_order_by()?;
        if self.strategy == Strategy::IdRange
            && let Some(table) = known
            && table.id_column.is_none()
        {
            return Err(self.invalid(Invalid::NoIdColumn(table.name.to_owned())));
        }
        // Chunk size, parallelism and the order ID_RANGE can walk are the traversal's rules.
        TraversalSpec::new(self.table.as_str())
            .order_by(order_by.clone())
            .id_column(id_column(known))
            .chunk_size(self.chunk_size)
            .strategy(self.strategy)
            .max_parallel(self.max_parallel)
            .check()
            .map_err(|e| self.invalid(Invalid::Traversal(e)))?;
        if let Some(table) = known {
            for o in &order_by {
                if o.column.table.is_none() && table.column(&o.column.name).is_none() {
                    return Err(self.invalid(Invalid::UnknownOrderColumn(o.column.name.clone())));
                }
            }
        }
        Ok(())
    }

    fn validate_columns(&self, columns: &[String], known: Option<&Table>) -> Result<(), Error> {
        if columns.is_empty() {
            return Err(self.invalid(Invalid::NoColumns));
        }
        let mut seen = std::collections::HashSet::new();
        for c in columns {
            if !is_identifier(c) {
                return Err(self.invalid(Invalid::ColumnName(c.clone())));
            }
            if !seen.insert(c) {
                return Err(self.invalid(Invalid::DuplicateColumn(c.clone())));
            }
            if let Some(table) = known
                && table.column(c).is_none()
            {
                return Err(self.invalid(Invalid::UnknownColumn {
                    column: c.clone(),
                    table: table.name.to_owned(),
                    known: table.column_names().map(str::to_owned).collect(),
                }));
            }
        }
        Ok(())
    }
}

/// The id column: the catalog's, or `id` for tables the catalog does not know.
pub(crate) fn id_column(known: Option<&Table>) -> String {
    known.and_then(|t| t.id_column).unwrap_or("id").to_owned()
}

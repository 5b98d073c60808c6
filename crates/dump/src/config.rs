//! `DumpConfig`: every option of one table's dump, with the seed's defaults, and its validation.

use std::path::PathBuf;
use std::time::Duration;

use iptvportal_catalog::Table;
use iptvportal_query::{Expr, OrderBy, is_identifier};
use iptvportal_sink::{Compression, Format, ParquetOptions};
use iptvportal_traverse::Strategy;

use crate::Error;

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
    /// A dump of `table` into `output_dir` with the seed's defaults.
    pub fn new(table: impl Into<String>, output_dir: impl Into<PathBuf>) -> DumpConfig {
        DumpConfig {
            table: table.into(),
            output_dir: output_dir.into(),
            chunk_size: 5000,
            strategy: Strategy::Offset,
            format: Format::Jsonl,
            compress: false,
            compression_level: None,
            resume: true,
            resume_offset: None,
            order_by: None,
            where_clause: None,
            columns: None,
            batch_timeout: Duration::from_secs(30),
            max_retries: 3,
            retry_backoff: 1.5,
            max_parallel: 3,
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

    /// The parsed sort order.
    pub(crate) fn parsed_order_by(&self) -> Result<Vec<OrderBy>, Error> {
        let Some(text) = &self.order_by else { return Ok(Vec::new()) };
        text.split(',')
            .map(|item| {
                OrderBy::parse(item.trim())
                    .map_err(|e| self.invalid(format!("bad order by {text:?}: {e}")))
            })
            .collect()
    }

    pub(crate) fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::Config { table: self.table.clone(), reason: reason.into() }
    }

    /// Checks everything that can be checked without the portal or the disk (for a table the
    /// catalog knows, its columns too), so that a bad option fails before any request is sent or
    /// any file touched. A dump runs this itself; it is public for callers that act before one.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_for(iptvportal_catalog::table(&self.table))
    }

    pub(crate) fn validate_for(&self, known: Option<&Table>) -> Result<(), Error> {
        if !is_identifier(&self.table) {
            return Err(self.invalid("a table name has only letters, digits and _"));
        }
        if self.chunk_size == 0 {
            return Err(self.invalid("chunk size must be at least 1"));
        }
        if self.max_parallel == 0 {
            return Err(self.invalid("parallelism must be at least 1"));
        }
        if self.batch_timeout.is_zero() {
            return Err(self.invalid("the request timeout must be more than 0 seconds"));
        }
        if !(self.retry_backoff.is_finite() && self.retry_backoff >= 1.0) {
            return Err(self.invalid(format!(
                "retry backoff must be a number >= 1, got {}",
                self.retry_backoff
            )));
        }
        if self.compress && self.format == Format::Parquet {
            return Err(self.invalid(
                "--compress applies to jsonl, csv and json; parquet files are always compressed (zstd)",
            ));
        }
        if let Some(level) = self.compression_level
            && level > 9
        {
            return Err(self.invalid(format!("gzip level must be 0 to 9, got {level}")));
        }
        if self.compression_level.is_some() && !self.compress {
            return Err(self.invalid(
                "--compress-level needs --compress (or compress = true in the config file)",
            ));
        }
        if self.resume_offset.is_some() && self.strategy != Strategy::Offset {
            return Err(
                self.invalid("--resume-offset needs the offset strategy; id-range resumes by id")
            );
        }
        if let Some(columns) = &self.columns {
            if columns.is_empty() {
                return Err(self.invalid("the column list is empty"));
            }
            let mut seen = std::collections::HashSet::new();
            for c in columns {
                if !is_identifier(c) {
                    return Err(self.invalid(format!("invalid column name {c:?}")));
                }
                if !seen.insert(c) {
                    return Err(self.invalid(format!("column {c} is listed twice")));
                }
                if let Some(table) = known
                    && table.column(c).is_none()
                {
                    return Err(self.invalid(format!(
                        "unknown column {c} (columns of {}: {})",
                        table.name,
                        table.column_names().collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
        let order_by = self.parsed_order_by()?;
        if self.strategy == Strategy::IdRange {
            if let Some(table) = known
                && table.id_column.is_none()
            {
                return Err(self.invalid(format!(
                    "{} has no id column, so it cannot be walked by id range; use --strategy offset",
                    table.name
                )));
            }
            let ascending_id = order_by.is_empty()
                || (order_by.len() == 1
                    && order_by[0].column.name == id_column(known)
                    && order_by[0].direction != Some(iptvportal_query::Direction::Desc));
            if !ascending_id {
                return Err(self.invalid(
                    "id-range always walks ascending id; drop --order-by or use --strategy offset",
                ));
            }
        }
        if let (Some(table), false) = (known, order_by.is_empty()) {
            for o in &order_by {
                if o.column.table.is_none() && table.column(&o.column.name).is_none() {
                    return Err(
                        self.invalid(format!("cannot order by unknown column {}", o.column.name))
                    );
                }
            }
        }
        Ok(())
    }
}

/// The id column: the catalog's, or `id` for tables the catalog does not know.
pub(crate) fn id_column(known: Option<&Table>) -> String {
    known.and_then(|t| t.id_column).unwrap_or("id").to_owned()
}

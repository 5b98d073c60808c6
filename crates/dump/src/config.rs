//! `DumpConfig`: every option of one table's dump, with the seed's defaults, and its validation.

use std::path::PathBuf;
use std::time::Duration;

use iptvportal_catalog::Table;
use iptvportal_client::RetryPolicy;
use iptvportal_query::{ColumnRef, Expr, OrderBy, ValueType, check_value_types, is_identifier};
use iptvportal_sink::{Compression, Format, ParquetOptions, Schema, SinkSpec};
use iptvportal_traverse::{Strategy, StrategyChoice, TraversalSpec};

use crate::{Error, Invalid, Setting};

/// The output format of a dump (the seed's `DumpFormat`).
pub type DumpFormat = Format;
/// The traversal strategy a dump asks for (the seed's `DumpStrategy`): `auto`, offset or
/// id-range. A run resolves it to the [`Strategy`] it uses ([`DumpConfig::strategy_for`]).
pub type DumpStrategy = StrategyChoice;

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
    /// Auto (default: ID_RANGE where the catalog knows the table's id column, else OFFSET),
    /// OFFSET or ID_RANGE.
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
    /// Columns of a table the catalog knows to leave out (a password): the output holds the
    /// catalog's other columns, in order. Not with `columns`.
    pub exclude_columns: Vec<String>,
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
    /// Text formats: write parts of this many rows (`{table}-00000.jsonl`, …, each closed at the
    /// first commit that fills it) instead of one file (default `None`: one file). Parquet's
    /// parts are [`ParquetOptions::part_rows`].
    pub text_part_rows: Option<u64>,
    /// The closed parts are published from `output_dir` (a stage) to object storage and removed
    /// here, by a [`RemoteStore`](crate::RemoteStore): a resume takes a closed part that is gone
    /// as committed (default `false`).
    pub parts_published: bool,
}

impl DumpConfig {
    /// Rows per request unless set: the traversal's (the seed's 5000).
    pub const DEFAULT_CHUNK_SIZE: u64 = TraversalSpec::DEFAULT_CHUNK_SIZE;
    /// The strategy unless set.
    pub const DEFAULT_STRATEGY: DumpStrategy = StrategyChoice::Auto;
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
    /// The most rows per request: a chunk is held in memory whole (once per request in flight),
    /// and a portal answers it in one response.
    pub const MAX_CHUNK_SIZE: u64 = 1_000_000;
    /// The most row requests in flight at once.
    pub const MAX_PARALLEL: usize = 64;
    /// The most retries of one request; each waits at most the client's longest delay (30 s).
    pub const MAX_RETRIES: u32 = 100;
    /// The largest backoff factor: the tenth retry of a factor of 10 would wait 10^10 s, so the
    /// client's cap on one delay applies long before.
    pub const MAX_RETRY_BACKOFF: f64 = 10.0;
    /// The most rows per part: a hundred times Parquet's default part.
    pub const MAX_PART_ROWS: u64 = 100_000_000;
    /// The longest timeout of one request.
    pub const MAX_BATCH_TIMEOUT: Duration = Duration::from_secs(3600);

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
            exclude_columns: Vec::new(),
            batch_timeout: Duration::from_secs(DumpConfig::DEFAULT_BATCH_TIMEOUT_SECS),
            max_retries: DumpConfig::DEFAULT_MAX_RETRIES,
            retry_backoff: DumpConfig::DEFAULT_RETRY_BACKOFF,
            max_parallel: DumpConfig::DEFAULT_MAX_PARALLEL,
            parquet: ParquetOptions::default(),
            text_part_rows: None,
            parts_published: false,
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

    /// Leaves these columns out: the output holds the catalog's other columns.
    #[must_use]
    pub fn exclude_columns<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        columns: I,
    ) -> Self {
        self.exclude_columns = columns.into_iter().map(Into::into).collect();
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

    /// Writes text formats in parts of `rows` rows instead of one file.
    #[must_use]
    pub fn text_part_rows(mut self, rows: u64) -> Self {
        self.text_part_rows = Some(rows);
        self
    }

    /// The rows per text part, for a text format in parts; `None` for one file or Parquet.
    pub(crate) fn text_parts(&self) -> Option<u64> {
        self.text_part_rows.filter(|_| self.format != Format::Parquet)
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
        spec.text_part_rows = self.text_parts();
        spec.closed_parts_elsewhere = self.parts_published;
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

    /// The strategy a run of this configuration uses: the one asked for by name; for `auto`,
    /// `resumed` (the strategy of the checkpoint the run continues) when there is one, else
    /// ID_RANGE where the catalog knows the table's id column and nothing asks for another order
    /// or a start at an offset, else OFFSET. A table the catalog does not know keeps OFFSET
    /// unless asked: whether its `id` is a unique, ascending integer only the portal knows.
    pub fn strategy_for(&self, resumed: Option<Strategy>) -> Strategy {
        match (self.strategy.fixed(), resumed) {
            (Some(strategy), _) | (None, Some(strategy)) => strategy,
            (None, None) => {
                let known = iptvportal_catalog::table(&self.table);
                self.strategy.resolve(self.walkable_by_id(known))
            }
        }
    }

    /// Whether a fresh run could walk the table by id: the catalog knows its id column, the
    /// order (if any) is ascending id and no resume offset is given.
    fn walkable_by_id(&self, known: Option<&Table>) -> bool {
        let Some(id) = known.and_then(|t| t.id_column) else { return false };
        let order = self.parsed_order_by().unwrap_or_else(|_| vec![]);
        let by_id = TraversalSpec::new(self.table.as_str())
            .order_by(order)
            .id_column(id)
            .strategy(Strategy::IdRange)
            .check()
            .is_ok();
        self.resume_offset.is_none() && by_id
    }

    /// The columns asked for: `columns`, else the catalog's columns but the excluded ones, else
    /// `None` (every column).
    pub(crate) fn requested_columns(&self, known: Option<&Table>) -> Option<Vec<String>> {
        match (&self.columns, known) {
            (Some(columns), _) => Some(columns.clone()),
            (None, Some(table)) if !self.exclude_columns.is_empty() => Some(
                table
                    .column_names()
                    .filter(|c| !self.exclude_columns.iter().any(|e| e == c))
                    .map(str::to_owned)
                    .collect(),
            ),
            (None, _) => None,
        }
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
        if self.batch_timeout > DumpConfig::MAX_BATCH_TIMEOUT {
            return Err(self.invalid(Invalid::LongTimeout(self.batch_timeout)));
        }
        let too_large = |setting, value: u64, max: u64| {
            (value > max).then(|| self.invalid(Invalid::TooLarge { setting, value, max }))
        };
        let counts = [
            (Setting::ChunkSize, self.chunk_size, DumpConfig::MAX_CHUNK_SIZE),
            (Setting::MaxParallel, wide(self.max_parallel), wide(DumpConfig::MAX_PARALLEL)),
            (Setting::MaxRetries, u64::from(self.max_retries), u64::from(DumpConfig::MAX_RETRIES)),
            (Setting::TextPartRows, self.text_part_rows.unwrap_or(0), DumpConfig::MAX_PART_ROWS),
        ];
        if let Some(e) = counts.into_iter().find_map(|(s, value, max)| too_large(s, value, max)) {
            return Err(e);
        }
        if !(self.retry_backoff.is_finite()
            && (1.0..=DumpConfig::MAX_RETRY_BACKOFF).contains(&self.retry_backoff))
        {
            return Err(self.invalid(Invalid::RetryBackoff(self.retry_backoff)));
        }
        if self.text_part_rows == Some(0) {
            return Err(self.invalid(Invalid::ZeroPartRows));
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
        if self.resume_offset.is_some() && self.strategy == StrategyChoice::IdRange {
            return Err(self.invalid(Invalid::ResumeOffsetNeedsOffset));
        }
        if let Some(columns) = &self.columns {
            self.validate_columns(columns, known)?;
        }
        if !self.exclude_columns.is_empty() {
            self.validate_exclude(known)?;
        }
        // The filter's values against the catalog's column types, as PostgreSQL checks them
        // before running the query: a boolean for a timestamp, a number for a text column.
        if let (Some(filter), Some(table)) = (&self.where_clause, known) {
            check_value_types(filter, &|c| filter_column_type(table, c))
                .map_err(|e| self.invalid(Invalid::FilterValue(e)))?;
        }
        let order_by = self.parsed_order_by()?;
        if self.strategy == StrategyChoice::IdRange
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
            .strategy(self.strategy_for(None))
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

    /// Excluded columns are the catalog's (a table it does not know has no columns to leave out
    /// of), each once, not together with an explicit column list, and not every one of them.
    fn validate_exclude(&self, known: Option<&Table>) -> Result<(), Error> {
        if self.columns.is_some() {
            return Err(self.invalid(Invalid::ColumnsAndExclude));
        }
        let Some(table) = known else {
            return Err(self.invalid(Invalid::ExcludeUnknownTable));
        };
        let mut seen = std::collections::HashSet::new();
        for c in &self.exclude_columns {
            if table.column(c).is_none() {
                return Err(self.invalid(Invalid::UnknownColumn {
                    column: c.clone(),
                    table: table.name.to_owned(),
                    known: table.column_names().map(str::to_owned).collect(),
                }));
            }
            if !seen.insert(c) {
                return Err(self.invalid(Invalid::DuplicateColumn(c.clone())));
            }
        }
        if seen.len() == table.columns.len() {
            return Err(self.invalid(Invalid::ExcludesEveryColumn));
        }
        Ok(())
    }
}

/// The type of a filter's column in the known `table`: a column named alone or qualified by the
/// table's own name; `None` (unchecked) for any other.
fn filter_column_type(table: &Table, column: &ColumnRef) -> Option<ValueType> {
    if column.table.as_deref().is_some_and(|t| t != table.name) {
        return None;
    }
    ValueType::from_name(table.column(&column.name)?.ty.as_str())
}

/// A count as `u64`, which holds every `usize` of the platforms this builds on.
pub(crate) fn wide(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The id column: the catalog's, or `id` for tables the catalog does not know.
pub(crate) fn id_column(known: Option<&Table>) -> String {
    known.and_then(|t| t.id_column).unwrap_or("id").to_owned()
}

#[cfg(test)]
mod tests {
    use iptvportal_query::Q;

    use super::*;

    fn refused(table: &str, filter: Q) -> Option<Invalid> {
        match DumpConfig::new(table, "out").where_clause(filter).validate() {
            Ok(()) => None,
            Err(Error::Config { invalid, .. }) => Some(invalid),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn filter_values_are_checked_against_the_catalogs_types() {
        let q = |field: &str, value: serde_json::Value| Q::lookup(field, value).unwrap();
        assert_eq!(refused("terminal", q("registered__gte", "2025-12-15".into())), None);
        assert_eq!(refused("subscriber", q("phone", "79123456789".into())), None);
        assert_eq!(
            refused("terminal", q("registered", true.into())),
            Some(Invalid::FilterValue(iptvportal_query::Error::FilterType {
                column: "registered".into(),
                expected: ValueType::Timestamp,
                value: "true".into()
            }))
        );
        let refusal = refused("subscriber", q("subscriber.phone", 79_123_456_789_i64.into()));
        assert_eq!(
            refusal.map(|r| r.to_string()).as_deref(),
            Some("filter subscriber.phone: expected text, got 79123456789")
        );
        // Another table's column, and a table the catalog does not know, are the portal's.
        assert_eq!(refused("subscriber", q("t.phone", 1.into())), None);
        assert_eq!(refused("no_such_table", q("registered", true.into())), None);
    }

    #[test]
    fn counts_and_times_are_bounded_before_any_request() {
        let refusal = |config: DumpConfig| match config.validate() {
            Err(Error::Config { invalid, .. }) => invalid.to_string(),
            other => panic!("{other:?}"),
        };
        let base = || DumpConfig::new("terminal", "out");
        assert_eq!(
            refusal(base().chunk_size(u64::MAX)),
            "the chunk size must be at most 1000000, got 18446744073709551615"
        );
        assert_eq!(refusal(base().max_parallel(65)), "the parallelism must be at most 64, got 65");
        assert_eq!(
            refusal(base().max_retries(101)),
            "the retries of a request must be at most 100, got 101"
        );
        assert_eq!(
            refusal(base().retry_backoff(1e20)),
            "retry backoff must be a number from 1 to 10, got 100000000000000000000"
        );
        assert_eq!(
            refusal(base().batch_timeout(Duration::from_secs(3601))),
            "the request timeout must be at most 3600 seconds, got 3601"
        );
        // The bounds themselves are allowed.
        let most = base()
            .chunk_size(DumpConfig::MAX_CHUNK_SIZE)
            .max_parallel(DumpConfig::MAX_PARALLEL)
            .max_retries(DumpConfig::MAX_RETRIES)
            .retry_backoff(DumpConfig::MAX_RETRY_BACKOFF)
            .batch_timeout(DumpConfig::MAX_BATCH_TIMEOUT);
        assert!(most.validate().is_ok());
    }
}

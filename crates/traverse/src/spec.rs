//! What to traverse (`TraversalSpec`), how (`Strategy`), and where to resume (`Cursor`), plus the
//! query building the strategies share.

use std::fmt;

use iptvportal_query::{ColumnRef, CompareOp, Expr, Function, Operand, OrderBy, Scalar, Select};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Invalid, RowSource};

/// How a table is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// `limit`/`offset` paging in `order_by` order. Works for any table; each page costs the
    /// server a scan of every row before it.
    Offset,
    /// Keyset paging on the id column (`id > last_id`), sequential or, with `max_parallel > 1`,
    /// over planned id ranges in parallel.
    IdRange,
}

impl Strategy {
    /// Every strategy, in the order the command line lists them.
    pub const ALL: [Strategy; 2] = [Strategy::Offset, Strategy::IdRange];

    /// The name used on the command line and in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::Offset => "offset",
            Strategy::IdRange => "id-range",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a strategy's: `expected` lists the names that are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy {name:?} (expected {expected})")]
pub struct UnknownStrategy {
    /// The name given.
    pub name: String,
    /// The names accepted, in words (`offset or id-range`).
    pub expected: &'static str,
}

impl std::str::FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Strategy, UnknownStrategy> {
        Strategy::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == s)
            .ok_or_else(|| UnknownStrategy { name: s.to_owned(), expected: "offset or id-range" })
    }
}

/// The strategy a dump asks for: one of the [`Strategy`]s, or `auto`, which picks one per table.
///
/// `auto` is what a caller means when it has no reason to prefer one: ID_RANGE wherever the
/// table can be walked by id (its cost per chunk stays the same however deep the chunk is), and
/// OFFSET where it cannot (no id column, an order other than ascending id, a start at an
/// offset). What a traversal runs, and what a checkpoint records, is always the resolved
/// [`Strategy`], never `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StrategyChoice {
    /// ID_RANGE where the table can be walked by id, else OFFSET ([`StrategyChoice::resolve`]).
    #[default]
    Auto,
    /// Always OFFSET.
    Offset,
    /// Always ID_RANGE.
    IdRange,
}

impl StrategyChoice {
    /// Every choice, in the order the command line lists them.
    pub const ALL: [StrategyChoice; 3] =
        [StrategyChoice::Auto, StrategyChoice::Offset, StrategyChoice::IdRange];

    /// The name used on the command line, in config files and in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            StrategyChoice::Auto => "auto",
            StrategyChoice::Offset => Strategy::Offset.as_str(),
            StrategyChoice::IdRange => Strategy::IdRange.as_str(),
        }
    }

    /// The strategy asked for by name, or `None` for `auto`.
    pub const fn fixed(self) -> Option<Strategy> {
        match self {
            StrategyChoice::Auto => None,
            StrategyChoice::Offset => Some(Strategy::Offset),
            StrategyChoice::IdRange => Some(Strategy::IdRange),
        }
    }

    /// The strategy that runs: the one asked for by name, or for `auto` ID_RANGE when
    /// `walkable_by_id` (the caller knows an id column and the traversal can walk it: no order
    /// but ascending id, no start at an offset), else OFFSET.
    pub const fn resolve(self, walkable_by_id: bool) -> Strategy {
        match self.fixed() {
            Some(strategy) => strategy,
            None if walkable_by_id => Strategy::IdRange,
            None => Strategy::Offset,
        }
    }
}

impl From<Strategy> for StrategyChoice {
    fn from(strategy: Strategy) -> StrategyChoice {
        match strategy {
            Strategy::Offset => StrategyChoice::Offset,
            Strategy::IdRange => StrategyChoice::IdRange,
        }
    }
}

impl fmt::Display for StrategyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StrategyChoice {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<StrategyChoice, UnknownStrategy> {
        StrategyChoice::ALL.into_iter().find(|choice| choice.as_str() == s).ok_or_else(|| {
            UnknownStrategy { name: s.to_owned(), expected: "auto, offset or id-range" }
        })
    }
}

/// Where a traversal (re)starts: everything before the cursor has been delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cursor {
    /// OFFSET: the next row's offset in `order_by` order.
    Offset {
        /// Rows before this offset are done.
        offset: u64,
    },
    /// ID_RANGE: every row with an id up to `after` (inclusive) is done; `None` means none is.
    Id {
        /// The last id done.
        after: Option<i64>,
    },
}

impl Cursor {
    /// The cursor at the start of a traversal with `strategy`.
    pub fn start(strategy: Strategy) -> Cursor {
        match strategy {
            Strategy::Offset => Cursor::Offset { offset: 0 },
            Strategy::IdRange => Cursor::Id { after: None },
        }
    }

    /// The seed's `current_offset` after `rows_done` rows: the OFFSET cursor itself, or for
    /// ID_RANGE (which has no offset) the rows done.
    pub fn current_offset(self, rows_done: u64) -> u64 {
        match self {
            Cursor::Offset { offset } => offset,
            Cursor::Id { .. } => rows_done,
        }
    }

    /// The strategy this cursor belongs to.
    pub fn strategy(&self) -> Strategy {
        match self {
            Cursor::Offset { .. } => Strategy::Offset,
            Cursor::Id { .. } => Strategy::IdRange,
        }
    }
}

/// What to traverse and how.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TraversalSpec {
    /// The table.
    pub table: String,
    /// The columns, in output order; `None` selects `"*"`.
    pub columns: Option<Vec<String>>,
    /// The user's filter, AND-ed into every request.
    pub filter: Option<Expr>,
    /// Sort order for OFFSET; empty means ascending id. ID_RANGE always walks ascending id.
    pub order_by: Vec<OrderBy>,
    /// The numeric, unique key ID_RANGE walks (default `id`).
    pub id_column: String,
    /// Rows per request.
    pub chunk_size: u64,
    /// OFFSET or ID_RANGE.
    pub strategy: Strategy,
    /// Row requests in flight at once for ID_RANGE (1 = sequential); above 1, one more request at
    /// a time scans the ids ahead to plan ranges of one chunk.
    pub max_parallel: usize,
}

impl TraversalSpec {
    /// Rows per request unless set (the seed's 5000).
    pub const DEFAULT_CHUNK_SIZE: u64 = 5000;

    /// A spec for `table`: every column, no filter, OFFSET by id in chunks of
    /// [`DEFAULT_CHUNK_SIZE`](TraversalSpec::DEFAULT_CHUNK_SIZE), parallelism 1.
    pub fn new(table: impl Into<String>) -> TraversalSpec {
        TraversalSpec {
            table: table.into(),
            columns: None,
            filter: None,
            order_by: Vec::new(),
            id_column: "id".to_owned(),
            chunk_size: TraversalSpec::DEFAULT_CHUNK_SIZE,
            strategy: Strategy::Offset,
            max_parallel: 1,
        }
    }

    /// Sets the columns (`None` for every column).
    #[must_use]
    pub fn columns(mut self, columns: Option<Vec<String>>) -> Self {
        self.columns = columns;
        self
    }

    /// Sets the filter.
    #[must_use]
    pub fn filter(mut self, filter: Option<Expr>) -> Self {
        self.filter = filter;
        self
    }

    /// Sets the OFFSET sort order.
    #[must_use]
    pub fn order_by(mut self, order_by: Vec<OrderBy>) -> Self {
        self.order_by = order_by;
        self
    }

    /// Sets the id column.
    #[must_use]
    pub fn id_column(mut self, id_column: impl Into<String>) -> Self {
        self.id_column = id_column.into();
        self
    }

    /// Sets the chunk size.
    #[must_use]
    pub fn chunk_size(mut self, chunk_size: u64) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// Sets the strategy.
    #[must_use]
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets the parallelism.
    #[must_use]
    pub fn max_parallel(mut self, max_parallel: usize) -> Self {
        self.max_parallel = max_parallel;
        self
    }

    /// Checks the rules of traversal that need no request: chunk size and parallelism of at
    /// least 1, and for ID_RANGE no order but ascending id.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.chunk_size == 0 {
            return Err(Invalid::ZeroChunkSize);
        }
        if self.max_parallel == 0 {
            return Err(Invalid::ZeroParallel);
        }
        if self.strategy == Strategy::IdRange {
            let id_ascending = |o: &OrderBy| {
                o.column.table.is_none()
                    && o.column.name == self.id_column
                    && o.direction != Some(iptvportal_query::Direction::Desc)
            };
            if !(self.order_by.is_empty()
                || (self.order_by.len() == 1 && id_ascending(&self.order_by[0])))
            {
                return Err(Invalid::IdRangeOrder { id_column: self.id_column.clone() });
            }
        }
        Ok(())
    }

    /// Counts the rows of the table under the spec's filter (one request), as a traversal's
    /// start does.
    pub async fn count(&self, source: &dyn RowSource) -> Result<u64, Error> {
        count(source, self, self.filter.clone()).await
    }

    /// The requests of rows a traversal of `rows` rows sends after its count, if the table does
    /// not change meanwhile: a page per chunk and the short (possibly empty) page that ends the
    /// walk, for every strategy (parallel ID_RANGE fetches ranges of one chunk and an unbounded
    /// tail).
    pub fn page_requests(&self, rows: u64) -> u64 {
        rows / self.chunk_size.max(1) + 1
    }

    /// The pages of the id scan a traversal of `rows` rows sends besides its row requests: none
    /// but for parallel ID_RANGE, which reads the ids ahead a few chunks' worth per page, the last
    /// page short (possibly empty).
    pub fn scan_requests(&self, rows: u64) -> u64 {
        if self.strategy == Strategy::IdRange && self.max_parallel > 1 {
            rows / crate::parallel::scan_limit(self.chunk_size) + 1
        } else {
            0
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.check().map_err(Error::Config)?;
        // Builds every query shape once, so an invalid identifier fails here, before any request.
        self.base_select()?;
        Ok(())
    }

    /// The select every request starts from: data and table, no filter, order or paging.
    pub(crate) fn base_select(&self) -> Result<Select, Error> {
        let select = Select::from(self.table.as_str())?;
        Ok(match &self.columns {
            None => select,
            Some(columns) => select.columns(columns)?,
        })
    }

    /// The data list for keyset traversal, and where in each row the id is. When the id is not one
    /// of the output columns it is fetched as an extra trailing column and stripped off again.
    pub(crate) fn keyset_select(&self) -> Result<(Select, IdPosition), Error> {
        let mut select = self.base_select()?;
        let index = self
            .columns
            .as_ref()
            .and_then(|columns| columns.iter().position(|c| *c == self.id_column));
        let position = if let Some(i) = index {
            IdPosition::Column(i)
        } else {
            select.data.push(Operand::Column(ColumnRef::new(self.id_column.as_str())?));
            IdPosition::Extra
        };
        Ok((select.order_by(OrderBy::asc(self.id_column.as_str())?), position))
    }

    /// The user's filter AND `id > after`.
    pub(crate) fn filter_after(&self, after: Option<i64>) -> Result<Option<Expr>, Error> {
        let bound = after.map(|after| self.id_compare(CompareOp::Gt, after)).transpose()?;
        Ok(and(self.filter.clone(), bound))
    }

    pub(crate) fn id_compare(&self, op: CompareOp, value: i64) -> Result<Expr, Error> {
        Ok(Expr::Compare {
            op,
            left: Operand::Column(ColumnRef::new(self.id_column.as_str())?),
            right: Operand::Literal(Scalar::Int(value)),
        })
    }
}

/// AND of two optional conditions.
pub(crate) fn and(a: Option<Expr>, b: Option<Expr>) -> Option<Expr> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => Some(Expr::And(vec![a, b])),
    }
}

/// Where the id sits in a fetched row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdPosition {
    /// At this index of the output columns.
    Column(usize),
    /// As an extra last value, to be removed before the row is handed on.
    Extra,
}

impl IdPosition {
    /// The id of the last row, stripping the extra id column from every row when there is one, and
    /// checking that ids ascend strictly from `after`: keyset paging is only exact if they do.
    pub(crate) fn last_id_and_strip(
        self,
        rows: &mut [Vec<Value>],
        after: Option<i64>,
        what: &str,
    ) -> Result<Option<i64>, Error> {
        let mut last = after;
        for row in rows.iter_mut() {
            let value = match self {
                IdPosition::Column(i) => row.get(i).cloned(),
                IdPosition::Extra => row.pop(),
            };
            let id = value.as_ref().and_then(Value::as_i64).ok_or_else(|| Error::Unexpected {
                what: what.to_owned(),
                detail: format!(
                    "the id column must hold integers, got {}",
                    value.map_or_else(|| "a short row".to_owned(), |v| v.to_string())
                ),
            })?;
            if let Some(previous) = last.filter(|&l| id <= l) {
                return Err(not_ascending(what, id, previous));
            }
            last = Some(id);
        }
        Ok(if rows.is_empty() { None } else { last })
    }
}

/// The error for an id that does not ascend from the one before it: keyset paging would skip or
/// repeat rows.
pub(crate) fn not_ascending(what: &str, id: i64, previous: i64) -> Error {
    Error::Unexpected {
        what: what.to_owned(),
        detail: format!("ids must be unique and ascending, got {id} after {previous}"),
    }
}

/// Runs one request, naming it in any error.
pub(crate) async fn fetch(
    source: &dyn RowSource,
    query: &Select,
    what: &str,
) -> Result<Vec<Vec<Value>>, Error> {
    tracing::debug!(what, "traversal request");
    source.select(query).await.map_err(|source| Error::Source { what: what.to_owned(), source })
}

/// `count(*)` of the table under `filter`.
pub(crate) async fn count(
    source: &dyn RowSource,
    spec: &TraversalSpec,
    filter: Option<Expr>,
) -> Result<u64, Error> {
    let mut query =
        Select::from(spec.table.as_str())?.data(vec![Operand::Function(Function::count_star())]);
    query.where_ = filter;
    let what = format!("counting rows of {}", spec.table);
    let rows = fetch(source, &query, &what).await?;
    rows.first().and_then(|r| r.first()).and_then(Value::as_u64).ok_or_else(|| Error::Unexpected {
        what,
        detail: format!("expected [[<count>]], got {}", Value::from(rows)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_auto_resolves_by_what_the_table_allows() {
        for choice in StrategyChoice::ALL {
            assert_eq!(choice.as_str().parse::<StrategyChoice>(), Ok(choice));
        }
        for strategy in Strategy::ALL {
            assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
            assert_eq!(StrategyChoice::from(strategy).fixed(), Some(strategy));
            assert_eq!(StrategyChoice::from(strategy).resolve(false), strategy);
            assert_eq!(StrategyChoice::from(strategy).resolve(true), strategy);
        }
        assert_eq!(StrategyChoice::Auto.resolve(true), Strategy::IdRange);
        assert_eq!(StrategyChoice::Auto.resolve(false), Strategy::Offset);
        assert_eq!(StrategyChoice::default(), StrategyChoice::Auto);
        assert_eq!(
            "auto".parse::<Strategy>().unwrap_err().to_string(),
            "unknown strategy \"auto\" (expected offset or id-range)"
        );
        assert_eq!(
            "keyset".parse::<StrategyChoice>().unwrap_err().to_string(),
            "unknown strategy \"keyset\" (expected auto, offset or id-range)"
        );
    }
}

//! Deciding a run before it sends anything: where it starts (fresh, from the checkpoint, or not
//! at all), what it traverses, and the output's schema.

use iptvportal_catalog::Table;
use iptvportal_checkpoint::{CheckpointStore, DumpState, OutputShape};
use iptvportal_query::OrderBy;
use iptvportal_sink::Schema;
use iptvportal_traverse::{Cursor, Strategy, TraversalSpec};
use serde_json::Value;

use crate::config::id_column;
use crate::{DumpConfig, Error, Invalid, Warning};

/// Where a run starts.
pub(crate) enum Start {
    /// The checkpoint says the output is complete: nothing to do.
    AlreadyComplete(Box<DumpState>),
    /// Run from the plan.
    Run(Box<Plan>),
}

/// What a run will do, decided from the configuration and the checkpoint alone.
pub(crate) struct Plan {
    /// The state the run continues (from the checkpoint), or `None` for a fresh output.
    pub(crate) resume: Option<DumpState>,
    /// Everything that shapes the output, as a fresh state records it.
    pub(crate) shape: OutputShape,
    /// What the traversal walks.
    pub(crate) spec: TraversalSpec,
    /// Where the traversal starts.
    pub(crate) cursor: Cursor,
    /// The output schema: pinned by the checkpoint or given by the catalog; `None` for a table
    /// the catalog does not know, whose schema [`Plan::infer_schema`] takes from the first chunk.
    pub(crate) schema: Option<Schema>,
    /// What the user should know before the run starts.
    pub(crate) warnings: Vec<Warning>,
}

impl Plan {
    /// The schema of a table the catalog does not know, from its first chunk (or from no rows,
    /// for an empty table): the requested column names, else `col1`, `col2`, … by position.
    pub(crate) fn infer_schema(&self, rows: &[Vec<Value>]) -> Schema {
        let names = match &self.spec.columns {
            Some(columns) => columns.clone(),
            None => (1..=rows.first().map_or(0, Vec::len)).map(|i| format!("col{i}")).collect(),
        };
        Schema::infer(&names, rows)
    }
}

/// Decides where a run of `config` starts. Reads the checkpoint; sends nothing and touches no
/// output file. The caller has validated `config` (before taking the table's lock).
pub(crate) async fn plan(
    config: &DumpConfig,
    store: &dyn CheckpointStore,
    portal: Option<String>,
) -> Result<Start, Error> {
    let table = config.table.as_str();
    let known = iptvportal_catalog::table(table);

    // What the checkpoint says, unless told to start over.
    let starting_over = !config.resume || config.resume_offset.is_some();
    let saved = if starting_over {
        None
    } else {
        store
            .load(table)
            .await
            .map_err(|source| Error::Checkpoint { table: table.to_owned(), source })?
    };
    // `auto` continues a checkpoint with the strategy it was written with, whichever that was;
    // a strategy asked for by name must be the checkpoint's (the shapes differ otherwise).
    let strategy = config.strategy_for(saved.as_ref().map(|s| s.shape.strategy));
    let mut shape = shape(config, known, strategy)?;
    shape.portal = portal;
    if let Some(state) = &saved {
        let differences = state.shape.differences(&shape);
        if !differences.is_empty() {
            return Err(Error::ShapeMismatch {
                table: table.to_owned(),
                dir: config.output_dir.clone(),
                differences,
            });
        }
    }
    let resume = match saved {
        Some(state) if state.is_complete => return Ok(Start::AlreadyComplete(Box::new(state))),
        other => other,
    };

    let columns = match (config.requested_columns(known), known) {
        (Some(columns), _) => Some(columns),
        (None, Some(t)) => Some(t.column_names().map(str::to_owned).collect()),
        (None, None) => None,
    };
    let mut warnings = Vec::new();
    if known.is_none() && columns.is_none() {
        warnings.push(Warning::ColumnsByPosition { table: table.to_owned() });
    }
    let schema = match (&resume, known) {
        // A resumed dump's schema is pinned in its state, once its first chunk fixed it.
        (Some(state), _) if !state.schema.columns.is_empty() => Some(state.schema.clone()),
        (_, Some(t)) => {
            Some(Schema::from_catalog(t, columns.as_deref()).map_err(|source| Error::Sink {
                table: table.to_owned(),
                source: Box::new(source),
            })?)
        }
        (_, None) => None,
    };
    let spec = TraversalSpec::new(table)
        .columns(columns)
        .filter(config.where_clause.clone())
        .order_by(order_by(config, known, strategy)?)
        .id_column(id_column(known))
        .chunk_size(config.chunk_size)
        .strategy(strategy)
        .max_parallel(config.max_parallel);
    let cursor = match (&resume, config.resume_offset) {
        (Some(state), _) => state.cursor,
        (None, Some(offset)) => Cursor::Offset { offset },
        (None, None) => Cursor::start(strategy),
    };
    Ok(Start::Run(Box::new(Plan { resume, shape, spec, cursor, schema, warnings })))
}

/// Everything in `config` that shapes the output, as the checkpoint records it, for a run with
/// `strategy`. Excluded columns are recorded as the columns they leave, so that a checkpoint
/// resumes under either spelling of the same output.
fn shape(
    config: &DumpConfig,
    known: Option<&Table>,
    strategy: Strategy,
) -> Result<OutputShape, Error> {
    let filter = match &config.where_clause {
        None => None,
        Some(expr) => Some(
            expr.to_json().map_err(|e| config.invalid(Invalid::Filter(e.to_string())))?.to_string(),
        ),
    };
    Ok(OutputShape {
        table: config.table.clone(),
        columns: config.requested_columns(known),
        filter,
        order_by: config.parsed_order_by()?.iter().map(ToString::to_string).collect(),
        format: config.format,
        compression: config.compression(),
        strategy,
        part_rows: config.text_parts(),
        portal: None,
    })
}

/// The OFFSET order: as configured, else ascending id, else (a table without an id) every
/// column, which is the only order that makes paging deterministic there. A configured order
/// gets the same tie-breakers appended (the id, or the remaining columns): PostgreSQL keeps no
/// order among rows that tie, so pages of `last_seen` alone (15% NULLs, all tied) could skip or
/// repeat rows between requests.
fn order_by(
    config: &DumpConfig,
    known: Option<&Table>,
    strategy: Strategy,
) -> Result<Vec<OrderBy>, Error> {
    let mut order = config.parsed_order_by()?;
    if strategy != Strategy::Offset {
        return Ok(order);
    }
    let Some(table) = known else { return Ok(order) };
    // No order on a table with an id: the traversal's own default, ascending id, left unsaid.
    if order.is_empty() && table.id_column.is_some() {
        return Ok(order);
    }
    let ties: Vec<&str> = match table.id_column {
        Some(id) => vec![id],
        None => table.column_names().collect(),
    };
    for column in ties {
        if !order.iter().any(|o| o.column.table.is_none() && o.column.name == column) {
            order.push(OrderBy::asc(column).map_err(|e| {
                config.invalid(Invalid::OrderBy { text: column.to_owned(), reason: e.to_string() })
            })?);
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(table: &str, order_by: Option<&str>) -> Vec<String> {
        let mut config = DumpConfig::new(table, "out");
        config.order_by = order_by.map(str::to_owned);
        super::order_by(&config, iptvportal_catalog::table(table), Strategy::Offset)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn offset_orders_are_total_so_that_pages_never_skip_or_repeat_tied_rows() {
        assert_eq!(order("terminal", None), Vec::<String>::new());
        assert_eq!(order("terminal", Some("last_seen")), ["last_seen", "id ASC"]);
        assert_eq!(
            order("terminal", Some("last_seen DESC, id DESC")),
            ["last_seen DESC", "id DESC"]
        );
        assert_eq!(order("terminal", Some("id")), ["id"]);
        assert_eq!(order("terminal", Some("id DESC")), ["id DESC"]);
        // A table without an id: every column, after the ones asked for.
        let no_id = iptvportal_catalog::TABLES.iter().find(|t| t.id_column.is_none()).unwrap();
        let all: Vec<String> = no_id.column_names().map(|c| format!("{c} ASC")).collect();
        assert_eq!(order(no_id.name, None), all);
        let last = no_id.column_names().last().unwrap();
        let mut want = vec![format!("{last} DESC")];
        want.extend(no_id.column_names().filter(|c| *c != last).map(|c| format!("{c} ASC")));
        assert_eq!(order(no_id.name, Some(&format!("{last} DESC"))), want);
    }
}

//! `iptvportal select`: one select, printed.

use std::io::Write;

use iptvportal_client::Client;
use iptvportal_query::{
    ColumnRef, OrderBy, Select, ValueType, check_value_types, parse_filters_typed, parse_where_json,
};

use crate::args::{Format, SelectArgs};
use crate::failure::Hinted;
use crate::output::write_rows;

/// A checked select and how its columns are named.
pub(super) struct Query {
    select: Select,
    /// The column names, or `None` when they are only known from the rows (`*` on an unknown table).
    columns: Option<Vec<String>>,
}

impl Query {
    /// Builds the select from the arguments, refusing bad column names, filters and sort keys.
    ///
    /// `*` (also the default) on a table of the catalog asks for the catalog's columns by name, so
    /// that every value is labelled correctly even when a real portal has more columns than we know.
    pub(super) fn build(args: &SelectArgs) -> anyhow::Result<Query> {
        let data: Vec<&str> =
            args.data.iter().map(|c| c.trim()).filter(|c| !c.is_empty()).collect();
        let star = data.is_empty() || data == ["*"];
        if !star && data.contains(&"*") {
            return Err(Hinted::new(
                "--data mixes * with column names",
                "pass either * or a list of columns",
            )
            .into());
        }
        let mut select = Select::from(args.from.as_str())?;
        let columns = match (star, iptvportal_catalog::table(&args.from)) {
            (true, Some(table)) => {
                let names: Vec<String> = table.column_names().map(str::to_owned).collect();
                select = select.columns(&names)?;
                Some(names)
            }
            (true, None) => None,
            (false, _) => {
                select = select.columns(&data)?;
                Some(data.iter().map(|c| (*c).to_owned()).collect())
            }
        };
        let types = column_types(&args.from);
        if let Some(q) = parse_filters_typed(&args.filters, &types)? {
            select = select.filter(q.into_expr());
        }
        if let Some(json) = &args.where_json {
            let expr = parse_where_json(json)?;
            check_value_types(&expr, &types)?;
            select = select.filter(expr);
        }
        for order in &args.order_by {
            select = select.order_by(OrderBy::parse(order)?);
        }
        if let Some(limit) = args.limit {
            select = select.limit(limit);
        }
        if let Some(offset) = args.offset {
            select = select.offset(offset);
        }
        // Anything no wire form can express is refused now rather than after logging in.
        select.to_json()?;
        Ok(Query { select, columns })
    }

    /// Runs the select and prints the rows.
    pub(super) async fn run(
        self,
        client: &Client,
        format: Format,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        let rows = client.select(&self.select).await?;
        let columns = self.columns.unwrap_or_else(|| {
            let width = rows.iter().map(Vec::len).max().unwrap_or(0);
            crate::output::note(&format!(
                "warning: {} is not a table the catalog knows, so its columns are named col1..col{width} by position; pass --data to name them",
                self.select.from.table.name
            ));
            (1..=width).map(|i| format!("col{i}")).collect()
        });
        write_rows(out, format, &columns, &rows)?;
        Ok(())
    }
}

/// The type of each column of `table` as the catalog knows it (named alone or qualified by the
/// table's name), for reading and checking filter values; no type at all for a table the catalog
/// does not know, whose filters keep the untyped reading.
pub(super) fn column_types(table: &str) -> impl Fn(&ColumnRef) -> Option<ValueType> + use<> {
    let known = iptvportal_catalog::table(table);
    move |column: &ColumnRef| {
        let table = known?;
        if column.table.as_deref().is_some_and(|t| t != table.name) {
            return None;
        }
        ValueType::from_name(table.column(&column.name)?.ty.as_str())
    }
}

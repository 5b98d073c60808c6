//! `iptvportal tables`: what the portal holds, table by table, before anything is dumped.

use std::io::Write;

use iptvportal_client::{Client, Error as ClientError};
use serde_json::{Value, json};

use crate::args::StatusFormat;

/// What the portal said of one catalog table.
struct Row {
    table: &'static str,
    /// Its rows and, for a table with an id column, the smallest and largest id; or the portal's
    /// refusal, which marks the table instead of ending the command.
    counted: Result<(u64, Option<(i64, i64)>), String>,
}

/// Counts every catalog table on the portal (and reads its id range where it has an id column),
/// one table at a time, and prints a table or a JSON array. A table the portal refuses (a table
/// this account may not read, one this portal does not have) is marked, not fatal; a failure that
/// is not about one table (the connection, the login, the retries running out) ends the command.
pub(super) async fn run(
    client: &Client,
    format: StatusFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for table in iptvportal_catalog::TABLES {
        let counted = match count(client, table.name, table.id_column).await {
            Ok(counted) => Ok(counted),
            Err(ClientError::Server { message, .. }) => Err(message),
            Err(other) => return Err(other.into()),
        };
        rows.push(Row { table: table.name, counted });
    }
    match format {
        StatusFormat::Table => text(&rows, out)?,
        StatusFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &document(&rows))?;
            writeln!(out)?;
        }
    }
    Ok(())
}

async fn count(
    client: &Client,
    table: &str,
    id: Option<&str>,
) -> Result<(u64, Option<(i64, i64)>), ClientError> {
    let rows = client.count(table, None).await?;
    let ids = match id {
        Some(id) if rows > 0 => client.min_max(table, id, None).await?,
        _ => None,
    };
    Ok((rows, ids))
}

fn text(rows: &[Row], out: &mut impl Write) -> std::io::Result<()> {
    let cells: Vec<[String; 3]> = rows
        .iter()
        .map(|r| match &r.counted {
            Ok((n, ids)) => [
                r.table.to_owned(),
                n.to_string(),
                ids.map_or_else(|| "-".to_owned(), |(min, max)| format!("{min}..={max}")),
            ],
            Err(message) => [r.table.to_owned(), "refused".to_owned(), message.clone()],
        })
        .collect();
    let header = ["table", "rows", "ids"].map(str::to_owned);
    let width = |i: usize| cells.iter().chain([&header]).map(|c| c[i].len()).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    for [table, rows, ids] in std::iter::once(&header).chain(&cells) {
        writeln!(out, "{table:<w0$}  {rows:>w1$}  {ids}")?;
    }
    let total: u64 = rows.iter().filter_map(|r| r.counted.as_ref().ok()).map(|c| c.0).sum();
    let refused = rows.iter().filter(|r| r.counted.is_err()).count();
    let refused =
        if refused > 0 { format!(" ({refused} refused by the portal)") } else { String::new() };
    writeln!(out, "{} tables, {total} rows{refused}", rows.len())
}

fn document(rows: &[Row]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| match &r.counted {
                Ok((n, ids)) => json!({
                    "table": r.table,
                    "rows": n,
                    "ids": ids.map(|(min, max)| json!({"min": min, "max": max})),
                }),
                Err(message) => json!({"table": r.table, "refused": message}),
            })
            .collect(),
    )
}

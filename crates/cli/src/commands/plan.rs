//! `iptvportal plan`: what `dump` would do with the same options, table by table, measured on the
//! portal and written nowhere. The library's [`iptvportal_dump::estimate`] does the work; this
//! module chooses the tables and configurations as `dump` does and prints the estimates.

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use iptvportal_client::Error as ClientError;
use iptvportal_dump::{Cursor, Error, Estimate, NamedPortal, Portal, StartPoint};
use serde::Serialize;

use crate::args::{ConnectionArgs, DumpArgs, StatusFormat};
use crate::failure;
use crate::progress::{duration, size};

/// One table of the plan: its estimate, or the line `dump` would print for it.
enum Planned {
    Estimated(Box<Estimate>),
    Failed { table: String, line: String },
}

/// Runs `iptvportal plan`: the tables and configurations of `dump` (with its checks and its
/// words), then one estimate per table, in the order given. A table the portal refuses, or whose
/// options the dump refuses, is listed with the dump's error (also printed on stderr) and the
/// others are still planned; a failure that is not about one table (the connection, the login,
/// the retries running out) ends the command.
pub(super) async fn run(
    connection: &ConnectionArgs,
    args: &DumpArgs,
    format: StatusFormat,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let tables = super::dump::table_list(args)?;
    let mut configs = super::dump::configs(args, connection, &tables)?;
    if args.reset {
        // `--reset` deletes the checkpoint before the dump reads it: a fresh run.
        configs = configs.into_iter().map(|c| c.resume(false)).collect();
    }
    let connected = super::connect(connection).await?;
    let client = connected.client.clone();
    // Known as `dump` knows it, so that a checkpoint of another portal is refused alike.
    let portal: Box<dyn Portal> = if connection.demo {
        Box::new(NamedPortal::new(client, crate::demo::identity(&connection.demo_rows)))
    } else {
        Box::new(client)
    };
    let mut planned = Vec::new();
    for config in &configs {
        match iptvportal_dump::estimate(portal.as_ref(), config).await {
            Ok(estimate) => planned.push(Planned::Estimated(Box::new(estimate))),
            Err(e) if about_the_table(&e) => planned.push(Planned::Failed {
                table: config.table.clone(),
                line: failure::render_dump(&e),
            }),
            Err(e) => return Err(e.into()),
        }
    }
    let total = iptvportal_dump::total_duration(estimated(&planned), args.jobs);
    match format {
        StatusFormat::Table => out.write_all(text(&planned, total, args.jobs).as_bytes())?,
        StatusFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &document(&planned, total, args.jobs))?;
            writeln!(out)?;
        }
    }
    let mut failed = false;
    for p in &planned {
        if let Planned::Failed { line, .. } = p {
            eprintln!("{line}");
            failed = true;
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The estimates among `planned`.
fn estimated(planned: &[Planned]) -> impl Iterator<Item = &Estimate> {
    planned.iter().filter_map(|p| match p {
        Planned::Estimated(e) => Some(&**e),
        Planned::Failed { .. } => None,
    })
}

/// Whether `error` is about its table alone (the portal refuses the table or a column, the dump
/// refuses the options for it), so that the other tables are still planned. A failure to reach
/// or to log in to the portal, or one that outlasted the retries, is about every table.
fn about_the_table(error: &Error) -> bool {
    match error {
        Error::Fetch { source, .. } => {
            match source.source_error().and_then(|e| e.downcast_ref::<ClientError>()) {
                Some(client) => matches!(client, ClientError::Server { .. }),
                // A reply of an unexpected shape, a query the table's names cannot build.
                None => true,
            }
        }
        _ => true,
    }
}

/// Where a rerun of the dump starts, in words.
fn resume_text(start: &StartPoint) -> String {
    match start {
        StartPoint::Resume { cursor: Cursor::Offset { offset }, .. } => {
            format!("resume at row {offset}")
        }
        StartPoint::Resume { rows, cursor: Cursor::Id { after: Some(after) } } => {
            format!("resume at row {rows}, after id {after}")
        }
        StartPoint::Resume { rows, .. } => format!("resume at row {rows}"),
        StartPoint::Complete { .. } => "already complete".to_owned(),
        StartPoint::Refused(e) => format!("refused: {}", refusal(e)),
        // `Fresh`, and whatever the library adds later until it is said here.
        _ => "fresh".to_owned(),
    }
}

/// Why the dump would refuse the checkpoint, without the table's name the error starts with.
fn refusal(error: &Error) -> String {
    match error {
        Error::ShapeMismatch { differences, .. } => {
            let what: Vec<String> = differences.iter().map(ToString::to_string).collect();
            format!("config differs from checkpoint ({})", what.join("; "))
        }
        other => {
            let text = other.to_string();
            let table = other.table().map(|t| format!("{t}: ")).unwrap_or_default();
            text.strip_prefix(&table).map_or_else(|| text.clone(), str::to_owned)
        }
    }
}

/// Seconds, to the millisecond.
fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// What the tables sum to.
struct Sums {
    planned: usize,
    rows: u64,
    requests: u64,
    bytes: u64,
}

fn sums(planned: &[Planned]) -> Sums {
    let mut sums = Sums { planned: 0, rows: 0, requests: 0, bytes: 0 };
    for e in estimated(planned) {
        sums.planned += 1;
        sums.rows += e.rows;
        sums.requests += e.requests;
        sums.bytes += e.bytes;
    }
    sums
}

/// The plan as an aligned text table and a total line.
fn text(planned: &[Planned], total: Duration, jobs: usize) -> String {
    let header = ["table", "strategy", "rows", "ids", "requests", "size", "time", "resume"];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for p in planned {
        cells.push(match p {
            Planned::Estimated(e) => vec![
                e.table.clone(),
                e.strategy.to_string(),
                e.rows.to_string(),
                e.ids.map_or_else(|| "-".to_owned(), |(min, max)| format!("{min}..={max}")),
                e.requests.to_string(),
                size(e.bytes),
                duration(e.duration.as_secs_f64()),
                resume_text(&e.start),
            ],
            Planned::Failed { table, line } => {
                let mut row = vec![table.clone()];
                row.extend(std::iter::repeat_n("-".to_owned(), 6));
                row.push(line.replace(['\n', '\r'], " "));
                row
            }
        });
    }
    let mut text = crate::output::aligned_table(&cells, |i| matches!(i, 2 | 4 | 5 | 6));
    let sums = sums(planned);
    let failed = planned.len() - sums.planned;
    let failed = if failed > 0 { format!(", {failed} not planned") } else { String::new() };
    let at_once = jobs.clamp(1, sums.planned.max(1));
    let _ = writeln!(
        text,
        "{} tables, {} rows, {} requests, {}, about {} with --jobs {jobs} ({at_once} at once){failed}",
        planned.len(),
        sums.rows,
        sums.requests,
        size(sums.bytes),
        duration(total.as_secs_f64()),
    );
    text
}

/// `plan --plan-format json`: the tables, then the total.
#[derive(Serialize)]
struct Document<'a> {
    tables: Vec<TableJson<'a>>,
    total: TotalJson,
}

/// One table; structs, so that the keys keep this order.
#[derive(Serialize)]
#[serde(untagged)]
#[expect(clippy::large_enum_variant, reason = "one per table, built only to be serialized")]
enum TableJson<'a> {
    Estimated {
        table: &'a str,
        strategy: &'static str,
        rows: u64,
        ids: Option<IdsJson>,
        to_fetch: u64,
        requests: u64,
        bytes: u64,
        seconds: f64,
        resume: ResumeJson,
        probe: Option<ProbeJson>,
    },
    Failed {
        table: &'a str,
        error: &'a str,
    },
}

#[derive(Serialize)]
struct IdsJson {
    min: i64,
    max: i64,
}

/// Where a rerun starts: `state` is `fresh`, `resume`, `complete` or `refused`, with what it
/// needs beside it.
#[derive(Serialize)]
struct ResumeJson {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct ProbeJson {
    rows: u64,
    fetch_seconds: f64,
    last_page_fetch_seconds: Option<f64>,
    /// Parallel ID_RANGE: how many pages were fetched at once, and in how long.
    pages_at_once: Option<u64>,
    at_once_seconds: Option<f64>,
    write_seconds: f64,
    bytes: u64,
    empty_bytes: u64,
}

#[derive(Serialize)]
struct TotalJson {
    tables: usize,
    planned: usize,
    rows: u64,
    requests: u64,
    bytes: u64,
    seconds: f64,
    jobs: usize,
}

fn resume_json(start: &StartPoint) -> ResumeJson {
    let mut json =
        ResumeJson { state: "fresh", rows: None, offset: None, after_id: None, reason: None };
    match start {
        StartPoint::Resume { rows, cursor } => {
            json.state = "resume";
            json.rows = Some(*rows);
            match cursor {
                Cursor::Offset { offset } => json.offset = Some(*offset),
                Cursor::Id { after } => json.after_id = *after,
            }
        }
        StartPoint::Complete { rows, .. } => {
            json.state = "complete";
            json.rows = Some(*rows);
        }
        StartPoint::Refused(e) => {
            json.state = "refused";
            json.reason = Some(refusal(e));
        }
        _ => {}
    }
    json
}

fn document(planned: &[Planned], total: Duration, jobs: usize) -> Document<'_> {
    let tables: Vec<TableJson<'_>> = planned
        .iter()
        .map(|p| match p {
            Planned::Estimated(e) => TableJson::Estimated {
                table: &e.table,
                strategy: e.strategy.as_str(),
                rows: e.rows,
                ids: e.ids.map(|(min, max)| IdsJson { min, max }),
                to_fetch: e.to_fetch,
                requests: e.requests,
                bytes: e.bytes,
                seconds: seconds(e.duration),
                resume: resume_json(&e.start),
                probe: e.probe.as_ref().map(|p| ProbeJson {
                    rows: p.rows,
                    fetch_seconds: seconds(p.fetch),
                    last_page_fetch_seconds: p.last_fetch.map(seconds),
                    pages_at_once: p.at_once.map(|(n, _)| n),
                    at_once_seconds: p.at_once.map(|(_, took)| seconds(took)),
                    write_seconds: seconds(p.write),
                    bytes: p.bytes,
                    empty_bytes: p.empty_bytes,
                }),
            },
            Planned::Failed { table, line } => TableJson::Failed { table, error: line },
        })
        .collect();
    let sums = sums(planned);
    Document {
        tables,
        total: TotalJson {
            tables: planned.len(),
            planned: sums.planned,
            rows: sums.rows,
            requests: sums.requests,
            bytes: sums.bytes,
            seconds: seconds(total),
            jobs,
        },
    }
}

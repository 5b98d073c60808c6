//! The format matrix: every format × {plain, gzip} × {offset, id-range, id-range --parallel 3} ×
//! {no filter, a filter}, plus `--all` with `--jobs 2`, a `--columns` subset, and OFFSET dumps
//! `--order-by` a nullable column, each output read back by pyarrow, DuckDB, pandas and Python's
//! own modules and compared with the SQLite file (queried with PostgreSQL's NULL order, which the
//! simulator follows).

use std::time::Duration;

use serde_json::Value;

use super::{Strategy, strings};
use crate::Ctx;
use crate::files::{self, Format, Output};
use crate::python;

/// A table, the filter the matrix applies to it, and the same filter in SQL for the checker.
struct Filtered {
    table: &'static str,
    args: &'static [&'static str],
    sql: &'static str,
}

/// Filters spanning `--where` (several, AND-ed), `--where-json`, booleans, floats and nulls.
const TABLES: [Filtered; 3] = [
    Filtered {
        table: "subscriber",
        args: &["--where", "disabled=false", "--where", "billing__gte=100"],
        sql: "disabled = 0 AND billing >= 100",
    },
    Filtered {
        table: "terminal",
        args: &["--where-json", r#"{"is_not":["subscriber_id",null]}"#],
        sql: "subscriber_id IS NOT NULL",
    },
    Filtered {
        table: "tv_program",
        args: &["--where", "channel_id__lte=150"],
        sql: "channel_id <= 150",
    },
];

/// OFFSET dumps in the order of a nullable column (15% of `last_seen` is NULL), both directions,
/// with `id` breaking ties so that the order is total; `sql` is the same order in SQLite with
/// PostgreSQL's NULL placement spelled out (last ascending, first descending), the order a real
/// portal, and so the simulator, returns.
struct Ordered {
    label: &'static str,
    order_by: &'static str,
    sql: &'static str,
    /// A filter, so that an ordered dump is also a filtered one.
    filter: Option<(&'static [&'static str], &'static str)>,
}

const ORDERED: [Ordered; 2] = [
    Ordered {
        label: "last-seen-asc",
        order_by: "last_seen,id",
        sql: "last_seen IS NULL, last_seen, id",
        filter: None,
    },
    Ordered {
        label: "last-seen-desc",
        order_by: "last_seen DESC,id",
        sql: "last_seen IS NOT NULL, last_seen DESC, id",
        filter: Some((
            &["--where", "last_seen__lt=2024-06-01"],
            "last_seen < '2024-06-01 00:00:00'",
        )),
    },
];

const LIMIT: Duration = Duration::from_secs(180);

/// Runs the matrix and reports every cell.
#[expect(clippy::too_many_lines, reason = "one loop nest that reads as the matrix it runs")]
pub(crate) fn run(ctx: &Ctx, report: &mut crate::report::Report) {
    let root = ctx.work.join("matrix");
    let mut cells = Vec::new();
    let mut compare = Vec::new();
    let mut n = 0usize;
    for (oi, output) in Output::ALL.into_iter().enumerate() {
        for filtered in [false, true] {
            let spec = &TABLES[(oi + usize::from(filtered)) % TABLES.len()];
            let mut dirs = Vec::new();
            for strategy in Strategy::ALL {
                n += 1;
                let name = format!(
                    "{}/{}/{}/{}",
                    output.label(),
                    strategy.label(),
                    spec.table,
                    if filtered { "where" } else { "all-rows" }
                );
                let dir = root.join(name.replace('/', "-"));
                let mut args = strings(&["dump", spec.table, "--out"]);
                args.push(dir.display().to_string());
                args.extend(output.args());
                args.extend(strategy.args());
                args.extend(strings(&["--chunk-size", "700"]));
                if filtered {
                    args.extend(strings(spec.args));
                }
                if output.format == Format::Parquet && strategy != Strategy::Offset {
                    // Small parts, so that several part files are read back as one table.
                    args.extend(strings(&["--part-rows", "1000"]));
                }
                let json_progress = n.is_multiple_of(3);
                args.extend(strings(&["--progress", if json_progress { "json" } else { "none" }]));
                if n.is_multiple_of(4) {
                    // Request logs too must be free of secrets (the secrets phase scans them).
                    args.push("--debug".to_owned());
                }
                let run = ctx.cli.cmd(&args).run(LIMIT);
                let outcome = run.success().and_then(|()| {
                    if json_progress { progress_ends_done(&run.stdout, spec.table) } else { Ok(()) }
                });
                let ok = outcome.is_ok();
                report.check(&format!("matrix {name}: dump"), outcome);
                if ok {
                    let sql = filtered.then_some(spec.sql);
                    cells.push(python::cell(&name, spec.table, output, &dir, sql, None));
                    dirs.push((strategy, dir));
                }
            }
            // Every strategy must write the same output (design §4: parallel chunks reach the sink
            // in id order).
            if let Some((_, first)) = dirs.first() {
                for (strategy, dir) in &dirs[1..] {
                    let name = format!(
                        "matrix {}/{}/{}: same output as offset",
                        output.label(),
                        strategy.label(),
                        spec.table
                    );
                    if output.format == Format::Parquet {
                        compare.push(python::compare(&name, spec.table, first, dir));
                    } else {
                        let a = files::read_decoded(&output.text_file(first, spec.table));
                        let b = files::read_decoded(&output.text_file(dir, spec.table));
                        let outcome = match (a, b) {
                            (Ok(a), Ok(b)) if a == b => Ok(()),
                            (Ok(_), Ok(_)) => Err("the decoded bytes differ".to_owned()),
                            (Err(e), _) | (_, Err(e)) => Err(e),
                        };
                        report.check(&name, outcome);
                    }
                }
            }
        }
    }

    // `--all` over every catalog table, two tables at a time, in a row format and in Parquet.
    for output in [
        Output { format: Format::Csv, gzip: true },
        Output { format: Format::Parquet, gzip: false },
    ] {
        let dir = root.join(format!("all-{}", output.label()));
        let mut args = strings(&[
            "dump",
            "--all",
            "--jobs",
            "2",
            "--chunk-size",
            "1500",
            "--progress",
            "json",
            "--out",
        ]);
        args.push(dir.display().to_string());
        args.extend(output.args());
        let run = ctx.cli.cmd(&args).run(LIMIT);
        let outcome = run.success();
        let ok = outcome.is_ok();
        report.check(&format!("matrix --all {}: dump", output.label()), outcome);
        if ok {
            for table in crate::TABLES {
                let name = format!("all/{}/{table}", output.label());
                cells.push(python::cell(&name, table, output, &dir, None, None));
            }
        }
    }

    // Text in parts (`--part-rows`), each format once: read part by part and by one glob.
    for (output, strategy) in [
        (Output { format: Format::Jsonl, gzip: true }, Strategy::Parallel3),
        (Output { format: Format::Csv, gzip: false }, Strategy::Offset),
        (Output { format: Format::Json, gzip: true }, Strategy::IdRange),
    ] {
        let name = format!("parts/{}/{}/terminal", output.label(), strategy.label());
        let dir = root.join(name.replace('/', "-"));
        let mut args = strings(&["dump", "terminal", "--out"]);
        args.push(dir.display().to_string());
        args.extend(output.args());
        args.extend(strategy.args());
        args.extend(strings(&["--chunk-size", "700", "--part-rows", "1000", "--progress", "none"]));
        let outcome = ctx.cli.cmd(&args).run(LIMIT).success().and_then(|()| {
            let parts = std::fs::read_dir(&dir)
                .map_err(|e| e.to_string())?
                .filter(|e| {
                    e.as_ref().is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.'))
                })
                .count();
            // terminal's rows in parts of 1,400 (two chunks of 700): several files.
            if parts >= 3 { Ok(()) } else { Err(format!("{parts} files in {}", dir.display())) }
        });
        let ok = outcome.is_ok();
        report.check(&format!("matrix {name}: dump"), outcome);
        if ok {
            let mut cell = python::cell(&name, "terminal", output, &dir, None, None);
            cell["parts"] = Value::Bool(true);
            cells.push(cell);
        }
    }

    // OFFSET dumps ordered by a nullable column, in a row format and in Parquet.
    for (i, ordered) in ORDERED.iter().enumerate() {
        let output = if i % 2 == 0 {
            Output { format: Format::Jsonl, gzip: true }
        } else {
            Output { format: Format::Parquet, gzip: false }
        };
        let name = format!("order-by/{}/{}/terminal", ordered.label, output.label());
        let dir = root.join(name.replace('/', "-"));
        let mut args = strings(&["dump", "terminal", "--out"]);
        args.push(dir.display().to_string());
        args.extend(output.args());
        args.extend(Strategy::Offset.args());
        args.extend(strings(&["--chunk-size", "700", "--order-by", ordered.order_by]));
        args.extend(strings(&["--progress", "none"]));
        if let Some((filter, _)) = ordered.filter {
            args.extend(strings(filter));
        }
        let outcome = ctx.cli.cmd(&args).run(LIMIT).success();
        let ok = outcome.is_ok();
        report.check(&format!("matrix {name}: dump"), outcome);
        if ok {
            let where_sql = ordered.filter.map(|(_, sql)| sql);
            cells.push(python::ordered_cell(
                &name,
                "terminal",
                output,
                &dir,
                where_sql,
                ordered.sql,
            ));
        }
    }

    // A column subset in another order than the catalog's.
    let dir = root.join("columns-jsonl");
    let mut args = strings(&[
        "dump",
        "tv_channel",
        "--columns",
        "name,id,disabled,age_rating",
        "--progress",
        "none",
        "--out",
    ]);
    args.push(dir.display().to_string());
    let outcome = ctx.cli.cmd(&args).run(LIMIT).success();
    let ok = outcome.is_ok();
    report.check("matrix --columns: dump", outcome);
    if ok {
        let output = Output { format: Format::Jsonl, gzip: false };
        let columns = ["name", "id", "disabled", "age_rating"];
        cells.push(python::cell(
            "columns/jsonl/tv_channel",
            "tv_channel",
            output,
            &dir,
            None,
            Some(&columns),
        ));
    }

    report.fact(format!("matrix: {n} matrix dumps, {} outputs read back", cells.len()));
    match ctx.checker.run("matrix", &cells, &compare) {
        Ok(verdict) => record(report, &verdict),
        Err(e) => report.check("matrix: python checker", Err(e)),
    }
}

/// Records the checker's verdict on every cell and comparison.
fn record(report: &mut crate::report::Report, verdict: &Value) {
    if let Some(versions) = verdict.get("versions") {
        report.fact(format!("readers: {versions}"));
    }
    for entry in verdict["cells"].as_array().into_iter().flatten() {
        let name = entry["name"].as_str().unwrap_or("?");
        let readers = entry["readers"].as_array().map_or(0, Vec::len);
        let outcome = python::entry_outcome(entry).and_then(|()| {
            if readers == 3 { Ok(()) } else { Err(format!("only {readers} readers ran")) }
        });
        let rows = entry["rows"].as_u64().map(|n| format!(" ({n} rows)")).unwrap_or_default();
        report.check(&format!("matrix {name}: read back{rows}"), outcome);
    }
    for entry in verdict["compare"].as_array().into_iter().flatten() {
        report.check(entry["name"].as_str().unwrap_or("?"), python::entry_outcome(entry));
    }
}

/// `--progress json` printed one JSON object per line on stdout: the table's lines, the last one
/// `done`, then the run's summary (`"event": "summary"`, docs/dump.md) saying the table is done.
fn progress_ends_done(stdout: &str, table: &str) -> Result<(), String> {
    let mut last = None;
    let mut summary = None;
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line)
            .map_err(|e| format!("a progress line is not JSON ({e}): {line}"))?;
        if summary.is_some() {
            return Err(format!("a line after the summary: {line}"));
        }
        match value["event"].as_str() {
            Some("summary") => summary = Some(value),
            Some(event) => return Err(format!("an event {event:?} of a one-table dump: {line}")),
            None if value["table"] != table => {
                return Err(format!("a progress line for another table: {line}"));
            }
            None => last = Some(value),
        }
    }
    match last {
        Some(v) if v["state"] == "done" => {}
        other => return Err(format!("the last progress line is not `done`: {other:?}")),
    }
    let summary = summary.ok_or("no summary line at the end")?;
    let tables = summary["tables"].as_array().map_or(&[][..], Vec::as_slice);
    match tables {
        [one] if one["table"] == table && one["status"] == "done" => Ok(()),
        _ => Err(format!("the summary does not say {table} is done: {summary}")),
    }
}

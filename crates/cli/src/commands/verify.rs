//! `iptvportal verify`: a dump directory's files checked against the manifests in their
//! checkpoints and, with `--source`, their rows recounted on the portal.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use iptvportal_dump::{
    Compression, DumpConfig, Format, IdRange, Portal, TableReport, TableStatus, Unverified,
};
use serde::Serialize;

use crate::args::{ConnectionArgs, VerifyArgs, VerifyFormat};
use crate::config::Storage;
use crate::failure::Hinted;

/// What to do about a directory that holds no dump.
const DIR_HINT: &str = "pass the directory the dump wrote to (its --out)";

/// Runs `iptvportal verify`: exit 0 when every table holds, 1 when any has a problem.
pub(super) async fn run(
    connection: &ConnectionArgs,
    storage: &Storage,
    args: &VerifyArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let dir = args.dir.as_path();
    if let Some(bucket) = crate::remote::reader(dir, storage, "DIR")? {
        return run_bucket(connection, bucket, args, out).await;
    }
    crate::failure::local_path(dir, "DIR")?;
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(
                Hinted::new(format!("{} is not a directory", dir.display()), DIR_HINT).into()
            );
        }
        Err(e) => {
            return Err(
                Hinted::new(format!("no dump directory {}: {e}", dir.display()), DIR_HINT).into()
            );
        }
    }
    // A table synced in DIR (DIR/TABLE/sync.json) is checked run by run; the others as dumps.
    let synced = iptvportal_dump::sync::tables(dir);
    let (sync_tables, dump_tables): (Vec<String>, Vec<String>) = if args.tables.is_empty() {
        (synced, Vec::new())
    } else {
        args.tables.iter().cloned().partition(|t| synced.contains(t))
    };
    let mut reports = if args.tables.is_empty() || !dump_tables.is_empty() {
        iptvportal_dump::verify_dir(dir, &dump_tables).await.map_err(|e| {
            Hinted::new(
                format!("cannot list {}: {e}", dir.display()),
                "check the directory's permissions",
            )
        })?
    } else {
        Vec::new()
    };
    if reports.is_empty() && sync_tables.is_empty() {
        return Err(Hinted::new(
            format!(
                "no dumps in {}: it holds no .TABLE.state.json checkpoint and no TABLE/sync.json",
                dir.display()
            ),
            DIR_HINT,
        )
        .into());
    }
    // The portal recounts dumps: a sync's runs are windows of a table that has moved since.
    if args.source {
        recount(connection, dir, &mut reports).await?;
    }
    for table in &sync_tables {
        reports.extend(iptvportal_dump::sync::verify(dir, table).await?);
    }
    report(dir, args, &reports, out)
}

/// `verify s3://bucket/prefix`: each table's objects against its manifest in the bucket, every
/// part downloaded once into a scratch directory (removed at the end) and checked there.
async fn run_bucket(
    connection: &ConnectionArgs,
    bucket: Arc<dyn iptvportal_store::Destination>,
    args: &VerifyArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::Builder::new().prefix("iptvportal-verify-").tempdir().map_err(|e| {
        Hinted::new(
            format!("cannot make a scratch directory to check the parts in: {e}"),
            "set TMPDIR to a writable directory with room for one part",
        )
    })?;
    let mut reports =
        iptvportal_dump::verify_bucket(Arc::clone(&bucket), &args.tables, scratch.path())
            .await
            .map_err(|e| Hinted::new(e.to_string(), "see docs/object-storage.md"))?;
    let place = PathBuf::from(bucket.display());
    if reports.is_empty() {
        return Err(Hinted::new(
            format!("no dumps in {}: no TABLE/_manifest.json under it", place.display()),
            "pass the --out the dump wrote to (s3://bucket/prefix)",
        )
        .into());
    }
    if args.source {
        recount(connection, &place, &mut reports).await?;
    }
    report(&place, args, &reports, out)
}

/// Prints `reports` as `args.format` says; exit 1 when any table has a problem.
fn report(
    dir: &Path,
    args: &VerifyArgs,
    reports: &[TableReport],
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    match args.format {
        VerifyFormat::Text => text(reports, out)?,
        VerifyFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &document(dir, reports))?;
            writeln!(out)?;
        }
    }
    let problems = reports.iter().any(|r| r.status() == TableStatus::Problems);
    Ok(if problems { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Recounts every table whose files hold on the portal of the connection options, with the
/// request timeout and retries `dump` would use. Connects only when there is such a table.
async fn recount(
    connection: &ConnectionArgs,
    dir: &Path,
    reports: &mut [TableReport],
) -> anyhow::Result<()> {
    if !reports.iter().any(|r| r.unverified.is_none() && r.problems.is_empty()) {
        return Ok(());
    }
    // Kept until the end: with --demo it is the portal.
    let connected = super::connect(connection).await?;
    let identity = if connection.demo {
        Some(crate::demo::identity(&connection.demo_rows))
    } else {
        connected.client.identity()
    };
    for report in reports {
        let config = DumpConfig::new(&report.table, dir)
            .batch_timeout(connection.timeout)
            .max_retries(connection.max_retries);
        let source = connected.client.source(&config, Arc::new(|| {}));
        iptvportal_dump::recount(report, source.as_ref(), identity.as_deref()).await?;
    }
    Ok(())
}

/// One line per problem, one per table that holds, then the summary.
fn text(reports: &[TableReport], out: &mut impl Write) -> std::io::Result<()> {
    for report in reports {
        let table = &report.table;
        if let Some(why) = &report.unverified {
            writeln!(out, "{table}: {}", unverified(why))?;
        }
        for problem in &report.problems {
            writeln!(out, "{table}: {problem}")?;
        }
        for mismatch in report.source.iter().flat_map(|s| &s.mismatches) {
            writeln!(out, "{table}: {mismatch}")?;
        }
        let rows = plural(report.rows, "row");
        match report.status() {
            TableStatus::Ok => {
                let files = plural(report.file_count() as u64, "file");
                writeln!(out, "{table}: ok, {rows} in {files}{}", notes(report))?;
            }
            TableStatus::Incomplete => writeln!(
                out,
                "{table}: incomplete, {rows} committed so far{}; rerun the same {} command to \
                 resume it",
                notes(report),
                if report.run.is_some() { "sync" } else { "dump" }
            )?,
            _ => {}
        }
    }
    writeln!(out, "{}", summary(reports))
}

/// What a sound table's line adds: how deep the check went and what the portal said.
fn notes(report: &TableReport) -> String {
    let mut notes = String::new();
    if report.sizes_only {
        notes.push_str(" (sizes only: its checkpoint predates checksums)");
    }
    if let Some(source) = &report.source {
        match source.uncounted {
            Some(why) => {
                // Writing to a String cannot fail.
                let _ = write!(notes, " ({why})");
            }
            None if !source.counts.is_empty() => notes.push_str(", the portal agrees"),
            None => {}
        }
    }
    notes
}

/// A table that could not be checked, with what to do where there is something.
fn unverified(why: &Unverified) -> String {
    match why {
        // A bucket's line says what to do itself.
        Unverified::Checkpoint(e @ iptvportal_checkpoint::Error::Remote { .. }) => e.to_string(),
        Unverified::Checkpoint(e) => format!("{e}; {}", crate::failure::checkpoint_hint(e)),
        other => other.to_string(),
    }
}

/// `verified 3 tables: 2 ok, 1 with problems`; `verified 1 table and 2 sync runs: 3 ok`.
fn summary(reports: &[TableReport]) -> String {
    let count = |status| reports.iter().filter(|r| r.status() == status).count() as u64;
    let runs = reports.iter().filter(|r| r.run.is_some()).count() as u64;
    let tables = reports.len() as u64 - runs;
    let what = match (tables, runs) {
        (t, 0) => plural(t, "table"),
        (0, r) => plural(r, "sync run"),
        (t, r) => format!("{} and {}", plural(t, "table"), plural(r, "sync run")),
    };
    let mut line = format!("verified {what}: {} ok", count(TableStatus::Ok));
    for (status, words) in
        [(TableStatus::Incomplete, "incomplete"), (TableStatus::Problems, "with problems")]
    {
        if count(status) > 0 {
            let _ = write!(line, ", {} {words}", count(status));
        }
    }
    line
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// `verify --format json`: one document, its keys in the documented order.
#[derive(Serialize)]
struct Document<'a> {
    dir: String,
    tables: Vec<TableJson<'a>>,
    summary: SummaryJson,
}

#[derive(Serialize)]
struct TableJson<'a> {
    table: &'a str,
    status: &'static str,
    complete: bool,
    rows: u64,
    format: Option<String>,
    /// `checksums`, `sizes` (a checkpoint without checksums), or null when nothing was checked.
    checked: Option<&'static str>,
    files: Vec<FileJson<'a>>,
    problems: Vec<ProblemJson>,
    source: Option<SourceJson>,
}

#[derive(Serialize)]
struct FileJson<'a> {
    name: &'a str,
    rows: u64,
    bytes: u64,
    crc32: String,
    ids: Option<IdRange>,
}

#[derive(Serialize)]
struct ProblemJson {
    /// The file, when the problem is about one.
    file: Option<String>,
    problem: String,
}

#[derive(Serialize)]
struct SourceJson {
    counts: Vec<CountJson>,
    uncounted: Option<String>,
}

#[derive(Serialize)]
struct CountJson {
    file: Option<String>,
    ids: Option<IdRange>,
    rows: u64,
    portal: u64,
}

#[derive(Serialize)]
struct SummaryJson {
    tables: usize,
    ok: usize,
    incomplete: usize,
    with_problems: usize,
}

fn document<'a>(dir: &Path, reports: &'a [TableReport]) -> Document<'a> {
    let count = |status| reports.iter().filter(|r| r.status() == status).count();
    Document {
        dir: dir.display().to_string(),
        tables: reports.iter().map(table_json).collect(),
        summary: SummaryJson {
            tables: reports.len(),
            ok: count(TableStatus::Ok),
            incomplete: count(TableStatus::Incomplete),
            with_problems: count(TableStatus::Problems),
        },
    }
}

fn table_json(report: &TableReport) -> TableJson<'_> {
    let path = |name: &str| Some(report.dir.join(name).display().to_string());
    let mut problems = Vec::new();
    match &report.unverified {
        Some(Unverified::Checkpoint(e)) => problems.push(ProblemJson {
            file: path(&iptvportal_checkpoint::state_file_name(&report.table)),
            problem: e.to_string(),
        }),
        Some(other) => problems.push(ProblemJson { file: None, problem: other.to_string() }),
        None => {}
    }
    for p in &report.problems {
        problems.push(ProblemJson {
            file: Some(p.path.display().to_string()),
            problem: p.kind.to_string(),
        });
    }
    for m in report.source.iter().flat_map(|s| &s.mismatches) {
        let file = match m {
            iptvportal_dump::Mismatch::Range { file, .. } => path(file),
            _ => None,
        };
        problems.push(ProblemJson { file, problem: m.to_string() });
    }
    let checked = match (&report.unverified, report.sizes_only) {
        (Some(_), _) => None,
        (None, true) => Some("sizes"),
        (None, false) => Some("checksums"),
    };
    TableJson {
        table: &report.table,
        status: report.status().as_str(),
        complete: report.complete,
        rows: report.rows,
        format: report.format.map(|f| format_name(f, report.compression)),
        checked,
        files: report
            .files
            .iter()
            .map(|f| FileJson {
                name: &f.name,
                rows: f.rows,
                bytes: f.bytes,
                crc32: f.crc32.to_string(),
                ids: f.ids,
            })
            .collect(),
        problems,
        source: report.source.as_ref().map(|s| SourceJson {
            counts: s
                .counts
                .iter()
                .map(|c| CountJson {
                    file: c.file.clone(),
                    ids: c.ids,
                    rows: c.dumped,
                    portal: c.portal,
                })
                .collect(),
            uncounted: s.uncounted.map(|u| u.to_string()),
        }),
    }
}

/// `jsonl`, `csv.gz`, …, as `status` shows it.
fn format_name(format: Format, compression: Option<Compression>) -> String {
    match compression {
        Some(Compression::Gzip { .. }) => format!("{format}.gz"),
        _ => format.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(table: &str, complete: bool) -> TableReport {
        let mut report = TableReport::new(table.to_owned(), Path::new("out"));
        report.complete = complete;
        report.run = table.split_once("/run-").and_then(|(_, n)| n.parse().ok());
        report
    }

    #[test]
    fn the_summary_counts_tables_and_sync_runs_apart() {
        let t = || report("terminal", true);
        let r1 = || report("media/run-00001", true);
        let r2 = || report("media/run-00002", false);
        assert_eq!(summary(&[t()]), "verified 1 table: 1 ok");
        assert_eq!(summary(&[r1()]), "verified 1 sync run: 1 ok");
        assert_eq!(
            summary(&[t(), r1(), r2()]),
            "verified 1 table and 2 sync runs: 2 ok, 1 incomplete"
        );
        // A table whose name merely holds a slash and "run" is a table.
        assert_eq!(summary(&[report("a/runner", true)]), "verified 1 table: 1 ok");
        let mut out = Vec::new();
        text(&[r2()], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "media/run-00002: incomplete, 0 rows committed so far; rerun the same sync command \
             to resume it\nverified 1 sync run: 0 ok, 1 incomplete\n"
        );
    }
}

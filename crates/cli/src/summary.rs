//! What `dump` says when it ends: the summary table on stderr and the JSON summary (`--summary
//! FILE`, and the last line of `--progress json`), a stable document for cron and Airflow
//! (docs/dump.md, "The JSON summary").

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use iptvportal_checkpoint::DumpState;
use iptvportal_dump::{DumpProgress, DumpStats, Outcome, Strategy};

use crate::failure::Hinted;
use crate::progress::{duration, round, size};

/// Rows above which an OFFSET dump is worth switching to id-range: past this, the server's cost of
/// skipping to each page dominates (docs/dump.md, "Strategies").
const LARGE_OFFSET_TABLE: u64 = 100_000;

/// The version of the JSON summary (`--summary`, the `summary` event): bumped only when a field
/// changes meaning or goes away; fields are added without a bump.
pub(crate) const SUMMARY_VERSION: u32 = 1;

/// How a table's dump ended, as the summary says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// This run completed the output.
    Done,
    /// The checkpoint said the output was complete already; nothing was fetched.
    AlreadyComplete,
    /// The dump stopped on an error; its checkpoint resumes it.
    Failed,
    /// The dump was stopped by a signal (or never started because of one); its checkpoint
    /// resumes it.
    Cancelled,
}

impl Status {
    /// The word of the summary table.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::AlreadyComplete => "already complete",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// The value of the JSON summary's `status`: one token, for scripts.
    fn key(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::AlreadyComplete => "already_complete",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// The state a progress bar is left in: an already complete table is done.
    pub(crate) fn bar_state(self) -> &'static str {
        match self {
            Status::Done | Status::AlreadyComplete => "done",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// One output file of a table, as the summary lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct FileEntry {
    /// Its name in the output directory.
    pub(crate) name: String,
    /// Its size (a finished table), or its committed length (a stopped one).
    pub(crate) bytes: u64,
}

/// One table of the end-of-run summary: a row of the summary table and an entry of the JSON
/// summary, whatever the table's end (done, already complete, failed, cancelled).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SummaryRow {
    pub(crate) table: String,
    pub(crate) status: Status,
    /// Rows in the output, over every run (a stopped table: as committed).
    pub(crate) rows: u64,
    /// Rows written by this run.
    pub(crate) rows_this_run: u64,
    /// The rows done before this run, when it resumed a checkpoint that held some: time and
    /// rows/s then cover this run only, which the summary says.
    pub(crate) resumed_at: Option<u64>,
    pub(crate) files: Vec<FileEntry>,
    /// Seconds and rows/s of this run; `None` when it did nothing for the table (already
    /// complete, or never started).
    pub(crate) timing: Option<(f64, f64)>,
    /// The strategy the output was (or was to be) walked with: `offset` or `id-range`; `None`
    /// when the run stopped before it knew.
    pub(crate) strategy: Option<&'static str>,
    /// Requests of this run retried after a transient failure.
    pub(crate) retries: u64,
    /// The warnings about the table, without their `warning: ` prefix.
    pub(crate) warnings: Vec<String>,
    /// Why the table failed: its `error:` line without the prefix.
    pub(crate) error: Option<String>,
    /// Whether the table got past the checks before its first request (it was counted, or has a
    /// checkpoint). A table refused before (a bad option, an unknown table) has only its error
    /// line to show.
    pub(crate) started: bool,
    /// Advice printed below the table (an OFFSET dump of a large table).
    pub(crate) hint: Option<String>,
}

impl SummaryRow {
    /// The row of a table whose dump finished (done or already complete).
    pub(crate) fn of(stats: &DumpStats) -> SummaryRow {
        let already = stats.outcome == Outcome::AlreadyComplete;
        let table = &stats.config.table;
        let rows = stats.progress.dumped_rows;
        // Only where id-range can work: a table the catalog knows without an id column cannot.
        // Only for an offset asked for by name: `auto` chose offset only where id-range cannot
        // walk the table (no id, another order, a resume offset) or a checkpoint was offset's.
        let has_id = iptvportal_catalog::table(table).is_none_or(|t| t.id_column.is_some());
        let hint = (stats.config.strategy == iptvportal_dump::DumpStrategy::Offset
            && rows > LARGE_OFFSET_TABLE
            && has_id)
            .then(|| {
                format!(
                    "hint: {table} ({rows} rows) was dumped with --strategy offset, whose cost per chunk grows with the offset; --strategy id-range keeps it constant (with --reset, or into another --out)"
                )
            });
        let files = stats
            .files
            .iter()
            .filter_map(|f| {
                let name = f.path.file_name()?.to_string_lossy().into_owned();
                Some(FileEntry { name, bytes: f.bytes })
            })
            .collect();
        let warnings = stats
            .warnings
            .iter()
            .map(|w| {
                let line = crate::failure::render_warning(w);
                line.strip_prefix("warning: ").map_or_else(|| line.clone(), str::to_owned)
            })
            .collect();
        SummaryRow {
            table: table.clone(),
            status: if already { Status::AlreadyComplete } else { Status::Done },
            rows,
            rows_this_run: stats.progress.rows_this_run(),
            resumed_at: (!already).then(|| resumed_at(&stats.progress)).flatten(),
            files,
            timing: (!already)
                .then(|| (stats.progress.elapsed_seconds(), stats.progress.rows_per_second())),
            strategy: Some(stats.strategy.as_str()),
            retries: stats.progress.retries,
            warnings,
            error: None,
            started: true,
            hint,
        }
    }

    /// The row of a table whose dump stopped (failed or cancelled) or never started: its rows
    /// and files as its checkpoint has them committed (else as far as `progress`, this run's,
    /// got), and this run's time, rate and retries. `error` is its `error:` line.
    pub(crate) fn stopped(
        table: &str,
        status: Status,
        progress: Option<&DumpProgress>,
        state: Option<&DumpState>,
        strategy: Option<Strategy>,
        error: Option<&str>,
    ) -> SummaryRow {
        let rows =
            state.map(|s| s.dumped_rows).or(progress.map(|p| p.dumped_rows)).unwrap_or_default();
        let files = state
            .map(|s| {
                s.sink
                    .files
                    .iter()
                    .map(|f| FileEntry { name: f.name.clone(), bytes: f.bytes })
                    .collect()
            })
            .unwrap_or_default();
        SummaryRow {
            table: table.to_owned(),
            status,
            rows,
            rows_this_run: progress.map_or(0, |p| p.rows_this_run().min(rows)),
            resumed_at: progress.and_then(resumed_at),
            files,
            timing: progress.map(|p| (p.elapsed_seconds(), p.rows_per_second())),
            strategy: strategy.map(Strategy::as_str),
            retries: progress.map_or(0, |p| p.retries),
            warnings: Vec::new(),
            error: error.map(|line| line.strip_prefix("error: ").unwrap_or(line).to_owned()),
            started: state.is_some() || progress.is_some_and(|p| p.total_rows.is_some()),
            hint: None,
        }
    }

    /// Whether the table was refused before its first request, with nothing of it on disk.
    pub(crate) fn refused(&self) -> bool {
        self.status == Status::Failed && !self.started
    }

    fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// The last column of the summary table: how a resumed run's figures are meant, the
    /// warnings, the error in short.
    fn note(&self) -> String {
        let mut notes = Vec::new();
        if let (Some(at), Some(_)) = (self.resumed_at, self.timing) {
            notes.push(format!("resumed at {at}; time and rows/s of this run"));
        }
        match self.warnings.len() {
            0 => {}
            1 => notes.push("1 warning".to_owned()),
            n => notes.push(format!("{n} warnings")),
        }
        if let Some(error) = &self.error {
            notes.push(short_error(&self.table, error));
        }
        notes.join(", ")
    }
}

/// The rows a run started from, when it resumed a checkpoint that held some.
fn resumed_at(progress: &DumpProgress) -> Option<u64> {
    Some(progress.dumped_rows - progress.rows_this_run()).filter(|&rows| rows > 0)
}

/// Characters of an error the summary table shows; the whole line follows below it.
const SHORT_ERROR: usize = 60;

/// What happened, without the table (the row names it), the advice (the `error:` line below the
/// table has it) and past [`SHORT_ERROR`] characters.
fn short_error(table: &str, error: &str) -> String {
    let what = error.strip_prefix(table).and_then(|e| e.strip_prefix(": ")).unwrap_or(error);
    let what = what.split_once("; ").map_or(what, |(what, _)| what);
    if what.chars().count() <= SHORT_ERROR {
        return what.to_owned();
    }
    let mut short: String = what.chars().take(SHORT_ERROR - 1).collect();
    short.truncate(short.trim_end().len());
    short.push('…');
    short
}

/// One file's name, or the first and last of a numbered series: `terminal-00000..00002.parquet`.
fn file_names(files: &[FileEntry]) -> String {
    match files {
        [] => "-".to_owned(),
        [one] => one.name.clone(),
        [first, .., last] => {
            // Parquet parts differ in their number only: `{table}-{n}.parquet`.
            let split = |s: &'_ str| -> Option<(String, String, String)> {
                let (base, rest) = s.rsplit_once('-')?;
                let (n, ext) = rest.split_once('.')?;
                Some((base.to_owned(), n.to_owned(), ext.to_owned()))
            };
            match (split(&first.name), split(&last.name)) {
                (Some((base, a, ext)), Some((base2, b, ext2))) if base == base2 && ext == ext2 => {
                    format!("{base}-{a}..{b}.{ext}")
                }
                _ => format!("{} .. {}", first.name, last.name),
            }
        }
    }
}

/// The summary as aligned text: a header, then one line per table, then the hints.
pub(crate) fn summary(rows: &[SummaryRow]) -> String {
    let mut cells = vec![
        ["table", "status", "rows", "files", "size", "time", "rows/s", "strategy", "output", ""]
            .map(String::from),
    ];
    for r in rows {
        let (time, rate) = r.timing.map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |(s, rps)| (duration(s), format!("{rps:.0}")),
        );
        cells.push([
            r.table.clone(),
            r.status.text().to_owned(),
            r.rows.to_string(),
            r.files.len().to_string(),
            size(r.bytes()),
            time,
            rate,
            r.strategy.unwrap_or("-").to_owned(),
            file_names(&r.files),
            r.note(),
        ]);
    }
    // Names, the status, the output and the note read left to right; numbers line up on the
    // right.
    let mut text = crate::output::aligned_table(&cells, |i| (2..7).contains(&i));
    for hint in rows.iter().filter_map(|r| r.hint.as_deref()) {
        text.push_str(hint);
        text.push('\n');
    }
    text
}

/// The whole run, as `--summary` writes it and the `summary` event of `--progress json` ends
/// with (docs/dump.md, "The JSON summary").
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub(crate) started_at: SystemTime,
    pub(crate) finished_at: SystemTime,
    /// The exit code the run ends with: 0, 1 or 130.
    pub(crate) exit_code: u8,
    /// What stopped the run as a whole before its tables ran (a bad filter, no portal given):
    /// its `error:` line.
    pub(crate) error: Option<String>,
    pub(crate) tables: Vec<SummaryRow>,
}

/// The JSON summary; a struct, so that the keys keep the documented order.
#[derive(serde::Serialize)]
struct Document<'a> {
    version: u32,
    started_at: String,
    finished_at: String,
    exit_code: u8,
    error: Option<&'a str>,
    tables: Vec<TableDocument<'a>>,
}

#[derive(serde::Serialize)]
struct TableDocument<'a> {
    table: &'a str,
    status: &'static str,
    rows: u64,
    rows_this_run: u64,
    resumed_at: Option<u64>,
    files: &'a [FileEntry],
    bytes: u64,
    strategy: Option<&'static str>,
    seconds: f64,
    rows_per_second: f64,
    retries: u64,
    warnings: &'a [String],
    error: Option<&'a str>,
}

/// The summary event: the document with `"event":"summary"` first, which no progress line has.
#[derive(serde::Serialize)]
struct Event<'a> {
    event: &'static str,
    #[serde(flatten)]
    document: Document<'a>,
}

impl Report {
    fn document(&self) -> Document<'_> {
        let tables = self
            .tables
            .iter()
            .map(|r| TableDocument {
                table: &r.table,
                status: r.status.key(),
                rows: r.rows,
                rows_this_run: r.rows_this_run,
                resumed_at: r.resumed_at,
                files: &r.files,
                bytes: r.bytes(),
                strategy: r.strategy,
                seconds: r.timing.map_or(0.0, |(s, _)| round(s, 3)),
                rows_per_second: r.timing.map_or(0.0, |(_, rps)| round(rps, 1)),
                retries: r.retries,
                warnings: &r.warnings,
                error: r.error.as_deref(),
            })
            .collect();
        Document {
            version: SUMMARY_VERSION,
            started_at: rfc3339(self.started_at),
            finished_at: rfc3339(self.finished_at),
            exit_code: self.exit_code,
            error: self.error.as_deref().map(|e| e.strip_prefix("error: ").unwrap_or(e)),
            tables,
        }
    }

    /// The contents of the `--summary` file: the document, indented, and a newline.
    pub(crate) fn json(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(&self.document()).expect("plain fields always serialize");
        text.push('\n');
        text
    }

    /// The last line of `--progress json`: `{"event":"summary",…}` and the document, on one line.
    pub(crate) fn event_line(&self) -> String {
        let event = Event { event: "summary", document: self.document() };
        serde_json::to_string(&event).expect("plain fields always serialize")
    }
}

/// `2026-03-01T12:00:05Z`: RFC 3339 in UTC to the second, as the checkpoint writes its times.
fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    format!("{}Z", iptvportal_catalog::time::format_timestamp(secs).replacen(' ', "T", 1))
}

/// Where `--summary` goes: a file whose directory was found writable before the run began.
#[derive(Debug, Clone)]
pub(crate) struct SummaryFile {
    path: PathBuf,
    dir: PathBuf,
    temp: PathBuf,
}

impl SummaryFile {
    /// Checks that `path` can be written: its directory exists and takes a new file (tried by
    /// creating and removing the temp file the summary is written through), and `path` is not a
    /// directory. Refused with one line, before anything is sent or written.
    pub(crate) fn check(path: &Path) -> anyhow::Result<SummaryFile> {
        let refuse = |why: String| -> anyhow::Error {
            Hinted::new(
                format!("cannot write the summary to {}: {why}", path.display()),
                "choose another --summary FILE (or summary in the config file), or create its directory and make it writable",
            )
            .into()
        };
        let Some(name) = path.file_name() else {
            return Err(refuse("it names no file".to_owned()));
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(refuse(format!("{} is not a directory", dir.display()))),
            Err(e) => return Err(refuse(format!("{}: {e}", dir.display()))),
        }
        if path.is_dir() {
            return Err(refuse("it is a directory".to_owned()));
        }
        let temp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
        std::fs::File::create(&temp).map_err(|e| refuse(format!("{}: {e}", dir.display())))?;
        let _ = std::fs::remove_file(&temp);
        Ok(SummaryFile { path: path.to_owned(), dir, temp })
    }

    /// Replaces the file with `text` atomically: written to a temp file in the same directory,
    /// `fsync`ed, renamed over it, the directory `fsync`ed. A reader sees the old summary or the
    /// new one, never half of one.
    pub(crate) fn write(&self, text: &str) -> std::io::Result<()> {
        let result = (|| {
            let mut file = std::fs::File::create(&self.temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&self.temp, &self.path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&self.temp);
        }
        result
    }

    /// The `error:` line of a summary that could not be written at the end.
    pub(crate) fn failed(&self, error: &std::io::Error) -> String {
        format!(
            "error: cannot write the summary to {}: {error}; check that disk (free space, permissions): the dump itself is unaffected",
            self.path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;

    /// A row with nothing but its table and status; tests fill in the rest.
    fn row(table: &str, status: Status) -> SummaryRow {
        SummaryRow {
            table: table.to_owned(),
            status,
            rows: 0,
            rows_this_run: 0,
            resumed_at: None,
            files: Vec::new(),
            timing: None,
            strategy: Some("id-range"),
            retries: 0,
            warnings: Vec::new(),
            error: None,
            started: true,
            hint: None,
        }
    }

    fn file(name: &str, bytes: u64) -> FileEntry {
        FileEntry { name: name.to_owned(), bytes }
    }

    /// One table of each end: done, already complete, failed part way, cancelled after a resume.
    fn rows() -> Vec<SummaryRow> {
        vec![
            SummaryRow {
                rows: 3000,
                rows_this_run: 3000,
                files: vec![file("terminal.jsonl", 412_345)],
                timing: Some((0.61, 4918.0)),
                warnings: vec!["terminal: counted 2999 rows up front but dumped 3000".to_owned()],
                ..row("terminal", Status::Done)
            },
            SummaryRow {
                rows: 40,
                files: vec![
                    file("package-00000.parquet", 2048),
                    file("package-00001.parquet", 2048),
                    file("package-00002.parquet", 1024),
                ],
                strategy: Some("offset"),
                hint: Some("hint: use id-range".to_owned()),
                ..row("package", Status::AlreadyComplete)
            },
            SummaryRow {
                rows: 1200,
                rows_this_run: 1200,
                files: vec![file("media.jsonl", 96_000)],
                timing: Some((12.5, 96.0)),
                retries: 3,
                error: Some(
                    "media: the portal did not answer in time after 3 retries (timeout 30s); check the portal, or raise --timeout"
                        .to_owned(),
                ),
                ..row("media", Status::Failed)
            },
            SummaryRow {
                rows: 45_000,
                rows_this_run: 5000,
                resumed_at: Some(40_000),
                files: vec![file("tv_program.csv", 4_500_000)],
                timing: Some((2.0, 2500.0)),
                ..row("tv_program", Status::Cancelled)
            },
        ]
    }

    #[test]
    fn the_summary_shows_every_end_aligned() {
        expect_test::expect![[r"
            table       status             rows  files       size  time  rows/s  strategy  output
            terminal    done               3000      1  402.7 KiB  0.6s    4918  id-range  terminal.jsonl                1 warning
            package     already complete     40      3    5.0 KiB     -       -  offset    package-00000..00002.parquet
            media       failed             1200      1   93.8 KiB   13s      96  id-range  media.jsonl                   the portal did not answer in time after 3 retries (timeout…
            tv_program  cancelled         45000      1    4.3 MiB  2.0s    2500  id-range  tv_program.csv                resumed at 40000; time and rows/s of this run
            hint: use id-range
        "]]
        .assert_eq(&summary(&rows()));
    }

    #[test]
    fn a_table_stopped_before_it_began_shows_its_checkpoint() {
        let shape = iptvportal_checkpoint::OutputShape {
            table: "media".to_owned(),
            columns: None,
            filter: None,
            order_by: Vec::new(),
            format: iptvportal_dump::Format::Jsonl,
            compression: iptvportal_dump::Compression::None,
            strategy: Strategy::Offset,
            part_rows: None,
            portal: None,
        };
        // The cursor as a checkpoint holds it: the type is the traversal's, not named here.
        let cursor = serde_json::from_value(json!({"kind": "offset", "offset": 0})).unwrap();
        let mut state = DumpState::fresh("media", cursor, SystemTime::UNIX_EPOCH, shape);
        state.dumped_rows = 300;
        state.sink.files = vec![iptvportal_dump::FileRecord::empty("media.jsonl")];
        state.sink.files[0].bytes = 9000;
        let r = SummaryRow::stopped(
            "media",
            Status::Cancelled,
            None,
            Some(&state),
            Some(Strategy::Offset),
            None,
        );
        assert_eq!(
            r,
            SummaryRow {
                rows: 300,
                files: vec![file("media.jsonl", 9000)],
                strategy: Some("offset"),
                ..row("media", Status::Cancelled)
            }
        );
        assert!(!r.refused());
        // Refused before its first request, with nothing on disk: only its error line shows.
        let refused = SummaryRow::stopped(
            "nope",
            Status::Failed,
            None,
            None,
            None,
            Some("error: nope: counting rows of nope: unknown table; check the table name"),
        );
        assert!(refused.refused());
        assert_eq!(
            refused.error.as_deref(),
            Some("nope: counting rows of nope: unknown table; check the table name")
        );
        expect_test::expect![[r"
            table  status  rows  files  size  time  rows/s  strategy  output
            nope   failed     0      0   0 B     -       -  -         -       counting rows of nope: unknown table
        "]]
        .assert_eq(&summary(&[refused]));
    }

    #[test]
    fn a_long_error_is_cut_in_the_table_only() {
        assert_eq!(short_error("media", "media: disk full; free space"), "disk full");
        let long = format!("media: {}; advice", "word ".repeat(30));
        let short = short_error("media", &long);
        assert_eq!(short.chars().count(), SHORT_ERROR, "{short}");
        assert!(short.ends_with("word…"), "{short}");
        assert_eq!(short_error("media", "other: x"), "other: x");
    }

    fn report() -> Report {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        Report {
            started_at: at(1_772_366_400),
            finished_at: at(1_772_366_415),
            exit_code: 1,
            error: None,
            tables: rows(),
        }
    }

    #[test]
    #[expect(clippy::too_many_lines, reason = "the whole document, as a file holds it")]
    fn the_json_summary_is_the_documented_document() {
        expect_test::expect![[r#"
            {
              "version": 1,
              "started_at": "2026-03-01T12:00:00Z",
              "finished_at": "2026-03-01T12:00:15Z",
              "exit_code": 1,
              "error": null,
              "tables": [
                {
                  "table": "terminal",
                  "status": "done",
                  "rows": 3000,
                  "rows_this_run": 3000,
                  "resumed_at": null,
                  "files": [
                    {
                      "name": "terminal.jsonl",
                      "bytes": 412345
                    }
                  ],
                  "bytes": 412345,
                  "strategy": "id-range",
                  "seconds": 0.61,
                  "rows_per_second": 4918.0,
                  "retries": 0,
                  "warnings": [
                    "terminal: counted 2999 rows up front but dumped 3000"
                  ],
                  "error": null
                },
                {
                  "table": "package",
                  "status": "already_complete",
                  "rows": 40,
                  "rows_this_run": 0,
                  "resumed_at": null,
                  "files": [
                    {
                      "name": "package-00000.parquet",
                      "bytes": 2048
                    },
                    {
                      "name": "package-00001.parquet",
                      "bytes": 2048
                    },
                    {
                      "name": "package-00002.parquet",
                      "bytes": 1024
                    }
                  ],
                  "bytes": 5120,
                  "strategy": "offset",
                  "seconds": 0.0,
                  "rows_per_second": 0.0,
                  "retries": 0,
                  "warnings": [],
                  "error": null
                },
                {
                  "table": "media",
                  "status": "failed",
                  "rows": 1200,
                  "rows_this_run": 1200,
                  "resumed_at": null,
                  "files": [
                    {
                      "name": "media.jsonl",
                      "bytes": 96000
                    }
                  ],
                  "bytes": 96000,
                  "strategy": "id-range",
                  "seconds": 12.5,
                  "rows_per_second": 96.0,
                  "retries": 3,
                  "warnings": [],
                  "error": "media: the portal did not answer in time after 3 retries (timeout 30s); check the portal, or raise --timeout"
                },
                {
                  "table": "tv_program",
                  "status": "cancelled",
                  "rows": 45000,
                  "rows_this_run": 5000,
                  "resumed_at": 40000,
                  "files": [
                    {
                      "name": "tv_program.csv",
                      "bytes": 4500000
                    }
                  ],
                  "bytes": 4500000,
                  "strategy": "id-range",
                  "seconds": 2.0,
                  "rows_per_second": 2500.0,
                  "retries": 0,
                  "warnings": [],
                  "error": null
                }
              ]
            }
        "#]]
        .assert_eq(&report().json());
    }

    #[test]
    fn the_summary_event_is_the_document_on_one_line() {
        let report = report();
        let line = report.event_line();
        assert!(line.starts_with(r#"{"event":"summary","version":1,"started_at":"#), "{line}");
        assert!(!line.contains('\n'));
        let mut event: Value = serde_json::from_str(&line).unwrap();
        event.as_object_mut().unwrap().remove("event");
        let document: Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(event, document);
        // A run stopped as a whole says why, without the `error: ` of its line.
        let failed = Report {
            error: Some("error: login refused; check the user name and password".to_owned()),
            tables: vec![row("terminal", Status::Failed)],
            ..report
        };
        let document: Value = serde_json::from_str(&failed.json()).unwrap();
        assert_eq!(document["error"], json!("login refused; check the user name and password"));
        assert_eq!(document["tables"][0]["status"], json!("failed"));
    }

    #[test]
    fn the_summary_file_is_checked_up_front_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        let file = SummaryFile::check(&path).unwrap();
        // The check leaves nothing behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        file.write("{\"version\":1}\n").unwrap();
        file.write("{\"version\":2}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"version\":2}\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["summary.json"]);

        let refused = |path: &Path| crate::failure::render(&SummaryFile::check(path).unwrap_err());
        let missing = dir.path().join("missing").join("summary.json");
        let line = refused(&missing);
        assert!(
            line.starts_with(&format!(
                "error: cannot write the summary to {}: {}: ",
                missing.display(),
                dir.path().join("missing").display()
            )) && line.contains("; choose another --summary FILE"),
            "{line}"
        );
        let line = refused(dir.path());
        assert!(line.contains(": it is a directory; "), "{line}");
        let line = refused(&path.join("below-a-file.json"));
        assert!(line.contains("summary.json is not a directory; "), "{line}");
    }

    #[test]
    fn numbered_files_are_shown_as_a_range() {
        let files = ["terminal-00000.parquet", "terminal-00001.parquet", "terminal-00002.parquet"]
            .map(|n| file(n, 1));
        assert_eq!(file_names(&files), "terminal-00000..00002.parquet");
        assert_eq!(file_names(&files[..1]), "terminal-00000.parquet");
        assert_eq!(file_names(&[]), "-");
    }
}

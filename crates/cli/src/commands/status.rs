//! `iptvportal status`: the checkpoint of every table in a dump directory, read without a portal.

use std::io::Write;
use std::path::Path;

use iptvportal_checkpoint::{CheckpointStore, DumpState, FileStore};
use iptvportal_dump::Compression;
use iptvportal_dump::sync::{RunRecord, RunState, SyncRecord};

use crate::args::StatusFormat;
use crate::config::Storage;
use crate::failure::Hinted;

/// One table's line: what its checkpoint says, or why it cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) table: String,
    /// `complete`, `incomplete`, `failed` or `corrupt`; `writing` while a run holds the table.
    pub(crate) state: &'static str,
    /// The process id of the run writing the table, when one does and recorded it.
    pub(crate) writer_pid: Option<u32>,
    /// Who writes it (`host pid N`), for a table in a bucket.
    pub(crate) writer: Option<String>,
    pub(crate) rows: Option<u64>,
    pub(crate) total: Option<u64>,
    pub(crate) format: Option<String>,
    pub(crate) strategy: Option<String>,
    pub(crate) updated: Option<String>,
    pub(crate) error: Option<String>,
    /// A synced table's runs (`DIR/TABLE/sync.json`).
    pub(crate) runs: Option<Vec<RunRecord>>,
}

impl Entry {
    fn of(table: String, state: Result<DumpState, iptvportal_checkpoint::Error>) -> Entry {
        match state {
            Ok(s) => {
                let format = match s.shape.compression {
                    Compression::Gzip { .. } => format!("{}.gz", s.shape.format),
                    _ => s.shape.format.to_string(),
                };
                let state = if s.is_complete {
                    "complete"
                } else if s.last_error.is_some() {
                    "failed"
                } else {
                    "incomplete"
                };
                Entry {
                    table,
                    state,
                    writer_pid: None,
                    writer: None,
                    rows: Some(s.dumped_rows),
                    // A complete dump's own count is the truth, even where the up-front count
                    // differed (the table changed under OFFSET paging).
                    total: if s.is_complete { Some(s.dumped_rows) } else { s.total_rows },
                    format: Some(format),
                    strategy: Some(s.shape.strategy.to_string()),
                    updated: Some(s.last_updated_at),
                    error: s.last_error.filter(|_| !s.is_complete),
                    runs: None,
                }
            }
            Err(e) => {
                let mut entry = Entry::empty(table, "corrupt");
                entry.error = Some(format!("{e}; {}", crate::failure::checkpoint_hint(&e)));
                entry
            }
        }
    }

    /// A synced table's entry: complete when its last run is, its rows those the runs hold.
    fn of_sync(table: String, record: Result<SyncRecord, iptvportal_dump::Error>) -> Entry {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let mut entry = Entry::empty(table, "corrupt");
                entry.error =
                    Some(crate::failure::render_dump(&e).trim_start_matches("error: ").to_owned());
                return entry;
            }
        };
        let last = record.runs.last();
        let state = match last.map(|r| r.state) {
            Some(RunState::Complete) => "complete",
            _ => "incomplete",
        };
        let mut entry = Entry::empty(table, state);
        let format = if record.shape.compress {
            format!("{}.gz", record.shape.format)
        } else {
            record.shape.format.to_string()
        };
        entry.format = Some(format);
        entry.strategy = Some("sync".to_owned());
        entry.rows = record.last_complete().map(|r| r.held);
        entry.updated = last.map(|r| r.finished_at.clone().unwrap_or_else(|| r.started_at.clone()));
        entry.runs = Some(record.runs);
        entry
    }

    /// An entry with nothing known but its state.
    fn empty(table: String, state: &'static str) -> Entry {
        Entry {
            table,
            state,
            writer_pid: None,
            writer: None,
            rows: None,
            total: None,
            format: None,
            strategy: None,
            updated: None,
            error: None,
            runs: None,
        }
    }

    fn percent(&self) -> Option<f64> {
        match (self.rows, self.total) {
            (Some(rows), Some(total)) if total > 0 => {
                Some((rows as f64 * 100.0 / total as f64).min(100.0))
            }
            (Some(_), Some(0)) => Some(100.0),
            _ => None,
        }
    }

    /// The JSON object, its keys in the documented order.
    fn json(&self) -> EntryJson<'_> {
        EntryJson {
            table: &self.table,
            state: self.state,
            dumped_rows: self.rows,
            total_rows: self.total,
            percent: self.percent().map(|p| (p * 10.0).round() / 10.0),
            format: self.format.as_deref(),
            strategy: self.strategy.as_deref(),
            last_updated_at: self.updated.as_deref(),
            last_error: self.error.as_deref(),
            writer_pid: self.writer_pid,
            writer: self.writer.as_deref(),
            runs: self.runs.as_deref(),
        }
    }
}

/// One entry of `status --format json`; a struct, so that the keys keep this order.
#[derive(serde::Serialize)]
struct EntryJson<'a> {
    table: &'a str,
    state: &'a str,
    dumped_rows: Option<u64>,
    total_rows: Option<u64>,
    percent: Option<f64>,
    format: Option<&'a str>,
    strategy: Option<&'a str>,
    last_updated_at: Option<&'a str>,
    last_error: Option<&'a str>,
    writer_pid: Option<u32>,
    /// Who writes a table in a bucket (`host pid N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    writer: Option<&'a str>,
    /// A synced table's runs, as `sync.json` records them.
    #[serde(skip_serializing_if = "Option::is_none")]
    runs: Option<&'a [RunRecord]>,
}

/// Lists the checkpoints in `dir`. A missing directory is an error (a mistyped `--out` should not
/// read as "nothing dumped yet"); an existing one without checkpoints is listed as empty.
pub(super) async fn run(
    dir: &Path,
    storage: &Storage,
    format: StatusFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if let Some(bucket) = crate::remote::reader(dir, storage, "--out")? {
        let entries = bucket_entries(bucket.as_ref()).await?;
        return print(&bucket.display(), &entries, format, out);
    }
    crate::failure::local_path(dir, "--out")?;
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Hinted::new(
                format!("{} is not a directory", dir.display()),
                "pass --out DIR, the directory the dump wrote to",
            )
            .into());
        }
        Err(e) => {
            return Err(Hinted::new(
                format!("no dump directory {}: {e}", dir.display()),
                "pass --out DIR, the directory the dump wrote to",
            )
            .into());
        }
    }
    let store = FileStore::new(dir);
    let listing = store.list().await.map_err(|e| {
        Hinted::new(
            format!("cannot list {}: {e}", dir.display()),
            "check the directory's permissions",
        )
    })?;
    let mut entries: Vec<Entry> = listing.into_iter().map(|(t, s)| Entry::of(t, s)).collect();
    for table in iptvportal_dump::sync::tables(dir) {
        let record = iptvportal_dump::sync::load(dir, &table).and_then(|r| {
            r.ok_or_else(|| iptvportal_dump::Error::Sync {
                table: table.clone(),
                problem: iptvportal_dump::sync::SyncProblem::NoRuns { dir: dir.join(&table) },
            })
        });
        entries.push(Entry::of_sync(table, record));
    }
    mark_writers(&store, &mut entries).await;
    print(&dir.display().to_string(), &entries, format, out)
}

/// The tables of the dump in a bucket: what each manifest says (the last part boundary
/// committed there: a run's progress since is in its stage), and which a run is writing now.
async fn bucket_entries(bucket: &dyn iptvportal_store::Destination) -> anyhow::Result<Vec<Entry>> {
    let tables = iptvportal_dump::bucket_tables(bucket).await.map_err(|e| {
        Hinted::new(e.to_string(), "pass the --out the dump wrote to; see docs/object-storage.md")
    })?;
    let mut entries = Vec::new();
    for found in tables {
        let mut entry = match found.state {
            Ok(Some(state)) => Entry::of(found.table, Ok(state)),
            Ok(None) => Entry::empty(found.table, "incomplete"),
            Err(e) => Entry::of(found.table, Err(e)),
        };
        if let Some(writer) = found.writer {
            entry.state = "writing";
            entry.writer_pid = writer.holder.rsplit_once(" pid ").and_then(|(_, p)| p.parse().ok());
            entry.writer = Some(writer.holder);
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Prints `entries`, the tables of `place`, as `format` says.
fn print(
    place: &str,
    entries: &[Entry],
    format: StatusFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match format {
        StatusFormat::Json => {
            let list: Vec<EntryJson<'_>> = entries.iter().map(Entry::json).collect();
            serde_json::to_writer_pretty(&mut *out, &list)?;
            writeln!(out)?;
        }
        StatusFormat::Table if entries.is_empty() => {
            writeln!(out, "no checkpoints in {place}")?;
        }
        StatusFormat::Table => {
            out.write_all(table(entries).as_bytes())?;
            let synced: Vec<&Entry> = entries.iter().filter(|e| e.runs.is_some()).collect();
            if !synced.is_empty() {
                writeln!(out)?;
                out.write_all(runs_table(&synced).as_bytes())?;
            }
        }
    }
    Ok(())
}

/// The entries as an aligned text table.
pub(crate) fn table(entries: &[Entry]) -> String {
    let header = ["table", "state", "rows", "total", "%", "format", "strategy", "updated", "error"];
    let dash = || "-".to_owned();
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for e in entries {
        cells.push(vec![
            e.table.clone(),
            e.state.to_owned(),
            e.rows.map_or_else(dash, |r| r.to_string()),
            e.total.map_or_else(dash, |t| t.to_string()),
            e.percent().map_or_else(dash, |p| format!("{p:.1}")),
            e.format.clone().unwrap_or_else(dash),
            e.strategy.clone().unwrap_or_else(dash),
            e.updated.clone().unwrap_or_else(dash),
            e.error.as_deref().map_or_else(String::new, |e| e.replace(['\n', '\r'], " ")),
        ]);
    }
    // Counts line up on the right; words read from the left.
    crate::output::aligned_table(&cells, |i| (2..=4).contains(&i))
}

/// The runs of synced tables as an aligned text table.
fn runs_table(entries: &[&Entry]) -> String {
    let header =
        ["table", "run", "kind", "state", "window", "rows", "new", "changed", "deleted", "held"];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for e in entries {
        for run in e.runs.iter().flatten() {
            let state = match run.state {
                RunState::Complete => "complete",
                _ => "running",
            };
            cells.push(vec![
                e.table.clone(),
                run.run.to_string(),
                run.kind.as_str().to_owned(),
                state.to_owned(),
                run.window.to_string(),
                run.rows.to_string(),
                run.new.to_string(),
                run.changed.to_string(),
                run.deleted.to_string(),
                run.held.to_string(),
            ]);
        }
    }
    crate::output::aligned_table(&cells, |i| i == 1 || (5..=9).contains(&i))
}

/// Marks the tables a run is writing right now: those listed, and those whose first chunk is not
/// committed yet (a lock file, no state). A lock that cannot be read leaves its table as it is.
async fn mark_writers(store: &FileStore, entries: &mut Vec<Entry>) {
    let mut tables: Vec<String> = std::fs::read_dir(store.dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some(name.strip_prefix('.')?.strip_suffix(".lock")?.to_owned())
        })
        .collect();
    tables.sort();
    for table in tables {
        let Ok(Some(holder)) = store.holder(&table).await else { continue };
        if let Some(entry) = entries.iter_mut().find(|e| e.table == table) {
            entry.state = "writing";
            entry.writer_pid = holder.pid;
        } else {
            let mut entry = Entry::empty(table, "writing");
            entry.writer_pid = holder.pid;
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| a.table.cmp(&b.table));
}

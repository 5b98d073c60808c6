//! A dump in a bucket read back: the tables under `s3://bucket/prefix`, what their manifests say,
//! who writes them now, and [`verify_bucket`], the bucket's `verify` (docs/object-storage.md).
//!
//! A table's manifest (`{table}/_manifest.json`) is the sealed state [`RemoteStore`] committed
//! at its last part boundary: it names exactly the parts the bucket holds for it. Verifying a
//! table compares the listing under `{table}/` with it (a part missing, of another size, or, in a
//! complete dump, an output object it does not name), then downloads each part it names, one at a
//! time, into a scratch directory, checks its CRC-32 (and that a Parquet part opens with the rows
//! it claims) and removes it again: disk and memory hold one part, whatever the table's size.
//!
//! [`RemoteStore`]: crate::RemoteStore

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use iptvportal_checkpoint::{DumpState, Error, from_bytes};
use iptvportal_sink::{Problem, ProblemKind};
use iptvportal_store::{Destination, LeaseHolder, lease};

use crate::remote::{LEASE, MANIFEST, is_output};
use crate::verify::{Checked, TableReport, Unverified, sink_spec};

fn remote(e: impl std::fmt::Display) -> Error {
    Error::Remote { reason: e.to_string() }
}

/// One table in a bucket, as its manifest and lease say.
#[derive(Debug)]
#[non_exhaustive]
pub struct BucketTable {
    /// The table.
    pub table: String,
    /// Its manifest: `None` while no part boundary was committed yet.
    pub state: Result<Option<DumpState>, Error>,
    /// The run writing it now, if its lease is live.
    pub writer: Option<LeaseHolder>,
}

/// The tables under `dest`: every prefix holding a manifest or a lease, by name.
pub async fn bucket_tables(dest: &dyn Destination) -> Result<Vec<BucketTable>, Error> {
    let mut tables = Vec::new();
    for table in dest.dirs("").await.map_err(remote)? {
        let (found, leased) = read_table_and_lease(dest, &table).await;
        // A prefix of something else (no manifest, no lease) is no table of a dump.
        if leased || !matches!(found.state, Ok(None)) {
            tables.push(found);
        }
    }
    Ok(tables)
}

/// `table`'s manifest and the holder of its live lease.
pub async fn read_table(dest: &dyn Destination, table: &str) -> BucketTable {
    read_table_and_lease(dest, table).await.0
}

/// [`read_table`], and whether the table has a lease object at all (live, expired or released),
/// from one read of it.
async fn read_table_and_lease(dest: &dyn Destination, table: &str) -> (BucketTable, bool) {
    let lease = dest.read(&format!("{table}/{LEASE}")).await.ok().flatten();
    let writer = lease.as_ref().and_then(|o| lease::live(&o.bytes, SystemTime::now()));
    let found = BucketTable { table: table.to_owned(), state: manifest(dest, table).await, writer };
    (found, lease.is_some())
}

/// `table`'s manifest in the bucket, `None` if there is none.
async fn manifest(dest: &dyn Destination, table: &str) -> Result<Option<DumpState>, Error> {
    let key = format!("{table}/{MANIFEST}");
    match dest.read(&key).await.map_err(remote)? {
        None => Ok(None),
        Some(object) => {
            let label = PathBuf::from(format!("{}/{key}", dest.display()));
            from_bytes(&label, &object.bytes).map(Some)
        }
    }
}

/// Checks the tables of the dump in `dest`: `tables` (each once, in the order given), or with
/// none, every table with a manifest there. Parts are downloaded into `scratch`, one at a time,
/// and removed once checked. A table a run is writing now is not checked, and says so. Only a
/// bucket that cannot be listed (or a scratch directory that cannot be made) is an error.
pub async fn verify_bucket(
    dest: Arc<dyn Destination>,
    tables: &[String],
    scratch: &Path,
) -> Result<Vec<TableReport>, Error> {
    let names: Vec<String> = if tables.is_empty() {
        let found = bucket_tables(dest.as_ref()).await?;
        found.into_iter().filter(|t| !matches!(t.state, Ok(None))).map(|t| t.table).collect()
    } else {
        let mut seen = HashSet::new();
        tables.iter().filter(|t| seen.insert(t.as_str())).cloned().collect()
    };
    let mut reports = Vec::new();
    for table in names {
        reports.push(verify_table(&dest, table, scratch).await?);
    }
    Ok(reports)
}

async fn verify_table(
    dest: &Arc<dyn Destination>,
    table: String,
    scratch: &Path,
) -> Result<TableReport, Error> {
    let root = PathBuf::from(format!("{}/{table}", dest.display()));
    let mut report = TableReport::new(table.clone(), &root);
    // A table that cannot name a prefix (`../x`, `a/b`) holds nothing.
    if table.is_empty() || table.contains(['/', '\\']) || table.starts_with('.') {
        report.unverified = Some(Unverified::Missing { dir: root });
        return Ok(report);
    }
    let found = read_table(dest.as_ref(), &table).await;
    if let Some(writer) = found.writer {
        report.unverified = Some(Unverified::Checkpoint(remote(format!(
            "{} is being written by {} now: its objects are moving; verify it once that run ends",
            root.display(),
            writer.holder
        ))));
        return Ok(report);
    }
    let state = match found.state {
        Ok(Some(state)) => state,
        Ok(None) => {
            report.unverified = Some(Unverified::Missing { dir: root });
            return Ok(report);
        }
        Err(e) => {
            report.unverified = Some(Unverified::Checkpoint(e));
            return Ok(report);
        }
    };
    let dir = scratch.join(&table);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let spec = sink_spec(&dir, &state);
    report.describe(&state);

    let listed = match dest.list(&table).await {
        Ok(listed) => listed,
        Err(e) => {
            report.unverified = Some(Unverified::Checkpoint(remote(e)));
            return Ok(report);
        }
    };
    let mut problems = Vec::new();
    for record in &state.sink.files {
        let key = format!("{table}/{}", record.name);
        let shown = root.join(&record.name);
        match listed.iter().find(|e| e.key == key) {
            None => problems.push(Problem::new(shown, ProblemKind::Missing)),
            Some(e) if e.size != record.bytes => problems.push(Problem::new(
                shown,
                ProblemKind::Size { found: e.size, expected: record.bytes },
            )),
            Some(_) if report.sizes_only => {}
            Some(_) => {
                let local = dir.join(&record.name);
                let checked =
                    check_object(dest.as_ref(), &key, &local, &shown, record, &spec).await;
                let _ = std::fs::remove_file(&local);
                match checked {
                    Ok(found) => problems.extend(found),
                    Err(why) => {
                        report.unverified = Some(why);
                        return Ok(report);
                    }
                }
            }
        }
    }
    // In a complete dump, an output object the manifest does not name is stale or added by
    // hand; in one still going, it is what a killed run uploaded before its manifest, and the
    // next run removes it.
    if state.is_complete {
        for entry in &listed {
            let name = entry.key.rsplit('/').next().unwrap_or(&entry.key);
            if is_output(&table, name) && !state.sink.files.iter().any(|f| f.name == name) {
                problems.push(Problem::new(root.join(name), ProblemKind::Unlisted));
            }
        }
    }
    report.problems = problems;
    report.checked = Some(Box::new(Checked { state, spec, remote: Some(Arc::clone(dest)) }));
    Ok(report)
}

/// Downloads the object `key` to `local` and checks it against `record` (the caller removes
/// the copy).
async fn check_object(
    dest: &dyn Destination,
    key: &str,
    local: &Path,
    shown: &Path,
    record: &iptvportal_sink::FileRecord,
    spec: &iptvportal_sink::SinkSpec,
) -> Result<Vec<Problem>, Unverified> {
    let downloaded = dest.download(key, local).await;
    if downloaded.map_err(|e| Unverified::Checkpoint(remote(e)))?.is_none() {
        // Listed a moment ago, gone now: another writer removed it.
        return Ok(vec![Problem::new(shown, ProblemKind::Missing)]);
    }
    let (local, shown, record, format) =
        (local.to_owned(), shown.to_owned(), record.clone(), spec.format);
    tokio::task::spawn_blocking(move || {
        iptvportal_sink::check_file(&local, &shown, &record, format).map_err(Unverified::Output)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

//! Format encoders and committing writers for IPTVPortal dumps.
//!
//! The dump orchestrator fetches a table chunk by chunk and pushes each chunk (rows as JSON arrays
//! in column order) into a [`Sink`], then asks it to [`Sink::commit`]. A commit makes everything
//! written so far durable (flush, `fsync`) and reports a [`SinkPosition`]; the orchestrator writes
//! its checkpoint only after that. After a crash it reopens the sink with [`open`] at the last
//! checkpointed position: the sink cuts its output back to exactly that position (a torn row, an
//! unfinished gzip member, an unclosed Parquet part all fall away) and the orchestrator refetches
//! from there. So the finished output of a dump killed at any instant and rerun is identical to an
//! uninterrupted dump's: the same bytes for plain JSONL, CSV and JSON, the same decompressed bytes
//! for gzip, the same schema and rows in order for Parquet.
//!
//! Design choices, each recorded in `docs/adr/0003-sink-encoding.md`:
//!
//! - Encoding is synchronous over `std::io::Write` (the orchestrator runs a sink inside
//!   `spawn_blocking`): no async runtime here, `csv` and `flate2` rather than their async twins.
//! - gzip output is a sequence of members, one per commit; every gzip reader reads it whole.
//!   The default level is 1.
//! - Parquet parts are written under a temp name and renamed when closed; columns are zstd level 1
//!   without dictionary encoding.
//! - Values are checked against the [`Schema`] before anything is written; a value that does not
//!   fit stops the dump with [`Error::TypeMismatch`] naming table, column and row, never a silent
//!   conversion. Text formats write each value as the portal sent it (an integer in a float
//!   column stays `3`); Parquet stores it with the column's type (`3.0`).

#![deny(missing_docs)]

mod error;
mod fs;
mod parquet;
mod schema;
mod spec;
mod text;

pub use error::{Error, RowId};
pub use iptvportal_catalog::{ColumnType, Table};
pub use schema::{ColumnSpec, Schema};
pub use spec::{
    Compression, Format, OutputFile, ParquetCodec, ParquetOptions, SinkPosition, SinkSpec,
};

use serde_json::Value;

/// A committing writer of one table's output.
///
/// The protocol: any number of `write_chunk` calls, then `commit`; repeat; then `finish`. Dropping
/// a sink without `finish` (a crash, a cancelled dump) leaves the output as of the last commit plus
/// garbage that the next [`open`] with that position cuts away.
pub trait Sink: Send {
    /// Validates a chunk of rows against the schema and encodes it.
    ///
    /// Either the whole chunk is accepted or none of it is: a value that does not fit fails with
    /// [`Error::TypeMismatch`] before any byte of the chunk is written.
    fn write_chunk(&mut self, rows: &[Vec<Value>]) -> Result<(), Error>;

    /// Makes everything written so far durable and returns the new position if it moved.
    ///
    /// Text formats always return `Some`. Parquet returns `Some` only when this commit closed a
    /// part file (it had reached its row budget); rows of the open part are durable only when a
    /// later commit or [`Sink::finish`] closes it, and are refetched after a crash.
    fn commit(&mut self) -> Result<Option<SinkPosition>, Error>;

    /// Completes the output (JSON's closing `]`, the last Parquet part) and makes it durable.
    ///
    /// An empty table still yields a well-formed file: an empty JSONL file, a CSV header, `[]`,
    /// or one Parquet part with the schema and no rows.
    fn finish(self: Box<Self>) -> Result<SinkPosition, Error>;
}

/// Opens a sink for `spec`: fresh (removing this spec's old outputs) when `resume` is `None`,
/// otherwise continuing exactly at the committed position `resume`.
///
/// Resuming fails with [`Error::ResumeMismatch`] when the output is missing or shorter than the
/// checkpoint says: it was damaged or removed, and the dump must start over.
pub fn open(spec: &SinkSpec, resume: Option<&SinkPosition>) -> Result<Box<dyn Sink>, Error> {
    spec.validate()?;
    Ok(match spec.format {
        Format::Parquet => Box::new(parquet::ParquetSink::open(spec, resume)?),
        _ => Box::new(text::TextSink::open(spec, resume)?),
    })
}

/// Deletes every file `spec` writes, Parquet parts and temp files included. Missing files (or a
/// missing directory) are not an error.
pub fn remove_outputs(spec: &SinkSpec) -> Result<(), Error> {
    let mut removed = false;
    for file in spec.files() {
        match file {
            OutputFile::Path(path) => removed |= fs::remove_if_exists(&path)?,
            OutputFile::Parts { ref dir, .. } => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(dir, e)),
                };
                for entry in entries {
                    let path = entry.map_err(|e| Error::io(dir, e))?.path();
                    if file.matches(&path) {
                        removed |= fs::remove_if_exists(&path)?;
                    }
                }
            }
        }
    }
    if removed {
        fs::sync_dir(&spec.dir)?;
    }
    Ok(())
}

//! Format encoders and committing writers for IPTVPortal dumps.
//!
//! The dump orchestrator fetches a table chunk by chunk and pushes each chunk (rows as JSON arrays
//! in column order) into a [`Sink`], then asks it to [`Sink::commit`]. A commit makes everything
//! written so far durable (flush, `fsync`) and reports a [`SinkPosition`]; the orchestrator writes
//! its checkpoint only after that. After a crash it reopens the sink with [`open`] at the last
//! checkpointed position: the sink cuts its output back to exactly that position (a torn row, an
//! unfinished gzip member, an uncommitted Parquet piece all fall away) and the orchestrator refetches
//! from there. So the finished output of a dump killed at any instant and rerun is identical to an
//! uninterrupted dump's: the same bytes for plain JSONL, CSV and JSON, the same decompressed bytes
//! for gzip, the same schema and rows in order for Parquet.
//!
//! Design choices, each recorded in `docs/adr/0003-sink-encoding.md`:
//!
//! - Encoding is synchronous over `std::io::Write` (the orchestrator runs each dump's sink on one
//!   dedicated thread of its own): no async runtime here, `csv` and `flate2` rather than their
//!   async twins.
//! - gzip output is a sequence of members, one per commit; every gzip reader reads it whole.
//!   The default level is 1.
//! - Parquet is durable per chunk: each part has one writer (under a temp name renamed when
//!   closed), and each commit journals its chunks as a durable Arrow IPC piece that a resume
//!   replays into a fresh writer; columns are zstd level 1 without dictionary encoding.
//! - Values are checked against the [`Schema`] before anything is written; a value that does not
//!   fit stops the dump with [`Error::TypeMismatch`] naming table, column and row, never a silent
//!   conversion. Text formats write each value as the portal sent it (an integer in a float
//!   column stays `3`); Parquet stores it with the column's type (`3.0`).
//!
//! [`read_rows`] reads a file back as the rows the sink was given, one line, record or Parquet
//! batch at a time: the exact inverse of each encoder, but for what a format cannot tell apart
//! (null and the empty string in CSV; an integer in a float column, and the text form of a
//! timestamp, in Parquet), which its documentation lists.
//!
//! Parquet support (arrow-rs, the heavy part of the build) is the cargo feature `parquet`, on by
//! default. Without it the vocabulary stays ([`Format::Parquet`] is still stored in checkpoints,
//! [`ParquetOptions`] still shapes output) and only [`open`] and [`read_rows`] of a Parquet spec
//! fail, so a crate that needs the types alone, like the checkpoint store, does not compile arrow.

#![deny(missing_docs)]

// Without Parquet nothing wraps a Parquet error, but the variant stays: the error type is the
// same in every build.
#[cfg_attr(
    not(feature = "parquet"),
    expect(dead_code, reason = "`Error::parquet` serves the Parquet sink only")
)]
mod error;
mod fs;
mod manifest;
#[cfg(feature = "parquet")]
mod parquet;
mod read;
mod schema;
mod spec;
mod text;
mod verify;

pub use error::{Error, RowId};
pub use iptvportal_catalog::{ColumnType, Table};
pub use manifest::{ChunkRecord, Crc32, FileRecord, IdRange, OpenPart};
pub use read::read_rows;
pub use schema::{ColumnSpec, Schema};
pub use spec::{
    Compression, Format, OutputFile, OutputFileInfo, ParquetCodec, ParquetOptions, SinkPosition,
    SinkSpec,
};
pub use verify::{Depth, Problem, ProblemKind, check_file, check_outputs, stale_outputs, verify};

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
    /// Text formats always return `Some`. Parquet returns `Some` whenever rows were written since
    /// the last commit (they are now a durable piece; when the part reached its row budget, it
    /// was closed), `None` when nothing was.
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
        #[cfg(feature = "parquet")]
        Format::Parquet => Box::new(parquet::ParquetSink::open(spec, resume)?),
        #[cfg(not(feature = "parquet"))]
        Format::Parquet => return Err(no_parquet()),
        _ => Box::new(text::TextSink::open(spec, resume)?),
    })
}

/// What a Parquet spec fails with in a build without the `parquet` feature.
#[cfg(not(feature = "parquet"))]
fn no_parquet() -> Error {
    Error::Config {
        message: "this build of iptvportal-sink has no parquet support (feature \"parquet\")"
            .into(),
    }
}

/// The files of `spec`'s output that exist now, with their sizes, in output order: the one file
/// of a text format, or the closed Parquet parts by index. Temp and hidden files are never
/// listed; a missing file or directory is an empty list, not an error.
pub fn list_outputs(spec: &SinkSpec) -> Result<Vec<OutputFileInfo>, Error> {
    let mut files = Vec::new();
    for found in fs::scan(spec)? {
        let hidden = found.path.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
        if hidden || matches!(found.part, Some(spec::PartName::Temp(_))) {
            continue;
        }
        match std::fs::metadata(&found.path) {
            Ok(m) if m.is_file() => files.push(OutputFileInfo { path: found.path, bytes: m.len() }),
            // Gone since the scan, or not a file we wrote: nothing to report.
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&found.path, e)),
        }
    }
    Ok(files)
}

/// Deletes every file `spec` writes, Parquet parts and temp files included. Missing files (or a
/// missing directory) are not an error.
pub fn remove_outputs(spec: &SinkSpec) -> Result<(), Error> {
    let mut removed = false;
    for found in fs::scan(spec)? {
        removed |= fs::remove_if_exists(&found.path)?;
    }
    if removed {
        fs::sync_dir(&spec.dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn spec(dir: &Path, table: &str, format: Format, compression: Compression) -> SinkSpec {
        let schema = Schema { columns: vec![ColumnSpec::new("id", ColumnType::Integer, false)] };
        SinkSpec::new(dir, table, format, compression, schema)
    }

    fn touch(dir: &Path, name: &str, bytes: usize) {
        std::fs::write(dir.join(name), vec![b'x'; bytes]).unwrap();
    }

    fn listed(spec: &SinkSpec) -> Vec<(String, u64)> {
        list_outputs(spec)
            .unwrap()
            .into_iter()
            .map(|f| (f.path.file_name().unwrap().to_string_lossy().into_owned(), f.bytes))
            .collect()
    }

    fn record(name: &str, bytes: &[u8], rows: u64) -> FileRecord {
        FileRecord {
            name: name.into(),
            rows,
            bytes: bytes.len() as u64,
            crc32: Crc32::of(bytes),
            ids: None,
        }
    }

    fn problems(
        spec: &SinkSpec,
        position: &SinkPosition,
        complete: bool,
        depth: Depth,
    ) -> Vec<String> {
        verify(spec, position, complete, depth)
            .unwrap()
            .into_iter()
            .map(|p| {
                let name = p.path.file_name().unwrap().to_string_lossy().into_owned();
                format!("{name}: {}", p.kind)
            })
            .collect()
    }

    #[test]
    fn a_text_output_is_verified_by_size_and_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let text = spec(dir.path(), "t", Format::Jsonl, Compression::None);
        let at = SinkPosition {
            files: vec![record("t.jsonl", b"12345", 1)],
            ..SinkPosition::bare(0, 5, 1)
        };
        assert_eq!(problems(&text, &at, true, Depth::Sizes), ["t.jsonl: it is missing"]);
        std::fs::write(dir.path().join("t.jsonl"), b"12345").unwrap();
        assert_eq!(problems(&text, &at, true, Depth::Full), Vec::<String>::new());
        std::fs::write(dir.path().join("t.jsonl"), b"12x45").unwrap();
        assert_eq!(problems(&text, &at, true, Depth::Sizes), Vec::<String>::new(), "same size");
        let changed = problems(&text, &at, true, Depth::Full);
        assert_eq!(changed.len(), 1);
        assert!(changed[0].starts_with("t.jsonl: its contents changed (CRC-32 "), "{changed:?}");
        std::fs::write(dir.path().join("t.jsonl"), b"123456").unwrap();
        assert_eq!(
            problems(&text, &at, true, Depth::Full),
            ["t.jsonl: it is 6 bytes, the manifest says 5"]
        );
        // A resumable output may hold an unfinished chunk past its committed length.
        assert_eq!(problems(&text, &at, false, Depth::Full), Vec::<String>::new());
        std::fs::write(dir.path().join("t.jsonl"), b"1234").unwrap();
        assert_eq!(
            problems(&text, &at, false, Depth::Sizes),
            ["t.jsonl: it is 4 bytes, the manifest says 5"]
        );
        let err = check_outputs(&text, &at, true, Depth::Sizes).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} changed since it was written: it is 4 bytes, the manifest says 5",
                dir.path().join("t.jsonl").display()
            )
        );
    }

    #[test]
    fn parquet_parts_are_exactly_the_listed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let parts = spec(dir.path(), "p", Format::Parquet, Compression::None);
        let two = SinkPosition {
            files: vec![
                record("p-00000.parquet", b"abc", 4),
                record("p-00001.parquet", b"defg", 5),
            ],
            ..SinkPosition::bare(2, 7, 9)
        };
        touch(dir.path(), "p-00000.parquet", 3);
        assert_eq!(problems(&parts, &two, true, Depth::Sizes), ["p-00001.parquet: it is missing"]);
        touch(dir.path(), "p-00001.parquet", 4);
        assert_eq!(problems(&parts, &two, true, Depth::Sizes), Vec::<String>::new());
        // An unclosed part (temp name) is no output; a third closed one is stale.
        touch(dir.path(), ".p-00002.parquet.tmp", 4);
        assert_eq!(problems(&parts, &two, true, Depth::Sizes), Vec::<String>::new());
        touch(dir.path(), "p-00002.parquet", 4);
        assert_eq!(
            problems(&parts, &two, true, Depth::Sizes),
            ["p-00002.parquet: the manifest lists no such file"]
        );
        std::fs::remove_file(dir.path().join("p-00002.parquet")).unwrap();
        touch(dir.path(), "p-00001.parquet", 5);
        assert_eq!(
            problems(&parts, &two, true, Depth::Sizes),
            ["p-00001.parquet: it is 5 bytes, the manifest says 4"]
        );
        // Right sizes, wrong bytes: only the checksum sees it.
        touch(dir.path(), "p-00001.parquet", 4);
        let full = problems(&parts, &two, true, Depth::Full);
        assert_eq!(full.len(), 2, "{full:?}");
        assert!(full.iter().all(|p| p.contains("its contents changed")), "{full:?}");
        // A position without records (an older checkpoint) is checked by total size.
        let old = SinkPosition::bare(2, 7, 9);
        assert_eq!(problems(&parts, &old, true, Depth::Full), Vec::<String>::new());
        let old = SinkPosition::bare(2, 8, 9);
        assert_eq!(
            problems(&parts, &old, true, Depth::Full),
            ["p-00000.parquet: it is 7 bytes, the manifest says 8"]
        );
    }

    #[test]
    fn a_missing_directory_lists_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("not-there");
        for format in Format::ALL {
            assert_eq!(listed(&spec(&gone, "t", format, Compression::None)), []);
        }
    }

    #[test]
    fn a_text_spec_lists_its_one_file_when_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), "t", Format::Csv, Compression::gzip());
        assert_eq!(listed(&s), []);
        touch(dir.path(), "t.csv", 3);
        touch(dir.path(), "t.jsonl", 4);
        assert_eq!(listed(&s), [], "only the spec's own name: t.csv.gz");
        touch(dir.path(), "t.csv.gz", 5);
        assert_eq!(listed(&s), [("t.csv.gz".to_owned(), 5)]);
    }

    #[test]
    fn parquet_lists_closed_parts_by_index_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), "t", Format::Parquet, Compression::None);
        for (name, bytes) in [
            ("t-00001.parquet", 11),
            ("t-100000.parquet", 13),
            ("t-00000.parquet", 10),
            ("t-99999.parquet", 12),
            // Not closed parts of `t`: a temp part, another table's parts, a near miss.
            (".t-00002.parquet.tmp", 1),
            ("t-00000-00000.parquet", 1),
            ("u-00000.parquet", 1),
            ("t-0001.parquet", 1),
            ("t.jsonl", 1),
        ] {
            touch(dir.path(), name, bytes);
        }
        assert_eq!(
            listed(&s),
            [
                ("t-00000.parquet".to_owned(), 10),
                ("t-00001.parquet".to_owned(), 11),
                ("t-99999.parquet".to_owned(), 12),
                ("t-100000.parquet".to_owned(), 13),
            ]
        );
        assert_eq!(s.part_path(1), dir.path().join("t-00001.parquet"));
        assert_eq!(list_outputs(&s).unwrap()[3].path, s.part_path(100_000));
    }

    #[test]
    fn remove_outputs_removes_what_the_scan_finds_temp_files_included() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), "t", Format::Parquet, Compression::None);
        for name in ["t-00000.parquet", ".t-00001.parquet.tmp", "u-00000.parquet", "t.jsonl"] {
            touch(dir.path(), name, 1);
        }
        remove_outputs(&s).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["t.jsonl", "u-00000.parquet"]);
        remove_outputs(&spec(&dir.path().join("gone"), "t", Format::Json, Compression::None))
            .unwrap();
    }

    #[test]
    fn gzip_levels_have_one_range() {
        assert_eq!(Compression::GZIP_LEVELS, 0..=9);
        assert_eq!(Compression::gzip_level(0), Some(Compression::Gzip { level: 0 }));
        assert_eq!(Compression::gzip_level(9), Some(Compression::Gzip { level: 9 }));
        assert_eq!(Compression::gzip_level(10), None);
        assert!(Compression::GZIP_LEVELS.contains(&Compression::DEFAULT_GZIP_LEVEL));
    }

    #[cfg(not(feature = "parquet"))]
    #[test]
    fn without_the_feature_parquet_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), "t", Format::Parquet, Compression::None);
        let Err(Error::Config { message }) = open(&s, None) else { panic!("parquet opened") };
        assert!(message.contains("feature \"parquet\""), "{message}");
    }
}

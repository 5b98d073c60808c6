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
//! - Encoding is synchronous over `std::io::Write` (the orchestrator runs each dump's sink on one
//!   dedicated thread of its own): no async runtime here, `csv` and `flate2` rather than their
//!   async twins.
//! - gzip output is a sequence of members, one per commit; every gzip reader reads it whole.
//!   The default level is 1.
//! - Parquet parts are written under a temp name and renamed when closed; columns are zstd level 1
//!   without dictionary encoding.
//! - Values are checked against the [`Schema`] before anything is written; a value that does not
//!   fit stops the dump with [`Error::TypeMismatch`] naming table, column and row, never a silent
//!   conversion. Text formats write each value as the portal sent it (an integer in a float
//!   column stays `3`); Parquet stores it with the column's type (`3.0`).
//!
//! Parquet support (arrow-rs, the heavy part of the build) is the cargo feature `parquet`, on by
//! default. Without it the vocabulary stays ([`Format::Parquet`] is still stored in checkpoints,
//! [`ParquetOptions`] still shapes output) and only [`open`] of a Parquet spec fails, so a crate
//! that needs the types alone, like the checkpoint store, does not compile arrow.

#![deny(missing_docs)]

// Without Parquet nothing wraps a Parquet error, but the variant stays: the error type is the
// same in every build.
#[cfg_attr(
    not(feature = "parquet"),
    expect(dead_code, reason = "`Error::parquet` serves the Parquet sink only")
)]
mod error;
mod fs;
#[cfg(feature = "parquet")]
mod parquet;
mod schema;
mod spec;
mod text;

pub use error::{Error, RowId};
pub use iptvportal_catalog::{ColumnType, Table};
pub use schema::{ColumnSpec, Schema};
pub use spec::{
    Compression, Format, OutputFile, OutputFileInfo, ParquetCodec, ParquetOptions, SinkPosition,
    SinkSpec,
};

use std::path::Path;

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
        #[cfg(feature = "parquet")]
        Format::Parquet => Box::new(parquet::ParquetSink::open(spec, resume)?),
        #[cfg(not(feature = "parquet"))]
        Format::Parquet => {
            return Err(Error::Config {
                message: "this build of iptvportal-sink has no parquet support \
                          (feature \"parquet\")"
                    .into(),
            });
        }
        _ => Box::new(text::TextSink::open(spec, resume)?),
    })
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

/// Checks that `spec`'s finished output is still what `position` (the position [`Sink::finish`]
/// reported) describes: the one text file at exactly its length, or exactly the Parquet parts
/// `0..file_index`, no more, adding up to its bytes. It reads no file, only their sizes: a file
/// that was truncated, extended, deleted, added or replaced by one of another size is caught; a
/// changed byte that keeps the size is not.
pub fn check_outputs(spec: &SinkSpec, position: &SinkPosition) -> Result<(), Error> {
    let files = list_outputs(spec)?;
    let changed = |path: &Path, reason: String| Error::Changed { path: path.to_owned(), reason };
    if spec.format != Format::Parquet {
        let path = spec.files().into_iter().find_map(|f| match f {
            OutputFile::Path(path) => Some(path),
            _ => None,
        });
        let path = path.unwrap_or_else(|| spec.dir.clone());
        return match files.first() {
            None => Err(changed(&path, "it is missing".to_owned())),
            Some(file) if file.bytes != position.bytes => Err(changed(
                &file.path,
                format!("it is {} bytes, the checkpoint says {}", file.bytes, position.bytes),
            )),
            Some(_) => Ok(()),
        };
    }
    for index in 0..position.file_index {
        let part = spec.part_path(index);
        if !files.iter().any(|f| f.path == part) {
            return Err(changed(&part, "it is missing".to_owned()));
        }
    }
    if let Some(extra) =
        files.iter().find(|f| (0..position.file_index).all(|index| spec.part_path(index) != f.path))
    {
        return Err(changed(&extra.path, "the checkpoint lists no such part".to_owned()));
    }
    let bytes: u64 = files.iter().map(|f| f.bytes).sum();
    if bytes != position.bytes {
        let first = files.first().map_or_else(|| spec.dir.clone(), |f| f.path.clone());
        return Err(changed(
            &first,
            format!("the parts hold {bytes} bytes, the checkpoint says {}", position.bytes),
        ));
    }
    Ok(())
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

    #[test]
    fn a_finished_output_is_checked_against_its_position_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let text = spec(dir.path(), "t", Format::Jsonl, Compression::None);
        let at = |bytes| SinkPosition { file_index: 0, bytes, rows: 1 };
        assert!(matches!(check_outputs(&text, &at(5)), Err(Error::Changed { .. })));
        touch(dir.path(), "t.jsonl", 5);
        check_outputs(&text, &at(5)).unwrap();
        let err = check_outputs(&text, &at(4)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} changed since it was written: it is 5 bytes, the checkpoint says 4",
                dir.path().join("t.jsonl").display()
            )
        );

        let parts = spec(dir.path(), "p", Format::Parquet, Compression::None);
        let two = SinkPosition { file_index: 2, bytes: 7, rows: 9 };
        touch(dir.path(), "p-00000.parquet", 3);
        assert!(
            matches!(check_outputs(&parts, &two), Err(Error::Changed { .. })),
            "part 1 missing"
        );
        touch(dir.path(), "p-00001.parquet", 4);
        check_outputs(&parts, &two).unwrap();
        // An unclosed part (temp name) is no output; a third closed one is stale.
        touch(dir.path(), ".p-00002.parquet.tmp", 4);
        check_outputs(&parts, &two).unwrap();
        touch(dir.path(), "p-00002.parquet", 4);
        let err = check_outputs(&parts, &two).unwrap_err();
        assert!(
            err.to_string().contains(
                "p-00002.parquet changed since it was written: the checkpoint lists no such part"
            ),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("p-00002.parquet")).unwrap();
        touch(dir.path(), "p-00001.parquet", 5);
        assert!(
            check_outputs(&parts, &two)
                .unwrap_err()
                .to_string()
                .contains("the parts hold 8 bytes, the checkpoint says 7")
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

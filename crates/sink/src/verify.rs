//! Checking an output against its manifest: the files a committed position names, their sizes,
//! their checksums, and that every Parquet part opens and holds the rows it claims.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::manifest::{Crc32, FileRecord, crc_of_file};
use crate::spec::{Compression, Format, SinkPosition, SinkSpec};

/// How much [`verify`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Depth {
    /// Names and sizes only: reads no file's contents. Catches a missing, extra, truncated or
    /// extended file, not a changed byte.
    Sizes,
    /// Sizes, then every file's CRC-32 over its committed bytes, and every Parquet part's footer
    /// and row count. Catches any change the manifest can see.
    Full,
}

/// One way an output differs from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The file (for a missing one, the name it should have).
    pub path: PathBuf,
    /// What is wrong with it.
    pub kind: ProblemKind,
}

/// What is wrong with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The manifest lists it and it is not there.
    Missing,
    /// It is not the size the manifest says: truncated, extended or replaced.
    Size {
        /// Its size on disk.
        found: u64,
        /// The size in the manifest (for an incomplete text output, the least it may be).
        expected: u64,
    },
    /// Its bytes are not the ones written: changed in place.
    Checksum {
        /// The CRC-32 of its bytes now.
        found: Crc32,
        /// The CRC-32 the manifest records.
        expected: Crc32,
    },
    /// A part of the table's output that the manifest does not list (a stale or added file).
    Unlisted,
    /// A Parquet part that does not open.
    Unreadable {
        /// The reader's error.
        reason: String,
    },
    /// A Parquet part that holds another number of rows than the manifest says.
    Rows {
        /// The rows its footer counts.
        found: u64,
        /// The rows the manifest records.
        expected: u64,
    },
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::Missing => f.write_str("it is missing"),
            ProblemKind::Size { found, expected } => {
                write!(f, "it is {found} bytes, the manifest says {expected}")
            }
            ProblemKind::Checksum { found, expected } => {
                write!(f, "its contents changed (CRC-32 {found}, the manifest says {expected})")
            }
            ProblemKind::Unlisted => f.write_str("the manifest lists no such file"),
            ProblemKind::Unreadable { reason } => write!(f, "it does not open: {reason}"),
            ProblemKind::Rows { found, expected } => {
                write!(f, "it holds {found} rows, the manifest says {expected}")
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}

impl Problem {
    /// A problem with `path`.
    pub fn new(path: impl Into<PathBuf>, kind: ProblemKind) -> Problem {
        Problem { path: path.into(), kind }
    }

    /// The problem as the error a run stops with.
    pub fn into_error(self) -> Error {
        Error::Changed { path: self.path, reason: self.kind.to_string() }
    }
}

/// Checks `spec`'s output against `position`, the manifest of what was committed, and returns
/// every problem found, in file order (empty when the output is what the manifest says).
///
/// `complete` says whether `position` is the finished output's (then a text file must be exactly
/// its committed length) or a resumable one's (then it may be longer: what follows the committed
/// length is an unfinished chunk that a resume cuts away, and Parquet parts past the committed
/// ones were closed after the last checkpoint and are removed by a resume). A position saved before the manifest
/// existed has no checksums: only names and sizes are checked then, whatever the depth.
pub fn verify(
    spec: &SinkSpec,
    position: &SinkPosition,
    complete: bool,
    depth: Depth,
) -> Result<Vec<Problem>, Error> {
    let on_disk = crate::list_outputs(spec)?;
    let size_of = |path: &PathBuf| on_disk.iter().find(|f| &f.path == path).map(|f| f.bytes);
    let mut problems = Vec::new();
    let mut problem = |path: &PathBuf, kind| problems.push(Problem { path: path.clone(), kind });

    if spec.format != Format::Parquet && spec.text_part_rows.is_some() {
        // Text parts: every part the manifest lists, the closed ones exactly, the open one (at
        // `file_index`, until the output is complete) at least as long as committed.
        for (index, record) in (0..).zip(&position.files) {
            let path = spec.part_path(index);
            let open = index >= position.file_index && !complete;
            match size_of(&path) {
                None if !open && spec.closed_parts_elsewhere => {}
                None => problem(&path, ProblemKind::Missing),
                Some(found) if found < record.bytes || (!open && found != record.bytes) => {
                    problem(&path, ProblemKind::Size { found, expected: record.bytes });
                }
                Some(_) if depth == Depth::Full => {
                    check_sum(&path, record, &mut problem)?;
                }
                Some(_) => {}
            }
        }
        // A resumable output may hold a part begun after its last commit, which a resume removes.
        let listed: Vec<PathBuf> =
            (0..).zip(&position.files).map(|(i, _)| spec.part_path(i)).collect();
        unlisted(&on_disk, &listed, complete, &mut problem);
        return Ok(problems);
    }
    if spec.format != Format::Parquet {
        let path = spec.text_path();
        let expected = position.files.first().map_or(position.bytes, |r| r.bytes);
        match size_of(&path) {
            None if expected > 0 || complete => problem(&path, ProblemKind::Missing),
            None => {}
            Some(found) if found < expected || (complete && found != expected) => {
                problem(&path, ProblemKind::Size { found, expected });
            }
            Some(_) => {
                if let (Depth::Full, Some(record)) = (depth, position.files.first()) {
                    check_sum(&path, record, &mut problem)?;
                }
            }
        }
        return Ok(problems);
    }

    // Parquet: exactly the closed parts `0..file_index`, each as its record says.
    let listed: Vec<PathBuf> = (0..position.file_index).map(|i| spec.part_path(i)).collect();
    for (index, path) in listed.iter().enumerate() {
        let record = position.files.get(index);
        let Some(found) = size_of(path) else {
            if !spec.closed_parts_elsewhere {
                problem(path, ProblemKind::Missing);
            }
            continue;
        };
        let Some(record) = record else { continue };
        if found != record.bytes {
            problem(path, ProblemKind::Size { found, expected: record.bytes });
        } else if depth == Depth::Full && check_sum(path, record, &mut problem)? {
            check_part(path, record, &mut problem);
        }
    }
    // Past the committed parts, a resumable output may hold one closed after its last checkpoint
    // (a crash between the two): uncommitted work that a resume removes, like a text file's tail.
    unlisted(&on_disk, &listed, complete, &mut problem);
    // A manifest without records (an older checkpoint) still has the parts' total size.
    if position.files.len() < listed.len() && problems.is_empty() {
        let total: u64 = on_disk.iter().filter(|f| listed.contains(&f.path)).map(|f| f.bytes).sum();
        if total != position.bytes {
            let path = listed.first().cloned().unwrap_or_else(|| spec.dir.clone());
            let kind = ProblemKind::Size { found: total, expected: position.bytes };
            problems.push(Problem { path, kind });
        }
    }
    Ok(problems)
}

/// Checks `spec`'s finished or resumable output against `position` and fails with the first
/// problem as [`Error::Changed`].
pub fn check_outputs(
    spec: &SinkSpec,
    position: &SinkPosition,
    complete: bool,
    depth: Depth,
) -> Result<(), Error> {
    match verify(spec, position, complete, depth)?.into_iter().next() {
        Some(first) => Err(first.into_error()),
        None => Ok(()),
    }
}

/// Files of `spec`'s table in its directory that another format, compression or layout would have
/// written (`terminal.csv` beside a JSONL dump of `terminal`, Parquet parts beside a text one, text
/// parts beside one file):
/// left by an earlier dump, they are no part of this output, and a reader globbing the directory
/// would mix them in.
pub fn stale_outputs(spec: &SinkSpec) -> Result<Vec<PathBuf>, Error> {
    let mut stale = Vec::new();
    for format in Format::ALL {
        let compressions: &[Compression] = if format == Format::Parquet {
            &[Compression::None]
        } else {
            &[Compression::None, Compression::gzip()]
        };
        // Text formats as one file and as parts (any size: the names do not tell it).
        let layouts: &[Option<u64>] =
            if format == Format::Parquet { &[None] } else { &[None, Some(1)] };
        for (&compression, &parts) in
            compressions.iter().flat_map(|c| layouts.iter().map(move |p| (c, p)))
        {
            let mut other =
                SinkSpec::new(&spec.dir, &spec.table, format, compression, spec.schema.clone());
            other.text_part_rows = parts;
            if other.files() == spec.files() {
                continue;
            }
            stale.extend(crate::list_outputs(&other)?.into_iter().map(|f| f.path));
        }
    }
    Ok(stale)
}

/// Checks one committed file on its own, read from `path` (a copy of it, say downloaded from a
/// bucket): its CRC-32 and, for a Parquet part, that it opens with the rows `record` claims.
/// The problems are those of `shown`, the file's name as the user knows it.
pub fn check_file(
    path: &Path,
    shown: &Path,
    record: &FileRecord,
    format: Format,
) -> Result<Vec<Problem>, Error> {
    let mut problems = Vec::new();
    let shown = shown.to_path_buf();
    let mut problem = |_: &PathBuf, kind| problems.push(Problem { path: shown.clone(), kind });
    let path = path.to_path_buf();
    if check_sum(&path, record, &mut problem)? && format == Format::Parquet {
        check_part(&path, record, &mut problem);
    }
    Ok(problems)
}

/// A complete output's parts on disk that `listed` does not name: stale or added files. A
/// resumable output may hold such a part, begun or closed after its last checkpoint.
fn unlisted(
    on_disk: &[crate::spec::OutputFileInfo],
    listed: &[PathBuf],
    complete: bool,
    problem: &mut impl FnMut(&PathBuf, ProblemKind),
) {
    for file in on_disk.iter().filter(|_| complete) {
        if !listed.contains(&file.path) {
            problem(&file.path, ProblemKind::Unlisted);
        }
    }
}

/// Compares the CRC-32 of the first `record.bytes` bytes of `path` with the record's; whether it
/// matched.
fn check_sum(
    path: &PathBuf,
    record: &FileRecord,
    problem: &mut impl FnMut(&PathBuf, ProblemKind),
) -> Result<bool, Error> {
    let (found, _) = crc_of_file(path, 0, Some(record.bytes))?;
    if found != record.crc32 {
        problem(path, ProblemKind::Checksum { found, expected: record.crc32 });
        return Ok(false);
    }
    Ok(true)
}

/// Opens a Parquet part and compares its footer's row count with the record's.
#[cfg(feature = "parquet")]
fn check_part(
    path: &PathBuf,
    record: &FileRecord,
    problem: &mut impl FnMut(&PathBuf, ProblemKind),
) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let opened = std::fs::File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| SerializedFileReader::new(f).map_err(|e| e.to_string()));
    match opened {
        Err(reason) => problem(path, ProblemKind::Unreadable { reason }),
        Ok(reader) => {
            let found = u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
            if found != record.rows {
                problem(path, ProblemKind::Rows { found, expected: record.rows });
            }
        }
    }
}

/// Without Parquet support the checksum is the whole check.
#[cfg(not(feature = "parquet"))]
fn check_part(_: &PathBuf, _: &FileRecord, _: &mut impl FnMut(&PathBuf, ProblemKind)) {}

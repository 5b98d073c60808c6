//! File-system steps of the commit protocol: finding a spec's files, durable directories, cutting
//! back, removing.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::spec::{OutputFile, PartName, SinkSpec, part_index};

/// A file of a spec's output that exists on disk.
#[derive(Debug)]
pub(crate) struct Found {
    /// Where it is.
    pub(crate) path: PathBuf,
    /// Which part-family file (closed part, Parquet temp part or piece) it is; `None` for the one
    /// file of a text format written whole.
    pub(crate) part: Option<PartName>,
}

/// Every file of `spec`'s output that exists: the one file of a text format, or its parts (for
/// Parquet the closed and temp parts and the pieces of parts being filled), closed parts first in
/// index order
/// (then temp parts, then pieces: [`PartName`]'s order). A missing directory holds none.
///
/// The one scan behind listing, removing and resuming, so that the three cannot disagree about
/// which files belong to a spec.
pub(crate) fn scan(spec: &SinkSpec) -> Result<Vec<Found>, Error> {
    let mut found = Vec::new();
    for file in spec.files() {
        match file {
            OutputFile::Path(path) => match std::fs::symlink_metadata(&path) {
                Ok(_) => found.push(Found { path, part: None }),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            },
            OutputFile::Parts { dir, table, ext } => {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(&dir, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| Error::io(&dir, e))?;
                    // A name that is not UTF-8 is no name this crate writes.
                    let name = entry.file_name();
                    if let Some(part) = name.to_str().and_then(|n| part_index(&table, &ext, n)) {
                        found.push(Found { path: entry.path(), part: Some(part) });
                    }
                }
            }
        }
    }
    // Directory order is arbitrary; by index (not by name) keeps part 100000 after part 99999.
    found.sort_by_key(|f| f.part);
    Ok(found)
}

/// Makes the directory entries of `dir` durable, so a file created or renamed in it survives a
/// power cut along with its data. On platforms where a directory cannot be opened for syncing
/// (Windows) this is a no-op: there the rename itself is what the file system journals.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| Error::io(dir, e))?;
        d.sync_all().map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates `dir` (and parents) if missing.
pub(crate) fn create_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Creates `path` empty (truncating an old one), syncs the directory, and returns it positioned
/// at 0.
pub(crate) fn create_fresh(path: &Path) -> Result<File, Error> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(file)
}

/// Checks that `path` holds at least the `len` committed bytes, touching nothing.
pub(crate) fn check_len(path: &Path, len: u64) -> Result<(), Error> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() >= len => Ok(()),
        Ok(m) => Err(short(path, m.len(), len)),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(missing(path, len)),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Checks that `path` holds exactly `len` bytes (a closed part, never written again), touching
/// nothing.
pub(crate) fn check_exact_len(path: &Path, len: u64) -> Result<(), Error> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == len => Ok(()),
        Ok(m) if m.len() < len => Err(short(path, m.len(), len)),
        Ok(m) => Err(Error::ResumeMismatch {
            path: path.to_owned(),
            reason: format!("the closed part holds {} bytes, not the {len} committed", m.len()),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(missing(path, len)),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn missing(path: &Path, len: u64) -> Error {
    Error::ResumeMismatch {
        path: path.to_owned(),
        reason: format!("the file is missing but the checkpoint says {len} bytes were written"),
    }
}

fn short(path: &Path, actual: u64, len: u64) -> Error {
    Error::ResumeMismatch {
        path: path.to_owned(),
        reason: format!(
            "the file holds {actual} bytes but the checkpoint says {len} were committed"
        ),
    }
}

/// Opens `path` for appending after cutting it back to `len` bytes: whatever follows the
/// committed length (a torn row, an unfinished gzip member, a closing `]`) is not part of the
/// output. A missing or shorter file means the output is not the one the checkpoint describes.
pub(crate) fn open_cut(path: &Path, len: u64) -> Result<File, Error> {
    let mut file = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(missing(path, len)),
        Err(e) => return Err(Error::io(path, e)),
    };
    let actual = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if actual < len {
        return Err(short(path, actual, len));
    }
    if actual > len {
        file.set_len(len).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
    }
    file.seek(SeekFrom::Start(len)).map_err(|e| Error::io(path, e))?;
    Ok(file)
}

/// Removes `path`, treating "already gone" as success.
pub(crate) fn remove_if_exists(path: &Path) -> Result<bool, Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Whether `path` exists (an error other than "not found" is one).
pub(crate) fn exists(path: &Path) -> Result<bool, Error> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

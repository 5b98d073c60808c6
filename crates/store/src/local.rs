//! The local filesystem as a destination: objects are files under a directory, written to a temp
//! file, fsynced, then linked or renamed into place and their directory fsynced.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::{Destination, Entry, Error, Object, Upload, Version, check_key};

/// A directory as a [`Destination`].
///
/// `create` is atomic against other processes (a hard link fails if the name exists). `replace`
/// compares and renames, which is atomic against a crash but not against a second writer between
/// the compare and the rename: on a local disk the table's lock (held for a run's whole life) is
/// what keeps writers apart, and this check only catches a file changed behind the lock's back.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// The directory `root` (created with its first object).
    pub fn new(root: impl Into<PathBuf>) -> LocalDir {
        LocalDir { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, Error> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

/// The version of a local file: its size and CRC-32.
fn version_of(bytes: &[u8]) -> Version {
    Version { tag: format!("{}-{:08x}", bytes.len(), crc32fast::hash(bytes)), version: None }
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io("sync", dir))
}

/// Writes `bytes` to a new temp file beside `path`, fsynced; returns its path.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, Error> {
    let dir = parent(path);
    fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", std::process::id()));
    let temp = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(Error::io("create", &temp))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(Error::io("write", &temp))?;
    Ok(temp)
}

/// The names and metadata of what `dir` holds; nothing when it does not exist.
fn entries(dir: &Path) -> Result<Vec<(String, fs::Metadata)>, Error> {
    let listed = match fs::read_dir(dir) {
        Ok(listed) => listed,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in listed {
        let entry = entry.map_err(Error::io("list", dir))?;
        let meta = entry.metadata().map_err(Error::io("read", entry.path()))?;
        out.push((entry.file_name().to_string_lossy().into_owned(), meta));
    }
    Ok(out)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

#[async_trait]
impl Destination for LocalDir {
    fn display(&self) -> String {
        self.root.display().to_string()
    }

    async fn publish(
        &self,
        key: &str,
        from: &Path,
        _started: &mut (dyn for<'u> FnMut(&'u Upload) + Send),
    ) -> Result<Entry, Error> {
        let to = self.path(key)?;
        let (from, key) = (from.to_owned(), key.to_owned());
        blocking(move || {
            let file = File::open(&from).map_err(Error::io("open", &from))?;
            file.sync_all().map_err(Error::io("sync", &from))?;
            let size = file.metadata().map_err(Error::io("read", &from))?.len();
            fs::create_dir_all(parent(&to)).map_err(Error::io("create", parent(&to)))?;
            fs::rename(&from, &to).map_err(Error::io("rename", &from))?;
            sync_dir(parent(&to))?;
            Ok(Entry { key, size })
        })
        .await
    }

    async fn abort_upload(&self, _upload: &Upload) -> Result<(), Error> {
        // Nothing is uploaded in parts to a directory.
        Ok(())
    }

    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<Version, Error> {
        let path = self.path(key)?;
        let (place, key) = (self.display(), key.to_owned());
        blocking(move || {
            let temp = write_temp(&path, &bytes)?;
            let linked = fs::hard_link(&temp, &path);
            let _ = fs::remove_file(&temp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(Error::Exists { place, key });
                }
                Err(e) => return Err(Error::io("create", &path)(e)),
            }
            sync_dir(parent(&path))?;
            Ok(version_of(&bytes))
        })
        .await
    }

    async fn replace(
        &self,
        key: &str,
        bytes: Vec<u8>,
        expected: &Version,
    ) -> Result<Version, Error> {
        let path = self.path(key)?;
        let (place, key, expected) = (self.display(), key.to_owned(), expected.clone());
        blocking(move || {
            let current = match fs::read(&path) {
                Ok(current) => Some(version_of(&current)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::io("read", &path)(e)),
            };
            if current.as_ref() != Some(&expected) {
                return Err(Error::Changed { place, key });
            }
            let temp = write_temp(&path, &bytes)?;
            fs::rename(&temp, &path).map_err(Error::io("rename", &temp))?;
            sync_dir(parent(&path))?;
            Ok(version_of(&bytes))
        })
        .await
    }

    async fn read(&self, key: &str) -> Result<Option<Object>, Error> {
        let path = self.path(key)?;
        blocking(move || match fs::read(&path) {
            Ok(bytes) => Ok(Some(Object { version: version_of(&bytes), bytes })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &path)(e)),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>, Error> {
        let dir = if prefix.is_empty() { self.root.clone() } else { self.path(prefix)? };
        let prefix = prefix.to_owned();
        blocking(move || {
            let mut out: Vec<Entry> = entries(&dir)?
                .into_iter()
                .filter(|(_, meta)| meta.is_file())
                .map(|(name, meta)| {
                    let key = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
                    Entry { key, size: meta.len() }
                })
                .collect();
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    async fn download(&self, key: &str, to: &Path) -> Result<Option<u64>, Error> {
        let (path, to) = (self.path(key)?, to.to_owned());
        blocking(move || match fs::copy(&path, &to) {
            Ok(size) => Ok(Some(size)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !path.exists() => Ok(None),
            Err(e) => Err(Error::io("copy", &path)(e)),
        })
        .await
    }

    async fn dirs(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let dir = if prefix.is_empty() { self.root.clone() } else { self.path(prefix)? };
        blocking(move || {
            let mut out: Vec<String> = entries(&dir)?
                .into_iter()
                .filter(|(_, meta)| meta.is_dir())
                .map(|(name, _)| name)
                .collect();
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let path = self.path(key)?;
        blocking(move || match fs::remove_file(&path) {
            Ok(()) => sync_dir(parent(&path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &path)(e)),
        })
        .await
    }
}

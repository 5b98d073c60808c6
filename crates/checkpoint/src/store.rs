//! The `CheckpointStore` seam and its two stores: atomic files and memory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::lock::{Holder, LockMode, TableLock};
use crate::{DumpState, Error, STATE_VERSION};

/// Every saved state by table name, an unreadable one with its error instead.
pub type Listing = Vec<(String, Result<DumpState, Error>)>;

/// Where dump states are kept between runs.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The saved state of `table`, or `None` when there is none.
    async fn load(&self, table: &str) -> Result<Option<DumpState>, Error>;
    /// Saves `state` (replacing any earlier one of its table) durably and atomically.
    async fn save(&self, state: &DumpState) -> Result<(), Error>;
    /// Removes the state of `table`, if any.
    async fn remove(&self, table: &str) -> Result<(), Error>;
    /// Every saved state, by table name; an unreadable one is listed with its error.
    async fn list(&self) -> Result<Listing, Error>;
    /// Takes the exclusive right to write `table` (its state and its output) for as long as the
    /// returned lock lives, released when it is dropped or when the process dies. With
    /// [`LockMode::IfPresent`] it is `None` for a table the store holds nothing of, so there is
    /// nothing to protect yet: lock again with [`LockMode::Create`] before writing anything. Fails
    /// with [`Error::Locked`] when another run holds the table.
    async fn lock(&self, table: &str, mode: LockMode) -> Result<Option<TableLock>, Error>;
}

/// The name of `table`'s state file: `.{table}.state.json`.
pub fn state_file_name(table: &str) -> String {
    format!(".{table}.state.json")
}

/// States as `.{table}.state.json` files in one directory (the dump's output directory).
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// A store in `dir`. Nothing is touched until the first call.
    pub fn new(dir: impl Into<PathBuf>) -> FileStore {
        FileStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The run holding `table`'s lock, if one does (see [`CheckpointStore::lock`]). It looks
    /// without taking the table.
    pub async fn holder(&self, table: &str) -> Result<Option<Holder>, Error> {
        let (dir, table) = (self.dir.clone(), table.to_owned());
        blocking(move || crate::lock::holder_in(&dir, &table)).await
    }

    /// The path of `table`'s state file.
    pub fn path(&self, table: &str) -> PathBuf {
        self.dir.join(state_file_name(table))
    }

    fn temp_path(&self, table: &str) -> PathBuf {
        self.dir.join(format!("{}.tmp", state_file_name(table)))
    }

    fn load_blocking(path: &Path) -> Result<Option<DumpState>, Error> {
        let text = match fs::read(path) {
            Ok(text) => text,
            // No directory (or a file where the directory should be) holds no state either; the
            // caller reports the directory problem when it tries to write there.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        from_bytes(path, &text).map(Some)
    }

    fn save_blocking(&self, state: &DumpState) -> Result<(), Error> {
        let path = self.path(&state.table);
        let temp = self.temp_path(&state.table);
        let text = to_bytes(state);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(|e| Error::io(&temp, e))?;
        file.write_all(&text).map_err(|e| Error::io(&temp, e))?;
        file.sync_all().map_err(|e| Error::io(&temp, e))?;
        drop(file);
        fs::rename(&temp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(&self.dir)
    }

    fn remove_blocking(&self, table: &str) -> Result<(), Error> {
        let mut removed = false;
        for path in [self.path(table), self.temp_path(table)] {
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        if removed { sync_dir(&self.dir) } else { Ok(()) }
    }

    fn list_blocking(&self) -> Result<Listing, Error> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut tables = Vec::new();
        for entry in entries {
            let name = entry.map_err(|e| Error::io(&self.dir, e))?.file_name();
            let Some(table) = name
                .to_str()
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.strip_suffix(".state.json"))
            else {
                continue;
            };
            tables.push(table.to_owned());
        }
        tables.sort();
        Ok(tables
            .into_iter()
            .map(|table| {
                let state = FileStore::load_blocking(&self.path(&table)).and_then(|s| {
                    s.ok_or_else(|| {
                        Error::io(self.path(&table), std::io::ErrorKind::NotFound.into())
                    })
                });
                (table, state)
            })
            .collect())
    }
}

/// A state as a store saves it: its sealed JSON, pretty, and a newline, at the current version.
/// Object storage keeps the same bytes as a [`FileStore`] writes.
pub fn to_bytes(state: &DumpState) -> Vec<u8> {
    let mut state = state.clone();
    state.version = STATE_VERSION;
    let mut text = crate::state::sealed_text(&state);
    text.push(b'\n');
    text
}

/// Reads what [`to_bytes`] wrote: the version first (a newer state is reported as newer, not as
/// corrupt), then the seal and the state's consistency. `label` names where it was read, for the
/// error.
pub fn from_bytes(label: &Path, text: &[u8]) -> Result<DumpState, Error> {
    // Read the version first, so a newer file is reported as newer rather than as corrupt.
    let value: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| Error::Corrupt { path: label.to_owned(), detail: e.to_string() })?;
    let found = value.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
    if found > u64::from(STATE_VERSION) {
        return Err(Error::Version {
            path: label.to_owned(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
            supported: STATE_VERSION,
        });
    }
    if found < u64::from(crate::OLDEST_STATE_VERSION) {
        return Err(Error::Corrupt {
            path: label.to_owned(),
            detail: format!("unsupported format version {found}"),
        });
    }
    let state = crate::state::unseal(value)
        .map_err(|detail| Error::Corrupt { path: label.to_owned(), detail })?;
    Ok(state)
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// Runs blocking file work off the async threads: fsync can take milliseconds.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[async_trait]
impl CheckpointStore for FileStore {
    async fn load(&self, table: &str) -> Result<Option<DumpState>, Error> {
        let path = self.path(table);
        blocking(move || FileStore::load_blocking(&path)).await
    }

    async fn save(&self, state: &DumpState) -> Result<(), Error> {
        let (store, state) = (self.clone(), state.clone());
        blocking(move || store.save_blocking(&state)).await
    }

    async fn remove(&self, table: &str) -> Result<(), Error> {
        let (store, table) = (self.clone(), table.to_owned());
        blocking(move || store.remove_blocking(&table)).await
    }

    async fn list(&self) -> Result<Listing, Error> {
        let store = self.clone();
        blocking(move || store.list_blocking()).await
    }

    async fn lock(&self, table: &str, mode: LockMode) -> Result<Option<TableLock>, Error> {
        let (dir, state, table) = (self.dir.clone(), self.path(table), table.to_owned());
        blocking(move || crate::lock::lock_in(&dir, &table, &state, mode)).await
    }
}

/// States in memory, for tests and for callers that keep their own records.
#[derive(Debug, Default)]
pub struct MemoryStore {
    states: Mutex<BTreeMap<String, DumpState>>,
    locked: Arc<Mutex<BTreeSet<String>>>,
}

/// A table locked in a [`MemoryStore`], released when dropped.
struct MemoryLock {
    locked: Arc<Mutex<BTreeSet<String>>>,
    table: String,
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        self.locked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.table);
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

#[async_trait]
impl CheckpointStore for MemoryStore {
    async fn load(&self, table: &str) -> Result<Option<DumpState>, Error> {
        Ok(self.states.lock().expect("not poisoned").get(table).cloned())
    }

    async fn save(&self, state: &DumpState) -> Result<(), Error> {
        self.states.lock().expect("not poisoned").insert(state.table.clone(), state.clone());
        Ok(())
    }

    async fn remove(&self, table: &str) -> Result<(), Error> {
        self.states.lock().expect("not poisoned").remove(table);
        Ok(())
    }

    async fn list(&self) -> Result<Listing, Error> {
        Ok(self
            .states
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(t, s)| (t.clone(), Ok(s.clone())))
            .collect())
    }

    async fn lock(&self, table: &str, _: LockMode) -> Result<Option<TableLock>, Error> {
        if !self.locked.lock().expect("not poisoned").insert(table.to_owned()) {
            return Err(Error::Locked {
                table: table.to_owned(),
                place: "memory".to_owned(),
                pid: Some(std::process::id()),
            });
        }
        Ok(Some(TableLock::new(MemoryLock {
            locked: Arc::clone(&self.locked),
            table: table.to_owned(),
        })))
    }
}

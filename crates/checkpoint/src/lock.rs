//! One writer per table: the exclusive right to write a table's checkpoint and output, held for
//! a run's whole life.
//!
//! On a local disk it is an advisory lock (`flock`) on `.{table}.lock` beside the state file,
//! which the kernel releases when the process dies, however it dies: a killed run never leaves a
//! table locked. The file stays empty and unchanged (a refused run touches nothing); the holder's
//! pid, for the refusal's message, is the kernel's record of the lock (`/proc/locks` on Linux).
//! The file itself is never removed: removing it while another run waits to open it would let two
//! runs lock two different files of the same name.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::Duration;

use crate::Error;

/// The right to write one table, held until dropped.
pub struct TableLock {
    _held: Box<dyn Send + Sync>,
}

impl TableLock {
    /// A lock held as long as `held` lives, for stores of other kinds than this crate's.
    pub fn new(held: impl Send + Sync + 'static) -> TableLock {
        TableLock { _held: Box::new(held) }
    }
}

impl std::fmt::Debug for TableLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableLock").finish_non_exhaustive()
    }
}

/// A run that holds a table's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// Its process id, where the system tells it (Linux).
    pub pid: Option<u32>,
}

/// What [`CheckpointStore::lock`](crate::CheckpointStore::lock) does with a table the store
/// holds nothing of yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockMode {
    /// Lock only a table the store already holds something of (a state, or a lock taken before);
    /// otherwise there is nothing to protect yet, and the answer is `None`. Touches nothing new.
    IfPresent,
    /// Lock in any case, creating what the lock needs in the store's place (which must exist).
    Create,
}

/// The name of `table`'s lock file: `.{table}.lock`.
pub fn lock_file_name(table: &str) -> String {
    format!(".{table}.lock")
}

/// How often, and how far apart, a lock that is busy is tried again before the table is called
/// locked: `status` takes the lock shared for an instant to see whether a run holds it, and a run
/// starting in that instant must not be refused for it.
const TRIES: u32 = 5;
const PAUSE: Duration = Duration::from_millis(10);

/// Locks `table` in `dir`, whose state file is `state`; see [`LockMode`] for when it is `None`.
pub(crate) fn lock_in(
    dir: &Path,
    table: &str,
    state: &Path,
    mode: LockMode,
) -> Result<Option<TableLock>, Error> {
    let path = dir.join(lock_file_name(table));
    let create = match mode {
        LockMode::Create => true,
        // A table with a state but no lock file yet (written before locks existed) gets one.
        LockMode::IfPresent => state.exists(),
    };
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(&path)
    {
        Ok(file) => file,
        // No directory (or a file where it should be) holds nothing to protect either; the caller
        // reports the directory problem when it tries to write there.
        Err(e)
            if mode == LockMode::IfPresent
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    for attempt in 1..=TRIES {
        match file.try_lock() {
            Ok(()) => return Ok(Some(TableLock::new(file))),
            Err(std::fs::TryLockError::WouldBlock) if attempt < TRIES => std::thread::sleep(PAUSE),
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    table: table.to_owned(),
                    place: dir.display().to_string(),
                    pid: holder_pid(&file),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
    }
    unreachable!("the last attempt returns")
}

/// The run holding `table`'s lock in `dir`, if one does. Looks without taking the table: the lock
/// is taken shared for an instant, which a starting run waits out.
pub(crate) fn holder_in(dir: &Path, table: &str) -> Result<Option<Holder>, Error> {
    let path = dir.join(lock_file_name(table));
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => Ok(Some(Holder { pid: holder_pid(&file) })),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// The pid of the process holding an exclusive `flock` on `file`, from the kernel's table of
/// locks (lines like `1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF`), matched by inode.
fn holder_pid(file: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let inode = file.metadata().ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, "FLOCK", _, "WRITE", pid, device_inode, ..] = fields.as_slice() else {
            return None;
        };
        let found: u64 = device_inode.rsplit(':').next()?.parse().ok()?;
        (found == inode).then(|| pid.parse().ok()).flatten()
    })
}

/// Other systems keep no such table where a program can read it.
#[cfg(not(target_os = "linux"))]
fn holder_pid(_: &File) -> Option<u32> {
    None
}

//! One writer per table, as a run takes it: the table's lock, before the checkpoint is read or,
//! for a table with nothing written yet, before its first write.

use iptvportal_checkpoint::{LockMode, TableLock};

use super::AsyncDumpManager;
use crate::Error;

impl AsyncDumpManager {
    pub(super) async fn lock(&self, mode: LockMode) -> Result<Option<TableLock>, Error> {
        let table = &self.config.table;
        self.store.lock(table, mode).await.map_err(|source| Error::of_lock(table, source))
    }

    /// The lock of a table whose output directory this run has just created. Another run may
    /// have created it too and started: then its checkpoint is there now, and this run, planned
    /// without it, must not go on.
    pub(super) async fn lock_created(&self) -> Result<TableLock, Error> {
        let table = &self.config.table;
        let ck = |source| Error::Checkpoint { table: table.clone(), source };
        let lock = self.lock(LockMode::Create).await?.ok_or_else(|| Error::OutputDir {
            table: table.clone(),
            dir: self.config.output_dir.clone(),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        if self.store.load(table).await.map_err(ck)?.is_some() {
            return Err(Error::Locked {
                table: table.clone(),
                place: self.config.output_dir.display().to_string(),
                pid: None,
            });
        }
        Ok(lock)
    }
}

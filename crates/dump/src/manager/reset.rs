//! `AsyncDumpManager::reset`: the checkpoint and every output file of a table removed together.

use iptvportal_checkpoint::LockMode;
use iptvportal_sink::Schema;

use super::AsyncDumpManager;
use crate::Error;
use crate::writer::blocking;

impl AsyncDumpManager {
    /// Deletes the checkpoint and every output file of the table (for the configured format, and
    /// for the format the checkpoint was written with), so the next run starts over.
    ///
    /// The configuration is validated first: a dump that would be refused anyway must not have
    /// deleted the previous output.
    pub async fn reset(&self) -> Result<(), Error> {
        self.config.validate()?;
        let table = &self.config.table;
        let ck = |source| Error::Checkpoint { table: table.clone(), source };
        // Nothing of a table another run is writing is deleted.
        let _lock = self.lock(LockMode::IfPresent).await?;
        let saved = match self.store.load(table).await {
            Ok(state) => state,
            // An unreadable checkpoint is exactly what reset is for.
            Err(
                iptvportal_checkpoint::Error::Corrupt { .. }
                | iptvportal_checkpoint::Error::Version { .. },
            ) => None,
            Err(e) => return Err(ck(e)),
        };
        self.store.remove(table).await.map_err(ck)?;
        let mut specs = vec![self.config.sink_spec(Schema { columns: Vec::new() })];
        if let Some(state) = saved {
            // The files the checkpoint's own options wrote, which may not be today's.
            specs.push(crate::verify::sink_spec(&self.config.output_dir, &state));
        }
        for spec in specs {
            blocking(move || iptvportal_sink::remove_outputs(&spec))
                .await
                .map_err(|source| Error::Sink { table: table.clone(), source: Box::new(source) })?;
        }
        Ok(())
    }
}

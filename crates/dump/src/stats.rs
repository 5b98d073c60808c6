//! What a finished dump reports: [`DumpStats`], its [`Outcome`] and the count reconciliation.

use iptvportal_sink::{OutputFileInfo, Schema, SinkSpec};
use iptvportal_traverse::Strategy;

use crate::{DumpConfig, DumpProgress, Warning};

/// How a dump that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// This run completed the output.
    Completed,
    /// The checkpoint said the output was already complete; nothing was done.
    AlreadyComplete,
}

/// The up-front count and the rows actually dumped disagree: the table changed during the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountMismatch {
    /// Rows counted when the run started (plus rows done before it).
    pub counted: u64,
    /// Rows in the finished output.
    pub dumped: u64,
}

/// The result of one table's dump.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DumpStats {
    /// The configuration that ran.
    pub config: DumpConfig,
    /// The strategy the traversal used (`config.strategy` resolved, never `auto`); for an
    /// output that was already complete, the one it was written with.
    pub strategy: Strategy,
    /// The final progress.
    pub progress: DumpProgress,
    /// Completed now, or already complete.
    pub outcome: Outcome,
    /// The output files.
    pub files: Vec<OutputFileInfo>,
    /// Set when the count and the output disagree (the table changed under OFFSET paging).
    pub count_mismatch: Option<CountMismatch>,
    /// Things the user should know (columns named by position, a changed table).
    pub warnings: Vec<Warning>,
}

impl DumpStats {
    /// The stats of a finished dump that used `strategy`, listing its output files as they are on
    /// disk.
    pub(crate) fn new(
        config: &DumpConfig,
        strategy: Strategy,
        schema: &Schema,
        progress: DumpProgress,
        outcome: Outcome,
    ) -> DumpStats {
        let spec = config.sink_spec(schema.clone());
        DumpStats {
            config: config.clone(),
            strategy,
            progress,
            outcome,
            files: list_files(&spec),
            count_mismatch: None,
            warnings: Vec::new(),
        }
    }

    /// Total size of the output files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Compares the up-front count with the rows dumped, and warns when the table changed.
    pub(crate) fn reconcile(&mut self, counted: u64) {
        let dumped = self.progress.dumped_rows;
        if counted == dumped {
            return;
        }
        self.warnings.push(Warning::CountMismatch {
            table: self.config.table.clone(),
            strategy: self.strategy,
            counted,
            dumped,
        });
        self.count_mismatch = Some(CountMismatch { counted, dumped });
    }
}

/// The files a finished dump wrote. They were written a moment ago, so a listing that fails
/// (the directory removed under us) reports no files rather than failing a completed dump.
fn list_files(spec: &SinkSpec) -> Vec<OutputFileInfo> {
    iptvportal_sink::list_outputs(spec).unwrap_or_default()
}

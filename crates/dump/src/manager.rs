//! `AsyncDumpManager`: one table's dump, from the checkpoint to the last commit.
//!
//! The loop is the commit protocol of design §5: fetch a chunk, hand it to the sink, let the sink
//! make it durable, and only then save the state that points at it. Whatever instant the process
//! dies at, the saved state describes output that is on disk, and the next run cuts the files back
//! to it and refetches from its cursor.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use iptvportal_checkpoint::{CheckpointStore, DumpState, FileStore, LockMode, TableLock};
use iptvportal_sink::{Depth, SinkPosition};
use iptvportal_traverse::{Chunk, Cursor, RowSource, Traversal};
use tokio::sync::watch;

mod lease;
mod reset;

use crate::control::{Control, Controls, wait_for_cancel};
use crate::plan::{Plan, Start};
use crate::progress::{DumpProgress, RunState};
use crate::source::{Portal, RetryHook};
use crate::stats::{DumpStats, Outcome};
use crate::writer::{Writer, blocking, ensure_dir};
use crate::{DumpConfig, Error};

/// Locks a mutex whose data stays valid even if a holder panicked (plain counters).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Called after every committed chunk, and at every change of state.
pub type ProgressCallback = Arc<dyn Fn(&DumpProgress) + Send + Sync>;

/// Runs one table's dump: [`AsyncDumpManager::run`], with pause, resume, cancel and reset.
pub struct AsyncDumpManager {
    portal: Arc<dyn Portal>,
    config: DumpConfig,
    store: Arc<dyn CheckpointStore>,
    control: Controls,
    progress: Arc<Mutex<DumpProgress>>,
}

impl std::fmt::Debug for AsyncDumpManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDumpManager")
            .field("table", &self.config.table)
            .finish_non_exhaustive()
    }
}

impl AsyncDumpManager {
    /// A manager reading from `portal` (a [`Client`](iptvportal_client::Client), or any
    /// `Arc<dyn RowSource>`) and keeping its checkpoint in the output directory
    /// (`.{table}.state.json`).
    pub fn new(portal: impl Portal, config: DumpConfig) -> AsyncDumpManager {
        let store = Arc::new(FileStore::new(&config.output_dir));
        AsyncDumpManager::with_store(portal, config, store)
    }

    /// A manager keeping its checkpoint in `store`.
    pub fn with_store(
        portal: impl Portal,
        config: DumpConfig,
        store: Arc<dyn CheckpointStore>,
    ) -> AsyncDumpManager {
        AsyncDumpManager::from_parts(Arc::new(portal), config, store)
    }

    pub(crate) fn from_parts(
        portal: Arc<dyn Portal>,
        config: DumpConfig,
        store: Arc<dyn CheckpointStore>,
    ) -> AsyncDumpManager {
        // The strategy a fresh run would take; `execute` sets the one it does take.
        let strategy = config.strategy_for(None);
        let progress = DumpProgress::new(&config.table, strategy, SystemTime::now(), 0, 0);
        AsyncDumpManager {
            portal,
            config,
            store,
            control: Controls::new(),
            progress: Arc::new(Mutex::new(progress)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DumpConfig {
        &self.config
    }

    /// A snapshot of the progress.
    pub fn progress(&self) -> DumpProgress {
        lock(&self.progress).clone()
    }

    /// Stops sending requests after the chunks in flight are committed, until [`resume`].
    ///
    /// [`resume`]: AsyncDumpManager::resume
    pub fn pause(&self) {
        self.control.ask(Control::Pause);
    }

    /// Continues a paused dump.
    pub fn resume(&self) {
        self.control.ask(Control::Run);
    }

    /// Stops the dump as soon as possible; what is committed stays, and a later run resumes.
    pub fn cancel(&self) {
        self.control.ask(Control::Cancel);
    }

    fn update(&self, callback: Option<&ProgressCallback>, f: impl FnOnce(&mut DumpProgress)) {
        let snapshot = {
            let mut p = lock(&self.progress);
            f(&mut p);
            p.clone()
        };
        if let Some(cb) = callback {
            cb(&snapshot);
        }
    }

    /// Runs the dump to completion (or to a failure or cancellation, leaving a resumable state).
    pub async fn run(&self, callback: Option<ProgressCallback>) -> Result<DumpStats, Error> {
        let result = self.run_inner(callback.as_ref()).await;
        if let Err(e) = &result {
            let state = if matches!(e, Error::Cancelled { .. }) {
                RunState::Cancelled
            } else {
                RunState::Failed
            };
            self.update(callback.as_ref(), |p| p.finish(state));
        }
        result
    }

    async fn run_inner(&self, callback: Option<&ProgressCallback>) -> Result<DumpStats, Error> {
        // Bad options fail before anything is touched, the lock file included.
        self.config.validate()?;
        // One writer per table: held from before the checkpoint is read to after the last commit.
        // A table with nothing written yet has nothing to protect: it is locked before its first
        // write, once its output directory exists (and no lock file is left by a failed request).
        let table_lock = self.lock(LockMode::IfPresent).await?;
        match crate::plan::plan(&self.config, self.store.as_ref(), self.portal.identity()).await? {
            Start::AlreadyComplete(state) => {
                // "Complete" is said only of files that are still what the manifest says, down to
                // their checksums (reading them costs a fraction of writing them).
                let spec = self.config.sink_spec(state.schema.clone());
                let position = state.sink.clone();
                blocking(move || {
                    iptvportal_sink::check_outputs(&spec, &position, true, Depth::Full)
                })
                .await
                .map_err(|source| Error::Sink {
                    table: self.config.table.clone(),
                    source: Box::new(source),
                })?;
                Ok(self.already_complete(&state, callback))
            }
            Start::Run(plan) => {
                // Cancelled before it began (a queued table of a cancelled `dump_many`): stop
                // before the first request, leaving any checkpoint as it is.
                if self.control.is_cancelled() {
                    let rows = plan.resume.as_ref().map_or(0, |s| s.dumped_rows);
                    return Err(Error::Cancelled { table: self.config.table.clone(), rows });
                }
                self.execute(*plan, table_lock, callback).await
            }
        }
    }

    /// Counts, opens the output and runs the commit loop to the end.
    async fn execute(
        &self,
        mut plan: Plan,
        table_lock: Option<TableLock>,
        callback: Option<&ProgressCallback>,
    ) -> Result<DumpStats, Error> {
        let config = &self.config;
        let table = config.table.clone();
        let ck = |source| Error::Checkpoint { table: table.clone(), source };
        let resume = plan.resume.take();
        let (done_rows, done_chunks, started_at) =
            resume.as_ref().map_or((0, 0, SystemTime::now()), |s| {
                (s.dumped_rows, s.chunks_completed, s.started().unwrap_or_else(SystemTime::now))
            });
        *lock(&self.progress) =
            DumpProgress::new(&table, plan.spec.strategy, started_at, done_rows, done_chunks);
        self.update(callback, |p| p.current_offset = plan.cursor.current_offset(done_rows));

        // The count goes first: an unknown table or column fails here, before any file is touched.
        // A cancel does not wait for it: against a slow portal it can take the timeout times the
        // retries, and nothing has been written yet.
        let source = self.row_source(callback);
        let mut control = self.control.subscribe();
        let started = tokio::select! {
            biased;
            () = wait_for_cancel(&mut control) => {
                return Err(Error::Cancelled { table: table.clone(), rows: done_rows });
            }
            started = Traversal::start(source, plan.spec.clone(), plan.cursor) => started,
        };
        let mut traversal = started
            .map_err(|source| Error::Fetch { table: table.clone(), source: Box::new(source) })?;
        let counted = done_rows + traversal.remaining_rows();
        self.update(callback, |p| {
            p.total_rows = Some(counted);
            p.state = RunState::Running;
        });

        ensure_dir(&config.output_dir, &table).map_err(|source| Error::OutputDir {
            table: table.clone(),
            dir: config.output_dir.clone(),
            source,
        })?;
        let table_lock = match table_lock {
            Some(held) => held,
            None => self.lock_created().await?,
        };
        if resume.is_none() {
            // A stale checkpoint must not outlive the output it described: remove it before the
            // fresh output replaces that output.
            self.store.remove(&table).await.map_err(ck)?;
        }

        let mut state = resume.unwrap_or_else(|| {
            DumpState::fresh(&table, plan.cursor, started_at, plan.shape.clone())
        });
        state.total_rows = Some(counted);
        // The sink's thread holds the lock, so that it is released only after the sink is gone,
        // even when this future is dropped halfway through a write.
        let mut writer =
            Writer::spawn(&table, &config.output_dir, state.chunks_completed, table_lock)?;
        if let Some(schema) = &plan.schema {
            // A known schema opens the output now, so a resume cuts the files back before the
            // first fetch; an unknown table's output opens with its first chunk.
            state.schema = schema.clone();
            if let Err(e) = self.open(&mut writer, &mut state, &plan, &[]).await {
                writer.close().await;
                return Err(e);
            }
        }

        let finished = self
            .finish(&plan, &mut traversal, &mut writer, &mut state, &mut control, callback)
            .await;
        // Whatever happened, the table is let go of before this run returns.
        writer.close().await;
        finished?;

        self.update(callback, |p| {
            p.dumped_rows = state.dumped_rows;
            p.finish(RunState::Done);
        });
        let mut stats = DumpStats::new(
            config,
            plan.spec.strategy,
            &state.schema,
            self.progress(),
            Outcome::Completed,
        );
        stats.warnings = plan.warnings;
        stats.reconcile(counted);
        for w in &stats.warnings {
            tracing::warn!("{w}");
        }
        Ok(stats)
    }

    /// Runs the commit loop to the end and completes the output, or saves why it stopped.
    async fn finish(
        &self,
        plan: &Plan,
        traversal: &mut Traversal,
        writer: &mut Writer,
        state: &mut DumpState,
        control: &mut watch::Receiver<Control>,
        callback: Option<&ProgressCallback>,
    ) -> Result<(), Error> {
        let ck = |source| Error::Checkpoint { table: self.config.table.clone(), source };
        let mut run = Run { plan, writer, state, callback };
        if let Err(e) = self.pump(traversal, &mut run, control).await {
            if run.writer.is_open() || !run.state.schema.columns.is_empty() {
                let failure = (!matches!(e, Error::Cancelled { .. })).then(|| e.to_string());
                run.state.record_stop(failure);
                self.store.save(run.state).await.map_err(ck)?;
            }
            return Err(e);
        }
        // The end: an unknown empty table still gets a well-formed, empty output.
        if !writer.is_open() {
            self.open(writer, state, plan, &[]).await?;
        }
        let position = writer.finish().await?;
        state.record_completion(position, writer.chunks());
        self.store.save(state).await.map_err(ck)
    }

    /// Opens the sink where the state says: the one place a dump opens its output. The schema is
    /// the plan's, or for a table the catalog does not know, inferred from `first_rows`.
    async fn open(
        &self,
        writer: &mut Writer,
        state: &mut DumpState,
        plan: &Plan,
        first_rows: &[Vec<serde_json::Value>],
    ) -> Result<(), Error> {
        if state.schema.columns.is_empty() {
            state.schema = plan.infer_schema(first_rows);
        }
        // A resumed dump that never committed holds nothing worth keeping: it opens fresh.
        let position = (state.sink != SinkPosition::default()).then(|| state.sink.clone());
        let spec = self.config.sink_spec(state.schema.clone());
        if let Some(position) = &position {
            // Every file the manifest names, at its size, and nothing else, before any file is
            // cut back: the sink then rereads what it continues from (the last chunk).
            let (spec, position) = (spec.clone(), position.clone());
            blocking(move || iptvportal_sink::check_outputs(&spec, &position, false, Depth::Sizes))
                .await
                .map_err(|source| Error::Sink {
                    table: self.config.table.clone(),
                    source: Box::new(source),
                })?;
        }
        writer.open(spec, position).await
    }

    /// Fetches, writes and commits chunks until the traversal ends, honouring pause and cancel.
    async fn pump(
        &self,
        traversal: &mut Traversal,
        run: &mut Run<'_>,
        control: &mut watch::Receiver<Control>,
    ) -> Result<(), Error> {
        let table = self.config.table.clone();
        let fetch_err = |source| Error::Fetch { table: table.clone(), source: Box::new(source) };
        let cancelled =
            |state: &DumpState| Error::Cancelled { table: table.clone(), rows: state.dumped_rows };
        loop {
            let command = *control.borrow_and_update();
            match command {
                Control::Cancel => return Err(cancelled(run.state)),
                Control::Pause => {
                    // Let what is already in flight commit, then send nothing until resumed.
                    while let Some(chunk) = traversal.next_in_flight().await.map_err(fetch_err)? {
                        self.commit_chunk(chunk, run).await?;
                    }
                    self.update(run.callback, DumpProgress::pause);
                    tracing::info!(table = %table, "paused");
                    while *control.borrow_and_update() == Control::Pause {
                        if control.changed().await.is_err() {
                            return Err(cancelled(run.state));
                        }
                    }
                    self.update(run.callback, DumpProgress::unpause);
                    continue;
                }
                Control::Run => {}
            }
            let next = tokio::select! {
                biased;
                () = wait_for_cancel(control) => return Err(cancelled(run.state)),
                next = traversal.next_chunk() => next.map_err(fetch_err)?,
            };
            let Some(chunk) = next else { return Ok(()) };
            self.commit_chunk(chunk, run).await?;
        }
    }

    /// Writes one chunk, commits it, and saves the state when the committed position moved.
    async fn commit_chunk(&self, chunk: Chunk, run: &mut Run<'_>) -> Result<(), Error> {
        if !run.writer.is_open() {
            self.open(run.writer, run.state, run.plan, &chunk.rows).await?;
        }
        let rows = chunk.rows.len() as u64;
        let committed = run.writer.write_and_commit(chunk.rows).await?;
        self.update(run.callback, |p| {
            p.record_chunk(rows);
            // A chunk arrived, so whatever was being retried got through.
            if p.state == RunState::Retrying {
                p.state = RunState::Running;
            }
            p.current_offset = chunk.cursor.current_offset(p.dumped_rows);
            if let Cursor::Id { after } = chunk.cursor {
                p.current_id = after;
            }
        });
        if let Some(position) = committed {
            run.state.record_commit(position, chunk.cursor, run.writer.chunks());
            self.store
                .save(run.state)
                .await
                .map_err(|source| Error::Checkpoint { table: self.config.table.clone(), source })?;
        }
        Ok(())
    }

    fn already_complete(
        &self,
        state: &DumpState,
        callback: Option<&ProgressCallback>,
    ) -> DumpStats {
        let started = state.started().unwrap_or_else(SystemTime::now);
        let mut progress = DumpProgress::new(
            &self.config.table,
            state.shape.strategy,
            started,
            state.dumped_rows,
            state.chunks_completed,
        );
        progress.total_rows = state.total_rows.or(Some(state.dumped_rows));
        progress.current_id = state.current_id;
        progress.finish(RunState::Done);
        progress.completed_at = state.completed();
        *lock(&self.progress) = progress.clone();
        if let Some(cb) = callback {
            cb(&progress);
        }
        DumpStats::new(
            &self.config,
            state.shape.strategy,
            &state.schema,
            progress,
            Outcome::AlreadyComplete,
        )
    }

    /// The portal's source for this dump: its per-chunk retry budget and batch timeout, and a
    /// retry hook that shows "retrying" in the progress.
    fn row_source(&self, callback: Option<&ProgressCallback>) -> Arc<dyn RowSource> {
        let progress = Arc::clone(&self.progress);
        let callback = callback.cloned();
        let on_retry: RetryHook = Arc::new(move || {
            let snapshot = {
                let mut p = lock(&progress);
                p.retries += 1;
                p.state = RunState::Retrying;
                p.clone()
            };
            if let Some(cb) = &callback {
                cb(&snapshot);
            }
        });
        self.portal.source(&self.config, on_retry)
    }
}

/// What one run's commit loop works on.
struct Run<'a> {
    plan: &'a Plan,
    writer: &'a mut Writer,
    state: &'a mut DumpState,
    callback: Option<&'a ProgressCallback>,
}

//! `AsyncDumpManager`: one table's dump, from the checkpoint to the last commit.
//!
//! The loop is the commit protocol of design §5: fetch a chunk, hand it to the sink, let the sink
//! make it durable, and only then save the state that points at it. Whatever instant the process
//! dies at, the saved state describes output that is on disk, and the next run cuts the files back
//! to it and refetches from its cursor.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use iptvportal_catalog::Table;
use iptvportal_checkpoint::{CheckpointStore, DumpState, FileStore, OutputShape, STATE_VERSION};
use iptvportal_client::{Client, RetryPolicy};
use iptvportal_query::{OrderBy, Select};
use iptvportal_sink::{OutputFile, Schema, Sink, SinkPosition, SinkSpec};
use iptvportal_traverse::{BoxError, Chunk, Cursor, RowSource, Strategy, Traversal, TraversalSpec};
use serde_json::Value;
use tokio::sync::watch;

use crate::progress::{DumpProgress, RunState};
use crate::{DumpConfig, Error};

/// Where a run starts.
enum Start {
    AlreadyComplete(Box<DumpStats>),
    Run(Box<Plan>),
}

/// What [`AsyncDumpManager::plan`] decided.
struct Plan {
    known: Option<&'static Table>,
    shape: OutputShape,
    resume: Option<DumpState>,
    columns: Option<Vec<String>>,
    spec: TraversalSpec,
    cursor: Cursor,
    warnings: Vec<String>,
}

/// Locks a mutex whose data stays valid even if a holder panicked (plain counters).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Called after every committed chunk, and at every change of state.
pub type ProgressCallback = Arc<dyn Fn(&DumpProgress) + Send + Sync>;

/// What a caller asks of a running dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Run,
    Pause,
    Cancel,
}

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

/// One output file and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFileInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The result of one table's dump.
#[derive(Debug, Clone)]
pub struct DumpStats {
    /// The configuration that ran.
    pub config: DumpConfig,
    /// The final progress.
    pub progress: DumpProgress,
    /// Completed now, or already complete.
    pub outcome: Outcome,
    /// The output files.
    pub files: Vec<OutputFileInfo>,
    /// Set when the count and the output disagree (the table changed under OFFSET paging).
    pub count_mismatch: Option<CountMismatch>,
    /// Things the user should know (columns named by position, a changed table).
    pub warnings: Vec<String>,
}

impl DumpStats {
    /// Total size of the output files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// Runs one table's dump: [`AsyncDumpManager::run`], with pause, resume, cancel and reset.
pub struct AsyncDumpManager {
    client: Client,
    config: DumpConfig,
    store: Arc<dyn CheckpointStore>,
    control: watch::Sender<Control>,
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
    /// A manager keeping its checkpoint in the output directory (`.{table}.state.json`).
    pub fn new(client: Client, config: DumpConfig) -> AsyncDumpManager {
        let store = Arc::new(FileStore::new(&config.output_dir));
        AsyncDumpManager::with_store(client, config, store)
    }

    /// A manager keeping its checkpoint in `store`.
    pub fn with_store(
        client: Client,
        config: DumpConfig,
        store: Arc<dyn CheckpointStore>,
    ) -> AsyncDumpManager {
        let progress = DumpProgress::new(&config.table, SystemTime::now(), 0, 0);
        AsyncDumpManager {
            client,
            config,
            store,
            control: watch::Sender::new(Control::Run),
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
        self.control.send_if_modified(|c| replace_unless_cancelled(c, Control::Pause));
    }

    /// Continues a paused dump.
    pub fn resume(&self) {
        self.control.send_if_modified(|c| replace_unless_cancelled(c, Control::Run));
    }

    /// Stops the dump as soon as possible; what is committed stays, and a later run resumes.
    pub fn cancel(&self) {
        self.control.send_replace(Control::Cancel);
    }

    /// Deletes the checkpoint and every output file of the table (for the configured format, and
    /// for the format the checkpoint was written with), so the next run starts over.
    ///
    /// The configuration is validated first: a dump that would be refused anyway must not have
    /// deleted the previous output.
    pub async fn reset(&self) -> Result<(), Error> {
        self.config.validate()?;
        let table = &self.config.table;
        let ck = |source| Error::Checkpoint { table: table.clone(), source };
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
        let mut specs = vec![self.sink_spec(Schema { columns: Vec::new() })];
        if let Some(state) = saved {
            specs.push(SinkSpec::new(
                &self.config.output_dir,
                table.as_str(),
                state.shape.format,
                state.shape.compression,
                state.schema,
            ));
        }
        for spec in specs {
            blocking(move || iptvportal_sink::remove_outputs(&spec))
                .await
                .map_err(|source| Error::Sink { table: table.clone(), source: Box::new(source) })?;
        }
        Ok(())
    }

    fn sink_spec(&self, schema: Schema) -> SinkSpec {
        let mut spec = SinkSpec::new(
            &self.config.output_dir,
            self.config.table.as_str(),
            self.config.format,
            self.config.compression(),
            schema,
        );
        spec.parquet = self.config.parquet.clone();
        spec
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
        match self.plan(callback).await? {
            Start::AlreadyComplete(stats) => Ok(*stats),
            Start::Run(plan) => self.execute(*plan, callback).await,
        }
    }

    /// Validates the configuration and decides where to start: fresh, from the checkpoint, or
    /// not at all (complete). Sends nothing and touches no file.
    async fn plan(&self, callback: Option<&ProgressCallback>) -> Result<Start, Error> {
        let config = &self.config;
        let table = config.table.clone();
        let known = iptvportal_catalog::table(&table);
        config.validate_for(known)?;
        let shape = self.shape()?;

        // What the checkpoint says, unless told to start over.
        let starting_over = !config.resume || config.resume_offset.is_some();
        let saved = if starting_over {
            None
        } else {
            self.store
                .load(&table)
                .await
                .map_err(|source| Error::Checkpoint { table: table.clone(), source })?
        };
        let resume = match saved {
            Some(state) => {
                let differences = state.shape.differences(&shape);
                if !differences.is_empty() {
                    return Err(Error::ShapeMismatch {
                        table,
                        dir: config.output_dir.clone(),
                        differences,
                    });
                }
                if state.is_complete {
                    return Ok(Start::AlreadyComplete(Box::new(
                        self.already_complete(&state, callback),
                    )));
                }
                Some(state)
            }
            None => None,
        };
        // Cancelled before it began (a queued table of a cancelled `dump_many`): stop before the
        // first request, leaving any checkpoint as it is.
        if *self.control.borrow() == Control::Cancel {
            return Err(Error::Cancelled { table, rows: resume.map_or(0, |s| s.dumped_rows) });
        }

        let columns = match (&config.columns, known) {
            (Some(columns), _) => Some(columns.clone()),
            (None, Some(t)) => Some(t.column_names().map(str::to_owned).collect()),
            (None, None) => None,
        };
        let mut warnings = Vec::new();
        if known.is_none() && columns.is_none() {
            warnings.push(format!(
                "{table} is not in the catalog and no --columns were given: columns are named by position (col1, col2, …)"
            ));
        }
        let spec = TraversalSpec::new(table.as_str())
            .columns(columns.clone())
            .filter(config.where_clause.clone())
            .order_by(self.order_by(known)?)
            .id_column(crate::config::id_column(known))
            .chunk_size(config.chunk_size)
            .strategy(config.strategy)
            .max_parallel(config.max_parallel);
        let cursor = match (&resume, config.resume_offset) {
            (Some(state), _) => state.cursor,
            (None, Some(offset)) => Cursor::Offset { offset },
            (None, None) => Cursor::start(config.strategy),
        };
        Ok(Start::Run(Box::new(Plan { known, shape, resume, columns, spec, cursor, warnings })))
    }

    /// Counts, opens the output and runs the commit loop to the end.
    async fn execute(
        &self,
        plan: Plan,
        callback: Option<&ProgressCallback>,
    ) -> Result<DumpStats, Error> {
        let Plan { known, shape, resume, columns, spec, cursor, mut warnings } = plan;
        let config = &self.config;
        let table = config.table.clone();
        let ck = |source| Error::Checkpoint { table: table.clone(), source };
        let (done_rows, done_chunks, started_at) =
            resume.as_ref().map_or((0, 0, SystemTime::now()), |s| {
                (
                    s.dumped_rows,
                    s.chunks_completed,
                    parse_time(&s.started_at).unwrap_or_else(SystemTime::now),
                )
            });
        *lock(&self.progress) = DumpProgress::new(&table, started_at, done_rows, done_chunks);
        self.update(callback, |p| p.current_offset = offset_of(cursor, done_rows));

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
            started = Traversal::start(source, spec, cursor) => started,
        };
        let mut traversal = started
            .map_err(|source| Error::Fetch { table: table.clone(), source: Box::new(source) })?;
        let counted = done_rows + traversal.remaining_rows();
        self.update(callback, |p| {
            p.total_rows = Some(counted);
            p.state = RunState::Running;
        });

        ensure_dir(&config.output_dir).map_err(|source| Error::OutputDir {
            table: table.clone(),
            dir: config.output_dir.clone(),
            source,
        })?;
        if resume.is_none() {
            // A stale checkpoint must not outlive the output it described: remove it before the
            // fresh output replaces that output.
            self.store.remove(&table).await.map_err(ck)?;
        }

        let mut state = resume.unwrap_or_else(|| fresh_state(&table, cursor, started_at, shape));
        state.total_rows = Some(counted);
        let mut writer = self.open_writer(&mut state, known, columns.as_deref()).await?;

        let outcome = self
            .pump(
                &mut traversal,
                &mut writer,
                &mut state,
                &mut control,
                columns.as_deref(),
                callback,
            )
            .await;
        if let Err(e) = outcome {
            if writer.open || !state.schema.columns.is_empty() {
                self.record_failure(&mut state, &e).await?;
            }
            return Err(e);
        }

        // The end: an unknown empty table still gets a well-formed, empty output.
        if !writer.open {
            state.schema = Schema::infer(&columns.clone().unwrap_or_default(), &[]);
            writer.open(self.sink_spec(state.schema.clone()), None, &table).await?;
        }
        let position = writer.finish(&table).await?;
        let finished = now_rfc3339();
        state.dumped_rows = position.rows;
        state.sink = position;
        state.chunks_completed = writer.chunks;
        state.is_complete = true;
        state.completed_at = Some(finished.clone());
        state.last_updated_at = finished;
        state.last_error = None;
        self.store.save(&state).await.map_err(ck)?;

        let count_mismatch =
            reconcile(&table, config.strategy, counted, state.dumped_rows, &mut warnings);
        for w in &warnings {
            tracing::warn!("{w}");
        }
        self.update(callback, |p| {
            p.dumped_rows = state.dumped_rows;
            p.finish(RunState::Done);
        });
        Ok(DumpStats {
            config: config.clone(),
            progress: self.progress(),
            outcome: Outcome::Completed,
            files: self.files(&state.schema),
            count_mismatch,
            warnings,
        })
    }

    /// Saves the error in the state. The state still points at committed data only, so this
    /// changes nothing a resume depends on.
    async fn record_failure(&self, state: &mut DumpState, error: &Error) -> Result<(), Error> {
        if !matches!(error, Error::Cancelled { .. }) {
            state.chunks_failed += 1;
            state.last_error = Some(error.to_string());
        }
        state.last_updated_at = now_rfc3339();
        self.store
            .save(state)
            .await
            .map_err(|source| Error::Checkpoint { table: self.config.table.clone(), source })
    }

    /// The client behind the traversal: the dump's per-chunk retry budget and batch timeout, and
    /// a retry observer that shows "retrying" in the progress.
    fn row_source(&self, callback: Option<&ProgressCallback>) -> Arc<dyn RowSource> {
        let config = &self.config;
        let progress = Arc::clone(&self.progress);
        let observer_callback = callback.cloned();
        let observer: iptvportal_client::RetryObserver = Arc::new(move |_, _| {
            let snapshot = {
                let mut p = lock(&progress);
                p.retries += 1;
                p.state = RunState::Retrying;
                p.clone()
            };
            if let Some(cb) = &observer_callback {
                cb(&snapshot);
            }
        });
        Arc::new(ClientSource {
            client: self
                .client
                .with_retry_observer(observer)
                .with_retry(
                    RetryPolicy::default()
                        .max_retries(config.max_retries)
                        .backoff(config.retry_backoff)
                        .base_delay(std::time::Duration::from_secs_f64(config.retry_backoff)),
                )
                .with_timeout(config.batch_timeout),
        })
    }

    /// Opens the sink where the state says. A resumed dump's schema is pinned in its state; a
    /// fresh dump of a known table has it from the catalog; a fresh dump of an unknown table
    /// infers it from the first chunk, so its sink opens then.
    async fn open_writer(
        &self,
        state: &mut DumpState,
        known: Option<&Table>,
        columns: Option<&[String]>,
    ) -> Result<Writer, Error> {
        let table = &self.config.table;
        let mut writer = Writer::new(table, &self.config.output_dir, state.chunks_completed)?;
        if state.sink != SinkPosition::default() {
            let position = state.sink.clone();
            writer.open(self.sink_spec(state.schema.clone()), Some(position), table).await?;
        } else if !state.schema.columns.is_empty() {
            // A resumed dump that never committed: its output holds nothing worth keeping.
            writer.open(self.sink_spec(state.schema.clone()), None, table).await?;
        } else if let Some(t) = known {
            state.schema = Schema::from_catalog(t, columns)
                .map_err(|source| Error::Sink { table: table.clone(), source: Box::new(source) })?;
            writer.open(self.sink_spec(state.schema.clone()), None, table).await?;
        }
        Ok(writer)
    }

    /// Fetches, writes and commits chunks until the traversal ends, honouring pause and cancel.
    async fn pump(
        &self,
        traversal: &mut Traversal,
        writer: &mut Writer,
        state: &mut DumpState,
        control: &mut watch::Receiver<Control>,
        columns: Option<&[String]>,
        callback: Option<&ProgressCallback>,
    ) -> Result<(), Error> {
        let table = self.config.table.clone();
        let fetch_err = |source| Error::Fetch { table: table.clone(), source: Box::new(source) };
        let cancelled =
            |state: &DumpState| Error::Cancelled { table: table.clone(), rows: state.dumped_rows };
        loop {
            let command = *control.borrow_and_update();
            match command {
                Control::Cancel => return Err(cancelled(state)),
                Control::Pause => {
                    // Let what is already in flight commit, then send nothing until resumed.
                    while let Some(chunk) = traversal.next_in_flight().await.map_err(fetch_err)? {
                        self.commit_chunk(chunk, writer, state, columns, callback).await?;
                    }
                    self.update(callback, |p| p.state = RunState::Paused);
                    tracing::info!(table = %table, "paused");
                    while *control.borrow_and_update() == Control::Pause {
                        if control.changed().await.is_err() {
                            return Err(cancelled(state));
                        }
                    }
                    self.update(callback, |p| p.state = RunState::Running);
                    continue;
                }
                Control::Run => {}
            }
            let next = tokio::select! {
                biased;
                () = wait_for_cancel(control) => return Err(cancelled(state)),
                next = traversal.next_chunk() => next.map_err(fetch_err)?,
            };
            let Some(chunk) = next else { return Ok(()) };
            self.commit_chunk(chunk, writer, state, columns, callback).await?;
        }
    }

    /// Writes one chunk, commits it, and saves the state when the committed position moved.
    async fn commit_chunk(
        &self,
        chunk: Chunk,
        writer: &mut Writer,
        state: &mut DumpState,
        columns: Option<&[String]>,
        callback: Option<&ProgressCallback>,
    ) -> Result<(), Error> {
        let table = &self.config.table;
        if !writer.open {
            let names = match columns {
                Some(c) => c.to_vec(),
                None => (1..=chunk.rows.first().map_or(0, Vec::len))
                    .map(|i| format!("col{i}"))
                    .collect(),
            };
            state.schema = Schema::infer(&names, &chunk.rows);
            writer.open(self.sink_spec(state.schema.clone()), None, table).await?;
        }
        let rows = chunk.rows.len() as u64;
        let committed = writer.write_and_commit(chunk.rows, table).await?;
        self.update(callback, |p| {
            p.record_chunk(rows);
            // A chunk arrived, so whatever was being retried got through.
            if p.state == RunState::Retrying {
                p.state = RunState::Running;
            }
            p.current_offset = offset_of(chunk.cursor, p.dumped_rows);
            if let Cursor::Id { after } = chunk.cursor {
                p.current_id = after;
            }
        });
        if let Some(position) = committed {
            state.dumped_rows = position.rows;
            state.sink = position;
            state.cursor = chunk.cursor;
            state.chunks_completed = writer.chunks;
            state.current_offset = offset_of(chunk.cursor, state.dumped_rows);
            if let Cursor::Id { after } = chunk.cursor {
                state.current_id = after;
            }
            state.last_updated_at = now_rfc3339();
            self.store
                .save(state)
                .await
                .map_err(|source| Error::Checkpoint { table: table.clone(), source })?;
        }
        Ok(())
    }

    fn already_complete(
        &self,
        state: &DumpState,
        callback: Option<&ProgressCallback>,
    ) -> DumpStats {
        let started = parse_time(&state.started_at).unwrap_or_else(SystemTime::now);
        let mut progress = DumpProgress::new(
            &self.config.table,
            started,
            state.dumped_rows,
            state.chunks_completed,
        );
        progress.total_rows = state.total_rows.or(Some(state.dumped_rows));
        progress.current_id = state.current_id;
        progress.finish(RunState::Done);
        progress.completed_at = state.completed_at.as_deref().and_then(parse_time);
        *lock(&self.progress) = progress.clone();
        if let Some(cb) = callback {
            cb(&progress);
        }
        DumpStats {
            config: self.config.clone(),
            progress,
            outcome: Outcome::AlreadyComplete,
            files: self.files(&state.schema),
            count_mismatch: None,
            warnings: Vec::new(),
        }
    }

    fn shape(&self) -> Result<OutputShape, Error> {
        let config = &self.config;
        let filter = match &config.where_clause {
            None => None,
            Some(expr) => Some(
                expr.to_json()
                    .map_err(|e| config.invalid(format!("the filter cannot be sent: {e}")))?
                    .to_string(),
            ),
        };
        Ok(OutputShape {
            table: config.table.clone(),
            columns: config.columns.clone(),
            filter,
            order_by: config.parsed_order_by()?.iter().map(ToString::to_string).collect(),
            format: config.format,
            compression: config.compression(),
            strategy: config.strategy,
        })
    }

    /// The OFFSET order: as configured, else ascending id, else (a table without an id) every
    /// column, which is the only order that makes paging deterministic there.
    fn order_by(&self, known: Option<&Table>) -> Result<Vec<OrderBy>, Error> {
        let order = self.config.parsed_order_by()?;
        if !order.is_empty() || self.config.strategy != Strategy::Offset {
            return Ok(order);
        }
        match known {
            Some(t) if t.id_column.is_none() => t
                .column_names()
                .map(|c| OrderBy::asc(c).map_err(|e| self.config.invalid(e.to_string())))
                .collect(),
            _ => Ok(Vec::new()),
        }
    }

    fn files(&self, schema: &Schema) -> Vec<OutputFileInfo> {
        let mut files = Vec::new();
        for file in self.sink_spec(schema.clone()).files() {
            match &file {
                OutputFile::Path(path) => files.extend(info(path)),
                OutputFile::Parts { dir, .. } => {
                    let mut parts: Vec<_> = std::fs::read_dir(dir)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| {
                            file.matches(p)
                                && !p
                                    .file_name()
                                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                        })
                        .filter_map(|p| info(&p))
                        .collect();
                    parts.sort_by(|a, b| a.path.cmp(&b.path));
                    files.extend(parts);
                }
                // A kind of output this version does not know has no files to list.
                _ => {}
            }
        }
        files
    }
}

/// The state of a dump that has committed nothing yet.
fn fresh_state(
    table: &str,
    cursor: Cursor,
    started_at: SystemTime,
    shape: OutputShape,
) -> DumpState {
    let now = now_rfc3339();
    DumpState {
        version: STATE_VERSION,
        table: table.to_owned(),
        dumped_rows: 0,
        current_offset: offset_of(cursor, 0),
        current_id: None,
        chunks_completed: 0,
        chunks_failed: 0,
        total_rows: None,
        started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
        last_updated_at: now,
        completed_at: None,
        is_complete: false,
        last_error: None,
        cursor,
        sink: SinkPosition::default(),
        schema: Schema { columns: Vec::new() },
        shape,
    }
}

/// Compares the up-front count with the rows dumped, and warns when the table changed.
fn reconcile(
    table: &str,
    strategy: Strategy,
    counted: u64,
    dumped: u64,
    warnings: &mut Vec<String>,
) -> Option<CountMismatch> {
    if counted == dumped {
        return None;
    }
    let hint = if strategy == Strategy::Offset {
        "; the table changed during the dump, and OFFSET paging can skip or repeat rows when it does: use --strategy id-range for a consistent walk"
    } else {
        "; the table changed during the dump"
    };
    warnings.push(format!("{table}: counted {counted} rows up front but dumped {dumped}{hint}"));
    Some(CountMismatch { counted, dumped })
}

fn info(path: &Path) -> Option<OutputFileInfo> {
    std::fs::metadata(path).ok().map(|m| OutputFileInfo { path: path.to_owned(), bytes: m.len() })
}

fn replace_unless_cancelled(current: &mut Control, next: Control) -> bool {
    if *current == Control::Cancel || *current == next {
        return false;
    }
    *current = next;
    true
}

async fn wait_for_cancel(control: &mut watch::Receiver<Control>) {
    // A closed channel means the manager is gone: nothing can cancel any more.
    if control.wait_for(|c| *c == Control::Cancel).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The sink of one dump and the chunks written through it.
///
/// The sink lives on one dedicated thread for the whole dump ([`SinkThread`]) rather than hopping
/// between `spawn_blocking` pool threads: encoding, compression and `fsync` stay off the async
/// workers, and every allocation the sink makes comes from that one thread's malloc arena. On the
/// blocking pool each chunk could land on another thread, each with its own glibc arena holding
/// freed memory, so peak RSS crept up with the length of the dump (docs/benchmarks.md, memory).
struct Writer {
    thread: SinkThread,
    open: bool,
    chunks: u64,
}

impl Writer {
    fn new(table: &str, dir: &Path, chunks: u64) -> Result<Writer, Error> {
        let thread = SinkThread::spawn(table).map_err(|source| Error::Sink {
            table: table.to_owned(),
            source: Box::new(iptvportal_sink::Error::Io { path: dir.to_owned(), source }),
        })?;
        Ok(Writer { thread, open: false, chunks })
    }

    async fn open(
        &mut self,
        spec: SinkSpec,
        position: Option<SinkPosition>,
        table: &str,
    ) -> Result<(), Error> {
        self.thread
            .run(move |sink| {
                *sink = Some(iptvportal_sink::open(&spec, position.as_ref())?);
                Ok(())
            })
            .await
            .map_err(|source| Error::Sink { table: table.to_owned(), source: Box::new(source) })?;
        self.open = true;
        Ok(())
    }

    async fn write_and_commit(
        &mut self,
        rows: Vec<Vec<Value>>,
        table: &str,
    ) -> Result<Option<SinkPosition>, Error> {
        let committed = self
            .thread
            .run(move |sink| {
                let sink = sink.as_mut().expect("the sink is open");
                sink.write_chunk(&rows)?;
                // The rows are freed here, on the thread that encoded them.
                drop(rows);
                sink.commit()
            })
            .await
            .map_err(|source| Error::Sink { table: table.to_owned(), source: Box::new(source) })?;
        self.chunks += 1;
        Ok(committed)
    }

    async fn finish(&mut self, table: &str) -> Result<SinkPosition, Error> {
        self.open = false;
        self.thread
            .run(|sink| sink.take().expect("the sink is open").finish())
            .await
            .map_err(|source| Error::Sink { table: table.to_owned(), source: Box::new(source) })
    }
}

type SinkSlot = Option<Box<dyn Sink>>;
type Job = Box<dyn FnOnce(&mut SinkSlot) + Send>;

/// One thread that owns a sink and runs the jobs sent to it, one at a time.
///
/// Every job is awaited before the next is sent, so the channel never holds more than one. When
/// the [`Writer`] is dropped the channel closes and the thread ends, dropping the sink there
/// (uncommitted data is then what a crash would leave: the next resume cuts it away).
struct SinkThread {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl SinkThread {
    fn spawn(table: &str) -> std::io::Result<SinkThread> {
        let (jobs, receiver) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new().name(format!("sink {table}")).spawn(move || {
            let mut sink: SinkSlot = None;
            for job in receiver {
                job(&mut sink);
            }
        })?;
        Ok(SinkThread { jobs })
    }

    /// Runs `f` on the sink's thread and waits for its result; a panic in `f` resumes here.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SinkSlot) -> T + Send + 'static,
    ) -> T {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |sink| {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(sink)));
            // The waiting side may be gone (the dump was dropped); then nobody needs the answer.
            let _ = reply.send(result);
        });
        self.jobs.send(job).expect("the sink thread runs as long as its writer");
        match answer.await.expect("the sink thread answers every job") {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static, E: Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// The client behind the traversal's `RowSource` seam: every call retries by the dump's per-chunk
/// policy (a fresh budget per request) and times out after the batch timeout.
struct ClientSource {
    client: Client,
}

#[async_trait]
impl RowSource for ClientSource {
    async fn select(&self, query: &Select) -> Result<Vec<Vec<Value>>, BoxError> {
        self.client.select(query).await.map_err(|e| Box::new(e) as BoxError)
    }

    async fn select_i64s(&self, query: &Select) -> Result<Vec<i64>, BoxError> {
        self.client.select_i64s(query).await.map_err(|e| Box::new(e) as BoxError)
    }
}

fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    // The probe's name is unique per call, not just per process: tables of one `dump_many` probe
    // the same directory at once, and one's removal must not race another's.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    // Creating the directory can succeed where writing into it cannot (a read-only mount, another
    // user's directory): find out now, not after the first fetch.
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = dir.join(format!(".iptvportal-probe-{}-{n}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

fn offset_of(cursor: Cursor, rows: u64) -> u64 {
    match cursor {
        Cursor::Offset { offset } => offset,
        Cursor::Id { .. } => rows,
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

//! `DumpService`: dumps over one client, several tables at once, with pause, resume and stats by
//! table name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use iptvportal_checkpoint::{CheckpointStore, FileStore};
use iptvportal_sink::{OutputFile, Schema};
use iptvportal_traverse::{Strategy, TraversalSpec};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::manager::{AsyncDumpManager, ProgressCallback};
use crate::progress::DumpProgress;
use crate::source::Portal;
use crate::stats::DumpStats;
use crate::{DumpConfig, Error};

/// The work of dumping `rows` rows of `config`'s table, which orders the tables of a `dump_many`
/// that cannot all run at once. Work grows with cells, not rows: a 16-column table takes longer
/// per row than a 6-column one. The column count is the requested list's (or what excluding
/// columns leaves), else the catalog's.
pub(crate) fn work(config: &DumpConfig, rows: u64) -> u64 {
    let known = iptvportal_catalog::table(&config.table);
    let columns = config
        .requested_columns(known)
        .as_ref()
        .map(Vec::len)
        .or_else(|| known.map(|t| t.columns.len()))
        .unwrap_or(1)
        .max(1);
    rows.saturating_mul(columns as u64)
}

/// One table of a `dump_many` to order: its index, its [`work`], and whether it is walked by
/// OFFSET.
pub(crate) type Size = (usize, u64, bool);

/// The order to start `sizes` in with `jobs` tables at once: most work first (stable on ties, so
/// that equal sizes keep the order given), except that the largest OFFSET table, when there is
/// one and more than one table runs at once, starts with the first `jobs`.
///
/// An OFFSET table's cost per row grows with its depth (the portal skips every row before each
/// page), so the tables walked by id say nothing of it: started last, as its few columns would
/// have it, it runs at a cost no estimate has seen, and the run's ETA is short by all of its
/// growth (measured: 20 % short at half the rows of `--all`). Started among the first, its own
/// fitted ETA stands for it and for the OFFSET tables after it. The makespan barely changes: the
/// largest table still starts first, and one slot is lent early to a table that was to run anyway.
pub(crate) fn largest_first(mut sizes: Vec<Size>, jobs: usize) -> Vec<usize> {
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let first = jobs.min(sizes.len());
    if first >= 2
        && !sizes[..first].iter().any(|s| s.2)
        && let Some(offset) = sizes.iter().position(|s| s.2)
    {
        let table = sizes.remove(offset);
        sizes.insert(first - 1, table);
    }
    sizes.into_iter().map(|(index, ..)| index).collect()
}

/// Where the service keeps each dump's checkpoint.
type StoreFor = dyn Fn(&DumpConfig) -> Arc<dyn CheckpointStore> + Send + Sync;

/// Runs dumps over one portal (for a client: one session, one connection pool). Cheap to clone;
/// clones share the running dumps, so one task can pause what another started.
#[derive(Clone)]
pub struct DumpService {
    inner: Arc<Inner>,
}

struct Inner {
    portal: Arc<dyn Portal>,
    stores: Box<StoreFor>,
    /// Bumped by `cancel_all`, so that the queued tables of a `dump_many` that started before
    /// it stop too instead of starting after it.
    cancel_epoch: std::sync::atomic::AtomicU64,
    running: Mutex<HashMap<String, Vec<Arc<AsyncDumpManager>>>>,
    finished: Mutex<HashMap<String, DumpProgress>>,
}

impl std::fmt::Debug for DumpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DumpService").finish_non_exhaustive()
    }
}

impl DumpService {
    /// Tables dumped at once by `dump_many` unless said otherwise (the seed's 2).
    pub const DEFAULT_MAX_CONCURRENT: usize = 2;

    /// A service over `portal` (a [`Client`](iptvportal_client::Client), or any
    /// `Arc<dyn RowSource>`), keeping each table's checkpoint in its output directory.
    pub fn new(portal: impl Portal) -> DumpService {
        DumpService::with_stores(portal, |config: &DumpConfig| {
            Arc::new(FileStore::new(&config.output_dir)) as Arc<dyn CheckpointStore>
        })
    }

    /// A service over `portal` keeping each dump's checkpoint where `stores` says.
    pub fn with_stores(
        portal: impl Portal,
        stores: impl Fn(&DumpConfig) -> Arc<dyn CheckpointStore> + Send + Sync + 'static,
    ) -> DumpService {
        DumpService {
            inner: Arc::new(Inner {
                portal: Arc::new(portal),
                stores: Box::new(stores),
                cancel_epoch: std::sync::atomic::AtomicU64::new(0),
                running: Mutex::new(HashMap::new()),
                finished: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Dumps one table, calling `callback` after every committed chunk.
    pub async fn dump(
        &self,
        config: DumpConfig,
        callback: Option<ProgressCallback>,
    ) -> Result<DumpStats, Error> {
        self.dump_in_epoch(config, callback, None).await
    }

    async fn dump_in_epoch(
        &self,
        config: DumpConfig,
        callback: Option<ProgressCallback>,
        epoch: Option<u64>,
    ) -> Result<DumpStats, Error> {
        let store = (self.inner.stores)(&config);
        let manager =
            Arc::new(AsyncDumpManager::from_parts(Arc::clone(&self.inner.portal), config, store));
        let table = manager.config().table.clone();
        self.inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(table.clone())
            .or_default()
            .push(Arc::clone(&manager));
        // Registered first, checked second: a `cancel_all` in between reaches this manager either way.
        if epoch
            .is_some_and(|e| e != self.inner.cancel_epoch.load(std::sync::atomic::Ordering::SeqCst))
        {
            manager.cancel();
        }
        let result = manager.run(callback).await;
        {
            let mut running =
                self.inner.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(list) = running.get_mut(&table) {
                list.retain(|m| !Arc::ptr_eq(m, &manager));
                if list.is_empty() {
                    running.remove(&table);
                }
            }
        }
        self.inner
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(table, manager.progress());
        result
    }

    /// Dumps several tables, at most `max_concurrent` at a time. One table's failure does not stop
    /// the others; results come back in the order of `configs`. Configurations that would write the
    /// same files are refused before anything starts.
    ///
    /// # Panics
    ///
    /// Only if a dump panicked, which is a bug; the panic is passed on.
    pub async fn dump_many(
        &self,
        configs: Vec<DumpConfig>,
        max_concurrent: usize,
        callback: Option<ProgressCallback>,
    ) -> Result<Vec<Result<DumpStats, Error>>, Error> {
        check_conflicts(&configs)?;
        // More permits than tables changes nothing; the cap keeps any value within what a
        // semaphore can hold (`usize::MAX` would panic there).
        let max_concurrent = max_concurrent.clamp(1, configs.len().max(1));
        let permits = Arc::new(Semaphore::new(max_concurrent));
        let mut tasks = JoinSet::new();
        let count = configs.len();
        let epoch = self.inner.cancel_epoch.load(std::sync::atomic::Ordering::SeqCst);
        let order = if count > max_concurrent {
            self.largest_first(&configs, max_concurrent).await
        } else {
            (0..count).collect()
        };
        let mut configs: Vec<Option<DumpConfig>> = configs.into_iter().map(Some).collect();
        for index in order {
            let config = configs[index].take().expect("each index once");
            // Permits are taken here, in the chosen order, rather than inside the tasks, whose
            // start order the runtime does not promise.
            let permit =
                Arc::clone(&permits).acquire_owned().await.expect("the semaphore is never closed");
            let (service, callback) = (self.clone(), callback.clone());
            tasks.spawn(async move {
                let _permit = permit;
                (index, service.dump_in_epoch(config, callback, Some(epoch)).await)
            });
        }
        let mut results: Vec<Option<Result<DumpStats, Error>>> = (0..count).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            let (index, result) =
                joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            results[index] = Some(result);
        }
        Ok(results.into_iter().map(|r| r.expect("every task reports")).collect())
    }

    /// The order to start tables in when they cannot all run at once: most work left first, so
    /// that a big table started last does not run alone at the end (longest-processing-time
    /// scheduling), with the largest OFFSET table among the first `jobs` (see the function
    /// [`largest_first`]). Work is rows left times columns. Rows left come from a checkpoint when
    /// there is one (no request), else from one `count` per table, run concurrently; a table that
    /// cannot be counted goes last and fails in its own dump with the real error.
    async fn largest_first(&self, configs: &[DumpConfig], jobs: usize) -> Vec<usize> {
        let mut counts = JoinSet::new();
        for (index, config) in configs.iter().enumerate() {
            let source = self.inner.portal.source(config, Arc::new(|| {}));
            let store = (self.inner.stores)(config);
            let config = config.clone();
            counts.spawn(async move {
                let state = store.load(&config.table).await.ok().flatten();
                let strategy = config.strategy_for(state.as_ref().map(|s| s.shape.strategy));
                let rows = match state {
                    Some(s) if s.is_complete => 0,
                    Some(s) => s.total_rows.unwrap_or(0).saturating_sub(s.dumped_rows),
                    None => TraversalSpec::new(config.table.as_str())
                        .filter(config.where_clause.clone())
                        .count(source.as_ref())
                        .await
                        .unwrap_or(0),
                };
                (index, work(&config, rows), strategy == Strategy::Offset)
            });
        }
        let mut sizes = Vec::with_capacity(configs.len());
        while let Some(joined) = counts.join_next().await {
            sizes.push(joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
        }
        largest_first(sizes, jobs)
    }

    /// Pauses the running dump(s) of `table`: in-flight chunks commit, then no request is sent
    /// until [`DumpService::resume`]. Returns whether such a dump was running.
    pub fn pause(&self, table: &str) -> bool {
        self.each(table, AsyncDumpManager::pause)
    }

    /// Resumes the paused dump(s) of `table`. Returns whether such a dump was running.
    pub fn resume(&self, table: &str) -> bool {
        self.each(table, AsyncDumpManager::resume)
    }

    /// Cancels the running dump(s) of `table`; their checkpoints stay resumable.
    pub fn cancel(&self, table: &str) -> bool {
        self.each(table, AsyncDumpManager::cancel)
    }

    /// Cancels every running dump, and the tables still queued in a running `dump_many`.
    pub fn cancel_all(&self) {
        self.inner.cancel_epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        for list in
            self.inner.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values()
        {
            for m in list {
                m.cancel();
            }
        }
    }

    /// The progress of `table`'s dump: the running one, else the last finished one.
    pub fn get_stats(&self, table: &str) -> Option<DumpProgress> {
        if let Some(m) = self
            .inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(table)
            .and_then(|l| l.first())
        {
            return Some(m.progress());
        }
        self.inner
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(table)
            .cloned()
    }

    fn each(&self, table: &str, f: impl Fn(&AsyncDumpManager)) -> bool {
        let running = self.inner.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        running.get(table).is_some_and(|list| {
            for m in list {
                f(m);
            }
            !list.is_empty()
        })
    }
}

/// Refuses two configurations that would write the same output or checkpoint file.
fn check_conflicts(configs: &[DumpConfig]) -> Result<(), Error> {
    let mut owners: HashMap<PathBuf, &str> = HashMap::new();
    for config in configs {
        let dir = normalize(&config.output_dir);
        let mut spec = config.sink_spec(Schema { columns: Vec::new() });
        spec.dir.clone_from(&dir);
        let state = dir.join(iptvportal_checkpoint::state_file_name(&config.table));
        let outputs = spec.files().into_iter().filter_map(|f| match f {
            OutputFile::Path(path) => Some(path),
            // Parts share a name pattern; the first part stands for all of them.
            OutputFile::Parts { .. } => Some(spec.part_path(0)),
            _ => None,
        });
        for file in std::iter::once(state).chain(outputs) {
            if let Some(first) = owners.insert(file.clone(), &config.table) {
                return Err(Error::Conflict {
                    first: first.to_owned(),
                    second: config.table.clone(),
                    file,
                });
            }
        }
    }
    Ok(())
}

/// The directory as an absolute, canonical path where it exists, so `./dumps` and `dumps` collide.
fn normalize(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::largest_first;

    #[test]
    fn the_largest_offset_table_starts_with_the_first() {
        // Work 50, 40, 30, 20, 10; the two OFFSET tables are the smallest.
        let sizes = |offset: &[usize]| {
            [50, 40, 30, 20, 10]
                .into_iter()
                .enumerate()
                .map(|(i, w)| (i, w, offset.contains(&i)))
                .collect::<Vec<_>>()
        };
        // Two at once: the larger OFFSET table takes the second slot, the rest keep their order.
        assert_eq!(largest_first(sizes(&[3, 4]), 2), [0, 3, 1, 2, 4]);
        // Three at once: the third.
        assert_eq!(largest_first(sizes(&[3, 4]), 3), [0, 1, 3, 2, 4]);
        // One at a time, or an OFFSET table already among the first: most work first.
        assert_eq!(largest_first(sizes(&[3, 4]), 1), [0, 1, 2, 3, 4]);
        assert_eq!(largest_first(sizes(&[1, 4]), 2), [0, 1, 2, 3, 4]);
        assert_eq!(largest_first(sizes(&[0]), 2), [0, 1, 2, 3, 4]);
        // No OFFSET table, or fewer tables than slots.
        assert_eq!(largest_first(sizes(&[]), 2), [0, 1, 2, 3, 4]);
        assert_eq!(largest_first(vec![(0, 5, false), (1, 9, true)], 4), [1, 0]);
        // Ties keep the order given.
        assert_eq!(largest_first(vec![(0, 5, false), (1, 5, false), (2, 5, true)], 2), [0, 2, 1]);
    }
}

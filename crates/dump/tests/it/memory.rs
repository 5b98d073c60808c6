//! The orchestrator over its seams alone: an in-memory `RowSource` and `MemoryStore`, real files,
//! no HTTP. The commit loop, pause and resume, and a crash at every request, each resumed to the
//! uninterrupted output.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iptvportal_checkpoint::{CheckpointStore, LockMode, MemoryStore};
use iptvportal_dump::{
    AsyncDumpManager, DumpConfig, DumpStrategy, Format, Outcome, ParquetOptions, RunState, Warning,
};
use iptvportal_testkit::read_output;
use iptvportal_testkit::source::FakeSource;
use iptvportal_traverse::RowSource;

use crate::common::{read_rows, runtime};

const ROWS: i64 = 95;

fn config(dir: &Path, format: Format, strategy: DumpStrategy) -> DumpConfig {
    let mut parquet = ParquetOptions::default();
    parquet.part_rows = 30;
    DumpConfig::new("things", dir)
        .columns(["id", "grp", "name"])
        .format(format)
        .strategy(strategy)
        .chunk_size(10)
        .max_parallel(3)
        .parquet(parquet)
        .retry_backoff(1.0)
}

fn manager(
    source: &Arc<FakeSource>,
    store: &Arc<MemoryStore>,
    config: DumpConfig,
) -> AsyncDumpManager {
    let source: Arc<dyn RowSource> = source.clone();
    AsyncDumpManager::with_store(source, config, store.clone())
}

/// The rows `[id, grp, name]` the fake holds, as the output must hold them.
fn expected() -> Vec<Vec<serde_json::Value>> {
    (1..=ROWS).map(FakeSource::row).collect()
}

#[test]
fn the_commit_loop_writes_every_row_once_and_checkpoints_every_chunk() {
    runtime().block_on(async {
        for strategy in [DumpStrategy::Offset, DumpStrategy::IdRange] {
            let dir = tempfile::tempdir().unwrap();
            let source = Arc::new(FakeSource::with_ids(1..=ROWS));
            let store = Arc::new(MemoryStore::new());
            let saved = Arc::new(std::sync::Mutex::new(Vec::new()));
            let seen = saved.clone();
            let callback: iptvportal_dump::ProgressCallback = Arc::new(move |p| {
                if p.state == RunState::Running && p.chunks_completed > 0 {
                    seen.lock().unwrap().push(p.dumped_rows);
                }
            });
            let stats = manager(&source, &store, config(dir.path(), Format::Jsonl, strategy))
                .run(Some(callback))
                .await
                .unwrap();
            assert_eq!(stats.outcome, Outcome::Completed);
            assert_eq!(stats.progress.dumped_rows, 95);
            assert_eq!(stats.count_mismatch, None);
            // The table is not in the catalog, but the configuration names its columns.
            assert_eq!(stats.warnings, Vec::<Warning>::new());
            let (_, rows) = read_rows(dir.path(), "things", Format::Jsonl, false);
            assert_eq!(rows, expected(), "{strategy}");
            let text = std::fs::read_to_string(dir.path().join("things.jsonl")).unwrap();
            assert_eq!(text.lines().next(), Some(r#"{"id":1,"grp":1,"name":"n1"}"#));

            let state = store.load("things").await.unwrap().expect("a checkpoint");
            assert!(state.is_complete);
            assert_eq!((state.dumped_rows, state.chunks_completed), (95, 10));
            // One progress report per committed chunk, each after its rows were counted.
            assert_eq!(
                *saved.lock().unwrap(),
                (1..=10).map(|c| (c * 10).min(95)).collect::<Vec<u64>>(),
                "{strategy}"
            );

            // A rerun is a no-op that reads the store and sends nothing.
            let before = source.requests().len();
            let again = manager(&source, &store, config(dir.path(), Format::Jsonl, strategy))
                .run(None)
                .await
                .unwrap();
            assert_eq!(again.outcome, Outcome::AlreadyComplete);
            assert_eq!(source.requests().len(), before);
        }

        // Without columns, an unknown table's columns are named by position, and it says so.
        let dir = tempfile::tempdir().unwrap();
        let source = Arc::new(FakeSource::with_ids(1..=ROWS));
        let mut cfg = config(dir.path(), Format::Csv, DumpStrategy::Offset);
        cfg.columns = None;
        let stats = manager(&source, &Arc::new(MemoryStore::new()), cfg).run(None).await.unwrap();
        assert_eq!(stats.warnings, [Warning::ColumnsByPosition { table: "things".into() }]);
        let csv = std::fs::read_to_string(dir.path().join("things.csv")).unwrap();
        assert_eq!(csv.lines().take(2).collect::<Vec<_>>(), ["col1,col2,col3", "1,1,n1"]);
    });
}

#[test]
fn a_paused_dump_sends_nothing_until_resumed_and_completes_the_same() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = FakeSource::with_ids(1..=ROWS);
        fake.delay = Duration::from_millis(5);
        let source = Arc::new(fake);
        let store = Arc::new(MemoryStore::new());
        let manager = Arc::new(manager(
            &source,
            &store,
            config(dir.path(), Format::Csv, DumpStrategy::IdRange),
        ));
        let (paused_tx, mut paused_rx) = tokio::sync::watch::channel(false);
        let pauser = Arc::downgrade(&manager);
        let callback: iptvportal_dump::ProgressCallback = Arc::new(move |p| {
            if p.chunks_completed == 3
                && let Some(m) = pauser.upgrade()
            {
                m.pause();
            }
            if p.state == RunState::Paused {
                paused_tx.send_replace(true);
            }
        });
        let running = tokio::spawn({
            let manager = manager.clone();
            async move { manager.run(Some(callback)).await }
        });
        paused_rx.wait_for(|p| *p).await.unwrap();
        let at_pause = source.requests().len();
        let rows_at_pause = manager.progress().dumped_rows;
        assert!(rows_at_pause < 95, "paused before the end");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(source.requests().len(), at_pause, "a paused dump sends nothing");
        assert_eq!(manager.progress().state, RunState::Paused);
        // What was in flight at the pause is committed, and the store says so.
        let state = store.load("things").await.unwrap().unwrap();
        assert_eq!(state.dumped_rows, rows_at_pause);
        manager.resume();
        let stats = running.await.unwrap().unwrap();
        assert_eq!(stats.progress.dumped_rows, 95);
        let csv = std::fs::read_to_string(dir.path().join("things.csv")).unwrap();
        let want: String = std::iter::once("id,grp,name\n".to_owned())
            .chain((1..=ROWS).map(|id| format!("{id},{},n{id}\n", id % 3)))
            .collect();
        assert_eq!(csv, want);
    });
}

/// Waits until no run holds the table: a dropped run's sink thread lets go once its write ends.
async fn wait_until_free(store: &MemoryStore) {
    for _ in 0..200 {
        if store.lock("things", LockMode::Create).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the crashed run never released the table");
}

/// The output files of `dir` and their bytes, checkpoint excluded (it lives in the store).
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Whether a request fetches rows (not a count, a min/max or a scan of the ids alone), as the fake
/// source tells them apart.
fn is_fetch(query: &iptvportal_query::Select) -> bool {
    use iptvportal_query::Operand;
    !matches!(query.data.as_slice(), [Operand::Function(_), ..])
        && !matches!(query.data.as_slice(), [Operand::Column(c)] if c.name == "id")
}

#[test]
fn a_crash_at_any_request_resumes_to_the_uninterrupted_output() {
    runtime().block_on(async {
        let cases = [
            (Format::Jsonl, false, DumpStrategy::Offset),
            (Format::Json, false, DumpStrategy::IdRange),
            (Format::Csv, true, DumpStrategy::IdRange),
            (Format::Parquet, false, DumpStrategy::Offset),
            (Format::Parquet, false, DumpStrategy::IdRange),
        ];
        for (format, gzip, strategy) in cases {
            let reference = tempfile::tempdir().unwrap();
            let cfg = |dir: &Path| config(dir, format, strategy).compress(gzip);
            let source = Arc::new(FakeSource::with_ids(1..=ROWS));
            let store = Arc::new(MemoryStore::new());
            manager(&source, &store, cfg(reference.path())).run(None).await.unwrap();
            let requests = source.requests().len();
            let want = outputs(reference.path());

            // Crash at every request in turn: the run hangs there and is dropped mid-flight, with
            // whatever the sink had buffered, then a fresh run resumes from the store.
            let mut resumed_midway = 0;
            let mut max_lost = 0;
            for crash_at in 2..=requests {
                let dir = tempfile::tempdir().unwrap();
                let store = Arc::new(MemoryStore::new());
                let mut hanging = FakeSource::with_ids(1..=ROWS);
                hanging.hang_at = Some(crash_at);
                let hanging = Arc::new(hanging);
                let crashed = manager(&hanging, &store, cfg(dir.path()));
                let run = tokio::spawn(async move { crashed.run(None).await });
                assert!(hanging.wait_for_requests(crash_at, Duration::from_secs(10)).await);
                // Let the other requests in flight land and their chunks commit, or not.
                tokio::time::sleep(Duration::from_millis(5)).await;
                run.abort();
                assert!(run.await.unwrap_err().is_cancelled());
                // The crashed run's sink thread finishes its write, then frees the table.
                wait_until_free(&store).await;
                let committed = store.load("things").await.unwrap().map_or(0, |s| s.dumped_rows);
                if committed > 0 {
                    resumed_midway += 1;
                }
                // Every format is durable per chunk: what the crashed run fetched and did not
                // commit is at most the chunks in flight (parallel, or OFFSET's one read ahead)
                // plus the one being written.
                let fetched = hanging.requests().iter().filter(|q| is_fetch(q)).count() as u64;
                let lost = fetched - committed.div_ceil(10);
                let bound = if strategy == DumpStrategy::IdRange { 3 + 1 } else { 1 + 1 };
                assert!(lost <= bound, "{format} {strategy} crash at {crash_at}: {lost} chunks");
                max_lost = max_lost.max(lost);

                let fresh = Arc::new(FakeSource::with_ids(1..=ROWS));
                let stats = manager(&fresh, &store, cfg(dir.path())).run(None).await.unwrap();
                assert_eq!(stats.progress.dumped_rows, 95);
                let label = format!("{format} gzip={gzip} {strategy}, crash at request {crash_at}");
                if format == Format::Parquet {
                    let (_, got) = read_rows(dir.path(), "things", format, gzip);
                    let (_, reference_rows) = read_rows(reference.path(), "things", format, gzip);
                    assert_eq!(got, reference_rows, "{label}");
                    // One writer per part, replayed from its pieces after a crash: the same bytes.
                    assert_eq!(outputs(dir.path()), want, "{label}");
                } else if gzip {
                    // gzip members fall where the commits fell: the same decompressed bytes.
                    let name = format!("things.{format}.gz");
                    assert_eq!(
                        read_output(&dir.path().join(&name)),
                        read_output(&reference.path().join(&name)),
                        "{label}"
                    );
                } else {
                    assert_eq!(outputs(dir.path()), want, "{label}");
                }
            }
            // Most crashes land after a commit, so the rerun really continued a checkpoint.
            assert!(resumed_midway * 2 >= requests, "{format}: {resumed_midway} of {requests}");
            assert!(max_lost > 0, "{format}: some crash found a chunk in flight");
        }
    });
}

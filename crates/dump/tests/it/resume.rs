//! Exact resume: after failures, cancellation and pauses the output equals an uninterrupted
//! dump's; a changed configuration is refused; a complete dump is a no-op; reset starts over.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iptvportal_checkpoint::{CheckpointStore, FileStore};
use iptvportal_dump::{
    AsyncDumpManager, DumpConfig, DumpService, DumpStrategy, Error, Format, NamedPortal, Outcome,
    ProgressCallback, RunState,
};
use iptvportal_query::Q;
use iptvportal_sim::SimConfig;

use crate::common::{client, config, output_files, runtime, sim, snapshot};

const SEED: u64 = 21;
const ROWS: u64 = 900;

fn sim_config() -> SimConfig {
    SimConfig::default().rows("terminal", ROWS).seed(SEED)
}

/// The output of an uninterrupted dump of `cfg` (run against a fault-free simulator with the same
/// seed, hence the same data).
async fn reference(cfg: &DumpConfig) -> serde_json::Value {
    let sim = sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cfg.clone();
    cfg.output_dir = dir.path().to_owned();
    DumpService::new(client(&sim)).dump(cfg.clone(), None).await.unwrap();
    snapshot(dir.path(), &cfg.table, cfg.format, cfg.compress)
}

#[test]
fn runs_that_fail_midway_resume_to_the_uninterrupted_output() {
    runtime().block_on(async {
        for (format, gzip, strategy, parallel) in [
            (Format::Jsonl, false, DumpStrategy::Offset, 1),
            (Format::Csv, true, DumpStrategy::IdRange, 1),
            (Format::Json, false, DumpStrategy::IdRange, 3),
            (Format::Json, true, DumpStrategy::Offset, 1),
            (Format::Parquet, false, DumpStrategy::IdRange, 3),
        ] {
            // Every request fails with probability 0.15 and no retries: each run dies a few chunks in.
            let sim = sim(sim_config().fail_rate(0.15)).await;
            let dir = tempfile::tempdir().unwrap();
            let mut parquet = iptvportal_dump::ParquetOptions::default();
            parquet.part_rows = 150;
            let cfg = config("terminal", dir.path())
                .chunk_size(30)
                .format(format)
                .compress(gzip)
                .strategy(strategy)
                .max_parallel(parallel)
                .max_retries(0)
                .parquet(parquet);
            let service = DumpService::new(client(&sim));
            let mut failures = 0;
            loop {
                match service.dump(cfg.clone(), None).await {
                    Ok(stats) => {
                        assert_eq!(stats.progress.dumped_rows, ROWS);
                        break;
                    }
                    Err(e) => {
                        assert!(e.is_transient(), "{e}");
                        failures += 1;
                        assert!(failures < 400, "no progress: {e}");
                    }
                }
            }
            assert!(
                failures >= 3,
                "{format}: only {failures} failures; the test would prove nothing"
            );
            let state = FileStore::new(dir.path()).load("terminal").await.unwrap().unwrap();
            // A failure before the first file was opened (at the count of a fresh dump) leaves no
            // state to record it in; every later one is counted.
            assert!(
                state.is_complete && state.chunks_failed > 0 && state.chunks_failed <= failures,
                "{state:?}"
            );
            assert_eq!(
                snapshot(dir.path(), "terminal", format, gzip),
                reference(&cfg).await,
                "{format} gzip={gzip}"
            );
        }
    });
}

/// A callback that counts chunks and runs `at` once the count reaches `n`.
fn after_chunks(
    n: u64,
    at: impl Fn() + Send + Sync + 'static,
) -> (ProgressCallback, Arc<AtomicU64>) {
    let seen = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&seen);
    let callback: ProgressCallback = Arc::new(move |p| {
        if p.state == RunState::Running
            && p.chunks_completed > 0
            && counter.fetch_add(1, Ordering::SeqCst) + 1 == n
        {
            at();
        }
    });
    (callback, seen)
}

#[test]
fn cancel_leaves_a_resumable_state_and_the_rerun_completes_identically() {
    runtime().block_on(async {
        let sim = sim(sim_config().latency(Duration::from_millis(3))).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config("terminal", dir.path())
            .format(Format::Csv)
            .compress(true)
            .strategy(DumpStrategy::IdRange);
        let service = DumpService::new(client(&sim));
        let canceller = service.clone();
        let (callback, _) = after_chunks(3, move || {
            canceller.cancel("terminal");
        });
        let err = service.dump(cfg.clone(), Some(callback)).await.unwrap_err();
        let Error::Cancelled { rows, .. } = err else { panic!("{err:?}") };
        let seen = service.get_stats("terminal").unwrap();
        // Parallel ranges make chunks of varying size: three were committed, not all.
        assert_eq!(seen.chunks_completed, 3, "{seen:?}");
        assert!(rows > 0 && rows < ROWS, "{rows}");
        let state = FileStore::new(dir.path()).load("terminal").await.unwrap().unwrap();
        assert!(!state.is_complete);
        assert_eq!(state.dumped_rows, rows);
        let stats = service.dump(cfg.clone(), None).await.unwrap();
        assert_eq!(stats.progress.dumped_rows, ROWS);
        assert!(
            stats.progress.rows_this_run() < ROWS,
            "the rerun resumed instead of starting over"
        );
        assert_eq!(snapshot(dir.path(), "terminal", Format::Csv, true), reference(&cfg).await);
    });
}

#[test]
fn pause_sends_nothing_until_resumed_and_the_output_is_unchanged() {
    runtime().block_on(async {
        let sim = Arc::new(sim(sim_config().latency(Duration::from_millis(5))).await);
        let dir = tempfile::tempdir().unwrap();
        let cfg = config("terminal", dir.path())
            .chunk_size(50)
            .strategy(DumpStrategy::IdRange)
            .max_parallel(3);
        let service = DumpService::new(client(&sim));
        let pauser = service.clone();
        let (callback, _) = after_chunks(4, move || {
            pauser.pause("terminal");
        });
        let task = tokio::spawn({
            let (service, cfg) = (service.clone(), cfg.clone());
            async move { service.dump(cfg, Some(callback)).await }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while service.get_stats("terminal").is_none_or(|p| p.state != RunState::Paused) {
            assert!(tokio::time::Instant::now() < deadline, "never paused");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let paused = service.get_stats("terminal").unwrap();
        let calls = sim.stats().select_calls;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sim.stats().select_calls, calls, "a paused dump sent a request");
        // Everything fetched before the pause was committed and checkpointed.
        let state = FileStore::new(dir.path()).load("terminal").await.unwrap().unwrap();
        assert_eq!(state.dumped_rows, paused.dumped_rows);
        assert!(paused.dumped_rows < ROWS);
        assert!(service.resume("terminal"));
        let stats = task.await.unwrap().unwrap();
        assert_eq!(stats.progress.dumped_rows, ROWS);
        assert_eq!(snapshot(dir.path(), "terminal", Format::Jsonl, false), reference(&cfg).await);
    });
}

#[test]
fn a_changed_configuration_is_refused_and_nothing_is_touched() {
    runtime().block_on(async {
        let sim = sim(sim_config().latency(Duration::from_millis(2))).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config("terminal", dir.path()).where_clause(Q::lookup("id__gt", 10).unwrap());
        let service = DumpService::new(client(&sim));
        let canceller = service.clone();
        let (callback, _) = after_chunks(2, move || {
            canceller.cancel("terminal");
        });
        service.dump(cfg.clone(), Some(callback)).await.unwrap_err();
        let before = files(dir.path());
        let changes: [(DumpConfig, &str); 5] = [
            (cfg.clone().where_clause(Q::lookup("id__gt", 11).unwrap()), "filter"),
            (cfg.clone().columns(["id", "mac_addr"]), "columns"),
            (cfg.clone().format(Format::Csv), "format"),
            (cfg.clone().compress(true), "compression"),
            // `auto` walked terminal by id range; offset asked for by name differs.
            (cfg.clone().strategy(DumpStrategy::Offset), "strategy"),
        ];
        for (changed, field) in changes {
            let err = service.dump(changed, None).await.unwrap_err();
            let Error::ShapeMismatch { ref differences, .. } = err else { panic!("{err:?}") };
            assert_eq!(differences.iter().map(|d| d.field).collect::<Vec<_>>(), [field]);
            let message = err.to_string();
            // What to do (the CLI's `--reset`) is the caller's to say, not the library's.
            assert!(message.contains(field) && !message.contains("--"), "{message}");
            assert_eq!(files(dir.path()), before, "refusing must not touch output or checkpoint");
        }
        // Chunk size, parallelism and retries do not shape the output: a resume may change them.
        let stats = service.dump(cfg.clone().chunk_size(70).max_retries(5), None).await.unwrap();
        assert_eq!(stats.outcome, Outcome::Completed);
    });
}

#[test]
fn a_complete_dump_reruns_as_a_no_op_and_reset_starts_over() {
    runtime().block_on(async {
        let sim = sim(sim_config()).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config("terminal", dir.path()).format(Format::Parquet);
        let service = DumpService::new(client(&sim));
        service.dump(cfg.clone(), None).await.unwrap();
        let first = snapshot(dir.path(), "terminal", Format::Parquet, false);
        let calls = sim.stats().select_calls;
        let again = service.dump(cfg.clone(), None).await.unwrap();
        assert_eq!(again.outcome, Outcome::AlreadyComplete);
        assert_eq!(again.progress.dumped_rows, ROWS);
        assert_eq!(sim.stats().select_calls, calls, "a no-op rerun must not query the portal");

        let manager = AsyncDumpManager::new(client(&sim), cfg.clone());
        manager.reset().await.unwrap();
        assert!(output_files(dir.path(), "terminal", Format::Parquet, false).is_empty());
        assert!(FileStore::new(dir.path()).load("terminal").await.unwrap().is_none());
        let stats = manager.run(None).await.unwrap();
        assert_eq!(stats.outcome, Outcome::Completed);
        assert_eq!(snapshot(dir.path(), "terminal", Format::Parquet, false), first);
    });
}

#[test]
fn a_checkpoint_resumes_only_against_the_portal_it_came_from() {
    runtime().block_on(async {
        let first = sim(sim_config().latency(Duration::from_millis(2))).await;
        // The same data at another address: still another portal.
        let other = sim(sim_config()).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config("terminal", dir.path());
        let service = DumpService::new(client(&first));
        let canceller = service.clone();
        let (callback, _) = after_chunks(2, move || {
            canceller.cancel("terminal");
        });
        service.dump(cfg.clone(), Some(callback)).await.unwrap_err();
        let state = FileStore::new(dir.path()).load("terminal").await.unwrap().unwrap();
        let identity = first.url().trim_end_matches('/').to_owned();
        assert_eq!(state.shape.portal.as_deref(), Some(identity.as_str()));

        let err = DumpService::new(client(&other)).dump(cfg.clone(), None).await.unwrap_err();
        let Error::ShapeMismatch { ref differences, .. } = err else { panic!("{err:?}") };
        assert_eq!(differences.iter().map(|d| d.field).collect::<Vec<_>>(), ["portal"]);
        assert_eq!(other.stats().select_calls, 0, "refused before any request");
        // Under a name of its own, a portal is known by the name, whatever its address.
        let named = |sim: &iptvportal_sim::Sim| NamedPortal::new(client(sim), "demo");
        let err = DumpService::new(named(&other)).dump(cfg.clone(), None).await.unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }), "{err:?}");
        // The portal it came from resumes it.
        let stats = service.dump(cfg, None).await.unwrap();
        assert_eq!(stats.progress.dumped_rows, ROWS);
    });
}

/// Something done to a finished output in its directory.
type Tamper = fn(&std::path::Path);

/// Changes one bit in the middle of a file, keeping its size.
fn flip_middle(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_complete_output_changed_afterwards_is_not_called_complete() {
    runtime().block_on(async {
        let sim = sim(sim_config()).await;
        let service = DumpService::new(client(&sim));
        // (format, what is done to the finished output)
        let cases: [(Format, &str, Tamper); 8] = [
            (Format::Jsonl, "one byte flipped", |d| flip_middle(&d.join("terminal.jsonl"))),
            (Format::Csv, "one byte flipped in the middle", |d| {
                flip_middle(&d.join("terminal.csv"));
            }),
            (Format::Parquet, "one byte flipped in a part", |d| {
                flip_middle(&d.join("terminal-00000.parquet"));
            }),
            (Format::Jsonl, "truncated", |d| {
                let f = std::fs::OpenOptions::new().write(true).open(d.join("terminal.jsonl"));
                f.unwrap().set_len(100).unwrap();
            }),
            (Format::Csv, "extended", |d| {
                let mut text = std::fs::read(d.join("terminal.csv")).unwrap();
                text.extend_from_slice(b"1,2,3\n");
                std::fs::write(d.join("terminal.csv"), text).unwrap();
            }),
            (Format::Json, "deleted", |d| std::fs::remove_file(d.join("terminal.json")).unwrap()),
            (Format::Parquet, "a stale part added", |d| {
                std::fs::copy(d.join("terminal-00000.parquet"), d.join("terminal-00009.parquet"))
                    .unwrap();
            }),
            (Format::Parquet, "a part deleted", |d| {
                std::fs::remove_file(d.join("terminal-00000.parquet")).unwrap();
            }),
        ];
        for (format, what, tamper) in cases {
            let dir = tempfile::tempdir().unwrap();
            let cfg = config("terminal", dir.path()).format(format);
            service.dump(cfg.clone(), None).await.unwrap();
            tamper(dir.path());
            let calls = sim.stats().select_calls;
            let err = service.dump(cfg, None).await.unwrap_err();
            let Error::Sink { source, .. } = &err else { panic!("{what}: {err:?}") };
            assert!(matches!(**source, iptvportal_sink::Error::Changed { .. }), "{what}: {err}");
            assert!(err.to_string().contains("changed since it was written"), "{what}: {err}");
            assert_eq!(sim.stats().select_calls, calls, "{what}: refused before any request");
        }
    });
}

#[test]
fn progress_counts_this_run_and_knows_the_total_from_the_first_chunk() {
    runtime().block_on(async {
        let sim = sim(sim_config()).await;
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let callback: ProgressCallback = Arc::new(move |p| sink.lock().unwrap().push(p.clone()));
        DumpService::new(client(&sim))
            .dump(config("terminal", dir.path()), Some(callback))
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let running: Vec<_> = seen.iter().filter(|p| p.chunks_completed > 0).collect();
        assert_eq!(running.len(), 9 + 1, "one call per chunk, plus the final one");
        assert!(running.iter().all(|p| p.total_rows == Some(ROWS)));
        assert_eq!(running[0].percent_complete(), Some(100.0 * 100.0 / ROWS as f64));
        let last = seen.last().unwrap();
        assert_eq!(last.state, RunState::Done);
        assert_eq!(last.percent_complete(), Some(100.0));
        assert!(last.completed_at.is_some() && last.rows_per_second() > 0.0);
    });
}

fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

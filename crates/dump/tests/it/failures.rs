//! Faults, hard failures, `dump_many` isolation and bad configurations.

use std::sync::Arc;
use std::time::Duration;

use iptvportal_checkpoint::{CheckpointStore, FileStore};
use iptvportal_dump::{
    DumpConfig, DumpService, DumpStrategy, Error, Format, Invalid, NamedPortal, TraversalInvalid,
};
use iptvportal_query::{ColumnRef, CompareOp, Expr, Operand, Scalar};
use iptvportal_sim::SimConfig;

use crate::common::{client, config, runtime, sim, snapshot};

#[test]
fn a_dump_under_injected_faults_completes_with_identical_output() {
    runtime().block_on(async {
        let data = || SimConfig::default().rows("terminal", 1500).seed(8);
        let faulty = sim(data()
            .fail_rate(0.08)
            .reset_rate(0.03)
            .timeout_rate(0.02)
            .session_ttl(Duration::from_millis(250))
            .latency(Duration::from_millis(1)))
        .await;
        let clean = sim(data()).await;
        for (format, gzip, strategy, parallel) in [
            (Format::Jsonl, true, DumpStrategy::IdRange, 3),
            (Format::Parquet, false, DumpStrategy::Offset, 1),
        ] {
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let cfg = |dir: &std::path::Path| {
                config("terminal", dir)
                    .chunk_size(50)
                    .format(format)
                    .compress(gzip)
                    .strategy(strategy)
                    .max_parallel(parallel)
                    .max_retries(8)
                    .batch_timeout(Duration::from_millis(400))
            };
            let states = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let seen = std::sync::Arc::clone(&states);
            let cb: iptvportal_dump::ProgressCallback =
                std::sync::Arc::new(move |p| seen.lock().unwrap().push((p.state, p.retries)));
            let stats =
                DumpService::new(client(&faulty)).dump(cfg(a.path()), Some(cb)).await.unwrap();
            // Retries are visible to a progress display, and cleared once chunks flow again.
            let states = states.lock().unwrap().clone();
            assert!(
                states.iter().any(|(s, _)| *s == iptvportal_dump::RunState::Retrying),
                "{states:?}"
            );
            assert!(stats.progress.retries > 0);
            assert_eq!(stats.progress.state, iptvportal_dump::RunState::Done);
            DumpService::new(client(&clean)).dump(cfg(b.path()), None).await.unwrap();
            assert_eq!(
                snapshot(a.path(), "terminal", format, gzip),
                snapshot(b.path(), "terminal", format, gzip)
            );
        }
        let stats = faulty.stats();
        assert!(
            stats.injected_failures > 0 && stats.injected_resets > 0 && stats.injected_timeouts > 0,
            "every kind of fault must have happened: {stats:?}"
        );
        // Session expiry forced re-logins along the way.
        assert!(stats.authorize_calls > 2, "{stats:?}");
    });
}

#[test]
fn a_rate_limited_portal_is_waited_for() {
    runtime().block_on(async {
        // About 33 selects (a count, an id scan page, 30 ranges, the tail) against a bucket of 10
        // refilled at 10 a second: the limit is hit unless the dump takes over 2 s unlimited.
        let sim = sim(SimConfig::default().rows("tv_channel", 300).rate_limit(10)).await;
        let dir = tempfile::tempdir().unwrap();
        let stats = DumpService::new(client(&sim))
            .dump(config("tv_channel", dir.path()).chunk_size(10).max_retries(10), None)
            .await
            .unwrap();
        assert_eq!(stats.progress.dumped_rows, 300);
        assert!(sim.stats().rate_limited > 0, "the test must hit the limit");
    });
}

#[test]
fn a_non_transient_error_fails_fast_and_leaves_the_checkpoint_intact() {
    runtime().block_on(async {
        let data =
            || SimConfig::default().rows("terminal", 600).seed(4).latency(Duration::from_millis(2));
        let good = sim(data()).await;
        let dir = tempfile::tempdir().unwrap();
        // OFFSET starts with one request (the count); parallel ID_RANGE, `auto`'s choice here,
        // sends the first page of its id scan beside it, and each of the two would log in.
        let cfg = config("terminal", dir.path()).strategy(DumpStrategy::Offset);
        // One portal, whose credentials change below: two simulators known by one name.
        let portal = |sim: &iptvportal_sim::Sim| NamedPortal::new(client(sim), "the portal");
        let service = DumpService::new(portal(&good));
        let canceller = service.clone();
        let cb: iptvportal_dump::ProgressCallback = std::sync::Arc::new(move |p| {
            if p.chunks_completed == 2 {
                canceller.cancel("terminal");
            }
        });
        service.dump(cfg.clone(), Some(cb)).await.unwrap_err();
        let before = std::fs::read(dir.path().join("terminal.jsonl")).unwrap();
        let state_before = FileStore::new(dir.path()).load("terminal").await.unwrap().unwrap();

        // The same data behind other credentials: the login is refused, which no retry can fix.
        let locked = sim(data().credentials("admin", "changed")).await;
        let err = DumpService::new(portal(&locked)).dump(cfg.clone(), None).await.unwrap_err();
        assert!(!err.is_transient());
        assert!(err.to_string().contains("invalid username or password"), "{err}");
        assert_eq!(locked.stats().authorize_calls, 1, "a refused login is not retried");
        assert_eq!(locked.stats().select_calls, 0);
        assert_eq!(std::fs::read(dir.path().join("terminal.jsonl")).unwrap(), before);
        let state_after = FileStore::new(dir.path()).load("terminal").await.unwrap().unwrap();
        assert_eq!(
            (state_after.cursor, state_after.sink),
            (state_before.cursor, state_before.sink)
        );

        // A query the portal refuses (an unknown column in a raw filter) fails at once with its message.
        let bad = Expr::Compare {
            op: CompareOp::Eq,
            left: Operand::Column(ColumnRef::new("no_such_column").unwrap()),
            right: Operand::Literal(Scalar::Int(1)),
        };
        let fresh = tempfile::tempdir().unwrap();
        let out = fresh.path().join("out");
        let calls = good.stats().select_calls;
        let offset = config("terminal", &out).strategy(DumpStrategy::Offset);
        let err = service.dump(offset.where_clause(bad), None).await.unwrap_err();
        assert!(matches!(err, Error::Fetch { .. }), "{err:?}");
        assert!(err.to_string().contains("no_such_column"), "{err}");
        assert_eq!(good.stats().select_calls, calls + 1, "one request, no retries");
        assert!(!out.exists(), "nothing is created before the portal accepts the query");
    });
}

#[test]
fn dump_many_isolates_failures_and_keeps_input_order() {
    runtime().block_on(async {
        let sim = sim(SimConfig::default()
            .rows("terminal", 400)
            .rows("tv_channel", 120)
            .rows("media", 90))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let configs: Vec<DumpConfig> = ["terminal", "no_such_table", "tv_channel", "media"]
            .into_iter()
            .map(|t| config(t, dir.path()).chunk_size(40))
            .collect();
        let results = DumpService::new(client(&sim)).dump_many(configs, 2, None).await.unwrap();
        let summary: Vec<_> = results
            .iter()
            .map(|r| {
                r.as_ref().map(|s| s.progress.dumped_rows).map_err(|e| e.table().map(str::to_owned))
            })
            .collect();
        assert_eq!(summary, [Ok(400), Err(Some("no_such_table".to_owned())), Ok(120), Ok(90)]);
        let err = results[1].as_ref().unwrap_err();
        assert!(err.to_string().contains("unknown table"), "{err}");
    });
}

#[test]
fn dump_many_refuses_configurations_that_write_the_same_files() {
    runtime().block_on(async {
        let sim = sim(SimConfig::default().rows("terminal", 50)).await;
        let dir = tempfile::tempdir().unwrap();
        let configs = vec![
            config("terminal", dir.path()),
            config("terminal", &dir.path().join(".")).format(Format::Csv),
        ];
        let err = DumpService::new(client(&sim)).dump_many(configs, 2, None).await.unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
        assert!(err.to_string().contains(".terminal.state.json"), "{err}");
        assert_eq!(sim.stats().select_calls, 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    });
}

#[test]
fn bad_configurations_fail_before_any_request_or_file() {
    runtime().block_on(async {
        let sim = sim(SimConfig::default().rows("terminal", 50)).await;
        let service = DumpService::new(client(&sim));
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let cases: [(DumpConfig, Invalid, &str); 8] = [
            (
                config("terminal", &out).chunk_size(0),
                Invalid::Traversal(TraversalInvalid::ZeroChunkSize),
                "chunk size must be at least 1",
            ),
            (
                config("terminal", &out).max_parallel(0),
                Invalid::Traversal(TraversalInvalid::ZeroParallel),
                "parallelism must be at least 1",
            ),
            (
                config("terminal", &out).columns(["id", "nope"]),
                Invalid::UnknownColumn {
                    column: "nope".into(),
                    table: "terminal".into(),
                    known: iptvportal_catalog::table("terminal")
                        .unwrap()
                        .column_names()
                        .map(str::to_owned)
                        .collect(),
                },
                "unknown column nope",
            ),
            (
                config("terminal", &out).format(Format::Parquet).compress(true),
                Invalid::CompressParquet,
                "parquet files are always compressed",
            ),
            (
                config("terminal", &out).order_by("id sideways"),
                Invalid::OrderBy {
                    text: "id sideways".into(),
                    reason: iptvportal_query::OrderBy::parse("id sideways")
                        .unwrap_err()
                        .to_string(),
                },
                "bad order by",
            ),
            (
                config("terminal", &out).strategy(DumpStrategy::IdRange).order_by("mac_addr"),
                Invalid::Traversal(TraversalInvalid::IdRangeOrder { id_column: "id".into() }),
                "ascending id",
            ),
            (
                config("terminal", &out).strategy(DumpStrategy::IdRange).resume_offset(10),
                Invalid::ResumeOffsetNeedsOffset,
                "resume offset needs the offset strategy",
            ),
            (config("bad-name", &out), Invalid::TableName, "letters, digits and _"),
        ];
        for (cfg, expected, phrase) in cases {
            let err = service.dump(cfg, None).await.unwrap_err();
            match &err {
                Error::Config { invalid, .. } => assert_eq!(invalid, &expected),
                other => panic!("expected a config error, got {other:?}"),
            }
            assert!(err.to_string().contains(phrase), "{err} should contain {phrase:?}");
            // The library speaks its own terms: no command-line flag in its messages.
            assert!(!err.to_string().contains("--"), "{err}");
        }
        assert_eq!(sim.stats().select_calls, 0);
        assert!(!out.exists());

        // An output directory that cannot be created (a path under a regular file).
        let file = root.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let err = service.dump(config("terminal", &file.join("sub")), None).await.unwrap_err();
        assert!(matches!(err, Error::OutputDir { .. }), "{err:?}");
        assert!(err.to_string().contains("cannot write to the output directory"), "{err}");
    });
}

#[test]
fn cancel_all_also_stops_the_tables_still_queued() {
    runtime().block_on(async {
        let sim = sim(SimConfig::default()
            .rows("terminal", 600)
            .rows("tv_channel", 100)
            .rows("media", 100)
            .latency(Duration::from_millis(3)))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let service = DumpService::new(client(&sim));
        let canceller = service.clone();
        let cb: iptvportal_dump::ProgressCallback = std::sync::Arc::new(move |p| {
            if p.table == "terminal" && p.chunks_completed == 2 {
                canceller.cancel_all();
            }
        });
        let configs = ["terminal", "tv_channel", "media"].map(|t| config(t, dir.path())).to_vec();
        let results = service.dump_many(configs, 1, Some(cb)).await.unwrap();
        for r in &results {
            assert!(matches!(r, Err(Error::Cancelled { .. })), "{r:?}");
        }
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [".terminal.lock", ".terminal.state.json", "terminal.jsonl"],
            "queued tables must not start (not even to take their lock)"
        );
    });
}

#[test]
fn dump_many_starts_the_biggest_tables_first_and_reports_in_input_order() {
    runtime().block_on(async {
        let sim = sim(SimConfig::default()
            .rows("tv_channel", 50)
            .rows("terminal", 900)
            .rows("media", 300))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let started = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = std::sync::Arc::clone(&started);
        let cb: iptvportal_dump::ProgressCallback = std::sync::Arc::new(move |p| {
            let mut seen = seen.lock().unwrap();
            if !seen.contains(&p.table) {
                seen.push(p.table.clone());
            }
        });
        let configs = ["tv_channel", "terminal", "media"].map(|t| config(t, dir.path())).to_vec();
        let results = DumpService::new(client(&sim)).dump_many(configs, 1, Some(cb)).await.unwrap();
        let tables: Vec<_> =
            results.iter().map(|r| r.as_ref().unwrap().config.table.clone()).collect();
        assert_eq!(tables, ["tv_channel", "terminal", "media"], "results keep the input order");
        assert_eq!(
            *started.lock().unwrap(),
            ["terminal", "media", "tv_channel"],
            "most rows first"
        );
    });
}

/// A cancel does not wait for the up-front count: against a slow portal that request can take the
/// timeout times the retries. Every request here takes 3 s (the login, then the count), and the
/// cancel comes 1 s into the count: the dump stops then, not when the count returns 2 s later.
#[test]
fn a_cancel_during_the_count_stops_the_dump_at_once() {
    runtime().block_on(async {
        let sim =
            sim(SimConfig::default().rows("terminal", 100).latency(Duration::from_secs(3))).await;
        let dir = tempfile::tempdir().unwrap();
        let service = DumpService::new(client(&sim));
        let canceller = service.clone();
        let started = std::time::Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            canceller.cancel("terminal");
        });
        let err = service.dump(config("terminal", dir.path()), None).await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, Error::Cancelled { rows: 0, .. }), "{err:?}");
        assert!(elapsed < Duration::from_millis(5500), "cancelled after {elapsed:?}");
        assert_eq!(service.get_stats("terminal").unwrap().state.as_str(), "cancelled");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(names.is_empty(), "nothing is written before the count: {names:?}");
    });
}

#[test]
fn a_second_run_on_a_table_being_written_is_refused_and_touches_nothing() {
    runtime().block_on(async {
        let sim = sim(SimConfig::default()
            .rows("terminal", 2000)
            .rows("tv_channel", 50)
            .latency(Duration::from_millis(10)))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let service = DumpService::new(client(&sim));
        let (started, mut first_chunk) = tokio::sync::watch::channel(false);
        let callback: iptvportal_dump::ProgressCallback = Arc::new(move |p| {
            if p.chunks_completed > 0 {
                started.send_replace(true);
            }
        });
        let first = tokio::spawn({
            let service = service.clone();
            let cfg = config("terminal", dir.path());
            async move { service.dump(cfg, Some(callback)).await }
        });
        first_chunk.wait_for(|s| *s).await.unwrap();
        let err = service.dump(config("terminal", dir.path()), None).await.unwrap_err();
        let Error::Locked { table, pid, .. } = &err else { panic!("{err:?}") };
        assert_eq!((table.as_str(), *pid), ("terminal", Some(std::process::id())));
        // Another table in the same directory runs meanwhile.
        service.dump(config("tv_channel", dir.path()), None).await.unwrap();
        let stats = first.await.unwrap().unwrap();
        assert_eq!(stats.progress.dumped_rows, 2000);
        // The refused run wrote nothing: the finished output is the same as a dump of its own.
        let alone = tempfile::tempdir().unwrap();
        service.dump(config("terminal", alone.path()), None).await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("terminal.jsonl")).unwrap(),
            std::fs::read(alone.path().join("terminal.jsonl")).unwrap()
        );
    });
}

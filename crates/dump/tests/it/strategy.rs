//! `auto`, the default strategy: id-range where the catalog knows the table's id column, offset
//! where it does not; a checkpoint keeps the strategy it was written with, and a strategy asked
//! for by name must be the checkpoint's. Excluded columns shape the output like a column list.

use std::sync::Arc;
use std::time::Duration;

use iptvportal_checkpoint::{CheckpointStore, FileStore};
use iptvportal_dump::{
    DumpConfig, DumpService, DumpStrategy, Error, Format, Invalid, Outcome, ProgressCallback,
    RunState, Strategy,
};
use iptvportal_sim::SimConfig;

use crate::common::{client, config, read_rows, runtime, sim, snapshot};

fn sim_config() -> SimConfig {
    SimConfig::default()
        .seed(15)
        .rows("terminal", 600)
        .rows("subscriber_package", 300)
        .rows("subscriber", 200)
        .latency(Duration::from_millis(2))
}

/// The strategy the checkpoint of `table` in `dir` recorded.
async fn saved_strategy(dir: &std::path::Path, table: &str) -> Strategy {
    FileStore::new(dir).load(table).await.unwrap().unwrap().shape.strategy
}

/// A callback that cancels `table` once `chunks` chunks are committed.
fn cancel_after(service: &DumpService, table: &str, chunks: u64) -> ProgressCallback {
    let (service, table) = (service.clone(), table.to_owned());
    Arc::new(move |p| {
        if p.state == RunState::Running && p.chunks_completed >= chunks {
            service.cancel(&table);
        }
    })
}

#[test]
fn auto_walks_a_table_with_an_id_by_id_range_and_one_without_by_offset() {
    runtime().block_on(async {
        let sim = sim(sim_config()).await;
        let service = DumpService::new(client(&sim));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(DumpConfig::new("terminal", dir.path()).strategy, DumpStrategy::Auto);

        let cases = [
            (config("terminal", dir.path()), Strategy::IdRange, 600),
            (config("subscriber_package", dir.path()), Strategy::Offset, 300),
        ];
        for (cfg, strategy, rows) in cases {
            let table = cfg.table.clone();
            let stats = service.dump(cfg, None).await.unwrap();
            assert_eq!((stats.strategy, stats.progress.dumped_rows), (strategy, rows), "{table}");
            assert_eq!(saved_strategy(dir.path(), &table).await, strategy, "{table}");
        }

        // Where id-range cannot walk the table as asked, auto walks it by offset.
        let elsewhere = tempfile::tempdir().unwrap();
        let by_mac = config("terminal", elsewhere.path()).order_by("mac_addr");
        assert_eq!(by_mac.strategy_for(None), Strategy::Offset);
        let stats = service.dump(by_mac, None).await.unwrap();
        assert_eq!(stats.strategy, Strategy::Offset);
        let from_offset = config("terminal", elsewhere.path()).resume_offset(0);
        assert_eq!(from_offset.strategy_for(None), Strategy::Offset);
        assert_eq!(
            config("terminal", dir.path()).order_by("id").strategy_for(None),
            Strategy::IdRange
        );
        // A table the catalog does not know keeps offset unless asked.
        assert_eq!(config("not_in_the_catalog", dir.path()).strategy_for(None), Strategy::Offset);
        let asked = config("not_in_the_catalog", dir.path()).strategy(DumpStrategy::IdRange);
        assert_eq!(asked.strategy_for(None), Strategy::IdRange);
        // A checkpoint's strategy wins over auto's own choice, never over one asked for by name.
        let auto = config("terminal", dir.path());
        assert_eq!(auto.strategy_for(Some(Strategy::Offset)), Strategy::Offset);
        let named = auto.strategy(DumpStrategy::IdRange);
        assert_eq!(named.strategy_for(Some(Strategy::Offset)), Strategy::IdRange);
    });
}

#[test]
fn an_offset_checkpoint_resumes_under_auto_to_the_same_output() {
    runtime().block_on(async {
        let sim = sim(sim_config()).await;
        let service = DumpService::new(client(&sim));
        let offset = |dir: &std::path::Path| config("terminal", dir).strategy(DumpStrategy::Offset);

        // What an uninterrupted offset dump writes.
        let whole = tempfile::tempdir().unwrap();
        service.dump(offset(whole.path()), None).await.unwrap();

        // A checkpoint written by offset (as every dump before `auto` was), then the default.
        let dir = tempfile::tempdir().unwrap();
        let cb = cancel_after(&service, "terminal", 2);
        let err = service.dump(offset(dir.path()), Some(cb)).await.unwrap_err();
        assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
        assert_eq!(saved_strategy(dir.path(), "terminal").await, Strategy::Offset);
        let stats = service.dump(config("terminal", dir.path()), None).await.unwrap();
        assert_eq!((stats.outcome, stats.strategy), (Outcome::Completed, Strategy::Offset));
        assert_eq!(stats.progress.dumped_rows, 600);
        assert_eq!(saved_strategy(dir.path(), "terminal").await, Strategy::Offset);
        assert_eq!(
            snapshot(dir.path(), "terminal", Format::Jsonl, false),
            snapshot(whole.path(), "terminal", Format::Jsonl, false)
        );
        // Complete, it stays what it was written with.
        let again = service.dump(config("terminal", dir.path()), None).await.unwrap();
        assert_eq!((again.outcome, again.strategy), (Outcome::AlreadyComplete, Strategy::Offset));
    });
}

#[test]
fn a_strategy_asked_for_by_name_must_be_the_checkpoints() {
    runtime().block_on(async {
        let sim = sim(sim_config()).await;
        let service = DumpService::new(client(&sim));
        let cases = [
            (DumpStrategy::Auto, DumpStrategy::Offset, "id-range", "offset"),
            (DumpStrategy::Offset, DumpStrategy::IdRange, "offset", "id-range"),
        ];
        for (written, asked, saved, requested) in cases {
            let dir = tempfile::tempdir().unwrap();
            let cb = cancel_after(&service, "terminal", 2);
            let first = config("terminal", dir.path()).strategy(written);
            service.dump(first, Some(cb)).await.unwrap_err();
            let before = files(dir.path());
            let err = service
                .dump(config("terminal", dir.path()).strategy(asked), None)
                .await
                .unwrap_err();
            let Error::ShapeMismatch { ref differences, .. } = err else { panic!("{err:?}") };
            let difference: Vec<_> = differences
                .iter()
                .map(|d| (d.field, d.saved.as_str(), d.requested.as_str()))
                .collect();
            assert_eq!(difference, [("strategy", saved, requested)], "{err}");
            assert_eq!(files(dir.path()), before, "a refusal touches nothing");
            // The checkpoint's own strategy, by name or through auto, resumes it.
            let stats = service.dump(config("terminal", dir.path()), None).await.unwrap();
            assert_eq!(stats.strategy.as_str(), saved);
        }
    });
}

#[test]
fn excluded_columns_leave_the_output_and_shape_the_checkpoint() {
    runtime().block_on(async {
        let sim = sim(sim_config()).await;
        let service = DumpService::new(client(&sim));
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<&str> =
            iptvportal_catalog::table("subscriber").unwrap().column_names().collect();
        let rest: Vec<&str> = all.iter().copied().filter(|c| *c != "password").collect();

        let cb = cancel_after(&service, "subscriber", 1);
        let cfg = config("subscriber", dir.path()).exclude_columns(["password"]);
        service.dump(cfg.clone(), Some(cb)).await.unwrap_err();
        let state = FileStore::new(dir.path()).load("subscriber").await.unwrap().unwrap();
        // Recorded as the columns it leaves, so either spelling of the output resumes it.
        assert_eq!(state.shape.columns, Some(rest.iter().map(|c| (*c).to_owned()).collect()));

        // The same output asked for without the exclusion is another output.
        let err = service.dump(config("subscriber", dir.path()), None).await.unwrap_err();
        let Error::ShapeMismatch { ref differences, .. } = err else { panic!("{err:?}") };
        assert_eq!(differences.iter().map(|d| d.field).collect::<Vec<_>>(), ["columns"]);
        // The same columns listed by name are the same output: the resume continues.
        let listed = config("subscriber", dir.path()).columns(rest.clone());
        let stats = service.dump(listed, None).await.unwrap();
        assert_eq!((stats.outcome, stats.progress.dumped_rows), (Outcome::Completed, 200));
        let (names, rows) = read_rows(dir.path(), "subscriber", Format::Jsonl, false);
        assert_eq!(names, rest);
        assert_eq!(rows.len(), 200);
        let text = std::fs::read_to_string(dir.path().join("subscriber.jsonl")).unwrap();
        assert!(!text.contains("\"password\""), "the password is out of the output");
    });
}

#[test]
fn excluded_columns_are_checked_against_the_catalog() {
    let cfg = |table: &str| DumpConfig::new(table, "out");
    let refused = |cfg: DumpConfig| match cfg.validate() {
        Err(Error::Config { invalid, .. }) => invalid,
        other => panic!("{other:?}"),
    };
    let known: Vec<String> = iptvportal_catalog::table("subscriber")
        .unwrap()
        .column_names()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        refused(cfg("subscriber").exclude_columns(["pasword"])),
        Invalid::UnknownColumn { column: "pasword".into(), table: "subscriber".into(), known }
    );
    assert_eq!(
        refused(cfg("subscriber").exclude_columns(["password"]).columns(["id"])),
        Invalid::ColumnsAndExclude
    );
    assert_eq!(
        refused(cfg("not_in_the_catalog").exclude_columns(["x"])),
        Invalid::ExcludeUnknownTable
    );
    assert_eq!(
        refused(cfg("tv_program_category").exclude_columns(["program_id", "category_id"])),
        Invalid::ExcludesEveryColumn
    );
    assert_eq!(
        refused(cfg("subscriber").exclude_columns(["password", "password"])),
        Invalid::DuplicateColumn("password".into())
    );
    cfg("subscriber").exclude_columns(["password", "email"]).validate().unwrap();
    // An explicit id-range is still refused where there is no id; auto is not.
    assert_eq!(
        refused(cfg("tv_program_category").strategy(DumpStrategy::IdRange)),
        Invalid::NoIdColumn("tv_program_category".into())
    );
    cfg("tv_program_category").validate().unwrap();
    // A resume offset needs offset: auto resolves to it, id-range asked for by name is refused.
    cfg("terminal").resume_offset(10).validate().unwrap();
    assert_eq!(
        refused(cfg("terminal").resume_offset(10).strategy(DumpStrategy::IdRange)),
        Invalid::ResumeOffsetNeedsOffset
    );
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

//! Every format x {plain, gzip} x {OFFSET, ID_RANGE, ID_RANGE parallel 3} x {no filter, a filter}:
//! the output holds exactly the simulator's rows, in id order, with the right types.

use iptvportal_dump::{DumpService, DumpStrategy, Format, Outcome};
use iptvportal_query::Q;
use iptvportal_sim::SimConfig;
use serde_json::Value;

use crate::common::{as_csv, client, config, expected_rows, read_rows, runtime, sim};

const FORMATS: [(Format, bool); 7] = [
    (Format::Jsonl, false),
    (Format::Jsonl, true),
    (Format::Csv, false),
    (Format::Csv, true),
    (Format::Json, false),
    (Format::Json, true),
    (Format::Parquet, false),
];
const STRATEGIES: [(DumpStrategy, usize); 3] =
    [(DumpStrategy::Offset, 1), (DumpStrategy::IdRange, 1), (DumpStrategy::IdRange, 3)];

#[test]
fn every_format_strategy_and_filter_yields_exactly_the_tables_rows() {
    runtime().block_on(async {
        let sim = sim(SimConfig::default().rows("terminal", 1234).seed(11)).await;
        let service = DumpService::new(client(&sim));
        let filters: [(Option<Q>, &str); 2] = [
            (None, ""),
            (
                Some(
                    Q::lookup("id__gte", 300).unwrap()
                        & Q::lookup("inet_addr__isnull", false).unwrap(),
                ),
                "id >= 300 AND inet_addr IS NOT NULL",
            ),
        ];
        let mut runs = 0;
        for (filter, sql) in &filters {
            let (names, expected) = expected_rows(sim.db_path(), "terminal", sql);
            assert!(expected.len() > 500, "the filter must leave a table worth paging");
            for (format, gzip) in FORMATS {
                for (strategy, parallel) in STRATEGIES {
                    let dir = tempfile::tempdir().unwrap();
                    let mut cfg = config("terminal", dir.path())
                        .format(format)
                        .compress(gzip)
                        .strategy(strategy)
                        .max_parallel(parallel);
                    if let Some(q) = filter {
                        cfg = cfg.where_clause(q.clone());
                    }
                    let what =
                        format!("{format} gzip={gzip} {strategy} x{parallel} filter={sql:?}");
                    let stats =
                        service.dump(cfg, None).await.unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(stats.outcome, Outcome::Completed, "{what}");
                    assert_eq!(stats.progress.dumped_rows, expected.len() as u64, "{what}");
                    assert_eq!(stats.count_mismatch, None, "{what}");
                    let (got_names, got) = read_rows(dir.path(), "terminal", format, gzip);
                    assert_eq!(got_names, names, "{what}");
                    let want =
                        if format == Format::Csv { as_csv(&expected) } else { expected.clone() };
                    assert_eq!(got.len(), want.len(), "{what}");
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(g, w, "{what}: row {i}");
                    }
                    runs += 1;
                }
            }
        }
        assert_eq!(runs, 42);
    });
}

#[test]
fn floats_booleans_and_a_column_subset_keep_their_types() {
    runtime().block_on(async {
        let sim = sim(SimConfig::default().rows("subscriber", 420).seed(3)).await;
        let service = DumpService::new(client(&sim));
        let (names, all) = expected_rows(sim.db_path(), "subscriber", "");
        let pick = ["id", "billing", "disabled", "email", "created_at"];
        let index: Vec<usize> =
            pick.iter().map(|p| names.iter().position(|n| n == p).unwrap()).collect();
        let expected: Vec<Vec<Value>> =
            all.iter().map(|r| index.iter().map(|&i| r[i].clone()).collect()).collect();
        for format in [Format::Jsonl, Format::Parquet, Format::Json] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = config("subscriber", dir.path())
                .format(format)
                .columns(pick)
                .strategy(DumpStrategy::IdRange);
            service.dump(cfg, None).await.unwrap();
            let (got_names, got) = read_rows(dir.path(), "subscriber", format, false);
            assert_eq!(got_names, pick, "{format}");
            assert_eq!(got, expected, "{format}");
        }
    });
}

#[test]
fn a_table_without_an_id_dumps_by_offset_in_a_deterministic_order() {
    runtime().block_on(async {
        let sim = sim(SimConfig::default().rows("subscriber_package", 777).seed(5)).await;
        let service = DumpService::new(client(&sim));
        let dir = tempfile::tempdir().unwrap();
        service.dump(config("subscriber_package", dir.path()).chunk_size(50), None).await.unwrap();
        let (_, got) = read_rows(dir.path(), "subscriber_package", Format::Jsonl, false);
        let conn = rusqlite::Connection::open(sim.db_path()).unwrap();
        let total: i64 =
            conn.query_row("SELECT count(*) FROM subscriber_package", [], |r| r.get(0)).unwrap();
        assert_eq!(i64::try_from(got.len()).unwrap(), total);
        let mut sorted = got.clone();
        sorted.sort_by_key(|r| (r[0].as_i64(), r[1].as_i64(), r[2].as_bool()));
        assert_eq!(got, sorted, "ordered by every column, so pages never overlap");

        let err = service
            .dump(config("subscriber_package", dir.path()).strategy(DumpStrategy::IdRange), None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("has no id column"), "{err}");
    });
}

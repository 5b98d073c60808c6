//! `iptvportal-sim mutate` and `serve --mutate-rate`: the database changes as a portal's data
//! does, `serve --db` serves a changed file as it is, and the change columns are indexed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use iptvportal_catalog::time::format_timestamp;
use iptvportal_sim::{Sim, SimConfig};
use reqwest::StatusCode;
use rusqlite::types::Value;
use serde_json::json;

use crate::support::{login, open_db, post, spawn_serve, stop};

const BIN: &str = env!("CARGO_BIN_EXE_iptvportal-sim");

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir()
            .join(format!("iptvportal-sim-it-mutate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Small sizes: every table has rows, generation is quick.
fn tiny() -> SimConfig {
    let mut config = SimConfig::default().seed(11);
    for t in iptvportal_catalog::TABLES {
        config = config.rows(t.name, 200);
    }
    config.rows("terminal", 600)
}

/// Generates `tiny()` into `path` (the simulator's own generation) and closes it.
async fn generate(path: &Path) {
    let sim = Sim::start(tiny().db_path(path)).await.expect("generating");
    sim.shutdown().await;
}

fn mutate(db: &Path, args: &[&str]) -> Output {
    Command::new(BIN).arg("mutate").arg("--db").arg(db).args(args).output().unwrap()
}

/// `mutate` that must succeed: its stdout lines.
fn mutate_ok(db: &Path, args: &[&str]) -> Vec<String> {
    let out = mutate(db, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

/// Every row of `table` by id.
fn rows_by_id(path: &Path, table: &str) -> BTreeMap<i64, Vec<Value>> {
    let conn = open_db(path);
    let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\" ORDER BY id")).unwrap();
    let width = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, (0..width).map(|i| r.get(i)).collect::<Result<Vec<Value>, _>>()?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Every table's full contents, in rowid order.
fn dump(path: &Path) -> Vec<(String, Vec<Vec<Value>>)> {
    let conn = open_db(path);
    iptvportal_catalog::TABLES
        .iter()
        .map(|t| {
            let mut stmt = conn
                .prepare(&format!("SELECT rowid, * FROM \"{}\" ORDER BY rowid", t.name))
                .unwrap();
            let width = stmt.column_count();
            let rows = stmt
                .query_map([], |r| (0..width).map(|i| r.get(i)).collect::<Result<Vec<Value>, _>>())
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            (t.name.to_owned(), rows)
        })
        .collect()
}

fn count(path: &Path, sql: &str) -> i64 {
    open_db(path).query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Columns of `terminal`: `id`, `subscriber_id`, `mac_addr`, `inet_addr`, `registered`, `last_seen`.
const INET_ADDR: usize = 3;
const LAST_SEEN: usize = 5;

#[tokio::test]
async fn mutate_inserts_updates_and_deletes_exactly_what_it_says() {
    let dir = TempDir::new("exact");
    let db = dir.path("portal.sqlite");
    generate(&db).await;
    let before = rows_by_id(&db, "terminal");
    let old_max = *before.keys().last().unwrap();
    let at = "2030-01-02 03:04:05";

    let lines = mutate_ok(&db, &["--insert", "10", "--update", "5", "--delete", "3", "--at", at]);
    assert_eq!(
        lines,
        [format!(
            "terminal: inserted 10 (ids {}..={}), updated 5, deleted 3",
            old_max + 1,
            old_max + 10
        )]
    );

    let after = rows_by_id(&db, "terminal");
    assert_eq!(after.len(), before.len() + 10 - 3);
    let deleted: Vec<i64> = before.keys().filter(|id| !after.contains_key(id)).copied().collect();
    assert_eq!(deleted.len(), 3, "{deleted:?}");
    let inserted: Vec<i64> = after.keys().filter(|id| !before.contains_key(id)).copied().collect();
    assert_eq!(inserted, (old_max + 1..=old_max + 10).collect::<Vec<_>>());
    for id in &inserted {
        let row = &after[id];
        assert_eq!(row[LAST_SEEN], text(at), "inserted {id}: the change column is --at");
        // Generated like the others: a MAC address and a registration timestamp.
        let Value::Text(mac) = &row[2] else { panic!("{row:?}") };
        assert_eq!(mac.len(), 17, "{row:?}");
        let Value::Text(registered) = &row[4] else { panic!("{row:?}") };
        assert!(iptvportal_catalog::time::parse_timestamp(registered).is_some(), "{row:?}");
    }
    let changed: Vec<i64> = before
        .iter()
        .filter(|(id, row)| after.get(id).is_some_and(|a| a != *row))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(changed.len(), 5, "exactly the updated rows differ: {changed:?}");
    for id in &changed {
        let (old, new) = (&before[id], &after[id]);
        assert_eq!(new[LAST_SEEN], text(at), "updated {id}: the change column is --at");
        assert_ne!(new[INET_ADDR], old[INET_ADDR], "updated {id}: a new address");
        assert_eq!(new[..INET_ADDR], old[..INET_ADDR], "updated {id}: id, subscriber, MAC kept");
        assert_eq!(new[4], old[4], "updated {id}: registered kept");
    }
    // Other tables are untouched by the default `--table terminal`.
    assert_eq!(count(&db, "SELECT count(*) FROM subscriber"), 200);

    // Without --at the change column is now: no earlier than the moment before the run.
    let start = format_timestamp(
        i64::try_from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        )
        .unwrap(),
    );
    let lines = mutate_ok(&db, &["--insert", "2", "--update", "4", "--seed", "5"]);
    assert_eq!(
        lines,
        [format!(
            "terminal: inserted 2 (ids {}..={}), updated 4, deleted 0",
            old_max + 11,
            old_max + 12
        )]
    );
    // (The rows stamped 2030 above are later than now: they are not counted.)
    let fresh = count(
        &db,
        &format!(
            "SELECT count(*) FROM terminal WHERE last_seen >= '{start}' AND last_seen < '{at}'"
        ),
    );
    assert_eq!(fresh, 6, "2 inserted and 4 updated rows seen since {start}");

    // A deleted id is never issued again, not even the highest one.
    let rows = count(&db, "SELECT count(*) FROM terminal");
    assert_eq!(
        mutate_ok(&db, &["--delete", "100000"]),
        [format!("terminal: inserted 0, updated 0, deleted {rows}")]
    );
    assert_eq!(count(&db, "SELECT count(*) FROM terminal"), 0);
    assert_eq!(
        mutate_ok(&db, &["--insert", "1", "--update", "1"]),
        [format!("terminal: inserted 1 (ids {0}..={0}), updated 0, deleted 0", old_max + 13)]
    );
}

#[tokio::test]
async fn the_same_seed_on_the_same_database_makes_the_same_changes() {
    let dir = TempDir::new("seed");
    let a = dir.path("a.sqlite");
    generate(&a).await;
    let b = dir.path("b.sqlite");
    let c = dir.path("c.sqlite");
    std::fs::copy(&a, &b).unwrap();
    std::fs::copy(&a, &c).unwrap();
    let original = dump(&a);
    let args =
        ["--table", "all", "--insert", "7", "--update", "9", "--delete", "4", "--at", "2031-05-06"];
    let lines = mutate_ok(&a, &args);
    assert_eq!(mutate_ok(&b, &args), lines);
    assert_eq!(lines.len(), iptvportal_catalog::TABLES.len(), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("subscriber_package: inserted 7, updated 9, deleted 4")),
        "{lines:?}"
    );
    let (da, db) = (dump(&a), dump(&b));
    assert_eq!(da, db, "same seed, same state: identical tables");
    assert_ne!(da, original);
    for ((name, after), (_, before)) in da.iter().zip(&original) {
        assert_eq!(after.len(), before.len() + 7 - 4, "{name}");
    }
    let other: Vec<&str> = args.iter().copied().chain(["--seed", "43"]).collect();
    mutate_ok(&c, &other);
    assert_ne!(dump(&c), da, "another seed: other changes");
    // Every inserted playlog row has its change column (`start`) at --at.
    assert_eq!(
        count(&a, "SELECT count(*) FROM terminal_playlog WHERE start = '2031-05-06 00:00:00'"),
        7 + 9
    );
}

#[tokio::test]
async fn unknown_tables_and_files_fail_with_one_line() {
    let dir = TempDir::new("errors");
    let db = dir.path("portal.sqlite");
    generate(&db).await;
    let before = dump(&db);
    let out = mutate(&db, &["--table", "nosuch", "--insert", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let names: Vec<_> = iptvportal_catalog::TABLES.iter().map(|t| t.name).collect();
    assert_eq!(
        stderr,
        format!(
            "error: --table: unknown table \"nosuch\": use one of {}, or all\n",
            names.join(", ")
        )
    );
    assert!(out.stdout.is_empty());
    assert_eq!(dump(&db), before, "nothing changed");

    let missing = dir.path("missing.sqlite");
    let out = mutate(&missing, &["--insert", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot mutate ") && stderr.contains("no such database file"),
        "{stderr}"
    );
    assert!(!missing.exists(), "mutate never creates a file");

    let foreign = dir.path("notes.sqlite");
    rusqlite::Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE notes (x)").unwrap();
    let out = mutate(&foreign, &["--insert", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.ends_with("not a simulator database\n") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// Starts the binary's `serve` with `args`; returns the child and the URL it printed.
/// `select count(*), max(id) from terminal` over JSONSQL.
async fn count_and_max(http: &reqwest::Client, url: &str, session: &str) -> (i64, i64) {
    let body = json!({"jsonrpc":"2.0","id":3,"method":"select","params":{
        "data":[{"function":"count","args":"*"},{"function":"max","args":"id"}],"from":"terminal"}});
    let (status, body) = post(http, &format!("{url}jsonsql/"), Some(session), &body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = &body["result"][0];
    (row[0].as_i64().unwrap(), row[1].as_i64().unwrap())
}

#[tokio::test]
async fn serve_serves_a_mutated_database_as_it_is() {
    let dir = TempDir::new("serve");
    let db = dir.path("portal.sqlite");
    generate(&db).await;
    let old_max = count(&db, "SELECT max(id) FROM terminal");
    mutate_ok(&db, &["--insert", "10", "--delete", "3", "--update", "2"]);
    let mutated = dump(&db);
    let path = db.to_str().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();

    // Neither the changed counts, nor other --rows, nor another --seed regenerate it.
    for args in [
        &["--db", path][..],
        &["--db", path, "--rows", "terminal=600", "--seed", "11"],
        &["--db", path, "--seed", "3"],
    ] {
        let (child, url) = spawn_serve(args).await;
        let session = login(&http, &url, "admin", "admin").await.unwrap();
        assert_eq!(count_and_max(&http, &url, &session).await, (607, old_max + 10), "{args:?}");
        stop(child).await;
        assert_eq!(dump(&db), mutated, "{args:?}: served as it is");
    }

    // --regenerate does, from --seed and --rows.
    let (child, url) = spawn_serve(&["--db", path, "--regenerate", "--rows", "terminal=250"]).await;
    let session = login(&http, &url, "admin", "admin").await.unwrap();
    assert_eq!(count_and_max(&http, &url, &session).await.0, 250);
    stop(child).await;
}

#[tokio::test]
async fn serve_mutates_at_its_rate_while_answering_selects() {
    let dir = TempDir::new("rate");
    let db = dir.path("portal.sqlite");
    generate(&db).await;
    let old_max = count(&db, "SELECT max(id) FROM terminal");
    let start = format_timestamp(
        i64::try_from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        )
        .unwrap(),
    );
    let (child, url) = spawn_serve(&["--db", db.to_str().unwrap(), "--mutate-rate", "100"]).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let session = login(&http, &url, "admin", "admin").await.unwrap();
    let began = std::time::Instant::now();
    let mut answers = 0;
    let mut seen_max = old_max;
    while began.elapsed() < Duration::from_millis(1200) {
        let (n, max) = count_and_max(&http, &url, &session).await;
        assert!(n > 500, "{n} rows");
        seen_max = seen_max.max(max);
        answers += 1;
    }
    assert!(seen_max > old_max, "the server saw new rows: max id {seen_max}, was {old_max}");
    stop(child).await;
    assert!(answers > 3, "{answers} selects answered");
    let changed =
        count(&db, &format!("SELECT count(*) FROM terminal WHERE last_seen >= '{start}'"));
    // ~1.2 s at 100/s: ~48 inserts and ~48 updates; allow a slow start.
    assert!(changed >= 20, "{changed} rows with last_seen >= {start}");
    let new_rows = count(&db, &format!("SELECT count(*) FROM terminal WHERE id > {old_max}"));
    assert!(new_rows >= 10, "{new_rows} inserted");
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM terminal WHERE id > {old_max} AND last_seen < '{start}'"
            )
        ),
        0,
        "every inserted row has its change column at the simulator's clock"
    );
}

#[tokio::test]
async fn change_columns_are_indexed() {
    let dir = TempDir::new("index");
    let db = dir.path("portal.sqlite");
    generate(&db).await;
    let conn = open_db(&db);
    for (table, column) in [("terminal", "last_seen"), ("terminal_playlog", "start")] {
        let indexed: Vec<String> = conn
            .prepare(&format!(
                "SELECT ii.name FROM pragma_index_list('{table}') AS il, pragma_index_info(il.name) AS ii"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexed, [column], "{table}");
        let plan: String = conn
            .query_row(
                &format!("EXPLAIN QUERY PLAN SELECT * FROM \"{table}\" WHERE \"{column}\" > '2024-01-01 00:00:00'"),
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("USING INDEX"), "{table}: {plan}");
    }
    drop(conn);

    // A database made before the indexes existed gets them when served.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP INDEX terminal_last_seen_idx")
        .unwrap();
    let sim = Sim::start(tiny().db_path(&db)).await.unwrap();
    let n = count(
        &db,
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'terminal_last_seen_idx'",
    );
    assert_eq!(n, 1);
    sim.shutdown().await;
}

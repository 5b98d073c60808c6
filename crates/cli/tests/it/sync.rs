//! `iptvportal sync` and `materialize` against a simulator whose data changes between runs:
//! after every run of a scripted history the materialized table is the portal's, exactly, and
//! each run records what it found.

use std::path::Path;
use std::time::Duration;

use iptvportal_sim::{Mutation, SimConfig};
use serde_json::Value;

use crate::{Portal, failure, run, success};

/// 2025-06-01 00:00:00 UTC, after every generated timestamp and long before now: an instant
/// of the portal's past at which the scripted changes happen.
const JUNE: i64 = 1_748_736_000;

fn portal() -> Portal {
    Portal::start(
        SimConfig::default()
            .seed(5)
            .rows("terminal", 3000)
            .rows("subscriber", 200)
            .rows("tv_program_category", 300),
    )
}

impl Portal {
    /// `iptvportal sync TABLE --out OUT --progress none` with `extra`.
    fn sync(&self, table: &str, out: &Path, extra: &[&str]) -> assert_cmd::Command {
        let mut cmd = self.cmd();
        cmd.args(["sync", table, "--progress", "none", "--chunk-size", "700", "--out"])
            .arg(out)
            .args(extra);
        cmd
    }

    /// Changes `table` in the simulator's database, its change column set to `at`.
    fn change(&self, table: &str, insert: u64, update: u64, delete: u64, seed: u64, at: i64) {
        iptvportal_sim::mutate(
            self.sim().db_path(),
            &[table],
            Mutation::new(insert, update, delete),
            seed,
            Some(at),
        )
        .unwrap();
    }
}

/// The last run of `table` in `out`, as `sync.json` records it.
fn last_run(out: &Path, table: &str) -> Value {
    let text = std::fs::read(out.join(table).join("sync.json")).unwrap();
    let record: Value = serde_json::from_slice(&text).unwrap();
    record["runs"].as_array().unwrap().last().unwrap().clone()
}

/// `(new, changed, deleted)` of a run.
fn counts(run: &Value) -> (u64, u64, u64) {
    let n = |k: &str| run[k].as_u64().unwrap();
    (n("new"), n("changed"), n("deleted"))
}

/// `materialize` of `table` to JSONL, read back as rows in catalog column order.
fn materialized(portal: &Portal, out: &Path, table: &str) -> Vec<Vec<Value>> {
    let file = out.join(format!("{table}.materialized.jsonl"));
    success(
        portal
            .cmd()
            .args(["materialize"])
            .arg(out)
            .arg(table)
            .arg("--out")
            .arg(&file)
            .args(["--format", "jsonl"]),
    );
    let columns: Vec<&str> = iptvportal_catalog::table(table).unwrap().column_names().collect();
    std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| {
            let object: Value = serde_json::from_str(line).unwrap();
            columns.iter().map(|c| object[*c].clone()).collect()
        })
        .collect()
}

/// Runs a sync of `terminal` and checks that the materialized table is the portal's.
fn sync_and_check(portal: &Portal, out: &Path, extra: &[&str]) -> Value {
    success(&mut portal.sync("terminal", out, extra));
    let run = last_run(out, "terminal");
    same_rows(&materialized(portal, out, "terminal"), &portal.db_rows("terminal", "1"), &run);
    run
}

/// Asserts two row lists are equal, naming the first difference rather than printing both.
fn same_rows(got: &[Vec<Value>], want: &[Vec<Value>], run: &Value) {
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    if let Some(at) = first {
        panic!("after run {}: row {at} is {:?}, the portal's {:?}", run["run"], got[at], want[at]);
    }
    assert_eq!(got.len(), want.len(), "after run {}: rows", run["run"]);
}

fn history(format: &[&str]) {
    let portal = portal();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();

    let snapshot = sync_and_check(&portal, out, format);
    assert_eq!(snapshot["kind"], "snapshot");
    assert_eq!(counts(&snapshot), (3000, 0, 0));

    portal.change("terminal", 120, 0, 0, 1, JUNE);
    assert_eq!(counts(&sync_and_check(&portal, out, format)), (120, 0, 0));

    portal.change("terminal", 0, 90, 0, 2, JUNE + 60);
    assert_eq!(counts(&sync_and_check(&portal, out, format)), (0, 90, 0));

    portal.change("terminal", 0, 0, 75, 3, JUNE + 120);
    assert_eq!(counts(&sync_and_check(&portal, out, format)), (0, 0, 75));

    portal.change("terminal", 40, 30, 20, 4, JUNE + 180);
    let all = sync_and_check(&portal, out, format);
    assert_eq!(counts(&all), (40, 30, 20));
    assert_eq!(all["window"]["cursor"]["upto"], "2025-06-01 00:03:00");

    // Nothing changed: nothing fetched, nothing deleted, the window stays where it ended.
    let idle = sync_and_check(&portal, out, format);
    assert_eq!(counts(&idle), (0, 0, 0));
    assert_eq!(idle["window"]["cursor"]["after"], "2025-06-01 00:03:00");
    assert_eq!(idle["rows"], 0);
    assert_eq!(idle["run"], 6);
}

#[test]
fn a_history_of_inserts_updates_and_deletes_materializes_to_the_portals_table() {
    history(&[]);
}

#[test]
fn a_history_in_gzipped_csv_parts_materializes_to_the_portals_table() {
    // Parts of 700 rows: the snapshot is five parts, each delta one.
    history(&["--format", "csv", "--compress", "--part-rows", "700"]);
}

#[test]
fn a_history_in_parquet_materializes_to_the_portals_table() {
    history(&["--format", "parquet"]);
}

#[test]
fn rows_sharing_the_boundary_value_are_fetched_once() {
    let portal = portal();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    sync_and_check(&portal, out, &[]);
    // Many rows get the very value the next window ends at.
    portal.change("terminal", 0, 200, 0, 11, JUNE);
    let run = sync_and_check(&portal, out, &[]);
    assert_eq!(run["window"]["cursor"]["upto"], "2025-06-01 00:00:00");
    assert_eq!(counts(&run), (0, 200, 0));
    // The next window starts after them: none is fetched again.
    let next = sync_and_check(&portal, out, &[]);
    assert_eq!(next["window"]["cursor"]["after"], "2025-06-01 00:00:00");
    assert_eq!(counts(&next), (0, 0, 0));
}

/// Now, in whole seconds since 1970-01-01 UTC.
fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

#[test]
fn a_row_committed_late_within_the_lag_is_caught_by_the_next_run() {
    let portal = portal();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    sync_and_check(&portal, out, &["--lag", "3s"]);
    // A live portal: a change just now. Its value is within the lag, so the run leaves it for
    // the next one (another row may still be committing with an older value).
    let t0 = now();
    portal.change("terminal", 0, 5, 0, 21, t0);
    success(&mut portal.sync("terminal", out, &["--lag", "3s"]));
    let live = last_run(out, "terminal");
    assert_eq!(counts(&live), (0, 0, 0), "{live}");
    // That row commits now, with a value older than the latest but within the lag.
    portal.change("terminal", 0, 7, 0, 22, t0 - 1);
    // Once the lag has passed, the next run takes both.
    std::thread::sleep(Duration::from_secs(4));
    let caught = sync_and_check(&portal, out, &["--lag", "3s"]);
    let since = iptvportal_catalog::time::format_timestamp(t0 - 1);
    let changed = portal.db_rows("terminal", &format!("last_seen >= '{since}'")).len();
    assert!(changed >= 7, "{changed}");
    assert_eq!(counts(&caught), (0, u64::try_from(changed).unwrap(), 0), "{caught}");
}

#[test]
fn a_table_without_an_id_column_is_copied_whole_each_run() {
    let portal = portal();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let table = "tv_program_category";
    let truth = || {
        let mut rows = iptvportal_testkit::sqlite_rows(
            portal.sim().db_path(),
            &format!("SELECT * FROM {table}"),
        );
        rows.sort_by_key(|r| r.iter().map(ToString::to_string).collect::<Vec<_>>());
        rows
    };
    let sorted = |mut rows: Vec<Vec<Value>>| {
        rows.sort_by_key(|r| r.iter().map(ToString::to_string).collect::<Vec<_>>());
        rows
    };
    let r = run(&mut portal.sync(table, out, &[]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("(no id column: every run is a full copy)"), "{}", r.stderr);
    assert_eq!(sorted(materialized(&portal, out, table)), truth());
    portal.change(table, 10, 10, 10, 31, JUNE);
    success(&mut portal.sync(table, out, &[]));
    let run = last_run(out, table);
    assert_eq!((run["kind"].as_str(), run["rows"].as_u64()), (Some("full"), Some(300)));
    assert_eq!(sorted(materialized(&portal, out, table)), truth());
}

#[test]
fn a_second_sync_of_a_locked_table_is_refused_touching_nothing() {
    let portal = portal();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    success(&mut portal.sync("terminal", out, &[]));
    let before = std::fs::read(out.join("terminal/sync.json")).unwrap();
    let held = std::fs::File::open(out.join(".terminal.lock")).unwrap();
    held.lock().unwrap();
    let line = failure(&mut portal.sync("terminal", out, &[]));
    assert!(line.contains("terminal in ") && line.contains("is being written by another run"));
    assert_eq!(std::fs::read(out.join("terminal/sync.json")).unwrap(), before);
    assert!(!out.join("terminal/run-00002").exists());
}

#[test]
fn runs_of_other_options_or_another_portal_are_refused() {
    let portal = portal();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    success(&mut portal.sync("terminal", out, &[]));
    let line = failure(&mut portal.sync("terminal", out, &["--format", "csv"]));
    assert!(line.contains("was started with other options (format: jsonl, now csv)"), "{line}");
    assert!(line.contains("--reset"), "{line}");
    let other = self::portal();
    let line = failure(&mut other.sync("terminal", out, &[]));
    assert!(line.contains("is of the portal"), "{line}");
    assert!(!line.contains("admin") && !line.contains(crate::PASSWORD), "{line}");
    // --reset starts over with a snapshot of the portal asked.
    success(&mut other.sync("terminal", out, &["--reset", "--format", "csv"]));
    let run = last_run(out, "terminal");
    assert_eq!((run["run"].as_u64(), run["kind"].as_str()), (Some(1), Some("snapshot")));
}

#[test]
fn a_change_column_that_cannot_be_read_is_refused_before_any_request() {
    let portal = portal();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let line = failure(&mut portal.sync("terminal", out, &["--cursor", "nosuch"]));
    assert!(line.contains("\"nosuch\" is not a column of terminal"), "{line}");
    let line = failure(&mut portal.sync("terminal", out, &["--cursor", "mac_addr"]));
    assert!(line.contains("is a text column, not a timestamp"), "{line}");
    let line = failure(&mut portal.sync("tv_program_category", out, &["--cursor", "category_id"]));
    assert!(line.contains("has no id column"), "{line}");
    let line = failure(&mut portal.sync("terminal", out, &["--columns", "mac_addr,last_seen"]));
    assert!(line.contains("leave out id, the id column a sync merges its runs by"), "{line}");
    let line = failure(&mut portal.sync("terminal", out, &["--exclude-columns", "terminal.id"]));
    assert!(line.contains("leave out id"), "{line}");
    let line = failure(&mut portal.sync("terminal", out, &["--order-by", "id"]));
    assert!(line.contains("sync does not take --order-by"), "{line}");
    assert!(!out.join("terminal").exists());
}

#[test]
fn materialize_without_a_sync_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let line = failure(
        crate::bare()
            .arg("materialize")
            .arg(dir.path())
            .arg("terminal")
            .arg("--out")
            .arg(dir.path().join("t.jsonl")),
    );
    assert!(line.contains("holds no complete sync run"), "{line}");
}

#[test]
fn status_lists_the_runs_and_verify_checks_every_runs_files() {
    let portal = portal();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    sync_and_check(&portal, out, &[]);
    portal.change("terminal", 10, 20, 30, 41, JUNE);
    sync_and_check(&portal, out, &[]);

    let status = success(crate::bare().args(["status", "--out"]).arg(out));
    let lines: Vec<&str> = status.lines().collect();
    assert!(lines[1].starts_with("terminal  complete  2980 "), "{status}");
    assert!(lines[1].contains(" sync "), "{status}");
    let runs: Vec<Vec<&str>> =
        lines[3..].iter().map(|l| l.split_whitespace().collect::<Vec<_>>()).collect();
    assert_eq!(runs[0][..4], ["table", "run", "kind", "state"], "{status}");
    assert_eq!(runs[1][..4], ["terminal", "1", "snapshot", "complete"], "{status}");
    assert_eq!(runs[2][..4], ["terminal", "2", "delta", "complete"], "{status}");
    // rows, new, changed, deleted, held
    assert_eq!(runs[2][runs[2].len() - 5..], ["30", "10", "20", "30", "2980"], "{status}");
    let json: Value = serde_json::from_str(&success(
        crate::bare().args(["status", "--format", "json", "--out"]).arg(out),
    ))
    .unwrap();
    assert_eq!(json[0]["strategy"], "sync");
    assert_eq!(json[0]["runs"][1]["deleted"], 30);

    let verified = success(crate::bare().arg("verify").arg(out));
    assert_eq!(
        verified,
        "terminal/run-00001: ok, 3000 rows in 1 file\n\
         terminal/run-00002: ok, 30 rows in 1 file\n\
         verified 2 sync runs: 2 ok\n"
    );
    // A deletes file changed after the run, and a run directory no record lists.
    let deletes = out.join("terminal/run-00002/deleted.jsonl");
    let mut text = std::fs::read(&deletes).unwrap();
    text[2] ^= 1;
    std::fs::write(&deletes, text).unwrap();
    std::fs::create_dir(out.join("terminal/run-00007")).unwrap();
    let r = run(crate::bare().arg("verify").arg(out));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("run-00002/deleted.jsonl: its contents changed"), "{}", r.stdout);
    assert!(r.stdout.contains("run-00007: "), "{}", r.stdout);
    // materialize refuses the changed deletes rather than apply them.
    let line = failure(
        crate::bare()
            .arg("materialize")
            .arg(out)
            .arg("terminal")
            .arg("--out")
            .arg(out.join("t.jsonl")),
    );
    assert!(line.contains("deleted.jsonl") && line.contains("verify"), "{line}");
}

//! `iptvportal plan`: what `dump` would do, against the simulator: the strategy `auto` resolves
//! to, the rows and ids the portal holds, the requests the dump then really sends, where a rerun
//! resumes (after a dump stopped halfway, a finished one, one with other options), the JSON keys,
//! the errors of `dump` word for word, and that nothing is written.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use iptvportal_checkpoint::{CheckpointStore, FileStore};
use iptvportal_client::{Client, ClientConfig};
use iptvportal_dump::{DumpConfig, DumpProgress, DumpService, Error};
use iptvportal_sim::SimConfig;
use serde_json::Value;

use crate::dumping::snapshot;
use crate::{PASSWORD, Portal, run, success};

/// `plan` of `args` into `out`, printed as JSON.
fn plan_json(portal: &Portal, out: &Path, args: &[&str]) -> Value {
    let stdout = success(
        portal.cmd().arg("plan").arg("--out").arg(out).args(args).args(["--plan-format", "json"]),
    );
    serde_json::from_str(&stdout).unwrap()
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn every_table_gets_the_dumps_strategy_and_the_portals_rows_and_nothing_is_written() {
    let portal = Portal::every_table(40, 3);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("never");
    let plan = plan_json(&portal, &out, &["--all", "--chunk-size", "7"]);
    assert!(!out.exists(), "plan created {out:?}");
    assert_eq!(keys(&plan), ["tables", "total"]);
    let tables = plan["tables"].as_array().unwrap();
    assert_eq!(tables.len(), iptvportal_catalog::TABLES.len());
    let mut total_rows = 0;
    for (table, planned) in iptvportal_catalog::TABLES.iter().zip(tables) {
        let name = table.name;
        let (rows, ids) = portal.truth(table);
        total_rows += rows;
        assert_eq!(
            keys(planned),
            [
                "bytes", "ids", "probe", "requests", "resume", "rows", "seconds", "strategy",
                "table", "to_fetch"
            ],
            "{planned}"
        );
        assert_eq!(planned["table"], name);
        // `auto`: id-range where the catalog knows an id column, offset elsewhere.
        let strategy = if table.id_column.is_some() { "id-range" } else { "offset" };
        assert_eq!(planned["strategy"], strategy, "{name}");
        assert_eq!(planned["rows"], rows, "{name}");
        assert_eq!(planned["to_fetch"], rows, "{name}");
        let want_ids = ids.map(|(min, max)| serde_json::json!({"min": min, "max": max}));
        assert_eq!(planned["ids"], want_ids.unwrap_or(Value::Null), "{name}");
        assert_eq!(planned["resume"], serde_json::json!({"state": "fresh"}), "{name}");
        if strategy == "offset" {
            assert_eq!(planned["requests"], rows.div_ceil(7), "{name}: 40 rows in pages of 7");
        }
        let probe = &planned["probe"];
        assert_eq!(
            keys(probe),
            [
                "at_once_seconds",
                "bytes",
                "empty_bytes",
                "fetch_seconds",
                "last_page_fetch_seconds",
                "pages_at_once",
                "rows",
                "write_seconds"
            ],
            "{probe}"
        );
        assert_eq!(probe["rows"], 7, "{name}: one chunk");
        // OFFSET probes its deepest page too; parallel id-range, three pages at once.
        assert_eq!(probe["last_page_fetch_seconds"].is_f64(), strategy == "offset", "{name}");
        assert_eq!(probe["pages_at_once"].as_u64(), (strategy == "id-range").then_some(3));
        assert!(planned["bytes"].as_u64().unwrap() > probe["bytes"].as_u64().unwrap(), "{name}");
        assert!(planned["seconds"].as_f64().unwrap() > 0.0, "{name}");
    }
    let total = &plan["total"];
    assert_eq!(keys(total), ["bytes", "jobs", "planned", "requests", "rows", "seconds", "tables"]);
    assert_eq!(total["rows"], total_rows);
    assert_eq!((total["tables"].as_u64(), total["planned"].as_u64()), (Some(10), Some(10)));
    assert_eq!(total["jobs"], 2);

    // The text form: the same numbers, aligned, and a total line that names --jobs.
    let text =
        success(portal.cmd().arg("plan").arg("--out").arg(&out).args(["--all", "--jobs", "3"]));
    assert!(!out.exists(), "plan created {out:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["table", "strategy", "rows", "ids", "requests", "size", "time", "resume"]
    );
    assert_eq!(lines.len(), 12, "{text}");
    for (table, line) in iptvportal_catalog::TABLES.iter().zip(&lines[1..]) {
        let (rows, _) = portal.truth(table);
        let cells: Vec<&str> = line.split_whitespace().collect();
        let strategy = if table.id_column.is_some() { "id-range" } else { "offset" };
        assert_eq!((cells[0], cells[1], cells[2]), (table.name, strategy, &*rows.to_string()));
        assert!(line.ends_with("  fresh"), "{line}");
    }
    assert!(
        lines[11].starts_with(&format!("10 tables, {total_rows} rows, "))
            && lines[11].contains(" with --jobs 3 (3 at once)"),
        "{}",
        lines[11]
    );
}

#[test]
fn the_requests_planned_are_the_requests_the_dump_sends() {
    let portal = Portal::start(SimConfig::default().seed(5).rows("terminal", 95));
    let root = tempfile::tempdir().unwrap();
    for (i, args) in [
        &["--chunk-size", "10", "--strategy", "offset"][..],
        &["--chunk-size", "10", "--strategy", "id-range", "--parallel", "1"],
        &["--chunk-size", "10", "--strategy", "id-range", "--parallel", "3"],
        // 95 rows in chunks of 19: the last page is full, and an empty one ends the walk.
        &["--chunk-size", "19", "--strategy", "offset"],
        &["--chunk-size", "19", "--strategy", "id-range", "--parallel", "1"],
    ]
    .into_iter()
    .enumerate()
    {
        let out = root.path().join(format!("out{i}"));
        let args: Vec<&str> = std::iter::once("terminal").chain(args.iter().copied()).collect();
        let plan = plan_json(&portal, &out, &args);
        let planned = &plan["tables"][0];
        let before = portal.sim().stats().select_calls;
        let r = run(portal.dump(&out).args(&args));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let sent = portal.sim().stats().select_calls - before;
        // The dump counts first, then sends what the plan said.
        assert_eq!(planned["requests"].as_u64().unwrap() + 1, sent, "{args:?}: {planned}");
        let state = std::fs::read_to_string(out.join(".terminal.state.json")).unwrap();
        let state: Value = serde_json::from_str(&state).unwrap();
        assert_eq!(planned["rows"], state["dumped_rows"], "{args:?}");
        // The size of the output, from one encoded chunk, within a few percent.
        let bytes = std::fs::metadata(out.join("terminal.jsonl")).unwrap().len() as f64;
        let planned_bytes = planned["bytes"].as_f64().unwrap();
        assert!((planned_bytes / bytes - 1.0).abs() < 0.1, "{args:?}: {planned_bytes} vs {bytes}");
    }
}

/// Dumps `terminal` from `portal` into `out` in the library, cancelled once `rows` rows are
/// committed: a checkpoint halfway, as a killed run leaves it.
fn partial_dump(portal: &Portal, out: &Path, rows: u64) -> u64 {
    let client =
        Client::new(ClientConfig::new(portal.url()).unwrap().credentials("admin", PASSWORD))
            .unwrap();
    let service = DumpService::new(client);
    let cancel = service.clone();
    let callback = Arc::new(move |p: &DumpProgress| {
        if p.dumped_rows >= rows {
            cancel.cancel_all();
        }
    });
    let config = DumpConfig::new("terminal", out).chunk_size(50);
    match portal.runtime.block_on(service.dump(config, Some(callback))) {
        Err(Error::Cancelled { rows, .. }) => rows,
        other => panic!("expected a cancelled dump, got {other:?}"),
    }
}

#[test]
fn the_resume_line_says_where_a_rerun_continues() {
    let portal = Portal::start(
        SimConfig::default()
            .seed(5)
            .rows("terminal", 1000)
            .latency(std::time::Duration::from_millis(5)),
    );
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("dumps");
    let done = partial_dump(&portal, &out, 100);
    assert!((100..1000).contains(&done), "{done}");
    let state = portal.runtime.block_on(FileStore::new(&out).load("terminal")).unwrap().unwrap();
    assert_eq!(state.dumped_rows, done);
    let after = match state.cursor {
        iptvportal_dump::Cursor::Id { after: Some(after) } => after,
        other => panic!("{other:?}"),
    };
    let before = snapshot(&out);

    let args = ["terminal", "--chunk-size", "50"];
    let plan = plan_json(&portal, &out, &args);
    let planned = &plan["tables"][0];
    assert_eq!(
        planned["resume"],
        serde_json::json!({"state": "resume", "rows": done, "after_id": after})
    );
    assert_eq!(planned["rows"], 1000);
    assert_eq!(planned["to_fetch"], 1000 - done);
    let text = success(portal.cmd().arg("plan").arg("--out").arg(&out).args(args));
    let line = text.lines().nth(1).unwrap();
    assert!(line.ends_with(&format!("  resume at row {done}, after id {after}")), "{line}");
    // Read, not locked, saved or cut back: the directory is as the stopped dump left it.
    assert_eq!(snapshot(&out), before);

    // Other options than the checkpoint's: the dump would refuse it, and the plan says why.
    let text = success(
        portal.cmd().arg("plan").arg("--out").arg(&out).args(args).args(["--format", "csv"]),
    );
    let line = text.lines().nth(1).unwrap();
    assert!(
        line.ends_with(
            "  refused: config differs from checkpoint (format was jsonl and is now csv)"
        ),
        "{line}"
    );
    // `--reset` and `--no-resume` start over.
    for flag in ["--reset", "--no-resume"] {
        let plan = plan_json(&portal, &out, &[&args[..], &[flag]].concat());
        assert_eq!(plan["tables"][0]["resume"], serde_json::json!({"state": "fresh"}), "{flag}");
        assert_eq!(plan["tables"][0]["to_fetch"], 1000, "{flag}");
    }
    assert_eq!(snapshot(&out), before);

    // Finished by the CLI: already complete, nothing to fetch.
    let r = run(portal.dump(&out).args(args));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = snapshot(&out);
    let plan = plan_json(&portal, &out, &args);
    let planned = &plan["tables"][0];
    assert_eq!(planned["resume"], serde_json::json!({"state": "complete", "rows": 1000}));
    assert_eq!((planned["to_fetch"].as_u64(), planned["requests"].as_u64()), (Some(0), Some(0)));
    let bytes = std::fs::metadata(out.join("terminal.jsonl")).unwrap().len();
    assert_eq!(planned["bytes"], bytes);
    assert_eq!(planned["probe"], Value::Null);
    assert_eq!(snapshot(&out), before);
}

#[test]
fn a_table_the_portal_refuses_is_marked_with_the_dumps_line_and_the_others_still_planned() {
    let portal = Portal::every_table(40, 3);
    let db = rusqlite::Connection::open(portal.sim().db_path()).unwrap();
    db.execute_batch("DROP TABLE \"media\"").unwrap();
    drop(db);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("dumps");
    let dumped = run(portal.dump(&out).arg("media"));
    let dump_line = dumped.stderr.lines().find(|l| l.starts_with("error: ")).unwrap().to_owned();

    let out = root.path().join("plan");
    let r = run(portal.cmd().arg("plan").arg("--out").arg(&out).arg("--all"));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stderr.trim_end(), dump_line, "the same one line as dump");
    let media = r.stdout.lines().find(|l| l.starts_with("media ")).unwrap();
    assert!(media.ends_with(&dump_line), "{media}");
    assert!(r.stdout.lines().last().unwrap().ends_with(", 1 not planned"), "{}", r.stdout);
    assert_eq!(r.stdout.lines().filter(|l| l.ends_with("  fresh")).count(), 9, "{}", r.stdout);
    assert!(!out.exists());

    let r = run(portal.cmd().arg("plan").arg("--out").arg(&out).args([
        "--all",
        "--plan-format",
        "json",
    ]));
    assert_eq!(r.code, 1);
    let plan: Value = serde_json::from_str(&r.stdout).unwrap();
    let media = plan["tables"].as_array().unwrap().iter().find(|t| t["table"] == "media").unwrap();
    assert_eq!(keys(media), ["error", "table"]);
    assert_eq!(media["error"], dump_line);
    assert_eq!(plan["total"]["planned"], 9);
}

#[test]
fn options_are_refused_as_dump_refuses_them() {
    let portal = Portal::every_table(40, 3);
    let root = tempfile::tempdir().unwrap();
    for args in [
        &["terminal", "--chunk-size", "0"][..],
        &["terminal", "--all"],
        &[],
        &["terminal", "--format", "xml"],
        &["--all", "--exclude", "no_such_table"],
        &["subscriber", "--exclude-columns", "password"],
        &["terminal", "--where", "registered=true"],
        &["subscriber_package", "--strategy", "id-range"],
        &["terminal", "--format", "parquet", "--compress"],
        &["terminal", "--columns", "id,no_such_column"],
        &["bad-name"],
    ] {
        let out = root.path().join("never");
        let dumped = run(portal.dump(&out).args(args));
        let planned = run(portal.cmd().arg("plan").arg("--out").arg(&out).args(args));
        assert_ne!(dumped.code, 0, "{args:?}");
        assert_eq!(planned.code, dumped.code, "{args:?}: {}", planned.stderr);
        let first = |s: &str| s.lines().next().unwrap_or_default().to_owned();
        assert_eq!(first(&planned.stderr), first(&dumped.stderr), "{args:?}");
        assert!(!out.exists(), "{args:?} created {out:?}");
    }
}

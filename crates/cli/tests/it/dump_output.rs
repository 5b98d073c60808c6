//! What `iptvportal dump` writes and says: rows equal to the portal's, refusals to mix options,
//! no-op reruns, `--reset`, several tables at once, `--all`, and the JSON progress lines.

use serde_json::Value;

use crate::dumping::{Output, jsonl_rows, output, portal, snapshot};
use crate::{Portal, run};

/// The JSON array format as rows of values, in column order.
fn json_rows(text: &[u8]) -> Vec<Vec<Value>> {
    let rows: Vec<iptvportal_testkit::Ordered> = serde_json::from_slice(text).unwrap();
    rows.into_iter().map(iptvportal_testkit::Ordered::into_values).collect()
}

fn text(output: Output) -> Vec<u8> {
    match output {
        Output::Text(bytes) => bytes,
        Output::Parquet { .. } => unreachable!("a text format"),
    }
}

#[test]
fn rows_equal_the_portals_for_every_strategy_with_and_without_a_filter() {
    let portal = portal(1500, 0);
    let root = tempfile::tempdir().unwrap();
    let filters: [(&[&str], &str); 2] = [
        (&[], "1"),
        (
            &["--where", "subscriber_id__isnull=false", "--where", "id__gte=300"],
            "subscriber_id IS NOT NULL AND id >= 300",
        ),
    ];
    for (i, (where_args, condition)) in filters.iter().enumerate() {
        let want = portal.db_rows("terminal", condition);
        assert!(want.len() > 500, "{condition}: {} rows", want.len());
        for (name, strategy, format, gzip) in [
            ("offset", &["--strategy", "offset"][..], "jsonl", false),
            ("id-range", &["--strategy", "id-range", "--parallel", "1"], "json", false),
            ("parallel", &["--strategy", "id-range", "--parallel", "3"], "jsonl", true),
        ] {
            let dir = root.path().join(format!("{name}-{i}"));
            let mut cmd = portal.dump(&dir);
            cmd.args(["terminal", "--chunk-size", "97", "--format", format]).args(strategy);
            cmd.args(*where_args);
            if gzip {
                cmd.arg("--compress");
            }
            let r = run(&mut cmd);
            assert_eq!(r.code, 0, "{name}: {}", r.stderr);
            let bytes = text(output(&dir, "terminal", format, gzip));
            let got = if format == "json" { json_rows(&bytes) } else { jsonl_rows(&bytes) };
            assert!(got == want, "{name} {condition}: {} rows, expected {}", got.len(), want.len());
        }
    }
}

/// A finished `terminal` dump in jsonl with a filter and columns, and the command that made it.
fn finished_dump(portal: &Portal, dir: &std::path::Path) -> Vec<&'static str> {
    let args = vec![
        "terminal",
        "--chunk-size",
        "100",
        "--where",
        "id__gte=10",
        "--columns",
        "id,mac_addr,last_seen",
    ];
    let r = run(portal.dump(dir).args(&args));
    assert_eq!(r.code, 0, "{}", r.stderr);
    args
}

#[test]
fn changed_options_are_refused_and_touch_nothing() {
    let portal = portal(600, 0);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("out");
    let args = finished_dump(&portal, &dir);
    let before = snapshot(&dir);
    assert!(before.contains_key(".terminal.state.json") && before.contains_key("terminal.jsonl"));

    for (change, difference) in [
        (&["--where", "id__gte=11"][..], "filter was"),
        (&["--columns", "id,mac_addr"], "columns was id,mac_addr,last_seen and is now id,mac_addr"),
        (&["--format", "csv"], "format was jsonl and is now csv"),
        (&["--compress"], "compression was"),
    ] {
        // The changed option replaces the original one (clap keeps the last of a single-valued
        // option; `--where` and `--columns` accumulate, so those are rebuilt here).
        let mut changed: Vec<&str> = args.clone();
        if change[0] == "--where" || change[0] == "--columns" {
            let at = changed.iter().position(|a| *a == change[0]).unwrap();
            changed[at + 1] = change[1];
        } else {
            changed.extend_from_slice(change);
        }
        let r = run(portal.dump(&dir).args(&changed));
        assert_eq!(r.code, 1, "{change:?}: {}", r.stderr);
        let line = r.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.starts_with("error: terminal: the checkpoint in "), "{line}");
        assert!(line.contains(difference) && line.contains("--reset"), "{change:?}: {line}");
        assert_eq!(snapshot(&dir), before, "{change:?} touched the output");
    }

    // The same command again: nothing to do, and not one select sent.
    let selects = portal.sim().stats().select_calls;
    let mut cmd = portal.dump(&dir);
    cmd.args(&args).args(["--progress", "plain"]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("already complete"), "{}", r.stderr);
    assert_eq!(portal.sim().stats().select_calls, selects);
    assert_eq!(snapshot(&dir), before);

    // --reset starts over, with another format too, and cleans up the old one.
    let r = run(portal.dump(&dir).args(&args).args(["--reset", "--format", "csv"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files: Vec<String> = snapshot(&dir).into_keys().collect();
    // The lock file stays: it is the table's, not the old format's (docs/dump.md).
    assert_eq!(files, [".terminal.lock", ".terminal.state.json", "terminal.csv"]);
    // And back: the same bytes as the first dump.
    let r = run(portal.dump(&dir).args(&args).arg("--reset"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after = snapshot(&dir);
    assert_eq!(after["terminal.jsonl"], before["terminal.jsonl"]);
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    let selects = portal.sim().stats().select_calls;
    let r = run(portal.dump(&dir).args(&args).args(["--reset", "--no-resume"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(portal.sim().stats().select_calls > selects, "--reset dumps again");
    assert_eq!(snapshot(&dir)["terminal.jsonl"], before["terminal.jsonl"]);
}

#[test]
fn several_tables_complete_around_an_unknown_one() {
    let portal = portal(400, 0);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("out");
    let r = run(portal.dump(&dir).args([
        "terminal",
        "no_such_table",
        "package",
        "tv_channel",
        "--jobs",
        "2",
        "--progress",
        "plain",
    ]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(
        errors[0].starts_with("error: no_such_table: ")
            && errors[0].contains("unknown table")
            && errors[0].contains("; "),
        "{}",
        errors[0]
    );
    for table in ["terminal", "package", "tv_channel"] {
        let rows = jsonl_rows(&std::fs::read(dir.join(format!("{table}.jsonl"))).unwrap());
        assert_eq!(rows.len(), portal.db_rows(table, "1").len(), "{table}");
        assert!(
            r.stderr.lines().any(|l| l.starts_with(table) && l.contains(" 1 ")),
            "{}",
            r.stderr
        );
    }
    assert!(!dir.join(".no_such_table.state.json").exists());
    assert!(!dir.join("no_such_table.jsonl").exists());
}

#[test]
fn all_dumps_every_catalog_table() {
    let mut config = iptvportal_sim::SimConfig::default().seed(3);
    for table in iptvportal_catalog::TABLES {
        config = config.rows(table.name, 30);
    }
    let portal = Portal::start(config);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("all");
    let r = run(portal.dump(&dir).args(["--all", "--jobs", "3", "--chunk-size", "7"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for table in iptvportal_catalog::TABLES {
        let rows = jsonl_rows(&std::fs::read(dir.join(format!("{}.jsonl", table.name))).unwrap());
        assert_eq!(rows.len(), 30, "{}", table.name);
        assert!(dir.join(format!(".{}.state.json", table.name)).exists());
    }
}

#[test]
fn json_progress_lines_parse_and_carry_the_documented_keys() {
    let portal = portal(500, 0);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("out");
    let r = run(portal.dump(&dir).args([
        "terminal",
        "package",
        "--chunk-size",
        "100",
        "--progress",
        "json",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ordered: Vec<iptvportal_testkit::Ordered> =
        r.stdout.lines().map(iptvportal_testkit::Ordered::parse).collect();
    let keys = [
        "table",
        "state",
        "dumped_rows",
        "total_rows",
        "percent",
        "rows_per_second",
        "eta_seconds",
        "chunk",
    ];
    // With several tables, each table's line is followed by the run's (`"event": "overall"`);
    // the last line is the summary (`"event": "summary"`, tests/it/summary.rs).
    let overall = [
        "event",
        "state",
        "dumped_rows",
        "total_rows",
        "percent",
        "rows_per_second",
        "eta_seconds",
        "tables",
        "waiting",
        "running",
        "paused",
        "done",
        "failed",
        "cancelled",
    ];
    let (mut tables, mut runs) = (0, 0);
    for (line, value) in ordered.iter().zip(&lines) {
        match value["event"].as_str() {
            None => {
                assert_eq!(line.keys(), keys, "{line:?}");
                tables += 1;
            }
            Some("overall") => {
                assert_eq!(line.keys(), overall, "{line:?}");
                runs += 1;
            }
            Some(event) => assert_eq!(event, "summary", "{line:?}"),
        }
    }
    assert_eq!(tables, runs, "one overall line after each table's");
    assert_eq!(lines.last().unwrap()["event"], "summary");
    let terminal: Vec<&Value> = lines.iter().filter(|l| l["table"] == "terminal").collect();
    // Starting, running, one line per chunk of 100 rows, done.
    assert!(terminal.len() >= 5 + 2, "{}", r.stdout);
    let last = terminal.last().unwrap();
    assert_eq!(last["state"], "done");
    assert_eq!(last["dumped_rows"], last["total_rows"]);
    assert_eq!(last["percent"], 100.0);
    assert_eq!(last["chunk"], 5);
    assert!(lines.iter().any(|l| l["table"] == "package" && l["state"] == "done"));
    // The human summary stays on stderr, out of the JSON stream.
    assert!(r.stderr.starts_with("table "), "{}", r.stderr);
}

//! `--strategy auto`, the default: `--all` dumps every catalog table, by id range where the table
//! has an id column and by offset where it has none, and the summary says which.

use crate::{Portal, run};

/// The summary table of a run's stderr, with the time and rate cells (which vary) replaced.
fn summary(stderr: &str) -> String {
    let lines = stderr.lines().skip_while(|l| !l.starts_with("table "));
    lines
        .map(|l| {
            let mut cells: Vec<&str> = l.split_whitespace().collect();
            // table, status (`already complete` is two words), rows, files, size (two: `1.5
            // KiB`), time, rows/s, strategy, output.
            let time = if cells.get(1) == Some(&"already") { 7 } else { 6 };
            if cells.len() > time + 1 && cells[0] != "table" {
                cells[time] = "<time>";
                cells[time + 1] = "<rate>";
            }
            cells.join(" ") + "\n"
        })
        .collect()
}

#[test]
fn all_with_the_default_strategy_dumps_every_table() {
    let portal = Portal::every_table(30, 3);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("all");
    let r = run(portal.dump(&out).args(["--all", "--chunk-size", "10", "--progress", "plain"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = summary(&r.stderr);
    expect_test::expect![[r"
        table status rows files size time rows/s strategy output
        subscriber done 30 1 11.7 KiB <time> <rate> id-range subscriber.jsonl
        terminal done 30 1 4.5 KiB <time> <rate> id-range terminal.jsonl
        package done 30 1 2.3 KiB <time> <rate> id-range package.jsonl
        subscriber_package done 30 1 1.5 KiB <time> <rate> offset subscriber_package.jsonl
        media done 30 1 4.2 KiB <time> <rate> id-range media.jsonl
        tv_channel done 30 1 4.2 KiB <time> <rate> id-range tv_channel.jsonl
        tv_program done 30 1 4.1 KiB <time> <rate> id-range tv_program.jsonl
        tv_category done 30 1 1.5 KiB <time> <rate> id-range tv_category.jsonl
        tv_program_category done 30 1 1.0 KiB <time> <rate> offset tv_program_category.jsonl
        terminal_playlog done 30 1 3.4 KiB <time> <rate> id-range terminal_playlog.jsonl
    "]]
    .assert_eq(&first);
    assert!(!r.stderr.contains("hint:") && !r.stderr.contains("error:"), "{}", r.stderr);

    // Every table is complete: a rerun has nothing to do, and says so, with the same strategies.
    let r = run(portal.dump(&out).args(["--all", "--chunk-size", "10", "--progress", "plain"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let again = summary(&r.stderr);
    assert_eq!(again.lines().count(), 1 + iptvportal_catalog::TABLES.len(), "{again}");
    assert!(again.lines().skip(1).all(|l| l.contains(" already complete ")), "{again}");
    // The strategy is the cell before the output, the last.
    let strategies = |text: &str| -> Vec<String> {
        text.lines().skip(1).map(|l| l.split(' ').rev().nth(1).unwrap().to_owned()).collect()
    };
    assert_eq!(strategies(&again), strategies(&first));
    assert_eq!(strategies(&first).iter().filter(|s| *s == "offset").count(), 2);
}

#[test]
fn all_with_id_range_asked_for_by_name_fails_the_tables_without_an_id_only() {
    let portal = Portal::every_table(30, 3);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("keyset");
    let r = run(portal.dump(&out).args(["--all", "--strategy", "id-range"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    expect_test::expect![[r"
        error: subscriber_package: subscriber_package has no id column, so it cannot be walked by id range; drop --strategy id-range: the default, auto, walks such a table by offset
        error: tv_program_category: tv_program_category has no id column, so it cannot be walked by id range; drop --strategy id-range: the default, auto, walks such a table by offset
    "]].assert_eq(&r.stderr);
    for table in iptvportal_catalog::TABLES {
        let written = out.join(format!("{}.jsonl", table.name)).exists();
        assert_eq!(written, table.id_column.is_some(), "{}", table.name);
    }
    // The same command with the default strategy completes them, and the rest stays complete.
    let r = run(portal.dump(&out).args(["--all", "--progress", "plain"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for line in summary(&r.stderr).lines().skip(1) {
        let table = line.split(' ').next().unwrap();
        let has_id = iptvportal_catalog::table(table).unwrap().id_column.is_some();
        let status = if has_id { "already complete" } else { "done" };
        assert!(line.starts_with(&format!("{table} {status} ")), "{line}");
        assert_eq!(line.contains(" id-range "), has_id, "{line}");
    }
}

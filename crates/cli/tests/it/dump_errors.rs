//! Bad `dump` configurations: each one fails with its exit code and one readable line, before any
//! file is touched (a missing output directory is not created, an existing one is left as it was,
//! even with `--reset`).

use crate::dumping::{portal, snapshot};
use crate::{bare, failure, run};

#[test]
fn bad_configurations_fail_before_touching_any_file() {
    let portal = portal(300, 0);
    let root = tempfile::tempdir().unwrap();
    let existing = root.path().join("existing");
    let r = run(portal.dump(&existing).args(["terminal", "--chunk-size", "100"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = snapshot(&existing);

    // (arguments, exit code, what the message says)
    let cases: [(&[&str], i32, &str); 9] = [
        (
            &["terminal", "--chunk-size", "0"],
            2,
            "invalid value '0' for '--chunk-size <N>': must be at least 1",
        ),
        (
            &["terminal", "--parallel", "0"],
            2,
            "invalid value '0' for '--parallel <N>': must be at least 1",
        ),
        (&["terminal", "--format", "xml"], 2, "invalid value 'xml' for '--format <FORMAT>'"),
        (&[], 2, "the following required arguments were not provided"),
        (&["terminal", "--all"], 2, "cannot be used with"),
        (
            &["no_such_table"],
            1,
            "error: no_such_table: counting rows of no_such_table: the portal refused the request: unknown table \"no_such_table\"",
        ),
        (
            &["terminal", "--columns", "id,no_such_column"],
            1,
            "error: terminal: unknown column no_such_column (columns of terminal: id, subscriber_id, mac_addr, inet_addr, registered, last_seen); see `iptvportal dump --help`",
        ),
        (
            &["terminal", "--format", "parquet", "--compress"],
            1,
            "error: terminal: --compress applies to jsonl, csv and json; parquet files are always compressed (zstd)",
        ),
        (
            &["terminal", "--where", "id__sideways=1"],
            1,
            "error: unknown lookup \"sideways\" in \"id__sideways\"",
        ),
    ];
    for (args, code, message) in cases {
        for reset in [false, true] {
            let missing = root.path().join("missing");
            for dir in [&missing, &existing] {
                let mut cmd = portal.dump(dir);
                cmd.args(args);
                if reset {
                    cmd.arg("--reset");
                }
                if code == 1 {
                    let line = failure(&mut cmd);
                    assert!(line.starts_with(message), "{args:?}: {line}");
                } else {
                    let r = run(&mut cmd);
                    assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
                    assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
                    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
                }
                assert!(!missing.exists(), "{args:?} created the output directory");
                assert_eq!(
                    snapshot(&existing),
                    before,
                    "{args:?} (reset {reset}) touched the output"
                );
            }
        }
    }
}

#[test]
fn an_unwritable_output_directory_is_one_line() {
    let portal = portal(100, 0);
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    let out = file.join("dumps");
    let line = failure(portal.dump(&out).arg("terminal"));
    assert!(
        line.starts_with(&format!(
            "error: terminal: cannot write to the output directory {}: ",
            out.display()
        )) && line.ends_with("; choose another --out or fix its permissions"),
        "{line}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn bad_filters_fail_without_a_portal() {
    // No portal and no credentials: the filter is checked first.
    let line = failure(bare().args(["dump", "terminal", "--where-json", "{not json"]));
    assert!(line.starts_with("error: invalid filter"), "{line}");
    let line = failure(bare().args(["dump", "terminal"]));
    assert!(line.contains("--portal"), "{line}");
}

#[test]
fn a_second_dump_of_a_table_being_written_is_refused_and_status_shows_the_writer() {
    let portal = portal(3000, 4);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let mut first = portal
        .dump_process(&out)
        .args(["terminal", "--chunk-size", "40"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Its first commit: the table is locked by then.
    let state = out.join(".terminal.state.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !state.exists() {
        assert!(std::time::Instant::now() < deadline, "the first dump never committed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let line = failure(portal.dump(&out).args(["terminal", "--chunk-size", "40"]));
    let status = crate::success(bare().arg("status").arg("--out").arg(&out));
    let json = crate::success(bare().args(["status", "--format", "json"]).arg("--out").arg(&out));
    let finished = first.wait().unwrap();
    assert!(finished.success(), "the first dump is not disturbed");
    assert_eq!(
        line,
        format!(
            "error: terminal in {} is being written by another run (pid {}); wait for that run to finish or stop it; other tables in the same directory can be dumped at the same time",
            out.display(),
            first.id()
        )
    );
    assert!(
        status.lines().any(|l| l.starts_with("terminal") && l.contains(" writing ")),
        "{status}"
    );
    let entries: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(entries[0]["state"], "writing", "{json}");
    assert_eq!(entries[0]["writer_pid"], first.id(), "{json}");
    // The output is a whole, clean dump: the refused run added nothing.
    let alone = root.path().join("alone");
    let r = run(portal.dump(&alone).args(["terminal", "--chunk-size", "40"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read(out.join("terminal.jsonl")).unwrap(),
        std::fs::read(alone.join("terminal.jsonl")).unwrap()
    );
    // Done, the table is free: status says complete, a rerun is a no-op.
    let status = crate::success(bare().arg("status").arg("--out").arg(&out));
    assert!(
        status.lines().any(|l| l.starts_with("terminal") && l.contains(" complete ")),
        "{status}"
    );
}

#[test]
fn an_error_line_echoes_only_the_start_of_long_input() {
    let root = tempfile::tempdir().unwrap();
    let long = "x".repeat(3000);
    let columns = format!("id,{long}");
    let r = run(bare()
        .args(["dump", "--demo", "--demo-rows", "terminal=10", "terminal", "--columns"])
        .arg(&columns)
        .arg("--out")
        .arg(root.path().join("out")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    // The demo's notice, then the one error line.
    let line = r.stderr.lines().last().unwrap();
    assert!(line.len() < 400, "{} characters: {line}", line.len());
    assert!(line.starts_with("error: terminal: unknown column xxxx"), "{line}");
    assert!(line.contains("… (3000 characters)"), "{line}");
}

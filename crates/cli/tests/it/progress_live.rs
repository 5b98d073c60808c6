//! What `dump` shows while it runs: bars (forced, and on a pseudo-terminal) versus plain lines,
//! JSON lines and the summary as snapshots, and Ctrl-C with bars on screen.

use std::path::Path;
use std::process::Stdio;

use crate::dump_crash::interrupt;
use crate::dumping::{assert_same, output, portal};
use crate::run;

const INTERRUPTED: &str = "interrupted: run the same command again to resume";

#[test]
fn bars_when_forced_plain_lines_otherwise() {
    let portal = portal(2000, 1);
    let root = tempfile::tempdir().unwrap();
    let args = ["terminal", "package", "--chunk-size", "200"];

    let r = run(portal.dump(&root.path().join("bar")).args(args).args(["--progress", "bar"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("\x1b["), "cursor movements: {}", r.stderr);
    assert!(
        r.stderr.contains("terminal [========================] 2000/2000 rows 100.0%"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("all      [========================] 2040/2040 rows 100.0%  done"),
        "{}",
        r.stderr
    );
    // The summary starts on a line of its own below the bars.
    assert!(r.stderr.lines().any(|l| l.starts_with("table     status")), "{}", r.stderr);

    // Not a terminal: `auto` means plain lines, without a single escape sequence.
    let r = run(portal.dump(&root.path().join("plain")).args(args).args(["--progress", "auto"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains('\x1b'), "{}", r.stderr);
    assert!(r.stderr.lines().any(|l| l == "terminal: starting"), "{}", r.stderr);
    assert!(
        r.stderr.lines().any(|l| l.starts_with("terminal: done, 2000/2000 rows")),
        "{}",
        r.stderr
    );
}

#[test]
fn a_terminal_gets_bars_by_default() {
    // `script` gives the dump a pseudo-terminal; where it is missing there is nothing to run.
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("script(1) is not installed: the pseudo-terminal run is skipped");
        return;
    }
    let portal = portal(2000, 1);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("tty");
    let command = format!(
        "{} --portal {} dump terminal --chunk-size 200 --out {}",
        env!("CARGO_BIN_EXE_iptvportal"),
        portal.url(),
        out.display()
    );
    let mut cmd = std::process::Command::new("script");
    crate::isolate(&mut cmd);
    let r = cmd
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("IPTVPORTAL_USERNAME", "admin")
        .env("IPTVPORTAL_PASSWORD", crate::PASSWORD)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{text}");
    assert!(text.contains("terminal [") && text.contains("all      ["), "{text}");
    assert!(!text.contains("terminal: starting"), "plain lines on a terminal: {text}");
}

/// A dump's JSON lines with the timings (which vary) zeroed, without the summary event that ends
/// them (tests/it/summary.rs checks that one).
fn json_lines(stdout: &str) -> String {
    let (last, lines) =
        stdout.lines().collect::<Vec<_>>().split_last().map(|(l, r)| (*l, r.to_vec())).unwrap();
    assert!(last.starts_with(r#"{"event":"summary","#), "{stdout}");
    lines
        .into_iter()
        .map(|l| {
            let mut v = iptvportal_testkit::Ordered::parse(l);
            for key in ["rows_per_second", "eta_seconds"] {
                if v.get(key).is_some_and(|v| !v.is_null()) {
                    v.set(key, 0.into());
                }
            }
            serde_json::to_string(&v).unwrap() + "\n"
        })
        .collect()
}

/// The summary with the time and rows/s columns (which vary) replaced, one space between cells.
fn summary(stderr: &str) -> String {
    stderr
        .lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split_whitespace().collect();
            // table, status, rows, files, size (two words), time, rows/s, …
            if cells.len() >= 8 && cells[0] != "table" && cells[0] != "hint:" {
                cells[6] = "<time>";
                cells[7] = "<rate>";
            }
            cells.join(" ") + "\n"
        })
        .collect()
}

#[test]
fn json_lines_and_the_summary() {
    let portal = portal(1000, 0);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("json");
    let r = run(portal.dump(&dir).args([
        "terminal",
        "--chunk-size",
        "400",
        "--strategy",
        "id-range",
        "--parallel",
        "1",
        "--format",
        "parquet",
        "--part-rows",
        "400",
        "--progress",
        "json",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    expect_test::expect![[r#"
        {"table":"terminal","state":"starting","dumped_rows":0,"total_rows":null,"percent":null,"rows_per_second":0,"eta_seconds":null,"chunk":0}
        {"table":"terminal","state":"running","dumped_rows":0,"total_rows":1000,"percent":0.0,"rows_per_second":0,"eta_seconds":null,"chunk":0}
        {"table":"terminal","state":"running","dumped_rows":400,"total_rows":1000,"percent":40.0,"rows_per_second":0,"eta_seconds":0,"chunk":1}
        {"table":"terminal","state":"running","dumped_rows":800,"total_rows":1000,"percent":80.0,"rows_per_second":0,"eta_seconds":0,"chunk":2}
        {"table":"terminal","state":"running","dumped_rows":1000,"total_rows":1000,"percent":100.0,"rows_per_second":0,"eta_seconds":0,"chunk":3}
        {"table":"terminal","state":"done","dumped_rows":1000,"total_rows":1000,"percent":100.0,"rows_per_second":0,"eta_seconds":0,"chunk":3}
    "#]].assert_eq(&json_lines(&r.stdout));
    expect_test::expect![[r"
        table status rows files size time rows/s strategy output
        terminal done 1000 3 31.4 KiB <time> <rate> id-range terminal-00000..00002.parquet
    "]]
    .assert_eq(&summary(&r.stderr));
}

#[test]
fn the_summary_hints_at_id_range_for_a_large_offset_dump() {
    let portal = portal(100_001, 0);
    let root = tempfile::tempdir().unwrap();
    let r = run(portal.dump(&root.path().join("big")).args([
        "terminal",
        "--chunk-size",
        "20000",
        "--strategy",
        "offset",
        "--progress",
        "plain",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let hint = r.stderr.lines().find(|l| l.starts_with("hint: ")).unwrap_or_default();
    assert!(
        hint.contains("terminal (100001 rows)") && hint.contains("--strategy id-range"),
        "{}",
        r.stderr
    );
    // The default, auto, walks it by id range already: nothing to advise.
    let r = run(portal.dump(&root.path().join("keyset")).args([
        "terminal",
        "--chunk-size",
        "20000",
        "--progress",
        "plain",
    ]));
    assert!(r.stderr.contains(" id-range "), "{}", r.stderr);
    assert!(!r.stderr.contains("hint:"), "{}", r.stderr);
}

#[test]
fn ctrl_c_with_bars_clears_them_and_resumes_to_the_same_output() {
    let portal = portal(3000, 5);
    let root = tempfile::tempdir().unwrap();
    let command = |dir: &Path| {
        let mut cmd = portal.dump_process(dir);
        cmd.args(["terminal", "--chunk-size", "20", "--format", "csv", "--strategy", "id-range"])
            .args(["--progress", "bar"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    let reference = root.path().join("reference");
    assert!(command(&reference).status().unwrap().success());
    let want = output(&reference, "terminal", "csv", false);

    for (name, signals) in [("int", &["INT"][..]), ("twice", &["INT", "INT"])] {
        let dir = root.path().join(name);
        let text = interrupt(command(&dir), &dir, 200, signals, name);
        // The message is a line of its own, after the bars, not drawn over by them.
        assert_eq!(text.lines().last(), Some(INTERRUPTED), "{name}: {text}");
        assert!(!text.contains("error:") && !text.contains("panicked"), "{name}: {text}");
        let rerun = command(&dir).output().unwrap();
        assert!(rerun.status.success(), "{name}: {}", String::from_utf8_lossy(&rerun.stderr));
        assert_same(&output(&dir, "terminal", "csv", false), &want, name);
    }
}

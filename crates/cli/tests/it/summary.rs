//! The end-of-run summary as a contract: the `--summary` file (docs/dump.md, "The JSON summary")
//! and the `summary` event that ends `--progress json`, for a run that completes, one where
//! tables fail, one stopped by SIGTERM and the resume after it; and failed and cancelled tables
//! in the summary table on stderr.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use iptvportal_checkpoint::{CheckpointStore, FileStore};
use serde_json::{Value, json};

use crate::dump_crash::{committed_rows, signal};
use crate::dumping::portal;
use crate::run;

/// The summary file at `path`, parsed.
fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.ends_with("}\n"), "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Checks the values that vary from run to run for their type and range, and replaces them with
/// fixed ones, so that the rest compares exactly: the times of the run, and each table's seconds
/// and rows/s.
fn settle(mut document: Value) -> Value {
    for key in ["started_at", "finished_at"] {
        let at = document[key].as_str().unwrap_or_else(|| panic!("{key}: {document}"));
        // 2026-03-01T12:00:05Z
        assert!(at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T', "{key}: {at}");
        document[key] = json!("<time>");
    }
    for table in document["tables"].as_array_mut().unwrap() {
        for key in ["seconds", "rows_per_second"] {
            let value = table[key].as_f64().unwrap_or_else(|| panic!("{key}: {table}"));
            assert!(value.is_finite() && value >= 0.0, "{key}: {table}");
            table[key] = json!(0);
        }
    }
    document
}

/// `{"name": …, "bytes": …}` of an output file, its size read from disk.
fn file(dir: &Path, name: &str) -> Value {
    let bytes = std::fs::metadata(dir.join(name)).unwrap().len();
    json!({"name": name, "bytes": bytes})
}

#[test]
fn a_finished_dump_writes_the_summary_and_ends_its_json_stream_with_it() {
    let portal = portal(300, 0);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let path = root.path().join("summary.json");
    let r = run(portal
        .dump(&out)
        .args(["terminal", "package", "--chunk-size", "100", "--progress", "json", "--summary"])
        .arg(&path));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let document = read(&path);
    let (terminal, package) = (file(&out, "terminal.jsonl"), file(&out, "package.jsonl"));
    let table = |name: &str, rows: u64, file: &Value| {
        json!({
            "table": name,
            "status": "done",
            "rows": rows,
            "rows_this_run": rows,
            "resumed_at": null,
            "files": [file],
            "bytes": file["bytes"],
            "strategy": "id-range",
            "seconds": 0,
            "rows_per_second": 0,
            "retries": 0,
            "warnings": [],
            "error": null,
        })
    };
    assert_eq!(
        settle(document.clone()),
        json!({
            "version": 1,
            "started_at": "<time>",
            "finished_at": "<time>",
            "exit_code": 0,
            "error": null,
            "tables": [table("terminal", 300, &terminal), table("package", 40, &package)],
        })
    );
    assert!(document["started_at"].as_str() <= document["finished_at"].as_str(), "{document}");

    // The stream's last line is the same document, marked as the summary event, and the only
    // one so marked; the tables' progress lines have no "event" key.
    let lines: Vec<Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (last, progress) = lines.split_last().unwrap();
    assert!(progress.iter().all(|l| l["event"] != "summary"), "{lines:?}");
    let per_table = progress.iter().filter(|l| l.get("table").is_some());
    assert!(per_table.clone().count() >= 10 && per_table.clone().all(|l| l.get("event").is_none()));
    assert!(r.stdout.lines().last().unwrap().starts_with(r#"{"event":"summary","version":1,"#));
    let mut event = last.clone();
    assert_eq!(event.as_object_mut().unwrap().remove("event"), Some(json!("summary")));
    assert_eq!(event, document);

    // Run again: already complete, which this run did not time; the file is replaced whole.
    let r = run(portal.dump(&out).args(["terminal", "package", "--summary"]).arg(&path));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let document = read(&path);
    for (t, rows) in document["tables"].as_array().unwrap().iter().zip([300, 40]) {
        assert_eq!(t["status"], "already_complete", "{t}");
        assert_eq!((t["rows"].as_u64(), t["rows_this_run"].as_u64()), (Some(rows), Some(0)));
        assert_eq!(t["seconds"], json!(0.0), "{t}");
    }
    let names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.iter().filter(|n| n.contains("summary")).count(), 1, "{names:?}");
}

#[test]
fn failed_tables_are_in_the_summary_with_their_error_and_rows() {
    let portal = portal(300, 0);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let r = run(portal.dump(&out).args(["terminal", "--chunk-size", "100"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A resumable checkpoint whose last committed chunk changed on disk: its resume fails.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = FileStore::new(&out);
    let mut unfinished = rt.block_on(store.load("terminal")).unwrap().unwrap();
    unfinished.is_complete = false;
    unfinished.completed_at = None;
    rt.block_on(store.save(&unfinished)).unwrap();
    let jsonl = out.join("terminal.jsonl");
    let mut bytes = std::fs::read(&jsonl).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0x20;
    std::fs::write(&jsonl, &bytes).unwrap();
    let terminal = file(&out, "terminal.jsonl");

    let path = root.path().join("summary.json");
    let args = ["terminal", "package", "no_such_table", "--chunk-size", "100", "--summary"];
    let r = run(portal.dump(&out).args(args).arg(&path).args(["--progress", "plain"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let document = settle(read(&path));
    assert_eq!(document["exit_code"], 1);
    assert_eq!(document["error"], Value::Null);
    let tables = document["tables"].as_array().unwrap();
    let error = tables[0]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.starts_with("terminal: ") && error.contains("cannot resume"), "{error}");
    assert_eq!(
        tables[0],
        json!({
            "table": "terminal",
            "status": "failed",
            "rows": 300,
            "rows_this_run": 0,
            // It did resume, and stopped at once: the file's end was not as committed.
            "resumed_at": 300,
            "files": [terminal],
            "bytes": terminal["bytes"],
            "strategy": "id-range",
            "seconds": 0,
            "rows_per_second": 0,
            "retries": 0,
            "warnings": [],
            "error": error,
        })
    );
    assert_eq!((&tables[1]["table"], &tables[1]["status"]), (&json!("package"), &json!("done")));
    let refused = &tables[2];
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(
        (refused["rows"].as_u64(), refused["files"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );
    // `auto` walks a table the catalog does not know by offset.
    assert_eq!(refused["strategy"], "offset", "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.starts_with("no_such_table: counting rows of no_such_table: "), "{error}");
    // The error lines on stderr are the same errors, with their `error: `.
    for t in [&tables[0], refused] {
        let line = format!("error: {}", t["error"].as_str().unwrap());
        assert!(r.stderr.lines().any(|l| l == line), "{line}\n{}", r.stderr);
    }
    // The summary table shows the failed tables as such, each with its error in short.
    let row = |name: &str| {
        r.stderr.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_default()
    };
    assert!(row("terminal").split_whitespace().nth(1) == Some("failed"), "{}", r.stderr);
    assert!(
        row("terminal").contains(" 300 ") && row("terminal").contains("cannot resume"),
        "{}",
        r.stderr
    );
    assert!(row("package").split_whitespace().nth(1) == Some("done"), "{}", r.stderr);
    assert!(row("no_such_table").contains(" failed "), "{}", r.stderr);

    // --quiet: the summary table and the error lines, nothing else.
    let r = run(portal.dump(&out).args(args).arg(&path).arg("--quiet"));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 6, "{}", r.stderr);
    assert!(lines[0].starts_with("table ") && lines[0].contains(" status "), "{}", r.stderr);
    assert!(lines[4..].iter().all(|l| l.starts_with("error: ")), "{}", r.stderr);
}

#[test]
fn a_refused_login_or_a_bad_filter_still_writes_the_summary() {
    let portal = portal(300, 0);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let path = root.path().join("summary.json");
    let r = run(portal.dump(&out).args(["package"]));
    assert_eq!(r.code, 0, "{}", r.stderr);

    // A refused login fails each table that needs the portal, with the portal's answer; a
    // complete one needs none.
    let r = run(portal
        .dump(&out)
        .args(["terminal", "package", "--summary"])
        .arg(&path)
        .env("IPTVPORTAL_PASSWORD", "wrong-Pa55word"));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let document = settle(read(&path));
    assert_eq!(document["error"], Value::Null, "{document}");
    let tables = document["tables"].as_array().unwrap();
    assert_eq!(tables[0]["status"], "failed", "{document}");
    assert!(tables[0]["error"].as_str().unwrap().contains(": login refused"), "{document}");
    assert_eq!(tables[1]["status"], "already_complete", "{document}");

    // A run that stops as a whole before its tables (a bad filter) still writes the summary,
    // saying why; each table failed with it, as far as its checkpoint goes.
    let r = run(portal
        .dump(&out)
        .args(["terminal", "package", "--where", "id__sideways=1", "--summary"])
        .arg(&path));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let document = settle(read(&path));
    let error = document["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("unknown lookup \"sideways\""), "{document}");
    assert_eq!(r.stderr, format!("error: {error}\n"));
    let tables = document["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 2, "{document}");
    assert!(tables.iter().all(|t| t["status"] == "failed" && t["error"].is_null()), "{document}");
    // package completed in the run before.
    assert_eq!(tables[1]["rows"], 40, "{document}");
    assert_eq!(tables[1]["files"], json!([file(&out, "package.jsonl")]), "{document}");
}

#[test]
fn a_terminated_dump_summarises_its_cancelled_table_and_the_resume_this_run() {
    let portal = portal(3000, 5);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let path = root.path().join("summary.json");
    let command = |progress: &str| {
        let mut cmd = portal.dump_process(&out);
        cmd.args(["terminal", "--chunk-size", "20", "--strategy", "id-range", "--parallel", "1"])
            .args(["--progress", progress, "--summary"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    let child = command("plain").spawn().unwrap();
    let waited = Instant::now();
    while committed_rows(&out) < 200 {
        assert!(waited.elapsed() < Duration::from_secs(20), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(child.id(), "TERM");
    let ended = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&ended.stderr);
    assert_eq!(ended.status.code(), Some(130), "{stderr}");
    let rows = committed_rows(&out);
    assert!((200..3000).contains(&rows), "{rows} rows");
    let document = settle(read(&path));
    assert_eq!(document["exit_code"], 130);
    let t = &document["tables"][0];
    assert_eq!(t["status"], "cancelled", "{t}");
    assert_eq!((t["rows"].as_u64(), t["rows_this_run"].as_u64()), (Some(rows), Some(rows)));
    assert_eq!((&t["resumed_at"], &t["error"]), (&Value::Null, &Value::Null), "{t}");
    assert_eq!(t["files"], json!([{"name": "terminal.jsonl", "bytes": t["bytes"]}]), "{t}");
    // The summary table says it too, above the line that says how to resume.
    let row = stderr.lines().find(|l| l.starts_with("terminal ")).unwrap_or_default();
    assert!(row.contains(" cancelled ") && row.contains(&format!(" {rows} ")), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("interrupted: run the same command again to resume"),
        "{stderr}"
    );

    // The resume's time and rows/s are its own, and its summary says from where it started.
    let resumed = command("plain").output().unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    let document = settle(read(&path));
    let t = &document["tables"][0];
    assert_eq!(t["status"], "done", "{t}");
    assert_eq!(t["rows"], 3000, "{t}");
    assert_eq!(t["rows_this_run"].as_u64(), Some(3000 - rows), "{t}");
    assert_eq!(t["resumed_at"].as_u64(), Some(rows), "{t}");
    let row = stderr.lines().find(|l| l.starts_with("terminal ")).unwrap_or_default();
    assert!(row.ends_with(&format!("resumed at {rows}; time and rows/s of this run")), "{stderr}");
}

//! Every error a user can cause, as docs/errors.md lists it: each case runs the binary and checks
//! the documented exit code and key phrase, one `error:` line, no panic, and that the output
//! directory (with its checkpoint) is left as it was. The table of the doc is the expectation, so
//! the doc and the binary cannot drift apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use iptvportal_checkpoint::{CheckpointStore, FileStore, LockMode};
use iptvportal_sim::SimConfig;

use crate::dumping::snapshot;
use crate::{PASSWORD, Portal, bare, run};

/// One documented case: its exit code and key phrase.
struct Documented {
    code: i32,
    phrase: String,
}

/// The table of docs/errors.md by case name.
fn documented() -> BTreeMap<String, Documented> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut cases = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 5, "a row of five cells: {line}");
        let unquote = |c: &str| {
            let c = c.strip_prefix("``").and_then(|c| c.strip_suffix("``")).unwrap_or(c);
            c.trim().trim_matches('`').to_owned()
        };
        let name = unquote(cells[0]);
        let code = cells[4].parse().unwrap_or_else(|_| panic!("exit code of {name}: {line}"));
        let phrase = unquote(cells[2]);
        assert!(cases.insert(name.clone(), Documented { code, phrase }).is_none(), "{name} twice");
    }
    cases
}

/// What a case runs, and which directory must stay as it was.
struct Case {
    name: &'static str,
    cmd: Command,
    /// The output directory: compared before and after (or, when it did not exist, must still not).
    out: Option<PathBuf>,
}

/// A config file in `dir` with `text`, and `bare()` pointed at it.
fn with_config(dir: &Path, name: &str, text: &str) -> Command {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let mut cmd = bare();
    cmd.arg("--config").arg(path);
    cmd
}

#[test]
#[expect(clippy::too_many_lines, reason = "one line per documented case reads best as one list")]
fn every_documented_error() {
    let portal = Portal::start(SimConfig::default().seed(7).rows("terminal", 300));
    let slow = Portal::start(
        SimConfig::default().seed(7).rows("terminal", 10).latency(Duration::from_millis(800)),
    );
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| root.path().join(name);
    let url = portal.url().to_owned();
    let creds = |cmd: &mut Command| {
        cmd.env("IPTVPORTAL_USERNAME", "admin").env("IPTVPORTAL_PASSWORD", PASSWORD);
    };
    // A checkpoint to damage or to resume with other options: a finished small dump.
    let done = |name: &str| {
        let out = dir(name);
        let r = run(portal.dump(&out).args(["terminal", "--chunk-size", "100"]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        out
    };

    let mut cases: Vec<Case> = Vec::new();
    let mut add = |name: &'static str, cmd: Command, out: Option<PathBuf>| {
        cases.push(Case { name, cmd, out });
    };
    let cmd = |args: &[&str]| {
        let mut c = portal.cmd();
        c.args(args);
        c
    };
    let dump = |name: &str, args: &[&str]| {
        let out = dir(name);
        let mut c = portal.dump(&out);
        c.args(args);
        (c, Some(out))
    };
    let bare_args = |args: &[&str]| {
        let mut c = bare();
        c.args(args);
        c
    };

    add("no-portal", bare_args(&["auth"]), None);
    add("no-username", bare_args(&["--portal", "http://127.0.0.1:9/", "auth"]), None);
    add(
        "no-password",
        bare_args(&["--portal", "http://127.0.0.1:9/", "--username", "admin", "auth"]),
        None,
    );
    let mut c = bare_args(&["--portal", &url, "--username", "admin", "--password-stdin", "auth"]);
    c.write_stdin("");
    add("empty-password-stdin", c, None);
    let mut c = bare_args(&["--portal", "not a url", "auth"]);
    creds(&mut c);
    add("invalid-url", c, None);
    let mut c = cmd(&["auth"]);
    c.env("IPTVPORTAL_PASSWORD", "wrong-Pa55word");
    add("wrong-password", c, None);
    let mut c = bare_args(&["--portal", "http://127.0.0.1:9/", "--max-retries", "0", "auth"]);
    creds(&mut c);
    add("unreachable", c, None);
    let https = url.replace("http://", "https://");
    let mut c = bare_args(&["--portal", &https, "--max-retries", "0", "auth"]);
    creds(&mut c);
    add("tls-plain-http", c, None);
    let mut c = bare_args(&["--portal", &url.replace("/api/", "/nope/"), "auth"]);
    creds(&mut c);
    add("not-the-api", c, None);
    let mut c = slow.cmd();
    c.args(["--timeout", "0.2", "--max-retries", "0", "auth"]);
    add("timeout", c, None);
    add("unknown-table", cmd(&["select", "--from", "no_such_table"]), None);
    add(
        "unknown-column",
        cmd(&["select", "--from", "package", "--data", "id,no_such_column"]),
        None,
    );
    let (c, out) = dump("dump-unknown-table", &["no_such_table"]);
    add("dump-unknown-table", c, out);
    let out = dir("plan-unknown-table");
    let mut c = portal.cmd();
    c.arg("plan").arg("--out").arg(&out).arg("no_such_table");
    add("plan-unknown-table", c, Some(out));
    let (c, out) = dump("dump-unknown-column", &["terminal", "--columns", "id,no_such_column"]);
    add("dump-unknown-column", c, out);
    let (c, out) = dump("id-range-without-id", &["subscriber_package", "--strategy", "id-range"]);
    add("id-range-without-id", c, out);
    let (c, out) = dump("exclude-unknown-table", &["--all", "--exclude", "no_such_table"]);
    add("exclude-unknown-table", c, out);
    let (c, out) = dump("exclude-without-all", &["terminal", "--exclude", "terminal"]);
    add("exclude-without-all", c, out);
    let (c, out) = dump(
        "exclude-columns-unknown-table",
        &["terminal", "--exclude-columns", "no_such_table.id"],
    );
    add("exclude-columns-unknown-table", c, out);
    let (c, out) = dump(
        "exclude-columns-unknown-column",
        &["subscriber", "--exclude-columns", "subscriber.no_such_column"],
    );
    add("exclude-columns-unknown-column", c, out);
    let (c, out) = dump("exclude-columns-form", &["subscriber", "--exclude-columns", "password"]);
    add("exclude-columns-form", c, out);
    let (c, out) = dump(
        "columns-and-exclude-columns",
        &["subscriber", "--columns", "id", "--exclude-columns", "subscriber.password"],
    );
    add("columns-and-exclude-columns", c, out);
    add(
        "bad-where-lookup",
        bare_args(&["select", "--from", "package", "--where", "id__foo=1"]),
        None,
    );
    add("bad-where-form", bare_args(&["dump", "terminal", "--where", "no equals sign"]), None);
    add(
        "bad-where-json",
        bare_args(&["select", "--from", "package", "--where-json", "{not"]),
        None,
    );
    let (c, out) = dump("where-wrong-type", &["terminal", "--where", "registered=true"]);
    add("where-wrong-type", c, out);
    add(
        "where-pattern-not-text",
        bare_args(&["select", "--from", "terminal", "--where", "id__contains=5"]),
        None,
    );
    add("bad-order-by", bare_args(&["select", "--from", "package", "--order-by", "id up"]), None);
    add("bad-table-name", bare_args(&["select", "--from", "bad-name"]), None);
    add("data-mixes-star", bare_args(&["select", "--from", "package", "--data", "*,id"]), None);
    let (c, out) = dump("compress-parquet", &["terminal", "--format", "parquet", "--compress"]);
    add("compress-parquet", c, out);
    let (c, out) =
        dump("id-range-order-by", &["terminal", "--strategy", "id-range", "--order-by", "id DESC"]);
    add("id-range-order-by", c, out);
    let (c, out) = dump(
        "resume-offset-id-range",
        &["terminal", "--strategy", "id-range", "--resume-offset", "10"],
    );
    add("resume-offset-id-range", c, out);
    let (c, out) = dump("chunk-size-zero", &["terminal", "--chunk-size", "0"]);
    add("chunk-size-zero", c, out);
    let (c, out) = dump("parallel-zero", &["terminal", "--parallel", "0"]);
    add("parallel-zero", c, out);
    let (c, out) =
        dump("chunk-size-too-large", &["terminal", "--chunk-size", "18446744073709551615"]);
    add("chunk-size-too-large", c, out);
    let (c, out) = dump("parallel-too-large", &["terminal", "--parallel", "65"]);
    add("parallel-too-large", c, out);
    let (c, out) = dump("retry-backoff-too-large", &["terminal", "--retry-backoff", "1e20"]);
    add("retry-backoff-too-large", c, out);
    let (c, out) = dump("max-retries-too-large", &["terminal", "--max-retries", "1000"]);
    add("max-retries-too-large", c, out);
    let (c, out) = dump("rows-too-large", &["terminal", "--resume-offset", "18446744073709551615"]);
    add("rows-too-large", c, out);
    let (c, out) =
        dump("compress-level-range", &["terminal", "--compress", "--compress-level", "10"]);
    add("compress-level-range", c, out);
    let (c, out) = dump("table-and-all", &["terminal", "--all"]);
    add("table-and-all", c, out);
    let (c, out) = dump("no-table", &[]);
    add("no-table", c, out);
    let (c, out) = dump("unknown-format", &["terminal", "--format", "xml"]);
    add("unknown-format", c, out);
    add("demo-and-portal", bare_args(&["--demo", "--portal", "http://x/", "auth"]), None);
    let (c, out) = dump("compress-level-alone", &["terminal", "--compress-level", "3"]);
    add("compress-level-alone", c, out);
    add("timeout-zero", bare_args(&["--timeout", "0", "auth"]), None);
    add("timeout-too-large", bare_args(&["--timeout", "1e20", "auth"]), None);
    add("unknown-command", bare_args(&["frobnicate"]), None);

    let blocker = dir("a-file");
    std::fs::write(&blocker, b"keep me").unwrap();
    let mut c = portal.dump(&blocker.join("dumps"));
    c.arg("terminal");
    add("unwritable-out", c, Some(blocker.join("dumps")));
    // A summary below a file: refused before the login, the output directory never created.
    let (mut c, out) = dump("unwritable-summary", &["terminal", "--summary"]);
    c.arg(blocker.join("summary.json"));
    add("unwritable-summary", c, out);
    // Dropped before `root`, so the mount is gone when the temp directory is removed.
    let disk = disk_full_case(&portal, &dir("tiny"));
    let disk_mounted = disk.is_some();
    let _unmount = disk.map(|(c, unmount)| {
        add("disk-full", c, None);
        unmount
    });
    // A table another run is writing: this test process holds its lock while the case runs.
    let out = done("table-locked");
    let _held = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(FileStore::new(&out).lock("terminal", LockMode::Create))
        .unwrap();
    let mut c = portal.dump(&out);
    c.arg("terminal");
    add("table-locked", c, Some(out));
    let out = done("changed-output");
    let jsonl = std::fs::OpenOptions::new().write(true).open(out.join("terminal.jsonl")).unwrap();
    jsonl.set_len(10).unwrap();
    let mut c = portal.dump(&out);
    c.args(["terminal", "--chunk-size", "100"]);
    add("changed-output", c, Some(out));
    // One byte changed in the middle of a finished output: the size holds, the CRC-32 does not.
    let out = done("changed-bytes");
    let path = out.join("terminal.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let mut c = portal.dump(&out);
    c.args(["terminal", "--chunk-size", "100"]);
    add("changed-bytes", c, Some(out));
    // A checkpoint edited by hand (rows lowered) is refused, not followed.
    let out = done("edited-state");
    let state = out.join(".terminal.state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["dumped_rows"] = serde_json::json!(100);
    std::fs::write(&state, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    let mut c = portal.dump(&out);
    c.args(["terminal", "--chunk-size", "100"]);
    add("edited-state", c, Some(out));
    // A resumable dump whose last committed chunk changed on disk: the resume does not continue.
    let out = done("resume-changed");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = FileStore::new(&out);
    let mut unfinished = rt.block_on(store.load("terminal")).unwrap().unwrap();
    unfinished.is_complete = false;
    unfinished.completed_at = None;
    rt.block_on(store.save(&unfinished)).unwrap();
    let path = out.join("terminal.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let mut c = portal.dump(&out);
    c.args(["terminal", "--chunk-size", "100"]);
    add("resume-changed", c, Some(out));
    // A checkpoint of one portal, and a dump against another (the slow simulator, same data).
    let out = done("other-portal");
    let mut c = slow.dump(&out);
    c.args(["terminal", "--chunk-size", "100"]);
    add("other-portal", c, Some(out));
    let out = done("other-options");
    let mut c = portal.dump(&out);
    c.args(["terminal", "--chunk-size", "100", "--columns", "id,mac_addr"]);
    add("other-options", c, Some(out));
    let out = done("corrupt-state");
    std::fs::write(out.join(".terminal.state.json"), b"{\"version\": 1, \"table\": ").unwrap();
    let mut c = portal.dump(&out);
    c.arg("terminal");
    add("corrupt-state", c, Some(out));
    let out = done("newer-state");
    std::fs::write(out.join(".terminal.state.json"), b"{\"version\": 99}").unwrap();
    let mut c = portal.dump(&out);
    c.arg("terminal");
    add("newer-state", c, Some(out));
    // An object-storage URL is refused before anything is written: no local `s3:` directory.
    let here = dir("out-url");
    std::fs::create_dir(&here).unwrap();
    let mut c = portal.cmd();
    c.current_dir(&here).args(["sync", "terminal", "--out", "s3://bucket/prefix"]);
    add("out-url", c, Some(here));
    // Syncs: a finished snapshot, then a run that cannot follow it.
    let synced = |name: &str| {
        let out = dir(name);
        let r =
            run(portal.cmd().args(["sync", "terminal", "--progress", "none", "--out"]).arg(&out));
        assert_eq!(r.code, 0, "{}", r.stderr);
        out
    };
    let sync = |out: &Path, args: &[&str]| {
        let mut c = portal.cmd();
        c.args(["sync", "terminal", "--progress", "none", "--out"]).arg(out).args(args);
        c
    };
    let out = synced("sync-other-options");
    add("sync-other-options", sync(&out, &["--format", "parquet"]), Some(out));
    let out = synced("sync-other-portal");
    let mut c = slow.cmd();
    c.args(["sync", "terminal", "--progress", "none", "--out"]).arg(&out);
    add("sync-other-portal", c, Some(out));
    let out = dir("sync-cursor");
    add("sync-cursor", sync(&out, &["--cursor", "mac_addr"]), Some(out));
    let out = dir("sync-id-left-out");
    add("sync-id-left-out", sync(&out, &["--columns", "mac_addr"]), Some(out));
    let out = dir("sync-order-by");
    add("sync-order-by", sync(&out, &["--order-by", "id"]), Some(out));
    let out = dir("materialize-no-runs");
    std::fs::create_dir(&out).unwrap();
    let mut c = bare();
    c.arg("materialize").arg(&out).arg("terminal").arg("--out").arg(out.join("t.jsonl"));
    add("materialize-no-runs", c, Some(out));

    let configs = dir("configs");
    std::fs::create_dir(&configs).unwrap();
    let mut c = with_config(&configs, "syntax", "[dump\nformat = \"csv\"\n");
    c.arg("auth");
    add("config-syntax", c, None);
    let mut c = with_config(&configs, "unknown", "[dump]\nchunksize = 5\n");
    c.arg("auth");
    add("config-unknown-key", c, None);
    let mut c = with_config(&configs, "value", "[dump]\nformat = \"xml\"\n");
    c.arg("auth");
    add("config-bad-value", c, None);
    let mut c = with_config(&configs, "zero", "[dump]\nchunk_size = 0\n");
    c.arg("auth");
    add("config-zero", c, None);
    let mut c = with_config(&configs, "large", "[dump]\nchunk_size = 1000001\n");
    c.arg("auth");
    add("config-too-large", c, None);
    let mut c = with_config(&configs, "exclude", "[dump]\nexclude_columns = [\"password\"]\n");
    c.arg("auth");
    add("config-unknown-name", c, None);
    let mut c = with_config(&configs, "type", "[connection]\ntimeout = \"soon\"\n");
    c.arg("auth");
    add("config-wrong-type", c, None);
    let mut c = bare();
    c.env("IPTVPORTAL_CONFIG", configs.join("missing.toml")).arg("auth");
    add("config-missing", c, None);
    let mut c = bare();
    c.arg("--config").arg(&configs).arg("auth");
    add("config-unreadable", c, None);
    let mut c = bare();
    c.args(["status", "--out"]).arg(dir("never-written"));
    add("status-missing-dir", c, None);
    let mut c = bare();
    c.arg("verify").arg(dir("never-dumped"));
    add("verify-missing-dir", c, None);
    let empty = dir("no-dumps");
    std::fs::create_dir(&empty).unwrap();
    let mut c = bare();
    c.arg("verify").arg(&empty);
    add("verify-no-dumps", c, Some(empty));

    let docs = documented();
    let mut tested: Vec<&str> = cases.iter().map(|c| c.name).collect();
    if !disk_mounted {
        eprintln!("disk-full: untested here (mounting a tmpfs needs root)");
        tested.push("disk-full");
    }
    tested.sort_unstable();
    assert_eq!(tested, docs.keys().map(String::as_str).collect::<Vec<_>>(), "docs/errors.md");
    assert!(docs.len() >= 30, "{} cases", docs.len());

    for mut case in cases {
        let doc = &docs[case.name];
        let before = case.out.as_ref().filter(|d| d.exists()).map(|d| snapshot(d));
        let r = run(&mut case.cmd);
        let name = case.name;
        assert_eq!(r.code, doc.code, "{name}: {}", r.stderr);
        let first = r.stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: "), "{name}: {}", r.stderr);
        assert!(first.contains(&doc.phrase), "{name}: {first:?} lacks {:?}", doc.phrase);
        if doc.code == 1 {
            assert_eq!(r.stderr.lines().count(), 1, "{name}: one line: {}", r.stderr);
            assert!(first.contains("; "), "{name}: no advice: {first}");
        }
        assert!(!r.stderr.contains("panicked") && !r.stderr.contains("RUST_BACKTRACE"), "{name}");
        assert!(!r.stderr.contains(PASSWORD), "{name}: the password leaked");
        if let Some(out) = &case.out {
            match before {
                Some(before) => assert_eq!(snapshot(out), before, "{name} touched {out:?}"),
                None => assert!(!out.exists(), "{name} created {out:?}"),
            }
        }
    }
}

/// A dump into a 16 KiB tmpfs, which fills up on the first chunks; `None` where mounting is not
/// allowed (not root). The mount is lazily detached when the test's temp directory goes.
fn disk_full_case(portal: &Portal, dir: &Path) -> Option<(Command, Unmount)> {
    std::fs::create_dir_all(dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        return None;
    }
    let mut c = portal.dump(dir);
    c.args(["terminal", "--chunk-size", "100"]);
    Some((c, Unmount(dir.to_owned())))
}

/// Unmounts the tmpfs when the test ends, also when it fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

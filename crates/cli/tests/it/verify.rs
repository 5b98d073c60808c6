//! `iptvportal verify`: untouched dumps hold; every change to a file (truncated, extended,
//! deleted, added, one byte flipped) is named with its problem; an edited checkpoint is reported;
//! `--format json` for scripts; `--source` names the id range whose rows the portal lost.

use std::path::{Path, PathBuf};

use iptvportal_sim::SimConfig;
use serde_json::Value;

use crate::dumping::portal;
use crate::{Portal, Run, bare, failure, run};

fn verify(dir: &Path, args: &[&str]) -> Run {
    run(bare().arg("verify").arg(dir).args(args))
}

/// `iptvportal verify DIR --source` against `portal`.
fn recount(portal: &Portal, dir: &Path) -> Run {
    run(portal.cmd().arg("verify").arg(dir).arg("--source"))
}

/// Asserts exit code `code` and exactly `stdout`, with nothing on stderr.
fn assert_verify(dir: &Path, args: &[&str], code: i32, stdout: &str) {
    let r = verify(dir, args);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (code, stdout, ""), "{args:?}");
}

/// The CRC-32 (IEEE) of `bytes`, as the manifest writes it.
fn crc32(bytes: &[u8]) -> String {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    format!("{:08x}", !crc)
}

const ONE_PROBLEM: &str = "verified 1 table: 0 ok, 1 with problems\n";

#[test]
fn untouched_dumps_hold_and_every_change_to_a_file_is_named() {
    let portal = portal(300, 0);
    let root = tempfile::tempdir().unwrap();
    let formats: [(&[&str], &str); 3] = [
        (&["--format", "jsonl"], "terminal.jsonl"),
        (&["--format", "csv", "--compress"], "terminal.csv.gz"),
        (&["--format", "parquet"], "terminal-00000.parquet"),
    ];
    for (args, name) in formats {
        let dir = root.path().join(name);
        let r = run(portal.dump(&dir).arg("terminal").args(["--chunk-size", "100"]).args(args));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let ok = "terminal: ok, 300 rows in 1 file\nverified 1 table: 1 ok\n";
        assert_verify(&dir, &[], 0, ok);

        let path = dir.join(name);
        let original = std::fs::read(&path).unwrap();
        let len = original.len();
        let mut flipped = original.clone();
        flipped[len / 2] ^= 0x20;
        let cases: [(&str, Option<Vec<u8>>, String); 4] = [
            (
                "truncated",
                Some(original[..len - 10].to_vec()),
                format!("it is {} bytes, the manifest says {len}", len - 10),
            ),
            (
                "extended",
                Some([&original[..], b"x"].concat()),
                format!("it is {} bytes, the manifest says {len}", len + 1),
            ),
            ("deleted", None, "it is missing".to_owned()),
            (
                "flipped",
                Some(flipped.clone()),
                format!(
                    "its contents changed (CRC-32 {}, the manifest says {})",
                    crc32(&flipped),
                    crc32(&original)
                ),
            ),
        ];
        for (case, contents, problem) in cases {
            match contents {
                Some(bytes) => std::fs::write(&path, bytes).unwrap(),
                None => std::fs::remove_file(&path).unwrap(),
            }
            let expected = format!("terminal: {}: {problem}\n{ONE_PROBLEM}", path.display());
            let r = verify(&dir, &[]);
            assert_eq!((r.code, r.stdout.as_str()), (1, expected.as_str()), "{name} {case}");
            std::fs::write(&path, &original).unwrap();
        }
        if name.ends_with(".parquet") {
            let extra = dir.join("terminal-00001.parquet");
            std::fs::copy(&path, &extra).unwrap();
            let problem =
                format!("terminal: {}: the manifest lists no such file\n", extra.display());
            assert_verify(&dir, &[], 1, &format!("{problem}{ONE_PROBLEM}"));
            std::fs::remove_file(&extra).unwrap();
        }
        assert_verify(&dir, &["terminal"], 0, ok);
    }
}

#[test]
fn an_edited_checkpoint_is_that_tables_problem_and_json_lists_every_problem() {
    let portal = portal(200, 0);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dumps");
    for table in ["terminal", "package"] {
        let r = run(portal.dump(&dir).arg(table));
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let state = dir.join(".terminal.state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, text.replace("\"dumped_rows\": 200", "\"dumped_rows\": 199")).unwrap();
    let r = verify(&dir, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert_eq!(lines[0], "package: ok, 40 rows in 1 file");
    // The library's words, then the command line's advice (failure.rs's, for the checkpoint).
    let edited = format!(
        "terminal: checkpoint {} is unreadable (it was edited or damaged: its check value does not \
         match its contents); ",
        state.display()
    );
    assert!(lines[1].starts_with(&edited) && lines[1].contains("--reset"), "{}", lines[1]);
    assert_eq!(lines[2], "verified 2 tables: 1 ok, 1 with problems");
    // A table asked for by name that has no checkpoint is a problem too.
    let missing = format!("media: no checkpoint in {}\n", dir.display());
    assert_verify(
        &dir,
        &["media", "package"],
        1,
        &format!(
            "{missing}package: ok, 40 rows in 1 file\nverified 2 tables: 1 ok, 1 with problems\n"
        ),
    );

    std::fs::write(dir.join("package.jsonl"), b"{}\n").unwrap();
    let r = verify(&dir, &["--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let json: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        json["summary"],
        serde_json::json!({"tables": 2, "ok": 0, "incomplete": 0, "with_problems": 2})
    );
    let package = &json["tables"][0];
    assert_eq!(
        (package["table"].as_str(), package["status"].as_str()),
        (Some("package"), Some("problems"))
    );
    assert_eq!(package["files"][0]["name"], "package.jsonl");
    assert_eq!(package["files"][0]["rows"], 40);
    assert_eq!(package["problems"].as_array().unwrap().len(), 1);
    let problem = &package["problems"][0];
    assert_eq!(problem["file"].as_str(), Some(dir.join("package.jsonl").to_str().unwrap()));
    assert!(
        problem["problem"].as_str().unwrap().starts_with("it is 3 bytes, the manifest says "),
        "{problem}"
    );
    let terminal = &json["tables"][1];
    assert_eq!(terminal["problems"][0]["file"].as_str(), Some(state.to_str().unwrap()));
    assert!(
        terminal["problems"][0]["problem"].as_str().unwrap().contains("it was edited"),
        "{terminal}"
    );
    assert_eq!(terminal["checked"], Value::Null);
}

#[test]
fn a_missing_or_empty_directory_is_one_error_line() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("missing");
    let line = failure(bare().arg("verify").arg(&missing));
    assert!(
        line.starts_with(&format!("error: no dump directory {}: ", missing.display())),
        "{line}"
    );
    let line = failure(bare().arg("verify").arg(root.path()));
    assert_eq!(
        line,
        format!(
            "error: no dumps in {}: it holds no .TABLE.state.json checkpoint and no TABLE/sync.json; \
             pass the directory the dump wrote to (its --out)",
            root.path().display()
        )
    );
}

/// The ids of `table` in the simulator, in order.
fn ids(portal: &Portal, table: &str) -> Vec<i64> {
    portal.db_rows(table, "1").iter().map(|row| row[0].as_i64().unwrap()).collect()
}

fn delete(portal: &Portal, sql: &str) {
    let db = rusqlite::Connection::open(portal.sim().db_path()).unwrap();
    assert!(db.execute(sql, []).unwrap() > 0, "{sql}");
}

#[test]
fn source_names_the_id_range_that_lost_rows() {
    let portal = Portal::start(
        SimConfig::default().seed(7).rows("terminal", 2000).rows("subscriber_package", 300),
    );
    let root = tempfile::tempdir().unwrap();
    let (jsonl, parquet): (PathBuf, PathBuf) =
        (root.path().join("jsonl"), root.path().join("parquet"));
    for (dir, args) in [(&jsonl, &["--format", "jsonl"]), (&parquet, &["--format", "parquet"])] {
        let r = run(portal.dump(dir).args(["terminal", "subscriber_package"]).args(args));
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let held = "subscriber_package: ok, 300 rows in 1 file, the portal agrees\n\
                terminal: ok, 2000 rows in 1 file, the portal agrees\n\
                verified 2 tables: 2 ok\n";
    for dir in [&jsonl, &parquet] {
        let r = recount(&portal, dir);
        assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, held, ""));
    }

    let before = ids(&portal, "terminal");
    let lost = &before[1000..1003];
    delete(
        &portal,
        &format!("DELETE FROM terminal WHERE id IN ({}, {}, {})", lost[0], lost[1], lost[2]),
    );
    delete(
        &portal,
        "DELETE FROM subscriber_package WHERE rowid = (SELECT min(rowid) FROM subscriber_package)",
    );
    for (dir, file) in [(&jsonl, "terminal.jsonl"), (&parquet, "terminal-00000.parquet")] {
        let r = recount(&portal, dir);
        assert_eq!(r.code, 1, "{}", r.stderr);
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(lines[0], "subscriber_package: 300 rows in the dump, 299 on the portal");
        assert_eq!(lines.last(), Some(&"verified 2 tables: 0 ok, 2 with problems"));
        // `terminal: ids A..=B: N rows in FILE, M on the portal`: the narrowest ranges holding
        // the lost ids (one, unless they straddle a cut), each with the rows of that range.
        let mut found = 0;
        for line in &lines[1..lines.len() - 1] {
            let range = line
                .strip_prefix("terminal: ids ")
                .and_then(|rest| rest.split_once(": "))
                .map_or_else(|| panic!("{line}"), |(range, _)| range);
            let (min, max) = range.split_once("..=").unwrap();
            let (min, max): (i64, i64) = (min.parse().unwrap(), max.parse().unwrap());
            assert!(max - min < 1000, "{line}");
            let dumped = before.iter().filter(|id| (min..=max).contains(id)).count();
            let gone = lost.iter().filter(|id| (min..=max).contains(id)).count();
            assert!(gone > 0, "{line}");
            found += gone;
            assert_eq!(
                *line,
                format!(
                    "terminal: ids {min}..={max}: {dumped} rows in {file}, {} on the portal",
                    dumped - gone
                )
            );
        }
        assert_eq!(found, 3, "{}", r.stdout);
    }
}

#[test]
fn an_incomplete_dump_holds_as_far_as_it_is_committed() {
    let portal = portal(3000, 4);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("out");
    let mut dump = portal
        .dump_process(&dir)
        .args(["terminal", "--chunk-size", "40"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = dir.join(".terminal.state.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let committed = || {
        let text = std::fs::read_to_string(&state).ok()?;
        serde_json::from_str::<Value>(&text).ok()?["dumped_rows"].as_u64().filter(|&n| n > 0)
    };
    while committed().is_none() {
        assert!(std::time::Instant::now() < deadline, "the dump never committed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    dump.kill().unwrap();
    dump.wait().unwrap();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["is_complete"], false, "killed before the end");
    let rows = saved["dumped_rows"].as_u64().unwrap();
    let line = format!(
        "terminal: incomplete, {rows} rows committed so far; rerun the same dump command to \
         resume it\nverified 1 table: 0 ok, 1 incomplete\n"
    );
    assert_verify(&dir, &[], 0, &line);
    let r = recount(&portal, &dir);
    assert_eq!((r.code, r.stdout), (0, line.replace(" so far;", " so far, the portal agrees;")));
    // What is committed is checked all the same.
    let path = dir.join("terminal.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let r = verify(&dir, &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.starts_with(&format!("terminal: {}: its contents changed", path.display())));
}

#[test]
fn a_checkpoint_without_a_manifest_is_checked_by_size() {
    let portal = portal(100, 0);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dumps");
    let r = run(portal.dump(&dir).arg("package"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The state as version 1 wrote it: no seal, no manifest.
    let state = dir.join(".package.state.json");
    let mut old: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let map = old.as_object_mut().unwrap();
    map.remove("check");
    map.insert("version".into(), 1.into());
    let sink = map["sink"].as_object_mut().unwrap();
    sink.remove("files");
    sink.remove("last_chunk");
    std::fs::write(&state, serde_json::to_vec(&old).unwrap()).unwrap();
    let ok = "package: ok, 40 rows in 1 file (sizes only: its checkpoint predates checksums)\n\
              verified 1 table: 1 ok\n";
    assert_verify(&dir, &[], 0, ok);
    let path = dir.join("package.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    assert_verify(&dir, &[], 0, ok);
    std::fs::write(&path, &bytes[1..]).unwrap();
    let problem = format!(
        "package: {}: it is {} bytes, the manifest says {}\n{ONE_PROBLEM}",
        path.display(),
        bytes.len() - 1,
        bytes.len()
    );
    assert_verify(&dir, &[], 1, &problem);
}

#[test]
fn a_table_being_written_is_not_checked_and_verify_keeps_dumps_out_while_it_checks() {
    use iptvportal_checkpoint::{CheckpointStore, FileStore, LockMode};
    let portal = portal(300, 0);
    let dir = tempfile::tempdir().unwrap();
    let r = run(portal.dump(dir.path()).arg("terminal").args(["--chunk-size", "100"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // This test process stands for a dump writing the table.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let held = rt.block_on(FileStore::new(dir.path()).lock("terminal", LockMode::Create)).unwrap();
    let r = verify(dir.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let first = r.stdout.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "terminal: terminal in {} is being written by another run (pid {})",
            dir.path().display(),
            std::process::id()
        )),
        "{first}"
    );
    assert!(r.stdout.ends_with(ONE_PROBLEM), "{}", r.stdout);
    drop(held);
    assert_verify(dir.path(), &[], 0, "terminal: ok, 300 rows in 1 file\nverified 1 table: 1 ok\n");
}

#[test]
fn a_file_of_the_table_in_another_format_is_stale() {
    let portal = portal(300, 0);
    let dir = tempfile::tempdir().unwrap();
    let r = run(portal.dump(dir.path()).arg("terminal").args(["--chunk-size", "100"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Left by an earlier dump in another format: a glob over the directory would mix it in.
    std::fs::write(dir.path().join("terminal.csv.gz"), b"old").unwrap();
    std::fs::write(dir.path().join("terminal-00000.parquet"), b"old").unwrap();
    let stale = |name: &str| {
        format!("terminal: {}: the manifest lists no such file\n", dir.path().join(name).display())
    };
    let want =
        format!("{}{}{ONE_PROBLEM}", stale("terminal.csv.gz"), stale("terminal-00000.parquet"));
    assert_verify(dir.path(), &[], 1, &want);
}

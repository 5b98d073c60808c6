//! `dump --part-rows`: text output in parts, each a whole file its readers read alone, equal to
//! the portal's rows together; a rerun that asks for another layout is refused; `verify` checks
//! every part.

use serde_json::Value;

use crate::dumping::{jsonl_rows, portal};
use crate::{failure, run, success};

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[test]
fn parts_hold_the_portals_rows_and_another_layout_is_refused() {
    let portal = portal(1000, 0);
    let root = tempfile::tempdir().unwrap();
    let want = portal.db_rows("terminal", "1");

    // jsonl gzip, parallel ranges: chunks of 100 into parts of 250 rows close at 300.
    let dir = root.path().join("jsonl");
    let args =
        ["terminal", "--chunk-size", "100", "--part-rows", "250", "--compress", "--parallel", "3"];
    success(portal.dump(&dir).args(args));
    assert_eq!(
        names(&dir),
        [
            "terminal-00000.jsonl.gz",
            "terminal-00001.jsonl.gz",
            "terminal-00002.jsonl.gz",
            "terminal-00003.jsonl.gz"
        ]
    );
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    for name in names(&dir) {
        let rows = jsonl_rows(&iptvportal_testkit::read_output(&dir.join(name)));
        sizes.push(rows.len());
        got.extend(rows);
    }
    assert_eq!(sizes, [300, 300, 300, 100]);
    assert!(got == want, "{} rows, expected {}", got.len(), want.len());
    assert_eq!(
        success(crate::bare().arg("verify").arg(&dir)),
        "terminal: ok, 1000 rows in 4 files\nverified 1 table: 1 ok\n"
    );

    // The same command again: complete. Another part size, or one file: refused, files intact.
    let again = run(portal.dump(&dir).args(args));
    assert_eq!(again.code, 0, "{}", again.stderr);
    let before = crate::dumping::snapshot(&dir);
    let mut other = args.to_vec();
    other[4] = "400";
    let line = failure(portal.dump(&dir).args(&other));
    assert!(line.contains("(part rows was 250 and is now 400)"), "{line}");
    let line = failure(portal.dump(&dir).args(&other[..3]).args(["--compress", "--parallel", "3"]));
    assert!(line.contains("(part rows was 250 and is now one file)"), "{line}");
    assert_eq!(crate::dumping::snapshot(&dir), before, "refusals touch nothing");

    // CSV: every part starts with the header; JSON: every part is one array.
    let dir = root.path().join("csv");
    success(portal.dump(&dir).args([
        "terminal",
        "--chunk-size",
        "100",
        "--part-rows",
        "500",
        "--format",
        "csv",
    ]));
    let parts = names(&dir);
    assert_eq!(parts, ["terminal-00000.csv", "terminal-00001.csv"]);
    let header =
        std::fs::read_to_string(dir.join(&parts[0])).unwrap().lines().next().unwrap().to_owned();
    assert!(header.starts_with("id,"), "{header}");
    for part in &parts {
        let text = std::fs::read_to_string(dir.join(part)).unwrap();
        assert_eq!(text.lines().next().unwrap(), header, "{part}");
        assert_eq!(text.lines().count(), 501, "{part}: a header and 500 rows");
    }
    let dir = root.path().join("json");
    let json = ["terminal", "--chunk-size", "100", "--part-rows", "600", "--format", "json"];
    success(portal.dump(&dir).args(json));
    let lens: Vec<usize> = names(&dir)
        .iter()
        .map(|n| {
            serde_json::from_slice::<Vec<Value>>(&std::fs::read(dir.join(n)).unwrap())
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(lens, [600, 400]);

    // A part changed after the dump: verify names it, and the dump refuses to call it complete.
    let part = dir.join("terminal-00001.json");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes.truncate(bytes.len() - 2);
    std::fs::write(&part, &bytes).unwrap();
    let r = run(crate::bare().arg("verify").arg(&dir));
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("terminal-00001.json: it is "), "{}", r.stdout);
    let line = failure(portal.dump(&dir).args(json));
    assert!(line.contains("terminal-00001.json changed since it was written"), "{line}");
}

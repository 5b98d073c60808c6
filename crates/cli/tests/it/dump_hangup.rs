//! SIGHUP (the terminal or the SSH session went away) stops a real `dump` process as SIGTERM
//! does: what is being written is committed, the checkpoint saved, the `interrupted:` line printed
//! and the exit code 130; a second signal exits at once. A rerun finishes with every row once.

use std::path::Path;
use std::process::Stdio;

use crate::dump_crash::{committed_rows, interrupt};
use crate::dumping::{jsonl_rows, portal};

/// Rows of `terminal`: 100 chunks of 20, a few milliseconds each, so that the signals land mid-run.
const ROWS: u64 = 2000;

#[test]
fn a_hangup_stops_the_dump_resumably_and_a_second_one_at_once() {
    let portal = portal(ROWS, 5);
    let want = portal.db_rows("terminal", "1");
    let root = tempfile::tempdir().unwrap();
    let command = |dir: &Path| {
        let mut cmd = portal.dump_process(dir);
        cmd.args(["terminal", "--chunk-size", "20", "--strategy", "id-range", "--parallel", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    for (name, signals) in [("hup", &["HUP"][..]), ("twice", &["HUP", "HUP"])] {
        let dir = root.path().join(name);
        let text = interrupt(command(&dir), &dir, 100, signals, name);
        // Once; a second signal may come while the first run's line is being printed.
        let line = "interrupted: run the same command again to resume";
        match name {
            "hup" => assert_eq!(text, format!("{line}\n"), "{name}"),
            _ => assert!(!text.is_empty() && text.lines().all(|l| l == line), "{name}: {text}"),
        }
        let rows = committed_rows(&dir);
        assert!((100..ROWS).contains(&rows), "{name}: {rows} rows committed");

        let rerun = command(&dir).output().unwrap();
        assert!(rerun.status.success(), "{name}: {}", String::from_utf8_lossy(&rerun.stderr));
        let got = jsonl_rows(&std::fs::read(dir.join("terminal.jsonl")).unwrap());
        assert!(got == want, "{name}: {} rows, not the table's {}", got.len(), want.len());
    }
}

//! `--quiet`: stderr carries the errors and `dump`'s summary, nothing else: no progress (whatever
//! `--progress` says), no warnings, hints or notes.

use crate::dumping::portal;
use crate::{bare, run};

#[test]
fn a_quiet_dump_prints_its_summary_only() {
    let portal = portal(200, 0);
    let root = tempfile::tempdir().unwrap();
    let dump = |name: &str, flags: &[&str]| {
        run(portal
            .cmd()
            .args(flags)
            .args(["dump", "terminal", "--progress", "plain", "--insecure", "--out"])
            .arg(root.path().join(name)))
    };
    let loud = dump("loud", &[]);
    assert_eq!(loud.code, 0, "{}", loud.stderr);
    assert!(loud.stderr.contains("terminal: starting"), "{}", loud.stderr);
    assert!(loud.stderr.contains("warning: --insecure"), "{}", loud.stderr);

    let quiet = dump("quiet", &["--quiet"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    let lines: Vec<&str> = quiet.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", quiet.stderr);
    assert!(lines[0].starts_with("table ") && lines[0].contains("rows"), "{}", quiet.stderr);
    assert!(lines[1].starts_with("terminal ") && lines[1].contains(" 200 "), "{}", quiet.stderr);
    // The summary is the loud run's, under its progress lines and warnings.
    assert!(loud.stderr.contains(lines[0]), "{}", loud.stderr);

    // Errors still show, and only they.
    let r = run(portal
        .cmd()
        .args(["-q", "--insecure", "dump", "terminal", "--columns", "id,nope", "--out"])
        .arg(root.path().join("failed")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: terminal: unknown column nope"), "{}", r.stderr);
}

#[test]
fn quiet_silences_warnings_and_notes_of_every_command() {
    let portal = portal(10, 0);
    let r = run(portal.cmd().args(["--insecure", "-q", "auth"]));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert!(r.stdout.starts_with("logged in to "), "{}", r.stdout);
    // The demo portal's note, too.
    let demo = ["--demo", "--demo-rows", "terminal=10,tv_program=10,terminal_playlog=10", "auth"];
    let r = run(bare().args(demo));
    assert!(r.stderr.starts_with("demo: using a local demo portal"), "{}", r.stderr);
    let r = run(bare().arg("--quiet").args(demo));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}

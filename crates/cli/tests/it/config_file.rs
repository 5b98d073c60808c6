//! The config file: its settings apply below options and the environment, its location follows
//! `--config`, `IPTVPORTAL_CONFIG` and `XDG_CONFIG_HOME`, and a password in a file others can read
//! is warned about.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::dumping::portal;
use crate::{PASSWORD, bare, run};

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_file_connects_and_sets_dump_defaults() {
    let portal = portal(500, 0);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("from-file");
    let config = root.path().join("xdg/iptvportal/config.toml");
    write(
        &config,
        &format!(
            "[connection]\nportal = {:?}\nusername = \"admin\"\npassword = {PASSWORD:?}\ntimeout = 10\n\n[dump]\nout = {:?}\nformat = \"csv\"\nchunk_size = 100\n",
            portal.url(),
            out.display().to_string()
        ),
        0o600,
    );
    // Found at the XDG location, with nothing else given.
    let r = run(bare().env("XDG_CONFIG_HOME", root.path().join("xdg")).args([
        "dump",
        "terminal",
        "--progress",
        "none",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "no warning for a private file");
    assert!(out.join("terminal.csv").exists());

    // An option beats the file: --format and --out from the command line.
    let other = root.path().join("from-flags");
    let r = run(bare()
        .env("IPTVPORTAL_CONFIG", &config)
        .args(["dump", "terminal", "--progress", "none", "--format", "jsonl", "--out"])
        .arg(&other));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(other.join("terminal.jsonl").exists());

    // The environment beats the file: a wrong password in the environment is used, and refused.
    let r = run(bare()
        .arg("--config")
        .arg(&config)
        .env("IPTVPORTAL_PASSWORD", "wrong-Pa55word")
        .arg("auth"));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: login refused"), "{}", r.stderr);
}

#[test]
fn a_password_others_can_read_is_warned_about() {
    let portal = portal(10, 0);
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config.toml");
    write(
        &config,
        &format!(
            "[connection]\nportal = {:?}\nusername = \"admin\"\npassword = {PASSWORD:?}\n",
            portal.url()
        ),
        0o644,
    );
    let r = run(bare().arg("--config").arg(&config).arg("auth"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.starts_with(&format!(
            "warning: config file {} holds a password and is readable by other users",
            config.display()
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(PASSWORD));
}

#[test]
fn debug_logs_each_request_with_its_time_and_no_secret() {
    let portal = portal(10, 0);
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config.toml");
    write(&config, &format!("[connection]\npassword = {PASSWORD:?}\n"), 0o600);
    let r = run(portal
        .cmd()
        .env_remove("IPTVPORTAL_PASSWORD")
        .arg("--config")
        .arg(&config)
        .args(["--debug", "select", "--from", "package", "--data", "id", "--limit", "1"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("config file"), "{}", r.stderr);
    let requests: Vec<&str> = r.stderr.lines().filter(|l| l.contains("elapsed")).collect();
    assert!(requests.len() >= 2, "a line with its time per request: {}", r.stderr);
    assert!(!r.stderr.contains(PASSWORD), "{}", r.stderr);
}

#[test]
fn no_flags_switch_off_what_the_file_switches_on() {
    let portal = portal(50, 0);
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config.toml");
    write(
        &config,
        &format!(
            "[connection]\nportal = {:?}\nusername = \"admin\"\npassword = {PASSWORD:?}\ninsecure = true\n\n[dump]\ncompress = true\n",
            portal.url()
        ),
        0o600,
    );
    let dump = |out: &Path, flags: &[&str]| {
        run(bare()
            .arg("--config")
            .arg(&config)
            .args(["dump", "terminal", "--progress", "none", "--out"])
            .arg(out)
            .args(flags))
    };

    // The file's settings apply: gzip, and the warning that certificates are not verified.
    let from_file = root.path().join("from-file");
    let r = dump(&from_file, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("warning: --insecure"), "{}", r.stderr);
    assert!(from_file.join("terminal.jsonl.gz").exists());

    // --no-compress and --no-insecure turn them off.
    let plain = root.path().join("plain");
    let r = dump(&plain, &["--no-compress", "--no-insecure"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    assert!(plain.join("terminal.jsonl").exists());
    assert!(!plain.join("terminal.jsonl.gz").exists());

    // The last of a pair on the command line wins.
    let last = root.path().join("last");
    let r = dump(&last, &["--no-compress", "--compress"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(last.join("terminal.jsonl.gz").exists());

    // --compress-level applies to the file's compress = true: the same rows, other bytes.
    let level9 = root.path().join("level9");
    let r = dump(&level9, &["--compress-level", "9"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (a, b) = (from_file.join("terminal.jsonl.gz"), level9.join("terminal.jsonl.gz"));
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(
        iptvportal_testkit::gunzip(&std::fs::read(&a).unwrap()),
        iptvportal_testkit::gunzip(&std::fs::read(&b).unwrap())
    );
    // … but not to output that is not gzipped.
    let r = dump(&root.path().join("refused"), &["--no-compress", "--compress-level", "3"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--compress-level needs --compress"), "{}", r.stderr);
}

//! `--demo` end to end, kept small with the hidden `--demo-rows`: every table dumped with no
//! portal and no credentials, and `select` and `auth` against the same demo portal.

use crate::{bare, run, success};

/// Small sizes for the demo's big tables; the others keep the simulator's defaults.
const SMALL: &str = "terminal=3000,tv_program=500,terminal_playlog=500";

#[test]
fn demo_dumps_every_table_without_a_portal() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("dumps");
    // Credentials in the environment are ignored: the demo has its own.
    let r = run(bare()
        .env("IPTVPORTAL_URL", "http://127.0.0.1:9/")
        .env("IPTVPORTAL_PASSWORD", "not-the-demo-password")
        .args(["dump", "--demo", "--demo-rows", SMALL, "--all", "--out"])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().filter(|l| l.starts_with("demo: using a local demo portal")).count(),
        1,
        "{}",
        r.stderr
    );
    for table in iptvportal_catalog::TABLES {
        assert!(out.join(format!("{}.jsonl", table.name)).exists(), "{}", table.name);
    }
    let lines = std::fs::read_to_string(out.join("terminal.jsonl")).unwrap().lines().count();
    assert_eq!(lines, 3000);

    // The same data again: the rerun finds every table complete.
    let r = run(bare().args(["dump", "--demo", "--demo-rows", SMALL, "--all", "--out"]).arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr.matches("already complete").count(), iptvportal_catalog::TABLES.len());
}

#[test]
fn demo_serves_select_and_auth() {
    let out = success(bare().args([
        "select",
        "--demo",
        "--demo-rows",
        SMALL,
        "--from",
        "package",
        "--data",
        "id",
        "--limit",
        "2",
    ]));
    assert_eq!(out, "id\n--\n 1\n 2\n(2 rows)\n");
    let out = success(bare().args(["--demo", "--demo-rows", SMALL, "auth"]));
    assert!(
        out.starts_with("logged in to http://127.0.0.1:") && out.contains("username: admin"),
        "{out}"
    );
}

#[test]
fn demo_rows_need_demo_and_known_tables() {
    let r = run(bare().args(["--demo-rows", "terminal=1", "auth"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run(bare().args(["--demo", "--demo-rows", "nope=1", "auth"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("error: --demo-rows names \"nope\""), "{}", r.stderr);
}

/// The demo's sizes kept smallest, for tests that dump only `terminal`.
const TINY: &str = "terminal=200,tv_program=10,terminal_playlog=10";

#[test]
fn demo_ignores_the_connection_variables() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("dumps");
    // clap once took IPTVPORTAL_USERNAME for --username given, which --demo refuses.
    let r = run(bare()
        .env("IPTVPORTAL_USERNAME", "admin")
        .env("IPTVPORTAL_PASSWORD", "x")
        .env("IPTVPORTAL_URL", "http://127.0.0.1:9/")
        .args(["dump", "--demo", "--demo-rows", TINY, "terminal", "--progress", "none", "--out"])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = std::fs::read_to_string(out.join("terminal.jsonl")).unwrap().lines().count();
    assert_eq!(lines, 200);

    let out = success(
        bare().env("IPTVPORTAL_USERNAME", "nobody").env("IPTVPORTAL_DOMAIN", "acme").args([
            "--demo",
            "--demo-rows",
            TINY,
            "auth",
        ]),
    );
    assert!(
        out.starts_with("logged in to http://127.0.0.1:") && out.contains("username: admin"),
        "{out}"
    );
}

#[test]
fn demo_ignores_the_connection_of_the_config_file() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config.toml");
    std::fs::write(
        &config,
        "[connection]\nportal = \"http://127.0.0.1:9/\"\nusername = \"nobody\"\n",
    )
    .unwrap();
    let out = root.path().join("dumps");
    let r = run(bare()
        .arg("--config")
        .arg(&config)
        .env("IPTVPORTAL_PASSWORD", "x")
        .args(["dump", "--demo", "--demo-rows", TINY, "terminal", "--progress", "none", "--out"])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(out.join("terminal.jsonl").exists());
}

#[test]
fn demo_with_connection_options_is_a_usage_error() {
    for (option, shown) in [
        (&["--portal", "http://127.0.0.1:9/"][..], "'--portal <URL>'"),
        (&["--domain", "acme"], "'--domain <D>'"),
        (&["--username", "admin"], "'--username <U>'"),
        (&["--password-stdin"], "'--password-stdin'"),
    ] {
        // Also with the variables set: the options are what is refused.
        let r = run(bare()
            .env("IPTVPORTAL_USERNAME", "admin")
            .env("IPTVPORTAL_PASSWORD", "x")
            .args(["dump", "--demo", "terminal"])
            .args(option));
        assert_eq!(r.code, 2, "{option:?}: {}", r.stderr);
        assert!(
            r.stderr
                .starts_with(&format!("error: the argument '--demo' cannot be used with {shown}")),
            "{option:?}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("demo: using"), "{}", r.stderr);
    }
}

#[test]
fn a_demo_checkpoint_resumes_only_with_the_same_demo_data() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("dumps");
    let dump = |rows: &str| {
        run(bare()
            .args(["dump", "--demo", "--demo-rows", rows, "terminal", "--progress", "none"])
            .arg("--out")
            .arg(&out))
    };
    assert_eq!(dump(TINY).code, 0);
    // A new demo portal (another port) with the same data is the same portal...
    let again = dump(TINY);
    assert_eq!(again.code, 0, "{}", again.stderr);
    // ...and one with other data is not.
    let other = dump("terminal=300,tv_program=10,terminal_playlog=10");
    assert_eq!(other.code, 1, "{}", other.stderr);
    assert!(
        other.stderr.contains(
            "was written with other options (portal was demo terminal=200,tv_program=10,terminal_playlog=10 and is now demo terminal=300,tv_program=10,terminal_playlog=10)"
        ),
        "{}",
        other.stderr
    );
}

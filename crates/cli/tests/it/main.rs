//! The `iptvportal` binary against an in-process simulator: output formats, filters, and the one-line
//! errors and exit codes of every failure.

mod bounds;
mod cli_help;
mod completions;
mod config_file;
mod config_unreadable;
mod demo;
mod dump_crash;
mod dump_errors;
mod dump_exclude;
mod dump_hangup;
mod dump_output;
mod dump_parts;
mod dump_strategy;
mod dumping;
mod errors;
mod filter_types;
mod plan;
mod progress_live;
mod quiet;
mod s3;
mod s3_read;
mod status;
mod summary;
mod sync;
mod tables;
mod tour;
mod verify;

use std::collections::BTreeSet;

use assert_cmd::Command;
use iptvportal_sim::{Sim, SimConfig};
use serde_json::Value;

const PASSWORD: &str = "s3cr3t-Pa55word";

/// A simulator serving on a runtime of its own, alive as long as this value.
struct Portal {
    runtime: tokio::runtime::Runtime,
    sim: Option<Sim>,
}

impl Portal {
    fn start(config: SimConfig) -> Portal {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sim = runtime
            .block_on(Sim::start(config.credentials("admin", PASSWORD)))
            .expect("simulator starts");
        Portal { runtime, sim: Some(sim) }
    }

    fn url(&self) -> &str {
        self.sim().url()
    }

    fn sim(&self) -> &Sim {
        self.sim.as_ref().unwrap()
    }

    /// `iptvportal --portal <sim>` with the simulator's credentials in the environment.
    fn cmd(&self) -> Command {
        let mut cmd = bare();
        cmd.args(["--portal", self.url()])
            .env("IPTVPORTAL_USERNAME", "admin")
            .env("IPTVPORTAL_PASSWORD", PASSWORD);
        cmd
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.runtime.block_on(sim.shutdown());
        }
    }
}

/// `iptvportal` with none of its variables inherited from the environment running the tests, no
/// config file (the default location points nowhere) and help wrapped at 100 columns.
fn bare() -> Command {
    let mut cmd = Command::cargo_bin("iptvportal").unwrap();
    isolate(cmd.env("COLUMNS", "100"));
    cmd
}

/// Removes what the environment running the tests could leak into a run: connection variables
/// and the config file.
fn isolate<C: Isolate>(cmd: &mut C) -> &mut C {
    for var in [
        "IPTVPORTAL_URL",
        "IPTVPORTAL_DOMAIN",
        "IPTVPORTAL_USERNAME",
        "IPTVPORTAL_PASSWORD",
        "IPTVPORTAL_CONFIG",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT",
        "AWS_ALLOW_HTTP",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
        "AWS_PROFILE",
    ] {
        cmd.remove(var);
    }
    cmd.set("XDG_CONFIG_HOME", "/nonexistent/iptvportal-tests");
    cmd
}

/// The two command types the tests build.
trait Isolate {
    fn remove(&mut self, var: &str);
    fn set(&mut self, var: &str, value: &str);
}

impl Isolate for Command {
    fn remove(&mut self, var: &str) {
        self.env_remove(var);
    }
    fn set(&mut self, var: &str, value: &str) {
        self.env(var, value);
    }
}

impl Isolate for std::process::Command {
    fn remove(&mut self, var: &str) {
        self.env_remove(var);
    }
    fn set(&mut self, var: &str, value: &str) {
        self.env(var, value);
    }
}

fn packages() -> Portal {
    Portal::start(SimConfig::default().seed(1).rows("package", 40))
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Asserts a failure: exit 1, one `error: …; …` line on stderr, nothing on stdout, no panic and no
/// password anywhere. Returns the line.
fn failure(cmd: &mut Command) -> String {
    let r = run(cmd);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr.lines().count(), 1, "one line: {:?}", r.stderr);
    let line = r.stderr.trim_end().to_owned();
    assert!(line.starts_with("error: ") && line.contains("; "), "{line}");
    assert!(!line.contains("panicked") && !line.contains("RUST_BACKTRACE"), "{line}");
    assert!(!line.contains(PASSWORD) && !line.contains("wrong-Pa55word"), "{line}");
    line
}

fn success(cmd: &mut Command) -> String {
    let r = run(cmd);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    r.stdout
}

fn jsonl_ids(stdout: &str) -> Vec<i64> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_i64().unwrap())
        .collect()
}

const FIRST_THREE: [&str; 9] =
    ["select", "--from", "package", "--data", "id,name", "--order-by", "id", "--limit", "3"];

#[test]
fn select_prints_an_aligned_table_by_default() {
    let portal = packages();
    let out = success(portal.cmd().args(FIRST_THREE));
    assert_eq!(
        out,
        "\
id  name
--  ---------
 1  HD Pack 4
 2  Кино 3
 3  Премиум 7
(3 rows)
"
    );
}

#[test]
fn select_prints_json_and_json_lines() {
    let portal = packages();
    let out = success(portal.cmd().args(FIRST_THREE).args(["--format", "json"]));
    assert_eq!(
        out,
        r#"[
  {
    "id": 1,
    "name": "HD Pack 4"
  },
  {
    "id": 2,
    "name": "Кино 3"
  },
  {
    "id": 3,
    "name": "Премиум 7"
  }
]
"#
    );
    let out = success(portal.cmd().args(FIRST_THREE).args(["--format", "jsonl"]));
    assert_eq!(
        out,
        r#"{"id":1,"name":"HD Pack 4"}
{"id":2,"name":"Кино 3"}
{"id":3,"name":"Премиум 7"}
"#
    );
}

#[test]
fn star_on_a_known_table_is_named_by_the_catalog() {
    let portal = packages();
    let out = success(
        portal.cmd().args(["select", "--from", "package", "--limit", "2", "--format", "jsonl"]),
    );
    let expected: Vec<&str> =
        iptvportal_catalog::table("package").unwrap().column_names().collect();
    for line in out.lines() {
        assert_eq!(iptvportal_testkit::Ordered::parse(line).keys(), expected);
    }
    assert_eq!(out.lines().count(), 2);
}

#[test]
fn where_filters_are_anded() {
    let portal = packages();
    let all = jsonl_ids(&success(
        portal.cmd().args(["select", "--from", "package", "--data", "id", "--format", "jsonl"]),
    ));
    assert_eq!(all.len(), 40);
    let (low, high) = (all[5], all[20]);
    let out = success(
        portal
            .cmd()
            .args(["select", "--from", "package", "--data", "id", "--format", "jsonl"])
            .args([
                "--where",
                &format!("id__gte={low}"),
                "--where",
                &format!("id__lt={high}"),
                "--order-by",
                "id DESC",
            ]),
    );
    let expected: Vec<i64> =
        all.iter().rev().copied().filter(|&id| id >= low && id < high).collect();
    assert_eq!(jsonl_ids(&out), expected);

    let out = success(portal.cmd().args([
        "select",
        "--from",
        "package",
        "--data",
        "id",
        "--format",
        "jsonl",
        "--where",
        "id__in=1,2,3",
        "--where-json",
        r#"{"not":[{"eq":["id",2]}]}"#,
    ]));
    let got: BTreeSet<i64> = jsonl_ids(&out).into_iter().collect();
    let expected: BTreeSet<i64> = all.iter().copied().filter(|id| [1, 3].contains(id)).collect();
    assert_eq!(got, expected);
}

#[test]
fn limit_and_offset_page_through_the_rows() {
    let portal = packages();
    let all = jsonl_ids(&success(portal.cmd().args([
        "select",
        "--from",
        "package",
        "--data",
        "id",
        "--order-by",
        "id",
        "--format",
        "jsonl",
    ])));
    let page = jsonl_ids(&success(portal.cmd().args([
        "select",
        "--from",
        "package",
        "--data",
        "id",
        "--order-by",
        "id",
        "--limit",
        "4",
        "--offset",
        "10",
        "--format",
        "jsonl",
    ])));
    assert_eq!(page, all[10..14]);
}

#[test]
fn auth_says_who_we_are_and_never_the_session() {
    let portal = packages();
    let out = success(portal.cmd().arg("auth"));
    assert!(out.starts_with(&format!("logged in to {}\nusername: admin\n", portal.url())), "{out}");
    assert!(
        !out.as_bytes().windows(32).any(|w| w.iter().all(u8::is_ascii_hexdigit)),
        "a session id in {out}"
    );

    let out = success(
        portal
            .cmd()
            .env_remove("IPTVPORTAL_PASSWORD")
            .args(["--password-stdin", "auth"])
            .write_stdin(format!("{PASSWORD}\n")),
    );
    assert!(out.starts_with("logged in to "), "{out}");
}

#[test]
fn debug_logs_requests_without_secrets() {
    let portal = packages();
    let r = run(portal
        .cmd()
        .args(["--debug", "select", "--from", "package", "--data", "id", "--limit", "1"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("authorize_user") && r.stderr.contains("select"), "{}", r.stderr);
    assert!(!r.stderr.contains(PASSWORD), "{}", r.stderr);
    assert!(
        !r.stderr.as_bytes().windows(32).any(|w| w.iter().all(u8::is_ascii_hexdigit)),
        "{}",
        r.stderr
    );
}

#[test]
fn a_wrong_password_is_one_line_naming_the_variables() {
    let portal = packages();
    let line = failure(portal.cmd().env("IPTVPORTAL_PASSWORD", "wrong-Pa55word").arg("auth"));
    assert!(line.starts_with("error: login refused"), "{line}");
    assert!(line.contains("IPTVPORTAL_USERNAME") && line.contains("IPTVPORTAL_PASSWORD"), "{line}");
}

#[test]
fn an_unreachable_portal_says_where_it_looked() {
    let line = failure(
        bare()
            .args(["--portal", "http://127.0.0.1:9/", "--max-retries", "0", "auth"])
            .env("IPTVPORTAL_USERNAME", "admin")
            .env("IPTVPORTAL_PASSWORD", PASSWORD),
    );
    assert_eq!(
        line,
        "error: cannot connect to http://127.0.0.1:9/api/: connection refused; \
         check --portal / IPTVPORTAL_URL (or --domain / IPTVPORTAL_DOMAIN) and that the portal is reachable"
    );
}

#[test]
fn an_unknown_table_carries_the_servers_message() {
    let portal = packages();
    let line = failure(portal.cmd().args(["select", "--from", "no_such_table"]));
    assert!(
        line.contains("no_such_table") && line.contains("the portal refused the request"),
        "{line}"
    );
    let line =
        failure(portal.cmd().args(["select", "--from", "package", "--data", "id,no_such_column"]));
    assert!(line.contains("no_such_column"), "{line}");
}

#[test]
fn bad_filters_are_refused_before_connecting() {
    // No portal and no credentials: the filter is checked first.
    let line = failure(bare().args(["select", "--from", "package", "--where", "id__foo=1"]));
    assert!(line.contains("unknown lookup \"foo\"") && line.contains("--help"), "{line}");
    let line = failure(bare().args(["select", "--from", "package", "--where", "no equals sign"]));
    assert!(line.contains("FIELD__LOOKUP=VALUE"), "{line}");
    let line = failure(bare().args(["select", "--from", "package", "--where-json", "{not json"]));
    assert!(line.starts_with("error: invalid filter"), "{line}");
    let line = failure(bare().args(["select", "--from", "package", "--order-by", "id sideways"]));
    assert!(line.contains("sideways"), "{line}");
    let line = failure(bare().args(["select", "--from", "bad-name"]));
    assert!(line.contains("bad-name"), "{line}");
}

#[test]
fn missing_connection_settings_name_what_to_set() {
    let line = failure(bare().args(["auth"]));
    assert!(line.contains("--portal") && line.contains("IPTVPORTAL_URL"), "{line}");
    let line = failure(bare().args(["--portal", "http://127.0.0.1:9/", "auth"]));
    assert!(line.contains("IPTVPORTAL_USERNAME"), "{line}");
    let line =
        failure(bare().args(["--portal", "http://127.0.0.1:9/", "--username", "admin", "auth"]));
    assert!(line.contains("IPTVPORTAL_PASSWORD") && line.contains("--password-stdin"), "{line}");
    let line = failure(
        bare()
            .args(["--portal", "not a url", "--username", "admin", "auth"])
            .env("IPTVPORTAL_PASSWORD", "x"),
    );
    assert!(line.starts_with("error: invalid portal url"), "{line}");
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["select"][..],
        &["select", "--from", "package", "--format", "xml"],
        &["select", "--from", "package", "--limit", "-1"],
        &["--timeout", "0", "auth"],
        &["frobnicate"],
        &[],
    ] {
        let r = run(bare().args(args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}

#[test]
fn help_shows_examples() {
    let out = success(bare().arg("--help"));
    assert!(out.contains("Examples:") && out.contains("IPTVPORTAL_URL"), "{out}");
    let out = success(bare().args(["select", "--help"]));
    assert!(
        out.contains("iptvportal select --from package --data id,name --order-by id --limit 3"),
        "{out}"
    );
}

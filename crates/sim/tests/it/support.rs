//! Helpers shared by the test modules: a started simulator with a logged-in session, and direct
//! access to its SQLite file for the expected answers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use iptvportal_sim::{Sim, SimConfig};
use reqwest::StatusCode;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

/// Small sizes: large enough for every operator to match something, quick to generate.
pub(crate) fn small() -> SimConfig {
    SimConfig::default()
        .rows("subscriber", 600)
        .rows("terminal", 1500)
        .rows("tv_program", 1500)
        .rows("tv_program_category", 1000)
        .rows("terminal_playlog", 1000)
        .rows("subscriber_package", 800)
}

pub(crate) struct Portal {
    pub(crate) sim: Sim,
    pub(crate) http: reqwest::Client,
    pub(crate) session: String,
}

impl Portal {
    pub(crate) async fn start(config: SimConfig) -> Portal {
        let sim = Sim::start(config).await.expect("simulator starts");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        let session =
            login(&http, sim.url(), "admin", "admin").await.expect("default credentials log in");
        Portal { sim, http, session }
    }

    /// Starts without logging in, for tests that drive authentication themselves.
    pub(crate) async fn start_logged_out(config: SimConfig) -> Portal {
        let sim = Sim::start(config).await.expect("simulator starts");
        Portal { sim, http: reqwest::Client::new(), session: String::new() }
    }

    /// Posts a select and returns the HTTP status and the parsed body.
    pub(crate) async fn call(&self, params: Value) -> (StatusCode, Value) {
        let body = json!({"jsonrpc":"2.0","id":7,"method":"select","params":params});
        post(&self.http, &format!("{}jsonsql/", self.sim.url()), Some(&self.session), &body).await
    }

    /// A select that must succeed: its `result`.
    pub(crate) async fn select(&self, params: Value) -> Value {
        let (status, body) = self.call(params.clone()).await;
        assert_eq!(status, StatusCode::OK, "{params} -> {body}");
        assert_eq!(body["id"], 7, "{body}");
        body.get("result").cloned().unwrap_or_else(|| panic!("{params} -> {body}"))
    }

    /// A select that must fail: its status and `error` object.
    pub(crate) async fn error(&self, params: Value) -> (StatusCode, Value) {
        let (status, body) = self.call(params.clone()).await;
        let error =
            body.get("error").cloned().unwrap_or_else(|| panic!("{params} succeeded: {body}"));
        (status, error)
    }

    /// The simulator's database, opened the way the simulator opens it (case-sensitive LIKE).
    pub(crate) fn db(&self) -> Connection {
        open_db(self.sim.db_path())
    }

    pub(crate) fn ids(&self, sql: &str) -> Vec<i64> {
        let conn = self.db();
        let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }
}

pub(crate) fn open_db(path: &std::path::Path) -> Connection {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.pragma_update(None, "case_sensitive_like", true).unwrap();
    // The simulator's `unicode` collation (`--collation unicode`), so that expected answers
    // can be written with `COLLATE unicode`: the same rule, written out independently.
    conn.create_collation("unicode", |a: &str, b: &str| {
        let key = |s: &str| {
            s.chars()
                .flat_map(char::to_lowercase)
                .map(|c| if c == 'ё' { 'е' } else { c })
                .collect::<Vec<_>>()
        };
        key(a).cmp(&key(b)).then_with(|| a.cmp(b))
    })
    .unwrap();
    conn
}

pub(crate) async fn post(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    let mut request = http.post(url).json(body);
    if let Some(s) = session {
        request = request.header("Iptvportal-Authorization", format!("sessionid={s}"));
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

/// Logs in; `Err` carries the JSON-RPC error object.
pub(crate) async fn login(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> Result<String, Value> {
    let body = json!({"jsonrpc":"2.0","id":1,"method":"authorize_user","params":{"username":user,"password":password}});
    let (status, body) = post(http, &format!("{base}jsonrpc/"), None, &body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    match body.get("result") {
        Some(r) => Ok(r["session_id"].as_str().expect("a session id").to_owned()),
        None => Err(body["error"].clone()),
    }
}

/// The first column of a result as integers.
pub(crate) fn column_i64(result: &Value) -> Vec<i64> {
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_i64().unwrap_or_else(|| panic!("{row}")))
        .collect()
}

const BIN: &str = env!("CARGO_BIN_EXE_iptvportal-sim");

/// `iptvportal-sim serve ARGS` as a process, and the URL it printed first on stdout.
pub(crate) async fn spawn_serve(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    })
    .await
    .unwrap();
    assert!(url.ends_with("/api/"), "serve printed {url:?}");
    (child, url)
}

/// Stops a `serve` process with SIGTERM and requires a clean exit.
pub(crate) async fn stop(mut child: Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

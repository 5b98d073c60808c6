//! The two processes under test: the simulator (started once per scenario group, stopped with
//! SIGTERM) and the `iptvportal` binary (one process per command, its output kept in log files so the
//! secrets scan sees everything it ever printed).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `iptvportal-sim serve`.
pub(crate) struct Sim {
    child: Child,
    /// The API base it printed on its first stdout line.
    pub(crate) url: String,
}

impl Sim {
    /// Starts the simulator on a free loopback port over `db` and waits for its URL line.
    pub(crate) fn start(bin: &Path, db: &Path, args: &[&str], log: &Path) -> Result<Sim, String> {
        let stderr = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        // The reader thread keeps draining stdout after the URL line, so the simulator never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Some(Ok(line))) => line.trim().to_owned(),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the simulator printed no URL ({other:?}); see {}",
                    log.display()
                ));
            }
        };
        Ok(Sim { child, url })
    }

    /// The simulator's request counters (`GET /stats`, beside the API: `select_calls`,
    /// `authorize_calls`, injected faults), read over a plain HTTP/1.1 request so the harness
    /// needs no HTTP client. Reading them is not counted.
    pub(crate) fn stats(&self) -> Result<serde_json::Value, String> {
        use std::io::{Read as _, Write as _};
        let host = self
            .url
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .ok_or_else(|| format!("not an http URL: {}", self.url))?;
        let mut stream =
            std::net::TcpStream::connect(host).map_err(|e| format!("connecting to {host}: {e}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        write!(stream, "GET /stats HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
            .map_err(|e| format!("GET /stats: {e}"))?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).map_err(|e| format!("GET /stats: {e}"))?;
        let (head, body) = answer.split_once("\r\n\r\n").ok_or("GET /stats: no body")?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("GET /stats: {}", head.lines().next().unwrap_or_default()));
        }
        serde_json::from_str(body).map_err(|e| format!("GET /stats: {e}: {body}"))
    }

    /// `select_calls` of [`Sim::stats`].
    pub(crate) fn select_calls(&self) -> Result<u64, String> {
        let stats = self.stats()?;
        stats["select_calls"].as_u64().ok_or_else(|| format!("no select_calls in {stats}"))
    }

    /// Stops the simulator with SIGTERM, as an operator would, and checks that it exits cleanly.
    pub(crate) fn stop(mut self) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        if !sent.as_ref().is_ok_and(ExitStatus::success) {
            return Err(format!("kill -TERM {pid} failed: {sent:?}"));
        }
        match wait_timeout(&mut self.child, Duration::from_secs(20)) {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!("the simulator exited with {status} on SIGTERM")),
            None => Err("the simulator did not stop within 20 s of SIGTERM".to_owned()),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // Only reached without `stop` when a scenario bailed out; the process must not outlive us.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for `child` at most `limit`; `None` when it is still running then.
pub(crate) fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How to run the `iptvportal` binary against one portal.
pub(crate) struct Cli {
    bin: PathBuf,
    logs: PathBuf,
    counter: AtomicU64,
    pub(crate) url: String,
    pub(crate) user: String,
    pub(crate) password: String,
}

/// One finished `iptvportal` process.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code; `None` when killed (by us, on timeout).
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

impl Run {
    /// `Ok` when the process exited 0; else what it said.
    pub(crate) fn success(&self) -> Result<(), String> {
        if self.code == Some(0) {
            Ok(())
        } else {
            Err(format!("exit {:?}: {}", self.code, last_lines(&self.stderr, 4)))
        }
    }
}

/// The last `n` lines of `text`, joined with ` | ` for a one-line failure message.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// One command line about to run.
pub(crate) struct Invocation<'a> {
    cli: &'a Cli,
    args: Vec<String>,
    env: Vec<(String, String)>,
    portal: bool,
}

/// A started `iptvportal` process (for kill trials).
pub(crate) struct Spawned {
    pub(crate) child: Child,
    started: Instant,
    out: PathBuf,
    err: PathBuf,
}

impl Spawned {
    /// Waits for the end (at most `limit`, then kills) and collects the output.
    pub(crate) fn finish(mut self, limit: Duration) -> Run {
        let status = wait_timeout(&mut self.child, limit);
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let elapsed = self.started.elapsed();
        Run {
            code: status.and_then(|s| s.code()),
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
            elapsed,
        }
    }
}

impl Cli {
    pub(crate) fn new(bin: &Path, logs: &Path, url: &str, user: &str, password: &str) -> Cli {
        Cli {
            bin: bin.to_owned(),
            logs: logs.to_owned(),
            counter: AtomicU64::new(0),
            url: url.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    /// `iptvportal ARGS…` with `--portal` and the credentials in the environment.
    pub(crate) fn cmd<S: AsRef<str>>(&self, args: &[S]) -> Invocation<'_> {
        Invocation {
            cli: self,
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
            env: vec![
                ("IPTVPORTAL_USERNAME".to_owned(), self.user.clone()),
                ("IPTVPORTAL_PASSWORD".to_owned(), self.password.clone()),
            ],
            portal: true,
        }
    }
}

impl Invocation<'_> {
    /// Sets (or with an empty value, removes) an environment variable.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Leaves `--portal` out.
    pub(crate) fn no_portal(mut self) -> Self {
        self.portal = false;
        self
    }

    /// Starts the process, its output going to numbered files in the log directory.
    pub(crate) fn spawn(self) -> Spawned {
        let n = self.cli.counter.fetch_add(1, Ordering::SeqCst);
        let base = self.cli.logs.join(format!("{n:05}"));
        let (out, err) = (base.with_extension("out"), base.with_extension("err"));
        let mut command = Command::new(&self.cli.bin);
        if self.portal {
            command.args(["--portal", &self.cli.url]);
        }
        command.args(&self.args);
        // Nothing from the harness's own environment may point the binary elsewhere.
        for key in
            ["IPTVPORTAL_URL", "IPTVPORTAL_DOMAIN", "IPTVPORTAL_USERNAME", "IPTVPORTAL_PASSWORD"]
        {
            command.env_remove(key);
        }
        for (k, v) in &self.env {
            if !v.is_empty() {
                command.env(k, v);
            }
        }
        // A panic must be loud: the bad-input checks look for its traces.
        command.env("RUST_BACKTRACE", "1");
        // The command line, for replaying a failure by hand. Written by hand, not with `Command`'s
        // `Debug`, which would print the password from the environment.
        let mut line = self.cli.bin.display().to_string();
        if self.portal {
            let _ = write!(line, " --portal {}", self.cli.url);
        }
        for arg in &self.args {
            let _ = write!(line, " '{arg}'");
        }
        let _ = std::fs::write(base.with_extension("cmd"), line + "\n");
        let started = Instant::now();
        let child = command
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("log directory is writable"))
            .stderr(File::create(&err).expect("log directory is writable"))
            .spawn()
            .expect("the iptvportal binary starts");
        Spawned { child, started, out, err }
    }

    /// Runs to the end (killed after `limit`).
    pub(crate) fn run(self, limit: Duration) -> Run {
        self.spawn().finish(limit)
    }
}

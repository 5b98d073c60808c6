//! `dump --out s3://` against a real S3 API (`moto_server` on loopback, docs/object-storage.md):
//! every format (gzip too) and strategy dumped to the bucket, read back through pyarrow's S3
//! filesystem (`pyarrow.dataset` for Parquet) and by every reader of a local copy, against the
//! simulator's SQLite; then SIGKILL trials, each resumed (its stage sometimes wiped, as on another
//! machine), whose objects must be the uninterrupted run's: the same keys, sizes and bytes, and
//! exactly the manifest's.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::{Strategy, strings};
use crate::Ctx;
use crate::files::{Format, Output};
use crate::python::entry_outcome;
use crate::report::Report;

const TABLE: &str = "terminal";
const BUCKET: &str = "e2e";
const KEY: &str = "e2e-key";
/// Never in an output, a message or an object (checked on every run's stderr and the stages).
const SECRET: &str = "e2e-S3-secret-never-shown";
const LIMIT: Duration = Duration::from_secs(120);
/// Kills to land at least, and the time the trials may take.
const MIN_KILLS: u64 = 30;
const BUDGET: Duration = Duration::from_secs(120);

/// A running `moto_server`, stopped when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$MOTO_SERVER`, else `target/moto-venv/bin/moto_server` (`cargo xtask venv`), else the `PATH`.
fn moto_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/moto-venv/bin/moto_server");
    if venv.exists() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|p| p.join("moto_server")).find(|p| p.exists())
    })
}

impl Moto {
    fn start(log: &Path) -> Result<Moto, String> {
        let bin = moto_server().ok_or(
            "moto_server not found: run `cargo xtask venv` (it installs moto[server] into \
             target/moto-venv), or set MOTO_SERVER",
        )?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let moto = Moto { child, port };
        let began = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if began.elapsed() > Duration::from_secs(30) {
                return Err("moto_server did not listen within 30 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One unsigned request (moto takes them): the status line's code and the body.
    fn http(&self, method: &str, path: &str) -> Result<(u16, String), String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: \
             close\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        let mut text = String::new();
        stream.read_to_string(&mut text).map_err(|e| e.to_string())?;
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((status, text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned()))
    }
}

/// One dump to the bucket.
struct Case {
    output: Output,
    strategy: Strategy,
}

impl Case {
    fn label(&self) -> String {
        format!("{}-{}", self.output.label(), self.strategy.label())
    }

    /// The command: parts of 1,000 rows (four for 4,000 rows), chunks of 100.
    fn args(&self, prefix: &str, stage: &Path) -> Vec<String> {
        let mut args = strings(&["dump", TABLE, "--out"]);
        args.push(format!("s3://{BUCKET}/{prefix}"));
        args.push("--stage".to_owned());
        args.push(stage.display().to_string());
        args.extend(self.output.args());
        args.extend(self.strategy.args());
        args.extend(strings(&["--chunk-size", "100", "--part-rows", "1000", "--progress", "none"]));
        args
    }
}

/// Every format once, the strategies in turn, and Parquet with each strategy.
fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Output::ALL
        .iter()
        .zip(Strategy::ALL.iter().cycle())
        .map(|(&output, &strategy)| Case { output, strategy })
        .collect();
    let parquet = Output { format: Format::Parquet, gzip: false };
    for strategy in Strategy::ALL {
        if !cases.iter().any(|c| c.output == parquet && c.strategy == strategy) {
            cases.push(Case { output: parquet, strategy });
        }
    }
    cases
}

#[expect(clippy::too_many_lines, reason = "the phase reads best as its steps in order")]
pub(crate) fn run(ctx: &Ctx, report: &mut Report) {
    let moto = match Moto::start(&ctx.work.join("moto.log")) {
        Ok(moto) => moto,
        Err(e) => return report.check("start moto_server", Err(e)),
    };
    let made = moto.http("PUT", &format!("/{BUCKET}"));
    if !matches!(made, Ok((200, _))) {
        return report.check("create the bucket", Err(format!("{made:?}")));
    }
    let endpoint = moto.endpoint();
    let dump = |args: &[String]| {
        ctx.cli
            .cmd(args)
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ALLOW_HTTP", "true")
    };
    let no_secret = |stderr: &str| {
        if stderr.contains(SECRET) { Err("the secret key is in stderr".to_owned()) } else { Ok(()) }
    };
    // `iptvportal verify s3://...` on a finished output: every part downloaded and checked
    // against the manifest.
    let verified = |prefix: &str| {
        let run = dump(&[
            "verify".to_owned(),
            format!("s3://{BUCKET}/{prefix}"),
            "--format".to_owned(),
            "json".to_owned(),
        ])
        .no_portal()
        .run(LIMIT);
        run.success()?;
        let doc: Value = serde_json::from_str(&run.stdout).map_err(|e| e.to_string())?;
        let ok = doc["tables"][0]["table"] == TABLE
            && doc["tables"][0]["status"] == "ok"
            && doc["summary"]["tables"] == 1;
        if ok { Ok(()) } else { Err(format!("verify said {}", run.stdout.trim())) }
    };

    // Every case, uninterrupted, read back.
    let cases = cases();
    let mut cells = Vec::new();
    let mut took = Vec::new();
    for case in &cases {
        let prefix = format!("whole/{}", case.label());
        let stage = ctx.work.join("s3-stage").join(case.label());
        let run = dump(&case.args(&prefix, &stage)).run(LIMIT);
        let outcome = run.success().and_then(|()| no_secret(&run.stderr));
        report.check(&format!("s3 dump {}", case.label()), outcome);
        report.check(&format!("s3 verify {}", case.label()), verified(&prefix));
        took.push(run.elapsed);
        cells.push(json!({
            "name": case.label(),
            "table": TABLE,
            "format": case.output.format_name(),
            "compress": case.output.gzip,
            "prefix": prefix,
            "local": ctx.work.join("s3-read").join(case.label()),
        }));
    }

    // Kill trials over two outputs, the stage wiped after a third of the kills.
    let killed = [
        Case { output: Output { format: Format::Jsonl, gzip: true }, strategy: Strategy::IdRange },
        Case {
            output: Output { format: Format::Parquet, gzip: false },
            strategy: Strategy::Parallel3,
        },
    ];
    let mut rng = StdRng::seed_from_u64(ctx.seed.wrapping_add(13));
    let longest = took.iter().max().copied().unwrap_or(Duration::from_secs(1));
    let (mut kills, mut trials, mut wiped) = (0u64, 0u64, 0u64);
    let mut compare = Vec::new();
    let began = Instant::now();
    while kills < MIN_KILLS && began.elapsed() < BUDGET {
        let case = &killed[usize::try_from(trials % 2).unwrap_or(0)];
        trials += 1;
        let prefix = format!("killed/{}-{trials}", case.label());
        let stage = ctx.work.join("s3-stage").join(format!("killed-{trials}"));
        let args = case.args(&prefix, &stage);
        let mut finished = None;
        // One to three kills, then a run to the end.
        let to_kill = rng.random_range(1..=3);
        for attempt in 0..=to_kill {
            let spawned = dump(&args).spawn();
            let last = attempt == to_kill;
            let run = if last {
                spawned.finish(LIMIT)
            } else {
                std::thread::sleep(longest.mul_f64(rng.random::<f64>()));
                let mut spawned = spawned;
                if spawned.child.try_wait().ok().flatten().is_none() {
                    let _ = spawned.child.kill();
                    kills += 1;
                }
                let run = spawned.finish(LIMIT);
                if rng.random::<f64>() < 0.3 {
                    let _ = std::fs::remove_dir_all(&stage);
                    wiped += 1;
                }
                run
            };
            if let Err(e) = no_secret(&run.stderr) {
                report.check(&format!("s3 kill trial {trials}"), Err(e));
            }
            if last {
                finished = Some(run);
                break;
            }
        }
        let outcome = finished.map_or(Err("no run completed".to_owned()), |r| r.success());
        report.check(&format!("s3 kill trial {trials} ({}) completes", case.label()), outcome);
        report.check(&format!("s3 kill trial {trials} verify"), verified(&prefix));
        compare.push(json!({
            "name": format!("s3 kill trial {trials} ({})", case.label()),
            "table": TABLE,
            "reference": format!("whole/{}", case.label()),
            "actual": prefix,
        }));
    }
    report.check(
        &format!("s3 kill trials: at least {MIN_KILLS} kills"),
        if kills >= MIN_KILLS { Ok(()) } else { Err(format!("{kills} in {trials} trials")) },
    );
    report.fact(format!(
        "s3: {} dumps read back; {kills} SIGKILLs in {trials} trials ({wiped} stages wiped)",
        cases.len()
    ));

    // No multipart upload is left open, and the stages hold no secret.
    let uploads = moto.http("GET", &format!("/{BUCKET}?uploads"));
    report.check(
        "s3: no multipart upload left open",
        match uploads {
            Ok((200, body)) if !body.contains("<UploadId>") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    let batch = json!({
        "store": { "endpoint": endpoint, "key": KEY, "secret": SECRET, "bucket": BUCKET },
        "cells": cells,
        "compare": compare,
    });
    match ctx.checker.run_script("s3", "check_s3.py", batch) {
        Ok(verdict) => {
            for entry in verdict["cells"].as_array().into_iter().flatten() {
                let name = format!("s3 read back {}", entry["name"].as_str().unwrap_or("?"));
                report.check(&name, entry_outcome(entry));
            }
            for entry in verdict["compare"].as_array().into_iter().flatten() {
                let name = format!(
                    "{}: the uninterrupted run's objects",
                    entry["name"].as_str().unwrap_or("?")
                );
                report.check(&name, entry_outcome(entry));
            }
            let readers: Vec<&str> = verdict["cells"][0]["readers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            report.fact(format!("s3 readers of the first output: {}", readers.join(", ")));
        }
        Err(e) => report.check("s3 read back", Err(e)),
    }
}

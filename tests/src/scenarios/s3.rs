//! `dump --out s3://` against a real S3 API (`moto_server` on loopback, docs/object-storage.md):
//! every format (gzip too) and strategy dumped to the bucket, read back through pyarrow's S3
//! filesystem (`pyarrow.dataset` for Parquet) and by every reader of a local copy, against the
//! simulator's SQLite; then SIGKILL trials, each resumed (its stage sometimes wiped, as on another
//! machine), whose objects must be the uninterrupted run's: the same keys, sizes and bytes, and
//! exactly the manifest's.

use std::path::Path;
use std::time::{Duration, Instant};

use iptvportal_moto::Moto;
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
    let moto = match Moto::start(&[], Some(&ctx.work.join("moto.log"))) {
        Ok(moto) => moto,
        Err(e) => return report.check("start moto_server", Err(e)),
    };
    if let Err(e) = moto.bucket(BUCKET) {
        return report.check("create the bucket", Err(e));
    }
    let endpoint = moto.url();
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
    report.check(
        "s3: no multipart upload left open",
        match moto.uploads(BUCKET) {
            Ok(0) => Ok(()),
            Ok(open) => Err(format!("{open} uploads in progress")),
            Err(e) => Err(e),
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

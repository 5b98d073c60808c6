//! Scenario 10: `dump --out s3://bucket/prefix` (issue 13) against the same dump into a local
//! directory, from the same simulator: the rows/s of the dump to object storage over the local
//! one's, per format, against the target that it is at least 0.5; and the dump's peak memory,
//! which must be bounded by the part it uploads, not by the table.
//!
//! The object store is `moto_server` (`moto[server]`, a real S3 API in Python, what the tests use;
//! `cargo xtask venv` installs it into `target/moto-venv`) on a free loopback port, one for the
//! scenario, with a bucket made for it. Variants, interleaved, at `memory_large` rows of
//! `terminal` (1,000,000; `--parallel 1`, the defaults otherwise):
//! - parquet into a local directory, and to `s3://bench/LABEL` (one part: Parquet parts are of
//!   1,000,000 rows);
//! - jsonl into a local directory (one file), and to the bucket (parts of 100,000 rows, the text
//!   default on object storage);
//! - jsonl to the bucket at `memory_small` rows (100,000): one part, the memory baseline;
//! - for information, jsonl to the bucket at 1,000,000 rows with `MALLOC_MMAP_THRESHOLD_=131072`
//!   ([`MMAP_THRESHOLD`]): the same run with glibc returning every freed part buffer to the system,
//!   which tells the memory the dump holds from the memory the allocator keeps.
//!
//! Each s3 run stages in `target/bench/out/LABEL-stage` (removed afterwards) and is checked from
//! the `_manifest.json` it published (complete, `dumped_rows` the table's); its objects are then
//! deleted, so that moto (which keeps every object) does not grow over the runs.
//!
//! moto is Python (one request at a time under its GIL, hashing every byte it receives), so its
//! own speed could bound the ratio: how much of an s3 run's time is moto's is measured, as its CPU
//! time (`utime + stime` of `/proc/PID/stat`, before and after each run, in clock ticks taken as
//! 100 a second, Linux's `USER_HZ` on every common architecture) over the run's wall time, beside
//! the run's seconds minus moto's (the uploads are awaited when the checkpoint reaches a part's
//! boundary, so moto's work is on the dump's path).
//!
//! Memory: one `PUT` holds the whole part in memory (up to 32 MiB, `SINGLE_MAX` in
//! `crates/store/src/object.rs`); a larger part goes in a multipart upload of 16 MiB parts
//! (`PART_SIZE`), one in memory at a time. So a dump to the bucket holds at most one part's bytes
//! (or 16 MiB) more than a local one, whatever the table's size: the jsonl run at 1,000,000 rows
//! (ten parts) must stay within 1.15 of the one at 100,000 rows (one part), and each s3 row shows
//! its peak memory over the local run's in parts. (The upload buffers are reused from part to
//! part, `Buffers` in `object.rs`: a fresh buffer per part held about 2.5 parts at ten parts,
//! glibc keeping a freed one resident per arena; see [`MMAP_THRESHOLD`] and docs/benchmarks.md.)

use std::cell::RefCell;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;

use super::process::run_measured;
use super::report::{Row, Target, median};
use super::{Bench, DumpSpec, Sample, Variant, remove_dir};

/// The bucket every run writes under (`s3://bench/LABEL`).
const BUCKET: &str = "bench";
/// The least rows/s of a dump to the bucket over the same dump into a local directory.
const MIN_RATIO: f64 = 0.5;
/// The most the peak RSS of a 10-part dump may be over the one of a 1-part dump.
const MAX_RSS_RATIO: f64 = 1.15;
/// The diagnostic variant's environment: glibc's `malloc` with its mmap threshold fixed at its
/// default, 128 KiB, so that every part buffer is its own mapping, unmapped when freed. By default
/// the threshold rises to the size of the first freed mapping (up to 32 MiB), so the buffers of
/// the later parts come from the heap, where a freed one stays resident for the next part of the
/// same arena: one part's bytes more per arena that allocated one. Since the store reuses its
/// upload buffers, this variant and the default one should peak alike.
const MMAP_THRESHOLD: &str = "MALLOC_MMAP_THRESHOLD_=131072";
/// Clock ticks a second of `/proc/PID/stat` (`sysconf(_SC_CLK_TCK)`, `USER_HZ`): 100 on every
/// common Linux architecture, assumed rather than asked for (that would need libc).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;
/// A running `moto_server` (`iptvportal_moto`, which the tests start too), stopped on drop, with
/// what the bench asks of it.
struct Moto(iptvportal_moto::Moto);

impl Moto {
    /// Starts one on a free loopback port, its output into `log`, and waits until it listens.
    fn start(log: &Path) -> Result<Moto> {
        let started = Instant::now();
        let moto = iptvportal_moto::Moto::start(&[], Some(log))
            .map_err(|e| anyhow!("scenario s3 needs moto_server, a local S3 API: {e}"))?;
        eprintln!(
            "  moto_server {} ready after {:.1} s",
            moto.url(),
            started.elapsed().as_secs_f64()
        );
        Ok(Moto(moto))
    }

    /// The standard AWS environment of a dump to it, and no other AWS setting.
    fn env(&self, command: &mut Command) {
        command
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", self.0.url())
            .env("AWS_ALLOW_HTTP", "true")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_VIRTUAL_HOSTED_STYLE_REQUEST")
            .env_remove("AWS_PROFILE");
    }

    /// One request without a body (the bench has no HTTP client), with the `Authorization`
    /// header moto wants before it serves or deletes an object: the status and the body.
    fn http(&self, method: &str, path: &str) -> Result<(u16, String)> {
        let auth = [("Authorization", iptvportal_moto::DUMMY_AUTHORIZATION)];
        self.0.request(method, path, &auth).map_err(|e| anyhow!(e))
    }

    /// The JSON object at `key` of `bucket`.
    fn json(&self, bucket: &str, key: &str) -> Result<Value> {
        let (status, body) = self.http("GET", &format!("/{bucket}/{key}"))?;
        ensure!(status == 200, "s3://{bucket}/{key}: HTTP {status} {body}");
        serde_json::from_str(&body).with_context(|| format!("s3://{bucket}/{key}: {body}"))
    }

    /// Deletes every object under `prefix/` of `bucket`: how many there were.
    fn delete_prefix(&self, bucket: &str, prefix: &str) -> Result<usize> {
        let mut deleted = 0;
        loop {
            let (status, body) = self.http("GET", &format!("/{bucket}?prefix={prefix}/"))?;
            ensure!(status == 200, "listing s3://{bucket}/{prefix}/: HTTP {status} {body}");
            let keys: Vec<&str> = body
                .split("<Key>")
                .skip(1)
                .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key))
                .collect();
            if keys.is_empty() {
                return Ok(deleted);
            }
            for key in keys {
                let (status, body) = self.http("DELETE", &format!("/{bucket}/{key}"))?;
                ensure!(status == 204, "deleting s3://{bucket}/{key}: HTTP {status} {body}");
                deleted += 1;
            }
        }
    }

    /// The CPU time moto has used so far (user and system, every thread), in seconds.
    fn cpu_seconds(&self) -> Result<f64> {
        let path = format!("/proc/{}/stat", self.0.pid());
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        cpu_ticks(&stat)
            .map(|t| t as f64 / CLOCK_TICKS_PER_SEC)
            .with_context(|| format!("{path}: no utime and stime in {stat:?}"))
    }
}

/// `utime + stime` of a `/proc/PID/stat` line, in clock ticks: fields 14 and 15, counted after
/// the command's closing parenthesis (a command may hold spaces and parentheses).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3 (the state).
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// What an s3 run adds to its [`Sample`].
#[derive(Debug, Clone, Copy)]
struct S3Run {
    wall: f64,
    /// moto's CPU seconds during the run.
    moto: f64,
    /// The parts published, and the largest one's bytes.
    parts: usize,
    largest_part: u64,
}

/// The s3 runs of one variant.
type S3Runs = RefCell<Vec<S3Run>>;

impl Bench<'_> {
    /// Scenario 10: dumps to moto against the same dumps into a local directory.
    pub(super) fn s3(&self) -> Result<Vec<Row>> {
        let (small, large) = (self.plan.memory_small, self.plan.memory_large);
        let large_sim = self.sim(&self.db("terminal", large), &[("terminal", large)], 0)?;
        let small_sim = self.sim(&self.db("terminal", small), &[("terminal", small)], 0)?;
        let moto = Moto::start(&self.logs.join("moto.log"))?;
        moto.0.bucket(BUCKET).map_err(|e| anyhow!(e))?;
        let parquet = DumpSpec { format: "parquet", ..DumpSpec::terminal(large) };
        let jsonl = DumpSpec::terminal(large);
        let jsonl_small = DumpSpec::terminal(small);
        let runs: [S3Runs; 4] = Default::default();
        let (large_url, small_url) = (large_sim.url(), small_sim.url());
        let mut rows = self.measure(
            "10 s3",
            &[
                Variant::new(format!("parquet to a local directory, {large} rows"), |l| {
                    self.dump(large_url, &parquet, l)
                }),
                Variant::new(format!("parquet to s3 (moto), {large} rows"), |l| {
                    self.dump_s3(large_url, &moto, &parquet, &[], l, &runs[0])
                }),
                Variant::new(format!("jsonl to a local directory, {large} rows"), |l| {
                    self.dump(large_url, &jsonl, l)
                }),
                Variant::new(format!("jsonl to s3 (moto), {large} rows"), |l| {
                    self.dump_s3(large_url, &moto, &jsonl, &[], l, &runs[1])
                }),
                Variant::new(format!("jsonl to s3 (moto), {small} rows"), |l| {
                    self.dump_s3(small_url, &moto, &jsonl_small, &[], l, &runs[2])
                }),
                Variant::new(format!("jsonl to s3 (moto), {large} rows, {MMAP_THRESHOLD}"), |l| {
                    let env = [MMAP_THRESHOLD.split_once('=').unwrap_or_default()];
                    self.dump_s3(large_url, &moto, &jsonl, &env, l, &runs[3])
                }),
            ],
        )?;
        let enforce = !self.plan.quick;
        for (local, remote, runs) in [(0, 1, &runs[0]), (2, 3, &runs[1])] {
            let ratio = rows[remote].rows_per_sec / rows[local].rows_per_sec;
            let meaning = format!(
                "s3 rows/s / local rows/s; {}",
                describe(&runs.borrow(), &rows[local], &rows[remote])
            );
            rows[remote].compare(ratio, &meaning, Some(Target::AtLeast(MIN_RATIO)), enforce);
        }
        let rss = |i: usize| -> Result<f64> {
            let row: &Row = &rows[i];
            row.peak_rss_mib.with_context(|| format!("{}: no peak RSS was sampled", row.variant))
        };
        let (small_rss, large_rss, returned_rss) = (rss(4)?, rss(3)?, rss(5)?);
        let parts = |runs: &S3Runs| runs.borrow().last().map_or(0, |r| r.parts);
        let meaning = format!(
            "peak RSS of jsonl to s3 at {large} rows ({}, the row above) / at {small} rows ({}, \
             this row): one part in memory, whatever the table; {}",
            counted(parts(&runs[1]), "part"),
            counted(parts(&runs[2]), "part"),
            moto_share(&runs[2].borrow())
        );
        rows[4].compare(
            large_rss / small_rss,
            &meaning,
            Some(Target::AtMost(MAX_RSS_RATIO)),
            enforce,
        );
        let meaning = format!(
            "(information, no target) peak RSS / at {small} rows, glibc made to return every \
             freed part buffer; {}",
            describe(&runs[3].borrow(), &rows[2], &rows[5])
        );
        rows[5].compare(returned_rss / small_rss, &meaning, None, enforce);
        Ok(rows)
    }

    /// Runs `iptvportal dump` to `s3://bench/LABEL` once, staged under `target/bench/out`, and
    /// checks from its manifests that it published every row; then deletes its objects.
    fn dump_s3(
        &self,
        url: &str,
        moto: &Moto,
        spec: &DumpSpec,
        env: &[(&str, &str)],
        label: &str,
        runs: &S3Runs,
    ) -> Result<Sample> {
        let stage = self.work.join("out").join(format!("{label}-stage"));
        remove_dir(&stage)?;
        let removed = moto.delete_prefix(BUCKET, label)?;
        if removed > 0 {
            eprintln!("  removed {removed} objects left under s3://{BUCKET}/{label}/");
        }
        let out = format!("s3://{BUCKET}/{label}");
        let mut command = self.dump_command(url, spec, Path::new(&out));
        command.arg("--stage").arg(&stage);
        moto.env(&mut command);
        command.envs(env.iter().copied());
        let before = moto.cpu_seconds()?;
        let measured = run_measured(&mut command, &self.logs, label)?;
        let moto_seconds = moto.cpu_seconds()? - before;
        let (mut rows, mut bytes, mut parts, mut largest_part) = (0, 0, 0, 0);
        for (table, expected) in &spec.tables {
            let key = format!("{label}/{table}/_manifest.json");
            let manifest = moto.json(BUCKET, &key)?;
            ensure!(
                manifest["is_complete"] == Value::Bool(true),
                "s3://{BUCKET}/{key}: the dump is not complete"
            );
            let dumped = manifest["dumped_rows"]
                .as_u64()
                .with_context(|| format!("s3://{BUCKET}/{key}: no dumped_rows"))?;
            ensure!(dumped == *expected, "{table}: dumped {dumped} rows, the table has {expected}");
            rows += dumped;
            let files = manifest["sink"]["files"]
                .as_array()
                .with_context(|| format!("s3://{BUCKET}/{key}: no sink.files"))?;
            for file in files {
                let size = file["bytes"].as_u64().unwrap_or(0);
                bytes += size;
                parts += 1;
                largest_part = largest_part.max(size);
            }
        }
        moto.delete_prefix(BUCKET, label)?;
        remove_dir(&stage)?;
        let run = S3Run { wall: measured.seconds, moto: moto_seconds, parts, largest_part };
        eprintln!(
            "  10 s3 / {label}: moto used {moto_seconds:.2} s of CPU, {:.0} % of the run's {:.2} \
             s; {} published, the largest {:.1} MiB",
            100.0 * moto_seconds / measured.seconds,
            measured.seconds,
            counted(parts, "part"),
            mib(largest_part)
        );
        runs.borrow_mut().push(run);
        Ok(Sample {
            seconds: measured.seconds,
            peak_rss_kib: measured.peak_rss_kib,
            rows,
            bytes: Some(bytes),
        })
    }
}

/// `1 part`, `10 parts`.
fn counted(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// moto's share of the runs: its median CPU seconds and share of the wall time.
fn moto_share(runs: &[S3Run]) -> String {
    if runs.is_empty() {
        return "moto: ?".to_owned();
    }
    let moto = median(&runs.iter().map(|r| r.moto).collect::<Vec<_>>());
    let share = median(&runs.iter().map(|r| r.moto / r.wall).collect::<Vec<_>>());
    format!("moto CPU {moto:.2} s a run, {:.0} % of its wall time", 100.0 * share)
}

/// moto's share of an s3 variant's time, and its memory against the local variant's.
fn describe(runs: &[S3Run], local: &Row, remote: &Row) -> String {
    let without = median(&runs.iter().map(|r| r.wall - r.moto).collect::<Vec<_>>());
    let (parts, largest) = runs.last().map_or((0, 0.0), |r| (r.parts, mib(r.largest_part)));
    let extra_rss = match (remote.peak_rss_mib, local.peak_rss_mib) {
        (Some(r), Some(l)) if largest > 0.0 => {
            format!("{:+.1} MiB ({:.1} x the largest part)", r - l, (r - l) / largest)
        }
        _ => "?".to_owned(),
    };
    format!(
        "{}; s3 seconds - moto CPU seconds {without:.2} (local {:.2}); peak RSS {extra_rss} over \
         local; {} published, the largest {largest:.1} MiB (one PUT holds a part of up to 32 MiB \
         in memory, a larger one goes in 16 MiB multipart parts)",
        moto_share(runs),
        local.median_seconds,
        counted(parts, "part"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_read_utime_and_stime() {
        let stat = "20227 (moto_server) S 20225 20225 17540 0 -1 4194304 16572 0 0 0 81 10 0 0 \
                    20 0 1 0 4393523 159375360 19085";
        assert_eq!(cpu_ticks(stat), Some(91));
        let odd = "7 (a b) c)) S 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1";
        assert_eq!(cpu_ticks(odd), Some(11));
        assert_eq!(cpu_ticks("7 (x) S 1"), None);
    }
}

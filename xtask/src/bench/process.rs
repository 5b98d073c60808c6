//! Child processes of the bench: the simulator it serves from, and measured runs (wall time and
//! peak resident memory) of the binaries under test.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How often the peak-memory sampler looks at a running child.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// A running `iptvportal-sim serve`, stopped (killed and reaped) on drop.
pub(crate) struct SimProcess {
    child: Child,
    url: String,
    /// Held open so that the simulator never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl SimProcess {
    /// Starts the simulator on a free loopback port over the database file `db` (generated on the
    /// first start, reused by later ones with the same sizes) and waits for its URL. `extra` are
    /// further `serve` flags (`--offset native`).
    pub(crate) fn start(
        bin: &Path,
        db: &Path,
        rows: &[(&str, u64)],
        latency_ms: u64,
        extra: &[&str],
        log: &Path,
    ) -> Result<SimProcess> {
        let rows_arg: Vec<String> = rows.iter().map(|(t, n)| format!("{t}={n}")).collect();
        let stderr = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let started = Instant::now();
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(["--rows", &rows_arg.join(","), "--latency-ms", &latency_ms.to_string()])
            .args(extra)
            // Per-request info logs would cost the simulator CPU that the dump under test shares.
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().context("the simulator's stdout")?);
        let mut url = String::new();
        let read = stdout.read_line(&mut url);
        let url = url.trim().to_owned();
        if read.is_err() || !url.starts_with("http") {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the simulator did not print its URL: {}",
                std::fs::read_to_string(log).unwrap_or_default().trim()
            );
        }
        eprintln!(
            "  simulator {} ({}, latency {latency_ms} ms{}{}) ready after {:.1} s",
            url,
            rows_arg.join(","),
            if extra.is_empty() { "" } else { ", " },
            extra.join(" "),
            started.elapsed().as_secs_f64()
        );
        Ok(SimProcess { child, url, _stdout: stdout })
    }

    /// The API base, e.g. `http://127.0.0.1:41234/api/`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one measured run of a child process took.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// Wall time from spawn to exit.
    pub(crate) seconds: f64,
    /// The largest `VmHWM` (peak resident set) seen while it ran, in KiB.
    pub(crate) peak_rss_kib: Option<u64>,
    /// What it printed on stdout.
    pub(crate) stdout: String,
}

/// Runs `command` to completion, timing it and sampling its peak resident memory. stdout and
/// stderr go to files under `logs` (named by `label`); a failure quotes stderr.
pub(crate) fn run_measured(command: &mut Command, logs: &Path, label: &str) -> Result<Measured> {
    let out_path = logs.join(format!("{label}.stdout"));
    let err_path = logs.join(format!("{label}.stderr"));
    command
        .stdin(Stdio::null())
        .stdout(
            File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?,
        )
        .stderr(
            File::create(&err_path).with_context(|| format!("creating {}", err_path.display()))?,
        );
    let started = Instant::now();
    let mut child = command.spawn().with_context(|| format!("starting {command:?}"))?;
    let sampler = PeakSampler::start(child.id());
    let status = child.wait().context("waiting for a child")?;
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_kib = sampler.finish();
    if !status.success() {
        bail!(
            "{label} failed ({status}): {}",
            std::fs::read_to_string(&err_path).unwrap_or_default().trim()
        );
    }
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    Ok(Measured { seconds, peak_rss_kib, stdout })
}

/// A thread that polls `/proc/<pid>/status` for `VmHWM` until told to stop. `VmHWM` only grows, so
/// the last sample before exit is at most one polling interval behind the true peak.
struct PeakSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Option<u64>>,
}

impl PeakSampler {
    fn start(pid: u32) -> PeakSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let path = PathBuf::from(format!("/proc/{pid}/status"));
        let thread = std::thread::spawn(move || {
            let mut peak = None;
            while !flag.load(Ordering::Relaxed) {
                if let Some(kib) = std::fs::read_to_string(&path).ok().as_deref().and_then(vm_hwm) {
                    peak = peak.max(Some(kib));
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            peak
        });
        PeakSampler { stop, thread }
    }

    fn finish(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().ok().flatten()
    }
}

/// The `VmHWM:   12345 kB` line of a `/proc/<pid>/status` file, in KiB.
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_parses_the_status_line() {
        let status =
            "Name:\tiptvportal\nVmPeak:\t  300000 kB\nVmHWM:\t   18024 kB\nVmRSS:\t 17000 kB\n";
        assert_eq!(vm_hwm(status), Some(18024));
        assert_eq!(vm_hwm("Name:\tzombie\n"), None);
    }
}

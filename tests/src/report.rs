//! The tally of checks: one line per failure as it happens, phase timings, and the closing summary.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Every check's outcome, grouped by phase.
#[derive(Debug, Default)]
pub(crate) struct Report {
    passed: u64,
    failed: u64,
    failures: Vec<String>,
    phases: Vec<(String, Duration, u64, u64)>,
    current: Option<(String, Instant, u64, u64)>,
    facts: Vec<String>,
}

impl Report {
    /// Starts a phase; the previous one (if any) ends here.
    pub(crate) fn phase(&mut self, name: &str) {
        self.end_phase();
        eprintln!("--- {name}");
        self.current = Some((name.to_owned(), Instant::now(), self.passed, self.failed));
    }

    fn end_phase(&mut self) {
        if let Some((name, start, passed, failed)) = self.current.take() {
            let elapsed = start.elapsed();
            eprintln!("    {name}: {:.1}s", elapsed.as_secs_f64());
            self.phases.push((name, elapsed, self.passed - passed, self.failed - failed));
        }
    }

    /// Records one check. A failure is printed at once, so a long run shows it early.
    pub(crate) fn check(&mut self, name: &str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(why) => {
                self.failed += 1;
                let line = format!("FAIL {name}: {why}");
                eprintln!("{line}");
                self.failures.push(line);
            }
        }
    }

    /// A number worth reporting (kill counts, rows lost), printed in the summary.
    pub(crate) fn fact(&mut self, fact: String) {
        eprintln!("    {fact}");
        self.facts.push(fact);
    }

    pub(crate) fn failed(&self) -> u64 {
        self.failed
    }

    /// The summary; its last line is `N passed, M failed`, the form CI reads.
    pub(crate) fn finish(&mut self, total: Duration) -> String {
        self.end_phase();
        let mut out = String::from("\n=== e2e summary ===\n");
        for (name, elapsed, passed, failed) in &self.phases {
            let _ = writeln!(
                out,
                "{name:<12} {:>7.1}s  {passed:>5} passed  {failed:>3} failed",
                elapsed.as_secs_f64()
            );
        }
        for fact in &self.facts {
            let _ = writeln!(out, "{fact}");
        }
        for failure in &self.failures {
            let _ = writeln!(out, "{failure}");
        }
        let _ = writeln!(out, "total {:.1}s", total.as_secs_f64());
        let _ = writeln!(out, "{} passed, {} failed", self.passed, self.failed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_ends_with_the_counts() {
        let mut report = Report::default();
        report.phase("one");
        report.check("a", Ok(()));
        report.check("b", Err("broken".to_owned()));
        let summary = report.finish(Duration::from_secs(1));
        assert!(summary.ends_with("1 passed, 1 failed\n"), "{summary}");
        assert!(summary.contains("FAIL b: broken"));
        assert_eq!(report.failed(), 1);
    }
}

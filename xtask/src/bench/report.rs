//! The bench's results: one row per (scenario, variant), the printed table and the JSON file.

use std::fmt::Write as _;

use serde::Serialize;

/// A goal for a row's ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub(crate) enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtLeast(goal) => ratio >= goal,
            Target::AtMost(goal) => ratio <= goal,
        }
    }

    fn label(self) -> String {
        match self {
            Target::AtLeast(goal) => format!(">= {goal}"),
            Target::AtMost(goal) => format!("<= {goal}"),
        }
    }
}

/// The outcome of a row with a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum Verdict {
    Pass,
    Miss,
    /// `--quick`: sizes too small for the targets to mean anything, so none is enforced.
    Unchecked,
}

/// One variant of one scenario, over its repetitions.
#[derive(Debug, Clone, Serialize)]
#[expect(
    clippy::struct_field_names,
    reason = "`rows` and `bytes_per_row` are the table's column names"
)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) variant: String,
    /// Rows exported (or fetched) per run.
    pub(crate) rows: u64,
    /// Wall time of every repetition, in run order.
    pub(crate) seconds: Vec<f64>,
    pub(crate) median_seconds: f64,
    /// `rows / median_seconds`.
    pub(crate) rows_per_sec: f64,
    /// Output bytes per row (data files only), when the variant writes files.
    pub(crate) bytes_per_row: Option<f64>,
    /// The largest peak resident set over the repetitions, in MiB.
    pub(crate) peak_rss_mib: Option<f64>,
    /// This row against its baseline; what is divided by what is in `ratio_meaning`.
    pub(crate) ratio: Option<f64>,
    pub(crate) ratio_meaning: Option<String>,
    pub(crate) target: Option<Target>,
    pub(crate) verdict: Option<Verdict>,
}

impl Row {
    /// Sets the ratio and, when there is a target, the verdict.
    pub(crate) fn compare(
        &mut self,
        ratio: f64,
        meaning: &str,
        target: Option<Target>,
        enforce: bool,
    ) {
        self.ratio = Some(ratio);
        self.ratio_meaning = Some(meaning.to_owned());
        self.target = target;
        self.verdict = target.map(|t| match (enforce, t.met(ratio)) {
            (false, _) => Verdict::Unchecked,
            (true, true) => Verdict::Pass,
            (true, false) => Verdict::Miss,
        });
    }
}

/// The median of a non-empty list.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[mid] } else { f64::midpoint(sorted[mid - 1], sorted[mid]) }
}

/// The machine the numbers come from.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) memory_mib: u64,
    /// `/proc/loadavg` when the bench started and when it ended: the machine is shared.
    pub(crate) load_before: String,
    pub(crate) load_after: String,
}

impl Machine {
    pub(crate) fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']))
            })
            .unwrap_or("unknown")
            .to_owned();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            cpu_model,
            memory_mib: memory_kib / 1024,
            load_before: load_average(),
            load_after: String::new(),
        }
    }
}

/// The first three fields of `/proc/loadavg`.
pub(crate) fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Everything the JSON file holds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) mode: &'static str,
    pub(crate) repetitions: usize,
    pub(crate) machine: Machine,
    pub(crate) rows: Vec<Row>,
}

impl Report {
    /// The results as a Markdown table (readable in a terminal, pasteable into docs/benchmarks.md).
    pub(crate) fn table(&self) -> String {
        let header = [
            "scenario",
            "variant",
            "rows",
            "seconds",
            "rows/s",
            "bytes/row",
            "peak RSS MiB",
            "ratio",
            "target",
            "result",
        ];
        let mut lines: Vec<[String; 10]> = Vec::new();
        for r in &self.rows {
            lines.push([
                r.scenario.clone(),
                r.variant.clone(),
                r.rows.to_string(),
                format!("{:.2}", r.median_seconds),
                format!("{:.0}", r.rows_per_sec),
                r.bytes_per_row.map_or_else(|| "-".to_owned(), |b| format!("{b:.1}")),
                r.peak_rss_mib.map_or_else(|| "-".to_owned(), |m| format!("{m:.1}")),
                r.ratio.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}")),
                r.target.map_or_else(|| "-".to_owned(), Target::label),
                match r.verdict {
                    None => "-".to_owned(),
                    Some(Verdict::Pass) => "PASS".to_owned(),
                    Some(Verdict::Miss) => "MISS".to_owned(),
                    Some(Verdict::Unchecked) => "(quick)".to_owned(),
                },
            ]);
        }
        let mut widths = header.map(str::len);
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let row = |out: &mut String, cells: &[String]| {
            out.push('|');
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                // Text left, numbers right.
                if i < 2 {
                    let _ = write!(out, " {cell:<w$} |");
                } else {
                    let _ = write!(out, " {cell:>w$} |");
                }
            }
            out.push('\n');
        };
        row(&mut out, &header.map(str::to_owned));
        out.push('|');
        for (i, w) in widths.iter().enumerate() {
            let dashes = "-".repeat(*w);
            let _ = write!(
                out,
                "{}|",
                if i < 2 { format!(" {dashes} ") } else { format!(" {dashes}:") }
            );
        }
        out.push('\n');
        for line in &lines {
            row(&mut out, line);
        }
        let mut meanings: Vec<String> = Vec::new();
        for r in &self.rows {
            if let Some(m) = &r.ratio_meaning {
                let line = format!("- {} / {}: ratio = {m}", r.scenario, r.variant);
                meanings.push(line);
            }
        }
        if !meanings.is_empty() {
            out.push('\n');
            out.push_str(&meanings.join("\n"));
            out.push('\n');
        }
        out
    }

    /// How many rows passed and missed their targets.
    pub(crate) fn verdicts(&self) -> (usize, usize) {
        let count = |v| self.rows.iter().filter(|r| r.verdict == Some(v)).count();
        (count(Verdict::Pass), count(Verdict::Miss))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_targets() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-9);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-9);
        assert!(Target::AtLeast(3.0).met(3.0));
        assert!(!Target::AtLeast(3.0).met(2.9));
        assert!(Target::AtMost(1.15).met(1.1));
        assert!(!Target::AtMost(1.15).met(1.2));
    }
}

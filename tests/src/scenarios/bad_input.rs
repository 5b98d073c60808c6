//! Bad input: mistakes an operator makes, each against the real binary. Every one must exit with its
//! documented code, print exactly one `error:` line (first), never a panic or a backtrace, and leave
//! the output directory and its checkpoint exactly as they were.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::strings;
use crate::Ctx;
use crate::files;
use crate::report::Report;

/// What the output directory holds before the command runs.
#[derive(Debug, Clone, Copy)]
enum Before {
    /// It does not exist (and must still not exist afterwards).
    Missing,
    /// A complete JSONL dump of `terminal` with its checkpoint.
    Complete,
    /// The same, with the checkpoint overwritten by garbage.
    CorruptState,
}

struct Case {
    name: &'static str,
    /// Arguments after `iptvportal`; `{out}` is replaced by the case's output directory.
    args: &'static [&'static str],
    before: Before,
    /// Environment changes: the password, or `""` to remove a variable.
    env: &'static [(&'static str, &'static str)],
    portal: bool,
    codes: &'static [i32],
}

const DUMP: &[&str] =
    &["dump", "terminal", "--out", "{out}", "--chunk-size", "500", "--progress", "none"];

#[expect(clippy::too_many_lines, reason = "a table of cases, one per line before formatting")]
fn cases() -> Vec<Case> {
    let c = |name, args, before, codes| Case { name, args, before, env: &[], portal: true, codes };
    vec![
        Case {
            env: &[("IPTVPORTAL_PASSWORD", "wrong-password")],
            ..c("wrong password", &["dump", "tv_channel", "--out", "{out}"], Before::Complete, &[1])
        },
        Case {
            portal: false,
            ..c(
                "unreachable portal",
                &[
                    "--portal",
                    "http://127.0.0.1:9/api/",
                    "--timeout",
                    "2",
                    "--max-retries",
                    "0",
                    "dump",
                    "tv_channel",
                    "--out",
                    "{out}",
                ],
                Before::Complete,
                &[1],
            )
        },
        c("unknown table", &["dump", "no_such_table", "--out", "{out}"], Before::Missing, &[1]),
        c(
            "unknown column",
            &["dump", "terminal", "--columns", "id,no_such_column", "--out", "{out}"],
            Before::Missing,
            &[1, 2],
        ),
        c(
            "bad --where lookup",
            &["dump", "terminal", "--where", "id__nearly=5", "--out", "{out}"],
            Before::Missing,
            &[1, 2],
        ),
        c(
            "bad --where form",
            &["dump", "terminal", "--where", "id", "--out", "{out}"],
            Before::Missing,
            &[1, 2],
        ),
        c(
            "bad --where-json",
            &["dump", "terminal", "--where-json", r#"{"eq":["id""#, "--out", "{out}"],
            Before::Missing,
            &[1, 2],
        ),
        c(
            "chunk size 0",
            &["dump", "terminal", "--chunk-size", "0", "--out", "{out}"],
            Before::Missing,
            &[2],
        ),
        c(
            "parallel 0",
            &["dump", "terminal", "--strategy", "id-range", "--parallel", "0", "--out", "{out}"],
            Before::Missing,
            &[2],
        ),
        c("unwritable --out", &["dump", "terminal", "--out", "{file}/sub"], Before::Complete, &[1]),
        c(
            "changed --where on resume",
            &[
                "dump",
                "terminal",
                "--out",
                "{out}",
                "--chunk-size",
                "500",
                "--progress",
                "none",
                "--where",
                "id__gte=10",
            ],
            Before::Complete,
            &[1],
        ),
        c(
            "changed --format on resume",
            &[
                "dump",
                "terminal",
                "--out",
                "{out}",
                "--chunk-size",
                "500",
                "--progress",
                "none",
                "--format",
                "csv",
            ],
            Before::Complete,
            &[1],
        ),
        c("corrupt state file", DUMP, Before::CorruptState, &[1]),
        c(
            "--compress with parquet",
            &["dump", "terminal", "--format", "parquet", "--compress", "--out", "{out}"],
            Before::Missing,
            &[1, 2],
        ),
        c(
            "unknown format",
            &["dump", "terminal", "--format", "xml", "--out", "{out}"],
            Before::Missing,
            &[2],
        ),
        c(
            "unknown strategy",
            &["dump", "terminal", "--strategy", "sideways", "--out", "{out}"],
            Before::Missing,
            &[2],
        ),
        c("no table", &["dump", "--out", "{out}"], Before::Missing, &[2]),
        c(
            "--all with a table",
            &["dump", "--all", "terminal", "--out", "{out}"],
            Before::Missing,
            &[2],
        ),
        c(
            "id-range on a table without id",
            &["dump", "subscriber_package", "--strategy", "id-range", "--out", "{out}"],
            Before::Missing,
            &[1, 2],
        ),
        c(
            "id-range with another order",
            &[
                "dump",
                "terminal",
                "--strategy",
                "id-range",
                "--order-by",
                "mac_addr",
                "--out",
                "{out}",
            ],
            Before::Missing,
            &[1, 2],
        ),
        c(
            "unknown --order-by column",
            &["dump", "terminal", "--order-by", "no_such_column DESC", "--out", "{out}"],
            Before::Missing,
            &[1, 2],
        ),
        Case {
            portal: false,
            ..c("no portal", &["dump", "terminal", "--out", "{out}"], Before::Missing, &[1, 2])
        },
        Case {
            env: &[("IPTVPORTAL_PASSWORD", "")],
            ..c("no password", &["dump", "terminal", "--out", "{out}"], Before::Missing, &[1, 2])
        },
    ]
}

pub(crate) fn run(ctx: &Ctx, report: &mut Report) {
    let root = ctx.work.join("bad-input");
    let golden = root.join("golden");
    let mut args = strings(DUMP);
    args[3] = golden.display().to_string();
    if let Err(e) = ctx.cli.cmd(&args).run(Duration::from_secs(120)).success() {
        return report.check("bad input: the complete dump the cases start from", Err(e));
    }
    let file = root.join("a-file.txt");
    let _ = std::fs::write(&file, "not a directory\n");
    for (i, case) in cases().into_iter().enumerate() {
        let out = root.join(format!("case-{i:02}"));
        prepare(&golden, &out, case.before);
        let mut args: Vec<String> = case
            .args
            .iter()
            .map(|a| {
                a.replace("{out}", &out.display().to_string())
                    .replace("{file}", &file.display().to_string())
            })
            .collect();
        // Progress lines are not errors, but they are not what this checks either: with
        // `--progress none` a failed command must print its one `error:` line and nothing else.
        if !args.iter().any(|a| a == "--progress")
            && let Some(dump) = args.iter().position(|a| a == "dump")
        {
            args.splice((dump + 1)..=dump, ["--progress".to_owned(), "none".to_owned()]);
        }
        let before = (files::snapshot(&out), files::snapshot(&file));
        let mut cmd = ctx.cli.cmd(&args);
        if !case.portal {
            cmd = cmd.no_portal();
        }
        for (k, v) in case.env {
            cmd = cmd.env(k, v);
        }
        let run = cmd.run(Duration::from_secs(60));
        let after = (files::snapshot(&out), files::snapshot(&file));
        let mut problems = Vec::new();
        if !run.code.is_some_and(|c| case.codes.contains(&c)) {
            problems.push(format!("exit {:?}, expected {:?}", run.code, case.codes));
        }
        if let Err(e) = one_error_line(&run.stderr) {
            problems.push(e);
        }
        if let Some(diff) = files::snapshot_diff(before.0.as_ref(), after.0.as_ref()) {
            problems.push(diff);
        }
        if before.1 != after.1 {
            problems.push("the file given as a parent of --out changed".to_owned());
        }
        let outcome = if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} (stderr: {})",
                problems.join("; "),
                crate::proc::last_lines(&run.stderr, 3)
            ))
        };
        report.check(&format!("bad input: {}", case.name), outcome);
    }
    report.fact(format!("bad input: {} cases", cases().len()));
}

/// Lays out a case's output directory.
fn prepare(golden: &Path, out: &PathBuf, before: Before) {
    let _ = std::fs::remove_dir_all(out);
    if matches!(before, Before::Missing) {
        return;
    }
    let _ = std::fs::create_dir_all(out);
    for path in files::walk(golden) {
        if let Some(name) = path.file_name() {
            let _ = std::fs::copy(&path, out.join(name));
        }
    }
    if matches!(before, Before::CorruptState) {
        let _ =
            std::fs::write(out.join(".terminal.state.json"), "{\"table\": \"terminal\", \"dumped_");
    }
}

/// stderr holds one `error:` line, first, and no sign of a panic.
fn one_error_line(stderr: &str) -> Result<(), String> {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors = lines.iter().filter(|l| l.starts_with("error:")).count();
    if !lines.first().is_some_and(|l| l.starts_with("error:")) {
        return Err("stderr does not start with `error:`".to_owned());
    }
    if errors != 1 {
        return Err(format!("{errors} `error:` lines"));
    }
    for sign in ["panicked", "backtrace", "RUST_BACKTRACE", "internal error"] {
        if stderr.contains(sign) {
            return Err(format!("stderr shows `{sign}`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_judged_by_its_error_lines() {
        assert!(one_error_line("error: unknown table x; see docs\n").is_ok());
        assert!(one_error_line("error: bad value\n\nUsage: iptvportal dump\n").is_ok());
        assert!(one_error_line("warning: w\nerror: e\n").is_err());
        assert!(one_error_line("error: a\nerror: b\n").is_err());
        assert!(one_error_line("thread 'main' panicked at src/main.rs\n").is_err());
    }

    #[test]
    fn there_are_at_least_twelve_cases() {
        assert!(cases().len() >= 12);
    }
}

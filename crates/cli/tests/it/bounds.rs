//! Every numeric option is bounded before anything is sent or written: one line naming the option
//! and its range, exit 2 for a flag (clap's usage error) and 1 for a config file's key, and no
//! panic, however large the number.

use std::path::Path;

use crate::{bare, failure, run};

#[test]
fn numeric_flags_past_their_range_are_usage_errors() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("dumps");
    let huge = "18446744073709551615";
    let cases: &[(&[&str], &str)] = &[
        (
            &["--chunk-size", huge],
            "invalid value '18446744073709551615' for '--chunk-size <N>': must be 1 to 1000000",
        ),
        (
            &["--chunk-size", "1000001"],
            "invalid value '1000001' for '--chunk-size <N>': must be 1 to 1000000",
        ),
        (&["--parallel", "65"], "invalid value '65' for '--parallel <N>': must be 1 to 64"),
        (
            &["--jobs", huge],
            "invalid value '18446744073709551615' for '--jobs <N>': must be 1 to 64",
        ),
        (
            &["--retry-backoff", "1e20"],
            "invalid value '1e20' for '--retry-backoff <F>': must be a number from 1 to 10",
        ),
        (
            &["--max-retries", "4294967295"],
            "invalid value '4294967295' for '--max-retries <N>': 4294967295 is not in 0..=100",
        ),
        (
            &["--timeout", "1e20"],
            "invalid value '1e20' for '--timeout <SECS>': \"1e20\" must be more than 0 and at most 3600 seconds",
        ),
        (
            &["--compress", "--compress-level", "10"],
            "invalid value '10' for '--compress-level <N>': 10 is not in 0..=9",
        ),
        (
            &["--part-rows", "100000001"],
            "invalid value '100000001' for '--part-rows <N>': must be 1 to 100000000",
        ),
        (
            &["--resume-offset", huge],
            "invalid value '18446744073709551615' for '--resume-offset <N>': 18446744073709551615 is not in 0..=9223372036854775807",
        ),
    ];
    for (flags, first) in cases {
        let r = run(bare().args(["dump", "terminal", "--out"]).arg(&out).args(*flags));
        assert_eq!(r.code, 2, "{flags:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().next(), Some(format!("error: {first}").as_str()), "{flags:?}");
        assert!(!r.stderr.contains("panicked") && !r.stderr.contains("internal error"));
    }
    let r = run(bare().args(["select", "--from", "terminal", "--limit", huge]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: invalid value '18446744073709551615' for '--limit <N>'"));
    // The largest values in range are taken (here refused later, for want of a portal).
    let r = run(bare()
        .args(["dump", "terminal", "--chunk-size", "1000000", "--parallel", "64", "--jobs", "64"])
        .args(["--retry-backoff", "10", "--max-retries", "100", "--timeout", "3600", "--out"])
        .arg(&out));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: no portal given"), "{}", r.stderr);
    assert!(!out.exists());
}

#[test]
fn config_values_past_their_range_are_errors() {
    let root = tempfile::tempdir().unwrap();
    let config = |name: &str, text: &str| {
        let path = root.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let refused = |path: &Path| failure(bare().arg("--config").arg(path).arg("auth"));
    for (text, what) in [
        ("[dump]\nchunk_size = 1000001\n", "dump.chunk_size must be 1 to 1000000"),
        ("[dump]\nparallel = 65\n", "dump.parallel must be 1 to 64"),
        ("[dump]\njobs = 9223372036854775807\n", "dump.jobs must be 1 to 64"),
        (
            "[connection]\ntimeout = 1e20\n",
            "connection.timeout must be more than 0 and at most 3600 seconds",
        ),
        ("[connection]\nmax_retries = 101\n", "connection.max_retries must be 0 to 100"),
    ] {
        let path = config("c", text);
        assert_eq!(
            refused(&path),
            format!(
                "error: config file {}: {what}; fix the file; docs/configuration.md lists the keys",
                path.display()
            )
        );
    }
}

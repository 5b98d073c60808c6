//! The `iptvportal-sim` binary as a process: URL first on stdout, clean exit on SIGTERM, exit 2 on
//! bad arguments.

use std::process::Command;
use std::time::Duration;

use crate::support::{login, spawn_serve, stop};

const BIN: &str = env!("CARGO_BIN_EXE_iptvportal-sim");

#[tokio::test]
async fn serves_prints_its_url_and_stops_on_sigterm() {
    let (child, url) = spawn_serve(&[
        "--rows",
        "terminal=200,subscriber=100",
        "--seed",
        "3",
        "--rate-limit",
        "100/s",
        "--offset",
        "native",
    ])
    .await;
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/api/"), "{url:?}");

    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let session = login(&http, &url, "admin", "admin").await.unwrap();
    assert_eq!(session.len(), 32);

    stop(child).await;
}

#[test]
fn bad_arguments_exit_2_and_runtime_errors_exit_1() {
    for args in [
        &["serve", "--fail-rate", "2"][..],
        &["serve", "--rows", "nope=1"],
        &["serve", "--rows", "terminal"],
        &["serve", "--rate-limit", "0/s"],
        &["serve", "--offset", "postgres"],
        &["serve", "--bogus"],
        &[],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = std::env::temp_dir().join(format!("iptvportal-sim-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let foreign = dir.join("foreign.txt");
    std::fs::write(&foreign, "hello").unwrap();
    let out = Command::new(BIN).args(["serve", "--db"]).arg(&foreign).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("error: refusing to overwrite")), "{stderr}");
    assert!(out.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

//! A dump in a bucket read back (moto in server mode): `status --out s3://...` and
//! `verify s3://...` (with `--source` too) on what `dump` published, every kind of tampering
//! named by its object, a table being written reported as such; and the config file's `[storage]`
//! table in place of the AWS environment, which wins over it where both say.

use std::time::Duration;

use iptvportal_sim::SimConfig;
use iptvportal_store::{Destination, ObjectDir};
use iptvportal_testkit::moto::{Moto, free_port};

use crate::s3::{SECRET, Settings};
use crate::{Portal, Run, bare, failure, run};

/// `iptvportal ARGS` against `portal`, with `moto`'s settings in the AWS environment.
fn with_env(portal: &Portal, moto: &Moto) -> assert_cmd::Command {
    let mut cmd = portal.cmd();
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_ALLOW_HTTP", "true");
    cmd
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(!r.stdout.contains(SECRET) && !r.stderr.contains(SECRET), "{r:?}");
}

#[test]
#[expect(clippy::too_many_lines, reason = "one dump read back case after case reads best whole")]
fn status_and_verify_read_a_dump_in_a_bucket() {
    let moto = Moto::start();
    moto.bucket("dumps");
    let portal =
        Portal::start(SimConfig::default().seed(7).rows("terminal", 300).rows("tv_channel", 120));
    let root = tempfile::tempdir().unwrap();

    // `terminal` in JSONL parts of 100 rows, with the AWS environment.
    let r = run(with_env(&portal, &moto)
        .args(["dump", "terminal", "--out", "s3://dumps/v", "--progress", "none"])
        .args(["--part-rows", "100", "--chunk-size", "50", "--stage"])
        .arg(root.path().join("stage")));
    ok(&r);

    // `tv_channel` in Parquet, with the config file's `[storage]` alone (no AWS_* at all), its
    // stage under the file's `stage_root`.
    let config = root.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"testing\"\n\
             secret_access_key = \"{SECRET}\"\nallow_http = true\nstage_root = \"{}\"\n",
            moto.url(),
            root.path().join("stages").display()
        ),
    )
    .unwrap();
    let r = run(portal
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["dump", "tv_channel", "--out", "s3://dumps/v", "--format", "parquet"])
        .args(["--progress", "none"]));
    ok(&r);
    assert!(root.path().join("stages/dumps/v/tv_channel").is_dir(), "the file's stage_root");

    // status: both tables, complete, from their manifests.
    let r =
        run(with_env(&portal, &moto).args(["status", "--out", "s3://dumps/v", "--format", "json"]));
    ok(&r);
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let summary: Vec<(String, String, u64, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["table"].as_str().unwrap().to_owned(),
                e["state"].as_str().unwrap().to_owned(),
                e["dumped_rows"].as_u64().unwrap(),
                e["format"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("terminal".to_owned(), "complete".to_owned(), 300, "jsonl".to_owned()),
            ("tv_channel".to_owned(), "complete".to_owned(), 120, "parquet".to_owned()),
        ]
    );

    // verify: every part downloaded and checked; with --source, recounted on the portal.
    let sound = "terminal: ok, 300 rows in 3 files\ntv_channel: ok, 120 rows in 1 file\n\
                 verified 2 tables: 2 ok\n";
    let r = run(with_env(&portal, &moto).args(["verify", "s3://dumps/v"]));
    ok(&r);
    assert_eq!(r.stdout, sound);
    let r = run(with_env(&portal, &moto).args(["verify", "s3://dumps/v", "--source"]));
    ok(&r);
    assert_eq!(
        r.stdout,
        "terminal: ok, 300 rows in 3 files, the portal agrees\n\
         tv_channel: ok, 120 rows in 1 file, the portal agrees\nverified 2 tables: 2 ok\n"
    );
    // The environment wins over the file: a file naming a dead endpoint changes nothing.
    let dead = root.path().join("dead.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&dead, text.replace(&moto.url(), &format!("http://127.0.0.1:{}", free_port())))
        .unwrap();
    let r =
        run(with_env(&portal, &moto).arg("--config").arg(&dead).args(["verify", "s3://dumps/v"]));
    ok(&r);
    assert_eq!(r.stdout, sound);

    // Tampering, each named by its object: a byte flipped in the middle of a part, a part
    // deleted, another added.
    let dest = ObjectDir::s3("dumps", "v", &moto.options()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let scratch = root.path().join("tamper");
    let mut bytes =
        runtime.block_on(dest.read("terminal/terminal-00001.jsonl")).unwrap().unwrap().bytes;
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'1' { b'2' } else { b'1' };
    std::fs::write(&scratch, &bytes).unwrap();
    let mut ignore = |_: &iptvportal_store::Upload| {};
    runtime.block_on(dest.publish("terminal/terminal-00001.jsonl", &scratch, &mut ignore)).unwrap();
    runtime.block_on(dest.publish("terminal/terminal-00009.jsonl", &scratch, &mut ignore)).unwrap();
    runtime.block_on(dest.delete("tv_channel/tv_channel-00000.parquet")).unwrap();
    let r = run(with_env(&portal, &moto).args(["verify", "s3://dumps/v"]));
    assert_eq!(r.code, 1, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", r.stdout);
    assert!(
        lines[0].starts_with(
            "terminal: s3://dumps/v/terminal/terminal-00001.jsonl: its contents changed (CRC-32 "
        ),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1..],
        [
            "terminal: s3://dumps/v/terminal/terminal-00009.jsonl: the manifest lists no such file",
            "tv_channel: s3://dumps/v/tv_channel/tv_channel-00000.parquet: it is missing",
            "verified 2 tables: 0 ok, 2 with problems",
        ]
    );
    // A dump of the changed table refuses, as it does locally.
    let r = run(with_env(&portal, &moto)
        .args(["dump", "tv_channel", "--out", "s3://dumps/v", "--format", "parquet"])
        .args(["--progress", "none", "--stage"])
        .arg(root.path().join("stage")));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("tv_channel-00000.parquet is missing"), "{}", r.stderr);

    // One table asked for by name; one the bucket does not hold.
    let r = run(with_env(&portal, &moto).args(["verify", "s3://dumps/v", "tv_channel", "media"]));
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stdout,
        "tv_channel: s3://dumps/v/tv_channel/tv_channel-00000.parquet: it is missing\n\
         media: no checkpoint in s3://dumps/v/media\nverified 2 tables: 0 ok, 2 with problems\n"
    );

    // A table a run is writing (its lease live) is shown as such and not checked.
    runtime
        .block_on(iptvportal_store::Lease::acquire(
            &dest,
            "terminal/.lease",
            "other-host pid 4242",
            Duration::from_secs(600),
        ))
        .unwrap();
    let r =
        run(with_env(&portal, &moto).args(["status", "--out", "s3://dumps/v", "--format", "json"]));
    ok(&r);
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(listed[0]["state"], "writing", "{}", r.stdout);
    assert_eq!(listed[0]["writer"], "other-host pid 4242", "{}", r.stdout);
    let r = run(with_env(&portal, &moto).args(["verify", "s3://dumps/v", "terminal"]));
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stdout,
        "terminal: s3://dumps/v/terminal is being written by other-host pid 4242 now: its \
         objects are moving; verify it once that run ends\n\
         verified 1 table: 0 ok, 1 with problems\n"
    );

    // A prefix with no dump: one line, exit 1.
    let r = run(with_env(&portal, &moto).args(["verify", "s3://dumps/nothing"]));
    assert_eq!((r.code, r.stdout.as_str()), (1, ""), "{r:?}");
    assert_eq!(
        r.stderr.trim_end(),
        "error: no dumps in s3://dumps/nothing: no TABLE/_manifest.json under it; pass the --out \
         the dump wrote to (s3://bucket/prefix)"
    );
    let r = run(with_env(&portal, &moto).args(["status", "--out", "s3://dumps/nothing"]));
    ok(&r);
    assert_eq!(r.stdout, "no checkpoints in s3://dumps/nothing\n");
}

/// Mistakes in the config file's `[storage]` are refused whatever the command, naming the key.
#[test]
fn a_storage_table_with_a_mistake_is_refused() {
    let root = tempfile::tempdir().unwrap();
    for (text, line) in [
        (
            "[storage]\naccess_key_id = \"k\"\n",
            "storage.access_key_id needs its pair: set both access_key_id and secret_access_key, \
             or neither",
        ),
        (
            "[storage]\nendpoint = \"storage.example\"\n",
            "storage.endpoint must be an http:// or https:// URL",
        ),
        ("[storage]\nmax_retries = 1000\n", "storage.max_retries must be 0 to"),
    ] {
        let path = root.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let line_got = failure(bare().arg("--config").arg(&path).args(["status", "--out", "x"]));
        assert!(
            line_got.starts_with(&format!("error: config file {}: {line}", path.display())),
            "{line_got}"
        );
    }
}

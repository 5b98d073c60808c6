//! `dump --out s3://bucket/prefix` against a real S3 API (moto in server mode, on a loopback
//! port): the objects are the parts a local dump writes, byte for byte; a dump killed with
//! SIGKILL at random instants (its stage sometimes wiped, as on another machine) resumes to the
//! objects of an uninterrupted run, with nothing else listed and no upload left open; and the
//! failures of docs/object-storage.md are one line each.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iptvportal_store::{Destination, ObjectDir, S3Credentials, S3Options};
use iptvportal_testkit::moto::{Moto, free_port};

use crate::dump_crash::run_until;
use crate::dumping::{Rng, dump_process, portal};

/// A secret no output, message or object may hold.
pub(crate) const SECRET: &str = "s3-Secret-never-shown";

/// The store's settings, for the test's own client, and in the standard AWS environment for
/// the dump's.
pub(crate) trait Settings {
    fn options(&self) -> S3Options;
    fn objects(&self, bucket: &str, prefix: &str, table: &str) -> BTreeMap<String, Vec<u8>>;
    fn env(&self, cmd: &mut std::process::Command);
}

impl Settings for Moto {
    fn options(&self) -> S3Options {
        S3Options {
            credentials: Some(S3Credentials {
                access_key_id: "testing".into(),
                secret_access_key: SECRET.into(),
                session_token: None,
            }),
            endpoint: Some(self.url()),
            region: Some("us-east-1".into()),
            allow_http: Some(true),
            virtual_hosted: Some(false),
            max_retries: Some(0),
        }
    }

    /// Every object under `prefix/table/` in `bucket`, by name, with its bytes.
    fn objects(&self, bucket: &str, prefix: &str, table: &str) -> BTreeMap<String, Vec<u8>> {
        let dest = ObjectDir::s3(bucket, prefix, &self.options()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut objects = BTreeMap::new();
            for entry in dest.list(table).await.unwrap() {
                let object = dest.read(&entry.key).await.unwrap().unwrap();
                let name = entry.key.rsplit('/').next().unwrap().to_owned();
                objects.insert(name, object.bytes);
            }
            objects
        })
    }

    /// `dump_process` with this store's settings in the standard AWS environment.
    fn env(&self, cmd: &mut std::process::Command) {
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", self.url())
            .env("AWS_ALLOW_HTTP", "true");
    }
}

struct Scenario {
    name: &'static str,
    format: &'static str,
    gzip: bool,
    strategy: &'static [&'static str],
}

const SCENARIOS: [Scenario; 3] = [
    Scenario { name: "jsonl-gz", format: "jsonl", gzip: true, strategy: &["--strategy", "offset"] },
    Scenario {
        name: "csv",
        format: "csv",
        gzip: false,
        strategy: &["--strategy", "id-range", "--parallel", "1"],
    },
    Scenario {
        name: "parquet",
        format: "parquet",
        gzip: false,
        strategy: &["--strategy", "id-range", "--parallel", "3"],
    },
];

/// Rows of `terminal`, rows per chunk and per part, and the portal's latency: about seventy
/// chunks and thirteen parts, so kills land before, between and during uploads.
const ROWS: u64 = 3000;
const CHUNK: &str = "40";
const PART_ROWS: &str = "240";
const LATENCY_MS: u64 = 4;
/// Kills per scenario at least.
const MIN_KILLS: u32 = 8;

impl Scenario {
    /// The dump into `out`, a bucket's with its `stage`, or a local directory's.
    fn command(&self, url: &str, out: &str, stage: Option<&Path>) -> std::process::Command {
        let mut cmd = dump_process(url, Path::new(out));
        cmd.arg("terminal")
            .args(["--format", self.format, "--chunk-size", CHUNK, "--part-rows", PART_ROWS])
            .args(self.strategy)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(stage) = stage {
            cmd.arg("--stage").arg(stage);
        }
        if self.gzip {
            cmd.arg("--compress");
        }
        cmd
    }
}

/// The output files of a local dump directory, by name, with their bytes.
fn local_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// Checks a finished table's objects: its manifest is complete and names exactly the other
/// objects, with their sizes; no secret is in it; the lease is released. Returns the parts.
fn published(objects: &BTreeMap<String, Vec<u8>>, context: &str) -> BTreeMap<String, Vec<u8>> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&objects["_manifest.json"]).expect(context);
    assert_eq!(manifest["is_complete"], true, "{context}");
    let text = String::from_utf8_lossy(&objects["_manifest.json"]);
    assert!(!text.contains(SECRET) && !text.contains("testing"), "{context}: {text}");
    let lease: serde_json::Value = serde_json::from_slice(&objects[".lease"]).expect(context);
    assert_eq!(lease["released"], true, "{context}");
    let parts: BTreeMap<String, Vec<u8>> = objects
        .iter()
        .filter(|(name, _)| !name.starts_with(['_', '.']))
        .map(|(n, b)| (n.clone(), b.clone()))
        .collect();
    let named: BTreeMap<String, u64> = manifest["sink"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_owned(), f["bytes"].as_u64().unwrap()))
        .collect();
    let listed: BTreeMap<String, u64> =
        parts.iter().map(|(n, b)| (n.clone(), b.len() as u64)).collect();
    assert_eq!(listed, named, "{context}: the objects are the manifest's");
    parts
}

#[test]
fn dumps_to_s3_are_a_local_dumps_parts_and_resume_exactly_after_kills() {
    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        #[expect(clippy::cast_possible_truncation, reason = "only the low bits are wanted")]
        let nanos = now.as_nanos() as u64;
        nanos
    });
    eprintln!("s3 crash test seed {seed}; replay with CRASH_SEED={seed}");
    let moto = Moto::start();
    moto.bucket("dumps");
    let root = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(seed);
    let mut kills = 0;
    for scenario in &SCENARIOS {
        let portal = portal(ROWS, LATENCY_MS);
        let context = |what: &str| format!("seed {seed}, {}: {what}", scenario.name);
        let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();

        // The same dump into a local directory and into the bucket.
        let local = root.path().join(format!("{}-local", scenario.name));
        let out = scenario.command(portal.url(), local.to_str().unwrap(), None).output().unwrap();
        assert!(out.status.success(), "{}", context(&stderr(&out)));
        let want_files = local_files(&local);
        assert!(want_files.len() >= 12, "{}", context("parts"));

        let prefix = format!("run/{}-whole", scenario.name);
        let mut cmd = scenario.command(
            portal.url(),
            &format!("s3://dumps/{prefix}"),
            Some(&root.path().join(format!("{}-stage", scenario.name))),
        );
        moto.env(&mut cmd);
        let began = Instant::now();
        let out = cmd.output().unwrap();
        let whole = began.elapsed();
        let said = stderr(&out);
        assert!(out.status.success(), "{}", context(&said));
        assert!(!said.contains(SECRET), "{said}");
        let objects = moto.objects("dumps", &prefix, "terminal");
        let parts = published(&objects, &context("uninterrupted"));
        assert_eq!(parts, want_files, "{}", context("the objects are the local dump's files"));
        // The stage keeps only the checkpoint and the lock: every part went to the bucket.
        let stage = root.path().join(format!("{}-stage/terminal", scenario.name));
        assert_eq!(local_files(&stage), BTreeMap::new(), "{}", context("stage"));

        // Kills at random instants, the stage sometimes wiped (a second machine resumes from
        // the bucket alone), until a run completes; then the objects are compared.
        let mut round = 0;
        let mut scenario_kills = 0;
        while scenario_kills < MIN_KILLS {
            round += 1;
            let prefix = format!("run/{}-{round}", scenario.name);
            let stage = root.path().join(format!("{}-stage-{round}", scenario.name));
            let mut runs = 0;
            loop {
                runs += 1;
                assert!(runs < 200, "{}", context("no progress after 200 runs"));
                let mut cmd =
                    scenario.command(portal.url(), &format!("s3://dumps/{prefix}"), Some(&stage));
                moto.env(&mut cmd);
                let (killed, out) = run_until(cmd.spawn().unwrap(), whole.mul_f64(rng.unit()));
                if killed {
                    assert_eq!(out.status.signal(), Some(9), "{}", context(&stderr(&out)));
                    scenario_kills += 1;
                    if rng.unit() < 0.3 {
                        std::fs::remove_dir_all(&stage).ok();
                    }
                    continue;
                }
                assert!(out.status.success(), "{}", context(&stderr(&out)));
                break;
            }
            let what = format!("round {round}");
            let objects = moto.objects("dumps", &prefix, "terminal");
            let parts = published(&objects, &context(&what));
            // The very bytes, whatever the strategy: parallel ranges are cut from the ids
            // after the cursor, which is always a chunk's end, so a resume cuts the same chunks.
            assert_eq!(parts, want_files, "{}", context(&what));
            assert_eq!(moto.uploads("dumps"), 0, "{}", context("open uploads"));
        }
        kills += scenario_kills;
    }
    eprintln!("{kills} kills to s3, every resume exact");
}

/// The table of docs/object-storage.md's "When it fails": case name to key phrase.
fn documented() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/object-storage.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut cases = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `s3-")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 4, "a row of four cells: {line}");
        let unquote = |c: &str| {
            let c = c.strip_prefix("``").and_then(|c| c.strip_suffix("``")).unwrap_or(c);
            c.trim().trim_matches('`').to_owned()
        };
        assert!(cases.insert(unquote(cells[0]), unquote(cells[2])).is_none(), "{line}");
    }
    cases
}

/// A TCP forwarder to a port that can be cut, as a network or an endpoint goes down: while cut,
/// its connections are shut and new ones dropped.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn to(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (is_cut, tracked) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if is_cut.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let mut streams = tracked.lock().unwrap();
                streams.push(client.try_clone().unwrap());
                streams.push(server.try_clone().unwrap());
                for (mut from, mut to) in
                    [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Proxy { port, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// The failures of docs/object-storage.md, each one line naming the bucket, exit 1, nothing
/// committed lost; and the dump the endpoint went away from resumes to the uninterrupted objects.
#[test]
#[expect(clippy::too_many_lines, reason = "one case after another reads best as one list")]
fn s3_failures_are_one_line_and_lose_nothing() {
    let moto = Moto::start();
    moto.bucket("dumps");
    let portal = portal(300, 0);
    let root = tempfile::tempdir().unwrap();
    let mut said: BTreeMap<&str, String> = BTreeMap::new();
    let run = |out: &str, env: &dyn Fn(&mut std::process::Command)| {
        let mut cmd = dump_process(portal.url(), Path::new(out));
        cmd.arg("terminal").arg("--stage").arg(root.path().join("stage"));
        moto.env(&mut cmd);
        env(&mut cmd);
        let out = cmd.output().unwrap();
        let line = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
        assert!(!line.contains(SECRET), "{line}");
        assert_eq!(line.lines().count(), 1, "{line}");
        assert_eq!(out.status.code(), Some(1), "{line}");
        line
    };
    let same = |_: &mut std::process::Command| {};
    let line = run("s3://no-such-bucket/p", &same);
    assert_eq!(
        line,
        "error: terminal: s3://no-such-bucket/p: the bucket no-such-bucket does not exist; \
         create it, or fix the bucket name"
    );
    said.insert("s3-no-bucket", line);
    let down = format!("http://127.0.0.1:{}", free_port());
    let line = run("s3://dumps/p", &|c| {
        c.env("AWS_ENDPOINT_URL", &down);
    });
    assert!(
        line.starts_with("error: terminal: s3://dumps/p: cannot reach the storage endpoint"),
        "{line}"
    );
    said.insert("s3-unreachable", line);
    let line = run("gs://dumps/p", &same);
    assert_eq!(
        line,
        "error: --out gs://dumps/p: \"gs\" storage is not supported; write s3://bucket/prefix \
         for S3-compatible storage, or a local directory"
    );
    said.insert("s3-scheme", line);
    // Nothing was written anywhere: no object, no local `s3:` directory.
    assert_eq!(moto.objects("dumps", "p", "terminal"), BTreeMap::new());
    assert!(!Path::new("s3:").exists() && !Path::new("gs:").exists());

    // Credentials the store does not know (a moto that checks them).
    let strict = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let line = run("s3://dumps/p", &|c| {
        c.env("AWS_ENDPOINT_URL", strict.url());
    });
    assert_eq!(
        line,
        "error: terminal: s3://dumps/p: the storage refused the credentials \
         (InvalidAccessKeyId); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and \
         AWS_SESSION_TOKEN"
    );
    said.insert("s3-credentials", line);
    drop(strict);

    // A table another run holds (its lease live) is refused at once, naming the holder.
    let dest: Arc<dyn Destination> =
        Arc::new(ObjectDir::s3("dumps", "held", &moto.options()).unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let lease = runtime.block_on(iptvportal_store::Lease::acquire(
        dest.as_ref(),
        "terminal/.lease",
        "other-host pid 4242",
        Duration::from_secs(600),
    ));
    lease.unwrap();
    let line = run("s3://dumps/held", &same);
    assert!(
        line.starts_with(
            "error: terminal: s3://dumps/held: terminal/.lease is being written by other-host \
             pid 4242 (its lease expires in"
        ),
        "{line}"
    );
    said.insert("s3-leased", line);

    // A finished dump whose part was deleted from the bucket is not believed complete.
    let mut cmd = dump_process(portal.url(), Path::new("s3://dumps/done"));
    cmd.args(["terminal", "--part-rows", "100", "--chunk-size", "100", "--stage"])
        .arg(root.path().join("done"));
    moto.env(&mut cmd);
    assert!(cmd.output().unwrap().status.success());
    let dest = ObjectDir::s3("dumps", "done", &moto.options()).unwrap();
    runtime.block_on(dest.delete("terminal/terminal-00001.jsonl")).unwrap();
    let line = run("s3://dumps/done", &|c| {
        c.args(["--part-rows", "100", "--chunk-size", "100"]);
    });
    assert_eq!(
        line,
        "error: terminal: s3://dumps/done: terminal/terminal-00001.jsonl is missing; the dump in \
         the bucket was changed by hand: rerun with --reset to dump again"
    );
    said.insert("s3-changed", line);

    // Every documented case ran, and said its phrase.
    let docs = documented();
    assert_eq!(
        said.keys().copied().collect::<Vec<_>>(),
        docs.keys().map(String::as_str).collect::<Vec<_>>(),
        "docs/object-storage.md"
    );
    for (name, line) in &said {
        assert!(line.contains(&docs[*name]), "{name}: {line:?} lacks {:?}", docs[*name]);
    }

    // The endpoint goes away mid-dump: one line, and the rerun ends with the objects of a dump
    // that was never interrupted.
    let slow = crate::dumping::portal(3000, 4);
    let scenario = &SCENARIOS[2];
    let local = root.path().join("mid-local");
    let out = scenario.command(slow.url(), local.to_str().unwrap(), None).output().unwrap();
    assert!(out.status.success());
    let proxy = Proxy::to(moto.port());
    let stage = root.path().join("mid-stage");
    let through = |cmd: &mut std::process::Command| {
        moto.env(cmd);
        cmd.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", proxy.port));
    };
    let mut cmd = scenario.command(slow.url(), "s3://dumps/mid", Some(&stage));
    through(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    // Cut once the first part is in the bucket: a dump half done.
    let began = Instant::now();
    while !moto.objects("dumps", "mid", "terminal").contains_key("terminal-00000.parquet") {
        assert!(child.try_wait().unwrap().is_none(), "the dump ended before its first part");
        assert!(began.elapsed() < Duration::from_secs(60), "no part after a minute");
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.cut();
    let out = child.wait_with_output().unwrap();
    let line = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("error: terminal: s3://dumps/mid: "), "{line}");
    eprintln!("endpoint down mid-dump: {line}");
    proxy.restore();
    let mut cmd = scenario.command(slow.url(), "s3://dumps/mid", Some(&stage));
    through(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let parts = published(&moto.objects("dumps", "mid", "terminal"), "mid-dump");
    assert_eq!(parts, local_files(&local));
    assert_eq!(moto.uploads("dumps"), 0);
}

//! `RemoteStore` over an in-memory object store (`object_store`'s, with multipart uploads), and
//! a destination that fails on request: the commit points a kill or an outage can hit between,
//! each followed by a rerun that must end with exactly the objects of an uninterrupted dump.
//! The same over a real S3 API, with real kills, is `crates/cli/tests/it/s3.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iptvportal_checkpoint::CheckpointStore;
use iptvportal_dump::{DumpConfig, DumpService, Error, Format, RemoteStore};
use iptvportal_sim::SimConfig;
use iptvportal_store::{Destination, Entry, Object, ObjectDir, Upload, Version};
use object_store::memory::InMemory;

use crate::common::{client, config, runtime, sim};

/// What the wrapper fails, counted down: the `n`th call of its kind fails (0: never).
#[derive(Debug, Default)]
struct Faults {
    /// Fails the nth manifest write (create or replace).
    manifest: AtomicUsize,
    /// Fails the nth publish after its upload started (as a kill mid-upload would leave it).
    publish: AtomicUsize,
    aborted: Mutex<Vec<Upload>>,
}

#[derive(Debug)]
struct Flaky {
    inner: ObjectDir,
    faults: Arc<Faults>,
}

fn due(counter: &AtomicUsize) -> bool {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) == Ok(1)
}

fn outage() -> iptvportal_store::Error {
    iptvportal_store::Error::Unreachable { place: "s3://mem/p".into(), reason: "injected".into() }
}

#[async_trait]
impl Destination for Flaky {
    fn display(&self) -> String {
        self.inner.display()
    }
    async fn publish(
        &self,
        key: &str,
        from: &Path,
        started: &mut (dyn for<'u> FnMut(&'u Upload) + Send),
    ) -> Result<Entry, iptvportal_store::Error> {
        if due(&self.faults.publish) {
            // An upload begun and never completed: what a killed run leaves open.
            started(&Upload { key: key.to_owned(), id: format!("killed-{key}") });
            return Err(outage());
        }
        self.inner.publish(key, from, started).await
    }
    async fn abort_upload(&self, upload: &Upload) -> Result<(), iptvportal_store::Error> {
        self.faults.aborted.lock().unwrap().push(upload.clone());
        if upload.id.starts_with("killed-") {
            return Ok(());
        }
        self.inner.abort_upload(upload).await
    }
    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<Version, iptvportal_store::Error> {
        if key.ends_with("_manifest.json") && due(&self.faults.manifest) {
            return Err(outage());
        }
        self.inner.create(key, bytes).await
    }
    async fn replace(
        &self,
        key: &str,
        bytes: Vec<u8>,
        expected: &Version,
    ) -> Result<Version, iptvportal_store::Error> {
        if key.ends_with("_manifest.json") && due(&self.faults.manifest) {
            return Err(outage());
        }
        self.inner.replace(key, bytes, expected).await
    }
    async fn read(&self, key: &str) -> Result<Option<Object>, iptvportal_store::Error> {
        self.inner.read(key).await
    }
    async fn download(&self, key: &str, to: &Path) -> Result<Option<u64>, iptvportal_store::Error> {
        self.inner.download(key, to).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<Entry>, iptvportal_store::Error> {
        self.inner.list(prefix).await
    }
    async fn dirs(&self, prefix: &str) -> Result<Vec<String>, iptvportal_store::Error> {
        self.inner.dirs(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), iptvportal_store::Error> {
        self.inner.delete(key).await
    }
}

/// A dump of `terminal` in text parts of 300 rows (1,000 rows: four parts), staged in `stage`.
fn staged(stage: &Path) -> DumpConfig {
    let mut config = config("terminal", &stage.join("terminal")).format(Format::Jsonl);
    config.text_part_rows = Some(300);
    config.parts_published = true;
    config
}

async fn objects(dest: &dyn Destination) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in dest.list("terminal").await.unwrap() {
        out.insert(entry.key.clone(), dest.read(&entry.key).await.unwrap().unwrap().bytes);
    }
    out
}

/// The parts of a local dump with the same options, keyed as in the bucket.
fn local_parts(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let key = format!("terminal/{}", e.file_name().to_string_lossy());
            (key, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

async fn run(
    portal: &iptvportal_client::Client,
    dest: Arc<dyn Destination>,
    config: &DumpConfig,
) -> Result<(), Error> {
    let store = Arc::new(RemoteStore::new(dest, "terminal", &config.output_dir));
    let service = {
        let store = store.clone();
        DumpService::with_stores(portal.clone(), move |_| store.clone() as Arc<dyn CheckpointStore>)
    };
    let result = service.dump(config.clone(), None).await.map(|_| ());
    store.release().await;
    result
}

#[test]
fn every_commit_point_reruns_to_the_objects_of_an_uninterrupted_dump() {
    runtime().block_on(async {
        let sim = sim(SimConfig::default().seed(3).rows("terminal", 1000)).await;
        let portal = client(&sim);
        let root = tempfile::tempdir().unwrap();

        // The reference: the same dump into a local directory.
        let local = root.path().join("local");
        let mut plain = config("terminal", &local).format(Format::Jsonl);
        plain.text_part_rows = Some(300);
        DumpService::new(portal.clone()).dump(plain, None).await.unwrap();
        let want = local_parts(&local);
        assert_eq!(want.len(), 4);

        // Faults at each commit point, one per dump: the failed run errs, the rerun completes.
        // (manifest n, publish n): the first manifest, a middle one, the last (complete) one;
        // an upload killed halfway, the first and the last part.
        let faults = [(1, 0), (2, 0), (4, 0), (0, 1), (0, 4)];
        for (i, (manifest, publish)) in faults.into_iter().enumerate() {
            let context = format!("fault {i}: manifest {manifest}, publish {publish}");
            let memory = ObjectDir::new(Arc::new(InMemory::new()), "mem", "p");
            let f = Arc::new(Faults::default());
            f.manifest.store(manifest, Ordering::SeqCst);
            f.publish.store(publish, Ordering::SeqCst);
            let dest: Arc<dyn Destination> =
                Arc::new(Flaky { inner: memory.clone(), faults: f.clone() });
            let stage = root.path().join(format!("stage-{i}"));
            let config = staged(&stage);
            let failed = run(&portal, dest.clone(), &config).await;
            assert!(
                matches!(failed, Err(Error::Checkpoint { .. })),
                "{context}: {:?}",
                failed.map_err(|e| e.to_string())
            );
            run(&portal, dest.clone(), &config).await.unwrap();
            let got = objects(&memory).await;
            let manifest = got.get("terminal/_manifest.json").expect(&context).clone();
            let state = iptvportal_checkpoint::from_bytes(Path::new("m"), &manifest).unwrap();
            assert!(state.is_complete, "{context}");
            let parts: BTreeMap<String, Vec<u8>> = got
                .into_iter()
                .filter(|(k, _)| k != "terminal/_manifest.json" && k != "terminal/.lease")
                .collect();
            assert_eq!(parts, want, "{context}");
            if publish > 0 {
                let aborted = f.aborted.lock().unwrap().clone();
                assert_eq!(aborted.len(), 1, "{context}: {aborted:?}");
                assert!(aborted[0].id.starts_with("killed-terminal/terminal-"), "{context}");
            }
            // A rerun finds it complete: the parts are in the bucket, not in the stage.
            run(&portal, dest.clone(), &config).await.unwrap();
            assert_eq!(objects(&memory).await.len(), want.len() + 2, "{context}");
            // The stage keeps no part: each went to the bucket.
            let staged: Vec<String> = std::fs::read_dir(stage.join("terminal"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect();
            assert_eq!(staged, Vec::<String>::new(), "{context}");
        }

        // Leftovers in the bucket: a part no manifest names (uploaded before a kill) is removed
        // by the next run; an object of another name is not this dump's and stays.
        let memory = ObjectDir::new(Arc::new(InMemory::new()), "mem", "p");
        let dest: Arc<dyn Destination> = Arc::new(memory.clone());
        let stray = root.path().join("stray");
        std::fs::write(&stray, b"left by a killed run").unwrap();
        dest.publish("terminal/terminal-00009.jsonl", &stray, &mut |_: &Upload| {}).await.unwrap();
        dest.publish("terminal/notes.txt", &stray, &mut |_: &Upload| {}).await.unwrap();
        let config = staged(&root.path().join("stage-stray"));
        run(&portal, dest.clone(), &config).await.unwrap();
        let got = objects(&memory).await;
        assert!(!got.contains_key("terminal/terminal-00009.jsonl"));
        assert_eq!(got["terminal/notes.txt"], b"left by a killed run");

        // A complete dump whose part was deleted by hand is refused, not believed.
        dest.delete("terminal/terminal-00001.jsonl").await.unwrap();
        let refused = run(&portal, dest.clone(), &config).await.unwrap_err().to_string();
        assert_eq!(
            refused,
            "terminal: s3://mem/p: terminal/terminal-00001.jsonl \
             is missing; the dump in the bucket was changed by hand: rerun with --reset to dump \
             again"
        );
    });
}

/// `verify_bucket` on what `RemoteStore` published: a complete dump holds; one stopped after
/// its first boundary is incomplete, the part a failed commit uploaded unnamed being no problem
/// (the next run removes it); a flipped byte and an added part in a complete one are named.
#[test]
fn verify_bucket_checks_the_published_parts() {
    runtime().block_on(async {
        let sim = sim(SimConfig::default().seed(3).rows("terminal", 1000)).await;
        let portal = client(&sim);
        let root = tempfile::tempdir().unwrap();
        let scratch = root.path().join("scratch");
        let memory = ObjectDir::new(Arc::new(InMemory::new()), "mem", "p");
        let faults = Arc::new(Faults::default());
        faults.manifest.store(2, Ordering::SeqCst);
        let dest: Arc<dyn Destination> =
            Arc::new(Flaky { inner: memory.clone(), faults: faults.clone() });
        let config = staged(&root.path().join("stage"));
        assert!(run(&portal, dest.clone(), &config).await.is_err());
        // The failed run recorded its error at its last boundary: two parts of 300 rows. A
        // third part, as a run killed before its manifest leaves it, is no problem yet.
        let copy = root.path().join("copy");
        std::fs::write(&copy, b"{}\n").unwrap();
        memory.publish("terminal/terminal-00002.jsonl", &copy, &mut |_: &Upload| {}).await.unwrap();
        let reports = iptvportal_dump::verify_bucket(dest.clone(), &[], &scratch).await.unwrap();
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!(
            (r.table.as_str(), r.complete, r.rows, r.files.len()),
            ("terminal", false, 600, 2)
        );
        assert!(r.problems.is_empty() && r.unverified.is_none(), "{:?}", r.problems);
        assert_eq!(r.status(), iptvportal_dump::TableStatus::Incomplete);

        run(&portal, dest.clone(), &config).await.unwrap();
        let reports = iptvportal_dump::verify_bucket(dest.clone(), &[], &scratch).await.unwrap();
        assert_eq!(
            reports[0].status(),
            iptvportal_dump::TableStatus::Ok,
            "{:?}",
            reports[0].problems
        );
        assert_eq!(reports[0].files.len(), 4);
        // Nothing stays in the scratch directory.
        assert_eq!(std::fs::read_dir(scratch.join("terminal")).unwrap().count(), 0);

        let mut bytes = memory.read("terminal/terminal-00002.jsonl").await.unwrap().unwrap().bytes;
        bytes[100] ^= 0x01;
        std::fs::write(&copy, &bytes).unwrap();
        memory.publish("terminal/terminal-00002.jsonl", &copy, &mut |_: &Upload| {}).await.unwrap();
        memory.publish("terminal/terminal.jsonl", &copy, &mut |_: &Upload| {}).await.unwrap();
        let reports = iptvportal_dump::verify_bucket(dest.clone(), &[], &scratch).await.unwrap();
        let problems: Vec<String> = reports[0].problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0]
                .starts_with("s3://mem/p/terminal/terminal-00002.jsonl: its contents changed"),
            "{problems:?}"
        );
        assert_eq!(
            problems[1],
            "s3://mem/p/terminal/terminal.jsonl: the manifest lists no such file"
        );
    });
}

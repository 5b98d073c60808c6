//! The same checks for every destination: a local directory, the in-memory object store, and S3
//! itself, a real S3 API (moto in server mode) on a loopback port.
//!
//! The S3 tests start `moto_server` from `$MOTO_SERVER`, `target/moto-venv/bin` (made by
//! `cargo xtask venv`, which `.ci/run` calls before the tests) or the `PATH`; without one they fail
//! and say how to install it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use iptvportal_store::{
    Destination, Error, Lease, LeaseHolder, LocalDir, ObjectDir, S3Credentials, S3Options, Upload,
    lease,
};
use iptvportal_testkit::moto::{Moto, free_port};
use object_store::memory::InMemory;

/// The checks every destination passes; `parts` says whether large files go in parts (and so
/// report an upload id).
async fn conformance(dest: &dyn Destination, parts: bool, scratch: &Path) {
    // Conditional writes.
    let v1 = dest.create("t/_manifest.json", b"one".to_vec()).await.unwrap();
    let err = dest.create("t/_manifest.json", b"two".to_vec()).await.unwrap_err();
    assert!(matches!(err, Error::Exists { .. }), "{err}");
    assert_eq!(err.to_string(), format!("{}: t/_manifest.json already exists", dest.display()));
    let read = dest.read("t/_manifest.json").await.unwrap().unwrap();
    assert_eq!((read.bytes.as_slice(), &read.version), (&b"one"[..], &v1));
    let v2 = dest.replace("t/_manifest.json", b"two".to_vec(), &v1).await.unwrap();
    assert_ne!(v1, v2);
    let err = dest.replace("t/_manifest.json", b"three".to_vec(), &v1).await.unwrap_err();
    assert!(matches!(err, Error::Changed { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: t/_manifest.json was changed by another writer since it was read",
            dest.display()
        )
    );
    assert_eq!(dest.read("t/_manifest.json").await.unwrap().unwrap().bytes, b"two");
    let err = dest.replace("t/missing", b"x".to_vec(), &v2).await.unwrap_err();
    assert!(matches!(err, Error::Changed { .. }), "{err}");
    assert_eq!(dest.read("t/missing").await.unwrap(), None);

    // Publishing finished files: a small one in one request, a large one in parts.
    let small: Vec<u8> = (0..1000u32).flat_map(u32::to_le_bytes).collect();
    let large: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut uploads = Vec::new();
    for (name, bytes) in [("t/t-00000.parquet", &small), ("t/t-00001.parquet", &large)] {
        let file = scratch.join(name.replace('/', "_"));
        std::fs::write(&file, bytes).unwrap();
        let entry =
            dest.publish(name, &file, &mut |u: &Upload| uploads.push(u.clone())).await.unwrap();
        assert_eq!((entry.key.as_str(), entry.size), (name, bytes.len() as u64));
        assert_eq!(&dest.read(name).await.unwrap().unwrap().bytes, bytes);
    }
    assert_eq!(uploads.len(), usize::from(parts), "{uploads:?}");
    // Downloading, a bounded piece at a time.
    let down = scratch.join("down");
    assert_eq!(dest.download("t/t-00001.parquet", &down).await.unwrap(), Some(large.len() as u64));
    assert_eq!(std::fs::read(&down).unwrap(), large);
    assert_eq!(dest.download("t/missing", &scratch.join("none")).await.unwrap(), None);
    assert!(!scratch.join("none").exists());
    // An upload already completed is gone: aborting it again is no error.
    for upload in &uploads {
        dest.abort_upload(upload).await.unwrap();
    }
    // Publishing again replaces (a rerun after a crash sends the same part again).
    let file = scratch.join("again");
    std::fs::write(&file, &small).unwrap();
    dest.publish("t/t-00001.parquet", &file, &mut |_: &Upload| {}).await.unwrap();
    assert_eq!(dest.read("t/t-00001.parquet").await.unwrap().unwrap().bytes, small);

    // Listing: the objects directly under a prefix, by key, with their sizes.
    dest.create("t/deeper/x", b"x".to_vec()).await.unwrap();
    dest.create("u/other", b"o".to_vec()).await.unwrap();
    let listed: Vec<(String, u64)> =
        dest.list("t").await.unwrap().into_iter().map(|e| (e.key, e.size)).collect();
    assert_eq!(
        listed,
        vec![
            ("t/_manifest.json".to_owned(), 3),
            ("t/t-00000.parquet".to_owned(), 4000),
            ("t/t-00001.parquet".to_owned(), 4000),
        ]
    );
    assert_eq!(dest.list("nothing").await.unwrap(), vec![]);
    // The "directories" one level down.
    assert_eq!(dest.dirs("").await.unwrap(), ["t", "u"]);
    assert_eq!(dest.dirs("t").await.unwrap(), ["deeper"]);
    assert_eq!(dest.dirs("nothing").await.unwrap(), Vec::<String>::new());

    // Deleting, twice.
    dest.delete("t/t-00000.parquet").await.unwrap();
    dest.delete("t/t-00000.parquet").await.unwrap();
    assert_eq!(dest.read("t/t-00000.parquet").await.unwrap(), None);

    // Keys the seam refuses.
    for bad in ["/t", "t/../u", "t//x", ""] {
        assert!(matches!(dest.read(bad).await, Err(Error::Key { .. })), "{bad:?}");
    }

    lease(dest).await;
}

/// One writer per table: the lease is taken once, refused while live, taken over once expired,
/// and a holder whose lease was taken over learns it at its next renewal.
async fn lease(dest: &dyn Destination) {
    let ttl = Duration::from_secs(30);
    let now = SystemTime::now();
    assert_eq!(lease::live_holder(dest, "t/.lease", now).await.unwrap(), None);
    let mut first = Lease::acquire_at(dest, "t/.lease", "host-a pid 1", ttl, now).await.unwrap();
    let live = lease::live_holder(dest, "t/.lease", now).await.unwrap();
    assert_eq!(live.map(|h| h.holder).as_deref(), Some("host-a pid 1"));
    let later = now + Duration::from_secs(31);
    assert_eq!(lease::live_holder(dest, "t/.lease", later).await.unwrap(), None);
    let err =
        Lease::acquire_at(dest, "t/.lease", "host-b pid 2", ttl, now + Duration::from_secs(10))
            .await
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: t/.lease is being written by host-a pid 1 (its lease expires in 20 s); wait for \
             that run to end, or, if it died, for its lease to expire",
            dest.display()
        )
    );
    // Renewed, it holds longer.
    first.renew_at(dest, now + Duration::from_secs(20)).await.unwrap();
    let err =
        Lease::acquire_at(dest, "t/.lease", "host-b pid 2", ttl, now + Duration::from_secs(40))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::Leased { expires_in_secs: 10, .. }), "{err}");
    // Expired: taken over, and the first holder is told at its next renewal.
    let second =
        Lease::acquire_at(dest, "t/.lease", "host-b pid 2", ttl, now + Duration::from_secs(51))
            .await
            .unwrap();
    assert_eq!(second.holder().holder, "host-b pid 2");
    let err = first.renew_at(dest, now + Duration::from_secs(52)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the lease t/.lease was taken over by host-b pid 2 after it expired; this run \
             stopped and its last commit stands",
            dest.display()
        )
    );
    // The first holder's release leaves the new holder's lease alone.
    first.release(dest).await.unwrap();
    let err =
        Lease::acquire_at(dest, "t/.lease", "host-c pid 3", ttl, now + Duration::from_secs(53))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::Leased { .. }), "{err}");
    // Released, it is free at once.
    second.release(dest).await.unwrap();
    let mut third =
        Lease::acquire_at(dest, "t/.lease", "host-c pid 3", ttl, now + Duration::from_secs(54))
            .await
            .unwrap();
    // A live lease whose holder the caller knows is dead (a killed run of its own machine) is
    // taken over at once; one it does not is still refused.
    let at = now + Duration::from_secs(55);
    let dead = |h: &LeaseHolder| h.holder == "host-c pid 3";
    let err = Lease::acquire_with(dest, "t/.lease", "host-d pid 4", ttl, at, &|_| false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Leased { .. }), "{err}");
    let fourth =
        Lease::acquire_with(dest, "t/.lease", "host-c pid 5", ttl, at, &dead).await.unwrap();
    assert_eq!(fourth.holder().holder, "host-c pid 5");
    let err = third.renew_at(dest, at).await.unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "{err}");
    fourth.release(dest).await.unwrap();
    assert_eq!(lease::live_holder(dest, "t/.lease", at).await.unwrap(), None);
}

#[tokio::test]
async fn a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let dest = LocalDir::new(dir.path().join("out"));
    let scratch = tempfile::tempdir().unwrap();
    conformance(&dest, false, scratch.path()).await;
    // No temp file is left beside the objects.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("out/t"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

#[tokio::test]
async fn the_in_memory_object_store() {
    let dest =
        ObjectDir::new(Arc::new(InMemory::new()), "mem", "p/q").with_part_sizes(1 << 20, 1 << 20);
    let scratch = tempfile::tempdir().unwrap();
    conformance(&dest, true, scratch.path()).await;
}

/// An `ObjectDir` on moto's `bucket` and `prefix`, with `retries`.
fn dir(moto: &Moto, bucket: &str, prefix: &str, retries: usize) -> ObjectDir {
    s3(&moto.url(), bucket, prefix, retries)
}

fn s3(endpoint: &str, bucket: &str, prefix: &str, retries: usize) -> ObjectDir {
    let options = S3Options {
        credentials: Some(S3Credentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing-secret".into(),
            session_token: None,
        }),
        endpoint: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        allow_http: Some(true),
        virtual_hosted: Some(false),
        max_retries: Some(retries),
    };
    ObjectDir::s3(bucket, prefix, &options).unwrap()
}

#[tokio::test]
async fn s3_through_moto() {
    let moto = Moto::start();
    moto.bucket("dumps");
    // Parts of 5 MiB, S3's smallest but for the last: the 3 MB file of the checks goes in one
    // request, so a second pass sends a 12 MiB file in three parts.
    let dest = dir(&moto, "dumps", "portal/daily", 0).with_part_sizes(1 << 20, 5 << 20);
    assert_eq!(dest.display(), "s3://dumps/portal/daily");
    let scratch = tempfile::tempdir().unwrap();
    conformance(&dest, true, scratch.path()).await;
    assert_eq!(moto.uploads("dumps"), 0);

    // A run killed while its upload is in flight leaves it open; the id it was told before the
    // first part aborts it, and nothing is visible under the key.
    let big: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let file = scratch.path().join("big");
    std::fs::write(&file, &big).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<Upload>();
    let mut tx = Some(tx);
    let killed = {
        let dest = dest.clone();
        let file = file.clone();
        tokio::spawn(async move {
            dest.publish("t/t-00002.parquet", &file, &mut |u: &Upload| {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(u.clone());
                }
            })
            .await
        })
    };
    let upload = rx.await.unwrap();
    killed.abort();
    let _ = killed.await;
    assert_eq!(moto.uploads("dumps"), 1);
    assert_eq!(dest.read("t/t-00002.parquet").await.unwrap(), None);
    dest.abort_upload(&upload).await.unwrap();
    assert_eq!(moto.uploads("dumps"), 0);
    // The same file published whole: three parts, one object.
    let entry = dest.publish("t/t-00002.parquet", &file, &mut |_: &Upload| {}).await.unwrap();
    assert_eq!(entry.size, big.len() as u64);
    assert_eq!(dest.read("t/t-00002.parquet").await.unwrap().unwrap().bytes, big);
    assert_eq!(moto.uploads("dumps"), 0);
}

#[tokio::test]
async fn s3_failures_are_one_line_naming_the_bucket() {
    let moto = Moto::start();
    let err = dir(&moto, "no-such-bucket", "p", 0).read("t/_manifest.json").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "s3://no-such-bucket/p: the bucket no-such-bucket does not exist; create it, or fix the \
         bucket name"
    );
    let err = dir(&moto, "no-such-bucket", "p", 0).create("t/x", b"x".to_vec()).await.unwrap_err();
    assert!(matches!(err, Error::NoBucket { .. }), "{err}");

    // Nothing listens on this port.
    let down = format!("http://127.0.0.1:{}", free_port());
    let err = s3(&down, "dumps", "p", 1).read("t/_manifest.json").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "s3://dumps/p: cannot reach the storage endpoint (error sending request); check \
         AWS_ENDPOINT_URL (and AWS_ALLOW_HTTP for a plain-http store) and the network"
    );
    // No secret in the message or the destination's debug form.
    let dest = s3(&down, "dumps", "p", 0);
    assert!(!format!("{dest:?}{err}").contains("testing-secret"));
}

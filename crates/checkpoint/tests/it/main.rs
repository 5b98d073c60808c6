//! Integration tests of the checkpoint stores on real files.

use iptvportal_checkpoint::{
    CheckpointStore, DumpState, Error, FileStore, LockMode, MemoryStore, OutputShape,
    STATE_VERSION, lock_file_name, state_file_name,
};
use iptvportal_sink::{
    ChunkRecord, ColumnSpec, ColumnType, Compression, Crc32, FileRecord, Format, IdRange, Schema,
    SinkPosition,
};
use iptvportal_traverse::{Cursor, Strategy};

fn shape() -> OutputShape {
    OutputShape {
        table: "terminal".to_owned(),
        columns: None,
        filter: Some(r#"{"gte":["id",10]}"#.to_owned()),
        order_by: vec!["id ASC".to_owned()],
        format: Format::Jsonl,
        compression: Compression::None,
        strategy: Strategy::IdRange,
        part_rows: None,
        portal: Some("http://127.0.0.1:4000/api".to_owned()),
    }
}

fn state(table: &str) -> DumpState {
    DumpState {
        version: STATE_VERSION,
        table: table.to_owned(),
        dumped_rows: 10_000,
        current_offset: 10_000,
        current_id: Some(10_421),
        chunks_completed: 2,
        chunks_failed: 0,
        total_rows: Some(500_000),
        started_at: "2026-11-28T10:00:00Z".to_owned(),
        last_updated_at: "2026-11-28T10:00:05Z".to_owned(),
        completed_at: None,
        is_complete: false,
        last_error: None,
        cursor: Cursor::Id { after: Some(10_421) },
        sink: SinkPosition {
            files: vec![record("terminal.jsonl", 10_000, 1_234_567)],
            last_chunk: Some(ChunkRecord { offset: 1_000_000, crc32: Crc32(7) }),
            ..SinkPosition::bare(0, 1_234_567, 10_000)
        },
        schema: Schema { columns: vec![ColumnSpec::new("id", ColumnType::Integer, false)] },
        shape: OutputShape { table: table.to_owned(), ..shape() },
    }
}

fn record(name: &str, rows: u64, bytes: u64) -> FileRecord {
    let mut record = FileRecord::empty(name);
    record.rows = rows;
    record.bytes = bytes;
    record.crc32 = Crc32(0x1234_abcd);
    record.ids = Some(IdRange { min: 11, max: 10_421 });
    record
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

#[test]
fn file_store_round_trips_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    runtime().block_on(async {
        assert!(store.load("terminal").await.unwrap().is_none());
        store.save(&state("terminal")).await.unwrap();
        let mut next = state("terminal");
        next.chunks_completed = 3;
        store.save(&next).await.unwrap();
        assert_eq!(store.load("terminal").await.unwrap(), Some(next));
    });
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [state_file_name("terminal")]);
}

#[test]
fn the_state_file_keeps_the_seeds_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    runtime().block_on(store.save(&state("tv_channel"))).unwrap();
    let text = std::fs::read_to_string(dir.path().join(".tv_channel.state.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    for field in [
        "table",
        "dumped_rows",
        "current_offset",
        "chunks_completed",
        "started_at",
        "last_updated_at",
        "is_complete",
        "total_rows",
        "current_id",
        "chunks_failed",
        "last_error",
        "completed_at",
        "version",
        "cursor",
        "sink",
        "schema",
        "shape",
    ] {
        assert!(value.get(field).is_some(), "missing {field} in {text}");
    }
    assert_eq!(value["cursor"], serde_json::json!({"kind": "id", "after": 10_421}));
}

#[test]
fn a_corrupt_state_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    std::fs::write(store.path("media"), b"{\"table\": \"media\", \"dumped_ro").unwrap();
    let err = runtime().block_on(store.load("media")).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    // How to start over (the CLI's `--reset`) is the caller's to say: crates/cli/tests/it/status.rs.
    let message = err.to_string();
    assert!(
        message.contains(".media.state.json is unreadable") && !message.contains("--"),
        "{message}"
    );
    // The file is left alone for the user to inspect.
    assert!(store.path("media").exists());
}

#[test]
fn a_newer_state_version_is_refused_as_newer() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    let mut value = serde_json::to_value(state("media")).unwrap();
    value["version"] = serde_json::json!(STATE_VERSION + 1);
    std::fs::write(store.path("media"), value.to_string()).unwrap();
    let err = runtime().block_on(store.load("media")).unwrap_err();
    assert!(matches!(err, Error::Version { found, .. } if found == STATE_VERSION + 1), "{err:?}");
}

#[test]
fn list_reports_every_state_including_unreadable_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    runtime().block_on(async {
        store.save(&state("terminal")).await.unwrap();
        store.save(&state("media")).await.unwrap();
    });
    std::fs::write(store.path("package"), b"not json").unwrap();
    std::fs::write(dir.path().join("terminal.jsonl"), b"{}\n").unwrap();
    let listed = runtime().block_on(store.list()).unwrap();
    let tables: Vec<_> = listed.iter().map(|(t, s)| (t.as_str(), s.is_ok())).collect();
    assert_eq!(tables, [("media", true), ("package", false), ("terminal", true)]);
}

#[test]
fn remove_deletes_the_state_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    runtime().block_on(async {
        store.save(&state("terminal")).await.unwrap();
        store.remove("terminal").await.unwrap();
        store.remove("terminal").await.unwrap();
        assert!(store.load("terminal").await.unwrap().is_none());
    });
}

#[test]
fn a_missing_directory_lists_nothing_and_saving_there_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("absent"));
    runtime().block_on(async {
        assert!(store.list().await.unwrap().is_empty());
        let err = store.save(&state("t")).await.unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    });
}

#[test]
fn memory_store_behaves_like_the_file_store() {
    let store = MemoryStore::new();
    runtime().block_on(async {
        store.save(&state("a")).await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), Some(state("a")));
        assert_eq!(store.list().await.unwrap().len(), 1);
        store.remove("a").await.unwrap();
        assert!(store.load("a").await.unwrap().is_none());
    });
}

#[test]
fn shape_differences_name_each_changed_option() {
    let saved = shape();
    assert!(saved.differences(&saved).is_empty());
    // A different gzip level changes bytes, never content: it is not a difference.
    let gz = |level| OutputShape { compression: Compression::Gzip { level }, ..shape() };
    assert!(gz(1).differences(&gz(9)).is_empty());
    let requested = OutputShape {
        columns: Some(vec!["id".to_owned(), "mac_addr".to_owned()]),
        filter: None,
        format: Format::Csv,
        compression: Compression::Gzip { level: 1 },
        ..shape()
    };
    let fields: Vec<_> = saved.differences(&requested).iter().map(|d| d.field).collect();
    assert_eq!(fields, ["columns", "filter", "format", "compression"]);
    let text = saved.differences(&requested)[2].to_string();
    assert_eq!(text, "format was jsonl and is now csv");
    // One file and parts are different files; so are parts of another size.
    let parts = |n| OutputShape { part_rows: n, ..shape() };
    let said: Vec<_> =
        saved.differences(&parts(Some(500))).iter().map(ToString::to_string).collect();
    assert_eq!(said, ["part rows was one file and is now 500"]);
    assert_eq!(parts(Some(500)).differences(&parts(Some(600))).len(), 1);
    assert!(parts(Some(500)).differences(&parts(Some(500))).is_empty());

    // Another portal's rows never resume this one's; a side that does not say is not compared
    // (a state written before the field existed, or a source without an identity).
    let elsewhere = OutputShape { portal: Some("https://acme/api".to_owned()), ..shape() };
    let differences = saved.differences(&elsewhere);
    assert_eq!(
        differences.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["portal was http://127.0.0.1:4000/api and is now https://acme/api"]
    );
    let unsaid = OutputShape { portal: None, ..shape() };
    assert!(unsaid.differences(&saved).is_empty() && saved.differences(&unsaid).is_empty());
    // An old state file, without the field, reads as not saying.
    let mut old = serde_json::to_value(state("terminal")).unwrap();
    old["shape"].as_object_mut().unwrap().remove("portal");
    let old: DumpState = serde_json::from_value(old).unwrap();
    assert_eq!(old.shape.portal, None);
}

#[test]
fn one_writer_per_table_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    runtime().block_on(async {
        // Nothing written yet: nothing to protect, and nothing created.
        assert!(store.lock("media", LockMode::IfPresent).await.unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let held = store.lock("media", LockMode::Create).await.unwrap().expect("locked");
        let err = store.lock("media", LockMode::IfPresent).await.unwrap_err();
        let Error::Locked { table, place, pid } = &err else { panic!("{err:?}") };
        assert_eq!((table.as_str(), place.as_str()), ("media", dir.path().to_str().unwrap()));
        // The kernel's record names this process (the lock is per open file, not per process).
        assert_eq!(*pid, Some(std::process::id()));
        assert_eq!(
            err.to_string(),
            format!(
                "media in {} is being written by another run (pid {})",
                dir.path().display(),
                std::process::id()
            )
        );
        assert_eq!(
            store.holder("media").await.unwrap().and_then(|h| h.pid),
            Some(std::process::id())
        );
        // Another table in the same directory is free.
        let other = store.lock("terminal", LockMode::Create).await.unwrap();
        assert!(other.is_some());
        // Looking did not take it, and the lock file stays empty: a refused run changes nothing.
        assert!(matches!(store.lock("media", LockMode::Create).await, Err(Error::Locked { .. })));
        assert_eq!(std::fs::read(dir.path().join(lock_file_name("media"))).unwrap(), b"");

        drop(held);
        assert_eq!(store.holder("media").await.unwrap(), None);
        assert!(store.lock("media", LockMode::IfPresent).await.unwrap().is_some());
    });
}

#[test]
fn a_memory_store_locks_a_table_once() {
    let store = MemoryStore::new();
    runtime().block_on(async {
        let held = store.lock("media", LockMode::IfPresent).await.unwrap().expect("locked");
        assert!(matches!(
            store.lock("media", LockMode::Create).await,
            Err(Error::Locked { ref table, .. }) if table == "media"
        ));
        assert!(store.lock("terminal", LockMode::Create).await.unwrap().is_some());
        drop(held);
        assert!(store.lock("media", LockMode::Create).await.unwrap().is_some());
    });
}

/// Rewrites one field of a saved state file, as a hand edit would.
fn edit(path: &std::path::Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut value);
    std::fs::write(path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
}

#[test]
fn a_hand_edited_state_is_refused_and_its_seal_survives_reformatting() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    let path = store.path("terminal");
    runtime().block_on(store.save(&state("terminal"))).unwrap();
    // Rewriting the same contents in another layout is no edit.
    edit(&path, |_| {});
    assert_eq!(runtime().block_on(store.load("terminal")).unwrap(), Some(state("terminal")));
    for (field, value) in [
        ("current_offset", serde_json::json!(20_000)),
        ("dumped_rows", serde_json::json!(9_000)),
        ("check", serde_json::json!("00000000")),
    ] {
        runtime().block_on(store.save(&state("terminal"))).unwrap();
        edit(&path, |v| v[field] = value);
        let err = runtime().block_on(store.load("terminal")).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{field}: {err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "checkpoint {} is unreadable (it was edited or damaged: its check value does not \
                 match its contents)",
                path.display()
            ),
            "{field}"
        );
    }
    runtime().block_on(store.save(&state("terminal"))).unwrap();
    edit(&path, |v| {
        v.as_object_mut().unwrap().remove("check");
    });
    let err = runtime().block_on(store.load("terminal")).unwrap_err();
    assert!(err.to_string().contains("(it has no check value)"), "{err}");
}

/// A change made to a state.
type Change = fn(&mut DumpState);

#[test]
fn an_inconsistent_state_is_refused_even_when_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    let path = store.path("terminal");
    let cases: [(&str, Change); 5] = [
        ("it counts 9000 rows dumped but its output position holds 10000", |s| {
            s.dumped_rows = 9_000;
        }),
        ("its last id and its cursor differ", |s| s.current_id = Some(5)),
        (
            "its manifest lists 10000 rows in 1234567 bytes but its position says 10000 rows in \
             1234000 bytes",
            |s| s.sink.bytes = 1_234_000,
        ),
        ("its last chunk starts past its end, at byte 2000000", |s| {
            s.sink.last_chunk = Some(ChunkRecord { offset: 2_000_000, crc32: Crc32(1) });
        }),
        ("it is complete without a completion time, or the reverse", |s| s.is_complete = true),
    ];
    for (why, change) in cases {
        let mut bad = state("terminal");
        change(&mut bad);
        assert_eq!(bad.inconsistency().as_deref(), Some(why));
        // Sealed as this tool would seal it: the seal holds, the contents do not.
        std::fs::write(&path, serde_json::to_vec(&iptvportal_checkpoint::seal(&bad)).unwrap())
            .unwrap();
        let err = runtime().block_on(store.load("terminal")).unwrap_err();
        assert!(err.to_string().contains(&format!("(it is inconsistent: {why})")), "{err}");
    }
    assert_eq!(state("terminal").inconsistency(), None);
}

#[test]
fn a_version_1_state_without_manifest_or_seal_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    let mut old = state("terminal");
    old.version = 1;
    old.sink = SinkPosition::bare(0, 1_234_567, 10_000);
    let value = serde_json::to_value(&old).unwrap();
    assert!(value.get("check").is_none() && value["sink"].get("files").is_none());
    std::fs::write(store.path("terminal"), serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    assert_eq!(runtime().block_on(store.load("terminal")).unwrap(), Some(old.clone()));
    // Saved again, it is written as the current version, sealed.
    runtime().block_on(store.save(&old)).unwrap();
    let text = std::fs::read_to_string(store.path("terminal")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["version"], STATE_VERSION);
    assert!(value["check"].is_string());
}

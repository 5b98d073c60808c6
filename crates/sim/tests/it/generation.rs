//! Generated data: deterministic, sized as asked, and as messy as a real portal's.

use std::path::{Path, PathBuf};

use iptvportal_sim::{Error, Sim, SimConfig};
use rusqlite::types::Value;

use crate::support::open_db;

fn tiny(seed: u64) -> SimConfig {
    let mut config = SimConfig::default().seed(seed);
    for t in iptvportal_catalog::TABLES {
        config = config.rows(t.name, 300);
    }
    config.rows("subscriber", 800).rows("terminal", 1200)
}

fn dump(path: &Path) -> Vec<(String, Vec<Vec<Value>>)> {
    let conn = open_db(path);
    iptvportal_catalog::TABLES
        .iter()
        .map(|t| {
            let mut stmt =
                conn.prepare(&format!("SELECT * FROM \"{}\" ORDER BY rowid", t.name)).unwrap();
            let width = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    (0..width).map(|i| r.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>()
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            (t.name.to_owned(), rows)
        })
        .collect()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("iptvportal-sim-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn same_seed_same_rows_other_seed_other_rows() {
    let a = Sim::start(tiny(7)).await.unwrap();
    let b = Sim::start(tiny(7)).await.unwrap();
    let c = Sim::start(tiny(8)).await.unwrap();
    assert_ne!(a.db_path(), b.db_path());
    let (da, db, dc) = (dump(a.db_path()), dump(b.db_path()), dump(c.db_path()));
    assert_eq!(da, db, "same seed and sizes: identical rows");
    for ((name, rows_a), (_, rows_c)) in da.iter().zip(&dc) {
        assert_eq!(rows_a.len(), rows_c.len(), "{name}: sizes do not depend on the seed");
        assert_ne!(rows_a, rows_c, "{name}: another seed gives other rows");
    }
    let temp = a.db_path().to_owned();
    a.shutdown().await;
    assert!(!temp.exists(), "a temporary database is removed with its Sim");
    b.shutdown().await;
    c.shutdown().await;
}

/// What a process exiting without destructors calls: the temporary database goes, a given one
/// stays.
#[tokio::test]
async fn the_remover_deletes_a_temporary_database_only() {
    let sim = Sim::start(tiny(7)).await.unwrap();
    let temp = sim.db_path().to_owned();
    assert!(temp.exists());
    sim.temp_files_remover()();
    assert!(!temp.exists(), "the remover deleted the temporary database");
    let mut wal = temp.clone().into_os_string();
    wal.push("-wal");
    assert!(!PathBuf::from(wal).exists(), "and its WAL");
    sim.shutdown().await;

    let dir = TempDir::new("remover");
    let given = dir.0.join("given.sqlite");
    let sim = Sim::start(tiny(7).db_path(&given)).await.unwrap();
    sim.temp_files_remover()();
    assert!(given.exists(), "a database the caller named is not the simulator's to delete");
    sim.shutdown().await;
}

#[tokio::test]
async fn sizes_gaps_nulls_and_non_ascii() {
    let sim = Sim::start(tiny(42).rows("tv_channel", 0)).await.unwrap();
    let conn = open_db(sim.db_path());
    let count = |t: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0)).unwrap()
    };
    assert_eq!(count("subscriber"), 800);
    assert_eq!(count("terminal"), 1200);
    assert_eq!(count("tv_channel"), 0);
    assert_eq!(count("media"), 300);

    // Ids ascend with gaps, some of them large.
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM terminal ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let gaps: Vec<i64> = ids.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g >= 1));
    let skipping = gaps.iter().filter(|g| **g > 1).count();
    assert!(
        skipping * 100 / gaps.len() >= 3 && skipping * 100 / gaps.len() <= 15,
        "{skipping} gaps in {}",
        gaps.len()
    );

    // Every nullable column has nulls and values.
    for t in iptvportal_catalog::TABLES.iter().filter(|t| t.name != "tv_channel") {
        for c in t.columns.iter().filter(|c| c.nullable) {
            let nulls: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM \"{}\" WHERE \"{}\" IS NULL", t.name, c.name),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let share = nulls * 100 / count(t.name);
            assert!((5..=30).contains(&share), "{}.{}: {share}% nulls", t.name, c.name);
        }
    }
    // Non-ASCII text, and values shaped like the real thing.
    let cyrillic: i64 = conn
        .query_row("SELECT count(*) FROM subscriber WHERE surname GLOB '*[а-я]*'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(cyrillic > 100, "{cyrillic}");
    let mac: String =
        conn.query_row("SELECT mac_addr FROM terminal LIMIT 1", [], |r| r.get(0)).unwrap();
    assert!(
        mac.len() == 17
            && mac.split('-').all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok()),
        "{mac}"
    );
    let multicast: i64 = conn
        .query_row("SELECT count(*) FROM media WHERE inet_addr LIKE '239.%'", [], |r| r.get(0))
        .unwrap();
    assert!(multicast > 0);
    let ts: String =
        conn.query_row("SELECT registered FROM terminal LIMIT 1", [], |r| r.get(0)).unwrap();
    assert!(ts.len() == 19 && &ts[4..5] == "-" && &ts[10..11] == " ", "{ts}");
    // Foreign keys point at existing rows.
    let dangling: i64 = conn
        .query_row(
            "SELECT count(*) FROM terminal WHERE subscriber_id IS NOT NULL AND subscriber_id NOT IN (SELECT id FROM subscriber)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dangling, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_kept_database_is_served_as_it_is_unless_regenerated_and_foreign_files_are_refused() {
    let dir = TempDir::new("keep");
    let path = dir.0.join("portal.sqlite");
    let sim = Sim::start(tiny(1).db_path(&path)).await.unwrap();
    let first = dump(&path);
    sim.shutdown().await;
    assert!(path.exists(), "a database given by path is kept");
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();

    let sim = Sim::start(tiny(1).db_path(&path)).await.unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified,
        "same params: reused"
    );
    sim.shutdown().await;

    // Another seed or other sizes do not replace an existing database: it is served as it is.
    let sim = Sim::start(tiny(2).rows("terminal", 5).db_path(&path)).await.unwrap();
    assert_eq!(dump(&path), first, "another seed and size: served as it is");
    sim.shutdown().await;

    // Only regenerate does.
    let sim = Sim::start(tiny(2).db_path(&path).regenerate(true)).await.unwrap();
    let second = dump(&path);
    assert_ne!(second, first, "regenerate with another seed: regenerated");
    sim.shutdown().await;
    let sim = Sim::start(tiny(2).db_path(&path).regenerate(true)).await.unwrap();
    assert_eq!(dump(&path), second, "regenerated from the seed and sizes asked for");
    sim.shutdown().await;

    // A file written by another generator version is regenerated: its tables may differ.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE _sim_meta SET value = replace(value, 'version=', 'version=0') WHERE key = 'params';
         DELETE FROM terminal WHERE id < 100;",
    )
    .unwrap();
    drop(conn);
    let sim = Sim::start(tiny(1).db_path(&path)).await.unwrap();
    assert_eq!(dump(&path), first, "a stale generator version: regenerated");
    sim.shutdown().await;

    let foreign = dir.0.join("notes.txt");
    std::fs::write(&foreign, "not a database").unwrap();
    let error = Sim::start(tiny(1).db_path(&foreign)).await.unwrap_err();
    assert!(matches!(error, Error::ForeignDatabase { .. }), "{error}");
    assert_eq!(std::fs::read_to_string(&foreign).unwrap(), "not a database");

    let error = Sim::start(SimConfig::default().rows("nope", 1)).await.unwrap_err();
    assert!(matches!(error, Error::Config { .. }), "{error}");
    let error = Sim::start(SimConfig::default().fail_rate(1.5)).await.unwrap_err();
    assert!(matches!(error, Error::Config { .. }), "{error}");
}

#[test]
fn default_sizes_cover_every_table() {
    let rows = iptvportal_sim::default_rows();
    for t in iptvportal_catalog::TABLES {
        assert!(rows[t.name] > 0, "{}", t.name);
    }
    assert_eq!(rows["tv_channel"], 300);
    assert_eq!(rows["terminal"], 5000);
}

//! Helpers of the `dump` tests: a portal with latency, the command, and outputs read back in the
//! form the exactly-once guarantee is stated in (bytes, decompressed bytes, Parquet rows).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use iptvportal_sim::SimConfig;
use iptvportal_testkit::{
    ParquetRows, Timestamps, parquet_parts, read_output, read_parquet, sqlite_rows,
};
use serde_json::Value;

use crate::Portal;

/// A portal whose `terminal` table has `rows` rows, answering every request after `latency_ms`.
pub(crate) fn portal(rows: u64, latency_ms: u64) -> Portal {
    Portal::start(
        SimConfig::default()
            .seed(7)
            .rows("terminal", rows)
            .latency(Duration::from_millis(latency_ms)),
    )
}

impl Portal {
    /// A portal where every catalog table has `rows` rows, generated from `seed`.
    pub(crate) fn every_table(rows: u64, seed: u64) -> Portal {
        let config = iptvportal_catalog::TABLES
            .iter()
            .fold(SimConfig::default().seed(seed), |config, t| config.rows(t.name, rows));
        Portal::start(config)
    }

    /// What the simulator's database holds of `table`: its rows, and its id range when it has an
    /// id column.
    pub(crate) fn truth(&self, table: &iptvportal_catalog::Table) -> (u64, Option<(i64, i64)>) {
        let db = rusqlite::Connection::open(self.sim().db_path()).unwrap();
        let rows: i64 = db
            .query_row(&format!("SELECT count(*) FROM \"{}\"", table.name), [], |r| r.get(0))
            .unwrap();
        let ids = table.id_column.map(|id| {
            db.query_row(
                &format!("SELECT min(\"{id}\"), max(\"{id}\") FROM \"{}\"", table.name),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        });
        (u64::try_from(rows).unwrap(), ids)
    }

    /// `iptvportal --portal <sim> dump --out <out> --progress none`.
    pub(crate) fn dump(&self, out: &Path) -> Command {
        let mut cmd = self.cmd();
        cmd.arg("dump").arg("--out").arg(out).args(["--progress", "none"]);
        cmd
    }

    /// The same as a `std::process::Command`, for tests that signal the process.
    pub(crate) fn dump_process(&self, out: &Path) -> std::process::Command {
        dump_process(self.url(), out)
    }

    /// The simulator's rows of `table` ordered by id, as JSON values (what the JSON formats write),
    /// filtered by an SQL condition.
    pub(crate) fn db_rows(&self, table: &str, condition: &str) -> Vec<Vec<Value>> {
        sqlite_rows(
            self.sim().db_path(),
            &format!("SELECT * FROM \"{table}\" WHERE {condition} ORDER BY id"),
        )
    }
}

/// `iptvportal --portal <url> dump --out <out> --progress none` as a `std::process::Command`.
pub(crate) fn dump_process(url: &str, out: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_iptvportal"));
    crate::isolate(&mut cmd);
    cmd.args(["--portal", url])
        .env("IPTVPORTAL_USERNAME", "admin")
        .env("IPTVPORTAL_PASSWORD", crate::PASSWORD)
        .arg("dump")
        .arg("--out")
        .arg(out)
        .args(["--progress", "none"]);
    cmd
}

/// What a finished dump holds, in the terms of the exactly-once guarantee.
#[derive(PartialEq)]
pub(crate) enum Output {
    /// Plain text files: their bytes; gzip files: their decompressed bytes.
    Text(Vec<u8>),
    /// Parquet: the distinct schemas of the parts (one, in a good dump), and every row in part
    /// order. Where parts end is not compared: a resumed parallel dump may cut chunks, and so
    /// parts, elsewhere, and the guarantee is about schema and rows.
    Parquet { schemas: BTreeSet<String>, rows: Vec<Vec<Value>> },
}

impl std::fmt::Debug for Output {
    // Whole outputs are hundreds of kilobytes; a failure shows their size and where they differ.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Text(bytes) => write!(f, "Text({} bytes)", bytes.len()),
            Output::Parquet { schemas, rows } => {
                write!(f, "Parquet({} schemas, {} rows)", schemas.len(), rows.len())
            }
        }
    }
}

/// Asserts that two outputs are the same, naming the first difference.
pub(crate) fn assert_same(got: &Output, want: &Output, context: &str) {
    if got == want {
        return;
    }
    let detail = match (got, want) {
        (Output::Text(a), Output::Text(b)) => {
            let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
            let line = b[..at].split(|&c| c == b'\n').count();
            format!("{} vs {} bytes, first difference at byte {at} (line {line})", a.len(), b.len())
        }
        (Output::Parquet { schemas: sa, rows: a }, Output::Parquet { schemas: sb, rows: b }) => {
            let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
            format!(
                "schemas equal: {}, {} vs {} rows, first difference at row {at}",
                sa == sb,
                a.len(),
                b.len()
            )
        }
        _ => "different kinds".to_owned(),
    };
    panic!("{context}: output differs from the uninterrupted dump's: {detail}");
}

/// The output of `table` in `dir` for `format` (`jsonl`, `csv`, `json` or `parquet`).
pub(crate) fn output(dir: &Path, table: &str, format: &str, gzip: bool) -> Output {
    if format == "parquet" {
        let ParquetRows { schemas, rows, .. } =
            read_parquet(&parquet_parts(dir, table), Timestamps::Micros);
        return Output::Parquet { schemas, rows };
    }
    Output::Text(read_output(
        &dir.join(format!("{table}.{format}{}", if gzip { ".gz" } else { "" })),
    ))
}

/// The parts `{table}-NNNNN.{ext}` in `dir`, in order, as one text: each part's name on a line,
/// then its contents (gzip decoded), so that names, cuts and bytes are all compared.
pub(crate) fn text_parts(dir: &Path, table: &str, ext: &str) -> Output {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{table}-")) && n.ends_with(&format!(".{ext}")))
        .collect();
    names.sort();
    let mut text = Vec::new();
    for name in names {
        text.extend_from_slice(format!("{name}\n").as_bytes());
        text.extend(read_output(&dir.join(&name)));
    }
    Output::Text(text)
}

/// Every file under `dir` (hidden ones and subdirectories included) by its path relative to
/// `dir`, with its bytes; empty when `dir` does not exist.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for path in entries.map(|e| e.unwrap().path()) {
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

/// JSON lines as rows of values, in column order.
pub(crate) fn jsonl_rows(text: &[u8]) -> Vec<Vec<Value>> {
    std::str::from_utf8(text)
        .unwrap()
        .lines()
        .map(|l| iptvportal_testkit::Ordered::parse(l).into_values())
        .collect()
}

/// A tiny seeded generator (xorshift64*), so that a failing run can be replayed from its seed.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

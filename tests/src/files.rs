//! Reading the dump's files as bytes: the file names of each format, gzip decoding, ids for the
//! lost/duplicated count, directory snapshots, and the secrets scan.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The output formats, as `--format` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Jsonl,
    Csv,
    Json,
    Parquet,
}

/// One kind of output: a format, plain or gzip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Output {
    pub(crate) format: Format,
    pub(crate) gzip: bool,
}

impl Output {
    /// Every format, plain and gzip (Parquet only plain: it is always zstd inside).
    pub(crate) const ALL: [Output; 7] = [
        Output { format: Format::Jsonl, gzip: false },
        Output { format: Format::Jsonl, gzip: true },
        Output { format: Format::Csv, gzip: false },
        Output { format: Format::Csv, gzip: true },
        Output { format: Format::Json, gzip: false },
        Output { format: Format::Json, gzip: true },
        Output { format: Format::Parquet, gzip: false },
    ];

    pub(crate) fn format_name(self) -> &'static str {
        match self.format {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Parquet => "parquet",
        }
    }

    /// `--format F [--compress]`.
    pub(crate) fn args(self) -> Vec<String> {
        let mut args = vec!["--format".to_owned(), self.format_name().to_owned()];
        if self.gzip {
            args.push("--compress".to_owned());
        }
        args
    }

    /// A short name for reports: `csv.gz`.
    pub(crate) fn label(self) -> String {
        format!("{}{}", self.format_name(), if self.gzip { ".gz" } else { "" })
    }

    /// The one file of a text format.
    pub(crate) fn text_file(self, dir: &Path, table: &str) -> PathBuf {
        dir.join(format!("{table}.{}", self.label()))
    }
}

/// A file's contents, gunzipped when its name ends in `.gz` (every member: the dump writes one
/// member per committed chunk).
pub(crate) fn read_decoded(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: not valid gzip: {e}", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// The `id` of every row, in file order, of a JSONL, CSV or JSON text.
pub(crate) fn ids(format: Format, text: &[u8]) -> Result<Vec<i64>, String> {
    let id_of = |row: &serde_json::Value| {
        row.get("id")
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(|| format!("a row without an id: {row}"))
    };
    match format {
        Format::Jsonl => text
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_slice(line)
                    .map_err(|e| format!("a torn or invalid line: {e}"))
                    .and_then(|row| id_of(&row))
            })
            .collect(),
        Format::Json => {
            let rows: Vec<serde_json::Value> =
                serde_json::from_slice(text).map_err(|e| format!("not a JSON array: {e}"))?;
            rows.iter().map(id_of).collect()
        }
        Format::Csv => {
            let mut reader = csv::Reader::from_reader(text);
            let column = reader
                .headers()
                .map_err(|e| e.to_string())?
                .iter()
                .position(|h| h == "id")
                .ok_or("no id column in the header")?;
            reader
                .records()
                .map(|record| {
                    let record = record.map_err(|e| format!("a torn or invalid record: {e}"))?;
                    record[column].parse().map_err(|e| format!("id {:?}: {e}", &record[column]))
                })
                .collect()
        }
        Format::Parquet => Err("Parquet ids are read by the Python checker".to_owned()),
    }
}

/// Rows of `reference` missing from `actual`, and rows of `actual` beyond `reference`'s, by id.
pub(crate) fn lost_and_duplicated(reference: &[i64], actual: &[i64]) -> (u64, u64) {
    let mut counts: HashMap<i64, i64> = HashMap::new();
    for id in reference {
        *counts.entry(*id).or_default() += 1;
    }
    for id in actual {
        *counts.entry(*id).or_default() -= 1;
    }
    let (mut lost, mut duplicated) = (0, 0);
    for n in counts.into_values() {
        if n > 0 {
            lost += n.unsigned_abs();
        } else {
            duplicated += n.unsigned_abs();
        }
    }
    (lost, duplicated)
}

/// Every file under `dir`, recursively, sorted.
pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A directory's files and contents (`None`: the directory does not exist), to prove a failed
/// command left it untouched.
pub(crate) fn snapshot(dir: &Path) -> Option<BTreeMap<PathBuf, Vec<u8>>> {
    dir.exists().then(|| {
        walk(dir).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap_or_default())).collect()
    })
}

/// How two snapshots differ, in one line.
pub(crate) fn snapshot_diff(
    before: Option<&BTreeMap<PathBuf, Vec<u8>>>,
    after: Option<&BTreeMap<PathBuf, Vec<u8>>>,
) -> Option<String> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some("the output directory was created".to_owned()),
        (Some(_), None) => Some("the output directory was removed".to_owned()),
        (Some(a), Some(b)) => {
            let mut changes = Vec::new();
            for (path, bytes) in a {
                match b.get(path) {
                    None => changes.push(format!("{} removed", path.display())),
                    Some(other) if other != bytes => {
                        changes.push(format!("{} changed", path.display()));
                    }
                    Some(_) => {}
                }
            }
            changes.extend(
                b.keys()
                    .filter(|p| !a.contains_key(*p))
                    .map(|p| format!("{} created", p.display())),
            );
            (!changes.is_empty()).then(|| changes.join(", "))
        }
    }
}

/// Copies the files of `from` (flat: an output directory has no subdirectories) into `to`,
/// created if missing.
pub(crate) fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for path in walk(from) {
        let Some(name) = path.file_name() else { continue };
        std::fs::copy(&path, to.join(name)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The pid holding an `flock` on `lock` (the one-writer lock of a table), from `/proc/locks`;
/// `None` when nobody holds it or the file does not exist.
pub(crate) fn flock_holder(lock: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let inode = std::fs::metadata(lock).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    lock_holder_in(&locks, inode)
}

/// The holder of an `flock` on `inode` in the text of `/proc/locks` (waiters, `->` lines, are not
/// holders).
fn lock_holder_in(locks: &str, inode: u64) -> Option<u32> {
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `1: FLOCK  ADVISORY  WRITE 4242 00:2e:1234567 0 EOF`
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let holder = fields.get(4)?.parse().ok()?;
        let ino: u64 = fields.get(5)?.rsplit(':').next()?.parse().ok()?;
        (ino == inode).then_some(holder)
    })
}

/// Runs of 32 or more hex digits: the shape of a session id.
pub(crate) fn hex_runs(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| !b.is_ascii_hexdigit())
        .filter(|run| run.len() >= 32)
        .map(|run| String::from_utf8_lossy(run).into_owned())
        .collect()
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lost_and_duplicated_count_by_id() {
        assert_eq!(lost_and_duplicated(&[1, 2, 3], &[1, 2, 3]), (0, 0));
        assert_eq!(lost_and_duplicated(&[1, 2, 3], &[1, 3, 3, 4]), (1, 2));
    }

    #[test]
    fn ids_come_from_every_text_format() {
        assert_eq!(ids(Format::Jsonl, b"{\"id\":1}\n{\"id\":5}\n"), Ok(vec![1, 5]));
        assert_eq!(ids(Format::Json, b"[{\"id\":1},\n{\"id\":2}]"), Ok(vec![1, 2]));
        assert_eq!(ids(Format::Csv, b"name,id\n\"a,\nb\",7\nc,8\n"), Ok(vec![7, 8]));
        assert!(ids(Format::Jsonl, b"{\"id\":1}\n{\"id\":").is_err(), "a torn line is an error");
    }

    #[test]
    fn every_gzip_member_is_read() {
        let dir = std::env::temp_dir().join(format!("iptvportal-e2e-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.jsonl.gz");
        let mut bytes = Vec::new();
        for part in [&b"one\n"[..], b"two\n"] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).unwrap();
            bytes.extend(gz.finish().unwrap());
        }
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(read_decoded(&path).unwrap(), b"one\ntwo\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn session_shaped_tokens_are_found() {
        let token = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(hex_runs(format!("sessionid={token};").as_bytes()), vec![token.to_owned()]);
        assert!(hex_runs(b"00-1A-79-3F-22-10 2025-01-01 deadbeef").is_empty());
        assert!(contains(b"a secret here", b"secret"));
        assert!(!contains(b"nothing", b""));
    }

    #[test]
    fn lock_holders_come_from_proc_locks() {
        let locks = "1: FLOCK  ADVISORY  WRITE 4242 00:2e:77 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 4343 00:2e:77 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 99 00:2e:78 0 EOF\n";
        assert_eq!(lock_holder_in(locks, 77), Some(4242), "the holder, not the waiter");
        assert_eq!(lock_holder_in(locks, 78), None, "only flock locks");
        assert_eq!(lock_holder_in(locks, 79), None);
    }

    #[test]
    fn snapshots_show_what_changed() {
        let a = BTreeMap::from([(PathBuf::from("x"), b"1".to_vec())]);
        let b = BTreeMap::from([(PathBuf::from("x"), b"2".to_vec())]);
        assert_eq!(snapshot_diff(Some(&a), Some(&a)), None);
        assert_eq!(snapshot_diff(Some(&a), Some(&b)).as_deref(), Some("x changed"));
        assert_eq!(
            snapshot_diff(None, Some(&a)).as_deref(),
            Some("the output directory was created")
        );
    }
}

//! The manifest vocabulary: what a committed position says of each output file (rows, bytes, a
//! checksum, the id range), and the running checksum and id range a sink keeps while it writes.
//!
//! The checksum is CRC-32 (IEEE, the polynomial of gzip's own trailer), computed by `crc32fast`,
//! which `flate2` already builds. It is there to catch corruption and changes (a truncated,
//! extended or replaced file, a flipped byte), not tampering by someone who recomputes it: for that
//! a non-cryptographic hash is the right tool, and CRC-32 detects every burst error of up to 32
//! bits with certainty. It streams, so a text file appended chunk by chunk keeps one running value
//! that a resume continues from the checkpoint without rereading the file; and at the measured
//! 10+ GB/s (SIMD carry-less multiplication) a full check of a dump costs about as much as reading
//! its files (docs/benchmarks.md, verify).

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::Error;

/// A CRC-32 checksum, written in manifests as eight lowercase hex digits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Crc32(pub u32);

impl Crc32 {
    /// The checksum of `bytes`.
    pub fn of(bytes: &[u8]) -> Crc32 {
        Crc32(crc32fast::hash(bytes))
    }
}

impl fmt::Display for Crc32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl FromStr for Crc32 {
    type Err = String;

    fn from_str(s: &str) -> Result<Crc32, String> {
        if s.len() != 8 {
            return Err(format!("a CRC-32 is 8 hex digits, not {s:?}"));
        }
        u32::from_str_radix(s, 16).map(Crc32).map_err(|_| format!("{s:?} is not hex"))
    }
}

impl Serialize for Crc32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Crc32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Crc32, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The smallest and largest id in a file (both inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    /// The smallest id.
    pub min: i64,
    /// The largest id.
    pub max: i64,
}

impl IdRange {
    /// The range covering `self` and `other`.
    #[must_use]
    pub fn union(self, other: IdRange) -> IdRange {
        IdRange { min: self.min.min(other.min), max: self.max.max(other.max) }
    }

    /// `a` and `b` joined, either or both absent.
    pub fn join(a: Option<IdRange>, b: Option<IdRange>) -> Option<IdRange> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.union(b)),
            (a, b) => a.or(b),
        }
    }

    /// The range of the integer ids in column `index` of `rows` (nulls and non-integers are not
    /// ids); `None` when there is none.
    pub fn of_rows(rows: &[Vec<Value>], index: usize) -> Option<IdRange> {
        rows.iter()
            .filter_map(|row| row.get(index).and_then(Value::as_i64))
            .map(|id| IdRange { min: id, max: id })
            .reduce(IdRange::union)
    }
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.min, self.max)
    }
}

/// What the manifest says of one output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FileRecord {
    /// The file's name in the output directory (`terminal.jsonl`, `terminal-00000.parquet`).
    pub name: String,
    /// The rows it holds.
    pub rows: u64,
    /// Its committed length: the whole file once complete.
    pub bytes: u64,
    /// The CRC-32 of its first `bytes` bytes.
    pub crc32: Crc32,
    /// The ids it holds, when the table has an id column and the file holds rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<IdRange>,
}

impl FileRecord {
    /// A record of a file holding nothing yet.
    pub fn empty(name: impl Into<String>) -> FileRecord {
        FileRecord { name: name.into(), rows: 0, bytes: 0, crc32: Crc32::default(), ids: None }
    }
}

/// A text file's last committed chunk: the bytes from `offset` to the committed length. A resume
/// rereads only these to check that the file still ends where the checkpoint says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// Where the chunk starts.
    pub offset: u64,
    /// The CRC-32 of the chunk's bytes.
    pub crc32: Crc32,
}

/// The Parquet part being filled: the chunks committed to it so far, each commit's a durable piece
/// file (Arrow IPC) until the part is closed, which a resume replays into the part's writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenPart {
    /// Committed pieces, numbered from 0.
    pub pieces: u32,
    /// The rows they hold.
    pub rows: u64,
    /// Their ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<IdRange>,
}

/// A `Write` that checksums and counts what passes through it.
#[derive(Debug)]
pub(crate) struct Hashing<W> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W> Hashing<W> {
    /// Continues a checksum: `crc` of the `len` bytes already written.
    pub(crate) fn resume(inner: W, crc: Crc32, len: u64) -> Hashing<W> {
        Hashing { inner, hasher: crc32fast::Hasher::new_with_initial_len(crc.0, len) }
    }

    /// A fresh checksum.
    pub(crate) fn new(inner: W) -> Hashing<W> {
        Hashing::resume(inner, Crc32::default(), 0)
    }

    /// The checksum and length of everything written so far.
    pub(crate) fn sum(&self) -> (Crc32, u64) {
        (Crc32(self.hasher.clone().finalize()), self.hasher.total_len())
    }

    pub(crate) fn get_ref(&self) -> &W {
        &self.inner
    }

    pub(crate) fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The CRC-32 of the first `len` bytes of `path` (all of it for `None`), and the number of bytes
/// it read: fewer than `len` when the file is shorter. Reads in 256 KiB blocks, so memory stays
/// flat whatever the file's size.
pub(crate) fn crc_of_file(
    path: &Path,
    offset: u64,
    len: Option<u64>,
) -> Result<(Crc32, u64), Error> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(path, e))?;
    let mut reader: Box<dyn Read> = match len {
        Some(len) => Box::new(file.take(len)),
        None => Box::new(file),
    };
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        hasher.update(&buf[..n]);
    }
    let read = hasher.total_len();
    Ok((Crc32(hasher.finalize()), read))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_checksum_is_eight_hex_digits_in_json() {
        let crc = Crc32::of(b"123456789");
        // The check value of CRC-32/ISO-HDLC (gzip's CRC).
        assert_eq!(crc, Crc32(0xcbf4_3926));
        assert_eq!(serde_json::to_string(&crc).unwrap(), "\"cbf43926\"");
        assert_eq!(serde_json::from_str::<Crc32>("\"cbf43926\"").unwrap(), crc);
        assert!(serde_json::from_str::<Crc32>("\"cbf4392\"").is_err());
        assert!(serde_json::from_str::<Crc32>("\"cbf4392g\"").is_err());
        assert_eq!(Crc32(7).to_string(), "00000007");
    }

    #[test]
    fn id_ranges_skip_nulls_and_join() {
        let rows = vec![vec![json!(5)], vec![json!(null)], vec![json!(-2)], vec![json!(9)]];
        assert_eq!(IdRange::of_rows(&rows, 0), Some(IdRange { min: -2, max: 9 }));
        assert_eq!(IdRange::of_rows(&rows[1..2], 0), None);
        assert_eq!(IdRange::of_rows(&rows, 3), None);
        let a = IdRange { min: 1, max: 3 };
        assert_eq!(IdRange::join(Some(a), None), Some(a));
        assert_eq!(IdRange::join(None, None), None);
        assert_eq!(
            IdRange::join(Some(a), Some(IdRange { min: 7, max: 8 })),
            Some(IdRange { min: 1, max: 8 })
        );
    }

    proptest! {
        /// A checksum resumed from a saved value and length equals one computed in one pass,
        /// which is what lets a resume continue without rereading the file.
        #[test]
        fn a_resumed_checksum_equals_one_pass(
            a in proptest::collection::vec(any::<u8>(), 0..300),
            b in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut first = Hashing::new(Vec::new());
            first.write_all(&a).unwrap();
            let (crc, len) = first.sum();
            prop_assert_eq!(len, a.len() as u64);
            let mut second = Hashing::resume(Vec::new(), crc, len);
            second.write_all(&b).unwrap();
            let whole = [a.clone(), b.clone()].concat();
            prop_assert_eq!(second.sum(), (Crc32::of(&whole), whole.len() as u64));
        }
    }

    #[test]
    fn a_file_checksum_reads_the_range_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc123456789xyz").unwrap();
        assert_eq!(crc_of_file(&path, 3, Some(9)).unwrap(), (Crc32::of(b"123456789"), 9));
        assert_eq!(crc_of_file(&path, 0, None).unwrap(), (Crc32::of(b"abc123456789xyz"), 15));
        assert_eq!(crc_of_file(&path, 12, Some(9)).unwrap(), (Crc32::of(b"xyz"), 3), "short");
    }
}

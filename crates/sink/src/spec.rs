//! What a sink writes: format, compression, Parquet options, file names, and committed positions.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::manifest::{ChunkRecord, FileRecord, IdRange, OpenPart};
use crate::schema::Schema;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// One JSON object per line (`{table}.jsonl`).
    Jsonl,
    /// A header line, then one RFC 4180 record per row (`{table}.csv`).
    Csv,
    /// One JSON array of objects (`{table}.json`).
    Json,
    /// Apache Parquet part files (`{table}-00000.parquet`, …).
    Parquet,
}

impl Format {
    /// Every format, in the order the command line lists them.
    pub const ALL: [Format; 4] = [Format::Jsonl, Format::Csv, Format::Json, Format::Parquet];

    /// The name used on the command line and in checkpoints.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Parquet => "parquet",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format, Error> {
        Ok(match s {
            "jsonl" => Format::Jsonl,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "parquet" => Format::Parquet,
            other => {
                return Err(Error::Config {
                    message: format!(
                        "unknown format {other:?} (expected jsonl, csv, json or parquet)"
                    ),
                });
            }
        })
    }
}

/// Whole-file compression of a text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip, one member per commit; `level` is one of [`Compression::GZIP_LEVELS`], 0 (store) to
    /// 9 (smallest).
    Gzip {
        /// The deflate level.
        level: u32,
    },
}

impl Compression {
    /// The gzip level used when none is asked for: level 1. On terminal-like rows it encodes
    /// about 4x faster than level 6 for a file about 40% larger (docs/adr/0003-sink-encoding.md).
    pub const DEFAULT_GZIP_LEVEL: u32 = 1;

    /// The deflate levels gzip accepts: 0 (store) to 9 (smallest). The one definition of the
    /// range; configuration and command line check against it rather than repeat it.
    pub const GZIP_LEVELS: RangeInclusive<u32> = 0..=9;

    /// gzip at [`Compression::DEFAULT_GZIP_LEVEL`].
    pub const fn gzip() -> Compression {
        Compression::Gzip { level: Compression::DEFAULT_GZIP_LEVEL }
    }

    /// gzip at `level`, or `None` when `level` is outside [`Compression::GZIP_LEVELS`].
    pub fn gzip_level(level: u32) -> Option<Compression> {
        Compression::GZIP_LEVELS.contains(&level).then_some(Compression::Gzip { level })
    }
}

/// The column compression of Parquet part files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ParquetCodec {
    /// No compression.
    Uncompressed,
    /// Zstandard at `level` (1 to 22).
    Zstd {
        /// The zstd level.
        level: i32,
    },
}

/// How Parquet output is laid out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParquetOptions {
    /// The most rows in one row group. A part has one writer, which cuts row groups of this many
    /// rows across chunk boundaries (the last group of a part holds the rest). The default,
    /// 16,384, bounds the writer's buffer, which holds one row group being encoded.
    pub row_group_rows: usize,
    /// Rows per part file. A part is closed at the first commit at which it holds at least this
    /// many rows, so parts end on chunk boundaries (and may exceed the budget by under a chunk).
    pub part_rows: u64,
    /// Column compression.
    pub codec: ParquetCodec,
    /// Dictionary encoding. Off by default: on realistic rows it made files larger and slower to
    /// write (docs/adr/0003-sink-encoding.md).
    pub dictionary: bool,
}

impl Default for ParquetOptions {
    fn default() -> ParquetOptions {
        ParquetOptions {
            row_group_rows: 16_384,
            part_rows: 1_000_000,
            codec: ParquetCodec::Zstd { level: 1 },
            dictionary: false,
        }
    }
}

/// Everything that determines what a sink writes and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkSpec {
    /// The output directory.
    pub dir: PathBuf,
    /// The table, which names the files.
    pub table: String,
    /// The format.
    pub format: Format,
    /// gzip or not (text formats only).
    pub compression: Compression,
    /// The columns written.
    pub schema: Schema,
    /// Parquet layout; ignored by text formats.
    pub parquet: ParquetOptions,
    /// Text formats: `None` writes one file `{table}.{ext}`; `Some(n)` writes parts
    /// `{table}-00000.{ext}`, `{table}-00001.{ext}`, …, each closed at the first commit at which it
    /// holds at least `n` rows (so parts end on chunk boundaries), each a complete file of its own
    /// (CSV with its header, JSON one array, gzip whole members). Parquet ignores it
    /// ([`ParquetOptions::part_rows`]).
    pub text_part_rows: Option<u64>,
    /// Parquet: journal each commit's chunks as a durable piece, so that a commit is durable
    /// before its part closes (the default). Off for a writer that never commits before
    /// [`Sink::finish`](crate::Sink::finish) and never resumes (`materialize`, which writes a
    /// temp file and renames it): no piece is written, and [`Sink::commit`](crate::Sink::commit)
    /// fails. Text formats ignore it.
    pub journal: bool,
    /// The closed parts are published to another destination (object storage), and their copies
    /// here may be gone: a resume, and [`verify`](crate::verify), take a closed part absent from
    /// `dir` as committed (the caller checks it where it was published), and check one still here
    /// as ever. Off (the default) a closed part must be here.
    pub closed_parts_elsewhere: bool,
    /// The column whose values are the table's ids, if it has one among the columns written:
    /// the manifest records each file's id range from it.
    pub id_column: Option<String>,
}

impl SinkSpec {
    /// A spec with default Parquet options.
    pub fn new(
        dir: impl Into<PathBuf>,
        table: impl Into<String>,
        format: Format,
        compression: Compression,
        schema: Schema,
    ) -> SinkSpec {
        SinkSpec {
            dir: dir.into(),
            table: table.into(),
            format,
            compression,
            schema,
            parquet: ParquetOptions::default(),
            text_part_rows: None,
            journal: true,
            closed_parts_elsewhere: false,
            id_column: None,
        }
    }

    /// The same spec, recording id ranges from `column` when the schema has it.
    #[must_use]
    pub fn with_id_column(mut self, column: Option<&str>) -> SinkSpec {
        self.id_column = column.filter(|c| self.schema.names().any(|n| n == *c)).map(str::to_owned);
        self
    }

    /// The index in the schema of the id column, if any.
    pub(crate) fn id_index(&self) -> Option<usize> {
        let id = self.id_column.as_deref()?;
        self.schema.names().position(|n| n == id)
    }

    /// Checks that the options fit together; [`crate::open`] calls it first.
    pub fn validate(&self) -> Result<(), Error> {
        let config = |message: String| Err(Error::Config { message });
        if self.table.is_empty() || self.table.contains(['/', '\\']) || self.table.starts_with('.')
        {
            return config(format!("table name {:?} cannot name a file", self.table));
        }
        if self.schema.columns.is_empty() {
            return config(format!("table {}: the schema has no columns", self.table));
        }
        match (self.format, self.compression) {
            (Format::Parquet, Compression::Gzip { .. }) => {
                return config(
                    "gzip applies to text formats; parquet compresses its columns itself".into(),
                );
            }
            (_, Compression::Gzip { level }) if Compression::gzip_level(level).is_none() => {
                let levels = Compression::GZIP_LEVELS;
                return config(format!(
                    "gzip level {level} is out of range {}..={}",
                    levels.start(),
                    levels.end()
                ));
            }
            _ => {}
        }
        if self.format != Format::Parquet && self.text_part_rows == Some(0) {
            return config("text part sizes must be positive".into());
        }
        if self.format == Format::Parquet {
            if self.parquet.row_group_rows == 0 || self.parquet.part_rows == 0 {
                return config("parquet row group and part sizes must be positive".into());
            }
            if let ParquetCodec::Zstd { level } = self.parquet.codec
                && !(1..=22).contains(&level)
            {
                return config(format!("zstd level {level} is out of range 1..=22"));
            }
        }
        Ok(())
    }

    /// The files this spec writes, so that an orchestrator can refuse two specs writing the same
    /// files and a reset can find them.
    pub fn files(&self) -> Vec<OutputFile> {
        let (dir, table, ext) = (self.dir.clone(), self.table.clone(), self.extension());
        if self.is_parted() {
            vec![OutputFile::Parts { dir, table, ext }]
        } else {
            vec![OutputFile::Path(dir.join(format!("{table}.{ext}")))]
        }
    }

    /// The file name extension of this spec's files: `parquet`, or the text format's with `.gz`
    /// when gzipped (`jsonl`, `csv.gz`).
    pub(crate) fn extension(&self) -> String {
        match (self.format, self.compression) {
            (Format::Parquet, _) => "parquet".to_owned(),
            (format, Compression::Gzip { .. }) => format!("{format}.gz"),
            (format, _) => format.to_string(),
        }
    }

    /// Whether the output is a sequence of parts: always for Parquet, for text with
    /// [`SinkSpec::text_part_rows`].
    pub fn is_parted(&self) -> bool {
        self.format == Format::Parquet || self.text_part_rows.is_some()
    }

    /// Whether this spec and `other` would write some file in common.
    pub fn conflicts_with(&self, other: &SinkSpec) -> bool {
        self.files().iter().any(|a| other.files().iter().any(|b| a.overlaps(b)))
    }

    /// The path of part `index`: `{dir}/{table}-NNNNN.parquet` (or `.jsonl`, `.csv.gz`, … for text
    /// parts), the index zero-padded to five digits. The one place a part is named: the sinks
    /// write their parts here, and an orchestrator naming a part (the first one, to stand for all)
    /// asks here too.
    pub fn part_path(&self, index: u32) -> PathBuf {
        self.dir.join(self.part_name(index))
    }

    /// The file name of part `index` (see [`SinkSpec::part_path`]).
    pub(crate) fn part_name(&self, index: u32) -> String {
        part_file_name(&self.table, &self.extension(), index)
    }

    /// The temp path part `index` is written under until it is closed.
    #[cfg(feature = "parquet")]
    pub(crate) fn temp_part_path(&self, index: u32) -> PathBuf {
        self.dir.join(temp_part_name(&self.table, index))
    }

    /// The one file of a text format.
    pub(crate) fn text_path(&self) -> PathBuf {
        match self.files().into_iter().next() {
            Some(OutputFile::Path(p)) => p,
            _ => self.dir.join(&self.table),
        }
    }
}

/// A file, or family of files, that a [`SinkSpec`] writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutputFile {
    /// Exactly this file (the text formats).
    Path(PathBuf),
    /// Parts `{dir}/{table}-NNNNN.{ext}`: Parquet parts with their temp files
    /// `{dir}/.{table}-NNNNN.parquet.tmp` and their pieces `{dir}/.{table}-NNNNN.parquet.MMMMM.piece`,
    /// or the parts of a text format (`ext` `jsonl`, `csv.gz`, …).
    Parts {
        /// The directory.
        dir: PathBuf,
        /// The table naming the parts.
        table: String,
        /// The extension after the part's number, without the dot: `parquet`, `jsonl.gz`, ….
        ext: String,
    },
}

impl OutputFile {
    /// Whether `path` is (one of) these files.
    pub fn matches(&self, path: &Path) -> bool {
        match self {
            OutputFile::Path(p) => p == path,
            OutputFile::Parts { dir, table, ext } => {
                path.parent() == Some(dir.as_path())
                    && path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| part_index(table, ext, n).is_some())
            }
        }
    }

    fn overlaps(&self, other: &OutputFile) -> bool {
        match (self, other) {
            (OutputFile::Path(p), o) | (o, OutputFile::Path(p)) => o.matches(p),
            (a @ OutputFile::Parts { .. }, b) => a == b,
        }
    }
}

impl fmt::Display for OutputFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputFile::Path(p) => write!(f, "{}", p.display()),
            OutputFile::Parts { dir, table, ext } => {
                write!(f, "{}", dir.join(format!("{table}-*.{ext}")).display())
            }
        }
    }
}

/// One output file found on disk, and its size: what [`crate::list_outputs`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutputFileInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What a part-family file name is: a closed part, a Parquet part being written, or a committed
/// piece of the Parquet part being filled. Ordered closed parts first, then temp parts, then
/// pieces, each kind by index (pieces by part, then piece). Text parts are only ever closed names:
/// a text part is appended to under its final name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PartName {
    /// `{table}-NNNNN.{ext}`.
    Closed(u32),
    /// `.{table}-NNNNN.parquet.tmp`.
    Temp(u32),
    /// `.{table}-NNNNN.parquet.MMMMM.piece`: piece `piece` (one commit's chunks, an Arrow IPC
    /// file) of part `part`.
    Piece {
        /// The part it belongs to.
        part: u32,
        /// Its number within the part, from 0.
        piece: u32,
    },
}

/// Parses a file name of `table`'s parts with extension `ext` (`parquet`, `jsonl.gz`, …). The
/// match is exact (five or more digits and nothing else), so table `a` never claims table
/// `a-00000`'s parts `a-00000-00000.parquet` or pieces `.a-00000-00000.parquet.00000.piece`.
pub(crate) fn part_index(table: &str, ext: &str, name: &str) -> Option<PartName> {
    let digits = |s: &str| -> Option<u32> {
        (s.len() >= 5 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    let number = |head: &str| head.strip_prefix(table)?.strip_prefix('-').and_then(digits);
    if let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".piece")) {
        // The last `.{ext}.`: the piece's digits hold none, whatever the table's name holds.
        let (head, piece) = rest.rsplit_once(&format!(".{ext}."))?;
        return Some(PartName::Piece { part: number(head)?, piece: digits(piece)? });
    }
    if let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
        return number(rest.strip_suffix(ext)?.strip_suffix('.')?).map(PartName::Temp);
    }
    number(name.strip_suffix(ext)?.strip_suffix('.')?).map(PartName::Closed)
}

/// The name of part `index` of `table` with extension `ext`.
pub(crate) fn part_file_name(table: &str, ext: &str, index: u32) -> String {
    format!("{table}-{index:05}.{ext}")
}

/// The name of Parquet part `index`.
pub(crate) fn part_name(table: &str, index: u32) -> String {
    part_file_name(table, "parquet", index)
}

/// The temp name part `index` is written under until it is closed.
#[cfg(any(feature = "parquet", test))]
pub(crate) fn temp_part_name(table: &str, index: u32) -> String {
    format!(".{table}-{index:05}.parquet.tmp")
}

/// The hidden name of piece `piece` of part `part`: the rows of one commit, durable on their own
/// until the part is closed.
#[cfg(any(feature = "parquet", test))]
pub(crate) fn piece_name(table: &str, part: u32, piece: u32) -> String {
    format!(".{table}-{part:05}.parquet.{piece:05}.piece")
}

/// A committed position: everything before it is durable on disk, and the manifest of it.
///
/// For text formats `file_index` is 0, `bytes` the committed length of the file. For Parquet
/// `file_index` is the number of closed parts (the index of the next one) and `bytes` their total
/// size. `rows` counts the rows durable in the output in both cases: for Parquet the closed parts'
/// rows plus those of the open part's committed pieces.
///
/// `files` is the manifest proper: every output file as committed, with its rows, bytes, CRC-32
/// and id range (the one text file, growing with each commit; the closed Parquet parts). A
/// position saved by a version before the manifest has none; [`crate::open`] computes them once
/// from the files on resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkPosition {
    /// The index of the file being appended to (text) or of the next part (Parquet).
    pub file_index: u32,
    /// The committed byte length (text) or the total size of closed parts (Parquet).
    pub bytes: u64,
    /// The rows durable in the output.
    pub rows: u64,
    /// Every output file as committed: the manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRecord>,
    /// Text: the last committed chunk, which a resume rereads to check the file's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_chunk: Option<ChunkRecord>,
    /// Parquet: the committed chunks of the part being filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_part: Option<OpenPart>,
}

impl SinkPosition {
    /// A position of `rows` rows in `bytes` bytes of file `file_index`, with no manifest: the
    /// form of positions written before the manifest existed.
    pub fn bare(file_index: u32, bytes: u64, rows: u64) -> SinkPosition {
        SinkPosition { file_index, bytes, rows, ..SinkPosition::default() }
    }

    /// The rows of the committed Parquet pieces of the open part (0 for text).
    pub fn open_rows(&self) -> u64 {
        self.open_part.map_or(0, |p| p.rows)
    }

    /// The ids of every row committed, when the table has an id column.
    pub fn ids(&self) -> Option<IdRange> {
        let files = self.files.iter().map(|f| f.ids).fold(None, IdRange::join);
        IdRange::join(files, self.open_part.and_then(|p| p.ids))
    }
}

#[cfg(test)]
mod tests {
    use iptvportal_catalog::ColumnType;

    use super::*;
    use crate::schema::ColumnSpec;

    fn spec(table: &str, format: Format, compression: Compression) -> SinkSpec {
        let schema = Schema { columns: vec![ColumnSpec::new("id", ColumnType::Integer, false)] };
        SinkSpec::new("/out", table, format, compression, schema)
    }

    #[test]
    fn format_names_round_trip() {
        for f in [Format::Jsonl, Format::Csv, Format::Json, Format::Parquet] {
            assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
        }
        assert!(matches!("xml".parse::<Format>(), Err(Error::Config { .. })));
    }

    #[test]
    fn file_names_follow_the_seed() {
        let name = |s: SinkSpec| s.files()[0].to_string();
        assert_eq!(name(spec("t", Format::Jsonl, Compression::None)), "/out/t.jsonl");
        assert_eq!(name(spec("t", Format::Csv, Compression::gzip())), "/out/t.csv.gz");
        assert_eq!(name(spec("t", Format::Json, Compression::Gzip { level: 6 })), "/out/t.json.gz");
        assert_eq!(name(spec("t", Format::Parquet, Compression::None)), "/out/t-*.parquet");
        let parted = |format, compression| {
            let mut s = spec("t", format, compression);
            s.text_part_rows = Some(10);
            s
        };
        assert_eq!(name(parted(Format::Jsonl, Compression::gzip())), "/out/t-*.jsonl.gz");
        assert_eq!(
            parted(Format::Csv, Compression::None).part_path(3),
            Path::new("/out/t-00003.csv")
        );
        assert!(!spec("t", Format::Csv, Compression::None).is_parted());
        assert!(parted(Format::Csv, Compression::None).is_parted());
        // One file and parts of one table are different files; parts of text and Parquet too.
        let one = spec("t", Format::Jsonl, Compression::None);
        assert!(!one.conflicts_with(&parted(Format::Jsonl, Compression::None)));
        assert!(
            parted(Format::Jsonl, Compression::None)
                .conflicts_with(&parted(Format::Jsonl, Compression::None))
        );
        assert!(!parted(Format::Jsonl, Compression::None).conflicts_with(&spec(
            "t",
            Format::Parquet,
            Compression::None
        )));
        let mut zero = parted(Format::Json, Compression::None);
        zero.text_part_rows = Some(0);
        assert!(matches!(zero.validate(), Err(Error::Config { .. })));
    }

    #[test]
    fn part_names_match_exactly() {
        assert_eq!(part_index("a", "parquet", "a-00000.parquet"), Some(PartName::Closed(0)));
        assert_eq!(part_index("a", "parquet", "a-123456.parquet"), Some(PartName::Closed(123_456)));
        assert_eq!(part_index("a", "parquet", ".a-00007.parquet.tmp"), Some(PartName::Temp(7)));
        assert_eq!(part_index("a", "parquet", "a-00000-00000.parquet"), None);
        assert_eq!(part_index("a", "parquet", "ab-00000.parquet"), None);
        assert_eq!(part_index("a", "parquet", "a-0001.parquet"), None);
        assert_eq!(part_index("a", "parquet", "a.parquet"), None);
        assert_eq!(
            part_index("a-00000", "parquet", "a-00000-00001.parquet"),
            Some(PartName::Closed(1))
        );
        assert_eq!(part_name("a", 3), "a-00003.parquet");
        assert_eq!(part_index("a", "parquet", &temp_part_name("a", 3)), Some(PartName::Temp(3)));
        // Text parts: the extension is exact, compression included.
        assert_eq!(part_index("a", "jsonl.gz", "a-00002.jsonl.gz"), Some(PartName::Closed(2)));
        assert_eq!(part_index("a", "jsonl", "a-00002.jsonl.gz"), None);
        assert_eq!(part_index("a", "jsonl.gz", "a-00002.jsonl"), None);
        assert_eq!(part_index("a", "csv", "a-00002.parquet"), None);
        assert_eq!(part_index("a", "csv", "a-00002csv"), None);
        assert_eq!(part_index("a", "csv", "a.csv"), None);
    }

    #[test]
    fn piece_names_match_exactly() {
        let piece = |part, piece| Some(PartName::Piece { part, piece });
        assert_eq!(piece_name("a", 3, 12), ".a-00003.parquet.00012.piece");
        assert_eq!(part_index("a", "parquet", &piece_name("a", 3, 12)), piece(3, 12));
        assert_eq!(
            part_index("a", "parquet", ".a-123456.parquet.100000.piece"),
            piece(123_456, 100_000)
        );
        // Another table's pieces, near misses, and the closed and temp names of the same part.
        assert_eq!(part_index("a", "parquet", &piece_name("a-00000", 0, 0)), None);
        assert_eq!(part_index("a-00000", "parquet", &piece_name("a-00000", 0, 1)), piece(0, 1));
        assert_eq!(part_index("a", "parquet", &piece_name("ab", 0, 0)), None);
        assert_eq!(part_index("a", "parquet", "a-00000.parquet.00000.piece"), None, "not hidden");
        assert_eq!(part_index("a", "parquet", ".a-00000.parquet.0000.piece"), None);
        assert_eq!(part_index("a", "parquet", ".a-00000.parquet.00000.piece.tmp"), None);
        assert_eq!(part_index("a", "parquet", ".a-00000.parquet.00000x.piece"), None);
        assert_eq!(part_index("a", "parquet", ".a-00000.00000.piece"), None);
        // A table whose name looks like a piece's tail still parses at the last `.parquet.`.
        let odd = "x.parquet.00001";
        assert_eq!(part_index(odd, "parquet", &piece_name(odd, 2, 3)), piece(2, 3));
        assert_eq!(part_index("x", "parquet", &piece_name(odd, 2, 3)), None);
        // Closed parts sort first, then temp parts, then pieces by part and number.
        let mut names = [piece(1, 0), piece(0, 2), Some(PartName::Temp(0)), piece(0, 10)];
        names.sort();
        assert_eq!(names, [Some(PartName::Temp(0)), piece(0, 2), piece(0, 10), piece(1, 0)]);
        assert!(PartName::Closed(9) < PartName::Temp(0));
    }

    #[test]
    fn conflicts_are_about_shared_files() {
        let a = spec("t", Format::Jsonl, Compression::None);
        assert!(a.conflicts_with(&spec("t", Format::Jsonl, Compression::None)));
        assert!(!a.conflicts_with(&spec("t", Format::Jsonl, Compression::gzip())));
        assert!(!a.conflicts_with(&spec("u", Format::Jsonl, Compression::None)));
        let p = spec("t", Format::Parquet, Compression::None);
        assert!(p.conflicts_with(&spec("t", Format::Parquet, Compression::None)));
        assert!(!p.conflicts_with(&spec("t-00000", Format::Parquet, Compression::None)));
        assert!(!p.conflicts_with(&a));
    }

    #[test]
    fn validation_rejects_gzip_parquet_and_bad_levels() {
        assert!(matches!(
            spec("t", Format::Parquet, Compression::gzip()).validate(),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            spec("t", Format::Csv, Compression::Gzip { level: 10 }).validate(),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            spec("../t", Format::Csv, Compression::None).validate(),
            Err(Error::Config { .. })
        ));
        assert!(spec("t", Format::Csv, Compression::gzip()).validate().is_ok());
    }
}

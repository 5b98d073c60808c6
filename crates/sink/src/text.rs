//! The text sinks (JSONL, CSV, JSON), plain or gzip, committing at the end of each chunk, into one
//! file or into parts.
//!
//! A chunk is validated whole, then encoded into a buffer, then written with one call: a bad value
//! never leaves half a chunk in the file. Each commit makes everything written so far durable and
//! reports the file's length; for gzip it first closes the current member, so the committed prefix
//! is always a complete gzip stream and a resume can cut the file there and append a new member.
//!
//! Every byte that reaches the file passes a running CRC-32, so each commit reports the file's
//! manifest record (rows, bytes, checksum, id range) and the checksum of the chunk it committed.
//! A resume continues the running checksum from the checkpoint and rereads only the last
//! committed chunk, to check that the file still ends as committed.
//!
//! With [`SinkSpec::text_part_rows`] the output is parts `{table}-00000.jsonl`, … instead of one
//! file: the part being filled is appended to under its final name exactly as the one file is,
//! and at the first commit at which it holds the part's rows it is completed (JSON's `]`) and
//! closed; the next chunk opens the next part, with its own header. Each part is a file any reader
//! of the format reads alone. The position lists every part (the closed ones, then the open one)
//! and `file_index` is the part being appended to, or the next one when the last commit closed
//! one; its `bytes` is the total of the parts. A resume leaves the closed parts as they are, cuts
//! the open one back, and removes any part begun after the last commit.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Seek, Write};
use std::path::PathBuf;

use flate2::write::GzEncoder;
use serde_json::Value;

use crate::Sink;
use crate::error::Error;
use crate::fs;
use crate::manifest::{ChunkRecord, Crc32, FileRecord, Hashing, IdRange, crc_of_file};
use crate::spec::{Compression, Format, PartName, SinkPosition, SinkSpec};

/// The file, behind two checksums: of the whole file (resumed from the checkpoint) and of the
/// bytes since the last commit.
type Tracked = Hashing<Hashing<File>>;

/// Where encoded bytes go.
enum Out {
    /// Straight into the file: plain text, or gzip between members.
    File(Tracked),
    /// Into an open gzip member.
    Member(GzEncoder<Tracked>),
    /// No file is open: the last commit closed a part, and the next write opens the next one.
    Unopened,
    /// An earlier step failed and took the file with it.
    Broken,
}

/// A JSONL, CSV or JSON sink: one file, or parts of [`SinkSpec::text_part_rows`] rows.
pub(crate) struct TextSink {
    spec: SinkSpec,
    /// The file being appended to: the one file, or part `index`.
    path: PathBuf,
    /// The file's name in the manifest.
    name: String,
    /// The index of the part being appended to (or opened next); 0 for one file.
    index: u32,
    /// Each column name encoded as a JSON string followed by `:`, ready to prefix its value.
    keys: Vec<Vec<u8>>,
    gzip: Option<flate2::Compression>,
    out: Out,
    /// Rows written so far, committed or not: numbers rows in errors.
    rows: u64,
    /// Rows written to the open file so far: decides JSON separators and when a part is full.
    file_rows: u64,
    /// Encoding buffer, reused across chunks.
    buf: Vec<u8>,
    /// The id column's index, if the table has one.
    id_index: Option<usize>,
    /// The ids of the rows written to the open file so far.
    ids: Option<IdRange>,
    /// The last commit that wrote bytes to the open file.
    last_chunk: Option<ChunkRecord>,
    /// The parts closed so far, in order (none for one file).
    closed: Vec<FileRecord>,
}

impl TextSink {
    pub(crate) fn open(spec: &SinkSpec, resume: Option<&SinkPosition>) -> Result<TextSink, Error> {
        fs::create_dir(&spec.dir)?;
        let keys = spec
            .schema
            .columns
            .iter()
            .map(|c| {
                let mut key = serde_json::to_vec(&c.name).expect("a string always serializes");
                key.push(b':');
                key
            })
            .collect();
        let mut sink = TextSink {
            spec: spec.clone(),
            path: PathBuf::new(),
            name: String::new(),
            index: 0,
            keys,
            gzip: match spec.compression {
                Compression::None => None,
                Compression::Gzip { level } => Some(flate2::Compression::new(level)),
            },
            out: Out::Unopened,
            rows: 0,
            file_rows: 0,
            buf: Vec::new(),
            id_index: spec.id_index(),
            ids: None,
            last_chunk: None,
            closed: Vec::new(),
        };
        match (resume, spec.text_part_rows) {
            (None, None) => sink.start_file(spec.text_path())?,
            (None, Some(_)) => {
                // A fresh parted output owns every part name: an older run's parts would read as
                // part of this one.
                for found in fs::scan(spec)? {
                    fs::remove_if_exists(&found.path)?;
                }
                sink.start_file(spec.part_path(0))?;
            }
            (Some(pos), None) => sink.resume_file(pos)?,
            (Some(pos), Some(_)) => sink.resume_parts(pos)?,
        }
        Ok(sink)
    }

    /// Creates `path` empty as the file being written, with its header.
    fn start_file(&mut self, path: PathBuf) -> Result<(), Error> {
        let file = fs::create_fresh(&path)?;
        self.set_file(path, Hashing::new(Hashing::new(file)));
        self.file_rows = 0;
        self.ids = None;
        self.last_chunk = None;
        self.write_header()
    }

    /// The header a file starts with: CSV's column names, JSON's `[`.
    fn write_header(&mut self) -> Result<(), Error> {
        let mut header = Vec::new();
        match self.spec.format {
            Format::Csv => {
                let mut w = csv_writer(&mut header);
                w.write_record(self.spec.schema.names()).map_err(|e| csv_error(&self.path, e))?;
                w.flush().map_err(|e| Error::io(&self.path, e))?;
            }
            Format::Json => header.push(b'['),
            _ => {}
        }
        self.write_bytes(&header)
    }

    fn set_file(&mut self, path: PathBuf, file: Tracked) {
        self.name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.path = path;
        self.out = Out::File(file);
    }

    /// Continues the one file at `pos`.
    fn resume_file(&mut self, pos: &SinkPosition) -> Result<(), Error> {
        let path = self.spec.text_path();
        if pos.file_index != 0 || (pos.bytes == 0 && pos.rows > 0) {
            return Err(Error::ResumeMismatch {
                path,
                reason: format!(
                    "the checkpoint's position {pos:?} cannot describe a {} file",
                    self.spec.format
                ),
            });
        }
        let record = pos.files.first();
        if let Some(record) = record
            && (record.bytes != pos.bytes || record.rows != pos.rows)
        {
            return Err(Error::ResumeMismatch {
                path,
                reason: format!(
                    "the checkpoint is inconsistent: its position says {} bytes and {} rows, \
                     its manifest {} bytes and {} rows",
                    pos.bytes, pos.rows, record.bytes, record.rows
                ),
            });
        }
        self.continue_file(path, record, pos.bytes, pos.last_chunk)?;
        self.rows = pos.rows;
        self.file_rows = pos.rows;
        Ok(())
    }

    /// Continues parted output at `pos`: the closed parts stay as they are, the open one is cut
    /// back to its committed length, and every part after it (begun after the last commit) goes.
    fn resume_parts(&mut self, pos: &SinkPosition) -> Result<(), Error> {
        let index = pos.file_index;
        let mismatch = |path: PathBuf, reason: String| Err(Error::ResumeMismatch { path, reason });
        let listed = pos.files.len();
        if listed != index as usize && listed != index as usize + 1 {
            return mismatch(
                self.spec.part_path(index),
                format!("the checkpoint lists {listed} parts but its position is at part {index}"),
            );
        }
        for (i, record) in (0..).zip(&pos.files) {
            if record.name != self.spec.part_name(i) {
                return mismatch(
                    self.spec.part_path(i),
                    format!(
                        "the checkpoint's part {i} is {:?}, not a part of this output",
                        record.name
                    ),
                );
            }
        }
        let (rows, bytes) = pos.files.iter().fold((0, 0), |(r, b), f| (r + f.rows, b + f.bytes));
        if rows != pos.rows || bytes != pos.bytes {
            return mismatch(
                self.spec.part_path(index),
                format!(
                    "the checkpoint is inconsistent: its position says {} bytes and {} rows, its \
                     manifest {bytes} bytes and {rows} rows",
                    pos.bytes, pos.rows
                ),
            );
        }
        for record in &pos.files[..index as usize] {
            let path = self.spec.dir.join(&record.name);
            if self.spec.closed_parts_elsewhere && !fs::exists(&path)? {
                continue;
            }
            fs::check_exact_len(&path, record.bytes)?;
        }
        // Parts begun after the last commit are not part of the output.
        let open = pos.files.get(index as usize);
        for found in fs::scan(&self.spec)? {
            if let Some(PartName::Closed(i)) = found.part
                && (i > index || (i == index && open.is_none()))
            {
                fs::remove_if_exists(&found.path)?;
            }
        }
        self.closed = pos.files[..index as usize].to_vec();
        self.index = index;
        self.rows = pos.rows;
        if let Some(record) = open {
            let last_chunk = pos.last_chunk;
            self.continue_file(self.spec.part_path(index), Some(record), record.bytes, last_chunk)?;
            self.file_rows = record.rows;
        }
        Ok(())
    }

    /// Opens `path` to append after its committed `len` bytes (`record`, when the checkpoint has
    /// one), checking its last committed chunk first.
    fn continue_file(
        &mut self,
        path: PathBuf,
        record: Option<&FileRecord>,
        len: u64,
        last_chunk: Option<ChunkRecord>,
    ) -> Result<(), Error> {
        // Checked before anything is cut: a file that does not end as committed is refused as
        // it is.
        fs::check_len(&path, len)?;
        let crc = resumed_checksum(&path, record, len, last_chunk)?;
        let file = fs::open_cut(&path, len)?;
        self.set_file(path, Hashing::new(Hashing::resume(file, crc, len)));
        self.ids = record.and_then(|r| r.ids);
        self.last_chunk = last_chunk;
        // The header belongs to the start of the file: one committed empty gets it now.
        if len == 0 { self.write_header() } else { Ok(()) }
    }

    /// Sends bytes to the file, opening a gzip member first if one is due.
    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        if let (Some(level), Out::File(_)) = (self.gzip, &self.out)
            && let Out::File(file) = std::mem::replace(&mut self.out, Out::Broken)
        {
            self.out = Out::Member(GzEncoder::new(file, level));
        }
        let result = match &mut self.out {
            Out::File(f) => f.write_all(bytes),
            Out::Member(g) => g.write_all(bytes),
            Out::Unopened | Out::Broken => Err(broken()),
        };
        result.map_err(|e| Error::io(&self.path, e))
    }

    /// Encodes validated rows into `buf`.
    fn encode(&mut self, rows: &[Vec<Value>], buf: &mut Vec<u8>) -> Result<(), Error> {
        match self.spec.format {
            Format::Csv => {
                let mut w = csv_writer(buf);
                for row in rows {
                    w.write_record(row.iter().map(csv_field))
                        .map_err(|e| csv_error(&self.path, e))?;
                }
                w.flush().map_err(|e| Error::io(&self.path, e))?;
            }
            _ => {
                for (i, row) in rows.iter().enumerate() {
                    if self.spec.format == Format::Json && self.file_rows + i as u64 > 0 {
                        buf.extend_from_slice(b",\n");
                    }
                    buf.push(b'{');
                    for (j, (key, value)) in self.keys.iter().zip(row).enumerate() {
                        if j > 0 {
                            buf.push(b',');
                        }
                        buf.extend_from_slice(key);
                        serde_json::to_writer(&mut *buf, value)
                            .map_err(|e| Error::io(&self.path, e.into()))?;
                    }
                    buf.push(b'}');
                    if self.spec.format == Format::Jsonl {
                        buf.push(b'\n');
                    }
                }
            }
        }
        Ok(())
    }
}

impl TextSink {
    /// Makes everything written to the open file durable and returns the position. With `end`
    /// the file is complete: JSON's closing `]` goes first, and a part is closed (the next write
    /// opens the next one).
    fn commit_file(&mut self, end: bool) -> Result<SinkPosition, Error> {
        if matches!(self.out, Out::Unopened) {
            return Ok(self.position(None));
        }
        if end {
            if self.spec.format == Format::Json {
                self.write_bytes(b"]\n")?;
            }
            // An empty file is not valid gzip: an empty file is one empty member.
            if let (Some(level), Out::File(file)) = (self.gzip, &self.out)
                && file.get_ref().sum().1 == 0
                && let Out::File(file) = std::mem::replace(&mut self.out, Out::Broken)
            {
                self.out = Out::Member(GzEncoder::new(file, level));
            }
        }
        let file = match std::mem::replace(&mut self.out, Out::Broken) {
            Out::File(f) => f,
            // Closing the member writes its trailer: the file now ends in a complete gzip stream.
            Out::Member(g) => g.finish().map_err(|e| Error::io(&self.path, e))?,
            Out::Unopened | Out::Broken => return Err(Error::io(&self.path, broken())),
        };
        file.get_ref().get_ref().sync_data().map_err(|e| Error::io(&self.path, e))?;
        let (chunk_crc, chunk_len) = file.sum();
        let whole = file.into_inner();
        let (crc32, bytes) = whole.sum();
        let real = { whole.get_ref() }.stream_position().map_err(|e| Error::io(&self.path, e))?;
        debug_assert_eq!(real, bytes, "every byte of the file passed the checksum");
        let record = FileRecord {
            name: self.name.clone(),
            rows: self.file_rows,
            bytes,
            crc32,
            ids: self.ids,
        };
        if end && self.spec.text_part_rows.is_some() {
            self.closed.push(record);
            self.index += 1;
            self.out = Out::Unopened;
            self.file_rows = 0;
            self.ids = None;
            self.last_chunk = None;
            return Ok(self.position(None));
        }
        self.out = Out::File(Hashing::new(whole));
        // A commit that wrote nothing keeps the last chunk that did, which a resume checks.
        if chunk_len > 0 {
            self.last_chunk = Some(ChunkRecord { offset: bytes - chunk_len, crc32: chunk_crc });
        }
        Ok(self.position(Some(record)))
    }

    /// The committed position: the closed parts, then the open file's `record` if one is open.
    fn position(&self, open: Option<FileRecord>) -> SinkPosition {
        let last_chunk = open.as_ref().and(self.last_chunk);
        let mut files = self.closed.clone();
        files.extend(open);
        SinkPosition {
            file_index: self.index,
            bytes: files.iter().map(|f| f.bytes).sum(),
            rows: self.rows,
            files,
            last_chunk,
            open_part: None,
        }
    }
}

impl Sink for TextSink {
    fn write_chunk(&mut self, rows: &[Vec<Value>]) -> Result<(), Error> {
        self.spec.schema.validate(&self.spec.table, rows, self.rows)?;
        if matches!(self.out, Out::Unopened) {
            // An empty chunk (a traversal's last, empty page) opens no part: after a part closed
            // at the table's last row, there is no empty part to leave behind.
            if rows.is_empty() {
                return Ok(());
            }
            self.start_file(self.spec.part_path(self.index))?;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let result = self.encode(rows, &mut buf).and_then(|()| self.write_bytes(&buf));
        self.buf = buf;
        result?;
        self.rows += rows.len() as u64;
        self.file_rows += rows.len() as u64;
        if let Some(index) = self.id_index {
            self.ids = IdRange::join(self.ids, IdRange::of_rows(rows, index));
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<Option<SinkPosition>, Error> {
        let full = self.spec.text_part_rows.is_some_and(|n| self.file_rows >= n);
        self.commit_file(full).map(Some)
    }

    fn finish(mut self: Box<Self>) -> Result<SinkPosition, Error> {
        // Every output has a file: an empty table's is one part with nothing but its header.
        if matches!(self.out, Out::Unopened) && self.closed.is_empty() {
            self.start_file(self.spec.part_path(0))?;
        }
        self.commit_file(true)
    }
}

/// The CRC-32 of the committed `len` bytes of a file being resumed, after checking what can be
/// checked without reading the whole file: the last committed chunk's bytes. A position from
/// before the manifest has no record, hence no checksum to continue; its prefix is read once.
fn resumed_checksum(
    path: &std::path::Path,
    record: Option<&FileRecord>,
    len: u64,
    last_chunk: Option<ChunkRecord>,
) -> Result<Crc32, Error> {
    let mismatch = |reason: String| Error::ResumeMismatch { path: path.to_owned(), reason };
    let Some(record) = record else {
        let (crc, read) = crc_of_file(path, 0, Some(len))?;
        if read != len {
            return Err(mismatch(format!("the file holds {read} bytes, not {len}")));
        }
        return Ok(crc);
    };
    if let Some(chunk) = last_chunk {
        if chunk.offset > len {
            return Err(mismatch(format!(
                "the checkpoint's last chunk starts at byte {}, past its end {len}",
                chunk.offset
            )));
        }
        let (crc, _) = crc_of_file(path, chunk.offset, Some(len - chunk.offset))?;
        if crc != chunk.crc32 {
            return Err(mismatch(format!(
                "bytes {}..{len} are not the chunk committed there (CRC-32 {crc}, the checkpoint \
                 says {})",
                chunk.offset, chunk.crc32
            )));
        }
    }
    Ok(record.crc32)
}

fn csv_writer<W: Write>(w: W) -> csv::Writer<W> {
    // `\n` rather than RFC 4180's CRLF: every CSV reader accepts it and line tools expect it.
    // Quoting follows RFC 4180: only fields holding a delimiter, quote or line break are quoted.
    csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(w)
}

/// A value as a CSV field: null is the empty field, strings (and timestamps) are their text,
/// booleans `true`/`false`, numbers as JSON prints them (the shortest form that round-trips).
fn csv_field(value: &Value) -> Cow<'_, [u8]> {
    match value {
        Value::Null => Cow::Borrowed(b""),
        Value::String(s) => Cow::Borrowed(s.as_bytes()),
        Value::Bool(b) => Cow::Borrowed(if *b { b"true" } else { b"false" }),
        other => Cow::Owned(other.to_string().into_bytes()),
    }
}

fn csv_error(path: &std::path::Path, e: csv::Error) -> Error {
    Error::io(path, e.into())
}

fn broken() -> std::io::Error {
    std::io::Error::other(
        "an earlier write failed; reopen the sink from the last committed position",
    )
}

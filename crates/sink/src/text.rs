//! The text sinks (JSONL, CSV, JSON), plain or gzip, committing at the end of each chunk.
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
use crate::schema::Schema;
use crate::spec::{Compression, Format, SinkPosition, SinkSpec};

/// The file, behind two checksums: of the whole file (resumed from the checkpoint) and of the
/// bytes since the last commit.
type Tracked = Hashing<Hashing<File>>;

/// Where encoded bytes go.
enum Out {
    /// Straight into the file: plain text, or gzip between members.
    File(Tracked),
    /// Into an open gzip member.
    Member(GzEncoder<Tracked>),
    /// An earlier step failed and took the file with it.
    Broken,
}

/// A JSONL, CSV or JSON sink.
pub(crate) struct TextSink {
    table: String,
    path: PathBuf,
    /// The file's name in the manifest.
    name: String,
    format: Format,
    schema: Schema,
    /// Each column name encoded as a JSON string followed by `:`, ready to prefix its value.
    keys: Vec<Vec<u8>>,
    gzip: Option<flate2::Compression>,
    out: Out,
    /// Rows written so far, committed or not: numbers rows in errors, decides JSON separators.
    rows: u64,
    /// Encoding buffer, reused across chunks.
    buf: Vec<u8>,
    /// The id column's index, if the table has one.
    id_index: Option<usize>,
    /// The ids of the rows written so far.
    ids: Option<IdRange>,
    /// The last commit that wrote bytes.
    last_chunk: Option<ChunkRecord>,
}

impl TextSink {
    pub(crate) fn open(spec: &SinkSpec, resume: Option<&SinkPosition>) -> Result<TextSink, Error> {
        fs::create_dir(&spec.dir)?;
        let path = spec.text_path();
        let (file, committed) = match resume {
            None => {
                let file = fs::create_fresh(&path)?;
                (Hashing::new(Hashing::new(file)), SinkPosition::default())
            }
            Some(pos) => {
                if pos.file_index != 0 || (pos.bytes == 0 && pos.rows > 0) {
                    return Err(Error::ResumeMismatch {
                        path,
                        reason: format!(
                            "the checkpoint's position {pos:?} cannot describe a {} file",
                            spec.format
                        ),
                    });
                }
                // Checked before anything is cut: a file that does not end as committed is
                // refused as it is.
                fs::check_len(&path, pos.bytes)?;
                let crc = resumed_checksum(&path, pos)?;
                let file = fs::open_cut(&path, pos.bytes)?;
                (Hashing::new(Hashing::resume(file, crc, pos.bytes)), pos.clone())
            }
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let ids = committed.files.first().and_then(|f| f.ids);
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
            table: spec.table.clone(),
            path,
            name,
            format: spec.format,
            schema: spec.schema.clone(),
            keys,
            gzip: match spec.compression {
                Compression::None => None,
                Compression::Gzip { level } => Some(flate2::Compression::new(level)),
            },
            out: Out::File(file),
            rows: committed.rows,
            buf: Vec::new(),
            id_index: spec.id_index(),
            ids,
            last_chunk: committed.last_chunk,
        };
        // The header belongs to the start of the file only; a resumed file already has it.
        if committed.bytes == 0 {
            let mut header = Vec::new();
            match sink.format {
                Format::Csv => {
                    let mut w = csv_writer(&mut header);
                    w.write_record(sink.schema.names()).map_err(|e| csv_error(&sink.path, e))?;
                    w.flush().map_err(|e| Error::io(&sink.path, e))?;
                }
                Format::Json => header.push(b'['),
                _ => {}
            }
            sink.write_bytes(&header)?;
        }
        Ok(sink)
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
            Out::Broken => Err(broken()),
        };
        result.map_err(|e| Error::io(&self.path, e))
    }

    /// Encodes validated rows into `buf`.
    fn encode(&mut self, rows: &[Vec<Value>], buf: &mut Vec<u8>) -> Result<(), Error> {
        match self.format {
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
                    if self.format == Format::Json && self.rows + i as u64 > 0 {
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
                    if self.format == Format::Jsonl {
                        buf.push(b'\n');
                    }
                }
            }
        }
        Ok(())
    }
}

impl Sink for TextSink {
    fn write_chunk(&mut self, rows: &[Vec<Value>]) -> Result<(), Error> {
        self.schema.validate(&self.table, rows, self.rows)?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let result = self.encode(rows, &mut buf).and_then(|()| self.write_bytes(&buf));
        self.buf = buf;
        result?;
        self.rows += rows.len() as u64;
        if let Some(index) = self.id_index {
            self.ids = IdRange::join(self.ids, IdRange::of_rows(rows, index));
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<Option<SinkPosition>, Error> {
        let file = match std::mem::replace(&mut self.out, Out::Broken) {
            Out::File(f) => f,
            // Closing the member writes its trailer: the file now ends in a complete gzip stream.
            Out::Member(g) => g.finish().map_err(|e| Error::io(&self.path, e))?,
            Out::Broken => return Err(Error::io(&self.path, broken())),
        };
        file.get_ref().get_ref().sync_data().map_err(|e| Error::io(&self.path, e))?;
        let (chunk_crc, chunk_len) = file.sum();
        let whole = file.into_inner();
        let (crc32, bytes) = whole.sum();
        let real = { whole.get_ref() }.stream_position().map_err(|e| Error::io(&self.path, e))?;
        debug_assert_eq!(real, bytes, "every byte of the file passed the checksum");
        self.out = Out::File(Hashing::new(whole));
        // A commit that wrote nothing keeps the last chunk that did, which a resume checks.
        if chunk_len > 0 {
            self.last_chunk = Some(ChunkRecord { offset: bytes - chunk_len, crc32: chunk_crc });
        }
        let record =
            FileRecord { name: self.name.clone(), rows: self.rows, bytes, crc32, ids: self.ids };
        Ok(Some(SinkPosition {
            file_index: 0,
            bytes,
            rows: self.rows,
            files: vec![record],
            last_chunk: self.last_chunk,
            open_part: None,
        }))
    }

    fn finish(mut self: Box<Self>) -> Result<SinkPosition, Error> {
        if self.format == Format::Json {
            self.write_bytes(b"]\n")?;
        }
        // An empty file is not valid gzip: an empty table's output is one empty member.
        if let (Some(level), Out::File(file)) = (self.gzip, &self.out)
            && file.get_ref().sum().1 == 0
            && let Out::File(file) = std::mem::replace(&mut self.out, Out::Broken)
        {
            self.out = Out::Member(GzEncoder::new(file, level));
        }
        let pos = self.commit()?.expect("text sinks always report a position");
        Ok(pos)
    }
}

/// The CRC-32 of the committed prefix of a file being resumed at `pos`, after checking what can
/// be checked without reading the whole file: the last committed chunk's bytes. A position from
/// before the manifest has no checksum to continue; its prefix is read once.
fn resumed_checksum(path: &std::path::Path, pos: &SinkPosition) -> Result<Crc32, Error> {
    let mismatch = |reason: String| Error::ResumeMismatch { path: path.to_owned(), reason };
    let Some(record) = pos.files.first() else {
        let (crc, read) = crc_of_file(path, 0, Some(pos.bytes))?;
        if read != pos.bytes {
            return Err(mismatch(format!("the file holds {read} bytes, not {}", pos.bytes)));
        }
        return Ok(crc);
    };
    if record.bytes != pos.bytes || record.rows != pos.rows {
        return Err(mismatch(format!(
            "the checkpoint is inconsistent: its position says {} bytes and {} rows, its \
             manifest {} bytes and {} rows",
            pos.bytes, pos.rows, record.bytes, record.rows
        )));
    }
    if let Some(chunk) = pos.last_chunk {
        if chunk.offset > pos.bytes {
            return Err(mismatch(format!(
                "the checkpoint's last chunk starts at byte {}, past its end {}",
                chunk.offset, pos.bytes
            )));
        }
        let (crc, _) = crc_of_file(path, chunk.offset, Some(pos.bytes - chunk.offset))?;
        if crc != chunk.crc32 {
            return Err(mismatch(format!(
                "bytes {}..{} are not the chunk committed there (CRC-32 {crc}, the checkpoint \
                 says {})",
                chunk.offset, pos.bytes, chunk.crc32
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

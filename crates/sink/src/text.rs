//! The text sinks (JSONL, CSV, JSON), plain or gzip, committing at the end of each chunk.
//!
//! A chunk is validated whole, then encoded into a buffer, then written with one call: a bad value
//! never leaves half a chunk in the file. Each commit makes everything written so far durable and
//! reports the file's length; for gzip it first closes the current member, so the committed prefix
//! is always a complete gzip stream and a resume can cut the file there and append a new member.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Seek, Write};
use std::path::PathBuf;

use flate2::write::GzEncoder;
use serde_json::Value;

use crate::Sink;
use crate::error::Error;
use crate::fs;
use crate::schema::Schema;
use crate::spec::{Compression, Format, SinkPosition, SinkSpec};

/// Where encoded bytes go.
enum Out {
    /// Straight into the file: plain text, or gzip between members.
    File(File),
    /// Into an open gzip member.
    Member(GzEncoder<File>),
    /// An earlier step failed and took the file with it.
    Broken,
}

/// A JSONL, CSV or JSON sink.
pub(crate) struct TextSink {
    table: String,
    path: PathBuf,
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
}

impl TextSink {
    pub(crate) fn open(spec: &SinkSpec, resume: Option<&SinkPosition>) -> Result<TextSink, Error> {
        fs::create_dir(&spec.dir)?;
        let path = spec.text_path();
        let (file, committed) = match resume {
            None => (fs::create_fresh(&path)?, SinkPosition::default()),
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
                (fs::open_cut(&path, pos.bytes)?, pos.clone())
            }
        };
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
        Ok(())
    }

    fn commit(&mut self) -> Result<Option<SinkPosition>, Error> {
        let file = match std::mem::replace(&mut self.out, Out::Broken) {
            Out::File(f) => f,
            // Closing the member writes its trailer: the file now ends in a complete gzip stream.
            Out::Member(g) => g.finish().map_err(|e| Error::io(&self.path, e))?,
            Out::Broken => return Err(Error::io(&self.path, broken())),
        };
        file.sync_data().map_err(|e| Error::io(&self.path, e))?;
        let bytes = (&file).stream_position().map_err(|e| Error::io(&self.path, e))?;
        self.out = Out::File(file);
        Ok(Some(SinkPosition { file_index: 0, bytes, rows: self.rows }))
    }

    fn finish(mut self: Box<Self>) -> Result<SinkPosition, Error> {
        if self.format == Format::Json {
            self.write_bytes(b"]\n")?;
        }
        // An empty file is not valid gzip: an empty table's output is one empty member.
        if let (Some(level), Out::File(file)) = (self.gzip, &self.out)
            && file.metadata().map_err(|e| Error::io(&self.path, e))?.len() == 0
            && let Out::File(file) = std::mem::replace(&mut self.out, Out::Broken)
        {
            self.out = Out::Member(GzEncoder::new(file, level));
        }
        let pos = self.commit()?.expect("text sinks always report a position");
        Ok(pos)
    }
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

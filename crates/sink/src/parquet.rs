//! The Parquet sink: one Parquet writer per part, encoding as the chunks arrive, and a journal of
//! Arrow IPC pieces that makes every commit durable.
//!
//! A Parquet file is readable only once its footer is written, so a part being filled is no
//! durable record of its rows. Each chunk (one record batch) therefore goes two ways. It is
//! encoded into the part's one [`ArrowWriter`], which cuts row groups of `row_group_rows` and
//! writes them to the hidden temp part `.{table}-NNNNN.parquet.tmp`, checksummed as they pass;
//! the writer holds at most one row group. And it is appended to the piece of the current commit,
//! `.{table}-NNNNN.parquet.MMMMM.piece` (piece MMMMM of part NNNNN): an Arrow IPC file, the
//! batch's buffers as they are in memory, which `commit` finishes and fsyncs with its directory
//! before it reports the position. The unit of durability is the chunk: after a crash only what
//! the last commit did not cover is refetched. The position's `open_part` counts the pieces of
//! the part being filled, their rows and ids.
//!
//! At the first commit at which the part holds `part_rows` rows, its writer is closed (the last
//! row group and the footer), the temp file fsynced, renamed to its final name and its directory
//! fsynced; the position then records it in `files`. The temp part itself is never synced before
//! that: the pieces are the durable copy of its rows.
//!
//! On resume the sink removes the temp part, parts at or past the position's index and every
//! piece the position does not name, then replays the named pieces in order into a fresh writer.
//! The writer's output is a function of the batches it is given, and a piece holds exactly the
//! batches the first run gave it, so a part finished after a crash and resume is byte-identical
//! to an uninterrupted run's. The pieces of a part just closed stay until the next commit or
//! `finish`: the orchestrator saves the position in between, and until it has, a crash resumes
//! from the previous position, whose pieces are still there.

use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::FileWriter;
use arrow_schema::{DataType, Field, SchemaRef, TimeUnit};
use iptvportal_catalog::ColumnType;
use iptvportal_catalog::time::parse_timestamp;
use parquet::arrow::ArrowWriter;
use parquet::basic::ZstdLevel;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use serde_json::Value;

use crate::Sink;
use crate::error::Error;
use crate::fs;
use crate::manifest::{FileRecord, Hashing, IdRange, OpenPart, crc_of_file};
use crate::schema::{ColumnSpec, Schema, fits};
use crate::spec::{ParquetCodec, PartName, SinkPosition, SinkSpec, part_name, piece_name};

/// A Parquet sink.
pub(crate) struct ParquetSink {
    /// Where the parts go and what they are named and hold.
    spec: SinkSpec,
    arrow_schema: SchemaRef,
    props: WriterProperties,
    /// The column whose ids the manifest records.
    id_index: Option<usize>,
    /// The writer of the part being filled: every row written to it, committed or not. Created
    /// with the part's first row (or at its replay).
    part: Option<Part>,
    /// The piece being written: the chunks since the last commit, if they hold any rows.
    piece: Option<Piece>,
    /// Without the journal ([`SinkSpec::journal`] off): the rows and ids written, which no piece
    /// counts.
    unjournaled: (u64, Option<IdRange>),
    /// The last committed position.
    committed: SinkPosition,
    /// The part closed at the last commit and its number of pieces, which are removed once the
    /// orchestrator has saved the position naming the part instead.
    closed: Option<(u32, u32)>,
}

/// The open part's writer, over its temp file.
struct Part {
    temp: PathBuf,
    writer: ArrowWriter<Hashing<BufWriter<File>>>,
}

/// The chunks written since the last commit, on their way to becoming a durable piece.
struct Piece {
    path: PathBuf,
    writer: FileWriter<BufWriter<File>>,
    rows: u64,
    ids: Option<IdRange>,
}

/// The Arrow schema a [`Schema`] is written with.
pub(crate) fn arrow_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .columns
        .iter()
        .map(|c| {
            let ty = match c.ty {
                ColumnType::Integer => DataType::Int64,
                ColumnType::Float => DataType::Float64,
                ColumnType::Boolean => DataType::Boolean,
                ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
                // Text and any type the catalog adds later: text is the lossless fallback.
                _ => DataType::Utf8,
            };
            Field::new(&c.name, ty, c.nullable)
        })
        .collect();
    Arc::new(arrow_schema::Schema::new(fields))
}

impl ParquetSink {
    pub(crate) fn open(
        spec: &SinkSpec,
        resume: Option<&SinkPosition>,
    ) -> Result<ParquetSink, Error> {
        fs::create_dir(&spec.dir)?;
        let props = writer_properties(spec)?;
        let mut committed = resume.cloned().unwrap_or_default();
        let index = committed.file_index;
        let open = committed.open_part.unwrap_or_default();
        let found = fs::scan(spec)?;
        let has = |name: PartName| found.iter().any(|f| f.part == Some(name));
        let elsewhere = spec.closed_parts_elsewhere;
        if let Some(missing) = (0..index).find(|&i| !elsewhere && !has(PartName::Closed(i))) {
            return Err(Error::ResumeMismatch {
                path: spec.part_path(missing),
                reason: format!(
                    "the part is missing but the checkpoint says {index} parts were closed"
                ),
            });
        }
        let missing = (0..open.pieces).find(|&piece| !has(PartName::Piece { part: index, piece }));
        // `finish` closed the open part and removed (some of) its pieces, and the orchestrator
        // never saved the final position: the part, if it holds exactly the pieces' rows, is
        // what they were written into, and stands for them.
        let adopted = match missing {
            Some(_) if has(PartName::Closed(index)) => {
                let path = spec.part_path(index);
                read_metadata(&path)
                    .ok()
                    .filter(|meta| meta.file_metadata().num_rows().cast_unsigned() == open.rows)
            }
            _ => None,
        };
        if let (Some(piece), None) = (missing, &adopted) {
            return Err(Error::ResumeMismatch {
                path: spec.dir.join(piece_name(&spec.table, index, piece)),
                reason: "the piece is missing but the checkpoint says it was committed".into(),
            });
        }
        // Everything past the position holds rows that will be refetched, and the temp part is
        // rebuilt from the pieces.
        let keep = |name: PartName| match name {
            PartName::Closed(i) => i < index || (i == index && adopted.is_some()),
            PartName::Temp(_) => false,
            PartName::Piece { part, piece } => {
                part == index && piece < open.pieces && adopted.is_none()
            }
        };
        let mut removed = false;
        for f in &found {
            if !f.part.is_some_and(keep) {
                removed |= fs::remove_if_exists(&f.path)?;
            }
        }
        if removed {
            fs::sync_dir(&spec.dir)?;
        }
        // A position saved before the manifest existed names no records: read them once.
        let id_index = spec.id_index();
        for i in u32::try_from(committed.files.len()).unwrap_or(u32::MAX)..index {
            let path = spec.part_path(i);
            committed.files.push(record_of(spec, i, &read_metadata(&path)?, id_index)?);
        }
        if let Some(meta) = adopted {
            let record = record_of(spec, index, &meta, id_index)?;
            committed.file_index += 1;
            committed.bytes += record.bytes;
            committed.files.push(record);
            committed.open_part = None;
        }
        let mut sink = ParquetSink {
            spec: spec.clone(),
            arrow_schema: arrow_schema(&spec.schema),
            props,
            id_index,
            part: None,
            piece: None,
            unjournaled: (0, None),
            committed,
            closed: None,
        };
        if sink.committed.open_part.is_some_and(|p| p.pieces > 0) {
            sink.replay()?;
        }
        Ok(sink)
    }

    /// Rebuilds the open part's writer from its committed pieces. On failure the new temp part
    /// is removed again and the pieces are left as they are.
    fn replay(&mut self) -> Result<(), Error> {
        let result = self.replay_pieces();
        if result.is_err()
            && let Some(part) = self.part.take()
        {
            drop(part.writer);
            // Best effort: the temp part is not the position's, and the next open removes it.
            let _ = std::fs::remove_file(&part.temp);
        }
        result
    }

    /// Writes every batch of the open part's pieces, in order and as it was written, into the
    /// part's writer, and checks that they hold the rows and ids the position says.
    fn replay_pieces(&mut self) -> Result<(), Error> {
        let open = self.committed.open_part.unwrap_or_default();
        let (mut rows, mut ids) = (0, None);
        let schema = Arc::clone(&self.arrow_schema);
        for piece in 0..open.pieces {
            let path = self.piece_path(self.committed.file_index, piece);
            read_piece(&path, &schema, &mut |batch| {
                rows += batch.num_rows() as u64;
                ids = IdRange::join(ids, self.ids_of(&batch));
                let part = self.part()?;
                part.writer.write(&batch).map_err(|e| Error::parquet(&part.temp, e))
            })?;
        }
        if (rows, ids) != (open.rows, open.ids) {
            return Err(Error::ResumeMismatch {
                path: self.piece_path(self.committed.file_index, open.pieces - 1),
                reason: format!(
                    "the pieces hold {rows} rows with ids {}, the checkpoint says {} with {}",
                    show_ids(ids),
                    open.rows,
                    show_ids(open.ids)
                ),
            });
        }
        Ok(())
    }

    /// The ids of `batch`'s id column, as [`IdRange::of_rows`] finds them in the rows it was
    /// built from (integer columns only: no other type holds ids).
    fn ids_of(&self, batch: &RecordBatch) -> Option<IdRange> {
        let column = batch.column(self.id_index?);
        let ids = column.as_primitive_opt::<Int64Type>()?;
        ids.iter().flatten().map(|id| IdRange { min: id, max: id }).reduce(IdRange::union)
    }

    fn rows_written(&self) -> u64 {
        self.committed.rows + self.piece.as_ref().map_or(0, |p| p.rows) + self.unjournaled.0
    }

    fn piece_path(&self, part: u32, piece: u32) -> PathBuf {
        self.spec.dir.join(piece_name(&self.spec.table, part, piece))
    }

    /// The open part's writer, creating its temp file on first use.
    fn part(&mut self) -> Result<&mut Part, Error> {
        if self.part.is_none() {
            let temp = self.spec.temp_part_path(self.committed.file_index);
            let out = Hashing::new(BufWriter::with_capacity(WRITE_BUFFER, create(&temp)?));
            let writer =
                ArrowWriter::try_new(out, Arc::clone(&self.arrow_schema), Some(self.props.clone()))
                    .map_err(|e| Error::parquet(&temp, e))?;
            self.part = Some(Part { temp, writer });
        }
        Ok(self.part.as_mut().expect("just created"))
    }

    /// The piece being written, creating its file on first use.
    fn piece(&mut self) -> Result<&mut Piece, Error> {
        if self.piece.is_none() {
            let pieces = self.committed.open_part.map_or(0, |p| p.pieces);
            let path = self.piece_path(self.committed.file_index, pieces);
            let out = BufWriter::with_capacity(WRITE_BUFFER, create(&path)?);
            let writer = FileWriter::try_new(out, &self.arrow_schema)
                .map_err(|e| Error::parquet(&path, e))?;
            self.piece = Some(Piece { path, writer, rows: 0, ids: None });
        }
        Ok(self.piece.as_mut().expect("just created"))
    }

    /// Removes the pieces of the part closed at the last commit; whether any were there.
    fn remove_closed(&mut self) -> Result<bool, Error> {
        let mut removed = false;
        if let Some((part, pieces)) = self.closed.take() {
            for piece in 0..pieces {
                removed |= fs::remove_if_exists(&self.piece_path(part, piece))?;
            }
        }
        Ok(removed)
    }

    /// Closes the open part's writer (an empty part when no row was written to it) and makes the
    /// part durable under its final name. Its pieces stay until [`Self::remove_closed`].
    fn close_part(&mut self) -> Result<(), Error> {
        let index = self.committed.file_index;
        let open = self.committed.open_part.unwrap_or_default();
        self.part()?;
        let Part { temp, writer } = self.part.take().expect("opened above");
        let out = writer.into_inner().map_err(|e| Error::parquet(&temp, e))?;
        let (crc32, bytes) = out.sum();
        let file = out.into_inner().into_inner().map_err(|e| Error::io(&temp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&temp, e))?;
        drop(file);
        let done = self.spec.part_path(index);
        std::fs::rename(&temp, &done).map_err(|e| Error::io(&done, e))?;
        fs::sync_dir(&self.spec.dir)?;
        let c = &mut self.committed;
        c.files.push(FileRecord {
            name: part_name(&self.spec.table, index),
            rows: open.rows,
            bytes,
            crc32,
            ids: open.ids,
        });
        c.file_index += 1;
        c.bytes += bytes;
        c.open_part = None;
        self.closed = (open.pieces > 0).then_some((index, open.pieces));
        Ok(())
    }

    /// One record batch of `rows`, checked against the schema column by column as it is built,
    /// so that a timestamp is parsed once. A row that does not fit is then reported by the
    /// schema's own check ([`Schema::validate`]), which names the row and the column.
    fn batch(&self, rows: &[Vec<Value>]) -> Result<RecordBatch, Error> {
        let columns = &self.spec.schema.columns;
        let built = if rows.iter().all(|r| r.len() == columns.len()) {
            columns.iter().enumerate().map(|(i, c)| column(c, rows, i)).collect()
        } else {
            None
        };
        let Some(columns) = built else {
            self.spec.schema.validate(&self.spec.table, rows, self.rows_written())?;
            // The check above and the one in `column` are the same test, value by value.
            return Err(Error::Config {
                message: format!("a chunk of {} did not fit its schema", self.spec.table),
            });
        };
        RecordBatch::try_new(Arc::clone(&self.arrow_schema), columns)
            .map_err(|e| Error::parquet(self.spec.temp_part_path(self.committed.file_index), e))
    }
}

/// Column `i` of `rows` as an Arrow array of `col`'s type, or `None` when a value does not fit
/// the column (the test of [`fits`]).
fn column(col: &ColumnSpec, rows: &[Vec<Value>], i: usize) -> Option<ArrayRef> {
    let n = rows.len();
    let values = rows.iter().map(|r| &r[i]);
    let array: ArrayRef = match col.ty {
        ColumnType::Timestamp => {
            // Parsed once here, where `fits` would parse it and the builder again.
            let mut b = TimestampMicrosecondBuilder::with_capacity(n);
            for v in values {
                match v {
                    Value::String(s) => b.append_value(parse_timestamp(s)?),
                    Value::Null if col.nullable => b.append_null(),
                    _ => return None,
                }
            }
            Arc::new(b.finish())
        }
        _ if !values.clone().all(|v| fits(col, v)) => return None,
        ColumnType::Integer => {
            let mut b = Int64Builder::with_capacity(n);
            values.for_each(|v| b.append_option(v.as_i64()));
            Arc::new(b.finish())
        }
        ColumnType::Float => {
            let mut b = Float64Builder::with_capacity(n);
            values.for_each(|v| b.append_option(v.as_f64()));
            Arc::new(b.finish())
        }
        ColumnType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(n);
            values.for_each(|v| b.append_option(v.as_bool()));
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::with_capacity(n, n * 16);
            values.for_each(|v| b.append_option(v.as_str()));
            Arc::new(b.finish())
        }
    };
    Some(array)
}

impl Sink for ParquetSink {
    fn write_chunk(&mut self, rows: &[Vec<Value>]) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = self.batch(rows)?;
        let ids = self.id_index.and_then(|i| IdRange::of_rows(rows, i));
        let part = self.part()?;
        part.writer.write(&batch).map_err(|e| Error::parquet(&part.temp, e))?;
        if !self.spec.journal {
            let (rows_so_far, ids_so_far) = self.unjournaled;
            self.unjournaled = (rows_so_far + rows.len() as u64, IdRange::join(ids_so_far, ids));
            return Ok(());
        }
        let piece = self.piece()?;
        piece.writer.write(&batch).map_err(|e| Error::parquet(&piece.path, e))?;
        piece.rows += rows.len() as u64;
        piece.ids = IdRange::join(piece.ids, ids);
        Ok(())
    }

    fn commit(&mut self) -> Result<Option<SinkPosition>, Error> {
        if !self.spec.journal {
            return Err(Error::Config {
                message: "a Parquet sink without its journal commits only at finish".into(),
            });
        }
        // The orchestrator saved the position naming the part closed at the last commit before
        // it got here: that part's pieces are no longer needed. Their removal need not be durable
        // (a resume removes pieces of closed parts), so it shares the directory sync below.
        self.remove_closed()?;
        let Some(Piece { path, writer, rows, ids }) = self.piece.take() else {
            return Ok(None);
        };
        let file = writer.into_inner().map_err(|e| Error::parquet(&path, e))?;
        let file = file.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&path, e))?;
        drop(file);
        fs::sync_dir(&self.spec.dir)?;
        let open = self.committed.open_part.unwrap_or_default();
        let open = OpenPart {
            pieces: open.pieces + 1,
            rows: open.rows + rows,
            ids: IdRange::join(open.ids, ids),
        };
        self.committed.rows += rows;
        self.committed.open_part = Some(open);
        // Parts close only here, at a chunk boundary, so the position of a closed part always
        // corresponds to a cursor the orchestrator can refetch from.
        if open.rows >= self.spec.parquet.part_rows {
            self.close_part()?;
        }
        Ok(Some(self.committed.clone()))
    }

    fn finish(mut self: Box<Self>) -> Result<SinkPosition, Error> {
        // Rows written since the last commit belong to the output too.
        if self.spec.journal {
            self.commit()?;
        } else if self.unjournaled.0 > 0 {
            let (rows, ids) = std::mem::take(&mut self.unjournaled);
            let open = self.committed.open_part.unwrap_or_default();
            self.committed.rows += rows;
            self.committed.open_part = Some(OpenPart {
                rows: open.rows + rows,
                ids: IdRange::join(open.ids, ids),
                ..open
            });
        }
        // An empty table still yields one part, so readers find the schema; otherwise only an
        // open part with rows is closed (no empty trailing part).
        if self.committed.open_part.is_some_and(|p| p.pieces > 0 || p.rows > 0)
            || self.committed.file_index == 0
        {
            self.close_part()?;
        }
        if self.remove_closed()? {
            fs::sync_dir(&self.spec.dir)?;
        }
        Ok(self.committed)
    }
}

/// Calls `each` with every batch of the piece at `path`, in the order they were written, as
/// batches of `schema`.
///
/// A piece is an Arrow IPC file. A piece written by the version before, which wrote each commit
/// as a small Parquet file, is read too, one row group per batch (its row groups were its
/// chunks), so that a dump interrupted by that version resumes.
fn read_piece(
    path: &Path,
    schema: &SchemaRef,
    each: &mut dyn FnMut(RecordBatch) -> Result<(), Error>,
) -> Result<(), Error> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::io::Read;

    let torn = |e: &dyn std::fmt::Display| Error::ResumeMismatch {
        path: path.to_owned(),
        reason: format!("the piece does not read back ({e})"),
    };
    let foreign = || Error::ResumeMismatch {
        path: path.to_owned(),
        reason: "the piece holds other columns than the checkpoint's schema".into(),
    };
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0; 4];
    let parquet = file.read_exact(&mut magic).is_ok() && &magic == b"PAR1";
    let mut batches: Box<dyn Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>> =
        if parquet {
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| torn(&e))?;
            if builder.schema().fields() != schema.fields() {
                return Err(foreign());
            }
            let groups = builder.metadata().row_groups().len();
            let sizes: Vec<usize> = builder
                .metadata()
                .row_groups()
                .iter()
                .map(|rg| usize::try_from(rg.num_rows()).unwrap_or(usize::MAX).max(1))
                .collect();
            let mut readers = Vec::with_capacity(groups);
            for (group, size) in sizes.into_iter().enumerate() {
                let file = File::open(path).map_err(|e| Error::io(path, e))?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| b.with_row_groups(vec![group]).with_batch_size(size).build())
                    .map_err(|e| torn(&e))?;
                readers.push(reader);
            }
            Box::new(readers.into_iter().flatten())
        } else {
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            let reader = FileReader::try_new_buffered(file, None).map_err(|e| torn(&e))?;
            if reader.schema().fields() != schema.fields() {
                return Err(foreign());
            }
            Box::new(reader)
        };
    batches.try_for_each(|batch| {
        let batch = batch.map_err(|e| torn(&e))?;
        let batch = RecordBatch::try_new(Arc::clone(schema), batch.columns().to_vec())
            .map_err(|e| torn(&e))?;
        each(batch)
    })
}

/// An id range for a message, `none` when there is none.
fn show_ids(ids: Option<IdRange>) -> String {
    ids.map_or_else(|| "none".into(), |r| r.to_string())
}

/// The writer properties of every part of `spec`.
fn writer_properties(spec: &SinkSpec) -> Result<WriterProperties, Error> {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(spec.parquet.row_group_rows))
        .set_dictionary_enabled(spec.parquet.dictionary);
    let props = match spec.parquet.codec {
        ParquetCodec::Uncompressed => {
            props.set_compression(parquet::basic::Compression::UNCOMPRESSED)
        }
        ParquetCodec::Zstd { level } => {
            let level =
                ZstdLevel::try_new(level).map_err(|e| Error::Config { message: e.to_string() })?;
            props.set_compression(parquet::basic::Compression::ZSTD(level))
        }
    };
    Ok(props.build())
}

/// The buffer between a writer and a piece or part file: the Parquet writer emits page headers,
/// pages and footer fields as separate small writes, and the IPC writer each buffer of a batch
/// (with its padding) as its own, one system call each without it. Measured (docs/benchmarks.md,
/// sixth session): 3,313 writes per 500,000-row dump became 553.
const WRITE_BUFFER: usize = 256 * 1024;

/// Creates `path` empty, truncating an old file. No directory sync: a piece or temp part becomes
/// durable (file, then directory) when it is complete.
fn create(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// The footer of the Parquet file at `path`.
fn read_metadata(path: &Path) -> Result<ParquetMetaData, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetMetaDataReader::new().parse_and_finish(&file).map_err(|e| Error::parquet(path, e))
}

/// The manifest record of closed part `index`, read from disk: its checksum, its footer's row
/// count, and the id range from the id column's statistics.
fn record_of(
    spec: &SinkSpec,
    index: u32,
    meta: &ParquetMetaData,
    id_index: Option<usize>,
) -> Result<FileRecord, Error> {
    let (crc32, bytes) = crc_of_file(&spec.part_path(index), 0, None)?;
    let ids = id_index.and_then(|column| {
        let range = |rg: &RowGroupMetaData| {
            let Statistics::Int64(s) = rg.columns().get(column)?.statistics()? else { return None };
            Some(IdRange { min: *s.min_opt()?, max: *s.max_opt()? })
        };
        meta.row_groups().iter().filter_map(range).reduce(IdRange::union)
    });
    let rows = meta.file_metadata().num_rows().cast_unsigned();
    Ok(FileRecord { name: part_name(&spec.table, index), rows, bytes, crc32, ids })
}

#[cfg(test)]
mod tests {
    use iptvportal_catalog::ColumnType;
    use serde_json::json;

    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::metadata::PageIndexPolicy;

    use super::*;
    use crate::schema::ColumnSpec;
    use crate::spec::{Compression, Format};

    /// Columns of every type; `id` is the id column.
    fn test_spec(dir: &Path, part_rows: u64, row_group_rows: usize) -> SinkSpec {
        let schema = Schema {
            columns: vec![
                ColumnSpec::new("id", ColumnType::Integer, false),
                ColumnSpec::new("name", ColumnType::Text, true),
                ColumnSpec::new("balance", ColumnType::Float, true),
                ColumnSpec::new("active", ColumnType::Boolean, true),
                ColumnSpec::new("created", ColumnType::Timestamp, true),
            ],
        };
        let mut spec = SinkSpec::new(dir, "t", Format::Parquet, Compression::None, schema)
            .with_id_column(Some("id"));
        spec.parquet.part_rows = part_rows;
        spec.parquet.row_group_rows = row_group_rows;
        spec
    }

    /// Rows `from..from + n` (ids ten apart), with a null in every column but `id` now and then.
    fn rows(from: i64, n: i64) -> Vec<Vec<Value>> {
        (from..from + n)
            .map(|i| {
                let maybe = |v: Value| if i % 7 == 3 { Value::Null } else { v };
                vec![
                    json!(i * 10),
                    maybe(json!(format!(
                        "name {i} {}",
                        "x".repeat(usize::try_from(i % 5).unwrap())
                    ))),
                    maybe(json!(i as f64 / 4.0)),
                    maybe(json!(i % 3 == 0)),
                    maybe(json!(format!("2024-01-{:02} 10:{:02}:00.5", 1 + i % 28, i % 60))),
                ]
            })
            .collect()
    }

    /// Chunks of the given sizes, rows numbered on from 0.
    fn chunks(sizes: &[i64]) -> Vec<Vec<Vec<Value>>> {
        let mut from = 0;
        sizes
            .iter()
            .map(|&n| {
                from += n;
                rows(from - n, n)
            })
            .collect()
    }

    /// A position with `files` and `open_part`.
    fn position(
        (file_index, bytes, rows): (u32, u64, u64),
        files: Vec<FileRecord>,
        open_part: Option<OpenPart>,
    ) -> SinkPosition {
        SinkPosition { files, open_part, ..SinkPosition::bare(file_index, bytes, rows) }
    }

    /// Every file in `dir` with its bytes, by name.
    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        out.sort();
        out
    }

    fn names(dir: &Path) -> Vec<String> {
        files(dir).into_iter().map(|(name, _)| name).collect()
    }

    /// Writes and commits every chunk, then finishes: the final position and the files.
    fn uninterrupted(
        spec: &SinkSpec,
        chunks: &[Vec<Vec<Value>>],
    ) -> (SinkPosition, Vec<(String, Vec<u8>)>) {
        uninterrupted_by(spec, chunks, 1)
    }

    /// Writes every chunk, committing after every `per_commit`, then finishes.
    fn uninterrupted_by(
        spec: &SinkSpec,
        chunks: &[Vec<Vec<Value>>],
        per_commit: usize,
    ) -> (SinkPosition, Vec<(String, Vec<u8>)>) {
        let mut sink = ParquetSink::open(spec, None).unwrap();
        for group in chunks.chunks(per_commit) {
            for chunk in group {
                sink.write_chunk(chunk).unwrap();
            }
            sink.commit().unwrap();
        }
        let end = Box::new(sink).finish().unwrap();
        (end, files(&spec.dir))
    }

    /// The batches of an Arrow IPC piece, in the order they were written.
    fn read_piece(path: &Path) -> Vec<RecordBatch> {
        let reader = FileReader::try_new(File::open(path).unwrap(), None).unwrap();
        reader.map(Result::unwrap).collect()
    }

    /// Every row of a Parquet file, read back with the arrow reader as one batch.
    fn read_back(path: &Path) -> (SchemaRef, RecordBatch) {
        let file = File::open(path).unwrap();
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(file).unwrap().with_batch_size(1 << 20);
        let schema = Arc::clone(reader.schema());
        // The reader fills a batch across row groups: one batch holds them all.
        let mut batches: Vec<_> = reader.build().unwrap().map(Result::unwrap).collect();
        assert!(batches.len() <= 1);
        let batch = batches.pop().unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&schema)));
        (schema, batch)
    }

    #[test]
    fn arrow_types_follow_the_catalog_types() {
        let schema = Schema {
            columns: vec![
                ColumnSpec::new("i", ColumnType::Integer, false),
                ColumnSpec::new("f", ColumnType::Float, true),
                ColumnSpec::new("b", ColumnType::Boolean, true),
                ColumnSpec::new("t", ColumnType::Text, true),
                ColumnSpec::new("ts", ColumnType::Timestamp, false),
            ],
        };
        let a = arrow_schema(&schema);
        let types: Vec<_> =
            a.fields().iter().map(|f| (f.data_type().clone(), f.is_nullable())).collect();
        assert_eq!(
            types,
            [
                (DataType::Int64, false),
                (DataType::Float64, true),
                (DataType::Boolean, true),
                (DataType::Utf8, true),
                (DataType::Timestamp(TimeUnit::Microsecond, None), false),
            ]
        );
    }

    #[test]
    fn every_commit_moves_the_position_and_a_part_closes_past_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let spec = test_spec(dir.path(), 3, 16_384);
        let piece = |part, piece| dir.path().join(piece_name("t", part, piece));
        let mut sink = ParquetSink::open(&spec, None).unwrap();
        sink.write_chunk(&rows(0, 2)).unwrap();
        let pos = sink.commit().unwrap().unwrap();
        let ids = |min, max| Some(IdRange { min, max });
        let open = |pieces, rows, ids| Some(OpenPart { pieces, rows, ids });
        assert_eq!(pos, SinkPosition { rows: 2, open_part: open(1, 2, ids(0, 10)), ..pos.clone() });
        assert_eq!((pos.file_index, pos.bytes, pos.files.len()), (0, 0, 0));
        assert_eq!(names(dir.path()), [".t-00000.parquet.00000.piece", ".t-00000.parquet.tmp"]);
        let journal = read_piece(&piece(0, 0));
        assert_eq!(journal.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), [2]);

        sink.write_chunk(&rows(2, 1)).unwrap();
        sink.write_chunk(&rows(3, 1)).unwrap();
        let pos = sink.commit().unwrap().unwrap();
        // A piece holds its commit's chunks as the batches they were written as.
        let journal = read_piece(&piece(0, 1));
        assert_eq!(journal.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), [1, 1]);
        let done = spec.part_path(0);
        let (crc32, bytes) = crc_of_file(&done, 0, None).unwrap();
        let record =
            FileRecord { name: "t-00000.parquet".into(), rows: 4, bytes, crc32, ids: ids(0, 30) };
        assert_eq!(pos, position((1, bytes, 4), vec![record.clone()], None));
        // The pieces outlive the commit that closed their part, until the next one.
        assert_eq!(
            names(dir.path()),
            [".t-00000.parquet.00000.piece", ".t-00000.parquet.00001.piece", "t-00000.parquet"]
        );
        assert_eq!(read_back(&done).1.num_rows(), 4);

        // Nothing written: no new position, but the closed part's pieces go.
        sink.write_chunk(&[]).unwrap();
        assert_eq!(sink.commit().unwrap(), None);
        assert_eq!(names(dir.path()), ["t-00000.parquet"]);

        sink.write_chunk(&rows(4, 1)).unwrap();
        let pos = sink.commit().unwrap().unwrap();
        assert_eq!(pos, position((1, bytes, 5), vec![record.clone()], open(1, 1, ids(40, 40))));
        assert_eq!(
            names(dir.path()),
            [".t-00001.parquet.00000.piece", ".t-00001.parquet.tmp", "t-00000.parquet"]
        );

        // Finish commits what is pending and closes the open part, then removes its pieces.
        sink.write_chunk(&rows(5, 1)).unwrap();
        let end = Box::new(sink).finish().unwrap();
        assert_eq!((end.file_index, end.rows, end.open_part), (2, 6, None));
        assert_eq!(end.files[0], record);
        assert_eq!((end.files[1].rows, end.files[1].ids), (2, ids(40, 50)));
        assert_eq!(end.bytes, bytes + end.files[1].bytes);
        assert_eq!(names(dir.path()), ["t-00000.parquet", "t-00001.parquet"]);
    }

    #[test]
    fn a_crash_at_any_commit_resumes_to_byte_identical_parts() {
        let sizes = [2, 3, 1, 4, 2, 5, 1, 3, 2];
        let chunks = chunks(&sizes);
        for (dictionary, per_commit) in [(false, 1), (true, 1), (false, 2)] {
            let base = tempfile::tempdir().unwrap();
            let mut spec = test_spec(&base.path().join("whole"), 5, 3);
            spec.parquet.dictionary = dictionary;
            let groups: Vec<_> = chunks.chunks(per_commit).collect();
            let expected = uninterrupted_by(&spec, &chunks, per_commit);
            assert_eq!(expected.0.file_index, 4);
            for crash_at in 0..=groups.len() {
                // `lag` 1: the crash came between a commit and the checkpoint that saves it.
                for lag in [0, 1] {
                    let mut spec = spec.clone();
                    spec.dir = base.path().join(format!("crash-{crash_at}-{lag}"));
                    let mut sink = ParquetSink::open(&spec, None).unwrap();
                    let mut positions = Vec::new();
                    for group in &groups[..crash_at] {
                        for chunk in *group {
                            sink.write_chunk(chunk).unwrap();
                        }
                        positions.push(sink.commit().unwrap().expect("every commit moves"));
                    }
                    // Written, not committed: in the temp part and an unfinished piece.
                    for chunk in groups.get(crash_at).copied().unwrap_or_default() {
                        sink.write_chunk(chunk).unwrap();
                    }
                    drop(sink);
                    let saved = positions.len().checked_sub(1 + lag);
                    let resume = saved.map(|i| &positions[i]);
                    let mut sink = ParquetSink::open(&spec, resume).unwrap();
                    let context = format!(
                        "dictionary {dictionary}, {per_commit} per commit, crash at {crash_at}, \
                         lag {lag}"
                    );
                    // The temp part is rebuilt from the pieces, or gone when there are none.
                    let replayed = resume.is_some_and(|p| p.open_rows() > 0);
                    let temp = spec.temp_part_path(resume.map_or(0, |p| p.file_index));
                    assert_eq!(temp.exists(), replayed, "{context}");
                    for group in &groups[saved.map_or(0, |i| i + 1)..] {
                        for chunk in *group {
                            sink.write_chunk(chunk).unwrap();
                        }
                        sink.commit().unwrap();
                    }
                    let end = Box::new(sink).finish().unwrap();
                    assert_eq!(end, expected.0, "{context}");
                    assert!(files(&spec.dir) == expected.1, "{context}: {:?}", names(&spec.dir));
                }
            }
        }
    }

    #[test]
    fn parts_do_not_depend_on_where_the_commits_fell_within_them() {
        // Commits after every chunk or after every two: the parts close at the same rows here
        // (after chunk 2 and 4), and the writer saw the same batches, so the bytes are the same.
        let chunks = chunks(&[2, 3, 1, 4, 2, 1]);
        let base = tempfile::tempdir().unwrap();
        let spec = |name| test_spec(&base.path().join(name), 5, 3);
        let one = uninterrupted_by(&spec("one"), &chunks, 1);
        let two = uninterrupted_by(&spec("two"), &chunks, 2);
        assert_eq!(one.0.file_index, 3);
        assert!(one.1 == two.1, "{:?} {:?}", names(&spec("one").dir), names(&spec("two").dir));
    }

    #[test]
    fn a_crash_in_finish_resumes_from_the_last_commit() {
        let chunks = chunks(&[2, 3, 1, 1]);
        let base = tempfile::tempdir().unwrap();
        let spec = test_spec(&base.path().join("whole"), 5, 3);
        let expected = uninterrupted(&spec, &chunks);
        // Finish closed part 1 (pieces 0 and 1), then removed none, one or both of its pieces.
        for kept in [vec![0, 1], vec![1], vec![]] {
            let mut spec = spec.clone();
            spec.dir = base.path().join(format!("kept-{kept:?}"));
            let mut sink = ParquetSink::open(&spec, None).unwrap();
            let mut last = None;
            for chunk in &chunks {
                sink.write_chunk(chunk).unwrap();
                last = sink.commit().unwrap();
            }
            let last = last.unwrap();
            assert_eq!(last.open_part.map(|p| p.pieces), Some(2));
            let pieces: Vec<_> = (0..2)
                .map(|i| {
                    let path = spec.dir.join(piece_name("t", 1, i));
                    let bytes = std::fs::read(&path).unwrap();
                    (path, bytes)
                })
                .collect();
            Box::new(sink).finish().unwrap();
            for &i in &kept {
                std::fs::write(&pieces[i].0, &pieces[i].1).unwrap();
            }
            let sink = ParquetSink::open(&spec, Some(&last)).unwrap();
            assert_eq!(Box::new(sink).finish().unwrap(), expected.0, "kept {kept:?}");
            assert!(files(&spec.dir) == expected.1, "kept {kept:?}: {:?}", names(&spec.dir));
        }
    }

    #[test]
    fn resume_removes_what_the_position_does_not_name_and_refuses_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let spec = test_spec(dir.path(), 4, 16_384);
        let mut sink = ParquetSink::open(&spec, None).unwrap();
        let mut positions = Vec::new();
        for chunk in chunks(&[2, 2, 2]) {
            sink.write_chunk(&chunk).unwrap();
            positions.push(sink.commit().unwrap().unwrap());
        }
        // Uncommitted: piece 1 of part 1.
        sink.write_chunk(&rows(6, 1)).unwrap();
        drop(sink);
        let pos = &positions[2];
        assert_eq!((pos.file_index, pos.open_part.unwrap().pieces), (1, 1));
        let stale = [
            ".t-00001.parquet.tmp",
            "t-00001.parquet",
            "t-00002.parquet",
            ".t-00000.parquet.00007.piece",
            ".t-00001.parquet.00002.piece",
            ".t-00002.parquet.00000.piece",
        ];
        let others = [".t-00000-00000.parquet.00000.piece", "u-00000.parquet", "t.jsonl"];
        for name in stale.iter().chain(&others) {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let sink = ParquetSink::open(&spec, Some(pos)).unwrap();
        assert_eq!(sink.committed, *pos);
        drop(sink);
        // The temp part of part 1 is there again: rebuilt from its piece, not the stale file.
        let temp = spec.temp_part_path(1);
        assert!(std::fs::read(&temp).unwrap().starts_with(b"PAR1"));
        let mut left =
            vec![".t-00001.parquet.00000.piece", ".t-00001.parquet.tmp", "t-00000.parquet"];
        left.extend(others);
        left.sort_unstable();
        assert_eq!(names(dir.path()), left);

        // A committed piece gone (and no part standing for it): the output is not the one saved.
        let gone = dir.path().join(".t-00001.parquet.00000.piece");
        std::fs::remove_file(&gone).unwrap();
        let Err(Error::ResumeMismatch { path, reason }) = ParquetSink::open(&spec, Some(pos))
        else {
            panic!("resumed without its piece")
        };
        assert_eq!(
            (path, reason.as_str()),
            (gone, "the piece is missing but the checkpoint says it was committed")
        );
        // A closed part gone.
        std::fs::remove_file(spec.part_path(0)).unwrap();
        let Err(Error::ResumeMismatch { path, .. }) = ParquetSink::open(&spec, Some(&positions[1]))
        else {
            panic!("resumed without its part")
        };
        assert_eq!(path, spec.part_path(0));
    }

    #[test]
    fn a_part_is_byte_for_byte_what_one_writer_makes_of_its_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let spec = test_spec(&dir.path().join("pieces"), 1_000, 3);
        let chunks = chunks(&[5, 1, 4]);
        let (end, _) = uninterrupted(&spec, &chunks);
        assert_eq!(end.file_index, 1);

        // One writer for the whole part, with nothing durable before it closes.
        let whole = dir.path().join("whole.parquet");
        let sink =
            ParquetSink::open(&test_spec(&dir.path().join("scratch"), 1_000, 3), None).unwrap();
        let mut writer = ArrowWriter::try_new(
            File::create(&whole).unwrap(),
            Arc::clone(&sink.arrow_schema),
            Some(sink.props.clone()),
        )
        .unwrap();
        for chunk in &chunks {
            writer.write(&sink.batch(chunk).unwrap()).unwrap();
        }
        writer.close().unwrap();

        let part = spec.part_path(0);
        assert!(std::fs::read(&part).unwrap() == std::fs::read(&whole).unwrap());
        let (schema, batch) = read_back(&part);
        assert_eq!(schema, sink.arrow_schema);
        assert_eq!(schema.field(4).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, None));
        assert_eq!(batch.num_rows(), 10);
        let meta = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .parse_and_finish(&File::open(&part).unwrap())
            .unwrap();
        assert!(
            meta.file_metadata()
                .key_value_metadata()
                .unwrap()
                .iter()
                .any(|kv| kv.key == "ARROW:schema")
        );
        // Row groups of `row_group_rows` across chunk boundaries, not one per chunk.
        let groups: Vec<_> = meta.row_groups().iter().map(RowGroupMetaData::num_rows).collect();
        assert_eq!(groups, [3, 3, 3, 1]);
        assert!(meta.page_index().is_some_and(|p| p.is_complete()));
    }

    #[test]
    fn resume_without_committed_pieces_leaves_no_temp_part() {
        let dir = tempfile::tempdir().unwrap();
        let spec = test_spec(dir.path(), 3, 16_384);
        let mut sink = ParquetSink::open(&spec, None).unwrap();
        sink.write_chunk(&rows(0, 3)).unwrap();
        let saved = sink.commit().unwrap().unwrap();
        assert_eq!((saved.file_index, saved.open_part), (1, None));
        // Part 1's first chunk committed, but the crash came before its checkpoint was saved:
        // its rows are in the temp part and a piece that the saved position does not name.
        sink.write_chunk(&rows(3, 2)).unwrap();
        assert_eq!(sink.commit().unwrap().unwrap().open_rows(), 2);
        drop(sink);
        assert!(spec.temp_part_path(1).exists());
        let sink = ParquetSink::open(&spec, Some(&saved)).unwrap();
        assert!(sink.part.is_none());
        assert_eq!(names(dir.path()), ["t-00000.parquet"]);
    }

    #[test]
    fn a_torn_or_foreign_piece_is_refused_and_nothing_named_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let spec = test_spec(dir.path(), 100, 16_384);
        let mut sink = ParquetSink::open(&spec, None).unwrap();
        let mut last = None;
        for chunk in chunks(&[3, 2, 4]) {
            sink.write_chunk(&chunk).unwrap();
            last = sink.commit().unwrap();
        }
        drop(sink);
        let pos = last.unwrap();
        assert_eq!(pos.open_part.map(|p| (p.pieces, p.rows)), Some((3, 9)));
        let piece = |i| dir.path().join(piece_name("t", 0, i));
        let named = [
            ".t-00000.parquet.00000.piece",
            ".t-00000.parquet.00001.piece",
            ".t-00000.parquet.00002.piece",
        ];
        let whole = std::fs::read(piece(1)).unwrap();
        let first = std::fs::read(piece(0)).unwrap();
        let refused = |reason: &str| {
            let Err(Error::ResumeMismatch { path, reason: found }) =
                ParquetSink::open(&spec, Some(&pos))
            else {
                panic!("resumed over a damaged piece")
            };
            assert!(found.starts_with(reason), "{found}");
            // The pieces stay for a later look; the temp part made for the replay is gone.
            assert_eq!(names(dir.path()), named);
            path
        };
        // Torn: the end of the file (its footer) is missing.
        std::fs::write(piece(1), &whole[..whole.len() - 20]).unwrap();
        assert_eq!(refused("the piece does not read back"), piece(1));
        // Not an IPC file at all.
        std::fs::write(piece(1), b"PAR1").unwrap();
        assert_eq!(refused("the piece does not read back"), piece(1));
        // A complete piece, but not the one committed there: the rows and ids do not add up.
        std::fs::write(piece(1), &first).unwrap();
        assert_eq!(
            refused("the pieces hold 10 rows with ids 0..=80, the checkpoint says 9 with 0..=80"),
            piece(2)
        );
        // Put back, it resumes and finishes as if nothing happened.
        std::fs::write(piece(1), &whole).unwrap();
        let sink = ParquetSink::open(&spec, Some(&pos)).unwrap();
        let end = Box::new(sink).finish().unwrap();
        assert_eq!(
            end,
            uninterrupted(&test_spec(&dir.path().join("whole"), 100, 16_384), &chunks(&[3, 2, 4]))
                .0
        );
    }

    #[test]
    fn pieces_of_the_version_before_in_parquet_still_resume() {
        let sizes = [3, 2, 4];
        let base = tempfile::tempdir().unwrap();
        let spec = test_spec(&base.path().join("t"), 100, 16_384);
        let mut sink = ParquetSink::open(&spec, None).unwrap();
        let mut last = None;
        for chunk in chunks(&sizes) {
            sink.write_chunk(&chunk).unwrap();
            last = sink.commit().unwrap();
        }
        // The version before wrote each commit's chunk as a Parquet file of its own.
        for (i, chunk) in chunks(&sizes).iter().enumerate() {
            let path = spec.dir.join(piece_name("t", 0, u32::try_from(i).unwrap()));
            let mut writer = ArrowWriter::try_new(
                File::create(&path).unwrap(),
                Arc::clone(&sink.arrow_schema),
                Some(sink.props.clone()),
            )
            .unwrap();
            writer.write(&sink.batch(chunk).unwrap()).unwrap();
            writer.close().unwrap();
        }
        drop(sink);
        let sink = ParquetSink::open(&spec, last.as_ref()).unwrap();
        let end = Box::new(sink).finish().unwrap();
        let expected =
            uninterrupted(&test_spec(&base.path().join("u"), 100, 16_384), &chunks(&sizes));
        assert_eq!(end, expected.0);
        assert!(files(&spec.dir) == expected.1);
    }

    #[test]
    fn an_empty_table_yields_one_empty_part() {
        let dir = tempfile::tempdir().unwrap();
        let spec = test_spec(dir.path(), 3, 16_384);
        let mut sink = ParquetSink::open(&spec, None).unwrap();
        sink.write_chunk(&[]).unwrap();
        assert_eq!(sink.commit().unwrap(), None);
        let end = Box::new(sink).finish().unwrap();
        let (crc32, bytes) = crc_of_file(&spec.part_path(0), 0, None).unwrap();
        let record =
            FileRecord { name: "t-00000.parquet".into(), rows: 0, bytes, crc32, ids: None };
        assert_eq!(end, position((1, bytes, 0), vec![record], None));
        assert_eq!(names(dir.path()), ["t-00000.parquet"]);
        let (schema, batch) = read_back(&spec.part_path(0));
        assert_eq!((schema.fields().len(), batch.num_rows()), (5, 0));
    }

    #[test]
    fn a_position_without_records_gets_them_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let spec = test_spec(dir.path(), 4, 2);
        let chunks = chunks(&[3, 2, 4, 1, 2]);
        let mut sink = ParquetSink::open(&spec, None).unwrap();
        let mut positions = Vec::new();
        for chunk in &chunks[..3] {
            sink.write_chunk(chunk).unwrap();
            positions.push(sink.commit().unwrap().unwrap());
        }
        drop(sink);
        let pos = positions.pop().unwrap();
        assert_eq!((pos.file_index, pos.files.len(), pos.open_part), (2, 2, None));
        // Saved by a version before the manifest: counts only.
        let old = SinkPosition::bare(pos.file_index, pos.bytes, pos.rows);
        let mut sink = ParquetSink::open(&spec, Some(&old)).unwrap();
        assert_eq!(sink.committed, pos, "the records as the parts' own commits made them");
        for chunk in &chunks[3..] {
            sink.write_chunk(chunk).unwrap();
            sink.commit().unwrap();
        }
        let end = Box::new(sink).finish().unwrap();
        assert_eq!(end, uninterrupted(&spec, &chunks).0);
    }

    /// Times 300,000 terminal-like rows in 5,000-row chunks through one writer (the old sink, no
    /// durability before the part closes) and through the sink (the same writer plus an IPC piece
    /// fsynced per commit), and a resume that replays every piece of the part.
    /// `cargo test --release -p iptvportal-sink --lib -- --ignored --nocapture cost`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn cost_of_the_journal_against_one_writer() {
        let schema = Schema {
            columns: vec![
                ColumnSpec::new("id", ColumnType::Integer, false),
                ColumnSpec::new("subscriber_id", ColumnType::Integer, true),
                ColumnSpec::new("mac_addr", ColumnType::Text, false),
                ColumnSpec::new("inet_addr", ColumnType::Text, true),
                ColumnSpec::new("registered", ColumnType::Timestamp, false),
                ColumnSpec::new("last_seen", ColumnType::Timestamp, true),
            ],
        };
        let stamp = |i: i64| {
            format!(
                "2023-{:02}-{:02} {:02}:{:02}:{:02}",
                1 + i % 12,
                1 + i % 28,
                i % 24,
                i % 60,
                i * 7 % 60
            )
        };
        let chunks: Vec<Vec<Vec<Value>>> = (0..60)
            .map(|c| {
                (c * 5_000..(c + 1) * 5_000)
                    .map(|i: i64| {
                        vec![
                            json!(i + 1),
                            if i % 10 == 0 { Value::Null } else { json!(i * 37 % 50_000) },
                            json!(format!(
                                "00:1a:2b:{:02x}:{:02x}:{:02x}",
                                i >> 16 & 255,
                                i >> 8 & 255,
                                i & 255
                            )),
                            if i % 4 == 0 {
                                Value::Null
                            } else {
                                json!(format!("10.{}.{}.{}", i % 200, i % 250, i % 253))
                            },
                            json!(stamp(i)),
                            if i % 3 == 0 { Value::Null } else { json!(stamp(i * 13)) },
                        ]
                    })
                    .collect()
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let spec =
            SinkSpec::new(dir.path(), "terminal", Format::Parquet, Compression::None, schema)
                .with_id_column(Some("id"));
        // The old sink: one writer for the part, synced once when it closes.
        let one_writer = |row_group_rows| {
            let mut spec = spec.clone();
            spec.parquet.row_group_rows = row_group_rows;
            let started = std::time::Instant::now();
            let sink = ParquetSink::open(&spec, None).unwrap();
            let path = dir.path().join("one-writer.parquet");
            let file = File::create(&path).unwrap();
            let mut writer = ArrowWriter::try_new(
                file,
                Arc::clone(&sink.arrow_schema),
                Some(sink.props.clone()),
            )
            .unwrap();
            for chunk in &chunks {
                sink.spec.schema.validate("terminal", chunk, 0).unwrap();
                writer.write(&sink.batch(chunk).unwrap()).unwrap();
            }
            writer.into_inner().unwrap().sync_all().unwrap();
            (started.elapsed(), std::fs::metadata(&path).unwrap().len())
        };
        for round in 0..5 {
            let (one, one_bytes) = one_writer(spec.parquet.row_group_rows);
            let started = std::time::Instant::now();
            let mut sink = ParquetSink::open(&spec, None).unwrap();
            let (mut commits, mut journal) = (std::time::Duration::ZERO, 0);
            let mut last = None;
            for chunk in &chunks {
                sink.write_chunk(chunk).unwrap();
                let at = std::time::Instant::now();
                let piece = sink.piece.as_ref().unwrap().path.clone();
                last = sink.commit().unwrap();
                commits += at.elapsed();
                journal += std::fs::metadata(piece).unwrap().len();
            }
            drop(sink);
            let at = std::time::Instant::now();
            let sink = ParquetSink::open(&spec, last.as_ref()).unwrap();
            let replay = at.elapsed();
            let at = std::time::Instant::now();
            let end = Box::new(sink).finish().unwrap();
            let finish = at.elapsed();
            let total = started.elapsed().saturating_sub(replay);
            println!(
                "round {round}: one writer {one:.2?} ({one_bytes} bytes); the sink {total:.2?} \
                 (commits {commits:.2?}, finish {finish:.2?}; {} bytes, journal {journal} bytes); \
                 a resume replaying all {} pieces {replay:.2?}",
                end.bytes,
                chunks.len()
            );
        }
    }
}

//! The Parquet sink: typed record batches, durable at every commit as a small Parquet file of
//! their own (a piece), and assembled into part files without decoding.
//!
//! A Parquet file is readable only once its footer is written, so each commit writes one: the
//! chunks written since the last commit (one record batch each, in row groups of at most
//! `row_group_rows`) become a complete Parquet file under the hidden name
//! `.{table}-NNNNN.parquet.MMMMM.piece` (piece MMMMM of part NNNNN), fsynced with its directory
//! before `commit` reports the position. The unit of durability is the chunk: after a crash only
//! what the last commit did not cover is refetched. The position's `open_part` counts the pieces
//! of the part being filled, their rows and ids. A piece writer holds only its own chunks.
//!
//! At the first commit at which those pieces hold `part_rows` rows, the part is assembled from
//! them the way the parquet crate's `parquet-concat` does: each piece's row groups are copied as
//! they are, column chunk by column chunk, bytes streamed from piece to part with no decoding, and
//! the pieces' key-value metadata (the Arrow schema) goes into the part's footer. The part is
//! written under a temp name, checksummed as it is written, fsynced, renamed to its final name and
//! its directory fsynced; the position then records it in `files`. Assembly is a function of the
//! pieces' bytes, so a part assembled after a crash and resume is byte-identical to an
//! uninterrupted run's.
//!
//! The pieces of a part just assembled stay until the next commit or `finish`: the orchestrator
//! saves the position in between, and until it has, a crash resumes from the previous position,
//! whose pieces are still there. On resume the sink removes temp parts, parts at or past the
//! position's index and every piece the position does not name.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, SchemaRef, TimeUnit};
use iptvportal_catalog::ColumnType;
use iptvportal_catalog::time::parse_timestamp;
use parquet::arrow::ArrowWriter;
use parquet::basic::ZstdLevel;
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{
    PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData,
};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use parquet::file::writer::SerializedFileWriter;
use serde_json::Value;

use crate::Sink;
use crate::error::Error;
use crate::fs;
use crate::manifest::{FileRecord, Hashing, IdRange, OpenPart, crc_of_file};
use crate::schema::Schema;
use crate::spec::{ParquetCodec, PartName, SinkPosition, SinkSpec, part_name, piece_name};

/// A Parquet sink.
pub(crate) struct ParquetSink {
    /// Where the parts go and what they are named and hold.
    spec: SinkSpec,
    arrow_schema: SchemaRef,
    props: WriterProperties,
    /// The column whose ids the manifest records.
    id_index: Option<usize>,
    /// The piece being written: the chunks since the last commit, if they hold any rows.
    piece: Option<Piece>,
    /// The last committed position.
    committed: SinkPosition,
    /// The part assembled at the last commit and its number of pieces, which are removed once
    /// the orchestrator has saved the position naming the part instead.
    assembled: Option<(u32, u32)>,
}

/// The chunks written since the last commit, on their way to becoming a piece.
struct Piece {
    path: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
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
        if let Some(missing) = (0..index).find(|&i| !has(PartName::Closed(i))) {
            return Err(Error::ResumeMismatch {
                path: spec.part_path(missing),
                reason: format!(
                    "the part is missing but the checkpoint says {index} parts were closed"
                ),
            });
        }
        let missing = (0..open.pieces).find(|&piece| !has(PartName::Piece { part: index, piece }));
        // `finish` assembled the open part and removed (some of) its pieces, and the orchestrator
        // never saved the final position: the part, if it holds exactly the pieces' rows, is
        // what they were assembled into, and stands for them.
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
        // Everything past the position holds rows that will be refetched.
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
        Ok(ParquetSink {
            spec: spec.clone(),
            arrow_schema: arrow_schema(&spec.schema),
            props,
            id_index,
            piece: None,
            committed,
            assembled: None,
        })
    }

    fn rows_written(&self) -> u64 {
        self.committed.rows + self.piece.as_ref().map_or(0, |p| p.rows)
    }

    fn piece_path(&self, part: u32, piece: u32) -> PathBuf {
        self.spec.dir.join(piece_name(&self.spec.table, part, piece))
    }

    /// The piece being written, creating its file on first use.
    fn piece(&mut self) -> Result<&mut Piece, Error> {
        if self.piece.is_none() {
            let pieces = self.committed.open_part.map_or(0, |p| p.pieces);
            let path = self.piece_path(self.committed.file_index, pieces);
            let writer = ArrowWriter::try_new(
                BufWriter::with_capacity(WRITE_BUFFER, create(&path)?),
                Arc::clone(&self.arrow_schema),
                Some(self.props.clone()),
            )
            .map_err(|e| Error::parquet(&path, e))?;
            self.piece = Some(Piece { path, writer, rows: 0, ids: None });
        }
        Ok(self.piece.as_mut().expect("just created"))
    }

    /// Removes the pieces of the part assembled at the last commit; whether any were there.
    fn remove_assembled(&mut self) -> Result<bool, Error> {
        let mut removed = false;
        if let Some((part, pieces)) = self.assembled.take() {
            for piece in 0..pieces {
                removed |= fs::remove_if_exists(&self.piece_path(part, piece))?;
            }
        }
        Ok(removed)
    }

    /// Assembles the open part from its committed pieces (an empty part when it has none) and
    /// makes it durable under its final name. Its pieces stay until [`Self::remove_assembled`].
    fn close_part(&mut self) -> Result<(), Error> {
        let index = self.committed.file_index;
        let open = self.committed.open_part.unwrap_or_default();
        let temp = self.spec.temp_part_path(index);
        let out = Hashing::new(BufWriter::with_capacity(WRITE_BUFFER, create(&temp)?));
        let out = if open.pieces == 0 {
            ArrowWriter::try_new(out, Arc::clone(&self.arrow_schema), Some(self.props.clone()))
                .and_then(ArrowWriter::into_inner)
                .map_err(|e| Error::parquet(&temp, e))?
        } else {
            self.concat(index, open.pieces, out, &temp)?
        };
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
        self.assembled = (open.pieces > 0).then_some((index, open.pieces));
        Ok(())
    }

    /// Writes part `index` from its `pieces` pieces into `out`: their row groups in order, each
    /// column chunk copied as it is, and the first piece's schema and key-value metadata.
    fn concat<W: Write + Send>(
        &self,
        index: u32,
        pieces: u32,
        out: W,
        temp: &Path,
    ) -> Result<W, Error> {
        let part_error = |e| Error::parquet(temp, e);
        let piece = |piece| -> Result<(File, ParquetMetaData), Error> {
            let path = self.piece_path(index, piece);
            let input = File::open(&path).map_err(|e| Error::io(&path, e))?;
            let meta = ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Optional)
                .parse_and_finish(&input)
                .map_err(|e| Error::parquet(&path, e))?;
            Ok((input, meta))
        };
        let first = piece(0)?;
        let file = first.1.file_metadata();
        let root = file.schema_descr().root_schema_ptr();
        let mut writer = SerializedFileWriter::new(out, root, Arc::new(self.props.clone()))
            .map_err(part_error)?;
        for kv in file.key_value_metadata().into_iter().flatten() {
            writer.append_key_value_metadata(kv.clone());
        }
        copy_row_groups(&mut writer, &first.0, &first.1).map_err(part_error)?;
        drop(first);
        for i in 1..pieces {
            let (input, meta) = piece(i)?;
            copy_row_groups(&mut writer, &input, &meta).map_err(part_error)?;
        }
        writer.into_inner().map_err(part_error)
    }

    /// One record batch holding validated rows.
    fn batch(&self, rows: &[Vec<Value>]) -> Result<RecordBatch, Error> {
        let n = rows.len();
        let columns: Vec<ArrayRef> = self
            .spec
            .schema
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| -> ArrayRef {
                let values = rows.iter().map(|r| &r[i]);
                match c.ty {
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
                    ColumnType::Timestamp => {
                        let mut b = TimestampMicrosecondBuilder::with_capacity(n);
                        values.for_each(|v| b.append_option(v.as_str().and_then(parse_timestamp)));
                        Arc::new(b.finish())
                    }
                    _ => {
                        let mut b = StringBuilder::with_capacity(n, n * 16);
                        values.for_each(|v| b.append_option(v.as_str()));
                        Arc::new(b.finish())
                    }
                }
            })
            .collect();
        let pieces = self.committed.open_part.map_or(0, |p| p.pieces);
        RecordBatch::try_new(Arc::clone(&self.arrow_schema), columns)
            .map_err(|e| Error::parquet(self.piece_path(self.committed.file_index, pieces), e))
    }
}

impl Sink for ParquetSink {
    fn write_chunk(&mut self, rows: &[Vec<Value>]) -> Result<(), Error> {
        self.spec.schema.validate(&self.spec.table, rows, self.rows_written())?;
        if rows.is_empty() {
            return Ok(());
        }
        let batch = self.batch(rows)?;
        let ids = self.id_index.and_then(|i| IdRange::of_rows(rows, i));
        let piece = self.piece()?;
        piece.writer.write(&batch).map_err(|e| Error::parquet(&piece.path, e))?;
        piece.rows += rows.len() as u64;
        piece.ids = IdRange::join(piece.ids, ids);
        Ok(())
    }

    fn commit(&mut self) -> Result<Option<SinkPosition>, Error> {
        // The orchestrator saved the position naming the part assembled at the last commit before
        // it got here: that part's pieces are no longer needed. Their removal need not be durable
        // (a resume removes pieces of closed parts), so it shares the directory sync below.
        self.remove_assembled()?;
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
        self.commit()?;
        // An empty table still yields one part, so readers find the schema; otherwise only an
        // open part with pieces is assembled (no empty trailing part).
        if self.committed.open_part.is_some_and(|p| p.pieces > 0) || self.committed.file_index == 0
        {
            self.close_part()?;
        }
        if self.remove_assembled()? {
            fs::sync_dir(&self.spec.dir)?;
        }
        Ok(self.committed)
    }
}

/// Appends the row groups of the piece `input` (whose footer is `meta`) to `writer`, each column
/// chunk's bytes copied as they are, with its statistics and page index.
fn copy_row_groups<W: Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    input: &File,
    meta: &ParquetMetaData,
) -> parquet::errors::Result<()> {
    for (rg_index, rg) in meta.row_groups().iter().enumerate() {
        let page_index = meta.page_index_for_row_group(rg_index);
        let mut out = writer.next_row_group()?;
        for (col_index, column) in rg.columns().iter().enumerate() {
            let close = ColumnCloseResult {
                bytes_written: column.compressed_size().cast_unsigned(),
                rows_written: rg.num_rows().cast_unsigned(),
                metadata: column.clone(),
                bloom_filter: None,
                column_index: page_index.column_index(col_index).cloned(),
                offset_index: page_index.offset_index(col_index).cloned(),
            };
            out.append_column(input, close)?;
        }
        out.close()?;
    }
    Ok(())
}

/// The writer properties of every piece and part of `spec`.
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

/// The buffer between the Parquet writer and a piece or part file: the writer emits page
/// headers, pages and footer fields as separate small writes (about 33 per 5,000-row piece), one
/// system call each without it. Measured (docs/benchmarks.md, sixth session): 3,313 writes per
/// 500,000-row dump became 553, and the dump's time over the fifth session's went from +22 % to
/// +11 % at latency 0.
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
        let mut sink = ParquetSink::open(spec, None).unwrap();
        for chunk in chunks {
            sink.write_chunk(chunk).unwrap();
            sink.commit().unwrap();
        }
        let end = Box::new(sink).finish().unwrap();
        (end, files(&spec.dir))
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
        assert_eq!(names(dir.path()), [".t-00000.parquet.00000.piece"]);
        assert_eq!(read_back(&piece(0, 0)).1.num_rows(), 2, "a piece is a complete file");

        sink.write_chunk(&rows(2, 1)).unwrap();
        sink.write_chunk(&rows(3, 1)).unwrap();
        let pos = sink.commit().unwrap().unwrap();
        let done = spec.part_path(0);
        let (crc32, bytes) = crc_of_file(&done, 0, None).unwrap();
        let record =
            FileRecord { name: "t-00000.parquet".into(), rows: 4, bytes, crc32, ids: ids(0, 30) };
        assert_eq!(pos, position((1, bytes, 4), vec![record.clone()], None));
        // The pieces outlive the commit that assembled them, until the next one.
        assert_eq!(
            names(dir.path()),
            [".t-00000.parquet.00000.piece", ".t-00000.parquet.00001.piece", "t-00000.parquet"]
        );
        assert_eq!(read_back(&done).1.num_rows(), 4);

        // Nothing written: no new position, but the assembled part's pieces go.
        sink.write_chunk(&[]).unwrap();
        assert_eq!(sink.commit().unwrap(), None);
        assert_eq!(names(dir.path()), ["t-00000.parquet"]);

        sink.write_chunk(&rows(4, 1)).unwrap();
        let pos = sink.commit().unwrap().unwrap();
        assert_eq!(pos, position((1, bytes, 5), vec![record.clone()], open(1, 1, ids(40, 40))));
        assert_eq!(names(dir.path()), [".t-00001.parquet.00000.piece", "t-00000.parquet"]);

        // Finish commits what is pending and assembles the open part, then removes its pieces.
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
        for dictionary in [false, true] {
            let base = tempfile::tempdir().unwrap();
            let mut spec = test_spec(&base.path().join("whole"), 5, 3);
            spec.parquet.dictionary = dictionary;
            let expected = uninterrupted(&spec, &chunks);
            assert_eq!(expected.0.file_index, 4);
            for crash_at in 0..=chunks.len() {
                // `lag` 1: the crash came between a commit and the checkpoint that saves it.
                for lag in [0, 1] {
                    let mut spec = spec.clone();
                    spec.dir = base.path().join(format!("crash-{crash_at}-{lag}"));
                    let mut sink = ParquetSink::open(&spec, None).unwrap();
                    let mut positions = Vec::new();
                    for chunk in &chunks[..crash_at] {
                        sink.write_chunk(chunk).unwrap();
                        positions.push(sink.commit().unwrap().expect("every commit moves"));
                    }
                    if let Some(chunk) = chunks.get(crash_at) {
                        sink.write_chunk(chunk).unwrap();
                    }
                    drop(sink);
                    let saved = positions.len().checked_sub(1 + lag);
                    let resume = saved.map(|i| &positions[i]);
                    let mut sink = ParquetSink::open(&spec, resume).unwrap();
                    for chunk in &chunks[saved.map_or(0, |i| i + 1)..] {
                        sink.write_chunk(chunk).unwrap();
                        sink.commit().unwrap();
                    }
                    let end = Box::new(sink).finish().unwrap();
                    let context =
                        format!("dictionary {dictionary}, crash at {crash_at}, lag {lag}");
                    assert_eq!(end, expected.0, "{context}");
                    assert!(files(&spec.dir) == expected.1, "{context}: {:?}", names(&spec.dir));
                }
            }
        }
    }

    #[test]
    fn a_crash_in_finish_resumes_from_the_last_commit() {
        let chunks = chunks(&[2, 3, 1, 1]);
        let base = tempfile::tempdir().unwrap();
        let spec = test_spec(&base.path().join("whole"), 5, 3);
        let expected = uninterrupted(&spec, &chunks);
        // Finish assembled part 1 from pieces 0 and 1, then removed none, one or both of them.
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
        let mut left = vec![".t-00001.parquet.00000.piece", "t-00000.parquet"];
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
    fn an_assembled_part_reads_back_like_one_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let spec = test_spec(&dir.path().join("pieces"), 1_000, 3);
        let chunks = chunks(&[5, 1, 4]);
        let (end, _) = uninterrupted(&spec, &chunks);
        assert_eq!(end.file_index, 1);

        // The old way: one writer for the whole part.
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
        let (schema, batch) = read_back(&part);
        assert_eq!(read_back(&whole), (Arc::clone(&schema), batch.clone()));
        assert_eq!(schema, sink.arrow_schema);
        assert_eq!(schema.field(4).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, None));
        assert_eq!(batch.num_rows(), 10);

        let meta = |path: &Path| {
            ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Optional)
                .parse_and_finish(&File::open(path).unwrap())
                .unwrap()
        };
        let (part, whole) = (meta(&part), meta(&whole));
        let kv = |m: &ParquetMetaData| m.file_metadata().key_value_metadata().cloned();
        assert_eq!(kv(&part), kv(&whole));
        assert!(kv(&part).unwrap().iter().any(|kv| kv.key == "ARROW:schema"));
        // Each piece's row groups as they were (at most `row_group_rows`), with their page index.
        let groups: Vec<_> = part.row_groups().iter().map(RowGroupMetaData::num_rows).collect();
        assert_eq!(groups, [3, 2, 1, 3, 1]);
        assert!(part.page_index().is_some_and(|p| p.is_complete()));
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
    /// durability before the part closes) and through the sink (a piece per commit, then assembly
    /// at finish). `cargo test --release -p iptvportal-sink --lib -- --ignored --nocapture cost`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn cost_of_pieces_against_one_writer() {
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
            let (small, small_bytes) = one_writer(5_000);
            let started = std::time::Instant::now();
            let mut sink = ParquetSink::open(&spec, None).unwrap();
            let mut commits = std::time::Duration::ZERO;
            for chunk in &chunks {
                sink.write_chunk(chunk).unwrap();
                let at = std::time::Instant::now();
                sink.commit().unwrap();
                commits += at.elapsed();
            }
            let pieces = sink.committed.open_part.unwrap().pieces;
            let at = std::time::Instant::now();
            sink.concat(0, pieces, std::io::sink(), Path::new("scratch")).unwrap();
            let concat = at.elapsed();
            let at = std::time::Instant::now();
            let end = Box::new(sink).finish().unwrap();
            let finish = at.elapsed();
            let total = started.elapsed().saturating_sub(concat);
            println!(
                "round {round}: one writer {one:.2?} ({one_bytes} bytes; with 5,000-row groups \
                 {small:.2?}, {small_bytes} bytes); pieces {total:.2?} (commits {commits:.2?}, \
                 finish {finish:.2?} of which assembly alone {concat:.2?}; {} bytes)",
                end.bytes
            );
        }
    }
}

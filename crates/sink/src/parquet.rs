//! The Parquet sink: typed record batches written to part files that become durable when closed.
//!
//! A Parquet file is only readable once its footer is written, so the unit of durability is the
//! part file, not the chunk. Each chunk becomes one record batch; the arrow writer groups batches
//! into row groups of `row_group_rows` (the only rows it holds in memory). A part is written under
//! a temp name and, at the first commit at which it holds `part_rows` rows, closed: footer, fsync,
//! rename to its final name, directory fsync. Only then does `commit` report a new position. After
//! a crash everything since the last closed part (the temp file) is deleted and refetched.

use std::fs::File;
use std::path::PathBuf;
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
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::Sink;
use crate::error::Error;
use crate::fs;
use crate::schema::Schema;
use crate::spec::{ParquetCodec, PartName, SinkPosition, SinkSpec};

/// A Parquet sink.
pub(crate) struct ParquetSink {
    /// Where the parts go and what they are named and hold.
    spec: SinkSpec,
    arrow_schema: SchemaRef,
    props: WriterProperties,
    part_rows: u64,
    /// The open part, if any rows have been written to it.
    part: Option<OpenPart>,
    /// The position after the last closed part.
    committed: SinkPosition,
}

struct OpenPart {
    temp: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
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
        let committed = resume.cloned().unwrap_or_default();
        // Parts at or past the committed index, and every temp file, hold rows that will be
        // refetched: remove them so the output is exactly the committed parts.
        let mut removed = false;
        let mut present = Vec::new();
        for found in fs::scan(spec)? {
            match found.part {
                Some(PartName::Closed(i)) if i < committed.file_index => present.push(i),
                _ => removed |= fs::remove_if_exists(&found.path)?,
            }
        }
        if removed {
            fs::sync_dir(&spec.dir)?;
        }
        if let Some(missing) = (0..committed.file_index).find(|i| !present.contains(i)) {
            return Err(Error::ResumeMismatch {
                path: spec.part_path(missing),
                reason: format!(
                    "the part is missing but the checkpoint says {} parts were closed",
                    committed.file_index
                ),
            });
        }
        let mut props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(spec.parquet.row_group_rows))
            .set_dictionary_enabled(spec.parquet.dictionary);
        props = match spec.parquet.codec {
            ParquetCodec::Uncompressed => {
                props.set_compression(parquet::basic::Compression::UNCOMPRESSED)
            }
            ParquetCodec::Zstd { level } => {
                let level = ZstdLevel::try_new(level)
                    .map_err(|e| Error::Config { message: e.to_string() })?;
                props.set_compression(parquet::basic::Compression::ZSTD(level))
            }
        };
        Ok(ParquetSink {
            spec: spec.clone(),
            arrow_schema: arrow_schema(&spec.schema),
            props: props.build(),
            part_rows: spec.parquet.part_rows,
            part: None,
            committed,
        })
    }

    fn rows_written(&self) -> u64 {
        self.committed.rows + self.part.as_ref().map_or(0, |p| p.rows)
    }

    /// The open part, creating its temp file on first use.
    fn part(&mut self) -> Result<&mut OpenPart, Error> {
        if self.part.is_none() {
            let temp = self.spec.temp_part_path(self.committed.file_index);
            let file = fs::create_fresh(&temp)?;
            let writer = ArrowWriter::try_new(
                file,
                Arc::clone(&self.arrow_schema),
                Some(self.props.clone()),
            )
            .map_err(|e| Error::parquet(&temp, e))?;
            self.part = Some(OpenPart { temp, writer, rows: 0 });
        }
        Ok(self.part.as_mut().expect("just created"))
    }

    /// Closes the open part (creating an empty one if none is open) and makes it durable under
    /// its final name.
    fn close_part(&mut self) -> Result<SinkPosition, Error> {
        self.part()?;
        let OpenPart { temp, writer, rows } = self.part.take().expect("opened above");
        let file = writer.into_inner().map_err(|e| Error::parquet(&temp, e))?;
        file.sync_all().map_err(|e| Error::io(&temp, e))?;
        let size = file.metadata().map_err(|e| Error::io(&temp, e))?.len();
        drop(file);
        let done = self.spec.part_path(self.committed.file_index);
        std::fs::rename(&temp, &done).map_err(|e| Error::io(&done, e))?;
        fs::sync_dir(&self.spec.dir)?;
        self.committed = SinkPosition {
            file_index: self.committed.file_index + 1,
            bytes: self.committed.bytes + size,
            rows: self.committed.rows + rows,
        };
        Ok(self.committed.clone())
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
        let part = self.spec.temp_part_path(self.committed.file_index);
        RecordBatch::try_new(Arc::clone(&self.arrow_schema), columns)
            .map_err(|e| Error::parquet(part, e))
    }
}

impl Sink for ParquetSink {
    fn write_chunk(&mut self, rows: &[Vec<Value>]) -> Result<(), Error> {
        self.spec.schema.validate(&self.spec.table, rows, self.rows_written())?;
        if rows.is_empty() {
            return Ok(());
        }
        let batch = self.batch(rows)?;
        let part = self.part()?;
        part.writer.write(&batch).map_err(|e| Error::parquet(&part.temp, e))?;
        part.rows += rows.len() as u64;
        Ok(())
    }

    fn commit(&mut self) -> Result<Option<SinkPosition>, Error> {
        // Parts close only here, at a chunk boundary, so a reported position always corresponds
        // to a cursor the orchestrator can refetch from.
        match &self.part {
            Some(p) if p.rows >= self.part_rows => self.close_part().map(Some),
            _ => Ok(None),
        }
    }

    fn finish(mut self: Box<Self>) -> Result<SinkPosition, Error> {
        // An empty table still yields one part, so readers find the schema; otherwise only an
        // open part with rows is closed (no empty trailing part).
        if self.part.is_some() || self.committed.file_index == 0 {
            self.close_part()
        } else {
            Ok(self.committed.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use iptvportal_catalog::ColumnType;
    use serde_json::json;

    use super::*;
    use crate::schema::ColumnSpec;
    use crate::spec::{Compression, Format};

    fn part_paths(spec: &SinkSpec, index: u32) -> (PathBuf, PathBuf) {
        (spec.temp_part_path(index), spec.part_path(index))
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
    fn a_part_closes_at_the_first_commit_past_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Schema { columns: vec![ColumnSpec::new("id", ColumnType::Integer, false)] };
        let mut spec = SinkSpec::new(dir.path(), "t", Format::Parquet, Compression::None, schema);
        spec.parquet.part_rows = 3;
        let mut sink = ParquetSink::open(&spec, None).unwrap();
        sink.write_chunk(&[vec![json!(1)], vec![json!(2)]]).unwrap();
        assert_eq!(sink.commit().unwrap(), None);
        let (temp, done) = part_paths(&spec, 0);
        assert!(temp.exists() && !done.exists());
        sink.write_chunk(&[vec![json!(3)], vec![json!(4)]]).unwrap();
        let pos = sink.commit().unwrap().unwrap();
        assert_eq!((pos.file_index, pos.rows), (1, 4));
        assert!(!temp.exists() && done.exists());
        assert_eq!(pos.bytes, std::fs::metadata(&done).unwrap().len());
        // Nothing written since: no new part at finish.
        let end = Box::new(sink).finish().unwrap();
        assert_eq!(end, pos);
    }
}

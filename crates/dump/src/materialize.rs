//! `materialize`: a synced table as of its last complete run, in one file.
//!
//! For every id, the row of the latest run that holds it, unless that run or a later one lists
//! it as deleted; in id order. Each run's files are in id order already, so this is a merge of
//! one sorted stream per run (rows, read by a thread per run into a small bounded channel) and
//! one per run's deletes: memory is a few batches per run, never the table. A table without an
//! id column is its last run's rows, as they are.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use iptvportal_checkpoint::{CheckpointStore, DumpState, FileStore};
use iptvportal_sink::{Compression, Crc32, Format, Schema, SinkSpec};
use serde_json::Value;

use crate::Error;
use crate::sync::{self, RunKind, RunRecord, RunState, SyncProblem};

/// Rows sent from a run's reader to the merge at a time.
const BATCH: usize = 256;
/// Rows handed to the output's sink at a time.
const CHUNK: usize = 4096;

/// What [`materialize`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Materialized {
    /// The file written.
    pub path: PathBuf,
    /// Its rows.
    pub rows: u64,
    /// The run it is as of.
    pub run: u32,
    /// The runs read.
    pub runs: u32,
}

/// Writes `table` as synced in `out` into the file `to`, as of the last complete run, in
/// `format` (the runs' when `None`), gzipped when `compress`. `to` is replaced atomically: a
/// temp directory beside it holds the file being written, renamed over `to` when complete.
pub async fn materialize(
    out: &Path,
    table: &str,
    to: &Path,
    format: Option<Format>,
    compress: bool,
) -> Result<Materialized, Error> {
    let problem = |problem| Error::Sync { table: table.to_owned(), problem };
    let record = sync::load(out, table)?
        .ok_or_else(|| problem(SyncProblem::NoRuns { dir: sync::table_dir(out, table) }))?;
    let complete: Vec<RunRecord> =
        record.runs.iter().filter(|r| r.state == RunState::Complete).cloned().collect();
    let Some(last) = complete.last().cloned() else {
        return Err(problem(SyncProblem::NoRuns { dir: sync::table_dir(out, table) }));
    };
    let table_dir = sync::table_dir(out, table);
    // A full run holds the whole table: the runs before it are not needed.
    let runs: Vec<RunRecord> = if last.kind == RunKind::Full {
        vec![last.clone()]
    } else {
        let from = complete.iter().rposition(|r| r.kind == RunKind::Snapshot).unwrap_or(0);
        complete[from..].to_vec()
    };
    let mut inputs = Vec::new();
    let mut schema: Option<Schema> = None;
    for run in &runs {
        let dir = run.dir(&table_dir);
        let state = FileStore::new(&dir)
            .load(table)
            .await
            .map_err(|source| Error::Checkpoint { table: table.to_owned(), source })?
            .filter(|s| s.is_complete)
            .ok_or_else(|| {
                problem(SyncProblem::Record {
                    path: dir.clone(),
                    detail: format!("run {} is recorded complete but its dump is not", run.run),
                })
            })?;
        match &schema {
            None => schema = Some(state.schema.clone()),
            Some(s) if *s != state.schema => {
                return Err(problem(SyncProblem::Record {
                    path: dir.clone(),
                    detail: format!("run {} has other columns than run {}", run.run, runs[0].run),
                }));
            }
            Some(_) => {}
        }
        inputs.push(Input { run: run.clone(), dir, state });
    }
    let Some(schema) = schema else {
        return Err(problem(SyncProblem::NoRuns { dir: table_dir.clone() }));
    };
    let id_index = record
        .shape
        .id_column
        .as_deref()
        .filter(|_| last.kind != RunKind::Full)
        .map(|id| {
            schema.names().position(|n| n == id).ok_or_else(|| {
                problem(SyncProblem::Record {
                    path: table_dir.join(sync::SYNC_FILE),
                    detail: format!("the runs have no column {id}"),
                })
            })
        })
        .transpose()?;

    let format = format.unwrap_or(record.shape.format);
    let compression = if compress && format != Format::Parquet {
        Compression::Gzip { level: 1 }
    } else {
        Compression::None
    };
    let temp = temp_dir_for(table, to)?;
    let mut spec = SinkSpec::new(&temp, table, format, compression, schema);
    spec.parquet.part_rows = u64::MAX;
    // One file, written whole and renamed into place: no commit to make durable on the way.
    spec.journal = false;
    let (table_, to_) = (table.to_owned(), to.to_owned());
    let written = tokio::task::spawn_blocking(move || {
        let result = write(&table_, &spec, &inputs, id_index, &to_);
        let _ = fs::remove_dir_all(&spec.dir);
        result
    })
    .await;
    let rows = match written {
        Ok(result) => result?,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    Ok(Materialized {
        path: to.to_owned(),
        rows,
        run: last.run,
        runs: u32::try_from(runs.len()).unwrap_or(u32::MAX),
    })
}

/// The directory beside `to` that holds the file while it is written: `.{name}.materialize`.
fn temp_dir_for(table: &str, to: &Path) -> Result<PathBuf, Error> {
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = to.file_name().ok_or_else(|| Error::Sync {
        table: table.to_owned(),
        problem: SyncProblem::Io {
            path: to.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
        },
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".materialize");
    Ok(parent.join(temp_name))
}

/// One run to read.
struct Input {
    run: RunRecord,
    dir: PathBuf,
    state: DumpState,
}

/// A batch from a run's reader: rows with their ids, or the error that stopped it.
type Batch = Result<Vec<(i64, Vec<Value>)>, Error>;

fn write(
    table: &str,
    spec: &SinkSpec,
    inputs: &[Input],
    id_index: Option<usize>,
    to: &Path,
) -> Result<u64, Error> {
    let sink_error = |source| Error::Sink { table: table.to_owned(), source: Box::new(source) };
    let io_error = |path: &Path| {
        let (table, path) = (table.to_owned(), path.to_owned());
        move |source| Error::Sync { table, problem: SyncProblem::Io { path, source } }
    };
    let _ = fs::remove_dir_all(&spec.dir);
    fs::create_dir_all(&spec.dir).map_err(io_error(&spec.dir))?;
    let sink = iptvportal_sink::open(spec, None).map_err(sink_error)?;
    let mut output = Output { table, sink, chunk: Vec::with_capacity(CHUNK), rows: 0 };
    std::thread::scope(|scope| -> Result<(), Error> {
        let mut streams = Vec::new();
        for input in inputs {
            let (send, receive) = sync_channel::<Batch>(1);
            // Each run is read as it was written.
            let mut read_spec = spec.clone();
            read_spec.dir.clone_from(&input.dir);
            read_spec.format = input.state.shape.format;
            read_spec.compression = input.state.shape.compression;
            read_spec.text_part_rows = input.state.shape.part_rows;
            scope.spawn(move || read_run(table, &read_spec, input, id_index, &send));
            streams.push(Stream { receive, batch: Vec::new().into_iter() });
        }
        let result = match id_index {
            // No id: the one (full) run, as it is.
            None => streams.iter_mut().try_for_each(|stream| {
                while let Some((_, row)) = stream.next()? {
                    output.push(row)?;
                }
                Ok(())
            }),
            Some(_) => merge(table, inputs, &mut streams, &mut |row| output.push(row)),
        };
        // Dropping the receivers stops the readers of a failed merge.
        drop(streams);
        result
    })?;
    let rows = output.rows;
    output.finish()?;
    let files = iptvportal_sink::list_outputs(spec).map_err(sink_error)?;
    let [file] = files.as_slice() else {
        return Err(Error::Sync {
            table: table.to_owned(),
            problem: SyncProblem::Record {
                path: spec.dir.clone(),
                detail: format!("the output is {} files, not one", files.len()),
            },
        });
    };
    fs::rename(&file.path, to).map_err(io_error(to))?;
    let parent = to.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(parent).and_then(|d| d.sync_all()).map_err(io_error(parent))?;
    Ok(rows)
}

/// The file being written, a chunk at a time.
struct Output<'a> {
    table: &'a str,
    sink: Box<dyn iptvportal_sink::Sink>,
    chunk: Vec<Vec<Value>>,
    rows: u64,
}

impl Output<'_> {
    fn error(&self, source: iptvportal_sink::Error) -> Error {
        Error::Sink { table: self.table.to_owned(), source: Box::new(source) }
    }

    fn push(&mut self, row: Vec<Value>) -> Result<(), Error> {
        self.chunk.push(row);
        self.rows += 1;
        if self.chunk.len() >= CHUNK {
            self.sink.write_chunk(&self.chunk).map_err(|e| self.error(e))?;
            self.chunk.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), Error> {
        if !self.chunk.is_empty() {
            self.sink.write_chunk(&self.chunk).map_err(|e| self.error(e))?;
        }
        let table = self.table;
        self.sink
            .finish()
            .map(drop)
            .map_err(|source| Error::Sink { table: table.to_owned(), source: Box::new(source) })
    }
}

/// Reads every file of one run, in order, into `send`, in batches.
fn read_run(
    table: &str,
    spec: &SinkSpec,
    input: &Input,
    id_index: Option<usize>,
    send: &SyncSender<Batch>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut result = Ok(());
    for file in &input.state.sink.files {
        let path = input.dir.join(&file.name);
        result = iptvportal_sink::read_rows(&path, spec, Some(file.bytes), &mut |row| {
            let id = match id_index {
                Some(i) => row.get(i).and_then(Value::as_i64).ok_or_else(|| {
                    iptvportal_sink::Error::Io {
                        path: path.clone(),
                        source: io::Error::new(
                            io::ErrorKind::InvalidData,
                            "a row without an integer id",
                        ),
                    }
                })?,
                None => 0,
            };
            batch.push((id, row));
            if batch.len() >= BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if send.send(Ok(full)).is_err() {
                    // The merge stopped: nothing more is wanted.
                    return Err(iptvportal_sink::Error::Io {
                        path: path.clone(),
                        source: io::ErrorKind::BrokenPipe.into(),
                    });
                }
            }
            Ok(())
        });
        if result.is_err() {
            break;
        }
    }
    match result {
        Ok(()) => {
            if !batch.is_empty() {
                let _ = send.send(Ok(batch));
            }
        }
        Err(source) => {
            let _ =
                send.send(Err(Error::Sink { table: table.to_owned(), source: Box::new(source) }));
        }
    }
}

/// One run's rows, as the merge pulls them.
struct Stream {
    receive: Receiver<Batch>,
    batch: std::vec::IntoIter<(i64, Vec<Value>)>,
}

impl Stream {
    fn next(&mut self) -> Result<Option<(i64, Vec<Value>)>, Error> {
        loop {
            if let Some(item) = self.batch.next() {
                return Ok(Some(item));
            }
            match self.receive.recv() {
                Ok(batch) => self.batch = batch?.into_iter(),
                Err(_) => return Ok(None),
            }
        }
    }
}

/// A run's deletes, ascending, read line by line.
struct Deletes {
    lines: io::Lines<BufReader<File>>,
    path: PathBuf,
}

impl Deletes {
    fn next(&mut self, table: &str) -> Result<Option<i64>, Error> {
        let bad = |detail: String| Error::Sync {
            table: table.to_owned(),
            problem: SyncProblem::Record { path: self.path.clone(), detail },
        };
        let Some(line) = self.lines.next() else { return Ok(None) };
        let line = line.map_err(|e| bad(e.to_string()))?;
        let value: Value = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let id = value.as_object().and_then(|o| o.values().next()).and_then(Value::as_i64);
        id.map(Some).ok_or_else(|| bad(format!("not an id: {line}")))
    }
}

/// Checks a run's deletes file against its record and opens it.
fn open_deletes(table: &str, input: &Input) -> Result<Option<Deletes>, Error> {
    let Some(record) = &input.run.deletes else { return Ok(None) };
    let path = input.dir.join(&record.name);
    let bad = |detail: String| Error::Sync {
        table: table.to_owned(),
        problem: SyncProblem::Record { path: path.clone(), detail },
    };
    let bytes = fs::read(&path).map_err(|e| bad(e.to_string()))?;
    if u64::try_from(bytes.len()).ok() != Some(record.bytes) || Crc32::of(&bytes) != record.crc32 {
        return Err(bad("it is not the file its run recorded (run `iptvportal verify`)".into()));
    }
    let file = File::open(&path).map_err(|e| bad(e.to_string()))?;
    Ok(Some(Deletes { lines: BufReader::new(file).lines(), path }))
}

/// Merges the runs' rows by id: the latest run's version of each, unless deleted at or after it.
fn merge(
    table: &str,
    inputs: &[Input],
    streams: &mut [Stream],
    emit: &mut dyn FnMut(Vec<Value>) -> Result<(), Error>,
) -> Result<(), Error> {
    // Heads of the row streams and of the deletes, by (id, run index).
    let mut rows: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    let mut pending: Vec<Option<Vec<Value>>> = vec![None; streams.len()];
    let mut last_id: Vec<Option<i64>> = vec![None; streams.len()];
    for (k, stream) in streams.iter_mut().enumerate() {
        if let Some((id, row)) = stream.next()? {
            rows.push(Reverse((id, k)));
            pending[k] = Some(row);
            last_id[k] = Some(id);
        }
    }
    let mut deletes = Vec::new();
    let mut deleted: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    for (k, input) in inputs.iter().enumerate() {
        let mut d = open_deletes(table, input)?;
        if let Some(d) = d.as_mut()
            && let Some(id) = d.next(table)?
        {
            deleted.push(Reverse((id, k)));
        }
        deletes.push(d);
    }
    while let Some(Reverse((id, _))) = rows.peek().copied() {
        // Every run's version of this id; the latest wins.
        let mut latest: Option<(usize, Vec<Value>)> = None;
        while let Some(Reverse((next, k))) = rows.peek().copied() {
            if next != id {
                break;
            }
            rows.pop();
            let row = pending[k].take().expect("a head has its row");
            if latest.as_ref().is_none_or(|(run, _)| k > *run) {
                latest = Some((k, row));
            }
            if let Some((next_id, next_row)) = streams[k].next()? {
                if last_id[k].is_some_and(|last| next_id <= last) {
                    return Err(Error::Sync {
                        table: table.to_owned(),
                        problem: SyncProblem::Record {
                            path: inputs[k].dir.clone(),
                            detail: format!("its rows are not in ascending id order at {next_id}"),
                        },
                    });
                }
                rows.push(Reverse((next_id, k)));
                pending[k] = Some(next_row);
                last_id[k] = Some(next_id);
            }
        }
        let (run, row) = latest.expect("at least one version");
        // The latest run that deleted this id, if any.
        let mut deleted_by: Option<usize> = None;
        while let Some(Reverse((d, k))) = deleted.peek().copied() {
            if d > id {
                break;
            }
            deleted.pop();
            if d == id {
                deleted_by = deleted_by.max(Some(k));
            }
            if let Some(next) = deletes[k].as_mut().map(|x| x.next(table)).transpose()?.flatten() {
                deleted.push(Reverse((next, k)));
            }
        }
        if deleted_by.is_none_or(|k| k < run) {
            emit(row)?;
        }
    }
    Ok(())
}

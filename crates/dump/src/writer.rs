//! The sink of one dump, on a thread of its own: [`Writer`] over a [`SinkThread`].
//!
//! The sink lives on one dedicated thread for the whole dump rather than hopping between
//! `spawn_blocking` pool threads: encoding, compression and `fsync` stay off the async workers,
//! and every allocation the sink makes comes from that one thread's malloc arena. On the blocking
//! pool each chunk could land on another thread, each with its own glibc arena holding freed
//! memory, so peak RSS crept up with the length of the dump (docs/benchmarks.md, memory).

use std::path::Path;

use iptvportal_checkpoint::TableLock;
use iptvportal_sink::{Sink, SinkPosition, SinkSpec};
use serde_json::Value;

use crate::Error;

/// The sink of one dump and the chunks written through it.
pub(crate) struct Writer {
    thread: SinkThread,
    table: String,
    open: bool,
    chunks: u64,
}

impl Writer {
    /// A writer with no sink open yet; `chunks` were committed by earlier runs. Its thread holds
    /// `lock` until the sink is dropped.
    pub(crate) fn spawn(
        table: &str,
        dir: &Path,
        chunks: u64,
        lock: TableLock,
    ) -> Result<Writer, Error> {
        let thread = SinkThread::spawn(table, lock).map_err(|source| Error::Sink {
            table: table.to_owned(),
            source: Box::new(iptvportal_sink::Error::Io { path: dir.to_owned(), source }),
        })?;
        Ok(Writer { thread, table: table.to_owned(), open: false, chunks })
    }

    /// Whether the sink is open.
    pub(crate) fn is_open(&self) -> bool {
        self.open
    }

    /// Chunks committed over all runs.
    pub(crate) fn chunks(&self) -> u64 {
        self.chunks
    }

    /// Opens the sink: fresh when `position` is `None`, else cut back to the committed position.
    pub(crate) async fn open(
        &mut self,
        spec: SinkSpec,
        position: Option<SinkPosition>,
    ) -> Result<(), Error> {
        self.thread
            .run(move |sink| {
                *sink = Some(iptvportal_sink::open(&spec, position.as_ref())?);
                Ok(())
            })
            .await
            .map_err(|source| self.error(source))?;
        self.open = true;
        Ok(())
    }

    /// Writes a chunk and commits it; the new position when the commit made it durable.
    pub(crate) async fn write_and_commit(
        &mut self,
        rows: Vec<Vec<Value>>,
    ) -> Result<Option<SinkPosition>, Error> {
        let committed = self
            .thread
            .run(move |sink| {
                let sink = sink.as_mut().expect("the sink is open");
                sink.write_chunk(&rows)?;
                // The rows are freed here, on the thread that encoded them.
                drop(rows);
                sink.commit()
            })
            .await
            .map_err(|source| self.error(source))?;
        self.chunks += 1;
        Ok(committed)
    }

    /// Completes the output and makes it durable.
    pub(crate) async fn finish(&mut self) -> Result<SinkPosition, Error> {
        self.open = false;
        self.thread
            .run(|sink| sink.take().expect("the sink is open").finish())
            .await
            .map_err(|source| self.error(source))
    }

    /// Ends the sink's thread and waits until it is gone, and with it the sink and the table's
    /// lock: a run that returns has let go of its table, so the next run may take it at once.
    pub(crate) async fn close(self) {
        let SinkThread { jobs, done } = self.thread;
        drop(jobs);
        // An error means the thread is gone already (it panicked): nothing holds the lock then.
        let _ = done.await;
    }

    fn error(&self, source: iptvportal_sink::Error) -> Error {
        Error::Sink { table: self.table.clone(), source: Box::new(source) }
    }
}

type SinkSlot = Option<Box<dyn Sink>>;
type Job = Box<dyn FnOnce(&mut SinkSlot) + Send>;

/// One thread that owns a sink and runs the jobs sent to it, one at a time.
///
/// Every job is awaited before the next is sent, so the channel never holds more than one. When
/// the [`Writer`] is dropped the channel closes and the thread ends, dropping the sink there
/// (uncommitted data is then what a crash would leave: the next resume cuts it away).
struct SinkThread {
    jobs: std::sync::mpsc::Sender<Job>,
    /// Answered when the thread has dropped the sink and the lock.
    done: tokio::sync::oneshot::Receiver<()>,
}

impl SinkThread {
    fn spawn(table: &str, lock: TableLock) -> std::io::Result<SinkThread> {
        let (jobs, receiver) = std::sync::mpsc::channel::<Job>();
        let (finished, done) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name(format!("sink {table}")).spawn(move || {
            let mut sink: SinkSlot = None;
            for job in receiver {
                job(&mut sink);
            }
            // The table is free again only once nothing can write to it any more.
            drop(sink);
            drop(lock);
            let _ = finished.send(());
        })?;
        Ok(SinkThread { jobs, done })
    }

    /// Runs `f` on the sink's thread and waits for its result; a panic in `f` resumes here.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SinkSlot) -> T + Send + 'static,
    ) -> T {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |sink| {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(sink)));
            // The waiting side may be gone (the dump was dropped); then nobody needs the answer.
            let _ = reply.send(result);
        });
        self.jobs.send(job).expect("the sink thread runs as long as its writer");
        match answer.await.expect("the sink thread answers every job") {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T: Send + 'static, E: Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Creates the output directory and proves it writable, before the first fetch.
///
/// The probe is `.{table}.probe`: one name per table, so that a probe left by a run killed between
/// writing and removing it is overwritten and removed by the table's next run, which always
/// probes again (nothing was committed before the probe). Tables of one `dump_many` probe the same
/// directory at once under their own names; two runs of one table (the second is refused by the
/// table lock just after) may remove each other's probe, which is not an error.
pub(crate) fn ensure_dir(dir: &Path, table: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    // Creating the directory can succeed where writing into it cannot (a read-only mount, another
    // user's directory): find out now, not after the first fetch.
    let probe = dir.join(format!(".{table}.probe"));
    std::fs::write(&probe, b"")?;
    match std::fs::remove_file(&probe) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::ensure_dir;

    #[test]
    fn a_probe_left_by_a_killed_run_is_removed_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(".terminal.probe"), b"").unwrap();
        ensure_dir(&out, "terminal").unwrap();
        ensure_dir(&out, "media").unwrap();
        let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        ensure_dir(&dir.path().join("new/deeper"), "terminal").unwrap();
        assert!(dir.path().join("new/deeper").is_dir());
    }
}

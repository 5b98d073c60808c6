//! A table's checkpoint with its data on object storage: [`RemoteStore`], the
//! [`CheckpointStore`] of an `--out s3://bucket/prefix` dump (design §11, docs/object-storage.md).
//!
//! The sink writes into a local *stage* directory as ever (`{stage}/{table}/`), and its state is
//! saved there first, after every chunk. The bucket holds what is published:
//!
//! - `{table}/{part}`: every closed part, uploaded from the stage (one `PUT`, or a multipart
//!   upload completed once) when the state reaches a part boundary, beside the dump (the sink
//!   writes the next part meanwhile), then removed from the stage;
//! - `{table}/_manifest.json`: the sealed state of the last boundary, written with a conditional
//!   create or replace after the parts it names are all up (at the first save after their upload
//!   ended; the complete state's save waits for it). It is the commit point of the bucket;
//! - `{table}/.lease`: one writer per table across machines ([`iptvportal_store::lease`]).
//!
//! So the bucket only ever names complete parts, and whatever else a killed run left there (a
//! part uploaded before its manifest, a multipart upload never completed) is removed or aborted
//! by the next run's [`CheckpointStore::load`] before it writes anything. The next run resumes
//! from the stage when the stage is ahead of the bucket and consistent with it, and otherwise from
//! the bucket (another machine, or a wiped stage), refetching at most the rows after the last
//! boundary.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use iptvportal_checkpoint::{
    CheckpointStore, DumpState, Error, FileStore, Listing, LockMode, TableLock, from_bytes,
    to_bytes,
};
use iptvportal_store::{Destination, Lease, LeaseHolder, Upload, Version};
use tokio::sync::Mutex;

/// How long a lease holds unless renewed; it is renewed every third of it.
const LEASE_TTL: Duration = Duration::from_secs(60);

/// The name of the manifest object under a table's prefix.
pub(crate) const MANIFEST: &str = "_manifest.json";

/// The name of the lease object under a table's prefix.
pub(crate) const LEASE: &str = ".lease";

/// Whether `name` is one of `table`'s output files (the only objects a run removes).
pub(crate) fn is_output(table: &str, name: &str) -> bool {
    name.strip_prefix(table).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
}

/// The upload of a boundary's parts, running beside the dump.
#[derive(Debug)]
struct Pending {
    /// The state at the boundary: the manifest to commit once the parts are up.
    state: DumpState,
    /// The closed parts it names.
    parts: usize,
    /// The upload, `None` once it is done and only the manifest is left to commit (its commit
    /// failed, and is tried again at the next save); aborted if dropped unfinished (the next run
    /// aborts what it recorded).
    task: Option<AbortOnDrop<Result<(), Error>>>,
}

/// A part to upload: its key, its staged file and the bytes the sink wrote.
struct Part {
    key: String,
    path: PathBuf,
    bytes: u64,
}

/// Uploads `parts` to `dest` in order, recording each multipart upload's id in `uploads` before
/// its first piece goes, after aborting the uploads recorded there and not completed (a publish
/// that failed while the run went on): the file then lists this publish's uploads only.
async fn upload_parts(
    dest: Arc<dyn Destination>,
    uploads: PathBuf,
    parts: Vec<Part>,
) -> Result<(), Error> {
    abort_recorded(dest.as_ref(), &uploads).await?;
    for part in parts {
        let mut failed = None;
        let mut started = |upload: &Upload| {
            if let Err(e) = record_upload(&uploads, upload) {
                failed = Some(e);
            }
        };
        let entry = dest.publish(&part.key, &part.path, &mut started).await.map_err(remote)?;
        if let Some(e) = failed {
            return Err(e);
        }
        if entry.size != part.bytes {
            return Err(remote(format!(
                "{}: {} was stored with {} bytes, not the {} written; rerun to upload it again",
                dest.display(),
                part.key,
                entry.size,
                part.bytes
            )));
        }
    }
    Ok(())
}

/// Aborts the multipart uploads recorded in `path`, then forgets them.
async fn abort_recorded(dest: &dyn Destination, path: &Path) -> Result<(), Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    for line in text.lines() {
        if let Some((key, id)) = line.split_once('\t') {
            let upload = Upload { key: key.to_owned(), id: id.to_owned() };
            dest.abort_upload(&upload).await.map_err(remote)?;
        }
    }
    remove_file(path)
}

/// One table's checkpoint on object storage, staged in a local directory. See the module docs.
pub struct RemoteStore {
    dest: Arc<dyn Destination>,
    table: String,
    stage: FileStore,
    mirror: Mutex<Mirror>,
    lease: Arc<Mutex<Option<Lease>>>,
    lost: Arc<std::sync::Mutex<Option<String>>>,
}

/// What the bucket holds, as this run last read or wrote it.
#[derive(Debug, Default)]
struct Mirror {
    /// The parts of the last boundary, being uploaded while the dump goes on; its manifest is
    /// committed once they are all up (see [`RemoteStore::settle`]).
    pending: Option<Pending>,
    /// The manifest's version, `None` while there is none.
    version: Option<Version>,
    /// The closed parts it names.
    published: usize,
    /// Whether it is the state of a complete dump.
    complete: bool,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("dest", &self.dest.display())
            .field("table", &self.table)
            .field("stage", &self.stage.dir())
            .finish_non_exhaustive()
    }
}

fn remote(e: impl std::fmt::Display) -> Error {
    Error::Remote { reason: e.to_string() }
}

impl RemoteStore {
    /// The store of `table` on `dest`, staged in `stage` (the table's own directory, the sink's
    /// output directory). Nothing is touched until the first call.
    pub fn new(dest: Arc<dyn Destination>, table: &str, stage: impl Into<PathBuf>) -> RemoteStore {
        RemoteStore {
            dest,
            table: table.to_owned(),
            stage: FileStore::new(stage),
            mirror: Mutex::new(Mirror::default()),
            lease: Arc::new(Mutex::new(None)),
            lost: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The stage directory.
    pub fn stage(&self) -> &Path {
        self.stage.dir()
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.table)
    }

    /// Where the manifest is, for messages.
    fn manifest_label(&self) -> PathBuf {
        PathBuf::from(format!("{}/{}", self.dest.display(), self.key(MANIFEST)))
    }

    /// The file recording the multipart uploads begun and not yet known to be done.
    fn uploads_path(&self) -> PathBuf {
        self.stage.dir().join(format!(".{}.uploads", self.table))
    }

    /// Lets the table's lease go, so that the next run (here or elsewhere) takes it at once. A
    /// run that ends without it leaves a lease that expires, or that a run of this machine takes
    /// over once it sees the holder's process is gone.
    pub async fn release(&self) {
        // An upload still running (a run that stopped early) must not outlive the lease: the
        // next holder removes the parts no manifest names, and this one would put them back.
        self.stop_pending().await;
        if let Some(lease) = self.lease.lock().await.take()
            && let Err(e) = lease.release(self.dest.as_ref()).await
        {
            tracing::warn!("{e}");
        }
    }

    /// Stops the pending upload, if any, and waits until it has (its manifest is not committed:
    /// the next run publishes the same parts again).
    async fn stop_pending(&self) {
        if let Some(mut task) = self.mirror.lock().await.pending.take().and_then(|p| p.task) {
            task.0.abort();
            let _ = (&mut task.0).await;
        }
    }

    /// Aborts the multipart uploads a killed run recorded, then forgets them.
    async fn abort_recorded_uploads(&self) -> Result<(), Error> {
        abort_recorded(self.dest.as_ref(), &self.uploads_path()).await
    }

    /// The manifest in the bucket, checked against the objects listed under the table: every
    /// part it names is there with its size; a part it does not name is what a killed run
    /// uploaded before its manifest, and is removed (a complete dump's is refused instead: it
    /// was added by hand).
    async fn read_bucket(&self) -> Result<(Option<DumpState>, Option<Version>), Error> {
        let manifest = self.dest.read(&self.key(MANIFEST)).await.map_err(remote)?;
        let listed = self.dest.list(&self.table).await.map_err(remote)?;
        let (state, version) = match manifest {
            None => (None, None),
            Some(object) => {
                let state = from_bytes(&self.manifest_label(), &object.bytes)?;
                (Some(state), Some(object.version))
            }
        };
        let named: BTreeSet<&str> = state
            .as_ref()
            .map(|s| s.sink.files.iter().map(|f| f.name.as_str()).collect())
            .unwrap_or_default();
        let place = self.dest.display();
        for entry in &listed {
            let name = entry.key.rsplit('/').next().unwrap_or(&entry.key);
            if !is_output(&self.table, name) || named.contains(name) {
                continue;
            }
            if state.as_ref().is_some_and(|s| s.is_complete) {
                return Err(remote(format!(
                    "{place}: {} is not named by the complete dump's manifest; remove it, or \
                     rerun with --reset to dump again",
                    entry.key
                )));
            }
            self.dest.delete(&entry.key).await.map_err(remote)?;
        }
        if let Some(state) = &state {
            for record in &state.sink.files {
                let key = self.key(&record.name);
                match listed.iter().find(|e| e.key == key) {
                    Some(e) if e.size == record.bytes => {}
                    found => {
                        let what = found.map_or_else(
                            || "is missing".to_owned(),
                            |e| format!("has {} bytes, the manifest says {}", e.size, record.bytes),
                        );
                        return Err(remote(format!(
                            "{place}: {key} {what}; the dump in the bucket was changed by hand: \
                             rerun with --reset to dump again"
                        )));
                    }
                }
            }
        }
        Ok((state, version))
    }

    /// Whether the stage's `local` can go on where the bucket's `bucket` stands: the same dump,
    /// at or beyond it, with every closed part the bucket does not have still in the stage.
    fn stage_continues(&self, local: &DumpState, bucket: &DumpState) -> bool {
        let b = bucket.sink.files.len();
        let consistent = !bucket.is_complete
            && local.shape == bucket.shape
            && local.dumped_rows >= bucket.dumped_rows
            && local.sink.files.len() >= b
            && (local.is_complete || local.sink.file_index as usize >= b)
            && local.sink.files[..b] == bucket.sink.files[..];
        consistent && self.closed_in_stage(local, b)
    }

    /// Whether every closed part of `state` from the `from`th on is in the stage, whole.
    fn closed_in_stage(&self, state: &DumpState, from: usize) -> bool {
        let closed = closed_parts(state).min(state.sink.files.len());
        state.sink.files.get(from..closed).unwrap_or_default().iter().all(|record| {
            std::fs::metadata(self.stage.dir().join(&record.name))
                .is_ok_and(|m| m.len() == record.bytes)
        })
    }

    /// Publishes what `state` has closed beyond the bucket, and then its manifest, when `state`
    /// is at a part boundary or complete; otherwise nothing.
    ///
    /// The parts go up beside the dump: the upload starts here and the manifest naming them is
    /// committed by a later call, once it is done ([`RemoteStore::settle`]), so that the sink
    /// writes the next part meanwhile. One boundary's upload runs at a time: the next boundary
    /// waits for it. With `wait` (the load of a resume), and for a complete state (the dump's
    /// last save), the manifest is committed before this returns.
    async fn publish(
        &self,
        state: &DumpState,
        mirror: &mut Mirror,
        wait: bool,
    ) -> Result<(), Error> {
        let Some(n) = boundary(state) else { return self.settle(mirror, wait).await };
        // One boundary's upload at a time: the previous one is committed first.
        self.settle(mirror, true).await?;
        let newly_complete = state.is_complete && !mirror.complete;
        if n <= mirror.published && !newly_complete && mirror.version.is_some() {
            return Ok(());
        }
        let parts = state.sink.files[mirror.published.min(n)..n]
            .iter()
            .map(|record| Part {
                key: self.key(&record.name),
                path: self.stage.dir().join(&record.name),
                bytes: record.bytes,
            })
            .collect();
        let task = tokio::spawn(upload_parts(Arc::clone(&self.dest), self.uploads_path(), parts));
        mirror.pending =
            Some(Pending { state: state.clone(), parts: n, task: Some(AbortOnDrop(task)) });
        self.settle(mirror, wait || state.is_complete).await
    }

    /// Commits the manifest of the pending upload once its parts are all up: when it is done,
    /// or with `wait`, after waiting for it. Then its parts leave the stage.
    async fn settle(&self, mirror: &mut Mirror, wait: bool) -> Result<(), Error> {
        let Some(pending) = mirror.pending.as_mut() else { return Ok(()) };
        if let Some(task) = &mut pending.task {
            if !wait && !task.0.is_finished() {
                return Ok(());
            }
            let uploaded = (&mut task.0).await;
            pending.task = None;
            let failed = match uploaded {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(e) => Some(remote(format!("{}: the upload stopped: {e}", self.dest.display()))),
            };
            if let Some(e) = failed {
                // The parts go up again with the next boundary's.
                mirror.pending = None;
                return Err(e);
            }
        }
        let Some(pending) = mirror.pending.take() else { return Ok(()) };
        let bytes = to_bytes(&pending.state);
        let key = self.key(MANIFEST);
        let written = match &mirror.version {
            None => self.dest.create(&key, bytes).await,
            Some(v) => self.dest.replace(&key, bytes, v).await,
        };
        let version = match written {
            Ok(version) => version,
            Err(e) => {
                // Committed at the next save, or by the next run from the stage.
                mirror.pending = Some(pending);
                return Err(remote(e));
            }
        };
        mirror.version = Some(version);
        mirror.published = pending.parts;
        mirror.complete = pending.state.is_complete;
        for record in &pending.state.sink.files[..pending.parts] {
            remove_file(&self.stage.dir().join(&record.name))?;
        }
        remove_file(&self.uploads_path())
    }

    fn check_lease(&self) -> Result<(), Error> {
        let lost = self.lost.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*lost {
            Some(reason) => Err(remote(reason)),
            None => Ok(()),
        }
    }
}

/// The closed parts of `state`: all of them once complete, else those before `file_index`.
fn closed_parts(state: &DumpState) -> usize {
    if state.is_complete { state.sink.files.len() } else { state.sink.file_index as usize }
}

/// The parts `state` has closed, when it is at a part boundary (no rows in an open part) or
/// complete: what a manifest may name.
fn boundary(state: &DumpState) -> Option<usize> {
    let sink = &state.sink;
    if state.is_complete {
        return Some(sink.files.len());
    }
    let at = sink.files.len() == sink.file_index as usize && sink.open_rows() == 0;
    at.then_some(sink.files.len())
}

fn remove_file(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Appends a multipart upload's key and id to `path`, durably, before its first part is sent.
fn record_upload(path: &Path, upload: &Upload) -> Result<(), Error> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    writeln!(file, "{}\t{}", upload.key, upload.id)
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io(path, e))
}

/// Who this run is, in a lease: `host pid N`.
fn whoami() -> String {
    format!("{} pid {}", hostname(), std::process::id())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Whether `holder` is a run of this machine whose process is gone (Linux: no `/proc/{pid}`).
fn dead_here(holder: &LeaseHolder) -> bool {
    let Some((host, pid)) = holder.holder.rsplit_once(" pid ") else { return false };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    cfg!(target_os = "linux")
        && host == hostname()
        && pid != std::process::id()
        && Path::new("/proc/self").exists()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

#[async_trait]
impl CheckpointStore for RemoteStore {
    async fn load(&self, table: &str) -> Result<Option<DumpState>, Error> {
        debug_assert_eq!(table, self.table);
        self.abort_recorded_uploads().await?;
        let (bucket, version) = self.read_bucket().await?;
        let local = self.stage.load(table).await?;
        let mut mirror = self.mirror.lock().await;
        *mirror = Mirror {
            pending: None,
            version,
            published: bucket.as_ref().map_or(0, |s| s.sink.files.len()),
            complete: bucket.as_ref().is_some_and(|s| s.is_complete),
        };
        let chosen = match (local, bucket) {
            (None, None) => return Ok(None),
            (Some(local), None) => {
                if !self.closed_in_stage(&local, 0) {
                    return Err(remote(format!(
                        "{}: the stage {} lists parts it no longer holds, and the bucket has no \
                         manifest; rerun with --reset to dump again",
                        self.dest.display(),
                        self.stage.dir().display()
                    )));
                }
                local
            }
            (Some(local), Some(bucket)) if self.stage_continues(&local, &bucket) => local,
            (_, Some(bucket)) => {
                // The bucket is the truth: the stage starts over from it.
                for record in &bucket.sink.files {
                    remove_file(&self.stage.dir().join(&record.name))?;
                }
                if std::fs::metadata(self.stage.dir()).is_ok() {
                    self.stage.save(&bucket).await?;
                }
                bucket
            }
        };
        // A stage that got ahead of the bucket (its last publish failed) publishes now: a
        // complete one would otherwise never be.
        self.publish(&chosen, &mut mirror, true).await?;
        for record in chosen.sink.files.get(..mirror.published).unwrap_or_default() {
            remove_file(&self.stage.dir().join(&record.name))?;
        }
        Ok(Some(chosen))
    }

    async fn save(&self, state: &DumpState) -> Result<(), Error> {
        self.check_lease()?;
        self.stage.save(state).await?;
        let mut mirror = self.mirror.lock().await;
        self.publish(state, &mut mirror, false).await
    }

    async fn remove(&self, table: &str) -> Result<(), Error> {
        self.stop_pending().await;
        self.stage.remove(table).await?;
        self.dest.delete(&self.key(MANIFEST)).await.map_err(remote)?;
        for entry in self.dest.list(&self.table).await.map_err(remote)? {
            let name = entry.key.rsplit('/').next().unwrap_or(&entry.key);
            if is_output(&self.table, name) {
                self.dest.delete(&entry.key).await.map_err(remote)?;
            }
        }
        *self.mirror.lock().await = Mirror::default();
        Ok(())
    }

    async fn list(&self) -> Result<Listing, Error> {
        self.stage.list().await
    }

    async fn lock(&self, table: &str, _mode: LockMode) -> Result<Option<TableLock>, Error> {
        // The stage's lock keeps two runs of this machine apart at once; the lease, runs of
        // different machines. Both are taken before anything is read, whatever the mode: the
        // load itself cleans the bucket.
        std::fs::create_dir_all(self.stage.dir()).map_err(|e| Error::io(self.stage.dir(), e))?;
        let Some(local) = self.stage.lock(table, LockMode::Create).await? else {
            return Ok(None);
        };
        let mut held = self.lease.lock().await;
        if held.is_none() {
            let lease = Lease::acquire_with(
                self.dest.as_ref(),
                &self.key(LEASE),
                &whoami(),
                LEASE_TTL,
                SystemTime::now(),
                &dead_here,
            )
            .await
            .map_err(remote)?;
            *held = Some(lease);
        }
        drop(held);
        let (dest, lease, lost) = (self.dest.clone(), self.lease.clone(), self.lost.clone());
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_TTL / 3).await;
                let mut held = lease.lock().await;
                let Some(current) = held.as_mut() else { return };
                if let Err(e) = current.renew(dest.as_ref()).await {
                    tracing::warn!("{e}");
                    if matches!(e, iptvportal_store::Error::LeaseLost { .. }) {
                        *lost.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                            Some(e.to_string());
                        return;
                    }
                }
            }
        });
        Ok(Some(TableLock::new((local, AbortOnDrop(renewal)))))
    }
}

/// A task stopped when its handle goes: the lease's renewal when the table's lock goes, a
/// pending upload when its store goes.
#[derive(Debug)]
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

//! `--out s3://bucket/prefix` for `dump`: each table is written into a local stage directory and
//! published to the bucket by its [`RemoteStore`] (docs/object-storage.md).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use iptvportal_checkpoint::CheckpointStore;
use iptvportal_dump::{DumpConfig, DumpService, Portal, RemoteStore};
use iptvportal_store::{Destination, Location, ObjectDir};

use crate::args::DumpArgs;
use crate::config::Storage;
use crate::failure::Hinted;
use crate::summary::{Status, SummaryRow};

/// Rows per part of a text format on object storage, which has no append (docs/object-storage.md
/// says how it was chosen); `--part-rows` sets another.
pub(crate) const TEXT_PART_ROWS: u64 = 100_000;

/// A dump's destination on object storage, and the stores of its tables.
pub(crate) struct Remote {
    dest: Arc<dyn Destination>,
    stage: PathBuf,
    stores: Mutex<Vec<Arc<RemoteStore>>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("dest", &self.dest.display()).finish_non_exhaustive()
    }
}

/// What `--out` names: `None` for a local directory, the bucket for `s3://`. `command` names
/// a command other than `dump`, which refuses a bucket.
pub(crate) fn target(
    args: &DumpArgs,
    storage: &Storage,
    command: Option<&str>,
) -> anyhow::Result<Option<Remote>> {
    let out = args.out.to_string_lossy();
    let location = Location::parse(&out).map_err(|e| anyhow::anyhow!("--out {e}"))?;
    let Location::S3 { bucket, prefix } = location else {
        if let Some(stage) = &args.stage {
            return Err(Hinted::new(
                format!("--stage {} is only for --out s3://bucket/prefix", stage.display()),
                "leave --stage out: a local dump writes into --out directly",
            )
            .into());
        }
        return Ok(None);
    };
    if command.is_some() {
        crate::failure::local_path(&args.out, "--out")?;
    }
    let dest = bucket_dir(&bucket, &prefix, storage)?;
    let stage = match &args.stage {
        Some(stage) => stage.clone(),
        None => default_stage(storage, &bucket, &prefix)?,
    };
    Ok(Some(Remote { dest, stage, stores: Mutex::new(Vec::new()) }))
}

/// The bucket `place` names (`s3://bucket/prefix`, given as `what`), or `None` for a local path:
/// for the commands that read a dump (`status`, `verify`).
pub(crate) fn reader(
    place: &Path,
    storage: &Storage,
    what: &str,
) -> anyhow::Result<Option<Arc<dyn Destination>>> {
    let text = place.to_string_lossy();
    match Location::parse(&text).map_err(|e| anyhow::anyhow!("{what} {e}"))? {
        Location::S3 { bucket, prefix } => Ok(Some(bucket_dir(&bucket, &prefix, storage)?)),
        Location::Local(_) => Ok(None),
    }
}

fn bucket_dir(
    bucket: &str,
    prefix: &str,
    storage: &Storage,
) -> anyhow::Result<Arc<dyn Destination>> {
    let options = crate::settings::s3_options(storage, &|name| std::env::var(name).ok());
    let dest = ObjectDir::s3(bucket, prefix, &options).map_err(|e| {
        Hinted::new(e.to_string(), "see docs/object-storage.md for the AWS_* settings")
    })?;
    Ok(Arc::new(dest))
}

/// The service of a dump: checkpoints in each table's directory, or with `remote`, in the bucket.
pub(crate) fn service(portal: Arc<dyn Portal>, remote: Option<Arc<Remote>>) -> DumpService {
    match remote {
        None => DumpService::new(portal),
        Some(remote) => DumpService::with_stores(portal, move |c| remote.store(c)),
    }
}

/// `{stage_root}/{bucket}/{prefix}`, the root being the config file's `stage_root`, else
/// `{XDG_CACHE_HOME or ~/.cache}/iptvportal/stage`.
fn default_stage(storage: &Storage, bucket: &str, prefix: &str) -> anyhow::Result<PathBuf> {
    let mut stage = match &storage.stage_root {
        Some(root) => root.clone(),
        None => cache_root()?.join("iptvportal").join("stage"),
    };
    stage.push(bucket);
    for part in prefix.split('/').filter(|p| !p.is_empty()) {
        stage.push(part);
    }
    Ok(stage)
}

fn cache_root() -> anyhow::Result<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .ok_or_else(|| {
            Hinted::new(
                "--out s3:// needs a local stage directory, and neither XDG_CACHE_HOME nor HOME is set",
                "give one with --stage DIR",
            )
        })?;
    Ok(cache)
}

impl Remote {
    /// Points each table's configuration at its stage (`{stage}/{table}`), with the parts it
    /// publishes: text formats in parts of [`TEXT_PART_ROWS`] unless `--part-rows` says.
    pub(crate) fn stage_configs(&self, mut configs: Vec<DumpConfig>) -> Vec<DumpConfig> {
        for config in &mut configs {
            config.output_dir = self.stage.join(&config.table);
            config.parts_published = true;
            config.text_part_rows = config.text_part_rows.or(Some(TEXT_PART_ROWS));
        }
        configs
    }

    /// The store of `config`'s table: one per table for the whole command (its lease is taken
    /// once, by `--reset` or the dump, and released at the end).
    pub(crate) fn store(&self, config: &DumpConfig) -> Arc<dyn CheckpointStore> {
        let mut stores = self.stores.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(store) = stores.iter().find(|s| s.table() == config.table) {
            return store.clone();
        }
        let store =
            Arc::new(RemoteStore::new(Arc::clone(&self.dest), &config.table, &config.output_dir));
        stores.push(store.clone());
        store
    }

    /// Lets every table's lease go.
    pub(crate) async fn release(&self) {
        let stores: Vec<Arc<RemoteStore>> =
            self.stores.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for store in stores {
            store.release().await;
        }
    }

    /// Says where each complete table's objects are: `s3://bucket/prefix/table/`.
    pub(crate) fn note_published(&self, summary: &[SummaryRow]) {
        let root = self.dest.display();
        for row in
            summary.iter().filter(|r| matches!(r.status, Status::Done | Status::AlreadyComplete))
        {
            crate::output::note(&format!(
                "{}: in {}/{}/",
                row.table,
                root.trim_end_matches('/'),
                row.table
            ));
        }
    }
}

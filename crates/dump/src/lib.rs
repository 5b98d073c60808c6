//! The dump orchestrator: chunked, resumable, exactly-once exports of IPTVPortal tables.
//!
//! ```no_run
//! use iptvportal_client::{Client, ClientConfig};
//! use iptvportal_dump::{DumpConfig, DumpFormat, DumpService, DumpStrategy};
//! use iptvportal_query::Q;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(ClientConfig::from_env()?)?;
//! let service = DumpService::new(client);
//! let config = DumpConfig::new("terminal", "./dumps")
//!     .format(DumpFormat::Parquet)
//!     .strategy(DumpStrategy::IdRange)
//!     .where_clause(Q::lookup("last_seen__gte", "2025-12-15")?);
//! let stats = service.dump(config, None).await?;
//! println!("{} rows", stats.progress.dumped_rows);
//! # Ok(()) }
//! ```
//!
//! The pieces: [`DumpConfig`] (every option of the seed, with its defaults), [`AsyncDumpManager`]
//! (one table: run, pause, resume, cancel, reset, progress), [`DumpService`] (many tables over one
//! client: `dump`, `dump_many`, `pause`, `resume`, `get_stats`), [`DumpProgress`] and
//! [`DumpStats`].
//!
//! Guarantees:
//! - **Exactly once.** Each chunk is made durable by the sink before the checkpoint that points at
//!   it is saved (atomically). Kill the process at any instant and rerun: the output ends up
//!   identical to an uninterrupted dump's.
//! - **Refusal over mixing.** A checkpoint written with other options (filter, columns, format,
//!   compression, order, strategy) is not resumed; the error names the difference.
//! - **Retries per chunk** for transient failures only, with a budget that refills for every chunk.
//! - **Bounded memory**: chunk size times parallelism, never the table's size.

#![deny(missing_docs)]

mod bucket;
mod config;
mod control;
mod error;
mod estimate;
mod manager;
mod materialize;
mod plan;
mod progress;
mod remote;
mod service;
mod source;
mod stats;
pub mod sync;
mod verify;
mod writer;

pub use bucket::{BucketTable, bucket_tables, read_table, verify_bucket};
pub use config::{DumpConfig, DumpFormat, DumpStrategy};
pub use error::{Error, Invalid, Setting, Warning};
pub use estimate::{Estimate, Probe, StartPoint, estimate, total_duration};
pub use manager::{AsyncDumpManager, ProgressCallback};
pub use materialize::{Materialized, materialize};
pub use progress::{DumpProgress, RunState};
pub use remote::RemoteStore;
pub use service::DumpService;
pub use source::{NamedPortal, Portal, RetryHook};
pub use stats::{CountMismatch, DumpStats, Outcome};
pub use verify::{
    MAX_DEPTH, Mismatch, NARROW_ENOUGH, SPLIT, SourceCount, SourceReport, TableReport, TableStatus,
    Uncounted, Unverified, recount, verify_dir,
};

pub use iptvportal_sink::{
    Compression, Error as SinkError, Format, OutputFileInfo, ParquetCodec, ParquetOptions,
};
// What a verification report holds, and the seam a recount reads through.
pub use iptvportal_sink::{Crc32, FileRecord, IdRange, Problem, ProblemKind};
pub use iptvportal_traverse::Invalid as TraversalInvalid;
pub use iptvportal_traverse::RowSource;
// The strategy a run used (`DumpStats::strategy`), beside the one asked for (`DumpStrategy`).
pub use iptvportal_traverse::{Strategy, StrategyChoice};
// Where a resume continues (`StartPoint::Resume`).
pub use iptvportal_traverse::Cursor;

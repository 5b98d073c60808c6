//! Export the tables of an IPTVPortal reliably: in chunks, resumable after any crash, in JSONL,
//! CSV, JSON or Parquet, by OFFSET paging or by keyset id ranges fetched in parallel.
//!
//! This crate gathers the layers of the workspace under one name. Each layer is also its own crate,
//! for code that needs only one of them:
//!
//! | module | crate | what it is |
//! |---|---|---|
//! | [`query`] | `iptvportal-query` | the JSONSQL `Select` AST, [`Q`] filters with Django-style lookups |
//! | [`client`] | `iptvportal-client` | the JSON-RPC client: sessions, retries, typed errors |
//! | [`catalog`] | `iptvportal-catalog` | the known tables, their columns and types |
//! | [`traverse`] | `iptvportal-traverse` | OFFSET, keyset and parallel keyset traversal |
//! | [`sink`] | `iptvportal-sink` | the format encoders and the commit protocol's file side |
//! | [`checkpoint`] | `iptvportal-checkpoint` | the dump state and its atomic store |
//! | [`dump`] | `iptvportal-dump` | the orchestrator: [`DumpService`], [`AsyncDumpManager`] |
//!
//! # Dump a table
//!
//! The example runs against the workspace's local portal simulator; against a real portal, build
//! the client with [`ClientConfig::from_env`] (`IPTVPORTAL_DOMAIN` or `IPTVPORTAL_URL`,
//! `IPTVPORTAL_USERNAME`, `IPTVPORTAL_PASSWORD`).
//!
//! ```
//! use iptvportal::{Client, ClientConfig, DumpConfig, DumpFormat, DumpService, DumpStrategy, Q};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sim = iptvportal_sim::Sim::start(iptvportal_sim::SimConfig::default().rows("terminal", 2500)).await?;
//! # let dir = tempfile::tempdir()?;
//! # let out = dir.path();
//! let client = Client::new(ClientConfig::new(sim.url())?.credentials("admin", "admin"))?;
//! let service = DumpService::new(client);
//!
//! let config = DumpConfig::new("terminal", out)
//!     .format(DumpFormat::Parquet)
//!     .strategy(DumpStrategy::IdRange) // keyset ranges, 3 requests in flight
//!     .where_clause(Q::lookup("last_seen__isnull", false)?);
//! let stats = service.dump(config, None).await?;
//!
//! println!("{} rows into {} file(s)", stats.progress.dumped_rows, stats.files.len());
//! assert!(out.join("terminal-00000.parquet").exists());
//! # Ok(()) }
//! ```
//!
//! Run it again and it says the output is already complete; kill it halfway and run it again and
//! it resumes where the last committed chunk ended, producing the same output as an uninterrupted
//! run. The `examples/` folder has one program per feature of the seed's description: a single
//! table, many tables at once, every format, ID_RANGE, pause and resume, progress callbacks.

#![deny(missing_docs)]

pub use iptvportal_catalog as catalog;
pub use iptvportal_checkpoint as checkpoint;
pub use iptvportal_client as client;
pub use iptvportal_dump as dump;
pub use iptvportal_query as query;
pub use iptvportal_sink as sink;
pub use iptvportal_traverse as traverse;

pub use iptvportal_client::{Client, ClientConfig, RetryPolicy};
pub use iptvportal_dump::{
    AsyncDumpManager, DumpConfig, DumpFormat, DumpProgress, DumpService, DumpStats, DumpStrategy,
    ProgressCallback, RunState,
};
pub use iptvportal_query::{Q, Select, parse_filter};

//! A local IPTVPortal: the JSONSQL admin API over SQLite, with generated data and fault injection.
//!
//! The real portal cannot be reached from tests, demos or benchmarks, so this crate answers the
//! same wire protocol: `authorize_user` on `/api/jsonrpc/` and `select` on `/api/jsonsql/`.
//!
//! - **Data** is generated per catalog table ([`iptvportal_catalog::TABLES`]) into a SQLite file,
//!   deterministically: the same seed and sizes give the same rows, byte for byte. The values look
//!   like a real instance's (Cyrillic names, MAC addresses, multicast groups, id gaps, nulls).
//! - **Selects** are parsed with `iptvportal-query`'s AST, the same types the client serializes, and
//!   compiled to one SQLite statement in which every identifier is checked against the catalog and
//!   every value is a bound parameter. They are answered as a PostgreSQL-backed portal answers
//!   them (the real one is): NULL order, type checking with PostgreSQL's errors, timestamp
//!   literals, identifier case folding, DISTINCT and GROUP BY rules; text order is a
//!   [`Collation`].
//! - **Changes**: [`mutate`] inserts, updates and deletes rows as a portal's data changes (an
//!   update moves the table's change column, e.g. `terminal.last_seen`), and
//!   [`SimConfig::mutate_rate`] does it while serving. An existing database file is served as it
//!   is ([`SimConfig::db_path`]).
//! - **Faults** (latency, HTTP 500, hangs, connection resets, rate limiting, session expiry) come
//!   from a seeded RNG, so a failing test can be replayed.
//!
//! The dialect decisions the real protocol leaves open, and the error codes, are written down in
//! `docs/jsonsql-dialect.md`; running the simulator is described in `docs/simulator.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), iptvportal_sim::Error> {
//! use iptvportal_sim::{Sim, SimConfig};
//! let sim = Sim::start(SimConfig::default().rows("terminal", 10_000)).await?;
//! println!("portal at {}", sim.url()); // http://127.0.0.1:<port>/api/
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod config;
mod db;
mod error;
mod fault;
mod generate;
mod mutate;
mod server;
mod sql;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Collation, OffsetModel, SimConfig, default_rows};
pub use error::Error;
pub use mutate::{Mutation, MutationReport, mutate};

/// Counters of what the simulator has seen since it started: [`Sim::stats`] in-process, and
/// `GET /stats` (this struct as a JSON object, beside `/api/`) for a simulator run as a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SimStats {
    /// `authorize_user` calls, successful or not.
    pub authorize_calls: u64,
    /// `select` calls that passed the rate limit and the session check (faulted ones included).
    pub select_calls: u64,
    /// Selects answered with an injected HTTP 500.
    pub injected_failures: u64,
    /// Selects left hanging.
    pub injected_timeouts: u64,
    /// Selects whose connection was cut mid-body.
    pub injected_resets: u64,
    /// Requests refused with HTTP 429.
    pub rate_limited: u64,
}

/// A running simulator. Dropping it stops the server and removes a temporary database; prefer
/// [`Sim::shutdown`], which also waits for the server to finish.
pub struct Sim {
    url: String,
    addr: SocketAddr,
    db_path: PathBuf,
    state: Arc<server::AppState>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    /// `mutate_rate`'s thread; stopped before the temporary database is removed.
    mutator: Option<mutate::Mutator>,
    /// Removes the database file on drop when the simulator chose it.
    temp: Option<TempDb>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("url", &self.url)
            .field("db_path", &self.db_path)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// Generates the database if needed (absent, or [`regenerate`](SimConfig::regenerate) asked
    /// for; see [`SimConfig::db_path`]) and starts serving on the configured address, and
    /// mutating when [`mutate_rate`](SimConfig::mutate_rate) is set.
    pub async fn start(config: SimConfig) -> Result<Sim, Error> {
        let rows = config.validate()?;
        let (db_path, temp) = if let Some(path) = &config.db_path {
            (path.clone(), None)
        } else {
            let path = temp_db_path();
            (path.clone(), Some(TempDb(path)))
        };
        let seed = config.seed;
        let regenerate = config.regenerate;
        let path = db_path.clone();
        let started = std::time::Instant::now();
        let prepared = tokio::task::spawn_blocking(move || {
            generate::ensure_database(&path, seed, &rows, regenerate)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        match prepared {
            generate::Prepared::Generated(reason) => {
                tracing::info!(path = %db_path.display(), reason, elapsed_ms = started.elapsed().as_millis(), "generated database");
            }
            generate::Prepared::Reused { other_params: Some(stored) } => {
                tracing::info!(path = %db_path.display(), generated_with = %stored, "serving the existing database as it is (its seed or sizes differ from the ones asked for; --regenerate replaces it)");
            }
            generate::Prepared::Reused { other_params: None } => {}
        }
        let pool_size =
            std::thread::available_parallelism().map_or(4, std::num::NonZero::get).clamp(4, 16);
        let pool = db::Pool::open(&db_path, pool_size)?;
        let mutator = match config.mutate_rate {
            Some(rate) => {
                let mut names: Vec<&str> =
                    config.mutate_tables.iter().map(String::as_str).collect();
                if names.is_empty() {
                    names.push("terminal");
                }
                let tables = mutate::resolve_tables(&names)?;
                tracing::info!(rate, tables = ?names, "mutating");
                Some(mutate::Mutator::start(&db_path, tables, rate, seed)?)
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Io { what: format!("binding {}", config.listen), source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Io { what: "reading the bound address".to_owned(), source })?;
        // A wildcard bind is reachable on loopback; the URL names an address a client can dial.
        let mut shown = addr;
        if shown.ip().is_unspecified() {
            shown.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let url = format!("http://{shown}/api/");
        let offset = config.offset;
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(server::AppState::new(config, pool, stopped.clone()));
        let app = server::router(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let mut stopped = stopped;
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "server stopped");
            }
        });
        tracing::info!(%url, ?offset, "serving");
        Ok(Sim { url, addr, db_path, state, stop, task: Some(task), mutator, temp })
    }

    /// The API base, e.g. `http://127.0.0.1:41234/api/`; endpoints are `jsonrpc/` and `jsonsql/` below it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The SQLite file being served, for tests that compare output with the database directly.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Makes every current session expired now: the next select with it gets HTTP 401 / -32001.
    pub fn expire_sessions(&self) {
        self.state.sessions.expire_all();
    }

    /// What the simulator has counted so far.
    pub fn stats(&self) -> SimStats {
        self.state.counters.snapshot()
    }

    /// Stops accepting connections, cuts injected hangs short, and waits (up to a few seconds) for
    /// in-flight requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(mutator) = self.mutator.take() {
            let _ = tokio::task::spawn_blocking(move || drop(mutator)).await;
        }
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Sim {
    /// A function that deletes the database files this simulator generated for itself (nothing
    /// for a database it was given), for a process about to exit without running destructors
    /// (`std::process::exit` on a second Ctrl-C).
    pub fn temp_files_remover(&self) -> impl FnOnce() + Send + 'static {
        let path = self.temp.as_ref().map(|t| t.0.clone());
        move || {
            if let Some(path) = path {
                TempDb::remove(&path);
            }
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A database file the simulator chose, removed (with its WAL companions) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn remove(path: &Path) {
        let _ = generate::remove_database_files(path);
        let mut partial = path.to_owned().into_os_string();
        partial.push(".generating");
        let _ = generate::remove_database_files(Path::new(&partial));
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        TempDb::remove(&self.0);
    }
}

fn temp_db_path() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("iptvportal-sim-{}-{n}-{nanos}.sqlite", std::process::id()))
}

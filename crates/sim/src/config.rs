//! The simulator's configuration: a builder with defaults that make a quiet, fault-free portal.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::Error;

/// How to run a [`Sim`](crate::Sim): where to listen, what data to generate, which faults to inject.
///
/// Every setter takes and returns `self`, so options can grow without breaking callers:
///
/// ```
/// # use iptvportal_sim::SimConfig;
/// let config = SimConfig::default().seed(7).rows("terminal", 100).fail_rate(0.1);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) db_path: Option<PathBuf>,
    pub(crate) rows: BTreeMap<String, u64>,
    pub(crate) seed: u64,
    pub(crate) latency: Duration,
    pub(crate) fail_rate: f64,
    pub(crate) timeout_rate: f64,
    pub(crate) reset_rate: f64,
    pub(crate) rate_limit: Option<u32>,
    pub(crate) session_ttl: Option<Duration>,
    pub(crate) offset: OffsetModel,
    pub(crate) collation: Collation,
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) regenerate: bool,
    pub(crate) mutate_rate: Option<u32>,
    pub(crate) mutate_tables: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            db_path: None,
            rows: BTreeMap::new(),
            seed: 42,
            latency: Duration::ZERO,
            fail_rate: 0.0,
            timeout_rate: 0.0,
            reset_rate: 0.0,
            rate_limit: None,
            session_ttl: None,
            offset: OffsetModel::default(),
            collation: Collation::default(),
            username: "admin".to_owned(),
            password: "admin".to_owned(),
            regenerate: false,
            mutate_rate: None,
            mutate_tables: Vec::new(),
        }
    }
}

impl SimConfig {
    /// The address to listen on; default `127.0.0.1:0` (a free port, see [`Sim::url`](crate::Sim::url)).
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> SimConfig {
        self.listen = addr;
        self
    }

    /// The SQLite file to serve. It is generated when absent (or empty) and kept afterwards; an
    /// existing simulator database is served as it is, whatever its row counts and whatever
    /// [`seed`](SimConfig::seed) and [`rows`](SimConfig::rows) say, since it may have been
    /// [mutated](crate::mutate) on purpose. [`regenerate`](SimConfig::regenerate) replaces it; so
    /// does a file written by another generator version, whose tables may not match the catalog.
    /// A file that is not a simulator database is refused. Default: a temporary file removed with
    /// the `Sim`.
    #[must_use]
    pub fn db_path(mut self, path: impl Into<PathBuf>) -> SimConfig {
        self.db_path = Some(path.into());
        self
    }

    /// How many rows to generate for `table`, overriding [`default_rows`](crate::default_rows).
    /// A name that is not in the catalog is refused by [`Sim::start`](crate::Sim::start).
    #[must_use]
    pub fn rows(mut self, table: &str, n: u64) -> SimConfig {
        self.rows.insert(table.to_owned(), n);
        self
    }

    /// The seed of the data generator and of the fault injector; default 42.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> SimConfig {
        self.seed = seed;
        self
    }

    /// A delay added to every request before it is answered; default none.
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> SimConfig {
        self.latency = latency;
        self
    }

    /// The probability (0..=1) that a select is answered with an injected HTTP 500.
    #[must_use]
    pub fn fail_rate(mut self, p: f64) -> SimConfig {
        self.fail_rate = p;
        self
    }

    /// The probability (0..=1) that a select never gets an answer (the server sleeps ~60 s).
    #[must_use]
    pub fn timeout_rate(mut self, p: f64) -> SimConfig {
        self.timeout_rate = p;
        self
    }

    /// The probability (0..=1) that a select's connection is cut in the middle of the response body.
    #[must_use]
    pub fn reset_rate(mut self, p: f64) -> SimConfig {
        self.reset_rate = p;
        self
    }

    /// At most this many select requests per second (a token bucket holding one second's worth);
    /// excess requests get HTTP 429 with `Retry-After: 1`. Default: unlimited.
    #[must_use]
    pub fn rate_limit(mut self, requests_per_second: u32) -> SimConfig {
        self.rate_limit = Some(requests_per_second);
        self
    }

    /// Sessions expire this long after `authorize_user`; default: never.
    #[must_use]
    pub fn session_ttl(mut self, ttl: Duration) -> SimConfig {
        self.session_ttl = Some(ttl);
        self
    }

    /// What a select's OFFSET costs: see [`OffsetModel`]; default
    /// [`OffsetModel::Materialize`], which pays for every skipped row as PostgreSQL does.
    #[must_use]
    pub fn offset(mut self, model: OffsetModel) -> SimConfig {
        self.offset = model;
        self
    }

    /// How text sorts and compares with `<`, `>`, `min` and `max`: see [`Collation`]; default
    /// [`Collation::C`], code-point order.
    #[must_use]
    pub fn collation(mut self, collation: Collation) -> SimConfig {
        self.collation = collation;
        self
    }

    /// The one account `authorize_user` accepts; default `admin` / `admin`.
    #[must_use]
    pub fn credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> SimConfig {
        self.username = username.into();
        self.password = password.into();
        self
    }

    /// Regenerate the [`db_path`](SimConfig::db_path) file from the seed and sizes even though it
    /// exists, discarding its rows and any mutations; default `false` (served as it is).
    #[must_use]
    pub fn regenerate(mut self, regenerate: bool) -> SimConfig {
        self.regenerate = regenerate;
        self
    }

    /// While serving, mutate the database `per_second` times a second (inserts, updates and
    /// deletes, 2:2:1, with change columns set to now) in each of the
    /// [`mutate_table`](SimConfig::mutate_table)s; default: never. Selects keep reading
    /// consistent snapshots.
    #[must_use]
    pub fn mutate_rate(mut self, per_second: u32) -> SimConfig {
        self.mutate_rate = Some(per_second);
        self
    }

    /// Adds a table for [`mutate_rate`](SimConfig::mutate_rate) to change; when none is added,
    /// `terminal`. A name that is not in the catalog is refused by
    /// [`Sim::start`](crate::Sim::start).
    #[must_use]
    pub fn mutate_table(mut self, table: &str) -> SimConfig {
        self.mutate_tables.push(table.to_owned());
        self
    }

    /// Checks ranges and names, and returns the row count of every catalog table.
    pub(crate) fn validate(&self) -> Result<BTreeMap<&'static str, u64>, Error> {
        for (name, p) in [
            ("fail_rate", self.fail_rate),
            ("timeout_rate", self.timeout_rate),
            ("reset_rate", self.reset_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::Config {
                    reason: format!("{name} must be between 0 and 1, got {p}"),
                });
            }
        }
        if self.rate_limit == Some(0) {
            return Err(Error::Config {
                reason: "rate_limit must be at least 1 request per second".to_owned(),
            });
        }
        if self.mutate_rate == Some(0) {
            return Err(Error::Config {
                reason: "mutate_rate must be at least 1 mutation per second".to_owned(),
            });
        }
        let names: Vec<&str> = self.mutate_tables.iter().map(String::as_str).collect();
        crate::mutate::resolve_tables(&names)?;
        let mut rows = default_rows();
        for (table, n) in &self.rows {
            let Some(known) = iptvportal_catalog::table(table) else {
                return Err(Error::Config { reason: format!("unknown table {table:?} in rows") });
            };
            rows.insert(known.name, *n);
        }
        Ok(rows)
    }
}

/// How a select with an OFFSET pays for the rows it skips. Either way the answer is the same, byte
/// for byte; only the time differs.
///
/// The real portal runs on PostgreSQL, whose executor produces every row an OFFSET skips (index
/// scan, heap fetch, visibility check) and lets its Limit node throw it away, so a page deep into
/// a table costs about as much as reading every row before it. SQLite's own OFFSET on a rowid
/// table walks the b-tree past the skipped rows without decoding them, which is many times cheaper
/// (`docs/simulator.md` has the numbers). A simulator that skips cheaply flatters the OFFSET
/// strategy against keyset traversal; the default therefore makes the skipped rows real work.
///
/// Only the OFFSET of the outermost select is affected; one inside a sub-select stays SQLite's.
///
/// ```
/// # use iptvportal_sim::{OffsetModel, SimConfig};
/// let cheap_skips = SimConfig::default().offset(OffsetModel::Native);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OffsetModel {
    /// SQLite's own OFFSET: the skipped rows are stepped over inside the engine, undecoded.
    Native,
    /// Like PostgreSQL's executor: the select runs without its OFFSET (and with `limit + offset`
    /// as its LIMIT), and the simulator steps through the first `offset` rows reading every
    /// column of each (so SQLite decodes them) before it writes the rest. A LIMIT of 0 skips
    /// nothing, as in PostgreSQL, whose Limit node then never runs its input.
    #[default]
    Materialize,
}

/// How text is ordered: by `order_by`, by `gt`/`gte`/`lt`/`lte`, and by `min`/`max`. Equality
/// is byte equality under both (as under every deterministic PostgreSQL collation).
///
/// The real portal's database collation is unknown. PostgreSQL's `"C"` collation orders by code
/// point (byte order of UTF-8), which is what SQLite does natively and costs nothing; a
/// `ru_RU.UTF-8` or ICU database orders linguistically, ignoring case at the first level. A client
/// must not depend on either, and running the same dump under both shows whether it does.
///
/// ```
/// # use iptvportal_sim::{Collation, SimConfig};
/// let linguistic = SimConfig::default().collation(Collation::Unicode);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Collation {
    /// Code-point order, as PostgreSQL's `"C"` collation: `"B" < "a" < "Ё" < "а"`.
    #[default]
    C,
    /// A simple locale-aware order: first by the text with every letter lowercased (Unicode case
    /// mapping), so that case is a tie-breaker rather than the first difference; then by code
    /// point. `"a" < "B" < "а" < "Б"`, `"ё"` after `"е"`. An approximation of a `*.UTF-8` locale,
    /// not ICU: punctuation and accents are not ignored at the first level.
    Unicode,
}

/// The default number of rows generated per catalog table: small enough to generate in well under a
/// second, large enough that chunked dumps take several chunks.
pub fn default_rows() -> BTreeMap<&'static str, u64> {
    let mut rows: BTreeMap<&'static str, u64> =
        iptvportal_catalog::TABLES.iter().map(|t| (t.name, 1000)).collect();
    for (name, n) in [
        ("subscriber", 2000),
        ("terminal", 5000),
        ("package", 40),
        ("subscriber_package", 4000),
        ("media", 600),
        ("tv_channel", 300),
        ("tv_program", 5000),
        ("tv_category", 25),
        ("tv_program_category", 6000),
        ("terminal_playlog", 8000),
    ] {
        // Only tables the catalog knows: a renamed table keeps the generic default instead of
        // inventing a table the server would refuse to serve.
        if let Some(n_ref) = rows.get_mut(name) {
            *n_ref = n;
        }
    }
    rows
}

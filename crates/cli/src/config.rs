//! The optional config file: where it is, what it may hold and the typed settings it gives
//! (docs/configuration.md). Which setting wins over which is `settings`'s business; this module
//! only reads the file and refuses a mistake in it, whatever the command.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use iptvportal_dump::{DumpFormat, DumpStrategy};
use serde::Deserialize;

use crate::args::{
    MAX_CHUNK_SIZE, MAX_JOBS, MAX_PARALLEL, MAX_PART_ROWS, MAX_RETRIES, MAX_TIMEOUT_SECS,
};
use crate::failure::Hinted;

/// The variable naming the config file.
pub(crate) const ENV_CONFIG: &str = "IPTVPORTAL_CONFIG";

/// The settings of a config file, every value checked. `None` is a key the file does not set.
#[derive(Debug, Default)]
pub(crate) struct Config {
    pub(crate) connection: Connection,
    pub(crate) dump: Dump,
    pub(crate) storage: Storage,
}

/// The `[storage]` table: object storage for `--out s3://bucket/prefix`, where the standard AWS
/// environment (`AWS_*`) leaves a setting unset (docs/object-storage.md).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Storage {
    pub(crate) endpoint: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) access_key_id: Option<String>,
    pub(crate) secret_access_key: Option<String>,
    pub(crate) session_token: Option<String>,
    pub(crate) allow_http: Option<bool>,
    pub(crate) virtual_hosted: Option<bool>,
    pub(crate) max_retries: Option<u32>,
    /// Where stage directories go (`STAGE_ROOT/BUCKET/PREFIX`) unless `--stage` names one.
    pub(crate) stage_root: Option<PathBuf>,
}

// Written by hand so that a debug print of the settings can never show a secret.
impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("Storage")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("session_token", &redacted(&self.session_token))
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted", &self.virtual_hosted)
            .field("max_retries", &self.max_retries)
            .field("stage_root", &self.stage_root)
            .finish()
    }
}

/// The `[connection]` table.
#[derive(Clone, Default)]
pub(crate) struct Connection {
    pub(crate) portal: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_retries: Option<u32>,
    pub(crate) insecure: Option<bool>,
}

// Written by hand so that a debug print of the settings can never show the password.
impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("portal", &self.portal)
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// The `[dump]` table: defaults of `dump` (`out` also of `status`).
#[derive(Debug, Default)]
pub(crate) struct Dump {
    pub(crate) out: Option<PathBuf>,
    pub(crate) format: Option<DumpFormat>,
    pub(crate) chunk_size: Option<u64>,
    pub(crate) strategy: Option<DumpStrategy>,
    pub(crate) parallel: Option<usize>,
    pub(crate) jobs: Option<usize>,
    pub(crate) compress: Option<bool>,
    /// Rows per part (`--part-rows`).
    pub(crate) part_rows: Option<u64>,
    /// Where `dump` writes its JSON summary.
    pub(crate) summary: Option<PathBuf>,
    /// Tables `--all` leaves out, each a catalog table.
    pub(crate) exclude: Option<Vec<String>>,
    /// Columns left out of their tables, each `TABLE.COLUMN` of the catalog.
    pub(crate) exclude_columns: Option<Vec<String>>,
}

/// The file as written. Unknown keys are refused, so that a typo (`chunksize`) is not silently
/// ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    connection: ConnectionSection,
    #[serde(default)]
    dump: DumpSection,
    #[serde(default)]
    storage: StorageSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageSection {
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    allow_http: Option<bool>,
    virtual_hosted: Option<bool>,
    max_retries: Option<u32>,
    stage_root: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionSection {
    portal: Option<String>,
    domain: Option<String>,
    username: Option<String>,
    password: Option<String>,
    timeout: Option<f64>,
    max_retries: Option<u32>,
    insecure: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DumpSection {
    out: Option<PathBuf>,
    format: Option<String>,
    chunk_size: Option<u64>,
    strategy: Option<String>,
    parallel: Option<u64>,
    jobs: Option<u64>,
    compress: Option<bool>,
    part_rows: Option<u64>,
    summary: Option<PathBuf>,
    exclude: Option<Vec<String>>,
    exclude_columns: Option<Vec<String>>,
}

/// Where the config file is: `--config`, else `$IPTVPORTAL_CONFIG` (both must be readable), else
/// the default location (used only when it exists, and skipped with a warning when it cannot be
/// read). The flag says whether the file was asked for.
fn locate(flag: Option<&Path>) -> Option<(PathBuf, bool)> {
    if let Some(path) = flag {
        return Some((path.to_owned(), true));
    }
    if let Some(path) = std::env::var_os(ENV_CONFIG).filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(path), true));
    }
    default_path().map(|p| (p, false))
}

/// `$XDG_CONFIG_HOME/iptvportal/config.toml`, else `~/.config/iptvportal/config.toml`.
fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|p| !p.is_empty())
                .map(|h| Path::new(&h).join(".config"))
        })?;
    Some(base.join("iptvportal").join("config.toml"))
}

/// Reads the config file `--config` names (`flag`), else the one the environment or the default
/// location gives; `None` when there is none. Every value is checked, whatever the command, so
/// that a mistake in the file shows at once.
///
/// A file asked for that cannot be read is an error. The default location is only a place to
/// look: when something there cannot be read (a directory, a file without read permission), the
/// run goes on without it after a warning, since no config was asked for.
pub(crate) fn load(flag: Option<&Path>) -> anyhow::Result<Option<Config>> {
    let Some((path, explicit)) = locate(flag) else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if !explicit => {
            crate::output::note(&format!(
                "warning: cannot read the config file {}: {e}; going on without it; make it a readable file, or pass --config FILE",
                path.display()
            ));
            return Ok(None);
        }
        Err(e) => {
            return Err(Hinted::new(
                format!("cannot read config file {}: {e}", path.display()),
                format!("fix the path given with --config or {ENV_CONFIG}, or create the file"),
            )
            .into());
        }
    };
    tracing::debug!(path = %path.display(), "config file");
    let file = parse(&path, &text)?;
    if file.connection.password.is_some() || file.storage.secret_access_key.is_some() {
        warn_if_readable(&path);
    }
    check(&path, file).map(Some)
}

/// The typed settings of a parsed file, or the first value out of its set.
fn check(path: &Path, file: File) -> anyhow::Result<Config> {
    let c = file.connection;
    let timeout = c
        .timeout
        .map(|secs| {
            if secs > f64::from(MAX_TIMEOUT_SECS) {
                let what = format!("must be more than 0 and at most {MAX_TIMEOUT_SECS} seconds");
                return Err(invalid(path, "connection.timeout", &what));
            }
            Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| invalid(path, "connection.timeout", "must be more than 0 seconds"))
        })
        .transpose()?;
    if let Some(retries) = c.max_retries
        && retries > MAX_RETRIES
    {
        let what = format!("must be 0 to {MAX_RETRIES}");
        return Err(invalid(path, "connection.max_retries", &what));
    }
    let connection = Connection {
        portal: c.portal,
        domain: c.domain,
        username: c.username,
        password: c.password,
        timeout,
        max_retries: c.max_retries,
        insecure: c.insecure,
    };

    let d = file.dump;
    // Matched as clap matches the options' values before it, but ignoring case, as the file
    // always has.
    let format = d
        .format
        .as_deref()
        .map(|f| {
            DumpFormat::ALL
                .into_iter()
                .find(|known| known.as_str().eq_ignore_ascii_case(f))
                .ok_or_else(|| invalid(path, "dump.format", "must be jsonl, csv, json or parquet"))
        })
        .transpose()?;
    let strategy = d
        .strategy
        .as_deref()
        .map(|s| {
            DumpStrategy::ALL
                .into_iter()
                .find(|known| known.as_str().eq_ignore_ascii_case(s))
                .ok_or_else(|| invalid(path, "dump.strategy", "must be auto, offset or id-range"))
        })
        .transpose()?;
    // The bounds of the flags of the same names (`args`).
    for (key, value, max) in [
        ("dump.chunk_size", d.chunk_size, MAX_CHUNK_SIZE),
        ("dump.parallel", d.parallel, MAX_PARALLEL),
        ("dump.jobs", d.jobs, MAX_JOBS),
        ("dump.part_rows", d.part_rows, MAX_PART_ROWS),
    ] {
        match value {
            Some(0) => return Err(invalid(path, key, "must be at least 1")),
            Some(n) if n > max => return Err(invalid(path, key, &format!("must be 1 to {max}"))),
            _ => {}
        }
    }
    let count = |key: &str, n: Option<u64>| {
        n.map(|n| usize::try_from(n).map_err(|_| invalid(path, key, "is too large"))).transpose()
    };
    check_exclusions(path, &d)?;
    let dump = Dump {
        out: d.out,
        format,
        chunk_size: d.chunk_size,
        strategy,
        parallel: count("dump.parallel", d.parallel)?,
        jobs: count("dump.jobs", d.jobs)?,
        compress: d.compress,
        part_rows: d.part_rows,
        summary: d.summary,
        exclude: d.exclude,
        exclude_columns: d.exclude_columns,
    };
    let storage = check_storage(path, file.storage)?;
    Ok(Config { connection, dump, storage })
}

/// The file's `exclude` and `exclude_columns`: tables and columns of the catalog only.
fn check_exclusions(path: &Path, d: &DumpSection) -> anyhow::Result<()> {
    if let Some(unknown) =
        d.exclude.iter().flatten().find(|t| iptvportal_catalog::table(t).is_none())
    {
        return Err(invalid(
            path,
            "dump.exclude",
            &format!("names {unknown:?}, which is not a table of the catalog (docs/tables.md)"),
        ));
    }
    for item in d.exclude_columns.iter().flatten() {
        let known = item.split_once('.').and_then(|(table, column)| {
            iptvportal_catalog::table(table).and_then(|t| t.column(column))
        });
        if known.is_none() {
            return Err(invalid(
                path,
                "dump.exclude_columns",
                &format!(
                    "names {item:?}, which is not TABLE.COLUMN of a catalog table (docs/tables.md)"
                ),
            ));
        }
    }
    Ok(())
}

/// The `[storage]` table, checked: a key id goes with its secret, a token with both.
fn check_storage(path: &Path, st: StorageSection) -> anyhow::Result<Storage> {
    if let Some(retries) = st.max_retries
        && retries > MAX_RETRIES
    {
        let what = format!("must be 0 to {MAX_RETRIES}");
        return Err(invalid(path, "storage.max_retries", &what));
    }
    if st.access_key_id.is_some() != st.secret_access_key.is_some() {
        return Err(invalid(
            path,
            if st.access_key_id.is_some() {
                "storage.access_key_id"
            } else {
                "storage.secret_access_key"
            },
            "needs its pair: set both access_key_id and secret_access_key, or neither",
        ));
    }
    if st.session_token.is_some() && st.access_key_id.is_none() {
        return Err(invalid(
            path,
            "storage.session_token",
            "goes with access_key_id and secret_access_key",
        ));
    }
    if let Some(endpoint) = &st.endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        return Err(invalid(path, "storage.endpoint", "must be an http:// or https:// URL"));
    }
    Ok(Storage {
        endpoint: st.endpoint,
        region: st.region,
        access_key_id: st.access_key_id,
        secret_access_key: st.secret_access_key,
        session_token: st.session_token,
        allow_http: st.allow_http,
        virtual_hosted: st.virtual_hosted,
        max_retries: st.max_retries,
        stage_root: st.stage_root,
    })
}

/// Parses the file; an error names the file, the line and the key.
fn parse(path: &Path, text: &str) -> anyhow::Result<File> {
    toml::from_str(text).map_err(|e| {
        let line =
            e.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map_or_else(String::new, |l| format!(", line {l}"));
        let message = e.message().trim().replace('\n', " ");
        Hinted::new(
            format!("config file {}{at}: {message}", path.display()),
            "fix the file; docs/configuration.md lists the keys",
        )
        .into()
    })
}

fn invalid(path: &Path, key: &str, what: &str) -> anyhow::Error {
    Hinted::new(
        format!("config file {}: {key} {what}", path.display()),
        "fix the file; docs/configuration.md lists the keys",
    )
    .into()
}

/// A password in a file others can read is a leaked password; say so (but go on: the file is the
/// user's to fix, and refusing would break a working setup on the day it is noticed).
#[cfg(unix)]
fn warn_if_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        crate::output::note(&format!(
            "warning: config file {} holds a password and is readable by other users; run chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
}

#[cfg(not(unix))]
fn warn_if_readable(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_name_the_key_the_file_and_the_line() {
        let e =
            parse(Path::new("/c.toml"), "[dump]\nformat = \"csv\"\nchunksize = 5\n").unwrap_err();
        let line = crate::failure::render(&e);
        assert!(
            line.starts_with("error: config file /c.toml, line 3: unknown field `chunksize`"),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");
        let e = parse(Path::new("/c.toml"), "colour = 1\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn every_documented_key_parses() {
        let file = parse(
            Path::new("/c.toml"),
            r#"
[connection]
portal = "https://portal.example.com/api/"
domain = "acme"
username = "admin"
password = "pa55-secret"
timeout = 12.5
max_retries = 5
insecure = true

[dump]
out = "/data"
format = "parquet"
chunk_size = 10000
strategy = "id-range"
parallel = 4
jobs = 3
compress = false
part_rows = 250000
summary = "/data/summary.json"
exclude = ["media"]
exclude_columns = ["subscriber.password", "subscriber.phone"]

[storage]
endpoint = "https://storage.example"
region = "ru-central1"
access_key_id = "key-id"
secret_access_key = "s3-key-secret"
session_token = "s3-token-secret"
allow_http = false
virtual_hosted = true
max_retries = 7
stage_root = "/var/cache/stage"
"#,
        )
        .unwrap();
        assert_eq!(file.connection.timeout, Some(12.5));
        assert_eq!(file.dump.strategy.as_deref(), Some("id-range"));
        let config = check(Path::new("/c.toml"), file).unwrap();
        assert_eq!(config.connection.timeout, Some(Duration::from_secs_f64(12.5)));
        assert_eq!(config.dump.format, Some(DumpFormat::Parquet));
        assert_eq!(config.dump.strategy, Some(DumpStrategy::IdRange));
        assert_eq!(config.dump.parallel, Some(4));
        assert_eq!(config.dump.part_rows, Some(250_000));
        assert_eq!(config.dump.summary.as_deref(), Some(Path::new("/data/summary.json")));
        assert_eq!(config.dump.exclude, Some(vec!["media".to_owned()]));
        assert_eq!(
            config.dump.exclude_columns,
            Some(vec!["subscriber.password".to_owned(), "subscriber.phone".to_owned()])
        );
        assert_eq!(config.storage.endpoint.as_deref(), Some("https://storage.example"));
        assert_eq!(config.storage.access_key_id.as_deref(), Some("key-id"));
        assert_eq!(config.storage.secret_access_key.as_deref(), Some("s3-key-secret"));
        assert_eq!(config.storage.virtual_hosted, Some(true));
        assert_eq!(config.storage.max_retries, Some(7));
        assert_eq!(config.storage.stage_root.as_deref(), Some(Path::new("/var/cache/stage")));
        let debug = format!("{config:?}");
        for secret in ["pa55-secret", "s3-key-secret", "s3-token-secret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn values_out_of_their_set_name_the_key() {
        let refused = |text: &str| {
            let file = parse(Path::new("/c.toml"), text).unwrap();
            crate::failure::render(&check(Path::new("/c.toml"), file).unwrap_err())
        };
        let line = refused("[dump]\nformat = \"xml\"\n");
        assert!(
            line.starts_with(
                "error: config file /c.toml: dump.format must be jsonl, csv, json or parquet"
            ),
            "{line}"
        );
        let line = refused("[dump]\nstrategy = \"keyset\"\n");
        assert!(line.contains("dump.strategy must be auto, offset or id-range"), "{line}");
        let line = refused("[dump]\njobs = 0\n");
        assert!(line.contains("dump.jobs must be at least 1"), "{line}");
        let line = refused("[connection]\ntimeout = 0\n");
        assert!(line.contains("connection.timeout must be more than 0 seconds"), "{line}");
        let line = refused("[connection]\ntimeout = 1e20\n");
        assert!(
            line.contains("connection.timeout must be more than 0 and at most 3600 seconds"),
            "{line}"
        );
        let line = refused("[connection]\nmax_retries = 101\n");
        assert!(line.contains("connection.max_retries must be 0 to 100"), "{line}");
        let line = refused("[dump]\nchunk_size = 1000001\n");
        assert!(line.contains("dump.chunk_size must be 1 to 1000000"), "{line}");
        let line = refused("[dump]\nparallel = 9223372036854775807\n");
        assert!(line.contains("dump.parallel must be 1 to 64"), "{line}");
        let line = refused("[dump]\npart_rows = 0\n");
        assert!(line.contains("dump.part_rows must be at least 1"), "{line}");
        let line = refused("[dump]\npart_rows = 100000001\n");
        assert!(line.contains("dump.part_rows must be 1 to 100000000"), "{line}");
        let line = refused("[dump]\njobs = 65\n");
        assert!(line.contains("dump.jobs must be 1 to 64"), "{line}");
        let line = refused("[dump]\nexclude = [\"medias\"]\n");
        assert!(
            line.starts_with(
                "error: config file /c.toml: dump.exclude names \"medias\", which is not a table of the catalog (docs/tables.md)"
            ),
            "{line}"
        );
        for item in ["password", "subscriber.pasword", "nosuch.password"] {
            let line = refused(&format!("[dump]\nexclude_columns = [{item:?}]\n"));
            assert!(
                line.contains(&format!(
                    "dump.exclude_columns names {item:?}, which is not TABLE.COLUMN of a catalog table"
                )),
                "{line}"
            );
        }
        // Case is ignored, as it always was in the file.
        let file =
            parse(Path::new("/c.toml"), "[dump]\nformat = \"CSV\"\nstrategy = \"Id-Range\"\n");
        let config = check(Path::new("/c.toml"), file.unwrap()).unwrap();
        assert_eq!(config.dump.format, Some(DumpFormat::Csv));
        assert_eq!(config.dump.strategy, Some(DumpStrategy::IdRange));
    }
}

//! The optional config file: connection settings and `dump` defaults, below the command-line
//! options and the environment (docs/configuration.md).
//!
//! Precedence is decided per setting from where clap took each value: a value given on the
//! command line (or, for `--username`, in the environment) wins; a value clap filled in as its
//! default is replaced by the file's. So `--help` keeps showing the real defaults and the file
//! needs no second copy of them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use clap::ValueEnum;
use clap::parser::ValueSource;
use serde::Deserialize;

use crate::args::{Cli, Command, DumpFormat, DumpStrategy};
use crate::failure::Hinted;

/// The variable naming the config file.
pub(crate) const ENV_CONFIG: &str = "IPTVPORTAL_CONFIG";

/// Connection settings of the file; the options and the environment come first.
#[derive(Clone, Default)]
pub(crate) struct ConnectionFile {
    pub(crate) portal: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

// Written by hand so that a debug print of the command line can never show the password.
impl fmt::Debug for ConnectionFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionFile")
            .field("portal", &self.portal)
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
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
}

/// Where the config file is: `--config`, else `$IPTVPORTAL_CONFIG` (both must exist), else the
/// default location (used only when it exists).
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
pub(crate) fn default_path() -> Option<PathBuf> {
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

/// Reads the config file, if any, and fills in every setting the command line left at its
/// default. `matches` are the ones `cli` was built from.
pub(crate) fn apply(cli: &mut Cli, matches: &ArgMatches) -> anyhow::Result<()> {
    let Some((path, explicit)) = locate(cli.config.as_deref()) else { return Ok(()) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
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
    if file.connection.password.is_some() {
        warn_if_readable(&path);
    }
    let sub = matches.subcommand().map(|(_, m)| m);
    let given = |id: &str| {
        // `value_source` panics on an id its command does not define: ask only where it is.
        let explicit = |m: &ArgMatches| {
            m.try_contains_id(id).is_ok()
                && matches!(
                    m.value_source(id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
        };
        explicit(matches) || sub.is_some_and(explicit)
    };

    let c = file.connection;
    let connection = &mut cli.connection;
    connection.file = ConnectionFile {
        portal: c.portal,
        domain: c.domain,
        username: c.username,
        password: c.password,
    };
    if let Some(secs) = c.timeout
        && !given("timeout")
    {
        connection.timeout = Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| invalid(&path, "connection.timeout", "must be more than 0 seconds"))?;
    }
    if let Some(n) = c.max_retries
        && !given("max_retries")
    {
        connection.max_retries = n;
    }
    if let Some(insecure) = c.insecure
        && !given("insecure")
        && !given("no_insecure")
    {
        connection.insecure = insecure;
    }

    apply_dump(cli, file.dump, &path, &given)
}

/// The `[dump]` table: checked whatever the command, so that a mistake in the file shows at once;
/// applied to `dump` and (`out` only) `status`.
fn apply_dump(
    cli: &mut Cli,
    d: DumpSection,
    path: &Path,
    given: &dyn Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let path = path.to_owned();
    let format = d
        .format
        .as_deref()
        .map(|f| {
            DumpFormat::from_str(f, true)
                .map_err(|_| invalid(&path, "dump.format", "must be jsonl, csv, json or parquet"))
        })
        .transpose()?;
    let strategy = d
        .strategy
        .as_deref()
        .map(|s| {
            DumpStrategy::from_str(s, true)
                .map_err(|_| invalid(&path, "dump.strategy", "must be offset or id-range"))
        })
        .transpose()?;
    for (key, value) in
        [("dump.chunk_size", d.chunk_size), ("dump.parallel", d.parallel), ("dump.jobs", d.jobs)]
    {
        if value == Some(0) {
            return Err(invalid(&path, key, "must be at least 1"));
        }
    }
    let count =
        |key: &str, n: u64| usize::try_from(n).map_err(|_| invalid(&path, key, "is too large"));
    match &mut cli.command {
        Command::Dump(args) => {
            if let Some(out) = d.out
                && !given("out")
            {
                args.out = out;
            }
            if let Some(format) = format
                && !given("format")
            {
                args.format = format;
            }
            if let Some(strategy) = strategy
                && !given("strategy")
            {
                args.strategy = strategy;
            }
            if let Some(n) = d.chunk_size
                && !given("chunk_size")
            {
                args.chunk_size = n;
            }
            if let Some(n) = d.parallel
                && !given("parallel")
            {
                args.parallel = count("dump.parallel", n)?;
            }
            if let Some(n) = d.jobs
                && !given("jobs")
            {
                args.jobs = count("dump.jobs", n)?;
            }
            if let Some(compress) = d.compress
                && !given("compress")
                && !given("no_compress")
            {
                args.compress = compress;
            }
        }
        Command::Status(args) => {
            if args.out.is_none() {
                args.out = d.out;
            }
        }
        Command::Select(_) | Command::Auth | Command::Reference => {}
    }
    Ok(())
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
        eprintln!(
            "warning: config file {} holds a password and is readable by other users; run chmod 600 {}",
            path.display(),
            path.display()
        );
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
password = "secret"
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
"#,
        )
        .unwrap();
        assert_eq!(file.connection.timeout, Some(12.5));
        assert_eq!(file.dump.strategy.as_deref(), Some("id-range"));
        let debug = format!(
            "{:?}",
            ConnectionFile { password: Some("secret".into()), ..Default::default() }
        );
        assert!(!debug.contains("secret"), "{debug}");
    }
}

//! Turning any failure into the one line a user sees: `error: <what happened>; <what to do>`.

use std::fmt;
use std::fmt::Write as _;

use iptvportal_client::Error as ClientError;

/// An error raised by the CLI itself, carrying its own advice.
#[derive(Debug)]
pub(crate) struct Hinted {
    message: String,
    hint: String,
}

impl Hinted {
    pub(crate) fn new(message: impl Into<String>, hint: impl Into<String>) -> Hinted {
        Hinted { message: message.into(), hint: hint.into() }
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// The line printed for `error`, without a trailing newline.
pub(crate) fn render(error: &anyhow::Error) -> String {
    if let Some(e) = error.downcast_ref::<iptvportal_dump::Error>() {
        return render_dump(e);
    }
    // `{:#}` joins any context with the cause on one line; newlines inside a server's message are
    // flattened so that the error stays one line.
    let what = format!("{error:#}");
    one_line(&what, hint(error).as_deref())
}

/// The line printed for a table whose dump failed: `error: <table>: <what happened>; <what to do>`.
///
/// The orchestrator says what happened in its own words; what to do, with this tool's flags, is
/// said here, by variant.
pub(crate) fn render_dump(error: &iptvportal_dump::Error) -> String {
    use iptvportal_dump::Error as E;
    let hint = match error {
        E::Config { table, invalid } => {
            let (what, hint) = config_advice(invalid);
            let what = what.unwrap_or_else(|| invalid.to_string());
            return one_line(&format!("{table}: {what}"), Some(&hint));
        }
        E::Fetch { .. } => fetch_hint(error.is_transient(), error),
        E::Sink { .. } | E::Checkpoint { .. } | E::Sync { .. } if disk_full(error) => {
            DISK_FULL_HINT.to_owned()
        }
        E::Sync { problem, .. } => sync_hint(problem).to_owned(),
        E::Sink { table, source } => sink_hint(table, source),
        // Object storage's reasons say what to fix themselves (the bucket, the credentials).
        E::Checkpoint { source: iptvportal_checkpoint::Error::Remote { .. }, .. } => {
            return one_line(&error.to_string(), None);
        }
        E::Checkpoint { source, .. } => checkpoint_hint(source).to_owned(),
        E::OutputDir { .. } => "choose another --out or fix its permissions".to_owned(),
        E::ShapeMismatch { .. } => {
            "rerun with the same options to resume, or start over with --reset".to_owned()
        }
        E::Conflict { .. } => "give them different output directories".to_owned(),
        E::Locked { .. } => LOCKED_HINT.to_owned(),
        E::Cancelled { .. } => "run the same command again to resume".to_owned(),
        _ => "run again with --debug for details".to_owned(),
    };
    one_line(&error.to_string(), Some(&hint))
}

/// What to do about a sync that cannot go on.
fn sync_hint(problem: &iptvportal_dump::sync::SyncProblem) -> &'static str {
    use iptvportal_dump::sync::SyncProblem as P;
    match problem {
        P::OtherPortal { .. } => {
            "sync from the portal the runs came from, or start the table's runs over with --reset \
             (this deletes them)"
        }
        P::OtherOptions { .. } => {
            "rerun with the options of the first run, or start the table's runs over with --reset \
             (this deletes them)"
        }
        P::Cursor { .. } => {
            "give --cursor a timestamp column of the table that records when a row changed, or \
             leave it out"
        }
        P::Lag(_) => "give --lag 1s or more",
        P::IdLeftOut { .. } => "keep the id column in --columns (and out of --exclude-columns)",
        P::Record { .. } => {
            "a sync record is only followed as this tool wrote it: check the runs with \
             `iptvportal verify`; --reset starts the table's runs over"
        }
        P::NoRuns { .. } => "run `iptvportal sync TABLE --out DIR` first, then materialize DIR",
        _ => "check that the directory is writable and rerun: committed runs are kept",
    }
}

/// Refuses a path that is a URL (`s3://bucket/prefix`): object storage is not an output yet, and
/// taken as a path it would be a local directory named `s3:`. `what` names the option.
pub(crate) fn local_path(path: &std::path::Path, what: &str) -> Result<(), Hinted> {
    let text = path.to_string_lossy();
    match text.split_once("://") {
        Some((scheme, _))
            if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Err(Hinted::new(
                format!(
                    "{what} {text} is a URL: object storage is written by `dump --out s3://...` only"
                ),
                "give a local directory (copy a dump in a bucket down with the store's own tool, \
                 e.g. `aws s3 sync`)",
            ))
        }
        _ => Ok(()),
    }
}

/// What to do about a full disk: `--reset` would delete what is committed, and the directory is
/// writable, so neither is the advice.
const DISK_FULL_HINT: &str =
    "free space on that disk and rerun: the dump resumes from its last commit";

/// Whether the cause of `error`, wherever in its chain, is a full disk.
fn disk_full(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
    })
}

/// What to do about a table another run is writing.
const LOCKED_HINT: &str = "wait for that run to finish or stop it; other tables in the same directory can be dumped at the same time";

/// What to do about a checkpoint that cannot be used.
pub(crate) fn checkpoint_hint(error: &iptvportal_checkpoint::Error) -> &'static str {
    use iptvportal_checkpoint::Error as E;
    match error {
        E::Corrupt { .. } => {
            "a checkpoint is only followed as this tool wrote it; start the table over with \
             --reset (this also deletes its output)"
        }
        E::Version { .. } => "upgrade iptvportal or start over with --reset",
        E::Locked { .. } => LOCKED_HINT,
        _ => "check that the output directory is writable; --reset starts over",
    }
}

/// `error: <what>; <hint>` on one line. Newlines inside a message (a server's) are flattened, and
/// a word too long to read (user input of any length, echoed by a library or by the portal) is
/// cut to its start.
fn one_line(what: &str, hint: Option<&str>) -> String {
    let what = shorten_words(&what.replace(['\n', '\r'], " "));
    match hint {
        Some(hint) => format!("error: {what}; {hint}"),
        None => format!("error: {what}"),
    }
}

/// The longest run of non-blank characters an error line repeats whole, and how much of a longer
/// one it keeps: a `--where-json` or a column name can be thousands of characters long.
const LONGEST_WORD: usize = 100;
const KEPT: usize = 60;

fn shorten_words(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(1024));
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let chars = word.chars().count();
        if chars > LONGEST_WORD {
            out.extend(word.chars().take(KEPT));
            // Writing to a String cannot fail.
            let _ = write!(out, "… ({chars} characters)");
        } else {
            out.push_str(word);
        }
    }
    out
}

/// A refused option, in the words of this command line: the message when the library's names
/// an option by its API name, and the advice.
fn config_advice(invalid: &iptvportal_dump::Invalid) -> (Option<String>, String) {
    use iptvportal_dump::Invalid as I;
    use iptvportal_dump::TraversalInvalid as T;
    let own = |what: &str, hint: &str| (Some(what.to_owned()), hint.to_owned());
    match invalid {
        I::CompressParquet => own(
            "--compress applies to jsonl, csv and json; parquet files are always compressed (zstd)",
            "drop --compress",
        ),
        I::LevelWithoutCompress => own(
            "--compress-level needs --compress (or compress = true in the config file)",
            "add --compress or drop --compress-level",
        ),
        I::ResumeOffsetNeedsOffset => own(
            "--resume-offset needs the offset strategy; id-range resumes by id",
            "drop --resume-offset or use --strategy offset",
        ),
        I::Traversal(T::IdRangeOrder { .. }) => {
            (None, "drop --order-by or use --strategy offset".to_owned())
        }
        I::NoIdColumn(_) => (
            None,
            "drop --strategy id-range: the default, auto, walks such a table by offset".to_owned(),
        ),
        I::ColumnsAndExclude => own(
            "--columns and --exclude-columns both name its columns",
            "give one of them for this table",
        ),
        I::ExcludeUnknownTable => (
            None,
            "--exclude-columns applies to the tables of docs/tables.md; use --columns for others"
                .to_owned(),
        ),
        I::ExcludesEveryColumn => own(
            "--exclude-columns leaves none of its columns",
            "leave at least one column in, or --exclude the table from --all",
        ),
        // A library caller's filter of the wrong types (the command line's are refused before).
        I::Filter(_) | I::FilterValue(_) => (
            None,
            "fix --where or --where-json (docs/tables.md lists each column's type)".to_owned(),
        ),
        _ => (None, "see `iptvportal dump --help`".to_owned()),
    }
}

/// What to do about a failed write.
fn sink_hint(table: &str, error: &iptvportal_dump::SinkError) -> String {
    use iptvportal_dump::SinkError as S;
    match error {
        S::ResumeMismatch { path, .. } | S::Changed { path, .. } => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            let dir = dir.map_or_else(|| ".".to_owned(), |d| d.display().to_string());
            format!(
                "`iptvportal verify {dir} {table}` lists every difference; restore the files, \
                 or start the table over with --reset (which deletes its output)"
            )
        }
        _ => "check the output directory (free space, permissions); a rerun resumes from the last commit, --reset starts over"
            .to_owned(),
    }
}

/// A warning about a dump that succeeded, with this command line's advice.
pub(crate) fn render_warning(warning: &iptvportal_dump::Warning) -> String {
    use iptvportal_dump::Warning as W;
    match warning {
        W::ColumnsByPosition { table } => format!(
            "warning: {table} is not in the catalog and no --columns were given: columns are named by position (col1, col2, …)"
        ),
        // Only where id-range can walk the table: the catalog knows its id column, or does not
        // know the table.
        W::CountMismatch { table, strategy: iptvportal_dump::Strategy::Offset, .. }
            if iptvportal_catalog::table(table).is_none_or(|t| t.id_column.is_some()) =>
        {
            format!("warning: {warning}: use --strategy id-range for a consistent walk")
        }
        _ => format!("warning: {warning}"),
    }
}

/// Advice for a failed fetch: the client's, when the portal's error is underneath.
fn fetch_hint(transient: bool, error: &(dyn std::error::Error + 'static)) -> String {
    let client = std::iter::successors(Some(error), |e| e.source())
        .find_map(|e| e.downcast_ref::<ClientError>());
    let mut hint = match client {
        Some(e) => client_hint(e),
        None => "run again with --debug for details".to_owned(),
    };
    if transient {
        hint.push_str("; committed chunks are kept, so a rerun resumes");
    }
    hint
}

/// What to do about `error`, when there is something to say.
fn hint(error: &anyhow::Error) -> Option<String> {
    if let Some(h) = error.downcast_ref::<Hinted>() {
        return Some(h.hint.clone());
    }
    if let Some(e) = error.downcast_ref::<ClientError>() {
        return Some(client_hint(e));
    }
    if let Some(e) = error.downcast_ref::<iptvportal_query::Error>()
        && let Some(hint) = filter_type_hint(e)
    {
        return Some(hint.to_owned());
    }
    if error.downcast_ref::<iptvportal_query::Error>().is_some() {
        return Some(
            "see `iptvportal select --help` for the --where, --where-json and --order-by forms"
                .to_owned(),
        );
    }
    if let Some(e) = error.downcast_ref::<std::io::Error>() {
        return Some(format!("check that the output can be written ({:?})", e.kind()));
    }
    None
}

/// What to do about a filter value of the wrong type, or a pattern lookup on a column that is not
/// text; `None` for the other query errors.
fn filter_type_hint(e: &iptvportal_query::Error) -> Option<&'static str> {
    use iptvportal_query::Error as Q;
    match e {
        Q::FilterType { .. } => {
            Some("write the value as the column's type (docs/tables.md lists each column's type)")
        }
        Q::PatternNeedsText { .. } => Some(
            "compare it with eq, ne, gt, gte, lt, lte or in instead (docs/tables.md lists each column's type)",
        ),
        _ => None,
    }
}

fn client_hint(e: &ClientError) -> String {
    let hint = match e {
        ClientError::Auth { .. } => {
            "check IPTVPORTAL_USERNAME (or --username) and IPTVPORTAL_PASSWORD"
        }
        ClientError::Connect { .. } => {
            "check --portal / IPTVPORTAL_URL (or --domain / IPTVPORTAL_DOMAIN) and that the portal is reachable"
        }
        ClientError::Timeout { .. } => {
            "the portal did not answer in time; check --portal / IPTVPORTAL_URL, or raise --timeout"
        }
        ClientError::NotTls { .. } => "use an http:// --portal URL, or the portal's TLS port",
        ClientError::Tls { .. } => {
            "check the portal's address; for an on-premise portal with a self-signed certificate pass --insecure"
        }
        // The request itself was refused (too large, malformed), not the address.
        ClientError::Http { status: 400 | 413 | 414 | 431, .. } => {
            "the portal refused the request itself; lower --chunk-size, or shorten the filter or the column list"
        }
        ClientError::Http { status, .. } if *status < 500 => {
            "check that --portal / IPTVPORTAL_URL is the portal's API base, e.g. https://portal.example.com/api/"
        }
        ClientError::Http { .. }
        | ClientError::RateLimited { .. }
        | ClientError::BadResponse { .. } => {
            "the portal is failing or overloaded; try again later or raise --max-retries"
        }
        ClientError::SessionExpired { .. } => {
            "try again; if it persists, the portal is dropping sessions"
        }
        ClientError::Server { .. } => {
            "check the table, column names and filters against the portal"
        }
        ClientError::Query { .. } => {
            "see `iptvportal select --help` for the --where, --where-json and --order-by forms"
        }
        ClientError::Config { .. } => "see `iptvportal --help` for the connection options",
        _ => "run again with --debug for details",
    };
    hint.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_one_line_with_advice() {
        let e = anyhow::Error::from(ClientError::Auth {
            message: "invalid username or password".into(),
        });
        assert_eq!(
            render(&e),
            "error: login refused: invalid username or password; check IPTVPORTAL_USERNAME (or --username) and IPTVPORTAL_PASSWORD"
        );
        let e = anyhow::Error::from(ClientError::Server {
            code: -32602,
            message: "no such table:\nnope".into(),
        });
        assert!(!render(&e).contains('\n'));
        let http = |status| {
            render(&anyhow::Error::from(ClientError::Http {
                status,
                url: "http://p/api/jsonsql/".into(),
                message: String::new(),
            }))
        };
        // A request refused as too large or malformed is not the address's fault.
        assert!(http(413).contains("lower --chunk-size"), "{}", http(413));
        assert!(!http(413).contains("--portal"), "{}", http(413));
        assert!(!http(400).contains("--portal"), "{}", http(400));
        assert!(http(404).contains("check that --portal / IPTVPORTAL_URL"), "{}", http(404));
        let e = anyhow::Error::from(Hinted::new("no portal given", "pass --portal"));
        assert_eq!(render(&e), "error: no portal given; pass --portal");
    }

    #[test]
    fn user_input_of_any_length_is_echoed_by_its_start_only() {
        let long = "x".repeat(3000);
        let e = anyhow::Error::from(Hinted::new(
            format!("invalid identifier \"{long}\""),
            "see --help",
        ));
        let line = render(&e);
        assert_eq!(
            line,
            format!(
                "error: invalid identifier \"{}… (3002 characters); see --help",
                "x".repeat(59)
            )
        );
        // Words of ordinary length, paths and lists stay whole.
        let e = anyhow::Error::from(Hinted::new("unknown column a (columns of t: a, b)", "fix it"));
        assert_eq!(render(&e), "error: unknown column a (columns of t: a, b); fix it");
    }

    #[test]
    fn dump_errors_name_the_table_and_advise_once() {
        use iptvportal_dump::{Error as E, Invalid, TraversalInvalid};
        let e = E::Config {
            table: "terminal".into(),
            invalid: Invalid::Traversal(TraversalInvalid::ZeroChunkSize),
        };
        assert_eq!(
            render_dump(&e),
            "error: terminal: chunk size must be at least 1; see `iptvportal dump --help`"
        );
        let e = E::Config {
            table: "terminal".into(),
            invalid: Invalid::Traversal(TraversalInvalid::IdRangeOrder { id_column: "id".into() }),
        };
        assert_eq!(
            render_dump(&e),
            "error: terminal: id-range always walks ascending id; drop --order-by or use --strategy offset"
        );
        let e = E::Config { table: "terminal".into(), invalid: Invalid::ResumeOffsetNeedsOffset };
        assert_eq!(
            render_dump(&e),
            "error: terminal: --resume-offset needs the offset strategy; id-range resumes by id; drop --resume-offset or use --strategy offset"
        );
    }

    #[test]
    fn library_messages_name_no_flag_and_the_cli_adds_them() {
        use iptvportal_dump::{Error as E, Invalid, Warning};
        let e = E::Config { table: "terminal".into(), invalid: Invalid::CompressParquet };
        assert!(!e.to_string().contains("--"), "{e}");
        assert_eq!(
            render_dump(&e),
            "error: terminal: --compress applies to jsonl, csv and json; parquet files are always compressed (zstd); drop --compress"
        );
        let e = E::OutputDir {
            table: "t".into(),
            dir: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(!e.to_string().contains("--"), "{e}");
        assert!(render_dump(&e).ends_with("; choose another --out or fix its permissions"));
        let e = E::Sink {
            table: "t".into(),
            source: Box::new(iptvportal_dump::SinkError::ResumeMismatch {
                path: "/x/t.jsonl".into(),
                reason: "it is shorter than the checkpoint says".into(),
            }),
        };
        assert!(!e.to_string().contains("--"), "{e}");
        assert_eq!(
            render_dump(&e),
            "error: t: cannot resume /x/t.jsonl: it is shorter than the checkpoint says; the output was damaged or removed; `iptvportal verify /x t` lists every difference; restore the files, or start the table over with --reset (which deletes its output)"
        );
        let full = || std::io::Error::from(std::io::ErrorKind::StorageFull);
        let e = E::Sink {
            table: "t".into(),
            source: Box::new(iptvportal_dump::SinkError::Io {
                path: "/x/t.jsonl".into(),
                source: full(),
            }),
        };
        let line = render_dump(&e);
        assert!(line.starts_with("error: t: i/o error on /x/t.jsonl: "), "{line}");
        assert!(
            line.ends_with(
                "; free space on that disk and rerun: the dump resumes from its last commit"
            ),
            "{line}"
        );
        assert!(!line.contains("--reset"), "{line}");
        let e = E::Checkpoint {
            table: "t".into(),
            source: iptvportal_checkpoint::Error::Io {
                path: "/x/.t.state.json".into(),
                source: full(),
            },
        };
        assert!(render_dump(&e).ends_with(
            "; free space on that disk and rerun: the dump resumes from its last commit"
        ));
        let e = E::ShapeMismatch { table: "t".into(), dir: "/x".into(), differences: Vec::new() };
        assert!(!e.to_string().contains("--"), "{e}");
        assert!(
            render_dump(&e)
                .ends_with("; rerun with the same options to resume, or start over with --reset"),
            "{}",
            render_dump(&e)
        );
        let w = Warning::CountMismatch {
            table: "t".into(),
            strategy: iptvportal_dump::Strategy::Offset,
            counted: 3,
            dumped: 2,
        };
        assert!(!w.to_string().contains("--"), "{w}");
        assert_eq!(
            render_warning(&w),
            "warning: t: counted 3 rows up front but dumped 2; the table changed during the dump, and OFFSET paging can skip or repeat rows when it does: use --strategy id-range for a consistent walk"
        );
        let w = Warning::CountMismatch {
            table: "t".into(),
            strategy: iptvportal_dump::Strategy::IdRange,
            counted: 3,
            dumped: 2,
        };
        assert_eq!(
            render_warning(&w),
            "warning: t: counted 3 rows up front but dumped 2; the table changed during the dump"
        );
    }

    #[test]
    fn strategy_advice_fits_the_table() {
        use iptvportal_dump::{Error as E, Invalid, Warning};
        // Offset on a table without an id column: id-range is no way out, so none is advised.
        let w = Warning::CountMismatch {
            table: "subscriber_package".into(),
            strategy: iptvportal_dump::Strategy::Offset,
            counted: 3,
            dumped: 2,
        };
        assert_eq!(
            render_warning(&w),
            "warning: subscriber_package: counted 3 rows up front but dumped 2; the table changed during the dump, and OFFSET paging can skip or repeat rows when it does"
        );
        let e = E::Config {
            table: "subscriber_package".into(),
            invalid: Invalid::NoIdColumn("subscriber_package".into()),
        };
        assert_eq!(
            render_dump(&e),
            "error: subscriber_package: subscriber_package has no id column, so it cannot be walked by id range; drop --strategy id-range: the default, auto, walks such a table by offset"
        );
        let e = E::Config { table: "subscriber".into(), invalid: Invalid::ColumnsAndExclude };
        assert!(!e.to_string().contains("--"), "{e}");
        assert_eq!(
            render_dump(&e),
            "error: subscriber: --columns and --exclude-columns both name its columns; give one of them for this table"
        );
    }
}

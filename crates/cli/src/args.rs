//! The command line: global connection options and the subcommands, as clap derives them.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use iptvportal_client::{ENV_USERNAME, Secret};
use iptvportal_dump::{Compression, DumpConfig, DumpFormat, DumpService, DumpStrategy};

const EXAMPLES: &str = "\
Connection (options first, then the environment, then the config file):
  --portal or IPTVPORTAL_URL     the API base, e.g. https://portal.example.com/api/
  --domain or IPTVPORTAL_DOMAIN  a hosted portal: https://{domain}.admin.iptvportal.ru/api/
  --username or IPTVPORTAL_USERNAME, and IPTVPORTAL_PASSWORD (or --password-stdin)
  --demo                         a local demo portal with generated data, no credentials needed
Config file: --config FILE, else $IPTVPORTAL_CONFIG, else $XDG_CONFIG_HOME/iptvportal/config.toml
  (~/.config/iptvportal/config.toml); see docs/configuration.md.

Examples:
  iptvportal dump --demo --all
  export IPTVPORTAL_DOMAIN=acme IPTVPORTAL_USERNAME=admin IPTVPORTAL_PASSWORD=...
  iptvportal auth
  iptvportal dump terminal subscriber --format parquet --strategy id-range
  iptvportal select --from terminal --data id,mac_addr --where 'id__gte=100' --limit 10
  iptvportal select --from subscriber --where 'username__icontains=ivan' --format jsonl";

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "iptvportal",
    version,
    about = "Export and query the tables of an IPTVPortal",
    after_help = EXAMPLES,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,

    /// Log every request on stderr (method, table, rows, time; secrets are never logged).
    #[arg(long, global = true)]
    pub(crate) debug: bool,

    /// Print only errors and, for `dump`, the summary on stderr: no progress (whatever --progress
    /// says), no warnings, hints or notes.
    #[arg(long, short = 'q', global = true)]
    pub(crate) quiet: bool,

    #[arg(long, global = true, value_name = "FILE", help = CONFIG_HELP)]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,

    /// The config file's `[storage]` table, for `--out s3://...` (no option sets it).
    #[arg(skip)]
    pub(crate) storage: crate::config::Storage,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Export tables to files (JSONL, CSV, JSON or Parquet), resumable after any interruption.
    #[command(after_help = DUMP_EXAMPLES)]
    Dump(DumpArgs),
    /// Show what `dump` would do with the same options, writing nothing: per table the strategy,
    /// rows, ids, requests, output size, time (from one measured chunk) and where a rerun resumes.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(PlanArgs),
    /// Keep tables up to date in --out: the first run a snapshot, each later run only the rows
    /// new, changed or deleted since the last one (docs/sync.md).
    #[command(after_help = SYNC_EXAMPLES)]
    Sync(SyncArgs),
    /// Write a synced table as of its last run into one file: the snapshot with every later
    /// run's newest version of each row, without the deleted ones, in id order.
    #[command(after_help = MATERIALIZE_EXAMPLES)]
    Materialize(MaterializeArgs),
    /// Run one select and print the rows.
    #[command(after_help = SELECT_EXAMPLES)]
    Select(SelectArgs),
    /// Log in and print who you are.
    #[command(after_help = AUTH_EXAMPLES)]
    Auth,
    /// List every catalog table with its row count and id range on this portal.
    #[command(after_help = TABLES_EXAMPLES)]
    Tables(TablesArgs),
    /// Show the checkpoint of every table in a dump directory (or a bucket's prefix).
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Check a dump directory's files (or a bucket's objects) against their manifests, and
    /// optionally the portal.
    #[command(after_help = VERIFY_EXAMPLES.as_str())]
    Verify(VerifyArgs),
    /// Print a shell's completion script on stdout.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Print the command-line reference (docs/cli.md) as Markdown.
    #[command(name = "__reference", hide = true)]
    Reference,
    /// Print the man pages (docs/man/) as one JSON object, file name to roff source.
    #[command(name = "__man", hide = true)]
    Man,
}

/// `iptvportal completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to print the script for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

const COMPLETIONS_EXAMPLES: &str = "\
The script completes subcommands, options and the values of options with a fixed set (--format,
--strategy, --progress, ...). Print it again after an upgrade. No connection or config is needed.

Install (then start a new shell):
  bash  iptvportal completions bash > ~/.local/share/bash-completion/completions/iptvportal
  zsh   iptvportal completions zsh > ~/.zfunc/_iptvportal
        (with `fpath+=~/.zfunc` before `compinit` in ~/.zshrc)
  fish  iptvportal completions fish > ~/.config/fish/completions/iptvportal.fish

Examples:
  iptvportal completions bash
  source <(iptvportal completions bash)
  iptvportal completions powershell >> $PROFILE";

const CONFIG_HELP: &str = "Read settings from this TOML file [env: IPTVPORTAL_CONFIG] \
(default: $XDG_CONFIG_HOME/iptvportal/config.toml or ~/.config/iptvportal/config.toml)";

const TABLES_EXAMPLES: &str = "\
Each table costs one count request, and one min/max request for a table with an id column. A table
the portal refuses (this account may not read it, this portal has no such table) is marked
`refused` with the portal's message; the other tables are still listed.

Examples:
  iptvportal tables
  iptvportal --demo tables --format json";

const STATUS_EXAMPLES: &str = "\
States: complete (the output is finished), incomplete (a rerun of the same dump command resumes
it), failed (the last run stopped on the error shown; a rerun resumes), corrupt (the state file is
unreadable; `iptvportal dump TABLE --reset` starts that table over), writing (a dump is running on
that table now; JSON gives its writer_pid, and for a bucket its writer, host pid N).
With --out s3://bucket/prefix the tables are those with a manifest under the prefix, as of the last
part each published (docs/object-storage.md).
Exit codes: 0 listed (also when the directory holds no checkpoint), 1 the directory does not exist
or cannot be read (the bucket cannot be listed), 2 usage.

Examples:
  iptvportal status
  iptvportal status --out /data/portal
  iptvportal status --out s3://analytics/iptv/daily
  iptvportal status --format json | jq '.[] | select(.state != \"complete\") | .table'";

/// `verify --help`'s text after the options, with the narrowing's bounds from the library.
static VERIFY_EXAMPLES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "\
Each table's checkpoint (.{{table}}.state.json) holds the manifest of its files: rows, bytes, CRC-32
and id range of each. verify reads every file back and reports the ones that are missing, extra,
truncated, extended or changed, and Parquet parts that do not open or hold other rows. An
incomplete dump is checked as far as it is committed. A checkpoint of an older version has no
checksums: only the sizes of its files are checked.
--source also counts the rows on the portal (the connection options of `dump`, --demo included)
under the dump's filter, for each file's id range, and narrows any difference down to the id
ranges that hold it (at most {narrow} ids wide, or after {depth} cuts into {split}).
DIR may be the s3://bucket/prefix a dump published to: each table's manifest is
{{table}}/_manifest.json there, and every part is downloaded once, into a scratch directory under
TMPDIR, to be checked (docs/object-storage.md).
Exit codes: 0 every table holds (incomplete ones included), 1 a problem was found, or DIR does not
exist or holds no dump, 2 usage.

Examples:
  iptvportal verify ./dumps
  iptvportal verify ./dumps terminal subscriber
  iptvportal verify ./dumps --source
  iptvportal verify s3://analytics/iptv/daily
  iptvportal verify ./dumps --format json | jq '.tables[] | select(.status != \"ok\") | .table'",
        narrow = iptvportal_dump::NARROW_ENOUGH,
        depth = iptvportal_dump::MAX_DEPTH,
        split = iptvportal_dump::SPLIT,
    )
});

const SELECT_EXAMPLES: &str = "\
Filters (--where, repeatable, AND-ed): FIELD__LOOKUP=VALUE with the lookups
  eq (default) ne gt gte lt lte in like ilike contains icontains startswith endswith isnull.
  On a table of the catalog a value is read as its column's type (docs/tables.md): text stays
  text (phone=79123456789), a timestamp is 2025-12-15 or 2025-12-15 10:00:00, and a value of
  another type is refused. Otherwise values read as JSON where they parse (10, false, null,
  \"x\"), as text otherwise.

Examples:
  iptvportal select --from package --data id,name --order-by id --limit 3
  iptvportal select --from terminal --where 'subscriber_id__isnull=true' --format json
  iptvportal select --from subscriber --data id,username --where 'id__in=1,2,3'
  iptvportal select --from media --where-json '{\"not\":[{\"eq\":[\"protocol\",\"udp\"]}]}'
  iptvportal select --from tv_channel --order-by 'id DESC' --limit 5 --format jsonl";

const DUMP_EXAMPLES: &str = "\
Files go to --out as {table}.jsonl, {table}.csv, {table}.json (+ .gz with --compress) or
{table}-00000.parquet, {table}-00001.parquet, ...; the checkpoint is .{table}.state.json beside
them. Rerun the same command after a crash, Ctrl-C or a failure and the dump resumes where its
last committed chunk ended; the finished output is the same as an uninterrupted dump's.
--where, --where-json, --order-by and --columns apply to every table given.

Progress: on a terminal, a live bar per table and an overall line (--progress bar forces them);
otherwise plain lines on stderr (at most one a second per table, plus changes of state);
--progress json prints one JSON object per line on stdout; a summary follows on stderr.
--quiet prints the summary and errors only.
Defaults for --out, --format, --chunk-size, --strategy, --parallel, --jobs and --compress can be set
in the [dump] table of the config file (docs/configuration.md).
Exit codes: 0 done, 1 a table failed (the others still complete), 2 usage, 130 interrupted
(SIGINT, SIGTERM or SIGHUP; a rerun resumes).

Examples:
  iptvportal dump --demo --all
  iptvportal dump terminal
  iptvportal dump --all --out ./dumps --format parquet --jobs 3
  iptvportal dump terminal --strategy id-range --parallel 4 --chunk-size 10000
  iptvportal dump terminal --where 'last_seen__gte=2024-12-01' --columns id,mac_addr --format csv --compress
  iptvportal dump terminal --reset";

const SYNC_EXAMPLES: &str = "\
Each table's runs go to --out/{table}/run-00001/, run-00002/, ...: the first holds the snapshot,
each later one the rows whose id is above the last run's highest or whose change column
(terminal.last_seen, terminal_playlog.start, or --cursor) fell in the run's window, and
deleted.jsonl, the ids gone since. --out/{table}/sync.json lists the runs with their windows and
counts. The window is fixed before the first request and ends --lag before the portal's latest
change (or at it, when this machine's clock says nothing changed for longer than --lag), so a row
committed less than --lag after its change was made is caught by the next run; the next window
starts exactly where this one ended. A run killed at any instant resumes when the same command runs again and writes
the files an uninterrupted run would have. A table without an id column is copied whole each run.
Read the table as of the last run with `iptvportal materialize` (or the DuckDB query in
docs/sync.md). Takes the options of `dump` but --order-by, --resume-offset and --no-resume;
--reset deletes the table's runs and starts over with a snapshot.

Examples:
  iptvportal sync terminal --out ./sync
  iptvportal sync --all --out ./sync --format parquet
  iptvportal sync subscriber --cursor created_at --lag 10m --out ./sync";

const MATERIALIZE_EXAMPLES: &str = "\
Reads every run of TABLE in DIR (as `sync` wrote them) and writes the table as of the last
complete run: for each id, the row of the latest run that holds it, unless a run at or after that
one deleted it. Memory stays flat (one row per run at a time). --format defaults to the one the
runs were written in; FILE is written atomically (a temp file renamed).

Examples:
  iptvportal materialize ./sync terminal --out terminal.parquet --format parquet
  iptvportal materialize ./sync terminal --out terminal.csv --format csv";

const PLAN_EXAMPLES: &str = "\
Takes every option of `dump` and refuses the same mistakes with the same words; it writes nothing
(no file, no checkpoint, no lock, no --out directory): --progress and --summary are accepted and
ignored, --reset and --no-resume plan a fresh run. Per table it reads the checkpoint in --out as
a dump would (fresh, resume at row N, already complete, or refused and why), counts the rows and
reads the id range, then fetches one chunk as the dump would send it (OFFSET also its deepest
page; parallel id-range --parallel chunks at once), times it and encodes it with the real writer
in a temporary directory, for the output's size and the time. The total line accounts for
--jobs. A table the portal refuses is listed with the dump's error, also printed on stderr.
Exit codes: 0 every table planned, 1 a table could not be planned (the others are listed), 2 usage.

Examples:
  iptvportal plan --demo --all
  iptvportal plan terminal --out ./dumps --format parquet
  iptvportal plan --all --jobs 3 --plan-format json | jq '.total.seconds'";

const AUTH_EXAMPLES: &str = "\
Examples:
  iptvportal auth --demo
  IPTVPORTAL_PASSWORD=secret iptvportal --portal https://portal.example.com/api/ --username admin auth
  pass show portal | iptvportal --domain acme --username admin --password-stdin auth";

/// Where the portal is and how to talk to it; shared by every command that makes requests.
// As parsed, these are the options given; `settings::resolve` then fills in the environment and
// the config file below them, and `settings` turns them into the client.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
#[expect(clippy::struct_excessive_bools, reason = "clap flags, each an independent switch")]
pub(crate) struct ConnectionArgs {
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help = "The portal's API base URL [env: IPTVPORTAL_URL]"
    )]
    pub(crate) portal: Option<String>,

    #[arg(
        long,
        global = true,
        value_name = "D",
        help = "A hosted portal's domain, for https://{D}.admin.iptvportal.ru/api/ [env: IPTVPORTAL_DOMAIN]"
    )]
    pub(crate) domain: Option<String>,

    /// The admin user name.
    // The variable is shown in the help from here but read by `settings`, like the others: clap
    // would take it for the option given, which `--demo` refuses (`settings::command`).
    #[arg(long, global = true, value_name = "U", env = ENV_USERNAME, hide_env_values = true)]
    pub(crate) username: Option<String>,

    #[arg(
        long,
        global = true,
        help = "Read the password from the first line of stdin instead of IPTVPORTAL_PASSWORD"
    )]
    pub(crate) password_stdin: bool,

    /// Seconds to wait for each response, more than 0 and at most 3600.
    #[arg(long, global = true, value_name = "SECS", default_value = DEFAULT_TIMEOUT.as_str(), value_parser = parse_seconds)]
    pub(crate) timeout: Duration,

    /// Retries of a request after a transient failure (timeout, reset, 5xx, 429), 0 to 100.
    #[arg(long, global = true, value_name = "N", default_value_t = DumpConfig::DEFAULT_MAX_RETRIES, value_parser = clap::value_parser!(u32).range(..=i64::from(MAX_RETRIES)))]
    pub(crate) max_retries: u32,

    /// Accept self-signed or otherwise invalid TLS certificates (on-premise portals only).
    #[arg(long, global = true, overrides_with = "no_insecure")]
    pub(crate) insecure: bool,

    /// Verify TLS certificates even if the config file says `insecure = true`.
    #[arg(long, global = true, overrides_with = "insecure")]
    pub(crate) no_insecure: bool,

    /// Use a local demo portal with generated data (the embedded simulator) instead of a real one;
    /// the connection settings of the environment and the config file are ignored.
    #[arg(long, global = true, conflicts_with_all = ["portal", "domain", "username", "password_stdin"])]
    pub(crate) demo: bool,

    /// Rows of the demo portal's tables, `table=N,...` (tests keep the demo small with it).
    #[arg(long, global = true, hide = true, value_name = "table=N,...", value_delimiter = ',', value_parser = parse_demo_rows, requires = "demo")]
    pub(crate) demo_rows: Vec<(String, u64)>,

    // The password in effect, from the environment or the config file, filled in by `settings`
    // (`--password-stdin` is read only when connecting). A `Secret`, so that a debug print of
    // the command line never shows it.
    #[arg(skip)]
    pub(crate) password: Option<Secret>,
}

/// `--timeout`'s default: the dump's timeout of one request, as clap shows and parses it.
static DEFAULT_TIMEOUT: LazyLock<String> =
    LazyLock::new(|| DumpConfig::DEFAULT_BATCH_TIMEOUT_SECS.to_string());

/// One `table=N` of `--demo-rows`.
fn parse_demo_rows(s: &str) -> Result<(String, u64), String> {
    let (table, n) = s.split_once('=').ok_or_else(|| format!("{s:?} is not table=N"))?;
    let n: u64 = n.trim().parse().map_err(|_| format!("{n:?} is not a whole number"))?;
    if n > MAX_DEMO_ROWS {
        return Err(format!("{table}={n}: at most {MAX_DEMO_ROWS} rows per table"));
    }
    Ok((table.trim().to_owned(), n))
}

// The bounds of the numeric options, checked (with the same numbers for the config file's keys)
// before anything is sent or written: a value past them is a typo or a misunderstanding, and some
// would overflow a computation on the way (a wait, a window of chunks, a semaphore).

/// The largest `--chunk-size`. A chunk is one request: the portal builds its whole answer, and
/// the client holds and decodes it at once, up to `--parallel` + 2 chunks at a time. A million
/// rows of the widest table is a response of hundreds of megabytes, more than a portal answers
/// within any sensible `--timeout`; larger chunks only move the failure to the first request.
pub(crate) const MAX_CHUNK_SIZE: u64 = DumpConfig::MAX_CHUNK_SIZE;
/// The most row requests in flight for one table (`--parallel`): past a handful they only queue
/// on the portal, and each holds a chunk in memory.
pub(crate) const MAX_PARALLEL: u64 = DumpConfig::MAX_PARALLEL as u64;
/// The most tables dumped at once (`--jobs`): each has a thread writing its files.
pub(crate) const MAX_JOBS: u64 = 64;
/// The longest wait for one response (`--timeout`, `timeout`), in seconds: an hour.
#[expect(clippy::cast_possible_truncation, reason = "a const: an hour in seconds fits u32")]
pub(crate) const MAX_TIMEOUT_SECS: u32 = DumpConfig::MAX_BATCH_TIMEOUT.as_secs() as u32;
/// The most retries of one request (`--max-retries`, `max_retries`); each waits at most 30 s.
pub(crate) const MAX_RETRIES: u32 = DumpConfig::MAX_RETRIES;
/// The largest backoff factor (`--retry-backoff`): the first retry waits about that many seconds.
const MAX_RETRY_BACKOFF: f64 = DumpConfig::MAX_RETRY_BACKOFF;
/// The most rows per part (`--part-rows`): a hundred times Parquet's default.
pub(crate) const MAX_PART_ROWS: u64 = DumpConfig::MAX_PART_ROWS;
/// The largest row count or position (`--limit`, `--offset`, `--resume-offset`): PostgreSQL's
/// `bigint`, what LIMIT and OFFSET take.
const MAX_ROWS: u64 = i64::MAX.unsigned_abs();
/// The most rows of a demo table (`--demo-rows`), which are generated at start.
const MAX_DEMO_ROWS: u64 = 10_000_000;

/// A positive number of seconds up to [`MAX_TIMEOUT_SECS`], fractions allowed (`30`, `0.5`).
pub(crate) fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{s:?} must be more than 0 seconds"));
    }
    if secs > f64::from(MAX_TIMEOUT_SECS) {
        return Err(format!("{s:?} must be more than 0 and at most {MAX_TIMEOUT_SECS} seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// `iptvportal select`.
#[derive(Debug, Args)]
pub(crate) struct SelectArgs {
    /// The table to read.
    #[arg(long, value_name = "T")]
    pub(crate) from: String,

    /// The columns to return, comma-separated (default: every column the catalog knows for a known
    /// table, `*` otherwise).
    #[arg(long, value_name = "a,b", value_delimiter = ',')]
    pub(crate) data: Vec<String>,

    #[arg(
        long = "where",
        value_name = "LOOKUP=VALUE",
        help = "A filter FIELD__LOOKUP=VALUE; repeat to AND several"
    )]
    pub(crate) filters: Vec<String>,

    /// A raw JSONSQL where condition, AND-ed with the --where filters.
    #[arg(long, value_name = "JSON")]
    pub(crate) where_json: Option<String>,

    /// Sort key, `col`, `col ASC` or `col DESC`; repeat for several.
    #[arg(long, value_name = "'col [ASC|DESC]'")]
    pub(crate) order_by: Vec<String>,

    /// At most this many rows.
    #[arg(long, value_name = "N", value_parser = rows())]
    pub(crate) limit: Option<u64>,

    /// Skip this many rows first.
    #[arg(long, value_name = "N", value_parser = rows())]
    pub(crate) offset: Option<u64>,

    /// How to print the rows.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// `iptvportal dump`.
#[derive(Debug, Args)]
#[expect(clippy::struct_excessive_bools, reason = "independent command-line switches")]
pub(crate) struct DumpArgs {
    /// Tables to export; --where, --where-json, --order-by and --columns apply to each of them.
    #[arg(value_name = "TABLE", required_unless_present = "all", conflicts_with = "all")]
    pub(crate) tables: Vec<String>,

    /// Export every table of the catalog (docs/tables.md).
    #[arg(long)]
    pub(crate) all: bool,

    #[arg(
        long,
        value_name = "DIR",
        default_value = "./dumps",
        help = "The output directory (created when missing), or s3://bucket/prefix for \
                S3-compatible object storage (dump only; docs/object-storage.md)"
    )]
    pub(crate) out: PathBuf,

    #[arg(
        long,
        value_name = "DIR",
        help = "With --out s3://...: the local directory each table is staged in before its \
                parts are uploaded [default: STAGE_ROOT/BUCKET/PREFIX, STAGE_ROOT being stage_root in \
                the config file's [storage], else ~/.cache/iptvportal/stage]"
    )]
    pub(crate) stage: Option<PathBuf>,

    /// The file format.
    #[arg(long, default_value_t = DumpConfig::DEFAULT_FORMAT, value_parser = dump_format())]
    pub(crate) format: DumpFormat,

    /// gzip the jsonl, csv or json output (one gzip member per chunk; any gzip reader reads it).
    #[arg(long, overrides_with = "no_compress")]
    pub(crate) compress: bool,

    /// Do not gzip, even if the config file says `compress = true`.
    #[arg(long, overrides_with = "compress")]
    pub(crate) no_compress: bool,

    /// gzip level, 0 (store) to 9 (smallest); default 1, the fastest.
    #[arg(long, value_name = "N", value_parser = gzip_level())]
    pub(crate) compress_level: Option<u32>,

    /// Write parts of about N rows, TABLE-00000.jsonl, TABLE-00001.jsonl, ... (each a whole file
    /// of its format, cut at a chunk's end), not one file; for parquet, the rows per part
    /// [default: one file; parquet 1000000].
    #[arg(long, value_name = "N", alias = "parquet-part-rows", value_parser = count::<u64, MAX_PART_ROWS>)]
    pub(crate) part_rows: Option<u64>,

    /// Rows per request, 1 to 1000000.
    #[arg(long, value_name = "N", default_value_t = DumpConfig::DEFAULT_CHUNK_SIZE, value_parser = count::<u64, MAX_CHUNK_SIZE>)]
    pub(crate) chunk_size: u64,

    /// auto (id-range where the catalog knows an id column, else offset), offset (limit/offset
    /// paging, any table) or id-range (keyset on id: constant cost per chunk).
    #[arg(long, default_value_t = DumpConfig::DEFAULT_STRATEGY, value_parser = dump_strategy())]
    pub(crate) strategy: DumpStrategy,

    /// Row requests in flight at once for one table (id-range only; 1 is sequential). Above 1, one
    /// more request at a time reads the ids ahead to cut the table into ranges of one chunk. 1 to 64.
    #[arg(long, value_name = "N", default_value_t = DumpConfig::DEFAULT_MAX_PARALLEL, value_parser = count::<usize, MAX_PARALLEL>)]
    pub(crate) parallel: usize,

    /// Tables dumped at once, 1 to 64.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DumpService::DEFAULT_MAX_CONCURRENT,
        value_parser = count::<usize, MAX_JOBS>
    )]
    pub(crate) jobs: usize,

    #[arg(
        long = "where",
        value_name = "LOOKUP=VALUE",
        help = "A filter FIELD__LOOKUP=VALUE; repeat to AND several (see `iptvportal select --help`)"
    )]
    pub(crate) filters: Vec<String>,

    /// A raw JSONSQL where condition, AND-ed with the --where filters.
    #[arg(long, value_name = "JSON")]
    pub(crate) where_json: Option<String>,

    /// Sort order for the offset strategy, `col [ASC|DESC]`, several separated by commas
    /// (default: ascending id).
    #[arg(long, value_name = "'col [ASC|DESC]'")]
    pub(crate) order_by: Option<String>,

    /// The columns to export, in this order (default: every column).
    #[arg(long, value_name = "a,b,...", value_delimiter = ',')]
    pub(crate) columns: Vec<String>,

    /// Leave this table out of --all; repeat for several.
    // Tables given by name are the list: `--exclude` is for `--all` only. (`requires = "all"`
    // would be met by the switch's default, so it is said as a conflict instead.)
    #[arg(long, value_name = "TABLE", conflicts_with = "tables")]
    pub(crate) exclude: Vec<String>,

    /// Leave these columns out of their tables' output (every other catalog column is exported),
    /// e.g. subscriber.password; not with --columns for the same table.
    #[arg(long, value_name = "TABLE.COLUMN,...", value_delimiter = ',')]
    pub(crate) exclude_columns: Vec<String>,

    /// Start over without reading the checkpoint (the output is rewritten).
    #[arg(long)]
    pub(crate) no_resume: bool,

    /// Delete each table's checkpoint and output first (also those of another format), then dump.
    #[arg(long)]
    pub(crate) reset: bool,

    /// Start over from this row (offset strategy only), ignoring any checkpoint.
    #[arg(long, value_name = "N", value_parser = rows())]
    pub(crate) resume_offset: Option<u64>,

    /// Backoff factor, 1 to 10: the n-th retry of a chunk waits about F^n seconds (at most 30).
    #[arg(long, value_name = "F", default_value_t = DumpConfig::DEFAULT_RETRY_BACKOFF, value_parser = parse_backoff)]
    pub(crate) retry_backoff: f64,

    /// How to report progress: auto (bars on a terminal, plain lines otherwise), bar, plain lines
    /// on stderr, json lines on stdout, or none (errors and warnings only).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto, overrides_with = "progress")]
    pub(crate) progress: ProgressMode,

    /// Also write the end-of-run summary as JSON to FILE (atomically; also when tables fail or
    /// the run is interrupted). The format is in docs/dump.md.
    #[arg(long, value_name = "FILE")]
    pub(crate) summary: Option<PathBuf>,
}

/// `--format` of `dump`: the library's formats, each with the help the command line gives it.
fn dump_format() -> impl TypedValueParser<Value = DumpFormat> {
    let values = DumpFormat::ALL.map(|f| PossibleValue::new(f.as_str()).help(format_help(f)));
    PossibleValuesParser::new(values).try_map(|s| s.parse::<DumpFormat>())
}

fn format_help(format: DumpFormat) -> &'static str {
    match format {
        DumpFormat::Jsonl => "One JSON object per line",
        DumpFormat::Csv => "A header, then one RFC 4180 record per row",
        DumpFormat::Json => "One JSON array of objects",
        DumpFormat::Parquet => "Parquet part files (zstd)",
        // A format added to the library shows without help until it gets some here; a test
        // checks that every one has help.
        _ => "",
    }
}

/// `--strategy` of `dump`: the library's strategies, each with the help the command line gives it.
fn dump_strategy() -> impl TypedValueParser<Value = DumpStrategy> {
    let values = DumpStrategy::ALL.map(|s| PossibleValue::new(s.as_str()).help(strategy_help(s)));
    PossibleValuesParser::new(values).try_map(|s| s.parse::<DumpStrategy>())
}

fn strategy_help(strategy: DumpStrategy) -> &'static str {
    match strategy {
        DumpStrategy::Auto => {
            "id-range where it can walk the table (a catalog id column, no other --order-by), else offset; a resume keeps its checkpoint's"
        }
        DumpStrategy::Offset => "limit/offset paging in --order-by order",
        DumpStrategy::IdRange => {
            "Keyset paging on the id column, in parallel with --parallel above 1"
        }
        // As for formats: a test checks that every strategy has help.
        _ => "",
    }
}

/// Progress reporting of `dump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressMode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    /// Live bars on stderr, one per table and an overall line, even when stderr is not a terminal.
    Bar,
    /// Plain text lines on stderr.
    Plain,
    /// One JSON object per line on stdout.
    Json,
    /// Nothing but errors and warnings.
    None,
}

/// `iptvportal plan`: every option of `dump`, and how to print the plan.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) dump: DumpArgs,

    /// How to print the plan (--format is the dump's file format, as for `dump`).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = StatusFormat::Table)]
    pub(crate) plan_format: StatusFormat,
}

/// `iptvportal sync`: every option of `dump`, and how to read changes.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    pub(crate) dump: DumpArgs,

    /// The timestamp column that records when a row changed [default: the catalog's change
    /// column of the table, where it has one].
    #[arg(long, value_name = "COLUMN")]
    pub(crate) cursor: Option<String>,

    /// How long a change may take to commit: the window ends this long before the portal's
    /// latest change (at least 1s), e.g. 90s, 5m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_lag)]
    pub(crate) lag: Duration,
}

/// `iptvportal materialize`.
#[derive(Debug, Args)]
pub(crate) struct MaterializeArgs {
    /// The directory `sync` wrote to.
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,

    /// The table.
    #[arg(value_name = "TABLE")]
    pub(crate) table: String,

    /// The file to write.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,

    /// The file format [default: the runs' format].
    #[arg(long, value_parser = dump_format())]
    pub(crate) format: Option<DumpFormat>,

    /// gzip the jsonl, csv or json output.
    #[arg(long)]
    pub(crate) compress: bool,
}

/// `--lag`: whole seconds, or a number with `s`, `m` or `h`, at least one second.
pub(crate) fn parse_lag(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => t.split_at(at),
        None => (t, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{s:?}: give seconds, or a number with s, m or h (e.g. 90s, 5m)")),
    };
    let n: u64 = number.parse().map_err(|_| format!("{s:?}: give a whole number, e.g. 5m"))?;
    match n.checked_mul(scale) {
        Some(0) => Err(format!("{s:?}: the lag must be at least 1s")),
        Some(secs) if secs <= 7 * 24 * 3600 => Ok(Duration::from_secs(secs)),
        _ => Err(format!("{s:?}: the lag must be at most a week (168h)")),
    }
}

/// `iptvportal status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[arg(
        long,
        value_name = "DIR",
        help = "The dump directory, or the s3://bucket/prefix a dump published to [default: \
                ./dumps, or out in the config file]"
    )]
    pub(crate) out: Option<PathBuf>,

    /// How to print the checkpoints.
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    pub(crate) format: StatusFormat,
}

/// `iptvportal tables`.
#[derive(Debug, Args)]
pub(crate) struct TablesArgs {
    /// How to print the tables.
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    pub(crate) format: StatusFormat,
}

/// Output formats of `status` and `tables`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusFormat {
    /// An aligned text table.
    Table,
    /// One JSON array of objects.
    Json,
}

/// `iptvportal verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[arg(
        value_name = "DIR",
        help = "The dump directory (the --out the dump wrote to), or its s3://bucket/prefix"
    )]
    pub(crate) dir: PathBuf,

    /// Tables to check (default: every table with a checkpoint in DIR, or a manifest under it).
    #[arg(value_name = "TABLE")]
    pub(crate) tables: Vec<String>,

    /// Also count the rows on the portal, by id range, and compare them with the files.
    #[arg(long)]
    pub(crate) source: bool,

    /// How to print the report.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    pub(crate) format: VerifyFormat,
}

/// Output formats of `verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VerifyFormat {
    /// One line per problem and per sound table, then a summary.
    Text,
    /// One JSON document.
    Json,
}

/// `--compress-level`: one of the sink's gzip levels.
fn gzip_level() -> impl TypedValueParser<Value = u32> {
    let levels = Compression::GZIP_LEVELS;
    clap::value_parser!(u32).range(i64::from(*levels.start())..=i64::from(*levels.end()))
}

/// `--limit`, `--offset`, `--resume-offset`: a row count PostgreSQL's `bigint` holds.
fn rows() -> impl TypedValueParser<Value = u64> {
    clap::value_parser!(u64).range(..=MAX_ROWS)
}

/// A count from 1 to `MAX`, as any integer type a count fits in (`u64`, `usize`).
fn count<T: TryFrom<u64>, const MAX: u64>(s: &str) -> Result<T, String> {
    let t = s.trim();
    let n = match t.parse::<u64>() {
        Ok(n) => n,
        // Digits beyond `u64` are a count too large, not a typo.
        Err(_) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => u64::MAX,
        Err(_) => return Err(format!("{s:?} is not a whole number")),
    };
    match n {
        0 => Err("must be at least 1".to_owned()),
        n if n > MAX => Err(format!("must be 1 to {MAX}")),
        n => T::try_from(n).map_err(|_| format!("{s:?} is too large")),
    }
}

/// A backoff factor: a number from 1 (retries at a steady pace) to [`MAX_RETRY_BACKOFF`].
fn parse_backoff(s: &str) -> Result<f64, String> {
    let f: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(f.is_finite() && f >= 1.0) {
        return Err("must be a number of at least 1".to_owned());
    }
    if f > MAX_RETRY_BACKOFF {
        return Err(format!("must be a number from 1 to {MAX_RETRY_BACKOFF}"));
    }
    Ok(f)
}

/// Output formats of `select`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// An aligned text table with a header.
    Table,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Jsonl,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_parse() {
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_lag("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_lag("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_lag("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_lag("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_lag("0s"), Err("\"0s\": the lag must be at least 1s".to_owned()));
        assert!(parse_lag("5d").is_err());
        assert!(parse_lag("m").is_err());
        assert!(parse_lag("169h").is_err());
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_seconds("3600"), Ok(Duration::from_secs(3600)));
        for bad in ["0", "-1", "x", "inf", "NaN", "3600.5", "1e20"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_seconds("1e20"),
            Err("\"1e20\" must be more than 0 and at most 3600 seconds".to_owned())
        );
    }

    #[test]
    fn counts_and_factors_parse() {
        assert_eq!(count::<u64, 5000>("5000"), Ok(5000));
        assert_eq!(count::<usize, 5000>("5000"), Ok(5000));
        assert_eq!(count::<u64, 5000>("0"), Err("must be at least 1".to_owned()));
        assert_eq!(count::<usize, 5000>("0"), Err("must be at least 1".to_owned()));
        assert_eq!(count::<u64, 5000>("5001"), Err("must be 1 to 5000".to_owned()));
        let huge = "18446744073709551616000";
        assert_eq!(count::<u64, 5000>(huge), Err("must be 1 to 5000".to_owned()));
        assert!(count::<u64, 5000>("-1").is_err());
        assert_eq!(count::<u8, 5000>("300"), Err("\"300\" is too large".to_owned()));
        assert_eq!(parse_backoff("1.5"), Ok(1.5));
        assert_eq!(parse_backoff("10"), Ok(10.0));
        for bad in ["0.5", "x", "inf", "NaN", "10.5", "1e20"] {
            assert!(parse_backoff(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_format_and_strategy_has_help() {
        for format in DumpFormat::ALL {
            assert!(!format_help(format).is_empty(), "{format}");
        }
        for strategy in DumpStrategy::ALL {
            assert!(!strategy_help(strategy).is_empty(), "{strategy}");
        }
    }
}

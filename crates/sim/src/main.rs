//! The `iptvportal-sim` binary: `serve` runs the simulator until SIGINT or SIGTERM; `mutate`
//! changes a simulator database as a portal's data changes, and exits.
//!
//! The first line of `serve`'s stdout is the API base URL (flushed at once), so a parent process
//! can start the simulator on port 0 and read where it landed; everything else goes to stderr.
//! `mutate` prints one line per table on stdout.

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use iptvportal_sim::{Collation, Mutation, OffsetModel, Sim, SimConfig};

#[derive(Debug, Parser)]
#[command(
    name = "iptvportal-sim",
    version,
    about = "A local IPTVPortal: JSONSQL over SQLite with generated data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate the database if needed and serve the JSONSQL API.
    Serve(ServeArgs),
    /// Insert, update and delete rows of a simulator database, as a portal's data changes.
    ///
    /// Inserted rows come from the generator the tables were made with, with ids above the
    /// current maximum. Updated rows get new values, and their change column (`terminal.last_seen`,
    /// `terminal_playlog.start`; the other tables have none) is set to now, or to `--at`. The rows
    /// and values are drawn from `--seed`: the same seed on the same database makes the same
    /// changes. Prints one line per table, e.g. `terminal: inserted 10 (ids 5021..=5030), updated
    /// 5, deleted 3`. A server may be serving the file meanwhile.
    Mutate(MutateArgs),
}

#[derive(Debug, clap::Args)]
struct MutateArgs {
    /// The simulator database to change (one `serve --db FILE` generated).
    #[arg(long)]
    db: PathBuf,
    /// Rows to insert into each table.
    #[arg(long, default_value_t = 0)]
    insert: u64,
    /// Existing rows to update in each table.
    #[arg(long, default_value_t = 0)]
    update: u64,
    /// Existing rows to delete from each table (at most what it has).
    #[arg(long, default_value_t = 0)]
    delete: u64,
    /// The table to change, or `all` for every table.
    #[arg(long, default_value = "terminal")]
    table: String,
    /// Seed of the rows chosen and the values written.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The instant (UTC) written to the change column of inserted and updated rows instead of
    /// now: `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`. An instant before a previous sync's boundary
    /// makes rows that were committed late with an older value; the same instant in several runs
    /// makes rows that share one boundary value.
    #[arg(long, value_parser = parse_at)]
    at: Option<i64>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0: any free port; the URL is printed first on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// SQLite file to serve: generated from --seed and --rows when absent or empty, then kept. An
    /// existing simulator database is served as it is, whatever its row counts and whatever
    /// --seed and --rows say (it may have been mutated); only --regenerate, or a file written by
    /// another version of the simulator, makes it generated anew [default: a temporary file
    /// removed on exit].
    #[arg(long)]
    db: Option<PathBuf>,
    /// Regenerate the --db file from --seed and --rows even though it exists, discarding its rows
    /// and any mutations.
    #[arg(long)]
    regenerate: bool,
    /// Mutations per second while serving, of each --mutate-table: inserts, updates and deletes
    /// in the proportion 2:2:1, change columns set to now, committed every 0.1 s; selects keep
    /// reading consistent snapshots [default: none].
    #[arg(long, value_parser = parse_rate, value_name = "N")]
    mutate_rate: Option<u32>,
    /// The tables --mutate-rate changes (comma-separated), or `all`.
    #[arg(long, value_parser = parse_table, value_delimiter = ',', default_value = "terminal")]
    mutate_table: Vec<String>,
    /// Rows per table, overriding the defaults: `terminal=500000,tv_channel=7308`.
    #[arg(long, value_parser = parse_rows, value_delimiter = ',')]
    rows: Vec<(String, u64)>,
    /// Seed of the data generator and of the fault injector.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Delay added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Probability (0..1) that a select gets an injected HTTP 500.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    fail_rate: f64,
    /// Probability (0..1) that a select hangs without an answer.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    timeout_rate: f64,
    /// Probability (0..1) that a select's connection is cut mid-body.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    reset_rate: f64,
    /// Maximum selects per second (`N` or `N/s`); excess requests get HTTP 429.
    #[arg(long, value_parser = parse_rate)]
    rate_limit: Option<u32>,
    /// Session lifetime in seconds [default: sessions never expire].
    #[arg(long)]
    session_ttl: Option<u64>,
    /// What a select's OFFSET costs the server (the rows are the same either way).
    #[arg(long, value_enum, default_value_t = Offset::Materialize)]
    offset: Offset,
    /// How text sorts (`order_by`, `gt`/`lt`, `min`/`max`); equality is exact under both.
    #[arg(long, value_enum, default_value_t = TextOrder::C)]
    collation: TextOrder,
    /// The username `authorize_user` accepts.
    #[arg(long, default_value = "admin")]
    user: String,
    /// The password `authorize_user` accepts.
    #[arg(long, default_value = "admin")]
    password: String,
}

/// The values of `--offset`: [`OffsetModel`] on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Offset {
    /// SQLite's own OFFSET: skipped rows are stepped over undecoded (cheap).
    Native,
    /// Every skipped row is read in full and discarded, as PostgreSQL (the real portal's database)
    /// does.
    Materialize,
}

impl From<Offset> for OffsetModel {
    fn from(offset: Offset) -> OffsetModel {
        match offset {
            Offset::Native => OffsetModel::Native,
            Offset::Materialize => OffsetModel::Materialize,
        }
    }
}

/// The values of `--collation`: [`Collation`] on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TextOrder {
    /// Code-point order, as PostgreSQL's "C" collation.
    C,
    /// Linguistic: case and `ё`/`е` differences only break ties, as a UTF-8 locale orders.
    Unicode,
}

impl From<TextOrder> for Collation {
    fn from(order: TextOrder) -> Collation {
        match order {
            TextOrder::C => Collation::C,
            TextOrder::Unicode => Collation::Unicode,
        }
    }
}

fn parse_rows(s: &str) -> Result<(String, u64), String> {
    let (table, n) = s.split_once('=').ok_or_else(|| format!("expected TABLE=N, got {s:?}"))?;
    let table = table.trim();
    if iptvportal_catalog::table(table).is_none() {
        let known: Vec<_> = iptvportal_catalog::TABLES.iter().map(|t| t.name).collect();
        return Err(format!("unknown table {table:?}: use one of {}", known.join(", ")));
    }
    let n = n.trim().parse().map_err(|_| format!("expected a row count, got {n:?}"))?;
    Ok((table.to_owned(), n))
}

/// A catalog table's name, or `all`.
fn parse_table(s: &str) -> Result<String, String> {
    let name = s.trim();
    if name == "all" || iptvportal_catalog::table(name).is_some() {
        Ok(name.to_owned())
    } else {
        let known: Vec<_> = iptvportal_catalog::TABLES.iter().map(|t| t.name).collect();
        Err(format!("unknown table {name:?}: use one of {}, or all", known.join(", ")))
    }
}

/// The tables `names` (from [`parse_table`]) stand for: `all` is every catalog table.
fn expand_tables(names: &[String]) -> Vec<&str> {
    if names.iter().any(|n| n == "all") {
        iptvportal_catalog::TABLES.iter().map(|t| t.name).collect()
    } else {
        names.iter().map(String::as_str).collect()
    }
}

/// `--at`: `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`, whole seconds, as seconds since 1970 UTC.
fn parse_at(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let full = if s.len() == 10 { format!("{s} 00:00:00") } else { s.to_owned() };
    match iptvportal_catalog::time::parse_timestamp(&full) {
        Some(micros) if full.len() == 19 => Ok(micros.div_euclid(1_000_000)),
        _ => Err(format!("expected YYYY-MM-DD HH:MM:SS or YYYY-MM-DD (UTC), got {s:?}")),
    }
}

fn parse_probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("expected a probability between 0 and 1, got {s:?}")),
    }
}

fn parse_rate(s: &str) -> Result<u32, String> {
    let n = s.strip_suffix("/s").unwrap_or(s);
    match n.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected requests per second as N or N/s (N >= 1), got {s:?}")),
    }
}

fn config(args: ServeArgs) -> SimConfig {
    let mut config = SimConfig::default()
        .listen(args.listen)
        .seed(args.seed)
        .latency(Duration::from_millis(args.latency_ms))
        .fail_rate(args.fail_rate)
        .timeout_rate(args.timeout_rate)
        .reset_rate(args.reset_rate)
        .offset(args.offset.into())
        .collation(args.collation.into())
        .credentials(args.user, args.password)
        .regenerate(args.regenerate);
    if let Some(db) = args.db {
        config = config.db_path(db);
    }
    for (table, n) in &args.rows {
        config = config.rows(table, *n);
    }
    if let Some(rate) = args.rate_limit {
        config = config.rate_limit(rate);
    }
    if let Some(ttl) = args.session_ttl {
        config = config.session_ttl(Duration::from_secs(ttl));
    }
    if let Some(rate) = args.mutate_rate {
        config = config.mutate_rate(rate);
        for table in expand_tables(&args.mutate_table) {
            config = config.mutate_table(table);
        }
    }
    config
}

fn main() -> ExitCode {
    // Exits with status 2 and clap's message on bad arguments.
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Mutate(args) => {
            // An unknown table is a bad argument (exit 2, as clap's), said in one line.
            if let Err(message) = parse_table(&args.table) {
                eprintln!("error: --table: {message}");
                return ExitCode::from(2);
            }
            mutate(&args)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn mutate(args: &MutateArgs) -> Result<(), String> {
    let tables = expand_tables(std::slice::from_ref(&args.table));
    let mutation = Mutation::new(args.insert, args.update, args.delete);
    let reports = iptvportal_sim::mutate(&args.db, &tables, mutation, args.seed, args.at)
        .map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout().lock();
    for report in reports {
        writeln!(stdout, "{report}").map_err(|e| format!("writing the report: {e}"))?;
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    // Listen for signals before announcing the URL, so a parent that stops us as soon as it has
    // read the URL still gets a clean shutdown.
    let stop = signals().map_err(|e| format!("listening for signals: {e}"))?;
    let sim = Sim::start(config(args)).await.map_err(|e| e.to_string())?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", sim.url())
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("writing the URL: {e}"))?;
    }
    stop.await;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

/// A future that completes on the first SIGINT or SIGTERM; the handlers are installed at once.
#[cfg(unix)]
fn signals() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn signals() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let cli = Cli::try_parse_from(["iptvportal-sim", "serve"].iter().chain(args))?;
        let Command::Serve(args) = cli.command else { unreachable!("parsed as serve") };
        Ok(args)
    }

    fn mutate_args(args: &[&str]) -> Result<MutateArgs, clap::Error> {
        let cli = Cli::try_parse_from(["iptvportal-sim", "mutate"].iter().chain(args))?;
        let Command::Mutate(args) = cli.command else { unreachable!("parsed as mutate") };
        Ok(args)
    }

    #[test]
    fn mutate_takes_counts_a_table_and_an_instant() {
        let args = mutate_args(&["--db", "x.db"]).unwrap();
        assert_eq!((args.insert, args.update, args.delete, args.seed), (0, 0, 0, 42));
        assert_eq!(args.table, "terminal");
        assert_eq!(args.at, None);
        let args = mutate_args(&[
            "--db",
            "x.db",
            "--insert",
            "3",
            "--update=2",
            "--delete",
            "1",
            "--at",
            "2024-02-29 12:34:56",
            "--table",
            "all",
        ])
        .unwrap();
        assert_eq!((args.insert, args.update, args.delete), (3, 2, 1));
        assert_eq!(args.at, Some(1_709_210_096));
        assert_eq!(expand_tables(&[args.table]).len(), iptvportal_catalog::TABLES.len());
        assert_eq!(
            mutate_args(&["--db", "x", "--at", "2024-02-29"]).unwrap().at,
            Some(1_709_164_800)
        );
        for bad in ["2024-02-30", "2024-02-29 12:34:56.5", "yesterday", "2024-02-29T12:34:56"] {
            assert!(mutate_args(&["--db", "x", "--at", bad]).is_err(), "{bad}");
        }
        assert!(mutate_args(&[]).is_err(), "--db is required");
        assert!(
            parse_table("nosuch")
                .unwrap_err()
                .starts_with("unknown table \"nosuch\": use one of subscriber, ")
        );
    }

    #[test]
    fn serve_takes_regenerate_and_a_mutate_rate() {
        let args = serve_args(&[]).unwrap();
        assert!(!args.regenerate);
        assert_eq!(args.mutate_rate, None);
        assert_eq!(args.mutate_table, ["terminal"]);
        let args = serve_args(&[
            "--regenerate",
            "--mutate-rate",
            "20/s",
            "--mutate-table",
            "terminal,terminal_playlog",
        ])
        .unwrap();
        assert!(args.regenerate);
        assert_eq!(args.mutate_rate, Some(20));
        assert_eq!(args.mutate_table, ["terminal", "terminal_playlog"]);
        assert!(serve_args(&["--mutate-rate", "0"]).is_err());
        assert!(serve_args(&["--mutate-table", "nosuch"]).is_err());
    }

    #[test]
    fn offset_defaults_to_materialize_and_takes_native() {
        assert_eq!(serve_args(&[]).unwrap().offset, Offset::Materialize);
        assert_eq!(serve_args(&["--offset", "native"]).unwrap().offset, Offset::Native);
        assert_eq!(serve_args(&["--offset=materialize"]).unwrap().offset, Offset::Materialize);
        let error = serve_args(&["--offset", "postgres"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidValue);
        assert_eq!(OffsetModel::from(Offset::Native), OffsetModel::Native);
        assert_eq!(OffsetModel::from(Offset::Materialize), OffsetModel::default());
    }

    #[test]
    fn collation_defaults_to_c_and_takes_unicode() {
        assert_eq!(serve_args(&[]).unwrap().collation, TextOrder::C);
        assert_eq!(serve_args(&["--collation", "unicode"]).unwrap().collation, TextOrder::Unicode);
        assert!(serve_args(&["--collation", "ru_RU"]).is_err());
        assert_eq!(Collation::from(TextOrder::C), Collation::default());
    }

    #[test]
    fn help_describes_both_offset_models() {
        let help = <Cli as clap::CommandFactory>::command()
            .find_subcommand_mut("serve")
            .expect("the serve subcommand")
            .render_long_help()
            .to_string();
        for words in
            ["--offset <OFFSET>", "native", "materialize", "PostgreSQL", "[default: materialize]"]
        {
            assert!(help.contains(words), "{words:?} missing from:\n{help}");
        }
    }

    #[test]
    fn help_states_when_a_database_is_regenerated() {
        let help = <Cli as clap::CommandFactory>::command()
            .find_subcommand_mut("serve")
            .expect("the serve subcommand")
            .render_long_help()
            .to_string();
        for words in ["--regenerate", "served as it is", "--mutate-rate <N>", "2:2:1"] {
            assert!(help.contains(words), "{words:?} missing from:\n{help}");
        }
    }
}

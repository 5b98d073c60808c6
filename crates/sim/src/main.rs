//! The `iptvportal-sim` binary: runs the simulator until SIGINT or SIGTERM.
//!
//! The first line of stdout is the API base URL (flushed at once), so a parent process can start
//! the simulator on port 0 and read where it landed; everything else goes to stderr.

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use iptvportal_sim::{Collation, OffsetModel, Sim, SimConfig};

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
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0: any free port; the URL is printed first on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// SQLite file to serve, kept between runs and regenerated when the seed or sizes change
    /// [default: a temporary file removed on exit].
    #[arg(long)]
    db: Option<PathBuf>,
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
        .credentials(args.user, args.password);
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
    let Command::Serve(args) = cli.command;
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
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
        let Command::Serve(args) = cli.command;
        Ok(args)
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
}

//! One module per subcommand; [`run`] dispatches.

mod auth;
mod completions;
mod dump;
mod materialize;
mod plan;
mod select;
mod status;
mod tables;
mod verify;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use iptvportal_client::Client;

use crate::args::{Cli, Command, ConnectionArgs};
use crate::demo::Demo;

/// Where `dump` writes and `status` looks when neither `--out` nor the config file says.
const DEFAULT_OUT: &str = "./dumps";

/// Runs the command `cli` names, writing its output to `out`. Returns the exit code of a command
/// that reported its own failures (`dump`, `verify`); any other failure is the error.
pub(crate) async fn run(cli: &Cli, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Dump(args) => dump::run(&cli.connection, args, &cli.storage).await,
        Command::Sync(args) => dump::run_sync(&cli.connection, args, &cli.storage).await,
        Command::Materialize(args) => materialize::run(args).await,
        Command::Plan(args) => plan::run(&cli.connection, &args.dump, args.plan_format, out).await,
        Command::Select(args) => {
            // The query is checked before connecting, so that a typo in --where is reported
            // without a login (and without needing credentials at all).
            let query = select::Query::build(args)?;
            let connection = connect(&cli.connection).await?;
            query.run(&connection.client, args.format, out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Auth => {
            let connection = connect(&cli.connection).await?;
            auth::run(&connection.client, out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tables(args) => {
            let connection = connect(&cli.connection).await?;
            tables::run(&connection.client, args.format, out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) => {
            let dir = args.out.as_deref().unwrap_or(Path::new(DEFAULT_OUT));
            status::run(dir, &cli.storage, args.format, out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(args) => verify::run(&cli.connection, &cli.storage, args, out).await,
        Command::Completions(args) => {
            completions::run(args.shell, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reference => {
            out.write_all(crate::reference::markdown().as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            out.write_all(crate::reference::man_pages_json()?.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A client, and the demo portal it talks to with `--demo`, which serves as long as this lives.
pub(crate) struct Connection {
    pub(crate) client: Client,
    demo: Option<Demo>,
}

impl Connection {
    /// What must happen before the process exits without running destructors: the demo portal's
    /// database is deleted.
    pub(crate) fn before_exit(&self) -> Option<Box<dyn FnOnce() + Send>> {
        self.demo.as_ref().map(|d| Box::new(d.files_remover()) as Box<dyn FnOnce() + Send>)
    }
}

/// Connects as `args` say: to a freshly started demo portal with `--demo`, else to the portal of
/// the options, the environment or the config file.
pub(crate) async fn connect(args: &ConnectionArgs) -> anyhow::Result<Connection> {
    if args.demo {
        let demo = crate::demo::start(&args.demo_rows).await?;
        let client = args.client(Some(&demo.portal))?;
        return Ok(Connection { client, demo: Some(demo) });
    }
    Ok(Connection { client: args.client(None)?, demo: None })
}

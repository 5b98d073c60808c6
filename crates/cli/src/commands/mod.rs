//! One module per subcommand; [`run`] dispatches.

mod auth;
mod dump;
mod select;

use std::io::Write;
use std::process::ExitCode;

use crate::args::{Cli, Command};

/// Runs the command `cli` names, writing its output to `out`. Returns the exit code of a command
/// that reported its own failures (`dump`); any other failure is the error.
pub(crate) async fn run(cli: &Cli, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Dump(args) => dump::run(&cli.connection, args).await,
        Command::Select(args) => {
            // The query is checked before connecting, so that a typo in --where is reported
            // without a login (and without needing credentials at all).
            let query = select::Query::build(args)?;
            let client = cli.connection.client()?;
            query.run(&client, args.format, out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Auth => {
            let client = cli.connection.client()?;
            auth::run(&client, out).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

//! One module per subcommand; [`run`] dispatches.

mod auth;
mod select;

use std::io::Write;

use crate::args::{Cli, Command};

/// Runs the command `cli` names, writing its output to `out`.
pub(crate) async fn run(cli: &Cli, out: &mut impl Write) -> anyhow::Result<()> {
    match &cli.command {
        Command::Select(args) => {
            // The query is checked before connecting, so that a typo in --where is reported
            // without a login (and without needing credentials at all).
            let query = select::Query::build(args)?;
            let client = cli.connection.client()?;
            query.run(&client, args.format, out).await
        }
        Command::Auth => {
            let client = cli.connection.client()?;
            auth::run(&client, out).await
        }
    }
}

//! The settings in effect: each from the command line, else the environment, else the config
//! file, else its default (docs/configuration.md). This module alone knows that order.
//!
//! [`resolve`] runs once, before any command: it folds the environment and the config file into
//! the parsed command line, so that from then on [`Cli`] holds the settings in effect (the
//! runtime is sized from `--jobs`, which the file may set). What can fail only when connecting
//! (no portal, no username, reading `--password-stdin`) waits for [`ConnectionArgs::client`], so
//! that a command refused for another reason is refused first.
//!
//! Precedence over the file is decided per setting from where clap took each value: a value given
//! on the command line wins; a value clap filled in as its default is replaced by the file's. So
//! `--help` keeps showing the real defaults and the file needs no second copy of them.

use std::io::BufRead;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory};
use iptvportal_client::{
    Client, ClientConfig, ENV_DOMAIN, ENV_PASSWORD, ENV_URL, ENV_USERNAME, RetryPolicy, Secret,
};
use iptvportal_store::{S3Credentials, S3Options};

use crate::args::{Cli, Command, ConnectionArgs, PlanArgs, SyncArgs};
use crate::config::{self, Config, Storage};
use crate::demo::DemoPortal;
use crate::failure::Hinted;

/// The command line as [`matches()`] parses it: clap's, except that clap reads no environment
/// variable. The help still names `IPTVPORTAL_USERNAME` (that is the declaration's), but the
/// variable is read by [`resolve`] with the others: a value clap took from it would count as
/// `--username` given, which `--demo` refuses, and `--demo` ignores the environment.
pub(crate) fn command() -> clap::Command {
    Cli::command().mut_arg("username", |arg| arg.env(None))
}

/// Parses the process's arguments with [`command`]; exits on bad ones, and on `--help` and
/// `--version` after printing them.
pub(crate) fn matches() -> ArgMatches {
    match command().try_get_matches() {
        Ok(matches) => matches,
        // Rendered by the declared command line, so that the help shows the variable.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            if let Err(help) = Cli::command().try_get_matches() {
                help.exit();
            }
            e.exit()
        }
        Err(e) => e.exit(),
    }
}

/// Reads the config file, if any, and fills in every setting the command line left open: the
/// connection from the environment, then from the file (not with `--demo`, whose portal has its
/// own address and credentials), and the other settings from the file. `matches` are the ones
/// `cli` was built from.
pub(crate) fn resolve(cli: &mut Cli, matches: &ArgMatches) -> anyhow::Result<()> {
    // What only prints the command line itself (the completion script, the reference, the man
    // pages) reads no settings: a broken config file must not break the shell that sources it.
    if matches!(cli.command, Command::Completions(_) | Command::Reference | Command::Man) {
        return Ok(());
    }
    let file = config::load(cli.config.as_deref())?.unwrap_or_default();
    let sub = matches.subcommand().map(|(_, m)| m);
    let given = |id: &str| {
        // `value_source` panics on an id its command does not define: ask only where it is.
        let given = |m: &ArgMatches| {
            m.try_contains_id(id).is_ok()
                && matches!(
                    m.value_source(id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
        };
        given(matches) || sub.is_some_and(given)
    };
    if !cli.connection.demo {
        connection_from(&mut cli.connection, &|name| std::env::var(name).ok(), &file.connection);
    }
    apply_file(cli, &file, &given);
    cli.storage = file.storage;
    Ok(())
}

/// Where the portal is and who logs in, from the options, else the environment (`lookup`, a
/// parameter so that tests need not touch the process's), else the file. A portal given in any
/// form on a higher level wins as a whole.
fn connection_from(
    args: &mut ConnectionArgs,
    lookup: &dyn Fn(&str) -> Option<String>,
    file: &config::Connection,
) {
    // A variable set to blanks counts as unset.
    let env = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let url = |url: &String| (Some(url.clone()), None);
    let domain = |domain: &String| (None, Some(domain.trim().to_owned()));
    let portal = if let Some(portal) = &args.portal {
        url(portal)
    } else if let Some(d) = &args.domain {
        // As given: `ClientConfig::for_domain` refuses spaces in a domain typed as an option.
        (None, Some(d.clone()))
    } else if let Some(portal) = env(ENV_URL) {
        url(&portal)
    } else if let Some(d) = env(ENV_DOMAIN) {
        domain(&d)
    } else if let Some(portal) = &file.portal {
        url(portal)
    } else if let Some(d) = &file.domain {
        domain(d)
    } else {
        (None, None)
    };
    (args.portal, args.domain) = portal;
    args.username = args
        .username
        .take()
        .or_else(|| env(ENV_USERNAME))
        .or_else(|| file.username.clone())
        .filter(|u| !u.trim().is_empty());
    // The password is taken as is: leading or trailing spaces may be part of it.
    args.password = lookup(ENV_PASSWORD)
        .filter(|p| !p.is_empty())
        .or_else(|| file.password.clone())
        .map(Secret::new);
}

/// The file's settings other than where the portal is and who logs in, wherever the command line
/// left them at their defaults: `[connection]` for every command, `[dump]` for `dump` and
/// (`out` only) `status`.
fn apply_file(cli: &mut Cli, file: &Config, given: &dyn Fn(&str) -> bool) {
    // The file's value goes in where the command line gave none (`ids` are the clap ids that
    // set the same thing, a switch and its `--no-` twin).
    fn fill<T: Clone>(
        slot: &mut T,
        from_file: Option<&T>,
        given: &dyn Fn(&str) -> bool,
        ids: &[&str],
    ) {
        if let Some(value) = from_file
            && !ids.iter().any(|id| given(id))
        {
            slot.clone_from(value);
        }
    }
    let c = &file.connection;
    let connection = &mut cli.connection;
    fill(&mut connection.timeout, c.timeout.as_ref(), given, &["timeout"]);
    fill(&mut connection.max_retries, c.max_retries.as_ref(), given, &["max_retries"]);
    fill(&mut connection.insecure, c.insecure.as_ref(), given, &["insecure", "no_insecure"]);

    let d = &file.dump;
    match &mut cli.command {
        Command::Dump(args)
        | Command::Plan(PlanArgs { dump: args, .. })
        | Command::Sync(SyncArgs { dump: args, .. }) => {
            fill(&mut args.out, d.out.as_ref(), given, &["out"]);
            fill(&mut args.format, d.format.as_ref(), given, &["format"]);
            fill(&mut args.strategy, d.strategy.as_ref(), given, &["strategy"]);
            fill(&mut args.chunk_size, d.chunk_size.as_ref(), given, &["chunk_size"]);
            fill(&mut args.parallel, d.parallel.as_ref(), given, &["parallel"]);
            fill(&mut args.jobs, d.jobs.as_ref(), given, &["jobs"]);
            fill(&mut args.compress, d.compress.as_ref(), given, &["compress", "no_compress"]);
            let part_rows = d.part_rows.map(Some);
            fill(&mut args.part_rows, part_rows.as_ref(), given, &["part_rows"]);
            let summary = d.summary.clone().map(Some);
            fill(&mut args.summary, summary.as_ref(), given, &["summary"]);
            // The file's `exclude` is for `--all`: tables given by name are the whole list.
            if args.all {
                fill(&mut args.exclude, d.exclude.as_ref(), given, &["exclude"]);
            }
            // Columns given by name are the whole list: the file's exclusions do not apply.
            if args.columns.is_empty() {
                fill(
                    &mut args.exclude_columns,
                    d.exclude_columns.as_ref(),
                    given,
                    &["exclude_columns"],
                );
            }
        }
        Command::Status(args) => {
            if args.out.is_none() {
                args.out.clone_from(&d.out);
            }
        }
        Command::Select(_)
        | Command::Auth
        | Command::Tables(_)
        | Command::Verify(_)
        | Command::Materialize(_)
        | Command::Completions(_)
        | Command::Reference
        | Command::Man => {}
    }
}

/// The S3 settings of the config file's `[storage]` where the AWS environment (`env`) leaves
/// them unset: the environment wins, as it does over the file's `[connection]`. Credentials go
/// as a whole: a key id in the environment uses the environment's secret too.
pub(crate) fn s3_options(file: &Storage, env: &dyn Fn(&str) -> Option<String>) -> S3Options {
    let unset = |names: &[&str]| names.iter().all(|n| env(n).is_none_or(|v| v.trim().is_empty()));
    let mut options = S3Options::default();
    if unset(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
        && let (Some(id), Some(secret)) = (&file.access_key_id, &file.secret_access_key)
    {
        options.credentials = Some(S3Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: file.session_token.clone(),
        });
    }
    if unset(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]) {
        options.endpoint.clone_from(&file.endpoint);
    }
    if unset(&["AWS_REGION", "AWS_DEFAULT_REGION"]) {
        options.region.clone_from(&file.region);
    }
    if unset(&["AWS_ALLOW_HTTP"]) {
        options.allow_http = file.allow_http;
    }
    if unset(&["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"]) {
        options.virtual_hosted = file.virtual_hosted;
    }
    options.max_retries = file.max_retries.map(|n| n as usize);
    options
}

impl ConnectionArgs {
    /// The client configuration: the demo portal when there is one, else the portal and the
    /// credentials [`resolve`] settled on (`--password-stdin` is read here).
    fn config(&self, demo: Option<&DemoPortal>) -> anyhow::Result<ClientConfig> {
        let retry = RetryPolicy::default().max_retries(self.max_retries);
        if let Some(demo) = demo {
            return Ok(ClientConfig::new(&demo.url)?
                .credentials(demo.username.clone(), demo.password.clone())
                .timeout(self.timeout)
                .retry(retry));
        }
        let config = if let Some(url) = &self.portal {
            ClientConfig::new(url)?
        } else if let Some(domain) = &self.domain {
            ClientConfig::for_domain(domain)?
        } else {
            return Err(Hinted::new(
                "no portal given",
                format!(
                    "pass --portal URL (or set {ENV_URL}), or --domain D (or set {ENV_DOMAIN}), or set portal in the config file; --demo tries a local demo portal"
                ),
            )
            .into());
        };
        let username = self.username.clone().ok_or_else(|| {
            Hinted::new(
                "no username given",
                format!("pass --username or set {ENV_USERNAME} (or username in the config file)"),
            )
        })?;
        let password = if self.password_stdin {
            Secret::new(read_password_line()?)
        } else {
            self.password.clone().ok_or_else(|| {
                Hinted::new(
                    "no password given",
                    format!(
                        "set {ENV_PASSWORD} or pass --password-stdin (or password in the config file)"
                    ),
                )
            })?
        };
        if self.insecure {
            crate::output::note(
                "warning: --insecure: the portal's TLS certificate is not verified",
            );
        }
        Ok(config
            .credentials(username, password)
            .timeout(self.timeout)
            .retry(retry)
            .accept_invalid_certs(self.insecure))
    }

    /// A client for [`ConnectionArgs::config`].
    pub(crate) fn client(&self, demo: Option<&DemoPortal>) -> anyhow::Result<Client> {
        Ok(Client::new(self.config(demo)?)?)
    }
}

/// Reads the password from the first line of stdin, without its line ending.
fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(Hinted::new(
            "no password on stdin",
            "pipe the password as the first line of stdin",
        )
        .into());
    }
    Ok(password.to_owned())
}

#[cfg(test)]
mod tests {
    use clap::FromArgMatches;

    use super::*;

    /// The connection of `args` over the environment `env` and the file `file`.
    fn connection(args: &str, env: &[(&str, &str)], file: &config::Connection) -> ConnectionArgs {
        let args = format!("iptvportal {args} auth");
        let matches = command().try_get_matches_from(args.split_whitespace()).unwrap();
        let mut cli = Cli::from_arg_matches(&matches).unwrap();
        let lookup =
            |name: &str| env.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned());
        connection_from(&mut cli.connection, &lookup, file);
        cli.connection
    }

    fn file() -> config::Connection {
        config::Connection {
            portal: Some("http://file/".into()),
            domain: Some("filedomain".into()),
            username: Some("file-user".into()),
            password: Some("file-password".into()),
            ..Default::default()
        }
    }

    fn portal(c: &ConnectionArgs) -> (Option<&str>, Option<&str>) {
        (c.portal.as_deref(), c.domain.as_deref())
    }

    #[test]
    fn options_beat_the_environment_which_beats_the_file() {
        let env = [
            (ENV_URL, "http://env/"),
            (ENV_DOMAIN, "envdomain"),
            (ENV_USERNAME, "env-user"),
            (ENV_PASSWORD, "env-password"),
        ];
        let c = connection("--domain acme --username admin", &env, &file());
        assert_eq!(portal(&c), (None, Some("acme")));
        assert_eq!(c.username.as_deref(), Some("admin"));
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("env-password"));

        let c = connection("", &env, &file());
        assert_eq!(portal(&c), (Some("http://env/"), None));
        assert_eq!(c.username.as_deref(), Some("env-user"));

        let c = connection("", &env[1..], &file());
        assert_eq!(portal(&c), (None, Some("envdomain")));

        let c = connection("", &[], &file());
        assert_eq!(portal(&c), (Some("http://file/"), None));
        assert_eq!(c.username.as_deref(), Some("file-user"));
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("file-password"));

        let c = connection("", &[], &config::Connection { portal: None, ..file() });
        assert_eq!(portal(&c), (None, Some("filedomain")));
        let c = connection("", &[], &config::Connection::default());
        assert_eq!(portal(&c), (None, None));
        assert_eq!(c.username, None);
        assert!(c.password.is_none());
    }

    #[test]
    fn clap_reads_no_variable() {
        // The help names the variable; only `connection_from` reads it.
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("[env: IPTVPORTAL_USERNAME]"), "{help}");
        assert!(command().get_arguments().all(|arg| arg.get_env().is_none()));
    }

    #[test]
    fn blank_variables_count_as_unset() {
        let env = [(ENV_URL, " "), (ENV_DOMAIN, ""), (ENV_USERNAME, " "), (ENV_PASSWORD, "")];
        let c = connection("", &env, &file());
        assert_eq!(portal(&c), (Some("http://file/"), None));
        assert_eq!(c.username.as_deref(), Some("file-user"));
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("file-password"));
        // A password is taken as is: spaces may be part of it.
        let c = connection("", &[(ENV_PASSWORD, " ")], &file());
        assert_eq!(c.password.as_ref().map(Secret::expose), Some(" "));
    }

    #[test]
    fn the_aws_environment_beats_the_storage_table_key_by_key() {
        let file = Storage {
            endpoint: Some("http://file:9000".into()),
            region: Some("file-region".into()),
            access_key_id: Some("file-key".into()),
            secret_access_key: Some("file-secret".into()),
            session_token: Some("file-token".into()),
            allow_http: Some(true),
            virtual_hosted: Some(true),
            max_retries: Some(2),
            stage_root: None,
        };
        let options = |env: &[(&str, &str)]| {
            let env: Vec<(String, String)> =
                env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            s3_options(&file, &|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        };
        let all = options(&[]);
        assert_eq!(all.endpoint.as_deref(), Some("http://file:9000"));
        assert_eq!(all.region.as_deref(), Some("file-region"));
        let credentials = all.credentials.unwrap();
        assert_eq!(
            (credentials.access_key_id.as_str(), credentials.session_token.as_deref()),
            ("file-key", Some("file-token"))
        );
        assert_eq!(
            (all.allow_http, all.virtual_hosted, all.max_retries),
            (Some(true), Some(true), Some(2))
        );
        // Each variable set leaves its key to the environment (a blank one counts as unset);
        // a key id there takes the credentials as a whole.
        let env = options(&[
            ("AWS_ENDPOINT_URL", "http://env:9000"),
            ("AWS_DEFAULT_REGION", "env-region"),
            ("AWS_ACCESS_KEY_ID", "env-key"),
            ("AWS_ALLOW_HTTP", "false"),
            ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", " "),
        ]);
        assert_eq!(
            (env.endpoint, env.region, env.credentials, env.allow_http),
            (None, None, None, None)
        );
        assert_eq!(env.virtual_hosted, Some(true));
        // The secrets never show in a debug print of the file's table.
        let shown = format!("{file:?}");
        assert!(!shown.contains("file-secret") && !shown.contains("file-token"), "{shown}");
    }
}

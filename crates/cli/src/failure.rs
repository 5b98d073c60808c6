//! Turning any failure into the one line a user sees: `error: <what happened>; <what to do>`.

use std::fmt;

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
    // `{:#}` joins any context with the cause on one line; newlines inside a server's message are
    // flattened so that the error stays one line.
    let what = format!("{error:#}").replace(['\n', '\r'], " ");
    match hint(error) {
        Some(hint) => format!("error: {what}; {hint}"),
        None => format!("error: {what}"),
    }
}

/// The line printed for a table whose dump failed: `error: <table>: <what happened>; <what to do>`.
///
/// Several of the orchestrator's messages already end in advice of their own (`…; start over with
/// --reset`); those get no second hint.
pub(crate) fn render_dump(error: &iptvportal_dump::Error) -> String {
    use iptvportal_dump::Error as E;
    let what = error.to_string().replace(['\n', '\r'], " ");
    let hint = match error {
        E::Config { reason, .. } if !reason.contains("; ") => {
            Some("see `iptvportal dump --help`".to_owned())
        }
        E::Fetch { .. } => Some(fetch_hint(error.is_transient(), error)),
        E::Sink { .. } => Some(
            "check the output directory (free space, permissions); a rerun resumes from the last commit, --reset starts over"
                .to_owned(),
        ),
        E::Checkpoint { .. } => Some(
            "check that the output directory is writable; --reset starts over".to_owned(),
        ),
        // The rest carry their own advice (OutputDir, ShapeMismatch, Conflict, Cancelled) or
        // are a Config reason that does.
        _ => None,
    };
    match hint {
        Some(hint) => format!("error: {what}; {hint}"),
        None => format!("error: {what}"),
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
        let e = anyhow::Error::from(Hinted::new("no portal given", "pass --portal"));
        assert_eq!(render(&e), "error: no portal given; pass --portal");
    }

    #[test]
    fn dump_errors_name_the_table_and_advise_once() {
        use iptvportal_dump::Error as E;
        let e =
            E::Config { table: "terminal".into(), reason: "chunk size must be at least 1".into() };
        assert_eq!(
            render_dump(&e),
            "error: terminal: chunk size must be at least 1; see `iptvportal dump --help`"
        );
        let e = E::Config {
            table: "terminal".into(),
            reason: "id-range always walks ascending id; drop --order-by or use --strategy offset"
                .into(),
        };
        assert_eq!(
            render_dump(&e),
            "error: terminal: id-range always walks ascending id; drop --order-by or use --strategy offset"
        );
    }
}

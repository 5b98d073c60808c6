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
}

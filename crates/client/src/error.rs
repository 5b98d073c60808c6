//! The one error type of the client, and which of its cases are worth retrying.

use std::time::Duration;

/// Everything that can go wrong talking to a portal.
///
/// Every message is one readable line that names what failed; none contains a password, a session
/// id or an HTTP header. [`Error::is_retryable`] says whether trying the same request again may help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is incomplete or invalid (a missing variable, a bad URL).
    #[error("{message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// No connection could be made, or it broke before a response arrived.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The portal's API base URL.
        url: String,
        /// The cause, e.g. `connection refused`.
        reason: String,
    },
    /// No complete response within the per-request timeout.
    #[error("no response from {url} within {}", fmt_duration(*after))]
    Timeout {
        /// The portal's API base URL.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The TLS handshake failed (an untrusted or invalid certificate, a protocol mismatch).
    #[error("tls error with {url}: {reason}")]
    Tls {
        /// The portal's API base URL.
        url: String,
        /// The cause.
        reason: String,
    },
    /// The portal's port answered an https request in plain http (or something else that is
    /// not TLS): the URL's scheme or port is wrong.
    #[error("{url} does not speak TLS on this port (is it a plain http portal?)")]
    NotTls {
        /// The portal's API base URL.
        url: String,
    },
    /// An HTTP status other than 200, 401 and 429.
    #[error("{url} answered http {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Http {
        /// The status code.
        status: u16,
        /// The endpoint URL.
        url: String,
        /// The server's error message, if its body carried one.
        message: String,
    },
    /// The portal asked us to slow down (HTTP 429).
    #[error("rate limited by the portal{}", retry_after.map(|d| format!(" (retry after {})", fmt_duration(d))).unwrap_or_default())]
    RateLimited {
        /// The delay the server asked for (`Retry-After`), if it named one.
        retry_after: Option<Duration>,
    },
    /// A body that is not the JSON-RPC response expected: truncated, not JSON, or the wrong shape.
    #[error("unreadable response: {reason}{}", if snippet.is_empty() { String::new() } else { format!(" (body starts {snippet:?})") })]
    BadResponse {
        /// What is wrong with it.
        reason: String,
        /// The first characters of the body, for diagnosis (never headers).
        snippet: String,
    },
    /// The portal refused the credentials. Retrying cannot help.
    #[error("login refused: {message}")]
    Auth {
        /// The server's message, verbatim.
        message: String,
    },
    /// The portal refused the session. A call that returns this error had already logged in
    /// again once and been refused again.
    #[error("the portal rejected the session (expired or revoked): {message}")]
    SessionExpired {
        /// The server's message, verbatim.
        message: String,
    },
    /// The portal refused the request (unknown table or column, a database error, …). Not retryable.
    #[error("the portal refused the request: {message} (code {code})")]
    Server {
        /// The JSON-RPC error code.
        code: i64,
        /// The server's message, verbatim.
        message: String,
    },
    /// The query could not be built or written as JSONSQL.
    #[error("invalid query: {source}")]
    Query {
        /// The query layer's error.
        #[from]
        source: iptvportal_query::Error,
    },
}

impl Error {
    /// Whether the same request may succeed if sent again: timeouts, connection failures and resets,
    /// HTTP 5xx and 408, rate limiting, and truncated or unreadable bodies. Everything else (bad
    /// credentials, query errors, TLS, configuration) fails the same way every time.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::RateLimited { .. }
            | Error::BadResponse { .. } => true,
            Error::Http { status, .. } => *status >= 500 || *status == 408,
            Error::Config { .. }
            | Error::Tls { .. }
            | Error::NotTls { .. }
            | Error::Auth { .. }
            | Error::SessionExpired { .. }
            | Error::Server { .. }
            | Error::Query { .. } => false,
        }
    }

    /// The delay the server asked for before the next request, if it named one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::Config { message: message.into() }
    }
}

/// `1.5s`, `30s`, `250ms`: short and exact enough for a message.
fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_lowercase_line() {
        let errors = [
            Error::Connect {
                url: "http://127.0.0.1:9/api/".into(),
                reason: "connection refused".into(),
            },
            Error::Timeout { url: "http://h/api/".into(), after: Duration::from_millis(250) },
            Error::Http {
                status: 502,
                url: "http://h/api/jsonsql/".into(),
                message: String::new(),
            },
            Error::RateLimited { retry_after: Some(Duration::from_secs(1)) },
            Error::BadResponse { reason: "not json".into(), snippet: "<html>".into() },
            Error::Auth { message: "invalid username or password".into() },
            Error::Server { code: -32602, message: "unknown table \"nope\"".into() },
        ];
        for e in &errors {
            let m = e.to_string();
            assert!(!m.contains('\n') && !m.ends_with('.'), "{m}");
            assert!(m.chars().next().is_some_and(char::is_lowercase), "{m}");
        }
        assert_eq!(
            errors[0].to_string(),
            "cannot connect to http://127.0.0.1:9/api/: connection refused"
        );
        assert_eq!(errors[1].to_string(), "no response from http://h/api/ within 250ms");
        assert_eq!(errors[3].to_string(), "rate limited by the portal (retry after 1s)");
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(
            Error::Http { status: 503, url: String::new(), message: String::new() }.is_retryable()
        );
        assert!(
            !Error::Http { status: 404, url: String::new(), message: String::new() }.is_retryable()
        );
        assert!(Error::RateLimited { retry_after: None }.is_retryable());
        assert!(!Error::Auth { message: String::new() }.is_retryable());
        assert!(!Error::Server { code: -32602, message: String::new() }.is_retryable());
        assert!(!Error::SessionExpired { message: String::new() }.is_retryable());
    }
}

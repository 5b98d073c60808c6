//! Where the portal is and how to talk to it: [`ClientConfig`], its URL rules and its environment
//! variables.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use crate::{Error, RetryPolicy, Secret};

/// The environment variable holding the API base URL.
pub const ENV_URL: &str = "IPTVPORTAL_URL";
/// The environment variable holding the portal's domain (`{domain}.admin.iptvportal.ru`).
pub const ENV_DOMAIN: &str = "IPTVPORTAL_DOMAIN";
/// The environment variable holding the admin user name.
pub const ENV_USERNAME: &str = "IPTVPORTAL_USERNAME";
/// The environment variable holding the admin password.
pub const ENV_PASSWORD: &str = "IPTVPORTAL_PASSWORD";

/// The per-request timeout unless set otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach a portal: the API base URL, credentials, timeout, retry policy and TLS leniency.
///
/// The URL is normalised once, here: a base with no path gets `/api/`, a trailing slash is added,
/// and anything that is not a plain `http(s)` URL (credentials inside it, a query, a fragment) is
/// refused, so that `{base}jsonrpc/` and `{base}jsonsql/` are always the endpoints.
///
/// ```
/// # use iptvportal_client::ClientConfig;
/// let config = ClientConfig::new("http://127.0.0.1:4000")?.credentials("admin", "admin");
/// assert_eq!(config.base_url(), "http://127.0.0.1:4000/api/");
/// let config = ClientConfig::for_domain("acme")?;
/// assert_eq!(config.base_url(), "https://acme.admin.iptvportal.ru/api/");
/// # Ok::<(), iptvportal_client::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    pub(crate) base_url: Url,
    pub(crate) username: String,
    pub(crate) password: Secret,
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) accept_invalid_certs: bool,
}

impl ClientConfig {
    /// A config for the API base `url` (normalised as described above), with no credentials yet.
    pub fn new(url: &str) -> Result<ClientConfig, Error> {
        Ok(ClientConfig {
            base_url: normalize_url(url)?,
            username: String::new(),
            password: Secret::default(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            accept_invalid_certs: false,
        })
    }

    /// A config for the hosted portal `https://{domain}.admin.iptvportal.ru/api/`.
    pub fn for_domain(domain: &str) -> Result<ClientConfig, Error> {
        let valid = !domain.is_empty()
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid {
            return Err(Error::config(format!(
                "invalid portal domain {domain:?}: use the name before .admin.iptvportal.ru, e.g. acme"
            )));
        }
        ClientConfig::new(&format!("https://{domain}.admin.iptvportal.ru/api/"))
    }

    /// A complete config from the environment: `IPTVPORTAL_URL` (or `IPTVPORTAL_DOMAIN`),
    /// `IPTVPORTAL_USERNAME` and `IPTVPORTAL_PASSWORD`. A missing or empty variable is an error
    /// naming it.
    pub fn from_env() -> Result<ClientConfig, Error> {
        ClientConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`ClientConfig::from_env`] over any source of variables, so that it can be tested without
    /// touching the process environment.
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ClientConfig, Error> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let config = match (get(ENV_URL), get(ENV_DOMAIN)) {
            (Some(url), _) => ClientConfig::new(&url),
            (None, Some(domain)) => ClientConfig::for_domain(domain.trim()),
            (None, None) => Err(Error::config(format!(
                "no portal given: set {ENV_URL} (e.g. https://portal.example.com/api/) or {ENV_DOMAIN}"
            ))),
        }?;
        let username = get(ENV_USERNAME)
            .ok_or_else(|| Error::config(format!("no username given: set {ENV_USERNAME}")))?;
        // The password is taken as is: leading or trailing spaces may be part of it.
        let password = lookup(ENV_PASSWORD)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::config(format!("no password given: set {ENV_PASSWORD}")))?;
        Ok(config.credentials(username, password))
    }

    /// Sets the user name and password.
    #[must_use]
    pub fn credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> ClientConfig {
        self.username = username.into();
        self.password = password.into();
        self
    }

    /// Sets the timeout of each HTTP request, from sending to the end of the body (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> ClientConfig {
        self.timeout = timeout;
        self
    }

    /// Sets the default retry policy of the client's calls.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> ClientConfig {
        self.retry = policy;
        self
    }

    /// Accepts self-signed and otherwise invalid TLS certificates. Only for on-premise portals the
    /// operator trusts: it disables the protection TLS gives against a man in the middle.
    #[must_use]
    pub fn accept_invalid_certs(mut self, accept: bool) -> ClientConfig {
        self.accept_invalid_certs = accept;
        self
    }

    /// The normalised API base URL, ending with `/`.
    pub fn base_url(&self) -> &str {
        self.base_url.as_str()
    }

    /// The user name.
    pub fn login(&self) -> &str {
        &self.username
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.timeout
    }

    /// The default retry policy.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Whether invalid TLS certificates are accepted.
    pub fn accepts_invalid_certs(&self) -> bool {
        self.accept_invalid_certs
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url.as_str())
            .field("username", &self.username)
            .field("password", &self.password)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish()
    }
}

/// Applies the URL rules of [`ClientConfig`].
fn normalize_url(input: &str) -> Result<Url, Error> {
    let input = input.trim();
    // A URL with credentials in it is never echoed back: the message would print the password.
    let shown = if input.contains('@') {
        "(hidden: it contains credentials)".to_owned()
    } else {
        format!("{input:?}")
    };
    let mut url = Url::parse(input).map_err(|e| {
        Error::config(format!(
            "invalid portal url {shown}: {e}; expected e.g. https://portal.example.com/api/"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(format!(
            "invalid portal url {shown}: the scheme must be http or https"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(format!("invalid portal url {shown}: it has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(format!(
            "invalid portal url {shown}: put credentials in {ENV_USERNAME} and {ENV_PASSWORD}, not in the url"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(format!(
            "invalid portal url {shown}: it must not have a query or fragment"
        )));
    }
    let path = url.path();
    if path.is_empty() || path == "/" {
        url.set_path("/api/");
    } else if !path.ends_with('/') {
        let with_slash = format!("{path}/");
        url.set_path(&with_slash);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn base(url: &str) -> String {
        normalize_url(url).map_or_else(|e| format!("error: {e}"), |u| u.to_string())
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(base("http://127.0.0.1:4000"), "http://127.0.0.1:4000/api/");
        assert_eq!(base("http://127.0.0.1:4000/"), "http://127.0.0.1:4000/api/");
        assert_eq!(base("https://portal.example.com/api"), "https://portal.example.com/api/");
        assert_eq!(base("https://portal.example.com/api/"), "https://portal.example.com/api/");
        assert_eq!(
            base("  https://portal.example.com/custom/api  "),
            "https://portal.example.com/custom/api/"
        );
        assert_eq!(base("HTTPS://Portal.Example.com"), "https://portal.example.com/api/");
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_credentials() {
        for bad in [
            "portal.example.com",
            "ftp://portal.example.com/",
            "http://",
            "",
            "https://h/api/?x=1",
            "https://h/#f",
        ] {
            assert!(matches!(normalize_url(bad), Err(Error::Config { .. })), "{bad:?} accepted");
        }
        let e = normalize_url("https://admin:hunter2@h/api/").unwrap_err().to_string();
        assert!(!e.contains("hunter2") && e.contains("IPTVPORTAL_USERNAME"), "{e}");
        let e = normalize_url("https://admin:hunter2@").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn domains_build_the_hosted_url() {
        assert_eq!(
            ClientConfig::for_domain("acme").unwrap().base_url(),
            "https://acme.admin.iptvportal.ru/api/"
        );
        for bad in ["", "a/b", "-x", "a b", "x."] {
            assert!(ClientConfig::for_domain(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn from(vars: &[(&str, &str)]) -> Result<ClientConfig, Error> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ClientConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn environment_variables_are_read_and_named_when_missing() {
        let c = from(&[(ENV_URL, "http://h:1"), (ENV_USERNAME, "admin"), (ENV_PASSWORD, " pw ")])
            .unwrap();
        assert_eq!(
            (c.base_url(), c.login(), c.password.expose()),
            ("http://h:1/api/", "admin", " pw ")
        );
        let c = from(&[(ENV_DOMAIN, "acme"), (ENV_USERNAME, "a"), (ENV_PASSWORD, "p")]).unwrap();
        assert_eq!(c.base_url(), "https://acme.admin.iptvportal.ru/api/");
        let c = from(&[
            (ENV_URL, "http://h:1"),
            (ENV_DOMAIN, "acme"),
            (ENV_USERNAME, "a"),
            (ENV_PASSWORD, "p"),
        ]);
        assert_eq!(c.unwrap().base_url(), "http://h:1/api/", "the url wins over the domain");

        let message = |vars: &[(&str, &str)]| from(vars).unwrap_err().to_string();
        assert!(message(&[]).contains("IPTVPORTAL_URL"));
        assert!(
            message(&[(ENV_URL, "http://h"), (ENV_PASSWORD, "p")]).contains("IPTVPORTAL_USERNAME")
        );
        assert!(
            message(&[(ENV_URL, "http://h"), (ENV_USERNAME, "u"), (ENV_PASSWORD, "")])
                .contains("IPTVPORTAL_PASSWORD")
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let c = ClientConfig::new("http://h").unwrap().credentials("admin", "hunter2");
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2") && debug.contains("***"), "{debug}");
    }
}

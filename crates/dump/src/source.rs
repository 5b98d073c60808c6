//! Where a dump's rows come from: the [`Portal`] seam, and its implementation over the client.

use std::sync::Arc;

use async_trait::async_trait;
use iptvportal_client::{Client, RetryPolicy};
use iptvportal_query::Select;
use iptvportal_traverse::{BoxError, RowSource};
use serde_json::Value;

use crate::DumpConfig;

/// Called by a source each time a request failed transiently and is about to be retried, so
/// that progress can show "retrying".
pub type RetryHook = Arc<dyn Fn() + Send + Sync>;

/// What dumps read from: for each dump, a [`RowSource`] that applies the dump's request timeout
/// and per-chunk retry budget, and calls `on_retry` before each retry.
///
/// [`Client`] is the portal over HTTP. Any `Arc<dyn RowSource>` is one too (it has no timeout or
/// retries of its own to configure), which is how the orchestrator runs over an in-memory source
/// in tests.
pub trait Portal: Send + Sync + 'static {
    /// The source one dump reads through.
    fn source(&self, config: &DumpConfig, on_retry: RetryHook) -> Arc<dyn RowSource>;

    /// What tells this portal from another, recorded in the checkpoint so that a dump never
    /// resumes with another portal's rows: never a secret. `None` (the default) records nothing.
    fn identity(&self) -> Option<String> {
        None
    }
}

impl Portal for Client {
    fn source(&self, config: &DumpConfig, on_retry: RetryHook) -> Arc<dyn RowSource> {
        let observer: iptvportal_client::RetryObserver = Arc::new(move |_, _| on_retry());
        Arc::new(ClientSource {
            client: self
                .with_retry_observer(observer)
                .with_retry(
                    RetryPolicy::default()
                        .max_retries(config.max_retries)
                        .backoff(config.retry_backoff)
                        // `try_`: a factor too large for a `Duration` (1e20) must not panic;
                        // the policy caps every wait at its maximum anyway.
                        .base_delay(
                            std::time::Duration::try_from_secs_f64(config.retry_backoff)
                                .unwrap_or(std::time::Duration::MAX),
                        ),
                )
                .with_timeout(config.batch_timeout),
        })
    }

    /// The API URL, without user, password, query or fragment.
    fn identity(&self) -> Option<String> {
        let mut url = url_without_secrets(self.base_url())?;
        url.truncate(url.trim_end_matches('/').len());
        Some(url)
    }
}

/// `url` with any user info, query and fragment cut away (none of them tells the portal apart,
/// and they may hold secrets).
fn url_without_secrets(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let rest = rest.split(['?', '#']).next()?;
    let rest = match rest.split_once('/') {
        Some((authority, path)) => {
            format!("{}/{path}", authority.rsplit_once('@').map_or(authority, |(_, host)| host))
        }
        None => rest.rsplit_once('@').map_or(rest, |(_, host)| host).to_owned(),
    };
    Some(format!("{scheme}://{rest}"))
}

/// A portal under a name of the caller's choosing, recorded as its identity: for a portal whose
/// address changes between runs but whose data does not (the CLI's `--demo`, on a new port each
/// time).
pub struct NamedPortal<P> {
    portal: P,
    name: String,
}

impl<P: Portal> NamedPortal<P> {
    /// `portal`, known as `name`.
    pub fn new(portal: P, name: impl Into<String>) -> NamedPortal<P> {
        NamedPortal { portal, name: name.into() }
    }
}

impl<P: Portal> Portal for NamedPortal<P> {
    fn source(&self, config: &DumpConfig, on_retry: RetryHook) -> Arc<dyn RowSource> {
        self.portal.source(config, on_retry)
    }

    fn identity(&self) -> Option<String> {
        Some(self.name.clone())
    }
}

/// A portal chosen at run time (a client, or a named one), shared.
impl Portal for Arc<dyn Portal> {
    fn source(&self, config: &DumpConfig, on_retry: RetryHook) -> Arc<dyn RowSource> {
        (**self).source(config, on_retry)
    }

    fn identity(&self) -> Option<String> {
        (**self).identity()
    }
}

impl Portal for Arc<dyn RowSource> {
    fn source(&self, _: &DumpConfig, _: RetryHook) -> Arc<dyn RowSource> {
        Arc::clone(self)
    }
}

/// The client behind the traversal's `RowSource` seam: every call retries by the dump's per-chunk
/// policy (a fresh budget per request) and times out after the batch timeout.
struct ClientSource {
    client: Client,
}

#[async_trait]
impl RowSource for ClientSource {
    async fn select(&self, query: &Select) -> Result<Vec<Vec<Value>>, BoxError> {
        self.client.select(query).await.map_err(|e| Box::new(e) as BoxError)
    }

    async fn select_i64s(&self, query: &Select) -> Result<Vec<i64>, BoxError> {
        self.client.select_i64s(query).await.map_err(|e| Box::new(e) as BoxError)
    }
}

#[cfg(test)]
mod tests {
    use super::url_without_secrets;

    #[test]
    fn a_portals_identity_holds_no_secret() {
        let cases = [
            ("https://acme.admin.iptvportal.ru/api/", "https://acme.admin.iptvportal.ru/api/"),
            ("http://user:pa55@10.0.0.1:4000/api/?token=x#f", "http://10.0.0.1:4000/api/"),
            ("http://user@host", "http://host"),
        ];
        for (url, want) in cases {
            assert_eq!(url_without_secrets(url).as_deref(), Some(want), "{url}");
        }
    }
}

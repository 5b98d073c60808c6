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
                        .base_delay(std::time::Duration::from_secs_f64(config.retry_backoff)),
                )
                .with_timeout(config.batch_timeout),
        })
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

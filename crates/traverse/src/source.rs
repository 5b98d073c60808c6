//! The `RowSource` seam: where rows come from.

use std::sync::Arc;

use async_trait::async_trait;
use iptvportal_query::Select;
use serde_json::Value;

/// The error a [`RowSource`] reports. Boxed so that any backend's typed error passes through
/// unchanged: the caller can downcast it (the dump engine does, to tell a retryable failure from a
/// query error) and its message reaches the user as written.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Runs JSONSQL selects. The portal client implements it through a thin adapter; tests implement it
/// in memory.
///
/// It is the whole seam on purpose: counts, `min`/`max` and pages are all selects, so a backend has
/// one method to get right. A backend retries transient failures itself (it knows which are), so an
/// error returned here is final for that request.
#[async_trait]
pub trait RowSource: Send + Sync {
    /// Runs `query` and returns its rows, each an array in `data` order.
    async fn select(&self, query: &Select) -> Result<Vec<Vec<Value>>, BoxError>;
}

#[async_trait]
impl<T: RowSource + ?Sized> RowSource for Arc<T> {
    async fn select(&self, query: &Select) -> Result<Vec<Vec<Value>>, BoxError> {
        (**self).select(query).await
    }
}

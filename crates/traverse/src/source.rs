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
/// It is one required method on purpose: counts, id scans and pages are all selects, so a backend
/// has one method to get right ([`RowSource::select_i64s`] has a default over it). A backend retries transient failures itself (it knows which are), so an
/// error returned here is final for that request.
#[async_trait]
pub trait RowSource: Send + Sync {
    /// Runs `query` and returns its rows, each an array in `data` order.
    async fn select(&self, query: &Select) -> Result<Vec<Vec<Value>>, BoxError>;

    /// Runs `query`, whose rows are one integer each (the id scan of parallel ID_RANGE), and
    /// returns the integers. The default reads the rows through [`RowSource::select`]; a backend
    /// that can read the integers without a row apiece overrides it (the portal client does:
    /// a scan page holds tens of thousands of ids).
    async fn select_i64s(&self, query: &Select) -> Result<Vec<i64>, BoxError> {
        self.select(query)
            .await?
            .into_iter()
            .map(|row| match row.as_slice() {
                [value] => value.as_i64().ok_or_else(|| not_an_integer(&row)),
                _ => Err(not_an_integer(&row)),
            })
            .collect()
    }
}

fn not_an_integer(row: &[Value]) -> BoxError {
    format!("expected rows of one integer, got {}", Value::from(row.to_vec())).into()
}

#[async_trait]
impl<T: RowSource + ?Sized> RowSource for Arc<T> {
    async fn select(&self, query: &Select) -> Result<Vec<Vec<Value>>, BoxError> {
        (**self).select(query).await
    }

    async fn select_i64s(&self, query: &Select) -> Result<Vec<i64>, BoxError> {
        (**self).select_i64s(query).await
    }
}

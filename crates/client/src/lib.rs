//! An async client of the `IPTVPortal` admin API: JSON-RPC `authorize_user`, JSONSQL `select`, one
//! shared session, retries of transient failures, and typed errors.
//!
//! ```no_run
//! use iptvportal_client::{Client, ClientConfig};
//! use iptvportal_query::Select;
//!
//! # async fn demo() -> Result<(), iptvportal_client::Error> {
//! let client = Client::new(ClientConfig::from_env()?)?;
//! let rows = client.select(&Select::from("terminal")?.columns(["id", "mac_addr"])?.limit(10)).await?;
//! let total = client.count("terminal", None).await?;
//! # Ok(()) }
//! ```
//!
//! Design choices:
//! - Rows come back as arrays in `data` order, exactly as the portal sends them; naming columns is
//!   the caller's business (the catalog knows the names of known tables).
//! - Only transient failures are retried ([`Error::is_retryable`]): timeouts, connection failures and
//!   resets, HTTP 5xx, 429 (honouring `Retry-After`) and truncated or unreadable bodies. Everything
//!   else fails at once, because sending the same wrong query or password again cannot help.
//! - A refused session is replaced transparently, once per call (see [`Client`]).
//! - Passwords and session ids live in [`Secret`], which never prints itself; request logs
//!   (`tracing`, level debug) carry method, table, attempt, rows and time, never headers or params.

#![deny(missing_docs)]

mod client;
mod config;
mod error;
mod retry;
mod rows;
mod secret;

pub use client::{Client, RetryObserver, SessionInfo};
pub use config::{ClientConfig, DEFAULT_TIMEOUT, ENV_DOMAIN, ENV_PASSWORD, ENV_URL, ENV_USERNAME};
pub use error::Error;
pub use retry::RetryPolicy;
pub use secret::Secret;

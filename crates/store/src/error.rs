//! The one error of a destination, each a line that names the destination and what to fix.

use std::path::PathBuf;

/// What went wrong with a destination. Messages never hold credentials: they name the bucket,
/// the key and the store's short reason, never a request's headers or signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `--out` is not a path or an `s3://bucket/prefix` this tool can write to.
    #[error("{shown}: {reason}")]
    Location {
        /// What the user wrote, shortened.
        shown: String,
        /// Why it is refused, and how to write it.
        reason: String,
    },
    /// A key the seam refuses (absolute, empty part, `..`): a bug of the caller.
    #[error("invalid object key {key:?}")]
    Key {
        /// The key.
        key: String,
    },
    /// The object `create` was to write is there already.
    #[error("{place}: {key} already exists")]
    Exists {
        /// The destination.
        place: String,
        /// The key.
        key: String,
    },
    /// The object `replace` was to overwrite changed (or vanished) since it was read: another
    /// writer committed in between.
    #[error("{place}: {key} was changed by another writer since it was read")]
    Changed {
        /// The destination.
        place: String,
        /// The key.
        key: String,
    },
    /// Another run holds the table's lease, and it has not expired.
    #[error(
        "{place}: {key} is being written by {holder} (its lease expires in {expires_in_secs} s); \
         wait for that run to end, or, if it died, for its lease to expire"
    )]
    Leased {
        /// The destination.
        place: String,
        /// The lease object.
        key: String,
        /// Who holds it (`host pid N`).
        holder: String,
        /// Seconds until it expires unless renewed.
        expires_in_secs: u64,
    },
    /// The lease this run held was taken over (it expired before it was renewed): the run must
    /// stop writing.
    #[error(
        "{place}: the lease {key} was taken over by {holder} after it expired; this run stopped \
         and its last commit stands"
    )]
    LeaseLost {
        /// The destination.
        place: String,
        /// The lease object.
        key: String,
        /// Who holds it now, if known.
        holder: String,
    },
    /// The bucket does not exist.
    #[error("{place}: the bucket {bucket} does not exist; create it, or fix the bucket name")]
    NoBucket {
        /// The destination.
        place: String,
        /// The bucket.
        bucket: String,
    },
    /// The store refused the credentials.
    #[error(
        "{place}: the storage refused the credentials ({reason}); check AWS_ACCESS_KEY_ID, \
         AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
    )]
    Credentials {
        /// The destination.
        place: String,
        /// The store's error code.
        reason: String,
    },
    /// The credentials are valid but may not do this.
    #[error(
        "{place}: access denied to {key}; the credentials need read, write and list rights on the prefix"
    )]
    Denied {
        /// The destination.
        place: String,
        /// The key.
        key: String,
    },
    /// The endpoint did not answer (after the retries).
    #[error(
        "{place}: cannot reach the storage endpoint ({reason}); check AWS_ENDPOINT_URL \
         (and AWS_ALLOW_HTTP for a plain-http store) and the network"
    )]
    Unreachable {
        /// The destination.
        place: String,
        /// Why, shortly.
        reason: String,
    },
    /// The store's settings cannot work (a missing region, an http endpoint without
    /// `AWS_ALLOW_HTTP`).
    #[error("{place}: {reason}")]
    Config {
        /// The destination.
        place: String,
        /// What to set.
        reason: String,
    },
    /// Any other failure of the store, with its short reason.
    #[error("{place}: {what} failed: {reason}")]
    Store {
        /// The destination.
        place: String,
        /// What was being done (`writing terminal/_manifest.json`).
        what: String,
        /// The store's reason, shortened.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}

/// `text` cut to at most `max` characters, with an ellipsis when cut: an error line never echoes
/// more than a short part of what a user or a server wrote.
pub(crate) fn short(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

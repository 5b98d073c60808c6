//! Destinations for a dump's output: a local directory, or a bucket and prefix on S3-compatible
//! object storage (through the `object_store` crate), behind one seam (design §11).
//!
//! A destination holds objects under keys relative to its root (`terminal/terminal-00000.parquet`,
//! `terminal/_manifest.json`) and offers what the commit protocol needs from it and nothing more:
//!
//! - [`Destination::publish`]: a finished local file becomes the object under its final key, visible
//!   only when complete. Locally a rename; on object storage one `PUT`, or a multipart upload
//!   completed once for a large file, whose id the caller is told before the first part goes so
//!   that an upload left by a killed run can be aborted ([`Destination::abort_upload`]).
//! - [`Destination::create`] and [`Destination::replace`]: a small object written atomically, only
//!   if absent or only if unchanged since it was read ([`Version`]). This is how a manifest, a
//!   checkpoint and a [`lease`] are committed without a lock server.
//! - [`Destination::read`], [`Destination::download`], [`Destination::list`],
//!   [`Destination::dirs`], [`Destination::delete`].
//!
//! Two implementations: [`LocalDir`] (files, fsynced, renamed into place) and [`ObjectDir`] (any
//! `object_store` backend with multipart uploads: S3 through [`ObjectDir::s3`], the in-memory store
//! in tests). Both pass the same conformance checks (`tests/conformance.rs`), the S3 one against a
//! real S3 API (moto in server mode).
//!
//! [`Location`] parses what a user writes for `--out`: a path, or `s3://bucket/prefix`.

#![deny(missing_docs)]

mod error;
pub mod lease;
mod local;
mod location;
mod object;

use std::path::Path;

use async_trait::async_trait;

pub use error::Error;
pub use lease::{Lease, LeaseHolder};
pub use local::LocalDir;
pub use location::Location;
pub use object::{Backend, ObjectDir, S3Credentials, S3Options};

/// What an object was when it was read or written: compared by [`Destination::replace`], so that a
/// commit fails instead of overwriting what another writer committed in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The object's entity tag (object storage), or its size and CRC-32 (a local file).
    pub tag: String,
    /// The store's version id, where the bucket keeps versions.
    pub version: Option<String>,
}

/// An object read back: its bytes and the version they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Their version.
    pub version: Version,
}

/// An object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its key, relative to the destination's root.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A multipart upload in progress: what [`Destination::abort_upload`] needs to abort it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The key the upload will complete to.
    pub key: String,
    /// The store's id of the upload.
    pub id: String,
}

/// Where a dump's objects go. Keys are relative to the destination's root and use `/`.
///
/// Every method is safe to retry after a failure or a crash: `publish` of the same file to the same
/// key gives the same object, `create` fails with [`Error::Exists`] once the object is there,
/// `replace` with [`Error::Changed`] once it changed, `delete` of a missing key succeeds.
#[async_trait]
pub trait Destination: Send + Sync + std::fmt::Debug {
    /// The destination as the user wrote it (`s3://bucket/prefix`, or the directory), for messages.
    fn display(&self) -> String;

    /// Makes the finished file `from` the object `key`, replacing any object there, visible only
    /// once complete and durable. `started` is called with the multipart upload's id before its
    /// first part is sent, so that the caller can record it (a file sent in one request has none).
    /// The local file is left in place on object storage and moved locally.
    async fn publish(
        &self,
        key: &str,
        from: &Path,
        started: &mut (dyn for<'u> FnMut(&'u Upload) + Send),
    ) -> Result<Entry, Error>;

    /// Aborts a multipart upload that was started and never completed (by a killed run). An upload
    /// the store no longer knows is already gone: that is not an error.
    async fn abort_upload(&self, upload: &Upload) -> Result<(), Error>;

    /// Writes `bytes` as the object `key` only if there is none: [`Error::Exists`] otherwise.
    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<Version, Error>;

    /// Writes `bytes` as the object `key` only if it still is `expected`: [`Error::Changed`] if it
    /// was replaced or removed since.
    async fn replace(
        &self,
        key: &str,
        bytes: Vec<u8>,
        expected: &Version,
    ) -> Result<Version, Error>;

    /// The object `key`, or `None` if there is none.
    async fn read(&self, key: &str) -> Result<Option<Object>, Error>;

    /// Copies the object `key` into the local file `to` (created or truncated), a bounded piece
    /// at a time, and returns its size; `None` (and no file) if there is no such object.
    async fn download(&self, key: &str, to: &Path) -> Result<Option<u64>, Error>;

    /// The objects directly under `prefix` (a key ending before a `/`, or `""` for the root), by
    /// key. Objects in deeper "directories" are not listed.
    async fn list(&self, prefix: &str) -> Result<Vec<Entry>, Error>;

    /// The names of the "directories" directly under `prefix` (`""` for the root): the next
    /// part of every deeper key, once each, sorted.
    async fn dirs(&self, prefix: &str) -> Result<Vec<String>, Error>;

    /// Removes the object `key`; a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<(), Error>;
}

/// Checks a key: relative, `/`-separated, no empty, `.` or `..` part.
pub(crate) fn check_key(key: &str) -> Result<(), Error> {
    let bad = key.is_empty()
        || key.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        || key.contains('\\')
        || key.chars().any(char::is_control);
    if bad { Err(Error::Key { key: key.to_owned() }) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_and_plain() {
        for good in ["a", "terminal/terminal-00000.parquet", "t/_manifest.json", "t/.lease"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "/a", "a/", "a//b", "./a", "a/../b", "a\\b", "a\nb"] {
            assert!(matches!(check_key(bad), Err(Error::Key { .. })), "{bad:?}");
        }
    }
}

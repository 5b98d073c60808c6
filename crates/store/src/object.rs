//! Object storage as a destination, through `object_store`: S3 and S3-compatible stores (Ceph RGW,
//! `MinIO`, Yandex Object Storage, Selectel, moto), and its in-memory store in tests.

use std::io::Read as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::multipart::MultipartStore;
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ObjectStore, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion,
};
use tokio::io::AsyncWriteExt;

use crate::error::short;
use crate::{Destination, Entry, Error, Object, Upload, Version, check_key};

/// What an [`ObjectDir`] needs of its store: objects and multipart uploads whose ids the caller
/// can keep (to abort an upload a killed run left behind).
pub trait Backend: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> Backend for T {}

/// Settings of an S3 destination beyond the standard AWS environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
/// `AWS_ALLOW_HTTP`), which [`ObjectDir::s3`] reads first; a field set here wins over it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Credentials from the config file, instead of the environment's.
    pub credentials: Option<S3Credentials>,
    /// The endpoint of an S3-compatible store (`https://storage.yandexcloud.net`).
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// Whether a plain-http endpoint is allowed (a local store).
    pub allow_http: Option<bool>,
    /// Virtual-hosted addressing (`bucket.endpoint/key`) instead of path-style
    /// (`endpoint/bucket/key`); AWS wants the first, most self-hosted stores the second.
    pub virtual_hosted: Option<bool>,
    /// Retries of a failed request (transient errors only: 5xx, timeouts, connection resets).
    pub max_retries: Option<usize>,
}

/// An access key, its secret and an optional session token. Its `Debug` shows the key id only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A bucket and prefix as a [`Destination`]. Its `Debug` shows the bucket and prefix only, never
/// the client's settings.
#[derive(Clone)]
pub struct ObjectDir {
    store: Arc<dyn Backend>,
    bucket: String,
    prefix: String,
    /// Files up to this size are sent in one request; larger ones in parts of `part_size`.
    single_max: u64,
    part_size: usize,
    /// Upload buffers, kept for the next part (see [`Buffers`]).
    buffers: Arc<Buffers>,
}

impl std::fmt::Debug for ObjectDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectDir").field("at", &self.display()).finish_non_exhaustive()
    }
}

/// Files up to this size go in one `PUT` (S3 takes up to 5 GiB so); memory holds one of them.
const SINGLE_MAX: u64 = 32 * 1024 * 1024;
/// The part of a multipart upload (S3's minimum is 5 MiB, but for the last part).
const PART_SIZE: usize = 16 * 1024 * 1024;

impl ObjectDir {
    /// `prefix` (without leading or trailing `/`) in `bucket` of `store`.
    pub fn new(store: Arc<dyn Backend>, bucket: &str, prefix: &str) -> ObjectDir {
        ObjectDir {
            store,
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            single_max: SINGLE_MAX,
            part_size: PART_SIZE,
            buffers: Arc::default(),
        }
    }

    /// `s3://bucket/prefix`, with credentials, region and endpoint from the AWS environment and
    /// `options`, conditional writes by entity tag (`If-None-Match`, `If-Match`), and retries of
    /// transient errors with exponential backoff, as the portal client retries.
    pub fn s3(bucket: &str, prefix: &str, options: &S3Options) -> Result<ObjectDir, Error> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(200),
                    max_backoff: Duration::from_secs(10),
                    base: 2.0,
                },
                max_retries: options.max_retries.unwrap_or(5),
                retry_timeout: Duration::from_secs(120),
            });
        if let Some(c) = &options.credentials {
            builder = builder
                .with_access_key_id(&c.access_key_id)
                .with_secret_access_key(&c.secret_access_key);
            if let Some(token) = &c.session_token {
                builder = builder.with_token(token);
            }
        }
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let Some(allow) = options.allow_http {
            builder = builder.with_allow_http(allow);
        }
        if let Some(hosted) = options.virtual_hosted {
            builder = builder.with_virtual_hosted_style_request(hosted);
        }
        let place = display(bucket, prefix);
        let store = builder.build().map_err(|e| Error::Config {
            place: place.clone(),
            reason: short(&e.to_string(), 200),
        })?;
        Ok(ObjectDir::new(Arc::new(store), bucket, prefix))
    }

    /// Sends files larger than `single_max` in parts of `part_size` (tests make both small).
    #[must_use]
    pub fn with_part_sizes(mut self, single_max: u64, part_size: usize) -> ObjectDir {
        self.single_max = single_max;
        self.part_size = part_size.max(1);
        self
    }

    fn key(&self, key: &str) -> Result<Key, Error> {
        check_key(key)?;
        let full =
            if self.prefix.is_empty() { key.to_owned() } else { format!("{}/{key}", self.prefix) };
        Key::parse(full).map_err(|_| Error::Key { key: key.to_owned() })
    }

    /// The key relative to the prefix.
    fn relative(&self, key: &Key) -> String {
        let key = key.as_ref();
        if self.prefix.is_empty() {
            return key.to_owned();
        }
        key.strip_prefix(&self.prefix).and_then(|k| k.strip_prefix('/')).unwrap_or(key).to_owned()
    }

    /// One level of the listing under `prefix` (relative; `""` for the root).
    async fn list_under(&self, prefix: &str) -> Result<object_store::ListResult, Error> {
        let listed = if prefix.is_empty() && self.prefix.is_empty() {
            self.store.list_with_delimiter(None).await
        } else {
            let under = if prefix.is_empty() {
                Key::parse(&self.prefix).map_err(|_| Error::Key { key: self.prefix.clone() })?
            } else {
                self.key(prefix)?
            };
            self.store.list_with_delimiter(Some(&under)).await
        };
        listed.map_err(|e| self.error("listing", prefix, e))
    }

    /// What a "not found" means: `absent` for a missing object, but an error when the bucket itself
    /// is missing (S3 answers both with 404).
    fn missing<T>(&self, e: &object_store::Error, absent: T) -> Result<T, Error> {
        if e.to_string().contains("NoSuchBucket") {
            return Err(Error::NoBucket { place: self.display(), bucket: self.bucket.clone() });
        }
        Ok(absent)
    }

    /// Maps a store error met while doing `what` on `key` to one line.
    fn error(&self, what: &str, key: &str, e: object_store::Error) -> Error {
        let place = self.display();
        match e {
            object_store::Error::AlreadyExists { .. } => Error::Exists { place, key: key.into() },
            object_store::Error::Precondition { .. } | object_store::Error::NotModified { .. } => {
                Error::Changed { place, key: key.into() }
            }
            object_store::Error::NotImplemented => Error::Config {
                place,
                reason: "the store does not support conditional writes, which commits need".into(),
            },
            other => classify(place, &self.bucket, what, key, &other.to_string()),
        }
    }
}

fn display(bucket: &str, prefix: &str) -> String {
    if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") }
}

/// The S3 error code in an error's text (`<Code>NoSuchBucket</Code>`), if any.
fn code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len])
}

/// Sorts an error of the store by what the user can do about it.
fn classify(place: String, bucket: &str, what: &str, key: &str, text: &str) -> Error {
    match code(text) {
        Some("NoSuchBucket") => return Error::NoBucket { place, bucket: bucket.into() },
        Some(
            c @ ("InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "InvalidClientTokenId"),
        ) => return Error::Credentials { place, reason: c.into() },
        Some("AccessDenied") => return Error::Denied { place, key: key.into() },
        Some(c) => {
            return Error::Store { place, what: format!("{what} {key}"), reason: short(c, 60) };
        }
        None => {}
    }
    if text.contains("403 Forbidden") {
        return Error::Credentials { place, reason: "403 Forbidden".into() };
    }
    let unreachable = ["error sending request", "Connection refused", "dns error", "timed out"];
    if let Some(reason) = unreachable.iter().find(|r| text.contains(*r)) {
        return Error::Unreachable { place, reason: (*reason).to_lowercase() };
    }
    // The text after the request line ("Error performing PUT <uri> in 3ms - <reason>").
    let reason = text.rsplit_once(" - ").map_or(text, |(_, r)| r);
    Error::Store { place, what: format!("{what} {key}"), reason: short(reason, 160) }
}

/// Buffers of uploads, handed back when a request is done and reused by the next one.
///
/// An upload holds its part in memory (a request is retried from it), so memory is one part per
/// upload in flight. Allocating a fresh buffer for each part makes it more: glibc raises its mmap
/// threshold to the size of the first part buffer freed, so later ones come from the heap of the
/// uploading thread's arena, where a freed one stays resident, one part per arena the uploads ran
/// on (the bench measured 2.5 parts at ten parts, issue 13). Reused, a buffer is allocated once.
/// Capacities are rounded up to a power of two so that parts of about one size share buffers.
#[derive(Debug, Default)]
struct Buffers(Mutex<Vec<Vec<u8>>>);

/// Buffers kept at most: one per upload in flight is what a run needs; more are freed.
const BUFFERS_KEPT: usize = 4;

impl Buffers {
    /// An empty buffer with room for `size` bytes: a kept one if one is large enough.
    fn take(&self, size: u64) -> Vec<u8> {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let mut kept = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = kept.iter().position(|b| b.capacity() >= size) {
            return kept.swap_remove(at);
        }
        drop(kept);
        Vec::with_capacity(size.checked_next_power_of_two().unwrap_or(size))
    }

    /// The next `size` bytes of `file`, in a kept buffer: read into it on a blocking thread
    /// (`tokio::fs` would read through a 2 MiB buffer of its own, allocated and freed per file,
    /// more memory glibc keeps per thread while the next part is written).
    async fn read(&self, file: &Arc<std::fs::File>, size: u64) -> std::io::Result<Bytes> {
        let mut buffer = self.take(size);
        let file = Arc::clone(file);
        tokio::task::spawn_blocking(move || {
            buffer.resize(usize::try_from(size).unwrap_or(usize::MAX), 0);
            (&*file).read_exact(&mut buffer)?;
            Ok(Bytes::from(buffer))
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Keeps the buffer of `bytes` when no request holds it any more (else it is freed with them).
    fn give_back(&self, bytes: Bytes) {
        let Ok(buffer) = bytes.try_into_mut() else { return };
        let mut buffer = Vec::from(buffer);
        buffer.clear();
        let mut kept = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() < BUFFERS_KEPT {
            kept.push(buffer);
        } else if let Some(smallest) = kept.iter_mut().min_by_key(|b| b.capacity())
            && smallest.capacity() < buffer.capacity()
        {
            *smallest = buffer;
        }
    }
}

fn version(e_tag: Option<String>, version: Option<String>) -> Version {
    Version { tag: e_tag.unwrap_or_default(), version }
}

#[async_trait]
impl Destination for ObjectDir {
    fn display(&self) -> String {
        display(&self.bucket, &self.prefix)
    }

    async fn publish(
        &self,
        key: &str,
        from: &Path,
        started: &mut (dyn for<'u> FnMut(&'u Upload) + Send),
    ) -> Result<Entry, Error> {
        let location = self.key(key)?;
        let file = tokio::fs::File::open(from).await.map_err(Error::io("open", from))?;
        let size = file.metadata().await.map_err(Error::io("read", from))?.len();
        let file = Arc::new(file.into_std().await);
        if size <= self.single_max {
            let bytes = self.buffers.read(&file, size).await.map_err(Error::io("read", from))?;
            let sent = self.store.put(&location, PutPayload::from(bytes.clone())).await;
            self.buffers.give_back(bytes);
            sent.map_err(|e| self.error("uploading", key, e))?;
            return Ok(Entry { key: key.to_owned(), size });
        }
        let id = self
            .store
            .create_multipart(&location)
            .await
            .map_err(|e| self.error("starting the upload of", key, e))?;
        let upload = Upload { key: key.to_owned(), id: id.clone() };
        started(&upload);
        let result = async {
            let mut parts = Vec::new();
            let mut sent = 0u64;
            while sent < size {
                let want = (size - sent).min(self.part_size as u64);
                let bytes =
                    self.buffers.read(&file, want).await.map_err(Error::io("read", from))?;
                let put = self
                    .store
                    .put_part(&location, &id, parts.len(), PutPayload::from(bytes.clone()))
                    .await;
                self.buffers.give_back(bytes);
                parts.push(put.map_err(|e| self.error("uploading a part of", key, e))?);
                sent += want;
            }
            self.store
                .complete_multipart(&location, &id, parts)
                .await
                .map_err(|e| self.error("completing the upload of", key, e))
        }
        .await;
        match result {
            Ok(_) => Ok(Entry { key: key.to_owned(), size }),
            Err(e) => {
                // Best effort: a rerun aborts it again from the id the caller kept.
                let _ = self.store.abort_multipart(&location, &id).await;
                Err(e)
            }
        }
    }

    async fn abort_upload(&self, upload: &Upload) -> Result<(), Error> {
        let location = self.key(&upload.key)?;
        match self.store.abort_multipart(&location, &upload.id).await {
            Ok(()) => Ok(()),
            Err(e @ object_store::Error::NotFound { .. }) => self.missing(&e, ()),
            Err(e) => {
                let text = e.to_string();
                // S3 answers an upload it no longer knows (completed or aborted) with
                // NoSuchUpload, the in-memory store with "MultipartUpload not found".
                if code(&text) == Some("NoSuchUpload") || text.contains("MultipartUpload not found")
                {
                    return Ok(());
                }
                Err(self.error("aborting the upload of", &upload.key, e))
            }
        }
    }

    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<Version, Error> {
        let location = self.key(key)?;
        let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        let put = self
            .store
            .put_opts(&location, PutPayload::from(bytes), options)
            .await
            .map_err(|e| self.error("writing", key, e))?;
        Ok(version(put.e_tag, put.version))
    }

    async fn replace(
        &self,
        key: &str,
        bytes: Vec<u8>,
        expected: &Version,
    ) -> Result<Version, Error> {
        let location = self.key(key)?;
        let update =
            UpdateVersion { e_tag: Some(expected.tag.clone()), version: expected.version.clone() };
        let options = PutOptions { mode: PutMode::Update(update), ..PutOptions::default() };
        match self.store.put_opts(&location, PutPayload::from(bytes), options).await {
            Ok(put) => Ok(version(put.e_tag, put.version)),
            // Replacing what is no longer there: it changed.
            Err(object_store::Error::NotFound { .. }) => {
                Err(Error::Changed { place: self.display(), key: key.into() })
            }
            Err(e) => Err(self.error("writing", key, e)),
        }
    }

    async fn read(&self, key: &str) -> Result<Option<Object>, Error> {
        let location = self.key(key)?;
        let got = match self.store.get(&location).await {
            Ok(got) => got,
            Err(e @ object_store::Error::NotFound { .. }) => return self.missing(&e, None),
            Err(e) => return Err(self.error("reading", key, e)),
        };
        let meta = got.meta.clone();
        let bytes = got.bytes().await.map_err(|e| self.error("reading", key, e))?;
        Ok(Some(Object { bytes: bytes.to_vec(), version: version(meta.e_tag, meta.version) }))
    }

    async fn download(&self, key: &str, to: &Path) -> Result<Option<u64>, Error> {
        let location = self.key(key)?;
        let size = match self.store.head(&location).await {
            Ok(meta) => meta.size,
            Err(e @ object_store::Error::NotFound { .. }) => return self.missing(&e, None),
            Err(e) => return Err(self.error("reading", key, e)),
        };
        let mut file = tokio::fs::File::create(to).await.map_err(Error::io("create", to))?;
        // One part at a time: memory holds a part, whatever the object's size.
        let mut at = 0;
        while at < size {
            let end = (at + self.part_size as u64).min(size);
            let bytes = self
                .store
                .get_range(&location, at..end)
                .await
                .map_err(|e| self.error("reading", key, e))?;
            file.write_all(&bytes).await.map_err(Error::io("write", to))?;
            at = end;
        }
        file.flush().await.map_err(Error::io("write", to))?;
        Ok(Some(size))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>, Error> {
        let listed = self.list_under(prefix).await?;
        let mut out: Vec<Entry> = listed
            .objects
            .iter()
            .map(|o| Entry { key: self.relative(&o.location), size: o.size })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn dirs(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let listed = self.list_under(prefix).await?;
        let mut out: Vec<String> =
            listed.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_owned)).collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let location = self.key(key)?;
        match self.store.delete(&location).await {
            Ok(()) => Ok(()),
            Err(e @ object_store::Error::NotFound { .. }) => self.missing(&e, ()),
            Err(e) => Err(self.error("removing", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_sorted_by_what_the_user_can_do() {
        let sort = |text: &str| {
            classify("s3://dumps/p".into(), "dumps", "writing", "t/k", text).to_string()
        };
        assert_eq!(
            sort(
                "Error performing PUT http://h/dumps/p/t/k in 3ms - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>"
            ),
            "s3://dumps/p: the bucket dumps does not exist; create it, or fix the bucket name"
        );
        assert_eq!(
            sort("... 403 Forbidden: <Error><Code>InvalidAccessKeyId</Code></Error>"),
            "s3://dumps/p: the storage refused the credentials (InvalidAccessKeyId); check \
             AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
        );
        assert_eq!(
            sort("<Code>AccessDenied</Code>"),
            "s3://dumps/p: access denied to t/k; the credentials need read, write and list rights \
             on the prefix"
        );
        assert_eq!(
            sort(
                "Error performing PUT http://127.0.0.1:9/dumps/p/t/k in 1s, after 5 retries - error sending request for url"
            ),
            "s3://dumps/p: cannot reach the storage endpoint (error sending request); check \
             AWS_ENDPOINT_URL (and AWS_ALLOW_HTTP for a plain-http store) and the network"
        );
        assert_eq!(
            sort(
                "Error performing PUT http://h/k in 3ms - Server returned non-2xx status code: 500 Internal Server Error: boom"
            ),
            "s3://dumps/p: writing t/k failed: Server returned non-2xx status code: 500 Internal \
             Server Error: boom"
        );
        let long = format!("x - {}", "y".repeat(1000));
        assert!(sort(&long).len() < 260);
    }

    #[test]
    fn upload_buffers_are_reused_when_no_request_holds_them() {
        let buffers = Buffers::default();
        let first = buffers.take(15 << 20);
        assert_eq!(first.capacity(), 16 << 20, "rounded up to a power of two");
        let at = first.as_ptr();
        buffers.give_back(Bytes::from(first));
        let again = buffers.take(16 << 20);
        assert_eq!((again.as_ptr(), again.len()), (at, 0), "the same buffer, emptied");
        // Still held elsewhere (the in-memory store keeps what it was given): freed, not kept.
        let held = Bytes::from(again);
        let store_copy = held.clone();
        buffers.give_back(held);
        assert!(buffers.0.lock().unwrap().is_empty());
        drop(store_copy);
        // A larger part than any kept buffer gets a new one; at most BUFFERS_KEPT are kept, the
        // largest.
        for size in [1u64 << 10, 2 << 10, 3 << 10, 4 << 10, 5 << 10, 64 << 10] {
            buffers.give_back(Bytes::from(buffers.take(size)));
        }
        let mut kept: Vec<usize> = buffers.0.lock().unwrap().iter().map(Vec::capacity).collect();
        kept.sort_unstable();
        assert_eq!(kept, [2 << 10, 4 << 10, 8 << 10, 64 << 10], "the 1 KiB one gave way");
    }
}

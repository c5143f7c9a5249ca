//! The `Store` trait and the types every implementation shares.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::path::Path;
use std::time::SystemTime;

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The requested range does not overlap the object.
    #[error("range not satisfiable for {key} ({size} bytes)")]
    RangeNotSatisfiable { key: String, size: u64 },
    /// The key is not acceptable (empty, absolute, `..`, control characters).
    #[error("invalid key {0:?}")]
    InvalidKey(String),
    /// The store could not be reached or failed; retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refuses because of how thumbfarm is configured (access
    /// denied, no such bucket, bad credentials): retrying the same call
    /// cannot help until an operator fixes the configuration.
    #[error("store misconfigured: {0}")]
    Config(String),
    /// A conditional write found the object changed since it was read.
    #[error("changed meanwhile: {0}")]
    Conflict(String),
    /// The object exists but its content is not what it should be (a
    /// manifest that is not valid JSON).
    #[error("corrupt object {key}: {message}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A local I/O error.
    #[error("store I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Io(_))
    }
}

/// Facts about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key.
    pub key: String,
    /// Length in bytes.
    pub size: u64,
    /// A strong entity tag, without quotes.
    pub etag: String,
    /// Last modification time, when the store knows it.
    pub last_modified: Option<SystemTime>,
    /// The stored content type, when the store keeps one.
    pub content_type: Option<String>,
}

/// An inclusive byte range `start..=end` of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// The number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never empty: `end >= start` always holds for a range.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Objects in key order.
    pub objects: Vec<ObjectMeta>,
    /// Pass as `start_after` to get the next page; `None` at the end.
    pub next: Option<String>,
}

/// A body being streamed out of the store.
pub type ByteStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// Object storage used by every part of thumbfarm.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores `body` under `key` as one whole object (replacing any old one).
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError>;

    /// Stores the file at `path` under `key` as one whole object.
    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError>;

    /// Reads a whole object.
    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;

    /// Reads a whole object and its entity tag, for a conditional write
    /// back ([`Store::put_if`]).
    async fn get_versioned(&self, key: &str) -> Result<(Bytes, String), StoreError>;

    /// Stores `body` under `key` only when the object is as it was read:
    /// its entity tag is `if_match`, or, with `None`, it does not exist yet.
    /// Otherwise [`StoreError::Conflict`]. S3 servers without conditional
    /// writes ignore the condition (the write then simply replaces).
    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        if_match: Option<&str>,
    ) -> Result<ObjectMeta, StoreError>;

    /// Streams an object, or an inclusive byte range of it (clamped to the
    /// object's end; a start past the end is `RangeNotSatisfiable`).
    async fn get_stream(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectMeta, ByteStream), StoreError>;

    /// Copies an object into a local file (for decoding large originals).
    async fn download(&self, key: &str, path: &Path) -> Result<u64, StoreError>;

    /// The object's metadata, or `None` when it does not exist.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError>;

    /// Lists up to `limit` objects under `prefix` in key order, after `start_after`.
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError>;

    /// Deletes an object; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Checks that the store is reachable (for readiness probes).
    async fn ping(&self) -> Result<(), StoreError>;

    /// A short description for logs (`s3://bucket` or `file:///data`).
    fn describe(&self) -> String;
}

/// Rejects keys that could escape a directory or confuse a store.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let bad = key.is_empty()
        || key.len() > 1024
        || key.starts_with('/')
        || key.ends_with('/')
        || key.contains('\\')
        || key.chars().any(char::is_control)
        || key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        Err(StoreError::InvalidKey(key.chars().take(200).collect()))
    } else {
        Ok(())
    }
}

/// Reads the whole object and parses it as JSON; `Ok(None)` when missing,
/// [`StoreError::Corrupt`] when it is not the JSON expected.
pub async fn get_json<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match store.get(key).await {
        Ok(bytes) => parse_json(key, &bytes).map(Some),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`get_json`] with the object's entity tag, for a conditional write back.
pub async fn get_json_versioned<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    key: &str,
) -> Result<Option<(T, String)>, StoreError> {
    match store.get_versioned(key).await {
        Ok((bytes, etag)) => parse_json(key, &bytes).map(|v| Some((v, etag))),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        message: format!("not valid JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_validation() {
        for ok in ["a", "thumbs/e/c/9/x.jpg", "originals/a.b"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/abs", "a/../b", "..", "a//b", "a/./b", "a\\b", "a\nb", "dir/",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }
}

//! Where backups live. One small trait, two homes: a local folder (the embedded default) and S3.
//!
//! Keys are `/`-separated relative paths such as `database/daily/<backup-id>/manifest.json`.
//! A writer makes an object visible only when it finishes: a crash or an error leaves nothing
//! that looks whole.

pub mod local;
pub mod s3;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::io::AsyncRead;

use crate::error::{Error, Result};

pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
    /// S3's entity tag: changes whenever the object is written again.
    pub etag: Option<String>,
    /// S3's storage class (`STANDARD`, `GLACIER`, `DEEP_ARCHIVE`, …); none in a folder.
    pub storage_class: Option<String>,
}

/// Whether an object can be read now, or must first be retrieved from an archive class
/// (S3 Glacier Flexible Retrieval or Deep Archive; Glacier Instant Retrieval reads as usual).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ArchiveState {
    Readable,
    /// Archived, no retrieval asked for (or the last one expired).
    Archived {
        class: String,
    },
    /// Retrieval asked for and not finished.
    Retrieving {
        class: String,
    },
    /// A temporary copy is readable until `until`.
    Retrieved {
        class: String,
        until: Option<String>,
    },
}

impl ArchiveState {
    pub fn readable(&self) -> bool {
        matches!(
            self,
            ArchiveState::Readable | ArchiveState::Retrieved { .. }
        )
    }

    /// The archive class, when the object is in one.
    pub fn class(&self) -> Option<&str> {
        match self {
            ArchiveState::Readable => None,
            ArchiveState::Archived { class }
            | ArchiveState::Retrieving { class }
            | ArchiveState::Retrieved { class, .. } => Some(class),
        }
    }
}

/// S3's retrieval tiers, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RetrievalTier {
    Expedited,
    Standard,
    Bulk,
}

/// The storage classes whose objects must be retrieved before they can be read.
pub fn is_archive_class(class: &str) -> bool {
    matches!(class, "GLACIER" | "DEEP_ARCHIVE")
}

#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Display {
    /// Fails with a clear error when the store cannot be used at all (a missing folder, a
    /// denied bucket), before any work starts.
    async fn check(&self) -> Result<()>;

    /// Starts writing `key`; the object appears only when the writer finishes.
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>>;

    /// Streams an existing object. A missing object is [`Error::MissingFile`].
    async fn open(&self, key: &str) -> Result<ObjectReader>;

    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;

    async fn delete(&self, key: &str) -> Result<()>;

    /// Whether the store's own rules (S3 lifecycle and Object Lock) keep backups for the years
    /// the law asks, so that this tool's retention must not delete them.
    fn retention_by_bucket_rules(&self) -> bool {
        false
    }

    /// Deletes everything under `prefix` (which ends with `/`), including the leftovers of
    /// writes that never finished.
    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        for object in self.list(prefix).await? {
            self.delete(&object.key).await?;
        }
        Ok(())
    }

    /// Marks a backup's files as part of a sealed backup (`sealed`), just before its manifest is
    /// written, or back as leftovers when that write failed; until sealed a store may treat
    /// them as leftovers of a failed run (S3: a tag the lifecycle expires). A folder needs
    /// nothing: its unsealed folders are found by having no manifest.
    async fn mark_sealed(&self, _keys: &[String], _sealed: bool) -> Result<()> {
        Ok(())
    }

    /// The storage classes the store's lifecycle moves a backup's data files under `prefix`
    /// to, as (days after writing, class), earliest first; empty when nothing moves them.
    async fn data_transitions(&self, _prefix: &str) -> Result<Vec<(u32, String)>> {
        Ok(Vec::new())
    }

    /// Whether `key` can be read now (see [`ArchiveState`]); a folder's objects always can.
    async fn archive_state(&self, _key: &str) -> Result<ArchiveState> {
        Ok(ArchiveState::Readable)
    }

    /// Asks for a temporary readable copy of an archived object for `days`; idempotent (a
    /// retrieval under way or done is left as it is). Returns the state after asking.
    async fn request_retrieval(
        &self,
        key: &str,
        _tier: RetrievalTier,
        _days: u32,
    ) -> Result<ArchiveState> {
        self.archive_state(key).await
    }

    /// Every object under `prefix` whose key sorts after `start_after` (a key under `prefix`):
    /// the newest part of a prefix whose keys are in time order, read without the rest.
    async fn list_after(&self, prefix: &str, start_after: &str) -> Result<Vec<ObjectInfo>> {
        let mut objects = self.list(prefix).await?;
        objects.retain(|o| o.key.as_str() > start_after);
        Ok(objects)
    }

    /// A small object whole and its version tag (S3's ETag; a folder's content hash), so that a
    /// later [`ObjectStore::put_if`] writes only over this very version.
    async fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>>;

    /// Writes a small object only if it is still at version `expected` (`None`: only if it does
    /// not exist). `Ok(false)`: someone else wrote it in between; read it again and retry.
    async fn put_if(&self, key: &str, bytes: Bytes, expected: Option<&str>) -> Result<bool>;

    /// Reads a small object whole; `None` when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        use tokio::io::AsyncReadExt;
        let mut reader = match self.open(key).await {
            Ok(reader) => reader,
            Err(Error::MissingFile { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Error::store_io(self.to_string(), "read", key, e))?;
        Ok(Some(bytes))
    }

    /// Writes a small object whole, atomically.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let mut writer = self.create(key).await?;
        if let Err(e) = writer.write(bytes).await {
            writer.abort().await;
            return Err(e);
        }
        writer.finish().await.map(|_| ())
    }
}

#[async_trait]
pub trait ObjectWriter: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<()>;
    /// Makes the object visible; returns its size in bytes.
    async fn finish(self: Box<Self>) -> Result<u64>;
    /// Throws away what was written; never fails loudly, since it runs on error paths.
    async fn abort(self: Box<Self>);
}

/// Seals a backup: its files marked sealed, then its manifest written last. If the manifest
/// cannot be written the files are marked back as leftovers, so the store's expiry of failed
/// runs still takes them.
pub async fn seal_with_manifest(
    store: &dyn ObjectStore,
    files: &[String],
    manifest_key: &str,
    manifest: Vec<u8>,
) -> Result<()> {
    store.mark_sealed(files, true).await?;
    if let Err(e) = store.put(manifest_key, Bytes::from(manifest)).await {
        if let Err(undo) = store.mark_sealed(files, false).await {
            tracing::warn!(
                "the manifest {manifest_key} was not written and its files stay marked sealed: {undo}"
            );
        }
        return Err(e);
    }
    Ok(())
}

/// Opens the store a person named: a folder path or `s3://BUCKET/PREFIX` (S3 settings and
/// credentials from the environment, see [`s3::S3Settings::from_env`]).
pub async fn open_store(location: &str) -> Result<Arc<dyn ObjectStore>> {
    let trimmed = location.trim();
    if trimmed.is_empty() {
        return Err(Error::InvalidStore {
            location: location.to_string(),
            reason: "it is empty".into(),
        });
    }
    if trimmed.starts_with("s3://") {
        let (bucket, prefix) = s3::parse_location(trimmed)?;
        let settings = s3::S3Settings::from_env()?;
        let (client, region) = s3::client_for_bucket(&settings.retry, &bucket).await;
        return Ok(Arc::new(
            s3::S3Store::new(client, bucket, prefix, settings).in_region(region),
        ));
    }
    if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(Error::InvalidStore {
            location: location.to_string(),
            reason: format!("{scheme}:// is not a store this tool knows"),
        });
    }
    Ok(Arc::new(local::LocalStore::new(trimmed)))
}

/// Rejects keys that could escape the store's root or be ambiguous.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(Error::InvalidValue {
            what: "store key",
            value: key.to_string(),
            expected: "a relative path without empty, '.' or '..' parts".into(),
        });
    }
    Ok(())
}

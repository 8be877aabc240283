//! The S3 store: backups where the strategy document wants them, encrypted and tagged.
//!
//! Objects up to one part are written with a single PutObject; larger ones stream through a
//! multipart upload with a bounded number of parts in flight, each sent with its SHA-256, and
//! the upload is aborted on any failure, so a half-written object never appears.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

mod archive;
mod client;
mod encryption;
mod errors;
mod reader;
mod settings;
mod tagging;
mod writer;

use super::{
    validate_key, ArchiveState, ObjectInfo, ObjectReader, ObjectStore, ObjectWriter, RetrievalTier,
};
use crate::error::{Error, Result};
pub use client::{client_for, client_for_bucket};
pub use encryption::Encryption;
use errors::{describe, error_chain, BODY_CUT};
pub use reader::RetrySettings;
use settings::MIN_PART_SIZE;
pub use settings::{LockMode, S3Settings, DEFAULT_PART_SIZE};
use tagging::{tag_set, tagging};
use writer::S3Writer;

/// `s3://BUCKET/PREFIX` split into bucket and prefix (ending with `/`, or empty).
pub fn parse_location(location: &str) -> Result<(String, String)> {
    let invalid = |reason: &str| Error::InvalidStore {
        location: location.to_string(),
        reason: reason.to_string(),
    };
    let rest = location
        .strip_prefix("s3://")
        .ok_or_else(|| invalid("it does not start with s3://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        return Err(invalid(
            "the bucket name must be 3 to 63 lowercase letters, digits, '-' or '.'",
        ));
    }
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        validate_key(prefix).map_err(|_| invalid("the prefix has empty, '.' or '..' parts"))?;
    }
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Ok((bucket.to_string(), prefix))
}

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    settings: Arc<S3Settings>,
    /// The bucket's region when it is not the configured one (named in messages).
    other_region: Option<String>,
    /// What every write sends, decided at the first one ([`Encryption::FollowBucket`] asks the
    /// bucket then, once for all the writers of this store).
    encryption: tokio::sync::OnceCell<Encryption>,
}

impl S3Store {
    pub fn new(
        client: Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
        settings: S3Settings,
    ) -> Self {
        let mut settings = settings;
        settings.part_size = settings.part_size.max(MIN_PART_SIZE);
        settings.concurrency = settings.concurrency.max(1);
        S3Store {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
            settings: Arc::new(settings),
            other_region: None,
            encryption: tokio::sync::OnceCell::new(),
        }
    }

    /// Marks the store's bucket as being in `region`, another than the configured one; its
    /// client must be one for that region ([`client_for_bucket`]).
    pub fn in_region(mut self, region: Option<String>) -> Self {
        self.other_region = region;
        self
    }

    async fn list_from(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<ObjectInfo>> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .set_start_after(start_after.map(|k| format!("{}{k}", self.prefix)))
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("ListObjectsV2", &full_prefix, describe(&e)))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                found.push(ObjectInfo {
                    key: key.to_string(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    modified: object
                        .last_modified()
                        .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())),
                    etag: object.e_tag().map(str::to_string),
                    storage_class: object.storage_class().map(|c| c.as_str().to_string()),
                });
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn get_versioned_once(&self, key: &str) -> Result<Option<(Vec<u8>, String)>> {
        let full_key = self.full_key(key)?;
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || e.raw_response().map(|r| r.status().as_u16()) == Some(404);
                if missing {
                    return Ok(None);
                }
                return Err(self.error("GetObject", &full_key, describe(&e)));
            }
        };
        let tag = output.e_tag().unwrap_or_default().to_string();
        let cut = |why: String| self.error("GetObject", &full_key, format!("{BODY_CUT}{why}"));
        let bytes = tokio::time::timeout(self.settings.retry.stall, output.body.collect())
            .await
            .map_err(|_| {
                cut(format!(
                    "not whole after {} s",
                    self.settings.retry.stall.as_secs()
                ))
            })?
            .map_err(|e| cut(error_chain(&e)))?
            .into_bytes()
            .to_vec();
        Ok(Some((bytes, tag)))
    }

    fn full_key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }
}

impl std::fmt::Display for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)?;
        match &self.other_region {
            Some(region) => write!(f, " ({region})"),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn check(&self) -> Result<()> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let detail = match e.as_service_error() {
                    Some(s) if s.is_not_found() => "the bucket does not exist".to_string(),
                    _ => match e.raw_response().map(|r| r.status().as_u16()) {
                        Some(403) => "access denied".to_string(),
                        Some(404) => "the bucket does not exist".to_string(),
                        _ => describe(&e),
                    },
                };
                Err(self.error("HeadBucket", "", detail))
            }
        }
    }

    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        let full_key = self.full_key(key)?;
        Ok(Box::new(S3Writer {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            tagging: tagging(key, &self.settings, false),
            lock: self.lock_on_write(key),
            key: full_key,
            settings: self.settings.clone(),
            encryption: self.write_encryption().await,
            buffer: Vec::new(),
            upload_id: None,
            next_part: 1,
            in_flight: JoinSet::new(),
            completed: Vec::new(),
            written: 0,
        }))
    }

    async fn open(&self, key: &str) -> Result<ObjectReader> {
        let full_key = self.full_key(key)?;
        reader::open(
            &self.client,
            &self.bucket,
            &full_key,
            key,
            self.settings.retry,
        )
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.list_from(prefix, None).await
    }

    fn retention_by_bucket_rules(&self) -> bool {
        true
    }

    async fn mark_sealed(&self, keys: &[String], sealed: bool) -> Result<()> {
        use futures::TryStreamExt;
        futures::stream::iter(keys.iter().map(Ok))
            .try_for_each_concurrent(8, |key| async move {
                let full_key = self.full_key(key)?;
                self.client
                    .put_object_tagging()
                    .bucket(&self.bucket)
                    .key(&full_key)
                    .tagging(tag_set(&tagging(key, &self.settings, sealed))?)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| self.error("PutObjectTagging", &full_key, describe(&e)))?;
                if sealed && self.settings.key_rules.is_locked_when_sealed(key) {
                    self.lock_daily(key, &full_key).await?;
                }
                Ok(())
            })
            .await
    }

    async fn data_transitions(&self, prefix: &str) -> Result<Vec<(u32, String)>> {
        self.read_data_transitions(prefix).await
    }

    async fn archive_state(&self, key: &str) -> Result<ArchiveState> {
        self.read_archive_state(key).await
    }

    async fn request_retrieval(
        &self,
        key: &str,
        tier: RetrievalTier,
        days: u32,
    ) -> Result<ArchiveState> {
        self.ask_retrieval(key, tier, days).await
    }

    async fn list_after(&self, prefix: &str, start_after: &str) -> Result<Vec<ObjectInfo>> {
        self.list_from(prefix, Some(start_after)).await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>> {
        // A small object: a body cut off part-way is simply read again whole.
        let retry = self.settings.retry;
        let mut attempt = 1;
        loop {
            match self.get_versioned_once(key).await {
                Err(Error::S3 { detail, .. })
                    if detail.starts_with(BODY_CUT) && attempt < retry.attempts.max(1) =>
                {
                    tracing::warn!(
                        key,
                        attempt,
                        "S3 read interrupted ({detail}); reading again"
                    );
                    tokio::time::sleep(retry.pause(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn put_if(&self, key: &str, bytes: Bytes, expected: Option<&str>) -> Result<bool> {
        let full_key = self.full_key(key)?;
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .checksum_sha256(writer::sha256_base64(&bytes))
            .tagging(tagging(key, &self.settings, false))
            .body(ByteStream::from(bytes));
        request = writer::with_encryption(request, &self.write_encryption().await);
        // S3's conditional writes: If-Match an ETag, or If-None-Match * for a first write.
        request = match expected {
            Some(tag) => request.if_match(tag),
            None => request.if_none_match("*"),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            // 412: someone else wrote first; 409: a concurrent conditional write is in progress.
            Err(e)
                if matches!(
                    e.raw_response().map(|r| r.status().as_u16()),
                    Some(412 | 409)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.error("PutObject", &full_key, describe(&e))),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full_key = self.full_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("DeleteObject", &full_key, describe(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_bad_ones_are_named() {
        assert_eq!(
            parse_location("s3://toc-backups/prod/").unwrap(),
            ("toc-backups".into(), "prod/".into())
        );
        assert_eq!(
            parse_location("s3://toc-backups").unwrap(),
            ("toc-backups".into(), String::new())
        );
        for bad in ["s3://", "s3://Upper/x", "s3://ok-bucket/a/../b", "s3://x/y"] {
            let message = parse_location(bad).unwrap_err().to_string();
            assert!(message.contains(bad), "{message}");
        }
    }
}

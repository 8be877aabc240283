//! Streaming one object into S3: a single PutObject when it fits one part, otherwise a
//! multipart upload with a bounded number of parts in flight, each with its SHA-256, aborted on
//! any failure.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use super::{describe, Encryption, LockMode, S3Settings};
use crate::error::{Error, Result};
use crate::store::ObjectWriter;

pub(super) struct S3Writer {
    pub(super) client: Client,
    pub(super) bucket: String,
    pub(super) key: String,
    pub(super) tagging: String,
    /// Object Lock set as the object is written (a daily backup's manifest).
    pub(super) lock: Option<(LockMode, aws_sdk_s3::primitives::DateTime)>,
    pub(super) settings: Arc<S3Settings>,
    /// What this store's writes send, decided once per store ([`Encryption::FollowBucket`]
    /// already resolved).
    pub(super) encryption: Encryption,
    pub(super) buffer: Vec<u8>,
    pub(super) upload_id: Option<String>,
    pub(super) next_part: i32,
    pub(super) in_flight: JoinSet<Result<CompletedPart>>,
    pub(super) completed: Vec<CompletedPart>,
    pub(super) written: u64,
}

fn lock_mode(mode: LockMode) -> aws_sdk_s3::types::ObjectLockMode {
    match mode {
        LockMode::Governance => aws_sdk_s3::types::ObjectLockMode::Governance,
        LockMode::Compliance => aws_sdk_s3::types::ObjectLockMode::Compliance,
    }
}

/// The encryption headers of a whole-object write (see [`Encryption`]). FollowBucket is
/// resolved before a store writes; were it not, sending no header is what it falls back to.
pub(super) fn with_encryption(
    request: aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
    encryption: &Encryption,
) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
    match encryption {
        Encryption::BucketDefault | Encryption::FollowBucket => request,
        Encryption::Kms { key_id } => request
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(key_id),
        Encryption::Aes256 => request.server_side_encryption(ServerSideEncryption::Aes256),
    }
}

pub(super) fn sha256_base64(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(Sha256::digest(bytes))
}

/// S3's checksum of a multipart object: the SHA-256 of its parts' SHA-256 digests, then `-N`.
fn composite_sha256(parts: &[CompletedPart]) -> Option<String> {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(aws_smithy_types::base64::decode(part.checksum_sha256()?).ok()?);
    }
    Some(format!(
        "{}-{}",
        aws_smithy_types::base64::encode(hasher.finalize()),
        parts.len()
    ))
}

impl S3Writer {
    fn error(&self, operation: &'static str, detail: impl std::fmt::Display) -> Error {
        Error::S3 {
            operation,
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            detail: detail.to_string(),
        }
    }

    async fn start_upload(&mut self) -> Result<String> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let mut request = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .tagging(&self.tagging)
            .set_object_lock_mode(self.lock.map(|(mode, _)| lock_mode(mode)))
            .set_object_lock_retain_until_date(self.lock.map(|(_, until)| until));
        // The upload's parts and its completion carry no encryption headers: S3 encrypts them
        // as this request says (or, without headers, as the bucket's default does).
        request = match &self.encryption {
            Encryption::BucketDefault | Encryption::FollowBucket => request,
            Encryption::Kms { key_id } => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(key_id),
            Encryption::Aes256 => request.server_side_encryption(ServerSideEncryption::Aes256),
        };
        let output = request
            .send()
            .await
            .map_err(|e| self.error("CreateMultipartUpload", describe(&e)))?;
        let id = output
            .upload_id()
            .ok_or_else(|| self.error("CreateMultipartUpload", "no upload id in the answer"))?
            .to_string();
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    async fn collect_one(&mut self) -> Result<()> {
        if let Some(joined) = self.in_flight.join_next().await {
            let part = joined.map_err(|e| self.error("UploadPart", e))??;
            self.completed.push(part);
        }
        Ok(())
    }

    async fn send_part(&mut self, body: Vec<u8>) -> Result<()> {
        let upload_id = self.start_upload().await?;
        while self.in_flight.len() >= self.settings.concurrency {
            self.collect_one().await?;
        }
        let number = self.next_part;
        self.next_part += 1;
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        self.in_flight.spawn(async move {
            let checksum = sha256_base64(&body);
            let output = client
                .upload_part()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&upload_id)
                .part_number(number)
                .checksum_sha256(&checksum)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| Error::S3 {
                    operation: "UploadPart",
                    bucket: bucket.clone(),
                    key: key.clone(),
                    detail: format!("part {number}: {}", describe(&e)),
                })?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(output.e_tag().map(str::to_string))
                .checksum_sha256(output.checksum_sha256().unwrap_or(&checksum))
                .build())
        });
        Ok(())
    }

    async fn put_whole(&mut self) -> Result<()> {
        let body = std::mem::take(&mut self.buffer);
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            // The algorithm named too: S3 refuses uploads to an Object Lock bucket with a default
            // retention (and any upload carrying a lock) without Content-MD5 or this header.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256_base64(&body))
            .tagging(&self.tagging)
            .set_object_lock_mode(self.lock.map(|(mode, _)| lock_mode(mode)))
            .set_object_lock_retain_until_date(self.lock.map(|(_, until)| until))
            .body(ByteStream::from(body));
        request = with_encryption(request, &self.encryption);
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("PutObject", describe(&e)))
    }

    async fn complete(&mut self) -> Result<()> {
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            self.send_part(rest).await?;
        }
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        self.completed.sort_by_key(|p| p.part_number());
        let parts = std::mem::take(&mut self.completed);
        let expected = composite_sha256(&parts);
        let part_count = parts.len();
        let upload_id = self.start_upload().await?;
        let outcome = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        let cause = match outcome {
            Ok(_) => {
                self.abort_stray_uploads().await;
                return Ok(());
            }
            Err(e) => describe(&e),
        };
        // A 500 or a dropped connection here is ambiguous: S3 may have completed the upload
        // before the answer was lost (and then a retry finds no upload). Ask S3 what is there
        // rather than fail a good object or complete it twice.
        tracing::warn!(
            bucket = %self.bucket,
            key = %self.key,
            "CompleteMultipartUpload failed ({cause}); checking whether S3 completed the object anyway"
        );
        match self.completed_object(part_count, expected.as_deref()).await {
            Ok(()) => {
                self.abort_stray_uploads().await;
                tracing::warn!(
                    bucket = %self.bucket,
                    key = %self.key,
                    bytes = self.written,
                    "the object is complete (size and checksum of its {part_count} parts match); the error was only in the answer"
                );
                Ok(())
            }
            Err(why) => Err(self.error(
                "CompleteMultipartUpload",
                format!("{cause}; and the object is not complete: {why}"),
            )),
        }
    }

    /// Ok when the object at our key is the one this upload built: its size, and its SHA-256
    /// checksum of part checksums where S3 reports one (else its part count).
    async fn completed_object(
        &self,
        part_count: usize,
        expected: Option<&str>,
    ) -> std::result::Result<(), String> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| format!("HeadObject: {}", describe(&e)))?;
        let size = head.content_length().unwrap_or(-1);
        if size < 0 || size as u64 != self.written {
            return Err(format!(
                "it holds {size} bytes, {} were uploaded",
                self.written
            ));
        }
        let base = |checksum: &str| checksum.split('-').next().unwrap_or_default().to_string();
        match (head.checksum_sha256(), expected) {
            (Some(found), Some(expected)) if base(found) == base(expected) => Ok(()),
            (Some(found), Some(expected)) => Err(format!(
                "its SHA-256 checksum is {found}, this upload's is {expected}"
            )),
            _ => {
                let parts = head
                    .e_tag()
                    .and_then(|t| t.trim_matches('"').rsplit_once('-'))
                    .and_then(|(_, n)| n.parse::<usize>().ok());
                if parts == Some(part_count) {
                    Ok(())
                } else {
                    Err(format!(
                        "S3 reports no checksum and its ETag {:?} is not of a {part_count}-part upload",
                        head.e_tag()
                    ))
                }
            }
        }
    }

    /// AbortMultipartUpload of one upload of this writer's key.
    async fn send_abort(&self, upload_id: &str) -> std::result::Result<(), String> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e))
    }

    /// A CreateMultipartUpload whose answer was lost and retried leaves an upload nobody knows
    /// the id of; it would hold its parts (and their storage cost) until the lifecycle rule's
    /// days pass. Every key this tool writes has one writer, so any other open upload for this
    /// exact key is such a stray: find and abort it.
    async fn abort_stray_uploads(&self) {
        let listing = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(&self.key)
            .send()
            .await;
        let uploads = match listing {
            Ok(listing) => listing.uploads.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(
                    bucket = %self.bucket,
                    key = %self.key,
                    "could not list open multipart uploads to remove strays (the bucket's lifecycle rule removes them later): {}",
                    describe(&e)
                );
                return;
            }
        };
        for upload in uploads {
            let (Some(key), Some(upload_id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            if key != self.key || self.upload_id.as_deref() == Some(upload_id) {
                continue;
            }
            match self.send_abort(upload_id).await {
                Ok(_) => tracing::info!(
                    bucket = %self.bucket,
                    key = %self.key,
                    %upload_id,
                    "aborted a stray multipart upload left by a retried CreateMultipartUpload"
                ),
                Err(e) => tracing::warn!(
                    bucket = %self.bucket,
                    key = %self.key,
                    %upload_id,
                    "could not abort a stray multipart upload (the bucket's lifecycle rule removes it later): {e}"
                ),
            }
        }
    }

    async fn abort_upload(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        if let Some(upload_id) = self.upload_id.take() {
            match self.send_abort(&upload_id).await {
                Ok(_) => {
                    tracing::info!(bucket = %self.bucket, key = %self.key, "multipart upload aborted")
                }
                Err(e) => tracing::error!(
                    bucket = %self.bucket,
                    key = %self.key,
                    %upload_id,
                    "could not abort the multipart upload (the bucket's lifecycle rule removes it later): {e}"
                ),
            }
            self.abort_stray_uploads().await;
        }
    }
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.written += chunk.len() as u64;
        let part_size = self.settings.part_size;
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            // Each part is filled to exactly its size in a buffer allocated once at that size:
            // a Vec left to grow by doubling would hold up to twice the part while it waits
            // and while it is uploaded. Untouched capacity costs no memory.
            if self.buffer.capacity() == 0 {
                self.buffer.reserve_exact(part_size);
            }
            let take = (part_size - self.buffer.len()).min(rest.len());
            self.buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buffer.len() == part_size {
                let part = std::mem::take(&mut self.buffer);
                if let Err(e) = self.send_part(part).await {
                    self.abort_upload().await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64> {
        let outcome = if self.upload_id.is_none() && self.in_flight.is_empty() {
            self.put_whole().await
        } else {
            self.complete().await
        };
        match outcome {
            Ok(()) => Ok(self.written),
            Err(e) => {
                self.abort_upload().await;
                Err(e)
            }
        }
    }

    async fn abort(mut self: Box<Self>) {
        self.abort_upload().await;
    }
}

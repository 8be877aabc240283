//! Reading one object from S3 so that a dropped or stalled connection costs a retry, not the job.
//!
//! The first GetObject fixes the object's ETag, version and length. When the body stream then
//! fails, ends early or delivers nothing for [`RetrySettings::stall`], the reader asks again from
//! the byte it had reached (`Range: bytes=N-`), pinned to the same version and ETag, so an object
//! replaced in between is an error and never a splice of two objects. Failures in a row without
//! progress are bounded; the error that ends the read names bucket, key, offset, attempts and
//! the last cause.
//!
//! Integrity is not this reader's job: every caller hashes what it reads against the SHA-256 its
//! manifest recorded (restore, verify, the dump's post-write check, key states, file blobs), so
//! a resumed read is checked over every byte exactly as an unbroken one.

use std::time::Duration;

use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::TryStreamExt;
use tokio_util::io::StreamReader;

use super::{describe, error_chain};
use crate::error::{Error, Result};
use crate::store::ObjectReader;

/// How hard a read (and the SDK under it) tries before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// Failed attempts in a row, without a byte of progress, before a read gives up.
    pub attempts: u32,
    /// A response that has not started, or a body that delivers nothing, for this long is
    /// treated as a dropped connection.
    pub stall: Duration,
    /// The first pause between attempts; it doubles each time (with jitter) up to 20 s.
    pub backoff: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            attempts: 10,
            stall: Duration::from_secs(30),
            backoff: Duration::from_millis(200),
        }
    }
}

impl RetrySettings {
    /// The pause before retry number `attempt` (1-based): exponential with full jitter, so
    /// many readers that failed together do not come back together.
    pub fn pause(&self, attempt: u32) -> Duration {
        let ceiling = self
            .backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(10))
            .min(Duration::from_secs(20));
        let floor = ceiling / 2;
        floor + ceiling.saturating_sub(floor).mul_f64(rand::random::<f64>())
    }
}

/// Where a resumable read stands.
struct Resumable {
    client: Client,
    bucket: String,
    key: String,
    etag: Option<String>,
    version_id: Option<String>,
    /// The object's whole length, from the first response.
    length: u64,
    offset: u64,
    body: Option<ByteStream>,
    retry: RetrySettings,
    /// Failures since the last byte of progress.
    failures: u32,
}

/// The first GetObject: a missing object is [`Error::MissingFile`] (named by `display_key`),
/// any other failure the SDK could not retry away is an S3 error.
pub(super) async fn open(
    client: &Client,
    bucket: &str,
    key: &str,
    display_key: &str,
    retry: RetrySettings,
) -> Result<ObjectReader> {
    let output = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(output) => output,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
            return Err(Error::MissingFile {
                file: display_key.to_string(),
            })
        }
        Err(e) => {
            return Err(Error::S3 {
                operation: "GetObject",
                bucket: bucket.to_string(),
                key: key.to_string(),
                detail: describe(&e),
            })
        }
    };
    let length = output.content_length().unwrap_or(0).max(0) as u64;
    let state = Resumable {
        client: client.clone(),
        bucket: bucket.to_string(),
        key: key.to_string(),
        etag: output.e_tag().map(str::to_string),
        version_id: output.version_id().map(str::to_string),
        length,
        offset: 0,
        body: Some(output.body),
        retry,
        failures: 0,
    };
    let chunks = futures::stream::try_unfold(state, |mut state| async move {
        Ok::<_, Error>(state.next_chunk().await?.map(|chunk| (chunk, state)))
    });
    Ok(Box::pin(StreamReader::new(
        chunks.map_err(std::io::Error::other),
    )))
}

impl Resumable {
    /// The next piece of the body, resuming as often as it takes; `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            let cause = match self.body.as_mut() {
                None => match self.reopen().await {
                    Ok(Some(body)) => {
                        self.body = Some(body);
                        continue;
                    }
                    Ok(None) => return Ok(None),
                    Err(Reopen::Permanent(e)) => return Err(e),
                    Err(Reopen::Transient(cause)) => cause,
                },
                Some(body) => match tokio::time::timeout(self.retry.stall, body.next()).await {
                    Ok(Some(Ok(chunk))) => {
                        if chunk.is_empty() {
                            continue;
                        }
                        self.offset += chunk.len() as u64;
                        self.failures = 0;
                        return Ok(Some(chunk));
                    }
                    Ok(None) if self.offset >= self.length => return Ok(None),
                    Ok(None) => format!("the body ended early, at byte {}", self.offset),
                    Ok(Some(Err(e))) => error_chain(&e),
                    Err(_) => format!("no data for {} s", self.retry.stall.as_secs_f64()),
                },
            };
            self.body = None;
            self.failures += 1;
            if self.failures >= self.retry.attempts {
                return Err(Error::S3 {
                    operation: "GetObject",
                    bucket: self.bucket.clone(),
                    key: self.key.clone(),
                    detail: format!(
                        "gave up at byte {} of {} after {} attempts in a row without progress; last cause: {cause}",
                        self.offset, self.length, self.failures
                    ),
                });
            }
            tracing::warn!(
                bucket = %self.bucket,
                key = %self.key,
                offset = self.offset,
                length = self.length,
                attempt = self.failures + 1,
                max_attempts = self.retry.attempts,
                "S3 read interrupted ({cause}); resuming from byte {}",
                self.offset
            );
            tokio::time::sleep(self.retry.pause(self.failures)).await;
        }
    }

    /// Asks for the rest of the object, pinned to the version and ETag first read.
    async fn reopen(&self) -> std::result::Result<Option<ByteStream>, Reopen> {
        if self.offset >= self.length {
            return Ok(None);
        }
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes={}-", self.offset))
            .set_if_match(self.etag.clone())
            .set_version_id(self.version_id.clone());
        // The client's own timeouts and retries bound this request.
        let output: GetObjectOutput = match request.send().await {
            Ok(output) => output,
            Err(e) => return Err(self.classify(&e)),
        };
        let expected = self.length - self.offset;
        match output.content_length() {
            Some(n) if n >= 0 && n as u64 != expected => Err(Reopen::Permanent(self.changed(
                format!("the resumed request returned {n} bytes, {expected} were left"),
            ))),
            _ => Ok(Some(output.body)),
        }
    }

    fn classify(
        &self,
        error: &aws_sdk_s3::error::SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Reopen {
        let status = error.raw_response().map(|r| r.status().as_u16());
        match status {
            // If-Match failed: someone wrote the object again while we read it.
            Some(412) => Reopen::Permanent(self.changed("its ETag no longer matches".into())),
            // Gone, denied, archived: no retry can help.
            Some(code) if (400..500).contains(&code) && code != 408 && code != 429 => {
                Reopen::Permanent(Error::S3 {
                    operation: "GetObject",
                    bucket: self.bucket.clone(),
                    key: self.key.clone(),
                    detail: format!(
                        "resuming at byte {} of {} failed: {}",
                        self.offset,
                        self.length,
                        describe(error)
                    ),
                })
            }
            _ => Reopen::Transient(describe(error)),
        }
    }

    fn changed(&self, why: String) -> Error {
        Error::S3 {
            operation: "GetObject",
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            detail: format!(
                "the object changed while it was read ({why}; ETag was {}); not splicing two versions",
                self.etag.as_deref().unwrap_or("unknown")
            ),
        }
    }
}

enum Reopen {
    Permanent(Error),
    Transient(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_and_stay_bounded() {
        let retry = RetrySettings::default();
        for attempt in 1..40 {
            let pause = retry.pause(attempt);
            let ceiling =
                (retry.backoff * (1 << (attempt - 1).min(10))).min(Duration::from_secs(20));
            assert!(
                pause >= ceiling / 2 && pause <= ceiling,
                "{attempt}: {pause:?}"
            );
        }
    }
}

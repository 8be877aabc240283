//! How the store's writes are encrypted: the configured encryption, or the bucket's default
//! read once and named on every write when it is SSE-KMS with a key ARN.

use aws_sdk_s3::error::ProvideErrorMetadata;

use super::S3Store;

/// How objects are encrypted. Never "SSE-KMS without a key id": S3 answers that with the
/// account's `aws/s3` key, which neither the bucket default, the key policy nor the replication
/// role governs, so replication of such objects fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// Neither BACKUP_KMS_KEY_ID nor BACKUP_SSE set (an operator's shell): the bucket's default
    /// encryption, read once per store before its first write. SSE-KMS with a key ARN becomes
    /// [`Encryption::Kms`] with that key, so every write names it as the functions' do; anything
    /// else, or a default that cannot be read, becomes [`Encryption::BucketDefault`].
    FollowBucket,
    /// No encryption header: the bucket's default encryption applies (in the stack: its
    /// BackupKey, with an S3 Bucket Key). The bucket policy constrains only writes that name an
    /// encryption, so these pass, as do multipart parts, which never carry the headers.
    BucketDefault,
    /// SSE-KMS with this key, named on every write, so a write with the wrong key is refused
    /// by the bucket policy instead of landing under another key.
    Kms {
        key_id: String,
    },
    Aes256,
}

impl S3Store {
    /// The encryption this store's writes send: the configured one, or for
    /// [`Encryption::FollowBucket`] the bucket's default as read once.
    pub(super) async fn write_encryption(&self) -> Encryption {
        self.encryption
            .get_or_init(|| async {
                match &self.settings.encryption {
                    Encryption::FollowBucket => self.bucket_default_encryption().await,
                    configured => configured.clone(),
                }
            })
            .await
            .clone()
    }

    /// GetBucketEncryption, as the encryption to name on writes. Unreadable (no
    /// s3:GetEncryptionConfiguration, or none set: every S3 bucket has one since 2023, moto's
    /// none until PutBucketEncryption) is no failure: writes then send no header and get the
    /// default, whatever it is. Only the error's code is logged, not its message.
    async fn bucket_default_encryption(&self) -> Encryption {
        match self
            .client
            .get_bucket_encryption()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(answer) => {
                let default = answer
                    .server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|rule| rule.apply_server_side_encryption_by_default());
                let encryption = to_name_on_writes(
                    default.map(|d| d.sse_algorithm().as_str()),
                    default.and_then(|d| d.kms_master_key_id()),
                );
                tracing::debug!(bucket = %self.bucket, ?encryption, "encryption from the bucket's default");
                encryption
            }
            Err(e) => {
                let code = e
                    .as_service_error()
                    .and_then(|s| s.code())
                    .map(str::to_string)
                    .or_else(|| {
                        e.raw_response()
                            .map(|r| format!("HTTP {}", r.status().as_u16()))
                    })
                    .unwrap_or_else(|| "no answer".into());
                tracing::debug!(
                    bucket = %self.bucket,
                    "the bucket's default encryption was not read ({code}); writes send no encryption header"
                );
                Encryption::BucketDefault
            }
        }
    }
}

/// What writes name for a bucket default of `algorithm` with `key`: only SSE-KMS with a key
/// ARN is named. A bare key id or an alias would reach the bucket policy's condition as written,
/// not as the ARN it compares with, and an SSE-KMS default without a key, AES256 or DSSE cannot
/// be named in a way that policy admits; without headers they all get the default anyway.
fn to_name_on_writes(algorithm: Option<&str>, key: Option<&str>) -> Encryption {
    match (algorithm, key) {
        (Some("aws:kms"), Some(key)) if is_key_arn(key) => Encryption::Kms {
            key_id: key.to_string(),
        },
        _ => Encryption::BucketDefault,
    }
}

/// `arn:PARTITION:kms:REGION:ACCOUNT:key/ID`, not an alias ARN.
fn is_key_arn(key: &str) -> bool {
    match key.splitn(6, ':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "kms", _, _, resource] => resource
            .strip_prefix("key/")
            .is_some_and(|id| !id.is_empty()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_sse_kms_default_with_a_key_arn_is_named_on_writes() {
        let arn = "arn:aws:kms:eu-west-1:123456789012:key/8f3c1d2e-0000-4000-8000-000000000001";
        assert_eq!(
            to_name_on_writes(Some("aws:kms"), Some(arn)),
            Encryption::Kms { key_id: arn.into() }
        );
        for (algorithm, key) in [
            (Some("aws:kms"), None),
            (
                Some("aws:kms"),
                Some("8f3c1d2e-0000-4000-8000-000000000001"),
            ),
            (Some("aws:kms"), Some("alias/backups")),
            (
                Some("aws:kms"),
                Some("arn:aws:kms:eu-west-1:123456789012:alias/backups"),
            ),
            (
                Some("aws:kms"),
                Some("arn:aws:kms:eu-west-1:123456789012:key/"),
            ),
            (Some("aws:kms:dsse"), Some(arn)),
            (Some("AES256"), None),
            (None, None),
        ] {
            assert_eq!(
                to_name_on_writes(algorithm, key),
                Encryption::BucketDefault,
                "{algorithm:?} {key:?}"
            );
        }
    }
}

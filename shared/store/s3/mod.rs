//! The S3 store: backups where the strategy document wants them, encrypted and tagged.
//!
//! Objects up to one part are written with a single PutObject; larger ones stream through a
//! multipart upload with a bounded number of parts in flight, each sent with its SHA-256, and
//! the upload is aborted on any failure, so a half-written object never appears.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};
use aws_sdk_s3::Client;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

mod client;
mod reader;
mod writer;

use super::{
    is_archive_class, validate_key, ArchiveState, ObjectInfo, ObjectReader, ObjectStore,
    ObjectWriter, RetrievalTier,
};
use crate::error::{Error, Result};
use crate::layout::KeyRules;
pub use client::{client_for, client_for_bucket};
pub use reader::RetrySettings;
use writer::S3Writer;

/// S3 allows at most 10,000 parts; with 6 MiB parts one object may reach 58 GiB, far above a
/// data file (split at 64 MiB of SQL by default). Each object being written holds up to
/// (concurrency + 1) parts, and a table's data file and key state are written side by side:
/// 6 MiB rather than 8 keeps a dump to S3 within 64 MiB (issue 16; BENCHMARKS.md).
pub const DEFAULT_PART_SIZE: usize = 6 * 1024 * 1024;
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

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

#[derive(Debug, Clone)]
pub struct S3Settings {
    pub encryption: Encryption,
    pub part_size: usize,
    /// Parts uploaded at once per object; memory is about `part_size * (concurrency + 1)`.
    pub concurrency: usize,
    /// Tag value lifecycle rules select on (`retention-class`).
    pub retention_class: String,
    /// Attempts, stall timeout and backoff of every request and resumed read.
    pub retry: RetrySettings,
    /// Object Lock for a sealed daily backup's files: (mode, days from sealing). Set on seal,
    /// not on write, so a failed run's leftovers keep only the bucket's short default and can
    /// expire.
    pub daily_lock: Option<(LockMode, u32)>,
    /// Which keys get backup tags and Object Lock: the store's layout decides, the driver only
    /// follows the rules.
    pub key_rules: KeyRules,
}

/// S3 Object Lock modes: GOVERNANCE can be lifted by someone allowed
/// s3:BypassGovernanceRetention; COMPLIANCE by nobody, not even the account's root user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Governance,
    Compliance,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            encryption: Encryption::BucketDefault,
            part_size: DEFAULT_PART_SIZE,
            concurrency: 2,
            retention_class: "academic-records-7y".into(),
            retry: RetrySettings::default(),
            daily_lock: None,
            key_rules: crate::layout::s3_key_rules(),
        }
    }
}

impl S3Settings {
    /// Reads BACKUP_KMS_KEY_ID and BACKUP_SSE (`aws:kms`, `AES256` or `bucket-default`; unset:
    /// the key when one is given, else what the bucket's default encryption says, see
    /// [`Encryption::FollowBucket`]), BACKUP_S3_PART_SIZE_MB,
    /// BACKUP_S3_CONCURRENCY, BACKUP_RETENTION_CLASS, BACKUP_S3_ATTEMPTS and
    /// BACKUP_S3_STALL_SECONDS, naming the variable on a bad value.
    pub fn from_env() -> Result<Self> {
        let mut settings = S3Settings::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let key_id = var("BACKUP_KMS_KEY_ID");
        settings.encryption = match (var("BACKUP_SSE").as_deref(), key_id) {
            (None | Some("aws:kms") | Some("kms"), Some(key_id)) => Encryption::Kms { key_id },
            (None, None) => Encryption::FollowBucket,
            (Some("bucket-default"), None) => Encryption::BucketDefault,
            (Some("aws:kms") | Some("kms"), None) => {
                return Err(Error::Config {
                    variable: "BACKUP_KMS_KEY_ID".into(),
                    reason: "is not set, but BACKUP_SSE is aws:kms: S3 would use the account's aws/s3 key, which the replication role cannot decrypt; set it to the backup key's ARN, or unset BACKUP_SSE to use the bucket's default encryption".into(),
                })
            }
            (Some("AES256") | Some("aes256"), _) => Encryption::Aes256,
            (Some(other), _) => {
                return Err(Error::Config {
                    variable: "BACKUP_SSE".into(),
                    reason: format!(
                        "is {other:?}, which is not aws:kms, AES256 or bucket-default"
                    ),
                })
            }
        };
        // A whole number within `range` (its unit, if any, said in the error), or the default.
        let number = |name: &str, unit: &str, range: std::ops::RangeInclusive<u64>| {
            var(name)
                .map(|value| {
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|n| range.contains(n))
                        .ok_or_else(|| Error::Config {
                            variable: name.into(),
                            reason: format!(
                                "is {value:?}, which is not a whole number{unit} from {} to {}",
                                range.start(),
                                range.end()
                            ),
                        })
                })
                .transpose()
        };
        if let Some(mb) = number("BACKUP_S3_PART_SIZE_MB", " of MiB", 5..=512)? {
            settings.part_size = mb as usize * 1024 * 1024;
        }
        if let Some(n) = number("BACKUP_S3_CONCURRENCY", "", 1..=16)? {
            settings.concurrency = n as usize;
        }
        if let Some(value) = var("BACKUP_RETENTION_CLASS") {
            settings.retention_class = value;
        }
        if let Some(days) = number("BACKUP_DAILY_LOCK_DAYS", " of days", 1..=36500)? {
            let mode = match var("BACKUP_DAILY_LOCK_MODE").as_deref() {
                None | Some("GOVERNANCE") => LockMode::Governance,
                Some("COMPLIANCE") => LockMode::Compliance,
                Some(other) => {
                    return Err(Error::Config {
                        variable: "BACKUP_DAILY_LOCK_MODE".into(),
                        reason: format!("is {other:?}, which is not GOVERNANCE or COMPLIANCE"),
                    })
                }
            };
            settings.daily_lock = Some((mode, days as u32));
        }
        if let Some(n) = number("BACKUP_S3_ATTEMPTS", "", 1..=20)? {
            settings.retry.attempts = n as u32;
        }
        if let Some(seconds) = number("BACKUP_S3_STALL_SECONDS", " of seconds", 1..=600)? {
            settings.retry.stall = std::time::Duration::from_secs(seconds);
        }
        Ok(settings)
    }
}

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

    /// The encryption this store's writes send: the configured one, or for
    /// [`Encryption::FollowBucket`] the bucket's default as read once.
    async fn write_encryption(&self) -> Encryption {
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

    /// Until when a sealed daily backup's object is held, under which mode (when configured).
    fn daily_lock_until(&self) -> Option<(LockMode, aws_sdk_s3::primitives::DateTime)> {
        let (mode, days) = self.settings.daily_lock?;
        let until = Utc::now() + chrono::Duration::days(i64::from(days));
        Some((
            mode,
            aws_sdk_s3::primitives::DateTime::from_secs(until.timestamp()),
        ))
    }

    /// The lock a new object gets as it is written: a daily backup's manifest is sealed from
    /// its first byte (its files were sealed just before it), so it is locked at once.
    fn lock_on_write(&self, key: &str) -> Option<(LockMode, aws_sdk_s3::primitives::DateTime)> {
        let rules = &self.settings.key_rules;
        let daily_manifest = rules.is_locked_when_sealed(key) && rules.is_manifest(key);
        daily_manifest.then(|| self.daily_lock_until()).flatten()
    }

    /// Holds a sealed daily backup's object for the retention class's years (when configured).
    async fn lock_daily(&self, key: &str, full_key: &str) -> Result<()> {
        let Some((mode, until)) = self.daily_lock_until() else {
            return Ok(());
        };
        let retention = aws_sdk_s3::types::ObjectLockRetention::builder()
            .mode(match mode {
                LockMode::Governance => aws_sdk_s3::types::ObjectLockRetentionMode::Governance,
                LockMode::Compliance => aws_sdk_s3::types::ObjectLockRetentionMode::Compliance,
            })
            .retain_until_date(until)
            .build();
        self.client
            .put_object_retention()
            .bucket(&self.bucket)
            .key(full_key)
            .retention(retention)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                self.error(
                    "PutObjectRetention",
                    full_key,
                    format!("{} (locking {key} until {until})", describe(&e)),
                )
            })
    }

    fn full_key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn error(&self, operation: &'static str, key: &str, detail: impl std::fmt::Display) -> Error {
        Error::S3 {
            operation,
            bucket: self.bucket.clone(),
            key: key.to_string(),
            detail: detail.to_string(),
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

impl std::fmt::Display for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)?;
        match &self.other_region {
            Some(region) => write!(f, " ({region})"),
            None => Ok(()),
        }
    }
}

pub(super) fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("no message")
        ),
        None => error_chain(error),
    }
}

/// An error and its causes on one line, each said once, without Debug dumps.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// An object's tags: `backup-kind` from where it lives (`database/daily/…` is
/// `database-daily`) and its retention class; database objects also say whether they are the
/// manifest or data (the lifecycle moves data to colder classes, never manifests) and whether
/// their backup is sealed: written `partial`, re-tagged `sealed` just before the manifest, so
/// the lifecycle expires within days whatever a run that never got its manifest left behind.
fn tagging(key: &str, settings: &S3Settings, sealed: bool) -> String {
    let kind: Vec<&str> = key.split('/').take(2).collect();
    let kind = if kind.len() == 2 {
        kind.join("-")
    } else {
        "other".into()
    };
    let clean = |v: &str| -> String {
        v.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut tags = format!(
        "backup-kind={}&retention-class={}",
        clean(&kind),
        clean(&settings.retention_class)
    );
    if settings.key_rules.is_tracked(key) {
        let manifest = settings.key_rules.is_manifest(key);
        tags.push_str(if manifest {
            "&backup-object=manifest"
        } else {
            "&backup-object=data"
        });
        tags.push_str(if manifest || sealed {
            "&backup-state=sealed"
        } else {
            "&backup-state=partial"
        });
    }
    tags
}

/// How an error of [`S3Store::get_versioned_once`] says the body was cut off.
const BODY_CUT: &str = "the body was cut off: ";

/// An archived object's state from S3's `x-amz-restore` header: absent (never asked, or the
/// copy expired), `ongoing-request="true"`, or `ongoing-request="false", expiry-date="…"`.
fn archive_state_from(class: String, restore: Option<&str>) -> ArchiveState {
    match restore {
        None => ArchiveState::Archived { class },
        Some(header) if header.contains("ongoing-request=\"true\"") => {
            ArchiveState::Retrieving { class }
        }
        Some(header) => ArchiveState::Retrieved {
            class,
            until: header
                .split("expiry-date=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_string),
        },
    }
}

/// The tag set of [`tagging`] in the form PutObjectTagging takes.
fn tag_set(query: &str) -> Result<Tagging> {
    let mut tags = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push(
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| Error::Task(e.to_string()))?,
        );
    }
    Tagging::builder()
        .set_tag_set(Some(tags))
        .build()
        .map_err(|e| Error::Task(e.to_string()))
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
        let full_prefix = format!("{}{prefix}", self.prefix);
        let rules = match self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(output) => output.rules().to_vec(),
            Err(e) => {
                // No lifecycle (404), or no permission to read it: nothing known to move.
                tracing::debug!("no lifecycle read for {}: {}", self.bucket, describe(&e));
                return Ok(Vec::new());
            }
        };
        let mut transitions = Vec::new();
        for rule in rules {
            if rule.status().as_str() != "Enabled" {
                continue;
            }
            let (rule_prefix, tags) = match rule.filter() {
                Some(filter) => match filter.and() {
                    Some(and) => (
                        and.prefix().unwrap_or_default().to_string(),
                        and.tags()
                            .iter()
                            .map(|t| (t.key().to_string(), t.value().to_string()))
                            .collect::<Vec<_>>(),
                    ),
                    None => (
                        filter.prefix().unwrap_or_default().to_string(),
                        filter
                            .tag()
                            .map(|t| vec![(t.key().to_string(), t.value().to_string())])
                            .unwrap_or_default(),
                    ),
                },
                #[allow(deprecated)]
                None => (rule.prefix().unwrap_or_default().to_string(), Vec::new()),
            };
            let for_data = tags
                .iter()
                .all(|(k, v)| k == "backup-object" && v == "data");
            if !for_data || !full_prefix.starts_with(&rule_prefix) {
                continue;
            }
            for transition in rule.transitions() {
                if let (Some(days), Some(class)) = (transition.days(), transition.storage_class()) {
                    transitions.push((days.max(0) as u32, class.as_str().to_string()));
                }
            }
        }
        transitions.sort();
        Ok(transitions)
    }

    async fn archive_state(&self, key: &str) -> Result<ArchiveState> {
        let full_key = self.full_key(key)?;
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .send()
            .await
            .map_err(|e| match e.raw_response().map(|r| r.status().as_u16()) {
                Some(404) => Error::MissingFile {
                    file: key.to_string(),
                },
                _ => self.error("HeadObject", &full_key, describe(&e)),
            })?;
        let class = head
            .storage_class()
            .map(|c| c.as_str().to_string())
            .unwrap_or_else(|| "STANDARD".into());
        if !is_archive_class(&class) {
            return Ok(ArchiveState::Readable);
        }
        Ok(archive_state_from(class, head.restore()))
    }

    async fn request_retrieval(
        &self,
        key: &str,
        tier: RetrievalTier,
        days: u32,
    ) -> Result<ArchiveState> {
        let state = self.archive_state(key).await?;
        if !matches!(state, ArchiveState::Archived { .. }) {
            return Ok(state);
        }
        let full_key = self.full_key(key)?;
        let tier = match tier {
            RetrievalTier::Expedited => aws_sdk_s3::types::Tier::Expedited,
            RetrievalTier::Standard => aws_sdk_s3::types::Tier::Standard,
            RetrievalTier::Bulk => aws_sdk_s3::types::Tier::Bulk,
        };
        let request = aws_sdk_s3::types::RestoreRequest::builder()
            .days(days.clamp(1, 30) as i32)
            .glacier_job_parameters(
                aws_sdk_s3::types::GlacierJobParameters::builder()
                    .tier(tier)
                    .build()
                    .map_err(|e| Error::Task(e.to_string()))?,
            )
            .build();
        match self
            .client
            .restore_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .restore_request(request)
            .send()
            .await
        {
            Ok(_) => {}
            // RestoreAlreadyInProgress: someone asked already.
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(409) => {}
            Err(e) => return Err(self.error("RestoreObject", &full_key, describe(&e))),
        }
        self.archive_state(key).await
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

    #[test]
    fn the_restore_header_says_how_far_a_retrieval_is() {
        assert_eq!(
            archive_state_from("GLACIER".into(), None),
            ArchiveState::Archived {
                class: "GLACIER".into()
            }
        );
        assert_eq!(
            archive_state_from("DEEP_ARCHIVE".into(), Some("ongoing-request=\"true\"")),
            ArchiveState::Retrieving {
                class: "DEEP_ARCHIVE".into()
            }
        );
        let done = archive_state_from(
            "GLACIER".into(),
            Some("ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\""),
        );
        assert_eq!(
            done,
            ArchiveState::Retrieved {
                class: "GLACIER".into(),
                until: Some("Fri, 21 Dec 2012 00:00:00 GMT".into())
            }
        );
        assert!(done.readable());
    }

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

    #[test]
    fn tags_follow_the_key() {
        let settings = S3Settings {
            retention_class: "r".into(),
            ..S3Settings::default()
        };
        assert_eq!(
            tagging(
                "database/daily/x/manifest.json",
                &S3Settings::default(),
                false
            ),
            "backup-kind=database-daily&retention-class=academic-records-7y&backup-object=manifest&backup-state=sealed"
        );
        assert_eq!(
            tagging("database/incremental/x/data/1.sql.gz", &settings, false),
            "backup-kind=database-incremental&retention-class=r&backup-object=data&backup-state=partial"
        );
        assert!(tagging("database/daily/x/data/1.sql.gz", &settings, true)
            .ends_with("&backup-state=sealed"));
        assert_eq!(
            tagging("files/blobs/ab/cd", &settings, false),
            "backup-kind=files-blobs&retention-class=r"
        );
        let set = tag_set("a=b&c=d").unwrap();
        assert_eq!(set.tag_set().len(), 2);
        assert_eq!(set.tag_set()[1].key(), "c");
    }
}

//! The S3 store's settings: part size and concurrency of uploads, encryption, retention class
//! and Object Lock of sealed daily backups, and the retries, read from the environment.

use super::reader::RetrySettings;
use super::Encryption;
use crate::error::{Error, Result};
use crate::layout::KeyRules;

/// S3 allows at most 10,000 parts; with 6 MiB parts one object may reach 58 GiB, far above a
/// data file (split at 64 MiB of SQL by default). Each object being written holds up to
/// (concurrency + 1) parts, and a table's data file and key state are written side by side:
/// 6 MiB rather than 8 keeps a dump to S3 within 64 MiB (issue 16; BENCHMARKS.md).
pub const DEFAULT_PART_SIZE: usize = 6 * 1024 * 1024;
pub(super) const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

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

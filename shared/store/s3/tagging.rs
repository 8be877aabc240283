//! What the bucket's rules select on: an object's tags (kind, retention class, manifest or data,
//! partial or sealed), and the Object Lock a sealed daily backup's objects get.

use aws_sdk_s3::types::{Tag, Tagging};
use chrono::Utc;

use super::{describe, LockMode, S3Settings, S3Store};
use crate::error::{Error, Result};

impl S3Store {
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
    pub(super) fn lock_on_write(
        &self,
        key: &str,
    ) -> Option<(LockMode, aws_sdk_s3::primitives::DateTime)> {
        let rules = &self.settings.key_rules;
        let daily_manifest = rules.is_locked_when_sealed(key) && rules.is_manifest(key);
        daily_manifest.then(|| self.daily_lock_until()).flatten()
    }

    /// Holds a sealed daily backup's object for the retention class's years (when configured).
    pub(super) async fn lock_daily(&self, key: &str, full_key: &str) -> Result<()> {
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
}

/// An object's tags: `backup-kind` from where it lives (`database/daily/…` is
/// `database-daily`) and its retention class; database objects also say whether they are the
/// manifest or data (the lifecycle moves data to colder classes, never manifests) and whether
/// their backup is sealed: written `partial`, re-tagged `sealed` just before the manifest, so
/// the lifecycle expires within days whatever a run that never got its manifest left behind.
pub(super) fn tagging(key: &str, settings: &S3Settings, sealed: bool) -> String {
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

/// The tag set of [`tagging`] in the form PutObjectTagging takes.
pub(super) fn tag_set(query: &str) -> Result<Tagging> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

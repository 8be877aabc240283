//! The store's layout: every key name the jobs write and read, in one place.
//!
//! The store drivers know nothing of it (they store bytes under keys, and take the rules for
//! tags and Object Lock as settings made here, [`s3_key_rules`]); the jobs and the catalog ask
//! here where a backup, a segment, a snapshot or a report lives. Changing a name here changes
//! where new backups go, so old names must stay readable: the names are part of the format.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Every object of a database backup (full, incremental, binlog) lives under this prefix.
pub const DATABASE_PREFIX: &str = "database/";
/// Full (daily) backups: `database/daily/<id>/`.
pub const DAILY_PREFIX: &str = "database/daily/";
/// Incremental backups: `database/incremental/<id>/`.
pub const INCREMENTAL_PREFIX: &str = "database/incremental/";
/// The key states of a backup (full or incremental), which only the chain's next incrementals
/// read: `database/key-states/<id>/`. Apart from the backup so that the years-long archive
/// holds data, not this scaffolding: a short lifecycle rule removes them in S3, and retention
/// once a newer full backup exists in a folder (an incremental finding its state gone rebuilds
/// the table's).
pub const KEY_STATES_PREFIX: &str = "database/key-states/";
/// Binlog archive segments: `database/binlog/<segment id>/`.
pub const SEGMENT_PREFIX: &str = "database/binlog/";
/// The last object written to a backup's or a segment's folder: it alone makes the folder one.
pub const MANIFEST_NAME: &str = "manifest.json";
/// A binlog segment's events.
pub const SEGMENT_DATA_NAME: &str = "events.binlog.gz";

/// The catalog's own objects (rebuildable from the manifests).
pub const CATALOG_PREFIX: &str = "catalog/";
/// The index of every backup, for listing without reading each manifest.
pub const INDEX_KEY: &str = "catalog/index.json.gz";
/// Where the binlog archive stands after its last run.
pub const BINLOG_HEAD_KEY: &str = "catalog/binlog-head.json";

/// Uploaded documents: content-addressed blobs, the snapshots naming them, and writers' locks.
pub const FILES_PREFIX: &str = "files/";
pub const BLOBS_PREFIX: &str = "files/blobs/";
pub const SNAPSHOTS_PREFIX: &str = "files/snapshots/";
pub const LOCKS_PREFIX: &str = "files/locks/";

/// The monitor's alert state (what it last alerted about).
pub const MONITOR_STATE_KEY: &str = "monitor/state.json";
/// Restore test reports: `latest.json` and one dated report per test.
pub const RESTORE_TESTS_PREFIX: &str = "monitor/restore-tests/";
pub const RESTORE_TEST_LATEST_KEY: &str = "monitor/restore-tests/latest.json";

/// Milliseconds keep ids in time order even for runs in the same second (an incremental right
/// after the full backup it starts from), since "newest" is decided by id.
const ID_TIME_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";
const ID_TIME_FORMAT_SECONDS: &str = "%Y%m%dT%H%M%SZ";

/// A new backup id: UTC time to the millisecond, sortable, with a random suffix.
pub fn new_backup_id(now: DateTime<Utc>) -> String {
    format!(
        "{}-{:04x}",
        now.format(ID_TIME_FORMAT),
        rand::random::<u16>()
    )
}

/// The time a backup id was made, if it is one of ours.
pub fn id_time(id: &str) -> Option<DateTime<Utc>> {
    let stamp = id.split('-').next()?;
    NaiveDateTime::parse_from_str(stamp, ID_TIME_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(stamp, ID_TIME_FORMAT_SECONDS))
        .ok()
        .map(|t| t.and_utc())
}

/// Where a full backup's files live.
pub fn backup_prefix(id: &str) -> String {
    format!("{DAILY_PREFIX}{id}/")
}

/// Where an incremental backup's files live.
pub fn incremental_prefix(id: &str) -> String {
    format!("{INCREMENTAL_PREFIX}{id}/")
}

/// Where a backup's key states live (the backups that keep them apart).
pub fn key_state_prefix(id: &str) -> String {
    format!("{KEY_STATES_PREFIX}{id}/")
}

/// A full backup's manifest.
pub fn manifest_key(id: &str) -> String {
    format!("{}{MANIFEST_NAME}", backup_prefix(id))
}

/// A binlog segment's events.
pub fn segment_data_key(id: &str) -> String {
    format!("{SEGMENT_PREFIX}{id}/{SEGMENT_DATA_NAME}")
}

/// A binlog segment's manifest.
pub fn segment_manifest_key(id: &str) -> String {
    format!("{SEGMENT_PREFIX}{id}/{MANIFEST_NAME}")
}

/// A dated restore test report.
pub fn restore_test_key(stamp: &str) -> String {
    format!("{RESTORE_TESTS_PREFIX}{stamp}.json")
}

/// Which objects a store driver treats specially, by key. Made here so the driver matches the
/// rules it is given, not the backup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRules {
    /// Objects under this prefix carry `backup-object` and `backup-state` tags (the lifecycle
    /// expires a `partial` object within days).
    pub tracked_prefix: &'static str,
    /// Objects under this prefix get Object Lock once sealed (when the store is configured to).
    pub locked_prefix: &'static str,
    /// The last path segment of a manifest: sealed (and locked) from its first byte.
    pub manifest_name: &'static str,
}

impl KeyRules {
    pub fn is_tracked(&self, key: &str) -> bool {
        key.starts_with(self.tracked_prefix)
    }

    pub fn is_manifest(&self, key: &str) -> bool {
        key.rsplit('/').next() == Some(self.manifest_name)
    }

    pub fn is_locked_when_sealed(&self, key: &str) -> bool {
        key.starts_with(self.locked_prefix)
    }
}

/// The rules of this layout: database objects are tracked, daily backups are locked.
pub fn s3_key_rules() -> KeyRules {
    KeyRules {
        tracked_prefix: DATABASE_PREFIX,
        locked_prefix: DAILY_PREFIX,
        manifest_name: MANIFEST_NAME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_sort_by_time_and_parse_back() {
        let early = new_backup_id(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
        let late = new_backup_id(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 6).unwrap());
        assert!(early < late);
        assert!(early.starts_with("20260102T030405.000Z-"), "{early}");
        let same_second = new_backup_id(
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::milliseconds(1),
        );
        assert!(early < same_second, "{early} {same_second}");
        assert!(id_time("20200101T000000Z-dead").is_some());
        assert_eq!(
            id_time(&early),
            Some(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap())
        );
        assert_eq!(id_time("nonsense"), None);
    }

    #[test]
    fn key_rules_match_the_layout() {
        let rules = s3_key_rules();
        assert!(rules.is_tracked(&segment_data_key("s1")));
        assert!(!rules.is_tracked("files/blobs/ab/cd"));
        assert!(rules.is_manifest(&manifest_key("x")));
        assert!(rules.is_locked_when_sealed(&manifest_key("x")));
        assert!(!rules.is_locked_when_sealed(&format!("{}m", incremental_prefix("x"))));
    }
}

//! How long daily backups are kept: older than `keep_days` goes, except that the newest
//! `keep_min` complete backups always stay, however old (so a month of failed runs never leaves
//! the store empty). Damaged backups are kept for a person to look at.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::catalog::{self, EntryState};
use crate::error::{Error, Result};
use crate::manifest::BackupKind;
use crate::store::ObjectStore;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub keep_days: u32,
    pub keep_min: usize,
    /// Folders without a manifest younger than this may be a backup still being written.
    pub incomplete_grace_hours: u32,
}

/// Daily backups older than this many days are removed (`BACKUP_KEEP_DAYS`)…
pub const DEFAULT_KEEP_DAYS: u32 = 30;
/// …but at least this many complete backups are always kept (`BACKUP_KEEP_MIN`).
pub const DEFAULT_KEEP_MIN: usize = 7;

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            keep_days: DEFAULT_KEEP_DAYS,
            keep_min: DEFAULT_KEEP_MIN,
            incomplete_grace_hours: 24,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct PruneReport {
    pub deleted: Vec<String>,
    pub kept: Vec<String>,
    /// Binlog archive segments no kept full backup can replay any more.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binlog_segments_deleted: Vec<String>,
    /// Backups (kept) whose key states went: a newer full backup starts every later chain.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_states_deleted: Vec<String>,
}

/// What to delete, decided from ids and states alone (pure, so it is tested without a store).
pub fn plan(
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
    newest_first: &[(String, Option<DateTime<Utc>>, Kind)],
) -> Vec<String> {
    // Any keep_days (a u32) fits a Duration; a cutoff before the calendar's start keeps all.
    let cutoff = now
        .checked_sub_signed(Duration::days(i64::from(policy.keep_days)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let grace = now
        .checked_sub_signed(Duration::hours(i64::from(policy.incomplete_grace_hours)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut complete_seen = 0usize;
    let mut doomed = Vec::new();
    for (id, made, kind) in newest_first {
        match kind {
            Kind::Link { .. } => {}
            Kind::Complete => {
                complete_seen += 1;
                let old = made.is_some_and(|t| t < cutoff);
                if complete_seen > policy.keep_min && old {
                    doomed.push(id.clone());
                }
            }
            Kind::Incomplete => {
                if made.is_some_and(|t| t < grace) {
                    doomed.push(id.clone());
                }
            }
            Kind::Damaged => {}
        }
    }
    // An incremental goes with its chain's full backup: without it, it restores nothing.
    let fulls: Vec<&str> = newest_first
        .iter()
        .filter(|(_, _, k)| *k == Kind::Complete)
        .map(|(id, _, _)| id.as_str())
        .collect();
    for (id, made, kind) in newest_first {
        if let Kind::Link { chain_root } = kind {
            let root_doomed = doomed.iter().any(|d| d == chain_root);
            let orphan_and_old =
                !fulls.contains(&chain_root.as_str()) && made.is_some_and(|t| t < cutoff);
            if root_doomed || orphan_and_old {
                doomed.push(id.clone());
            }
        }
    }
    doomed
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A complete full backup.
    Complete,
    /// A complete incremental of the chain starting at `chain_root`.
    Link {
        chain_root: String,
    },
    Damaged,
    Incomplete,
}

/// What an S3 store's refusal says: the bucket keeps backups, and how to delete one on purpose.
fn bucket_rules_reason() -> String {
    "its lifecycle rules and Object Lock keep backups for the years the retention policy asks (daily fulls 7 years), and deleting here would only leave delete markers that expire the old versions for good; to delete particular backups on purpose, name them: prune --backup ID … --override-bucket-retention".into()
}

/// Applies `policy` to a local folder. An S3 store is refused: its bucket rules govern
/// retention (see [`prune_named`] to delete chosen backups there).
pub async fn prune(
    store: &dyn ObjectStore,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<PruneReport> {
    if store.retention_by_bucket_rules() {
        return Err(Error::PruneRefused {
            store: store.to_string(),
            reason: bucket_rules_reason(),
        });
    }
    let entries = catalog::entries(store).await?;
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            let kind = match &e.state {
                EntryState::Complete(m) if m.kind == BackupKind::Incremental => Kind::Link {
                    chain_root: m.chain_root.clone().unwrap_or_default(),
                },
                EntryState::Complete(_) => Kind::Complete,
                EntryState::Damaged(_) => Kind::Damaged,
                EntryState::Incomplete => Kind::Incomplete,
            };
            (e.id.clone(), crate::layout::id_time(&e.id), kind)
        })
        .collect();
    let doomed = plan(policy, now, &summary);
    let mut report = delete(store, &entries, &doomed).await?;
    report.key_states_deleted = prune_key_states(store, &entries).await?;
    // Binlog segments older than every kept full backup restore nothing any more.
    let oldest_kept_full = entries
        .iter()
        .filter(|e| report.kept.contains(&e.id))
        .filter_map(|e| match &e.state {
            EntryState::Complete(m) if m.kind == BackupKind::Full => Some(m),
            _ => None,
        })
        .min_by(|a, b| a.backup_id.cmp(&b.backup_id));
    if let Some(full) = oldest_kept_full {
        if let (Some(file), Some(pos), true, Some(time)) = (
            &full.snapshot.binlog_file,
            full.snapshot.binlog_position,
            full.snapshot.position_is_exact,
            crate::catalog::snapshot_time(full),
        ) {
            let position = crate::binlog::Position::new(file.clone(), pos);
            report.binlog_segments_deleted =
                crate::binlog::segment::prune_before(store, &position, time).await?;
        }
    }
    Ok(report)
}

/// Deletes the key states of every complete backup older than the newest complete full one:
/// each later incremental continues that full backup's chain, so nothing reads them again.
/// A run still writing (no manifest yet) keeps its own, whatever its age.
async fn prune_key_states(
    store: &dyn ObjectStore,
    entries: &[catalog::CatalogEntry],
) -> Result<Vec<String>> {
    let complete = |e: &&catalog::CatalogEntry| matches!(e.state, EntryState::Complete(_));
    let Some(newest_full) = entries
        .iter()
        .filter(complete)
        .filter(|e| e.kind == BackupKind::Full)
        .map(|e| e.id.as_str())
        .max()
    else {
        return Ok(Vec::new());
    };
    let listed = store.list(crate::layout::KEY_STATES_PREFIX).await?;
    let mut deleted = Vec::new();
    for entry in entries
        .iter()
        .filter(complete)
        .filter(|e| e.id.as_str() < newest_full)
    {
        let prefix = crate::layout::key_state_prefix(&entry.id);
        if listed.iter().any(|o| o.key.starts_with(&prefix)) {
            store.delete_prefix(&prefix).await?;
            deleted.push(entry.id.clone());
        }
    }
    if !deleted.is_empty() {
        tracing::info!(
            backups = deleted.len(),
            newest_full,
            "key states of backups before the newest full backup removed"
        );
    }
    Ok(deleted)
}

/// Deletes exactly the backups named (and the incrementals whose chain starts at a named full
/// backup, which restore nothing without it). In an S3 store only with `override_bucket_rules`:
/// the operator's explicit decision to undo what the bucket's rules keep.
pub async fn prune_named(
    store: &dyn ObjectStore,
    ids: &[String],
    override_bucket_rules: bool,
) -> Result<PruneReport> {
    if store.retention_by_bucket_rules() && !override_bucket_rules {
        return Err(Error::PruneRefused {
            store: store.to_string(),
            reason: bucket_rules_reason(),
        });
    }
    let entries = catalog::entries(store).await?;
    if let Some(missing) = ids.iter().find(|id| !entries.iter().any(|e| &e.id == *id)) {
        return Err(Error::BackupNotFound {
            id: missing.clone(),
            store: store.to_string(),
        });
    }
    let mut doomed: Vec<String> = ids.to_vec();
    for entry in &entries {
        if let EntryState::Complete(m) = &entry.state {
            if m.kind == BackupKind::Incremental
                && m.chain_root.as_ref().is_some_and(|root| ids.contains(root))
                && !doomed.contains(&entry.id)
            {
                doomed.push(entry.id.clone());
            }
        }
    }
    delete(store, &entries, &doomed).await
}

async fn delete(
    store: &dyn ObjectStore,
    entries: &[catalog::CatalogEntry],
    doomed: &[String],
) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    // Out of the catalog first, so no reader plans with a backup that is about to go.
    let listed: Vec<String> = entries
        .iter()
        .filter(|e| doomed.contains(&e.id))
        .map(|e| e.id.clone())
        .collect();
    catalog::index::forget(store, &listed).await?;
    for entry in entries {
        if !doomed.contains(&entry.id) {
            report.kept.push(entry.id.clone());
            continue;
        }
        // The manifest goes first: from that moment no command treats the rest as a backup.
        let prefix = catalog::prefix_for(entry.kind, &entry.id);
        store
            .delete(&format!("{prefix}{}", crate::layout::MANIFEST_NAME))
            .await?;
        store.delete_prefix(&prefix).await?;
        store
            .delete_prefix(&crate::layout::key_state_prefix(&entry.id))
            .await?;
        tracing::info!(backup_id = %entry.id, "removed by retention");
        report.deleted.push(entry.id.clone());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(n: u32) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap() + Duration::days(i64::from(n)))
    }

    #[test]
    fn keeps_recent_and_the_newest_few() {
        let now = day(100).unwrap();
        let policy = RetentionPolicy {
            keep_days: 30,
            keep_min: 2,
            incomplete_grace_hours: 24,
        };
        let entries = vec![
            ("d90".to_string(), day(90), Kind::Complete),
            ("d50".to_string(), day(50), Kind::Complete),
            ("d40".to_string(), day(40), Kind::Complete),
            ("d30".to_string(), day(30), Kind::Damaged),
            ("d20".to_string(), day(20), Kind::Complete),
            ("i99".to_string(), day(99), Kind::Incomplete),
            ("i10".to_string(), day(10), Kind::Incomplete),
        ];
        assert_eq!(plan(&policy, now, &entries), ["d40", "d20", "i10"]);
    }

    #[test]
    fn incrementals_go_with_their_full_backup() {
        let now = day(100).unwrap();
        let policy = RetentionPolicy {
            keep_days: 30,
            keep_min: 1,
            incomplete_grace_hours: 24,
        };
        let link = |root: &str| Kind::Link {
            chain_root: root.into(),
        };
        let entries = vec![
            ("i95".to_string(), day(95), link("d90")),
            ("d90".to_string(), day(90), Kind::Complete),
            ("i45".to_string(), day(45), link("d40")),
            ("d40".to_string(), day(40), Kind::Complete),
            ("i15".to_string(), day(15), link("gone")),
            ("i85".to_string(), day(85), link("gone")),
        ];
        assert_eq!(plan(&policy, now, &entries), ["d40", "i45", "i15"]);
    }

    #[test]
    fn never_deletes_below_the_minimum_even_if_all_are_old() {
        let now = day(400).unwrap();
        let policy = RetentionPolicy {
            keep_days: 30,
            keep_min: 7,
            incomplete_grace_hours: 24,
        };
        let entries: Vec<_> = (0..7)
            .map(|n| (format!("d{n}"), day(n), Kind::Complete))
            .collect();
        assert!(plan(&policy, now, &entries).is_empty());
    }
}

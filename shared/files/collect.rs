//! Retention of file snapshots, and garbage collection of the content no kept snapshot names.
//!
//! Snapshot manifests older than the policy go first (always keeping the newest `keep_min` of
//! each source). Content is then deleted only under the collection lock, only when no backup
//! holds its lock, and only when every remaining snapshot could be read: a damaged manifest
//! might name anything, so nothing is deleted until a person has looked at it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::lock::{holder_name, lock_for_collect, remove_expired_locks};
use super::snapshot::{blob_hash, list_snapshots, SnapshotRef, BLOBS_PREFIX};
use crate::error::Result;
use crate::retention::{self, Kind, RetentionPolicy};
use crate::store::ObjectStore;

#[derive(Debug, Default, Clone, Serialize)]
pub struct CollectReport {
    /// Snapshot manifests removed by the retention policy.
    pub pruned: Vec<String>,
    pub snapshots_kept: usize,
    pub blobs_deleted: u64,
    pub bytes_deleted: u64,
    pub blobs_kept: u64,
    pub expired_locks_removed: usize,
    /// Why content was not collected this time, if it was not.
    pub skipped: Option<String>,
}

/// Applies `policy` (if any) to every source's snapshots, then collects unreferenced content.
pub async fn prune_and_collect(
    store: Arc<dyn ObjectStore>,
    policy: Option<&RetentionPolicy>,
    now: DateTime<Utc>,
) -> Result<CollectReport> {
    let mut report = CollectReport::default();
    if let Some(policy) = policy {
        report.pruned = prune_snapshots(store.as_ref(), policy, now).await?;
    }
    let lock = match lock_for_collect(store.clone(), &holder_name("garbage collection")).await? {
        Ok(lock) => lock,
        Err(running) => {
            report.snapshots_kept = list_snapshots(store.as_ref(), None).await?.len();
            report.skipped = Some(format!(
                "a backup is running ({running}); content is collected on the next run"
            ));
            return Ok(report);
        }
    };
    let outcome = collect(store.as_ref(), &mut report, now).await;
    lock.release().await;
    outcome.map(|()| report)
}

async fn prune_snapshots(
    store: &dyn ObjectStore,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let mut by_source: BTreeMap<String, Vec<SnapshotRef>> = BTreeMap::new();
    for snapshot in list_snapshots(store, None).await? {
        by_source
            .entry(snapshot.source_name.clone())
            .or_default()
            .push(snapshot);
    }
    let mut pruned = Vec::new();
    for snapshots in by_source.values() {
        let mut states = Vec::with_capacity(snapshots.len());
        for snapshot in snapshots {
            // A snapshot that does not open is kept for a person to look at, and does not
            // count towards the ones that must stay.
            let kind = match snapshot.load(store).await {
                Ok(_) => Kind::Complete,
                Err(e) => {
                    tracing::warn!(key = %snapshot.key, "damaged snapshot kept: {e}");
                    Kind::Damaged
                }
            };
            states.push((snapshot.snapshot_id.clone(), snapshot.time(), kind));
        }
        for doomed in retention::plan(policy, now, &states) {
            if let Some(snapshot) = snapshots.iter().find(|s| s.snapshot_id == doomed) {
                store.delete(&snapshot.key).await?;
                pruned.push(snapshot.key.clone());
            }
        }
    }
    Ok(pruned)
}

async fn collect(
    store: &dyn ObjectStore,
    report: &mut CollectReport,
    now: DateTime<Utc>,
) -> Result<()> {
    report.expired_locks_removed = remove_expired_locks(store, now).await?;
    let snapshots = list_snapshots(store, None).await?;
    report.snapshots_kept = snapshots.len();
    let mut referenced: HashSet<String> = HashSet::new();
    for snapshot in &snapshots {
        match snapshot.load(store).await {
            Ok(loaded) => referenced.extend(loaded.entries.into_iter().filter_map(|e| e.sha256)),
            Err(e) => {
                report.skipped = Some(format!(
                    "snapshot {} cannot be read ({e}); no content deleted until it is repaired or removed",
                    snapshot.key
                ));
                return Ok(());
            }
        }
    }
    for blob in store.list(BLOBS_PREFIX).await? {
        let Some(hash) = blob_hash(&blob.key) else {
            continue;
        };
        if referenced.contains(hash) {
            report.blobs_kept += 1;
        } else {
            store.delete(&blob.key).await?;
            report.blobs_deleted += 1;
            report.bytes_deleted += blob.size;
        }
    }
    Ok(())
}

//! Which backups a store holds. A backup exists only if its manifest does: a folder without one
//! is an unfinished or failed run, never a backup.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::{BackupKind, Manifest, MANIFEST_NAME};
use crate::store::{ObjectInfo, ObjectStore};

pub const DAILY_PREFIX: &str = "database/daily/";
pub const INCREMENTAL_PREFIX: &str = "database/incremental/";
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

/// Where a backup of `kind` keeps its files.
pub fn prefix_for(kind: BackupKind, id: &str) -> String {
    match kind {
        BackupKind::Full => backup_prefix(id),
        BackupKind::Incremental => format!("{INCREMENTAL_PREFIX}{id}/"),
    }
}

pub fn manifest_key(id: &str) -> String {
    format!("{}{MANIFEST_NAME}", backup_prefix(id))
}

#[derive(Debug)]
pub enum EntryState {
    Complete(Box<Manifest>),
    /// A manifest exists but does not open: damaged or altered. Never restored from silently.
    Damaged(Error),
    /// No manifest: a run that is still going, failed, or was killed.
    Incomplete,
}

#[derive(Debug)]
pub struct CatalogEntry {
    pub id: String,
    pub kind: BackupKind,
    pub files: Vec<ObjectInfo>,
    pub state: EntryState,
}

impl CatalogEntry {
    pub fn manifest(&self) -> Option<&Manifest> {
        match &self.state {
            EntryState::Complete(m) => Some(m),
            _ => None,
        }
    }
}

/// Every backup folder in the store (full and incremental), newest first.
pub async fn entries(store: &dyn ObjectStore) -> Result<Vec<CatalogEntry>> {
    let mut by_id: BTreeMap<String, (BackupKind, Vec<ObjectInfo>)> = BTreeMap::new();
    for (kind, prefix) in [
        (BackupKind::Full, DAILY_PREFIX),
        (BackupKind::Incremental, INCREMENTAL_PREFIX),
    ] {
        for object in store.list(prefix).await? {
            let rest = &object.key[prefix.len()..];
            if let Some((id, _)) = rest.split_once('/') {
                by_id
                    .entry(id.to_string())
                    .or_insert_with(|| (kind, Vec::new()))
                    .1
                    .push(object);
            }
        }
    }
    let mut entries = Vec::with_capacity(by_id.len());
    for (id, (kind, files)) in by_id.into_iter().rev() {
        let key = format!("{}{MANIFEST_NAME}", prefix_for(kind, &id));
        let state = if files.iter().any(|f| f.key == key) {
            match store.get(&key).await? {
                Some(bytes) => match Manifest::open(&key, &bytes) {
                    Ok(m) if m.backup_id == id && m.kind == kind => {
                        EntryState::Complete(Box::new(m))
                    }
                    Ok(m) => EntryState::Damaged(Error::InvalidManifest {
                        key: key.clone(),
                        reason: format!(
                            "it names {} backup {:?}, not {} backup {id:?}",
                            m.kind.label(),
                            m.backup_id,
                            kind.label()
                        ),
                    }),
                    Err(e) => EntryState::Damaged(e),
                },
                None => EntryState::Incomplete,
            }
        } else {
            EntryState::Incomplete
        };
        entries.push(CatalogEntry {
            id,
            kind,
            files,
            state,
        });
    }
    Ok(entries)
}

/// The manifest of `latest` (the newest backup with a manifest) or of a named backup id.
/// A damaged manifest is an error, never a reason to fall back to an older backup silently.
pub async fn resolve(store: &dyn ObjectStore, which: &str) -> Result<Manifest> {
    store.check().await?;
    let mut entries = entries(store).await?;
    select(&mut entries, which, &store.to_string())
}

/// [`resolve`] over entries already listed (`store` names the store in errors).
pub fn select(entries: &mut [CatalogEntry], which: &str, store: &str) -> Result<Manifest> {
    let position = if which == "latest" {
        entries
            .iter()
            .position(|e| !matches!(e.state, EntryState::Incomplete))
            .ok_or_else(|| Error::NoBackups(store.to_string()))?
    } else {
        entries
            .iter()
            .position(|e| e.id == which && !matches!(e.state, EntryState::Incomplete))
            .ok_or_else(|| Error::BackupNotFound {
                id: which.to_string(),
                store: store.to_string(),
            })?
    };
    let entry = &mut entries[position];
    match std::mem::replace(&mut entry.state, EntryState::Incomplete) {
        EntryState::Complete(m) => {
            let manifest = (*m).clone();
            entry.state = EntryState::Complete(m);
            Ok(manifest)
        }
        EntryState::Damaged(e) => Err(e),
        EntryState::Incomplete => Err(Error::NoBackups(store.to_string())),
    }
}

/// One line of `toc-backup list`.
#[derive(Debug, Serialize)]
pub struct ListedBackup {
    pub id: String,
    pub status: &'static str,
    pub kind: &'static str,
    /// Incrementals: the full backup their chain starts at, and the link they follow.
    pub chain_root: Option<String>,
    pub parent: Option<String>,
    pub label: Option<String>,
    pub database: Option<String>,
    pub finished_at: Option<String>,
    pub tables: Option<usize>,
    pub rows: Option<u64>,
    pub bytes: u64,
    pub files: usize,
    pub problem: Option<String>,
}

pub async fn list(store: &dyn ObjectStore, include_incomplete: bool) -> Result<Vec<ListedBackup>> {
    store.check().await?;
    Ok(entries(store)
        .await?
        .into_iter()
        .filter(|e| include_incomplete || !matches!(e.state, EntryState::Incomplete))
        .map(|e| {
            let bytes = e.files.iter().map(|f| f.size).sum();
            let files = e.files.len();
            let kind = e.kind.label();
            match e.state {
                EntryState::Complete(m) => ListedBackup {
                    id: e.id,
                    status: "complete",
                    kind,
                    chain_root: m.chain_root.clone(),
                    parent: m.parent.clone(),
                    label: m.label.clone(),
                    database: Some(m.database.clone()),
                    finished_at: Some(m.finished_at.clone()),
                    tables: Some(m.tables.len()),
                    rows: Some(m.total_rows()),
                    bytes,
                    files,
                    problem: None,
                },
                EntryState::Damaged(err) => ListedBackup {
                    id: e.id,
                    status: "damaged",
                    kind,
                    chain_root: None,
                    parent: None,
                    label: None,
                    database: None,
                    finished_at: None,
                    tables: None,
                    rows: None,
                    bytes,
                    files,
                    problem: Some(err.to_string()),
                },
                EntryState::Incomplete => ListedBackup {
                    id: e.id,
                    status: "incomplete",
                    kind,
                    chain_root: None,
                    parent: None,
                    label: None,
                    database: None,
                    finished_at: None,
                    tables: None,
                    rows: None,
                    bytes,
                    files,
                    problem: Some("no manifest: unfinished or failed run".into()),
                },
            }
        })
        .collect())
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
}

//! Which backups a store holds. A backup exists only if its manifest does: a folder without one
//! is an unfinished or failed run, never a backup.

pub mod index;
pub mod restore_tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::layout::{
    backup_prefix, id_time, incremental_prefix, CATALOG_PREFIX, DAILY_PREFIX, DATABASE_PREFIX,
    INCREMENTAL_PREFIX, MANIFEST_NAME, SEGMENT_PREFIX,
};
use crate::manifest::{BackupKind, Manifest};
use crate::store::{ObjectInfo, ObjectStore};
use index::IndexEntry;

/// The moment a catalog entry's snapshot was taken, by the database's clock (its id's time
/// for an entry without one).
pub fn entry_time(entry: &index::IndexEntry) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&entry.snapshot.database_time)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| id_time(&entry.id))
}

/// The moment a backup's snapshot was taken, by the database's clock.
pub fn snapshot_time(manifest: &Manifest) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&manifest.snapshot.database_time)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| id_time(&manifest.backup_id))
}

/// Where a backup of `kind` keeps its files.
pub fn prefix_for(kind: BackupKind, id: &str) -> String {
    match kind {
        BackupKind::Full => backup_prefix(id),
        BackupKind::Incremental => incremental_prefix(id),
    }
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
    /// The stored manifest's SHA-256 and size, when it opened.
    pub manifest_digest: Option<(String, u64)>,
}

impl CatalogEntry {
    pub fn manifest(&self) -> Option<&Manifest> {
        match &self.state {
            EntryState::Complete(m) => Some(m),
            _ => None,
        }
    }
}

/// Every backup folder in the store (full and incremental), newest first: one listing of the
/// whole history and one read per manifest. Readers use [`load`], which reads the index.
pub async fn entries(store: &dyn ObjectStore) -> Result<Vec<CatalogEntry>> {
    let mut objects = Vec::new();
    for prefix in [DAILY_PREFIX, INCREMENTAL_PREFIX] {
        objects.extend(store.list(prefix).await?);
    }
    open_folders(store, objects).await
}

/// Groups listed objects into backup folders and opens each folder's manifest, newest first.
async fn open_folders(
    store: &dyn ObjectStore,
    objects: Vec<ObjectInfo>,
) -> Result<Vec<CatalogEntry>> {
    let mut by_id: BTreeMap<String, (BackupKind, Vec<ObjectInfo>)> = BTreeMap::new();
    for object in objects {
        let (kind, rest) = if let Some(rest) = object.key.strip_prefix(DAILY_PREFIX) {
            (BackupKind::Full, rest)
        } else if let Some(rest) = object.key.strip_prefix(INCREMENTAL_PREFIX) {
            (BackupKind::Incremental, rest)
        } else {
            continue;
        };
        if let Some((id, _)) = rest.split_once('/') {
            by_id
                .entry(id.to_string())
                .or_insert_with(|| (kind, Vec::new()))
                .1
                .push(object);
        }
    }
    let mut entries = Vec::with_capacity(by_id.len());
    for (id, (kind, files)) in by_id.into_iter().rev() {
        let key = format!("{}{MANIFEST_NAME}", prefix_for(kind, &id));
        let mut manifest_digest = None;
        let state = if files.iter().any(|f| f.key == key) {
            match store.get(&key).await? {
                Some(bytes) => match open_sealed(&key, &bytes, kind, &id) {
                    Ok(m) => {
                        manifest_digest =
                            Some((hex::encode(Sha256::digest(&bytes)), bytes.len() as u64));
                        EntryState::Complete(Box::new(m))
                    }
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
            manifest_digest,
        });
    }
    Ok(entries)
}

/// Index entries for every complete backup, from the manifests (the index's rebuild).
pub async fn scan_complete(store: &dyn ObjectStore) -> Result<Vec<IndexEntry>> {
    Ok(entries(store)
        .await?
        .iter()
        .filter_map(index_entry)
        .collect())
}

fn index_entry(entry: &CatalogEntry) -> Option<IndexEntry> {
    match (&entry.state, &entry.manifest_digest) {
        (EntryState::Complete(m), Some((sha, size))) => {
            Some(IndexEntry::from_sealed(m, sha, *size))
        }
        _ => None,
    }
}

/// Opened folders as index entries for the sealed ones, and the others as they are.
fn split(folders: Vec<CatalogEntry>) -> (Vec<IndexEntry>, Vec<CatalogEntry>) {
    let mut complete = Vec::new();
    let mut unsealed = Vec::new();
    for entry in folders {
        match index_entry(&entry) {
            Some(sealed) => complete.push(sealed),
            None => unsealed.push(entry),
        }
    }
    (complete, unsealed)
}

/// Where a reader's view of the store came from.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogSource {
    Index,
    /// Every manifest was read, because the index was missing or damaged (the reason).
    Scan(String),
}

/// The store's backups as readers see them: complete backups from the index (plus any sealed
/// after it was last written), and the folders newer than the index that have no sound manifest.
#[derive(Debug)]
pub struct Catalog {
    /// Complete backups, newest first.
    pub complete: Vec<IndexEntry>,
    /// Folders without a sound manifest (runs going, failed or killed; damaged manifests),
    /// newest first: those newer than the index, or all of them after a scan.
    pub unsealed: Vec<CatalogEntry>,
    pub source: CatalogSource,
}

/// Reads the catalog: the index, then only what was written after it (one listing per kind
/// that starts after the index's newest backup). Without a usable index, every manifest.
pub async fn load(store: &dyn ObjectStore) -> Result<Catalog> {
    let (mut complete, source) = match index::read(store).await {
        Ok(Some((entries, _))) => (entries, CatalogSource::Index),
        Ok(None) => return scan(store, "the store has no catalog index yet".into()).await,
        Err(e) => {
            tracing::warn!(
                "{e}; reading every manifest instead (`toc-backup catalog rebuild` repairs it)"
            );
            return scan(store, e.to_string()).await;
        }
    };
    let mut newer = Vec::new();
    for (kind, prefix) in [
        (BackupKind::Full, DAILY_PREFIX),
        (BackupKind::Incremental, INCREMENTAL_PREFIX),
    ] {
        let objects = match complete.iter().find(|e| e.kind == kind) {
            // Keys of later ids sort after `<id>0`; the newest id's own files (`<id>/…`) before.
            Some(newest) => {
                store
                    .list_after(prefix, &format!("{prefix}{}0", newest.id))
                    .await?
            }
            None => store.list(prefix).await?,
        };
        newer.extend(objects);
    }
    let (sealed_since, unsealed) = split(open_folders(store, newer).await?);
    complete.extend(sealed_since);
    complete.sort_by(|a, b| b.id.cmp(&a.id));
    complete.dedup_by(|a, b| a.id == b.id);
    Ok(Catalog {
        complete,
        unsealed,
        source,
    })
}

async fn scan(store: &dyn ObjectStore, reason: String) -> Result<Catalog> {
    let (complete, unsealed) = split(entries(store).await?);
    Ok(Catalog {
        complete,
        unsealed,
        source: CatalogSource::Scan(reason),
    })
}

impl Catalog {
    pub fn get(&self, id: &str) -> Option<&IndexEntry> {
        self.complete.iter().find(|e| e.id == id)
    }

    /// Folders whose manifest exists but does not open as their backup, newest first.
    pub fn damaged(&self) -> impl Iterator<Item = (&CatalogEntry, &Error)> {
        self.unsealed.iter().filter_map(|e| match &e.state {
            EntryState::Damaged(err) => Some((e, err)),
            _ => None,
        })
    }

    /// The entry `which` names (`latest` or an id). A damaged manifest newer than every
    /// complete backup is an error, never a reason to fall back to an older backup silently.
    pub fn select(&self, which: &str, store: &str) -> Result<&IndexEntry> {
        let damaged = self
            .damaged()
            .find(|(e, _)| which == "latest" || e.id == which);
        if which == "latest" {
            let newest = self.complete.first();
            if let Some((entry, err)) = damaged {
                if newest.is_none_or(|n| entry.id > n.id) {
                    return Err(copy_error(err));
                }
            }
            return newest.ok_or_else(|| Error::NoBackups(store.to_string()));
        }
        if let Some(entry) = self.get(which) {
            return Ok(entry);
        }
        if let Some((_, err)) = damaged {
            return Err(copy_error(err));
        }
        Err(Error::BackupNotFound {
            id: which.to_string(),
            store: store.to_string(),
        })
    }
}

/// Errors are not Clone; the damaged-manifest ones this module makes are rebuilt as the same.
fn copy_error(error: &Error) -> Error {
    match error {
        Error::InvalidManifest { key, reason } => Error::InvalidManifest {
            key: key.clone(),
            reason: reason.clone(),
        },
        other => Error::InvalidManifest {
            key: String::new(),
            reason: other.to_string(),
        },
    }
}

/// Opens the manifest stored at `key`, which must describe the `kind` backup `id` that lives
/// there (a manifest copied from another folder is damage, not that backup).
fn open_sealed(key: &str, bytes: &[u8], kind: BackupKind, id: &str) -> Result<Manifest> {
    let manifest = Manifest::open(key, bytes)?;
    if manifest.backup_id != id || manifest.kind != kind {
        return Err(Error::InvalidManifest {
            key: key.to_string(),
            reason: format!(
                "it names {} backup {:?}, not {} backup {id:?}",
                manifest.kind.label(),
                manifest.backup_id,
                kind.label()
            ),
        });
    }
    Ok(manifest)
}

/// A backup the index does not list, read straight from its manifest (as an incremental, then
/// as a full backup); `None` when neither opens as that backup.
pub async fn sealed_manifest(store: &dyn ObjectStore, id: &str) -> Option<(Manifest, Vec<u8>)> {
    for kind in [BackupKind::Incremental, BackupKind::Full] {
        let key = format!("{}{MANIFEST_NAME}", prefix_for(kind, id));
        if let Ok(Some(bytes)) = store.get(&key).await {
            if let Ok(m) = open_sealed(&key, &bytes, kind, id) {
                return Some((m, bytes));
            }
        }
    }
    None
}

/// A complete backup's manifest, read and checked against the backup it must describe.
pub async fn manifest(store: &dyn ObjectStore, entry: &IndexEntry) -> Result<Manifest> {
    let key = format!("{}{MANIFEST_NAME}", prefix_for(entry.kind, &entry.id));
    let bytes = store
        .get(&key)
        .await?
        .ok_or_else(|| Error::InvalidManifest {
            key: key.clone(),
            reason: "the catalog lists this backup as complete but its manifest is gone".into(),
        })?;
    let manifest = open_sealed(&key, &bytes, entry.kind, &entry.id)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    if sha != entry.manifest_sha256 {
        tracing::warn!(
            manifest = %key,
            "the manifest changed since the catalog recorded it (SHA-256 {sha}, recorded {}); it still verifies, so it is used; `toc-backup catalog rebuild` records it anew",
            entry.manifest_sha256
        );
    }
    Ok(manifest)
}

/// The manifest of `latest` (the newest backup with a manifest) or of a named backup id.
/// A damaged manifest is an error, never a reason to fall back to an older backup silently.
pub async fn resolve(store: &dyn ObjectStore, which: &str) -> Result<Manifest> {
    store.check().await?;
    let catalog = load(store).await?;
    let entry = catalog.select(which, &store.to_string())?;
    manifest(store, entry).await
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
    /// Where the data files are now by the store's lifecycle and their age (`STANDARD` in a
    /// folder); `restore` and `retrieve` check each file itself.
    pub storage_class: Option<String>,
    pub problem: Option<String>,
}

/// The backups in the store from the catalog (no manifest is read); `include_incomplete` adds
/// the runs without a sound manifest, which takes a listing of the whole store.
pub async fn list(store: &dyn ObjectStore, include_incomplete: bool) -> Result<Vec<ListedBackup>> {
    store.check().await?;
    let (complete, unsealed) = if include_incomplete {
        let scanned = scan(store, "every folder was asked for".into()).await?;
        (scanned.complete, scanned.unsealed)
    } else {
        (load(store).await?.complete, Vec::new())
    };
    let mut transitions = BTreeMap::new();
    for prefix in [DAILY_PREFIX, INCREMENTAL_PREFIX] {
        transitions.insert(prefix, store.data_transitions(prefix).await?);
    }
    let now = Utc::now();
    let storage_class = |e: &IndexEntry| -> String {
        let prefix = match e.kind {
            BackupKind::Full => DAILY_PREFIX,
            BackupKind::Incremental => INCREMENTAL_PREFIX,
        };
        let age_days = id_time(&e.id).map(|t| (now - t).num_days()).unwrap_or(0);
        transitions
            .get(prefix)
            .and_then(|moves| {
                moves
                    .iter()
                    .rfind(|(days, _)| i64::from(*days) <= age_days)
                    .map(|(_, class)| class.clone())
            })
            .unwrap_or_else(|| e.storage_class.clone())
    };
    let mut listed: Vec<ListedBackup> = complete
        .into_iter()
        .map(|e| ListedBackup {
            storage_class: Some(storage_class(&e)),
            status: "complete",
            kind: e.kind.label(),
            rows: Some(e.rows()),
            tables: Some(e.tables.len()),
            database: Some(e.database),
            finished_at: Some(e.finished_at),
            chain_root: e.chain_root,
            parent: e.parent,
            label: e.label,
            bytes: e.bytes,
            files: e.files,
            problem: None,
            id: e.id,
        })
        .collect();
    for e in unsealed {
        let bytes = e.files.iter().map(|f| f.size).sum();
        let (status, problem) = match e.state {
            EntryState::Damaged(err) => ("damaged", err.to_string()),
            _ => (
                "incomplete",
                "no manifest: unfinished or failed run".to_string(),
            ),
        };
        listed.push(ListedBackup {
            id: e.id,
            status,
            kind: e.kind.label(),
            chain_root: None,
            parent: None,
            label: None,
            database: None,
            finished_at: None,
            tables: None,
            rows: None,
            bytes,
            files: e.files.len(),
            storage_class: None,
            problem: Some(problem),
        });
    }
    listed.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(listed)
}

/// Refuses, with the reason, a location that holds no backups: a mistyped path, or a backup
/// folder inside a store given instead of the store's root (which is then named). For the
/// commands that read backups (list, verify, restore); writers start new stores.
pub async fn require_backups(store: &dyn ObjectStore) -> Result<()> {
    store.check().await?;
    for prefix in [CATALOG_PREFIX, DATABASE_PREFIX] {
        if !store.list_after(prefix, prefix).await?.is_empty() {
            return Ok(());
        }
    }
    let location = store.to_string();
    if store.get(MANIFEST_NAME).await?.is_some() {
        let trimmed = location.trim_end_matches('/');
        let root = [DAILY_PREFIX, INCREMENTAL_PREFIX, SEGMENT_PREFIX]
            .iter()
            .find_map(|prefix| {
                let (root, _) =
                    trimmed.rsplit_once(&format!("/{}", prefix.trim_end_matches('/')))?;
                Some(root.to_string())
            })
            .unwrap_or_else(|| "the folder above database/".into());
        return Err(Error::InvalidStore {
            location,
            reason: format!(
                "it is one backup's folder inside a store (it holds {MANIFEST_NAME}); pass the store's root: --store {root}"
            ),
        });
    }
    Err(Error::NoBackups(format!(
        "{location}: nothing under database/ or catalog/ there; pass the store's root, the folder (or s3:// prefix) that holds database/"
    )))
}

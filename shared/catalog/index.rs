//! The catalog index: one small object naming every complete backup with what planning needs
//! (kind, chain, times, snapshot position, per-table rows and bytes), so that finding the latest
//! backup, a chain or a point in time reads the same few objects on day 1 and on day 2,500,
//! instead of every manifest ever written.
//!
//! The manifests stay the truth: the index is updated after a manifest is sealed, can be
//! rebuilt from them (`toc-backup catalog rebuild`), carries its own checksum, and readers that
//! find it missing or damaged fall back to reading every manifest. It lives under `catalog/`,
//! which the lifecycle never moves out of S3 Standard. Writers that race (a dump, an
//! incremental) never lose each other's entry: each update is a conditional write of the
//! version it read (S3 If-Match; a file lock on a folder), retried on conflict.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::manifest::{BackupKind, Manifest, SnapshotPosition};
use crate::store::ObjectStore;

pub use crate::layout::INDEX_KEY;
const FORMAT: u32 = 1;
/// Conflicting writers retry this many times; each try is a read and a write of one object.
const ATTEMPTS: u32 = 16;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableFigures {
    pub rows: u64,
    pub bytes: u64,
}

/// One complete backup as the index knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexEntry {
    pub id: String,
    pub kind: BackupKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_root: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub database: String,
    pub started_at: String,
    pub finished_at: String,
    pub snapshot: SnapshotPosition,
    pub tables: BTreeMap<String, TableFigures>,
    /// Every file of the backup, its manifest included.
    pub bytes: u64,
    pub files: usize,
    pub manifest_sha256: String,
    /// The storage class the files were written in; the bucket's lifecycle moves them later.
    pub storage_class: String,
}

impl IndexEntry {
    /// The entry for a sealed manifest, from the manifest's stored bytes.
    pub fn from_manifest(manifest: &Manifest, manifest_bytes: &[u8]) -> IndexEntry {
        IndexEntry::from_sealed(
            manifest,
            &hex::encode(Sha256::digest(manifest_bytes)),
            manifest_bytes.len() as u64,
        )
    }

    /// The same from the stored manifest's SHA-256 and size.
    pub fn from_sealed(
        manifest: &Manifest,
        manifest_sha256: &str,
        manifest_size: u64,
    ) -> IndexEntry {
        let mut tables: BTreeMap<String, TableFigures> = manifest
            .tables
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    TableFigures {
                        rows: t.rows,
                        bytes: 0,
                    },
                )
            })
            .collect();
        for file in manifest.kept_files() {
            if let Some(figures) = file.table.as_ref().and_then(|t| tables.get_mut(t)) {
                figures.bytes += file.bytes;
            }
        }
        IndexEntry {
            id: manifest.backup_id.clone(),
            kind: manifest.kind,
            parent: manifest.parent.clone(),
            chain_root: manifest.chain_root.clone(),
            label: manifest.label.clone(),
            database: manifest.database.clone(),
            started_at: manifest.started_at.clone(),
            finished_at: manifest.finished_at.clone(),
            snapshot: manifest.snapshot.clone(),
            tables,
            bytes: manifest.total_bytes() + manifest_size,
            files: manifest.kept_files().count() + 1,
            manifest_sha256: manifest_sha256.to_string(),
            storage_class: "STANDARD".into(),
        }
    }

    pub fn rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }
}

#[derive(Serialize, Deserialize)]
struct Document {
    format: u32,
    updated_at: String,
    count: usize,
    /// SHA-256 of `entries` exactly as stored.
    entries_sha256: String,
    entries: Box<RawValue>,
}

fn damaged(reason: impl Into<String>) -> Error {
    Error::InvalidCatalog {
        key: INDEX_KEY.into(),
        reason: reason.into(),
    }
}

/// The stored form: gzip of a JSON document whose entries (newest first) carry a checksum.
pub fn encode(entries: &[IndexEntry]) -> Result<Vec<u8>> {
    let json = serde_json::to_string(entries).map_err(|e| damaged(e.to_string()))?;
    let document = Document {
        format: FORMAT,
        updated_at: chrono::Utc::now().to_rfc3339(),
        count: entries.len(),
        entries_sha256: hex::encode(Sha256::digest(json.as_bytes())),
        entries: RawValue::from_string(json).map_err(|e| damaged(e.to_string()))?,
    };
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    serde_json::to_writer(&mut encoder, &document).map_err(|e| damaged(e.to_string()))?;
    encoder.finish().map_err(|e| damaged(e.to_string()))
}

/// Opens a stored index, checking its checksum and count.
pub fn decode(bytes: &[u8]) -> Result<Vec<IndexEntry>> {
    let mut json = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut json)
        .map_err(|e| damaged(format!("it is not gzip: {e}")))?;
    let document: Document = serde_json::from_slice(&json)
        .map_err(|e| damaged(format!("it is not a catalog index: {e}")))?;
    if document.format != FORMAT {
        return Err(damaged(format!(
            "format {} is not {FORMAT}, the one this version reads",
            document.format
        )));
    }
    let actual = hex::encode(Sha256::digest(document.entries.get().as_bytes()));
    if actual != document.entries_sha256 {
        return Err(damaged(format!(
            "its entries hash to {actual}, not the recorded {}",
            document.entries_sha256
        )));
    }
    let entries: Vec<IndexEntry> = serde_json::from_str(document.entries.get())
        .map_err(|e| damaged(format!("an entry does not parse: {e}")))?;
    if entries.len() != document.count {
        return Err(damaged(format!(
            "it holds {} entries, not the recorded {}",
            entries.len(),
            document.count
        )));
    }
    Ok(entries)
}

/// The stored index and its version; `None` when the store has none yet.
pub async fn read(store: &dyn ObjectStore) -> Result<Option<(Vec<IndexEntry>, String)>> {
    match store.get_versioned(INDEX_KEY).await? {
        Some((bytes, version)) => Ok(Some((decode(&bytes)?, version))),
        None => Ok(None),
    }
}

/// Applies `change` to the index and writes it back only over the version it read, retrying
/// when another writer got there first. A missing or damaged index is first rebuilt from
/// the manifests.
pub async fn update<F>(store: &dyn ObjectStore, mut change: F) -> Result<usize>
where
    F: FnMut(&mut Vec<IndexEntry>) + Send,
{
    let mut last_error = None;
    for attempt in 1..=ATTEMPTS {
        match try_update(store, &mut change).await {
            Ok(Some(count)) => return Ok(count),
            Ok(None) => {
                tracing::debug!(
                    attempt,
                    "the catalog index changed while updating it; again"
                );
            }
            // A store that fails now may answer in a moment (the SDK has retried already).
            Err(e @ (Error::S3 { .. } | Error::StoreIo { .. })) => {
                tracing::warn!(attempt, "updating the catalog index failed: {e}; again");
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
        // Exponential with full jitter: eight writers on a loaded store, paused a fixed step
        // apart, let one lose every one of its tries (CI lost an entry so).
        let ceiling = 25u64 << attempt.min(6);
        let pause = 10 + rand::random::<u64>() % ceiling;
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    Err(last_error.unwrap_or_else(|| {
        damaged(format!(
            "it kept changing under {ATTEMPTS} attempts to update it; run `toc-backup catalog rebuild`"
        ))
    }))
}

/// One read, change and conditional write; `None` when another writer got there first.
async fn try_update<F>(store: &dyn ObjectStore, change: &mut F) -> Result<Option<usize>>
where
    F: FnMut(&mut Vec<IndexEntry>) + Send,
{
    let (mut entries, version) = match store.get_versioned(INDEX_KEY).await? {
        Some((bytes, version)) => match decode(&bytes) {
            Ok(entries) => (entries, Some(version)),
            Err(e) => {
                tracing::warn!("{e}; rebuilding it from the manifests");
                (super::scan_complete(store).await?, Some(version))
            }
        },
        None => (super::scan_complete(store).await?, None),
    };
    change(&mut entries);
    entries.sort_by(|a, b| b.id.cmp(&a.id));
    entries.dedup_by(|a, b| a.id == b.id);
    let count = entries.len();
    let bytes = Bytes::from(encode(&entries)?);
    Ok(store
        .put_if(INDEX_KEY, bytes, version.as_deref())
        .await?
        .then_some(count))
}

/// Adds (or refreshes) a sealed backup's entry. The backup is complete whatever happens here:
/// a failure is logged, and readers still find the backup (they list what is newer than the
/// index) until the next writer or `catalog rebuild` adds it.
pub async fn record(store: &dyn ObjectStore, manifest: &Manifest, manifest_bytes: &[u8]) {
    let mut added = vec![IndexEntry::from_manifest(manifest, manifest_bytes)];
    // An earlier link whose own update was lost (a writer killed between its manifest and the
    // index) is added too, so the chain stays whole in the index.
    added.extend(missing_links(store, manifest).await);
    let outcome = update(store, |entries| {
        entries.retain(|e| !added.iter().any(|a| a.id == e.id));
        entries.extend(added.iter().cloned());
    })
    .await;
    if let Err(e) = outcome {
        tracing::warn!(
            backup = %manifest.backup_id,
            "backup complete, but the catalog index was not updated: {e}"
        );
    }
}

/// The links before `manifest` in its chain that the index lacks (read from their manifests);
/// empty when the index cannot be read now.
async fn missing_links(store: &dyn ObjectStore, manifest: &Manifest) -> Vec<IndexEntry> {
    if manifest.parent.is_none() {
        return Vec::new();
    }
    let Ok(Some((entries, _))) = read(store).await else {
        return Vec::new();
    };
    // Up the chain to its full backup: indexed links through their entries, the others by
    // reading their manifests.
    let mut found = Vec::new();
    let mut parent = manifest.parent.clone();
    let mut steps = 0;
    while let Some(id) = parent.take() {
        steps += 1;
        if steps > 10_000 {
            break;
        }
        if let Some(entry) = entries.iter().find(|e| e.id == id) {
            parent = entry.parent.clone();
            continue;
        }
        let Some((link, bytes)) = super::sealed_manifest(store, &id).await else {
            break;
        };
        parent = link.parent.clone();
        found.push(IndexEntry::from_manifest(&link, &bytes));
    }
    found
}

/// Removes deleted backups from the index.
pub async fn forget(store: &dyn ObjectStore, ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    update(store, |entries| entries.retain(|e| !ids.contains(&e.id))).await?;
    Ok(())
}

/// What `catalog rebuild` did.
#[derive(Debug, Serialize)]
pub struct RebuildReport {
    pub store: String,
    pub entries: usize,
    pub previous: Option<usize>,
    pub previous_problem: Option<String>,
}

/// Writes the index afresh from every manifest in the store.
pub async fn rebuild(store: &dyn ObjectStore) -> Result<RebuildReport> {
    store.check().await?;
    let (previous, previous_problem) = match store.get_versioned(INDEX_KEY).await? {
        Some((bytes, _)) => match decode(&bytes) {
            Ok(entries) => (Some(entries.len()), None),
            Err(e) => (None, Some(e.to_string())),
        },
        None => (None, Some("there was no index".into())),
    };
    let fresh = super::scan_complete(store).await?;
    let entries = update(store, |entries| *entries = fresh.clone()).await?;
    Ok(RebuildReport {
        store: store.to_string(),
        entries,
        previous,
        previous_problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entry(id: &str) -> IndexEntry {
        IndexEntry {
            id: id.into(),
            kind: BackupKind::Full,
            parent: None,
            chain_root: None,
            label: None,
            database: "toc_sis".into(),
            started_at: "2026-01-01T02:00:00Z".into(),
            finished_at: "2026-01-01T02:01:00Z".into(),
            snapshot: SnapshotPosition {
                database_time: "2026-01-01T02:00:00Z".into(),
                binlog_file: None,
                binlog_position: None,
                gtid: None,
                position_is_exact: false,
                gtid_is_exact: false,
            },
            tables: BTreeMap::from([(
                "students".to_string(),
                TableFigures {
                    rows: 10,
                    bytes: 100,
                },
            )]),
            bytes: 200,
            files: 3,
            manifest_sha256: "ab".repeat(32),
            storage_class: "STANDARD".into(),
        }
    }

    #[test]
    fn an_index_round_trips_and_any_changed_byte_is_caught() {
        let entries = vec![
            entry("20260102T020000.000Z-0001"),
            entry("20260101T020000.000Z-0002"),
        ];
        let stored = encode(&entries).unwrap();
        assert_eq!(decode(&stored).unwrap(), entries);

        let mut json = Vec::new();
        GzDecoder::new(&stored[..]).read_to_end(&mut json).unwrap();
        let text = String::from_utf8(json).unwrap();
        let tampered = text.replacen("\"rows\":10", "\"rows\":11", 1);
        assert_ne!(tampered, text);
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(tampered.as_bytes()).unwrap();
        let error = decode(&encoder.finish().unwrap()).unwrap_err().to_string();
        assert!(error.contains("hash to"), "{error}");
        assert!(decode(b"not gzip").is_err());
    }
}

//! A file snapshot's manifest and where everything lives in the store.
//!
//! Content is stored once, under its SHA-256 (`files/blobs/ab/abcd…`), whichever source and
//! snapshot it came from. A snapshot is one gzipped JSON manifest
//! (`files/snapshots/<source>/<id>.json.gz`) listing every path with its kind, size, mode,
//! modification time and content hash, written after all the content it names is stored, and
//! carrying a SHA-256 of itself.

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::path::RawPath;
use crate::error::{Error, Result};
use crate::manifest::Integrity;
use crate::store::ObjectStore;

pub use crate::layout::{BLOBS_PREFIX, LOCKS_PREFIX, SNAPSHOTS_PREFIX};
const SNAPSHOT_SUFFIX: &str = ".json.gz";
pub const FORMAT: &str = "toc-sis-backup/file-snapshot";
pub const VERSION: u32 = 1;

pub fn blob_key(sha256: &str) -> String {
    format!("{BLOBS_PREFIX}{}/{sha256}", sha256.get(..2).unwrap_or(""))
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The content hash a blob key names, if it is one.
pub fn blob_hash(key: &str) -> Option<&str> {
    let hash = key.strip_prefix(BLOBS_PREFIX)?.split_once('/')?.1;
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
}

pub fn snapshot_key(source: &str, id: &str) -> String {
    format!("{SNAPSHOTS_PREFIX}{source}/{id}{SNAPSHOT_SUFFIX}")
}

/// Source names become key parts and appear in alerts: keep them plain.
pub fn validate_source_name(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            what: "file source name",
            value: name.to_string(),
            expected: "1 to 64 letters, digits, '-' or '_' (e.g. uploads, application)".into(),
        })
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub path: RawPath,
    pub kind: EntryKind,
    #[serde(default)]
    pub size: u64,
    /// Permission bits (`0o7777`); S3 objects record 0o644.
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Files: SHA-256 of the content, the blob that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Symlinks: where the link points, stored as written (never followed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<RawPath>,
    /// What the next run compares to trust this content without reading it again: inode and
    /// change time for a folder, the ETag for S3. Not needed to restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
}

/// A path that was not stored as it is, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Problem {
    pub path: RawPath,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Totals {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Content this run stored for the first time.
    pub new_blobs: u64,
    pub new_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Snapshot {
    pub format: String,
    pub version: u32,
    pub snapshot_id: String,
    pub source_name: String,
    /// The folder or S3 location read.
    pub source: String,
    pub label: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub tool_version: String,
    pub excludes: Vec<String>,
    pub totals: Totals,
    pub problems: Vec<Problem>,
    pub entries: Vec<Entry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Integrity>,
}

impl Snapshot {
    fn content_hash(&self) -> Result<String> {
        let mut unsealed = self.clone();
        unsealed.integrity = None;
        let bytes = serde_json::to_vec(&unsealed).map_err(|e| Error::InvalidManifest {
            key: self.snapshot_id.clone(),
            reason: e.to_string(),
        })?;
        Ok(hex::encode(Sha256::digest(bytes)))
    }

    /// Gzipped JSON with the self-checksum filled in.
    pub fn seal(mut self) -> Result<Bytes> {
        self.integrity = Some(Integrity {
            sha256: self.content_hash()?,
        });
        let invalid = |e: String| Error::InvalidManifest {
            key: self.snapshot_id.clone(),
            reason: e,
        };
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        serde_json::to_writer(&mut encoder, &self).map_err(|e| invalid(e.to_string()))?;
        encoder
            .write_all(b"\n")
            .map_err(|e| invalid(e.to_string()))?;
        let bytes = encoder.finish().map_err(|e| invalid(e.to_string()))?;
        Ok(Bytes::from(bytes))
    }

    /// Parses and checks a stored snapshot manifest; `key` names it in errors.
    pub fn open(key: &str, bytes: &[u8]) -> Result<Snapshot> {
        let invalid = |reason: String| Error::InvalidManifest {
            key: key.to_string(),
            reason,
        };
        let mut json = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut json)
            .map_err(|e| invalid(format!("not gzip: {e}")))?;
        let snapshot: Snapshot =
            serde_json::from_slice(&json).map_err(|e| invalid(format!("unreadable JSON: {e}")))?;
        if snapshot.format != FORMAT || snapshot.version != VERSION {
            return Err(invalid(format!(
                "format {:?} version {}, expected {FORMAT:?} version {VERSION}",
                snapshot.format, snapshot.version
            )));
        }
        let recorded = snapshot
            .integrity
            .as_ref()
            .ok_or_else(|| invalid("no integrity checksum".into()))?
            .sha256
            .clone();
        let actual = snapshot.content_hash()?;
        if recorded != actual {
            return Err(invalid(format!(
                "checksum mismatch (recorded {recorded}, content hashes to {actual}): the manifest was altered or damaged"
            )));
        }
        // A content hash names a blob key: nothing but 64 hex digits (no `../`, no `é`).
        if let Some(bad) = snapshot
            .entries
            .iter()
            .filter_map(|e| e.sha256.as_deref())
            .find(|h| !is_sha256_hex(h))
        {
            return Err(invalid(format!(
                "a file's sha256 is {bad:?}, expected 64 hexadecimal digits"
            )));
        }
        Ok(snapshot)
    }

    pub fn key(&self) -> String {
        snapshot_key(&self.source_name, &self.snapshot_id)
    }
}

/// One stored snapshot manifest, before it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    pub source_name: String,
    pub snapshot_id: String,
    pub key: String,
    pub bytes: u64,
}

impl SnapshotRef {
    pub async fn load(&self, store: &dyn ObjectStore) -> Result<Snapshot> {
        let bytes = store
            .get(&self.key)
            .await?
            .ok_or_else(|| Error::MissingFile {
                file: self.key.clone(),
            })?;
        Snapshot::open(&self.key, &bytes)
    }

    pub fn time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        crate::layout::id_time(&self.snapshot_id)
    }
}

/// Every snapshot manifest in the store (of one source, or all), newest first.
pub async fn list_snapshots(
    store: &dyn ObjectStore,
    source_name: Option<&str>,
) -> Result<Vec<SnapshotRef>> {
    let prefix = match source_name {
        Some(name) => format!("{SNAPSHOTS_PREFIX}{name}/"),
        None => SNAPSHOTS_PREFIX.to_string(),
    };
    let mut found: Vec<SnapshotRef> = store
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|object| {
            let rest = object.key.strip_prefix(SNAPSHOTS_PREFIX)?;
            let (source, file) = rest.split_once('/')?;
            let id = file.strip_suffix(SNAPSHOT_SUFFIX)?;
            crate::layout::id_time(id)?;
            Some(SnapshotRef {
                source_name: source.to_string(),
                snapshot_id: id.to_string(),
                key: object.key.clone(),
                bytes: object.size,
            })
        })
        .collect();
    found.sort_by(|a, b| b.snapshot_id.cmp(&a.snapshot_id));
    Ok(found)
}

/// The snapshot a person asked for: an id (or its unique start), or `latest`, of one source
/// (which may be left out when the store holds only one).
pub async fn select_snapshot(
    store: &dyn ObjectStore,
    source_name: Option<&str>,
    which: &str,
) -> Result<Snapshot> {
    let all = list_snapshots(store, source_name).await?;
    let sources: std::collections::BTreeSet<&str> =
        all.iter().map(|s| s.source_name.as_str()).collect();
    if source_name.is_none() && sources.len() > 1 {
        return Err(Error::InvalidValue {
            what: "file source",
            value: String::new(),
            expected: format!(
                "one of {} (pass --source)",
                sources.into_iter().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let chosen = if which == "latest" {
        all.first()
    } else {
        let matching: Vec<&SnapshotRef> = all
            .iter()
            .filter(|s| s.snapshot_id.starts_with(which))
            .collect();
        match matching.as_slice() {
            [one] => Some(*one),
            [] => None,
            _ => {
                return Err(Error::InvalidValue {
                    what: "snapshot id",
                    value: which.to_string(),
                    expected: "an id that names one snapshot; it matches several".into(),
                })
            }
        }
    };
    let Some(chosen) = chosen else {
        return Err(Error::BackupNotFound {
            id: format!(
                "{which} (file snapshots{})",
                source_name
                    .map(|s| format!(" of source {s}"))
                    .unwrap_or_default()
            ),
            store: store.to_string(),
        });
    };
    chosen.load(store).await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Snapshot {
        Snapshot {
            format: FORMAT.into(),
            version: VERSION,
            snapshot_id: "20261126T020000.000Z-abcd".into(),
            source_name: "uploads".into(),
            source: "/srv/uploads".into(),
            label: None,
            started_at: "2026-11-26T02:00:00Z".into(),
            finished_at: "2026-11-26T02:00:01Z".into(),
            tool_version: "test".into(),
            excludes: vec![],
            totals: Totals::default(),
            problems: vec![],
            entries: vec![Entry {
                path: RawPath::from("a.pdf"),
                kind: EntryKind::File,
                size: 3,
                mode: 0o644,
                mtime_ns: 1,
                sha256: Some("ab".repeat(32)),
                target: None,
                change: None,
            }],
            integrity: None,
        }
    }

    #[test]
    fn sealed_snapshots_round_trip_and_catch_tampering() {
        let sealed = sample().seal().unwrap();
        let opened = Snapshot::open("k", &sealed).unwrap();
        assert_eq!(opened.entries, sample().entries);
        let mut altered = opened.clone();
        altered.entries[0].size = 4;
        let mut json = Vec::new();
        {
            let mut encoder = GzEncoder::new(&mut json, flate2::Compression::fast());
            serde_json::to_writer(&mut encoder, &altered).unwrap();
        }
        let message = Snapshot::open("k", &json).unwrap_err().to_string();
        assert!(message.contains("checksum mismatch"), "{message}");
    }

    #[test]
    fn keys_and_names() {
        let hash = "0f".repeat(32);
        assert_eq!(blob_hash(&blob_key(&hash)), Some(hash.as_str()));
        assert_eq!(blob_hash("files/blobs/0f/short"), None);
        assert!(validate_source_name("uploads").is_ok());
        for bad in ["", "up loads", "../x", "a/b"] {
            assert!(validate_source_name(bad).is_err(), "{bad}");
        }
    }
}

//! One archived stretch of the binlog: `database/binlog/<id>/events.binlog.gz` (the server's
//! own event bytes, whole transactions only, after the file's format description) and its
//! manifest, written last. The archive's head (`catalog/binlog-head.json`) says where the next
//! run starts and until when the archive was known to be complete.

use std::collections::BTreeMap;
use std::io::Write;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::position::Position;
use crate::error::{Error, Result};
use crate::store::{ObjectStore, ObjectWriter};

use crate::layout::{segment_data_key, segment_manifest_key, MANIFEST_NAME};
pub use crate::layout::{BINLOG_HEAD_KEY as HEAD_KEY, SEGMENT_PREFIX};
const FORMAT: &str = "toc-sis-backup/binlog-segment";

/// Row changes to one table within a segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableChanges {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl TableChanges {
    pub fn net_rows(&self) -> i64 {
        self.inserted as i64 - self.deleted as i64
    }

    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.deleted
    }

    pub fn add(&mut self, other: &TableChanges) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
    }

    /// Counts `rows` row changes of a rows event's kind (insert, update or delete).
    pub(crate) fn count(
        &mut self,
        event: &mysql_common::binlog::events::RowsEventData<'_>,
        rows: u64,
    ) {
        use mysql_common::binlog::events::RowsEventData::*;
        match event {
            WriteRowsEventV1(_) | WriteRowsEvent(_) => self.inserted += rows,
            DeleteRowsEventV1(_) | DeleteRowsEvent(_) => self.deleted += rows,
            UpdateRowsEventV1(_) | UpdateRowsEvent(_) | PartialUpdateRowsEvent(_) => {
                self.updated += rows
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentManifest {
    pub format: String,
    pub version: u32,
    pub segment_id: String,
    /// The full backup whose snapshot position began this unbroken chain of segments.
    pub anchor: String,
    pub server_id: u32,
    pub server_version: String,
    /// The first event's position and the end of the last archived transaction.
    pub start: Position,
    pub end: Position,
    /// Where the next segment starts (the next file's start after a rotation).
    pub next: Position,
    pub first_gtid: Option<String>,
    pub last_gtid: Option<String>,
    /// Commit times (the server's clock, whole seconds) of the first and last transaction.
    pub first_commit: Option<DateTime<Utc>>,
    pub last_commit: Option<DateTime<Utc>>,
    /// Set when this segment ended at the end of the server's binlog: every transaction
    /// committed before this moment is archived.
    pub complete_until: Option<DateTime<Utc>>,
    pub events: u64,
    pub transactions: u64,
    pub row_changes: u64,
    /// `database.table` → row changes, so a replay can be checked table by table.
    pub tables: BTreeMap<String, TableChanges>,
    pub ddl_statements: u64,
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    pub sha256: String,
    pub archived_at: DateTime<Utc>,
}

impl SegmentManifest {
    pub fn data_key(&self) -> String {
        data_key(&self.segment_id)
    }
}

pub fn data_key(id: &str) -> String {
    segment_data_key(id)
}

pub fn manifest_key(id: &str) -> String {
    segment_manifest_key(id)
}

/// Where the archive stands after its last run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub anchor: String,
    pub server_id: u32,
    /// Where the next run starts.
    pub next: Position,
    pub last_segment: Option<String>,
    pub last_commit: Option<DateTime<Utc>>,
    /// When the last run reached the end of the binlog: the archive's recovery point.
    pub complete_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// An unarchived stretch found by a run; cleared when a newer full backup re-anchors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<GapRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapRecord {
    pub from: String,
    pub to: String,
    pub reason: String,
    pub found_at: DateTime<Utc>,
}

pub async fn read_head(store: &dyn ObjectStore) -> Result<Option<Head>> {
    match store.get(HEAD_KEY).await? {
        None => Ok(None),
        Some(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::InvalidManifest {
                    key: HEAD_KEY.into(),
                    reason: e.to_string(),
                })
        }
    }
}

pub async fn write_head(store: &dyn ObjectStore, head: &Head) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(head).map_err(|e| Error::InvalidManifest {
        key: HEAD_KEY.into(),
        reason: e.to_string(),
    })?;
    store.put(HEAD_KEY, Bytes::from(bytes)).await
}

pub async fn read_manifest(store: &dyn ObjectStore, id: &str) -> Result<SegmentManifest> {
    let key = manifest_key(id);
    let bytes = store
        .get(&key)
        .await?
        .ok_or_else(|| Error::MissingFile { file: key.clone() })?;
    let manifest: SegmentManifest =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidManifest {
            key: key.clone(),
            reason: e.to_string(),
        })?;
    if manifest.format != FORMAT || manifest.segment_id != id {
        return Err(Error::InvalidManifest {
            key,
            reason: format!(
                "it is a {:?} manifest of segment {:?}",
                manifest.format, manifest.segment_id
            ),
        });
    }
    Ok(manifest)
}

/// The sealed segments whose ids sort after `after` (an id or a time stamp prefix; "" for
/// all), oldest first. Ids are archive times, so a restore lists only its own days.
pub async fn list_sealed(store: &dyn ObjectStore, after: &str) -> Result<Vec<String>> {
    let start = format!("{SEGMENT_PREFIX}{after}");
    let objects = if after.is_empty() {
        store.list(SEGMENT_PREFIX).await?
    } else {
        store.list_after(SEGMENT_PREFIX, &start).await?
    };
    let mut ids: Vec<String> = objects
        .iter()
        .filter_map(|o| {
            let rest = o.key.strip_prefix(SEGMENT_PREFIX)?;
            let (id, name) = rest.split_once('/')?;
            (name == MANIFEST_NAME).then(|| id.to_string())
        })
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Reads a sealed segment whole and checks it against its manifest.
pub async fn read_verified(store: &dyn ObjectStore, manifest: &SegmentManifest) -> Result<Vec<u8>> {
    let key = manifest.data_key();
    let bytes = store
        .get(&key)
        .await?
        .ok_or_else(|| Error::MissingFile { file: key.clone() })?;
    let sha = hex::encode(Sha256::digest(&bytes));
    if sha != manifest.sha256 || bytes.len() as u64 != manifest.bytes {
        return Err(Error::CorruptFile {
            file: key,
            detail: format!(
                "{} bytes with SHA-256 {sha}, the manifest says {} bytes and {}",
                bytes.len(),
                manifest.bytes,
                manifest.sha256
            ),
        });
    }
    Ok(bytes)
}

/// A sealed segment's event bytes: read whole, checked against its manifest, decompressed
/// (a segment is at most `BINLOG_SEGMENT_MB` uncompressed, so memory stays bounded).
pub(crate) async fn read_events(
    store: &dyn ObjectStore,
    manifest: &SegmentManifest,
) -> Result<Vec<u8>> {
    use std::io::Read;
    let bytes = read_verified(store, manifest).await?;
    // The manifest's size is a hint, not trusted: capped (the vector grows past it if it must).
    let hint = usize::try_from(manifest.uncompressed_bytes)
        .unwrap_or(usize::MAX)
        .min(256 << 20);
    let mut decoded = Vec::with_capacity(hint);
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut decoded)
        .map_err(|e| Error::CorruptFile {
            file: manifest.data_key(),
            detail: e.to_string(),
        })?;
    Ok(decoded)
}

/// Writes a segment as it is archived: compressed, hashed and sent in parts, so memory stays
/// the same however long the stretch of binlog.
pub(crate) struct SegmentWriter {
    key: String,
    writer: Option<Box<dyn ObjectWriter>>,
    encoder: GzEncoder<Vec<u8>>,
    hasher: Sha256,
    bytes: u64,
    pub(crate) uncompressed: u64,
}

const FLUSH_AT: usize = 4 << 20;

impl SegmentWriter {
    pub(crate) async fn create(
        store: &dyn ObjectStore,
        id: &str,
        format_description: &[u8],
    ) -> Result<SegmentWriter> {
        let key = data_key(id);
        let writer = store.create(&key).await?;
        let mut segment = SegmentWriter {
            key,
            writer: Some(writer),
            encoder: GzEncoder::new(Vec::new(), Compression::new(6)),
            hasher: Sha256::new(),
            bytes: 0,
            uncompressed: 0,
        };
        segment.append(super::events::MAGIC).await?;
        segment.append(format_description).await?;
        Ok(segment)
    }

    pub(crate) async fn append(&mut self, event: &[u8]) -> Result<()> {
        self.encoder
            .write_all(event)
            .map_err(|e| Error::store_io("memory", "compress", &self.key, e))?;
        self.uncompressed += event.len() as u64;
        if self.encoder.get_ref().len() >= FLUSH_AT {
            let chunk = std::mem::take(self.encoder.get_mut());
            self.send(chunk).await?;
        }
        Ok(())
    }

    async fn send(&mut self, chunk: Vec<u8>) -> Result<()> {
        self.hasher.update(&chunk);
        self.bytes += chunk.len() as u64;
        match self.writer.as_mut() {
            Some(writer) => writer.write(Bytes::from(chunk)).await,
            None => Ok(()),
        }
    }

    /// Finishes the object; returns (compressed bytes, SHA-256).
    pub(crate) async fn finish(mut self) -> Result<(u64, String)> {
        let encoder = std::mem::replace(
            &mut self.encoder,
            GzEncoder::new(Vec::new(), Compression::fast()),
        );
        let rest = encoder
            .finish()
            .map_err(|e| Error::store_io("memory", "compress", &self.key, e))?;
        if let Err(e) = self.send(rest).await {
            self.abort().await;
            return Err(e);
        }
        let writer = self.writer.take();
        if let Some(writer) = writer {
            writer.finish().await?;
        }
        Ok((self.bytes, hex::encode(self.hasher.clone().finalize())))
    }

    pub(crate) async fn abort(mut self) {
        if let Some(writer) = self.writer.take() {
            writer.abort().await;
        }
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

/// Seals a written segment: its data marked sealed, then the manifest written last.
pub(crate) async fn seal(store: &dyn ObjectStore, manifest: &SegmentManifest) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(manifest).map_err(|e| Error::InvalidManifest {
        key: manifest_key(&manifest.segment_id),
        reason: e.to_string(),
    })?;
    crate::store::seal_with_manifest(
        store,
        &[manifest.data_key()],
        &manifest_key(&manifest.segment_id),
        bytes,
    )
    .await
}

pub(crate) fn new_manifest(
    id: &str,
    anchor: &str,
    server_id: u32,
    server_version: &str,
    start: Position,
) -> SegmentManifest {
    SegmentManifest {
        format: FORMAT.into(),
        version: 1,
        segment_id: id.into(),
        anchor: anchor.into(),
        server_id,
        server_version: server_version.into(),
        end: start.clone(),
        next: start.clone(),
        start,
        first_gtid: None,
        last_gtid: None,
        first_commit: None,
        last_commit: None,
        complete_until: None,
        events: 0,
        transactions: 0,
        row_changes: 0,
        tables: BTreeMap::new(),
        ddl_statements: 0,
        bytes: 0,
        uncompressed_bytes: 0,
        sha256: String::new(),
        archived_at: Utc::now(),
    }
}

/// Removes the segments no kept full backup can replay: those of chains anchored no later than
/// the oldest kept full backup that end at or before its snapshot position (a chain anchored
/// later may be another server's, whose file numbers start again). Manifest first, as for
/// backups. Returns the ids removed.
pub async fn prune_before(
    store: &dyn ObjectStore,
    oldest_full_position: &Position,
    oldest_full_time: DateTime<Utc>,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for id in list_sealed(store, "").await? {
        let manifest = read_manifest(store, &id).await?;
        let anchored_before =
            crate::layout::id_time(&manifest.anchor).is_some_and(|t| t <= oldest_full_time);
        if anchored_before && manifest.next <= *oldest_full_position {
            store.delete(&manifest_key(&id)).await?;
            store
                .delete_prefix(&format!("{SEGMENT_PREFIX}{id}/"))
                .await?;
            removed.push(id);
        }
    }
    Ok(removed)
}

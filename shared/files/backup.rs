//! Taking a file snapshot: store the content not stored before, then the manifest, last.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::path::RawPath;
use super::snapshot::{
    blob_hash, blob_key, list_snapshots, Entry, EntryKind, Problem, Snapshot, Totals, BLOBS_PREFIX,
    FORMAT, VERSION,
};
use super::source::{Excludes, FileSource};
use super::FileBackupReport;
use crate::error::{Error, Result};
use crate::store::ObjectStore;

/// A file re-read this many times while it keeps changing, then reported.
const READ_ATTEMPTS: usize = 3;
const CHUNK: usize = 1 << 20;

pub(super) struct BackupRun<'a> {
    pub store: Arc<dyn ObjectStore>,
    pub source: &'a FileSource,
    pub source_name: &'a str,
    pub excludes: &'a Excludes,
    pub label: Option<String>,
    pub jobs: usize,
    pub snapshot_id: String,
    pub headway: &'a crate::job::headway::Headway,
}

/// What is stored: content hash → size.
type Stored = Mutex<HashMap<String, u64>>;

enum Outcome {
    Kept { entry: Entry, content: Content },
    Problem(Problem),
}

/// How a kept file's content came to be in the store.
enum Content {
    /// Trusted from the previous snapshot without reading the file (and folders and links,
    /// which have no content).
    Unread,
    /// Read and hashed, and found already stored.
    AlreadyStored,
    /// Read and stored for the first time: this many bytes.
    New(u64),
}

struct Progress {
    started: Instant,
    last: Mutex<Instant>,
    total: usize,
    done: std::sync::atomic::AtomicUsize,
}

impl Progress {
    fn tick(&self) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Ok(mut last) = self.last.lock() {
            if last.elapsed().as_secs() >= 5 {
                *last = Instant::now();
                tracing::info!(
                    "files: {done}/{} checked after {:.0} s",
                    self.total,
                    self.started.elapsed().as_secs_f64()
                );
            }
        }
    }
}

impl BackupRun<'_> {
    pub async fn run(&self, lock: &super::lock::StoreLock) -> Result<FileBackupReport> {
        let started = Instant::now();
        let started_at = Utc::now();
        let previous = self.previous_entries().await?;
        let stored: Stored = Mutex::new(self.stored_blobs().await?);
        let (entries, mut problems) = self.source.scan(self.excludes).await?;
        tracing::info!(
            source = %self.source,
            entries = entries.len(),
            "scanned; storing new content"
        );
        self.headway.measure(
            format!("checking {}", self.source_name),
            entries
                .iter()
                .filter(|e| e.kind == EntryKind::File)
                .map(|e| e.size)
                .sum(),
        );
        let progress = Progress {
            started,
            last: Mutex::new(Instant::now()),
            total: entries.len(),
            done: Default::default(),
        };
        let mut totals = Totals::default();
        let mut unchanged_not_read = 0u64;
        let mut kept = Vec::with_capacity(entries.len());
        let mut outcomes = futures::stream::iter(entries.into_iter().map(|entry| {
            let cached = previous.get(&entry.path).cloned();
            let (stored, progress) = (&stored, &progress);
            async move {
                let size = if entry.kind == EntryKind::File {
                    entry.size
                } else {
                    0
                };
                let outcome = self.back_up_entry(entry, cached, stored).await;
                progress.tick();
                self.headway.bytes_done(size);
                outcome
            }
        }))
        .buffer_unordered(self.jobs.max(1));
        while let Some(outcome) = outcomes.next().await {
            match outcome? {
                Outcome::Kept { entry, content } => {
                    match entry.kind {
                        EntryKind::File => {
                            totals.files += 1;
                            totals.bytes += entry.size;
                            match content {
                                Content::New(bytes) => {
                                    totals.new_blobs += 1;
                                    totals.new_bytes += bytes;
                                }
                                Content::Unread => unchanged_not_read += 1,
                                Content::AlreadyStored => {}
                            }
                        }
                        EntryKind::Dir => totals.dirs += 1,
                        EntryKind::Symlink => totals.symlinks += 1,
                    }
                    kept.push(entry);
                }
                Outcome::Problem(problem) => problems.push(problem),
            }
        }
        drop(outcomes);
        kept.sort_by(|a, b| a.path.cmp(&b.path));
        problems.sort_by(|a, b| a.path.cmp(&b.path));

        // Everything the manifest names must be in the store, with its size, before the
        // manifest is written: the manifest is what makes the snapshot count.
        self.check_blobs_present(&kept).await?;
        lock.ensure_held()?;
        let snapshot = Snapshot {
            format: FORMAT.into(),
            version: VERSION,
            snapshot_id: self.snapshot_id.clone(),
            source_name: self.source_name.to_string(),
            source: self.source.to_string(),
            label: self.label.clone(),
            started_at: started_at.to_rfc3339(),
            finished_at: Utc::now().to_rfc3339(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            excludes: self.excludes.patterns().to_vec(),
            totals: totals.clone(),
            problems: problems.clone(),
            entries: kept,
            integrity: None,
        };
        let key = snapshot.key();
        let sealed = snapshot.seal()?;
        let manifest_bytes = sealed.len() as u64;
        self.store.put(&key, sealed).await?;
        // Read back what was written: a manifest that does not open is no snapshot.
        let written = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| Error::MissingFile { file: key.clone() })?;
        Snapshot::open(&key, &written)?;
        Ok(FileBackupReport {
            snapshot_id: self.snapshot_id.clone(),
            source_name: self.source_name.to_string(),
            source: self.source.to_string(),
            totals,
            unchanged_not_read,
            manifest_bytes,
            problems,
            duration_seconds: started.elapsed().as_secs_f64(),
            collected: None,
        })
    }

    /// The newest readable snapshot of this source, by path: its hashes are trusted for files
    /// whose size, modification time and change token are the same, so an unchanged tree is
    /// not read again.
    async fn previous_entries(&self) -> Result<HashMap<RawPath, Entry>> {
        for candidate in list_snapshots(self.store.as_ref(), Some(self.source_name)).await? {
            match candidate.load(self.store.as_ref()).await {
                Ok(snapshot) => {
                    return Ok(snapshot
                        .entries
                        .into_iter()
                        .filter(|e| e.kind == EntryKind::File)
                        .map(|e| (e.path.clone(), e))
                        .collect())
                }
                Err(e) => tracing::warn!(key = %candidate.key, "skipping unreadable snapshot: {e}"),
            }
        }
        Ok(HashMap::new())
    }

    async fn stored_blobs(&self) -> Result<HashMap<String, u64>> {
        Ok(self
            .store
            .list(BLOBS_PREFIX)
            .await?
            .into_iter()
            .filter_map(|o| blob_hash(&o.key).map(|h| (h.to_string(), o.size)))
            .collect())
    }

    async fn check_blobs_present(&self, entries: &[Entry]) -> Result<()> {
        let present = self.stored_blobs().await?;
        for entry in entries {
            if let Some(hash) = &entry.sha256 {
                match present.get(hash) {
                    Some(size) if *size == entry.size => {}
                    Some(size) => {
                        return Err(Error::CorruptFile {
                            file: blob_key(hash),
                            detail: format!(
                                "{size} bytes stored for {}, which has {} bytes",
                                entry.path, entry.size
                            ),
                        })
                    }
                    None => {
                        return Err(Error::MissingFile {
                            file: format!("{} (content of {})", blob_key(hash), entry.path),
                        })
                    }
                }
            }
        }
        Ok(())
    }

    async fn back_up_entry(
        &self,
        entry: Entry,
        cached: Option<Entry>,
        stored: &Stored,
    ) -> Result<Outcome> {
        if entry.kind != EntryKind::File {
            return Ok(Outcome::Kept {
                entry,
                content: Content::Unread,
            });
        }
        if let Some(cached) = cached.filter(|c| unchanged(c, &entry)) {
            let known = cached.sha256.as_ref().and_then(|hash| {
                let size = stored.lock().ok()?.get(hash).copied()?;
                (size == entry.size).then(|| hash.clone())
            });
            if let Some(hash) = known {
                return Ok(Outcome::Kept {
                    entry: Entry {
                        sha256: Some(hash),
                        ..entry
                    },
                    content: Content::Unread,
                });
            }
        }
        let mut entry = entry;
        for _ in 0..READ_ATTEMPTS {
            match self.store_content(&entry, stored).await? {
                Read::Done { sha256, new_bytes } => {
                    return Ok(Outcome::Kept {
                        entry: Entry {
                            sha256: Some(sha256),
                            ..entry
                        },
                        content: new_bytes.map_or(Content::AlreadyStored, Content::New),
                    })
                }
                Read::Vanished => {
                    return Ok(Outcome::Problem(Problem {
                        path: entry.path,
                        reason: "vanished before it could be read; not in this snapshot".into(),
                    }))
                }
                Read::Changed => match self.source.stat(&entry.path).await? {
                    Some(now) if now.kind == EntryKind::File => entry = now,
                    _ => {
                        return Ok(Outcome::Problem(Problem {
                            path: entry.path,
                            reason: "vanished while being read; not in this snapshot".into(),
                        }))
                    }
                },
            }
        }
        Ok(Outcome::Problem(Problem {
            path: entry.path,
            reason: format!(
                "changed while being read, {READ_ATTEMPTS} times; not in this snapshot (a torn copy is worse than none)"
            ),
        }))
    }

    /// Hashes the file; if its content is not stored yet, reads it again into the store and
    /// checks both reads saw the same bytes. Either read seeing a different file means it
    /// changed under us.
    async fn store_content(&self, entry: &Entry, stored: &Stored) -> Result<Read> {
        let Some((size, sha256)) = self.hash_file(&entry.path).await? else {
            return Ok(Read::Vanished);
        };
        if size != entry.size || !self.still_same(entry).await? {
            return Ok(Read::Changed);
        }
        let known = stored
            .lock()
            .map(|s| s.get(&sha256).copied())
            .unwrap_or(None);
        if known == Some(size) {
            return Ok(Read::Done {
                sha256,
                new_bytes: None,
            });
        }
        let key = blob_key(&sha256);
        let mut reader = match self.source.read(&entry.path).await {
            Ok(reader) => reader,
            Err(Error::MissingFile { .. }) => return Ok(Read::Vanished),
            Err(e) => return Err(e),
        };
        let mut writer = self.store.create(&key).await?;
        let mut hasher = Sha256::new();
        let mut copied = 0u64;
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buffer).await {
                Ok(n) => n,
                Err(e) => {
                    writer.abort().await;
                    return Err(Error::store_io(
                        self.source.to_string(),
                        "read",
                        entry.path.to_string(),
                        e,
                    ));
                }
            };
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            copied += n as u64;
            if let Err(e) = writer.write(Bytes::copy_from_slice(&buffer[..n])).await {
                writer.abort().await;
                return Err(e);
            }
        }
        if copied != size || hex::encode(hasher.finalize()) != sha256 {
            writer.abort().await;
            return Ok(Read::Changed);
        }
        let written = writer.finish().await?;
        if !self.still_same(entry).await? {
            // The blob holds exactly the hashed bytes, so it is sound; the file is not.
            return Ok(Read::Changed);
        }
        if let Ok(mut stored) = stored.lock() {
            stored.insert(sha256.clone(), written);
        }
        Ok(Read::Done {
            sha256,
            new_bytes: Some(written),
        })
    }

    async fn hash_file(&self, path: &RawPath) -> Result<Option<(u64, String)>> {
        let mut reader = match self.source.read(path).await {
            Ok(reader) => reader,
            Err(Error::MissingFile { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = reader.read(&mut buffer).await.map_err(|e| {
                Error::store_io(self.source.to_string(), "read", path.to_string(), e)
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            total += n as u64;
        }
        Ok(Some((total, hex::encode(hasher.finalize()))))
    }

    /// Whether the file still looks as it did when scanned (size, times, inode).
    async fn still_same(&self, entry: &Entry) -> Result<bool> {
        if !self.source.can_tear() {
            return Ok(true);
        }
        Ok(self
            .source
            .stat(&entry.path)
            .await?
            .is_some_and(|now| unchanged(&now, entry)))
    }
}

enum Read {
    Done {
        sha256: String,
        new_bytes: Option<u64>,
    },
    Vanished,
    Changed,
}

fn unchanged(a: &Entry, b: &Entry) -> bool {
    a.kind == b.kind
        && a.size == b.size
        && a.mtime_ns == b.mtime_ns
        && a.change.is_some()
        && a.change == b.change
}

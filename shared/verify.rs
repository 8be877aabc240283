//! Re-reading a backup and checking every file against its manifest.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::manifest::{FileEntry, Manifest};
use crate::store::ObjectStore;
use std::sync::Arc;

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub backup_id: String,
    pub files: usize,
    pub bytes: u64,
}

/// What `verify` checked: every backup a restore of the named point would read.
#[derive(Debug, Clone, Serialize)]
pub struct ChainVerifyReport {
    pub backup_id: String,
    /// The full backup first, then each incremental up to the named point.
    pub chain: Vec<String>,
    pub files: usize,
    pub bytes: u64,
    /// Binlog segments a replay to the point reads, each checked against its manifest.
    pub binlog_segments: usize,
}

/// Checks every file of every backup in `chain` (as a restore of its last point reads them);
/// a failure names the backup of the chain it is in, so a damaged full backup under a sound
/// incremental is never reported as intact.
pub async fn verify_chain(
    store: &dyn ObjectStore,
    chain: &[Manifest],
    headway: &crate::job::headway::Headway,
) -> Result<ChainVerifyReport> {
    let mut report = ChainVerifyReport {
        backup_id: chain
            .last()
            .map(|m| m.backup_id.clone())
            .unwrap_or_default(),
        chain: chain.iter().map(|m| m.backup_id.clone()).collect(),
        files: 0,
        bytes: 0,
        binlog_segments: 0,
    };
    for (position, link) in chain.iter().enumerate() {
        let checked = verify_backup_tracked(store, link, headway)
            .await
            .map_err(|e| Error::BrokenChain {
                backup: format!(
                    "{} ({} of the chain of {})",
                    link.backup_id,
                    if position == 0 {
                        "the full backup".to_string()
                    } else {
                        format!("incremental {position}")
                    },
                    report.backup_id
                ),
                reason: e.to_string(),
            })?;
        report.files += checked.files;
        report.bytes += checked.bytes;
    }
    Ok(report)
}

/// A reader that hashes what passes through it, so a file is checked in the same pass that
/// uses it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: std::io::Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads whatever is left and compares size and SHA-256 with what the manifest recorded.
    pub fn check(mut self, file: &str, expected_bytes: u64, expected_sha256: &str) -> Result<()> {
        std::io::copy(&mut self, &mut std::io::sink()).map_err(|e| Error::CorruptFile {
            file: file.to_string(),
            detail: format!("unreadable: {e}"),
        })?;
        let actual = hex::encode(self.hasher.finalize());
        if self.bytes != expected_bytes || actual != expected_sha256 {
            return Err(Error::CorruptFile {
                file: file.to_string(),
                detail: format!(
                    "{} bytes with SHA-256 {actual}, the manifest says {expected_bytes} bytes with {expected_sha256}",
                    self.bytes
                ),
            });
        }
        Ok(())
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Size and SHA-256 of a stored object, read as a stream.
pub(crate) async fn hash_object(store: &dyn ObjectStore, key: &str) -> Result<(u64, String)> {
    let mut reader = store.open(key).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader
            .read(&mut buffer)
            .await
            .map_err(|e| Error::store_io(store.to_string(), "read", key, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// Checks one file, stored under `key`; the error names it and says what differs.
pub async fn verify_file(store: &dyn ObjectStore, key: &str, file: &FileEntry) -> Result<()> {
    let key = key.to_string();
    let (bytes, sha256) = match hash_object(store, &key).await {
        Err(Error::MissingFile { .. }) => return Err(Error::MissingFile { file: key }),
        other => other?,
    };
    if bytes != file.bytes {
        return Err(Error::CorruptFile {
            file: key,
            detail: format!("{bytes} bytes, the manifest says {}", file.bytes),
        });
    }
    if sha256 != file.sha256 {
        return Err(Error::CorruptFile {
            file: key,
            detail: format!("SHA-256 {sha256}, the manifest says {}", file.sha256),
        });
    }
    Ok(())
}

/// Files a just-written backup reads back at once: on S3 the reads wait on the network, not on
/// each other.
const VERIFY_AT_ONCE: usize = 4;

/// Reads back every file of a backup just written, its key states too (the next incremental
/// needs them): a backup counts only once what is in the store is what was written.
pub async fn verify_written(store: &Arc<dyn ObjectStore>, manifest: &Manifest) -> Result<()> {
    use futures::{StreamExt, TryStreamExt};
    let stored: Vec<(String, FileEntry)> = manifest
        .files
        .iter()
        .map(|file| (manifest.file_key(file), file.clone()))
        .collect();
    futures::stream::iter(stored.into_iter().map(|(key, file)| {
        let store = store.clone();
        async move { verify_file(store.as_ref(), &key, &file).await }
    }))
    .buffer_unordered(VERIFY_AT_ONCE)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}

/// Checks every file of a backup, reporting every damaged file, not just the first. Key states
/// kept apart are not the backup's to keep: the next incremental reads them and rebuilds a
/// table's when it is gone or damaged.
pub async fn verify_backup(store: &dyn ObjectStore, manifest: &Manifest) -> Result<VerifyReport> {
    verify_backup_tracked(store, manifest, &crate::job::headway::Headway::default()).await
}

/// [`verify_backup`], counting each checked file's bytes on `headway`.
pub async fn verify_backup_tracked(
    store: &dyn ObjectStore,
    manifest: &Manifest,
    headway: &crate::job::headway::Headway,
) -> Result<VerifyReport> {
    let mut problems = Vec::new();
    let mut files = 0;
    for file in manifest.kept_files() {
        files += 1;
        if let Err(e) = verify_file(store, &manifest.file_key(file), file).await {
            tracing::error!(file = %file.name, "{e}");
            problems.push(e);
        }
        headway.bytes_done(file.bytes);
    }
    match problems.len() {
        0 => Ok(VerifyReport {
            backup_id: manifest.backup_id.clone(),
            files,
            bytes: manifest.total_bytes(),
        }),
        1 => Err(problems.remove(0)),
        n => Err(Error::CorruptFile {
            file: format!("{n} files of backup {}", manifest.backup_id),
            detail: problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        }),
    }
}

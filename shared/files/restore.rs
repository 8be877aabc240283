//! Getting files back: a whole snapshot, or one file or folder of it, into a folder, every
//! file's content checked against its hash before it takes its name.

use std::io;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::path::RawPath;
use super::snapshot::{blob_key, Entry, EntryKind, Snapshot};
use crate::error::{Error, Result};
use crate::store::ObjectStore;

#[derive(Debug, Serialize)]
pub struct FileRestoreReport {
    pub snapshot_id: String,
    pub source_name: String,
    pub target: String,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub duration_seconds: f64,
}

/// The entries at or below any of `paths` (all of them when `paths` is empty); a path that
/// matches nothing is an error naming it.
pub fn select_entries<'a>(snapshot: &'a Snapshot, paths: &[RawPath]) -> Result<Vec<&'a Entry>> {
    if paths.is_empty() {
        return Ok(snapshot.entries.iter().collect());
    }
    for path in paths {
        if !snapshot.entries.iter().any(|e| e.path.is_within(path)) {
            return Err(Error::InvalidValue {
                what: "path",
                value: path.to_string(),
                expected: format!(
                    "a file or folder in snapshot {} of {} (`toc-backup files show` lists them)",
                    snapshot.snapshot_id, snapshot.source_name
                ),
            });
        }
    }
    Ok(snapshot
        .entries
        .iter()
        .filter(|e| paths.iter().any(|p| e.path.is_within(p)))
        .collect())
}

pub struct FileRestoreOptions {
    pub target: PathBuf,
    pub paths: Vec<RawPath>,
    /// Replace files that already exist in the target.
    pub overwrite: bool,
    pub jobs: usize,
    /// Bytes written of the selected files, for whoever shows progress.
    pub headway: std::sync::Arc<crate::restore::headway::Headway>,
}

pub async fn restore_snapshot(
    store: &dyn ObjectStore,
    snapshot: &Snapshot,
    options: &FileRestoreOptions,
) -> Result<FileRestoreReport> {
    let started = std::time::Instant::now();
    let entries = select_entries(snapshot, &options.paths)?;
    let target = &options.target;
    let local_error = |path: &Path, operation: &'static str, e: io::Error| {
        Error::store_io(
            target.display().to_string(),
            operation,
            path.display().to_string(),
            e,
        )
    };
    tokio::fs::create_dir_all(target)
        .await
        .map_err(|e| local_error(target, "create", e))?;
    let mut report = FileRestoreReport {
        snapshot_id: snapshot.snapshot_id.clone(),
        source_name: snapshot.source_name.clone(),
        target: target.display().to_string(),
        files: 0,
        dirs: 0,
        symlinks: 0,
        bytes: 0,
        duration_seconds: 0.0,
    };
    let mut placed = Vec::with_capacity(entries.len());
    for entry in &entries {
        let Some(destination) = entry.path.under(target) else {
            return Err(Error::InvalidManifest {
                key: snapshot.key(),
                reason: format!("path {:?} would leave the restore folder", entry.path),
            });
        };
        placed.push((*entry, destination));
    }
    // Folders first (their times are set last, since filling them changes them).
    for (_, destination) in placed.iter().filter(|(e, _)| e.kind == EntryKind::Dir) {
        tokio::fs::create_dir_all(destination)
            .await
            .map_err(|e| local_error(destination, "create", e))?;
        report.dirs += 1;
    }
    let files = placed.iter().filter(|(e, _)| e.kind == EntryKind::File);
    options.headway.measure(
        format!("restoring snapshot {}", snapshot.snapshot_id),
        files.clone().map(|(e, _)| e.size).sum(),
    );
    let mut writes =
        futures::stream::iter(files.map(|(entry, destination)| {
            restore_file(store, entry, destination, options.overwrite)
        }))
        .buffer_unordered(options.jobs.max(1));
    while let Some(outcome) = writes.next().await {
        let bytes = outcome?;
        options.headway.bytes_done(bytes);
        report.bytes += bytes;
        report.files += 1;
    }
    drop(writes);
    for (entry, destination) in placed.iter().filter(|(e, _)| e.kind == EntryKind::Symlink) {
        restore_symlink(entry, destination, options.overwrite)
            .await
            .map_err(|e| local_error(destination, "create symlink", e))?;
        report.symlinks += 1;
    }
    // Deepest folders first, so setting a child's time does not disturb its parent's.
    for (entry, destination) in placed
        .iter()
        .rev()
        .filter(|(e, _)| e.kind == EntryKind::Dir)
    {
        set_metadata(destination, entry.mode, entry.mtime_ns)
            .await
            .map_err(|e| local_error(destination, "set times of", e))?;
    }
    report.duration_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Streams one blob into a temporary file beside its destination, checks size and hash, then
/// renames it into place: a damaged blob never becomes a file with the right name.
async fn restore_file(
    store: &dyn ObjectStore,
    entry: &Entry,
    destination: &Path,
    overwrite: bool,
) -> Result<u64> {
    let display = destination.display().to_string();
    let io_error = |operation: &'static str, e: io::Error| {
        Error::store_io("restore folder", operation, display.clone(), e)
    };
    if !overwrite && tokio::fs::symlink_metadata(destination).await.is_ok() {
        return Err(Error::InvalidValue {
            what: "restore target",
            value: display.clone(),
            expected: "a path that does not exist yet (pass --overwrite to replace it)".into(),
        });
    }
    let Some(hash) = entry.sha256.as_deref() else {
        return Err(Error::InvalidManifest {
            key: entry.path.to_string(),
            reason: "file entry without a content hash".into(),
        });
    };
    let parent = destination.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| io_error("create folder for", e))?;
    let temporary = parent.join(format!(
        ".toc-restore-{:016x}.partial",
        rand::random::<u64>()
    ));
    let outcome = async {
        let key = blob_key(hash);
        let mut reader = store.open(&key).await?;
        let mut file = tokio::fs::File::create(&temporary)
            .await
            .map_err(|e| io_error("create", e))?;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buffer)
                .await
                .map_err(|e| Error::store_io(store.to_string(), "read", key.clone(), e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            written += n as u64;
            file.write_all(&buffer[..n])
                .await
                .map_err(|e| io_error("write", e))?;
        }
        let actual = hex::encode(hasher.finalize());
        if written != entry.size || actual != hash {
            return Err(Error::CorruptFile {
                file: key,
                detail: format!(
                    "{written} bytes with SHA-256 {actual}, the snapshot says {} bytes with {hash} for {}",
                    entry.size, entry.path
                ),
            });
        }
        file.sync_all().await.map_err(|e| io_error("sync", e))?;
        drop(file);
        set_metadata(&temporary, entry.mode, entry.mtime_ns)
            .await
            .map_err(|e| io_error("set times of", e))?;
        tokio::fs::rename(&temporary, destination)
            .await
            .map_err(|e| io_error("rename into", e))?;
        Ok(written)
    }
    .await;
    if outcome.is_err() {
        let _ = tokio::fs::remove_file(&temporary).await;
    }
    outcome
}

async fn restore_symlink(entry: &Entry, destination: &Path, overwrite: bool) -> io::Result<()> {
    let target = entry
        .target
        .clone()
        .ok_or_else(|| io::Error::other("symlink entry without a target"))?;
    if overwrite && tokio::fs::symlink_metadata(destination).await.is_ok() {
        tokio::fs::remove_file(destination).await?;
    }
    if let Some(parent) = destination.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    tokio::fs::symlink(target.as_path(), destination).await?;
    let mtime = file_time(entry.mtime_ns);
    let destination = destination.to_path_buf();
    tokio::task::spawn_blocking(move || {
        filetime::set_symlink_file_times(&destination, mtime, mtime)
    })
    .await
    .map_err(io::Error::other)?
}

fn file_time(mtime_ns: i64) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(
        mtime_ns.div_euclid(1_000_000_000),
        mtime_ns.rem_euclid(1_000_000_000) as u32,
    )
}

async fn set_metadata(path: &Path, mode: u32, mtime_ns: i64) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).await?;
    let path = path.to_path_buf();
    let mtime = file_time(mtime_ns);
    tokio::task::spawn_blocking(move || filetime::set_file_mtime(&path, mtime))
        .await
        .map_err(io::Error::other)?
}

//! Getting files back: a whole snapshot, or one file or folder of it, into a folder, every
//! file's content checked against its hash before it takes its name.
//!
//! A restore writes and changes modes only inside its target, whatever links the target
//! already holds (left by an earlier snapshot, or planted there): nothing below the target is
//! ever opened, created, renamed or chmod-ed through a symbolic link.
//!
//! - Every folder on the way to a restored path is checked (or created) one component at a
//!   time with `lstat`; a link among them is refused with an error naming it, even with
//!   `--overwrite`. A folder the restore did not select is the target's own business, and
//!   following the link would write wherever it points; replacing it would silently drop
//!   whatever the operator linked in there. (The target folder itself is the operator's
//!   choice and may be reached through a link.)
//! - A path the snapshot holds as a file, folder or link that is a link (or any other
//!   non-folder) in the target is replaced with `--overwrite` (the link is removed, never
//!   followed) and refused without it. A file is written to a new temporary file beside it
//!   (`O_CREAT | O_EXCL | O_NOFOLLOW`) and renamed over the name: a rename replaces a link, it
//!   does not write through it.
//! - Modes and times are set through the open file or folder (`fchmod`, `futimens`), never by
//!   path; a folder is opened with `O_NOFOLLOW | O_DIRECTORY` and must be the very folder
//!   `lstat` saw (same device and inode).
//! - A link recorded in the snapshot is restored as a link, pointing where it pointed, and its
//!   time is set on the link itself. Links are made last, and the checks above apply to them
//!   too: a restore never follows even a link it made itself.
//!
//! The checks are made when each path is reached: they stop links that are in the target
//! before or between restores. A process that can write to the target while the restore runs
//! could still swap a checked folder for a link between the check and the write; restore
//! into a folder nobody else writes to.

use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::path::RawPath;
use super::snapshot::{blob_key, Entry, EntryKind, Snapshot};
use crate::error::{Error, Result};
use crate::store::ObjectStore;

/// `O_NOFOLLOW`: an open that meets a link as the last component fails instead of following
/// it. `libc` is a dependency of glibc Linux builds only (what the CLI and the functions are
/// built for); elsewhere the checks around each open keep the guarantee on their own (a new
/// file is opened with `O_EXCL`, which never follows a link, and an opened folder is compared
/// with what `lstat` saw).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const NO_FOLLOW: i32 = libc::O_NOFOLLOW;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const NO_FOLLOW: i32 = 0;

/// `O_DIRECTORY`: the open fails unless it is a folder.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const DIRECTORY: i32 = libc::O_DIRECTORY;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const DIRECTORY: i32 = 0;

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
    /// Replace files that already exist in the target (and links where the snapshot has a
    /// file, folder or link: removed, never followed).
    pub overwrite: bool,
    pub jobs: usize,
    /// Bytes written of the selected files, for whoever shows progress.
    pub headway: std::sync::Arc<crate::job::headway::Headway>,
}

pub async fn restore_snapshot(
    store: &dyn ObjectStore,
    snapshot: &Snapshot,
    options: &FileRestoreOptions,
) -> Result<FileRestoreReport> {
    let started = std::time::Instant::now();
    let entries = select_entries(snapshot, &options.paths)?;
    let target = &options.target;
    tokio::fs::create_dir_all(target)
        .await
        .map_err(|e| local_error("create", target, e))?;
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
    // Folders first, each after its parent (a parent's path sorts before its children's), so
    // a link the snapshot replaces with a folder is gone before anything is placed below it.
    let mut folders: Vec<&(&Entry, PathBuf)> = placed
        .iter()
        .filter(|(e, _)| e.kind == EntryKind::Dir)
        .collect();
    folders.sort_by(|(a, _), (b, _)| a.path.cmp(&b.path));
    for (_, destination) in &folders {
        let (root, destination, overwrite) =
            (target.clone(), destination.clone(), options.overwrite);
        tokio::task::spawn_blocking(move || place_folder(&root, &destination, overwrite)).await??;
        report.dirs += 1;
    }
    let files = placed.iter().filter(|(e, _)| e.kind == EntryKind::File);
    options.headway.measure(
        format!("restoring snapshot {}", snapshot.snapshot_id),
        files.clone().map(|(e, _)| e.size).sum(),
    );
    let mut writes = futures::stream::iter(files.map(|(entry, destination)| {
        restore_file(store, entry, target, destination, options.overwrite)
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
        let (entry, root, destination, overwrite) = (
            (*entry).clone(),
            target.clone(),
            destination.clone(),
            options.overwrite,
        );
        tokio::task::spawn_blocking(move || {
            restore_symlink(&entry, &root, &destination, overwrite)
        })
        .await??;
        report.symlinks += 1;
    }
    // Deepest folders first, so setting a child's time does not disturb its parent's.
    for (entry, destination) in folders.iter().rev() {
        let (root, destination, mode, mtime) = (
            target.clone(),
            destination.clone(),
            entry.mode,
            file_time(entry.mtime_ns),
        );
        tokio::task::spawn_blocking(move || set_folder_metadata(&root, &destination, mode, mtime))
            .await??;
    }
    report.duration_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn local_error(operation: &'static str, path: &Path, e: io::Error) -> Error {
    Error::store_io("restore folder", operation, path.display().to_string(), e)
}

/// A link found below the target where the restore needs a folder it may not replace.
fn link_refused(path: &Path) -> Error {
    Error::InvalidValue {
        what: "restore path",
        value: path.display().to_string(),
        expected: "a folder, but it is a symbolic link, which a restore never writes through \
                   (remove the link, or restore into an empty folder)"
            .into(),
    }
}

/// Something already at a path the snapshot holds, which only `--overwrite` replaces.
/// Something that is not a folder stands where the snapshot puts `wanted`: with `overwrite`
/// it is unlinked (a link itself: nothing it points to is touched), without it refused.
fn replace_or_refuse(
    destination: &Path,
    meta: &std::fs::Metadata,
    overwrite: bool,
    wanted: &str,
) -> Result<()> {
    if !overwrite {
        return Err(exists_refused(destination, wanted, describe_existing(meta)));
    }
    std::fs::remove_file(destination).map_err(|e| local_error("replace", destination, e))
}

fn exists_refused(path: &Path, wanted: &str, what_is_there: &str) -> Error {
    Error::InvalidValue {
        what: "restore target",
        value: path.display().to_string(),
        expected: format!(
            "{wanted}, but it is {what_is_there} (pass --overwrite to replace it{})",
            if what_is_there == "a symbolic link" {
                "; the link is removed, never followed"
            } else {
                ""
            }
        ),
    }
}

fn describe_existing(meta: &std::fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_file() {
        "a file"
    } else {
        "a special file"
    }
}

/// `lstat`, with a missing path as None.
fn existing(path: &Path) -> Result<Option<std::fs::Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(local_error("inspect", path, e)),
    }
}

/// Makes sure every folder from `root` down to `folder` exists and is a real folder, creating
/// missing ones one component at a time; a link (or a file) among them is refused by name,
/// never followed or replaced (see the module's comment).
fn safe_folders(root: &Path, folder: &Path) -> Result<()> {
    let relative = folder.strip_prefix(root).map_err(|_| Error::InvalidValue {
        what: "restore path",
        value: folder.display().to_string(),
        expected: format!("a path below {}", root.display()),
    })?;
    let mut current = root.to_path_buf();
    for component in relative.components() {
        current.push(component);
        ensure_folder(&current)?;
    }
    Ok(())
}

/// One component of [`safe_folders`]: `mkdir` never follows a link at its last component,
/// and one made by another file's restore at the same moment is checked again.
fn ensure_folder(path: &Path) -> Result<()> {
    for _ in 0..2 {
        match existing(path)? {
            Some(meta) if meta.file_type().is_symlink() => return Err(link_refused(path)),
            Some(meta) if meta.is_dir() => return Ok(()),
            Some(meta) => {
                return Err(Error::InvalidValue {
                    what: "restore path",
                    value: path.display().to_string(),
                    expected: format!("a folder, but it is {}", describe_existing(&meta)),
                })
            }
            None => match std::fs::create_dir(path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(local_error("create", path, e)),
            },
        }
    }
    Err(local_error(
        "create",
        path,
        io::Error::other("it keeps changing while the restore looks at it"),
    ))
}

/// A folder the snapshot holds: created, kept when it is one already, and anything else there
/// (a link above all) replaced with `overwrite`, refused without it.
fn place_folder(root: &Path, destination: &Path, overwrite: bool) -> Result<()> {
    let parent = destination.parent().unwrap_or(root);
    safe_folders(root, parent)?;
    match existing(destination)? {
        Some(meta) if meta.is_dir() => return Ok(()),
        Some(meta) => replace_or_refuse(destination, &meta, overwrite, "a folder or nothing")?,
        None => {}
    }
    ensure_folder(destination)
}

/// What may be at a file's name before it is written: nothing, or (with `overwrite`) a file or
/// a link, which the rename replaces. A folder is never replaced by a file.
fn check_destination(destination: &Path, overwrite: bool) -> Result<()> {
    match existing(destination)? {
        Some(meta) if meta.is_dir() => Err(Error::InvalidValue {
            what: "restore target",
            value: destination.display().to_string(),
            expected: "a file or nothing, but it is a folder, which a restore never replaces \
                       with a file (move it away first)"
                .into(),
        }),
        Some(meta) if !overwrite => Err(exists_refused(
            destination,
            "a path that does not exist yet",
            describe_existing(&meta),
        )),
        _ => Ok(()),
    }
}

/// Streams one blob into a temporary file beside its destination, checks size and hash, then
/// renames it into place: a damaged blob never becomes a file with the right name, and a link
/// at the name is replaced, not written through.
async fn restore_file(
    store: &dyn ObjectStore,
    entry: &Entry,
    root: &Path,
    destination: &Path,
    overwrite: bool,
) -> Result<u64> {
    let io_error = |operation: &'static str, e: io::Error| local_error(operation, destination, e);
    let Some(hash) = entry.sha256.as_deref() else {
        return Err(Error::InvalidManifest {
            key: entry.path.to_string(),
            reason: "file entry without a content hash".into(),
        });
    };
    let parent = destination.parent().unwrap_or(root).to_path_buf();
    {
        let (root, parent, destination) = (
            root.to_path_buf(),
            parent.clone(),
            destination.to_path_buf(),
        );
        tokio::task::spawn_blocking(move || {
            check_destination(&destination, overwrite)?;
            safe_folders(&root, &parent)
        })
        .await??;
    }
    let temporary = parent.join(format!(
        ".toc-restore-{:016x}.partial",
        rand::random::<u64>()
    ));
    let outcome = async {
        let key = blob_key(hash);
        let mut reader = store.open(&key).await?;
        // New (O_EXCL never follows a link), private until its mode is set.
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(NO_FOLLOW)
            .open(&temporary)
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
        // Through the open file (fchmod, futimens), never by path.
        file.set_permissions(std::fs::Permissions::from_mode(entry.mode))
            .await
            .map_err(|e| io_error("set the mode of", e))?;
        let file = file.into_std().await;
        let mtime = file_time(entry.mtime_ns);
        let (root, parent, destination, temporary) = (
            root.to_path_buf(),
            parent.clone(),
            destination.to_path_buf(),
            temporary.clone(),
        );
        tokio::task::spawn_blocking(move || {
            filetime::set_file_handle_times(&file, None, Some(mtime))
                .map_err(|e| local_error("set times of", &destination, e))?;
            drop(file);
            // Checked again just before the rename: the download may have taken a while.
            check_destination(&destination, overwrite)?;
            safe_folders(&root, &parent)?;
            std::fs::rename(&temporary, &destination)
                .map_err(|e| local_error("rename into", &destination, e))
        })
        .await??;
        Ok(written)
    }
    .await;
    if outcome.is_err() {
        let _ = tokio::fs::remove_file(&temporary).await;
    }
    outcome
}

/// A link the snapshot recorded, restored as a link (never followed, here or later in the
/// restore), its time set on the link itself.
fn restore_symlink(entry: &Entry, root: &Path, destination: &Path, overwrite: bool) -> Result<()> {
    let target = entry.target.clone().ok_or_else(|| Error::InvalidManifest {
        key: entry.path.to_string(),
        reason: "symlink entry without a target".into(),
    })?;
    let parent = destination.parent().unwrap_or(root);
    safe_folders(root, parent)?;
    match existing(destination)? {
        Some(meta) if meta.is_dir() => {
            return Err(Error::InvalidValue {
                what: "restore target",
                value: destination.display().to_string(),
                expected: "a link or nothing, but it is a folder, which a restore never \
                           replaces with a link (move it away first)"
                    .into(),
            })
        }
        Some(meta) => replace_or_refuse(
            destination,
            &meta,
            overwrite,
            "a path that does not exist yet",
        )?,
        None => {}
    }
    std::os::unix::fs::symlink(target.as_path(), destination)
        .map_err(|e| local_error("create symlink", destination, e))?;
    let mtime = file_time(entry.mtime_ns);
    filetime::set_symlink_file_times(destination, mtime, mtime)
        .map_err(|e| local_error("set times of", destination, e))
}

/// A restored folder's mode and time, set through the open folder once `lstat` and the open
/// agree it is the real folder below the target (not a link swapped in).
fn set_folder_metadata(
    root: &Path,
    destination: &Path,
    mode: u32,
    mtime: filetime::FileTime,
) -> Result<()> {
    safe_folders(root, destination)?;
    let seen = existing(destination)?;
    let folder = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(NO_FOLLOW | DIRECTORY)
        .open(destination)
        .map_err(|e| match existing(destination) {
            Ok(Some(meta)) if meta.file_type().is_symlink() => link_refused(destination),
            _ => local_error("open", destination, e),
        })?;
    let opened = folder
        .metadata()
        .map_err(|e| local_error("inspect", destination, e))?;
    let same = seen.is_some_and(|seen| {
        seen.is_dir() && seen.dev() == opened.dev() && seen.ino() == opened.ino()
    });
    if !same || !opened.is_dir() {
        return Err(link_refused(destination));
    }
    folder
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| local_error("set the mode of", destination, e))?;
    filetime::set_file_handle_times(&folder, None, Some(mtime))
        .map_err(|e| local_error("set times of", destination, e))
}

fn file_time(mtime_ns: i64) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(
        mtime_ns.div_euclid(1_000_000_000),
        mtime_ns.rem_euclid(1_000_000_000) as u32,
    )
}

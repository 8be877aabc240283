//! What a file backup reads: a folder (an EFS mount in Lambda, any folder locally) or an S3
//! prefix, walked into snapshot entries with the exclude patterns applied.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use tokio::io::AsyncRead;

use super::path::RawPath;
use super::snapshot::{Entry, EntryKind, Problem};
use crate::error::{Error, Result};
use crate::store::{open_store, ObjectReader, ObjectStore};

/// The strategy document's `tar --exclude` list for the application tree: logs, caches,
/// sessions, compiled views, `node_modules` and `.git`. The folders themselves are kept empty,
/// as tar's `dir/*` patterns keep them.
pub const APPLICATION_EXCLUDES: &[&str] = &[
    "storage/logs/*",
    "storage/framework/cache/*",
    "storage/framework/sessions/*",
    "storage/framework/views/*",
    "node_modules",
    ".git",
];

/// Exclude patterns with tar's meaning: a pattern without `/` matches a name anywhere in the
/// tree; one with `/` matches from the source's root; `*` stays within one folder level.
#[derive(Debug, Clone)]
pub struct Excludes {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Excludes {
    pub fn new(patterns: &[String]) -> Result<Excludes> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let trimmed = pattern.trim().trim_start_matches('/').trim_end_matches('/');
            let anchored = if trimmed.contains('/') {
                trimmed.to_string()
            } else {
                format!("**/{trimmed}")
            };
            let glob = GlobBuilder::new(&anchored)
                .literal_separator(true)
                .build()
                .ok()
                .filter(|_| !trimmed.is_empty())
                .ok_or_else(|| Error::InvalidValue {
                    what: "exclude pattern",
                    value: pattern.clone(),
                    expected: "a glob such as node_modules, storage/logs/* or *.tmp".into(),
                })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| Error::InvalidValue {
            what: "exclude patterns",
            value: patterns.join(", "),
            expected: format!("valid globs ({e})"),
        })?;
        Ok(Excludes {
            patterns: patterns.to_vec(),
            set,
        })
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    pub fn matches(&self, path: &RawPath) -> bool {
        self.set.is_match(path.as_path())
    }
}

pub enum FileSource {
    Directory {
        root: PathBuf,
    },
    Objects {
        store: Arc<dyn ObjectStore>,
        location: String,
    },
}

impl std::fmt::Display for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileSource::Directory { root } => write!(f, "{}", root.display()),
            FileSource::Objects { location, .. } => write!(f, "{location}"),
        }
    }
}

impl FileSource {
    /// A folder path, or `s3://BUCKET/PREFIX`; checked before anything is read.
    pub async fn open(location: &str) -> Result<FileSource> {
        let trimmed = location.trim();
        if trimmed.starts_with("s3://") {
            let store = open_store(trimmed).await?;
            store.check().await?;
            return Ok(FileSource::Objects {
                store,
                location: trimmed.to_string(),
            });
        }
        let root = PathBuf::from(trimmed);
        match tokio::fs::metadata(&root).await {
            Ok(meta) if meta.is_dir() => Ok(FileSource::Directory { root }),
            Ok(_) => Err(Error::InvalidValue {
                what: "file source",
                value: location.to_string(),
                expected: "a folder or s3://BUCKET/PREFIX; this is a file".into(),
            }),
            Err(e) => Err(Error::InvalidValue {
                what: "file source",
                value: location.to_string(),
                expected: format!("a folder or s3://BUCKET/PREFIX that can be read ({e})"),
            }),
        }
    }

    /// Every entry to back up, in path order, and the paths that cannot be.
    pub async fn scan(&self, excludes: &Excludes) -> Result<(Vec<Entry>, Vec<Problem>)> {
        match self {
            FileSource::Directory { root } => {
                let root = root.clone();
                let excludes = excludes.clone();
                tokio::task::spawn_blocking(move || Ok(scan_directory(&root, &excludes))).await?
            }
            FileSource::Objects { store, .. } => scan_objects(store.as_ref(), excludes).await,
        }
    }

    /// The entry as it is now (None: it has gone), to tell whether it changed while read.
    pub async fn stat(&self, path: &RawPath) -> Result<Option<Entry>> {
        match self {
            FileSource::Directory { root } => {
                let root = root.clone();
                let path = path.clone();
                let full = root.join(path.as_path());
                match tokio::task::spawn_blocking(move || std::fs::symlink_metadata(&full)).await? {
                    Ok(meta) => Ok(Some(entry_from_metadata(path, &meta))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(self.io_error(path_key(&path), e)),
                }
            }
            FileSource::Objects { store, .. } => {
                let key = path_key(path);
                Ok(store
                    .list(&key)
                    .await?
                    .into_iter()
                    .find(|object| object.key == key)
                    .map(entry_from_object))
            }
        }
    }

    /// Streams a file's content; a file that has gone is [`Error::MissingFile`].
    pub async fn read(&self, path: &RawPath) -> Result<ObjectReader> {
        match self {
            FileSource::Directory { root } => {
                let full = root.join(path.as_path());
                match tokio::fs::File::open(&full).await {
                    Ok(file) => Ok(Box::pin(tokio::io::BufReader::with_capacity(1 << 18, file))
                        as std::pin::Pin<Box<dyn AsyncRead + Send>>),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::MissingFile {
                        file: full.display().to_string(),
                    }),
                    Err(e) => Err(self.io_error(path_key(path), e)),
                }
            }
            FileSource::Objects { store, .. } => store.open(&path_key(path)).await,
        }
    }

    /// Whether reads can tell a torn copy by looking again (folders can; S3 cannot tear).
    pub fn can_tear(&self) -> bool {
        matches!(self, FileSource::Directory { .. })
    }

    fn io_error(&self, key: String, source: io::Error) -> Error {
        Error::store_io(self.to_string(), "read", key, source)
    }
}

fn path_key(path: &RawPath) -> String {
    String::from_utf8_lossy(path.as_bytes()).into_owned()
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

/// The entry's recorded state. Inode and change time go in `change`: content rewritten with
/// its old modification time put back still changes them.
pub fn entry_from_metadata(path: RawPath, meta: &std::fs::Metadata) -> Entry {
    let file_type = meta.file_type();
    let kind = if file_type.is_symlink() {
        EntryKind::Symlink
    } else if file_type.is_dir() {
        EntryKind::Dir
    } else {
        EntryKind::File
    };
    Entry {
        path,
        kind,
        size: if kind == EntryKind::File {
            meta.len()
        } else {
            0
        },
        mode: meta.mode() & 0o7777,
        mtime_ns: mtime_ns(meta),
        sha256: None,
        target: None,
        change: (kind == EntryKind::File).then(|| {
            format!(
                "{}:{}:{}.{:09}",
                meta.dev(),
                meta.ino(),
                meta.ctime(),
                meta.ctime_nsec()
            )
        }),
    }
}

fn scan_directory(root: &Path, excludes: &Excludes) -> (Vec<Entry>, Vec<Problem>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter()
        .filter_entry(|item| {
            RawPath::relative(root, item.path()).is_none_or(|path| !excludes.matches(&path))
        });
    for item in walker {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                let path = e
                    .path()
                    .and_then(|p| RawPath::relative(root, p))
                    .unwrap_or_default();
                problems.push(Problem {
                    path,
                    reason: format!("could not be read: {e}"),
                });
                continue;
            }
        };
        let Some(path) = RawPath::relative(root, item.path()) else {
            continue;
        };
        let meta = match item.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                problems.push(Problem {
                    path,
                    reason: format!("vanished or unreadable while scanning: {e}"),
                });
                continue;
            }
        };
        let file_type = meta.file_type();
        if !(file_type.is_file() || file_type.is_dir() || file_type.is_symlink()) {
            problems.push(Problem {
                path,
                reason:
                    "is a socket, pipe or device; only files, folders and symlinks are backed up"
                        .into(),
            });
            continue;
        }
        let mut entry = entry_from_metadata(path, &meta);
        if entry.kind == EntryKind::Symlink {
            match std::fs::read_link(item.path()) {
                Ok(target) => {
                    entry.target = Some(RawPath::from_bytes(
                        std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()),
                    ))
                }
                Err(e) => {
                    problems.push(Problem {
                        path: entry.path,
                        reason: format!("symlink could not be read: {e}"),
                    });
                    continue;
                }
            }
        }
        entries.push(entry);
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    (entries, problems)
}

async fn scan_objects(
    store: &dyn ObjectStore,
    excludes: &Excludes,
) -> Result<(Vec<Entry>, Vec<Problem>)> {
    let mut entries = Vec::new();
    for object in store.list("").await? {
        // Zero-byte "folder" markers that consoles create are not content.
        if object.key.ends_with('/') {
            continue;
        }
        let path = RawPath::from_bytes(object.key.as_bytes());
        let excluded = {
            let mut prefix = Vec::new();
            path.as_bytes().split(|b| *b == b'/').any(|part| {
                if !prefix.is_empty() {
                    prefix.push(b'/');
                }
                prefix.extend_from_slice(part);
                excludes.matches(&RawPath::from_bytes(prefix.clone()))
            })
        };
        if excluded {
            continue;
        }
        entries.push(entry_from_object(object));
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((entries, Vec::new()))
}

/// An S3 object as a file entry: S3 has no modes, and the ETag changes with every write.
fn entry_from_object(object: crate::store::ObjectInfo) -> Entry {
    Entry {
        path: RawPath::from_bytes(object.key.as_bytes()),
        kind: EntryKind::File,
        size: object.size,
        mode: 0o644,
        mtime_ns: object
            .modified
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(0),
        sha256: None,
        target: None,
        change: object
            .etag
            .or_else(|| object.modified.map(|t| t.to_rfc3339())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excludes(patterns: &[&str]) -> Excludes {
        Excludes::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn patterns_mean_what_tar_means() {
        let app = excludes(APPLICATION_EXCLUDES);
        for excluded in [
            "storage/logs/laravel.log",
            "storage/framework/sessions/abc",
            "node_modules",
            "resources/js/node_modules",
            ".git",
            "vendor/pkg/.git",
        ] {
            assert!(app.matches(&RawPath::from(excluded)), "{excluded}");
        }
        for kept in [
            "storage/logs",
            "storage/app/uploads/logs.pdf",
            "app/Models/Student.php",
            "node_modules_backup.txt",
            ".github",
        ] {
            assert!(!app.matches(&RawPath::from(kept)), "{kept}");
        }
    }

    #[test]
    fn a_bad_pattern_is_named() {
        let message = Excludes::new(&["[unclosed".to_string()])
            .unwrap_err()
            .to_string();
        assert!(message.contains("[unclosed"), "{message}");
    }
}

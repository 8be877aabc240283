//! The local-folder store: the embedded default, and what a laptop or server restores from.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::fs;
use tokio::io::AsyncWriteExt;

use super::{validate_key, ObjectInfo, ObjectReader, ObjectStore, ObjectWriter};
use crate::error::{Error, Result};

const PARTIAL_MARKER: &str = ".partial-";

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn io_error(&self, operation: &'static str, key: &str, source: io::Error) -> Error {
        Error::store_io(self.to_string(), operation, key, source)
    }
}

impl std::fmt::Display for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.root.display())
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn check(&self) -> Result<()> {
        match fs::metadata(&self.root).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(Error::InvalidStore {
                location: self.root.display().to_string(),
                reason: "it is a file, not a directory".into(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::StoreMissing(self.root.clone()))
            }
            Err(e) => Err(self.io_error("inspect", "", e)),
        }
    }

    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        let path = self.path_of(key)?;
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partial = parent.join(format!(
            ".{file_name}{PARTIAL_MARKER}{:016x}",
            rand::random::<u64>()
        ));
        // A delete elsewhere removes folders it leaves empty; if it removes ours between
        // creating it and creating the file, create it again.
        let mut attempts = 0;
        let file = loop {
            attempts += 1;
            fs::create_dir_all(&parent)
                .await
                .map_err(|e| self.io_error("create folder for", key, e))?;
            match fs::File::create(&partial).await {
                Ok(file) => break file,
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 => continue,
                Err(e) => return Err(self.io_error("create", key, e)),
            }
        };
        Ok(Box::new(LocalWriter {
            store: self.to_string(),
            key: key.to_string(),
            file: Some(file),
            partial,
            path,
            written: 0,
        }))
    }

    async fn open(&self, key: &str) -> Result<ObjectReader> {
        let path = self.path_of(key)?;
        match fs::File::open(&path).await {
            Ok(file) => Ok(Box::pin(tokio::io::BufReader::with_capacity(1 << 20, file))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::MissingFile {
                file: key.to_string(),
            }),
            Err(e) => Err(self.io_error("open", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.check().await?;
        let root = self.root.clone();
        let store = self.to_string();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            walk(&root, &root, &prefix, &mut found)
                .map_err(|e| Error::store_io(store, "list", prefix.clone(), e))?;
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        })
        .await?
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>> {
        Ok(self.get(key).await?.map(|bytes| {
            let tag = content_tag(&bytes);
            (bytes, tag)
        }))
    }

    async fn put_if(&self, key: &str, bytes: Bytes, expected: Option<&str>) -> Result<bool> {
        let path = self.path_of(key)?;
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expected = expected.map(str::to_string);
        let failed = {
            let store = self.to_string();
            let key = key.to_string();
            move |e: io::Error| Error::store_io(store.clone(), "write", key.clone(), e)
        };
        // Writers on this machine take turns through an OS lock on a file beside the object
        // (released when the process ends, however it ends); the compare and the rename happen
        // while it is held.
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&parent).map_err(&failed)?;
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(parent.join(format!(".{name}{PARTIAL_MARKER}lock")))
                .map_err(&failed)?;
            lock.lock().map_err(&failed)?;
            let current = match std::fs::read(&path) {
                Ok(bytes) => Some(content_tag(&bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(failed(e)),
            };
            if current != expected {
                return Ok(false);
            }
            let partial = parent.join(format!(
                ".{name}{PARTIAL_MARKER}{:016x}",
                rand::random::<u64>()
            ));
            std::fs::write(&partial, &bytes).map_err(&failed)?;
            std::fs::rename(&partial, &path).map_err(|e| {
                let _ = std::fs::remove_file(&partial);
                failed(e)
            })?;
            Ok(true)
        })
        .await?
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        match fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io_error("delete", key, e)),
        }
        self.remove_empty_parents(&path).await;
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let path = self.path_of(prefix.trim_end_matches('/'))?;
        match fs::remove_dir_all(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io_error("delete", prefix, e)),
        }
        self.remove_empty_parents(&path).await;
        Ok(())
    }
}

impl LocalStore {
    /// Deletes leave empty folders behind; remove them up to the root so listings stay clean.
    async fn remove_empty_parents(&self, path: &Path) {
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(current) = dir {
            if current == self.root || fs::remove_dir(&current).await.is_err() {
                break;
            }
            dir = current.parent().map(Path::to_path_buf);
        }
    }
}

fn walk(root: &Path, dir: &Path, prefix: &str, found: &mut Vec<ObjectInfo>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(root) else {
            continue;
        };
        let key = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            // Only descend where the prefix can still match.
            let as_dir = format!("{key}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(root, &path, prefix, found)?;
            }
        } else if file_type.is_file() && key.starts_with(prefix) && !is_partial(&key) {
            let meta = entry.metadata()?;
            found.push(ObjectInfo {
                key,
                size: meta.len(),
                modified: meta.modified().ok().map(Into::into),
                etag: None,
                storage_class: None,
            });
        }
    }
    Ok(())
}

/// A folder's stand-in for an ETag: the content's hash.
fn content_tag(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn is_partial(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with('.') && name.contains(PARTIAL_MARKER))
}

struct LocalWriter {
    store: String,
    key: String,
    file: Option<fs::File>,
    partial: PathBuf,
    path: PathBuf,
    written: u64,
}

impl LocalWriter {
    fn io_error(&self, operation: &'static str, source: io::Error) -> Error {
        Error::store_io(self.store.clone(), operation, self.key.clone(), source)
    }
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(self.io_error("write", io::Error::other("writer already closed")));
        };
        if let Err(e) = file.write_all(&chunk).await {
            return Err(self.io_error("write", e));
        }
        self.written += chunk.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64> {
        let Some(mut file) = self.file.take() else {
            return Err(self.io_error("finish", io::Error::other("writer already closed")));
        };
        let outcome = async {
            file.flush().await?;
            file.sync_all().await?;
            drop(file);
            fs::rename(&self.partial, &self.path).await?;
            // The rename is durable only once the folder itself is synced.
            if let Some(parent) = self.path.parent() {
                fs::File::open(parent).await?.sync_all().await?;
            }
            Ok::<_, io::Error>(())
        }
        .await;
        match outcome {
            Ok(()) => Ok(self.written),
            Err(e) => {
                let _ = fs::remove_file(&self.partial).await;
                Err(self.io_error("finish", e))
            }
        }
    }

    async fn abort(mut self: Box<Self>) {
        self.file.take();
        let _ = fs::remove_file(&self.partial).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_appear_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let mut writer = store.create("a/b/file.sql.gz").await.unwrap();
        writer.write(Bytes::from_static(b"hello")).await.unwrap();
        assert!(store.list("").await.unwrap().is_empty());
        assert_eq!(writer.finish().await.unwrap(), 5);
        let listed = store.list("a/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "a/b/file.sql.gz");
        assert_eq!(
            store.get("a/b/file.sql.gz").await.unwrap().unwrap(),
            b"hello"
        );
    }

    #[tokio::test]
    async fn aborted_writes_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let mut writer = store.create("x/y").await.unwrap();
        writer.write(Bytes::from_static(b"half")).await.unwrap();
        writer.abort().await;
        assert!(store.list("").await.unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.path().join("x")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn missing_root_and_bad_keys_are_clear_errors() {
        let store = LocalStore::new("/nonexistent/toc-backups");
        let message = store.check().await.unwrap_err().to_string();
        assert!(message.contains("/nonexistent/toc-backups"), "{message}");
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        assert!(store.create("../escape").await.is_err());
        assert!(matches!(
            store.open("no/such").await,
            Err(Error::MissingFile { .. })
        ));
        store.delete("a/b").await.unwrap();
    }
}

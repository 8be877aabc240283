//! A snapshot as a standard `tar.gz` stream, the strategy document's format, for people and
//! tools that want one archive: `toc-backup files export … | tar -xzf -`.

use std::io::{self, Read, Write};
use std::sync::Arc;

use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use tokio_util::io::SyncIoBridge;

use super::path::RawPath;
use super::restore::select_entries;
use super::snapshot::{blob_key, EntryKind, Snapshot};
use crate::error::{Error, Result};
use crate::store::ObjectStore;

/// Writes the snapshot (or the parts under `paths`) to `output` as gzip-compressed tar,
/// checking every file's hash on the way; returns the number of entries written. On a damaged
/// blob it stops with an error, leaving an archive that `tar` will report as truncated.
pub async fn export_snapshot(
    store: Arc<dyn ObjectStore>,
    snapshot: Snapshot,
    paths: Vec<RawPath>,
    output: Box<dyn Write + Send>,
    headway: std::sync::Arc<crate::job::headway::Headway>,
) -> Result<u64> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let entries = select_entries(&snapshot, &paths)?;
        headway.measure(
            format!("exporting snapshot {}", snapshot.snapshot_id),
            entries
                .iter()
                .filter(|e| e.kind == EntryKind::File)
                .map(|e| e.size)
                .sum(),
        );
        let io_error = |e: io::Error| Error::store_io("export", "write", "tar.gz stream", e);
        let mut archive =
            tar::Builder::new(GzEncoder::new(output, flate2::Compression::new(6)));
        archive.follow_symlinks(false);
        let mut written = 0u64;
        for entry in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(entry.mode);
            header.set_mtime(u64::try_from(entry.mtime_ns.div_euclid(1_000_000_000)).unwrap_or(0));
            match entry.kind {
                EntryKind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    let mut name = entry.path.as_bytes().to_vec();
                    name.push(b'/');
                    archive
                        .append_data(&mut header, RawPath::from_bytes(name).as_path(), io::empty())
                        .map_err(io_error)?;
                }
                EntryKind::Symlink => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    let target = entry.target.clone().unwrap_or_default();
                    archive
                        .append_link(&mut header, entry.path.as_path(), target.as_path())
                        .map_err(io_error)?;
                }
                EntryKind::File => {
                    let hash = entry.sha256.clone().unwrap_or_default();
                    let key = blob_key(&hash);
                    let reader = handle.block_on(store.open(&key))?;
                    let mut checked = CheckedReader {
                        inner: SyncIoBridge::new_with_handle(reader, handle.clone()),
                        hasher: Sha256::new(),
                        bytes: 0,
                    };
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(entry.size);
                    archive
                        .append_data(&mut header, entry.path.as_path(), &mut checked)
                        .map_err(|e| Error::CorruptFile {
                            file: key.clone(),
                            detail: format!("while exporting {}: {e}", entry.path),
                        })?;
                    headway.bytes_done(checked.bytes);
                    let actual = hex::encode(checked.hasher.finalize());
                    if checked.bytes != entry.size || actual != hash {
                        return Err(Error::CorruptFile {
                            file: key,
                            detail: format!(
                                "{} bytes with SHA-256 {actual}, the snapshot says {} bytes with {hash} for {}",
                                checked.bytes, entry.size, entry.path
                            ),
                        });
                    }
                }
            }
            written += 1;
        }
        let mut encoder = archive.into_inner().map_err(io_error)?;
        encoder.flush().map_err(io_error)?;
        encoder.finish().map_err(io_error)?.flush().map_err(io_error)?;
        Ok(written)
    })
    .await?
}

struct CheckedReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for CheckedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

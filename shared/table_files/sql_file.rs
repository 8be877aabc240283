//! One compressed SQL file on its way into the store.
//!
//! The dump appends SQL text to [`SqlFile::buffer`]; full buffers go over a bounded channel to a
//! blocking thread that gzips them (as a series of gzip members, see [`GzipMembers`]) and hashes
//! the result, and the compressed chunks go over another bounded
//! channel to a task that writes them to the store. Reading rows, compressing and uploading run
//! at the same time, and memory stays at a few buffers whatever the table's size.

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::store::ObjectStore;

const SEND_AT: usize = 256 * 1024;
const MEMBER_BYTES: usize = 1024 * 1024;
const CHANNEL_DEPTH: usize = 4;
/// How long a failed job waits for its uploads to stop before it discards its files anyway:
/// well inside the Lambda deadline margin (15 s by default), so the alert still goes out. An
/// upload that lands later is tagged `partial` in S3 and expired by the lifecycle.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The upload tasks of one job's files. Each file's upload runs on a task of its own, so it
/// outlives a job future that is dropped (an interrupt) or returns early (an error elsewhere):
/// an upload already told "done" still renames or completes its object. A failed job calls
/// [`Uploads::settle`] before it discards its prefix, or such a file lands after the discard
/// and shows as an unsealed backup.
#[derive(Clone, Default)]
pub struct Uploads(TaskTracker);

impl Uploads {
    /// Waits until every upload started so far has finished or given up.
    pub async fn settle(&self) {
        self.0.close();
        if tokio::time::timeout(SETTLE_LIMIT, self.0.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.0.len(),
                "uploads still running after {} s; discarding the backup's files anyway",
                SETTLE_LIMIT.as_secs()
            );
        }
    }
}

/// Compresses SQL as a series of independent gzip members of about [`MEMBER_BYTES`] each.
///
/// A file of concatenated members is standard gzip (`gunzip`, `zcat` and every decoder read it
/// whole). libdeflate compresses a whole buffer at once, about twice as fast as zlib's
/// streaming deflate at the same level and a little smaller; starting a new member every MiB
/// costs a few hundred bytes.
struct GzipMembers {
    compressor: libdeflater::Compressor,
    /// Reused for every member: sized once for the largest member's worst case.
    out: Vec<u8>,
}

impl GzipMembers {
    fn new(level: u32) -> Result<Self> {
        let level =
            libdeflater::CompressionLvl::new(level as i32).map_err(|e| Error::InvalidValue {
                what: "compression level",
                value: level.to_string(),
                expected: format!("1 to 12 ({e:?})"),
            })?;
        Ok(GzipMembers {
            compressor: libdeflater::Compressor::new(level),
            out: Vec::new(),
        })
    }

    fn compress(&mut self, input: &[u8]) -> Result<Vec<u8>> {
        let bound = self.compressor.gzip_compress_bound(input.len());
        if self.out.len() < bound {
            self.out.resize(bound, 0);
        }
        let written = self
            .compressor
            .gzip_compress(input, &mut self.out)
            .map_err(|e| Error::Task(format!("compressing: {e:?}")))?;
        Ok(self.out[..written].to_vec())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub key: String,
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    pub sha256: String,
}

enum Compressed {
    Chunk(Bytes),
    /// Everything was compressed and sent; the upload may be completed.
    Done,
}

pub struct SqlFile {
    key: String,
    buffer: Vec<u8>,
    uncompressed: u64,
    to_compressor: Option<mpsc::Sender<Option<Vec<u8>>>>,
    compressor: JoinHandle<Result<(u64, String)>>,
    uploader: JoinHandle<Result<u64>>,
}

impl SqlFile {
    pub async fn create(
        store: Arc<dyn ObjectStore>,
        key: String,
        level: u32,
        uploads: &Uploads,
    ) -> Result<SqlFile> {
        let mut writer = store.create(&key).await?;
        let (to_compressor, mut from_dump) = mpsc::channel::<Option<Vec<u8>>>(CHANNEL_DEPTH);
        let (to_uploader, mut from_compressor) = mpsc::channel::<Compressed>(CHANNEL_DEPTH);

        let compressor = tokio::task::spawn_blocking(move || -> Result<(u64, String)> {
            let mut members = GzipMembers::new(level)?;
            let mut pending: Vec<u8> = Vec::with_capacity(MEMBER_BYTES + SEND_AT);
            let mut members_written = 0usize;
            let mut hasher = Sha256::new();
            let mut compressed = 0u64;
            let mut ship = |out: Vec<u8>| -> Result<()> {
                hasher.update(&out);
                compressed += out.len() as u64;
                to_uploader
                    .blocking_send(Compressed::Chunk(Bytes::from(out)))
                    .map_err(|_| Error::Task("the upload stopped".into()))
            };
            // `None` is the dump's "that was all"; a channel closed without it means the dump
            // gave up, and the file is abandoned.
            loop {
                match from_dump.blocking_recv() {
                    Some(Some(chunk)) => {
                        pending.extend_from_slice(&chunk);
                        if pending.len() >= MEMBER_BYTES {
                            ship(members.compress(&pending)?)?;
                            members_written += 1;
                            pending.clear();
                        }
                    }
                    Some(None) => break,
                    None => {
                        return Err(Error::Task("file abandoned before it was complete".into()))
                    }
                }
            }
            // The last member, or the only one of an empty file (which is still valid gzip).
            if !pending.is_empty() || members_written == 0 {
                ship(members.compress(&pending)?)?;
            }
            to_uploader
                .blocking_send(Compressed::Done)
                .map_err(|_| Error::Task("the upload stopped".into()))?;
            Ok((compressed, hex::encode(hasher.finalize())))
        });

        let uploader = uploads.0.spawn(async move {
            let mut written_ok = false;
            while let Some(message) = from_compressor.recv().await {
                match message {
                    Compressed::Chunk(chunk) => {
                        if let Err(e) = writer.write(chunk).await {
                            writer.abort().await;
                            return Err(e);
                        }
                    }
                    Compressed::Done => {
                        written_ok = true;
                        break;
                    }
                }
            }
            if written_ok {
                writer.finish().await
            } else {
                writer.abort().await;
                Err(Error::Task("file abandoned before it was complete".into()))
            }
        });

        Ok(SqlFile {
            key,
            buffer: Vec::with_capacity(SEND_AT + 64 * 1024),
            uncompressed: 0,
            to_compressor: Some(to_compressor),
            compressor,
            uploader,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Where callers append SQL; call [`SqlFile::flush_if_full`] after appending.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }

    /// Uncompressed bytes so far, including the buffer.
    pub fn uncompressed_len(&self) -> u64 {
        self.uncompressed + self.buffer.len() as u64
    }

    pub async fn flush_if_full(&mut self) -> Result<()> {
        if self.buffer.len() >= SEND_AT {
            self.send_buffer().await?;
        }
        Ok(())
    }

    async fn send_buffer(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(SEND_AT + 64 * 1024));
        self.uncompressed += chunk.len() as u64;
        let sent = match &self.to_compressor {
            Some(tx) => tx.send(Some(chunk)).await.is_ok(),
            None => false,
        };
        if !sent {
            // The pipeline stopped; its own error says why.
            return Err(self.failure().await);
        }
        Ok(())
    }

    async fn failure(&mut self) -> Error {
        self.to_compressor.take();
        match (&mut self.compressor).await {
            Ok(Err(e)) => return e,
            Err(e) => return e.into(),
            Ok(Ok(_)) => {}
        }
        match (&mut self.uploader).await {
            Ok(Err(e)) => e,
            Err(e) => e.into(),
            Ok(Ok(_)) => Error::Task(format!("writing {} stopped unexpectedly", self.key)),
        }
    }

    /// Completes the file: the object exists in the store when this returns Ok.
    pub async fn finish(mut self) -> Result<StoredFile> {
        self.send_buffer().await?;
        let ended = match self.to_compressor.take() {
            Some(tx) => tx.send(None).await.is_ok(),
            None => false,
        };
        if !ended {
            return Err(self.failure().await);
        }
        let (bytes, sha256) = match (&mut self.compressor).await {
            Ok(Ok(done)) => done,
            other => {
                let compressor_error = match other {
                    Ok(Err(e)) => e,
                    Err(e) => e.into(),
                    Ok(Ok(_)) => Error::Task("unreachable".into()),
                };
                // A failed upload stops the compressor too; the upload's error is the cause.
                return Err(match (&mut self.uploader).await {
                    Ok(Err(e)) => e,
                    Err(e) => e.into(),
                    Ok(Ok(_)) => compressor_error,
                });
            }
        };
        let stored = (&mut self.uploader).await??;
        if stored != bytes {
            return Err(Error::Task(format!(
                "{}: stored {stored} bytes but compressed {bytes}",
                self.key
            )));
        }
        Ok(StoredFile {
            key: self.key.clone(),
            bytes,
            uncompressed_bytes: self.uncompressed,
            sha256,
        })
    }
}

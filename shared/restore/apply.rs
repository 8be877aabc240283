//! Applying one backup file: stream it from the store, check its hash, split it into
//! statements off the async threads, and run them in order on one connection.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;

use super::splitter::Splitter;
use crate::error::{Error, Result};
use crate::manifest::FileEntry;
use crate::store::ObjectStore;

const READ_CHUNK: usize = 256 * 1024;

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

pub async fn apply_file(
    store: &dyn ObjectStore,
    prefix: &str,
    file: &FileEntry,
    conn: &mut Conn,
) -> Result<()> {
    let key = format!("{prefix}{}", file.name);
    let reader = store.open(&key).await?;
    let (to_runner, mut statements) = mpsc::channel::<Result<Vec<Vec<u8>>>>(4);
    let expected_sha = file.sha256.clone();
    let expected_bytes = file.bytes;
    let name = file.name.clone();

    let reading = tokio::task::spawn_blocking(move || {
        let outcome = (|| -> Result<()> {
            let io_error = |e: io::Error| Error::CorruptFile {
                file: name.clone(),
                detail: format!("cannot be read as gzip: {e}"),
            };
            let hashing = HashingReader {
                inner: SyncIoBridge::new(reader),
                hasher: Sha256::new(),
                bytes: 0,
            };
            let mut decoder = MultiGzDecoder::new(hashing);
            let mut splitter = Splitter::default();
            let mut buffer = vec![0u8; READ_CHUNK];
            let mut batch = Vec::new();
            loop {
                let n = decoder.read(&mut buffer).map_err(io_error)?;
                if n == 0 {
                    break;
                }
                splitter.push(&buffer[..n], &mut batch);
                if !batch.is_empty()
                    && to_runner
                        .blocking_send(Ok(std::mem::take(&mut batch)))
                        .is_err()
                {
                    return Ok(()); // the runner stopped and reports why
                }
            }
            splitter
                .finish(&mut batch)
                .map_err(|reason| Error::MalformedSql {
                    file: name.clone(),
                    reason,
                })?;
            let mut hashing = decoder.into_inner();
            io::copy(&mut hashing, &mut io::sink()).map_err(io_error)?;
            let actual = hex::encode(hashing.hasher.finalize());
            if hashing.bytes != expected_bytes || actual != expected_sha {
                return Err(Error::CorruptFile {
                    file: name.clone(),
                    detail: format!("changed while it was being restored (SHA-256 {actual}, expected {expected_sha})"),
                });
            }
            if !batch.is_empty() {
                let _ = to_runner.blocking_send(Ok(batch));
            }
            Ok(())
        })();
        if let Err(e) = outcome {
            let _ = to_runner.blocking_send(Err(e));
        }
    });

    let mut index = 0usize;
    while let Some(batch) = statements.recv().await {
        for statement in batch? {
            index += 1;
            conn.query_drop(statement)
                .await
                .map_err(|source| Error::Statement {
                    file: file.name.clone(),
                    index,
                    source,
                })?;
        }
    }
    reading.await?;
    Ok(())
}

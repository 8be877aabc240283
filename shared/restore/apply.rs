//! Applying one backup file: stream it from the store, check its hash, split it into
//! statements off the async threads, and run them in order on one connection.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;

use super::definer::{without_definer, DefinerMode};
use super::progress;
use super::splitter::Splitter;
use crate::error::{Error, Result};
use crate::manifest::FileEntry;
use crate::store::ObjectStore;
use crate::verify::HashingReader;

const READ_CHUNK: usize = 256 * 1024;

/// Loads `file` on `conn`. With a `step`, the file's completion is recorded in the restore's
/// progress table inside the file's own transaction, just before its COMMIT; returns whether
/// that happened (files without a transaction of their own are recorded by the caller).
/// `DefinerMode::Current` takes the DEFINER clause out of every CREATE statement, counting
/// each in `rewritten`.
pub async fn apply_file(
    store: &dyn ObjectStore,
    prefix: &str,
    file: &FileEntry,
    conn: &mut Conn,
    step: Option<&str>,
    definer: DefinerMode,
    rewritten: &mut usize,
) -> Result<bool> {
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
            let hashing = HashingReader::new(SyncIoBridge::new(reader));
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
            // The file was verified before loading; this catches a change since.
            decoder
                .into_inner()
                .check(&name, expected_bytes, &expected_sha)?;
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
    let mut recorded = false;
    while let Some(batch) = statements.recv().await {
        for statement in batch? {
            index += 1;
            if let Some(step) = step.filter(|_| statement.eq_ignore_ascii_case(b"COMMIT")) {
                progress::mark(conn, step, None).await?;
                recorded = true;
            }
            let statement = match definer {
                DefinerMode::Current => match std::str::from_utf8(&statement)
                    .ok()
                    .and_then(without_definer)
                {
                    Some(stripped) => {
                        *rewritten += 1;
                        stripped.into_bytes()
                    }
                    None => statement,
                },
                DefinerMode::Keep => statement,
            };
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
    Ok(recorded)
}

/// A small stored file (object definitions, accounts) read whole, checked against its manifest
/// entry and split into statements, for the steps that look at statements before running
/// them.
pub(super) async fn read_statements(
    store: &dyn ObjectStore,
    prefix: &str,
    file: &FileEntry,
) -> Result<Vec<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let mut compressed = Vec::new();
    store
        .open(&format!("{prefix}{}", file.name))
        .await?
        .read_to_end(&mut compressed)
        .await
        .map_err(|e| Error::CorruptFile {
            file: file.name.clone(),
            detail: format!("cannot be read: {e}"),
        })?;
    HashingReader::new(&compressed[..]).check(&file.name, file.bytes, &file.sha256)?;
    let mut text = Vec::new();
    MultiGzDecoder::new(&compressed[..])
        .read_to_end(&mut text)
        .map_err(|e| Error::CorruptFile {
            file: file.name.clone(),
            detail: format!("cannot be read as gzip: {e}"),
        })?;
    let mut statements = Vec::new();
    let mut splitter = Splitter::default();
    splitter.push(&text, &mut statements);
    splitter
        .finish(&mut statements)
        .map_err(|reason| Error::MalformedSql {
            file: file.name.clone(),
            reason,
        })?;
    Ok(statements)
}

//! One table's change since the previous link: its rows (in key order) merged with the
//! previous key state, both streamed, so memory stays flat however big the table is.
//!
//! A row is written again when its key is new, its hash differs from the one recorded, or its
//! tracking column falls in the window; a recorded key that no longer exists is deleted. Each
//! rewritten key is deleted first, so applying the same incremental twice changes nothing.
//!
//! A previous state that is gone (key states are kept apart and expire: `layout::KEY_STATES_PREFIX`)
//! is rebuilt from the table: the link then empties the table and writes every row, so what it
//! restores is exact without knowing what changed, and the next link diffs against its new state.

use std::collections::VecDeque;

use mysql_async::{Conn, Value};
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;

use crate::error::{Error, Result};
use crate::mysql::fingerprint::{Fingerprint, RowHash};
use crate::mysql::quote_ident;
use crate::mysql::schema::{ReadRow, Table};
use crate::store::ObjectStore;
use crate::table_files::data_files::{DataFiles, InsertStatements, StateFile};
use crate::table_files::keys::PrimaryKey;
use crate::table_files::rows::{read_rows, RowSink};
use crate::table_files::sql_file::StoredFile;
use crate::table_files::state::StateReader;
use crate::table_files::FileNamer;
use crate::verify::HashingReader;

const DELETES_PER_STATEMENT: usize = 1000;
const BATCH: usize = 4096;

pub(crate) struct TableChange {
    pub deletes: Vec<StoredFile>,
    pub changes: Vec<StoredFile>,
    pub state: StoredFile,
    pub fingerprint: Fingerprint,
    pub rewritten: u64,
    pub deleted: u64,
}

/// Where the previous link's key state for a table is, and what it must hash to.
pub(crate) struct PreviousState {
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
}

type Batch = Result<Vec<(Vec<u8>, u64)>>;

/// Streams the previous key state from the store, checking its SHA-256 at the end.
struct PreviousKeys {
    batches: mpsc::Receiver<Batch>,
    current: VecDeque<(Vec<u8>, u64)>,
    /// How the previous state hashed rows; this diff hashes the same way.
    row_hash: RowHash,
    /// The bits of a row hash the previous state kept (all 64, or the low 32 of format 1).
    mask: u64,
    finished: bool,
}

impl PreviousKeys {
    /// No previous keys: every row is new. Hashed as a full backup hashes today.
    fn none() -> Self {
        let (_, batches) = mpsc::channel::<Batch>(1);
        PreviousKeys {
            batches,
            current: VecDeque::new(),
            row_hash: RowHash::CURRENT,
            mask: u64::MAX,
            finished: true,
        }
    }

    async fn open(store: &dyn ObjectStore, previous: &PreviousState) -> Result<Self> {
        let reader = store.open(&previous.key).await?;
        let (tx, batches) = mpsc::channel::<Batch>(2);
        let (header_tx, header) = tokio::sync::oneshot::channel::<Result<(RowHash, u64)>>();
        let name = previous.key.clone();
        let (expected_bytes, expected_sha) = (previous.bytes, previous.sha256.clone());
        tokio::task::spawn_blocking(move || {
            let outcome = (|| -> Result<()> {
                let hashing = HashingReader::new(SyncIoBridge::new(reader));
                let mut state = match StateReader::new(hashing, &name) {
                    Ok(state) => state,
                    Err(e) => {
                        let _ = header_tx.send(Err(e));
                        return Ok(());
                    }
                };
                let mask = match state.hash_bits() {
                    64 => u64::MAX,
                    bits => {
                        tracing::info!(state = %name, bits, "the previous key state is format 1: this diff compares 32-bit row hashes once and writes format 2 (64-bit)");
                        u64::from(u32::MAX)
                    }
                };
                if header_tx.send(Ok((state.row_hash(), mask))).is_err() {
                    return Ok(());
                }
                let mut batch = Vec::with_capacity(BATCH);
                while let Some((key, hash)) = state.next_record()? {
                    batch.push((key.to_vec(), hash));
                    if batch.len() == BATCH
                        && tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err()
                    {
                        return Ok(());
                    }
                }
                state
                    .into_inner()
                    .check(&name, expected_bytes, &expected_sha)?;
                if !batch.is_empty() {
                    let _ = tx.blocking_send(Ok(batch));
                }
                Ok(())
            })();
            if let Err(e) = outcome {
                let _ = tx.blocking_send(Err(e));
            }
        });
        let (row_hash, mask) = header.await.map_err(|_| {
            crate::error::Error::Task(format!(
                "reading key state {} stopped before its header",
                previous.key
            ))
        })??;
        Ok(PreviousKeys {
            batches,
            current: VecDeque::new(),
            row_hash,
            mask,
            finished: false,
        })
    }

    async fn peek(&mut self) -> Result<Option<&(Vec<u8>, u64)>> {
        while self.current.is_empty() && !self.finished {
            match self.batches.recv().await {
                Some(batch) => self.current.extend(batch?),
                None => self.finished = true,
            }
        }
        Ok(self.current.front())
    }

    fn advance(&mut self) {
        self.current.pop_front();
    }
}

/// `DELETE … WHERE key IN (…)` statements, a thousand keys each.
struct DeleteStatements {
    prefix: String,
    in_statement: usize,
}

impl DeleteStatements {
    fn write(&mut self, out: &mut Vec<u8>, key: &PrimaryKey, encoded: &[u8]) -> Result<bool> {
        if self.in_statement == 0 {
            out.extend_from_slice(self.prefix.as_bytes());
        } else {
            out.push(b',');
        }
        key.write_sql(encoded, out)?;
        self.in_statement += 1;
        Ok(if self.in_statement >= DELETES_PER_STATEMENT {
            self.close(out);
            true
        } else {
            false
        })
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.in_statement > 0 {
            out.extend_from_slice(b");\n");
            self.in_statement = 0;
        }
    }
}

pub(crate) struct DiffSettings<'a> {
    pub table_number: usize,
    pub tracking_index: usize,
    /// Rows whose tracking column is at or after this are written again whatever their hash.
    pub window_start: (u16, u8, u8, u8, u8, u8, u32),
    pub statement_bytes: usize,
    pub split_bytes: u64,
    pub store: &'a dyn ObjectStore,
}

fn as_tuple(value: &Value) -> Option<(u16, u8, u8, u8, u8, u8, u32)> {
    match value {
        Value::Date(y, mo, d, h, mi, s, us) => Some((*y, *mo, *d, *h, *mi, *s, *us)),
        _ => None,
    }
}

/// Each row merged with the previous key state, both in key order.
struct MergeWithPrevious<'a> {
    old: PreviousKeys,
    key: &'a PrimaryKey,
    deletes: DataFiles<'a>,
    changes: DataFiles<'a>,
    delete_sql: DeleteStatements,
    insert_sql: InsertStatements,
    tracking_index: usize,
    window_start: (u16, u8, u8, u8, u8, u8, u32),
    rewritten: u64,
    deleted: u64,
    /// The previous state was gone: the table is emptied first, so no key is deleted by itself.
    rebuilt: bool,
}

impl MergeWithPrevious<'_> {
    /// Deletes every recorded key before `until` (all that are left, for `None`): they are
    /// gone from the table.
    async fn delete_gone(&mut self, until: Option<&[u8]>) -> Result<()> {
        while let Some((old_key, _)) = self.old.peek().await? {
            if until.is_some_and(|until| old_key.as_slice() >= until) {
                break;
            }
            let gone = old_key.clone();
            self.old.advance();
            let closed = self
                .delete_sql
                .write(self.deletes.buffer().await?, self.key, &gone)?;
            self.deletes.after_write(closed).await?;
            self.deleted += 1;
        }
        Ok(())
    }
}

impl RowSink for MergeWithPrevious<'_> {
    async fn row(&mut self, read: &ReadRow, hash: u64, key: Option<&[u8]>) -> Result<()> {
        // The loop keeps a key state for every table an incremental diffs.
        let current_key = key.unwrap_or_default();
        // Recorded keys before this one are gone from the table.
        self.delete_gone(Some(current_key)).await?;
        let mask = self.old.mask;
        let differs = match self.old.peek().await? {
            Some((old_key, old_hash)) if old_key.as_slice() == current_key => {
                let differs = *old_hash != hash & mask;
                self.old.advance();
                differs
            }
            _ => true,
        };
        let in_window = read
            .values
            .get(self.tracking_index)
            .and_then(as_tuple)
            .is_some_and(|t| t >= self.window_start);
        if differs || in_window {
            if !self.rebuilt {
                let closed =
                    self.delete_sql
                        .write(self.deletes.buffer().await?, self.key, current_key)?;
                self.deletes.after_write(closed).await?;
            }
            let out = self.changes.buffer().await?;
            let closed = if read.written_as.is_empty() {
                self.insert_sql.write_row(out, &read.values)
            } else {
                self.insert_sql.write_row_as_read(out, read)
            };
            self.changes.after_write(closed).await?;
            self.rewritten += 1;
        }
        Ok(())
    }
}

pub(crate) async fn diff_table(
    conn: &mut Conn,
    namer: &FileNamer,
    table: &Table,
    key: PrimaryKey,
    previous: &PreviousState,
    settings: &DiffSettings<'_>,
) -> Result<TableChange> {
    let (old, rebuilt) = match PreviousKeys::open(settings.store, previous).await {
        Ok(old) => (old, false),
        Err(Error::MissingFile { .. }) => {
            tracing::warn!(
                table = %table.name,
                state = %previous.key,
                "the previous key state is gone (expired with its chain's older backups): this link empties the table and writes all its rows, and keeps a new state"
            );
            (PreviousKeys::none(), true)
        }
        Err(e) => return Err(e),
    };
    let number = settings.table_number;
    let mut state =
        StateFile::create(namer, number, &table.name, key.clone(), old.row_hash).await?;
    let mut fingerprint = Fingerprint::new(old.row_hash);
    let mut merge = MergeWithPrevious {
        deletes: DataFiles::new(
            namer,
            0,
            number,
            &table.name,
            "keys deleted or rewritten",
            settings.split_bytes,
        ),
        changes: DataFiles::new(
            namer,
            1,
            number,
            &table.name,
            "changed rows",
            settings.split_bytes,
        ),
        delete_sql: DeleteStatements {
            prefix: key.delete_prefix(&table.name),
            in_statement: 0,
        },
        insert_sql: InsertStatements::new(table, settings.statement_bytes),
        key: &key,
        old,
        tracking_index: settings.tracking_index,
        window_start: settings.window_start,
        rewritten: 0,
        deleted: 0,
        rebuilt,
    };
    if rebuilt {
        let out = merge.deletes.buffer().await?;
        out.extend_from_slice(format!("DELETE FROM {};\n", quote_ident(&table.name)).as_bytes());
        merge.deletes.after_write(true).await?;
    }
    let select = format!("{}{}", table.select_sql(), key.order_by());
    read_rows(
        conn,
        table,
        select,
        &mut fingerprint,
        Some(&mut state),
        &mut merge,
    )
    .await?;
    merge.delete_gone(None).await?;
    let MergeWithPrevious {
        mut deletes,
        mut changes,
        mut delete_sql,
        mut insert_sql,
        rewritten,
        deleted,
        ..
    } = merge;
    if rewritten + deleted > 0 {
        delete_sql.close(deletes.buffer().await?);
    }
    if rewritten > 0 {
        insert_sql.close(changes.buffer().await?);
    }
    Ok(TableChange {
        deletes: deletes.finish().await?,
        changes: changes.finish().await?,
        state: state.finish().await?,
        fingerprint,
        rewritten,
        deleted,
    })
}

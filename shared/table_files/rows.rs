//! The one row loop: a table's rows read from the snapshot in key order, each hashed into the
//! table's fingerprint and recorded in its key state, then handed to what the job does with it
//! (the dump writes every row; the incremental compares it with the previous key state).

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::data_files::{read_error, StateFile};
use crate::error::Result;
use crate::mysql::fingerprint::Fingerprint;
use crate::mysql::schema::{ReadRow, Table};

/// What a job does with each row the loop reads.
pub(crate) trait RowSink {
    /// `row` as read, its hash in the fingerprint, and its encoded primary key when a key state
    /// is kept.
    async fn row(&mut self, row: &ReadRow, hash: u64, key: Option<&[u8]>) -> Result<()>;
}

/// Reads every row `select` returns, in order: hashed into `fingerprint`, pushed to `state`
/// (when the table's keys are tracked), then given to `sink`.
pub(crate) async fn read_rows(
    conn: &mut Conn,
    table: &Table,
    select: String,
    fingerprint: &mut Fingerprint,
    mut state: Option<&mut StateFile>,
    sink: &mut impl RowSink,
) -> Result<()> {
    let mut scratch = Vec::new();
    // The binary protocol keeps FLOAT/DOUBLE bits exact; rows arrive one at a time.
    let mut rows = conn
        .exec_iter(select, ())
        .await
        .map_err(|e| read_error(table, e))?;
    while let Some(row) = rows.next().await.map_err(|e| read_error(table, e))? {
        let row = table.read_row(row.unwrap());
        let hash = fingerprint.add_row(&row.values, &mut scratch);
        let key = match state.as_mut() {
            Some(state) => Some(state.push(&row.values, hash).await?),
            None => None,
        };
        sink.row(&row, hash, key).await?;
    }
    Ok(())
}

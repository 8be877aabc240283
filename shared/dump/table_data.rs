//! A table's rows as multi-row INSERT statements, streamed from the snapshot, with the table's
//! key state beside them when its primary key can be tracked.

use std::time::{Duration, Instant};

use mysql_async::Conn;

use super::DumpOptions;
use crate::error::Result;
use crate::manifest::Stage;
use crate::mysql::fingerprint::{Fingerprint, RowHash};
use crate::mysql::schema::{ReadRow, Table};
use crate::table_files::data_files::{DataFiles, InsertStatements, StateFile};
use crate::table_files::keys::PrimaryKey;
use crate::table_files::rows::{read_rows, RowSink};
use crate::table_files::sql_file::StoredFile;
use crate::table_files::FileNamer;

const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub(crate) struct DumpedTable {
    pub files: Vec<StoredFile>,
    pub state: Option<StoredFile>,
    pub fingerprint: Fingerprint,
}

/// Every row written as it comes, with progress for whoever watches.
struct WriteEveryRow<'a> {
    table: &'a Table,
    statements: InsertStatements,
    files: DataFiles<'a>,
    options: &'a DumpOptions,
    rows: u64,
    last_report: Instant,
}

impl RowSink for WriteEveryRow<'_> {
    async fn row(&mut self, row: &ReadRow, _hash: u64, _key: Option<&[u8]>) -> Result<()> {
        let out = self.files.buffer().await?;
        let closed = if row.written_as.is_empty() {
            self.statements.write_row(out, &row.values)
        } else {
            self.statements.write_row_as_read(out, row)
        };
        self.files.after_write(closed).await?;
        self.rows += 1;
        if self.rows.is_multiple_of(1024) {
            self.options.headway.bytes_done(1024);
        }
        if self.rows.is_multiple_of(8192) && self.last_report.elapsed() >= PROGRESS_EVERY {
            self.last_report = Instant::now();
            tracing::info!(
                table = %self.table.name,
                rows = self.rows,
                sql_mib = self.files.written() / (1024 * 1024),
                "dumping…"
            );
        }
        Ok(())
    }
}

pub(crate) async fn dump_table(
    conn: &mut Conn,
    namer: &FileNamer,
    table: &Table,
    key: Option<PrimaryKey>,
    table_number: usize,
    options: &DumpOptions,
) -> Result<DumpedTable> {
    let mut fingerprint = Fingerprint::new(RowHash::CURRENT);
    let mut files = DataFiles::new(
        namer,
        Stage::Data.digit(),
        table_number,
        &table.name,
        "rows",
        options.split_bytes,
    );
    files.system_versioned = table.system_versioned;
    let mut select = table.select_sql();
    let mut state = match key {
        Some(key) => {
            // Key order is the clustered index's order: no sort on the server.
            select.push_str(&key.order_by());
            Some(StateFile::create(namer, table_number, &table.name, key, RowHash::CURRENT).await?)
        }
        None => None,
    };
    let mut sink = WriteEveryRow {
        table,
        statements: InsertStatements::new(table, options.statement_bytes),
        files,
        options,
        rows: 0,
        last_report: Instant::now(),
    };
    read_rows(
        conn,
        table,
        select,
        &mut fingerprint,
        state.as_mut(),
        &mut sink,
    )
    .await?;
    let WriteEveryRow {
        mut statements,
        mut files,
        ..
    } = sink;
    options.headway.bytes_done(fingerprint.rows() % 1024);
    if fingerprint.rows() > 0 {
        statements.close(files.buffer().await?);
    }
    let files = files.finish().await?;
    let state = match state {
        Some(state) => Some(state.finish().await?),
        None => None,
    };
    Ok(DumpedTable {
        files,
        state,
        fingerprint,
    })
}

//! A table's rows as multi-row INSERT statements, streamed from the snapshot.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::sql_file::{SqlFile, StoredFile};
use super::{DumpOptions, FileNamer};
use crate::error::{Error, Result};
use crate::manifest::Stage;
use crate::mysql::fingerprint::Fingerprint;
use crate::mysql::schema::Table;
use crate::mysql::values::write_literal;
use crate::mysql::{quote_ident, server_code};

pub(super) struct DumpedTable {
    pub files: Vec<StoredFile>,
    pub fingerprint: Fingerprint,
}

/// Loading a data file needs no other file's session state.
const DATA_HEADER: &[u8] = b"SET NAMES utf8mb4;\n\
SET SESSION time_zone = '+00:00';\n\
SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES';\n\
SET SESSION foreign_key_checks = 0;\n\
SET SESSION unique_checks = 0;\n\
SET SESSION autocommit = 0;\n";
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
const DATA_FOOTER: &[u8] = b"COMMIT;\nSET SESSION autocommit = 1;\n";

fn read_error(table: &Table, source: mysql_async::Error) -> Error {
    match server_code(&source) {
        // ER_TABLE_DEF_CHANGED: the table was altered after the snapshot began.
        Some(1412) => Error::SchemaChangedDuringDump {
            detail: format!(
                "table {} was altered after the snapshot began",
                quote_ident(&table.name)
            ),
        },
        _ => Error::database(
            format!("reading the rows of table {}", quote_ident(&table.name)),
            source,
        ),
    }
}

pub(super) async fn dump_table(
    conn: &mut Conn,
    namer: &FileNamer,
    table: &Table,
    table_number: usize,
    options: &DumpOptions,
) -> Result<DumpedTable> {
    let mut fingerprint = Fingerprint::default();
    let mut files = Vec::new();
    if table.columns.is_empty() {
        return Ok(DumpedTable { files, fingerprint });
    }
    let insert_prefix = format!(
        "INSERT INTO {} ({}) VALUES ",
        quote_ident(&table.name),
        table
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(",")
    );
    let kinds: Vec<_> = table.columns.iter().map(|c| c.kind).collect();
    let mut scratch = Vec::new();
    let mut current: Option<SqlFile> = None;
    let mut statement_len = 0usize;
    let mut part = 0usize;

    // The binary protocol keeps FLOAT/DOUBLE bits exact; rows arrive one at a time.
    let mut rows = conn
        .exec_iter(table.select_sql(), ())
        .await
        .map_err(|e| read_error(table, e))?;
    let mut last_report = Instant::now();
    while let Some(row) = rows.next().await.map_err(|e| read_error(table, e))? {
        let values = row.unwrap();
        fingerprint.add_row(&values, &mut scratch);
        if fingerprint.rows() % 8192 == 0 && last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            let written: u64 = files
                .iter()
                .map(|f: &StoredFile| f.uncompressed_bytes)
                .sum::<u64>()
                + current.as_ref().map_or(0, SqlFile::uncompressed_len);
            tracing::info!(
                table = %table.name,
                rows = fingerprint.rows(),
                sql_mib = written / (1024 * 1024),
                "dumping…"
            );
        }

        if current.is_none() {
            part += 1;
            let mut file = namer
                .create(Stage::Data, table_number, part, &table.name)
                .await?;
            let header = format!(
                "-- toc-sis-backup {}: rows of table {}, part {part}\n",
                env!("CARGO_PKG_VERSION"),
                quote_ident(&table.name)
            );
            file.buffer().extend_from_slice(header.as_bytes());
            file.buffer().extend_from_slice(DATA_HEADER);
            current = Some(file);
        }
        let Some(file) = current.as_mut() else {
            continue;
        };
        let out = file.buffer();
        let before = out.len();
        if statement_len == 0 {
            out.extend_from_slice(insert_prefix.as_bytes());
        } else {
            out.push(b',');
        }
        out.push(b'(');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_literal(out, kinds[i], value);
        }
        out.push(b')');
        statement_len += out.len() - before;
        if statement_len >= options.statement_bytes {
            out.extend_from_slice(b";\n");
            statement_len = 0;
            if file.uncompressed_len() >= options.split_bytes {
                if let Some(done) = current.take() {
                    files.push(close(done).await?);
                }
                continue;
            }
        }
        file.flush_if_full().await?;
    }
    drop(rows);
    if let Some(mut file) = current.take() {
        if statement_len > 0 {
            file.buffer().extend_from_slice(b";\n");
        }
        files.push(close(file).await?);
    }
    Ok(DumpedTable { files, fingerprint })
}

async fn close(mut file: SqlFile) -> Result<StoredFile> {
    file.buffer().extend_from_slice(DATA_FOOTER);
    file.finish().await
}

//! The files a table's rows are written to: multi-row INSERT statements split into parts of
//! about a set size, and the key state beside them. Both the full dump and the incremental
//! write through these, so a restore reads one format.

use mysql_async::Value;

use super::keys::PrimaryKey;
use super::sql_file::{SqlFile, StoredFile};
use super::state::StateEncoder;
use super::FileNamer;
use crate::error::{Error, Result};
use crate::mysql::fingerprint::RowHash;
use crate::mysql::schema::{ReadRow, Table};
use crate::mysql::values::{write_literal, ColumnKind};
use crate::mysql::{quote_ident, server_code};

/// Loading a data file needs no other file's session state. Strict, so a value the column
/// cannot hold stops the load; ALLOW_INVALID_DATES, since a date like 2001-02-29 is in the
/// table only because the server accepted it under that mode, and it must come back as is.
pub(crate) const DATA_HEADER: &[u8] = b"SET NAMES utf8mb4;\n\
SET SESSION time_zone = '+00:00';\n\
SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,ALLOW_INVALID_DATES';\n\
SET SESSION foreign_key_checks = 0;\n\
SET SESSION unique_checks = 0;\n\
SET SESSION autocommit = 0;\n";
/// The sql_mode [`DATA_HEADER`] sets, as a literal.
const DATA_SQL_MODE: &[u8] = b"'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,ALLOW_INVALID_DATES'";
const DATA_FOOTER: &[u8] = b"COMMIT;\nSET SESSION autocommit = 1;\n";

pub(crate) fn read_error(table: &Table, source: mysql_async::Error) -> Error {
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

/// Builds multi-row INSERT statements of about `statement_bytes` each.
pub(crate) struct InsertStatements {
    prefix: String,
    kinds: Vec<ColumnKind>,
    statement_len: usize,
    statement_bytes: usize,
}

impl InsertStatements {
    pub(crate) fn new(table: &Table, statement_bytes: usize) -> Self {
        let columns: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
        InsertStatements {
            prefix: format!(
                "INSERT INTO {} ({}) VALUES ",
                quote_ident(&table.name),
                columns.join(",")
            ),
            kinds: table.columns.iter().map(|c| c.kind).collect(),
            statement_len: 0,
            statement_bytes,
        }
    }

    /// Appends a row; returns true when this closed the statement.
    pub(crate) fn write_row(&mut self, out: &mut Vec<u8>, values: &[Value]) -> bool {
        let before = out.len();
        if self.statement_len == 0 {
            out.extend_from_slice(self.prefix.as_bytes());
        } else {
            out.push(b',');
        }
        out.push(b'(');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_literal(out, self.kinds[i], value);
        }
        out.push(b')');
        self.statement_len += out.len() - before;
        if self.statement_len >= self.statement_bytes {
            self.close(out);
            return true;
        }
        false
    }

    /// Appends a row some of whose values are written otherwise than by their value
    /// ([`ReadRow::written_as`]), as a statement of its own, which the restore runs as an
    /// INSERT; under a non-strict session when the row asks for one (only that stores an
    /// ENUM's index 0). Returns true (the statement is closed).
    pub(crate) fn write_row_as_read(&mut self, out: &mut Vec<u8>, row: &ReadRow) -> bool {
        self.close(out);
        if row.lenient {
            out.extend_from_slice(
                b"SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES';\n",
            );
        }
        out.extend_from_slice(self.prefix.as_bytes());
        out.push(b'(');
        for (i, value) in row.values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match row.written_as.iter().find(|(position, _)| *position == i) {
                Some((_, literal)) => literal.write(out),
                None => write_literal(out, self.kinds[i], value),
            }
        }
        out.extend_from_slice(b");\n");
        if row.lenient {
            out.extend_from_slice(b"SET SESSION sql_mode = ");
            out.extend_from_slice(DATA_SQL_MODE);
            out.extend_from_slice(b";\n");
        }
        true
    }

    pub(crate) fn close(&mut self, out: &mut Vec<u8>) {
        if self.statement_len > 0 {
            out.extend_from_slice(b";\n");
            self.statement_len = 0;
        }
    }
}

/// A table's SQL files of one kind, opened on demand and split by size between statements.
pub(crate) struct DataFiles<'a> {
    namer: &'a FileNamer,
    digit: u8,
    table_number: usize,
    table: &'a str,
    what: &'static str,
    split_bytes: u64,
    current: Option<SqlFile>,
    part: usize,
    pub(crate) files: Vec<StoredFile>,
    /// Each part lets the session insert history rows (see [`Table::system_versioned`]).
    pub(crate) system_versioned: bool,
}

impl<'a> DataFiles<'a> {
    pub(crate) fn new(
        namer: &'a FileNamer,
        digit: u8,
        table_number: usize,
        table: &'a str,
        what: &'static str,
        split_bytes: u64,
    ) -> Self {
        DataFiles {
            namer,
            digit,
            table_number,
            table,
            what,
            split_bytes,
            current: None,
            part: 0,
            files: Vec::new(),
            system_versioned: false,
        }
    }

    /// The open file's buffer, opening the next part if needed.
    pub(crate) async fn buffer(&mut self) -> Result<&mut Vec<u8>> {
        if self.current.is_none() {
            self.part += 1;
            let mut file = self
                .namer
                .create(self.digit, self.table_number, self.part, self.table)
                .await?;
            // The table is not named: a name can hold a newline (see the manifest for it).
            let header = format!(
                "-- toc-sis-backup {}: {}, part {}\n",
                env!("CARGO_PKG_VERSION"),
                self.what,
                self.part
            );
            file.buffer().extend_from_slice(header.as_bytes());
            file.buffer().extend_from_slice(DATA_HEADER);
            if self.system_versioned {
                // History rows keep their own row start and end (MariaDB 10.11 and later).
                file.buffer()
                    .extend_from_slice(b"SET SESSION system_versioning_insert_history = 1;\n");
            }
            self.current = Some(file);
        }
        match self.current.as_mut() {
            Some(file) => Ok(file.buffer()),
            None => Err(Error::Task("no open data file".into())),
        }
    }

    pub(crate) fn written(&self) -> u64 {
        self.files.iter().map(|f| f.uncompressed_bytes).sum::<u64>()
            + self.current.as_ref().map_or(0, SqlFile::uncompressed_len)
    }

    /// Call after appending; `statement_closed` allows a split here.
    pub(crate) async fn after_write(&mut self, statement_closed: bool) -> Result<()> {
        let Some(file) = self.current.as_mut() else {
            return Ok(());
        };
        if statement_closed && file.uncompressed_len() >= self.split_bytes {
            self.close_current().await
        } else {
            file.flush_if_full().await
        }
    }

    async fn close_current(&mut self) -> Result<()> {
        if let Some(mut file) = self.current.take() {
            file.buffer().extend_from_slice(DATA_FOOTER);
            self.files.push(file.finish().await?);
        }
        Ok(())
    }

    pub(crate) async fn finish(mut self) -> Result<Vec<StoredFile>> {
        self.close_current().await?;
        Ok(self.files)
    }
}

/// A table's key state being written: one record per row, in key order.
pub(crate) struct StateFile {
    file: SqlFile,
    encoder: StateEncoder,
    pub(crate) key: PrimaryKey,
    scratch: Vec<u8>,
}

impl StateFile {
    pub(crate) async fn create(
        namer: &FileNamer,
        table_number: usize,
        table: &str,
        key: PrimaryKey,
        row_hash: RowHash,
    ) -> Result<Self> {
        Ok(StateFile {
            file: namer.create_state(table_number, table).await?,
            encoder: StateEncoder::new(row_hash),
            key,
            scratch: Vec::new(),
        })
    }

    /// Records the row; returns its encoded key (valid until the next call).
    pub(crate) async fn push(&mut self, values: &[Value], hash: u64) -> Result<&[u8]> {
        self.key.encode(values, &mut self.scratch)?;
        self.encoder.push(self.file.buffer(), &self.scratch, hash)?;
        self.file.flush_if_full().await?;
        Ok(&self.scratch)
    }

    pub(crate) async fn finish(mut self) -> Result<StoredFile> {
        self.encoder.finish(self.file.buffer());
        self.file.finish().await
    }
}

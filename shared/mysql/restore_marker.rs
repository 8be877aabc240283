//! Steps recorded in the marker table an unfinished restore keeps in its target database
//! ([`super::RESTORE_MARKER_TABLE`]). The restore owns what the steps mean (`restore::progress`);
//! here is only how a step is written, read and the table dropped, which the binlog replay uses
//! too: it records its checkpoint inside each replayed transaction, so a resumed restore and
//! the rows the target holds always agree.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::{quote_ident, RESTORE_MARKER_TABLE as PROGRESS_TABLE};
use crate::error::{Error, Result};

/// Records a step on `conn` (inside whatever transaction is open there). In the text protocol:
/// a replay records a step per transaction, and each prepared statement of a connection
/// without a statement cache stays open on the server until the connection ends, so tens of
/// thousands of them reached the server-wide max_prepared_stmt_count (16,382; the live
/// application's statements count too). Hex literals, so no session sql_mode (a routine's
/// NO_BACKSLASH_ESCAPES) changes what is stored.
pub(crate) async fn mark(conn: &mut Conn, step: &str, detail: Option<&str>) -> Result<()> {
    conn.query_drop(format!(
        "INSERT INTO {} (step, detail) VALUES ({}, {}) ON DUPLICATE KEY UPDATE detail = VALUES(detail)",
        quote_ident(PROGRESS_TABLE),
        text_literal(step),
        detail.map_or_else(|| "NULL".to_string(), text_literal)
    ))
    .await
    .map_err(|e| Error::database(format!("recording restore step {step}"), e))
}

fn text_literal(text: &str) -> String {
    let hex: String = text.bytes().map(|b| format!("{b:02X}")).collect();
    if hex.is_empty() {
        "''".to_string()
    } else {
        format!("CONVERT(X'{hex}' USING utf8mb4)")
    }
}

/// Whether a step was recorded, and its detail. A locking read: a transaction still
/// committing on a connection just lost holds the row, and this waits for its outcome.
pub(crate) async fn recorded(conn: &mut Conn, step: &str) -> Result<Option<Option<String>>> {
    conn.exec_first(
        format!(
            "SELECT detail FROM {} WHERE step = ? FOR UPDATE",
            quote_ident(PROGRESS_TABLE)
        ),
        (step,),
    )
    .await
    .map_err(|e| Error::database(format!("reading restore step {step}"), e))
}

pub(crate) async fn finish(conn: &mut Conn) -> Result<()> {
    conn.query_drop(format!(
        "DROP TABLE IF EXISTS {}",
        quote_ident(PROGRESS_TABLE)
    ))
    .await
    .map_err(|e| Error::database("dropping the restore's progress table", e))
}

//! The transaction in hand: begun on the target at its first row, ended with COMMIT or
//! ROLLBACK, its checkpoint recorded inside it (so a resumed replay and the rows the target
//! holds agree), and what a segment's transactions applied held against its manifest. Apart
//! so that what may be retried after a lost connection is decided in one place.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::{Checkpoint, Journal};
use crate::binlog::segment::{self, TableChanges};
use crate::error::{Error, Result};

/// The transaction being replayed.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) gtid: Option<String>,
    pub(super) in_database_transaction: bool,
    /// A statement (DDL) was run: the server committed it.
    pub(super) statement_applied: bool,
    pub(super) changes: BTreeMap<String, TableChanges>,
    pub(super) skip: bool,
    /// The user variables logged for the next statement (`SET @a := …`): it reads them.
    pub(super) user_vars: Vec<String>,
    /// A table it changed whose engine cannot roll back (MyISAM, Aria, MEMORY).
    pub(super) cannot_roll_back: Option<String>,
}

impl Pending {
    /// A lost connection is retried by replaying the transaction again, which is right only
    /// when the server rolled all of it back.
    pub(super) fn unrepeatable(&self, error: Error) -> Error {
        match &self.cannot_roll_back {
            Some(table) if error.is_connection_lost() => Error::Interrupted(format!(
                "the connection was lost during a replayed transaction that changed table `{table}`, whose engine cannot roll back: part of it may be applied and it cannot be replayed again; restore again with --force ({error})"
            )),
            _ => error,
        }
    }
}

pub(super) async fn record(
    conn: &mut Conn,
    journal: &Journal,
    checkpoint: &Checkpoint,
) -> Result<()> {
    let detail = serde_json::to_string(checkpoint).map_err(|e| Error::Task(e.to_string()))?;
    // Inside the replayed transaction, as a step of the restore's own marker table, so a
    // resumed restore and the rows the target holds always agree.
    crate::mysql::restore_marker::mark(conn, &journal.step, Some(&detail)).await
}

pub(super) fn check_against_manifest(
    manifest: &segment::SegmentManifest,
    database: &str,
    applied: &BTreeMap<String, TableChanges>,
) -> Result<()> {
    let prefix = format!("{database}.");
    let recorded: BTreeMap<&str, &TableChanges> = manifest
        .tables
        .iter()
        .filter_map(|(name, c)| name.strip_prefix(&prefix).map(|t| (t, c)))
        .filter(|(_, c)| c.inserted + c.updated + c.deleted > 0)
        .collect();
    let replayed: BTreeMap<&str, &TableChanges> = applied
        .iter()
        .map(|(t, c)| (t.as_str(), c))
        .filter(|(_, c)| c.inserted + c.updated + c.deleted > 0)
        .collect();
    if recorded != replayed {
        return Err(Error::RestoreMismatch(vec![format!(
            "segment {} recorded these row changes in `{database}`: {recorded:?}, but replay applied {replayed:?}",
            manifest.segment_id
        )]));
    }
    Ok(())
}

pub(super) async fn begin_transaction(conn: &mut Conn, pending: &mut Pending) -> Result<()> {
    if !pending.in_database_transaction {
        conn.query_drop("START TRANSACTION")
            .await
            .map_err(|e| Error::database("starting a replayed transaction", e))?;
        pending.in_database_transaction = true;
    }
    Ok(())
}

pub(super) async fn finish_transaction(
    conn: &mut Conn,
    pending: &mut Pending,
    commit: bool,
) -> Result<()> {
    if std::mem::take(&mut pending.in_database_transaction) {
        conn.query_drop(if commit { "COMMIT" } else { "ROLLBACK" })
            .await
            .map_err(|e| Error::database("ending a replayed transaction", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_inside_a_transaction_that_cannot_roll_back_is_not_retried() {
        let lost = || {
            Error::database(
                "applying rows",
                mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "reset",
                ))),
            )
        };
        assert!(Pending::default().unrepeatable(lost()).is_connection_lost());
        let on_myisam = Pending {
            cannot_roll_back: Some("audit_log".into()),
            ..Pending::default()
        };
        let error = on_myisam.unrepeatable(lost());
        assert!(!error.is_connection_lost());
        assert!(
            error
                .to_string()
                .contains("changed table `audit_log`, whose engine cannot roll back"),
            "{error}"
        );
        let refused = Error::BinlogUnsupported { detail: "x".into() };
        assert!(matches!(
            on_myisam.unrepeatable(refused),
            Error::BinlogUnsupported { .. }
        ));
    }
}

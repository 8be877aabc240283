//! The transaction in hand: begun on the target at its first row, ended with COMMIT or
//! ROLLBACK, its checkpoint recorded inside it (so a resumed replay and the rows the target
//! holds agree), and what a segment's transactions applied held against its manifest. Several
//! logged transactions of rows go into one target transaction (a `Group`): a COMMIT and its
//! log flush cost as much as applying a hundred rows, and the checkpoint recorded inside the
//! group still names a position below which everything is applied. Apart so that what may be
//! retried after a lost connection is decided in one place.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::outbox::Link;
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
    /// It applied rows (in the target transaction, which may hold earlier ones too).
    pub(super) wrote_rows: bool,
    /// A savepoint marks where its rows begin in a target transaction that holds earlier
    /// logged transactions: a stop inside it rolls back to there.
    pub(super) savepoint: bool,
}

/// Logged transactions applied in the open target transaction, not yet committed.
#[derive(Default)]
pub(super) struct Group {
    /// The checkpoint of the last of them, recorded just before the COMMIT.
    pub(super) last: Option<Checkpoint>,
    pub(super) transactions: usize,
    pub(super) rows: u64,
}

/// A group is committed once it holds this many logged transactions or row changes: enough
/// that a COMMIT is a small part of the work, few enough that a lost connection repeats little.
const GROUP_TRANSACTIONS: usize = 500;
const GROUP_ROWS: u64 = 5_000;

impl Group {
    pub(super) fn is_open(&self) -> bool {
        self.last.is_some()
    }

    pub(super) fn has_room(&self) -> bool {
        self.transactions < GROUP_TRANSACTIONS && self.rows < GROUP_ROWS
    }
}

impl Pending {
    /// The next logged transaction, in the target transaction `self` left open (or none).
    pub(super) fn after(previous: &Pending) -> Pending {
        Pending {
            in_database_transaction: previous.in_database_transaction,
            cannot_roll_back: previous
                .in_database_transaction
                .then(|| previous.cannot_roll_back.clone())
                .flatten(),
            ..Pending::default()
        }
    }
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

/// Begins the target transaction at a logged transaction's first row, or marks where its rows
/// begin in the open group (`mark_start`: a stop may come inside it).
pub(super) async fn begin_transaction(
    link: &mut Link<'_>,
    pending: &mut Pending,
    group: &Group,
    mark_start: bool,
) -> Result<()> {
    if !pending.in_database_transaction {
        link.now()
            .await?
            .query_drop("START TRANSACTION")
            .await
            .map_err(|e| Error::database("starting a replayed transaction", e))?;
        pending.in_database_transaction = true;
    } else if mark_start && group.is_open() && !pending.wrote_rows {
        link.now()
            .await?
            .query_drop("SAVEPOINT logged_transaction")
            .await
            .map_err(|e| Error::database("marking a replayed transaction", e))?;
        pending.savepoint = true;
    }
    pending.wrote_rows = true;
    Ok(())
}

/// Records the group's checkpoint and commits it with the transaction in hand.
pub(super) async fn commit_group(
    conn: &mut Conn,
    journal: Option<&Journal>,
    group: &mut Group,
    pending: &mut Pending,
) -> Result<()> {
    if let (Some(journal), Some(checkpoint)) = (journal, group.last.take()) {
        record(conn, journal, &checkpoint)
            .await
            .map_err(|e| pending.unrepeatable(e))?;
    }
    *group = Group::default();
    finish_transaction(conn, pending, true)
        .await
        .map_err(|e| pending.unrepeatable(e))
}

/// Leaves out the transaction in hand, which a stop came inside of: what it applied is rolled
/// back, the group before it committed.
pub(super) async fn stop_inside(
    conn: &mut Conn,
    journal: Option<&Journal>,
    group: &mut Group,
    pending: &mut Pending,
) -> Result<()> {
    if pending.savepoint {
        conn.query_drop("ROLLBACK TO SAVEPOINT logged_transaction")
            .await
            .map_err(|e| Error::database("leaving out a replayed transaction", e))?;
    } else if !group.is_open() || pending.wrote_rows {
        // Its rows began the target transaction: nothing else is in it.
        *group = Group::default();
        return finish_transaction(conn, pending, false).await;
    }
    commit_group(conn, journal, group, pending).await
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

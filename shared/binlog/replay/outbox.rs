//! The replay's connection, with the statements of many rows it has not sent yet. Each
//! statement sent alone costs a round trip in which client and server wait on each other in
//! turn (measured: 5,139 statements of a 130,000-row replay left one of two cores idle); the
//! statements of transactional tables' rows (INSERTs, and UPDATEs and DELETEs of rows found by
//! key) are therefore queued and sent together, as one multi-statement request, the moment
//! anything else needs the connection ([`Link::now`]): a COMMIT, a checkpoint, a statement, a
//! table's shape. Every statement is still checked to change exactly its rows, in order; one
//! the server refuses in a way the rows one by one may not be is applied again row by row
//! (InnoDB rolled it back whole) and the rest follow it.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::decode::RowImages;
use super::rows::{changed_other_rows, one_by_one, TRY_ROW_BY_ROW};
use crate::binlog::position::Position;
use crate::binlog::sql::TableShape;
use crate::error::{Error, Result};

/// What a queued statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Insert,
    Update,
    Delete,
}

impl Change {
    fn label(self) -> &'static str {
        match self {
            Change::Insert => "insert",
            Change::Update => "update",
            Change::Delete => "delete",
        }
    }
}

/// A statement of many rows, queued.
pub(super) struct Queued {
    pub(super) change: Change,
    pub(super) sql: Vec<u8>,
    /// The rows it must change.
    pub(super) expected: usize,
    pub(super) table: String,
    pub(super) at: Position,
    pub(super) shape: Arc<TableShape>,
    /// Its row images, to apply it row by row if the server refuses it whole (updates and
    /// deletes; an insert refused is an error).
    pub(super) rows: RowImages,
}

/// Sent once this many bytes or statements are queued, so a large transaction never makes a
/// request near the server's max_allowed_packet (16 MiB at least on RDS and MariaDB).
const QUEUED_BYTES: usize = 1 << 20;
const QUEUED_STATEMENTS: usize = 64;

/// The replay's connection and what is queued for it.
pub(super) struct Link<'c> {
    conn: &'c mut Conn,
    queued: Vec<Queued>,
    queued_bytes: usize,
}

impl<'c> Link<'c> {
    pub(super) fn new(conn: &'c mut Conn) -> Self {
        Link {
            conn,
            queued: Vec::new(),
            queued_bytes: 0,
        }
    }

    /// The connection, once every queued statement is applied.
    pub(super) async fn now(&mut self) -> Result<&mut Conn> {
        self.flush().await?;
        Ok(&mut *self.conn)
    }

    /// The connection as it is, queued statements unsent: for what must not wait on them (a
    /// ROLLBACK after an error throws them away with the transaction).
    pub(super) fn discard(&mut self) -> &mut Conn {
        self.queued.clear();
        self.queued_bytes = 0;
        &mut *self.conn
    }

    /// Queues `statement`; sends what is queued once it is large.
    pub(super) async fn queue(&mut self, statement: Queued) -> Result<()> {
        self.queued_bytes += statement.sql.len() + 1;
        self.queued.push(statement);
        if self.queued_bytes >= QUEUED_BYTES || self.queued.len() >= QUEUED_STATEMENTS {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let queued = std::mem::take(&mut self.queued);
        self.queued_bytes = 0;
        let mut next = 0;
        while next < queued.len() {
            let rest = &queued[next..];
            let (done, refused) = send_together(self.conn, rest).await;
            for (statement, affected) in rest.iter().zip(&done) {
                if *affected != statement.expected as u64 {
                    return Err(changed_other_rows(
                        statement.change.label(),
                        &statement.table,
                        &statement.at,
                        *affected,
                        statement.expected,
                    ));
                }
            }
            next += done.len();
            let Some(error) = refused else {
                continue;
            };
            // The request stopped at the statement after the last that answered.
            let Some(statement) = queued.get(next) else {
                return Err(Error::database(
                    "replaying statements sent together (the server answered more of them than were sent)",
                    error,
                ));
            };
            match &error {
                mysql_async::Error::Server(e)
                    if TRY_ROW_BY_ROW.contains(&e.code) && statement.change != Change::Insert =>
                {
                    tracing::debug!(table = %statement.table, position = %statement.at, code = e.code, "a statement of many rows is applied row by row");
                    one_by_one(
                        self.conn,
                        &statement.shape,
                        &statement.rows,
                        &statement.table,
                        &statement.at,
                    )
                    .await?;
                    next += 1;
                }
                _ => {
                    return Err(Error::database(
                        format!(
                            "replaying the {}s of {} rows of `{}` at {}",
                            statement.change.label(),
                            statement.expected,
                            statement.table,
                            statement.at
                        ),
                        error,
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Sends `statements` as one request: the rows each changed, in order, up to the first the
/// server refused (which ended the request), and that refusal.
async fn send_together(
    conn: &mut Conn,
    statements: &[Queued],
) -> (Vec<u64>, Option<mysql_async::Error>) {
    let mut request = Vec::with_capacity(statements.iter().map(|s| s.sql.len() + 1).sum());
    for (n, statement) in statements.iter().enumerate() {
        if n > 0 {
            request.push(b';');
        }
        request.extend_from_slice(&statement.sql);
    }
    let mut affected = Vec::with_capacity(statements.len());
    let mut result = match conn.query_iter(request).await {
        Ok(result) => result,
        Err(e) => return (affected, Some(e)),
    };
    loop {
        affected.push(result.affected_rows());
        if result.is_empty() {
            return (affected, None);
        }
        // Reads this statement's (empty) result to its end, and with it the next one's.
        if let Err(e) = result.collect::<mysql_async::Row>().await {
            return (affected, Some(e));
        }
    }
}

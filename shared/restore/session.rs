//! A restore worker's connection, made again when the server drops it (restart, failover,
//! `KILL`), so a lost connection costs the file in hand, not the restore.

use std::time::Duration;

use mysql_async::Conn;

use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::mysql as db;

/// Attempts at one unit of work (a file, a table's indexes) when its connection is lost.
const WORK_ATTEMPTS: u32 = 5;
/// Attempts at connecting again; with the pauses below about a minute, which covers a server
/// restart or a Multi-AZ failover's DNS switch.
const CONNECT_ATTEMPTS: u32 = 10;

fn pause(attempt: u32) -> Duration {
    let ceiling = Duration::from_millis(500) * (1u32 << attempt.saturating_sub(1).min(4));
    let ceiling = ceiling.min(Duration::from_secs(8));
    ceiling / 2 + (ceiling / 2).mul_f64(rand::random::<f64>())
}

pub(crate) struct Session {
    url: DatabaseUrl,
    database: String,
    conn: Option<Conn>,
    /// Affected rows count the rows matched, not the rows changed (the binlog replay checks
    /// that every UPDATE found its row, even one it leaves as it was).
    found_rows: bool,
}

impl Session {
    pub(crate) fn new(url: &DatabaseUrl, database: &str) -> Self {
        Session {
            url: url.clone(),
            database: database.to_string(),
            conn: None,
            found_rows: false,
        }
    }

    /// A session for the binlog replay.
    pub(crate) fn counting_found_rows(url: &DatabaseUrl, database: &str) -> Self {
        Session {
            found_rows: true,
            ..Session::new(url, database)
        }
    }

    /// The open connection, connecting (again) when there is none.
    pub(crate) async fn conn(&mut self) -> Result<&mut Conn> {
        if self.conn.is_none() {
            let mut attempt = 1;
            let conn = loop {
                let found_rows = self.found_rows;
                let connected = db::connect_with(&self.url, Some(&self.database), |o| {
                    o.client_found_rows(found_rows)
                })
                .await;
                match connected {
                    Ok(conn) => break conn,
                    Err(e) if e.is_connection_lost() && attempt < CONNECT_ATTEMPTS => {
                        tracing::warn!(
                            attempt = attempt + 1,
                            max_attempts = CONNECT_ATTEMPTS,
                            "cannot connect to the database ({e}); trying again"
                        );
                        tokio::time::sleep(pause(attempt)).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            };
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| Error::Task("no database connection".into()))
    }

    /// Forgets a connection that failed; the server rolls back whatever it had open.
    fn lost(&mut self) {
        if let Some(conn) = self.conn.take() {
            tokio::spawn(async move {
                let _ = conn.disconnect().await;
            });
        }
    }

    pub(crate) async fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
    }

    /// Decides what follows one attempt at a unit of work (see [`retrying!`]): its result,
    /// `None` to run it again on a new connection (the connection was lost and attempts
    /// remain; logged at WARN with the attempt number), or the error.
    pub(crate) async fn settle<R>(
        &mut self,
        outcome: Result<R>,
        attempt: &mut u32,
        what: &str,
    ) -> Result<Option<R>> {
        match outcome {
            Ok(result) => Ok(Some(result)),
            Err(e) if e.is_connection_lost() && *attempt < WORK_ATTEMPTS => {
                self.lost();
                *attempt += 1;
                tracing::warn!(
                    attempt = *attempt,
                    max_attempts = WORK_ATTEMPTS,
                    "database connection lost while {what} ({e}); retrying on a new connection"
                );
                tokio::time::sleep(pause(*attempt - 1)).await;
                Ok(None)
            }
            Err(e) => {
                if e.is_connection_lost() {
                    self.lost();
                }
                Err(e)
            }
        }
    }
}

/// Runs a unit of work on a session's connection, again on a new connection when the
/// connection is lost (the work must be safe to repeat), up to [`WORK_ATTEMPTS`] times:
/// `retrying!(session, "what", |conn, attempt| async { … })` evaluates to the work's `Result`.
/// (A macro, not a method taking a closure: a closure borrowing the connection across an await
/// is not `Send` for every lifetime, which spawned tasks need.)
macro_rules! retrying {
    ($session:expr, $what:expr, |$conn:ident, $attempt:ident| $work:expr) => {{
        let mut attempt_number = 1u32;
        loop {
            let $attempt = attempt_number;
            let outcome = match $session.conn().await {
                Ok($conn) => $work.await,
                Err(e) => break Err(e),
            };
            match $session.settle(outcome, &mut attempt_number, $what).await {
                Ok(Some(done)) => break Ok(done),
                Ok(None) => continue,
                Err(e) => break Err(e),
            }
        }
    }};
}
pub(crate) use retrying;

//! MySQL 8's snapshot position, which it does not report (MariaDB's `binlog_snapshot_*` status
//! has no MySQL counterpart), taken the way MySQL Shell's dump does without FLUSH TABLES WITH
//! READ LOCK: read `@@GLOBAL.gtid_executed`, open the snapshot(s), read it again. When the two
//! are equal no transaction committed in between, so every snapshot opened in between sees
//! exactly that GTID set: the snapshot's own position, with no privilege and no lock.
//!
//! A transaction enters `gtid_executed` only once committed in the engine, so a set read
//! before a snapshot never names a transaction the snapshot misses. The binlog file and offset
//! are written earlier (at the binlog flush, before the engine commit), so the offset read in
//! the same window may already include a transaction the snapshot does not see: it is recorded
//! as approximate, and replay starts from the GTID set.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use super::{self as db};
use crate::error::{Error, Result};

/// `@@GLOBAL.gtid_executed`, without white space; None on MariaDB (no such variable) or when
/// GTIDs are off (empty set).
pub(crate) async fn gtid_executed(conn: &mut Conn) -> Result<Option<String>> {
    match conn
        .query_first::<Option<String>, _>("SELECT @@GLOBAL.gtid_executed")
        .await
    {
        Ok(value) => Ok(value
            .flatten()
            .map(|s| normalise_gtid_set(&s))
            .filter(|s| !s.is_empty())),
        // ER_UNKNOWN_SYSTEM_VARIABLE: MariaDB, whose snapshot reports its own position.
        Err(e) if db::server_code(&e) == Some(1193) => Ok(None),
        Err(e) => Err(Error::database("reading @@GLOBAL.gtid_executed", e)),
    }
}

/// MySQL prints long GTID sets over several lines (`uuid:1-5,\nuuid2:1-3`).
pub(crate) fn normalise_gtid_set(set: &str) -> String {
    set.chars().filter(|c| !c.is_whitespace()).collect()
}

/// One attempt of the check: reads the GTID set, opens a snapshot on every connection, reads
/// the set again. Some(set) when unchanged (all snapshots are at that set); otherwise every
/// snapshot is rolled back and None returned, to try again.
pub(crate) async fn open_at_one_gtid_set(connections: &mut [&mut Conn]) -> Result<Option<String>> {
    let Some(first) = connections.first_mut() else {
        return Ok(None);
    };
    let Some(before) = gtid_executed(first).await? else {
        return Ok(None);
    };
    for conn in connections.iter_mut() {
        db::run_all(conn, &["START TRANSACTION WITH CONSISTENT SNAPSHOT"]).await?;
    }
    let after = match connections.first_mut() {
        Some(first) => gtid_executed(first).await?,
        None => None,
    };
    if after.as_deref() == Some(before.as_str()) {
        return Ok(Some(before));
    }
    for conn in connections.iter_mut() {
        let _ = db::run_all(conn, &["ROLLBACK"]).await;
    }
    Ok(None)
}

/// The binary log's current file and offset (`SHOW BINARY LOG STATUS` from MySQL 8.2,
/// `SHOW MASTER STATUS` before), or None without the privilege or a binary log.
pub(crate) async fn binary_log_status(conn: &mut Conn) -> Option<(String, u64)> {
    for statement in ["SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"] {
        if let Ok(Some(row)) = conn.query_first::<Row, _>(statement).await {
            let columns: Vec<(String, Option<String>)> = row
                .columns_ref()
                .iter()
                .enumerate()
                .map(|(i, column)| {
                    let value = row
                        .get_opt::<Option<Vec<u8>>, _>(i)
                        .and_then(|v| v.ok())
                        .flatten()
                        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
                    (column.name_str().into_owned(), value)
                })
                .collect();
            return parse_binary_log_status(&columns);
        }
    }
    None
}

/// File and Position out of a `SHOW BINARY LOG STATUS` / `SHOW MASTER STATUS` row.
pub(crate) fn parse_binary_log_status(
    columns: &[(String, Option<String>)],
) -> Option<(String, u64)> {
    let value = |name: &str| {
        columns
            .iter()
            .find(|(column, _)| column.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.clone())
    };
    let file = value("File").filter(|f| !f.is_empty())?;
    let position = value("Position")?.trim().parse().ok()?;
    Some((file, position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_sets_compare_whatever_their_line_breaks() {
        let printed = "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-77,\n\
                       4F22FB58-82DB-22F2-AF44-D91BBA53A673:1-3";
        assert_eq!(
            normalise_gtid_set(printed),
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-77,4F22FB58-82DB-22F2-AF44-D91BBA53A673:1-3"
        );
    }

    #[test]
    fn binary_log_status_columns_are_read_by_name() {
        let row = vec![
            ("File".to_string(), Some("binlog.000003".to_string())),
            ("Position".to_string(), Some("157".to_string())),
            ("Binlog_Do_DB".to_string(), Some(String::new())),
            ("Binlog_Ignore_DB".to_string(), Some(String::new())),
            ("Executed_Gtid_Set".to_string(), Some(String::new())),
        ];
        assert_eq!(
            parse_binary_log_status(&row),
            Some(("binlog.000003".to_string(), 157))
        );
        assert_eq!(parse_binary_log_status(&row[1..]), None);
    }
}

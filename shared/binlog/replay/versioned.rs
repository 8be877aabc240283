//! The rows of a system-versioned table, applied history included: rows inserted with their
//! logged row start and end, an update or delete run at the instant the source's ran. Apart
//! because only here does the replay set the session's clock row by row, and refuse what it
//! cannot replay exactly (versioning by transaction id, history rows deleted).

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use mysql_common::binlog::events::RowsEventData;

use crate::binlog::position::Position;
use crate::binlog::segment::TableChanges;
use crate::binlog::sql::TableShape;
use crate::error::{Error, Result};

/// A system-versioned table's row start and end columns among the logged ones (the binlog
/// names implicit ones `row_start` and `row_end`). Versioning by transaction id is refused:
/// the ids of the target's transactions are not the source's.
pub(super) async fn row_period(
    conn: &mut Conn,
    name: &str,
    shape: &TableShape,
) -> Result<(usize, usize)> {
    let create = crate::mysql::schema::show_create_table(conn, name).await?;
    let [start, end] = crate::mysql::schema::row_period_columns(&create);
    let find = |column: &str| {
        let i = shape
            .names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(column))
            .ok_or_else(|| Error::BinlogUnsupported {
                detail: format!(
                    "the binlog's rows of system-versioned table `{name}` lack its column `{column}`"
                ),
            })?;
        if !matches!(
            shape.types[i],
            mysql_async::consts::ColumnType::MYSQL_TYPE_TIMESTAMP2
                | mysql_async::consts::ColumnType::MYSQL_TYPE_TIMESTAMP
        ) {
            return Err(Error::BinlogUnsupported {
                detail: format!(
                    "system-versioned table `{name}` is versioned by transaction id (`{column}` is not a TIMESTAMP): its history cannot be replayed, the target's transaction ids are not the source's; restore a point before its rows changed"
                ),
            });
        }
        Ok(i)
    };
    Ok((find(&start)?, find(&end)?))
}

/// Applies a rows event of a system-versioned table exactly, history included. Rows are
/// inserted with their logged row start and end (system_versioning_insert_history); an update
/// or delete runs at the instant the source's did (`@@timestamp`), so the server ends the old
/// row and writes its history at that instant, and the history row the binlog logs after it
/// is found there already. Rows deleted from history (DELETE HISTORY) are refused.
pub(super) async fn apply_versioned(
    conn: &mut Conn,
    rows: &RowsEventData<'_>,
    images: &[(
        Option<mysql_common::binlog::row::BinlogRow>,
        Option<mysql_common::binlog::row::BinlogRow>,
    )],
    shape: &TableShape,
    (start, end): (usize, usize),
    name: &str,
    at: &Position,
) -> Result<TableChanges> {
    let failed = |what: &str| {
        let what = format!("replaying {what} system-versioned table `{name}` at {at}");
        move |e| Error::database(what, e)
    };
    let mismatch = |kind: &str, affected: u64| {
        Error::RestoreMismatch(vec![format!(
            "replaying the {kind} of a row of system-versioned table `{name}` at {at} changed {affected} rows, not 1: the restored database is not the state this binlog continues from"
        )])
    };
    let mut changes = TableChanges::default();
    match rows {
        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
            let mut to_insert = Vec::new();
            for after in images.iter().filter_map(|(_, a)| a.as_ref()) {
                let (_, current) = shape.epoch(after, end)?;
                if !current {
                    // The history row of an update replayed just before: written already.
                    let found: Option<u64> = conn
                        .query_first(shape.count_all_versions(after)?)
                        .await
                        .map_err(failed("the history of"))?;
                    if found.unwrap_or(0) > 0 {
                        changes.inserted += 1;
                        continue;
                    }
                }
                to_insert.push(after);
            }
            conn.query_drop("SET SESSION system_versioning_insert_history = 1")
                .await
                .map_err(failed("inserts into"))?;
            let mut outcome = Ok(());
            for batch in to_insert.chunks(500) {
                outcome = match conn.query_drop(shape.insert(batch)?).await {
                    Err(e) => Err(failed("inserts into")(e)),
                    Ok(()) if conn.affected_rows() != batch.len() as u64 => {
                        Err(mismatch("insert", conn.affected_rows()))
                    }
                    Ok(()) => Ok(()),
                };
                if outcome.is_err() {
                    break;
                }
                changes.inserted += batch.len() as u64;
            }
            let reset = conn
                .query_drop("SET SESSION system_versioning_insert_history = 0")
                .await
                .map_err(failed("inserts into"));
            outcome.and(reset)?;
        }
        RowsEventData::UpdateRowsEventV1(_)
        | RowsEventData::UpdateRowsEvent(_)
        | RowsEventData::PartialUpdateRowsEvent(_) => {
            for (before, after) in images {
                let (Some(before), Some(after)) = (before, after) else {
                    continue;
                };
                if !shape.epoch(before, end)?.1 {
                    return Err(Error::BinlogUnsupported {
                        detail: format!(
                            "a history row of system-versioned table `{name}` was changed at {at}: only current rows can be replayed; restore a point before it"
                        ),
                    });
                }
                // Still current after it: an UPDATE at the instant its new row starts. Ended:
                // a DELETE at the instant the row ends.
                let (ended_at, current) = shape.epoch(after, end)?;
                let (instant, sql, kind) = if current {
                    (
                        shape.epoch(after, start)?.0,
                        shape.update(before, after)?,
                        "update",
                    )
                } else {
                    (ended_at, shape.delete(before)?, "delete")
                };
                conn.query_drop(format!("SET @@timestamp = {instant}"))
                    .await
                    .map_err(failed("a change of"))?;
                let outcome = match conn.query_drop(sql).await {
                    Err(e) => Err(failed("a change of")(e)),
                    Ok(()) if conn.affected_rows() != 1 => {
                        Err(mismatch(kind, conn.affected_rows()))
                    }
                    Ok(()) => Ok(()),
                };
                let reset = conn
                    .query_drop("SET @@timestamp = DEFAULT")
                    .await
                    .map_err(failed("a change of"));
                outcome.and(reset)?;
                changes.updated += 1;
            }
        }
        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
            return Err(Error::BinlogUnsupported {
                detail: format!(
                    "rows were deleted from the history of system-versioned table `{name}` at {at} (DELETE HISTORY, or a partition of history dropped): a replay cannot remove history rows exactly; restore a point before it"
                ),
            });
        }
    }
    Ok(changes)
}

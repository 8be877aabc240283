//! A rows event made SQL: INSERTs of many rows; in a transactional table, UPDATEs and DELETEs
//! of up to a hundred (a thousand) rows found by a list of primary keys, tried again row by row
//! in the logged order where the order the server finds them in breaks a unique or foreign
//! key; elsewhere one statement a row. Every statement must change exactly the rows it names.
//! The table's shape is read once from the target; and the tables a foreign key's action may
//! change beside it. Apart from the loop, which decides whether rows
//! are applied, because this is how they are; system-versioned tables go on to `versioned`.

use std::collections::{BTreeSet, HashMap};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use mysql_common::binlog::events::RowsEventData;
use mysql_common::binlog::row::BinlogRow;

use super::decode::RowImages;
use super::versioned::{apply_versioned, row_period};
use crate::binlog::position::Position;
use crate::binlog::segment::TableChanges;
use crate::binlog::sql::TableShape;
use crate::error::{Error, Result};

/// Adds the tables an update or delete of `table` can change through foreign key actions
/// (CASCADE, SET NULL, SET DEFAULT), and those theirs can, to `cascaded`.
pub(super) async fn cascades_from(
    conn: &mut Conn,
    table: &str,
    cascaded: &mut BTreeSet<String>,
) -> Result<()> {
    let mut to_follow = vec![table.to_string()];
    let mut seen = BTreeSet::from([table.to_string()]);
    while let Some(parent) = to_follow.pop() {
        let children: Vec<String> = conn
            .exec(
                "SELECT DISTINCT TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND UNIQUE_CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = ? AND (UPDATE_RULE NOT IN ('RESTRICT', 'NO ACTION') OR DELETE_RULE NOT IN ('RESTRICT', 'NO ACTION'))",
                (parent.as_str(),),
            )
            .await
            .map_err(|e| {
                Error::database(format!("reading the foreign keys that refer to `{parent}`"), e)
            })?;
        for child in children {
            if seen.insert(child.clone()) {
                cascaded.insert(child.clone());
                to_follow.push(child);
            }
        }
    }
    Ok(())
}

/// Applies one rows event; every row must change exactly one row of the target. Also says
/// whether the table is a sequence (its one row is its state: an insert replaces it).
pub(super) async fn apply_rows(
    conn: &mut Conn,
    rows: &RowsEventData<'_>,
    (table, images): (
        &mysql_common::binlog::events::TableMapEvent<'static>,
        std::result::Result<RowImages, String>,
    ),
    name: &str,
    (shapes, compressed): (&mut HashMap<u64, TableShape>, &HashMap<u64, Vec<bool>>),
    at: &Position,
) -> Result<(TableChanges, bool)> {
    let images = images.map_err(|e| Error::BinlogUnsupported {
        detail: format!("a row of `{name}` at {at} cannot be decoded: {e}"),
    })?;
    let mut changes = TableChanges::default();
    let Some(sample) = images.iter().find_map(|(b, a)| a.as_ref().or(b.as_ref())) else {
        return Ok((changes, false));
    };
    let shape = match shapes.entry(rows.table_id()) {
        std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
        std::collections::hash_map::Entry::Vacant(slot) => {
            let types = (0..table.columns_count() as usize)
                .map(|i| {
                    table.get_column_type(i).ok().flatten().ok_or_else(|| {
                        Error::BinlogUnsupported {
                            detail: format!(
                                "column {i} of `{name}` has a type this tool does not know"
                            ),
                        }
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            // The target's own columns (the binlog also names hidden ones), and those the
            // server sets itself in an UPDATE.
            let columns: Vec<(String, String)> = conn
                .exec(
                    "SELECT COLUMN_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                    (name,),
                )
                .await
                .map_err(|e| Error::database(format!("reading the columns of `{name}`"), e))?;
            let visible: Vec<String> = columns.iter().map(|(c, _)| c.clone()).collect();
            let mut shape = TableShape::from_row(name, table, sample, types, &visible)?;
            if let Some(columns) = compressed.get(&rows.table_id()) {
                shape.compressed = columns.clone();
            }
            shape.set_on_update = shape
                .names
                .iter()
                .map(|n| {
                    columns.iter().any(|(c, extra)| {
                        c == n && extra.to_ascii_lowercase().contains("on update")
                    })
                })
                .collect();
            let kind: Option<(String, Option<String>)> = conn
                .exec_first(
                    "SELECT t.TABLE_TYPE, e.TRANSACTIONS FROM information_schema.TABLES t LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = ?",
                    (name,),
                )
                .await
                .map_err(|e| Error::database(format!("reading the type of table `{name}`"), e))?;
            let (kind, transactions) = kind.unzip();
            shape.transactional = transactions.flatten().as_deref() == Some("YES");
            shape.sequence = kind.as_deref() == Some("SEQUENCE");
            if kind.as_deref() == Some("SYSTEM VERSIONED") {
                shape.period = Some(row_period(conn, name, &shape).await?);
            }
            slot.insert(shape)
        }
    };
    let mismatch = |kind: &str, affected: u64, expected: usize| {
        changed_other_rows(kind, name, at, affected, expected)
    };
    if let Some((start, end)) = shape.period {
        return apply_versioned(conn, rows, &images, shape, (start, end), name, at)
            .await
            .map(|changes| (changes, false));
    }
    match rows {
        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
            let after: Vec<_> = images.iter().filter_map(|(_, a)| a.as_ref()).collect();
            for batch in after.chunks(500) {
                conn.query_drop(shape.insert(batch)?).await.map_err(|e| {
                    Error::database(format!("replaying inserts into `{name}` at {at}"), e)
                })?;
                if conn.affected_rows() != batch.len() as u64 {
                    return Err(mismatch("insert", conn.affected_rows(), batch.len()));
                }
                changes.inserted += batch.len() as u64;
            }
        }
        RowsEventData::UpdateRowsEventV1(_)
        | RowsEventData::UpdateRowsEvent(_)
        | RowsEventData::PartialUpdateRowsEvent(_) => {
            let pairs: Vec<(&BinlogRow, &BinlogRow)> = images
                .iter()
                .filter_map(|(b, a)| b.as_ref().zip(a.as_ref()))
                .collect();
            for chunk in pairs.chunks(UPDATE_CHUNK) {
                let many = match shape.changes_many_rows_at_once() && chunk.len() > 1 {
                    true => shape.update_many(chunk)?,
                    false => None,
                };
                if let Some(sql) = many {
                    if apply_many(conn, "update", sql, chunk.len(), name, at).await? {
                        changes.updated += chunk.len() as u64;
                        continue;
                    }
                }
                for (before, after) in chunk {
                    conn.query_drop(shape.update(before, after)?)
                        .await
                        .map_err(|e| {
                            Error::database(format!("replaying an update of `{name}` at {at}"), e)
                        })?;
                    if conn.affected_rows() != 1 {
                        return Err(mismatch("update", conn.affected_rows(), 1));
                    }
                    changes.updated += 1;
                }
            }
        }
        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
            let befores: Vec<&BinlogRow> = images.iter().filter_map(|(b, _)| b.as_ref()).collect();
            for chunk in befores.chunks(DELETE_CHUNK) {
                if shape.changes_many_rows_at_once() && chunk.len() > 1 {
                    let sql = shape.delete_many(chunk)?;
                    if apply_many(conn, "delete", sql, chunk.len(), name, at).await? {
                        changes.deleted += chunk.len() as u64;
                        continue;
                    }
                }
                for before in chunk {
                    conn.query_drop(shape.delete(before)?).await.map_err(|e| {
                        Error::database(format!("replaying a delete from `{name}` at {at}"), e)
                    })?;
                    if conn.affected_rows() != 1 {
                        return Err(mismatch("delete", conn.affected_rows(), 1));
                    }
                    changes.deleted += 1;
                }
            }
        }
    }
    Ok((changes, shape.sequence))
}

/// Rows an UPDATE of many rows sets at most: each column is a CASE over the rows it changed in,
/// which the server reads row by row, so the work per statement grows with its square.
const UPDATE_CHUNK: usize = 100;
/// Keys a DELETE of many rows lists at most.
const DELETE_CHUNK: usize = 1000;

/// Server errors after which a statement of many rows is tried again row by row, in the logged
/// order: the order its rows are found in can break a unique or foreign key that the logged
/// order kept (1062 duplicate key, 1451/1452 a foreign key, 1557/1761/1762 duplicate key
/// through a foreign key, 1586 duplicate in a unique key). A transactional engine rolled the
/// statement back whole.
const TRY_ROW_BY_ROW: [u16; 7] = [1062, 1451, 1452, 1557, 1586, 1761, 1762];

/// Runs one statement (the `kind` of change) of `expected` rows of a transactional table
/// (`TableShape::changes_many_rows_at_once`). `true`: every row changed; `false`: refused in a
/// way the rows one by one may not be, and rolled back whole; an error when it changed another
/// number of rows.
async fn apply_many(
    conn: &mut Conn,
    kind: &str,
    sql: Vec<u8>,
    expected: usize,
    name: &str,
    at: &Position,
) -> Result<bool> {
    match conn.query_drop(sql).await {
        Ok(()) if conn.affected_rows() == expected as u64 => Ok(true),
        Ok(()) => Err(changed_other_rows(
            kind,
            name,
            at,
            conn.affected_rows(),
            expected,
        )),
        Err(mysql_async::Error::Server(e)) if TRY_ROW_BY_ROW.contains(&e.code) => {
            tracing::debug!(table = name, position = %at, code = e.code, "a statement of many rows is applied row by row");
            Ok(false)
        }
        Err(e) => Err(Error::database(
            format!("replaying the changes of {expected} rows of `{name}` at {at}"),
            e,
        )),
    }
}

/// A replayed statement changed `affected` rows where the binlog changed `expected`.
fn changed_other_rows(
    kind: &str,
    name: &str,
    at: &Position,
    affected: u64,
    expected: usize,
) -> Error {
    Error::RestoreMismatch(vec![if expected == 1 {
        format!("replaying the {kind} of a row of `{name}` at {at} changed {affected} rows, not 1: the restored database is not the state this binlog continues from")
    } else {
        format!("replaying the {kind} of {expected} rows of `{name}` at {at} (one statement) changed {affected} rows: the restored database is not the state this binlog continues from")
    }])
}

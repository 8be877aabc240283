//! A rows event made SQL: each row an INSERT, UPDATE or DELETE that must change exactly one
//! row of the target, with the table's shape read once from the target; and the tables a
//! foreign key's action may change beside it. Apart from the loop, which decides whether rows
//! are applied, because this is how they are; system-versioned tables go on to `versioned`.

use std::collections::{BTreeSet, HashMap};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use mysql_common::binlog::events::RowsEventData;

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
    table: &mysql_common::binlog::events::TableMapEvent<'static>,
    name: &str,
    (shapes, compressed): (&mut HashMap<u64, TableShape>, &HashMap<u64, Vec<bool>>),
    at: &Position,
) -> Result<(TableChanges, bool)> {
    let decode = |e: std::io::Error| Error::BinlogUnsupported {
        detail: format!("a row of `{name}` at {at} cannot be decoded: {e}"),
    };
    let images: Vec<(Option<_>, Option<_>)> = rows
        .rows(table)
        .collect::<std::io::Result<_>>()
        .map_err(decode)?;
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
            // The target's own columns: the binlog also names hidden ones.
            let visible: Vec<String> = conn
                .exec(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                    (name,),
                )
                .await
                .map_err(|e| Error::database(format!("reading the columns of `{name}`"), e))?;
            let mut shape = TableShape::from_row(name, table, sample, types, &visible)?;
            if let Some(columns) = compressed.get(&rows.table_id()) {
                shape.compressed = columns.clone();
            }
            let kind: Option<String> = conn
                .exec_first(
                    "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                    (name,),
                )
                .await
                .map_err(|e| Error::database(format!("reading the type of table `{name}`"), e))?;
            shape.sequence = kind.as_deref() == Some("SEQUENCE");
            if kind.as_deref() == Some("SYSTEM VERSIONED") {
                shape.period = Some(row_period(conn, name, &shape).await?);
            }
            slot.insert(shape)
        }
    };
    let mismatch = |kind: &str, affected: u64| {
        Error::RestoreMismatch(vec![format!(
        "replaying the {kind} of a row of `{name}` at {at} changed {affected} rows, not 1: the restored database is not the state this binlog continues from"
    )])
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
                    return Err(mismatch("insert", conn.affected_rows()));
                }
                changes.inserted += batch.len() as u64;
            }
        }
        RowsEventData::UpdateRowsEventV1(_)
        | RowsEventData::UpdateRowsEvent(_)
        | RowsEventData::PartialUpdateRowsEvent(_) => {
            for (before, after) in &images {
                let (Some(before), Some(after)) = (before, after) else {
                    continue;
                };
                conn.query_drop(shape.update(before, after)?)
                    .await
                    .map_err(|e| {
                        Error::database(format!("replaying an update of `{name}` at {at}"), e)
                    })?;
                if conn.affected_rows() != 1 {
                    return Err(mismatch("update", conn.affected_rows()));
                }
                changes.updated += 1;
            }
        }
        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
            for (before, _) in &images {
                let Some(before) = before else { continue };
                conn.query_drop(shape.delete(before)?).await.map_err(|e| {
                    Error::database(format!("replaying a delete from `{name}` at {at}"), e)
                })?;
                if conn.affected_rows() != 1 {
                    return Err(mismatch("delete", conn.affected_rows()));
                }
                changes.deleted += 1;
            }
        }
    }
    Ok((changes, shape.sequence))
}

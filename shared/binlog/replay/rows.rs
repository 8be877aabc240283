//! A rows event made SQL: INSERTs of many rows; in a transactional table, UPDATEs and DELETEs
//! of up to a hundred (a thousand) rows found by a list of primary keys, tried again row by row
//! in the logged order where the order the server finds them in breaks a unique or foreign
//! key; elsewhere one statement a row. Every statement must change exactly the rows it names.
//! The table's shape is read once from the target; and the tables a foreign key's action may
//! change beside it. Apart from the loop, which decides whether rows
//! are applied, because this is how they are; system-versioned tables go on to `versioned`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use mysql_common::binlog::events::RowsEventData;
use mysql_common::binlog::row::BinlogRow;

use super::decode::RowImages;
use super::outbox::{Change, Link, Queued};
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

/// The tables' shapes as read from the target, by table id (until a statement may change them).
pub(super) type Shapes = HashMap<u64, Arc<TableShape>>;

/// Applies one rows event; every row must change exactly one row of the target. Statements of
/// many rows of a transactional table are queued on `link` (sent together with the next ones).
/// Also says whether the table is a sequence (its one row is its state: an insert replaces it).
pub(super) async fn apply_rows(
    link: &mut Link<'_>,
    rows: &RowsEventData<'_>,
    (table, images): (
        &mysql_common::binlog::events::TableMapEvent<'static>,
        std::result::Result<RowImages, String>,
    ),
    name: &str,
    (shapes, compressed): (&mut Shapes, &HashMap<u64, Vec<bool>>),
    at: &Position,
) -> Result<(TableChanges, bool)> {
    let images = images.map_err(|e| Error::BinlogUnsupported {
        detail: format!("a row of `{name}` at {at} cannot be decoded: {e}"),
    })?;
    let mut changes = TableChanges::default();
    let Some(sample) = images.iter().find_map(|(b, a)| a.as_ref().or(b.as_ref())) else {
        return Ok((changes, false));
    };
    let shape = match shapes.get(&rows.table_id()) {
        Some(known) => known.clone(),
        None => {
            let columns = compressed.get(&rows.table_id());
            let read = read_shape(link.now().await?, table, sample, name, columns).await?;
            let shape = Arc::new(read);
            shapes.insert(rows.table_id(), shape.clone());
            shape
        }
    };
    if let Some((start, end)) = shape.period {
        return apply_versioned(
            link.now().await?,
            rows,
            &images,
            &shape,
            (start, end),
            name,
            at,
        )
        .await
        .map(|changes| (changes, false));
    }
    let many = shape.changes_many_rows_at_once();
    let queued = |change, sql, expected, rows| Queued {
        change,
        sql,
        expected,
        table: name.to_string(),
        at: at.clone(),
        shape: shape.clone(),
        rows,
    };
    match rows {
        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
            let after: Vec<_> = images.iter().filter_map(|(_, a)| a.as_ref()).collect();
            for batch in after.chunks(500) {
                let sql = shape.insert(batch)?;
                changes.inserted += batch.len() as u64;
                if shape.transactional {
                    link.queue(queued(Change::Insert, sql, batch.len(), Vec::new()))
                        .await?;
                    continue;
                }
                let conn = link.now().await?;
                conn.query_drop(sql).await.map_err(|e| {
                    Error::database(format!("replaying inserts into `{name}` at {at}"), e)
                })?;
                if conn.affected_rows() != batch.len() as u64 {
                    return Err(changed_other_rows(
                        "insert",
                        name,
                        at,
                        conn.affected_rows(),
                        batch.len(),
                    ));
                }
            }
        }
        RowsEventData::UpdateRowsEventV1(_)
        | RowsEventData::UpdateRowsEvent(_)
        | RowsEventData::PartialUpdateRowsEvent(_) => {
            let mut images = images.into_iter().peekable();
            while images.peek().is_some() {
                let chunk: RowImages = images
                    .by_ref()
                    .filter(|(b, a)| b.is_some() && a.is_some())
                    .take(UPDATE_CHUNK)
                    .collect();
                let pairs: Vec<(&BinlogRow, &BinlogRow)> = chunk
                    .iter()
                    .filter_map(|(b, a)| b.as_ref().zip(a.as_ref()))
                    .collect();
                changes.updated += pairs.len() as u64;
                let sql = match many && pairs.len() > 1 {
                    true => shape.update_many(&pairs)?,
                    false => None,
                };
                match sql {
                    Some(sql) => {
                        let expected = pairs.len();
                        link.queue(queued(Change::Update, sql, expected, chunk))
                            .await?
                    }
                    None => one_by_one(link.now().await?, &shape, &chunk, name, at).await?,
                }
            }
        }
        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
            let mut images = images.into_iter().peekable();
            while images.peek().is_some() {
                let chunk: RowImages = images
                    .by_ref()
                    .filter(|(b, _)| b.is_some())
                    .take(DELETE_CHUNK)
                    .collect();
                let befores: Vec<&BinlogRow> =
                    chunk.iter().filter_map(|(b, _)| b.as_ref()).collect();
                changes.deleted += befores.len() as u64;
                if many && befores.len() > 1 {
                    let sql = shape.delete_many(&befores)?;
                    let expected = befores.len();
                    link.queue(queued(Change::Delete, sql, expected, chunk))
                        .await?;
                } else {
                    one_by_one(link.now().await?, &shape, &chunk, name, at).await?;
                }
            }
        }
    }
    Ok((changes, shape.sequence))
}

/// Applies `rows` one statement a row, in the logged order: an update where a row has both
/// images, a delete where it has its before image only.
pub(super) async fn one_by_one(
    conn: &mut Conn,
    shape: &TableShape,
    rows: &RowImages,
    name: &str,
    at: &Position,
) -> Result<()> {
    for images in rows {
        let (kind, sql) = match images {
            (Some(before), Some(after)) => ("update", shape.update(before, after)?),
            (Some(before), None) => ("delete", shape.delete(before)?),
            _ => continue,
        };
        conn.query_drop(sql).await.map_err(|e| {
            Error::database(
                format!("replaying an {kind} of a row of `{name}` at {at}"),
                e,
            )
        })?;
        if conn.affected_rows() != 1 {
            return Err(changed_other_rows(kind, name, at, conn.affected_rows(), 1));
        }
    }
    Ok(())
}

/// The shape of `name` as the target has it (its columns, those the server sets in an UPDATE,
/// whether it is transactional, a sequence or system-versioned), read once.
async fn read_shape(
    conn: &mut Conn,
    table: &mysql_common::binlog::events::TableMapEvent<'static>,
    sample: &BinlogRow,
    name: &str,
    compressed: Option<&Vec<bool>>,
) -> Result<TableShape> {
    let types = (0..table.columns_count() as usize)
        .map(|i| {
            table
                .get_column_type(i)
                .ok()
                .flatten()
                .ok_or_else(|| Error::BinlogUnsupported {
                    detail: format!("column {i} of `{name}` has a type this tool does not know"),
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
    if let Some(columns) = compressed {
        shape.compressed = columns.clone();
    }
    shape.set_on_update = shape
        .names
        .iter()
        .map(|n| {
            columns
                .iter()
                .any(|(c, extra)| c == n && extra.to_ascii_lowercase().contains("on update"))
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
    Ok(shape)
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
pub(super) const TRY_ROW_BY_ROW: [u16; 7] = [1062, 1451, 1452, 1557, 1586, 1761, 1762];

/// A replayed statement changed `affected` rows where the binlog changed `expected`.
pub(super) fn changed_other_rows(
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

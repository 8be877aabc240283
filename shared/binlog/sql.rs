//! Row images from the binlog as SQL: literals that load back exactly what the server logged,
//! and the statement for each row change (rows found by primary key, or by every column where
//! a table has none).

use mysql_async::consts::ColumnType;
use mysql_async::Value;
use mysql_common::binlog::events::{OptionalMetaExtractor, TableMapEvent};
use mysql_common::binlog::row::BinlogRow;
use mysql_common::binlog::value::BinlogValue;

use crate::error::{Error, Result};
use crate::mysql::quote_ident;
use crate::mysql::values::{write_literal, ColumnKind};

/// A table as a rows event sees it: its name in the target and each column's name and type.
pub(crate) struct TableShape {
    pub(crate) table: String,
    pub(crate) names: Vec<String>,
    pub(crate) types: Vec<ColumnType>,
    /// Columns of the primary key; empty when the table has none.
    pub(crate) key: Vec<usize>,
    /// Whether each column is an UNSIGNED number.
    pub(crate) unsigned: Vec<bool>,
    /// A CHAR/BINARY column's length in bytes: the binlog logs it without its trailing pad
    /// (a BINARY's zero bytes), so it is found padded again.
    pub(crate) padded: Vec<Option<usize>>,
    /// Columns the server adds and hides (`DB_ROW_HASH_1` of a UNIQUE key on a BLOB): never
    /// named in a statement.
    pub(crate) hidden: Vec<bool>,
    /// COMPRESSED columns (read as VARCHAR/BLOB, their values still compressed); empty when
    /// none is.
    pub(crate) compressed: Vec<bool>,
    /// A system-versioned table's row start and end columns (TIMESTAMPs), by position: the
    /// server sets them itself in an UPDATE or DELETE, which name the other columns only.
    pub(crate) period: Option<(usize, usize)>,
    /// A sequence: its one row is its state.
    pub(crate) sequence: bool,
    /// Columns the server sets itself in an UPDATE that does not name them (`ON UPDATE
    /// CURRENT_TIMESTAMP`): an UPDATE of many rows names them even where they did not change.
    pub(crate) set_on_update: Vec<bool>,
    /// The engine has transactions: a failed statement changed nothing, so one statement of
    /// many rows that fails can be tried again row by row.
    pub(crate) transactional: bool,
}

/// The numeric binlog types, the columns the table map's signedness bits are for, in order
/// (YEAR among them: MariaDB logs it unsigned).
fn is_numeric(column_type: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        column_type,
        MYSQL_TYPE_YEAR
            | MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_NEWDECIMAL
            | MYSQL_TYPE_FLOAT
            | MYSQL_TYPE_DOUBLE
    )
}

impl TableShape {
    /// `visible`: the target table's columns, to leave out the hidden ones the binlog names.
    pub(crate) fn from_row(
        table: &str,
        map: &TableMapEvent<'_>,
        row: &BinlogRow,
        types: Vec<ColumnType>,
        visible: &[String],
    ) -> Result<TableShape> {
        let columns = row.columns_ref();
        let names: Vec<String> = columns.iter().map(|c| c.name_str().into_owned()).collect();
        if names.iter().any(|n| n.starts_with('@')) || names.len() != types.len() {
            return Err(Error::BinlogUnsupported {
                detail: format!(
                    "the binlog names no columns of `{table}` (binlog_row_metadata was not FULL when it was written)"
                ),
            });
        }
        let unreadable = |e: std::io::Error| Error::BinlogUnsupported {
            detail: format!("the binlog's description of `{table}` cannot be read: {e}"),
        };
        let meta = OptionalMetaExtractor::new(map.iter_optional_meta()).map_err(unreadable)?;
        // Every key column, in the key's order (mysql_common's column flags mark only those
        // whose order is the table's).
        let key = meta
            .iter_primary_key()
            .map(|i| i.map(|i| i as usize))
            .collect::<std::io::Result<Vec<usize>>>()
            .map_err(unreadable)?;
        if key.iter().any(|&i| i >= names.len()) {
            return Err(Error::BinlogUnsupported {
                detail: format!("the binlog's primary key of `{table}` names a column it lacks"),
            });
        }
        let mut signedness = meta.iter_signedness();
        let unsigned = types
            .iter()
            .map(|&t| is_numeric(t) && signedness.next().unwrap_or(false))
            .collect();
        let padded = types
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let meta = map.get_column_metadata(i)?;
                (t == ColumnType::MYSQL_TYPE_STRING && meta.len() == 2).then(|| {
                    let (byte0, byte1) = (usize::from(meta[0]), usize::from(meta[1]));
                    byte1 | (((byte0 & 0x30) ^ 0x30) << 4)
                })
            })
            .collect();
        let hidden = names
            .iter()
            .map(|n| {
                n.starts_with("DB_ROW_HASH_")
                    && !visible.is_empty()
                    && !visible.iter().any(|v| v == n)
            })
            .collect();
        Ok(TableShape {
            table: table.to_string(),
            names,
            types,
            key,
            unsigned,
            padded,
            hidden,
            compressed: Vec::new(),
            period: None,
            sequence: false,
            set_on_update: Vec::new(),
            transactional: false,
        })
    }

    pub(super) fn named(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.names.len()).filter(|&i| !self.hidden[i])
    }

    pub(crate) fn insert(&self, rows: &[&BinlogRow]) -> Result<Vec<u8>> {
        let mut sql = format!("INSERT INTO {} (", quote_ident(&self.table)).into_bytes();
        for (n, i) in self.named().enumerate() {
            if n > 0 {
                sql.push(b',');
            }
            sql.extend_from_slice(quote_ident(&self.names[i]).as_bytes());
        }
        sql.extend_from_slice(b") VALUES ");
        for (r, row) in rows.iter().enumerate() {
            if r > 0 {
                sql.push(b',');
            }
            sql.push(b'(');
            for (n, i) in self.named().enumerate() {
                if n > 0 {
                    sql.push(b',');
                }
                self.literal(&mut sql, row, i)?;
            }
            sql.push(b')');
        }
        Ok(sql)
    }

    /// Columns an UPDATE sets and a row is found by: all but the hidden ones and, in a
    /// system-versioned table, its row start and end.
    pub(super) fn unversioned(&self) -> impl Iterator<Item = usize> + '_ {
        self.named().filter(|&i| {
            self.period
                .is_none_or(|(start, end)| i != start && i != end)
        })
    }

    pub(crate) fn update(&self, before: &BinlogRow, after: &BinlogRow) -> Result<Vec<u8>> {
        let mut sql = format!("UPDATE {} SET ", quote_ident(&self.table)).into_bytes();
        for (n, i) in self.unversioned().enumerate() {
            if n > 0 {
                sql.push(b',');
            }
            sql.extend_from_slice(quote_ident(&self.names[i]).as_bytes());
            sql.push(b'=');
            self.literal(&mut sql, after, i)?;
        }
        self.where_clause(&mut sql, before)?;
        Ok(sql)
    }

    pub(crate) fn delete(&self, before: &BinlogRow) -> Result<Vec<u8>> {
        let mut sql = format!("DELETE FROM {}", quote_ident(&self.table)).into_bytes();
        self.where_clause(&mut sql, before)?;
        Ok(sql)
    }

    /// `SELECT COUNT(*)` of the rows, history included, equal to `row` in every column.
    pub(crate) fn count_all_versions(&self, row: &BinlogRow) -> Result<Vec<u8>> {
        let mut sql = format!(
            "SELECT COUNT(*) FROM {} FOR SYSTEM_TIME ALL WHERE ",
            quote_ident(&self.table)
        )
        .into_bytes();
        let columns: Vec<usize> = self.named().collect();
        self.conditions(&mut sql, row, &columns)?;
        Ok(sql)
    }

    /// A TIMESTAMP column's logged value as Unix seconds (`1767225600.123456`), as
    /// `@@timestamp` takes it, and whether it is the TIMESTAMP maximum (a current row's end).
    pub(crate) fn epoch(&self, row: &BinlogRow, i: usize) -> Result<(String, bool)> {
        let unexpected = |what: String| Error::BinlogUnsupported {
            detail: format!(
                "`{}`.`{}` holds {what}, not the instant a system-versioned row starts or ends",
                self.table, self.names[i]
            ),
        };
        let seconds = match row.as_ref(i) {
            Some(BinlogValue::Value(Value::Int(n))) => n.to_string(),
            Some(BinlogValue::Value(Value::UInt(n))) => n.to_string(),
            Some(BinlogValue::Value(Value::Bytes(b))) => String::from_utf8_lossy(b).into_owned(),
            other => return Err(unexpected(format!("{other:?}"))),
        };
        if !crate::mysql::values::is_plain_number(seconds.as_bytes()) {
            return Err(unexpected(format!("{seconds:?}")));
        }
        let whole: u64 = seconds
            .split('.')
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|_| unexpected(format!("{seconds:?}")))?;
        Ok((seconds, whole >= 2_147_483_647))
    }

    fn where_clause(&self, sql: &mut Vec<u8>, row: &BinlogRow) -> Result<()> {
        sql.extend_from_slice(b" WHERE ");
        // A versioned table's key holds its row end: an UPDATE or DELETE sees current rows
        // only, found by the rest.
        let key: Vec<usize> = self
            .key
            .iter()
            .copied()
            .filter(|&i| {
                self.period
                    .is_none_or(|(start, end)| i != start && i != end)
            })
            .collect();
        let columns: Vec<usize> = if key.is_empty() {
            self.unversioned().collect()
        } else {
            key
        };
        self.conditions(sql, row, &columns)?;
        // Without a key, one of several identical rows: exactly what the server changed.
        if self.key.is_empty() {
            sql.extend_from_slice(b" LIMIT 1");
        }
        Ok(())
    }

    /// `column = value AND …` for `columns` of `row`.
    pub(super) fn conditions(
        &self,
        sql: &mut Vec<u8>,
        row: &BinlogRow,
        columns: &[usize],
    ) -> Result<()> {
        for (n, &i) in columns.iter().enumerate() {
            if n > 0 {
                sql.extend_from_slice(b" AND ");
            }
            let column = quote_ident(&self.names[i]);
            let mut value = Vec::new();
            self.literal(&mut value, row, i)?;
            sql.extend_from_slice(column.as_bytes());
            if value == b"NULL" {
                sql.extend_from_slice(b" IS NULL");
                continue;
            }
            match (self.types[i], self.padded[i]) {
                // The logged FLOAT as a FLOAT: compared as a DOUBLE, -9.999 is not the stored
                // -9.99899959564209.
                (ColumnType::MYSQL_TYPE_FLOAT, _) => {
                    sql.extend_from_slice(b"=CAST(");
                    sql.extend_from_slice(&value);
                    sql.extend_from_slice(b" AS FLOAT)");
                }
                // As logged (CHAR: its pad spaces are never read back), or padded with zero
                // bytes to its length (BINARY).
                (_, Some(length)) => {
                    sql.extend_from_slice(b" IN (");
                    sql.extend_from_slice(&value);
                    sql.extend_from_slice(b",RPAD(");
                    sql.extend_from_slice(&value);
                    sql.extend_from_slice(format!(",{length},0x00))").as_bytes());
                }
                _ => {
                    sql.push(b'=');
                    sql.extend_from_slice(&value);
                }
            }
        }
        Ok(())
    }

    pub(super) fn literal(&self, out: &mut Vec<u8>, row: &BinlogRow, i: usize) -> Result<()> {
        let value = row.as_ref(i).ok_or_else(|| Error::BinlogUnsupported {
            detail: format!(
                "a row image of `{}` lacks column `{}` (binlog_row_image was not FULL)",
                self.table, self.names[i]
            ),
        })?;
        let value = match value {
            BinlogValue::Value(Value::Bytes(stored)) if self.compressed.get(i) == Some(&true) => {
                BinlogValue::Value(Value::Bytes(super::events::decompressed(stored).map_err(
                    |detail| Error::BinlogUnsupported {
                        detail: format!("`{}`.`{}`: {detail}", self.table, self.names[i]),
                    },
                )?))
            }
            BinlogValue::Value(v) => {
                BinlogValue::Value(integer(self.types[i], self.unsigned[i], v.clone()))
            }
            other => other.clone(),
        };
        write_binlog_literal(out, self.types[i], &value).map_err(|detail| {
            Error::BinlogUnsupported {
                detail: format!("`{}`.`{}`: {detail}", self.table, self.names[i]),
            }
        })
    }
}

/// An integer read back at its width and sign: mysql_common reads a signed MEDIUMINT without
/// its sign.
fn integer(column_type: ColumnType, unsigned: bool, value: Value) -> Value {
    use ColumnType::*;
    let bits = match column_type {
        MYSQL_TYPE_TINY => 8,
        MYSQL_TYPE_SHORT => 16,
        MYSQL_TYPE_INT24 => 24,
        MYSQL_TYPE_LONG => 32,
        MYSQL_TYPE_LONGLONG => 64,
        _ => return value,
    };
    let raw = match value {
        Value::Int(i) => i as u64,
        Value::UInt(u) => u,
        other => return other,
    };
    let raw = if bits == 64 {
        raw
    } else {
        raw & ((1u64 << bits) - 1)
    };
    if unsigned {
        Value::UInt(raw)
    } else {
        let shift = 64 - bits;
        Value::Int(((raw << shift) as i64) >> shift)
    }
}

/// Appends one logged value as SQL. The binlog's own encodings are undone here: TIMESTAMP as
/// Unix seconds, ENUM as its index, SET as a bit mask, YEAR 0 as 1900.
pub(crate) fn write_binlog_literal(
    out: &mut Vec<u8>,
    column_type: ColumnType,
    value: &BinlogValue<'_>,
) -> std::result::Result<(), String> {
    use ColumnType::*;
    let value = match value {
        BinlogValue::Value(v) => v.clone(),
        BinlogValue::Jsonb(_) => Value::try_from(value.clone()).map_err(|e| e.to_string())?,
        BinlogValue::JsonDiff(_) => {
            return Err("a partial JSON update (binlog_row_value_options=PARTIAL_JSON)".into())
        }
    };
    if value == Value::NULL {
        out.extend_from_slice(b"NULL");
        return Ok(());
    }
    match column_type {
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => {
            let seconds = match &value {
                Value::Int(i) => i.to_string(),
                Value::UInt(u) => u.to_string(),
                Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                other => return Err(format!("unexpected TIMESTAMP value {other:?}")),
            };
            if seconds
                .trim_start_matches('0')
                .trim_start_matches('.')
                .trim_matches('0')
                .is_empty()
            {
                out.extend_from_slice(b"'0000-00-00 00:00:00'");
            } else if crate::mysql::values::is_plain_number(seconds.as_bytes()) {
                // The session's time zone is UTC, so this is the exact stored instant.
                out.extend_from_slice(b"FROM_UNIXTIME(");
                out.extend_from_slice(seconds.as_bytes());
                out.push(b')');
            } else {
                return Err(format!("unexpected TIMESTAMP value {seconds:?}"));
            }
        }
        MYSQL_TYPE_SET => match &value {
            Value::Bytes(mask) if mask.len() <= 8 => {
                let mut bytes = [0u8; 8];
                bytes[..mask.len()].copy_from_slice(mask);
                out.extend_from_slice(u64::from_le_bytes(bytes).to_string().as_bytes());
            }
            other => return Err(format!("unexpected SET value {other:?}")),
        },
        MYSQL_TYPE_YEAR => match &value {
            Value::Bytes(b) if b.as_slice() == b"1900" => out.push(b'0'),
            other => write_literal(out, ColumnKind::Year, other),
        },
        MYSQL_TYPE_ENUM | MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24
        | MYSQL_TYPE_LONG | MYSQL_TYPE_LONGLONG => write_literal(out, ColumnKind::Integer, &value),
        MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => {
            write_literal(out, ColumnKind::Decimal, &value)
        }
        MYSQL_TYPE_FLOAT => write_literal(out, ColumnKind::Float, &value),
        MYSQL_TYPE_DOUBLE => write_literal(out, ColumnKind::Double, &value),
        MYSQL_TYPE_BIT => write_literal(out, ColumnKind::Bit, &value),
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => write_literal(out, ColumnKind::Date, &value),
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => {
            write_literal(out, ColumnKind::DateTime, &value)
        }
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => write_literal(out, ColumnKind::Time, &value),
        // MySQL's JSON type refuses binary strings; its text is utf8mb4.
        MYSQL_TYPE_JSON => write_literal(out, ColumnKind::Text, &value),
        // Character data goes in as the bytes the server logged: a binary string takes the
        // column's own character set as it is, whatever the connection's.
        MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_STRING
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_GEOMETRY => write_literal(out, ColumnKind::Binary, &value),
        other => return Err(format!("column type {other:?} is not supported by replay")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(column_type: ColumnType, value: Value) -> String {
        let mut out = Vec::new();
        write_binlog_literal(&mut out, column_type, &BinlogValue::Value(value)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_binlogs_own_encodings_become_sql_that_stores_the_same_value() {
        use ColumnType::*;
        assert_eq!(
            literal(
                MYSQL_TYPE_TIMESTAMP2,
                Value::Bytes(b"1704164645.678000".to_vec())
            ),
            "FROM_UNIXTIME(1704164645.678000)"
        );
        assert_eq!(
            literal(MYSQL_TYPE_TIMESTAMP2, Value::Bytes(b"0".to_vec())),
            "'0000-00-00 00:00:00'"
        );
        assert_eq!(literal(MYSQL_TYPE_SET, Value::Bytes(vec![0b101, 1])), "261");
        assert_eq!(literal(MYSQL_TYPE_ENUM, Value::Int(2)), "2");
        assert_eq!(
            literal(MYSQL_TYPE_YEAR, Value::Bytes(b"1900".to_vec())),
            "0"
        );
        assert_eq!(
            literal(MYSQL_TYPE_YEAR, Value::Bytes(b"2026".to_vec())),
            "2026"
        );
        assert_eq!(
            literal(MYSQL_TYPE_VARCHAR, Value::Bytes("é'".as_bytes().to_vec())),
            "_binary'\u{e9}\\''"
        );
        assert_eq!(
            literal(MYSQL_TYPE_NEWDECIMAL, Value::Bytes(b"-12.50".to_vec())),
            "-12.50"
        );
        assert_eq!(literal(MYSQL_TYPE_LONG, Value::NULL), "NULL");
        assert_eq!(
            integer(MYSQL_TYPE_INT24, false, Value::Int(0xff_ffff)),
            Value::Int(-1)
        );
        assert_eq!(
            integer(MYSQL_TYPE_INT24, false, Value::Int(0x80_0000)),
            Value::Int(-8_388_608)
        );
        assert_eq!(
            integer(MYSQL_TYPE_SHORT, true, Value::Int(-1)),
            Value::UInt(65535)
        );
        assert_eq!(
            integer(MYSQL_TYPE_LONGLONG, false, Value::UInt(u64::MAX)),
            Value::Int(-1)
        );
        let mut out = Vec::new();
        assert!(
            write_binlog_literal(&mut out, MYSQL_TYPE_SET, &BinlogValue::Value(Value::Int(3)))
                .is_err()
        );
    }
}

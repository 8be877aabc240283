//! Row images from the binlog as SQL: literals that load back exactly what the server logged,
//! and the statement for each row change (rows found by primary key, or by every column where
//! a table has none).

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::Value;
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
}

impl TableShape {
    pub(crate) fn from_row(
        table: &str,
        row: &BinlogRow,
        types: Vec<ColumnType>,
    ) -> Result<TableShape> {
        let columns = row.columns_ref();
        let names: Vec<String> = columns.iter().map(|c| c.name_str().into_owned()).collect();
        if names.iter().any(|n| n.starts_with('@')) {
            return Err(Error::BinlogUnsupported {
                detail: format!(
                    "the binlog names no columns of `{table}` (binlog_row_metadata was not FULL when it was written)"
                ),
            });
        }
        let key = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.flags().contains(ColumnFlags::PRI_KEY_FLAG))
            .map(|(i, _)| i)
            .collect();
        Ok(TableShape {
            table: table.to_string(),
            names,
            types,
            key,
        })
    }

    pub(crate) fn insert(&self, rows: &[&BinlogRow]) -> Result<Vec<u8>> {
        let mut sql = format!("INSERT INTO {} (", quote_ident(&self.table)).into_bytes();
        for (i, name) in self.names.iter().enumerate() {
            if i > 0 {
                sql.push(b',');
            }
            sql.extend_from_slice(quote_ident(name).as_bytes());
        }
        sql.extend_from_slice(b") VALUES ");
        for (r, row) in rows.iter().enumerate() {
            if r > 0 {
                sql.push(b',');
            }
            sql.push(b'(');
            for i in 0..self.names.len() {
                if i > 0 {
                    sql.push(b',');
                }
                self.literal(&mut sql, row, i)?;
            }
            sql.push(b')');
        }
        Ok(sql)
    }

    pub(crate) fn update(&self, before: &BinlogRow, after: &BinlogRow) -> Result<Vec<u8>> {
        let mut sql = format!("UPDATE {} SET ", quote_ident(&self.table)).into_bytes();
        for i in 0..self.names.len() {
            if i > 0 {
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

    fn where_clause(&self, sql: &mut Vec<u8>, row: &BinlogRow) -> Result<()> {
        sql.extend_from_slice(b" WHERE ");
        let all: Vec<usize>;
        let columns = if self.key.is_empty() {
            all = (0..self.names.len()).collect();
            &all
        } else {
            &self.key
        };
        for (n, &i) in columns.iter().enumerate() {
            if n > 0 {
                sql.extend_from_slice(b" AND ");
            }
            sql.extend_from_slice(quote_ident(&self.names[i]).as_bytes());
            sql.extend_from_slice(b"<=>");
            self.literal(sql, row, i)?;
        }
        // Without a key, one of several identical rows: exactly what the server changed.
        if self.key.is_empty() {
            sql.extend_from_slice(b" LIMIT 1");
        }
        Ok(())
    }

    fn literal(&self, out: &mut Vec<u8>, row: &BinlogRow, i: usize) -> Result<()> {
        let value = row.as_ref(i).ok_or_else(|| Error::BinlogUnsupported {
            detail: format!(
                "a row image of `{}` lacks column `{}` (binlog_row_image was not FULL)",
                self.table, self.names[i]
            ),
        })?;
        write_binlog_literal(out, self.types[i], value).map_err(|detail| Error::BinlogUnsupported {
            detail: format!("`{}`.`{}`: {detail}", self.table, self.names[i]),
        })
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
        let mut out = Vec::new();
        assert!(
            write_binlog_literal(&mut out, MYSQL_TYPE_SET, &BinlogValue::Value(Value::Int(3)))
                .is_err()
        );
    }
}

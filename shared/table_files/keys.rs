//! Primary keys as order-preserving bytes: what key states store and merge on.
//!
//! Only integer key columns are supported: `ORDER BY` on them is the clustered index order (no
//! sort on the server), and their big-endian encoding (sign bit flipped for signed columns)
//! sorts exactly as the server orders them.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use crate::error::{Error, Result};
use crate::mysql::quote_ident;
use crate::mysql::schema::Table;
use crate::mysql::values::{write_literal, ColumnKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    /// Position among the table's dumped columns.
    pub index: usize,
    pub unsigned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryKey {
    pub columns: Vec<KeyColumn>,
}

/// Why a table cannot have a key state.
pub type Unsupported = String;

/// The table's primary key, or why it cannot be tracked.
pub async fn primary_key(
    conn: &mut Conn,
    database: &str,
    table: &Table,
) -> Result<std::result::Result<PrimaryKey, Unsupported>> {
    let rows: Vec<(String, String)> = conn
        .exec(
            "SELECT k.COLUMN_NAME, c.COLUMN_TYPE FROM information_schema.KEY_COLUMN_USAGE k \
             JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME \
             WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.CONSTRAINT_NAME = 'PRIMARY' ORDER BY k.ORDINAL_POSITION",
            (database, &table.name),
        )
        .await
        .map_err(|e| Error::database(format!("reading the primary key of {}", quote_ident(&table.name)), e))?;
    if rows.is_empty() {
        return Ok(Err("it has no primary key".into()));
    }
    let mut columns = Vec::new();
    for (name, column_type) in rows {
        let Some(index) = table.columns.iter().position(|c| c.name == name) else {
            return Ok(Err(format!(
                "its key column {} is generated",
                quote_ident(&name)
            )));
        };
        if table.columns[index].kind != ColumnKind::Integer {
            return Ok(Err(format!(
                "its key column {} is {column_type}; incremental backups track integer keys",
                quote_ident(&name)
            )));
        }
        columns.push(KeyColumn {
            name,
            index,
            unsigned: column_type.to_ascii_lowercase().contains("unsigned"),
        });
    }
    Ok(Ok(PrimaryKey { columns }))
}

impl PrimaryKey {
    pub fn order_by(&self) -> String {
        let names: Vec<String> = self.columns.iter().map(|c| quote_ident(&c.name)).collect();
        format!(" ORDER BY {}", names.join(", "))
    }

    /// The row's key as bytes that sort like the server's ORDER BY.
    pub fn encode(&self, row: &[Value], out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        for column in &self.columns {
            let bits = match row.get(column.index) {
                Some(Value::Int(i)) if !column.unsigned => (*i as u64) ^ (1 << 63),
                Some(Value::UInt(u)) if column.unsigned => *u,
                Some(Value::Int(i)) if column.unsigned && *i >= 0 => *i as u64,
                Some(Value::UInt(u)) if !column.unsigned && *u <= i64::MAX as u64 => *u ^ (1 << 63),
                other => {
                    return Err(Error::Task(format!(
                        "key column {} holds {other:?}, not an integer",
                        quote_ident(&column.name)
                    )))
                }
            };
            out.extend_from_slice(&bits.to_be_bytes());
        }
        Ok(())
    }

    /// Writes the key stored in `bytes` as SQL: `1` or `(1,2)`.
    pub fn write_sql(&self, bytes: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if bytes.len() != 8 * self.columns.len() {
            return Err(Error::Task(format!(
                "a stored key has {} bytes, expected {}",
                bytes.len(),
                8 * self.columns.len()
            )));
        }
        let composite = self.columns.len() > 1;
        if composite {
            out.push(b'(');
        }
        for (i, (column, chunk)) in self.columns.iter().zip(bytes.chunks_exact(8)).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut raw = [0u8; 8];
            raw.copy_from_slice(chunk);
            let bits = u64::from_be_bytes(raw);
            let value = if column.unsigned {
                Value::UInt(bits)
            } else {
                Value::Int((bits ^ (1 << 63)) as i64)
            };
            write_literal(out, ColumnKind::Integer, &value);
        }
        if composite {
            out.push(b')');
        }
        Ok(())
    }

    /// `DELETE FROM t WHERE key IN (` … the caller appends keys and `);`.
    pub fn delete_prefix(&self, table: &str) -> String {
        let names: Vec<String> = self.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let target = if names.len() > 1 {
            format!("({})", names.join(","))
        } else {
            names.join(",")
        };
        format!("DELETE FROM {} WHERE {target} IN (", quote_ident(table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(columns: &[(usize, bool)]) -> PrimaryKey {
        PrimaryKey {
            columns: columns
                .iter()
                .map(|(index, unsigned)| KeyColumn {
                    name: format!("c{index}"),
                    index: *index,
                    unsigned: *unsigned,
                })
                .collect(),
        }
    }

    #[test]
    fn encoding_sorts_like_the_server_and_decodes_back() {
        let signed = key(&[(0, false)]);
        let mut encoded: Vec<(Vec<u8>, i64)> = [-5i64, i64::MIN, 0, 7, i64::MAX]
            .iter()
            .map(|v| {
                let mut out = Vec::new();
                signed.encode(&[Value::Int(*v)], &mut out).unwrap();
                (out, *v)
            })
            .collect();
        encoded.sort();
        let order: Vec<i64> = encoded.iter().map(|(_, v)| *v).collect();
        assert_eq!(order, [i64::MIN, -5, 0, 7, i64::MAX]);
        let mut sql = Vec::new();
        signed.write_sql(&encoded[1].0, &mut sql).unwrap();
        assert_eq!(sql, b"-5");

        let composite = key(&[(1, true), (0, false)]);
        let mut out = Vec::new();
        composite
            .encode(&[Value::Int(-1), Value::UInt(3)], &mut out)
            .unwrap();
        let mut sql = Vec::new();
        composite.write_sql(&out, &mut sql).unwrap();
        assert_eq!(sql, b"(3,-1)");
        assert_eq!(
            composite.delete_prefix("t"),
            "DELETE FROM `t` WHERE (`c1`,`c0`) IN ("
        );
    }
}

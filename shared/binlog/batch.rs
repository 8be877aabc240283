//! Many row changes of one rows event as one statement: a DELETE or an UPDATE of the rows found
//! by a list of primary keys. A statement per row costs a round trip and a parse per row; the
//! server applies a logged rows event at several times that rate, and so must the replay.
//! Apart from `sql` because which changes may go together is its own question: rows found by a
//! key whose columns compare with `=` (not FLOAT, not a padded CHAR/BINARY), in a table that is
//! not system-versioned, in an UPDATE that keeps every row's key.

use mysql_async::consts::ColumnType;
use mysql_common::binlog::row::BinlogRow;

use super::sql::TableShape;
use crate::error::Result;
use crate::mysql::quote_ident;

/// A row's primary key as SQL literals, in the key's order.
type KeyLiterals = Vec<Vec<u8>>;

impl TableShape {
    /// Whether changes of this table go many rows a statement: rows found by a list of primary
    /// keys, in a transactional table (a statement the server refuses part way is rolled back
    /// whole, and can then be applied row by row).
    pub(crate) fn changes_many_rows_at_once(&self) -> bool {
        self.transactional && self.finds_rows_by_key_list()
    }

    /// Whether rows of this table can be found by a list of primary keys.
    fn finds_rows_by_key_list(&self) -> bool {
        !self.key.is_empty()
            && self.period.is_none()
            && self.key.iter().all(|&i| {
                self.types[i] != ColumnType::MYSQL_TYPE_FLOAT
                    && self.padded[i].is_none()
                    && !self.set_on_update.get(i).copied().unwrap_or(false)
            })
    }

    fn key_literals(&self, row: &BinlogRow) -> Result<KeyLiterals> {
        self.key
            .iter()
            .map(|&i| {
                let mut value = Vec::new();
                self.literal(&mut value, row, i)?;
                Ok(value)
            })
            .collect()
    }

    /// `k IN (…)`, or `(a = … AND b = …) OR …` for a key of several columns (which the range
    /// optimizer reads as key lookups in MariaDB and MySQL alike).
    fn write_key_match(&self, sql: &mut Vec<u8>, keys: &[KeyLiterals]) {
        if let [column] = self.key[..] {
            sql.extend_from_slice(quote_ident(&self.names[column]).as_bytes());
            sql.extend_from_slice(b" IN (");
            for (n, key) in keys.iter().enumerate() {
                if n > 0 {
                    sql.push(b',');
                }
                sql.extend_from_slice(&key[0]);
            }
            sql.push(b')');
            return;
        }
        for (n, key) in keys.iter().enumerate() {
            sql.extend_from_slice(if n > 0 { b" OR (" } else { b"(" });
            self.write_key_equals(sql, key);
            sql.push(b')');
        }
    }

    fn write_key_equals(&self, sql: &mut Vec<u8>, key: &KeyLiterals) {
        for (n, (&column, value)) in self.key.iter().zip(key).enumerate() {
            if n > 0 {
                sql.extend_from_slice(b" AND ");
            }
            sql.extend_from_slice(quote_ident(&self.names[column]).as_bytes());
            sql.push(b'=');
            sql.extend_from_slice(value);
        }
    }

    /// `DELETE` of every row of `rows`, found by primary key. The caller checks
    /// `changes_many_rows_at_once` and that the statement deleted `rows.len()` rows.
    pub(crate) fn delete_many(&self, rows: &[&BinlogRow]) -> Result<Vec<u8>> {
        let keys = rows
            .iter()
            .map(|row| self.key_literals(row))
            .collect::<Result<Vec<_>>>()?;
        let mut sql = format!("DELETE FROM {} WHERE ", quote_ident(&self.table)).into_bytes();
        self.write_key_match(&mut sql, &keys);
        Ok(sql)
    }

    /// One `UPDATE` of every row of `pairs` (before, after images), found by primary key,
    /// each column set by a `CASE` over the rows it changed in; `None` where a row's key
    /// changes (found by one key, left with another: row by row, in the logged order). A
    /// column no row changed is left as it is, unless the server would set it itself.
    pub(crate) fn update_many(
        &self,
        pairs: &[(&BinlogRow, &BinlogRow)],
    ) -> Result<Option<Vec<u8>>> {
        let mut keys = Vec::with_capacity(pairs.len());
        for (before, after) in pairs {
            let key = self.key_literals(before)?;
            if self.key_literals(after)? != key {
                return Ok(None);
            }
            keys.push(key);
        }
        let mut sql = format!("UPDATE {} SET ", quote_ident(&self.table)).into_bytes();
        let mut assignments = 0;
        for column in self.unversioned().filter(|i| !self.key.contains(i)) {
            let mut changed = Vec::new();
            let set_anyway = self.set_on_update.get(column).copied().unwrap_or(false);
            for (n, (before, after)) in pairs.iter().enumerate() {
                // The same logged value is the same literal (a missing one is an error, said
                // by `literal`).
                let same = before.as_ref(column).is_some()
                    && before.as_ref(column) == after.as_ref(column);
                if !same || set_anyway {
                    let mut new = Vec::new();
                    self.literal(&mut new, after, column)?;
                    changed.push((n, new));
                }
            }
            if changed.is_empty() {
                continue;
            }
            if assignments > 0 {
                sql.push(b',');
            }
            assignments += 1;
            let name = quote_ident(&self.names[column]);
            sql.extend_from_slice(name.as_bytes());
            sql.extend_from_slice(b"=CASE");
            let single = self.key.len() == 1;
            if single {
                sql.push(b' ');
                sql.extend_from_slice(quote_ident(&self.names[self.key[0]]).as_bytes());
            }
            for (n, value) in changed {
                sql.extend_from_slice(b" WHEN ");
                if single {
                    sql.extend_from_slice(&keys[n][0]);
                } else {
                    self.write_key_equals(&mut sql, &keys[n]);
                }
                sql.extend_from_slice(b" THEN ");
                sql.extend_from_slice(&value);
            }
            sql.extend_from_slice(b" ELSE ");
            sql.extend_from_slice(name.as_bytes());
            sql.extend_from_slice(b" END");
        }
        if assignments == 0 {
            // Every row as it was: the rows must still be found (and counted).
            let first_key = quote_ident(&self.names[self.key[0]]);
            sql.extend_from_slice(format!("{first_key}={first_key}").as_bytes());
        }
        sql.extend_from_slice(b" WHERE ");
        self.write_key_match(&mut sql, &keys);
        Ok(Some(sql))
    }
}

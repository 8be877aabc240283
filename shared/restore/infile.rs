//! Rows for `LOAD DATA LOCAL INFILE`, made from the backup's own multi-row INSERTs while they
//! stream. The stored files stay plain SQL (`gunzip | mysql` restores them); the restore
//! feeds the same rows to the server as tab-separated text, which it parses about twice as
//! fast as INSERT literals (BENCHMARKS.md). Only the literal forms the dump writes are
//! converted (`NULL`, numbers, `'…'` and `_binary'…'` strings); a statement with any other
//! (a BIT column's `0x…`) runs as the INSERT it is.

use crate::mysql::values::is_plain_number;

/// The LOAD DATA statement that takes the rows of one INSERT's table and columns.
pub(super) fn load_statement(table: &[u8], columns: &[u8]) -> Vec<u8> {
    let mut sql = b"LOAD DATA LOCAL INFILE 'toc-backup-rows' INTO TABLE ".to_vec();
    sql.extend_from_slice(table);
    // The rows are in the connection's character set, as the INSERTs' literals were
    // (SET NAMES utf8mb4 at the top of every data file); binary columns take their bytes
    // unconverted, as from a _binary literal.
    sql.extend_from_slice(
        b" CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ",
    );
    sql.extend_from_slice(columns);
    sql
}

/// An INSERT as the dump writes it: `INSERT INTO `t` (`a`,`b`) VALUES (…),(…)`.
pub(super) struct Insert<'a> {
    /// The quoted table name.
    pub table: &'a [u8],
    /// The parenthesised, quoted column list.
    pub columns: &'a [u8],
    /// `(…),(…)`, without a trailing `;`.
    pub values: &'a [u8],
}

pub(super) fn parse_insert(statement: &[u8]) -> Option<Insert<'_>> {
    let rest = statement.strip_prefix(b"INSERT INTO ")?;
    let table_end = quoted_end(rest)?;
    let (table, rest) = rest.split_at(table_end);
    let rest = rest.strip_prefix(b" (")?;
    let mut at = 0;
    // The column list: quoted names separated by commas, up to ") VALUES ".
    loop {
        let end = quoted_end(&rest[at..])?;
        at += end;
        match rest.get(at) {
            Some(b',') => at += 1,
            Some(b')') => break,
            _ => return None,
        }
    }
    let columns =
        &statement[statement.len() - rest.len() - 1..statement.len() - rest.len() + at + 1];
    let values = rest[at + 1..].strip_prefix(b" VALUES ")?;
    let values = values.strip_suffix(b";").unwrap_or(values);
    Some(Insert {
        table,
        columns,
        values,
    })
}

/// Length of the backtick-quoted identifier at the start of `text` (doubled backticks inside).
fn quoted_end(text: &[u8]) -> Option<usize> {
    if text.first() != Some(&b'`') {
        return None;
    }
    let mut i = 1;
    while i < text.len() {
        if text[i] == b'`' {
            if text.get(i + 1) == Some(&b'`') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// Appends `values` (`(…),(…)`) to `out` as LOAD DATA lines: tab-separated fields, `\N` for
/// NULL, and backslash, tab and newline escaped. `None` (and `out` as it was) when a literal
/// is not one this conversion knows.
pub(super) fn rows_from_values(values: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    let converted = convert(values, out);
    if converted.is_none() {
        out.truncate(start);
    }
    converted
}

fn convert(values: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    loop {
        if values.get(i) != Some(&b'(') {
            return None;
        }
        i += 1;
        loop {
            i = field(values, i, out)?;
            match values.get(i) {
                Some(b',') => {
                    out.push(b'\t');
                    i += 1;
                }
                Some(b')') => {
                    out.push(b'\n');
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
        match values.get(i) {
            None => return Some(()),
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

/// Converts the literal at `i`; answers where it ends.
fn field(values: &[u8], mut i: usize, out: &mut Vec<u8>) -> Option<usize> {
    if values[i..].starts_with(b"_binary'") {
        i += b"_binary".len();
    }
    match values.get(i)? {
        b'\'' => string(values, i + 1, out),
        b'N' if values[i..].starts_with(b"NULL") => {
            out.extend_from_slice(b"\\N");
            Some(i + 4)
        }
        _ => {
            let end = values[i..]
                .iter()
                .position(|b| matches!(b, b',' | b')'))
                .map(|n| i + n)?;
            let number = &values[i..end];
            if !is_plain_number(number) {
                return None;
            }
            out.extend_from_slice(number);
            Some(end)
        }
    }
}

/// A quoted string's bytes from `i` (after the opening quote), unescaped from SQL and escaped
/// for LOAD DATA; answers the position after the closing quote.
fn string(values: &[u8], mut i: usize, out: &mut Vec<u8>) -> Option<usize> {
    loop {
        let run = values[i..]
            .iter()
            .position(|b| matches!(b, b'\'' | b'\\' | b'\t' | b'\n'))?;
        out.extend_from_slice(&values[i..i + run]);
        i += run;
        match values[i] {
            b'\'' => return Some(i + 1),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => {
                // An SQL escape, as `escape_into` writes them.
                let byte = match values.get(i + 1)? {
                    b'\'' => b'\'',
                    b'\\' => b'\\',
                    b'0' => 0,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b'Z' => 0x1a,
                    _ => return None,
                };
                match byte {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    other => out.push(other),
                }
                i += 1;
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mysql::values::escape_into;

    fn rows(values: &str) -> Option<String> {
        let mut out = Vec::new();
        rows_from_values(values.as_bytes(), &mut out)?;
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn an_insert_is_split_into_table_columns_and_values() {
        let insert =
            parse_insert(b"INSERT INTO `we``ird` (`id`,`a,b`) VALUES (1,'x'),(2,NULL);").unwrap();
        assert_eq!(insert.table, b"`we``ird`");
        assert_eq!(insert.columns, b"(`id`,`a,b`)");
        assert_eq!(insert.values, b"(1,'x'),(2,NULL)");
        assert!(parse_insert(b"DELETE FROM `t` WHERE `id` IN (1)").is_none());
        assert!(parse_insert(b"INSERT INTO `t` VALUES (1)").is_none());
        assert_eq!(
            load_statement(insert.table, insert.columns),
            b"LOAD DATA LOCAL INFILE 'toc-backup-rows' INTO TABLE `we``ird` CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (`id`,`a,b`)"
        );
    }

    #[test]
    fn literals_become_fields() {
        assert_eq!(
            rows(
                "(1,-2.5e-3,NULL,'NULL',''),(2,'a\\'b\\\\c\\nd\\0e\\Zf\\rg',_binary'\\0\\'',12.50)"
            )
            .unwrap(),
            "1\t-2.5e-3\t\\N\tNULL\t\n2\ta'b\\\\c\\nd\0e\x1af\rg\t\0'\t12.50\n"
        );
        assert_eq!(rows("('tab\there')").unwrap(), "tab\\there\n");
        assert_eq!(
            rows("('2026-01-01 10:00:00.5','-12:00:00')").unwrap(),
            "2026-01-01 10:00:00.5\t-12:00:00\n"
        );
    }

    #[test]
    fn unknown_literals_are_left_to_the_insert() {
        let mut out = b"kept".to_vec();
        assert!(rows_from_values(b"(1,0x0a)", &mut out).is_none());
        assert_eq!(out, b"kept");
        assert!(rows("(1,b'1')").is_none());
        assert!(rows("(1,'unterminated)").is_none());
        assert!(rows("(1,'x\\q')").is_none());
    }

    /// Every byte value, escaped as the dump escapes it, comes out as LOAD DATA reads it back.
    #[test]
    fn every_byte_survives() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let mut literal = b"(_binary'".to_vec();
        escape_into(&mut literal, &bytes);
        literal.extend_from_slice(b"')");
        let mut out = Vec::new();
        rows_from_values(&literal, &mut out).unwrap();
        // Undo LOAD DATA's escaping the way the server does.
        let mut back = Vec::new();
        let mut i = 0;
        while i < out.len() - 1 {
            if out[i] == b'\\' {
                back.push(match out[i + 1] {
                    b't' => b'\t',
                    b'n' => b'\n',
                    other => other,
                });
                i += 2;
            } else {
                back.push(out[i]);
                i += 1;
            }
        }
        assert_eq!(back, bytes);
        assert_eq!(out.last(), Some(&b'\n'));
    }
}

//! What stays the same about a table when the server that renders it changes. `SHOW CREATE
//! TABLE` text moves between versions (MySQL 8.0.30 writes `utf8` as `utf8mb3`, 8.0.19 drops
//! integer display widths, MariaDB 10.6 renames `utf8` to `utf8mb3`), so a definition hash from
//! one version cannot be compared with one from the next. The shape — columns with their types,
//! nullability, character sets and generation, and every index with its columns — read from
//! information_schema and normalized for those renderings, can: incrementals compare it when
//! the server was upgraded since the chain's full backup.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use super::schema::{get_string, is_generated, sha256_hex};
use crate::error::{Error, Result};

/// `major.minor` and flavour of a `VERSION()` string: what decides how definitions render.
fn server_line(version: &str) -> (String, bool) {
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    let line = version.split('.').take(2).collect::<Vec<_>>().join(".");
    (line, mariadb)
}

/// Whether definitions written by `source` may render differently on `target`.
pub fn renders_differently(source: &str, target: &str) -> bool {
    server_line(source) != server_line(target)
}

const INTEGER_TYPES: &[&str] = &["tinyint", "smallint", "mediumint", "int", "bigint"];

/// A column type as every version writes it: lower case, integer display widths dropped
/// (`int(11) unsigned` and `int unsigned` are the same type), `utf8` spelt `utf8mb3`.
pub fn normalize_column_type(column_type: &str) -> String {
    let lower = column_type.trim().to_ascii_lowercase();
    let base_end = lower.find(['(', ' ']).unwrap_or(lower.len());
    let base = &lower[..base_end];
    let rest = &lower[base_end..];
    let rest = match (INTEGER_TYPES.contains(&base), rest.strip_prefix('(')) {
        (true, Some(width)) => match width.find(')') {
            Some(close) if width[..close].bytes().all(|b| b.is_ascii_digit()) => {
                &width[close + 1..]
            }
            _ => rest,
        },
        _ => rest,
    };
    normalize_charset(&format!("{base}{rest}"))
}

/// `utf8` (a word of its own, or the `utf8_` collation prefix) spelt as newer servers spell it.
pub fn normalize_charset(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(at) = rest.find("utf8") {
        let after = &rest[at + 4..];
        let word_starts = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        let old_spelling = !after.starts_with("mb");
        out.push_str(&rest[..at]);
        out.push_str(if word_starts && old_spelling {
            "utf8mb3"
        } else {
            "utf8"
        });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A column of an information_schema row as text. The binary protocol answers numbers
/// (NON_UNIQUE, SEQ_IN_INDEX, SUB_PART) as integers, which a text read would lose.
fn text(row: &Row, column: &str) -> String {
    match row.get_opt::<Value, _>(column) {
        Some(Ok(Value::Int(n))) => n.to_string(),
        Some(Ok(Value::UInt(n))) => n.to_string(),
        _ => get_string(row, column).unwrap_or_default(),
    }
}

/// One column's version-independent description.
pub fn column_line(
    name: &str,
    column_type: &str,
    nullable: &str,
    collation: &str,
    extra: &str,
) -> String {
    let generated = is_generated(extra);
    format!(
        "column {name} {} null={} collation={} generated={generated}",
        normalize_column_type(column_type),
        nullable.eq_ignore_ascii_case("YES"),
        normalize_charset(&collation.to_ascii_lowercase()),
    )
}

/// The hash of a table's shape, as read from this server; `columns` are its
/// information_schema.COLUMNS rows (read once, with its dumped columns).
pub(super) async fn table_shape_sha256(
    conn: &mut Conn,
    database: &str,
    table: &str,
    columns: &[Row],
) -> Result<String> {
    let context = || format!("reading the indexes of table `{table}`");
    let indexes: Vec<Row> = conn
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (database, table),
        )
        .await
        .map_err(|e| Error::database(context(), e))?;
    let mut lines: Vec<String> = columns
        .iter()
        .map(|row| {
            column_line(
                &text(row, "COLUMN_NAME"),
                &text(row, "COLUMN_TYPE"),
                &text(row, "IS_NULLABLE"),
                &text(row, "COLLATION_NAME"),
                &text(row, "EXTRA"),
            )
        })
        .collect();
    lines.extend(indexes.iter().map(|row| {
        format!(
            "index {} unique={} {} {} {}",
            text(row, "INDEX_NAME"),
            text(row, "NON_UNIQUE") == "0",
            text(row, "SEQ_IN_INDEX"),
            text(row, "COLUMN_NAME"),
            text(row, "SUB_PART"),
        )
    }));
    let parts: Vec<&str> = lines.iter().map(String::as_str).collect();
    Ok(sha256_hex(&parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_another_major_minor_or_flavour_renders_differently() {
        assert!(!renders_differently(
            "10.11.19-MariaDB-0+deb12u1-log",
            "10.11.20-MariaDB"
        ));
        assert!(renders_differently("10.11.19-MariaDB", "11.4.2-MariaDB"));
        assert!(renders_differently("8.0.36", "8.4.0"));
        assert!(renders_differently("10.4.1-MariaDB", "10.4.1"));
    }

    /// COLUMN_TYPE as MySQL 5.7/8.0.18 and MariaDB write it, against MySQL 8.0.19+.
    #[test]
    fn display_widths_and_utf8_spellings_are_one_type() {
        for (old, new) in [
            ("int(11)", "int"),
            ("int(10) unsigned", "int unsigned"),
            ("bigint(20) unsigned zerofill", "bigint unsigned zerofill"),
            ("TINYINT(1)", "tinyint"),
            ("smallint(5) unsigned", "smallint unsigned"),
        ] {
            assert_eq!(normalize_column_type(old), normalize_column_type(new));
        }
        assert_eq!(
            normalize_charset("utf8_general_ci"),
            normalize_charset("utf8mb3_general_ci")
        );
        assert_eq!(normalize_charset("utf8"), "utf8mb3");
        assert_eq!(
            normalize_charset("utf8mb4_unicode_ci"),
            "utf8mb4_unicode_ci"
        );
    }

    /// What must still tell two shapes apart.
    #[test]
    fn real_changes_are_different_shapes() {
        for (a, b) in [
            ("varchar(50)", "varchar(100)"),
            ("decimal(5,2)", "decimal(6,2)"),
            ("int", "bigint"),
            ("int", "int unsigned"),
            ("datetime", "datetime(6)"),
        ] {
            assert_ne!(
                normalize_column_type(a),
                normalize_column_type(b),
                "{a} {b}"
            );
        }
        assert_ne!(
            column_line("note", "text", "YES", "utf8mb4_general_ci", ""),
            column_line("note", "text", "NO", "utf8mb4_general_ci", "")
        );
        assert_ne!(
            column_line("note", "text", "YES", "utf8mb4_general_ci", ""),
            column_line("note", "text", "YES", "latin1_swedish_ci", "")
        );
        assert_eq!(
            column_line(
                "t",
                "timestamp",
                "NO",
                "",
                "DEFAULT_GENERATED on update CURRENT_TIMESTAMP"
            ),
            column_line("t", "timestamp", "NO", "", "on update current_timestamp()")
        );
        assert_ne!(
            column_line("g", "int", "YES", "", "VIRTUAL GENERATED"),
            column_line("g", "int", "YES", "", "")
        );
    }
}

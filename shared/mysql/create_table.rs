//! A table's `SHOW CREATE TABLE` text made into the statement that recreates that table.
//!
//! The server renders some definitions in a form that, run again, makes a different table:
//! a nullable AUTO_INCREMENT column is shown without `NULL` (`` `a` tinyint(4) AUTO_INCREMENT ``),
//! and that text declares it NOT NULL. The backup keeps the rendered text (it is what the
//! restore's definition check compares against) and writes this statement into the schema
//! file.

use std::borrow::Cow;

use super::lexer::{self, Dialect, Kind, Token};

/// The statement that recreates the table `create` (a `SHOW CREATE TABLE` text) describes.
pub fn loadable(create: &str) -> Cow<'_, str> {
    let tokens = lexer::significant(create, Dialect::default());
    let mut inserts = Vec::new();
    for column in column_definitions(&tokens) {
        if let Some(at) = nullable_auto_increment(column) {
            inserts.push(at);
        }
    }
    if inserts.is_empty() {
        return Cow::Borrowed(create);
    }
    let mut text = String::with_capacity(create.len() + 5 * inserts.len());
    let mut from = 0;
    for at in inserts {
        text.push_str(&create[from..at]);
        text.push_str(" NULL");
        from = at;
    }
    text.push_str(&create[from..]);
    Cow::Owned(text)
}

/// The column definitions of the table's element list: elements at depth 1 that start with
/// a quoted name (keys and constraints start with a word).
fn column_definitions<'a, 'b>(tokens: &'b [Token<'a>]) -> Vec<&'b [Token<'a>]> {
    let mut columns = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (i, token) in tokens.iter().enumerate() {
        if token.is_punct('(') {
            depth += 1;
            if depth == 1 {
                start = Some(i + 1);
                continue;
            }
        } else if token.is_punct(')') {
            if depth == 1 {
                if let Some(s) = start.take() {
                    columns.push(&tokens[s..i]);
                }
                // The element list ends here; table options follow.
                break;
            }
            depth = depth.saturating_sub(1);
        } else if token.is_punct(',') && depth == 1 {
            if let Some(s) = start {
                columns.push(&tokens[s..i]);
            }
            start = Some(i + 1);
        }
    }
    columns.retain(|element| element.first().is_some_and(|t| t.kind == Kind::QuotedName));
    columns
}

/// Where ` NULL` goes in a column shown as nullable AUTO_INCREMENT (no NULL or NOT NULL of
/// its own): right after the AUTO_INCREMENT keyword, the one place the server does not take
/// it back (`NULL AUTO_INCREMENT` is NOT NULL again; `AUTO_INCREMENT NULL` stays nullable).
fn nullable_auto_increment(column: &[Token<'_>]) -> Option<usize> {
    // Attributes only: a type's own parentheses and a DEFAULT/COMMENT's literal are single
    // tokens or nested, and no attribute keyword is among them at depth 0.
    let mut depth = 0usize;
    let mut auto_increment = None;
    for token in column.iter().skip(1) {
        if token.is_punct('(') {
            depth += 1;
        } else if token.is_punct(')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 {
            if token.is_keyword("NULL") {
                // `NOT NULL`, `NULL`, or `DEFAULT NULL`: only the last says nothing of the
                // column's nullability, and SHOW CREATE writes no DEFAULT for AUTO_INCREMENT.
                return None;
            }
            if token.is_keyword("AUTO_INCREMENT") {
                auto_increment = Some(token.end());
            }
        }
    }
    auto_increment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nullable_auto_increment_column_is_written_nullable() {
        let create = "CREATE TABLE `t` (\n  `a` tinyint(4) AUTO_INCREMENT,\n  `b` int(11) NOT NULL AUTO_INCREMENT COMMENT 'AUTO_INCREMENT',\n  `c` varchar(5) DEFAULT 'x,(',\n  KEY `a` (`a`),\n  KEY `b` (`b`)\n) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=latin1";
        assert_eq!(
            loadable(create),
            create.replace(
                "tinyint(4) AUTO_INCREMENT",
                "tinyint(4) AUTO_INCREMENT NULL"
            )
        );
    }

    #[test]
    fn other_tables_are_left_as_they_are() {
        let create = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `n` int(11) DEFAULT NULL COMMENT 'AUTO_INCREMENT',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=7";
        assert!(matches!(loadable(create), Cow::Borrowed(_)));
    }
}

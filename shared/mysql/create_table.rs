//! A table's `SHOW CREATE TABLE` text made into the statement that recreates that table.
//!
//! The server renders some definitions in a form that, run again, makes a different table:
//! a nullable AUTO_INCREMENT column is shown without `NULL` (`` `a` tinyint(4) AUTO_INCREMENT ``),
//! and that text declares it NOT NULL. The backup keeps the rendered text (it is what the
//! restore's definition check compares against) and writes this statement into the schema
//! file.

use std::borrow::Cow;

use super::lexer::{self, Dialect, Kind, Token};

/// The statements that recreate the table `create` (a `SHOW CREATE TABLE` text) describes,
/// `;`-separated without the last `;`.
pub fn loadable(create: &str) -> Cow<'_, str> {
    let tokens = lexer::significant(create, Dialect::default());
    let columns = column_definitions(&tokens);
    let mut inserts = Vec::new();
    for column in &columns {
        if let Some(at) = nullable_auto_increment(column) {
            inserts.push(at);
        }
    }
    let create = if inserts.is_empty() {
        Cow::Borrowed(create)
    } else {
        Cow::Owned(with_inserts(create, &inserts))
    };
    if !columns.iter().any(|c| is_nullable_without_default(c)) {
        return create;
    }
    // Offsets were into the original text; read the (possibly changed) text again.
    let tokens = lexer::significant(&create, Dialect::default());
    match without_default_via_select(&create, &tokens) {
        Some(statements) => Cow::Owned(statements),
        None => create,
    }
}

fn with_inserts(create: &str, inserts: &[usize]) -> String {
    let mut text = String::with_capacity(create.len() + 5 * inserts.len());
    let mut from = 0;
    for &at in inserts {
        text.push_str(&create[from..at]);
        text.push_str(" NULL");
        from = at;
    }
    text.push_str(&create[from..]);
    text
}

/// The temporary table whose NOT NULL columns, read through an outer join, give the new
/// table its columns without a default.
const NO_DEFAULT_SOURCE: &str = "`toc_backup_columns_without_default`";

/// A nullable column without a DEFAULT (as `CREATE TABLE … SELECT` over an outer join makes
/// one: shown as `` `y` int(11) ``, and an INSERT that leaves it out fails in strict mode)
/// cannot be declared: the same text declares `DEFAULT NULL`. It can only be made the way the
/// server made it: the table is created with those columns taken from a SELECT (at the end),
/// then the columns that followed them are moved back into place.
fn without_default_via_select(create: &str, tokens: &[Token<'_>]) -> Option<String> {
    let elements = elements(tokens)?;
    let text_of = |element: &[Token<'_>]| -> Option<&str> {
        create.get(element.first()?.start..element.last()?.end())
    };
    let mut columns = Vec::new(); // (name, definition, without default)
    let mut others = Vec::new();
    for element in &elements {
        let definition = text_of(element)?;
        match element.first() {
            Some(first) if first.kind == Kind::QuotedName => {
                columns.push((first.text, definition, is_nullable_without_default(element)))
            }
            _ => others.push(definition),
        }
    }
    let close = elements.last()?.last()?.end();
    let open = elements.first()?.first()?.start;
    let head = create.get(..open)?; // `CREATE TABLE `t` (`, with its line break
    let tail = create.get(close..)?; // `\n) ENGINE=…`
    let declared: Vec<&str> = columns
        .iter()
        .filter(|c| !c.2)
        .map(|c| c.1)
        .chain(others.iter().copied())
        .collect();
    let selected: Vec<&(&str, &str, bool)> = columns.iter().filter(|c| c.2).collect();
    let mut text = format!(
        "CREATE TEMPORARY TABLE {NO_DEFAULT_SOURCE} ({});\n",
        selected
            .iter()
            .map(|c| format!("{} NOT NULL", c.1))
            .collect::<Vec<_>>()
            .join(", ")
    );
    text.push_str(head);
    text.push_str(&declared.join(",\n  "));
    text.push_str(tail);
    text.push_str(&format!(
        " SELECT {} FROM (SELECT 1) AS `one` LEFT JOIN {NO_DEFAULT_SOURCE} AS `n` ON 0 WHERE 0;\n",
        selected
            .iter()
            .map(|c| format!("`n`.{}", c.0))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    text.push_str(&format!("DROP TEMPORARY TABLE {NO_DEFAULT_SOURCE}"));
    // The selected columns came last; each declared column that followed one goes back after
    // its predecessor, in table order.
    let first_selected = columns.iter().position(|c| c.2)?;
    let moves: Vec<String> = columns
        .iter()
        .enumerate()
        .skip(first_selected + 1)
        .filter(|(_, c)| !c.2)
        .map(|(i, c)| format!("MODIFY {} AFTER {}", c.1, columns[i - 1].0))
        .collect();
    if !moves.is_empty() {
        let table = tokens
            .iter()
            .position(|t| t.is_keyword("TABLE"))
            .and_then(|i| tokens.get(i + 1))?;
        text.push_str(&format!(
            ";\nALTER TABLE {} {}",
            table.text,
            moves.join(", ")
        ));
    }
    Some(text)
}

/// The table's element list (columns, keys, constraints), each as its tokens.
fn elements<'a, 'b>(tokens: &'b [Token<'a>]) -> Option<Vec<&'b [Token<'a>]>> {
    let mut elements = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (i, token) in tokens.iter().enumerate() {
        if token.is_punct('(') {
            depth += 1;
            if depth == 1 {
                start = Some(i + 1);
            }
        } else if token.is_punct(')') {
            if depth == 1 {
                elements.push(tokens.get(start?..i)?);
                return Some(elements);
            }
            depth = depth.saturating_sub(1);
        } else if token.is_punct(',') && depth == 1 {
            elements.push(tokens.get(start?..i)?);
            start = Some(i + 1);
        }
    }
    None
}

/// A column shown nullable with no DEFAULT: no NULL of any kind (NOT NULL, NULL, DEFAULT
/// NULL), no DEFAULT, not generated, not AUTO_INCREMENT.
fn is_nullable_without_default(column: &[Token<'_>]) -> bool {
    let mut depth = 0usize;
    for token in column.iter().skip(1) {
        if token.is_punct('(') {
            depth += 1;
        } else if token.is_punct(')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0
            && ["NULL", "DEFAULT", "AUTO_INCREMENT", "GENERATED", "AS"]
                .iter()
                .any(|k| token.is_keyword(k))
        {
            return false;
        }
    }
    true
}

/// The column definitions of the table's element list: elements that start with a quoted
/// name (keys and constraints start with a word).
fn column_definitions<'a, 'b>(tokens: &'b [Token<'a>]) -> Vec<&'b [Token<'a>]> {
    let mut columns = elements(tokens).unwrap_or_default();
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
    fn columns_without_a_default_come_from_a_select_and_the_rest_move_back() {
        let create = "CREATE TABLE `t` (\n  `y` int(11) COMMENT 'c',\n  `a` int(11) NOT NULL,\n  `w` varchar(5),\n  `b` int(11) DEFAULT 3,\n  PRIMARY KEY (`a`),\n  KEY `k` (`y`)\n) ENGINE=InnoDB";
        let expected = "CREATE TEMPORARY TABLE `toc_backup_columns_without_default` (`y` int(11) COMMENT 'c' NOT NULL, `w` varchar(5) NOT NULL);\n\
            CREATE TABLE `t` (\n  `a` int(11) NOT NULL,\n  `b` int(11) DEFAULT 3,\n  PRIMARY KEY (`a`),\n  KEY `k` (`y`)\n) ENGINE=InnoDB \
            SELECT `n`.`y`, `n`.`w` FROM (SELECT 1) AS `one` LEFT JOIN `toc_backup_columns_without_default` AS `n` ON 0 WHERE 0;\n\
            DROP TEMPORARY TABLE `toc_backup_columns_without_default`;\n\
            ALTER TABLE `t` MODIFY `a` int(11) NOT NULL AFTER `y`, MODIFY `b` int(11) DEFAULT 3 AFTER `w`";
        assert_eq!(loadable(create), expected);
    }

    #[test]
    fn other_tables_are_left_as_they_are() {
        let create = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `n` int(11) DEFAULT NULL COMMENT 'AUTO_INCREMENT',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=7";
        assert!(matches!(loadable(create), Cow::Borrowed(_)));
    }
}

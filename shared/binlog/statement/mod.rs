//! What a logged statement (a binlog query event: DDL, account changes) would change if it
//! were replayed, read with the one lexer. A replay runs with more privilege than the user who
//! wrote the statement, so only statements that change the replayed database's own objects
//! are run: account statements and statements on other databases are left out and listed.
//!
//! This file reads a logged text as a whole: the statement after a `SET STATEMENT … FOR`
//! head, the table it names, the text as it may be shown. `verdict` says whether it is
//! replayed, `touched` what it creates, renames and drops, `session` the settings it was
//! logged with.

mod session;
mod touched;
mod verdict;

use crate::mysql::lexer::{self, Dialect, Token};

pub(crate) use session::dialect_of;
pub use session::LoggedSession;
pub(crate) use touched::{touched_objects, trigger_statement, Touched};
pub(crate) use verdict::{verdict, Verdict};

/// The significant tokens of the statement a logged text runs: for `SET STATEMENT var = value
/// [, …] FOR statement` those of the statement after FOR (the settings hold for it alone),
/// otherwise all of them. Offsets stay those of `text`.
pub(crate) fn statement_tokens(text: &str, dialect: Dialect) -> Vec<Token<'_>> {
    let mut tokens = lexer::significant(text, dialect);
    if tokens.first().is_some_and(|t| t.is_keyword("SET"))
        && tokens.get(1).is_some_and(|t| t.is_keyword("STATEMENT"))
    {
        let mut depth = 0usize;
        let for_at = tokens.iter().enumerate().skip(2).find_map(|(i, t)| {
            if t.is_punct('(') {
                depth += 1;
            } else if t.is_punct(')') {
                depth = depth.saturating_sub(1);
            }
            (depth == 0 && t.is_keyword("FOR")).then_some(i)
        });
        if let Some(at) = for_at {
            tokens.drain(..=at);
        }
    }
    tokens
}

/// Where the statement a logged text runs starts: after `SET STATEMENT … FOR`, or 0.
pub(crate) fn statement_start(text: &str, dialect: Dialect) -> usize {
    statement_tokens(text, dialect)
        .first()
        .map_or(0, |t| t.start)
}

/// `CREATE [OR REPLACE] TEMPORARY …` or `DROP TEMPORARY …` (as the server logs it when a
/// session ends: `DROP /*!40005 TEMPORARY */ TABLE IF EXISTS …`).
fn is_temporary(tokens: &[Token<'_>]) -> bool {
    let at = match tokens.first() {
        Some(t) if t.is_keyword("DROP") => 1,
        Some(t) if t.is_keyword("CREATE") => {
            if tokens.get(1).is_some_and(|t| t.is_keyword("OR")) {
                3
            } else {
                1
            }
        }
        _ => return false,
    };
    tokens.get(at).is_some_and(|t| t.is_keyword("TEMPORARY"))
}

/// The statement as it may be shown: cut before IDENTIFIED or PASSWORD (MariaDB logs
/// `CREATE USER … IDENTIFIED BY 'plain text'` as typed; `CREATE SERVER … PASSWORD '…'`).
pub(crate) fn without_secrets(text: &str, dialect: Dialect) -> String {
    let secret = lexer::tokens(text, dialect)
        .find(|t| t.is_keyword("IDENTIFIED") || t.is_keyword("PASSWORD"));
    match secret {
        Some(token) => format!(
            "{} …",
            text.get(..token.start).unwrap_or_default().trim_end()
        ),
        None => text.to_string(),
    }
}

/// The table a DDL statement names (`ALTER TABLE x`, `CREATE TABLE x`, `DROP TABLE x`,
/// `TRUNCATE x`, `RENAME TABLE x`), unquoted; None for other statements.
pub(crate) fn statement_table(text: &str, dialect: Dialect) -> Option<String> {
    let tokens = statement_tokens(text, dialect);
    let verb = tokens.first()?;
    if !["CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"]
        .iter()
        .any(|v| verb.is_keyword(v))
    {
        return None;
    }
    let mut i = tokens
        .iter()
        .take(8)
        .position(|t| t.is_keyword("TABLE"))
        .map(|i| i + 1)
        .or_else(|| verb.is_keyword("TRUNCATE").then_some(1))?;
    while tokens
        .get(i)
        .is_some_and(|t| t.is_keyword("IF") || t.is_keyword("NOT") || t.is_keyword("EXISTS"))
    {
        i += 1;
    }
    let (_, name, _) = lexer::qualified_name(&tokens, i)?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        let d = Dialect::default();
        for (text, shown) in [
            (
                "CREATE USER ghost@'%' IDENTIFIED BY 'pw'",
                "CREATE USER ghost@'%' …",
            ),
            ("SET PASSWORD FOR app = PASSWORD('pw')", "SET …"),
            (
                "GRANT ALL ON *.* TO g IDENTIFIED BY 'pw'",
                "GRANT ALL ON *.* TO g …",
            ),
            (
                "ALTER TABLE t COMMENT 'PASSWORD'",
                "ALTER TABLE t COMMENT 'PASSWORD'",
            ),
        ] {
            assert_eq!(without_secrets(text, d), shown);
        }
    }

    #[test]
    fn ddl_names_its_table() {
        let d = Dialect::default();
        assert_eq!(
            statement_table("ALTER TABLE `grades` ADD COLUMN x INT", d).as_deref(),
            Some("grades")
        );
        assert_eq!(
            statement_table("CREATE TABLE IF NOT EXISTS t2(id INT)", d).as_deref(),
            Some("t2")
        );
        assert_eq!(
            statement_table("TRUNCATE `toc`.`audit`", d).as_deref(),
            Some("audit")
        );
        assert_eq!(
            statement_table("CREATE TABLE `a\\` (id INT)", d).as_deref(),
            Some("a\\")
        );
        assert_eq!(statement_table("CREATE VIEW v AS SELECT 1", d), None);
    }
}

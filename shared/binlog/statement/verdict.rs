//! Whether a logged statement is replayed: run on the target, left out (an account statement,
//! a temporary table's, another database's, anything not a change to the database's own
//! objects) or refused (it names the source database, or changes it and another at once).
//! Apart because it is the one gate on what the replay, more privileged than the statement's
//! writer, runs.

use super::{is_temporary, statement_tokens};
use crate::mysql::lexer::{self, Dialect, Token};

/// What the replay does with a logged statement whose default database was the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Changes the source's own objects only: replayed, on the target's connection.
    Run,
    /// Left out of the replay, and listed in its report with the reason.
    LeaveOut(&'static str),
    /// Names the source database itself (`toc_sis.t`, `DROP DATABASE toc_sis`): replayed into
    /// another database it would change the source; the replay refuses.
    NamesTheSource,
    /// Changes the source's objects and another database's in one statement: neither leaving
    /// it out nor running it is right; the replay refuses.
    Mixed,
}

/// How a statement logged with `source` as its default database is replayed into `target`.
pub(crate) fn verdict(text: &str, dialect: Dialect, source: &str, target: &str) -> Verdict {
    let tokens = statement_tokens(text, dialect);
    let word = |i: usize| tokens.get(i).map(|t| t.text.to_ascii_uppercase());
    let first = word(0).unwrap_or_default();
    let second = word(1).unwrap_or_default();
    // CREATE/DROP/ALTER/RENAME USER, roles, GRANT, REVOKE, SET PASSWORD / DEFAULT ROLE.
    let account = match first.as_str() {
        "GRANT" | "REVOKE" => true,
        "CREATE" | "DROP" | "ALTER" | "RENAME" => {
            let mut i = 1;
            if second == "OR" && word(2).as_deref() == Some("REPLACE") {
                i = 3;
            }
            matches!(word(i).as_deref(), Some("USER" | "ROLE"))
        }
        "SET" => matches!(second.as_str(), "PASSWORD" | "DEFAULT" | "ROLE"),
        _ => false,
    };
    if account {
        return Verdict::LeaveOut(
            "an account statement (re-apply it to the live server by hand if it is wanted)",
        );
    }
    if is_temporary(&tokens) {
        return Verdict::LeaveOut(
            "a temporary table's statement (a session's temporary tables are not the database's)",
        );
    }
    if target != source
        && first == "ALTER"
        && second == "EVENT"
        && tokens.iter().any(|t| t.is_keyword("ENABLE"))
    {
        return Verdict::LeaveOut("an event enabled (events stay disabled in a copy)");
    }
    if matches!(first.as_str(), "CREATE" | "ALTER" | "DROP")
        && matches!(second.as_str(), "DATABASE" | "SCHEMA")
    {
        // The name after [IF [NOT] EXISTS]; ALTER DATABASE without one (straight to its
        // options) changes the connection's database: the target's.
        let named = tokens
            .iter()
            .skip(2)
            .find(|t| !(t.is_keyword("IF") || t.is_keyword("NOT") || t.is_keyword("EXISTS")))
            .filter(|t| {
                !["CHARACTER", "DEFAULT", "COLLATE", "COMMENT"]
                    .iter()
                    .any(|option| t.is_keyword(option))
            })
            .and_then(|t| t.name());
        return match named {
            None if first == "ALTER" => Verdict::Run,
            Some(name) if name == source && target == source => Verdict::Run,
            Some(name) if name == source => Verdict::NamesTheSource,
            _ => Verdict::LeaveOut("a statement on another database"),
        };
    }
    // Only changes to tables and the database's own objects are replayed; anything else
    // (a UDF loaded by SONAME, INSTALL PLUGIN, CREATE SERVER, FLUSH, …) is not the
    // database's and is left out.
    if !changes_own_objects(&tokens) {
        return Verdict::LeaveOut("not a change to the database's own tables or objects");
    }
    let names = object_names(&tokens);
    let other = names.iter().flatten().any(|q| q != source);
    let own = names
        .iter()
        .any(|q| q.as_deref().is_none_or(|q| q == source));
    if other && own {
        return Verdict::Mixed;
    }
    if other {
        return Verdict::LeaveOut("a statement on another database");
    }
    if target != source && names_database(&lexer::significant(text, dialect), source) {
        return Verdict::NamesTheSource;
    }
    Verdict::Run
}

/// Whether a statement creates, changes or drops tables, indexes, views, routines, triggers,
/// events or sequences (and no server-wide thing such as a UDF).
fn changes_own_objects(tokens: &[Token<'_>]) -> bool {
    let Some(verb) = tokens.first() else {
        return false;
    };
    if verb.is_keyword("TRUNCATE") {
        return true;
    }
    if !["CREATE", "ALTER", "DROP", "RENAME"]
        .iter()
        .any(|v| verb.is_keyword(v))
    {
        return false;
    }
    let kind = tokens.iter().take(24).skip(1).find_map(|t| {
        const KINDS: &[&str] = &[
            "TABLE",
            "TABLES",
            "VIEW",
            "PROCEDURE",
            "FUNCTION",
            "TRIGGER",
            "EVENT",
            "INDEX",
            "SEQUENCE",
            "PACKAGE",
            "USER",
            "ROLE",
            "SERVER",
            "TABLESPACE",
            "LOGFILE",
            "DATABASE",
            "SCHEMA",
        ];
        KINDS
            .iter()
            .find(|k| t.is_keyword(k))
            .map(|k| k.to_string())
    });
    match kind.as_deref() {
        Some("FUNCTION") => !tokens.iter().any(|t| t.is_keyword("SONAME")),
        Some(
            "TABLE" | "TABLES" | "VIEW" | "PROCEDURE" | "TRIGGER" | "EVENT" | "INDEX" | "SEQUENCE"
            | "PACKAGE",
        ) => true,
        _ => false,
    }
}

/// Whether any name in the statement is qualified with `database` (`db.t`, `` `db`.`t` ``),
/// wherever it stands (a view's body too: a refusal is the safe mistake).
fn names_database(tokens: &[Token<'_>], database: &str) -> bool {
    tokens.windows(3).any(|w| {
        matches!(w[0].kind, lexer::Kind::Word | lexer::Kind::QuotedName)
            && w[0].name().as_deref() == Some(database)
            && w[1].is_punct('.')
    })
}

/// The qualifier (if any) of each object name a DDL statement changes: the table(s) after
/// TABLE/TABLES (and TO in RENAME), after ON in CREATE/DROP INDEX and CREATE TRIGGER, and the
/// name of a created or dropped view, routine, trigger, event or sequence.
fn object_names(tokens: &[Token<'_>]) -> Vec<Option<String>> {
    let verb = tokens
        .first()
        .map(|t| t.text.to_ascii_uppercase())
        .unwrap_or_default();
    if !matches!(
        verb.as_str(),
        "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE"
    ) {
        return Vec::new();
    }
    let mut names = Vec::new();
    let skip = |t: &Token<'_>| {
        matches!(
            t.text.to_ascii_uppercase().as_str(),
            "IF" | "NOT" | "EXISTS" | "TEMPORARY" | "ONLINE" | "IGNORE" | "TO" | "AS"
        )
    };
    // Where object names start: after the object keyword, after ON, after TO, and after each
    // comma at the top level of a name list (DROP TABLE a, b; RENAME TABLE a TO b, c TO d).
    let mut i = 1;
    let mut expect_name = verb == "TRUNCATE";
    if expect_name && tokens.get(1).is_some_and(|t| t.is_keyword("TABLE")) {
        i = 2;
    }
    let mut in_list = false;
    let mut depth = 0usize;
    while i < tokens.len() {
        let t = &tokens[i];
        if t.is_punct('(') {
            depth += 1;
        } else if t.is_punct(')') {
            depth = depth.saturating_sub(1);
        }
        if depth > 0 {
            i += 1;
            continue;
        }
        let upper = t.text.to_ascii_uppercase();
        if expect_name && t.kind == lexer::Kind::Word && skip(t) {
            i += 1;
            continue;
        }
        if expect_name {
            expect_name = false;
            if let Some((qualifier, _, next)) = lexer::qualified_name(tokens, i) {
                names.push(qualifier);
                in_list = matches!(verb.as_str(), "DROP" | "RENAME");
                i = next;
                continue;
            }
        }
        match upper.as_str() {
            "TABLE" | "TABLES" | "VIEW" | "PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT"
            | "SEQUENCE" | "INDEX" | "PACKAGE"
                if names.is_empty() && t.kind == lexer::Kind::Word =>
            {
                // CREATE INDEX i ON t: the index's name is not an object of its own here.
                expect_name = !matches!(upper.as_str(), "INDEX");
            }
            "ON" if t.kind == lexer::Kind::Word && names.len() <= 1 => {
                if tokens.get(1).is_some_and(|v| v.is_keyword("INDEX"))
                    || tokens
                        .iter()
                        .skip(1)
                        .take(6)
                        .any(|v| v.is_keyword("INDEX") || v.is_keyword("TRIGGER"))
                {
                    expect_name = true;
                }
            }
            "TO" if verb == "RENAME" && t.kind == lexer::Kind::Word => expect_name = true,
            // ALTER TABLE|EVENT x RENAME [TO|AS] y (not RENAME COLUMN/INDEX/KEY a TO b).
            "RENAME" if verb == "ALTER" && t.kind == lexer::Kind::Word => {
                expect_name = !tokens.get(i + 1).is_some_and(|n| {
                    ["COLUMN", "INDEX", "KEY", "CONSTRAINT"]
                        .iter()
                        .any(|k| n.is_keyword(k))
                });
            }
            "AS" | "SELECT" | "BEGIN" | "DO" | "RETURN" | "FOR" => {
                // A body or a query follows: what it reads is not what the statement changes.
                if !matches!(verb.as_str(), "RENAME") {
                    break;
                }
            }
            _ => {
                if in_list && t.is_punct(',') {
                    expect_name = true;
                }
            }
        }
        i += 1;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::statement::{touched_objects, Touched};

    fn v(text: &str) -> Verdict {
        verdict(text, Dialect::default(), "toc_sis", "scratch")
    }

    #[test]
    fn account_statements_are_never_replayed() {
        for text in [
            "CREATE USER ghost@'%' IDENTIFIED BY 'x'",
            "create or replace user ghost",
            "GRANT ALL ON *.* TO ghost WITH GRANT OPTION",
            "REVOKE SELECT ON toc_sis.* FROM app",
            "ALTER USER app IDENTIFIED BY 'y'",
            "DROP USER app",
            "RENAME USER a TO b",
            "SET PASSWORD FOR app = PASSWORD('x')",
            "CREATE ROLE r",
            "SET DEFAULT ROLE r FOR app",
            "ALTER EVENT e ENABLE",
            "CREATE FUNCTION udf RETURNS STRING SONAME 'evil.so'",
            "INSTALL SONAME 'evil'",
            "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'x')",
            "FLUSH PRIVILEGES",
            "ANALYZE TABLE other.t",
            // What an executable comment holds is read as the server runs it.
            "/*!50000 GRANT ALL ON *.* TO ghost */",
            "CREATE /*!50000 USER ghost */",
        ] {
            assert!(matches!(v(text), Verdict::LeaveOut(_)), "{text}");
        }
    }

    #[test]
    fn temporary_tables_and_maintenance_commands_touch_nothing() {
        let d = Dialect::default();
        for text in [
            "DROP /*!40005 TEMPORARY */ TABLE IF EXISTS `seq1`,`s1`",
            "DROP TEMPORARY TABLE IF EXISTS `t`",
            "CREATE TEMPORARY TABLE t (a INT)",
            "create or replace temporary sequence s1",
        ] {
            assert!(matches!(v(text), Verdict::LeaveOut(_)), "{text}");
            assert_eq!(touched_objects(text, d), [], "{text}");
        }
        assert_eq!(
            touched_objects("ALTER TABLE non_existing_table OPTIMIZE PARTITION p0", d),
            []
        );
        assert_eq!(
            touched_objects("DROP /*!40005 TABLE */ IF EXISTS `s1`", d),
            [Touched {
                kind: "table",
                name: "s1".into(),
                exists: false
            }]
        );
    }

    #[test]
    fn statements_on_other_databases_are_left_out_and_the_sources_run() {
        for text in [
            "DROP TABLE other.keep",
            "DROP TABLE IF EXISTS `other`.`keep`",
            "CREATE TABLE other.t (id INT)",
            "ALTER TABLE `other`.t ADD COLUMN x INT",
            "TRUNCATE TABLE other.t",
            "DROP DATABASE other",
            "CREATE DATABASE IF NOT EXISTS other",
            "CREATE TRIGGER other.tr BEFORE INSERT ON other.t FOR EACH ROW SET @a = 1",
            "DROP VIEW other.v",
            "CREATE INDEX i ON other.t (a)",
        ] {
            assert_eq!(
                v(text),
                Verdict::LeaveOut("a statement on another database"),
                "{text}"
            );
        }
        for text in [
            "ALTER TABLE grades ADD COLUMN x INT",
            "CREATE TABLE t2 (id INT)",
            "CREATE TABLE t3 AS SELECT * FROM other.t",
            "CREATE VIEW v AS SELECT t.a FROM t",
            "CREATE VIEW v2 AS SELECT * FROM other.t",
            "ALTER DATABASE CHARACTER SET utf8mb4",
            "RENAME TABLE a TO b",
            "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1",
            "ALTER TABLE grades COMMENT 'from toc_sis.x'",
            "CREATE OR REPLACE TABLE t (id INT)",
            "CREATE DEFINER=`app`@`%` SQL SECURITY INVOKER VIEW v AS SELECT 1",
            "CREATE DEFINER=`app`@`%` FUNCTION f() RETURNS INT RETURN 1",
            "CREATE UNIQUE INDEX i ON t (a)",
            "DROP TRIGGER IF EXISTS tr",
            "CREATE SEQUENCE s",
            "TRUNCATE t",
        ] {
            assert_eq!(v(text), Verdict::Run, "{text}");
        }
        for text in [
            "DROP TABLE t, other.keep",
            "RENAME TABLE t TO other.t",
            "ALTER TABLE t RENAME TO other.t",
            "ALTER TABLE `t` RENAME other.t",
        ] {
            assert_eq!(v(text), Verdict::Mixed, "{text}");
        }
        for text in [
            "ALTER TABLE toc_sis.grades ADD COLUMN x INT",
            "ALTER TABLE `toc_sis`.`grades` ADD COLUMN x INT",
            "RENAME TABLE grades TO toc_sis . old_grades",
            "DROP DATABASE toc_sis",
            "CREATE VIEW v AS SELECT * FROM toc_sis.grades",
        ] {
            assert_eq!(v(text), Verdict::NamesTheSource, "{text}");
        }
        for (text, verdict_of_it) in [
            (
                "SET STATEMENT sql_mode='NO_ENGINE_SUBSTITUTION' FOR CREATE TABLE t2 (a int)",
                Verdict::Run,
            ),
            (
                "set statement sql_mode = (''), max_statement_time = 1 for ALTER TABLE t1 MODIFY a char(2)",
                Verdict::Run,
            ),
            (
                "SET STATEMENT sql_mode='' FOR DROP TABLE other.t",
                Verdict::LeaveOut("a statement on another database"),
            ),
            (
                "SET STATEMENT sql_mode='' FOR ALTER TABLE toc_sis.t ADD x INT",
                Verdict::NamesTheSource,
            ),
        ] {
            assert_eq!(v(text), verdict_of_it, "{text}");
        }
        assert!(matches!(
            v("SET STATEMENT sql_mode='' FOR GRANT ALL ON *.* TO ghost"),
            Verdict::LeaveOut(_)
        ));
        assert_eq!(
            verdict(
                "ALTER TABLE toc_sis.grades ADD x INT",
                Dialect::default(),
                "toc_sis",
                "toc_sis"
            ),
            Verdict::Run
        );
    }
}

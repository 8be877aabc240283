//! What a DDL statement touches: each object it creates, changes, renames or drops, with its
//! kind as the final check labels it and whether it exists after; and a trigger statement's
//! name and table. Apart from `verdict` because this is what the replay records of a statement
//! it runs (for the final check, and to keep deferred trigger statements in step).

use super::{is_temporary, statement_table, statement_tokens};
use crate::mysql::lexer::{self, Dialect, Token};

/// `ALTER TABLE t {ANALYZE|CHECK|OPTIMIZE|REPAIR} PARTITION …`: a maintenance command, which
/// (like ANALYZE TABLE) reports a missing table as a row of its result, not as an error, so
/// it is logged even then; it creates nothing.
fn is_partition_maintenance(tokens: &[Token<'_>]) -> bool {
    tokens.first().is_some_and(|t| t.is_keyword("ALTER"))
        && tokens.windows(2).any(|w| {
            ["ANALYZE", "CHECK", "OPTIMIZE", "REPAIR"]
                .iter()
                .any(|k| w[0].is_keyword(k))
                && w[1].is_keyword("PARTITION")
        })
}

/// An object a statement creates, changes or removes: its kind as the final check labels it
/// ("table" for tables and sequences, "view", "procedure", "function", "trigger", "event"),
/// its name, and whether it exists after the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Touched {
    pub kind: &'static str,
    pub name: String,
    pub exists: bool,
}

fn kind_label(token: &Token<'_>) -> Option<&'static str> {
    [
        ("TABLE", "table"),
        ("TABLES", "table"),
        ("SEQUENCE", "table"),
        ("VIEW", "view"),
        ("PROCEDURE", "procedure"),
        ("FUNCTION", "function"),
        ("TRIGGER", "trigger"),
        ("EVENT", "event"),
        ("INDEX", "index"),
    ]
    .iter()
    .find(|(k, _)| token.is_keyword(k))
    .map(|(_, label)| *label)
}

/// What a DDL statement touches, in order (`RENAME TABLE a TO b`: `a` gone, `b` there).
pub(crate) fn touched_objects(text: &str, dialect: Dialect) -> Vec<Touched> {
    let tokens = statement_tokens(text, dialect);
    let Some(verb) = tokens.first() else {
        return Vec::new();
    };
    let touched = |kind: &'static str, name: String, exists: bool| Touched { kind, name, exists };
    if verb.is_keyword("TRUNCATE") {
        return statement_table(text, dialect)
            .map(|name| vec![touched("table", name, true)])
            .unwrap_or_default();
    }
    let verb_is = |v: &str| verb.is_keyword(v);
    if !(verb_is("CREATE") || verb_is("ALTER") || verb_is("DROP") || verb_is("RENAME"))
        || is_temporary(&tokens)
        || is_partition_maintenance(&tokens)
    {
        return Vec::new();
    }
    // The object keyword: the first before any parenthesis or body.
    let Some((k, kind)) = tokens
        .iter()
        .enumerate()
        .take(24)
        .skip(1)
        .take_while(|(_, t)| !t.is_punct('(') && !t.is_keyword("AS"))
        .find_map(|(i, t)| kind_label(t).map(|kind| (i, kind)))
    else {
        return Vec::new();
    };
    let skip_if_exists = |mut i: usize| {
        while tokens
            .get(i)
            .is_some_and(|t| t.is_keyword("IF") || t.is_keyword("NOT") || t.is_keyword("EXISTS"))
        {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    if kind == "index" {
        // CREATE/DROP INDEX i ON t, ALTER INDEX: the table is redefined.
        if let Some(on) = tokens.iter().position(|t| t.is_keyword("ON")) {
            if let Some((_, name, _)) = lexer::qualified_name(&tokens, on + 1) {
                out.push(touched("table", name, true));
            }
        }
        return out;
    }
    let mut i = skip_if_exists(k + 1);
    let Some((_, first, next)) = lexer::qualified_name(&tokens, i) else {
        return out;
    };
    if verb_is("DROP") {
        out.push(touched(kind, first, false));
        i = next;
        while tokens.get(i).is_some_and(|t| t.is_punct(',')) {
            let Some((_, name, next)) = lexer::qualified_name(&tokens, i + 1) else {
                break;
            };
            out.push(touched(kind, name, false));
            i = next;
        }
    } else if verb_is("RENAME") {
        i = k + 1;
        while let Some((_, from, next)) = lexer::qualified_name(&tokens, i) {
            if !tokens.get(next).is_some_and(|t| t.is_keyword("TO")) {
                break;
            }
            let Some((_, to, after)) = lexer::qualified_name(&tokens, next + 1) else {
                break;
            };
            out.push(touched(kind, from, false));
            out.push(touched(kind, to, true));
            if !tokens.get(after).is_some_and(|t| t.is_punct(',')) {
                break;
            }
            i = after + 1;
        }
    } else {
        // CREATE …, ALTER … [RENAME [TO|AS] new].
        let renamed_to = verb_is("ALTER")
            .then(|| {
                let mut depth = 0usize;
                tokens.iter().enumerate().skip(next).find_map(|(j, t)| {
                    if t.is_punct('(') {
                        depth += 1;
                    } else if t.is_punct(')') {
                        depth = depth.saturating_sub(1);
                    }
                    let is_rename = depth == 0
                        && t.is_keyword("RENAME")
                        && !tokens.get(j + 1).is_some_and(|n| {
                            ["COLUMN", "INDEX", "KEY", "CONSTRAINT"]
                                .iter()
                                .any(|k| n.is_keyword(k))
                        });
                    if !is_rename {
                        return None;
                    }
                    let mut at = j + 1;
                    if tokens
                        .get(at)
                        .is_some_and(|n| n.is_keyword("TO") || n.is_keyword("AS"))
                    {
                        at += 1;
                    }
                    lexer::qualified_name(&tokens, at).map(|(_, name, _)| name)
                })
            })
            .flatten();
        match renamed_to {
            Some(to) => {
                out.push(touched(kind, first, false));
                out.push(touched(kind, to, true));
            }
            None => out.push(touched(kind, first, true)),
        }
    }
    out
}

/// A statement that creates or drops a trigger: its name and (CREATE) the table it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TriggerStatement {
    pub name: String,
    pub table: Option<String>,
    pub create: bool,
}

pub(crate) fn trigger_statement(text: &str, dialect: Dialect) -> Option<TriggerStatement> {
    let tokens = statement_tokens(text, dialect);
    let verb = tokens.first()?;
    let create = verb.is_keyword("CREATE");
    if !create && !verb.is_keyword("DROP") {
        return None;
    }
    let touched = touched_objects(text, dialect);
    let trigger = touched.first().filter(|t| t.kind == "trigger")?;
    let table = if create {
        // … TRIGGER name {BEFORE|AFTER} {INSERT|UPDATE|DELETE} ON table
        let on = tokens.iter().position(|t| t.is_keyword("ON"))?;
        lexer::qualified_name(&tokens, on + 1).map(|(_, table, _)| table)
    } else {
        None
    };
    Some(TriggerStatement {
        name: trigger.name.clone(),
        table,
        create,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::statement::statement_start;

    #[test]
    fn ddl_names_what_it_creates_renames_and_drops() {
        let d = Dialect::default();
        let t = |text: &str| -> Vec<(&'static str, String, bool)> {
            touched_objects(text, d)
                .into_iter()
                .map(|t| (t.kind, t.name, t.exists))
                .collect()
        };
        let o = |kind: &'static str, name: &str, exists: bool| (kind, name.to_string(), exists);
        assert_eq!(
            t("RENAME TABLE r TO u, `a b` TO toc.c"),
            [
                o("table", "r", false),
                o("table", "u", true),
                o("table", "a b", false),
                o("table", "c", true)
            ]
        );
        assert_eq!(
            t("DROP TABLE IF EXISTS a, `b`"),
            [o("table", "a", false), o("table", "b", false)]
        );
        assert_eq!(
            t("ALTER TABLE a ADD COLUMN x INT, RENAME TO b"),
            [o("table", "a", false), o("table", "b", true)]
        );
        assert_eq!(
            t("ALTER TABLE a RENAME COLUMN x TO y"),
            [o("table", "a", true)]
        );
        assert_eq!(
            t("CREATE DEFINER=`root`@`%` TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO l VALUES (1)"),
            [o("trigger", "tr", true)]
        );
        assert_eq!(
            t("CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`%` SQL SECURITY DEFINER VIEW `v` AS SELECT 1 AS `table`"),
            [o("view", "v", true)]
        );
        assert_eq!(
            t("DROP PROCEDURE IF EXISTS p"),
            [o("procedure", "p", false)]
        );
        assert_eq!(t("CREATE OR REPLACE SEQUENCE s"), [o("table", "s", true)]);
        assert_eq!(t("CREATE INDEX i ON t (a)"), [o("table", "t", true)]);
        assert_eq!(t("TRUNCATE t"), [o("table", "t", true)]);
        assert_eq!(t("INSERT INTO t VALUES (1)"), []);
        assert_eq!(
            trigger_statement("CREATE TRIGGER IF NOT EXISTS `tr` BEFORE UPDATE ON `toc`.`t` FOR EACH ROW SET @a = 1", d),
            Some(TriggerStatement { name: "tr".into(), table: Some("t".into()), create: true })
        );
        assert_eq!(
            trigger_statement("DROP TRIGGER IF EXISTS tr", d),
            Some(TriggerStatement {
                name: "tr".into(),
                table: None,
                create: false
            })
        );
        assert_eq!(trigger_statement("CREATE TABLE tr (id INT)", d), None);
        // SET STATEMENT … FOR: what the statement after FOR touches, its ON not the value's.
        assert_eq!(
            t("SET STATEMENT unique_checks=ON FOR RENAME TABLE a TO b"),
            [o("table", "a", false), o("table", "b", true)]
        );
        assert_eq!(
            trigger_statement(
                "SET STATEMENT unique_checks=ON FOR CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW SET @a = 1",
                d
            ),
            Some(TriggerStatement { name: "tr".into(), table: Some("t".into()), create: true })
        );
        assert_eq!(
            statement_table("SET STATEMENT sql_mode='' FOR CREATE TABLE t2 (a int)", d).as_deref(),
            Some("t2")
        );
        let text = "SET STATEMENT a=(1) FOR CREATE TABLE t (id INT)";
        assert_eq!(&text[statement_start(text, d)..], "CREATE TABLE t (id INT)");
        assert_eq!(statement_start("CREATE TABLE t (id INT)", d), 0);
    }
}

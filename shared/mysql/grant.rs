//! `SHOW GRANTS` lines, read with the one lexer: what a grant is on. A quoted name may hold
//! ` ON `, ` TO `, a backtick followed by a dot, or any character.

use std::collections::BTreeSet;

use super::lexer::{self, Dialect, Kind, Token};

/// What one grant line grants its privileges on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `*.*`
    Global,
    /// `db.*` (a LIKE pattern, escapes kept).
    Database(String),
    /// `db.t`, or one routine `PROCEDURE db.p` (then `routine` is set).
    Object { database: String, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant<'a> {
    /// The privilege list as written (`SELECT, INSERT (a, b)`).
    pub privileges: &'a str,
    pub target: Target,
    /// On one routine (`ON PROCEDURE|FUNCTION|PACKAGE [BODY] …`).
    pub routine: bool,
    /// Where the target's database name stands in the line, to rewrite it.
    pub database_at: Option<(usize, usize)>,
    pub with_grant_option: bool,
}

/// The grant in one `SHOW GRANTS` line; None for a role membership (`GRANT r TO u`) or any
/// other line.
pub fn parse_grant(line: &str) -> Option<Grant<'_>> {
    let tokens = lexer::significant(line, Dialect::default());
    if !tokens.first()?.is_keyword("GRANT") {
        return None;
    }
    let on = tokens.iter().position(|t| t.is_keyword("ON"))?;
    let to = (on..tokens.len()).find(|&i| tokens[i].is_keyword("TO"))?;
    let privileges = line.get(tokens.get(1)?.start..tokens[on].start)?.trim();
    let mut target = &tokens[on + 1..to];
    let mut routine = false;
    while let Some(first) = target.first().filter(|t| t.kind == Kind::Word) {
        let word = first.text.to_ascii_uppercase();
        match word.as_str() {
            "TABLE" => {}
            "PROCEDURE" | "FUNCTION" | "PACKAGE" | "BODY" => routine = true,
            _ => break,
        }
        target = &target[1..];
    }
    let name = |t: &Token<'_>| t.name().unwrap_or_else(|| t.text.to_string());
    let (target, database_at) = match target {
        [a, dot, b] if a.is_punct('*') && dot.is_punct('.') && b.is_punct('*') => {
            (Target::Global, None)
        }
        [database, dot, star] if dot.is_punct('.') && star.is_punct('*') => (
            Target::Database(name(database)),
            Some((database.start, database.end())),
        ),
        [database, dot, object]
            if dot.is_punct('.') && matches!(object.kind, Kind::QuotedName | Kind::Word) =>
        {
            (
                Target::Object {
                    database: name(database),
                    name: name(object),
                },
                Some((database.start, database.end())),
            )
        }
        _ => return None,
    };
    Some(Grant {
        privileges,
        target,
        routine,
        database_at,
        with_grant_option: line.trim_end().ends_with("WITH GRANT OPTION"),
    })
}

/// Privileges from `SHOW GRANTS`: global ones, and per database pattern (LIKE wildcards).
#[derive(Debug, Default, Clone)]
pub struct Grants {
    global: BTreeSet<String>,
    databases: Vec<(String, BTreeSet<String>)>,
    /// (database, table, privileges), e.g. SELECT on `mysql`.`proc`.
    pub(crate) tables: Vec<(String, String, BTreeSet<String>)>,
}

impl Grants {
    /// Parses `SHOW GRANTS` lines; column- and routine-level grants and role memberships are
    /// ignored.
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Grants {
        let mut grants = Grants::default();
        for line in lines {
            let Some(grant) = parse_grant(line.trim()) else {
                continue; // a role membership, or not a grant
            };
            if grant.routine {
                continue; // rights on one routine
            }
            let mut privileges = split_privileges(grant.privileges);
            // MariaDB 10.5 renamed REPLICATION CLIENT to BINLOG MONITOR and keeps the old
            // name as an alias: SHOW GRANTS prints either, depending on the version.
            for (a, b) in [("REPLICATION CLIENT", "BINLOG MONITOR")] {
                if privileges.contains(a) || privileges.contains(b) {
                    privileges.insert(a.to_string());
                    privileges.insert(b.to_string());
                }
            }
            if grant.with_grant_option {
                privileges.insert("GRANT OPTION".to_string());
            }
            match grant.target {
                Target::Global => grants.global.extend(privileges),
                Target::Database(pattern) => grants.databases.push((pattern, privileges)),
                Target::Object { database, name } => {
                    grants.tables.push((database, name, privileges))
                }
            }
        }
        grants
    }

    fn global_has(&self, privilege: &str) -> bool {
        self.global.contains(privilege) || self.global.contains("ALL PRIVILEGES")
    }

    /// Whether `privilege` is granted on `database`, globally or through a matching pattern.
    pub fn has(&self, database: &str, privilege: &str) -> bool {
        self.global_has(privilege)
            || self.databases.iter().any(|(pattern, privileges)| {
                (privileges.contains(privilege) || privileges.contains("ALL PRIVILEGES"))
                    && crate::mysql::like(pattern, database)
            })
    }

    /// Whether `privilege` is granted on table `database`.`table` (or more widely).
    pub fn has_on_table(&self, database: &str, table: &str, privilege: &str) -> bool {
        self.has(database, privilege)
            || self.tables.iter().any(|(d, t, privileges)| {
                d == database
                    && t == table
                    && (privileges.contains(privilege) || privileges.contains("ALL PRIVILEGES"))
            })
    }

    /// Global only: SUPER, SET USER, SET_USER_ID and the like.
    pub fn has_global(&self, privilege: &str) -> bool {
        self.global_has(privilege)
    }
}

/// `SELECT, INSERT, SET USER` -> {SELECT, INSERT, SET USER}; column lists dropped.
fn split_privileges(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.insert(current.trim().to_ascii_uppercase());
                current.clear();
            }
            _ if depth == 0 => current.push(c),
            _ => {}
        }
    }
    if !current.trim().is_empty() {
        out.insert(current.trim().to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_lines_are_read_whatever_the_names_hold() {
        let g = parse_grant("GRANT SELECT, INSERT (`a`) ON `x`.`Café TO go` TO `r`@`%`").unwrap();
        assert_eq!(g.privileges, "SELECT, INSERT (`a`)");
        assert_eq!(
            g.target,
            Target::Object {
                database: "x".into(),
                name: "Café TO go".into()
            }
        );
        let g =
            parse_grant("GRANT ALL PRIVILEGES ON `a``.b`.* TO `r`@`%` WITH GRANT OPTION").unwrap();
        assert_eq!(g.target, Target::Database("a`.b".into()));
        assert!(g.with_grant_option);
        let line = "GRANT EXECUTE ON PROCEDURE `toc_sis`.`p` TO `r`@`%`";
        let g = parse_grant(line).unwrap();
        assert!(g.routine);
        let (start, end) = g.database_at.unwrap();
        assert_eq!(&line[start..end], "`toc_sis`");
        assert_eq!(
            parse_grant("GRANT USAGE ON *.* TO `r`@`%`").unwrap().target,
            Target::Global
        );
        assert_eq!(parse_grant("GRANT `role` TO `r`@`%`"), None);
    }
}

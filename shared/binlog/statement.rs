//! What a logged statement (a binlog query event: DDL, account changes) would change if it
//! were replayed, read with the one lexer. A replay runs with more privilege than the user who
//! wrote the statement, so only statements that change the replayed database's own objects
//! are run: account statements and statements on other databases are left out and listed.

use mysql_common::binlog::consts::StatusVarKey;
use mysql_common::binlog::events::{QueryEvent, StatusVarVal};
use mysql_common::constants::SqlMode;

use serde::{Deserialize, Serialize};

use crate::mysql::lexer::{self, Dialect, Token};

/// The dialect a logged statement was written in: its session's sql_mode, as logged with it.
pub(crate) fn dialect_of(query: &QueryEvent<'_>) -> Dialect {
    let mode = query
        .status_vars()
        .get_status_var(StatusVarKey::SqlMode)
        .and_then(|var| match var.get_value() {
            Ok(StatusVarVal::SqlMode(flags)) => Some(flags.get()),
            _ => None,
        });
    match mode {
        Some(mode) => Dialect {
            backslash_escapes: !mode.contains(SqlMode::MODE_NO_BACKSLASH_ESCAPES),
            ansi_quotes: mode.contains(SqlMode::MODE_ANSI_QUOTES),
        },
        None => Dialect::default(),
    }
}

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

/// The session settings a statement was logged with (a query event's status variables), as
/// `mariadb-binlog` sets them before it: what the statement means depends on them (the
/// character set its text is in, ANSI_QUOTES, the engine substituted under `sql_mode=''`,
/// the time zone of a TIMESTAMP default, ALLOW_INVALID_DATES).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedSession {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_mode: Option<u64>,
    /// character_set_client, collation_connection and collation_server, by number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<[u16; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// When the statement ran (the event's Unix seconds), as `SET TIMESTAMP`: what NOW()
    /// and CURRENT_TIMESTAMP are in it (an event's default STARTS, a TIMESTAMP column added
    /// with a CURRENT_TIMESTAMP default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u32>,
    /// Its microseconds (MariaDB's Q_HRNOW status variable), when logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microseconds: Option<u32>,
}

impl LoggedSession {
    /// `timestamp`: the event header's.
    pub(crate) fn of(query: &QueryEvent<'_>, timestamp: u32) -> LoggedSession {
        let mut session = LoggedSession {
            timestamp: Some(timestamp),
            microseconds: logged_microseconds(query.status_vars_raw()),
            ..LoggedSession::default()
        };
        for var in query.status_vars().iter() {
            match var.get_value() {
                Ok(StatusVarVal::SqlMode(flags)) => session.sql_mode = Some(flags.get().bits()),
                Ok(StatusVarVal::Charset {
                    charset_client,
                    collation_connection,
                    collation_server,
                }) => {
                    session.charset = Some([charset_client, collation_connection, collation_server])
                }
                Ok(StatusVarVal::TimeZone(zone)) if !zone.as_bytes().is_empty() => {
                    session.time_zone = Some(String::from_utf8_lossy(zone.as_bytes()).into_owned())
                }
                _ => {}
            }
        }
        session
    }

    /// The dialect its statements are written in.
    pub(crate) fn dialect(&self) -> Dialect {
        match self.sql_mode.map(SqlMode::from_bits_truncate) {
            Some(mode) => Dialect {
                backslash_escapes: !mode.contains(SqlMode::MODE_NO_BACKSLASH_ESCAPES),
                ansi_quotes: mode.contains(SqlMode::MODE_ANSI_QUOTES),
            },
            None => Dialect::default(),
        }
    }

    /// The statements that put a session in these settings; the last one sets sql_mode, the
    /// ones before it are read in the session's own (`restore_statements`).
    pub(crate) fn statements(&self) -> Vec<String> {
        let mut statements = Vec::new();
        match (self.timestamp, self.microseconds) {
            (Some(seconds), Some(micros)) => {
                statements.push(format!("SET @@session.timestamp={seconds}.{micros:06}"))
            }
            (Some(seconds), None) => statements.push(format!("SET @@session.timestamp={seconds}")),
            _ => {}
        }
        if let Some(zone) = &self.time_zone {
            statements.push(format!(
                "SET @@session.time_zone={}",
                crate::mysql::quote_str(zone)
            ));
        }
        if let Some([client, connection, server]) = self.charset {
            statements.push(format!(
                "SET @@session.character_set_client={client},@@session.collation_connection={connection},@@session.collation_server={server}"
            ));
        }
        if let Some(mode) = self.sql_mode {
            statements.push(format!("SET @@session.sql_mode={mode}"));
        }
        statements
    }
}

/// The microseconds of a query event's time: MariaDB's Q_HRNOW (code 128, 3 bytes), found by
/// walking the status variables before it (mysql_common stops at the first code it does
/// not know). None when absent or when a variable before it cannot be walked.
fn logged_microseconds(vars: &[u8]) -> Option<u32> {
    let mut at = 0usize;
    let byte = |i: usize| vars.get(i).copied().map(usize::from);
    while let Some(code) = byte(at) {
        at += 1;
        at += match code {
            0 | 3 | 10 => 4,
            1 | 9 | 129 => 8,
            2 => 1 + byte(at)? + 1,
            4 => 6,
            5 | 6 => 1 + byte(at)?,
            7 | 8 => 2,
            11 => {
                let user = byte(at)?;
                1 + user + 1 + byte(at + 1 + user)?
            }
            12 => {
                let count = byte(at)?;
                let mut length = 1;
                if count != 254 {
                    for _ in 0..count {
                        let name = vars.get(at + length..)?;
                        length += name.iter().position(|&b| b == 0)? + 1;
                    }
                }
                length
            }
            13 => 3,
            128 => {
                let micros = vars.get(at..at + 3)?;
                let value = u32::from(micros[0])
                    | (u32::from(micros[1]) << 8)
                    | (u32::from(micros[2]) << 16);
                return (value < 1_000_000).then_some(value);
            }
            _ => return None,
        };
    }
    None
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

    #[test]
    fn a_logged_session_is_set_as_mariadb_binlog_sets_it_and_text_keeps_its_bytes() {
        let session = LoggedSession {
            sql_mode: Some(4),
            charset: Some([51, 51, 8]),
            time_zone: Some("Europe/Helsinki".into()),
            timestamp: Some(1_767_225_600),
            microseconds: Some(4_500),
        };
        assert_eq!(
            session.statements(),
            [
                "SET @@session.timestamp=1767225600.004500",
                "SET @@session.time_zone='Europe/Helsinki'",
                "SET @@session.character_set_client=51,@@session.collation_connection=51,@@session.collation_server=8",
                "SET @@session.sql_mode=4",
            ]
        );
        assert!(LoggedSession::default().statements().is_empty());
        // Flags2, sql_mode, a catalog, the charsets, a time zone, Q_HRNOW, Q_XID.
        let mut vars = vec![
            0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 3, b's', b't', b'd',
        ];
        vars.extend_from_slice(&[4, 33, 0, 33, 0, 8, 0, 5, 3, b'U', b'T', b'C']);
        vars.extend_from_slice(&[12, 1, b'y', 0, 128, 0x40, 0x42, 0x0f]);
        assert_eq!(
            logged_microseconds(&vars),
            None,
            "1000000 is not microseconds"
        );
        let last = vars.len() - 3;
        vars[last..].copy_from_slice(&[0x47, 0x94, 0x03]);
        assert_eq!(logged_microseconds(&vars), Some(234_567));
        assert_eq!(logged_microseconds(&[1, 0, 0]), None);
        for bytes in [
            &b"CREATE TABLE `t\xe4` (e ENUM('\xef\xf0'))"[..],
            "ENUM('ä')".as_bytes(),
        ] {
            let (text, utf8) = lexer::text_of(bytes);
            assert_eq!(lexer::bytes_of(&text, utf8), bytes);
        }
        let (text, utf8) = lexer::text_of(b"CREATE TABLE `t\xe4` (id INT)");
        assert!(!utf8);
        assert_eq!(
            statement_table(&text, Dialect::default()).map(|t| t.len()),
            Some(3)
        );
    }
}

//! The head of a stored object's CREATE statement (view, procedure, function, trigger, event),
//! read with the one lexer: its DEFINER clause, its kind, its name, and the database names
//! written into it. Works on the statements as `SHOW CREATE` renders them (MariaDB and MySQL 8
//! alike): `CREATE [OR REPLACE] [ALGORITHM=…] [DEFINER=user@host] [SQL SECURITY …]
//! [AGGREGATE] VIEW|PROCEDURE|FUNCTION|TRIGGER|EVENT [IF NOT EXISTS] [db.]name …`, and for
//! a trigger `… BEFORE|AFTER event ON [db.]table …`. Any other statement (a table's, or text
//! that merely contains the word DEFINER in a string or a default value) has no head.

use super::lexer::{self, Dialect, Kind, Token};
use crate::mysql::objects::ObjectKind;

/// What the head of an object's CREATE statement holds; byte ranges are into the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub kind: ObjectKind,
    pub name: String,
    /// ` DEFINER=account`: from the end of the token before it to the account's end.
    pub definer: Option<(usize, usize)>,
    /// The account as written.
    pub definer_account: Option<String>,
    /// `db.` before the object's name, and (triggers) before the table after ON, with the
    /// database it names.
    pub qualifiers: Vec<(usize, usize, String)>,
    /// Where the object's name (after any `db.`) starts and where it, and the head, ends.
    pub name_start: usize,
    pub name_end: usize,
}

/// The head of `statement`, read in `dialect`; None when it does not create a stored object.
pub fn object_head(statement: &str, dialect: Dialect) -> Option<ObjectHead> {
    // The head is short; a body can be megabytes, and is never looked at.
    let tokens: Vec<Token<'_>> = lexer::code(statement, dialect).take(64).collect();
    let mut i = 0;
    if !tokens.first()?.is_keyword("CREATE") {
        return None;
    }
    i += 1;
    let keyword = |i: usize, word: &str| tokens.get(i).is_some_and(|t| t.is_keyword(word));
    if keyword(i, "OR") && keyword(i + 1, "REPLACE") {
        i += 2;
    }
    if keyword(i, "ALGORITHM") && tokens.get(i + 1).is_some_and(|t| t.is_punct('=')) {
        i += 3;
    }
    let mut definer = None;
    let mut definer_account = None;
    if keyword(i, "DEFINER") && tokens.get(i + 1).is_some_and(|t| t.is_punct('=')) {
        let account_start = tokens.get(i + 2)?.start;
        let after = account_end(&tokens, i + 2)?;
        let end = tokens[after - 1].end();
        // From the end of the token before, so no double space is left; but from DEFINER
        // itself where an executable comment opens between them (`/*!50017 DEFINER=… */`).
        let before = tokens.get(i.checked_sub(1)?)?.end();
        let before = match statement.get(before..tokens[i].start) {
            Some(gap) if gap.trim().is_empty() => before,
            _ => tokens[i].start,
        };
        definer = Some((before, end));
        definer_account = Some(statement.get(account_start..end)?.to_string());
        i = after;
    }
    if keyword(i, "SQL") && keyword(i + 1, "SECURITY") {
        i += 3;
    }
    if keyword(i, "AGGREGATE") {
        i += 1;
    }
    let kind = match tokens.get(i)?.text.to_ascii_uppercase().as_str() {
        "VIEW" => ObjectKind::View,
        "PROCEDURE" => ObjectKind::Procedure,
        "FUNCTION" => ObjectKind::Function,
        "TRIGGER" => ObjectKind::Trigger,
        "EVENT" => ObjectKind::Event,
        _ => return None,
    };
    if tokens[i].kind != Kind::Word {
        return None;
    }
    i += 1;
    if keyword(i, "IF") && keyword(i + 1, "NOT") && keyword(i + 2, "EXISTS") {
        i += 3;
    }
    let mut qualifiers = Vec::new();
    let (qualifier, name, after_name) = lexer::qualified_name(&tokens, i)?;
    if let Some(database) = qualifier {
        qualifiers.push((tokens[i].start, tokens[i + 2].start, database));
    }
    let name_start = tokens[after_name - 1].start;
    let name_end = tokens[after_name - 1].end();
    if kind == ObjectKind::Trigger {
        // BEFORE|AFTER INSERT|UPDATE|DELETE [OR …] ON [db.]table
        if let Some(on) = (after_name..tokens.len().min(after_name + 8)).find(|&j| keyword(j, "ON"))
        {
            if let Some((Some(database), _, _)) = lexer::qualified_name(&tokens, on + 1) {
                qualifiers.push((tokens[on + 1].start, tokens[on + 3].start, database));
            }
        }
    }
    Some(ObjectHead {
        kind,
        name,
        definer,
        definer_account,
        qualifiers,
        name_start,
        name_end,
    })
}

/// The index after an account (`user@host`, `user`, `CURRENT_USER`, `CURRENT_USER()`)
/// starting at `tokens[i]`.
fn account_end(tokens: &[Token<'_>], i: usize) -> Option<usize> {
    let is_part = |t: &Token<'_>| matches!(t.kind, Kind::Word | Kind::QuotedName | Kind::Str(_));
    if !is_part(tokens.get(i)?) {
        return None;
    }
    if tokens[i].is_keyword("CURRENT_USER") {
        let call = tokens.get(i + 1).is_some_and(|t| t.is_punct('('))
            && tokens.get(i + 2).is_some_and(|t| t.is_punct(')'));
        return Some(if call { i + 3 } else { i + 1 });
    }
    match (tokens.get(i + 1), tokens.get(i + 2)) {
        (Some(at), Some(host)) if at.is_punct('@') && is_part(host) => Some(i + 3),
        _ => Some(i + 1),
    }
}

/// The account in a CREATE statement's DEFINER clause, normalised to `user@host` without
/// quotes (so `root`@`localhost` and 'root'@'localhost' compare equal).
pub fn definer_of(statement: &str, dialect: Dialect) -> Option<String> {
    object_head(statement, dialect)?
        .definer_account
        .map(|account| normalise_account(&account, dialect))
}

/// The object's statement without its DEFINER clause; None when it has none (or is not an
/// object's CREATE statement: a table keeps every byte).
pub fn without_definer(statement: &str, dialect: Dialect) -> Option<String> {
    let (start, end) = object_head(statement, dialect)?.definer?;
    splice(statement, &[(start, end, "")])
}

/// `statement` with each byte range (in order, apart) replaced by the text given.
pub(crate) fn splice(statement: &str, edits: &[(usize, usize, &str)]) -> Option<String> {
    let mut out = String::with_capacity(statement.len());
    let mut from = 0;
    for &(start, end, text) in edits {
        out.push_str(statement.get(from..start)?);
        out.push_str(text);
        from = end;
    }
    out.push_str(statement.get(from..)?);
    Some(out)
}

/// The statement with `database`'s own name taken out of the sequence functions' arguments
/// (`nextval(`app`.`s`)`, `lastval`, `setval`): SHOW CREATE TABLE and SHOW CREATE VIEW write
/// the sequence's database even when it is the object's own, and restored into another
/// database the copy would take its numbers from the source's sequence (or fail where there
/// is none). A sequence of another database stays named with it. None when there is none.
pub fn without_own_sequence_database(
    statement: &str,
    dialect: Dialect,
    database: &str,
) -> Option<String> {
    let tokens = lexer::significant(statement, dialect);
    let cuts: Vec<(usize, usize, &str)> = tokens
        .windows(5)
        .filter(|w| {
            ["nextval", "lastval", "setval"]
                .iter()
                .any(|f| w[0].is_keyword(f))
                && w[1].is_punct('(')
                && w[2].name().as_deref() == Some(database)
                && matches!(w[2].kind, Kind::QuotedName | Kind::Word)
                && w[3].is_punct('.')
                && matches!(w[4].kind, Kind::QuotedName | Kind::Word)
        })
        .map(|w| (w[2].start, w[4].start, ""))
        .collect();
    if cuts.is_empty() {
        return None;
    }
    splice(statement, &cuts)
}

/// The object's statement with the database names written into its head taken out (`CREATE
/// TRIGGER app.x … ON app.t`): run on a connection to the target, it creates the object there,
/// not in the database it was taken from. None when there are none.
pub fn without_database_names(statement: &str, dialect: Dialect) -> Option<String> {
    without_qualifiers(statement, dialect, |_| true)
}

/// [`without_database_names`], for the names of `database` only (a logged statement replayed
/// into another database: `CREATE TRIGGER other.x` must stay what it is).
pub fn without_database_name(statement: &str, dialect: Dialect, database: &str) -> Option<String> {
    without_qualifiers(statement, dialect, |name| name == database)
}

fn without_qualifiers(
    statement: &str,
    dialect: Dialect,
    strip: impl Fn(&str) -> bool,
) -> Option<String> {
    let head = object_head(statement, dialect)?;
    let cuts: Vec<(usize, usize, &str)> = head
        .qualifiers
        .iter()
        .filter(|(_, _, name)| strip(name))
        .map(|(start, end, _)| (*start, *end, ""))
        .collect();
    if cuts.is_empty() {
        return None;
    }
    splice(statement, &cuts)
}

/// A logged object statement as it is replayed into a copy of `source`, made as a restore
/// makes it: the names of `source` out of its head (`CREATE TRIGGER source.x … ON source.t`),
/// and an event `DISABLE` (a copy's events never run). None when nothing changes.
pub fn made_for_a_copy(statement: &str, dialect: Dialect, source: &str) -> Option<String> {
    let retargeted = without_database_name(statement, dialect, source);
    let current = retargeted.as_deref().unwrap_or(statement);
    event_with_status(current, dialect, false)
        .or_else(|| altered_event_disabled(current, dialect))
        .or(retargeted)
}

/// `ALTER EVENT … ENABLE …` with DISABLE in its place (before the body): a copy's events
/// never run, and the rest of the statement (a rename, a schedule, a body) still applies.
/// None for any other statement.
pub fn altered_event_disabled(statement: &str, dialect: Dialect) -> Option<String> {
    let tokens: Vec<Token<'_>> = lexer::code(statement, dialect).take(256).collect();
    if !tokens.first()?.is_keyword("ALTER") {
        return None;
    }
    // ALTER [DEFINER = account] EVENT
    let event_at = if tokens.get(1)?.is_keyword("DEFINER") {
        account_end(&tokens, 3)?
    } else {
        1
    };
    if !tokens.get(event_at)?.is_keyword("EVENT") {
        return None;
    }
    let enable = tokens[event_at + 1..]
        .iter()
        .take_while(|t| !t.is_keyword("DO"))
        .find(|t| t.is_keyword("ENABLE"))?;
    splice(statement, &[(enable.start, enable.end(), "DISABLE")])
}

/// The statement as restored anywhere: database names out of its head (see
/// [`without_database_names`]); what definitions are compared by.
pub fn canonical(statement: &str, dialect: Dialect) -> std::borrow::Cow<'_, str> {
    match without_database_names(statement, dialect) {
        Some(text) => std::borrow::Cow::Owned(text),
        None => std::borrow::Cow::Borrowed(statement),
    }
}

/// An event's statement with its status set: `ENABLE`, or `DISABLE` (an event restored into
/// a scratch copy must not run on its schedule: its body may name the live database, and it
/// would run with its definer's rights). None for any other statement.
pub fn event_with_status(statement: &str, dialect: Dialect, enabled: bool) -> Option<String> {
    let head = object_head(statement, dialect)?;
    if head.kind != ObjectKind::Event {
        return None;
    }
    let status = if enabled { "ENABLE" } else { "DISABLE" };
    let tokens: Vec<Token<'_>> = lexer::tokens(statement.get(head.name_end..)?, dialect)
        .filter(|t| !matches!(t.kind, Kind::Space | Kind::Comment))
        .take(64)
        .collect();
    let shift = |t: &Token<'_>| head.name_end + t.start;
    for (i, token) in tokens.iter().enumerate() {
        if token.is_keyword("DO") || token.is_keyword("COMMENT") {
            // No status clause: the server's default is ENABLE. The clause goes before COMMENT
            // and DO, its place in the grammar.
            let at = shift(token);
            return splice(statement, &[(at, at, &format!("{status} "))]);
        }
        if token.is_keyword("ENABLE") || token.is_keyword("DISABLE") {
            let mut end = token.start + token.text.len();
            if token.is_keyword("DISABLE")
                && tokens.get(i + 1).is_some_and(|t| t.is_keyword("ON"))
                && tokens
                    .get(i + 2)
                    .is_some_and(|t| t.is_keyword("SLAVE") || t.is_keyword("REPLICA"))
            {
                end = tokens[i + 2].start + tokens[i + 2].text.len();
            }
            return splice(statement, &[(shift(token), head.name_end + end, status)]);
        }
    }
    None
}

/// `user@host` with quotes removed and doubled quotes undone.
pub fn normalise_account(account: &str, dialect: Dialect) -> String {
    let tokens = lexer::significant(account, dialect);
    match tokens.as_slice() {
        [user, at, host] if at.is_punct('@') => format!(
            "{}@{}",
            user.name().unwrap_or_else(|| user.text.to_string()),
            host.name().unwrap_or_else(|| host.text.to_string())
        ),
        [one, ..] if tokens.len() <= 3 => one.name().unwrap_or_else(|| account.to_string()),
        _ => account.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Dialect {
        Dialect::default()
    }

    #[test]
    fn a_head_in_executable_comments_is_read_as_the_server_runs_it() {
        // As mysqldump writes a trigger, and as a binlog logs it when such a file is loaded.
        let dumped = "/*!50003 CREATE*/ /*!50017 DEFINER=`boss`@`%`*/ /*!50003 TRIGGER \
                      `app`.`tr` BEFORE INSERT ON `app`.`t` FOR EACH ROW SET @a = 1 */";
        assert_eq!(definer_of(dumped, d()).as_deref(), Some("boss@%"));
        assert_eq!(
            without_definer(dumped, d()).as_deref(),
            Some(
                "/*!50003 CREATE*/ /*!50017 */ /*!50003 TRIGGER \
                 `app`.`tr` BEFORE INSERT ON `app`.`t` FOR EACH ROW SET @a = 1 */"
            )
        );
        assert_eq!(
            without_database_names(dumped, d()).as_deref(),
            Some(
                "/*!50003 CREATE*/ /*!50017 DEFINER=`boss`@`%`*/ /*!50003 TRIGGER \
                 `tr` BEFORE INSERT ON `t` FOR EACH ROW SET @a = 1 */"
            )
        );
        assert_eq!(
            without_definer("CREATE DEFINER=`a`@`b` VIEW v AS SELECT 1", d()).as_deref(),
            Some("CREATE VIEW v AS SELECT 1")
        );
    }

    #[test]
    fn an_event_without_a_status_gets_it_before_its_comment() {
        assert_eq!(
            event_with_status(
                "CREATE EVENT e ON SCHEDULE EVERY 10 SECOND COMMENT \"\" DO SELECT 1",
                d(),
                false
            )
            .as_deref(),
            Some("CREATE EVENT e ON SCHEDULE EVERY 10 SECOND DISABLE COMMENT \"\" DO SELECT 1")
        );
    }

    #[test]
    fn an_altered_event_stays_disabled_in_a_copy() {
        assert_eq!(
            made_for_a_copy("alter event event1 rename to event2 enable", d(), "app").as_deref(),
            Some("alter event event1 rename to event2 DISABLE")
        );
        assert_eq!(
            altered_event_disabled(
                "ALTER DEFINER=`a`@`%` EVENT e ENABLE DO ALTER EVENT f ENABLE",
                d()
            )
            .as_deref(),
            Some("ALTER DEFINER=`a`@`%` EVENT e DISABLE DO ALTER EVENT f ENABLE")
        );
        assert_eq!(
            altered_event_disabled("ALTER TABLE event ENABLE KEYS", d()),
            None
        );
        assert_eq!(altered_event_disabled("ALTER EVENT e DISABLE", d()), None);
    }

    #[test]
    fn only_the_own_database_leaves_a_sequence_call() {
        let create = "CREATE TABLE `t` (\n  `a` int(11) DEFAULT nextval(`app`.`s`),\n  \
                      `b` int(11) DEFAULT (nextval(`other`.`s`) + lastval(`app`.`s2`)),\n  \
                      `c` varchar(30) DEFAULT 'nextval(`app`.`s`)'\n)";
        assert_eq!(
            without_own_sequence_database(create, d(), "app").as_deref(),
            Some(
                "CREATE TABLE `t` (\n  `a` int(11) DEFAULT nextval(`s`),\n  \
                 `b` int(11) DEFAULT (nextval(`other`.`s`) + lastval(`s2`)),\n  \
                 `c` varchar(30) DEFAULT 'nextval(`app`.`s`)'\n)"
            )
        );
        assert_eq!(without_own_sequence_database(create, d(), "nowhere"), None);
        let view = "CREATE VIEW `v` AS select setval(`we``ird`.`s`,5) AS `x`";
        assert_eq!(
            without_own_sequence_database(view, d(), "we`ird").as_deref(),
            Some("CREATE VIEW `v` AS select setval(`s`,5) AS `x`")
        );
    }

    #[test]
    fn definers_are_found_and_removed_in_every_kind_of_object() {
        let cases = [
            (
                "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select 1 AS `x`",
                "root@localhost",
                "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1 AS `x`",
            ),
            (
                "-- procedure p\nCREATE DEFINER=`admin`@`%` PROCEDURE `p`()\nSELECT 'DEFINER=`x`@`y`'",
                "admin@%",
                "-- procedure p\nCREATE PROCEDURE `p`()\nSELECT 'DEFINER=`x`@`y`'",
            ),
            (
                "CREATE DEFINER=`o``brien`@`10.0.%` TRIGGER t BEFORE INSERT ON a FOR EACH ROW SET NEW.x = 1",
                "o`brien@10.0.%",
                "CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW SET NEW.x = 1",
            ),
            (
                "CREATE DEFINER='rdsadmin'@'localhost' EVENT `e` ON SCHEDULE EVERY 1 DAY DO SELECT 1",
                "rdsadmin@localhost",
                "CREATE EVENT `e` ON SCHEDULE EVERY 1 DAY DO SELECT 1",
            ),
            (
                "CREATE DEFINER=`a\n DROP`@`%` FUNCTION `f\\`() RETURNS int RETURN 1",
                "a\n DROP@%",
                "CREATE FUNCTION `f\\`() RETURNS int RETURN 1",
            ),
        ];
        for (statement, definer, stripped) in cases {
            assert_eq!(
                definer_of(statement, d()).as_deref(),
                Some(definer),
                "{statement}"
            );
            assert_eq!(without_definer(statement, d()).as_deref(), Some(stripped));
        }
    }

    #[test]
    fn statements_without_a_definer_are_left_alone() {
        for statement in [
            "CREATE TABLE t (id INT)",
            "CREATE TABLE t (a varchar(40) DEFAULT 'set DEFINER=admin here')",
            "CREATE TABLE `VIEW` (a varchar(40) DEFAULT ' DEFINER=`a`@`b` VIEW ')",
            "INSERT INTO t VALUES ('CREATE DEFINER=`a`@`b` VIEW')",
            "CREATE PROCEDURE p() SELECT 'x DEFINER=`a`@`b`'",
        ] {
            assert_eq!(definer_of(statement, d()), None, "{statement}");
            assert_eq!(without_definer(statement, d()), None);
        }
    }

    #[test]
    fn a_trigger_written_with_its_database_is_made_for_the_target() {
        let statement = "CREATE DEFINER=`root`@`%` trigger app.tr before insert on `app`.`t` for each row insert into app.log values (1)";
        let head = object_head(statement, d()).unwrap();
        assert_eq!((head.kind, head.name.as_str()), (ObjectKind::Trigger, "tr"));
        assert_eq!(
            without_database_names(statement, d()).as_deref(),
            Some("CREATE DEFINER=`root`@`%` trigger tr before insert on `t` for each row insert into app.log values (1)")
        );
        assert_eq!(
            without_database_names(
                "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @a = 1",
                d()
            ),
            None
        );
        assert_eq!(
            without_database_names("CREATE DEFINER=`a`@`%` PROCEDURE `app`.`p`() SELECT 1", d())
                .as_deref(),
            Some("CREATE DEFINER=`a`@`%` PROCEDURE `p`() SELECT 1")
        );
    }

    #[test]
    fn an_event_can_be_made_disabled_and_enabled_again() {
        let e = "CREATE DEFINER=`root`@`%` EVENT `e` ON SCHEDULE EVERY 1 DAY STARTS '2026-12-04 19:10:59' ON COMPLETION NOT PRESERVE ENABLE DO delete from app.t";
        let off = event_with_status(e, d(), false).unwrap();
        assert_eq!(off, e.replace("ENABLE DO", "DISABLE DO"));
        assert_eq!(event_with_status(&off, d(), true).unwrap(), e);
        let replica = e.replace("ENABLE DO", "DISABLE ON SLAVE COMMENT 'ENABLE' DO");
        assert_eq!(
            event_with_status(&replica, d(), false).unwrap(),
            e.replace("ENABLE DO", "DISABLE COMMENT 'ENABLE' DO")
        );
        assert_eq!(
            event_with_status(
                "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1",
                d(),
                false
            )
            .unwrap(),
            "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1"
        );
        assert_eq!(
            event_with_status("CREATE VIEW v AS SELECT 1", d(), false),
            None
        );
    }

    #[test]
    fn any_text_is_read_without_panicking() {
        for text in [
            "CREATE",
            "CREATE DEFINER=",
            "CREATE DEFINER=`é",
            "CREATE VIEW",
            "CREATE TRIGGER a.",
            "CREATE TRIGGER t ON `é`.",
            "CREATE DEFINER=x@ VIEW v",
        ] {
            let _ = object_head(text, d());
            let _ = without_definer(text, d());
            let _ = without_database_names(text, d());
        }
    }
}

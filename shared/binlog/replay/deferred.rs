//! Trigger and event statements kept out of the target while rows are applied (a row event
//! already holds what a trigger or event wrote): kept in step with their tables as later
//! statements rename or drop them, and run once the rows and the backup's own triggers and
//! events are in (`create_deferred`). Apart because the restore runs them long after the loop
//! has ended, and a restore stopped between running and recording one must not run it twice.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::session::run_logged;
use super::{Deferred, ReplayReport};
use crate::binlog::statement;
use crate::error::{Error, Result};

/// Whether the target has the event (or trigger) `name`.
async fn deferred_exists(conn: &mut Conn, event: bool, name: &str) -> Result<bool> {
    let (query, kind) = if event {
        (
            "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() AND EVENT_NAME = ?",
            "events",
        )
    } else {
        (
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = ?",
            "triggers",
        )
    };
    let found: Option<u64> = conn
        .exec_first(query, (name,))
        .await
        .map_err(|e| Error::database(format!("reading the target's {kind}"), e))?;
    Ok(found.unwrap_or(0) > 0)
}

/// Runs one deferred trigger or event statement on the target's connection. A statement
/// found done already (what it creates is there, what it drops is gone, an event it renames
/// is under its new name) is not run again: a restore stopped between running it and
/// recording it. CREATE OR REPLACE and other ALTER EVENTs always run.
pub async fn create_deferred(conn: &mut Conn, deferred: &Deferred) -> Result<()> {
    let kind = if deferred.event { "event" } else { "trigger" };
    let sql = hex::decode(&deferred.statement_hex).map_err(|e| Error::BinlogUnsupported {
        detail: format!(
            "the trigger statement at {} recorded by the replay cannot be read ({e}); restore again with --force",
            deferred.position
        ),
    })?;
    let (text, _) = crate::mysql::lexer::text_of(&sql);
    let dialect = deferred.session.dialect();
    let tokens = statement::statement_tokens(&text, dialect);
    let replaces = tokens.get(1).is_some_and(|t| t.is_keyword("OR"))
        && tokens.get(2).is_some_and(|t| t.is_keyword("REPLACE"));
    let alters = tokens.first().is_some_and(|t| t.is_keyword("ALTER"));
    let done = if alters {
        // ALTER EVENT a … RENAME TO b: done once b is there and a is not.
        match statement::touched_objects(&text, dialect).as_slice() {
            [from, to] if to.exists => {
                deferred_exists(conn, deferred.event, &to.name).await?
                    && !deferred_exists(conn, deferred.event, &from.name).await?
            }
            _ => false,
        }
    } else {
        !replaces
            && deferred_exists(conn, deferred.event, &deferred.trigger).await? == deferred.create
    };
    if done {
        return Ok(());
    }
    run_logged(conn, &deferred.session, &deferred.user_vars, &sql)
        .await
        .map_err(|e| {
            Error::database(
                format!(
                    "creating, changing or dropping {kind} `{}` as the statement at {} did",
                    deferred.trigger, deferred.position
                ),
                e,
            )
        })
}

/// Keeps the deferred trigger statements in step with a statement about to run: a table
/// dropped takes its triggers with it (their statements go); a table renamed carries them
/// to its new name (their statements are made to name it, as the server moves them).
pub(super) fn keep_deferred_in_step(
    report: &mut ReplayReport,
    touched: &[statement::Touched],
    text: &str,
    dialect: crate::mysql::lexer::Dialect,
) -> std::result::Result<(), String> {
    let tokens = statement::statement_tokens(text, dialect);
    let drops = tokens.first().is_some_and(|t| t.is_keyword("DROP"));
    // CREATE OR REPLACE TABLE drops the table it replaces, and its triggers with it.
    let replaces = tokens.len() > 3
        && tokens[0].is_keyword("CREATE")
        && tokens[1].is_keyword("OR")
        && tokens[2].is_keyword("REPLACE")
        && tokens[3..].iter().take(2).any(|t| t.is_keyword("TABLE"));
    for (i, gone) in touched.iter().enumerate() {
        if gone.kind != "table" || (gone.exists && !replaces) {
            continue;
        }
        let on_it: Vec<String> = report
            .deferred
            .iter()
            .filter(|d| d.create && d.table.as_deref() == Some(gone.name.as_str()))
            .map(|d| d.trigger.clone())
            .collect();
        if on_it.is_empty() {
            continue;
        }
        if !drops && !replaces {
            // RENAME TABLE a TO b and ALTER TABLE a RENAME TO b: the new name follows.
            let Some(to) = touched.get(i + 1).filter(|t| t.kind == "table" && t.exists) else {
                return Err(format!(
                    "moves table `{}`, which has triggers created earlier in the replayed binlog ({}), to a name the replay cannot read",
                    gone.name,
                    on_it.join(", ")
                ));
            };
            for deferred in report
                .deferred
                .iter_mut()
                .filter(|d| d.create && d.table.as_deref() == Some(gone.name.as_str()))
            {
                retarget(deferred, &to.name)?;
            }
            continue;
        }
        report
            .deferred
            .retain(|d| d.event || !on_it.contains(&d.trigger));
        for trigger in on_it {
            report
                .objects
                .entry("trigger".into())
                .or_default()
                .insert(trigger, false);
        }
    }
    Ok(())
}

/// Makes a kept CREATE TRIGGER name the table it is on under its new name.
fn retarget(deferred: &mut Deferred, to: &str) -> std::result::Result<(), String> {
    let refuse = |why: &str| {
        format!(
            "renames the table of trigger `{}` (created earlier in the replayed binlog, kept for after the rows) to `{to}`: {why}",
            deferred.trigger
        )
    };
    if !to.is_ascii() {
        return Err(refuse(
            "the trigger's statement cannot be made to name a table whose name is not ASCII",
        ));
    }
    let bytes = hex::decode(&deferred.statement_hex).map_err(|e| refuse(&e.to_string()))?;
    let (text, utf8) = crate::mysql::lexer::text_of(&bytes);
    let tokens = statement::statement_tokens(&text, deferred.session.dialect());
    let span = tokens
        .iter()
        .position(|t| t.is_keyword("ON"))
        .and_then(|on| {
            let (_, _, next) = crate::mysql::lexer::qualified_name(&tokens, on + 1)?;
            Some((tokens[on + 1].start, tokens.get(next - 1)?.end()))
        });
    let Some((start, end)) = span else {
        return Err(refuse("its statement names no table after ON"));
    };
    let (Some(before), Some(after)) = (text.get(..start), text.get(end..)) else {
        return Err(refuse("its statement names no table after ON"));
    };
    let moved = format!("{before}{}{after}", crate::mysql::quote_ident(to));
    deferred.statement_hex = hex::encode(crate::mysql::lexer::bytes_of(&moved, utf8));
    deferred.table = Some(to.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::statement::LoggedSession;

    #[test]
    fn a_kept_trigger_follows_its_table_through_a_rename() {
        let mut deferred = Deferred {
            position: "mysql-bin.000001:4".into(),
            trigger: "tr".into(),
            table: Some("w".into()),
            create: true,
            statement_hex: hex::encode(
                "CREATE DEFINER=`a`@`%` TRIGGER tr AFTER INSERT ON toc.`w` FOR EACH ROW SET @on = 'ä'",
            ),
            session: LoggedSession::default(),
            event: false,
            user_vars: Vec::new(),
        };
        retarget(&mut deferred, "w2").unwrap();
        assert_eq!(
            String::from_utf8(hex::decode(&deferred.statement_hex).unwrap()).unwrap(),
            "CREATE DEFINER=`a`@`%` TRIGGER tr AFTER INSERT ON `w2` FOR EACH ROW SET @on = 'ä'"
        );
        assert_eq!(deferred.table.as_deref(), Some("w2"));
        assert!(retarget(&mut deferred, "wä")
            .unwrap_err()
            .contains("not ASCII"));
    }
}

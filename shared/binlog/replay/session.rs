//! The session a logged statement runs in: the replay's own settings (which rows are applied
//! under), a logged statement run under the settings and user variables logged with it, and a
//! logged user variable made a `SET`. Apart because making a statement mean on the target what
//! it meant on the source is one idea, used by the loop and by the deferred statements alike.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::binlog::statement::LoggedSession;

/// The replay session's own settings, which row changes are applied under (a logged statement
/// runs under its own, and these are set back after it). The character set first: a logged
/// statement may leave the connection in UTF-16, where the string literals below would read
/// as something else (ERROR 1298 for '+00:00'; peer corpus main/ctype_utf16). Then sql_mode:
/// what follows is read in it. A logged row holds what the server stored: ALLOW_INVALID_DATES
/// keeps a date stored under it (2026-04-31) from becoming zero.
pub(super) const REPLAY_SESSION: [&str; 6] = [
    "SET NAMES utf8mb4",
    "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES'",
    "SET SESSION timestamp = DEFAULT",
    // An ALTER of a system-versioned table is logged only where the source allowed it (KEEP:
    // otherwise it fails, ERROR 4119, and is not logged); the setting is not logged with it.
    // MariaDB only, hence the executable comment.
    "SET SESSION time_zone = '+00:00' /*M!100304 , system_versioning_alter_history = KEEP */",
    "SET SESSION foreign_key_checks = 0",
    "SET SESSION collation_server = @@global.collation_server",
];

/// Runs a logged statement under the session settings logged with it, and the user variables
/// logged for it set as they were, then puts the replay's own settings back (also when the
/// statement fails: the error is the statement's).
pub(super) async fn run_logged(
    conn: &mut Conn,
    session: &LoggedSession,
    user_vars: &[String],
    sql: &[u8],
) -> std::result::Result<(), mysql_async::Error> {
    let mut outcome = Ok(());
    for set in session.statements().iter().chain(user_vars) {
        outcome = conn.query_drop(set).await;
        if outcome.is_err() {
            break;
        }
    }
    if outcome.is_ok() {
        outcome = conn.query_drop(sql).await;
    }
    for statement in REPLAY_SESSION {
        let reset = conn.query_drop(statement).await;
        if outcome.is_ok() {
            outcome = reset;
        }
    }
    outcome
}

/// `SET @name := value` for a logged user variable, as `mariadb-binlog` writes it: a string
/// in its character set and collation, an integer with its sign, a DOUBLE, a DECIMAL.
pub(super) async fn user_var_statement(
    conn: &mut Conn,
    var: &mysql_common::binlog::events::UserVarEvent<'_>,
) -> std::result::Result<String, String> {
    use mysql_common::binlog::consts::UserVarFlags;
    use mysql_common::constants::ItemResult;
    let name = crate::mysql::quote_ident(&var.name());
    if var.is_null() {
        return Ok(format!("SET @{name} := NULL"));
    }
    let value = var.value();
    let eight = || -> std::result::Result<[u8; 8], String> {
        value
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("@{name} holds {} bytes, not 8", value.len()))
    };
    let literal = match var.value_type() {
        Ok(ItemResult::INT_RESULT) if var.flags().contains(UserVarFlags::UNSIGNED) => {
            u64::from_le_bytes(eight()?).to_string()
        }
        Ok(ItemResult::INT_RESULT) => i64::from_le_bytes(eight()?).to_string(),
        Ok(ItemResult::REAL_RESULT) => {
            let real = f64::from_le_bytes(eight()?);
            if !real.is_finite() {
                return Err(format!("@{name} holds the DOUBLE {real}"));
            }
            // Shortest exact form, with an exponent: a DOUBLE literal.
            format!("{real:e}")
        }
        Ok(ItemResult::DECIMAL_RESULT) => {
            mysql_common::binlog::decimal::Decimal::read_packed(value, false)
                .map_err(|e| format!("@{name} holds a DECIMAL that cannot be read ({e})"))?
                .to_string()
        }
        Ok(ItemResult::STRING_RESULT) => {
            let names: Option<(String, String)> = conn
                .exec_first(
                    "SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS WHERE ID = ?",
                    (var.charset(),),
                )
                .await
                .map_err(|e| format!("reading collation {} ({e})", var.charset()))?;
            let Some((charset, collation)) = names.filter(|(c, l)| {
                [c, l]
                    .iter()
                    .all(|n| n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            }) else {
                return Err(format!(
                    "@{name} is in collation number {}, which the target server does not have",
                    var.charset()
                ));
            };
            format!(
                "CONVERT(X'{}' USING {charset}) COLLATE {collation}",
                hex::encode(value)
            )
        }
        other => return Err(format!("@{name} holds a value of type {other:?}")),
    };
    Ok(format!("SET @{name} := {literal}"))
}

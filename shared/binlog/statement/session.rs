//! The session settings a statement was logged with (a query event's status variables): the
//! dialect its text is written in, and the `SET`s that put a session in them again. Apart
//! because it reads the event's binary status variables, not the statement's text.

use mysql_common::binlog::consts::StatusVarKey;
use mysql_common::binlog::events::{QueryEvent, StatusVarVal};
use mysql_common::constants::SqlMode;
use serde::{Deserialize, Serialize};

use crate::mysql::lexer::Dialect;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::statement::statement_table;
    use crate::mysql::lexer;

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

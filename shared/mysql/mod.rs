//! Talking to MySQL/MariaDB: connecting with clear errors, quoting, and the session settings
//! every dump and restore connection shares.

pub mod client_charset;
pub mod create_table;
pub mod definition;
pub mod fingerprint;
pub mod grant;
pub mod gtid_snapshot;
pub mod lexer;
pub mod objects;
pub mod read_row;
pub mod restore_marker;
pub mod schema;
pub mod shape;
pub mod splitter;
pub mod values;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

use crate::config::{DatabaseUrl, Tls};
use crate::error::{Error, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Session settings under which values and `SHOW CREATE` output are read and written: UTC for
/// TIMESTAMP values, utf8mb4 for text, and no sql_mode quirks (e.g. ANSI_QUOTES) in the output.
pub const DUMP_SESSION: &[&str] = &[
    "SET NAMES utf8mb4",
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION sql_mode = ''",
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    // A reader of a snapshot spread over several connections never waits long for a table:
    // DDL queued behind one connection's snapshot (a restore's DROP DATABASE, a migration)
    // blocks the next table another connection opens, and the two wait for each other
    // through this program, where the server sees no deadlock (lock_wait_timeout: a year).
    "SET SESSION lock_wait_timeout = 30",
];

/// Opens one connection. `database` overrides the URL's database (None: no default database).
pub async fn connect(url: &DatabaseUrl, database: Option<&str>) -> Result<Conn> {
    connect_with(url, database, |opts| opts).await
}

/// [`connect`] with options of the caller's on top (a replica's packet size, found rows).
pub async fn connect_with(
    url: &DatabaseUrl,
    database: Option<&str>,
    tune: impl FnOnce(OptsBuilder) -> OptsBuilder,
) -> Result<Conn> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(url.host.clone())
        .tcp_port(url.port)
        .user(Some(url.user.clone()))
        .pass(url.password().map(str::to_string))
        .db_name(database.map(str::to_string))
        .prefer_socket(false)
        .stmt_cache_size(0)
        .enable_cleartext_plugin(url.clear_text_password)
        .ssl_opts(url.tls.as_ref().map(|tls| {
            let roots = tls.ca_file.iter().map(|path| path.clone().into()).collect();
            mysql_async::SslOpts::default().with_root_certs(roots)
        }));
    let opts = tune(opts);
    let connecting = Conn::new(opts);
    let outcome = tokio::time::timeout(CONNECT_TIMEOUT, connecting).await;
    match outcome {
        Err(_) => Err(Error::Unreachable {
            address: url.address(),
            source: mysql_async::Error::Other(
                format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()).into(),
            ),
        }),
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(
            match url
                .tls
                .as_ref()
                .and_then(|tls| tls_failure(url, tls, &source))
            {
                Some(tls_error) => tls_error,
                None => classify_connect_error(url, database, source),
            },
        ),
    }
}

/// A connect error that is TLS's doing, as one line naming the host and what was trusted.
fn tls_failure(url: &DatabaseUrl, tls: &Tls, source: &mysql_async::Error) -> Option<Error> {
    use mysql_async::{DriverError, IoError};
    let detail = match source {
        mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer) => {
            "the server does not offer TLS, and DATABASE_TLS=on never connects in plain text"
                .to_string()
        }
        mysql_async::Error::Io(IoError::Tls(tls_error)) => tls_error.to_string(),
        mysql_async::Error::Io(IoError::Io(io)) => {
            let inner = io.get_ref()?;
            let rustls_error = inner.downcast_ref::<rustls::Error>()?;
            match rustls_error {
                rustls::Error::InvalidCertificate(why) => format!(
                    "the server's certificate for host {:?} was refused: {}",
                    url.host,
                    describe_certificate_error(why)
                ),
                other => other.to_string(),
            }
        }
        _ => return None,
    };
    let trusted = match &tls.ca_file {
        Some(path) => format!("CA file {}", path.display()),
        None => "the public web roots (no DATABASE_TLS_CA_FILE)".to_string(),
    };
    Some(Error::Tls {
        address: url.address(),
        trusted,
        detail,
    })
}

fn describe_certificate_error(error: &rustls::CertificateError) -> String {
    use rustls::CertificateError;
    match error {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            "it is not signed by a trusted CA (wrong DATABASE_TLS_CA_FILE?)".to_string()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("it is not issued for this host name ({error})")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("it has expired ({error})")
        }
        other => other.to_string(),
    }
}

fn classify_connect_error(
    url: &DatabaseUrl,
    database: Option<&str>,
    source: mysql_async::Error,
) -> Error {
    match &source {
        mysql_async::Error::Server(server) => match server.code {
            // ER_ACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD
            1045 | 1698 => Error::AccessDenied {
                address: url.address(),
                user: url.user.clone(),
                plain_text: url.tls.is_none(),
                source,
            },
            1049 => Error::UnknownDatabase(database.unwrap_or_default().to_string()),
            _ => Error::database(format!("connecting to {}", url.address()), source),
        },
        _ => Error::Unreachable {
            address: url.address(),
            source,
        },
    }
}

/// Runs statements in order, naming the failing one in the error.
pub async fn run_all(conn: &mut Conn, statements: &[&str]) -> Result<()> {
    for statement in statements {
        conn.query_drop(*statement)
            .await
            .map_err(|e| Error::database(format!("running {statement:?}"), e))?;
    }
    Ok(())
}

/// Drops `database` (if it exists), its routines first: the server grants a routine's creator
/// EXECUTE and ALTER ROUTINE on it (automatic_sp_privileges) and takes them back on DROP
/// PROCEDURE/FUNCTION, but not on DROP DATABASE, so a dropped copy would leave its restoring
/// user's grants behind in mysql.procs_priv (a monthly restore test, every month).
pub async fn drop_database(conn: &mut Conn, database: &str) -> Result<()> {
    let context = || format!("dropping database `{database}`");
    drop_routines(conn, database).await?;
    conn.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(database)))
        .await
        .map_err(|e| Error::database(context(), e))
}

/// Drops every routine of `database` one by one (see [`drop_database`] for why).
async fn drop_routines(conn: &mut Conn, database: &str) -> Result<()> {
    let context = || format!("dropping the routines of `{database}`");
    let routines: Vec<(String, String)> = conn
        .exec(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?",
            (database,),
        )
        .await
        .map_err(|e| Error::database(context(), e))?;
    for (kind, name) in routines {
        // MariaDB's Oracle-mode packages too; any other type is left to DROP DATABASE.
        let Some(kind) = ["PROCEDURE", "FUNCTION", "PACKAGE BODY", "PACKAGE"]
            .into_iter()
            .find(|k| kind.eq_ignore_ascii_case(k))
        else {
            continue;
        };
        conn.query_drop(format!(
            "DROP {kind} IF EXISTS {}.{}",
            quote_ident(database),
            quote_ident(&name)
        ))
        .await
        .map_err(|e| Error::database(context(), e))?;
    }
    Ok(())
}

/// Drops everything in `database` but the table `keep`: routines, events, views, tables
/// (their triggers with them), sequences. A restore over a live database empties it this way
/// under its marker, which thus stands from before the first object goes until the restore
/// is verified: a scheduled backup never finds the database half-emptied or half-loaded
/// without it (between a DROP and a CREATE DATABASE it would).
pub async fn empty_database(conn: &mut Conn, database: &str, keep: &str) -> Result<()> {
    let context = || format!("emptying database `{database}`");
    drop_routines(conn, database).await?;
    let events: Vec<String> = conn
        .exec(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
            (database,),
        )
        .await
        .map_err(|e| Error::database(context(), e))?;
    for event in events {
        conn.query_drop(format!(
            "DROP EVENT IF EXISTS {}.{}",
            quote_ident(database),
            quote_ident(&event)
        ))
        .await
        .map_err(|e| Error::database(context(), e))?;
    }
    let tables: Vec<(String, String)> = conn
        .exec(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> ? ORDER BY TABLE_TYPE = 'VIEW' DESC",
            (database, keep),
        )
        .await
        .map_err(|e| Error::database(context(), e))?;
    // Tables referring to each other by foreign keys go in any order.
    run_all(conn, &["SET SESSION foreign_key_checks = 0"]).await?;
    for (table, kind) in tables {
        let what = match kind.as_str() {
            "VIEW" => "VIEW",
            "SEQUENCE" => "SEQUENCE",
            _ => "TABLE",
        };
        conn.query_drop(format!(
            "DROP {what} IF EXISTS {}.{}",
            quote_ident(database),
            quote_ident(&table)
        ))
        .await
        .map_err(|e| Error::database(context(), e))?;
    }
    run_all(conn, &["SET SESSION foreign_key_checks = 1"]).await
}

/// The table an unfinished restore keeps in its target database (its progress, and the sign
/// that the database is not whole); named for whoever lists the tables.
pub const RESTORE_MARKER_TABLE: &str = "_restore_incomplete_do_not_use";

/// Refuses with [`Error::RestoreInProgress`] while `database` holds a restore's marker: the
/// scheduled jobs pause themselves during an emergency restore over the live database.
pub async fn ensure_not_being_restored(conn: &mut Conn, database: &str) -> Result<()> {
    let marked: Option<i64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (database, RESTORE_MARKER_TABLE),
        )
        .await
        .map_err(|e| Error::database(format!("looking for a restore in progress in `{database}`"), e))?;
    match marked {
        Some(n) if n > 0 => Err(Error::RestoreInProgress {
            database: database.to_string(),
            marker: RESTORE_MARKER_TABLE,
        }),
        _ => Ok(()),
    }
}

/// `name` as a MySQL identifier: backticks, with backticks inside doubled.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `text` as a single-quoted string literal (backslash escapes on, as every file we write sets).
pub fn quote_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// SQL LIKE with `%`, `_` and backslash escapes, as grant database patterns match.
pub fn like(pattern: &str, text: &str) -> bool {
    fn matches(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| matches(&p[1..], &t[i..])),
            Some('_') => !t.is_empty() && matches(&p[1..], &t[1..]),
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && matches(&p[2..], &t[1..]),
            Some(c) => t.first() == Some(c) && matches(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches(&p, &t)
}

/// Server error code of a database error, if it is one.
pub fn server_code(error: &mysql_async::Error) -> Option<u16> {
    match error {
        mysql_async::Error::Server(server) => Some(server.code),
        _ => None,
    }
}

/// A character set or collation name as SQL takes it bare (`_sjis`, `CHARACTER SET latin1`):
/// ASCII letters, digits and `_` only, so it needs no quoting.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a`b c"), "`a``b c`");
        assert_eq!(quote_str("it's\\\n"), "'it''s\\\\\\n'");
    }
}

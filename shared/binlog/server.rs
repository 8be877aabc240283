//! The source server's binlog: whether it can be archived faithfully (ROW events with full
//! images and column names, checksummed, not compressed or encrypted), where it ends, and which
//! files it still holds.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use super::position::Position;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct ServerBinlog {
    pub version: String,
    pub mariadb: bool,
    pub server_id: u32,
    /// The end of the binlog now.
    pub current: Position,
    /// The binlog files the server still holds, oldest first.
    pub files: Vec<String>,
    /// Their sizes, in the same order.
    pub sizes: Vec<u64>,
}

impl ServerBinlog {
    /// Bytes of binlog from `from` to the end the server holds now.
    pub fn bytes_after(&self, from: &Position) -> u64 {
        self.files
            .iter()
            .zip(&self.sizes)
            .filter(|(file, _)| {
                Position::new(file.as_str(), 0) >= Position::new(from.file.as_str(), 0)
            })
            .map(|(file, size)| {
                if *file == from.file {
                    size.saturating_sub(from.pos)
                } else {
                    *size
                }
            })
            .sum()
    }

    pub fn holds(&self, file: &str) -> bool {
        self.files.iter().any(|f| f == file)
    }
}

async fn variable(conn: &mut Conn, name: &str) -> Result<Option<String>> {
    // An unknown variable is an error from the server: None, so older servers get a clear
    // "is missing" rather than a database error.
    match conn
        .query_first::<Option<String>, _>(format!("SELECT CAST(@@GLOBAL.{name} AS CHAR)"))
        .await
    {
        Ok(value) => Ok(value.flatten()),
        Err(mysql_async::Error::Server(_)) => Ok(None),
        Err(e) => Err(Error::database(format!("reading @@{name}"), e)),
    }
}

/// Checks every setting a faithful archive needs, and reads where the binlog stands.
pub async fn inspect(conn: &mut Conn, replica_server_id: u32) -> Result<ServerBinlog> {
    let version = variable(conn, "version").await?.unwrap_or_default();
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    let mut required: Vec<(&str, &[&str], &str)> = vec![
        ("log_bin", &["1", "ON"], "the binary log must be on"),
        (
            "binlog_format",
            &["ROW"],
            "STATEMENT and MIXED binlogs replay statements whose result depends on when and where they run; only row images restore exactly",
        ),
        (
            "binlog_row_image",
            &["FULL"],
            "replay finds each changed row by its whole before-image",
        ),
        (
            "binlog_row_metadata",
            &["FULL"],
            "without it the binlog holds no column names and signedness, and unsigned values replay wrong",
        ),
        (
            "binlog_checksum",
            &["CRC32", "NONE"],
            "the archive checks each event's CRC32",
        ),
    ];
    if mariadb {
        required.push((
            "log_bin_compress",
            &["0", "OFF"],
            "compressed events cannot be decoded",
        ));
        required.push((
            "encrypt_binlog",
            &["0", "OFF"],
            "encrypted binlog events cannot be decoded (the archive is encrypted by S3 and KMS)",
        ));
    } else {
        required.push((
            "binlog_row_value_options",
            &[""],
            "partial JSON updates cannot be replayed",
        ));
        required.push((
            "binlog_transaction_compression",
            &["0", "OFF"],
            "compressed transactions are not archived",
        ));
    }
    for (name, expected, reason) in required {
        let actual = variable(conn, name).await?;
        let ok = actual
            .as_deref()
            .is_some_and(|a| expected.iter().any(|e| e.eq_ignore_ascii_case(a)));
        if !ok {
            return Err(Error::BinlogSetting {
                variable: name.into(),
                actual: actual.map_or("missing (server too old?)".into(), |a| format!("{a:?}")),
                expected: expected
                    .iter()
                    .map(|e| format!("{e:?}"))
                    .collect::<Vec<_>>()
                    .join(" or "),
                reason: reason.into(),
            });
        }
    }
    let server_id: u32 = variable(conn, "server_id")
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if server_id == replica_server_id {
        return Err(Error::Config {
            variable: "BINLOG_REPLICA_SERVER_ID".into(),
            reason: format!(
                "is {replica_server_id}, the source server's own server_id; choose an id no server or replica uses"
            ),
        });
    }
    let current = crate::mysql::gtid_snapshot::binary_log_status(conn)
        .await
        .map(|(file, pos)| Position::new(file, pos))
        .ok_or_else(|| Error::MissingPrivilege {
            privilege: "REPLICATION CLIENT (BINLOG MONITOR on MariaDB)",
            database: "*".into(),
            hides: "the binlog position",
        })?;
    let rows: Vec<Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(|e| Error::database("listing the binlog files (SHOW BINARY LOGS)", e))?;
    let mut files = Vec::new();
    let mut sizes = Vec::new();
    for row in &rows {
        let Some(name) = row
            .get_opt::<Vec<u8>, _>(0)
            .and_then(|v| v.ok())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
        else {
            continue;
        };
        files.push(name);
        sizes.push(row.get_opt::<u64, _>(1).and_then(|v| v.ok()).unwrap_or(0));
    }
    Ok(ServerBinlog {
        version,
        mariadb,
        server_id,
        current,
        files,
        sizes,
    })
}

//! Opening the snapshot and reading what it holds: binlog position, server, tables and objects,
//! and the final check that nothing was altered while the dump ran.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::error::{Error, Result};
use crate::manifest::{ServerInfo, SnapshotPosition};
use crate::mysql::quote_ident;
use crate::mysql::schema::{self, StoredObject, Table};

/// What a database holds at the snapshot.
pub(crate) struct Catalogue {
    pub tables: Vec<Table>,
    pub views: Vec<String>,
    pub objects: Vec<StoredObject>,
    /// Views the server cannot use (ERROR 1356 and the like: a table, column or function they
    /// name is gone or changed), with the server's message: no restore could create them, so they are left out
    /// of the backup and named in its report and a warning.
    pub broken_views: Vec<(String, String)>,
    /// Objects of a kind this tool cannot back up faithfully, with that kind, left out because
    /// the operator asked for the rest (`--skip-unsupported`); without that the dump refuses.
    pub unsupported: Vec<(String, String)>,
}

fn get_string(row: &Row, column: &str) -> Option<String> {
    match row.get_opt::<Option<Vec<u8>>, _>(column) {
        Some(Ok(Some(bytes))) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        _ => None,
    }
}

/// The binlog position of the connection's snapshot, as MariaDB reports it (with no global
/// lock); None where the server does not (binlog off, MySQL).
pub(crate) async fn snapshot_binlog_position(conn: &mut Conn) -> Result<Option<(String, u64)>> {
    let status: Vec<Row> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(|e| Error::database("reading the snapshot's binlog position", e))?;
    let mut file = None;
    let mut position = None;
    for row in &status {
        let name = get_string(row, "Variable_name").unwrap_or_default();
        let value = get_string(row, "Value").filter(|v| !v.is_empty());
        match name.to_ascii_lowercase().as_str() {
            "binlog_snapshot_file" => file = value,
            "binlog_snapshot_position" => position = value.and_then(|v| v.parse::<u64>().ok()),
            _ => {}
        }
    }
    Ok(file.zip(position))
}

/// The position of the snapshot open on `conn`. `gtid_at_snapshot`: the GTID set MySQL's check
/// proved the snapshot to be at (see `mysql::gtid_snapshot`).
pub(crate) async fn read_snapshot(
    conn: &mut Conn,
    gtid_at_snapshot: Option<String>,
) -> Result<SnapshotPosition> {
    let database_time: Option<String> = conn
        .query_first("SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ')")
        .await
        .map_err(|e| Error::database("reading the database clock", e))?;
    let (mut file, mut position) = match snapshot_binlog_position(conn).await? {
        Some((file, position)) => (Some(file), Some(position)),
        None => (None, None),
    };
    let mut exact = file.is_some();
    if file.is_none() {
        // MySQL has no such status: record the position read beside the snapshot, marked as
        // approximate. Without the privilege or without a binlog there is none to record.
        if let Some((found_file, found_position)) =
            crate::mysql::gtid_snapshot::binary_log_status(conn).await
        {
            file = Some(found_file);
            position = Some(found_position);
            exact = false;
        }
    }
    if let Some(gtid) = gtid_at_snapshot {
        return Ok(SnapshotPosition {
            database_time: database_time.unwrap_or_default(),
            binlog_file: file,
            binlog_position: position,
            gtid: Some(gtid),
            position_is_exact: false,
            gtid_is_exact: true,
        });
    }
    let gtid = match (&file, position) {
        (Some(f), Some(p)) if exact => conn
            .exec_first::<Option<String>, _, _>("SELECT BINLOG_GTID_POS(?, ?)", (f.as_str(), p))
            .await
            .ok()
            .flatten()
            .flatten()
            .filter(|g| !g.is_empty()),
        _ => None,
    };
    Ok(SnapshotPosition {
        database_time: database_time.unwrap_or_default(),
        binlog_file: file,
        binlog_position: position,
        gtid_is_exact: exact && gtid.is_some(),
        gtid,
        position_is_exact: exact,
    })
}

pub(crate) async fn read_server(conn: &mut Conn) -> Result<ServerInfo> {
    let row: Option<(String, String, String)> = conn
        .query_first("SELECT VERSION(), @@character_set_database, @@collation_database")
        .await
        .map_err(|e| Error::database("reading the server version", e))?;
    let (version, charset, collation) = row.unwrap_or_default();
    Ok(ServerInfo {
        version,
        default_character_set: charset,
        default_collation: collation,
    })
}

pub(crate) async fn read_catalogue(
    conn: &mut Conn,
    database: &str,
    skip_unsupported: bool,
) -> Result<Catalogue> {
    let summaries = schema::list_tables(conn, database).await?;
    let mut tables = Vec::new();
    let mut views = Vec::new();
    let mut unsupported = Vec::new();
    for summary in &summaries {
        match summary.table_type.as_str() {
            // A MariaDB sequence is a one-row table: SHOW CREATE TABLE renders it as
            // `CREATE TABLE … SEQUENCE=1`, which creates the sequence again, and an INSERT of
            // its row sets its state (next value, cycle count), as `mariadb-dump` relies on.
            "BASE TABLE" | "SEQUENCE" | "SYSTEM VERSIONED" => {
                tables.push(schema::describe_table(conn, database, summary).await?)
            }
            "VIEW" => views.push(summary.name.clone()),
            other => unsupported.push((summary.name.clone(), other.to_ascii_lowercase())),
        }
    }
    unsupported.extend(schema::unsupported_routines(conn, database).await?);
    if let (false, Some((name, kind))) = (skip_unsupported, unsupported.first()) {
        return Err(Error::UnsupportedObject {
            name: name.clone(),
            kind: kind.clone(),
        });
    }
    let mut broken_views = Vec::new();
    for view in &views {
        let probe = format!("SELECT 1 FROM {} LIMIT 0", quote_ident(view));
        match conn.query_drop(probe).await {
            Ok(()) => {}
            // ER_VIEW_INVALID, and what a view names that is gone or changed: a column
            // (ER_BAD_FIELD_ERROR), a table (ER_NO_SUCH_TABLE), a function
            // (ER_SP_DOES_NOT_EXIST) or its arguments (ER_SP_WRONG_NO_OF_ARGS).
            Err(e)
                if matches!(
                    crate::mysql::server_code(&e),
                    Some(1356 | 1054 | 1146 | 1305 | 1318)
                ) =>
            {
                broken_views.push((view.clone(), e.to_string()))
            }
            Err(e) => return Err(Error::database(format!("reading view `{view}`"), e)),
        }
    }
    let usable: Vec<String> = views
        .iter()
        .filter(|v| !broken_views.iter().any(|(broken, _)| broken == *v))
        .cloned()
        .collect();
    let mut objects = schema::stored_objects(conn, database, &usable).await?;
    crate::mysql::client_charset::encode_in_client_charsets(conn, database, &mut objects).await?;
    Ok(Catalogue {
        tables,
        views,
        objects,
        broken_views,
        unsupported,
    })
}

fn sorted<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    names
}

/// DDL during the dump would make the files disagree with each other; InnoDB reports it for
/// tables read after the change (ER_TABLE_DEF_CHANGED), and this check catches the rest.
pub(crate) async fn check_schema_unchanged(
    conn: &mut Conn,
    database: &str,
    before: &Catalogue,
) -> Result<()> {
    let summaries = schema::list_tables(conn, database).await?;
    let names_of = |table_types: &[&str]| {
        sorted(
            summaries
                .iter()
                .filter(|s| table_types.contains(&s.table_type.as_str()))
                .map(|s| s.name.as_str()),
        )
    };
    for (kind, now, then) in [
        (
            "tables",
            names_of(&["BASE TABLE", "SEQUENCE", "SYSTEM VERSIONED"]),
            sorted(before.tables.iter().map(|t| t.name.as_str())),
        ),
        (
            "views",
            names_of(&["VIEW"]),
            sorted(before.views.iter().map(String::as_str)),
        ),
    ] {
        if now != then {
            return Err(Error::SchemaChangedDuringDump {
                detail: format!(
                    "{kind} were created or dropped: before [{}], after [{}]",
                    then.join(", "),
                    now.join(", ")
                ),
            });
        }
    }
    for table in &before.tables {
        let now = schema::table_definition(conn, database, &table.name).await?;
        if schema::strip_auto_increment(&now) != schema::strip_auto_increment(&table.create_sql) {
            return Err(Error::SchemaChangedDuringDump {
                detail: format!("table {} was altered", quote_ident(&table.name)),
            });
        }
    }
    Ok(())
}

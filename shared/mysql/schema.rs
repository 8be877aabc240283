//! What a database holds: tables with their columns, and the views, routines, triggers and
//! events around them, each with the exact `SHOW CREATE` text that recreates it.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use sha2::{Digest, Sha256};

use super::definition;
use super::lexer::Dialect;
use super::quote_ident;
pub use super::read_row::{AlsoRead, ReadRow};
use super::values::ColumnKind;
use crate::error::{Error, Result};
use crate::mysql::objects::ObjectKind;

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    /// What is read beside its value ([`Table::select_sql`]).
    pub also_read: AlsoRead,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub engine: String,
    /// Columns whose values are dumped, in table order; generated columns are left out since
    /// the server computes them again.
    pub columns: Vec<Column>,
    pub create_sql: String,
    /// See [`super::shape`]: what stays the same when another server version renders it.
    pub shape_sha256: String,
    /// A system-versioned table: its history rows are dumped too, with the row start and end
    /// columns (last in [`Table::columns`]), and loaded with
    /// `system_versioning_insert_history`.
    pub system_versioned: bool,
    /// A MariaDB sequence: a one-row table (`CREATE TABLE … SEQUENCE=1`) whose row is its
    /// state. Created before the tables, whose defaults may call NEXTVAL on it.
    pub sequence: bool,
}

impl Table {
    /// InnoDB (and its forks) read from the snapshot; other engines read their current state.
    pub fn is_transactional(&self) -> bool {
        matches!(
            self.engine.to_ascii_lowercase().as_str(),
            "innodb" | "xtradb" | "rocksdb" | "tokudb"
        )
    }

    pub fn definition_sha256(&self) -> String {
        sha256_hex(&[strip_auto_increment(&self.create_sql).as_str()])
    }

    /// `SELECT` of the stored columns, then the number (`c`+0) of each column whose text does
    /// not say which members it holds ([`Members`]). A table whose
    /// columns are all generated (VIRTUAL) has none, but its rows still count (each is
    /// restored as `()`): then `SELECT 1`. The readers drop what is not a stored value
    /// ([`Table::stored_values`], [`Table::read_row`]).
    pub fn select_sql(&self) -> String {
        let mut selected: Vec<String> = self.columns.iter().map(|c| quote_ident(&c.name)).collect();
        selected.extend(
            self.columns
                .iter()
                .filter_map(|c| c.also_read.expression(&c.name)),
        );
        format!(
            "SELECT {} FROM {}{}",
            if selected.is_empty() {
                "1".to_string()
            } else {
                selected.join(", ")
            },
            quote_ident(&self.name),
            if self.system_versioned {
                " FOR SYSTEM_TIME ALL"
            } else {
                ""
            }
        )
    }

    /// A row read by [`Table::select_sql`] as the stored columns' values.
    pub fn stored_values(&self, values: Vec<mysql_async::Value>) -> Vec<mysql_async::Value> {
        self.read_row(values).values
    }

    /// A row read by [`Table::select_sql`]: the stored columns' values, and which of them must
    /// be written otherwise than by their value ([`ReadRow`]).
    pub fn read_row(&self, values: Vec<mysql_async::Value>) -> ReadRow {
        ReadRow::new(self.columns.iter().map(|c| &c.also_read), values)
    }
}

/// A view, routine, trigger or event, with the session settings it must be created under.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub kind: ObjectKind,
    pub name: String,
    pub create_sql: String,
    pub sql_mode: Option<String>,
    pub character_set_client: Option<String>,
    pub collation_connection: Option<String>,
    pub time_zone: Option<String>,
    /// The definition as written in the file, in its client character set, where that is
    /// not UTF-8 (see [`super::client_charset`]); None: `create_sql` in utf8mb4.
    pub client_bytes: Option<Vec<u8>>,
}

impl StoredObject {
    /// The dialect its definition is written in.
    pub fn dialect(&self) -> Dialect {
        Dialect::from_sql_mode(self.sql_mode.as_deref().unwrap_or(""))
    }

    /// An event as it reads once enabled (a restore into another database creates events
    /// disabled); None for other objects.
    pub fn enabled_event(&self) -> Option<StoredObject> {
        let create_sql = definition::event_with_status(&self.create_sql, self.dialect(), true)?;
        Some(StoredObject {
            create_sql,
            ..self.clone()
        })
    }

    /// Hash of the definition as restored anywhere (database names out of its head, see
    /// [`definition::canonical`]) and the settings it is created under.
    pub fn definition_sha256(&self) -> String {
        let create_sql = definition::canonical(&self.create_sql, self.dialect());
        sha256_hex(&[
            create_sql.as_ref(),
            self.sql_mode.as_deref().unwrap_or(""),
            self.time_zone.as_deref().unwrap_or(""),
        ])
    }

    /// As [`Self::definition_sha256`], with the DEFINER clause taken out.
    pub fn definition_sha256_any_definer(&self) -> String {
        let dialect = self.dialect();
        let create_sql = definition::canonical(&self.create_sql, dialect);
        let create_sql = definition::without_definer(&create_sql, dialect)
            .unwrap_or_else(|| create_sql.into_owned());
        sha256_hex(&[
            create_sql.as_str(),
            self.sql_mode.as_deref().unwrap_or(""),
            self.time_zone.as_deref().unwrap_or(""),
        ])
    }
}

pub fn sha256_hex(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The AUTO_INCREMENT counter in `SHOW CREATE TABLE` moves with every insert; it is restored but
/// is not part of what makes two definitions the same.
pub fn strip_auto_increment(create_sql: &str) -> String {
    use super::lexer::{self, Kind};
    // Read with the lexer: the same words inside a comment or a default value stay.
    let tokens: Vec<lexer::Token<'_>> = lexer::tokens(create_sql, Dialect::default()).collect();
    let mut out = String::with_capacity(create_sql.len());
    let mut i = 0;
    while i < tokens.len() {
        let option = tokens[i].kind == Kind::Space
            && tokens
                .get(i + 1)
                .is_some_and(|t| t.is_keyword("AUTO_INCREMENT"))
            && tokens.get(i + 2).is_some_and(|t| t.is_punct('='))
            && tokens.get(i + 3).is_some_and(|t| {
                t.kind == Kind::Word && t.text.bytes().all(|b| b.is_ascii_digit())
            });
        if option {
            i += 4;
            continue;
        }
        out.push_str(tokens[i].text);
        i += 1;
    }
    out
}

pub(super) fn get_string(row: &Row, column: &str) -> Option<String> {
    match row.get_opt::<Option<Vec<u8>>, _>(column) {
        Some(Ok(Some(bytes))) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        _ => None,
    }
}

fn db_err(context: String) -> impl FnOnce(mysql_async::Error) -> Error {
    move |source| Error::database(context, source)
}

pub struct TableSummary {
    pub name: String,
    pub table_type: String,
    pub engine: String,
}

pub async fn list_tables(conn: &mut Conn, database: &str) -> Result<Vec<TableSummary>> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, TABLE_TYPE, ENGINE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            (database,),
        )
        .await
        .map_err(db_err(format!("listing the tables of `{database}`")))?;
    Ok(rows
        .iter()
        .map(|row| TableSummary {
            name: get_string(row, "TABLE_NAME").unwrap_or_default(),
            table_type: get_string(row, "TABLE_TYPE").unwrap_or_default(),
            engine: get_string(row, "ENGINE").unwrap_or_default(),
        })
        .collect())
}

/// Whether information_schema's EXTRA marks a generated column (not MySQL 8's
/// DEFAULT_GENERATED, a column with an expression default).
pub(super) fn is_generated(extra: &str) -> bool {
    let extra = extra.to_ascii_uppercase();
    extra.contains("GENERATED") && !extra.contains("DEFAULT_GENERATED")
}

/// A table's information_schema.COLUMNS rows, in table order: what both its dumped columns and
/// its shape (`super::shape`) are read from.
async fn column_rows(conn: &mut Conn, database: &str, table: &str) -> Result<Vec<Row>> {
    conn.exec(
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, \
         IS_NULLABLE, EXTRA \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
         ORDER BY ORDINAL_POSITION",
        (database, table),
    )
    .await
    .map_err(db_err(format!("reading the columns of `{table}`")))
}

/// The columns whose values are dumped: all but the generated ones.
fn dumped_columns(rows: &[Row]) -> Vec<Column> {
    rows.iter()
        .filter(|row| !is_generated(&get_string(row, "EXTRA").unwrap_or_default()))
        .map(|row| {
            let data_type = get_string(row, "DATA_TYPE").unwrap_or_default();
            let charset = get_string(row, "CHARACTER_SET_NAME");
            let column_type = get_string(row, "COLUMN_TYPE").unwrap_or_default();
            let kind = match ColumnKind::from_information_schema(&data_type, charset.as_deref()) {
                // YEAR(2) reads 2000 (and 0000) as 0, which loads back as 2000: written as the
                // number it reads, not as YEAR 0000.
                ColumnKind::Year if column_type.eq_ignore_ascii_case("year(2)") => {
                    ColumnKind::Integer
                }
                kind => kind,
            };
            Column {
                name: get_string(row, "COLUMN_NAME").unwrap_or_default(),
                kind,
                also_read: AlsoRead::of(&data_type, &column_type, charset.as_deref()),
            }
        })
        .collect()
}

pub async fn show_create_table(conn: &mut Conn, table: &str) -> Result<String> {
    let row: Option<Row> = conn
        .query_first(format!("SHOW CREATE TABLE {}", quote_ident(table)))
        .await
        .map_err(db_err(format!("reading the definition of table `{table}`")))?;
    row.and_then(|r| get_string(&r, "Create Table"))
        .ok_or_else(|| Error::SchemaChangedDuringDump {
            detail: format!("table `{table}` disappeared"),
        })
}

/// A table's definition as a backup records and a restore compares it: SHOW CREATE TABLE,
/// with `database`'s own name out of its sequence calls (see
/// [`super::definition::without_own_sequence_database`]).
pub async fn table_definition(conn: &mut Conn, database: &str, table: &str) -> Result<String> {
    let create = show_create_table(conn, table).await?;
    Ok(super::definition::without_own_sequence_database(
        &create,
        super::lexer::Dialect::default(),
        database,
    )
    .unwrap_or(create))
}

/// Reads a table's full description (columns and definition).
pub async fn describe_table(
    conn: &mut Conn,
    database: &str,
    summary: &TableSummary,
) -> Result<Table> {
    let rows = column_rows(conn, database, &summary.name).await?;
    let create_sql = table_definition(conn, database, &summary.name).await?;
    let system_versioned = summary.table_type == "SYSTEM VERSIONED";
    let mut columns = dumped_columns(&rows);
    if system_versioned {
        columns.extend(
            row_period_columns(&create_sql)
                .into_iter()
                .map(|name| Column {
                    name,
                    kind: ColumnKind::DateTime,
                    also_read: AlsoRead::Nothing,
                }),
        );
    }
    Ok(Table {
        name: summary.name.clone(),
        engine: summary.engine.clone(),
        columns,
        shape_sha256: super::shape::table_shape_sha256(conn, database, &summary.name, &rows)
            .await?,
        create_sql,
        system_versioned,
        sequence: summary.table_type == "SEQUENCE",
    })
}

/// A system-versioned table's row start and end columns: named in its `PERIOD FOR
/// SYSTEM_TIME (start, end)` when declared, else the implicit `ROW_START` and `ROW_END`.
pub(crate) fn row_period_columns(create: &str) -> [String; 2] {
    let tokens = super::lexer::significant(create, super::lexer::Dialect::default());
    let declared = tokens.windows(8).find_map(|w| {
        (w[0].is_keyword("PERIOD")
            && w[1].is_keyword("FOR")
            && w[2].is_keyword("SYSTEM_TIME")
            && w[3].is_punct('(')
            && w[5].is_punct(',')
            && w[7].is_punct(')'))
        .then(|| Some([w[4].name()?, w[6].name()?]))
        .flatten()
    });
    declared.unwrap_or_else(|| ["ROW_START".to_string(), "ROW_END".to_string()])
}

async fn show_create(
    conn: &mut Conn,
    database: &str,
    kind: ObjectKind,
    name: &str,
) -> Result<StoredObject> {
    let (statement, text_column) = match kind {
        ObjectKind::View => ("VIEW", "Create View"),
        ObjectKind::Procedure => ("PROCEDURE", "Create Procedure"),
        ObjectKind::Function => ("FUNCTION", "Create Function"),
        ObjectKind::Trigger => ("TRIGGER", "SQL Original Statement"),
        ObjectKind::Event => ("EVENT", "Create Event"),
    };
    let row: Option<Row> = conn
        .query_first(format!("SHOW CREATE {statement} {}", quote_ident(name)))
        .await
        .map_err(|source| match super::server_code(&source) {
            // ER_TABLEACCESS_DENIED_ERROR / ER_SPECIFIC_ACCESS_DENIED_ERROR
            Some(1142) | Some(1227) | Some(1044) => Error::MissingPrivilege {
                privilege: match kind {
                    ObjectKind::View => "SHOW VIEW",
                    ObjectKind::Trigger => "TRIGGER",
                    ObjectKind::Event => "EVENT",
                    _ => "SELECT on mysql.proc (MariaDB) or SHOW_ROUTINE (MySQL 8)",
                },
                database: database.to_string(),
                hides: "object definitions",
            },
            _ => Error::database(
                format!("reading the definition of {} `{name}`", kind.label()),
                source,
            ),
        })?;
    let row = row.ok_or_else(|| Error::SchemaChangedDuringDump {
        detail: format!("{} `{name}` disappeared", kind.label()),
    })?;
    let create_sql = get_string(&row, text_column).ok_or(Error::MissingPrivilege {
        privilege: "SELECT on mysql.proc (MariaDB) or SHOW_ROUTINE (MySQL 8) (or being the routine's definer)",
        database: database.to_string(),
        hides: "stored routine bodies",
    })?;
    let sql_mode = get_string(&row, "sql_mode");
    // A view's text is the server's own rendering, which names its database in sequence calls.
    let create_sql = match kind {
        ObjectKind::View => super::definition::without_own_sequence_database(
            &create_sql,
            super::lexer::Dialect::from_sql_mode(sql_mode.as_deref().unwrap_or("")),
            database,
        )
        .unwrap_or(create_sql),
        _ => create_sql,
    };
    Ok(StoredObject {
        kind,
        name: name.to_string(),
        create_sql,
        sql_mode,
        character_set_client: get_string(&row, "character_set_client"),
        collation_connection: get_string(&row, "collation_connection"),
        time_zone: get_string(&row, "time_zone"),
        client_bytes: None,
    })
}

/// Stored routines of a kind [`stored_objects`] does not read (MariaDB's PACKAGE and PACKAGE
/// BODY, sql_mode=ORACLE): each name with its kind, lower case.
pub async fn unsupported_routines(
    conn: &mut Conn,
    database: &str,
) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = conn
        .exec(
            "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES \
             WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE NOT IN ('PROCEDURE', 'FUNCTION') \
             ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
            (database,),
        )
        .await
        .map_err(db_err(format!("listing the routines of `{database}`")))?;
    Ok(rows
        .into_iter()
        .map(|(name, kind)| (name, kind.to_ascii_lowercase()))
        .collect())
}

/// Views, routines, triggers and events, each list in a stable order that also restores
/// (views sorted so that a view comes after the views it reads; triggers in firing order).
pub async fn stored_objects(
    conn: &mut Conn,
    database: &str,
    views: &[String],
) -> Result<Vec<StoredObject>> {
    let mut objects = Vec::new();

    let routines: Vec<Row> = conn
        .exec(
            "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES \
             WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') \
             ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
            (database,),
        )
        .await
        .map_err(db_err(format!("listing the routines of `{database}`")))?;
    for row in &routines {
        let name = get_string(row, "ROUTINE_NAME").unwrap_or_default();
        let kind = match get_string(row, "ROUTINE_TYPE").as_deref() {
            Some("PROCEDURE") => ObjectKind::Procedure,
            Some("FUNCTION") => ObjectKind::Function,
            other => {
                return Err(Error::UnsupportedObject {
                    name,
                    kind: other.unwrap_or("routine").to_ascii_lowercase(),
                })
            }
        };
        objects.push(show_create(conn, database, kind, &name).await?);
    }

    let mut view_objects = Vec::new();
    for view in views {
        view_objects.push(show_create(conn, database, ObjectKind::View, view).await?);
    }
    objects.extend(order_views(view_objects));

    let triggers: Vec<Row> = conn
        .exec(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? \
             ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
            (database,),
        )
        .await
        .map_err(db_err(format!("listing the triggers of `{database}`")))?;
    for row in &triggers {
        let name = get_string(row, "TRIGGER_NAME").unwrap_or_default();
        objects.push(show_create(conn, database, ObjectKind::Trigger, &name).await?);
    }

    // SHOW EVENTS fails without the EVENT privilege, where information_schema would silently
    // show nothing.
    let events: Vec<Row> = conn
        .query(format!("SHOW EVENTS FROM {}", quote_ident(database)))
        .await
        .map_err(|source| match super::server_code(&source) {
            Some(1044) | Some(1142) | Some(1227) => Error::MissingPrivilege {
                privilege: "EVENT",
                database: database.to_string(),
                hides: "scheduled events",
            },
            _ => Error::database(format!("listing the events of `{database}`"), source),
        })?;
    let mut event_names: Vec<String> = events
        .iter()
        .filter_map(|r| get_string(r, "Name"))
        .collect();
    event_names.sort();
    for name in &event_names {
        objects.push(show_create(conn, database, ObjectKind::Event, name).await?);
    }
    Ok(objects)
}

/// Orders views so each comes after every view its definition mentions. Mentions are found by
/// the quoted name in the definition, which can over-approximate but never misses a dependency;
/// a cycle (impossible for real views) falls back to name order.
pub fn order_views(mut views: Vec<StoredObject>) -> Vec<StoredObject> {
    views.sort_by(|a, b| a.name.cmp(&b.name));
    let mut ordered: Vec<StoredObject> = Vec::with_capacity(views.len());
    while !views.is_empty() {
        let ready = views.iter().position(|candidate| {
            views.iter().all(|other| {
                other.name == candidate.name
                    || !mentions(&candidate.create_sql, &candidate.name, &other.name)
            })
        });
        let next = views.remove(ready.unwrap_or(0));
        ordered.push(next);
    }
    ordered
}

fn mentions(create_sql: &str, own_name: &str, other: &str) -> bool {
    // Skip the view's own name in `VIEW `name` AS`.
    let head = format!("VIEW {} AS ", quote_ident(own_name));
    let body = create_sql
        .find(&head)
        .and_then(|at| create_sql.get(at + head.len()..))
        .unwrap_or(create_sql);
    body.contains(&quote_ident(other))
}

/// Checks, before reading anything, that the user can see every kind of object, so a missing
/// grant fails the backup instead of silently shrinking it. `information_schema.TRIGGERS` and
/// `SHOW TRIGGERS` hide triggers without the TRIGGER privilege, and views need SHOW VIEW.
pub async fn check_privileges(conn: &mut Conn, database: &str) -> Result<()> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES \
               WHERE GRANTEE = @toc_grantee OR GRANTEE IN (SELECT CONCAT('''', ROLE_NAME, '''@''''') FROM information_schema.ENABLED_ROLES) \
             UNION \
             SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES \
               WHERE ? LIKE TABLE_SCHEMA AND (GRANTEE = @toc_grantee OR GRANTEE IN (SELECT CONCAT('''', ROLE_NAME, '''@''''') FROM information_schema.ENABLED_ROLES))",
            (database,),
        )
        .await
        .map_err(|e| Error::database("reading the backup user's privileges", e))?;
    let granted: Vec<String> = rows
        .iter()
        .filter_map(|r| get_string(r, "PRIVILEGE_TYPE"))
        .collect();
    let has = |p: &str| granted.iter().any(|g| g.eq_ignore_ascii_case(p));
    for (privilege, hides) in [
        ("SELECT", "table rows"),
        ("SHOW VIEW", "view definitions"),
        ("TRIGGER", "triggers"),
        ("EVENT", "scheduled events"),
    ] {
        if !has(privilege) {
            return Err(Error::MissingPrivilege {
                privilege,
                database: database.to_string(),
                hides,
            });
        }
    }
    Ok(())
}

/// Sets `@toc_grantee` to the current user in information_schema's `'user'@'host'` form.
pub const SET_GRANTEE: &str = "SET @toc_grantee = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, body: &str) -> StoredObject {
        StoredObject {
            kind: ObjectKind::View,
            name: name.into(),
            create_sql: format!("CREATE VIEW {} AS {body}", quote_ident(name)),
            sql_mode: None,
            character_set_client: None,
            collation_connection: None,
            time_zone: None,
            client_bytes: None,
        }
    }

    #[test]
    fn views_come_after_the_views_they_read() {
        let ordered = order_views(vec![
            view("a_top", "select * from `m_mid`"),
            view("m_mid", "select * from `z_base`"),
            view("z_base", "select * from `t`"),
        ]);
        let names: Vec<&str> = ordered.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["z_base", "m_mid", "a_top"]);
    }

    #[test]
    fn auto_increment_is_not_part_of_the_definition_hash() {
        assert_eq!(
            strip_auto_increment(
                "CREATE TABLE `t` (..) ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4"
            ),
            "CREATE TABLE `t` (..) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        let in_a_default = "CREATE TABLE `t` (a text DEFAULT ' AUTO_INCREMENT=7') ENGINE=InnoDB";
        assert_eq!(strip_auto_increment(in_a_default), in_a_default);
    }

    #[test]
    fn a_view_named_with_backticks_and_accents_is_ordered_without_panicking() {
        // Four backticks put the old offset (name length + 9) inside the é.
        for ticks in 0..8 {
            let name = format!("{}é", "`".repeat(ticks));
            let ordered = order_views(vec![
                view(&name, "select 1"),
                view("b", &format!("select * from {}", quote_ident(&name))),
            ]);
            assert_eq!(ordered.len(), 2);
        }
    }
}

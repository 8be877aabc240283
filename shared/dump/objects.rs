//! The schema file and the files for views, routines, triggers and events.

use crate::error::Result;
use crate::manifest::{ObjectKind, ServerInfo, Stage};
use crate::mysql::client_charset::is_utf8_family;
use crate::mysql::schema::{StoredObject, Table};
use crate::mysql::{create_table, is_plain_name, quote_str};
use crate::table_files::sql_file::StoredFile;
use crate::table_files::FileNamer;

fn banner(what: &str) -> String {
    format!(
        "-- toc-sis-backup {}: {what}\n-- Load every file of this backup in name order: cat $(ls *.sql.gz) | gunzip | mysql DATABASE\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// The database's default character set and collation (which routines also record), then
/// CREATE TABLE for every table, with foreign key checks off so their order does not matter.
pub(super) async fn write_schema(
    namer: &FileNamer,
    server: &ServerInfo,
    tables: &[Table],
) -> Result<StoredFile> {
    let mut file = namer.create(Stage::Schema.digit(), 0, 0, "schema").await?;
    let out = file.buffer();
    out.extend_from_slice(banner("table definitions").as_bytes());
    out.extend_from_slice(
        b"SET NAMES utf8mb4;\n\
          SET SESSION time_zone = '+00:00';\n\
          SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\n\
          SET SESSION foreign_key_checks = 0;\n",
    );
    if is_plain_name(&server.default_character_set) && is_plain_name(&server.default_collation) {
        // Without a name, ALTER DATABASE applies to the database being loaded.
        out.extend_from_slice(
            format!(
                "ALTER DATABASE CHARACTER SET {} COLLATE {};\n",
                server.default_character_set, server.default_collation
            )
            .as_bytes(),
        );
    }
    out.push(b'\n');
    // Sequences first: a table's DEFAULT NEXTVAL(s) needs `s` to exist when it is created.
    let sequences_first = tables
        .iter()
        .filter(|t| t.sequence)
        .chain(tables.iter().filter(|t| !t.sequence));
    for table in sequences_first {
        let out = file.buffer();
        out.extend_from_slice(create_table::loadable(&table.create_sql).as_bytes());
        out.extend_from_slice(b";\n\n");
        file.flush_if_full().await?;
    }
    file.finish().await
}

fn stage_of(kind: ObjectKind) -> Stage {
    match kind {
        ObjectKind::Procedure | ObjectKind::Function => Stage::Routines,
        ObjectKind::View => Stage::Views,
        ObjectKind::Trigger => Stage::Triggers,
        ObjectKind::Event => Stage::Events,
    }
}

/// A statement delimiter that occurs nowhere in `definition`.
fn delimiter_for(definition: &str) -> String {
    [";;", "$$", "//"]
        .into_iter()
        .map(str::to_string)
        .chain((1u64..).map(|n| format!(";;{n};;")))
        .find(|candidate| !definition.contains(candidate.as_str()))
        .unwrap_or_else(|| ";;".into()) // unreachable: a definition is finite
}

/// One file for the objects of `stage`, each created under the sql_mode, client character set
/// and time zone it was defined with; `None` when there are none.
pub(super) async fn write_objects(
    namer: &FileNamer,
    stage: Stage,
    objects: &[StoredObject],
) -> Result<Option<StoredFile>> {
    let selected: Vec<&StoredObject> = objects
        .iter()
        .filter(|o| stage_of(o.kind) == stage)
        .collect();
    if selected.is_empty() {
        return Ok(None);
    }
    let mut file = namer.create(stage.digit(), 0, 0, stage.label()).await?;
    let out = file.buffer();
    out.extend_from_slice(banner(stage.label()).as_bytes());
    out.extend_from_slice(b"SET NAMES utf8mb4;\nSET SESSION time_zone = '+00:00';\n\n");
    for object in selected {
        // No name in a comment: a name can hold a newline, and the line after it would run.
        let mut text = format!("-- {}\n", object.kind.label());
        text.push_str(&format!(
            "SET SESSION sql_mode = {};\n",
            quote_str(object.sql_mode.as_deref().unwrap_or(""))
        ));
        // The definition is written in utf8mb4, or in its own client character set where
        // that was worked out (see mysql::client_charset). Under another client character set
        // utf8mb4 text would read differently, unless it is plain ASCII, which reads the same
        // in every character set a client may use; then the object gets its own settings
        // back (the character set of its string literals), as the server recorded them.
        // Whether the text reads right is the client character set's question alone; the
        // connection collation (the character set of the literals) can be anything with it
        // (`SET CHARACTER SET utf8` leaves a latin1 collation_connection).
        let as_recorded = object.create_sql.is_ascii()
            || object.client_bytes.is_some()
            || object
                .character_set_client
                .as_deref()
                .is_some_and(is_utf8_family);
        let as_recorded = |_: &&str| as_recorded;
        if let Some(charset) = object.character_set_client.as_deref().filter(as_recorded) {
            text.push_str(&format!(
                "SET SESSION character_set_client = {};\n",
                quote_str(charset)
            ));
        }
        if let Some(collation) = object.collation_connection.as_deref().filter(as_recorded) {
            text.push_str(&format!(
                "SET SESSION collation_connection = {};\n",
                quote_str(collation)
            ));
        }
        if let Some(zone) = &object.time_zone {
            text.push_str(&format!("SET SESSION time_zone = {};\n", quote_str(zone)));
        }
        // Bodies hold `;`; the mysql client and our restore both honour DELIMITER. The
        // delimiter is one the definition does not contain anywhere, so no string, comment or
        // name in it (however it is read) can end the statement early.
        // Without the database names SHOW CREATE TRIGGER keeps as written (`CREATE TRIGGER
        // app.x … ON app.t`): loaded into any database, by us or by the mariadb client, the
        // object is created there.
        let create_sql = crate::mysql::definition::canonical(&object.create_sql, object.dialect());
        // The client character set's bytes are ASCII where the text is (it reads byte by
        // byte), so a delimiter absent from the text is absent from them.
        let delimiter = delimiter_for(&create_sql);
        text.push_str(&format!("DELIMITER {delimiter}\n"));
        let mut bytes = text.into_bytes();
        match &object.client_bytes {
            Some(encoded) => bytes.extend_from_slice(encoded),
            None => bytes.extend_from_slice(create_sql.as_bytes()),
        }
        bytes.extend_from_slice(
            format!("{delimiter}\nDELIMITER ;\nSET NAMES utf8mb4;\nSET SESSION time_zone = '+00:00';\n\n")
                .as_bytes(),
        );
        file.buffer().extend_from_slice(&bytes);
        file.flush_if_full().await?;
    }
    file.finish().await.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_never_occurs_in_the_definition() {
        assert_eq!(delimiter_for("CREATE PROCEDURE p() SELECT 1"), ";;");
        assert_eq!(delimiter_for("SELECT ';;'"), "$$");
        assert_eq!(delimiter_for("SELECT ';;$$//'"), ";;1;;");
        assert_eq!(delimiter_for("SELECT ';;$$//;;1;;'"), ";;2;;");
    }
}

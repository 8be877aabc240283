//! Objects defined by a client whose character set is not UTF-8 (a routine written under
//! `SET NAMES cp1251`). The server keeps such a body in the client's character set and records
//! that character set with the object: its string literals are of that character set, and
//! `LENGTH('т')` is 1 in it, 2 in utf8mb4. Written back in utf8mb4 the object would come back
//! utf8mb4, a different object. So its definition is written in its own character set, under
//! `SET character_set_client` as recorded, the way the server first read it.
//!
//! The server's rendering (SHOW CREATE under utf8mb4 results) converts the whole text from the
//! client's character set, including parts it keeps in UTF-8 itself: an event's name and the
//! COMMENT of an event or routine come out double-encoded (`руут` as `СЂСѓСѓС‚`). Those parts
//! are put back from what information_schema says before the text is encoded.

use mysql_async::{prelude::Queryable, Conn};

use super::definition::{canonical, ObjectHead};
use super::lexer::{self, Kind};
use super::schema::StoredObject;
use super::{is_plain_name, quote_ident, quote_str};
use crate::error::{Error, Result};
use crate::mysql::objects::ObjectKind;

/// Client character sets our utf8mb4 files can be replayed under unchanged.
pub fn is_utf8_family(charset: &str) -> bool {
    let lower = charset.to_ascii_lowercase();
    lower.starts_with("utf8") || lower == "ascii"
}

/// Multi-byte character sets whose every byte below 0x80 is the ASCII character (EUC): like
/// the single-byte ones, the one lexer reads their text byte by byte as the server does.
/// Others (sjis, cp932, big5, gbk, gb18030) have a second byte that can be `\` or a quote.
const EUC_CHARSETS: [&str; 4] = ["ujis", "eucjpms", "euckr", "gb2312"];

/// Gives each object written by a client whose character set is not UTF-8 its definition in
/// that character set (`StoredObject::client_bytes`), where the character set reads safely
/// byte by byte and the text converts into it and back unchanged; the others stay utf8mb4.
pub async fn encode_in_client_charsets(
    conn: &mut Conn,
    database: &str,
    objects: &mut [StoredObject],
) -> Result<()> {
    // Asked of the server once per character set, however many objects use it.
    let mut readable: std::collections::BTreeMap<String, bool> = Default::default();
    for object in objects.iter_mut() {
        let Some(charset) = object.character_set_client.clone() else {
            continue;
        };
        if is_utf8_family(&charset) || object.create_sql.is_ascii() {
            continue;
        }
        let byte_by_byte = match readable.get(&charset) {
            Some(known) => *known,
            None => {
                let known = is_plain_name(&charset) && reads_byte_by_byte(conn, &charset).await?;
                readable.insert(charset.clone(), known);
                known
            }
        };
        if !byte_by_byte {
            tracing::warn!(
                object = %object.name,
                charset,
                "this object's definition is written in utf8mb4: its client character set cannot be read byte by byte; it comes back with client character set utf8mb4"
            );
            continue;
        }
        let repaired = repaired(conn, database, object).await?;
        let text = canonical(&repaired, object.dialect()).into_owned();
        let encoded: Option<Option<Vec<u8>>> = conn
            .exec_first(
                format!(
                    "SELECT IF(CAST(CONVERT(CONVERT(? USING {charset}) USING utf8mb4) AS BINARY) = CAST(? AS BINARY), CAST(CONVERT(? USING {charset}) AS BINARY), NULL)"
                ),
                (&text, &text, &text),
            )
            .await
            .map_err(|e| {
                Error::database(
                    format!(
                        "writing the definition of {} `{}` in {charset}",
                        object.kind.label(),
                        object.name
                    ),
                    e,
                )
            })?;
        match encoded.flatten() {
            Some(bytes) => object.client_bytes = Some(bytes),
            None => tracing::warn!(
                object = %object.name,
                charset,
                "this object's definition has characters its client character set lacks; it is written in utf8mb4 and comes back with client character set utf8mb4"
            ),
        }
    }
    Ok(())
}

async fn reads_byte_by_byte(conn: &mut Conn, charset: &str) -> Result<bool> {
    if EUC_CHARSETS.contains(&charset.to_ascii_lowercase().as_str()) {
        return Ok(true);
    }
    let longest: Option<u64> = conn
        .exec_first(
            "SELECT MAXLEN FROM information_schema.CHARACTER_SETS WHERE CHARACTER_SET_NAME = ?",
            (charset,),
        )
        .await
        .map_err(|e| Error::database(format!("reading character set {charset}"), e))?;
    Ok(longest == Some(1) && !charset.eq_ignore_ascii_case("binary"))
}

/// The definition with an event's name and an event's or routine's COMMENT as
/// information_schema has them (the server renders them double-encoded; see the module).
async fn repaired(conn: &mut Conn, database: &str, object: &StoredObject) -> Result<String> {
    let query = match object.kind {
        ObjectKind::Event => {
            "SELECT EVENT_COMMENT FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND EVENT_NAME = ?"
        }
        ObjectKind::Procedure | ObjectKind::Function => {
            "SELECT ROUTINE_COMMENT FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ? LIMIT 1"
        }
        _ => return Ok(object.create_sql.clone()),
    };
    let comment: Option<String> = conn
        .exec_first(query, (database, &object.name))
        .await
        .map_err(|e| Error::database(format!("reading the comment of `{}`", object.name), e))?;
    Ok(with_name_and_comment(
        object,
        comment.as_deref().unwrap_or(""),
    ))
}

/// [`repaired`]'s text: the event's name token and the head's COMMENT literal replaced.
pub(crate) fn with_name_and_comment(object: &StoredObject, comment: &str) -> String {
    let text = &object.create_sql;
    let dialect = object.dialect();
    let Some(ObjectHead {
        name_start,
        name_end,
        ..
    }) = super::definition::object_head(text, dialect)
    else {
        return text.clone();
    };
    let name = quote_ident(&object.name);
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    if object.kind == ObjectKind::Event {
        edits.push((name_start, name_end, &name));
    }
    // The characteristic's COMMENT: the first after the name and before the body (an event's
    // DO; a routine's characteristics come right after its parameters and RETURNS). Read
    // lazily: it stops there, however long the body.
    // quote_str writes `\` escapes, which a NO_BACKSLASH_ESCAPES object does not read.
    let quotable =
        dialect.backslash_escapes || !comment.contains(['\\', '\0', '\n', '\r', '\u{1a}']);
    let quoted = quote_str(comment);
    if !comment.is_empty() && quotable {
        let mut head = lexer::code(text, dialect)
            .skip_while(|t| t.start < name_end)
            .take_while(|t| !(object.kind == ObjectKind::Event && t.is_keyword("DO")));
        let mut previous_is_comment = false;
        let literal = head.find(|t| {
            let found = previous_is_comment && matches!(t.kind, Kind::Str(b'\''));
            previous_is_comment = t.is_keyword("COMMENT");
            found
        });
        if let Some(literal) = literal {
            edits.push((literal.start, literal.end(), &quoted));
        }
    }
    super::definition::splice(text, &edits).unwrap_or_else(|| text.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: ObjectKind, name: &str, create_sql: &str) -> StoredObject {
        StoredObject {
            kind,
            name: name.into(),
            create_sql: create_sql.into(),
            sql_mode: Some(String::new()),
            character_set_client: Some("cp1251".into()),
            collation_connection: Some("cp1251_general_ci".into()),
            time_zone: None,
            client_bytes: None,
        }
    }

    #[test]
    fn an_events_name_and_comment_come_from_information_schema() {
        let event = object(
            ObjectKind::Event,
            "руут",
            "CREATE DEFINER=`root`@`%` EVENT `СЂСѓСѓС‚` ON SCHEDULE EVERY 1 DAY STARTS '2026-12-05 03:55:46' ON COMPLETION NOT PRESERVE ENABLE COMMENT 'С‚Рѕ' DO select 'т', 'COMMENT' COMMENT",
        );
        assert_eq!(
            with_name_and_comment(&event, "то 'x'"),
            "CREATE DEFINER=`root`@`%` EVENT `руут` ON SCHEDULE EVERY 1 DAY STARTS '2026-12-05 03:55:46' ON COMPLETION NOT PRESERVE ENABLE COMMENT 'то ''x''' DO select 'т', 'COMMENT' COMMENT"
        );
        // Without a comment, one in the body is left alone.
        let quiet = object(
            ObjectKind::Event,
            "e",
            "CREATE EVENT `e` ON SCHEDULE EVERY 1 DAY DO ALTER TABLE t COMMENT 'т'",
        );
        assert_eq!(with_name_and_comment(&quiet, ""), quiet.create_sql);
    }

    #[test]
    fn a_routines_comment_is_its_characteristic_not_its_bodys() {
        let routine = object(
            ObjectKind::Procedure,
            "ру",
            "CREATE DEFINER=`root`@`%` PROCEDURE `ру`(a int)\n    COMMENT 'С‚Рѕ'\nselect 'т' COMMENT",
        );
        assert_eq!(
            with_name_and_comment(&routine, "то"),
            "CREATE DEFINER=`root`@`%` PROCEDURE `ру`(a int)\n    COMMENT 'то'\nselect 'т' COMMENT"
        );
    }
}

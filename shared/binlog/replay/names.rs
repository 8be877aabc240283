//! Names read from a logged statement, made what the target knows them as: a name that is not
//! ASCII converted from the character set the statement was written in, and a renamed "table"
//! that is a view labelled a view. Apart from `statement`, which only reads text, because both
//! ask the target server.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::binlog::statement::{self, LoggedSession};
use crate::error::{Error, Result};

/// A name read from a logged statement as the server knows it: the statement's text is in
/// its session's character set (`text_of` read it as UTF-8, or byte by byte), so a name
/// that is not ASCII is converted by the server from that character set.
pub(super) async fn in_server(
    conn: &mut Conn,
    session: &LoggedSession,
    utf8: bool,
    name: &mut String,
) -> Result<()> {
    let Some([client, ..]) = session.charset else {
        return Ok(());
    };
    if name.is_ascii() {
        return Ok(());
    }
    let converting = |e| {
        Error::database(
            format!("reading the name {name:?} of a logged statement"),
            e,
        )
    };
    let charset: Option<String> = conn
        .exec_first(
            "SELECT CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID = ?",
            (client,),
        )
        .await
        .map_err(converting)?;
    let Some(charset) = charset else {
        return Err(Error::BinlogUnsupported {
            detail: format!("a logged statement names character set number {client}, which the target server does not have"),
        });
    };
    if charset.starts_with("utf8") && utf8 {
        return Ok(());
    }
    let bytes = crate::mysql::lexer::bytes_of(name, utf8);
    let converted: Option<String> = conn
        .query_first(format!(
            "SELECT CONVERT(X'{}' USING {})",
            hex::encode(&bytes),
            crate::mysql::quote_ident(&charset)
        ))
        .await
        .map_err(converting)?;
    if let Some(converted) = converted {
        *name = converted;
    }
    Ok(())
}

/// RENAME TABLE renames views too (tables and views share one namespace): a renamed pair
/// (`from` gone, `to` there) whose `from` is a view in the target, just before the statement
/// runs, or was made one by an earlier pair of the same statement, is relabelled a view.
pub(super) async fn views_renamed(
    conn: &mut Conn,
    touched: &mut [statement::Touched],
) -> Result<()> {
    let mut moved: Vec<String> = Vec::new();
    for pair in touched.chunks_mut(2) {
        let [from, to] = pair else { continue };
        if from.kind != "table" || to.kind != "table" || from.exists || !to.exists {
            continue;
        }
        let view = moved.contains(&from.name)
            || {
                let kind: Option<String> = conn
                .exec_first(
                    "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                    (&from.name,),
                )
                .await
                .map_err(|e| Error::database(format!("reading the type of `{}`", from.name), e))?;
                kind.as_deref() == Some("VIEW")
            };
        if view {
            from.kind = "view";
            to.kind = "view";
            moved.push(to.name.clone());
        }
    }
    Ok(())
}

//! `restore --with-accounts`: the accounts and grants a full backup recorded
//! (`dump::accounts`), recreated after everything they grant on exists, with grants on the
//! source database moved to the target.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::{Error, Result};
use crate::manifest::{FileEntry, Manifest, Stage};
use crate::mysql::quote_ident;
use crate::store::ObjectStore;

/// The backup's accounts file, or why there is none.
pub(super) fn file_of(manifest: &Manifest) -> Result<FileEntry> {
    manifest
        .files
        .iter()
        .find(|f| f.stage == Stage::Accounts)
        .cloned()
        .ok_or_else(|| Error::NoAccountsRecorded {
            backup_id: manifest.backup_id.clone(),
            reason: manifest
                .accounts_not_recorded
                .clone()
                .unwrap_or_else(|| "it was made before toc-backup recorded accounts".into()),
        })
}

/// Runs the accounts file's statements, grants on `source` rewritten to `target`.
pub(super) async fn apply(
    store: &dyn ObjectStore,
    prefix: &str,
    file: &FileEntry,
    conn: &mut Conn,
    source: &str,
    target: &str,
) -> Result<()> {
    let statements = super::apply::read_statements(store, prefix, file).await?;
    let mut accounts = 0;
    for (index, statement) in statements.iter().enumerate() {
        let statement = String::from_utf8_lossy(&statement.sql);
        let statement = moved_to(&statement, source, target);
        accounts += usize::from(statement.trim_start().starts_with("CREATE "));
        conn.query_drop(statement.as_str())
            .await
            .map_err(|source| Error::Statement {
                file: file.name.clone(),
                index: index + 1,
                source,
            })?;
    }
    tracing::info!(accounts, "accounts and their grants recreated");
    Ok(())
}

/// A grant on `source` (its database name, read by the lexer) made on `target`; any other
/// statement as it is.
fn moved_to(statement: &str, source: &str, target: &str) -> String {
    use crate::mysql::grant::{parse_grant, Target};
    let Some(grant) = parse_grant(statement) else {
        return statement.to_string();
    };
    let on_source = match &grant.target {
        Target::Database(name) | Target::Object { database: name, .. } => name == source,
        Target::Global => false,
    };
    match grant.database_at {
        Some((start, end)) if on_source => format!(
            "{}{}{}",
            &statement[..start],
            quote_ident(target),
            &statement[end..]
        ),
        _ => statement.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_on_the_source_move_to_the_target_and_nothing_else_changes() {
        assert_eq!(
            moved_to(
                "GRANT SELECT (` ON `toc_sis`.`) ON `toc_sis`.`t` TO `r`@`%`",
                "toc_sis",
                "copy"
            ),
            "GRANT SELECT (` ON `toc_sis`.`) ON `copy`.`t` TO `r`@`%`"
        );
        assert_eq!(
            moved_to("GRANT SELECT ON `other`.* TO `r`@`%`", "toc_sis", "copy"),
            "GRANT SELECT ON `other`.* TO `r`@`%`"
        );
        assert_eq!(
            moved_to("CREATE ROLE IF NOT EXISTS 'r'", "toc_sis", "copy"),
            "CREATE ROLE IF NOT EXISTS 'r'"
        );
    }
}

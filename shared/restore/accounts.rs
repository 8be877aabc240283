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
    let (from, to) = (
        format!(" ON {}.", quote_ident(source)),
        format!(" ON {}.", quote_ident(target)),
    );
    let mut accounts = 0;
    for (index, statement) in statements.iter().enumerate() {
        let statement = String::from_utf8_lossy(&statement.sql).replace(&from, &to);
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

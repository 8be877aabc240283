//! Which tables an incremental follows, each checked before the snapshot: it exists, has a
//! primary key and a change-tracking column, is still the table the chain's full backup
//! recorded, and the previous link holds its key state.

use super::diff::PreviousState;
use super::ChainTip;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, Stage, TableEntry};
use crate::mysql::schema::{self, Table};
use crate::mysql::shape;
use crate::table_files::keys::{self, PrimaryKey};
use crate::table_files::scope::Scope;

/// A table in scope, checked: it exists, has an integer primary key and a temporal tracking
/// column, has not been altered since the chain's full backup, and has a previous key state.
pub(super) struct Tracked {
    pub table: Table,
    pub key: PrimaryKey,
    pub tracking_index: usize,
    pub previous: PreviousState,
    /// The definition hash of the chain's full backup, which a restore creates the table from.
    pub chain_definition: String,
}

/// Whether `table` is still the table the chain's full backup recorded (`recorded`): the same
/// definition, or — when this server renders definitions differently from the one that made the
/// full backup (an upgrade) — the same shape. Answers the chain's definition hash, which every
/// link records so that a restore verifies against what it creates.
fn same_table_as_chain_root(
    recorded: Option<&TableEntry>,
    table: &Table,
    root: &Manifest,
    server_version: &str,
) -> std::result::Result<String, String> {
    let start_again = "take a full backup to start a new chain";
    let recorded = recorded.ok_or_else(|| {
        format!(
            "the chain's full backup {} does not hold it; {start_again}",
            root.backup_id
        )
    })?;
    if recorded.definition_sha256 == table.definition_sha256() {
        return Ok(recorded.definition_sha256.clone());
    }
    if !shape::renders_differently(&root.server.version, server_version) {
        return Err(format!(
            "its definition differs from the chain's full backup {}; {start_again}",
            root.backup_id
        ));
    }
    let upgraded = format!(
        "the server was upgraded since the chain's full backup {} (from {} to {server_version})",
        root.backup_id, root.server.version
    );
    match &recorded.shape_sha256 {
        Some(shape) if *shape == table.shape_sha256 => {
            tracing::info!(
                table = %table.name,
                from = %root.server.version,
                to = %server_version,
                "definition renders differently after a server upgrade; columns and indexes unchanged"
            );
            Ok(recorded.definition_sha256.clone())
        }
        Some(_) => Err(format!(
            "{upgraded} and its columns or indexes differ from that backup's; {start_again}"
        )),
        None => Err(format!(
            "{upgraded}, and that backup records no column shapes to compare its definition by (made by an older toc-backup); {start_again}"
        )),
    }
}

/// The newest key state of `table` in the chain: the parent's, or (when the parent's run had
/// another scope) the newest earlier link's that has one, or the full backup's. Its rows changed
/// since that link are what this run writes, so no change in between is lost.
async fn newest_state(
    store: &dyn crate::store::ObjectStore,
    tip: &ChainTip,
    table: &str,
) -> Result<Option<PreviousState>> {
    let state_of = |manifest: &crate::manifest::Manifest| {
        manifest
            .files
            .iter()
            .find(|f| f.stage == Stage::State && f.table.as_deref() == Some(table))
            .map(|state| PreviousState {
                key: manifest.file_key(state),
                bytes: state.bytes,
                sha256: state.sha256.clone(),
            })
    };
    if let Some(state) = state_of(&tip.parent) {
        return Ok(Some(state));
    }
    for link in &tip.earlier {
        let manifest = crate::catalog::manifest(store, link).await?;
        if let Some(state) = state_of(&manifest) {
            return Ok(Some(state));
        }
    }
    Ok(state_of(&tip.root))
}

pub(super) async fn check_scope(
    store: &dyn crate::store::ObjectStore,
    conn: &mut mysql_async::Conn,
    database: &str,
    scope: &Scope,
    tip: &ChainTip,
    server_version: &str,
) -> Result<Vec<Tracked>> {
    let summaries = schema::list_tables(conn, database).await?;
    let mut tracked = Vec::new();
    for scoped in &scope.tables {
        let refuse = |reason: String| Error::IncrementalScope {
            table: scoped.name.clone(),
            reason,
        };
        let summary = summaries
            .iter()
            .find(|s| s.name == scoped.name && s.table_type == "BASE TABLE")
            .ok_or_else(|| refuse(format!("there is no such table in database `{database}`")))?;
        let table = schema::describe_table(conn, database, summary).await?;
        let key = keys::primary_key(conn, database, &table)
            .await?
            .map_err(refuse)?;
        let tracking_index =
            crate::table_files::scope::tracking_index(&table, &scoped.tracking_column)
                .map_err(refuse)?;
        let recorded = tip.root.tables.iter().find(|t| t.name == scoped.name);
        let chain_definition =
            same_table_as_chain_root(recorded, &table, &tip.root, server_version)
                .map_err(refuse)?;
        let previous = newest_state(store, tip, &scoped.name)
            .await?
            .ok_or_else(|| {
                refuse(format!(
                    "no backup of the chain since full backup {} holds a key state for it (a full backup keeps one for each table with an integer primary key and its tracking column, `{}` here: was INCREMENTAL_TRACKING_COLUMN(S) different for the dump?); take a full backup to start tracking it: toc-backup dump --store …",
                    tip.root.backup_id, scoped.tracking_column
                ))
            })?;
        tracked.push(Tracked {
            previous,
            table,
            key,
            tracking_index,
            chain_definition,
        });
    }
    Ok(tracked)
}

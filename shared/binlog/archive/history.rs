//! Which tables a run deleted history rows of: rows deleted from a system-versioned table are
//! history rows, which no replay can remove exactly. Apart because it alone reads the anchor
//! backup's manifest and asks the server, once a run, after the stream.

use std::collections::{BTreeMap, BTreeSet};

use mysql_async::prelude::Queryable;

use crate::binlog::position::Position;
use crate::error::{Error, Result};
use crate::store::ObjectStore;

/// Which of the tables rows were deleted from are system-versioned: there a deleted row is a
/// history row (a current row's DELETE is logged as the update that ends it). Known from the
/// anchor full backup's manifest, and from the server as it is now where this run's user may
/// see the tables (the least-privileged binlog user sees none); read once a run, only when
/// rows were deleted at all.
pub(super) async fn history_deleted(
    store: &dyn ObjectStore,
    anchor: &str,
    url: &crate::config::DatabaseUrl,
    deleted_from: &BTreeMap<String, Position>,
) -> Result<Vec<String>> {
    if deleted_from.is_empty() {
        return Ok(Vec::new());
    }
    let mut versioned: BTreeSet<(String, String)> = BTreeSet::new();
    if let Some((manifest, _)) = crate::catalog::sealed_manifest(store, anchor).await {
        versioned.extend(
            manifest
                .tables
                .iter()
                .filter(|t| t.system_versioned)
                .map(|t| (manifest.database.clone(), t.name.clone())),
        );
    }
    // Only the databases rows were deleted from: information_schema.TABLES over the whole
    // server opens every table's definition. A key is "db.table" and either name may hold a
    // dot, so every split is asked about (the match below is on the whole key).
    let databases: BTreeSet<&str> = deleted_from
        .keys()
        .flat_map(|table| table.match_indices('.').map(move |(at, _)| &table[..at]))
        .collect();
    let mut conn = crate::mysql::connect(url, None).await?;
    for database in databases {
        let visible: Vec<(String, String)> = conn
            .exec(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'SYSTEM VERSIONED'",
                (database,),
            )
            .await
            .map_err(|e| Error::database("reading the system-versioned tables", e))?;
        versioned.extend(visible);
    }
    let _ = conn.disconnect().await;
    Ok(versioned
        .into_iter()
        .filter_map(|(database, table)| {
            let at = deleted_from.get(&format!("{database}.{table}"))?;
            Some(format!(
                "{}.{} in the transaction ending at {at}",
                crate::mysql::quote_ident(&database),
                crate::mysql::quote_ident(&table)
            ))
        })
        .collect())
}

//! Which backups a restore loads: a full backup, and the incrementals after it up to the point
//! asked for, each found through its `parent` and checked to be complete.

use chrono::{DateTime, Utc};

use crate::catalog;
use crate::error::{Error, Result};
use crate::manifest::{BackupKind, Manifest, ObjectEntry, TableEntry};
use crate::store::ObjectStore;

/// The state a restored database must have: each table as its newest link recorded it.
#[derive(Debug, Clone)]
pub struct ExpectedState {
    pub tables: Vec<TableEntry>,
    pub objects: Vec<ObjectEntry>,
    /// Tables a binlog replay changed row by row: their row count is known, their content is
    /// what the checked replay made it.
    pub rows_only: std::collections::BTreeSet<String>,
    /// Tables a replayed statement redefined, created, emptied or dropped: not compared.
    pub unchecked: std::collections::BTreeSet<String>,
    /// Objects (kind as the check labels it, name) a replayed statement created, changed,
    /// renamed or dropped, and whether each must exist: their definitions are not the
    /// backup's, their presence is checked.
    pub replayed: std::collections::BTreeMap<(String, String), bool>,
}

impl ExpectedState {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

pub fn expected_state(chain: &[Manifest]) -> ExpectedState {
    let mut tables: Vec<TableEntry> = chain.first().map(|m| m.tables.clone()).unwrap_or_default();
    for link in chain.iter().skip(1) {
        for changed in &link.tables {
            match tables.iter_mut().find(|t| t.name == changed.name) {
                Some(table) => *table = changed.clone(),
                None => tables.push(changed.clone()),
            }
        }
    }
    ExpectedState {
        tables,
        objects: chain.first().map(|m| m.objects.clone()).unwrap_or_default(),
        rows_only: Default::default(),
        unchecked: Default::default(),
        replayed: Default::default(),
    }
}

/// The chain ending at `which` (`latest` or an id), or at the newest point at or before `at`:
/// the full backup first. Found in the catalog; only the chain's own manifests are read.
pub async fn resolve(
    store: &dyn ObjectStore,
    which: &str,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<Manifest>> {
    store.check().await?;
    let catalog = catalog::load(store).await?;
    resolve_in(store, &catalog, which, at).await
}

/// [`resolve`] in a catalog the caller has loaded already.
pub async fn resolve_in(
    store: &dyn ObjectStore,
    catalog: &catalog::Catalog,
    which: &str,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<Manifest>> {
    let target = match at {
        Some(at) => catalog
            .complete
            .iter()
            .filter(|e| catalog::entry_time(e).is_some_and(|t| t <= at))
            .max_by_key(|e| catalog::entry_time(e))
            .ok_or_else(|| Error::BackupNotFound {
                id: format!("at or before {}", at.to_rfc3339()),
                store: store.to_string(),
            })?,
        None => catalog.select(which, &store.to_string())?,
    };
    let mut chain = vec![catalog::manifest(store, target).await?];
    while let Some(parent) = chain
        .last()
        .filter(|m| m.kind == BackupKind::Incremental)
        .map(|m| m.parent.clone())
    {
        let child = chain
            .last()
            .map(|m| m.backup_id.clone())
            .unwrap_or_default();
        let parent = parent.ok_or_else(|| Error::BrokenChain {
            backup: child.clone(),
            reason: "its manifest names no parent".into(),
        })?;
        let manifest = match catalog.get(&parent) {
            Some(entry) => {
                catalog::manifest(store, entry)
                    .await
                    .map_err(|e| Error::BrokenChain {
                        backup: child.clone(),
                        reason: format!("its parent {parent} is damaged: {e}"),
                    })?
            }
            None => {
                // Not in the index (its update was lost): the manifest itself decides.
                if let Some((manifest, _)) = catalog::sealed_manifest(store, &parent)
                    .await
                    .filter(|_| chain.len() <= 10_000)
                {
                    tracing::warn!(backup = %parent, "not in the catalog index but sealed; `toc-backup catalog rebuild` adds it");
                    chain.push(manifest);
                    continue;
                }
                let damaged = catalog
                    .damaged()
                    .find(|(e, _)| e.id == parent)
                    .map(|(_, err)| err.to_string());
                return Err(Error::BrokenChain {
                    backup: child,
                    reason: match damaged {
                        Some(err) => format!("its parent {parent} is damaged: {err}"),
                        None => format!("its parent {parent} is missing"),
                    },
                });
            }
        };
        if chain.len() > 10_000 {
            return Err(Error::BrokenChain {
                backup: child,
                reason: "the chain loops".into(),
            });
        }
        chain.push(manifest);
    }
    chain.reverse();
    Ok(chain)
}

//! Which backups a restore loads: a full backup, and the incrementals after it up to the point
//! asked for, each found through its `parent` and checked to be complete.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::catalog::{self, EntryState};
use crate::error::{Error, Result};
use crate::manifest::{BackupKind, Manifest, ObjectEntry, TableEntry};
use crate::store::ObjectStore;

/// The state a restored database must have: each table as its newest link recorded it.
#[derive(Debug, Clone)]
pub struct ExpectedState {
    pub tables: Vec<TableEntry>,
    pub objects: Vec<ObjectEntry>,
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
    }
}

/// The moment a backup's snapshot was taken, by the database's clock.
pub fn snapshot_time(manifest: &Manifest) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&manifest.snapshot.database_time)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| catalog::id_time(&manifest.backup_id))
}

/// The chain ending at `which` (`latest` or an id), or at the newest point at or before `at`:
/// the full backup first.
pub async fn resolve(
    store: &dyn ObjectStore,
    which: &str,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<Manifest>> {
    store.check().await?;
    let mut entries = catalog::entries(store).await?;
    let target = match at {
        Some(at) => entries
            .iter()
            .filter_map(|e| e.manifest())
            .filter(|m| snapshot_time(m).is_some_and(|t| t <= at))
            .max_by_key(|m| snapshot_time(m))
            .cloned()
            .ok_or_else(|| Error::BackupNotFound {
                id: format!("at or before {}", at.to_rfc3339()),
                store: store.to_string(),
            })?,
        // One listing serves the target and its parents.
        None => catalog::select(&mut entries, which, &store.to_string())?,
    };
    let by_id: HashMap<&str, &catalog::CatalogEntry> =
        entries.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut chain = vec![target];
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
        let manifest = match by_id.get(parent.as_str()).map(|e| &e.state) {
            Some(EntryState::Complete(m)) => (**m).clone(),
            Some(EntryState::Damaged(e)) => {
                return Err(Error::BrokenChain {
                    backup: child,
                    reason: format!("its parent {parent} is damaged: {e}"),
                })
            }
            Some(EntryState::Incomplete) | None => {
                return Err(Error::BrokenChain {
                    backup: child,
                    reason: format!("its parent {parent} is missing"),
                })
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

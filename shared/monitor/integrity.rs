//! The integrity check: the newest full backup and its chain of incrementals are complete and
//! sound, every file present with its size (or, deep, its checksum), and no run was left
//! without its manifest.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Check, MonitorOptions, Status};
use crate::catalog::index::IndexEntry;
use crate::catalog::{self, Catalog, EntryState};
use crate::layout::MANIFEST_NAME;
use crate::manifest::{BackupKind, Manifest};
use crate::store::{ObjectInfo, ObjectStore};

/// What the integrity check found about the latest chain.
pub(super) struct LatestChain {
    pub(super) check: Check,
    /// The backup found incomplete or damaged, if any: not counted as a copy.
    pub(super) unsound: Option<String>,
    /// The latest full backup's data size.
    pub(super) full_bytes: Option<u64>,
}

/// The newest full backup and its chain: manifests present and sound, every file present with
/// its size (or, deep, its SHA-256); runs that never wrote a manifest are named too.
pub(super) async fn integrity(
    store: &dyn ObjectStore,
    catalog: &Catalog,
    options: &MonitorOptions,
    now: DateTime<Utc>,
) -> LatestChain {
    let verdict = |status: Status, reason: String, unsound: Option<String>| LatestChain {
        check: Check {
            name: "Integrity".into(),
            status,
            reason,
        },
        unsound,
        full_bytes: None,
    };
    let critical =
        |reason: String, unsound: Option<String>| verdict(Status::Critical, reason, unsound);
    let full = catalog.complete.iter().find(|e| e.kind == BackupKind::Full);
    if let Some((damaged, e)) = catalog
        .damaged()
        .find(|(e, _)| e.kind == BackupKind::Full && full.is_none_or(|f| e.id > f.id))
    {
        return critical(
            format!("the latest full backup {} is damaged: {e}", damaged.id),
            Some(damaged.id.clone()),
        );
    }
    let Some(full) = full else {
        return critical(format!("no full backup with a manifest in {store}"), None);
    };
    let unfinished: Vec<String> = catalog
        .unsealed
        .iter()
        .filter(|e| matches!(e.state, EntryState::Incomplete) && e.id > full.id)
        .filter(|e| {
            crate::layout::id_time(&e.id).is_some_and(|t| now - t > options.unfinished_grace)
        })
        .map(|e| format!("{}{MANIFEST_NAME}", catalog::prefix_for(e.kind, &e.id)))
        .collect();
    if let Some(first) = unfinished.first() {
        return critical(
            format!(
                "{first} is missing: that run failed or was killed ({} such)",
                unfinished.len()
            ),
            None,
        );
    }
    if let Some((damaged, e)) = catalog
        .damaged()
        .find(|(e, _)| e.kind == BackupKind::Incremental && e.id > full.id)
    {
        return critical(
            format!("incremental {} is damaged: {e}", damaged.id),
            Some(damaged.id.clone()),
        );
    }
    let mut links: Vec<&IndexEntry> = vec![full];
    links.extend(catalog.complete.iter().filter(|e| {
        e.kind == BackupKind::Incremental && e.chain_root.as_deref() == Some(full.id.as_str())
    }));
    let mut full_bytes = None;
    for link in &links {
        let manifest = match catalog::manifest(store, link).await {
            Ok(m) => m,
            Err(e) => {
                let what = if link.kind == BackupKind::Full {
                    "the latest full backup"
                } else {
                    "incremental"
                };
                return critical(
                    format!("{what} {} is damaged: {e}", link.id),
                    Some(link.id.clone()),
                );
            }
        };
        if link.kind == BackupKind::Full {
            full_bytes = Some(manifest.total_bytes());
        }
        let listed = match store.list(&manifest.prefix()).await {
            Ok(listed) => listed,
            Err(e) => return critical(e.to_string(), None),
        };
        if let Err(problem) = files_present(&listed, &manifest) {
            return critical(problem, Some(link.id.clone()));
        }
        if options.deep {
            if let Err(e) = crate::verify::verify_backup(store, &manifest).await {
                return critical(e.to_string(), Some(link.id.clone()));
            }
        }
    }
    LatestChain {
        full_bytes,
        ..verdict(
            Status::Ok,
            format!(
                "full backup {} and {} incremental(s) complete{}",
                full.id,
                links.len() - 1,
                if options.deep {
                    ", every checksum re-read"
                } else {
                    ", every file present with its size"
                }
            ),
            None,
        )
    }
}

/// Every file of the manifest is in the listing with its recorded size.
fn files_present(listed: &[ObjectInfo], manifest: &Manifest) -> std::result::Result<(), String> {
    let sizes: HashMap<&str, u64> = listed.iter().map(|f| (f.key.as_str(), f.size)).collect();
    for file in manifest.kept_files() {
        let key = manifest.file_key(file);
        match sizes.get(key.as_str()) {
            None => return Err(format!("{key} is missing")),
            Some(size) if *size != file.bytes => {
                return Err(format!(
                    "{key} has {size} bytes, the manifest says {}",
                    file.bytes
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

//! Freshness per tier: the age of the newest verified copy of everything the tier holds — its
//! tables (a full backup, or an incremental whose chain covers them) and its file sources (the
//! newest file snapshot whose manifest opens) — against the tier's RPO.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::tiers::{Tier, ALL_FILE_SOURCES};
use super::{human_age, Check, Configured, Status};
use crate::catalog::entry_time;
use crate::catalog::index::IndexEntry;
use crate::error::Result;
use crate::files::list_snapshots;
use crate::manifest::BackupKind;
use crate::store::ObjectStore;

/// One part of a tier and when it was last backed up (None: never, verifiably).
struct Part {
    what: String,
    newest: Option<(DateTime<Utc>, String)>,
}

pub(super) async fn tier_freshness(
    store: &dyn ObjectStore,
    tiers: &[Tier],
    verified: &[&IndexEntry],
    binlog_point: Option<(DateTime<Utc>, String)>,
    file_backups: Configured,
    now: DateTime<Utc>,
) -> Result<(Vec<Check>, Vec<(String, Option<i64>)>)> {
    let file_snapshots = newest_file_snapshots(store).await?;
    // `*` is every source the files function snapshots. Not deployed, it promises none (what an
    // earlier deployment left is no copy of today's documents); deployed, at least one.
    let files_deployed = match file_backups {
        Configured::Yes => true,
        Configured::No => false,
        Configured::FromStore => !file_snapshots.is_empty(),
    };
    let mut checks = Vec::new();
    let mut ages = Vec::new();
    for tier in tiers {
        let mut parts = Vec::new();
        if !tier.tables.is_empty() {
            parts.push(Part {
                what: "backup".into(),
                newest: newest_database_backup(tier, verified)
                    .into_iter()
                    .chain(binlog_point.clone())
                    .max_by_key(|(t, _)| *t),
            });
        }
        let mut sources: Vec<String> = tier
            .file_sources
            .iter()
            .filter(|s| s.as_str() != ALL_FILE_SOURCES)
            .cloned()
            .collect();
        let every_source = tier.file_sources.iter().any(|s| s == ALL_FILE_SOURCES);
        if every_source && files_deployed {
            if file_snapshots.is_empty() {
                // Deployed, and no snapshot yet: the tier's documents have no copy.
                parts.push(Part {
                    what: "file snapshot".into(),
                    newest: None,
                });
            }
            sources.extend(file_snapshots.keys().cloned());
        }
        // The tier holds documents that nothing copies: never OK, whatever its tables say.
        let unconfigured = (every_source && !files_deployed).then(|| match file_backups {
            Configured::No => format!(
                "{}'s file snapshots: the files function is off (the stack's \
                 EnableFileBackups is false), so the uploaded documents are not backed up",
                tier.name
            ),
            _ => format!(
                "{}'s file snapshots: none in {store} (the files function is not deployed, or \
                 has never succeeded), so the uploaded documents are not backed up",
                tier.name
            ),
        });
        sources.sort();
        sources.dedup();
        for source in sources {
            parts.push(Part {
                what: format!("file snapshot of {source}"),
                newest: file_snapshots.get(&source).cloned().flatten(),
            });
        }
        let name = format!("{} freshness", tier.name);
        if let Some(missing) = parts.iter().find(|p| p.newest.is_none()) {
            ages.push((tier.name.clone(), None));
            let mut reason = format!("{} has no verified {} in {store}", tier.name, missing.what);
            if let Some(unconfigured) = &unconfigured {
                reason.push_str(&format!("; {unconfigured}"));
            }
            checks.push(Check {
                name,
                status: Status::Critical,
                reason,
            });
            continue;
        }
        let Some((oldest, part)) = parts
            .iter()
            .filter_map(|p| p.newest.as_ref().map(|(t, id)| (*t, (p, id))))
            .min_by_key(|(t, _)| *t)
        else {
            // A tier of file sources only, and nothing snapshots them.
            if let Some(unconfigured) = unconfigured {
                ages.push((tier.name.clone(), None));
                checks.push(Check::not_configured(name, unconfigured));
            }
            continue;
        };
        let age = now - oldest;
        ages.push((tier.name.clone(), Some(age.num_seconds())));
        let stale = age > tier.rpo();
        let (part, id) = part;
        let freshness = format!(
            "{} last verified {} {} ago (RPO {}; {})",
            tier.name,
            part.what,
            human_age(age),
            human_age(tier.rpo()),
            id
        );
        checks.push(match unconfigured {
            // Stale is a failure to alert, whatever else is missing.
            Some(missing) if stale => Check {
                name,
                status: Status::Critical,
                reason: format!("{freshness}; {missing}"),
            },
            Some(missing) => Check::not_configured(name, format!("{missing}; {freshness}")),
            None => Check {
                name,
                status: if stale { Status::Critical } else { Status::Ok },
                reason: freshness,
            },
        });
    }
    Ok((checks, ages))
}

/// The newest verified backup holding all of the tier's tables.
fn newest_database_backup(
    tier: &Tier,
    verified: &[&IndexEntry],
) -> Option<(DateTime<Utc>, String)> {
    let by_id: HashMap<&str, &IndexEntry> = verified.iter().map(|e| (e.id.as_str(), *e)).collect();
    verified
        .iter()
        .filter(|e| match e.kind {
            BackupKind::Full => true,
            BackupKind::Incremental => {
                let root = e.chain_root.as_deref().and_then(|r| by_id.get(r));
                root.is_some_and(|root| {
                    tier.tables
                        .iter()
                        .filter(|t| root.tables.contains_key(t.as_str()))
                        .all(|t| e.tables.contains_key(t.as_str()))
                })
            }
        })
        .filter_map(|e| entry_time(e).map(|t| (t, e.id.clone())))
        .max_by_key(|(t, _)| *t)
}

/// Per file source, its newest snapshot whose manifest opens (None: there are snapshots, but
/// none of them does).
async fn newest_file_snapshots(
    store: &dyn ObjectStore,
) -> Result<BTreeMap<String, Option<(DateTime<Utc>, String)>>> {
    let mut newest = BTreeMap::new();
    for snapshot in list_snapshots(store, None).await? {
        if matches!(newest.get(&snapshot.source_name), Some(Some(_))) {
            continue;
        }
        let found = match snapshot.load(store).await {
            Ok(_) => snapshot
                .time()
                .map(|t| (t, format!("snapshot {}", snapshot.snapshot_id))),
            Err(e) => {
                tracing::warn!(key = %snapshot.key, "file snapshot does not open: {e}");
                None
            }
        };
        newest.insert(snapshot.source_name.clone(), found);
    }
    Ok(newest)
}

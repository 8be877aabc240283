//! Backups older than 90 days live in S3 Glacier Flexible Retrieval, and after a year in Deep
//! Archive: a plain read of those files fails. Before a restore or verify reads anything, the
//! point's files (its chain, and the binlog segments a replay reads) are surveyed; if any must be retrieved first, the command stops with one
//! message saying how many files and bytes, in which classes, what each retrieval tier would
//! take and cost, and the command that asks for them (`toc-backup retrieve`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::point::Point;
use crate::error::{Error, Result};
use crate::store::{is_archive_class, ArchiveState, ObjectStore, RetrievalTier};

/// One file of the chain that lives in an archive class.
#[derive(Debug, Clone, Serialize)]
pub struct ArchivedFile {
    pub key: String,
    pub bytes: u64,
    #[serde(flatten)]
    pub state: ArchiveState,
}

/// The archived files of `point`: one listing per folder it reads, then one HEAD per archived
/// file.
pub async fn survey(store: &dyn ObjectStore, point: &Point) -> Result<Vec<ArchivedFile>> {
    let mut archived = Vec::new();
    for prefix in point.prefixes() {
        for object in store.list(&prefix).await? {
            if !object
                .storage_class
                .as_deref()
                .is_some_and(is_archive_class)
            {
                continue;
            }
            let state = store.archive_state(&object.key).await?;
            if state.class().is_some() {
                archived.push(ArchivedFile {
                    key: object.key,
                    bytes: object.size,
                    state,
                });
            }
        }
    }
    Ok(archived)
}

/// What S3 says each tier takes and charges, per class (list prices, eu-west-1, 2026: check
/// https://aws.amazon.com/s3/pricing/ before a large retrieval).
struct TierTerms {
    tier: RetrievalTier,
    /// Glacier Flexible Retrieval, Deep Archive: None where the tier does not exist.
    glacier: Option<(&'static str, f64, f64)>,
    deep_archive: Option<(&'static str, f64, f64)>,
}

/// (time, USD per GB, USD per 1,000 requests)
const TIERS: [TierTerms; 3] = [
    TierTerms {
        tier: RetrievalTier::Expedited,
        glacier: Some(("1-5 minutes", 0.03, 10.0)),
        deep_archive: None,
    },
    TierTerms {
        tier: RetrievalTier::Standard,
        glacier: Some(("3-5 hours", 0.01, 0.05)),
        deep_archive: Some(("within 12 hours", 0.02, 0.10)),
    },
    TierTerms {
        tier: RetrievalTier::Bulk,
        glacier: Some(("5-12 hours", 0.0, 0.0)),
        deep_archive: Some(("within 48 hours", 0.0025, 0.025)),
    },
];

const GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Per tier: whether it serves every class present, the slowest time, the estimated cost.
fn estimates(files: &[&ArchivedFile]) -> Vec<String> {
    let mut by_class: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for file in files {
        let entry = by_class
            .entry(file.state.class().unwrap_or("?"))
            .or_default();
        entry.0 += 1;
        entry.1 += file.bytes;
    }
    TIERS
        .iter()
        .map(|terms| {
            let mut cost = 0.0;
            let mut times = Vec::new();
            for (class, (count, bytes)) in &by_class {
                let deal = if *class == "DEEP_ARCHIVE" {
                    terms.deep_archive
                } else {
                    terms.glacier
                };
                let Some((time, per_gb, per_thousand)) = deal else {
                    return format!("{:?}: not offered for {class}", terms.tier);
                };
                cost += *bytes as f64 / GB * per_gb + *count as f64 / 1000.0 * per_thousand;
                times.push(format!("{time} ({class})"));
            }
            format!("{:?}: {}, about ${cost:.2}", terms.tier, times.join(", "))
        })
        .collect()
}

/// The refusal for a point with files that cannot be read yet; `None` when all can. `flags`
/// name the point on the command line (`--backup ID`, `--at TIME`, …).
pub fn refusal(store: &str, backup: &str, flags: &str, files: &[ArchivedFile]) -> Option<Error> {
    let waiting: Vec<&ArchivedFile> = files.iter().filter(|f| !f.state.readable()).collect();
    if waiting.is_empty() {
        return None;
    }
    let bytes: u64 = waiting.iter().map(|f| f.bytes).sum();
    let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
    for file in &waiting {
        *classes
            .entry(file.state.class().unwrap_or("?"))
            .or_default() += 1;
    }
    let retrieving = waiting
        .iter()
        .filter(|f| matches!(f.state, ArchiveState::Retrieving { .. }))
        .count();
    let classes: Vec<String> = classes.iter().map(|(c, n)| format!("{n} in {c}")).collect();
    let progress = if retrieving > 0 {
        format!(
            "; retrieval is under way for {retrieving} of them (run `toc-backup retrieve` again to see when all are ready)"
        )
    } else {
        String::new()
    };
    Some(Error::Archived {
        backup: backup.to_string(),
        detail: format!(
            "{} files ({:.2} GB) must be retrieved from the archive first ({}){progress}. Retrieval by tier: {}. Run: toc-backup retrieve --store {store} {flags} --tier Bulk|Standard|Expedited [--days 7], then this command again once every file is ready.",
            waiting.len(),
            bytes as f64 / GB,
            classes.join(", "),
            estimates(&waiting).join("; ")
        ),
    })
}

/// Refuses, with the [`refusal`] message, when any file of `point` is still archived.
pub async fn ensure_readable(store: &dyn ObjectStore, point: &Point) -> Result<()> {
    let files = survey(store, point).await?;
    match refusal(
        &store.to_string(),
        point.backup_id(),
        &point.request.as_flags(),
        &files,
    ) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// What `toc-backup retrieve` did.
#[derive(Debug, Serialize)]
pub struct RetrieveReport {
    pub backup_id: String,
    pub tier: RetrievalTier,
    pub days: u32,
    pub files: Vec<ArchivedFile>,
    pub requested: usize,
    pub retrieving: usize,
    pub ready: usize,
}

impl RetrieveReport {
    pub fn all_ready(&self) -> bool {
        self.ready == self.files.len()
    }
}

/// Asks for every archived file of `point` to be retrieved for `days` (idempotent: files being
/// retrieved or already readable are left as they are) and reports each file's state.
pub async fn retrieve(
    store: &dyn ObjectStore,
    point: &Point,
    tier: RetrievalTier,
    days: u32,
) -> Result<RetrieveReport> {
    let backup_id = point.backup_id().to_string();
    let mut files = survey(store, point).await?;
    let mut requested = 0;
    for file in &mut files {
        if matches!(file.state, ArchiveState::Archived { .. }) {
            if tier == RetrievalTier::Expedited && file.state.class() == Some("DEEP_ARCHIVE") {
                return Err(Error::InvalidValue {
                    what: "retrieval tier",
                    value: "Expedited".into(),
                    expected: format!(
                        "Standard or Bulk: {} is in DEEP_ARCHIVE, which has no Expedited retrieval",
                        file.key
                    ),
                });
            }
            file.state = store.request_retrieval(&file.key, tier, days).await?;
            requested += 1;
            tracing::info!(key = %file.key, state = ?file.state, "retrieval requested");
        }
    }
    let ready = files.iter().filter(|f| f.state.readable()).count();
    let retrieving = files
        .iter()
        .filter(|f| matches!(f.state, ArchiveState::Retrieving { .. }))
        .count();
    Ok(RetrieveReport {
        backup_id,
        tier,
        days,
        files,
        requested,
        retrieving,
        ready,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(class: &str, bytes: u64, state: fn(String) -> ArchiveState) -> ArchivedFile {
        ArchivedFile {
            key: format!("database/daily/x/{class}-{bytes}.sql.gz"),
            bytes,
            state: state(class.to_string()),
        }
    }

    #[test]
    fn the_refusal_counts_files_bytes_classes_and_prices_each_tier() {
        let files = vec![
            file("GLACIER", 2 * 1024 * 1024 * 1024, |class| {
                ArchiveState::Archived { class }
            }),
            file("DEEP_ARCHIVE", 1024 * 1024 * 1024, |class| {
                ArchiveState::Archived { class }
            }),
            file("GLACIER", 10, |class| ArchiveState::Retrieved {
                class,
                until: None,
            }),
        ];
        let error = refusal("s3://b/p/", "ID", "--backup ID", &files)
            .expect("refused")
            .to_string();
        assert!(error.contains("2 files (3.00 GB)"), "{error}");
        assert!(error.contains("1 in DEEP_ARCHIVE, 1 in GLACIER"), "{error}");
        assert!(
            error.contains("Expedited: not offered for DEEP_ARCHIVE"),
            "{error}"
        );
        // Standard: 2 GB x $0.01 + 1 GB x $0.02 + requests.
        assert!(
            error.contains(
                "Standard: within 12 hours (DEEP_ARCHIVE), 3-5 hours (GLACIER), about $0.04"
            ),
            "{error}"
        );
        assert!(
            error.contains("toc-backup retrieve --store s3://b/p/ --backup ID"),
            "{error}"
        );
        let ready = vec![file("GLACIER", 10, |class| ArchiveState::Retrieved {
            class,
            until: None,
        })];
        assert!(refusal("s", "ID", "--backup ID", &ready).is_none());
    }
}

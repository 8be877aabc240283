//! The monitor: is every tier within its recovery-point objective, is the latest backup what it
//! claims, does anything look wrong, and did the last restore test pass? Each check ends OK,
//! WARNING or CRITICAL with a one-line reason; [`run_monitor`] alerts on changes.

pub mod alerts;
pub mod aws_checks;
pub mod deployment;
mod freshness;
pub mod restore_test;
pub mod tiers;

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::index::IndexEntry;
use crate::catalog::{self, Catalog, CatalogSource, EntryState};
use crate::error::{Error, Result};
use crate::layout::MANIFEST_NAME;
use crate::manifest::{BackupKind, Manifest};
use crate::notify::Notifier;
use crate::store::{ObjectInfo, ObjectStore};
use tiers::Tier;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warning,
    Critical,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub reason: String,
}

/// How the reason of a check of something not deployed begins (a tier's file snapshots, the
/// binlog archive). Such a check is a WARNING, never OK: nothing is copied. But it is a
/// decision, not a failure, so it never alerts, reminds or holds back an all-clear
/// ([`alerts::decide`]), and the "failing checks" metric leaves it out.
pub const NOT_CONFIGURED: &str = "not configured";

impl Check {
    /// The WARNING for something not deployed: `not configured: {why}`.
    pub fn not_configured(name: impl Into<String>, why: impl std::fmt::Display) -> Check {
        Check {
            name: name.into(),
            status: Status::Warning,
            reason: format!("{NOT_CONFIGURED}: {why}"),
        }
    }

    /// A WARNING made by [`Check::not_configured`].
    pub fn is_not_configured(&self) -> bool {
        self.status == Status::Warning && self.reason.starts_with(NOT_CONFIGURED)
    }
}

/// Whether an opt-in job is deployed: the files function (a tier's file snapshots) or the
/// binlog archive. The stack says so (its EnableFileBackups and EnableBinlogArchive, handed to
/// the monitor function); `toc-backup status` is not told, so the store answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Configured {
    /// Deployed: no copy in the store is a failure (CRITICAL), not a choice.
    Yes,
    /// Not deployed: "not configured" (WARNING), whatever an earlier deployment left behind.
    No,
    /// Not said: deployed when the store holds its copies, otherwise "not configured" (which
    /// then also covers a job that is deployed but has never succeeded; the reason says so).
    #[default]
    FromStore,
}

impl Configured {
    /// From a setting such as MONITOR_FILE_BACKUPS: `true`, `false`, or unset (from the store).
    pub fn from_setting(variable: &str, value: Option<&str>) -> Result<Configured> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") => Ok(Configured::FromStore),
            Some("true") => Ok(Configured::Yes),
            Some("false") => Ok(Configured::No),
            Some(_) => Err(Error::Config {
                variable: variable.to_string(),
                reason: format!(
                    "is {:?}, which is not true or false (the stack's setting for the job)",
                    value.unwrap_or_default()
                ),
            }),
        }
    }
}

#[derive(Clone)]
pub struct MonitorOptions {
    pub tiers: Vec<Tier>,
    /// A table losing more than this share of its rows between two backups is an anomaly.
    pub row_drop_share: f64,
    /// A backup smaller than this share of the previous one is an anomaly.
    pub size_share: f64,
    /// Re-read every file of the latest chain (otherwise sizes from the listing are compared).
    pub deep: bool,
    /// `run_monitor` also re-reads everything when the last deep check is older than this.
    pub deep_every: Duration,
    pub reminder: Duration,
    /// When set, the last restore test must have passed within this time.
    pub restore_test_max_age: Option<Duration>,
    /// A folder without a manifest older than this is a failed or killed run.
    pub unfinished_grace: Duration,
    pub rds: Option<aws_checks::RdsTargets>,
    /// The replica bucket (cross-region copy), if one is configured.
    pub replica: Option<std::sync::Arc<dyn ObjectStore>>,
    /// With the binlog archive on, the most data Tier 1 (every table) may lose: the archive's
    /// lag above it is a warning, above three times it critical.
    pub binlog_rpo: Duration,
    /// Whether the files function is deployed (the file snapshots of tiers with `*` sources).
    pub file_backups: Configured,
    /// Whether the binlog archive is deployed.
    pub binlog_archive: Configured,
    /// The bucket's protections and the alert topic's subscriptions, checked on every run.
    pub deployment: Option<deployment::DeploymentTargets>,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            tiers: tiers::default_tiers(),
            row_drop_share: 0.05,
            size_share: 0.5,
            deep: false,
            deep_every: Duration::hours(24),
            reminder: Duration::hours(4),
            restore_test_max_age: None,
            unfinished_grace: Duration::hours(1),
            rds: None,
            replica: None,
            // A 5-minute schedule loses at most 5 minutes and a run's time; one late run is
            // the margin before a person is told.
            binlog_rpo: Duration::minutes(10),
            file_backups: Configured::FromStore,
            binlog_archive: Configured::FromStore,
            deployment: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MonitorReport {
    pub checked_at: String,
    pub status: Status,
    pub checks: Vec<Check>,
    /// Seconds since each tier's newest verified backup (None: there is none).
    pub tier_ages: Vec<(String, Option<i64>)>,
    pub latest_full_bytes: Option<u64>,
    /// Whether this run sent a notification.
    pub alerted: bool,
}

/// "2 h 13 min", "45 min", "3 d 4 h".
pub fn human_age(age: Duration) -> String {
    let minutes = age.num_minutes().max(0);
    match minutes {
        m if m < 60 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h {} min", m / 60, m % 60),
        m => format!("{} d {} h", m / (24 * 60), (m / 60) % 24),
    }
}

/// Every file of the manifest is in the listing with its recorded size.
fn files_present(listed: &[ObjectInfo], manifest: &Manifest) -> std::result::Result<(), String> {
    let prefix = manifest.prefix();
    let sizes: HashMap<&str, u64> = listed.iter().map(|f| (f.key.as_str(), f.size)).collect();
    for file in &manifest.files {
        let key = format!("{prefix}{}", file.name);
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

/// Runs every check; reads the store only: the catalog, and the latest chain's manifests and
/// listings, whatever the length of the history.
pub async fn check_all(
    store: &dyn ObjectStore,
    options: &MonitorOptions,
    now: DateTime<Utc>,
) -> Result<MonitorReport> {
    store.check().await?;
    let catalog = catalog::load(store).await?;
    let mut checks = Vec::new();
    let latest = integrity(store, &catalog, options, now).await;
    // A backup whose files are not all there is no copy of anything.
    let verified: Vec<&IndexEntry> = catalog
        .complete
        .iter()
        .filter(|e| latest.unsound.as_deref() != Some(e.id.as_str()))
        .collect();

    let head = crate::binlog::segment::read_head(store).await;
    // The archive makes every table recoverable up to where it is complete (after a sound
    // full backup, which it extends).
    let binlog_point = match &head {
        Ok(Some(h)) if h.gap.is_none() && verified.iter().any(|e| e.kind == BackupKind::Full) => {
            h.complete_until.map(|t| {
                (
                    t,
                    format!("binlog archive complete until {}", t.to_rfc3339()),
                )
            })
        }
        _ => None,
    };
    let (freshness, tier_ages) = freshness::tier_freshness(
        store,
        &options.tiers,
        &verified,
        binlog_point,
        options.file_backups,
        now,
    )
    .await?;
    checks.extend(freshness);
    checks.push(binlog_archive_check(
        store,
        head,
        options.binlog_archive,
        options.binlog_rpo,
        now,
    ));
    checks.push(latest.check);
    checks.extend(anomalies(&verified, options));
    if let Some(max_age) = options.restore_test_max_age {
        checks.push(restore_test::recency_check(store, max_age, now).await);
    }
    if let Some(rds) = &options.rds {
        checks.extend(aws_checks::rds_checks(rds, now).await);
    }
    if let Some(replica) = &options.replica {
        let newest = verified.first().map(|e| catalog::prefix_for(e.kind, &e.id));
        checks.push(aws_checks::replica_check(store, replica, newest.as_deref()).await);
    }
    if let Some(targets) = &options.deployment {
        let newest = verified.first().map(|e| crate::layout::manifest_key(&e.id));
        checks.extend(deployment::deployment_checks(targets, newest.as_deref()).await);
    }
    // Backups without an index: every run reads every manifest until someone rebuilds it.
    if let (CatalogSource::Scan(reason), false) = (&catalog.source, catalog.complete.is_empty()) {
        checks.push(Check {
            name: "Catalog".into(),
            status: Status::Warning,
            reason: format!(
                "every manifest was read because {reason}; `toc-backup catalog rebuild` writes the index"
            ),
        });
    }
    Ok(MonitorReport {
        checked_at: now.to_rfc3339(),
        status: checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok),
        checks,
        tier_ages,
        latest_full_bytes: latest.full_bytes,
        alerted: false,
    })
}

/// The binlog archive, deployed or not: without it there is no point-in-time restore between
/// backups, which the check says rather than leaving the archive out of the report.
fn binlog_archive_check(
    store: &dyn ObjectStore,
    head: Result<Option<crate::binlog::segment::Head>>,
    configured: Configured,
    rpo: Duration,
    now: DateTime<Utc>,
) -> Check {
    const NAME: &str = "Binlog archive";
    let head_key = crate::layout::BINLOG_HEAD_KEY;
    match (configured, head) {
        // What an earlier deployment archived is no promise about today.
        (Configured::No, _) => Check::not_configured(
            NAME,
            "the binlog archive is off (the stack's EnableBinlogArchive is false): a restore \
             reaches the latest backup, not a point in time between backups",
        ),
        (_, Ok(Some(head))) => binlog_check(&head, rpo, now),
        (Configured::Yes, Ok(None)) => Check {
            name: NAME.into(),
            status: Status::Critical,
            reason: format!(
                "is deployed but has never archived: no {head_key} in {store}; point-in-time \
                 restore is not possible until it runs after a full backup"
            ),
        },
        (Configured::FromStore, Ok(None)) => Check::not_configured(
            NAME,
            format!(
                "no binlog archive in {store} (no {head_key}): a restore reaches the latest \
                 backup, not a point in time between backups; `toc-backup binlog archive` or \
                 the stack's EnableBinlogArchive=true starts one"
            ),
        ),
        (_, Err(e)) => Check {
            name: NAME.into(),
            status: Status::Critical,
            reason: format!("its head cannot be read: {e}"),
        },
    }
}

/// The binlog archive's recovery point: how long ago it was last complete, or its gap.
fn binlog_check(head: &crate::binlog::segment::Head, rpo: Duration, now: DateTime<Utc>) -> Check {
    let name = "Binlog archive".to_string();
    if let Some(gap) = &head.gap {
        return Check {
            name,
            status: Status::Critical,
            reason: format!(
                "gap since {}: {} to {} was never archived ({}); take a full backup to start again",
                gap.found_at.to_rfc3339(),
                gap.from,
                gap.to,
                gap.reason
            ),
        };
    }
    let Some(complete) = head.complete_until else {
        return Check {
            name,
            status: Status::Critical,
            reason: format!(
                "has never reached the end of the binlog (last run {}); it is falling behind",
                head.updated_at.to_rfc3339()
            ),
        };
    };
    let lag = now - complete;
    let status = if lag <= rpo {
        Status::Ok
    } else if lag <= rpo * 3 {
        Status::Warning
    } else {
        Status::Critical
    };
    Check {
        name,
        status,
        reason: format!(
            "complete until {} ago (RPO {}): point-in-time restore reaches {}; last transaction {}",
            human_age(lag),
            human_age(rpo),
            complete.to_rfc3339(),
            head.last_commit.map_or("-".into(), |t| t.to_rfc3339())
        ),
    }
}

/// What the integrity check found about the latest chain.
struct LatestChain {
    check: Check,
    /// The backup found incomplete or damaged, if any: not counted as a copy.
    unsound: Option<String>,
    /// The latest full backup's data size.
    full_bytes: Option<u64>,
}

/// The newest full backup and its chain: manifests present and sound, every file present with
/// its size (or, deep, its SHA-256); runs that never wrote a manifest are named too.
async fn integrity(
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

/// Tables that lost rows, and backups that shrank, between the two newest comparable backups
/// (from the catalog's per-table figures: no manifest read).
fn anomalies(verified: &[&IndexEntry], options: &MonitorOptions) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut newest_first: Vec<&IndexEntry> = verified.to_vec();
    newest_first.sort_by(|a, b| b.id.cmp(&a.id));
    if let Some(latest) = newest_first.first() {
        for (name, table) in &latest.tables {
            let previous = newest_first
                .iter()
                .skip(1)
                .find_map(|e| e.tables.get(name).map(|t| (e, t)));
            if let Some((before, old)) = previous {
                let floor = old.rows as f64 * (1.0 - options.row_drop_share);
                if old.rows > 0 && (table.rows as f64) < floor {
                    let drop = 100.0 * (old.rows - table.rows) as f64 / old.rows as f64;
                    checks.push(Check {
                        name: format!("Rows of {name}"),
                        status: Status::Critical,
                        reason: format!(
                            "table {name} lost {drop:.1} % of its rows ({} -> {}) between backups {} and {}",
                            old.rows, table.rows, before.id, latest.id
                        ),
                    });
                }
            }
        }
    }
    let fulls: Vec<&&IndexEntry> = newest_first
        .iter()
        .filter(|e| e.kind == BackupKind::Full)
        .take(2)
        .collect();
    if let [latest, previous] = fulls.as_slice() {
        if (latest.bytes as f64) < previous.bytes as f64 * options.size_share {
            checks.push(Check {
                name: "Backup size".into(),
                status: Status::Warning,
                reason: format!(
                    "full backup {} is {} bytes, under {:.0} % of the previous one ({} bytes)",
                    latest.id,
                    latest.bytes,
                    options.size_share * 100.0,
                    previous.bytes
                ),
            });
        }
    }
    if checks.is_empty() {
        checks.push(Check {
            name: "Anomalies".into(),
            status: Status::Ok,
            reason: "no table lost rows and no backup shrank".into(),
        });
    }
    checks
}

/// Checks, then alerts as [`alerts::decide`] says, keeping the alert state in the store.
pub async fn run_monitor(
    store: &dyn ObjectStore,
    notifier: &dyn Notifier,
    options: &MonitorOptions,
    now: DateTime<Utc>,
) -> Result<MonitorReport> {
    let previous: alerts::AlertState = match store.get(alerts::STATE_KEY).await? {
        Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!("monitor state unreadable, starting afresh: {e}");
            alerts::AlertState::default()
        }),
        None => alerts::AlertState::default(),
    };
    // The cheap size check runs every time; the full re-read once per `deep_every`.
    let deep_due = previous
        .last_deep_check_at
        .is_none_or(|at| now - at >= options.deep_every);
    let run_options = MonitorOptions {
        deep: options.deep || deep_due,
        ..options.clone()
    };
    let mut report = check_all(store, &run_options, now).await?;
    let (notification, mut state) =
        alerts::decide(&previous, &report.checks, now, options.reminder);
    if run_options.deep {
        state.last_deep_check_at = Some(now);
    }
    if let Some(note) = &notification {
        notifier.notify(note).await?;
        report.alerted = true;
    }
    let bytes = serde_json::to_vec_pretty(&state).map_err(|e| Error::Task(e.to_string()))?;
    store.put(alerts::STATE_KEY, bytes.into()).await?;
    Ok(report)
}

/// CloudWatch Embedded Metric Format lines: printed to stdout by the Lambda function, they
/// become metrics (backup age per tier, latest full size, check states) with no API call.
pub fn emf_lines(report: &MonitorReport) -> Vec<String> {
    let timestamp = DateTime::parse_from_rfc3339(&report.checked_at)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0);
    let mut lines = Vec::new();
    for (tier, age) in &report.tier_ages {
        lines.push(
            serde_json::json!({
                "_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [{
                    "Namespace": "TOC-SIS/Backup", "Dimensions": [["Tier"]],
                    "Metrics": [{"Name": "BackupAgeSeconds", "Unit": "Seconds"}]}]},
                "Tier": tier,
                "BackupAgeSeconds": age.unwrap_or(i64::MAX / 2),
            })
            .to_string(),
        );
    }
    let critical = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Critical)
        .count();
    // "Failing checks": something not deployed is a decision, and would hold the line at 1
    // for good, hiding the next real warning.
    let warning = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Warning && !c.is_not_configured())
        .count();
    lines.push(
        serde_json::json!({
            "_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [{
                "Namespace": "TOC-SIS/Backup", "Dimensions": [[]],
                "Metrics": [
                    {"Name": "ChecksCritical", "Unit": "Count"},
                    {"Name": "ChecksWarning", "Unit": "Count"},
                    {"Name": "LatestFullBackupBytes", "Unit": "Bytes"}]}]},
            "ChecksCritical": critical,
            "ChecksWarning": warning,
            "LatestFullBackupBytes": report.latest_full_bytes.unwrap_or(0),
        })
        .to_string(),
    );
    lines
}

//! The monitor: is every tier within its recovery-point objective, is the latest backup what it
//! claims, does anything look wrong, and did the last restore test pass? Each check ends OK,
//! WARNING or CRITICAL with a one-line reason; [`run_monitor`] alerts on changes.
//!
//! This file holds the checks' types and options, gathers every check ([`check_all`]), runs the
//! alerting loop and prints the metrics; the individual checks live in the files beside it.

pub mod alerts;
mod anomalies;
pub mod aws_checks;
mod binlog_archive;
pub mod deployment;
mod freshness;
mod integrity;
pub mod recovery_time;
pub mod restore_test;
pub mod tiers;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::index::IndexEntry;
use crate::catalog::{self, CatalogSource};
use crate::error::{Error, Result};
use crate::manifest::BackupKind;
use crate::notify::Notifier;
use crate::store::ObjectStore;
use anomalies::anomalies;
use binlog_archive::binlog_archive_check;
use integrity::integrity;
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
    /// The recovery-time objective: a restore to now estimated longer is a warning, twice as
    /// long critical.
    pub rto: Duration,
    /// The replay rate of this deployment's server, where it is known to differ from the
    /// benchmark's (rows a second).
    pub replay_rows_per_second: Option<f64>,
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
            rto: Duration::minutes(i64::from(recovery_time::DEFAULT_RTO_MINUTES)),
            replay_rows_per_second: None,
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
    if !verified.is_empty() {
        checks.push(
            recovery_time::recovery_time_check(
                store,
                &catalog,
                options.rto,
                options.replay_rows_per_second,
                now,
            )
            .await,
        );
    }
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

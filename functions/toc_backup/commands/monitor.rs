//! `toc-backup monitor` (the checks, alerting on changes) and `toc-backup status` (the same
//! checks for a person, no alerts); both exit 0 OK, 1 WARNING, 2 CRITICAL.

use clap::Args;
use toc_sis_backup::defaults;
use toc_sis_backup::monitor::aws_checks::RdsTargets;
use toc_sis_backup::monitor::deployment::DeploymentTargets;
use toc_sis_backup::monitor::recovery_time::replay_rate_setting;
use toc_sis_backup::monitor::tiers::parse_tiers;
use toc_sis_backup::monitor::{check_all, run_monitor, Configured, MonitorOptions};
use toc_sis_backup::store::open_store;
use toc_sis_backup::Error;

use super::{exit_code, notifier, print, print_checks, store};
use crate::flags::{parse_time, StoreArg};

#[derive(Args)]
pub(crate) struct MonitorArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Tiers as JSON: [{"name": "Tier 1", "rpo_minutes": 60, "tables": [...]}, ...]
    /// (default: the strategy document's three tiers).
    #[arg(long, env = "MONITOR_TIERS")]
    tiers: Option<String>,
    /// Share of a table's rows whose loss between backups is an anomaly.
    #[arg(long, env = "MONITOR_ROW_DROP_PERCENT", default_value_t = defaults::MONITOR_ROW_DROP_PERCENT)]
    row_drop_percent: f64,
    /// Re-read every file of the latest chain instead of comparing sizes.
    #[arg(long, env = "MONITOR_DEEP")]
    deep: bool,
    /// `monitor` re-reads every file anyway when its last deep check is this many hours old.
    #[arg(long, env = "MONITOR_DEEP_EVERY_HOURS", default_value_t = defaults::MONITOR_DEEP_EVERY_HOURS)]
    deep_every_hours: u32,
    /// Hours between reminders while a problem lasts.
    #[arg(long, env = "MONITOR_REMINDER_HOURS", default_value_t = defaults::MONITOR_REMINDER_HOURS)]
    reminder_hours: u32,
    /// Days within which a restore test must have passed (0: not checked).
    #[arg(long, env = "MONITOR_RESTORE_TEST_DAYS", default_value_t = defaults::MONITOR_RESTORE_TEST_DAYS)]
    restore_test_days: u32,
    /// Check as if it were this time (RFC 3339); for drills and tests.
    #[arg(long, value_parser = parse_time)]
    now: Option<chrono::DateTime<chrono::Utc>>,
    /// Also check this RDS instance's automated backups and point-in-time recovery.
    #[arg(long, env = "MONITOR_RDS_INSTANCE")]
    rds_instance: Option<String>,
    /// …and that this read replica replicates.
    #[arg(long, env = "MONITOR_RDS_REPLICA")]
    rds_replica: Option<String>,
    /// Minutes the RDS latest restorable time may lag.
    #[arg(long, env = "MONITOR_PITR_MAX_MINUTES", default_value_t = defaults::MONITOR_PITR_MAX_MINUTES)]
    pitr_max_minutes: u32,
    /// The replica store (cross-region copy), e.g. s3://toc-backups-replica/prod.
    #[arg(long, env = "MONITOR_REPLICA_STORE")]
    replica_store: Option<String>,
    /// With the binlog archive on: its lag above this many minutes is a warning, above three
    /// times a critical alert.
    #[arg(long, env = "MONITOR_BINLOG_RPO_MINUTES", default_value_t = defaults::MONITOR_BINLOG_RPO_MINUTES, value_parser = clap::value_parser!(u32).range(1..=1440))]
    binlog_rpo_minutes: u32,
    /// The recovery-time objective in minutes: a restore to now estimated longer is a warning,
    /// twice as long critical.
    #[arg(long, env = "MONITOR_RTO_MINUTES", default_value_t = defaults::MONITOR_RTO_MINUTES, value_parser = clap::value_parser!(u32).range(1..=10080))]
    rto_minutes: u32,
    /// The binlog replay rate of this deployment's server, rows a second, for that estimate
    /// (unset: the benchmark's).
    #[arg(long, env = "MONITOR_REPLAY_ROWS_PER_SECOND", value_name = "ROWS")]
    replay_rows_per_second: Option<String>,
    /// Whether the files function is deployed (true|false; unset: judged from the store).
    /// Deployed and no snapshot is CRITICAL; not deployed is "not configured".
    #[arg(long, env = "MONITOR_FILE_BACKUPS", value_name = "true|false")]
    file_backups: Option<String>,
    /// Whether the binlog archive is deployed (true|false; unset: judged from the store).
    #[arg(long, env = "MONITOR_BINLOG_ARCHIVE", value_name = "true|false")]
    binlog_archive: Option<String>,
    /// Also check the bucket's protections (versioning, Object Lock, default encryption,
    /// replication, lifecycle) and, with --sns-topic-arn, that an alert subscription is
    /// confirmed: what `doctor` checks of the store, on every run.
    #[arg(long, env = "MONITOR_DEPLOYMENT_CHECKS")]
    deployment_checks: bool,
    /// Send alerts to this SNS topic instead of the log.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    sns_topic_arn: Option<String>,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

impl MonitorArgs {
    /// With --deployment-checks, the store's bucket (an S3 store only) and the alert topic.
    async fn deployment_targets(&self) -> Result<Option<DeploymentTargets>, Error> {
        if !self.deployment_checks {
            return Ok(None);
        }
        let location = self.store.store.trim();
        if !location.starts_with("s3://") {
            return Err(Error::InvalidValue {
                what: "store for --deployment-checks",
                value: location.to_string(),
                expected: "s3://BUCKET/PREFIX (a folder has no bucket settings to check)".into(),
            });
        }
        let (bucket, prefix) = toc_sis_backup::store::s3::parse_location(location)?;
        let settings = toc_sis_backup::store::s3::S3Settings::from_env()?;
        let (s3, _) = toc_sis_backup::store::s3::client_for_bucket(&settings.retry, &bucket).await;
        let config = toc_sis_backup::aws::sdk_config().await;
        Ok(Some(DeploymentTargets {
            s3,
            bucket,
            prefix,
            topic: self
                .sns_topic_arn
                .clone()
                .map(|arn| (aws_sdk_sns::Client::new(&config), arn)),
        }))
    }

    async fn options(&self) -> Result<MonitorOptions, Error> {
        let rds = match &self.rds_instance {
            Some(instance) => Some(RdsTargets {
                client: aws_sdk_rds::Client::new(&toc_sis_backup::aws::sdk_config().await),
                instance: instance.clone(),
                replica: self.rds_replica.clone(),
                max_pitr_lag: chrono::Duration::minutes(i64::from(self.pitr_max_minutes)),
            }),
            None => None,
        };
        let replica = match &self.replica_store {
            Some(location) => Some(open_store(location).await?),
            None => None,
        };
        Ok(MonitorOptions {
            rds,
            replica,
            tiers: parse_tiers(self.tiers.as_deref())?,
            row_drop_share: self.row_drop_percent / 100.0,
            deep: self.deep,
            deep_every: chrono::Duration::hours(i64::from(self.deep_every_hours)),
            reminder: chrono::Duration::hours(i64::from(self.reminder_hours)),
            restore_test_max_age: (self.restore_test_days > 0)
                .then(|| chrono::Duration::days(i64::from(self.restore_test_days))),
            binlog_rpo: chrono::Duration::minutes(i64::from(self.binlog_rpo_minutes)),
            file_backups: Configured::from_setting(
                "MONITOR_FILE_BACKUPS",
                self.file_backups.as_deref(),
            )?,
            binlog_archive: Configured::from_setting(
                "MONITOR_BINLOG_ARCHIVE",
                self.binlog_archive.as_deref(),
            )?,
            deployment: self.deployment_targets().await?,
            rto: chrono::Duration::minutes(i64::from(self.rto_minutes)),
            replay_rows_per_second: replay_rate_setting(self.replay_rows_per_second.as_deref())?,
            ..MonitorOptions::default()
        })
    }
}

pub(crate) async fn run(args: MonitorArgs) -> Result<u8, Error> {
    let options = args.options().await?;
    let notifier = notifier(args.sns_topic_arn.as_deref()).await;
    let store = store(&args.store).await?;
    let now = args.now.unwrap_or_else(chrono::Utc::now);
    let report = run_monitor(store.as_ref(), notifier.as_ref(), &options, now).await?;
    print(args.json, &report, print_checks);
    Ok(exit_code(report.status))
}

pub(crate) async fn status(args: MonitorArgs) -> Result<u8, Error> {
    let options = args.options().await?;
    let store = store(&args.store).await?;
    let now = args.now.unwrap_or_else(chrono::Utc::now);
    let report = check_all(store.as_ref(), &options, now).await?;
    print(args.json, &report, print_checks);
    Ok(exit_code(report.status))
}

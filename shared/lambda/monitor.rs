//! The `monitor` function, every 15 minutes: the checks, alerts on changes through SNS, and the
//! results as CloudWatch metrics (Embedded Metric Format lines on stdout).

use std::time::SystemTime;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::context::FunctionContext;
use super::{DumpEvent, Env};
use crate::defaults;
use crate::error::{Error, Result};
use crate::monitor::aws_checks::RdsTargets;
use crate::monitor::tiers::parse_tiers;
use crate::monitor::{emf_lines, run_monitor, Configured, MonitorOptions};
use crate::store::open_store;

pub struct MonitorFunction {
    context: FunctionContext,
    options: MonitorOptions,
}

impl MonitorFunction {
    /// BACKUP_STORE, SNS_TOPIC_ARN, MONITOR_TIERS, MONITOR_ROW_DROP_PERCENT, MONITOR_DEEP,
    /// MONITOR_REMINDER_HOURS, MONITOR_RESTORE_TEST_DAYS, MONITOR_FILE_BACKUPS and
    /// MONITOR_BINLOG_ARCHIVE (whether the stack deployed the files function and the binlog
    /// archive: "true" or "false"; unset, the store decides) and MONITOR_DEPLOYMENT_CHECKS (the
    /// bucket's protections and the topic's subscriptions too), MONITOR_RTO_MINUTES and
    /// MONITOR_REPLAY_ROWS_PER_SECOND (the recovery-time estimate and its objective); checked
    /// once per cold start.
    pub async fn from_env(env: &dyn Env, sdk_config: SdkConfig) -> Result<Self> {
        let rds = env
            .get("MONITOR_RDS_INSTANCE")
            .map(|instance| -> Result<RdsTargets> {
                Ok(RdsTargets {
                    client: aws_sdk_rds::Client::new(&sdk_config),
                    instance,
                    replica: env.get("MONITOR_RDS_REPLICA"),
                    max_pitr_lag: env.duration(
                        "MONITOR_PITR_MAX_MINUTES",
                        i64::from(defaults::MONITOR_PITR_MAX_MINUTES),
                        chrono::TimeDelta::try_minutes,
                        "a whole number of minutes",
                    )?,
                })
            });
        let rds = rds.transpose()?;
        let replica = match env.get("MONITOR_REPLICA_STORE") {
            Some(location) => Some(open_store(&location).await.map_err(|e| Error::Config {
                variable: "MONITOR_REPLICA_STORE".into(),
                reason: format!("is not usable: {e}"),
            })?),
            None => None,
        };
        let context = FunctionContext::from_env("monitor", env, sdk_config, false).await?;
        let restore_test_days = env.duration(
            "MONITOR_RESTORE_TEST_DAYS",
            i64::from(defaults::MONITOR_RESTORE_TEST_DAYS),
            chrono::TimeDelta::try_days,
            "a whole number of days",
        )?;
        let options = MonitorOptions {
            tiers: parse_tiers(env.get("MONITOR_TIERS").as_deref())?,
            row_drop_share: env.parse(
                "MONITOR_ROW_DROP_PERCENT",
                defaults::MONITOR_ROW_DROP_PERCENT,
                "a percentage",
            )? / 100.0,
            deep: env.parse("MONITOR_DEEP", false, "true or false")?,
            deep_every: env.duration(
                "MONITOR_DEEP_EVERY_HOURS",
                i64::from(defaults::MONITOR_DEEP_EVERY_HOURS),
                chrono::TimeDelta::try_hours,
                "a whole number of hours",
            )?,
            reminder: env.duration(
                "MONITOR_REMINDER_HOURS",
                i64::from(defaults::MONITOR_REMINDER_HOURS),
                chrono::TimeDelta::try_hours,
                "a whole number of hours",
            )?,
            restore_test_max_age: (restore_test_days > chrono::TimeDelta::zero())
                .then_some(restore_test_days),
            rds,
            replica,
            rto: env.duration(
                "MONITOR_RTO_MINUTES",
                i64::from(defaults::MONITOR_RTO_MINUTES),
                chrono::TimeDelta::try_minutes,
                "a whole number of minutes",
            )?,
            replay_rows_per_second: crate::monitor::recovery_time::replay_rate_setting(
                env.get("MONITOR_REPLAY_ROWS_PER_SECOND").as_deref(),
            )?,
            binlog_rpo: env.duration(
                "MONITOR_BINLOG_RPO_MINUTES",
                i64::from(defaults::MONITOR_BINLOG_RPO_MINUTES),
                chrono::TimeDelta::try_minutes,
                "a whole number of minutes",
            )?,
            file_backups: Configured::from_setting(
                "MONITOR_FILE_BACKUPS",
                env.get("MONITOR_FILE_BACKUPS").as_deref(),
            )?,
            binlog_archive: Configured::from_setting(
                "MONITOR_BINLOG_ARCHIVE",
                env.get("MONITOR_BINLOG_ARCHIVE").as_deref(),
            )?,
            deployment: env
                .parse("MONITOR_DEPLOYMENT_CHECKS", false, "true or false")?
                .then(|| context.deployment_targets(env.get("SNS_TOPIC_ARN"))),
            ..MonitorOptions::default()
        };
        Ok(MonitorFunction { context, options })
    }

    /// `now` is the clock to check against (tests move it); the handler passes the real one.
    pub async fn run_at(&self, event: Value, now: DateTime<Utc>) -> Result<Value> {
        let parsed = DumpEvent::parse(&event).and_then(|event| match event {
            DumpEvent::Scheduled { .. } => Ok(()),
            DumpEvent::Manual(manual) if manual.label.is_none() && manual.prefix.is_none() => {
                Ok(())
            }
            DumpEvent::Manual(_) => Err(Error::InvalidEvent {
                reason: "the monitor takes no label or prefix".into(),
                expected: "the scheduled event or {}".into(),
            }),
        });
        self.context.refused(parsed).await?;
        let store = self.context.store(None);
        let report = run_monitor(
            store.as_ref(),
            self.context.notifier.as_ref(),
            &self.options,
            now,
        )
        .await?;
        for line in emf_lines(&report) {
            println!("{line}");
        }
        serde_json::to_value(report).map_err(|e| Error::Task(e.to_string()))
    }
}

#[async_trait::async_trait]
impl super::Handler for MonitorFunction {
    async fn handle(&self, event: Value, _deadline: Option<SystemTime>) -> Result<Value> {
        self.run_at(event, Utc::now()).await
    }

    async fn panicked(&self, message: &str) {
        self.context.alert_panic(message).await;
    }
}

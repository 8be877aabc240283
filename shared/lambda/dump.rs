//! The `dump` function: a full backup into S3 on the daily schedule or by hand.

use std::time::SystemTime;

use aws_config::SdkConfig;
use serde_json::Value;

use super::context::FunctionContext;
use super::{DumpEvent, Env};
use crate::defaults;
use crate::dump::{run_dump_until, DumpOptions};
use crate::error::{Error, Result};
use crate::retention::RetentionPolicy;
use crate::table_files::scope::TrackingColumns;

pub struct DumpFunction {
    context: FunctionContext,
    /// None with BACKUP_PRUNE=false: in AWS, S3 lifecycle and Object Lock keep backups for the
    /// years the law asks, and the function has no delete permission.
    retention: Option<RetentionPolicy>,
    split_bytes: u64,
    jobs: usize,
    tracking: TrackingColumns,
    skip_unsupported: bool,
}

impl DumpFunction {
    /// Reads and checks the configuration and builds the AWS clients: once per cold start.
    pub async fn from_env(env: &dyn Env, sdk_config: SdkConfig) -> Result<Self> {
        let context = FunctionContext::from_env("dump", env, sdk_config, true).await?;
        let retention = RetentionPolicy {
            keep_days: env.parse(
                "BACKUP_KEEP_DAYS",
                defaults::BACKUP_KEEP_DAYS,
                "a whole number of days",
            )?,
            keep_min: env.parse(
                "BACKUP_KEEP_MIN",
                defaults::BACKUP_KEEP_MIN,
                "a whole number of backups",
            )?,
            ..RetentionPolicy::default()
        };
        let retention = env
            .parse("BACKUP_PRUNE", defaults::BACKUP_PRUNE, "true or false")?
            .then_some(retention);
        let split_mb: u64 = env.parse(
            "BACKUP_SPLIT_MB",
            defaults::BACKUP_SPLIT_MB,
            "a whole number of MiB",
        )?;
        let jobs: usize = env.parse(
            "BACKUP_DUMP_JOBS",
            usize::from(defaults::BACKUP_DUMP_JOBS),
            "a whole number of connections",
        )?;
        let skip_unsupported = env.parse("BACKUP_SKIP_UNSUPPORTED", false, "true or false")?;
        // The incremental function's variables: key states are kept for the tables it can track.
        let tracking = TrackingColumns::parse(
            env.get("INCREMENTAL_TRACKING_COLUMN").as_deref(),
            env.get("INCREMENTAL_TRACKING_COLUMNS").as_deref(),
        )
        .map_err(|e| Error::Config {
            variable: "INCREMENTAL_TRACKING_COLUMNS".into(),
            reason: format!("is not usable: {e}"),
        })?;
        Ok(DumpFunction {
            context,
            retention,
            tracking,
            split_bytes: split_mb.max(1) * 1024 * 1024,
            jobs: jobs.clamp(1, 32),
            skip_unsupported,
        })
    }

    /// Handles one invocation; `deadline` is when Lambda will kill it.
    pub async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        let started = SystemTime::now();
        let prepared = self.prepare(&event, deadline).await;
        let (options, prefix) = self.context.refused(prepared).await?;
        let store = self.context.store(prefix);
        let progress = options.headway.clone().log_every(super::PROGRESS_EVERY);
        let outcome = run_dump_until(
            store,
            self.context.notifier.as_ref(),
            &options,
            self.context.stop_before(deadline),
        )
        .await;
        progress.abort();
        let report = match outcome {
            Err(skipped @ Error::RestoreInProgress { .. }) => return Ok(super::skipped(&skipped)),
            outcome => outcome?,
        };
        self.context
            .warn_if_over_budget("full backup", started, deadline)
            .await;
        serde_json::to_value(report).map_err(|e| Error::Task(e.to_string()))
    }

    async fn prepare(
        &self,
        event: &Value,
        deadline: Option<SystemTime>,
    ) -> Result<(DumpOptions, Option<String>)> {
        let event = DumpEvent::parse(event)?;
        tracing::info!(?event, "dump invoked");
        let (label, prefix) = match event {
            DumpEvent::Scheduled { .. } => (None, None),
            DumpEvent::Manual(manual) => (manual.label.clone(), manual.store_prefix()),
        };
        self.context.check_time(deadline)?;
        let mut options = DumpOptions::new(self.context.database_url().await?);
        options.label = label;
        options.retention = self.retention.clone();
        options.notify_success = self.context.notify_success;
        options.split_bytes = self.split_bytes;
        options.jobs = self.jobs;
        options.tracking = self.tracking.clone();
        options.skip_unsupported = self.skip_unsupported;
        Ok((options, prefix))
    }
}

#[async_trait::async_trait]
impl super::Handler for DumpFunction {
    async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        DumpFunction::handle(self, event, deadline).await
    }

    async fn panicked(&self, message: &str) {
        self.context.alert_panic(message).await;
    }
}

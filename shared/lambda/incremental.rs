//! The `incremental` function: the hourly incremental of the Tier 1 tables into S3.

use std::time::SystemTime;

use aws_config::SdkConfig;
use serde_json::Value;

use super::context::FunctionContext;
use super::{DumpEvent, Env};
use crate::defaults;
use crate::error::{Error, Result};
use crate::incremental::{run_incremental_until, IncrementalOptions, Scope};

pub struct IncrementalFunction {
    context: FunctionContext,
    scope: Scope,
    overlap: chrono::TimeDelta,
    full_if_missing: bool,
}

impl IncrementalFunction {
    /// Reads and checks the configuration (INCREMENTAL_TABLES, INCREMENTAL_TRACKING_COLUMN,
    /// INCREMENTAL_TRACKING_COLUMNS, INCREMENTAL_OVERLAP_MINUTES, INCREMENTAL_FULL_IF_MISSING
    /// beside the shared variables): once per cold start.
    pub async fn from_env(env: &dyn Env, sdk_config: SdkConfig) -> Result<Self> {
        let context = FunctionContext::from_env("incremental", env, sdk_config, true).await?;
        let scope = Scope::parse(
            env.get("INCREMENTAL_TABLES").as_deref(),
            env.get("INCREMENTAL_TRACKING_COLUMN").as_deref(),
            env.get("INCREMENTAL_TRACKING_COLUMNS").as_deref(),
        )
        .map_err(|e| Error::Config {
            variable: "INCREMENTAL_TABLES".into(),
            reason: format!("is not usable: {e}"),
        })?;
        Ok(IncrementalFunction {
            context,
            scope,
            overlap: env.duration(
                "INCREMENTAL_OVERLAP_MINUTES",
                i64::from(defaults::INCREMENTAL_OVERLAP_MINUTES),
                chrono::TimeDelta::try_minutes,
                "a whole number of minutes",
            )?,
            full_if_missing: env.parse("INCREMENTAL_FULL_IF_MISSING", false, "true or false")?,
        })
    }

    pub async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        let started = SystemTime::now();
        let prepared = self.prepare(&event, deadline).await;
        let (options, prefix) = self.context.refused(prepared).await?;
        let store = self.context.store(prefix);
        let report = run_incremental_until(
            store,
            self.context.notifier.as_ref(),
            &options,
            self.context.stop_before(deadline),
        )
        .await;
        let report = match report {
            Err(skipped @ Error::RestoreInProgress { .. }) => return Ok(super::skipped(&skipped)),
            report => report?,
        };
        self.context
            .warn_if_over_budget("incremental backup", started, deadline)
            .await;
        serde_json::to_value(report).map_err(|e| Error::Task(e.to_string()))
    }

    async fn prepare(
        &self,
        event: &Value,
        deadline: Option<SystemTime>,
    ) -> Result<(IncrementalOptions, Option<String>)> {
        // The same payloads as the dump: the schedule, or a manual {"prefix": …}.
        let event = DumpEvent::parse(event)?;
        tracing::info!(?event, "incremental invoked");
        let prefix = match event {
            DumpEvent::Scheduled { .. } => None,
            DumpEvent::Manual(manual) => {
                if manual.label.is_some() {
                    return Err(Error::InvalidEvent {
                        reason: "incrementals take no label".into(),
                        expected: "the scheduled event or {\"prefix\": \"…\"}".into(),
                    });
                }
                manual.store_prefix()
            }
        };
        self.context.check_time(deadline)?;
        let mut options = IncrementalOptions::new(self.context.database_url().await?);
        options.scope = self.scope.clone();
        options.overlap = self.overlap;
        options.full_if_missing = self.full_if_missing;
        options.notify_success = self.context.notify_success;
        Ok((options, prefix))
    }
}

#[async_trait::async_trait]
impl super::Handler for IncrementalFunction {
    async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        IncrementalFunction::handle(self, event, deadline).await
    }

    async fn panicked(&self, message: &str) {
        self.context.alert_panic(message).await;
    }
}

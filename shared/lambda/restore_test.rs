//! The `restore-test` function, monthly: the latest backup restored into a scratch database,
//! verified, timed and dropped; the result notified pass or fail.

use crate::restore::definer::DefinerMode;
use std::time::SystemTime;

use aws_config::SdkConfig;
use chrono::Utc;
use serde_json::Value;

use super::context::FunctionContext;
use super::{DumpEvent, Env};
use crate::defaults;
use crate::error::{Error, Result};
use crate::monitor::restore_test::{run_restore_test_until, RestoreTestOptions};

pub struct RestoreTestFunction {
    context: FunctionContext,
    jobs: usize,
    database_prefix: String,
    definer: DefinerMode,
}

impl RestoreTestFunction {
    /// The shared variables (the database ones name the scratch server), RESTORE_JOBS,
    /// RESTORE_TEST_DATABASE_PREFIX and RESTORE_DEFINER (`current` unless set: the test's user
    /// creates the objects as itself and holds no SET USER, which would let it act as any
    /// account); checked once per cold start.
    pub async fn from_env(env: &dyn Env, sdk_config: SdkConfig) -> Result<Self> {
        let database_prefix = env
            .get("RESTORE_TEST_DATABASE_PREFIX")
            .unwrap_or_else(|| defaults::RESTORE_TEST_DATABASE_PREFIX.into());
        crate::monitor::restore_test::check_database_prefix(&database_prefix)?;
        let context = FunctionContext::from_env("restore-test", env, sdk_config, true).await?;
        Ok(RestoreTestFunction {
            context,
            jobs: env.parse(
                "RESTORE_JOBS",
                usize::from(defaults::RESTORE_JOBS),
                "a whole number of connections",
            )?,
            database_prefix,
            definer: env.parse(
                "RESTORE_DEFINER",
                defaults::RESTORE_TEST_DEFINER,
                "keep or current",
            )?,
        })
    }

    pub async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        let prepared = async {
            match DumpEvent::parse(&event)? {
                DumpEvent::Manual(manual) if manual.label.is_some() => Err(Error::InvalidEvent {
                    reason: "the restore test takes no label".into(),
                    expected: "the scheduled event or {\"prefix\": \"…\"}".into(),
                }),
                DumpEvent::Manual(manual) => Ok(manual.store_prefix()),
                DumpEvent::Scheduled { .. } => Ok(None),
            }
        }
        .await;
        let prefix = self.context.refused(prepared).await?;
        self.context
            .refused(self.context.check_time(deadline))
            .await?;
        let server_url = self
            .context
            .refused(self.context.database_url().await)
            .await?;
        let options = RestoreTestOptions {
            headway: Default::default(),
            server_url,
            jobs: self.jobs.max(1),
            database_prefix: self.database_prefix.clone(),
            definer: self.definer,
        };
        let progress = options.headway.clone().log_every(super::PROGRESS_EVERY);
        let outcome = run_restore_test_until(
            self.context.store(prefix),
            self.context.notifier.as_ref(),
            &options,
            Utc::now(),
            self.context.stop_before(deadline),
        )
        .await;
        progress.abort();
        let report = outcome?;
        serde_json::to_value(report).map_err(|e| Error::Task(e.to_string()))
    }
}

#[async_trait::async_trait]
impl super::Handler for RestoreTestFunction {
    async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        RestoreTestFunction::handle(self, event, deadline).await
    }

    async fn panicked(&self, message: &str) {
        self.context.alert_panic(message).await;
    }
}

//! The `binlog` function: every few minutes, the binlog since the archive's end into S3.

use std::time::SystemTime;

use aws_config::SdkConfig;
use serde_json::Value;

use super::context::FunctionContext;
use super::{DumpEvent, Env};
use crate::binlog::archive::run_archive_alerting;
use crate::binlog::ArchiveOptions;
use crate::defaults;
use crate::error::{Error, Result};

pub struct BinlogFunction {
    context: FunctionContext,
    replica_server_id: u32,
    segment_bytes: u64,
}

impl BinlogFunction {
    /// Reads and checks the configuration (BINLOG_REPLICA_SERVER_ID, BINLOG_SEGMENT_MB beside
    /// the shared variables): once per cold start.
    pub async fn from_env(env: &dyn Env, sdk_config: SdkConfig) -> Result<Self> {
        let context = FunctionContext::from_env("binlog", env, sdk_config, true).await?;
        let segment_mb: u64 = env.parse(
            "BINLOG_SEGMENT_MB",
            defaults::BINLOG_SEGMENT_MB,
            "a whole number of MiB",
        )?;
        Ok(BinlogFunction {
            context,
            replica_server_id: env.parse(
                "BINLOG_REPLICA_SERVER_ID",
                defaults::BINLOG_REPLICA_SERVER_ID,
                "a server id no replica of the source uses (1 to 4294967295)",
            )?,
            segment_bytes: segment_mb.max(1) << 20,
        })
    }

    pub async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        let prepared = self.prepare(&event, deadline).await;
        let (options, prefix) = self.context.refused(prepared).await?;
        let store = self.context.store(prefix);
        let progress = options.headway.clone().log_every(super::PROGRESS_EVERY);
        let outcome = run_archive_alerting(store, self.context.notifier.as_ref(), &options).await;
        progress.abort();
        let report = outcome?;
        serde_json::to_value(report).map_err(|e| Error::Task(e.to_string()))
    }

    async fn prepare(
        &self,
        event: &Value,
        deadline: Option<SystemTime>,
    ) -> Result<(ArchiveOptions, Option<String>)> {
        let event = DumpEvent::parse(event)?;
        tracing::info!(?event, "binlog archive invoked");
        let prefix = match event {
            DumpEvent::Scheduled { .. } => None,
            DumpEvent::Manual(manual) => {
                if manual.label.is_some() {
                    return Err(Error::InvalidEvent {
                        reason: "the binlog archive takes no label".into(),
                        expected: "the scheduled event or {\"prefix\": \"…\"}".into(),
                    });
                }
                manual.store_prefix()
            }
        };
        self.context.check_time(deadline)?;
        Ok((
            ArchiveOptions {
                url: self.context.database_url().await?,
                replica_server_id: self.replica_server_id,
                deadline: self.context.stop_instant(deadline),
                segment_bytes: self.segment_bytes,
                headway: Default::default(),
            },
            prefix,
        ))
    }
}

#[async_trait::async_trait]
impl super::Handler for BinlogFunction {
    async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        BinlogFunction::handle(self, event, deadline).await
    }

    async fn panicked(&self, message: &str) {
        self.context.alert_panic(message).await;
    }
}

//! The `files` function: the daily snapshots of uploaded documents and the application tree.

use std::time::SystemTime;

use aws_config::SdkConfig;
use serde::Deserialize;
use serde_json::Value;

use super::context::FunctionContext;
use super::{DumpEvent, Env};
use crate::defaults;
use crate::error::{Error, Result};
use crate::files::{
    default_file_retention, run_file_backup_until, snapshot::validate_source_name, Excludes,
    FileBackupOptions,
};
use crate::retention::RetentionPolicy;

const EXPECTED_SOURCES: &str = "a JSON list such as [{\"name\": \"uploads\", \"from\": \"/mnt/files/storage/app\"}, {\"name\": \"application\", \"from\": \"/mnt/files/toc-sis\", \"application_excludes\": true, \"exclude\": [\"*.tmp\"]}]";
const EXPECTED_EVENT: &str = "an EventBridge \"Scheduled Event\" from aws.events, or a manual object {\"label\": \"…\", \"sources\": [\"uploads\"]} (both optional)";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceConfig {
    name: String,
    from: String,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    application_excludes: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualFiles {
    label: Option<String>,
    sources: Option<Vec<String>>,
}

pub struct FilesFunction {
    context: FunctionContext,
    sources: Vec<FileBackupOptions>,
    retention: Option<RetentionPolicy>,
}

impl FilesFunction {
    /// Reads and checks FILES_SOURCES, FILES_KEEP_DAYS, FILES_KEEP_MIN, FILES_PRUNE and
    /// FILES_JOBS beside the shared variables: once per cold start.
    pub async fn from_env(env: &dyn Env, sdk_config: SdkConfig) -> Result<Self> {
        let context = FunctionContext::from_env("files", env, sdk_config, false).await?;
        let config_error = |reason: String| Error::Config {
            variable: "FILES_SOURCES".into(),
            reason,
        };
        let text = env.require("FILES_SOURCES", "the folders or S3 prefixes to back up")?;
        let configs: Vec<SourceConfig> = serde_json::from_str(&text)
            .map_err(|e| config_error(format!("is not {EXPECTED_SOURCES}: {e}")))?;
        if configs.is_empty() {
            return Err(config_error(format!(
                "is empty; expected {EXPECTED_SOURCES}"
            )));
        }
        let jobs: usize = env.parse(
            "FILES_JOBS",
            usize::from(defaults::FILES_JOBS),
            "a whole number of files at once",
        )?;
        let mut sources = Vec::new();
        for config in configs {
            validate_source_name(&config.name)
                .map_err(|e| config_error(format!("is not usable: {e}")))?;
            if sources
                .iter()
                .any(|s: &FileBackupOptions| s.source_name == config.name)
            {
                return Err(config_error(format!("names {:?} twice", config.name)));
            }
            let mut options = FileBackupOptions::new(config.name, config.from)
                .with_excludes(config.exclude, config.application_excludes);
            Excludes::new(&options.excludes)
                .map_err(|e| config_error(format!("is not usable: {e}")))?;
            options.jobs = jobs.max(1);
            options.notify_success = context.notify_success;
            sources.push(options);
        }
        let retention = RetentionPolicy {
            keep_days: env.parse(
                "FILES_KEEP_DAYS",
                defaults::FILES_KEEP_DAYS,
                "a whole number of days",
            )?,
            keep_min: env.parse(
                "FILES_KEEP_MIN",
                defaults::FILES_KEEP_MIN,
                "a whole number of snapshots",
            )?,
            ..default_file_retention()
        };
        let retention = env
            .parse("FILES_PRUNE", defaults::FILES_PRUNE, "true or false")?
            .then_some(retention);
        Ok(FilesFunction {
            context,
            sources,
            retention,
        })
    }

    /// Backs up every selected source in turn; any failure (each already notified) fails the
    /// invocation after the others have run.
    pub async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        let started = SystemTime::now();
        let prepared = self.prepare(&event, deadline);
        let selected = self.context.refused(prepared).await?;
        let store = self.context.store(None);
        let mut reports = Vec::new();
        let mut failures = Vec::new();
        for options in selected {
            let progress = options.headway.clone().log_every(super::PROGRESS_EVERY);
            let outcome = run_file_backup_until(
                store.clone(),
                self.context.notifier.as_ref(),
                &options,
                self.context.stop_before(deadline),
            )
            .await;
            progress.abort();
            match outcome {
                Ok(report) => reports.push(report),
                Err(e) => failures.push(format!("{}: {e}", options.source_name)),
            }
        }
        if failures.is_empty() {
            self.context
                .warn_if_over_budget("file backup", started, deadline)
                .await;
        } else {
            return Err(Error::Task(format!(
                "file backup failed for {}",
                failures.join("; ")
            )));
        }
        serde_json::to_value(reports).map_err(|e| Error::Task(e.to_string()))
    }

    fn prepare(
        &self,
        event: &Value,
        deadline: Option<SystemTime>,
    ) -> Result<Vec<FileBackupOptions>> {
        let invalid = |reason: String| Error::InvalidEvent {
            reason,
            expected: EXPECTED_EVENT.into(),
        };
        let manual = match event.as_object() {
            Some(object) if object.contains_key("detail-type") => {
                DumpEvent::parse(event)?;
                ManualFiles::default()
            }
            Some(_) => serde_json::from_value::<ManualFiles>(event.clone())
                .map_err(|e| invalid(e.to_string()))?,
            None => return Err(invalid(format!("the payload is {event}"))),
        };
        tracing::info!(?manual, "files invoked");
        self.context.check_time(deadline)?;
        let mut selected = match &manual.sources {
            None => self.sources.clone(),
            Some(names) => {
                let mut chosen = Vec::new();
                for name in names {
                    match self.sources.iter().find(|s| &s.source_name == name) {
                        Some(source) => chosen.push(source.clone()),
                        None => {
                            return Err(invalid(format!(
                                "source {name:?} is not configured (FILES_SOURCES has {})",
                                self.sources
                                    .iter()
                                    .map(|s| s.source_name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )))
                        }
                    }
                }
                chosen
            }
        };
        if let Some(label) = &manual.label {
            super::event::check_label(label).map_err(|reason| invalid(reason.into()))?;
        }
        for options in &mut selected {
            options.label = manual.label.clone();
            options.retention = self.retention.clone();
        }
        Ok(selected)
    }
}

#[async_trait::async_trait]
impl super::Handler for FilesFunction {
    async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        FilesFunction::handle(self, event, deadline).await
    }

    async fn panicked(&self, message: &str) {
        self.context.alert_panic(message).await;
    }
}

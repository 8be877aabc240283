//! The `dump` function: a full backup into S3 on the daily schedule or by hand.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use serde_json::Value;

use super::{remaining, DumpEvent, Env};
use crate::config::DatabaseUrl;
use crate::credentials;
use crate::dump::{run_dump_until, DumpOptions};
use crate::error::{Error, Result};
use crate::notify::sns::SnsNotifier;
use crate::notify::{LogNotifier, Notification, Notifier, Severity};
use crate::retention::RetentionPolicy;
use crate::store::s3::{self, S3Settings, S3Store};
use crate::store::ObjectStore;

/// How the function finds the database's credentials.
enum DatabaseSource {
    /// DATABASE_SECRET_ARN: a Secrets Manager secret in the RDS shape, read per invocation so
    /// rotation needs no redeploy.
    Secret {
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
        database: Option<String>,
    },
    /// DATABASE_URL without a password: with DATABASE_IAM_AUTH=true a fresh RDS IAM token is
    /// made per invocation; otherwise DATABASE_PASSWORD (local runs and tests).
    Url { url: DatabaseUrl, iam: bool },
}

pub struct DumpFunction {
    sdk_config: SdkConfig,
    s3: aws_sdk_s3::Client,
    s3_settings: S3Settings,
    bucket: String,
    prefix: String,
    notifier: Arc<dyn Notifier>,
    database: DatabaseSource,
    retention: RetentionPolicy,
    notify_success: bool,
    /// Refuse to start with less time than this left (a partial dump helps nobody).
    min_remaining: Duration,
    /// Stop this long before the deadline, so the failure is reported instead of killed.
    deadline_margin: Duration,
    split_bytes: u64,
}

impl DumpFunction {
    /// Reads and checks the configuration and builds the AWS clients: once per cold start.
    pub async fn from_env(env: &dyn Env, sdk_config: SdkConfig) -> Result<Self> {
        let store = env.require("BACKUP_STORE", "the backups' place, s3://BUCKET/PREFIX")?;
        let (bucket, prefix) = s3::parse_location(&store).map_err(|e| Error::Config {
            variable: "BACKUP_STORE".into(),
            reason: format!("is not usable: {e}"),
        })?;
        let notifier: Arc<dyn Notifier> = match env.get("SNS_TOPIC_ARN") {
            Some(arn) => Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(&sdk_config), arn)),
            None => {
                tracing::warn!("SNS_TOPIC_ARN is not set: failures are only logged");
                Arc::new(LogNotifier)
            }
        };
        let database = match (env.get("DATABASE_SECRET_ARN"), env.get("DATABASE_URL")) {
            (Some(secret_id), None) => DatabaseSource::Secret {
                client: aws_sdk_secretsmanager::Client::new(&sdk_config),
                secret_id,
                database: env.get("DATABASE_NAME"),
            },
            (None, Some(text)) => {
                let url = DatabaseUrl::parse(&text).map_err(|e| Error::Config {
                    variable: "DATABASE_URL".into(),
                    reason: format!("is not usable: {e}"),
                })?;
                let url = match env.get("DATABASE_NAME") {
                    Some(name) => url.with_database(Some(&name)),
                    None => url,
                };
                let url = match env.get("DATABASE_PASSWORD") {
                    Some(password) if url.password().is_none() => url.with_password(Some(password)),
                    _ => url,
                };
                let iam = env.parse("DATABASE_IAM_AUTH", false, "true or false")?;
                DatabaseSource::Url { url, iam }
            }
            (Some(_), Some(_)) => {
                return Err(Error::Config {
                    variable: "DATABASE_SECRET_ARN".into(),
                    reason: "and DATABASE_URL are both set; set exactly one".into(),
                })
            }
            (None, None) => return Err(Error::Config {
                variable: "DATABASE_SECRET_ARN".into(),
                reason:
                    "is not set (nor DATABASE_URL); one of them must say how to reach the database"
                        .into(),
            }),
        };
        let retention = RetentionPolicy {
            keep_days: env.parse("BACKUP_KEEP_DAYS", 30, "a whole number of days")?,
            keep_min: env.parse("BACKUP_KEEP_MIN", 7, "a whole number of backups")?,
            ..RetentionPolicy::default()
        };
        let split_mb: u64 = env.parse("BACKUP_SPLIT_MB", 64, "a whole number of MiB")?;
        Ok(DumpFunction {
            s3: s3::client_from_env().await,
            s3_settings: S3Settings::from_env()?,
            sdk_config,
            bucket,
            prefix,
            notifier,
            database,
            retention,
            notify_success: env.parse("NOTIFY_SUCCESS", false, "true or false")?,
            min_remaining: Duration::from_secs(env.parse(
                "DUMP_MIN_REMAINING_SECONDS",
                120,
                "a whole number of seconds",
            )?),
            deadline_margin: Duration::from_secs(env.parse(
                "DUMP_DEADLINE_MARGIN_SECONDS",
                15,
                "a whole number of seconds",
            )?),
            split_bytes: split_mb.max(1) * 1024 * 1024,
        })
    }

    /// Handles one invocation; `deadline` is when Lambda will kill it.
    pub async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> Result<Value> {
        match self.run(&event, deadline).await {
            Ok(report) => Ok(report),
            Err(error @ Error::InvalidEvent { .. })
            | Err(error @ Error::Config { .. })
            | Err(error @ Error::Secret { .. }) => {
                // Failures inside the dump notify themselves; these happen before it starts.
                let note = Notification::new(
                    Severity::Critical,
                    "dump function could not start",
                    format!(
                        "The dump function was invoked but did not start a backup.\nCause: {error}"
                    ),
                );
                if let Err(e) = self.notifier.notify(&note).await {
                    tracing::error!("could not send notification: {e}");
                }
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    async fn run(&self, event: &Value, deadline: Option<SystemTime>) -> Result<Value> {
        let event = DumpEvent::parse(event)?;
        tracing::info!(?event, "dump invoked");
        let (label, prefix) = match event {
            DumpEvent::Scheduled { .. } => (None, self.prefix.clone()),
            DumpEvent::Manual(manual) => (
                manual.label,
                manual
                    .prefix
                    .map(|p| format!("{}/", p.trim_matches('/')))
                    .unwrap_or_else(|| self.prefix.clone()),
            ),
        };
        if let Some(left) = remaining(deadline) {
            if left < self.min_remaining {
                let error = Error::Config {
                    variable: "DUMP_MIN_REMAINING_SECONDS".into(),
                    reason: format!(
                        "is {} s, but only {} s of the invocation remain; raise the function's timeout",
                        self.min_remaining.as_secs(),
                        left.as_secs()
                    ),
                };
                return Err(error);
            }
        }
        let url = self.database_url().await?;
        let store: Arc<dyn ObjectStore> = Arc::new(S3Store::new(
            self.s3.clone(),
            self.bucket.clone(),
            prefix,
            self.s3_settings.clone(),
        ));
        let mut options = DumpOptions::new(url);
        options.label = label;
        options.retention = Some(self.retention.clone());
        options.notify_success = self.notify_success;
        options.split_bytes = self.split_bytes;
        let margin = self.deadline_margin;
        let stop_before_deadline = async move {
            match remaining(deadline) {
                Some(left) => {
                    tokio::time::sleep(left.saturating_sub(margin)).await;
                    format!(
                        "the Lambda invocation's deadline is {} s away; stopped before being killed (raise the timeout or memory)",
                        margin.as_secs()
                    )
                }
                None => std::future::pending().await,
            }
        };
        let report = run_dump_until(
            store,
            self.notifier.as_ref(),
            &options,
            stop_before_deadline,
        )
        .await?;
        serde_json::to_value(report).map_err(|e| Error::Task(e.to_string()))
    }

    async fn database_url(&self) -> Result<DatabaseUrl> {
        match &self.database {
            DatabaseSource::Secret {
                client,
                secret_id,
                database,
            } => credentials::from_secret(client, secret_id, database.as_deref())
                .await?
                .with_tls_from_env(),
            DatabaseSource::Url { url, iam } => {
                let url = url.clone().with_tls_from_env()?;
                if *iam {
                    credentials::with_iam_token(&url, &self.sdk_config).await
                } else {
                    Ok(url)
                }
            }
        }
    }
}

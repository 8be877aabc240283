//! What every backup function shares: where backups go, whom to tell, how to reach the
//! database, and how much of the invocation is left.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;

use super::{remaining, Env};
use crate::config::{DatabaseSource, DatabaseUrl, Tls};
use crate::credentials::Credentials;
use crate::defaults;
use crate::error::{Error, Result};
use crate::notify::sns::SnsNotifier;
use crate::notify::{LogNotifier, Notification, Notifier, Severity};
use crate::store::s3::{self, S3Settings, S3Store};
use crate::store::ObjectStore;

pub struct FunctionContext {
    pub name: &'static str,
    sdk_config: SdkConfig,
    s3: aws_sdk_s3::Client,
    s3_settings: S3Settings,
    bucket: String,
    pub prefix: String,
    pub notifier: Arc<dyn Notifier>,
    database: Option<Credentials>,
    /// DATABASE_TLS / DATABASE_TLS_CA_FILE, checked at cold start.
    tls: Option<Tls>,
    pub notify_success: bool,
    /// Refuse to start with less time than this left (a partial backup helps nobody).
    min_remaining: Duration,
    /// Stop this long before the deadline, so the failure is reported instead of killed.
    deadline_margin: Duration,
    /// Warn when a successful run used more than this share of its invocation's time.
    budget_warn_percent: u32,
}

impl FunctionContext {
    /// Reads and checks the shared configuration and builds the clients: once per cold start.
    /// `needs_database`: whether the function talks to a database (the monitor does not).
    pub async fn from_env(
        name: &'static str,
        env: &dyn Env,
        sdk_config: SdkConfig,
        needs_database: bool,
    ) -> Result<Self> {
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
        // How to reach the database, decided as the command line decides it; a URL that does
        // not parse names the variable here.
        let database = DatabaseSource::from_env(env).map_err(|e| match e {
            Error::InvalidDatabaseUrl { .. } => Error::Config {
                variable: "DATABASE_URL".into(),
                reason: format!("is not usable: {e}"),
            },
            other => other,
        })?;
        let database = match database {
            Some(source) => {
                Some(Credentials::new(source, || std::future::ready(sdk_config.clone())).await)
            }
            None if !needs_database => None,
            None => return Err(Error::Config {
                variable: "DATABASE_SECRET_ARN".into(),
                reason:
                    "is not set (nor DATABASE_URL); one of them must say how to reach the database"
                        .into(),
            }),
        };
        let tls = Tls::from_env(env)?;
        let s3_settings = S3Settings::from_env()?;
        Ok(FunctionContext {
            tls,
            name,
            s3: s3::client_for(&s3_settings.retry).await,
            s3_settings,
            sdk_config,
            bucket,
            prefix,
            notifier,
            database,
            notify_success: env.parse("NOTIFY_SUCCESS", false, "true or false")?,
            min_remaining: Duration::from_secs(env.parse(
                "MIN_REMAINING_SECONDS",
                defaults::MIN_REMAINING_SECONDS,
                "a whole number of seconds",
            )?),
            deadline_margin: Duration::from_secs(env.parse(
                "DEADLINE_MARGIN_SECONDS",
                defaults::DEADLINE_MARGIN_SECONDS,
                "a whole number of seconds",
            )?),
            budget_warn_percent: env.parse(
                "BUDGET_WARN_PERCENT",
                defaults::BUDGET_WARN_PERCENT,
                "a whole percentage of the invocation's time",
            )?,
        })
    }

    /// The store, under the configured prefix or another one.
    /// The bucket and the alert topic, as the monitor checks the deployment: the clients of
    /// this cold start.
    pub fn deployment_targets(
        &self,
        topic: Option<String>,
    ) -> crate::monitor::deployment::DeploymentTargets {
        crate::monitor::deployment::DeploymentTargets {
            s3: self.s3.clone(),
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            topic: topic.map(|arn| (aws_sdk_sns::Client::new(&self.sdk_config), arn)),
        }
    }

    pub fn store(&self, prefix: Option<String>) -> Arc<dyn ObjectStore> {
        Arc::new(S3Store::new(
            self.s3.clone(),
            self.bucket.clone(),
            prefix.unwrap_or_else(|| self.prefix.clone()),
            self.s3_settings.clone(),
        ))
    }

    /// Refuses to start when the invocation cannot finish.
    pub fn check_time(&self, deadline: Option<SystemTime>) -> Result<()> {
        match remaining(deadline) {
            Some(left) if left < self.min_remaining => Err(Error::Config {
                variable: "MIN_REMAINING_SECONDS".into(),
                reason: format!(
                    "is {} s, but only {} s of the invocation remain; raise the function's timeout",
                    self.min_remaining.as_secs(),
                    left.as_secs()
                ),
            }),
            _ => Ok(()),
        }
    }

    /// A successful run that took more than `BUDGET_WARN_PERCENT` (60 %) of the time it had is a
    /// warning: the work is outgrowing one invocation, and a person should act before a run
    /// fails (README: "Lambda budget").
    pub async fn warn_if_over_budget(
        &self,
        what: &str,
        started: SystemTime,
        deadline: Option<SystemTime>,
    ) {
        let Some(deadline) = deadline else { return };
        let (Ok(budget), Ok(used)) = (deadline.duration_since(started), started.elapsed()) else {
            return;
        };
        if budget.is_zero() {
            return;
        }
        let percent = used.as_secs_f64() / budget.as_secs_f64() * 100.0;
        if percent <= f64::from(self.budget_warn_percent) {
            return;
        }
        let note = Notification::new(
            Severity::Warning,
            format!("{what} used {percent:.0} % of its Lambda time"),
            format!(
                "The {} function's {what} succeeded but took {:.0} s of the {:.0} s it had ({percent:.0} %, warning above {} %).
                 It will soon not fit one invocation: raise the function's memory (more vCPU) or timeout, or plan the larger-database design in the README (\"Lambda budget\").",
                self.name,
                used.as_secs_f64(),
                budget.as_secs_f64(),
                self.budget_warn_percent
            ),
        );
        crate::job::alert::notify_or_log(self.notifier.as_ref(), &note).await;
    }

    /// The moment a job that stops between steps must stop by: the deadline less the margin.
    pub fn stop_instant(&self, deadline: Option<SystemTime>) -> Option<std::time::Instant> {
        remaining(deadline)
            .map(|left| std::time::Instant::now() + left.saturating_sub(self.deadline_margin))
    }

    /// Completes shortly before the deadline, saying so.
    pub fn stop_before(
        &self,
        deadline: Option<SystemTime>,
    ) -> impl std::future::Future<Output = String> + Send + 'static {
        let margin = self.deadline_margin;
        async move {
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
        }
    }

    pub async fn database_url(&self) -> Result<DatabaseUrl> {
        let Some(database) = &self.database else {
            return Err(Error::Config {
                variable: "DATABASE_SECRET_ARN".into(),
                reason: "is not set (nor DATABASE_URL)".into(),
            });
        };
        database.url(self.tls.clone()).await
    }

    /// A panic in the job: a bug, and the run it interrupted left no backup.
    pub async fn alert_panic(&self, message: &str) {
        let note = Notification::new(
            Severity::Critical,
            format!("{} function failed: it panicked", self.name),
            format!(
                "The {} function stopped on a panic (a bug in the backup tool) and did not finish its job; whatever it wrote has no manifest and is not a backup, and the previous good backup is still the latest.\nPanic: {message}\nRun the job again (a manual invocation) and report the panic message.",
                self.name
            ),
        );
        crate::job::alert::notify_or_log(self.notifier.as_ref(), &note).await;
    }

    /// Failures before the job starts (bad event, configuration, secret) notify here; the
    /// jobs notify their own failures.
    pub async fn refused<T>(&self, outcome: Result<T>) -> Result<T> {
        match outcome {
            Err(
                error @ (Error::InvalidEvent { .. } | Error::Config { .. } | Error::Secret { .. }),
            ) => {
                let note = Notification::new(
                    Severity::Critical,
                    format!("{} function could not start", self.name),
                    format!(
                        "The {} function was invoked but did not start a backup.\nCause: {error}",
                        self.name
                    ),
                );
                crate::job::alert::notify_or_log(self.notifier.as_ref(), &note).await;
                Err(error)
            }
            other => other,
        }
    }
}

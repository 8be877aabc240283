//! The flag groups several commands share: the database connection, the store, the point a
//! restore brings back, retention, change tracking, the deployment's names.

use clap::Args;
use toc_sis_backup::config::{DatabaseSource, DatabaseUrl, Tls};
use toc_sis_backup::credentials::Credentials;
use toc_sis_backup::defaults;
use toc_sis_backup::env::Env;
use toc_sis_backup::incremental::scope::TrackingColumns;
use toc_sis_backup::restore::PointRequest;
use toc_sis_backup::retention::RetentionPolicy;
use toc_sis_backup::Error;

#[derive(Args)]
pub(crate) struct Connection {
    /// mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE. Prefer DATABASE_PASSWORD for the password,
    /// so it never shows in the process list.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        required_unless_present = "database_secret_arn"
    )]
    pub(crate) database_url: Option<String>,
    /// Instead of a URL: a Secrets Manager secret with username, password, host, port and
    /// dbname (an RDS secret), read with the AWS credentials of the environment; how the
    /// restore test's Fargate task connects.
    #[arg(long, env = "DATABASE_SECRET_ARN", conflicts_with = "database_url")]
    pub(crate) database_secret_arn: Option<String>,
    /// The password, when the URL has none.
    #[arg(
        long = "database-password-from-env",
        env = "DATABASE_PASSWORD",
        hide = true,
        hide_env_values = true
    )]
    pub(crate) database_password: Option<String>,
    /// TLS to the database: `on` (encrypted or no connection at all, never plain text) or
    /// `off`. Unset: on when a CA file is given.
    #[arg(long, env = "DATABASE_TLS", value_name = "on|off")]
    pub(crate) database_tls: Option<String>,
    /// PEM file of the CA certificates the database's certificate must chain to (for RDS, the
    /// global bundle, https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem);
    /// turns TLS on. Without it TLS trusts the public web roots only.
    /// Empty (exported as DATABASE_TLS_CA_FILE=) means none.
    #[arg(long, env = "DATABASE_TLS_CA_FILE", value_name = "FILE", value_parser = clap::builder::StringValueParser::new())]
    pub(crate) database_tls_ca_file: Option<String>,
}

impl Connection {
    /// Where the connection comes from, decided by the same code as the Lambda functions'
    /// (`DatabaseSource`), these flags standing for the variables they are read from.
    pub(crate) async fn url(&self) -> Result<DatabaseUrl, Error> {
        let source = DatabaseSource::from_env(self)?.ok_or_else(|| Error::Config {
            variable: "DATABASE_URL".into(),
            reason: "is not set (nor DATABASE_SECRET_ARN)".into(),
        })?;
        let tls = Tls::from_env(self)?;
        let credentials = Credentials::new(source, toc_sis_backup::aws::sdk_config).await;
        credentials.url(tls).await
    }
}

/// The flags by the variables they stand for. The command line has no DATABASE_NAME or
/// DATABASE_IAM_AUTH; clap refuses a URL and a secret together, typed or exported.
impl Env for Connection {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "DATABASE_URL" => self.database_url.clone(),
            "DATABASE_SECRET_ARN" => self.database_secret_arn.clone(),
            "DATABASE_PASSWORD" => self.database_password.clone(),
            "DATABASE_TLS" => self.database_tls.clone(),
            "DATABASE_TLS_CA_FILE" => self.database_tls_ca_file.clone(),
            _ => None,
        }
    }
}

#[derive(Args)]
pub(crate) struct StoreArg {
    /// Where backups live: a folder, or s3://BUCKET/PREFIX (credentials, region and
    /// AWS_ENDPOINT_URL from the standard AWS environment).
    #[arg(long, env = "BACKUP_STORE")]
    pub(crate) store: String,
}

#[derive(Args)]
pub(crate) struct Retention {
    /// Remove daily backups older than this many days…
    #[arg(long, env = "BACKUP_KEEP_DAYS", default_value_t = defaults::BACKUP_KEEP_DAYS)]
    pub(crate) keep_days: u32,
    /// …but always keep at least this many complete backups.
    #[arg(long, env = "BACKUP_KEEP_MIN", default_value_t = defaults::BACKUP_KEEP_MIN)]
    pub(crate) keep_min: usize,
}

impl Retention {
    pub(crate) fn policy(&self) -> RetentionPolicy {
        RetentionPolicy {
            keep_days: self.keep_days,
            keep_min: self.keep_min,
            ..RetentionPolicy::default()
        }
    }
}

/// Which column incrementals track each table's changes by: the incremental's scope, and the
/// tables a full dump keeps a key state for (those that have theirs).
#[derive(Args)]
pub(crate) struct Tracking {
    /// The change-tracking column of every table (a full dump keeps a key state only for
    /// tables that have theirs)…
    #[arg(
        long,
        env = "INCREMENTAL_TRACKING_COLUMN",
        default_value = defaults::INCREMENTAL_TRACKING_COLUMN
    )]
    pub(crate) tracking_column: String,
    /// …except these: table=column,…
    #[arg(long, env = "INCREMENTAL_TRACKING_COLUMNS")]
    pub(crate) tracking_columns: Option<String>,
}

impl Tracking {
    pub(crate) fn columns(&self) -> Result<TrackingColumns, Error> {
        TrackingColumns::parse(
            Some(&self.tracking_column),
            self.tracking_columns.as_deref(),
        )
    }
}

/// Which point a restore brings back; `verify` and `retrieve` take the same flags, so each
/// checks or fetches exactly what that restore reads.
#[derive(Args)]
pub(crate) struct PointArgs {
    /// `latest` (the newest point, full or incremental) or a backup id from `toc-backup list`.
    /// Default: an exported $BACKUP_ID or $RESTORE_AT when no point is typed, else `latest`.
    #[arg(long)]
    pub(crate) backup: Option<String>,
    /// The newest point at or before this time (RFC 3339, e.g. 2026-11-26T10:00:00Z): the
    /// binlog archive replayed to it where it reaches, else the newest backup before it.
    #[arg(long, value_parser = parse_time, conflicts_with = "backup")]
    pub(crate) at: Option<chrono::DateTime<chrono::Utc>>,
    /// Just before the transaction with this GTID (MariaDB 0-1-42, MySQL UUID:N), found with
    /// `toc-backup binlog find`: the binlog archive replayed on the newest full backup before it.
    #[arg(long, value_name = "GTID", conflicts_with_all = ["at", "backup", "before_position"])]
    pub(crate) before_gtid: Option<String>,
    /// Just before the transaction at this binlog position (FILE:POS).
    #[arg(long, value_name = "FILE:POS", conflicts_with_all = ["at", "backup"])]
    pub(crate) before_position: Option<String>,
}

impl PointArgs {
    /// The point typed, else the one exported (`BACKUP_ID`, `RESTORE_AT`), else `latest`. The
    /// environment never conflicts with what is typed: a typed point always wins.
    pub(crate) fn request(&self) -> Result<PointRequest, Error> {
        self.request_or(PointRequest::Backup("latest".into()))
    }

    /// [`Self::request`], with `default` when no point is typed or exported.
    pub(crate) fn request_or(&self, default: PointRequest) -> Result<PointRequest, Error> {
        use toc_sis_backup::binlog::{Gtid, Position, Stop};
        if let Some(gtid) = &self.before_gtid {
            return Ok(PointRequest::Before(Stop::BeforeGtid(Gtid::parse(gtid)?)));
        }
        if let Some(position) = &self.before_position {
            return Ok(PointRequest::Before(Stop::BeforePosition(Position::parse(
                position,
            )?)));
        }
        if let Some(at) = self.at {
            return Ok(PointRequest::At(at));
        }
        if let Some(backup) = &self.backup {
            return Ok(PointRequest::Backup(backup.clone()));
        }
        let exported = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        match (exported("BACKUP_ID"), exported("RESTORE_AT")) {
            (Some(backup), Some(at)) => Err(Error::InvalidValue {
                what: "exported point",
                value: format!("BACKUP_ID={backup} and RESTORE_AT={at}"),
                expected: "one of them exported, or the point typed (--backup, --at)".into(),
            }),
            (Some(backup), None) => Ok(PointRequest::Backup(backup)),
            (None, Some(at)) => {
                parse_time(&at)
                    .map(PointRequest::At)
                    .map_err(|reason| Error::InvalidValue {
                        what: "RESTORE_AT",
                        value: at,
                        expected: reason,
                    })
            }
            (None, None) => Ok(default),
        }
    }
}

/// The names the project users' grants are on (`setup-users` grants them, `doctor` checks them).
#[derive(Args)]
pub(crate) struct DeploymentNames {
    /// The TOC-SIS database the backup user reads.
    #[arg(long, default_value = "toc_sis")]
    pub(crate) database: String,
    /// The restore test's scratch databases are named PREFIX_<time>_<random>.
    #[arg(
        long,
        env = "RESTORE_TEST_DATABASE_PREFIX",
        default_value = defaults::RESTORE_TEST_DATABASE_PREFIX
    )]
    pub(crate) scratch_prefix: String,
}

impl DeploymentNames {
    pub(crate) fn names(&self) -> toc_sis_backup::deploy::users::Names {
        toc_sis_backup::deploy::users::Names {
            database: self.database.clone(),
            scratch_prefix: self.scratch_prefix.clone(),
        }
    }
}

pub(crate) fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2026-11-26T10:00:00Z ({e})"))
}

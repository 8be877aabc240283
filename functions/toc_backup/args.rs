//! The command line: every subcommand's flags, each also read from an environment variable.

use clap::{Args, Parser, Subcommand, ValueEnum};
use toc_sis_backup::config::{DatabaseUrl, Tls};
use toc_sis_backup::incremental::scope::TrackingColumns;
use toc_sis_backup::monitor::aws_checks::RdsTargets;
use toc_sis_backup::monitor::deployment::DeploymentTargets;
use toc_sis_backup::monitor::tiers::parse_tiers;
use toc_sis_backup::monitor::{Configured, MonitorOptions};
use toc_sis_backup::restore::definer::DefinerMode;
use toc_sis_backup::restore::PointRequest;
use toc_sis_backup::retention::RetentionPolicy;
use toc_sis_backup::store::open_store;
use toc_sis_backup::Error;

/// The jobs by what a person wants to do; clap's full list with each one's line follows.
macro_rules! job_groups {
    () => {
        "\
Backup:       dump, incremental, binlog archive, files backup
Restore:      point, restore, retrieve, files restore, files export
Check:        verify, list, status, monitor, restore-test, binlog find, cost, files list, files show
Deploy:       setup-users, doctor
Maintenance:  prune, catalog rebuild, files prune, sample-data, completions, man"
    };
}

#[cfg(test)]
const JOB_GROUPS: &str = job_groups!();

const HELP_TEMPLATE: &str = concat!(
    "{before-help}{about-with-newline}\n{usage-heading} {usage}\n\n",
    job_groups!(),
    "\n\n{all-args}{after-help}"
);

#[derive(Parser)]
#[command(
    name = "toc-backup",
    version,
    about = "Consistent, verified backups of the TOC-SIS database",
    help_template = HELP_TEMPLATE
)]
pub(crate) struct Cli {
    /// Log format: human-readable lines, or one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub(crate) log_format: LogFormat,
    /// Without a terminal (or with --log-format json): log a progress line this often, in
    /// seconds (on a terminal a bar is drawn instead).
    #[arg(long, env = "PROGRESS_SECONDS", default_value_t = 30, global = true)]
    pub(crate) progress_seconds: u64,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Take a full, consistent backup of a database into a store.
    Dump(DumpArgs),
    /// Back up what changed in the Tier 1 and 2 tables since the chain's previous point.
    Incremental(IncrementalArgs),
    /// Load a backup into a database and verify it against the manifest.
    Restore(RestoreArgs),
    /// Re-read a backup and check every file's checksum.
    Verify(VerifyArgs),
    /// Ask S3 to bring an archived backup (Glacier, Deep Archive) back for a restore; run again
    /// to see each file's progress.
    Retrieve(RetrieveArgs),
    /// Pin the point a restore brings back: print the flags (--at, --before-position or
    /// --backup) that name the same data now and hours later, after the binlog archive and the
    /// backups have grown.
    Point(PinArgs),
    /// Show the backups in a store, newest first.
    List(ListArgs),
    /// Apply the retention policy: remove old daily backups.
    Prune(PruneArgs),
    /// Check every tier's freshness, integrity and anomalies, and alert on changes.
    Monitor(MonitorArgs),
    /// Print the monitor's checks for a person (no alerts).
    Status(MonitorArgs),
    /// Restore the latest backup into a scratch database, verify it, time it, drop it.
    RestoreTest(RestoreTestArgs),
    /// Tier 3 file backups: deduplicated snapshots of uploads and the application tree.
    Files {
        #[command(subcommand)]
        command: crate::files::FilesCommand,
    },
    /// Create or update the three database users the jobs connect as (backup, binlog, restore
    /// test), with exactly the privileges each needs, as the RDS master user.
    SetupUsers(SetupUsersArgs),
    /// Check the whole deployment: server settings, the project users' grants, the bucket,
    /// the alert subscriptions and the RDS instance; one line per finding with its fix.
    /// Exit 0 OK, 1 WARNING, 2 CRITICAL.
    Doctor(DoctorArgs),
    /// Estimate the stack's monthly bill: S3 today, and at steady state what grows with the
    /// backups' real sizes and what the deployed stack pays whatever their size.
    Cost(CostArgs),
    /// The catalog index (`catalog/index.json.gz`) that list, status, incremental and restore read.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// The binlog archive for point-in-time restore: `archive` streams the server's binlog into
    /// the store; `find` lists the archived transactions that touched a table.
    Binlog {
        #[command(subcommand)]
        command: BinlogCommand,
    },
    /// Create the sample TOC-SIS database.
    SampleData(SampleArgs),
    /// Print shell completions to install (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to install as toc-backup.1.
    Man,
}

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
    pub(crate) async fn url(&self) -> Result<DatabaseUrl, Error> {
        let url = match (&self.database_url, &self.database_secret_arn) {
            (Some(url), _) => DatabaseUrl::parse(url)?,
            (None, Some(secret)) => {
                let client =
                    aws_sdk_secretsmanager::Client::new(&toc_sis_backup::aws::sdk_config().await);
                toc_sis_backup::credentials::from_secret(&client, secret, None).await?
            }
            (None, None) => {
                return Err(Error::Config {
                    variable: "DATABASE_URL".into(),
                    reason: "is not set (nor DATABASE_SECRET_ARN)".into(),
                })
            }
        };
        let url = match (&self.database_password, url.password()) {
            (Some(password), None) => DatabaseUrl::from_parts(
                url.user.clone(),
                Some(password.clone()),
                url.host.clone(),
                url.port,
                url.database.clone(),
            ),
            _ => url,
        };
        let tls = Tls::from_settings(
            self.database_tls.as_deref(),
            self.database_tls_ca_file
                .as_deref()
                .filter(|file| !file.is_empty())
                .map(std::path::PathBuf::from),
        )?;
        Ok(url.with_tls(tls))
    }
}

/// `--definer` of `restore` (`restore-test` has its own, [`TestDefinerArg`]).
#[derive(Args)]
pub(crate) struct DefinerArg {
    /// `keep`: create views, routines, triggers and events with the DEFINER the backup
    /// recorded (needs SUPER, or SET USER on MariaDB / SET_USER_ID on MySQL, for other
    /// accounts). `current`: create them as the restoring user (what a fresh RDS master can).
    #[arg(
        long = "definer",
        env = "RESTORE_DEFINER",
        default_value = "keep",
        value_name = "keep|current"
    )]
    pub(crate) mode: DefinerMode,
}

/// `--definer` of `restore-test`: `current` unless told otherwise, so the unattended monthly
/// test runs as a user confined to its scratch databases, who cannot create objects for
/// another account (`toc-backup setup-users`).
#[derive(Args)]
pub(crate) struct TestDefinerArg {
    /// `current` (the default): create views, routines, triggers and events as the test user;
    /// definitions are still verified, without their DEFINER clause. `keep`: with the DEFINER
    /// the backup recorded (needs SUPER or SET USER / SET_USER_ID for other accounts).
    #[arg(
        long = "definer",
        env = "RESTORE_DEFINER",
        default_value = "current",
        value_name = "current|keep"
    )]
    pub(crate) mode: DefinerMode,
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
    #[arg(long, env = "BACKUP_KEEP_DAYS", default_value_t = 30)]
    pub(crate) keep_days: u32,
    /// …but always keep at least this many complete backups.
    #[arg(long, env = "BACKUP_KEEP_MIN", default_value_t = 7)]
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
        default_value = "updated_at"
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

#[derive(Args)]
pub(crate) struct DumpArgs {
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// A note kept in the manifest.
    #[arg(long, env = "BACKUP_LABEL")]
    pub(crate) label: Option<String>,
    #[command(flatten)]
    pub(crate) retention: Retention,
    /// Keep every backup (skip retention after the dump).
    #[arg(long, env = "BACKUP_NO_PRUNE")]
    pub(crate) no_prune: bool,
    /// Start a new data file after this many MiB of SQL, so restores can load in parallel.
    #[arg(long, env = "BACKUP_SPLIT_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) split_mb: u64,
    /// gzip level, 1 (fast) to 9 (small).
    #[arg(long, env = "BACKUP_COMPRESSION_LEVEL", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub(crate) compression_level: u32,
    /// Connections reading tables at once, all on one proven-identical snapshot (one when the
    /// server cannot prove it).
    #[arg(long, env = "BACKUP_DUMP_JOBS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub(crate) jobs: u16,
    /// Record the accounts' password hashes in the accounts file (otherwise a restore with
    /// --with-accounts recreates them locked, to be given a password).
    #[arg(long, env = "BACKUP_PASSWORD_HASHES")]
    pub(crate) with_password_hashes: bool,
    /// Back up the rest when the database holds objects this tool cannot back up faithfully
    /// (MariaDB packages), leaving those out with a warning (without it the dump refuses).
    #[arg(long, env = "BACKUP_SKIP_UNSUPPORTED")]
    pub(crate) skip_unsupported: bool,
    #[command(flatten)]
    pub(crate) tracking: Tracking,
    /// Also notify on success (failures always notify).
    #[arg(long, env = "NOTIFY_SUCCESS")]
    pub(crate) notify_success: bool,
    /// Send notifications to this SNS topic instead of the log.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    pub(crate) sns_topic_arn: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct IncrementalArgs {
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// Comma-separated tables to track (default: the Tier 1 and Tier 2 tables).
    #[arg(long, env = "INCREMENTAL_TABLES")]
    pub(crate) tables: Option<String>,
    #[command(flatten)]
    pub(crate) tracking: Tracking,
    /// Minutes before the previous point whose changes are written again regardless.
    #[arg(long, env = "INCREMENTAL_OVERLAP_MINUTES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=1440))]
    pub(crate) overlap_minutes: u32,
    /// Take a full backup when there is none to start a chain from.
    #[arg(long, env = "INCREMENTAL_FULL_IF_MISSING")]
    pub(crate) full_if_missing: bool,
    /// Also notify when the job succeeds (default: only failures and warnings).
    #[arg(long, env = "NOTIFY_SUCCESS")]
    pub(crate) notify_success: bool,
    /// Send alerts to this SNS topic instead of the log.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    pub(crate) sns_topic_arn: Option<String>,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    pub(crate) json: bool,
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

#[derive(Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(flatten)]
    pub(crate) store: StoreArg,
    #[command(flatten)]
    pub(crate) point: PointArgs,
    /// The database to restore into; created if missing.
    #[arg(long, env = "TARGET_DATABASE")]
    pub(crate) target_database: String,
    /// Replace the target database's contents if it is not empty.
    #[arg(long, conflicts_with = "resume")]
    pub(crate) force: bool,
    /// Continue an interrupted restore of the same backup into the target database, without
    /// loading again the files it finished.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Connections loading data at once.
    #[arg(long, env = "RESTORE_JOBS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) jobs: u16,
    #[command(flatten)]
    pub(crate) definer: DefinerArg,
    /// Load the rows of these tables only (comma-separated; the others are created empty):
    /// a scratch database to copy rows back from, e.g. with --before-gtid.
    #[arg(long, value_name = "TABLE,…")]
    pub(crate) tables: Option<String>,
    /// Also recreate the accounts and grants the backup recorded (locked and without a
    /// password unless the dump kept password hashes; grants moved to the target database).
    /// Needs CREATE USER and the GRANT OPTION.
    #[arg(long)]
    pub(crate) with_accounts: bool,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    #[command(flatten)]
    pub(crate) point: PointArgs,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct SetupUsersArgs {
    /// The master user's connection: mysql://MASTER@HOST[:PORT]/ (its password in
    /// DATABASE_PASSWORD).
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(flatten)]
    pub(crate) names: DeploymentNames,
    /// The users to set up.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [UserArg::Backup, UserArg::Binlog, UserArg::RestoreTest])]
    pub(crate) users: Vec<UserArg>,
    /// Take the user names and passwords from the secrets the stack generated
    /// (STACK/database/backup, STACK/database/binlog, STACK/database/restore-test) instead of
    /// TOC_BACKUP_PASSWORD, TOC_BINLOG_PASSWORD and TOC_RESTORE_TEST_PASSWORD.
    #[arg(long, value_name = "STACK")]
    pub(crate) from_stack_secrets: Option<String>,
    /// Print the SQL it would run (passwords as placeholders) and what the master user lacks
    /// for it, and change nothing.
    #[arg(long)]
    pub(crate) print: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The names the project users' grants are on (`setup-users` grants them, `doctor` checks them).
#[derive(Args)]
pub(crate) struct DeploymentNames {
    /// The TOC-SIS database the backup user reads.
    #[arg(long, default_value = "toc_sis")]
    pub(crate) database: String,
    /// The restore test's scratch databases are named PREFIX_<time>.
    #[arg(
        long,
        env = "RESTORE_TEST_DATABASE_PREFIX",
        default_value = "toc_sis_restore_test"
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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum UserArg {
    Backup,
    Binlog,
    RestoreTest,
}

impl From<UserArg> for toc_sis_backup::deploy::users::Role {
    fn from(user: UserArg) -> Self {
        use toc_sis_backup::deploy::users::Role;
        match user {
            UserArg::Backup => Role::Backup,
            UserArg::Binlog => Role::Binlog,
            UserArg::RestoreTest => Role::RestoreTest,
        }
    }
}

#[derive(Args)]
pub(crate) struct DoctorArgs {
    /// The server, connected as the master user (it reads the project users' grants):
    /// mysql://MASTER@HOST[:PORT]/
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(flatten)]
    pub(crate) store: StoreArg,
    #[command(flatten)]
    pub(crate) names: DeploymentNames,
    /// The alert topic (the stack's AlertTopicArn output): a confirmed subscription is needed.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    pub(crate) sns_topic_arn: Option<String>,
    /// The RDS instance: its backup retention, parameter group and pending reboot.
    #[arg(long, env = "MONITOR_RDS_INSTANCE")]
    pub(crate) rds_instance: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct PinArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// The point wanted, as every restore command takes it (an exported $RESTORE_AT or
    /// $BACKUP_ID too). Default: now, through the binlog archive as far as it reaches.
    #[command(flatten)]
    pub(crate) point: PointArgs,
}

#[derive(Args)]
pub(crate) struct RetrieveArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// The point a restore will load: its whole chain (full backup and incrementals) and the
    /// binlog segments a replay to it reads are retrieved.
    #[command(flatten)]
    pub(crate) point: PointArgs,
    /// S3 retrieval tier: Bulk (cheapest; up to 12 h, 48 h from Deep Archive), Standard (3-5 h,
    /// 12 h from Deep Archive) or Expedited (minutes; not from Deep Archive).
    #[arg(long, value_enum, default_value_t = TierArg::Bulk)]
    pub(crate) tier: TierArg,
    /// Days the retrieved copies stay readable (1-30); they cost as S3 Standard meanwhile.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub(crate) days: u32,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TierArg {
    #[value(name = "Bulk", alias = "bulk")]
    Bulk,
    #[value(name = "Standard", alias = "standard")]
    Standard,
    #[value(name = "Expedited", alias = "expedited")]
    Expedited,
}

impl TierArg {
    pub(crate) fn tier(self) -> toc_sis_backup::store::RetrievalTier {
        use toc_sis_backup::store::RetrievalTier;
        match self {
            TierArg::Bulk => RetrievalTier::Bulk,
            TierArg::Standard => RetrievalTier::Standard,
            TierArg::Expedited => RetrievalTier::Expedited,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum CatalogCommand {
    /// Write the index afresh from every manifest in the store (after it was reported damaged,
    /// or after backups were added or removed by hand).
    Rebuild(CatalogArgs),
}

#[derive(Args)]
pub(crate) struct CatalogArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// Also show unfinished or failed runs.
    #[arg(long)]
    pub(crate) all: bool,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    #[command(flatten)]
    pub(crate) retention: Retention,
    /// Delete exactly these backups (repeat the option) instead of applying the policy; the
    /// incrementals of a named full backup go with it.
    #[arg(long = "backup", value_name = "ID")]
    pub(crate) backups: Vec<String>,
    /// In an S3 store, where the bucket's lifecycle and Object Lock keep backups for years:
    /// delete the named backups all the same.
    #[arg(long, requires = "backups")]
    pub(crate) override_bucket_retention: bool,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct MonitorArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// Tiers as JSON: [{"name": "Tier 1", "rpo_minutes": 60, "tables": [...]}, ...]
    /// (default: the strategy document's three tiers).
    #[arg(long, env = "MONITOR_TIERS")]
    pub(crate) tiers: Option<String>,
    /// Share of a table's rows whose loss between backups is an anomaly.
    #[arg(long, env = "MONITOR_ROW_DROP_PERCENT", default_value_t = 5.0)]
    pub(crate) row_drop_percent: f64,
    /// Re-read every file of the latest chain instead of comparing sizes.
    #[arg(long, env = "MONITOR_DEEP")]
    pub(crate) deep: bool,
    /// `monitor` re-reads every file anyway when its last deep check is this many hours old.
    #[arg(long, env = "MONITOR_DEEP_EVERY_HOURS", default_value_t = 24)]
    pub(crate) deep_every_hours: u32,
    /// Hours between reminders while a problem lasts.
    #[arg(long, env = "MONITOR_REMINDER_HOURS", default_value_t = 4)]
    pub(crate) reminder_hours: u32,
    /// Days within which a restore test must have passed (0: not checked).
    #[arg(long, env = "MONITOR_RESTORE_TEST_DAYS", default_value_t = 0)]
    pub(crate) restore_test_days: u32,
    /// Check as if it were this time (RFC 3339); for drills and tests.
    #[arg(long, value_parser = parse_time)]
    pub(crate) now: Option<chrono::DateTime<chrono::Utc>>,
    /// Also check this RDS instance's automated backups and point-in-time recovery.
    #[arg(long, env = "MONITOR_RDS_INSTANCE")]
    pub(crate) rds_instance: Option<String>,
    /// …and that this read replica replicates.
    #[arg(long, env = "MONITOR_RDS_REPLICA")]
    pub(crate) rds_replica: Option<String>,
    /// Minutes the RDS latest restorable time may lag.
    #[arg(long, env = "MONITOR_PITR_MAX_MINUTES", default_value_t = 15)]
    pub(crate) pitr_max_minutes: u32,
    /// The replica store (cross-region copy), e.g. s3://toc-backups-replica/prod.
    #[arg(long, env = "MONITOR_REPLICA_STORE")]
    pub(crate) replica_store: Option<String>,
    /// With the binlog archive on: its lag above this many minutes is a warning, above three
    /// times a critical alert.
    #[arg(long, env = "MONITOR_BINLOG_RPO_MINUTES", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub(crate) binlog_rpo_minutes: u32,
    /// Whether the files function is deployed (true|false; unset: judged from the store).
    /// Deployed and no snapshot is CRITICAL; not deployed is "not configured".
    #[arg(long, env = "MONITOR_FILE_BACKUPS", value_name = "true|false")]
    pub(crate) file_backups: Option<String>,
    /// Whether the binlog archive is deployed (true|false; unset: judged from the store).
    #[arg(long, env = "MONITOR_BINLOG_ARCHIVE", value_name = "true|false")]
    pub(crate) binlog_archive: Option<String>,
    /// Also check the bucket's protections (versioning, Object Lock, default encryption,
    /// replication, lifecycle) and, with --sns-topic-arn, that an alert subscription is
    /// confirmed: what `doctor` checks of the store, on every run.
    #[arg(long, env = "MONITOR_DEPLOYMENT_CHECKS")]
    pub(crate) deployment_checks: bool,
    /// Send alerts to this SNS topic instead of the log.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    pub(crate) sns_topic_arn: Option<String>,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    pub(crate) json: bool,
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

    pub(crate) async fn options(&self) -> Result<MonitorOptions, Error> {
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
            ..MonitorOptions::default()
        })
    }
}

#[derive(Args)]
pub(crate) struct RestoreTestArgs {
    /// The server that takes the scratch database: mysql://USER[:PASS]@HOST[:PORT]/
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// The scratch database's name starts with this.
    #[arg(
        long,
        env = "RESTORE_TEST_DATABASE_PREFIX",
        default_value = "toc_sis_restore_test"
    )]
    pub(crate) database_prefix: String,
    /// Connections loading data at once.
    #[arg(long, env = "RESTORE_JOBS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) jobs: u16,
    #[command(flatten)]
    pub(crate) definer: TestDefinerArg,
    /// Send alerts to this SNS topic instead of the log.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    pub(crate) sns_topic_arn: Option<String>,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct CostArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    pub(crate) json: bool,
    /// A JSON file with the prices to use instead of the built-in table (any of the fields of
    /// the `prices` object that `--json` prints).
    #[arg(long, env = "COST_PRICES_FILE", value_name = "FILE")]
    pub(crate) prices: Option<std::path::PathBuf>,
    /// The stack was deployed with ReplicationTimeControl=Disabled.
    #[arg(long)]
    pub(crate) no_replication_time_control: bool,
    /// The template's NetworkPath: vpc-endpoints (the stack's interface endpoints, billed per
    /// zone and hour) or existing-nat (none; the NAT bills the S3 traffic per GB).
    #[arg(long, value_name = "PATH", default_value = "vpc-endpoints", value_parser = ["vpc-endpoints", "existing-nat"])]
    pub(crate) network_path: String,
    /// Availability Zones of SubnetIds: each interface endpoint is billed once per zone.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=6))]
    pub(crate) availability_zones: u32,
    /// The stack was deployed with RestoreTestImageUri: the restore test runs as the ECS
    /// Fargate task (and, with vpc-endpoints, three more endpoints).
    #[arg(long, alias = "fargate")]
    pub(crate) restore_test_on_fargate: bool,
    /// What one run writes to CloudWatch Logs, Lambda's start and report records included.
    #[arg(long, value_name = "BYTES", default_value_t = toc_sis_backup::cost::bill::LOG_BYTES_PER_INVOCATION as u64)]
    pub(crate) log_bytes_per_run: u64,
}

#[derive(Args)]
pub(crate) struct SampleArgs {
    #[command(flatten)]
    pub(crate) connection: Connection,
    /// 1 is a small college (a few MB); the data grows linearly.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub(crate) scale: u32,
    /// Seed of the random generator: the same seed makes the same data.
    #[arg(long, default_value_t = 2026)]
    pub(crate) seed: u64,
    /// Drop the database first if it already has tables.
    #[arg(long)]
    pub(crate) replace: bool,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2026-11-26T10:00:00Z ({e})"))
}

#[derive(Subcommand)]
pub(crate) enum BinlogCommand {
    /// Archive the binlog from where the archive ends (the first time: from the latest full
    /// backup's snapshot) to the server's current end, in sealed segments.
    Archive(BinlogArchiveArgs),
    /// List the archived transactions that changed a table: time, GTID, position, rows.
    Find(BinlogFindArgs),
}

#[derive(Args)]
pub(crate) struct BinlogArchiveArgs {
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// The server id this tool registers with as a replica: unique among the source's
    /// replicas (a second connection with the same id is cut off by the server).
    #[arg(long, env = "BINLOG_REPLICA_SERVER_ID", default_value_t = toc_sis_backup::binlog::archive::DEFAULT_REPLICA_SERVER_ID)]
    pub(crate) replica_server_id: u32,
    /// Cut a segment after the transaction that takes it past this many MiB (uncompressed).
    #[arg(long, env = "BINLOG_SEGMENT_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub(crate) segment_mb: u64,
    /// Stop between transactions after this many seconds (the next run goes on from there).
    #[arg(long, env = "BINLOG_MAX_SECONDS")]
    pub(crate) max_seconds: Option<u64>,
    /// Alerts (a gap, a failure) go to this SNS topic instead of the log.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    pub(crate) sns_topic_arn: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct BinlogFindArgs {
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// The table whose changes to list.
    #[arg(long)]
    pub(crate) table: String,
    /// The database the table is in (default: the database the full backups are of).
    #[arg(long)]
    pub(crate) database: Option<String>,
    /// Only transactions committed at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub(crate) from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only transactions committed at or before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub(crate) to: Option<chrono::DateTime<chrono::Utc>>,
    /// Only changes of rows whose COLUMN had VALUE before or after (e.g. student_id=1042).
    #[arg(long, value_name = "COLUMN=VALUE")]
    pub(crate) where_column: Option<String>,
    /// Print the transactions as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every flag of every command says what it does (its default and environment variable
    /// are printed by clap beside it).
    #[test]
    fn every_argument_of_every_command_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                if help.trim().is_empty() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (no description)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "toc-backup", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without help:\n{}",
            missing.join("\n")
        );
    }

    /// Every `--flag` a message of the tool names (string literals in the library and the
    /// command line) is a real flag of some command: a hint must never send a tired person to
    /// an option that does not exist.
    #[test]
    fn every_flag_named_in_a_message_exists() {
        fn flags(command: &clap::Command, into: &mut std::collections::BTreeSet<String>) {
            for arg in command.get_arguments() {
                if let Some(long) = arg.get_long() {
                    into.insert(format!("--{long}"));
                }
            }
            for sub in command.get_subcommands() {
                flags(sub, into);
            }
        }
        let mut known = std::collections::BTreeSet::new();
        flags(&Cli::command(), &mut known);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut unknown = Vec::new();
        for dir in ["shared", "functions"] {
            for entry in walkdir::WalkDir::new(root.join(dir)) {
                let entry = entry.expect("source tree");
                if entry.path().extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(entry.path()).expect("source file");
                for (number, line) in text.lines().enumerate() {
                    let code = line.trim_start();
                    if code.starts_with("//") || !code.contains('"') {
                        continue;
                    }
                    let bytes = line.as_bytes();
                    let mut at = 0;
                    while let Some(found) = line[at..].find("--") {
                        let start = at + found;
                        at = start + 2;
                        let before_ok = start == 0
                            || !(bytes[start - 1].is_ascii_alphanumeric()
                                || bytes[start - 1] == b'-');
                        let name: String = line[start + 2..]
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                            .collect();
                        if !before_ok
                            || name.is_empty()
                            || !name.starts_with(|c: char| c.is_ascii_lowercase())
                        {
                            continue;
                        }
                        let flag = format!("--{}", name.trim_end_matches('-'));
                        if !known.contains(&flag) {
                            unknown.push(format!(
                                "{}:{} {flag}",
                                entry.path().display(),
                                number + 1
                            ));
                        }
                    }
                }
            }
        }
        assert!(
            unknown.is_empty(),
            "messages name flags no command has:\n{}",
            unknown.join("\n")
        );
    }

    /// The grouped overview names every job, and the template shows the same groups.
    #[test]
    fn the_job_groups_name_every_command() {
        let command = Cli::command();
        assert!(super::HELP_TEMPLATE.contains(super::JOB_GROUPS));
        for sub in command.get_subcommands() {
            let name = sub.get_name();
            let nested: Vec<&str> = sub.get_subcommands().map(|s| s.get_name()).collect();
            if nested.is_empty() {
                assert!(super::JOB_GROUPS.contains(name), "{name} is in no group");
            }
            for inner in nested {
                let full = format!("{name} {inner}");
                assert!(super::JOB_GROUPS.contains(&full), "{full} is in no group");
            }
        }
    }
}

//! `toc-backup`: the backup jobs from a shell, against a local folder and the log by default.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use toc_sis_backup::config::DatabaseUrl;
use toc_sis_backup::dump::{run_dump_until, DumpOptions};
use toc_sis_backup::incremental::{run_incremental_until, IncrementalOptions, Scope};
use toc_sis_backup::monitor::aws_checks::RdsTargets;
use toc_sis_backup::monitor::restore_test::{run_restore_test, RestoreTestOptions};
use toc_sis_backup::monitor::tiers::parse_tiers;
use toc_sis_backup::monitor::{check_all, run_monitor, MonitorOptions, MonitorReport};
use toc_sis_backup::notify::sns::SnsNotifier;
use toc_sis_backup::notify::{LogNotifier, Notifier};
use toc_sis_backup::restore::{run_restore, RestoreOptions};
use toc_sis_backup::retention::RetentionPolicy;
use toc_sis_backup::store::{open_store, ObjectStore};
use toc_sis_backup::{catalog, retention, sample_data, verify, Error};

#[derive(Parser)]
#[command(
    name = "toc-backup",
    version,
    about = "Consistent, verified backups of the TOC-SIS database"
)]
struct Cli {
    /// Log format: human-readable lines, or one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Take a full, consistent backup of a database into a store.
    Dump(DumpArgs),
    /// Back up what changed in the Tier 1 and 2 tables since the chain's previous point.
    Incremental(IncrementalArgs),
    /// Load a backup into a database and verify it against the manifest.
    Restore(RestoreArgs),
    /// Re-read a backup and check every file's checksum.
    Verify(VerifyArgs),
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
    /// Estimate the monthly S3 cost from the backups' real sizes, today and at steady state.
    Cost(CostArgs),
    /// Create the sample TOC-SIS database.
    SampleData(SampleArgs),
}

#[derive(Args)]
struct Connection {
    /// mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE. Prefer DATABASE_PASSWORD for the password,
    /// so it never shows in the process list.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The password, when the URL has none.
    #[arg(
        long = "database-password-from-env",
        env = "DATABASE_PASSWORD",
        hide = true,
        hide_env_values = true
    )]
    database_password: Option<String>,
}

impl Connection {
    fn url(&self) -> Result<DatabaseUrl, Error> {
        let url = DatabaseUrl::parse(&self.database_url)?;
        Ok(match (&self.database_password, url.password()) {
            (Some(password), None) => DatabaseUrl::from_parts(
                url.user.clone(),
                Some(password.clone()),
                url.host.clone(),
                url.port,
                url.database.clone(),
            ),
            _ => url,
        })
    }
}

#[derive(Args)]
struct StoreArg {
    /// Where backups live: a folder, or s3://BUCKET/PREFIX (credentials, region and
    /// AWS_ENDPOINT_URL from the standard AWS environment).
    #[arg(long, env = "BACKUP_STORE")]
    store: String,
}

#[derive(Args)]
struct Retention {
    /// Remove daily backups older than this many days…
    #[arg(long, env = "BACKUP_KEEP_DAYS", default_value_t = 30)]
    keep_days: u32,
    /// …but always keep at least this many complete backups.
    #[arg(long, env = "BACKUP_KEEP_MIN", default_value_t = 7)]
    keep_min: usize,
}

impl Retention {
    fn policy(&self) -> RetentionPolicy {
        RetentionPolicy {
            keep_days: self.keep_days,
            keep_min: self.keep_min,
            ..RetentionPolicy::default()
        }
    }
}

#[derive(Args)]
struct DumpArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    store: StoreArg,
    /// A note kept in the manifest.
    #[arg(long, env = "BACKUP_LABEL")]
    label: Option<String>,
    #[command(flatten)]
    retention: Retention,
    /// Keep every backup (skip retention after the dump).
    #[arg(long, env = "BACKUP_NO_PRUNE")]
    no_prune: bool,
    /// Start a new data file after this many MiB of SQL, so restores can load in parallel.
    #[arg(long, env = "BACKUP_SPLIT_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    split_mb: u64,
    /// gzip level, 1 (fast) to 9 (small).
    #[arg(long, env = "BACKUP_COMPRESSION_LEVEL", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=9))]
    compression_level: u32,
    /// Also notify on success (failures always notify).
    #[arg(long, env = "NOTIFY_SUCCESS")]
    notify_success: bool,
    /// Send notifications to this SNS topic instead of the log.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    sns_topic_arn: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct IncrementalArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    store: StoreArg,
    /// Comma-separated tables to track (default: the Tier 1 and Tier 2 tables).
    #[arg(long, env = "INCREMENTAL_TABLES")]
    tables: Option<String>,
    /// The change-tracking column of every table…
    #[arg(
        long,
        env = "INCREMENTAL_TRACKING_COLUMN",
        default_value = "updated_at"
    )]
    tracking_column: String,
    /// …except these: table=column,…
    #[arg(long, env = "INCREMENTAL_TRACKING_COLUMNS")]
    tracking_columns: Option<String>,
    /// Minutes before the previous point whose changes are written again regardless.
    #[arg(long, env = "INCREMENTAL_OVERLAP_MINUTES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=1440))]
    overlap_minutes: u32,
    /// Take a full backup when there is none to start a chain from.
    #[arg(long, env = "INCREMENTAL_FULL_IF_MISSING")]
    full_if_missing: bool,
    #[arg(long, env = "NOTIFY_SUCCESS")]
    notify_success: bool,
    #[arg(long, env = "SNS_TOPIC_ARN")]
    sns_topic_arn: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RestoreArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    store: StoreArg,
    /// `latest` (the newest point, full or incremental) or a backup id from `toc-backup list`.
    #[arg(long, env = "BACKUP_ID", default_value = "latest")]
    backup: String,
    /// Restore the newest point at or before this time (RFC 3339, e.g. 2026-11-26T10:00:00Z).
    #[arg(long, env = "RESTORE_AT", value_parser = parse_time, conflicts_with = "backup")]
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// The database to restore into; created if missing.
    #[arg(long, env = "TARGET_DATABASE")]
    target_database: String,
    /// Replace the target database's contents if it is not empty.
    #[arg(long)]
    force: bool,
    /// Connections loading data at once.
    #[arg(long, env = "RESTORE_JOBS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    store: StoreArg,
    #[arg(long, env = "BACKUP_ID", default_value = "latest")]
    backup: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Also show unfinished or failed runs.
    #[arg(long)]
    all: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PruneArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    retention: Retention,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct MonitorArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Tiers as JSON: [{"name": "Tier 1", "rpo_minutes": 60, "tables": [...]}, ...]
    /// (default: the strategy document's three tiers).
    #[arg(long, env = "MONITOR_TIERS")]
    tiers: Option<String>,
    /// Share of a table's rows whose loss between backups is an anomaly.
    #[arg(long, env = "MONITOR_ROW_DROP_PERCENT", default_value_t = 5.0)]
    row_drop_percent: f64,
    /// Re-read every file of the latest chain instead of comparing sizes.
    #[arg(long, env = "MONITOR_DEEP")]
    deep: bool,
    /// `monitor` re-reads every file anyway when its last deep check is this many hours old.
    #[arg(long, env = "MONITOR_DEEP_EVERY_HOURS", default_value_t = 24)]
    deep_every_hours: u32,
    /// Hours between reminders while a problem lasts.
    #[arg(long, env = "MONITOR_REMINDER_HOURS", default_value_t = 4)]
    reminder_hours: u32,
    /// Days within which a restore test must have passed (0: not checked).
    #[arg(long, env = "MONITOR_RESTORE_TEST_DAYS", default_value_t = 0)]
    restore_test_days: u32,
    /// Check as if it were this time (RFC 3339); for drills and tests.
    #[arg(long, value_parser = parse_time)]
    now: Option<chrono::DateTime<chrono::Utc>>,
    /// Also check this RDS instance's automated backups and point-in-time recovery.
    #[arg(long, env = "MONITOR_RDS_INSTANCE")]
    rds_instance: Option<String>,
    /// …and that this read replica replicates.
    #[arg(long, env = "MONITOR_RDS_REPLICA")]
    rds_replica: Option<String>,
    /// Minutes the RDS latest restorable time may lag.
    #[arg(long, env = "MONITOR_PITR_MAX_MINUTES", default_value_t = 15)]
    pitr_max_minutes: u32,
    /// The replica store (cross-region copy), e.g. s3://toc-backups-replica/prod.
    #[arg(long, env = "MONITOR_REPLICA_STORE")]
    replica_store: Option<String>,
    #[arg(long, env = "SNS_TOPIC_ARN")]
    sns_topic_arn: Option<String>,
    #[arg(long)]
    json: bool,
}

impl MonitorArgs {
    async fn options(&self) -> Result<MonitorOptions, Error> {
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
            ..MonitorOptions::default()
        })
    }
}

#[derive(Args)]
struct RestoreTestArgs {
    /// The server that takes the scratch database: mysql://USER[:PASS]@HOST[:PORT]/
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    store: StoreArg,
    /// The scratch database's name starts with this.
    #[arg(
        long,
        env = "RESTORE_TEST_DATABASE_PREFIX",
        default_value = "toc_sis_restore_test"
    )]
    database_prefix: String,
    #[arg(long, env = "RESTORE_JOBS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    #[arg(long, env = "SNS_TOPIC_ARN")]
    sns_topic_arn: Option<String>,
    #[arg(long)]
    json: bool,
}

fn print_checks(report: &MonitorReport) -> String {
    let mut lines = vec![format!("overall: {}", report.status)];
    for check in &report.checks {
        lines.push(format!(
            "{:<9} {:<22} {}",
            check.status.to_string(),
            check.name,
            check.reason
        ));
    }
    lines.join("\n")
}

#[derive(Args)]
struct CostArgs {
    #[command(flatten)]
    store: StoreArg,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SampleArgs {
    #[command(flatten)]
    connection: Connection,
    /// 1 is a small college (a few MB); the data grows linearly.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10000))]
    scale: u32,
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Drop the database first if it already has tables.
    #[arg(long)]
    replace: bool,
    #[arg(long)]
    json: bool,
}

fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2026-11-26T10:00:00Z ({e})"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log_format = cli.log_format;
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if matches!(log_format, LogFormat::Json) {
                tracing::error!(error = %e, "command failed");
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on Ctrl-C or SIGTERM (what cron, systemd and container runtimes send), naming it.
async fn shutdown_signal() -> String {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return "received Ctrl-C (SIGINT)".into(),
                _ = term.recv() => return "received SIGTERM".into(),
            }
        }
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => "received Ctrl-C (SIGINT)".into(),
        Err(_) => std::future::pending().await,
    }
}

async fn store(arg: &StoreArg) -> Result<Arc<dyn ObjectStore>, Error> {
    open_store(&arg.store).await
}

/// SNS when a topic is configured, the log otherwise.
async fn notifier(topic_arn: Option<&str>) -> Arc<dyn Notifier> {
    match topic_arn {
        Some(arn) => {
            let config = toc_sis_backup::aws::sdk_config().await;
            Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(&config), arn))
        }
        None => Arc::new(LogNotifier),
    }
}

fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T) -> String) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: cannot print the result as JSON: {e}"),
        }
    } else {
        println!("{}", human(value));
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

async fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Dump(args) => {
            let mut options = DumpOptions::new(args.connection.url()?);
            options.label = args.label;
            options.split_bytes = args.split_mb * 1024 * 1024;
            options.compression_level = args.compression_level;
            options.notify_success = args.notify_success;
            options.retention = (!args.no_prune).then(|| args.retention.policy());
            let notifier = notifier(args.sns_topic_arn.as_deref()).await;
            let store = store(&args.store).await?;
            let report =
                run_dump_until(store, notifier.as_ref(), &options, shutdown_signal()).await?;
            print(args.json, &report, |r| {
                let mut text = format!(
                    "backup {} of {}: {} tables, {} rows, {} files, {} ({} of SQL) in {:.1} s",
                    r.backup_id,
                    r.database,
                    r.tables,
                    r.rows,
                    r.files,
                    mib(r.bytes),
                    mib(r.uncompressed_bytes),
                    r.duration_seconds
                );
                if !r.not_snapshot_consistent.is_empty() {
                    text.push_str(&format!(
                        "\nwarning: not snapshot-consistent (non-transactional engine): {}",
                        r.not_snapshot_consistent.join(", ")
                    ));
                }
                if !r.pruned.is_empty() {
                    text.push_str(&format!("\nretention removed: {}", r.pruned.join(", ")));
                }
                text
            });
        }
        Command::Incremental(args) => {
            let mut options = IncrementalOptions::new(args.connection.url()?);
            options.scope = Scope::parse(
                args.tables.as_deref(),
                Some(&args.tracking_column),
                args.tracking_columns.as_deref(),
            )?;
            options.overlap = chrono::Duration::minutes(i64::from(args.overlap_minutes));
            options.full_if_missing = args.full_if_missing;
            options.notify_success = args.notify_success;
            let notifier = notifier(args.sns_topic_arn.as_deref()).await;
            let store = store(&args.store).await?;
            let report =
                run_incremental_until(store, notifier.as_ref(), &options, shutdown_signal())
                    .await?;
            print(args.json, &report, |r| {
                match (&r.backup_id, &r.full_backup) {
                (Some(id), _) => format!(
                    "incremental {id} of {} after {}: {} rows written again, {} deleted, {} tables ({} rows), {} in {:.1} s",
                    r.database,
                    r.parent.as_deref().unwrap_or("-"),
                    r.rows_rewritten,
                    r.rows_deleted,
                    r.tables,
                    r.rows_after,
                    mib(r.bytes),
                    r.duration_seconds
                ),
                (None, Some(full)) => format!(
                    "no chain to continue: took full backup {} to start one",
                    full.backup_id
                ),
                (None, None) => "nothing done".to_string(),
            }
            });
        }
        Command::Restore(args) => {
            let options = RestoreOptions {
                server_url: args.connection.url()?,
                backup: args.backup,
                at: args.at,
                target_database: args.target_database,
                force: args.force,
                jobs: usize::from(args.jobs),
            };
            let report = run_restore(store(&args.store).await?, &options).await?;
            print(args.json, &report, |r| {
                format!(
                    "restored {} backup {} (point in time {}; chain {}) of {} into {}: {} tables, {} rows, {} objects from {} files ({}); \
                     loaded in {:.1} s, verified in {:.1} s, {:.1} s in all. Row counts, fingerprints and definitions match the manifests.",
                    r.kind,
                    r.backup_id,
                    r.point_in_time,
                    r.chain.join(" -> "),
                    r.source_database,
                    r.target_database,
                    r.tables,
                    r.rows,
                    r.objects,
                    r.files,
                    mib(r.bytes),
                    r.load_seconds,
                    r.verify_seconds,
                    r.duration_seconds
                )
            });
        }
        Command::Verify(args) => {
            let store = store(&args.store).await?;
            let manifest = catalog::resolve(store.as_ref(), &args.backup).await?;
            let report = verify::verify_backup(store.as_ref(), &manifest).await?;
            print(args.json, &report, |r| {
                format!(
                    "backup {} is intact: {} files, {} match the manifest",
                    r.backup_id,
                    r.files,
                    mib(r.bytes)
                )
            });
        }
        Command::List(args) => {
            let listed = catalog::list(store(&args.store).await?.as_ref(), args.all).await?;
            print(args.json, &listed, |list| {
                if list.is_empty() {
                    return "no backups".to_string();
                }
                let mut lines = vec![format!(
                    "{:<24} {:<12} {:<10} {:<16} {:>7} {:>12} {:>12}",
                    "ID", "KIND", "STATUS", "DATABASE", "TABLES", "ROWS", "SIZE"
                )];
                for b in list {
                    lines.push(format!(
                        "{:<24} {:<12} {:<10} {:<16} {:>7} {:>12} {:>12}{}",
                        b.id,
                        b.kind,
                        b.status,
                        b.database.as_deref().unwrap_or("-"),
                        b.tables.map_or("-".into(), |t| t.to_string()),
                        b.rows.map_or("-".into(), |r| r.to_string()),
                        mib(b.bytes),
                        match (&b.problem, &b.parent) {
                            (Some(p), _) => format!("  ({p})"),
                            (None, Some(parent)) => format!("  (after {parent})"),
                            (None, None) => String::new(),
                        }
                    ));
                }
                lines.join("\n")
            });
        }
        Command::Prune(args) => {
            let report = retention::prune(
                store(&args.store).await?.as_ref(),
                &args.retention.policy(),
                chrono::Utc::now(),
            )
            .await?;
            print(args.json, &report, |r| {
                format!("removed {} backups, kept {}", r.deleted.len(), r.kept.len())
            });
        }
        Command::Monitor(args) => {
            let options = args.options().await?;
            let notifier = notifier(args.sns_topic_arn.as_deref()).await;
            let store = store(&args.store).await?;
            let now = args.now.unwrap_or_else(chrono::Utc::now);
            let report = run_monitor(store.as_ref(), notifier.as_ref(), &options, now).await?;
            print(args.json, &report, print_checks);
        }
        Command::Status(args) => {
            let options = args.options().await?;
            let store = store(&args.store).await?;
            let now = args.now.unwrap_or_else(chrono::Utc::now);
            let report = check_all(store.as_ref(), &options, now).await?;
            print(args.json, &report, print_checks);
        }
        Command::RestoreTest(args) => {
            let options = RestoreTestOptions {
                server_url: args.connection.url()?,
                jobs: usize::from(args.jobs),
                database_prefix: args.database_prefix,
            };
            let notifier = notifier(args.sns_topic_arn.as_deref()).await;
            let store = store(&args.store).await?;
            let report =
                run_restore_test(store, notifier.as_ref(), &options, chrono::Utc::now()).await?;
            print(args.json, &report, |r| {
                format!(
                    "restore test passed: backup {} (chain {}) restored into {} and verified in {:.1} s ({} tables, {} rows); scratch database dropped",
                    r.backup_id.as_deref().unwrap_or("-"),
                    r.chain.join(" -> "),
                    r.scratch_database,
                    r.rto_seconds,
                    r.tables,
                    r.rows
                )
            });
        }
        Command::Cost(args) => {
            let store = store(&args.store).await?;
            let estimate = toc_sis_backup::cost::estimate(
                store.as_ref(),
                chrono::Utc::now(),
                toc_sis_backup::cost::Prices::default(),
            )
            .await?;
            print(args.json, &estimate, |e| {
                let mut text = vec![format!(
                    "{:<14} {:>12} {:>12}   {:>12} {:>12}",
                    "class", "GB today", "USD/month", "GB steady", "USD/month"
                )];
                for (now, steady) in e.today.iter().zip(&e.steady_state) {
                    text.push(format!(
                        "{:<14} {:>12.3} {:>12.2}   {:>12.1} {:>12.2}",
                        format!("{:?}", now.class),
                        now.gigabytes,
                        now.usd_per_month,
                        steady.gigabytes,
                        steady.usd_per_month
                    ));
                }
                text.push(format!(
                    "total: {:.2} USD/month today; {:.2} USD/month once 7 years of daily backups ({}) and 90 days of hourly incrementals ({} each) have accumulated (eu-west-1 prices)",
                    e.today_usd_per_month,
                    e.steady_state_usd_per_month,
                    mib(e.latest_full_bytes),
                    mib(e.mean_incremental_bytes)
                ));
                text.join("\n")
            });
        }
        Command::SampleData(args) => {
            let report = sample_data::create_sample(
                &args.connection.url()?,
                args.scale,
                args.seed,
                args.replace,
            )
            .await?;
            print(args.json, &report, |r| {
                format!(
                    "sample database {} created: scale {}, {} students, {} grade records, {} rows in all",
                    r.database, r.scale, r.students, r.grade_records, r.rows
                )
            });
        }
    }
    Ok(())
}

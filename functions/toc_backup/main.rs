//! `toc-backup`: the backup jobs from a shell, against a local folder and the log by default.

use std::process::ExitCode;
use std::sync::Arc;

mod args;
mod doctor;
mod files;
mod pin;
mod progress;
mod setup_users;

use args::*;
use clap::Parser;
use serde::Serialize;
use toc_sis_backup::dump::{run_dump_until, DumpOptions};
use toc_sis_backup::incremental::{run_incremental_until, IncrementalOptions, Scope};
use toc_sis_backup::monitor::restore_test::{run_restore_test_until, RestoreTestOptions};
use toc_sis_backup::monitor::{check_all, run_monitor, MonitorReport};
use toc_sis_backup::notify::sns::SnsNotifier;
use toc_sis_backup::notify::{LogNotifier, Notifier};
use toc_sis_backup::restore::point::Point;
use toc_sis_backup::restore::{run_restore_of, RestoreOptions};
use toc_sis_backup::store::ArchiveState;
use toc_sis_backup::store::{open_store, ObjectStore};
use toc_sis_backup::{catalog, retention, sample_data, Error};

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

/// The Nagios/Icinga convention monitoring agents understand: 0 OK, 1 WARNING, 2 CRITICAL.
fn exit_code(status: toc_sis_backup::monitor::Status) -> u8 {
    match status {
        toc_sis_backup::monitor::Status::Ok => 0,
        toc_sis_backup::monitor::Status::Warning => 1,
        toc_sis_backup::monitor::Status::Critical => 2,
    }
}

/// A closed pipe (`toc-backup list | head`) ends the command quietly, as it ends every Unix
/// tool: Rust ignores SIGPIPE, and printing into the closed pipe panicked.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn quiet_on_closed_pipe() {
    // SAFETY: restores one signal's default disposition, before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn quiet_on_closed_pipe() {}

fn main() -> ExitCode {
    toc_sis_backup::memory::limit_malloc_arenas();
    quiet_on_closed_pipe();
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
    let progress_every = std::time::Duration::from_secs(cli.progress_seconds.max(1));
    match runtime.block_on(run(cli.command, log_format, progress_every)) {
        Ok(code) => ExitCode::from(code),
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
        // Colour only for a person at a terminal, never into a file or a pipe.
        LogFormat::Human => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
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

async fn run(
    command: Command,
    log_format: LogFormat,
    progress_every: std::time::Duration,
) -> Result<u8, Error> {
    // The exit status: 0, or for status and monitor 1 (WARNING) and 2 (CRITICAL).
    let mut exit = 0;
    match command {
        Command::Dump(args) => {
            let mut options = DumpOptions::new(args.connection.url().await?);
            options.label = args.label;
            options.split_bytes = args.split_mb * 1024 * 1024;
            options.compression_level = args.compression_level;
            options.jobs = usize::from(args.jobs);
            options.with_password_hashes = args.with_password_hashes;
            options.skip_unsupported = args.skip_unsupported;
            options.tracking = args.tracking.columns()?;
            options.notify_success = args.notify_success;
            options.retention = (!args.no_prune).then(|| args.retention.policy());
            let notifier = notifier(args.sns_topic_arn.as_deref()).await;
            let store = store(&args.store).await?;
            let shown = progress::start(options.headway.clone(), log_format, progress_every);
            let outcome =
                run_dump_until(store, notifier.as_ref(), &options, shutdown_signal()).await;
            shown.finish();
            let report = outcome?;
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
                if let Some(reason) = &r.single_connection_reason {
                    text.push_str(&format!("\nnote: {reason}"));
                }
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
            let mut options = IncrementalOptions::new(args.connection.url().await?);
            options.scope = Scope::parse(
                args.tables.as_deref(),
                Some(&args.tracking.tracking_column),
                args.tracking.tracking_columns.as_deref(),
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
        Command::Binlog { command } => run_binlog(command, log_format, progress_every).await?,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "toc-backup", &mut text);
            write_stdout(&text)?;
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut text = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut text)
                .map_err(|e| Error::Task(format!("rendering the man page: {e}")))?;
            write_stdout(&text)?;
        }
        Command::Restore(args) => {
            let headway = std::sync::Arc::new(toc_sis_backup::job::headway::Headway::default());
            let options = RestoreOptions {
                server_url: args.connection.url().await?,
                point: args.point.request()?,
                target_database: args.target_database,
                force: args.force,
                jobs: usize::from(args.jobs),
                resume: args.resume,
                definer: args.definer.mode,
                with_accounts: args.with_accounts,
                headway: headway.clone(),
                tables: args.tables.as_deref().map(|list| {
                    list.split(',')
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .collect()
                }),
            };
            toc_sis_backup::restore::check_options(&options)?;
            // The point is resolved once, for the estimate said before anything is loaded and
            // for the restore itself.
            let store = store(&args.store).await?;
            catalog::require_backups(store.as_ref()).await?;
            let point = Point::resolve(store.as_ref(), &options.point).await?;
            let estimate = toc_sis_backup::restore::estimate::of_point(
                store.as_ref(),
                &point,
                options.tables.as_deref(),
            )
            .await;
            // JSON logs stay one JSON object a line.
            match log_format {
                LogFormat::Json => tracing::info!(seconds = estimate.seconds, "{}", estimate.text),
                LogFormat::Human => eprintln!("{}", estimate.text),
            }
            let shown = progress::start(headway, log_format, progress_every);
            let outcome = run_restore_of(store, &options, point).await;
            shown.finish();
            let mut report = outcome?;
            report.estimate = Some(estimate);
            print(args.json, &report, |r| {
                format!(
                    "restored {} backup {} (point in time {}; chain {}) of {} into {}: {} tables, {} rows, {} objects from {} files ({}); \
                     loaded in {:.1} s, verified in {:.1} s, {:.1} s in all. Row counts, fingerprints and definitions match the manifests{}.",
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
                    r.duration_seconds,
                    if r.definers_rewritten > 0 {
                        format!(
                            " ({} objects created as the restoring user: their DEFINER was rewritten, and definitions were compared without it)",
                            r.definers_rewritten
                        )
                    } else {
                        String::new()
                    }
                ) + &left_out_lines(r)
            });
        }
        Command::Verify(args) => {
            let store = store(&args.store).await?;
            catalog::require_backups(store.as_ref()).await?;
            // Everything a restore of this point reads: the full backup, each incremental, the
            // binlog segments a replay applies.
            let point = Point::resolve(store.as_ref(), &args.point.request()?).await?;
            toc_sis_backup::restore::archive::ensure_readable(store.as_ref(), &point).await?;
            let headway = std::sync::Arc::new(toc_sis_backup::job::headway::Headway::default());
            headway.measure(
                format!("checking backup {}", point.backup_id()),
                point.chain.iter().map(|m| m.total_bytes()).sum::<u64>()
                    + point
                        .replay
                        .iter()
                        .flat_map(|plan| plan.segments.iter().map(|s| s.bytes))
                        .sum::<u64>(),
            );
            let shown = progress::start(headway.clone(), log_format, progress_every);
            let outcome =
                toc_sis_backup::restore::point::verify_point(store.as_ref(), &point, &headway)
                    .await;
            shown.finish();
            let report = outcome?;
            print(args.json, &report, |r| {
                let chain = if r.chain.len() > 1 {
                    format!(" (with its chain: {})", r.chain.join(" -> "))
                } else {
                    String::new()
                };
                let segments = if r.binlog_segments > 0 {
                    format!(
                        " and the {} binlog segments replayed on it",
                        r.binlog_segments
                    )
                } else {
                    String::new()
                };
                format!(
                    "backup {} is intact{chain}{segments}: {} files, {} match the manifests",
                    r.backup_id,
                    r.files,
                    mib(r.bytes)
                )
            });
        }
        Command::Retrieve(args) => {
            let store = store(&args.store).await?;
            let point = Point::resolve(store.as_ref(), &args.point.request()?).await?;
            let report = toc_sis_backup::restore::archive::retrieve(
                store.as_ref(),
                &point,
                args.tier.tier(),
                args.days,
            )
            .await?;
            print(args.json, &report, |r| {
                let mut lines: Vec<String> = r
                    .files
                    .iter()
                    .map(|f| {
                        let state = match &f.state {
                            ArchiveState::Retrieved { until, .. } => format!(
                                "ready{}",
                                until
                                    .as_ref()
                                    .map(|u| format!(" until {u}"))
                                    .unwrap_or_default()
                            ),
                            ArchiveState::Retrieving { .. } => "in progress".into(),
                            ArchiveState::Archived { .. } => "not requested".into(),
                            ArchiveState::Readable => "readable".into(),
                        };
                        format!(
                            "{:<12} {:>12}  {}  {state}",
                            f.state.class().unwrap_or("-"),
                            mib(f.bytes),
                            f.key
                        )
                    })
                    .collect();
                lines.push(if r.files.is_empty() {
                    format!("backup {}: nothing is archived; restore it as usual", r.backup_id)
                } else if r.all_ready() {
                    format!(
                        "backup {}: all {} archived files are ready for {} days; restore it now",
                        r.backup_id,
                        r.files.len(),
                        r.days
                    )
                } else {
                    format!(
                        "backup {}: {} of {} archived files ready, {} in progress ({} requested now, {:?} tier); run this again to follow",
                        r.backup_id,
                        r.ready,
                        r.files.len(),
                        r.retrieving,
                        r.requested,
                        r.tier
                    )
                });
                lines.join("\n")
            });
        }
        Command::Point(args) => pin::run(args).await?,
        Command::SetupUsers(args) => setup_users::run(args).await?,
        Command::Doctor(args) => {
            let report = doctor::run(args).await?;
            exit = exit_code(report.status);
        }
        Command::List(args) => {
            let store = store(&args.store).await?;
            // `--all` shows whatever is there, leftovers of failed runs included, even nothing.
            if !args.all {
                catalog::require_backups(store.as_ref()).await?;
            }
            let listed = catalog::list(store.as_ref(), args.all).await?;
            print(args.json, &listed, |list| {
                if list.is_empty() {
                    return "no backups".to_string();
                }
                let mut lines = vec![format!(
                    "{:<26} {:<12} {:<10} {:<16} {:>7} {:>12} {:>12} {:<12}",
                    "ID", "KIND", "STATUS", "DATABASE", "TABLES", "ROWS", "SIZE", "STORAGE"
                )];
                for b in list {
                    lines.push(format!(
                        "{:<26} {:<12} {:<10} {:<16} {:>7} {:>12} {:>12} {:<12}{}{}",
                        b.id,
                        b.kind,
                        b.status,
                        b.database.as_deref().unwrap_or("-"),
                        b.tables.map_or("-".into(), |t| t.to_string()),
                        b.rows.map_or("-".into(), |r| r.to_string()),
                        mib(b.bytes),
                        b.storage_class.as_deref().unwrap_or("-"),
                        match (&b.problem, &b.parent) {
                            (Some(p), _) => format!("  ({p})"),
                            (None, Some(parent)) => format!("  (after {parent})"),
                            (None, None) => String::new(),
                        },
                        b.label
                            .as_deref()
                            .map(|label| format!("  \"{label}\""))
                            .unwrap_or_default()
                    ));
                }
                lines.join("\n")
            });
        }
        Command::Prune(args) => {
            let store = store(&args.store).await?;
            let report = if args.backups.is_empty() {
                retention::prune(store.as_ref(), &args.retention.policy(), chrono::Utc::now())
                    .await?
            } else {
                retention::prune_named(
                    store.as_ref(),
                    &args.backups,
                    args.override_bucket_retention,
                )
                .await?
            };
            print(args.json, &report, |r| {
                let mut text =
                    format!("removed {} backups, kept {}", r.deleted.len(), r.kept.len());
                if !r.binlog_segments_deleted.is_empty() {
                    text.push_str(&format!(
                        "; removed {} binlog segments older than every kept full backup",
                        r.binlog_segments_deleted.len()
                    ));
                }
                text
            });
        }
        Command::Monitor(args) => {
            let options = args.options().await?;
            let notifier = notifier(args.sns_topic_arn.as_deref()).await;
            let store = store(&args.store).await?;
            let now = args.now.unwrap_or_else(chrono::Utc::now);
            let report = run_monitor(store.as_ref(), notifier.as_ref(), &options, now).await?;
            print(args.json, &report, print_checks);
            exit = exit_code(report.status);
        }
        Command::Status(args) => {
            let options = args.options().await?;
            let store = store(&args.store).await?;
            let now = args.now.unwrap_or_else(chrono::Utc::now);
            let report = check_all(store.as_ref(), &options, now).await?;
            print(args.json, &report, print_checks);
            exit = exit_code(report.status);
        }
        Command::RestoreTest(args) => {
            let options = RestoreTestOptions {
                server_url: args.connection.url().await?,
                jobs: usize::from(args.jobs),
                database_prefix: args.database_prefix,
                definer: args.definer.mode,
                headway: Default::default(),
            };
            let notifier = notifier(args.sns_topic_arn.as_deref()).await;
            let store = store(&args.store).await?;
            // Ctrl-C or SIGTERM stops the test the way a Lambda deadline does: scratch
            // database dropped, TIMED OUT reported and alerted.
            let shown = progress::start(options.headway.clone(), log_format, progress_every);
            let outcome = run_restore_test_until(
                store,
                notifier.as_ref(),
                &options,
                chrono::Utc::now(),
                shutdown_signal(),
            )
            .await;
            shown.finish();
            let report = outcome?;
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
        Command::Files { command } => files::run(command, log_format, progress_every).await?,
        Command::Catalog {
            command: CatalogCommand::Rebuild(args),
        } => {
            let store = store(&args.store).await?;
            let report = catalog::index::rebuild(store.as_ref()).await?;
            print(args.json, &report, |r| {
                let before = match (&r.previous, &r.previous_problem) {
                    (Some(n), _) => format!("it listed {n}"),
                    (None, Some(problem)) => format!("before: {problem}"),
                    (None, None) => String::new(),
                };
                format!(
                    "catalog of {} rebuilt: {} complete backups ({before})",
                    r.store, r.entries
                )
            });
        }
        Command::Cost(args) => {
            let store = store(&args.store).await?;
            let prices = match &args.prices {
                Some(path) => toc_sis_backup::cost::Prices::from_file(path)?,
                None => toc_sis_backup::cost::Prices::default(),
            };
            let schedule = toc_sis_backup::cost::Schedule {
                replication_time_control: !args.no_replication_time_control,
                network_path: args.network_path.parse()?,
                availability_zones: args.availability_zones,
                restore_test_on_fargate: args.restore_test_on_fargate,
                log_bytes_per_invocation: args.log_bytes_per_run as f64,
                ..Default::default()
            };
            let estimate = toc_sis_backup::cost::estimate(
                store.as_ref(),
                chrono::Utc::now(),
                prices,
                schedule,
            )
            .await?;
            /// A bill's quantity or unit price: four significant digits, at least `decimals`
            /// (a price of 0.0000133334 a GB-second must not print as 0.00), one above 10.
            fn figure(value: f64, decimals: usize) -> String {
                if value == 0.0 || !value.is_finite() {
                    return "0".into();
                }
                if value.abs() >= 10.0 {
                    let decimals = decimals.max(1);
                    return format!("{value:.decimals$}");
                }
                let significant = (3 - value.abs().log10().floor() as i32).clamp(1, 12) as usize;
                let text = format!("{value:.significant$}");
                let (whole, fraction) = text.split_once('.').unwrap_or((text.as_str(), ""));
                let fraction = fraction.trim_end_matches('0');
                format!("{whole}.{fraction:0<decimals$}")
            }
            print(args.json, &estimate, |e| {
                use toc_sis_backup::cost::Part;
                let mut text = vec![format!(
                    "S3 storage today ({}): {:.2} USD/month",
                    e.prices.region, e.today_usd_per_month
                )];
                text.push(format!(
                    "\nthe monthly bill at steady state (7 years of daily fulls of {}, 90 days of hourly incrementals of {}{}), prices of {} ({}, {}):",
                    mib(e.workload.full_bytes as u64),
                    mib(e.workload.incremental_bytes as u64),
                    if e.workload.binlog_bytes_per_day > 0.0 {
                        format!(", the binlog archive at {} a day", mib(e.workload.binlog_bytes_per_day as u64))
                    } else {
                        String::new()
                    },
                    e.prices.read_on,
                    e.prices.region,
                    e.prices.replica_region
                ));
                let row = |item: &str, quantity: &str, unit: &str, price: &str, usd: &str| {
                    format!("{item:<64} {quantity:>10} {unit:<16} {price:>10} {usd:>8}")
                };
                text.push(row("", "quantity", "unit", "USD a unit", "USD"));
                for (part, heading, subtotal) in [
                    (
                        Part::Data,
                        "what grows with the backups".to_string(),
                        e.steady_state.data_usd_per_month,
                    ),
                    (
                        Part::Stack,
                        format!("the stack as deployed ({})", e.schedule.deployment()),
                        e.steady_state.stack_usd_per_month,
                    ),
                ] {
                    text.push(heading);
                    for line in e.steady_state.lines.iter().filter(|l| l.part == part) {
                        text.push(row(
                            &format!("  {}", line.item),
                            &figure(line.quantity, 1),
                            line.unit,
                            &figure(line.unit_usd, 2),
                            &format!("{:.2}", line.usd),
                        ));
                    }
                    text.push(row("  subtotal", "", "", "", &format!("{subtotal:.2}")));
                }
                let total = format!("{:.2}", e.steady_state.usd_per_month);
                text.push(format!("{} USD/month", row("total", "", "", "", &total)));
                text.join("\n")
            });
        }
        Command::SampleData(args) => {
            let report = sample_data::create_sample(
                &args.connection.url().await?,
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
    Ok(exit)
}

async fn run_binlog(
    command: BinlogCommand,
    log_format: LogFormat,
    progress_every: std::time::Duration,
) -> Result<(), Error> {
    use toc_sis_backup::binlog::{archive::run_archive_alerting, find, ArchiveOptions};
    match command {
        BinlogCommand::Archive(args) => {
            let options = ArchiveOptions {
                url: args.connection.url().await?,
                replica_server_id: args.replica_server_id,
                deadline: args
                    .max_seconds
                    // Beyond what a clock can hold is no deadline at all.
                    .and_then(|s| {
                        std::time::Instant::now().checked_add(std::time::Duration::from_secs(s))
                    }),
                segment_bytes: args.segment_mb * 1024 * 1024,
                headway: Default::default(),
            };
            let notifier = notifier(args.sns_topic_arn.as_deref()).await;
            let shown = progress::start(options.headway.clone(), log_format, progress_every);
            let outcome =
                run_archive_alerting(store(&args.store).await?, notifier.as_ref(), &options).await;
            shown.finish();
            let report = outcome?;
            print(args.json, &report, |r| {
                let mut text = format!(
                    "binlog archived from {} to {}: {} segments, {} transactions, {} row changes, {} ({} uncompressed) in {:.1} s; complete until {}",
                    r.started_from,
                    r.next,
                    r.segments.len(),
                    r.transactions,
                    r.row_changes,
                    mib(r.bytes),
                    mib(r.uncompressed_bytes),
                    r.seconds,
                    r.complete_until
                        .map_or("(stopped before the end)".into(), |t| t.to_rfc3339()),
                );
                if let Some(gap) = &r.gap {
                    text.push_str(&format!(
                        "\nCRITICAL: the binlog from {} to {} was never archived ({}); the archive goes on from full backup {}",
                        gap.from, gap.to, gap.reason, r.anchor
                    ));
                }
                text
            });
        }
        BinlogCommand::Find(args) => {
            let options = find::FindOptions {
                table: args.table.clone(),
                database: args.database.clone(),
                from: args.from,
                to: args.to,
                where_column: args
                    .where_column
                    .as_deref()
                    .map(find::parse_where)
                    .transpose()?,
            };
            let found = find::find(store(&args.store).await?.as_ref(), &options).await?;
            print(args.json, &found, |found| {
                if found.is_empty() {
                    return format!("no archived transaction changed `{}`", args.table);
                }
                let mut lines = vec![format!(
                    "{:<25} {:<22} {:<26} {:<14} {:>8} {:>8} {:>8}",
                    "COMMITTED", "GTID", "POSITION", "KIND", "INSERTED", "UPDATED", "DELETED"
                )];
                for t in found {
                    lines.push(format!(
                        "{:<25} {:<22} {:<26} {:<14} {:>8} {:>8} {:>8}",
                        t.commit.map_or("-".into(), |c| c.to_rfc3339()),
                        t.gtid.as_deref().unwrap_or("-"),
                        t.position,
                        t.kind(),
                        t.changes.inserted,
                        t.changes.updated,
                        t.changes.deleted
                    ));
                }
                lines.push(
                    "restore just before one: toc-backup restore --before-gtid GTID (or --before-position POSITION) --target-database …"
                        .into(),
                );
                lines.join("\n")
            });
        }
    }
    Ok(())
}

/// Writes generated text to standard output; a reader that stops early (`| head`) is not an
/// error.
fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::Task(format!("writing to standard output: {e}")))
        }
        _ => Ok(()),
    }
}

/// The logged statements a binlog replay did not run, one line each, for the restore summary.
fn left_out_lines(report: &toc_sis_backup::restore::RestoreReport) -> String {
    let Some(replay) = &report.binlog else {
        return String::new();
    };
    let mut lines = String::new();
    if !replay.left_out.is_empty() {
        lines.push_str(&format!(
            "\n{} logged statements were not replayed (a restore changes its target and nothing else):",
            replay.left_out.len()
        ));
    }
    for left in &replay.left_out {
        lines.push_str(&format!(
            "\n  at {}: {} — {}",
            left.position, left.statement, left.reason
        ));
    }
    lines
}

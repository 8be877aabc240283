//! `toc-backup dump`: a full, consistent backup into a store.

use clap::Args;
use toc_sis_backup::defaults;
use toc_sis_backup::dump::{run_dump_until, DumpOptions};
use toc_sis_backup::Error;

use super::{mib, notifier, print, shutdown_signal, store, Console};
use crate::flags::{Connection, Retention, StoreArg, Tracking};

#[derive(Args)]
pub(crate) struct DumpArgs {
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
    #[arg(long, env = "BACKUP_SPLIT_MB", default_value_t = defaults::BACKUP_SPLIT_MB, value_parser = clap::value_parser!(u64).range(1..))]
    split_mb: u64,
    /// gzip level, 1 (fast) to 9 (small).
    #[arg(long, env = "BACKUP_COMPRESSION_LEVEL", default_value_t = defaults::BACKUP_COMPRESSION_LEVEL, value_parser = clap::value_parser!(u32).range(1..=9))]
    compression_level: u32,
    /// Connections reading tables at once, all on one proven-identical snapshot (one when the
    /// server cannot prove it).
    #[arg(long, env = "BACKUP_DUMP_JOBS", default_value_t = defaults::BACKUP_DUMP_JOBS, value_parser = clap::value_parser!(u16).range(1..=32))]
    jobs: u16,
    /// Record the accounts' password hashes in the accounts file (otherwise a restore with
    /// --with-accounts recreates them locked, to be given a password).
    #[arg(long, env = "BACKUP_PASSWORD_HASHES")]
    with_password_hashes: bool,
    /// Back up the rest when the database holds objects this tool cannot back up faithfully
    /// (MariaDB packages), leaving those out with a warning (without it the dump refuses).
    #[arg(long, env = "BACKUP_SKIP_UNSUPPORTED")]
    skip_unsupported: bool,
    #[command(flatten)]
    tracking: Tracking,
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

pub(crate) async fn run(args: DumpArgs, console: Console) -> Result<(), Error> {
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
    let shown = console.progress(options.headway.clone());
    let outcome = run_dump_until(store, notifier.as_ref(), &options, shutdown_signal()).await;
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
    Ok(())
}

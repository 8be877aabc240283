//! `toc-backup incremental`: what changed in the tracked tables since the chain's last point.

use clap::Args;
use toc_sis_backup::defaults;
use toc_sis_backup::incremental::{run_incremental_until, IncrementalOptions, Scope};
use toc_sis_backup::Error;

use super::{mib, notifier, print, shutdown_signal, store};
use crate::flags::{Connection, StoreArg, Tracking};

#[derive(Args)]
pub(crate) struct IncrementalArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    store: StoreArg,
    /// Comma-separated tables to track (default: the Tier 1 and Tier 2 tables).
    #[arg(long, env = "INCREMENTAL_TABLES")]
    tables: Option<String>,
    #[command(flatten)]
    tracking: Tracking,
    /// Minutes before the previous point whose changes are written again regardless.
    #[arg(long, env = "INCREMENTAL_OVERLAP_MINUTES", default_value_t = defaults::INCREMENTAL_OVERLAP_MINUTES, value_parser = clap::value_parser!(u32).range(0..=1440))]
    overlap_minutes: u32,
    /// Take a full backup when there is none to start a chain from.
    #[arg(long, env = "INCREMENTAL_FULL_IF_MISSING")]
    full_if_missing: bool,
    /// Also notify when the job succeeds (default: only failures and warnings).
    #[arg(long, env = "NOTIFY_SUCCESS")]
    notify_success: bool,
    /// Send alerts to this SNS topic instead of the log.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    sns_topic_arn: Option<String>,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: IncrementalArgs) -> Result<(), Error> {
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
        run_incremental_until(store, notifier.as_ref(), &options, shutdown_signal()).await?;
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
    Ok(())
}

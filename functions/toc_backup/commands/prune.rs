//! `toc-backup prune`: the retention policy applied, or named backups removed.

use clap::Args;
use toc_sis_backup::{retention, Error};

use super::{print, store};
use crate::flags::{Retention, StoreArg};

#[derive(Args)]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    retention: Retention,
    /// Delete exactly these backups (repeat the option) instead of applying the policy; the
    /// incrementals of a named full backup go with it.
    #[arg(long = "backup", value_name = "ID")]
    backups: Vec<String>,
    /// In an S3 store, where the bucket's lifecycle and Object Lock keep backups for years:
    /// delete the named backups all the same.
    #[arg(long, requires = "backups")]
    override_bucket_retention: bool,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: PruneArgs) -> Result<(), Error> {
    let store = store(&args.store).await?;
    let report = if args.backups.is_empty() {
        retention::prune(store.as_ref(), &args.retention.policy(), chrono::Utc::now()).await?
    } else {
        retention::prune_named(
            store.as_ref(),
            &args.backups,
            args.override_bucket_retention,
        )
        .await?
    };
    print(args.json, &report, |r| {
        let mut text = format!("removed {} backups, kept {}", r.deleted.len(), r.kept.len());
        if !r.binlog_segments_deleted.is_empty() {
            text.push_str(&format!(
                "; removed {} binlog segments older than every kept full backup",
                r.binlog_segments_deleted.len()
            ));
        }
        text
    });
    Ok(())
}

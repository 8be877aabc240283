//! `toc-backup point`: the flags that name a point's data now and later. An emergency restore
//! checks a scratch copy first and restores over the live database hours later; meanwhile the
//! binlog archive may have grown past where it ended, and `--at` the same time would then bring
//! back more than was checked. The pinned flags never do.

use chrono::SecondsFormat;
use clap::Args;
use toc_sis_backup::restore::point::{Point, PointRequest};
use toc_sis_backup::{catalog, Error};

use super::store;
use crate::flags::{PointArgs, StoreArg};

#[derive(Args)]
pub(crate) struct PinArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The point wanted, as every restore command takes it (an exported $RESTORE_AT or
    /// $BACKUP_ID too). Default: now, through the binlog archive as far as it reaches.
    #[command(flatten)]
    point: PointArgs,
}

/// Prints the pinned point's flags alone on stdout (for `POINT="$(toc-backup point …)"`) and
/// what they bring back on stderr.
pub(crate) async fn run(args: PinArgs) -> Result<(), Error> {
    let store = store(&args.store).await?;
    catalog::require_backups(store.as_ref()).await?;
    // An exported RESTORE_AT is the moment wanted, as it is for restore (pinning "now" instead
    // brought the damage back); a GTID or position from `binlog find` pins as it is.
    let now = chrono::Utc::now();
    let request = args.point.request_or(PointRequest::At(now))?;
    let asked = match &request {
        PointRequest::At(at) => *at,
        _ => now,
    };
    let point = Point::resolve(store.as_ref(), &request).await?;
    let pinned = point.pinned();
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let incrementals = point.chain.len().saturating_sub(1);
    let chain = match incrementals {
        0 => format!("backup {}", point.backup_id()),
        n => format!(
            "backup {} (full backup {} and {n} incremental{})",
            point.backup_id(),
            point.chain.first().map_or("", |m| m.backup_id.as_str()),
            if n == 1 { "" } else { "s" }
        ),
    };
    match (&point.replay, &pinned) {
        (Some(plan), PointRequest::Before(stop)) if matches!(request, PointRequest::Before(_)) => {
            eprintln!(
                "pinned: {chain} and the binlog archive replayed to just before {stop} ({} segments)",
                plan.segments.len()
            )
        }
        (None, _) if matches!(request, PointRequest::Backup(_)) => eprintln!("pinned: {chain}"),
        (Some(plan), PointRequest::At(_)) => eprintln!(
            "pinned: {chain} and the binlog archive replayed to {} ({} segments)",
            time(asked),
            plan.segments.len()
        ),
        (Some(plan), _) => {
            let last = plan
                .segments
                .last()
                .and_then(|s| s.last_commit)
                .map_or_else(|| "none archived".to_string(), time);
            eprintln!(
                "pinned to the end of the binlog archive: {chain} and {} segments replayed to \
                 their last transaction (committed {last}). The archive does not pass {} yet: \
                 if the database server is up, run `toc-backup binlog archive` and pin again to \
                 bring back what was committed since",
                plan.segments.len(),
                time(asked)
            )
        }
        (None, _) => eprintln!(
            "pinned: {chain}, the newest backup at or before {} (no binlog archive reaches \
             further)",
            time(asked)
        ),
    }
    println!("{}", pinned.as_flags());
    Ok(())
}

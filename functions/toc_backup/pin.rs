//! `toc-backup point`: the time that names a point's data now and later. An emergency restore
//! checks a scratch copy first and restores over the live database hours later; meanwhile the
//! binlog archive may have grown past where it ended, and `--at` the same time would then bring
//! back more than was checked. The pinned time never does.

use chrono::SecondsFormat;
use toc_sis_backup::restore::point::{Point, PointRequest};
use toc_sis_backup::{catalog, Error};

use crate::args::PinArgs;

/// Prints the pinned time alone on stdout (for `AT="$(toc-backup point …)"`) and what it
/// brings back on stderr.
pub(crate) async fn run(args: PinArgs) -> Result<(), Error> {
    let store = crate::store(&args.store).await?;
    catalog::require_backups(store.as_ref()).await?;
    let asked = args.at.unwrap_or_else(chrono::Utc::now);
    let point = Point::resolve(store.as_ref(), &PointRequest::At(asked)).await?;
    let pinned = point.pinned_at().ok_or_else(|| Error::InvalidManifest {
        key: point.backup_id().to_string(),
        reason: "it records no snapshot time to pin the point to".into(),
    })?;
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
    match &point.replay {
        Some(plan) if plan.reaches_stop => eprintln!(
            "pinned: {chain} and the binlog archive replayed to {} ({} segments)",
            time(pinned),
            plan.segments.len()
        ),
        Some(plan) => eprintln!(
            "pinned to {}: {chain} and the binlog archive replayed to its last transaction \
             ({} segments). The archive does not reach {} yet: if the database server is up, run \
             `toc-backup binlog archive` and pin again to bring back what was committed after it",
            time(pinned),
            plan.segments.len(),
            time(asked)
        ),
        None => eprintln!(
            "pinned to {}: {chain}, taken then (no binlog archive reaches further)",
            time(pinned)
        ),
    }
    println!("{}", time(pinned));
    Ok(())
}

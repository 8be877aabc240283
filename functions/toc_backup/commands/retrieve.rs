//! `toc-backup retrieve`: an archived backup (Glacier, Deep Archive) brought back for a
//! restore, each file's progress shown.

use clap::{Args, ValueEnum};
use toc_sis_backup::restore::point::Point;
use toc_sis_backup::store::ArchiveState;
use toc_sis_backup::Error;

use super::{mib, print, store};
use crate::flags::{PointArgs, StoreArg};

#[derive(Args)]
pub(crate) struct RetrieveArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The point a restore will load: its whole chain (full backup and incrementals) and the
    /// binlog segments a replay to it reads are retrieved.
    #[command(flatten)]
    point: PointArgs,
    /// S3 retrieval tier: Bulk (cheapest; up to 12 h, 48 h from Deep Archive), Standard (3-5 h,
    /// 12 h from Deep Archive) or Expedited (minutes; not from Deep Archive).
    #[arg(long, value_enum, default_value_t = TierArg::Bulk)]
    tier: TierArg,
    /// Days the retrieved copies stay readable (1-30); they cost as S3 Standard meanwhile.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=30))]
    days: u32,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
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
    fn tier(self) -> toc_sis_backup::store::RetrievalTier {
        use toc_sis_backup::store::RetrievalTier;
        match self {
            TierArg::Bulk => RetrievalTier::Bulk,
            TierArg::Standard => RetrievalTier::Standard,
            TierArg::Expedited => RetrievalTier::Expedited,
        }
    }
}

pub(crate) async fn run(args: RetrieveArgs) -> Result<(), Error> {
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
    Ok(())
}

//! `toc-backup verify`: everything a restore of a point reads, re-read and checked against the
//! manifests' checksums.

use std::sync::Arc;

use clap::Args;
use toc_sis_backup::job::headway::Headway;
use toc_sis_backup::restore::point::{verify_point, Point};
use toc_sis_backup::{catalog, Error};

use super::{mib, print, store, Console};
use crate::flags::{PointArgs, StoreArg};

#[derive(Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    point: PointArgs,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: VerifyArgs, console: Console) -> Result<(), Error> {
    let store = store(&args.store).await?;
    catalog::require_backups(store.as_ref()).await?;
    // Everything a restore of this point reads: the full backup, each incremental, the binlog
    // segments a replay applies.
    let point = Point::resolve(store.as_ref(), &args.point.request()?).await?;
    toc_sis_backup::restore::archive::ensure_readable(store.as_ref(), &point).await?;
    let headway = Arc::new(Headway::default());
    headway.measure(
        format!("checking backup {}", point.backup_id()),
        point.chain.iter().map(|m| m.total_bytes()).sum::<u64>()
            + point
                .replay
                .iter()
                .flat_map(|plan| plan.segments.iter().map(|s| s.bytes))
                .sum::<u64>(),
    );
    let shown = console.progress(headway.clone());
    let outcome = verify_point(store.as_ref(), &point, &headway).await;
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
    Ok(())
}

//! The binlog archive check: whether the archive is deployed, and how far behind its recovery
//! point is (or the gap that broke it).

use chrono::{DateTime, Duration, Utc};

use super::{human_age, Check, Configured, Status};
use crate::error::Result;
use crate::store::ObjectStore;

/// The binlog archive, deployed or not: without it there is no point-in-time restore between
/// backups, which the check says rather than leaving the archive out of the report.
pub(super) fn binlog_archive_check(
    store: &dyn ObjectStore,
    head: Result<Option<crate::binlog::segment::Head>>,
    configured: Configured,
    rpo: Duration,
    now: DateTime<Utc>,
) -> Check {
    const NAME: &str = "Binlog archive";
    let head_key = crate::layout::BINLOG_HEAD_KEY;
    match (configured, head) {
        // What an earlier deployment archived is no promise about today.
        (Configured::No, _) => Check::not_configured(
            NAME,
            "the binlog archive is off (the stack's EnableBinlogArchive is false): a restore \
             reaches the latest backup, not a point in time between backups",
        ),
        (_, Ok(Some(head))) => binlog_check(&head, rpo, now),
        (Configured::Yes, Ok(None)) => Check {
            name: NAME.into(),
            status: Status::Critical,
            reason: format!(
                "is deployed but has never archived: no {head_key} in {store}; point-in-time \
                 restore is not possible until it runs after a full backup"
            ),
        },
        (Configured::FromStore, Ok(None)) => Check::not_configured(
            NAME,
            format!(
                "no binlog archive in {store} (no {head_key}): a restore reaches the latest \
                 backup, not a point in time between backups; `toc-backup binlog archive` or \
                 the stack's EnableBinlogArchive=true starts one"
            ),
        ),
        (_, Err(e)) => Check {
            name: NAME.into(),
            status: Status::Critical,
            reason: format!("its head cannot be read: {e}"),
        },
    }
}

/// The binlog archive's recovery point: how long ago it was last complete, or its gap.
fn binlog_check(head: &crate::binlog::segment::Head, rpo: Duration, now: DateTime<Utc>) -> Check {
    let name = "Binlog archive".to_string();
    if let Some(gap) = &head.gap {
        return Check {
            name,
            status: Status::Critical,
            reason: format!(
                "gap since {}: {} to {} was never archived ({}); take a full backup to start again",
                gap.found_at.to_rfc3339(),
                gap.from,
                gap.to,
                gap.reason
            ),
        };
    }
    let Some(complete) = head.complete_until else {
        return Check {
            name,
            status: Status::Critical,
            reason: format!(
                "has never reached the end of the binlog (last run {}); it is falling behind",
                head.updated_at.to_rfc3339()
            ),
        };
    };
    let lag = now - complete;
    let status = if lag <= rpo {
        Status::Ok
    } else if lag <= rpo * 3 {
        Status::Warning
    } else {
        Status::Critical
    };
    Check {
        name,
        status,
        reason: format!(
            "complete until {} ago (RPO {}): point-in-time restore reaches {}; last transaction {}",
            human_age(lag),
            human_age(rpo),
            complete.to_rfc3339(),
            head.last_commit.map_or("-".into(), |t| t.to_rfc3339())
        ),
    }
}

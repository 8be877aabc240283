//! How long "restore now" would take, held against the recovery-time objective: the estimate a
//! restore prints before it starts (the newest point's data at the newest passing restore
//! test's load rate, its binlog row changes at the replay rate), for the point a restore to now
//! would reach. Apart because it reads the store as a restore would, not as the other checks do.

use chrono::{DateTime, Duration, Utc};

use super::{Check, Status};
use crate::error::{Error, Result};
use crate::restore::estimate::{self, ReplayRate};
use crate::restore::point::Point;
use crate::restore::PointRequest;
use crate::store::ObjectStore;

pub const CHECK_NAME: &str = "Recovery time";

/// The strategy's Tier 1 (academic records) recovery requirement: one hour.
pub const DEFAULT_RTO_MINUTES: u32 = 60;

/// MONITOR_REPLAY_ROWS_PER_SECOND: unset, or a rate above zero.
pub fn replay_rate_setting(value: Option<&str>) -> Result<Option<f64>> {
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(Some(rate)),
        _ => Err(Error::Config {
            variable: "MONITOR_REPLAY_ROWS_PER_SECOND".into(),
            reason: format!(
                "is {text:?}, which is not a replay rate in rows a second above 0 (e.g. 20000)"
            ),
        }),
    }
}

/// WARNING above `rto`, CRITICAL above twice it. `replay_rows_per_second`: the replay rate of
/// this deployment's server when it is known to differ from the benchmark's.
pub(super) async fn recovery_time_check(
    store: &dyn ObjectStore,
    catalog: &crate::catalog::Catalog,
    rto: Duration,
    replay_rows_per_second: Option<f64>,
    now: DateTime<Utc>,
) -> Check {
    let point = match Point::resolve_in(store, catalog, &PointRequest::At(now)).await {
        Ok(point) => point,
        Err(e) => {
            return Check {
                name: CHECK_NAME.into(),
                status: Status::Warning,
                reason: format!("the recovery time of a restore to now cannot be estimated: {e}"),
            }
        }
    };
    let given = replay_rows_per_second.map(|rows_per_second| ReplayRate {
        rows_per_second,
        source: "MONITOR_REPLAY_ROWS_PER_SECOND".into(),
        ..estimate::benchmark_replay_rate()
    });
    let estimated = estimate::of_point_at(store, &point, None, given.as_ref()).await;
    let objective = rto.num_seconds() as f64;
    let status = if estimated.seconds > 2.0 * objective {
        Status::Critical
    } else if estimated.seconds > objective {
        Status::Warning
    } else {
        Status::Ok
    };
    let against = match status {
        Status::Ok => "within",
        _ => "OVER",
    };
    Check {
        name: CHECK_NAME.into(),
        status,
        reason: format!(
            "a restore to now ({}): {}; {against} the recovery-time objective of {} (MONITOR_RTO_MINUTES)",
            described(&point),
            estimated.text,
            super::human_age(rto)
        ),
    }
}

/// "backup X and 3 binlog segments", "backup X and 2 incrementals".
fn described(point: &Point) -> String {
    let root = point
        .chain
        .first()
        .map(|m| m.backup_id.as_str())
        .unwrap_or("none");
    match &point.replay {
        Some(plan) => format!(
            "full backup {root} and {} binlog segment(s)",
            plan.segments.len()
        ),
        None => format!(
            "backup {root} and {} incremental(s)",
            point.chain.len().saturating_sub(1)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_rate_setting_is_a_rate_above_zero_or_unset() {
        assert_eq!(replay_rate_setting(None).ok(), Some(None));
        assert_eq!(replay_rate_setting(Some(" ")).ok(), Some(None));
        assert_eq!(replay_rate_setting(Some("20000")).ok(), Some(Some(20000.0)));
        assert_eq!(replay_rate_setting(Some(" 0.5 ")).ok(), Some(Some(0.5)));
        for bad in ["0", "-3", "fast", "NaN", "inf"] {
            let error = replay_rate_setting(Some(bad))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("MONITOR_REPLAY_ROWS_PER_SECOND")
                    && error.contains(&format!("{bad:?}"))
                    && error.contains("rows a second above 0"),
                "{bad}: {error}"
            );
        }
    }
}

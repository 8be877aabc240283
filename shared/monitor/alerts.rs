//! When the monitor tells a person: on a change of what is wrong, again after a reminder
//! interval while it stays wrong, and once more (all clear) when it is fixed. The state lives
//! in the store, so runs on different machines agree.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Check, Status};
use crate::notify::{Notification, Severity};

pub use crate::layout::MONITOR_STATE_KEY as STATE_KEY;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// `name: STATUS` of every check that was not OK at the last alert.
    pub problems: Vec<String>,
    pub last_alert_at: Option<DateTime<Utc>>,
    /// When every file of the latest chain was last re-read and hashed.
    #[serde(default)]
    pub last_deep_check_at: Option<DateTime<Utc>>,
}

fn problems(checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.status != Status::Ok)
        .map(|c| format!("{}: {}", c.name, c.status))
        .collect()
}

fn severity(status: Status) -> Severity {
    match status {
        Status::Ok => Severity::Ok,
        Status::Warning => Severity::Warning,
        Status::Critical => Severity::Critical,
    }
}

pub fn body(checks: &[Check]) -> String {
    let mut lines = vec!["Every check of this run:".to_string()];
    for check in checks {
        lines.push(format!(
            "{:<8} {}: {}",
            check.status.to_string(),
            check.name,
            check.reason
        ));
    }
    lines.join("\n")
}

/// The notification this run owes, if any, and the state to store afterwards.
pub fn decide(
    previous: &AlertState,
    checks: &[Check],
    now: DateTime<Utc>,
    reminder: Duration,
) -> (Option<Notification>, AlertState) {
    // Something not deployed is a decision the stack's owner made, not a failure: telling
    // them every few hours would teach them to ignore alerts. It is still in every body.
    let alerting: Vec<Check> = checks
        .iter()
        .filter(|c| !c.is_not_configured())
        .cloned()
        .collect();
    let current = problems(&alerting);
    let worst = alerting
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Ok);
    let changed = current != previous.problems;
    let due = previous.last_alert_at.is_none_or(|at| now - at >= reminder);
    let notification = if current.is_empty() {
        (!previous.problems.is_empty()).then(|| {
            Notification::new(
                Severity::Ok,
                "all clear: every backup check passes again",
                body(checks),
            )
        })
    } else if changed || due {
        let first = alerting
            .iter()
            .filter(|c| c.status == worst)
            .map(|c| c.reason.clone())
            .next()
            .unwrap_or_default();
        let more = current.len().saturating_sub(1);
        let mut subject = first;
        if more > 0 {
            subject.push_str(&format!(" (+{more} more)"));
        }
        if !changed {
            subject = format!("reminder: {subject}");
        }
        Some(Notification::new(severity(worst), subject, body(checks)))
    } else {
        None
    };
    let state = AlertState {
        last_alert_at: if notification.is_some() {
            Some(now)
        } else {
            previous.last_alert_at
        },
        problems: current,
        last_deep_check_at: previous.last_deep_check_at,
    };
    (notification, state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn check(name: &str, status: Status) -> Check {
        Check {
            name: name.into(),
            status,
            reason: format!("{name} is {status}"),
        }
    }

    #[test]
    fn alerts_on_change_reminds_then_clears() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let reminder = Duration::hours(4);
        let bad = vec![
            check("Tier 1", Status::Critical),
            check("Tier 2", Status::Ok),
        ];
        let (first, state) = decide(&AlertState::default(), &bad, t0, reminder);
        assert!(first
            .unwrap()
            .subject
            .contains("CRITICAL: Tier 1 is CRITICAL"));
        let (second, state) = decide(&state, &bad, t0 + Duration::minutes(15), reminder);
        assert!(second.is_none(), "the same problem is not alerted twice");
        let (third, state) = decide(&state, &bad, t0 + Duration::hours(4), reminder);
        assert!(third.unwrap().subject.contains("reminder"));
        let good = vec![check("Tier 1", Status::Ok), check("Tier 2", Status::Ok)];
        let (clear, state) = decide(&state, &good, t0 + Duration::hours(5), reminder);
        assert!(clear.unwrap().subject.contains("all clear"));
        let (quiet, _) = decide(&state, &good, t0 + Duration::hours(6), reminder);
        assert!(quiet.is_none());
    }

    #[test]
    fn what_is_not_configured_is_shown_but_never_alerted() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let reminder = Duration::hours(4);
        let off = Check::not_configured("Binlog archive", "the binlog archive is off");
        assert!(off.is_not_configured() && off.status == Status::Warning);
        let quiet = vec![check("Tier 1", Status::Ok), off.clone()];
        let (first, state) = decide(&AlertState::default(), &quiet, t0, reminder);
        assert!(first.is_none(), "{first:?}");
        let (later, state) = decide(&state, &quiet, t0 + Duration::hours(9), reminder);
        assert!(later.is_none(), "no reminder of a decision: {later:?}");
        let bad = vec![check("Tier 1", Status::Critical), off.clone()];
        let (alert, state) = decide(&state, &bad, t0 + Duration::hours(10), reminder);
        let alert = alert.expect("the failure is alerted");
        assert!(alert.subject.contains("Tier 1 is CRITICAL"), "{alert:?}");
        assert!(!alert.subject.contains("+1 more"), "{alert:?}");
        assert!(alert.body.contains("not configured"), "{alert:?}");
        let (clear, _) = decide(&state, &quiet, t0 + Duration::hours(11), reminder);
        assert!(clear.expect("all clear").subject.contains("all clear"));
    }
}

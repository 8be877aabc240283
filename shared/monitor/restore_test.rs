//! The restore test: a restore to now into a scratch database (the newest full backup and the
//! binlog archive replayed on it, where the archive is there and whole; otherwise the latest
//! backup, full and its incremental chain), compared with its manifests, timed (RTO), and
//! always dropped afterwards. Its report
//! is kept in the store for the monitor, and the result is notified, pass or fail.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use mysql_async::prelude::Queryable;

use super::{human_age, Check, Status};
use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::job::headway::Headway;
use crate::mysql as db;
use crate::notify::{Notification, Notifier, Severity};
use crate::restore::{run_restore, RestoreOptions};
use crate::store::ObjectStore;

pub use crate::layout::RESTORE_TEST_LATEST_KEY as LATEST_KEY;

pub use crate::catalog::restore_tests::RestoreTestReport;

#[derive(Debug, Clone)]
pub struct RestoreTestOptions {
    /// The server that takes the scratch database (its database part is ignored).
    pub server_url: DatabaseUrl,
    pub jobs: usize,
    pub database_prefix: String,
    /// Create the objects as the test's user (`Current`, the jobs' default: the user then needs
    /// no SET USER / SET_USER_ID, which would let it act as any account, root included) or keep
    /// their definers (`Keep`). Definitions are verified without the DEFINER clause under
    /// `Current`.
    pub definer: crate::restore::definer::DefinerMode,
    /// How far the restore has got, for whoever shows progress.
    pub headway: Arc<Headway>,
}

pub async fn run_restore_test(
    store: Arc<dyn ObjectStore>,
    notifier: &dyn Notifier,
    options: &RestoreTestOptions,
    now: DateTime<Utc>,
) -> Result<RestoreTestReport> {
    run_restore_test_until(store, notifier, options, now, std::future::pending()).await
}

/// As [`run_restore_test`], stopped when `stop` completes (with the reason): a Lambda's
/// deadline. A stopped test kills its loads, drops the scratch database, and reports TIMED OUT
/// with how far it got, so a time limit never leaves student data behind unreported.
pub async fn run_restore_test_until(
    store: Arc<dyn ObjectStore>,
    notifier: &dyn Notifier,
    options: &RestoreTestOptions,
    now: DateTime<Utc>,
    stop: impl Future<Output = String>,
) -> Result<RestoreTestReport> {
    check_database_prefix(&options.database_prefix)?;
    let scratch = scratch_database_name(&options.database_prefix, now);
    let started = Instant::now();
    let headway = options.headway.clone();
    // A restore to now, as a recovery would run it: through the binlog archive when it is whole
    // (the replay is tested and its rate measured too).
    let point = match crate::binlog::segment::read_head(store.as_ref()).await {
        Ok(Some(head)) if head.gap.is_none() && head.complete_until.is_some() => {
            crate::restore::PointRequest::At(now)
        }
        _ => crate::restore::PointRequest::Backup("latest".into()),
    };
    let restore_options = RestoreOptions {
        server_url: options.server_url.clone(),
        point,
        target_database: scratch.clone(),
        // Never into a database that is there already: it is not this test's to empty (a
        // second test started the same second, or someone's copy kept by hand).
        force: false,
        jobs: options.jobs,
        definer: options.definer,
        // The test restores data into a scratch database; accounts are server-wide.
        with_accounts: false,
        resume: false,
        headway: headway.clone(),
        tables: None,
    };
    // The scratch database is dropped below whatever happens: how to finish it is no advice
    // for this report, only why it stopped.
    let restore = async {
        run_restore(store.clone(), &restore_options)
            .await
            .map_err(|e| match e {
                Error::RestoreIncomplete { cause, .. } => *cause,
                other => other,
            })
    };
    let mut timed_out = false;
    let outcome = tokio::select! {
        outcome = restore => outcome,
        reason = stop => {
            timed_out = true;
            Err(Error::Interrupted(format!(
                "TIMED OUT after {:.0} s while {} ({reason})",
                started.elapsed().as_secs_f64(),
                headway.describe()
            )))
        }
    };
    let rto_seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    // The scratch database goes whatever happened: a failed test must not leave a copy of
    // student data behind. One that was there before the test is someone else's and stays.
    let found_existing = matches!(
        &outcome,
        Err(Error::TargetNotEmpty { .. } | Error::InterruptedRestore { .. })
    );
    let dropped = match found_existing {
        true => None,
        false => Some(drop_scratch(&options.server_url, &scratch).await),
    };
    if let Some(Err(e)) = &dropped {
        tracing::error!(database = %scratch, "could not drop the scratch database: {e}");
    }
    let report = match &outcome {
        Ok(r) => RestoreTestReport {
            tested_at: now.to_rfc3339(),
            passed: true,
            backup_id: Some(r.backup_id.clone()),
            chain: r.chain.clone(),
            rto_seconds,
            data_bytes: r.data_bytes,
            tables: r.tables,
            rows: r.rows,
            scratch_database: scratch.clone(),
            error: None,
            timed_out: false,
            replay_row_changes: r.binlog.as_ref().map_or(0, |b| b.row_changes),
            replay_transactions: r.binlog.as_ref().map_or(0, |b| b.transactions),
            replay_seconds: r.binlog.as_ref().map_or(0.0, |b| b.seconds),
        },
        Err(e) => RestoreTestReport {
            tested_at: now.to_rfc3339(),
            passed: false,
            backup_id: None,
            chain: Vec::new(),
            rto_seconds,
            data_bytes: 0,
            tables: 0,
            rows: 0,
            scratch_database: scratch.clone(),
            error: Some(e.to_string()),
            timed_out,
            replay_row_changes: 0,
            replay_transactions: 0,
            replay_seconds: 0.0,
        },
    };
    let bytes = serde_json::to_vec_pretty(&report).map_err(|e| Error::Task(e.to_string()))?;
    store
        .put(
            &crate::layout::restore_test_key(&now.format("%Y%m%dT%H%M%SZ").to_string()),
            bytes.clone().into(),
        )
        .await?;
    store.put(LATEST_KEY, bytes.into()).await?;
    let scratch_fate = match &dropped {
        None => format!("The database {scratch} was there before the test and was left as it was."),
        Some(Ok(())) => format!("The scratch database {scratch} was dropped."),
        Some(Err(e)) => format!(
            "The scratch database {scratch} could NOT be dropped ({e}): it holds a copy of student records; drop it by hand."
        ),
    };
    let note = match &outcome {
        Ok(r) => Notification::new(
            Severity::Ok,
            format!("restore test passed: {} restored and verified in {rto_seconds:.0} s", r.backup_id),
            format!(
                "The restore test restored backup {} (chain {}) into {scratch}, checked {} tables ({} rows), \
                 every fingerprint and definition against the manifests, in {rto_seconds:.1} s. {scratch_fate}",
                r.backup_id,
                r.chain.join(" -> "),
                r.tables,
                r.rows
            ),
        ),
        Err(e) if timed_out => Notification::new(
            Severity::Critical,
            format!("restore test TIMED OUT after {rto_seconds:.0} s"),
            format!(
                "The monthly restore test of the latest backup did not finish in the time it had, so the recovery time is unproven.\n{e}\n{scratch_fate}\n\
                 Raise the function's memory (more vCPU), or move the restore test off Lambda (README: \"Lambda budget\")."
            ),
        ),
        Err(e) => Notification::new(
            Severity::Critical,
            format!("restore test FAILED: {e}"),
            format!("The monthly restore test of the latest backup failed after {rto_seconds:.1} s.\nCause: {e}\n{scratch_fate}"),
        ),
    };
    if let Err(e) = notifier.notify(&note).await {
        tracing::error!("could not send the restore test's notification: {e}");
    }
    match outcome {
        Ok(_) => Ok(report),
        Err(e) => Err(e),
    }
}

/// What a scratch database's name adds to its prefix: `_`, the second, `_`, 8 hex digits.
const SCRATCH_SUFFIX_LENGTH: usize = 24;

/// Refuses a prefix that leaves no valid database name: MySQL names are at most 64 characters.
pub fn check_database_prefix(prefix: &str) -> Result<()> {
    let limit = 64 - SCRATCH_SUFFIX_LENGTH;
    if prefix.is_empty() || prefix.chars().count() > limit || prefix.ends_with(' ') {
        return Err(Error::InvalidValue {
            what: "restore test database prefix",
            value: prefix.to_string(),
            expected: format!(
                "1 to {limit} characters, not ending in a space (the scratch database is named PREFIX_<second>_<random>, at most 64 characters)"
            ),
        });
    }
    Ok(())
}

/// The scratch database of a test started at `now`: a random suffix after the second, so two
/// tests started together (the schedule and a manual run) never share one, where the first to
/// finish would kill the other's connections and drop its copy.
fn scratch_database_name(prefix: &str, now: DateTime<Utc>) -> String {
    format!(
        "{prefix}_{}_{:08x}",
        now.format("%Y%m%d%H%M%S"),
        rand::random::<u32>()
    )
}

/// Drops the scratch database, first killing any connection still working in it (a restore
/// stopped by its deadline leaves its loads running on the server, and their locks would hold
/// the DROP). A user sees and may kill its own connections without the PROCESS privilege.
async fn drop_scratch(url: &DatabaseUrl, database: &str) -> Result<()> {
    let context = || format!("dropping scratch database `{database}`");
    let mut conn = db::connect(&url.with_database(None), None).await?;
    let busy: Vec<u64> = conn
        .exec(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
            (database,),
        )
        .await
        .map_err(|e| Error::database(context(), e))?;
    for id in busy {
        // Gone already is as good as killed.
        let _ = conn.query_drop(format!("KILL {id}")).await;
    }
    db::run_all(&mut conn, &["SET SESSION lock_wait_timeout = 60"]).await?;
    db::drop_database(&mut conn, database).await?;
    let _ = conn.disconnect().await;
    Ok(())
}

/// The monitor's view: the last restore test passed, within `max_age`.
pub async fn recency_check(
    store: &dyn ObjectStore,
    max_age: Duration,
    now: DateTime<Utc>,
) -> Check {
    let check = |status, reason: String| Check {
        name: "Restore test".into(),
        status,
        reason,
    };
    let report: Option<RestoreTestReport> = match store.get(LATEST_KEY).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok(),
        Ok(None) => None,
        Err(e) => {
            return check(
                Status::Warning,
                format!("the last restore test's report is unreadable: {e}"),
            )
        }
    };
    let Some(report) = report else {
        return check(Status::Warning, "no restore test has run yet".into());
    };
    let age = DateTime::parse_from_rfc3339(&report.tested_at)
        .map(|t| now - t.with_timezone(&Utc))
        .unwrap_or(Duration::MAX);
    if !report.passed {
        return check(
            Status::Critical,
            format!(
                "the last restore test ({} ago) FAILED: {}",
                human_age(age),
                report.error.unwrap_or_default()
            ),
        );
    }
    if age > max_age {
        return check(
            Status::Warning,
            format!(
                "the last restore test passed {} ago, longer than {}",
                human_age(age),
                human_age(max_age)
            ),
        );
    }
    check(
        Status::Ok,
        format!(
            "the last restore test passed {} ago (RTO {:.0} s)",
            human_age(age),
            report.rto_seconds
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names_differ_within_a_second_and_fit_a_database_name() {
        let now = Utc::now();
        let longest = "p".repeat(64 - SCRATCH_SUFFIX_LENGTH);
        let first = scratch_database_name(&longest, now);
        assert_eq!(first.chars().count(), 64, "{first}");
        assert_ne!(first, scratch_database_name(&longest, now));
        assert!(check_database_prefix(&longest).is_ok());
        for bad in ["", "trailing ", &format!("{longest}p")] {
            let error = check_database_prefix(bad).expect_err(bad).to_string();
            assert!(
                error.contains("restore test database prefix") && error.contains("1 to 40"),
                "{error}"
            );
        }
    }
}

//! The binlog replay as a step of a restore, recorded in the target as it goes: a lost
//! connection continues it on a new one, and `restore --resume` after a failure or a kill
//! continues it, both after the last transaction the target holds.

use super::progress::{self, REPLAY_CHECKPOINT_STEP, REPLAY_DONE_STEP, REPLAY_TRIGGERS_STEP};
use super::session::{retrying, Session};
use super::Loader;
use crate::binlog::{Checkpoint, Journal, ReplayPlan, ReplayReport};
use crate::error::{Error, Result};

pub(super) async fn run(
    loader: &mut Loader,
    plan: &ReplayPlan,
    source_database: &str,
) -> Result<ReplayReport> {
    let target = loader.options.target_database.clone();
    let unreadable = |e: serde_json::Error| Error::CannotResume {
        database: target.clone(),
        reason: format!(
            "its recorded binlog replay cannot be read ({e}); start again with --force"
        ),
    };
    if let Some(Some(detail)) = loader.done.get(REPLAY_DONE_STEP) {
        tracing::info!("the binlog replay was finished by the interrupted run");
        return serde_json::from_str(detail).map_err(unreadable);
    }
    let store = loader.store.clone();
    let tables = loader.options.tables.clone();
    let mut session = Session::counting_found_rows(&loader.url, &target);
    let replayed = retrying!(
        session,
        "replaying the binlog archive",
        |conn, _attempt| async {
            // Read again at every attempt: what the target holds is what was committed.
            let resume_from = match progress::recorded(conn, REPLAY_CHECKPOINT_STEP).await? {
                Some(Some(detail)) => {
                    Some(serde_json::from_str::<Checkpoint>(&detail).map_err(unreadable)?)
                }
                _ => None,
            };
            let journal = Journal {
                step: REPLAY_CHECKPOINT_STEP.to_string(),
                resume_from,
                non_transactional: super::non_transactional_tables(conn, &target).await?,
            };
            crate::binlog::replay(
                store.as_ref(),
                plan,
                conn,
                source_database,
                &target,
                tables.as_deref(),
                Some(&journal),
            )
            .await
        }
    );
    session.close().await;
    let report = replayed?;
    let detail = serde_json::to_string(&report).map_err(|e| Error::Task(e.to_string()))?;
    retrying!(
        loader.session,
        "recording the finished binlog replay",
        |conn, _attempt| async { progress::mark(conn, REPLAY_DONE_STEP, Some(&detail)).await }
    )?;
    Ok(report)
}

/// The trigger and event statements the replay kept out of the target while it applied rows, run in
/// their logged order once the backup's own triggers are in; each recorded as it runs, so a
/// resumed restore goes on after the last one.
pub(super) async fn create_deferred_triggers(
    loader: &mut Loader,
    report: &ReplayReport,
) -> Result<()> {
    if report.deferred.is_empty() {
        return Ok(());
    }
    let deferred = &report.deferred;
    retrying!(
        loader.session,
        "creating the triggers and events of the replayed binlog",
        |conn, _attempt| async {
            let done = match progress::recorded(conn, REPLAY_TRIGGERS_STEP).await? {
                Some(Some(detail)) => detail.parse::<usize>().unwrap_or(0),
                _ => 0,
            };
            for (i, statement) in deferred.iter().enumerate().skip(done) {
                crate::binlog::create_deferred(conn, statement).await?;
                progress::mark(conn, REPLAY_TRIGGERS_STEP, Some(&(i + 1).to_string())).await?;
            }
            Ok(())
        }
    )
}

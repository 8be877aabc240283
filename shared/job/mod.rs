//! What every job shares, below the jobs themselves: the progress tracker every long job
//! reports to ([`headway`]), how a job alerts a person ([`alert`]), and the one wrapper every
//! scheduled job runs in ([`run_job_until`]). Jobs import this module; it imports no job.

pub mod alert;
pub mod headway;

use std::future::Future;

use crate::error::{Error, Result};
use crate::notify::Notifier;
use crate::store::ObjectStore;

/// How a job describes its own failure: the alert, and the folders its run wrote into (removed
/// before the alert, so nothing half-written stays behind), if it wrote into folders of its own.
pub struct Failure {
    pub subject: String,
    pub body: String,
    pub discard_prefixes: Vec<String>,
}

/// Runs `work` until it ends or `interrupt` completes (a signal, the Lambda's deadline; its
/// output is the reason). On failure: `describe` says what failed (called at once, so times in
/// it are the failure's), `settle` waits for uploads still in flight, the run's folder is
/// removed, a person is alerted ([`alert::severity_of`]), and the error is returned. What a
/// success notifies is the job's own.
pub async fn run_job_until<T>(
    store: &dyn ObjectStore,
    notifier: &dyn Notifier,
    work: impl Future<Output = Result<T>>,
    interrupt: impl Future<Output = String>,
    settle: impl Future<Output = ()>,
    describe: impl FnOnce(&Error) -> Failure,
) -> Result<T> {
    let outcome = tokio::select! {
        outcome = work => outcome,
        reason = interrupt => Err(Error::Interrupted(reason)),
    };
    let error = match outcome {
        Ok(done) => return Ok(done),
        Err(error) => error,
    };
    let Failure {
        subject,
        body,
        discard_prefixes,
    } = describe(&error);
    settle.await;
    alert::discard_and_alert(store, notifier, &discard_prefixes, &error, subject, body).await;
    Err(error)
}

/// The alert's subject for a `job` (`full backup`) of `what` that ended with `error`: FAILED,
/// or skipped when it paused itself for a restore in progress (then a WARNING,
/// [`alert::severity_of`]).
pub fn failure_subject(job: &str, what: &str, error: &Error) -> String {
    match error {
        Error::RestoreInProgress { .. } => {
            format!("{job} of {what} skipped: a restore is in progress")
        }
        _ => format!("{job} of {what} FAILED"),
    }
}

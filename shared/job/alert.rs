//! How a job tells a person: a notification sent, or logged when it cannot be; a failed run's
//! files removed before the alert, so nothing half-written stays behind.

use crate::error::Error;
use crate::notify::{Notification, Notifier, Severity};
use crate::store::ObjectStore;

/// Sends `note`; a notification that cannot be sent is logged as an error (the job's own
/// outcome stands).
pub async fn notify_or_log(notifier: &dyn Notifier, note: &Notification) {
    if let Err(e) = notifier.notify(note).await {
        tracing::error!(subject = %note.subject, "could not send notification: {e}");
    }
}

/// A job that failed is CRITICAL; one that paused itself for a restore in progress, WARNING.
pub fn severity_of(error: &Error) -> Severity {
    match error {
        Error::RestoreInProgress { .. } => Severity::Warning,
        _ => Severity::Critical,
    }
}

/// Removes what a failed run wrote, so nothing half-written stays behind, and tells a person.
pub async fn discard_and_alert(
    store: &dyn ObjectStore,
    notifier: &dyn Notifier,
    prefixes: &[String],
    error: &Error,
    subject: String,
    body: String,
) {
    for prefix in prefixes {
        if let Err(e) = store.delete_prefix(prefix).await {
            tracing::warn!(%prefix, "could not remove the files of the failed backup: {e}");
        }
    }
    notify_or_log(
        notifier,
        &Notification::new(severity_of(error), subject, body),
    )
    .await;
}

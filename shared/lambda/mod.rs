//! What the Lambda functions do, kept out of their thin entry points: configuration read and
//! checked once per cold start, events parsed strictly, jobs run against the invocation's
//! deadline, and every failure notified before it is returned.

pub mod binlog;
pub mod context;
pub mod dump;
mod event;
pub mod files;
pub mod incremental;
pub mod monitor;
pub mod restore_test;

pub use crate::env::{Env, ProcessEnv};
pub use event::{DumpEvent, ManualDump};

use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// One function's invocation logic, whatever runs it (the Lambda runtime, or a test).
#[async_trait::async_trait]
pub trait Handler: Send + Sync {
    async fn handle(
        &self,
        event: serde_json::Value,
        deadline: Option<SystemTime>,
    ) -> Result<serde_json::Value>;

    /// Called when `handle` panicked, before the error goes back to Lambda: the alert a person
    /// sees (the panic is a bug, and the job it interrupted did not finish).
    async fn panicked(&self, _message: &str) {}
}

/// Runs one invocation, turning a panic into an alert and an ordinary error rather than a dead
/// process. A panic leaves the job unfinished exactly as a failure does: nothing it wrote
/// has a manifest.
pub async fn handle_guarded(
    handler: &(impl Handler + ?Sized),
    event: serde_json::Value,
    deadline: Option<SystemTime>,
) -> Result<serde_json::Value> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(handler.handle(event, deadline))
        .catch_unwind()
        .await
    {
        Ok(outcome) => outcome,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            tracing::error!(panic = %message, "the function panicked");
            handler.panicked(&message).await;
            Err(Error::Panicked(message))
        }
    }
}

/// Runs a handler under the Lambda runtime: JSON logs (from the function's logging config),
/// the invocation's deadline passed on.
pub async fn serve(handler: impl Handler) -> std::result::Result<(), lambda_runtime::Error> {
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            let deadline = event.context.deadline();
            handle_guarded(handler, event.payload, Some(deadline))
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

/// A function's whole life: configuration checked at cold start (a bad value stops it with a
/// one-line error naming the variable, which Lambda reports as an init failure), then serving.
pub async fn start<H: Handler>(
    init: impl std::future::Future<Output = Result<H>>,
) -> std::process::ExitCode {
    let handler = match init.await {
        Ok(handler) => handler,
        Err(e) => {
            tracing::error!(error = %e, "cold start failed");
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match serve(handler).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the Lambda runtime stopped");
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// How often a long job logs how far it has got (Lambda has no terminal for a bar).
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(crate::defaults::PROGRESS_SECONDS);

/// Time left before the invocation is killed, if there is a deadline.
pub fn remaining(deadline: Option<SystemTime>) -> Option<Duration> {
    deadline.map(|d| d.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The answer of a scheduled run that paused itself (a restore in progress on its database):
/// a success for Lambda, so neither the Errors alarm nor the schedule's retries fire; the
/// WARNING was sent by the job.
pub(crate) fn skipped(reason: &crate::Error) -> serde_json::Value {
    serde_json::json!({ "skipped": reason.to_string() })
}

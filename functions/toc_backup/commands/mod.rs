//! One module per subcommand: its flags beside the code that runs it. What several share (the
//! store, the notifier, how a result is printed, when to stop) is here.

pub(crate) mod binlog;
pub(crate) mod catalog;
pub(crate) mod completions;
pub(crate) mod cost;
pub(crate) mod doctor;
pub(crate) mod dump;
pub(crate) mod files;
pub(crate) mod incremental;
pub(crate) mod list;
pub(crate) mod man;
pub(crate) mod monitor;
pub(crate) mod point;
pub(crate) mod prune;
pub(crate) mod restore;
pub(crate) mod restore_test;
pub(crate) mod retrieve;
pub(crate) mod sample_data;
pub(crate) mod setup_users;
pub(crate) mod verify;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use toc_sis_backup::job::headway::Headway;
use toc_sis_backup::monitor::{MonitorReport, Status};
use toc_sis_backup::notify::sns::SnsNotifier;
use toc_sis_backup::notify::{LogNotifier, Notifier};
use toc_sis_backup::store::{open_store, ObjectStore};
use toc_sis_backup::Error;

use crate::args::LogFormat;
use crate::flags::StoreArg;
use crate::progress::{self, Progress};

/// How the person at the other end is shown a long job: the global flags.
#[derive(Clone, Copy)]
pub(crate) struct Console {
    pub(crate) log_format: LogFormat,
    pub(crate) progress_every: Duration,
}

impl Console {
    /// A bar on a terminal, a log line every `progress_every` otherwise.
    pub(crate) fn progress(&self, headway: Arc<Headway>) -> Progress {
        progress::start(headway, self.log_format, self.progress_every)
    }
}

pub(crate) async fn store(arg: &StoreArg) -> Result<Arc<dyn ObjectStore>, Error> {
    open_store(&arg.store).await
}

/// SNS when a topic is configured, the log otherwise.
pub(crate) async fn notifier(topic_arn: Option<&str>) -> Arc<dyn Notifier> {
    match topic_arn {
        Some(arn) => {
            let config = toc_sis_backup::aws::sdk_config().await;
            Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(&config), arn))
        }
        None => Arc::new(LogNotifier),
    }
}

/// Completes on Ctrl-C or SIGTERM (what cron, systemd and container runtimes send), naming it.
pub(crate) async fn shutdown_signal() -> String {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return "received Ctrl-C (SIGINT)".into(),
                _ = term.recv() => return "received SIGTERM".into(),
            }
        }
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => "received Ctrl-C (SIGINT)".into(),
        Err(_) => std::future::pending().await,
    }
}

pub(crate) fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T) -> String) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: cannot print the result as JSON: {e}"),
        }
    } else {
        println!("{}", human(value));
    }
}

pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `status`, `monitor` and `doctor`: the overall status, then one line a check.
pub(crate) fn print_checks(report: &MonitorReport) -> String {
    let mut lines = vec![format!("overall: {}", report.status)];
    for check in &report.checks {
        lines.push(format!(
            "{:<9} {:<22} {}",
            check.status.to_string(),
            check.name,
            check.reason
        ));
    }
    lines.join("\n")
}

/// The Nagios/Icinga convention monitoring agents understand: 0 OK, 1 WARNING, 2 CRITICAL.
pub(crate) fn exit_code(status: Status) -> u8 {
    match status {
        Status::Ok => 0,
        Status::Warning => 1,
        Status::Critical => 2,
    }
}

/// Writes generated text to standard output; a reader that stops early (`| head`) is not an
/// error.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::Task(format!("writing to standard output: {e}")))
        }
        _ => Ok(()),
    }
}

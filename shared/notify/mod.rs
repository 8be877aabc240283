//! Telling a person what happened: SNS (email/SMS) in AWS, the log as the embedded default.

pub mod sns;

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Ok,
    Warning,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Ok => "OK",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub severity: Severity,
    /// One line a person understands at a glance (SNS allows at most 100 characters).
    pub subject: String,
    pub body: String,
}

/// SNS subjects are ASCII without control characters and under 100 characters.
const SUBJECT_MAX: usize = 99;

impl Notification {
    pub fn new(severity: Severity, subject: impl Into<String>, body: impl Into<String>) -> Self {
        let mut subject: String = format!("[TOC-SIS backup] {severity}: {}", subject.into())
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if subject.len() > SUBJECT_MAX {
            subject.truncate(SUBJECT_MAX - 3);
            subject.push_str("...");
        }
        Notification {
            severity,
            subject,
            body: body.into(),
        }
    }
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, notification: &Notification) -> Result<()>;
}

/// Writes notifications to the log: what a laptop run or a cron job without SNS gets.
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn notify(&self, n: &Notification) -> Result<()> {
        match n.severity {
            Severity::Critical => {
                tracing::error!(severity = %n.severity, body = %n.body, "ALERT {}", n.subject)
            }
            Severity::Warning => {
                tracing::warn!(severity = %n.severity, body = %n.body, "ALERT {}", n.subject)
            }
            Severity::Ok => tracing::info!(severity = %n.severity, body = %n.body, "{}", n.subject),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_fit_sns_limit() {
        let n = Notification::new(Severity::Critical, "x".repeat(300), "");
        assert_eq!(n.subject.len(), 99);
        assert!(n.subject.starts_with("[TOC-SIS backup] CRITICAL: "));
        let n = Notification::new(Severity::Warning, "Seán's backup\nfailed", "");
        assert_eq!(n.subject, "[TOC-SIS backup] WARNING: Se?n's backup?failed");
    }
}

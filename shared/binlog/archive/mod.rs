//! The archive job: connect as a replica, read the binlog from where the archive ends (or from
//! the latest full backup's snapshot position), write sealed segments, and stop at the end of
//! the binlog or before the deadline. A stretch the server no longer holds is a gap: never
//! stitched over, reported, and closed only by a newer full backup.
//!
//! This file holds the job's options, its report and its two entry points, and writes the
//! head. Where a run starts is `start`, the stream into segments `stream`, the rows an event
//! changed `rows`, and the check for deleted history rows `history`.

mod history;
mod rows;
mod start;
mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::segment::{GapRecord, Head};
use super::server;
use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::store::ObjectStore;
use history::history_deleted;
use start::choose_start;
use stream::Run;

/// The server id this tool registers with when none is configured: high, to stay clear of the
/// small ids replicas are usually given.
pub const DEFAULT_REPLICA_SERVER_ID: u32 = 2_026_112_817;
/// Segments are cut after the transaction that takes them past this many bytes.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    pub url: DatabaseUrl,
    pub replica_server_id: u32,
    /// Stop (between transactions) once this moment has passed.
    pub deadline: Option<Instant>,
    pub segment_bytes: u64,
    /// Bytes of binlog read, for whoever shows progress.
    pub headway: Arc<crate::job::headway::Headway>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArchiveReport {
    pub anchor: String,
    pub started_from: String,
    pub next: String,
    pub segments: Vec<String>,
    pub events: u64,
    pub transactions: u64,
    pub row_changes: u64,
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    pub last_commit: Option<DateTime<Utc>>,
    /// Every transaction committed before this moment is archived (None: stopped early).
    pub complete_until: Option<DateTime<Utc>>,
    /// A stretch this run found unarchivable (the archive went on from a newer full backup).
    pub gap: Option<GapRecord>,
    /// System-versioned tables whose history rows this run archived deletions of (DELETE
    /// HISTORY, a history partition dropped), each "`db`.`table` in the transaction ending at
    /// file:position": no replay can remove history rows exactly, so a point-in-time restore
    /// past it refuses until a full backup is taken after it.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub history_deleted: Vec<String>,
    pub seconds: f64,
}

pub async fn run_archive(
    store: Arc<dyn ObjectStore>,
    options: &ArchiveOptions,
) -> Result<ArchiveReport> {
    let started = Instant::now();
    store.check().await?;
    let url = options.url.with_database(None);
    let mut conn = crate::mysql::connect(&url, None).await?;
    let server = server::inspect(&mut conn, options.replica_server_id).await?;
    let _ = conn.disconnect().await;
    let head_version = store.get_versioned(crate::layout::BINLOG_HEAD_KEY).await?;
    let head: Option<Head> = match &head_version {
        None => None,
        Some((bytes, _)) => {
            Some(
                serde_json::from_slice(bytes).map_err(|e| Error::InvalidManifest {
                    key: crate::layout::BINLOG_HEAD_KEY.into(),
                    reason: e.to_string(),
                })?,
            )
        }
    };
    let mut head_tag = head_version.map(|(_, tag)| tag);
    let start = match choose_start(store.as_ref(), head.as_ref(), &server).await {
        Ok(start) => start,
        Err(Error::BinlogGap { from, to, reason }) => {
            // Recorded so that monitor and the next run know, then reported.
            if let Some(mut head) = head.clone() {
                if head.gap.is_none() {
                    head.gap = Some(GapRecord {
                        from: from.clone(),
                        to: to.clone(),
                        reason: reason.clone(),
                        found_at: Utc::now(),
                    });
                    head.updated_at = Utc::now();
                    put_head(store.as_ref(), &head, &mut head_tag).await?;
                }
            }
            return Err(Error::BinlogGap { from, to, reason });
        }
        Err(e) => return Err(e),
    };
    tracing::info!(from = %start.from, anchor = %start.anchor, "archiving the binlog");
    options
        .headway
        .measure("archiving the binlog", server.bytes_after(&start.from));

    let mut run = Run {
        store: store.clone(),
        server: server.clone(),
        options: options.clone(),
        anchor: start.anchor.clone(),
        previous: start.previous.clone(),
        next_start: start.from.clone(),
        report: ArchiveReport {
            anchor: start.anchor.clone(),
            started_from: start.from.to_string(),
            next: start.from.to_string(),
            segments: Vec::new(),
            events: 0,
            transactions: 0,
            row_changes: 0,
            bytes: 0,
            uncompressed_bytes: 0,
            last_commit: head.as_ref().and_then(|h| h.last_commit),
            complete_until: None,
            gap: start.gap.clone(),
            history_deleted: Vec::new(),
            seconds: 0.0,
        },
        head_tag,
        complete_until: head
            .as_ref()
            .filter(|h| h.anchor == start.anchor)
            .and_then(|h| h.complete_until),
        deleted_from: BTreeMap::new(),
    };
    let outcome = run.stream(&url, &start.from).await;
    if let Err(e) = outcome {
        return Err(match e {
            Error::Database { context, source }
                if crate::mysql::server_code(&source) == Some(1236) =>
            {
                Error::BinlogGap {
                    from: run.next_start.to_string(),
                    to: server
                        .files
                        .first()
                        .map_or("the server's first binlog".into(), |f| format!("{f}:4")),
                    reason: format!("the server no longer holds it ({context}: {source})"),
                }
            }
            other => other,
        });
    }
    run.report.history_deleted =
        history_deleted(store.as_ref(), &run.anchor, &url, &run.deleted_from).await?;
    // Written even when nothing was archived: how far the archive is known to be complete.
    run.write_head().await?;
    run.report.next = run.next_start.to_string();
    run.report.complete_until = run.complete_until;
    run.report.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    Ok(run.report)
}

async fn put_head(store: &dyn ObjectStore, head: &Head, tag: &mut Option<String>) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(head).map_err(|e| Error::InvalidManifest {
        key: crate::layout::BINLOG_HEAD_KEY.into(),
        reason: e.to_string(),
    })?;
    if !store
        .put_if(
            crate::layout::BINLOG_HEAD_KEY,
            bytes::Bytes::from(bytes),
            tag.as_deref(),
        )
        .await?
    {
        return Err(Error::StoreBusy(format!(
            "another binlog archive run moved {} while this one ran; this run stopped (its sealed segments stay)",
            crate::layout::BINLOG_HEAD_KEY
        )));
    }
    *tag = store
        .get_versioned(crate::layout::BINLOG_HEAD_KEY)
        .await?
        .map(|(_, tag)| tag);
    Ok(())
}

/// [`run_archive`], with a CRITICAL alert for a failure or a gap (the one thing a person must
/// act on: point-in-time restore is impossible across it until the next full backup).
pub async fn run_archive_alerting(
    store: Arc<dyn ObjectStore>,
    notifier: &dyn crate::notify::Notifier,
    options: &ArchiveOptions,
) -> Result<ArchiveReport> {
    use crate::notify::{Notification, Severity};
    let location = store.to_string();
    let report = crate::job::run_job_until(
        store.as_ref(),
        notifier,
        run_archive(store.clone(), options),
        // The archive runs to its own deadline (`ArchiveOptions`), then seals and stops.
        std::future::pending(),
        async {},
        |e| {
            let (subject, next) = if matches!(e, Error::BinlogGap { .. }) {
                ("binlog archive gap", "Take a full backup (the dump function, or `toc-backup dump`): the archive starts again at its snapshot.")
            } else {
                ("binlog archive failed", "Segments sealed before the failure stay; the next run goes on from the last one.")
            };
            crate::job::Failure {
                subject: subject.to_string(),
                body: format!("{e}\nStore: {location}. {next}"),
                // Sealed segments stay good; an unsealed one has no manifest, so nothing reads it.
                discard_prefixes: Vec::new(),
            }
        },
    )
    .await?;
    if let Some(gap) = &report.gap {
        let note = Notification::new(
            Severity::Critical,
            "binlog archive gap",
            format!(
                "The binlog from {} to {} was never archived: {}.\nPoint-in-time restore into that stretch is impossible. The archive went on from full backup {} (store {location}).",
                gap.from, gap.to, gap.reason, report.anchor
            ),
        );
        crate::job::alert::notify_or_log(notifier, &note).await;
    }
    if !report.history_deleted.is_empty() {
        let note = Notification::new(
            Severity::Warning,
            "history rows deleted from system-versioned tables",
            format!(
                "The binlog archived by this run deletes history rows (DELETE HISTORY, or a history partition dropped) of:\n{}\nNo replay can remove history rows exactly: a point-in-time restore to any moment after that, from a full backup taken before it, refuses. Take a full backup now (the dump function, or `toc-backup dump`) so that later moments restore. Store {location}.",
                report.history_deleted.join("\n")
            ),
        );
        crate::job::alert::notify_or_log(notifier, &note).await;
    }
    Ok(report)
}

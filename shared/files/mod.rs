//! Tier 3 file backups: uploaded documents and the application tree, as deduplicated snapshots.
//!
//! Each run walks a source (a folder or an S3 prefix), stores the content the store does not
//! hold yet under its SHA-256, and writes a snapshot manifest last. Files whose size, times and
//! inode match the previous snapshot are not read again, so an unchanged tree costs a listing
//! and one small manifest. Restores check every hash; retention removes old snapshots and
//! garbage collection removes content that no remaining snapshot names.

mod backup;
pub mod collect;
pub mod export;
pub mod lock;
pub mod path;
pub mod restore;
pub mod snapshot;
pub mod source;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;

pub use collect::{prune_and_collect, CollectReport};
pub use export::export_snapshot;
pub use path::RawPath;
pub use restore::{restore_snapshot, FileRestoreOptions, FileRestoreReport};
pub use snapshot::{list_snapshots, select_snapshot, Problem, Snapshot, Totals};
pub use source::{Excludes, FileSource, APPLICATION_EXCLUDES};

use crate::error::Result;
use crate::job::alert::notify_or_log;
use crate::job::{run_job_until, Failure};
use crate::layout::new_backup_id;
use crate::notify::{Notification, Notifier, Severity};
use crate::retention::RetentionPolicy;
use crate::store::ObjectStore;

/// How long a backup waits for a running garbage collection before giving up.
const COLLECT_WAIT: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone)]
pub struct FileBackupOptions {
    /// Names the snapshots (`uploads`, `application`): key part and alert subject.
    pub source_name: String,
    /// A folder, or `s3://BUCKET/PREFIX`.
    pub source: String,
    pub excludes: Vec<String>,
    pub label: Option<String>,
    /// Files read and stored at once.
    pub jobs: usize,
    pub notify_success: bool,
    /// Snapshot retention and garbage collection after a successful run.
    pub retention: Option<RetentionPolicy>,
    /// Bytes checked of the source's files, for whoever shows progress.
    pub headway: std::sync::Arc<crate::job::headway::Headway>,
}

impl FileBackupOptions {
    pub fn new(source_name: impl Into<String>, source: impl Into<String>) -> Self {
        FileBackupOptions {
            source_name: source_name.into(),
            source: source.into(),
            excludes: Vec::new(),
            label: None,
            jobs: 4,
            notify_success: false,
            retention: None,
            headway: Default::default(),
        }
    }
}

impl FileBackupOptions {
    /// `patterns`, plus the strategy document's application-tree list when `application`.
    pub fn with_excludes(mut self, patterns: Vec<String>, application: bool) -> Self {
        self.excludes = patterns;
        if application {
            self.excludes
                .extend(APPLICATION_EXCLUDES.iter().map(|p| p.to_string()));
        }
        self
    }
}

/// The file snapshots' default retention: three months of dailies, never fewer than 7. Kept
/// content costs nothing extra per snapshot, so this bounds how long a deleted upload can be
/// brought back from the backup itself (bucket versioning keeps deletions longer in AWS).
/// Snapshots older than this many days are removed (`FILES_KEEP_DAYS`)…
pub const DEFAULT_KEEP_DAYS: u32 = 90;
/// …but the newest this many of each source are always kept (`FILES_KEEP_MIN`).
pub const DEFAULT_KEEP_MIN: usize = 7;

pub fn default_file_retention() -> RetentionPolicy {
    RetentionPolicy {
        keep_days: DEFAULT_KEEP_DAYS,
        keep_min: DEFAULT_KEEP_MIN,
        ..RetentionPolicy::default()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FileBackupReport {
    pub snapshot_id: String,
    pub source_name: String,
    pub source: String,
    /// Files, folders, symlinks, bytes, and the content new to the store (as in the manifest).
    #[serde(flatten)]
    pub totals: Totals,
    /// Files trusted from the previous snapshot without reading them.
    pub unchanged_not_read: u64,
    pub manifest_bytes: u64,
    /// Paths not in the snapshot as they are, and why.
    pub problems: Vec<Problem>,
    pub duration_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collected: Option<CollectReport>,
}

/// Takes one snapshot, then applies retention; gives up when `interrupt` completes. Failures
/// and problem paths are notified; the previous snapshot stays the latest on any failure.
pub async fn run_file_backup_until(
    store: Arc<dyn ObjectStore>,
    notifier: &dyn Notifier,
    options: &FileBackupOptions,
    interrupt: impl Future<Output = String>,
) -> Result<FileBackupReport> {
    let started = Instant::now();
    let snapshot_id = new_backup_id(Utc::now());
    let name = &options.source_name;
    let mut report = run_job_until(
        store.as_ref(),
        notifier,
        back_up(store.clone(), options, &snapshot_id),
        interrupt,
        async {},
        |error| Failure {
            subject: format!("file backup of {name} FAILED"),
            body: format!(
                "The file snapshot {snapshot_id} of {name} ({}) failed after {:.1} s; no snapshot was written.\n\
                 Cause: {error}\n\
                 The previous snapshot of {name} is still the latest one in {store}.",
                options.source,
                started.elapsed().as_secs_f64()
            ),
            // No folder of its own: a failed run writes no snapshot, and the blobs it uploaded
            // are content-addressed, possibly shared with other snapshots, so they stay.
            discard_prefixes: Vec::new(),
        },
    )
    .await?;
    tracing::info!(
        snapshot_id = %report.snapshot_id,
        source = %name,
        files = report.totals.files,
        new_bytes = report.totals.new_bytes,
        seconds = report.duration_seconds,
        "file snapshot complete"
    );
    if let Some(policy) = &options.retention {
        match prune_and_collect(store.clone(), Some(policy), Utc::now()).await {
            Ok(collected) => report.collected = Some(collected),
            Err(e) => {
                let note = Notification::new(
                    Severity::Warning,
                    format!("file retention clean-up failed after snapshot of {name}"),
                    format!("The snapshot {snapshot_id} of {name} completed, but removing old snapshots or unused content failed: {e}"),
                );
                notify_or_log(notifier, &note).await;
            }
        }
    }
    if !report.problems.is_empty() {
        let listed: Vec<String> = report
            .problems
            .iter()
            .take(20)
            .map(|p| format!("- {}: {}", p.path, p.reason))
            .collect();
        let note = Notification::new(
            Severity::Warning,
            format!(
                "file snapshot of {name}: {} paths not backed up",
                report.problems.len()
            ),
            format!(
                "Snapshot {snapshot_id} of {name} was written, but these paths are not in it as they are:\n{}{}",
                listed.join("\n"),
                if report.problems.len() > 20 { "\n…" } else { "" }
            ),
        );
        notify_or_log(notifier, &note).await;
    } else if options.notify_success {
        let note = Notification::new(
            Severity::Ok,
            format!("file snapshot of {name} complete"),
            format!(
                "Snapshot {snapshot_id} of {name}: {} files, {} bytes, {} bytes new, {:.1} s.",
                report.totals.files,
                report.totals.bytes,
                report.totals.new_bytes,
                report.duration_seconds
            ),
        );
        notify_or_log(notifier, &note).await;
    }
    Ok(report)
}

async fn back_up(
    store: Arc<dyn ObjectStore>,
    options: &FileBackupOptions,
    snapshot_id: &str,
) -> Result<FileBackupReport> {
    snapshot::validate_source_name(&options.source_name)?;
    let excludes = Excludes::new(&options.excludes)?;
    store.check().await?;
    let source = FileSource::open(&options.source).await?;
    let lock = lock::lock_for_backup(
        store.clone(),
        &lock::holder_name(&format!("file backup of {}", options.source_name)),
        COLLECT_WAIT,
    )
    .await?;
    let run = backup::BackupRun {
        store,
        source: &source,
        source_name: &options.source_name,
        excludes: &excludes,
        label: options.label.clone(),
        jobs: options.jobs,
        snapshot_id: snapshot_id.to_string(),
        headway: &options.headway,
    };
    let outcome = run.run(&lock).await;
    lock.release().await;
    outcome
}

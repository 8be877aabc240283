//! `toc-backup files …`: Tier 3 file snapshots from a shell.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use toc_sis_backup::defaults;
use toc_sis_backup::files::{
    export_snapshot, list_snapshots, prune_and_collect, restore_snapshot, run_file_backup_until,
    select_snapshot, FileBackupOptions, FileRestoreOptions, RawPath, Snapshot,
};
use toc_sis_backup::retention::RetentionPolicy;
use toc_sis_backup::store::ObjectStore;
use toc_sis_backup::Error;

use super::{mib, notifier, print, shutdown_signal, store, Console};
use crate::flags::StoreArg;

#[derive(Subcommand)]
pub(crate) enum FilesCommand {
    /// Snapshot a folder or S3 prefix, storing only content the store does not hold yet.
    Backup(BackupArgs),
    /// Restore a snapshot, or one file or folder of it (--path), into a folder.
    Restore(RestoreArgs),
    /// Write a snapshot as a tar.gz stream (to stdout with --output -).
    Export(ExportArgs),
    /// Show the snapshots in a store, newest first.
    List(ListArgs),
    /// List the paths in one snapshot.
    Show(ShowArgs),
    /// Remove snapshots past retention, then content no remaining snapshot needs.
    Prune(PruneArgs),
}

#[derive(Args)]
pub(crate) struct FileRetention {
    /// Remove snapshots older than this many days…
    #[arg(long, env = "FILES_KEEP_DAYS", default_value_t = defaults::FILES_KEEP_DAYS)]
    keep_days: u32,
    /// …but always keep the newest this many of each source.
    #[arg(long, env = "FILES_KEEP_MIN", default_value_t = defaults::FILES_KEEP_MIN)]
    keep_min: usize,
}

impl FileRetention {
    fn policy(&self) -> RetentionPolicy {
        RetentionPolicy {
            keep_days: self.keep_days,
            keep_min: self.keep_min,
            ..RetentionPolicy::default()
        }
    }
}

#[derive(Args)]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The folder or s3://BUCKET/PREFIX to back up.
    #[arg(long, env = "FILES_SOURCE")]
    from: String,
    /// The source's name in the store, e.g. uploads or application.
    #[arg(long, env = "FILES_SOURCE_NAME", default_value = defaults::FILES_SOURCE_NAME)]
    name: String,
    /// Leave out paths matching this glob (repeatable): a name anywhere (node_modules) or a
    /// path from the source's root (storage/logs/*).
    #[arg(long = "exclude", value_name = "PATTERN")]
    excludes: Vec<String>,
    /// Add the strategy document's exclusions for the application tree (logs, caches,
    /// sessions, compiled views, node_modules, .git).
    #[arg(long)]
    application_excludes: bool,
    /// A label kept in the snapshot's manifest (e.g. before-upgrade).
    #[arg(long, env = "BACKUP_LABEL")]
    label: Option<String>,
    /// Files read and stored at once.
    #[arg(long, default_value_t = defaults::FILES_JOBS, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    #[command(flatten)]
    retention: FileRetention,
    /// Keep every snapshot and all content (skip retention after the backup).
    #[arg(long)]
    no_prune: bool,
    /// Also notify when the job succeeds (default: only failures and warnings).
    #[arg(long, env = "NOTIFY_SUCCESS")]
    notify_success: bool,
    /// Send alerts to this SNS topic instead of the log.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    sns_topic_arn: Option<String>,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct Which {
    #[command(flatten)]
    store: StoreArg,
    /// The source name (may be left out when the store holds one source).
    #[arg(long)]
    source: Option<String>,
    /// `latest` or a snapshot id (or its unique start) from `toc-backup files list`.
    #[arg(long, default_value = "latest")]
    snapshot: String,
}

impl Which {
    async fn select(&self, store: &dyn ObjectStore) -> Result<Snapshot, Error> {
        select_snapshot(store, self.source.as_deref(), &self.snapshot).await
    }
}

#[derive(Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    which: Which,
    /// The folder to restore into (created if missing).
    #[arg(long)]
    to: PathBuf,
    /// Restore only this file or folder of the snapshot (repeatable).
    #[arg(long = "path")]
    paths: Vec<OsString>,
    /// Replace files that already exist in the target folder.
    #[arg(long)]
    overwrite: bool,
    /// Files restored at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    which: Which,
    /// Export only this file or folder (repeatable).
    #[arg(long = "path")]
    paths: Vec<OsString>,
    /// The tar.gz file to write, or - for stdout.
    #[arg(long)]
    output: PathBuf,
}

#[derive(Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Only the snapshots of this source (e.g. uploads).
    #[arg(long)]
    source: Option<String>,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    which: Which,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    retention: FileRetention,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

fn raw_paths(paths: &[OsString]) -> Vec<RawPath> {
    paths
        .iter()
        .map(|p| {
            let mut bytes = p.as_bytes();
            while let Some(rest) = bytes.strip_prefix(b"/") {
                bytes = rest;
            }
            while let Some(rest) = bytes.strip_suffix(b"/") {
                bytes = rest;
            }
            RawPath::from_bytes(bytes)
        })
        .collect()
}

pub(crate) async fn run(command: FilesCommand, console: Console) -> Result<(), Error> {
    match command {
        FilesCommand::Backup(args) => {
            let mut options = FileBackupOptions::new(args.name, args.from)
                .with_excludes(args.excludes, args.application_excludes);
            options.label = args.label;
            options.jobs = usize::from(args.jobs);
            options.notify_success = args.notify_success;
            options.retention = (!args.no_prune).then(|| args.retention.policy());
            let notifier = notifier(args.sns_topic_arn.as_deref()).await;
            let store = store(&args.store).await?;
            let shown = console.progress(options.headway.clone());
            let outcome =
                run_file_backup_until(store, notifier.as_ref(), &options, shutdown_signal()).await;
            shown.finish();
            let report = outcome?;
            print(args.json, &report, |r| {
                let mut text = format!(
                    "snapshot {} of {} ({}): {} files, {} folders, {} symlinks, {}; {} new in {} blobs, {} unchanged files not read again, manifest {} bytes, {:.1} s",
                    r.snapshot_id,
                    r.source_name,
                    r.source,
                    r.totals.files,
                    r.totals.dirs,
                    r.totals.symlinks,
                    mib(r.totals.bytes),
                    mib(r.totals.new_bytes),
                    r.totals.new_blobs,
                    r.unchanged_not_read,
                    r.manifest_bytes,
                    r.duration_seconds
                );
                for problem in &r.problems {
                    text.push_str(&format!(
                        "\nnot backed up: {}: {}",
                        problem.path, problem.reason
                    ));
                }
                if let Some(c) = &r.collected {
                    text.push_str(&format!(
                        "\nretention: {} snapshots removed, {} unused blobs ({}) deleted{}",
                        c.pruned.len(),
                        c.blobs_deleted,
                        mib(c.bytes_deleted),
                        c.skipped
                            .as_deref()
                            .map(|s| format!(" ({s})"))
                            .unwrap_or_default()
                    ));
                }
                text
            });
        }
        FilesCommand::Restore(args) => {
            let store = store(&args.which.store).await?;
            let snapshot = args.which.select(store.as_ref()).await?;
            let options = FileRestoreOptions {
                target: args.to,
                paths: raw_paths(&args.paths),
                overwrite: args.overwrite,
                jobs: usize::from(args.jobs),
                headway: Default::default(),
            };
            let shown = console.progress(options.headway.clone());
            let outcome = restore_snapshot(store.as_ref(), &snapshot, &options).await;
            shown.finish();
            let report = outcome?;
            print(args.json, &report, |r| {
                format!(
                    "restored snapshot {} of {} into {}: {} files ({}), {} folders, {} symlinks, every hash checked, in {:.1} s",
                    r.snapshot_id,
                    r.source_name,
                    r.target,
                    r.files,
                    mib(r.bytes),
                    r.dirs,
                    r.symlinks,
                    r.duration_seconds
                )
            });
        }
        FilesCommand::Export(args) => {
            let store = store(&args.which.store).await?;
            let snapshot = args.which.select(store.as_ref()).await?;
            let id = snapshot.snapshot_id.clone();
            let output: Box<dyn Write + Send> = if args.output.as_os_str() == "-" {
                Box::new(std::io::stdout())
            } else {
                let file = std::fs::File::create(&args.output).map_err(|e| {
                    Error::store_io("export", "create", args.output.display().to_string(), e)
                })?;
                Box::new(std::io::BufWriter::new(file))
            };
            let headway = std::sync::Arc::new(toc_sis_backup::job::headway::Headway::default());
            let shown = console.progress(headway.clone());
            let outcome =
                export_snapshot(store, snapshot, raw_paths(&args.paths), output, headway).await;
            shown.finish();
            let entries = outcome?;
            tracing::info!("exported snapshot {id}: {entries} entries");
        }
        FilesCommand::List(args) => {
            let store = store(&args.store).await?;
            let snapshots = list_snapshots(store.as_ref(), args.source.as_deref()).await?;
            let mut listed = Vec::new();
            for snapshot in &snapshots {
                listed.push(match snapshot.load(store.as_ref()).await {
                    Ok(s) => serde_json::json!({
                        "source": s.source_name, "snapshot_id": s.snapshot_id, "status": "complete",
                        "files": s.totals.files, "bytes": s.totals.bytes, "new_bytes": s.totals.new_bytes,
                        "problems": s.problems.len(), "label": s.label,
                    }),
                    Err(e) => serde_json::json!({
                        "source": snapshot.source_name, "snapshot_id": snapshot.snapshot_id,
                        "status": "damaged", "problem": e.to_string(),
                    }),
                });
            }
            print(args.json, &listed, |list| {
                if list.is_empty() {
                    return "no file snapshots".to_string();
                }
                let mut lines = vec![format!(
                    "{:<26} {:<14} {:<9} {:>8} {:>12} {:>12}",
                    "ID", "SOURCE", "STATUS", "FILES", "SIZE", "NEW"
                )];
                for s in list {
                    let number = |k: &str| s[k].as_u64().unwrap_or(0);
                    lines.push(format!(
                        "{:<26} {:<14} {:<9} {:>8} {:>12} {:>12}{}",
                        s["snapshot_id"].as_str().unwrap_or("-"),
                        s["source"].as_str().unwrap_or("-"),
                        s["status"].as_str().unwrap_or("-"),
                        number("files"),
                        mib(number("bytes")),
                        mib(number("new_bytes")),
                        s["problem"]
                            .as_str()
                            .map(|p| format!("  ({p})"))
                            .unwrap_or_default()
                    ));
                }
                lines.join("\n")
            });
        }
        FilesCommand::Show(args) => {
            let store = store(&args.which.store).await?;
            let snapshot = args.which.select(store.as_ref()).await?;
            print(args.json, &snapshot.entries, |entries| {
                entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{:<7} {:>4o} {:>12}  {}{}",
                            format!("{:?}", e.kind).to_lowercase(),
                            e.mode,
                            e.size,
                            e.path,
                            e.target
                                .as_ref()
                                .map(|t| format!(" -> {t}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        FilesCommand::Prune(args) => {
            let store = store(&args.store).await?;
            let report =
                prune_and_collect(store, Some(&args.retention.policy()), chrono::Utc::now())
                    .await?;
            print(args.json, &report, |r| {
                format!(
                    "removed {} snapshots ({} kept) and {} unused blobs ({}); {} blobs kept{}",
                    r.pruned.len(),
                    r.snapshots_kept,
                    r.blobs_deleted,
                    mib(r.bytes_deleted),
                    r.blobs_kept,
                    r.skipped
                        .as_deref()
                        .map(|s| format!("; {s}"))
                        .unwrap_or_default()
                )
            });
        }
    }
    Ok(())
}

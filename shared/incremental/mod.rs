//! The hourly incremental: every change to the tables in scope since the previous link of the
//! chain (inserts, updates and deletes, whatever `updated_at` says), as idempotent SQL.
//!
//! A chain starts at the newest complete full backup. Each link records a key state per table
//! (key and row hash); the next link diffs the table against it inside its own consistent
//! snapshot. Deletes come from keys that vanished; changed rows from hashes that differ, new
//! keys, or a tracking column inside the window (the previous snapshot's time minus a safety
//! overlap). A run that starts late, runs twice or follows a killed run loses and doubles
//! nothing, because the diff is against the last complete link, not against the clock.

mod diff;
mod tracked;

// Where the scope of an incremental is named (the CLI and the functions read it from here).
pub use crate::table_files::scope;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, Duration, SecondsFormat, Timelike, Utc};
use serde::Serialize;

use crate::catalog::snapshot_time;
use crate::catalog::{self, prefix_for};
use crate::config::DatabaseUrl;
use crate::dump::{run_dump, DumpOptions, DumpReport};
use crate::error::{Error, Result};
use crate::job::alert::notify_or_log;
use crate::job::{failure_subject, run_job_until, Failure};
use crate::layout::{new_backup_id, MANIFEST_NAME};
use crate::manifest::{BackupKind, FileEntry, Manifest, Stage, TableEntry, FORMAT, VERSION};
use crate::mysql::schema;
use crate::mysql::{self as db};
use crate::notify::{Notification, Notifier, Severity};
use crate::store::ObjectStore;
use crate::table_files::snapshot::{read_server, read_snapshot};
use crate::table_files::sql_file::Uploads;
use crate::table_files::{entry, FileNamer};
use diff::{diff_table, DiffSettings};
pub use scope::{Scope, ScopedTable};
use tracked::check_scope;

#[derive(Debug, Clone)]
pub struct IncrementalOptions {
    pub database_url: DatabaseUrl,
    pub scope: Scope,
    /// Rows whose tracking column is this much older than the previous snapshot are still
    /// written again (belt and braces; the key-state diff already catches every change).
    pub overlap: Duration,
    /// Take a full backup when the store has none to start a chain from.
    pub full_if_missing: bool,
    pub notify_success: bool,
    pub statement_bytes: usize,
    pub split_bytes: u64,
    pub compression_level: u32,
}

impl IncrementalOptions {
    pub fn new(database_url: DatabaseUrl) -> Self {
        IncrementalOptions {
            database_url,
            scope: Scope::default(),
            overlap: Duration::minutes(5),
            full_if_missing: false,
            notify_success: false,
            statement_bytes: 1024 * 1024,
            split_bytes: 64 * 1024 * 1024,
            compression_level: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IncrementalReport {
    /// None when this run took the chain's first full backup instead.
    pub backup_id: Option<String>,
    pub parent: Option<String>,
    pub chain_root: Option<String>,
    pub database: String,
    pub window_start: Option<String>,
    pub tables: usize,
    pub rows_rewritten: u64,
    pub rows_deleted: u64,
    pub rows_after: u64,
    pub files: usize,
    pub bytes: u64,
    pub duration_seconds: f64,
    pub full_backup: Option<DumpReport>,
}

/// Where the chain continues from.
struct ChainTip {
    root: Manifest,
    parent: Manifest,
    /// The chain's links before the parent, newest first: where a table the parent did not
    /// track (a run with another --tables) finds its latest key state.
    earlier: Vec<catalog::index::IndexEntry>,
}

async fn chain_tip(store: &dyn ObjectStore) -> Result<Option<ChainTip>> {
    let catalog = catalog::load(store).await?;
    let Some(root_entry) = catalog.complete.iter().find(|e| e.kind == BackupKind::Full) else {
        return Ok(None);
    };
    let root = catalog::manifest(store, root_entry).await?;
    // A damaged manifest after the chain's root may be a link of it: never continue past one.
    if let Some((entry, err)) = catalog
        .damaged()
        .find(|(e, _)| e.kind == BackupKind::Incremental && e.id > root.backup_id)
    {
        return Err(Error::BrokenChain {
            backup: entry.id.clone(),
            reason: format!(
                "its manifest is damaged ({err}); take a full backup to start a new chain"
            ),
        });
    }
    // The newest complete link of this chain; a killed or failed run left no manifest and so
    // is simply not a link.
    let parent = match catalog.complete.iter().find(|e| {
        e.kind == BackupKind::Incremental
            && e.chain_root.as_deref() == Some(root.backup_id.as_str())
    }) {
        Some(link) => catalog::manifest(store, link)
            .await
            .map_err(|err| Error::BrokenChain {
                backup: link.id.clone(),
                reason: format!(
                    "its manifest is damaged ({err}); take a full backup to start a new chain"
                ),
            })?,
        None => root.clone(),
    };
    let earlier = catalog
        .complete
        .iter()
        .filter(|e| {
            e.kind == BackupKind::Incremental
                && e.chain_root.as_deref() == Some(root.backup_id.as_str())
                && e.id < parent.backup_id
        })
        .cloned()
        .collect();
    Ok(Some(ChainTip {
        root,
        parent,
        earlier,
    }))
}

/// Runs one incremental. Failures are notified and leave the chain as it was.
pub async fn run_incremental_until(
    store: Arc<dyn ObjectStore>,
    notifier: &dyn Notifier,
    options: &IncrementalOptions,
    interrupt: impl Future<Output = String>,
) -> Result<IncrementalReport> {
    let started = Instant::now();
    let database = options.database_url.database.clone().unwrap_or_default();
    store.check().await?;
    let tip = match chain_tip(store.as_ref()).await {
        Ok(Some(tip)) => tip,
        Ok(None) if options.full_if_missing => {
            tracing::warn!("no full backup to start a chain from: taking one now");
            let mut dump = DumpOptions::new(options.database_url.clone());
            dump.label = Some("chain start (taken by the incremental job)".into());
            dump.retention = None;
            let full = run_dump(store, notifier, &dump).await?;
            return Ok(IncrementalReport {
                backup_id: None,
                parent: None,
                chain_root: Some(full.backup_id.clone()),
                database,
                window_start: None,
                tables: 0,
                rows_rewritten: 0,
                rows_deleted: 0,
                rows_after: 0,
                files: 0,
                bytes: 0,
                duration_seconds: started.elapsed().as_secs_f64(),
                full_backup: Some(full),
            });
        }
        outcome => {
            let error = match outcome {
                Ok(_) => Error::BrokenChain {
                    backup: "(none)".into(),
                    reason: format!(
                        "there is no complete full backup in {store} to start a chain from; run `toc-backup dump` first or enable full-if-missing"
                    ),
                },
                Err(e) => e,
            };
            let note = Notification::new(
                Severity::Critical,
                format!("incremental backup of {database} FAILED"),
                format!("No incremental backup was taken.\nCause: {error}"),
            );
            notify_or_log(notifier, &note).await;
            return Err(error);
        }
    };
    let backup_id = new_backup_id(Utc::now());
    let prefix = prefix_for(BackupKind::Incremental, &backup_id);
    let uploads = Uploads::default();
    let report = run_job_until(
        store.as_ref(),
        notifier,
        incremental(store.clone(), options, &tip, &backup_id, started, &uploads),
        interrupt,
        uploads.settle(),
        |error| Failure {
            subject: failure_subject("incremental backup", &database, error),
            body: format!(
                "The incremental {backup_id} of database {database} failed after {:.1} s and was discarded.\n\
                 Cause: {error}\n\
                 The chain is unchanged: its newest point is still {}.",
                started.elapsed().as_secs_f64(),
                tip.parent.backup_id
            ),
            discard_prefixes: vec![
                prefix.clone(),
                crate::layout::key_state_prefix(&backup_id),
            ],
        },
    )
    .await?;
    tracing::info!(
        backup_id = %backup_id,
        parent = %tip.parent.backup_id,
        rewritten = report.rows_rewritten,
        deleted = report.rows_deleted,
        bytes = report.bytes,
        seconds = report.duration_seconds,
        "incremental backup complete"
    );
    if options.notify_success {
        let note = Notification::new(
            Severity::Ok,
            format!("incremental {backup_id} of {database} complete"),
            format!(
                "Incremental {backup_id} after {}: {} rows written again, {} deleted, {} bytes.",
                tip.parent.backup_id, report.rows_rewritten, report.rows_deleted, report.bytes
            ),
        );
        notify_or_log(notifier, &note).await;
    }
    Ok(report)
}

async fn incremental(
    store: Arc<dyn ObjectStore>,
    options: &IncrementalOptions,
    tip: &ChainTip,
    backup_id: &str,
    started: Instant,
    uploads: &Uploads,
) -> Result<IncrementalReport> {
    let started_at = Utc::now();
    let url = &options.database_url;
    let database = url.require_database()?.to_string();
    if tip.root.database != database {
        return Err(Error::BrokenChain {
            backup: tip.root.backup_id.clone(),
            reason: format!(
                "it is a backup of `{}`, not of `{database}`",
                tip.root.database
            ),
        });
    }
    let mut conn = db::connect(url, Some(&database)).await?;
    db::run_all(&mut conn, db::DUMP_SESSION).await?;
    db::run_all(
        &mut conn,
        &[
            "SET SESSION net_write_timeout = 3600",
            "SET SESSION net_read_timeout = 3600",
        ],
    )
    .await?;
    // Checked before the snapshot: a bad scope is a configuration error, reported before any work.
    let server = read_server(&mut conn).await?;
    let tracked = check_scope(
        store.as_ref(),
        &mut conn,
        &database,
        &options.scope,
        tip,
        &server.version,
    )
    .await?;
    db::run_all(&mut conn, &["START TRANSACTION WITH CONSISTENT SNAPSHOT"]).await?;
    // After the snapshot opens, as the dump does: a restore in progress shows its marker.
    db::ensure_not_being_restored(&mut conn, &database).await?;
    let snapshot = read_snapshot(&mut conn, None).await?;

    let previous_time = snapshot_time(&tip.parent).ok_or_else(|| Error::BrokenChain {
        backup: tip.parent.backup_id.clone(),
        reason: "its snapshot time is unreadable".into(),
    })?;
    let window = previous_time - options.overlap;
    let window_start = (
        window.year() as u16,
        window.month() as u8,
        window.day() as u8,
        window.hour() as u8,
        window.minute() as u8,
        window.second() as u8,
        window.nanosecond() / 1000,
    );
    let prefix = prefix_for(BackupKind::Incremental, backup_id);
    let state_prefix = crate::layout::key_state_prefix(backup_id);
    let namer = FileNamer {
        store: store.clone(),
        prefix: prefix.clone(),
        state_prefix: state_prefix.clone(),
        level: options.compression_level,
        uploads: uploads.clone(),
    };
    let mut files: Vec<FileEntry> = Vec::new();
    let mut tables = Vec::new();
    let (mut rewritten, mut deleted) = (0u64, 0u64);
    for (index, item) in tracked.iter().enumerate() {
        let settings = DiffSettings {
            table_number: index + 1,
            tracking_index: item.tracking_index,
            window_start,
            statement_bytes: options.statement_bytes,
            split_bytes: options.split_bytes,
            store: store.as_ref(),
        };
        let change = diff_table(
            &mut conn,
            &namer,
            &item.table,
            item.key.clone(),
            &item.previous,
            &settings,
        )
        .await?;
        tracing::info!(
            table = %item.table.name,
            rewritten = change.rewritten,
            deleted = change.deleted,
            rows = change.fingerprint.rows(),
            "table diffed"
        );
        rewritten += change.rewritten;
        deleted += change.deleted;
        let name = Some(item.table.name.clone());
        for file in change.deletes {
            files.push(entry(file, Stage::Deletes, name.clone(), &prefix).0);
        }
        for file in change.changes {
            files.push(entry(file, Stage::Changes, name.clone(), &prefix).0);
        }
        files.push(entry(change.state, Stage::State, name, &state_prefix).0);
        tables.push(TableEntry {
            name: item.table.name.clone(),
            engine: item.table.engine.clone(),
            rows: change.fingerprint.rows(),
            fingerprint: change.fingerprint.to_hex(),
            recorded_row_hash: Some(change.fingerprint.algorithm()),
            definition_sha256: item.chain_definition.clone(),
            shape_sha256: Some(item.table.shape_sha256.clone()),
            system_versioned: item.table.system_versioned,
        });
    }
    for item in &tracked {
        let now = schema::table_definition(&mut conn, &database, &item.table.name).await?;
        if schema::strip_auto_increment(&now)
            != schema::strip_auto_increment(&item.table.create_sql)
        {
            return Err(Error::SchemaChangedDuringDump {
                detail: format!("table `{}` was altered", item.table.name),
            });
        }
    }
    db::run_all(&mut conn, &["COMMIT"]).await?;
    let _ = conn.disconnect().await;
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        backup_id: backup_id.to_string(),
        kind: BackupKind::Incremental,
        label: None,
        parent: Some(tip.parent.backup_id.clone()),
        chain_root: Some(tip.root.backup_id.clone()),
        database: database.clone(),
        started_at: started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        server,
        snapshot,
        not_snapshot_consistent: tracked
            .iter()
            .filter(|t| !t.table.is_transactional())
            .map(|t| t.table.name.clone())
            .collect(),
        files,
        tables,
        objects: Vec::new(),
        accounts_not_recorded: None,
        key_states_apart: true,
        integrity: None,
    };
    crate::verify::verify_written(&store, &manifest).await?;
    let report = IncrementalReport {
        backup_id: Some(backup_id.to_string()),
        parent: Some(tip.parent.backup_id.clone()),
        chain_root: Some(tip.root.backup_id.clone()),
        database,
        window_start: Some(window.to_rfc3339_opts(SecondsFormat::Micros, true)),
        tables: manifest.tables.len(),
        rows_rewritten: rewritten,
        rows_deleted: deleted,
        rows_after: manifest.total_rows(),
        files: manifest.files.len(),
        bytes: manifest.total_bytes(),
        duration_seconds: 0.0,
        full_backup: None,
    };
    let sealed = manifest.clone().seal()?;
    let files: Vec<String> = manifest
        .files
        .iter()
        .map(|f| manifest.file_key(f))
        .collect();
    crate::store::seal_with_manifest(
        store.as_ref(),
        &files,
        &format!("{prefix}{MANIFEST_NAME}"),
        sealed.clone(),
    )
    .await?;
    catalog::index::record(store.as_ref(), &manifest, &sealed).await;
    Ok(IncrementalReport {
        duration_seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        ..report
    })
}

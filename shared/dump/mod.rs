//! The full backup: one consistent snapshot of a database, written as gzip'd SQL files whose
//! names sort into restore order, then checked, then sealed by a manifest written last.

mod accounts;
mod objects;
mod parallel;
pub(crate) mod table_data;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use crate::config::DatabaseUrl;
use crate::error::Result;
use crate::job::alert::notify_or_log;
use crate::job::{failure_subject, run_job_until, Failure};
use crate::layout::{backup_prefix, manifest_key, new_backup_id};
use crate::manifest::{
    BackupKind, FileEntry, Manifest, ObjectEntry, Stage, TableEntry, FORMAT, VERSION,
};
use crate::mysql::{self as db, quote_ident, schema};
use crate::notify::{Notification, Notifier, Severity};
use crate::retention::{self, RetentionPolicy};
use crate::store::ObjectStore;
/// Files read back at once after the dump.
use crate::table_files::snapshot::{check_schema_unchanged, read_catalogue, read_server};
use crate::table_files::sql_file::{StoredFile, Uploads};
use crate::table_files::{entry, FileNamer};

use crate::table_files::scope::TrackingColumns;

/// A new data file after this many MiB of SQL, so restores can load in parallel.
pub const DEFAULT_SPLIT_MB: u64 = 64;
/// gzip level.
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 5;
/// Connections reading tables at once.
pub const DEFAULT_JOBS: u16 = 2;

#[derive(Debug, Clone)]
pub struct DumpOptions {
    pub database_url: DatabaseUrl,
    pub label: Option<String>,
    /// A table's rows go into a new file after this many uncompressed bytes, so a restore can
    /// load big tables in parallel.
    pub split_bytes: u64,
    /// The size at which one multi-row INSERT is closed (keep well under max_allowed_packet).
    pub statement_bytes: usize,
    pub compression_level: u32,
    /// Connections reading tables at once (on identical snapshots; one when that cannot be
    /// proved).
    pub jobs: usize,
    /// Applied after a successful backup; `None` keeps everything.
    pub retention: Option<RetentionPolicy>,
    pub notify_success: bool,
    /// Record the accounts' password hashes too (otherwise they are recreated locked).
    pub with_password_hashes: bool,
    /// Which column incrementals track each table by: a key state is kept only for tables that
    /// have it (others could never be tracked; their state would be stored for nothing).
    pub tracking: TrackingColumns,
    /// Rows dumped of the server's estimate, for whoever shows progress.
    pub headway: Arc<crate::job::headway::Headway>,
    /// Back up the rest when the database holds objects this tool cannot back up faithfully
    /// (MariaDB packages), leaving those out with a warning; otherwise the dump refuses.
    pub skip_unsupported: bool,
}

impl DumpOptions {
    pub fn new(database_url: DatabaseUrl) -> Self {
        DumpOptions {
            database_url,
            label: None,
            split_bytes: DEFAULT_SPLIT_MB * 1024 * 1024,
            statement_bytes: 1024 * 1024,
            compression_level: DEFAULT_COMPRESSION_LEVEL,
            jobs: usize::from(DEFAULT_JOBS),
            retention: Some(RetentionPolicy::default()),
            notify_success: false,
            with_password_hashes: false,
            tracking: TrackingColumns::default(),
            headway: Default::default(),
            skip_unsupported: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DumpReport {
    pub backup_id: String,
    pub database: String,
    pub files: usize,
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    pub tables: usize,
    pub rows: u64,
    pub duration_seconds: f64,
    pub not_snapshot_consistent: Vec<String>,
    /// Views left out because the server cannot use them: "`name`: the server's message".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub broken_views_left_out: Vec<String>,
    /// Objects left out with `skip_unsupported`: "`name`: a package".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unsupported_left_out: Vec<String>,
    /// Connections that read tables, all on the same snapshot.
    pub connections: usize,
    /// Why one connection read everything although more were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single_connection_reason: Option<String>,
    pub pruned: Vec<String>,
}

/// Takes a full backup into `store`. A failure is reported through `notifier` before the error
/// is returned, and leaves no manifest behind, so the previous backup stays `latest`.
pub async fn run_dump(
    store: Arc<dyn ObjectStore>,
    notifier: &dyn Notifier,
    options: &DumpOptions,
) -> Result<DumpReport> {
    run_dump_until(store, notifier, options, std::future::pending()).await
}

/// [`run_dump`] that gives up when `interrupt` completes (a signal, a deadline), with its output
/// as the reason: the partial backup is discarded and the failure notified like any other.
pub async fn run_dump_until(
    store: Arc<dyn ObjectStore>,
    notifier: &dyn Notifier,
    options: &DumpOptions,
    interrupt: impl Future<Output = String>,
) -> Result<DumpReport> {
    let started = Instant::now();
    let backup_id = new_backup_id(Utc::now());
    let uploads = Uploads::default();
    let database = options.database_url.database.clone().unwrap_or_default();
    let mut report = run_job_until(
        store.as_ref(),
        notifier,
        dump(store.clone(), options, &backup_id, started, &uploads),
        interrupt,
        uploads.settle(),
        |error| Failure {
            subject: failure_subject("full backup", &database, error),
            body: format!(
                "The full backup {backup_id} of database {database} failed after {:.1} s and was discarded.\n\
                 Cause: {error}\n\
                 The previous complete backup is still the latest one in {store}.",
                started.elapsed().as_secs_f64()
            ),
            discard_prefixes: vec![
                backup_prefix(&backup_id),
                crate::layout::key_state_prefix(&backup_id),
            ],
        },
    )
    .await?;
    let policy = match &options.retention {
        Some(_) if store.retention_by_bucket_rules() => {
            tracing::info!(store = %store, "no pruning: the bucket's lifecycle and Object Lock keep backups");
            None
        }
        policy => policy.as_ref(),
    };
    if let Some(policy) = policy {
        match retention::prune(store.as_ref(), policy, Utc::now()).await {
            Ok(pruned) => report.pruned = pruned.deleted,
            Err(e) => {
                // The backup itself is good; a failed clean-up still needs a person.
                let note = Notification::new(
                    Severity::Warning,
                    format!("retention clean-up failed after backup {backup_id}"),
                    format!(
                        "The backup {backup_id} completed, but removing old backups failed: {e}"
                    ),
                );
                notify_or_log(notifier, &note).await;
            }
        }
    }
    tracing::info!(
        backup_id = %report.backup_id,
        files = report.files,
        bytes = report.bytes,
        rows = report.rows,
        seconds = report.duration_seconds,
        "backup complete"
    );
    // The backup is good, but a person must know what it holds no copy of: views
    // nothing could restore, and objects left out as asked.
    warn_left_out(
        notifier,
        &report,
        "broken view(s)",
        "these views cannot be used on the server (a table, column or function they name is gone), so no restore could create them and they are not in it; fix or drop them",
        &report.broken_views_left_out,
    )
    .await;
    warn_left_out(
        notifier,
        &report,
        "object(s) it cannot back up",
        "these objects, of kinds this tool cannot back up faithfully, were left out as --skip-unsupported / BACKUP_SKIP_UNSUPPORTED asks; no restore of it will have them, so keep their definitions elsewhere",
        &report.unsupported_left_out,
    )
    .await;
    if options.notify_success {
        let note = Notification::new(
            Severity::Ok,
            format!(
                "backup {} of {} complete",
                report.backup_id, report.database
            ),
            success_body(&report),
        );
        notify_or_log(notifier, &note).await;
    }
    Ok(report)
}

/// A WARNING that backup `report` completed without `left_out` (nothing when it is empty).
async fn warn_left_out(
    notifier: &dyn Notifier,
    report: &DumpReport,
    what: &str,
    why: &str,
    left_out: &[String],
) {
    if left_out.is_empty() {
        return;
    }
    let note = Notification::new(
        Severity::Warning,
        format!(
            "backup {} of {} left out {} {what}",
            report.backup_id,
            report.database,
            left_out.len()
        ),
        format!(
            "The backup {} completed, but {why}:\n{}",
            report.backup_id,
            left_out.join("\n")
        ),
    );
    notify_or_log(notifier, &note).await;
}

fn success_body(report: &DumpReport) -> String {
    let mut body = format!(
        "Backup {} of {}: {} tables, {} rows, {} files, {} bytes, {:.1} s.",
        report.backup_id,
        report.database,
        report.tables,
        report.rows,
        report.files,
        report.bytes,
        report.duration_seconds
    );
    if !report.not_snapshot_consistent.is_empty() {
        body.push_str(&format!(
            "\nNot snapshot-consistent (non-transactional engine): {}",
            report.not_snapshot_consistent.join(", ")
        ));
    }
    body
}

async fn dump(
    store: Arc<dyn ObjectStore>,
    options: &DumpOptions,
    backup_id: &str,
    started: Instant,
    uploads: &Uploads,
) -> Result<DumpReport> {
    let started_at = Utc::now();
    store.check().await?;
    let url = &options.database_url;
    let database = url.require_database()?.to_string();
    let mut conn = db::connect(url, Some(&database)).await?;
    parallel::prepare_session(&mut conn).await?;
    db::run_all(&mut conn, &[schema::SET_GRANTEE]).await?;
    schema::check_privileges(&mut conn, &database).await?;

    let parallel::Snapshots {
        position: snapshot,
        workers,
        single_reason,
    } = parallel::open_snapshots(&mut conn, url, &database, options.jobs.max(1)).await?;
    // Looked for once the snapshot is open: a restore that began before it shows its marker
    // now (a check before the snapshot would let one that starts in between through, and the
    // snapshot would hold its half-loaded tables).
    db::ensure_not_being_restored(&mut conn, &database).await?;
    if let Some(reason) = &single_reason {
        tracing::warn!("{reason}");
    }
    let server = read_server(&mut conn).await?;
    let catalogue = read_catalogue(&mut conn, &database, options.skip_unsupported).await?;
    tracing::info!(
        %backup_id,
        database = %database,
        tables = catalogue.tables.len(),
        objects = catalogue.objects.len(),
        binlog_file = snapshot.binlog_file.as_deref().unwrap_or("-"),
        binlog_position = snapshot.binlog_position.unwrap_or(0),
        connections = workers.len() + 1,
        "snapshot open"
    );
    let not_consistent: Vec<String> = catalogue
        .tables
        .iter()
        .filter(|t| !t.is_transactional())
        .map(|t| t.name.clone())
        .collect();
    if !not_consistent.is_empty() {
        tracing::warn!(
            tables = %not_consistent.join(", "),
            "these tables use a non-transactional engine: their rows are not snapshot-consistent"
        );
    }

    let prefix = backup_prefix(backup_id);
    let state_prefix = crate::layout::key_state_prefix(backup_id);
    let writer = Arc::new(FileNamer {
        store: store.clone(),
        prefix: prefix.clone(),
        state_prefix: state_prefix.clone(),
        level: options.compression_level,
        uploads: uploads.clone(),
    });
    let mut files: Vec<(FileEntry, StoredFile)> = Vec::new();

    let schema_file = objects::write_schema(&writer, &server, &catalogue.tables).await?;
    files.push(entry(schema_file, Stage::Schema, None, &prefix));

    let connections = workers.len() + 1;
    let (order, estimated_rows) =
        parallel::largest_first(&mut conn, &database, &catalogue.tables).await?;
    options
        .headway
        .measure_rows(format!("dumping {database}"), estimated_rows);
    let tables = Arc::new(catalogue.tables.clone());
    let all_connections = std::iter::once(conn).chain(workers).collect();
    let work = parallel::TableWork {
        namer: writer.clone(),
        database: database.clone(),
        tables: tables.clone(),
        options: Arc::new(options.clone()),
    };
    let (mut connections_back, dumped_tables) =
        parallel::dump_tables(all_connections, work, order).await?;
    let mut conn = connections_back.remove(0);
    let mut table_entries = Vec::with_capacity(tables.len());
    for (table, dumped) in tables.iter().zip(dumped_tables) {
        for file in dumped.files {
            files.push(entry(file, Stage::Data, Some(table.name.clone()), &prefix));
        }
        if let Some(state) = dumped.state {
            files.push(entry(
                state,
                Stage::State,
                Some(table.name.clone()),
                &state_prefix,
            ));
        }
        table_entries.push(TableEntry {
            name: table.name.clone(),
            engine: table.engine.clone(),
            rows: dumped.fingerprint.rows(),
            fingerprint: dumped.fingerprint.to_hex(),
            recorded_row_hash: Some(dumped.fingerprint.algorithm()),
            definition_sha256: table.definition_sha256(),
            shape_sha256: Some(table.shape_sha256.clone()),
            system_versioned: table.system_versioned,
        });
    }

    for stage in [
        Stage::Routines,
        Stage::Views,
        Stage::Triggers,
        Stage::Events,
    ] {
        if let Some(file) = objects::write_objects(&writer, stage, &catalogue.objects).await? {
            files.push(entry(file, stage, None, &prefix));
        }
    }

    let accounts_not_recorded =
        match accounts::write_accounts(&mut conn, &writer, &database, options.with_password_hashes)
            .await?
        {
            accounts::Accounts::Recorded { file, accounts } => {
                tracing::info!(
                    accounts,
                    "accounts and grants recorded (restore --with-accounts)"
                );
                files.push(entry(file, Stage::Accounts, None, &prefix));
                None
            }
            accounts::Accounts::NotRecorded(reason) => {
                tracing::warn!("accounts not recorded: {reason}");
                Some(reason)
            }
        };

    check_schema_unchanged(&mut conn, &database, &catalogue).await?;
    db::run_all(&mut conn, &["COMMIT"]).await?;
    let _ = conn.disconnect().await;
    for mut worker in connections_back {
        let _ = db::run_all(&mut worker, &["COMMIT"]).await;
        let _ = worker.disconnect().await;
    }

    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        backup_id: backup_id.to_string(),
        kind: BackupKind::Full,
        label: options.label.clone(),
        parent: None,
        chain_root: None,
        database: database.clone(),
        started_at: started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        server,
        snapshot,
        not_snapshot_consistent: not_consistent.clone(),
        files: files.iter().map(|(f, _)| f.clone()).collect(),
        tables: table_entries,
        objects: catalogue
            .objects
            .iter()
            .map(|o| ObjectEntry {
                kind: o.kind,
                name: o.name.clone(),
                definition_sha256: o.definition_sha256(),
                definition_sha256_any_definer: Some(o.definition_sha256_any_definer()),
            })
            .collect(),
        accounts_not_recorded,
        key_states_apart: true,
        integrity: None,
    };
    crate::verify::verify_written(&store, &manifest).await?;
    let report = DumpReport {
        backup_id: backup_id.to_string(),
        database,
        files: manifest.files.len(),
        bytes: manifest.total_bytes(),
        uncompressed_bytes: manifest.files.iter().map(|f| f.uncompressed_bytes).sum(),
        tables: manifest.tables.len(),
        rows: manifest.total_rows(),
        duration_seconds: 0.0,
        not_snapshot_consistent: not_consistent,
        broken_views_left_out: catalogue
            .broken_views
            .iter()
            .map(|(name, cause)| format!("{}: {cause}", quote_ident(name)))
            .collect(),
        unsupported_left_out: catalogue
            .unsupported
            .iter()
            .map(|(name, kind)| format!("{}: a {kind}", quote_ident(name)))
            .collect(),
        connections,
        single_connection_reason: single_reason,
        pruned: Vec::new(),
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
        &manifest_key(backup_id),
        sealed.clone(),
    )
    .await?;
    crate::catalog::index::record(store.as_ref(), &manifest, &sealed).await;
    Ok(DumpReport {
        duration_seconds: round_seconds(started.elapsed()),
        ..report
    })
}

fn round_seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

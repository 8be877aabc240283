//! Loading a backup into a database, in parallel, and proving the result equals the backup.

pub mod apply;
pub mod chain;
mod check;
mod indexes;
pub mod splitter;

pub use check::verify_restored;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde::Serialize;

use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::manifest::{FileEntry, Manifest, Stage};
use crate::mysql::{self as db, quote_ident, quote_str};
use crate::store::ObjectStore;

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The server to restore into; its database part is ignored.
    pub server_url: DatabaseUrl,
    /// `latest` (the newest complete point, full or incremental) or a backup id.
    pub backup: String,
    /// Restore the newest point at or before this time instead.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    pub target_database: String,
    /// Replace the target database's contents when it is not empty.
    pub force: bool,
    /// Connections loading data files at once.
    pub jobs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub backup_id: String,
    pub kind: &'static str,
    /// The full backup and the incrementals applied after it, in order.
    pub chain: Vec<String>,
    /// The database clock at the restored point's snapshot.
    pub point_in_time: String,
    pub source_database: String,
    pub target_database: String,
    pub files: usize,
    pub bytes: u64,
    pub tables: usize,
    pub rows: u64,
    pub objects: usize,
    pub load_seconds: f64,
    pub verify_seconds: f64,
    pub duration_seconds: f64,
}

pub async fn run_restore(
    store: Arc<dyn ObjectStore>,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let started = Instant::now();
    validate_database_name(&options.target_database)?;
    let chain = chain::resolve(store.as_ref(), &options.backup, options.at).await?;
    let target = chain
        .last()
        .cloned()
        .ok_or_else(|| Error::NoBackups(store.to_string()))?;
    let root = chain[0].clone();
    tracing::info!(
        backup_id = %target.backup_id,
        links = chain.len(),
        files = chain.iter().map(|m| m.files.len()).sum::<usize>(),
        "checking every file before loading anything"
    );
    for link in &chain {
        crate::verify::verify_backup(store.as_ref(), link).await?;
    }

    let url = options.server_url.with_database(None);
    let mut admin = db::connect(&url, None).await?;
    prepare_target(&mut admin, &root, &options.target_database, options.force).await?;
    let _ = admin.disconnect().await;

    // The full backup without its triggers and events, every incremental in order, then the
    // triggers and events, so no trigger fires while rows are loaded.
    let mut steps: Vec<(&Manifest, Stage)> =
        [Stage::Schema, Stage::Data, Stage::Routines, Stage::Views]
            .into_iter()
            .map(|stage| (&root, stage))
            .collect();
    for link in &chain[1..] {
        steps.push((link, Stage::Deletes));
        steps.push((link, Stage::Changes));
    }
    steps.push((&root, Stage::Triggers));
    steps.push((&root, Stage::Events));

    let mut deferred = Vec::new();
    let load_started = Instant::now();
    for (manifest, stage) in steps {
        load_stage(store.clone(), &url, options, manifest, stage).await?;
        match stage {
            Stage::Schema => {
                let tables: Vec<String> = root
                    .files
                    .iter()
                    .filter(|f| f.stage == Stage::Data)
                    .filter_map(|f| f.table.clone())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let mut conn = db::connect(&url, Some(&options.target_database)).await?;
                deferred = indexes::defer(&mut conn, &tables).await?;
                let _ = conn.disconnect().await;
            }
            Stage::Data => {
                indexes::rebuild(
                    &url,
                    &options.target_database,
                    options.jobs,
                    std::mem::take(&mut deferred),
                )
                .await?
            }
            _ => {}
        }
    }
    let load_seconds = load_started.elapsed().as_secs_f64();

    let verify_started = Instant::now();
    let expected = chain::expected_state(&chain);
    verify_restored(&url, &options.target_database, &expected, options.jobs).await?;
    let report = RestoreReport {
        backup_id: target.backup_id.clone(),
        kind: target.kind.label(),
        chain: chain.iter().map(|m| m.backup_id.clone()).collect(),
        point_in_time: target.snapshot.database_time.clone(),
        source_database: target.database.clone(),
        target_database: options.target_database.clone(),
        files: chain.iter().map(|m| m.files.len()).sum(),
        bytes: chain.iter().map(Manifest::total_bytes).sum(),
        tables: expected.tables.len(),
        rows: expected.total_rows(),
        objects: expected.objects.len(),
        load_seconds: round(load_seconds),
        verify_seconds: round(verify_started.elapsed().as_secs_f64()),
        duration_seconds: round(started.elapsed().as_secs_f64()),
    };
    tracing::info!(
        backup_id = %report.backup_id,
        target = %report.target_database,
        rows = report.rows,
        seconds = report.duration_seconds,
        "restore complete and verified"
    );
    Ok(report)
}

/// Loads one stage of one backup: data stages over several connections, biggest file first.
async fn load_stage(
    store: Arc<dyn ObjectStore>,
    url: &DatabaseUrl,
    options: &RestoreOptions,
    manifest: &Manifest,
    stage: Stage,
) -> Result<()> {
    let mut files: Vec<FileEntry> = manifest
        .files
        .iter()
        .filter(|f| f.stage == stage)
        .cloned()
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    let parallel = matches!(stage, Stage::Data | Stage::Deletes | Stage::Changes);
    let jobs = if parallel { options.jobs.max(1) } else { 1 };
    files.sort_by_key(|f| std::cmp::Reverse(f.uncompressed_bytes));
    tracing::info!(
        backup_id = %manifest.backup_id,
        stage = stage.label(),
        files = files.len(),
        connections = jobs,
        "loading"
    );
    let prefix = manifest.prefix();
    on_connections(
        url,
        &options.target_database,
        jobs,
        files,
        move |mut conn, file| {
            let store = store.clone();
            let prefix = prefix.clone();
            async move {
                let outcome = apply::apply_file(store.as_ref(), &prefix, &file, &mut conn).await;
                if outcome.is_ok() {
                    tracing::info!(file = %file.name, "loaded");
                }
                (conn, outcome)
            }
        },
    )
    .await
    .map(|_| ())
}

fn round(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

fn validate_database_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.ends_with(' ')
        && !name.contains(['/', '\\', '.', '\0']);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            what: "target database name",
            value: name.to_string(),
            expected: "1 to 64 characters, without '/', '\\', '.' or a trailing space".into(),
        })
    }
}

async fn prepare_target(
    conn: &mut Conn,
    manifest: &Manifest,
    target: &str,
    force: bool,
) -> Result<()> {
    let exists: Option<String> = conn
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (target,),
        )
        .await
        .map_err(|e| Error::database(format!("looking for database `{target}`"), e))?;
    if exists.is_some() {
        let objects: Option<u64> = conn
            .exec_first(
                "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?) \
                      + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?) \
                      + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)",
                (target, target, target),
            )
            .await
            .map_err(|e| Error::database(format!("inspecting database `{target}`"), e))?;
        if objects.unwrap_or(0) > 0 {
            if !force {
                return Err(Error::TargetNotEmpty(target.to_string()));
            }
            tracing::warn!(
                target,
                "--force: dropping the existing contents of the target database"
            );
            conn.query_drop(format!("DROP DATABASE {}", quote_ident(target)))
                .await
                .map_err(|e| Error::database(format!("dropping database `{target}`"), e))?;
        }
    }
    let mut create = format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(target));
    if !manifest.server.default_character_set.is_empty() {
        create.push_str(&format!(
            " CHARACTER SET {}",
            quote_str(&manifest.server.default_character_set)
        ));
    }
    if !manifest.server.default_collation.is_empty() {
        create.push_str(&format!(
            " COLLATE {}",
            quote_str(&manifest.server.default_collation)
        ));
    }
    conn.query_drop(create)
        .await
        .map_err(|e| Error::database(format!("creating database `{target}`"), e))
}

/// Runs `work` over `items` on up to `jobs` connections to `database`; the first failure stops
/// the others from taking new items and is returned.
pub(crate) async fn on_connections<T, R, F, Fut>(
    url: &DatabaseUrl,
    database: &str,
    jobs: usize,
    items: Vec<T>,
    work: F,
) -> Result<Vec<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Conn, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Conn, Result<R>)> + Send + 'static,
{
    let workers = jobs.max(1).min(items.len().max(1));
    let queue = Arc::new(Mutex::new(VecDeque::from(items)));
    let failed = Arc::new(AtomicBool::new(false));
    let work = Arc::new(work);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (queue, failed, work) = (queue.clone(), failed.clone(), work.clone());
        let url = url.clone();
        let database = database.to_string();
        handles.push(tokio::spawn(async move {
            let mut conn = match db::connect(&url, Some(&database)).await {
                Ok(conn) => conn,
                Err(e) => {
                    failed.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            };
            let mut results = Vec::new();
            loop {
                if failed.load(Ordering::SeqCst) {
                    break;
                }
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(item) = next else { break };
                let (returned, outcome) = work(conn, item).await;
                conn = returned;
                match outcome {
                    Ok(result) => results.push(result),
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        let _ = conn.disconnect().await;
                        return Err(e);
                    }
                }
            }
            let _ = conn.disconnect().await;
            Ok(results)
        }));
    }
    let mut all = Vec::new();
    let mut first_error = None;
    for handle in handles {
        match handle.await {
            Ok(Ok(results)) => all.extend(results),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(e.into());
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(all),
    }
}

//! Loading a backup into a database, in parallel, and proving the result equals the backup.

pub mod apply;
pub mod splitter;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde::Serialize;

use crate::catalog;
use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::manifest::{FileEntry, Manifest, Stage};
use crate::mysql::fingerprint::Fingerprint;
use crate::mysql::schema::{self, Table};
use crate::mysql::{self as db, quote_ident, quote_str};
use crate::store::ObjectStore;

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The server to restore into; its database part is ignored.
    pub server_url: DatabaseUrl,
    /// `latest` or a backup id.
    pub backup: String,
    pub target_database: String,
    /// Replace the target database's contents when it is not empty.
    pub force: bool,
    /// Connections loading data files at once.
    pub jobs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub backup_id: String,
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
    let manifest = catalog::resolve(store.as_ref(), &options.backup).await?;
    tracing::info!(backup_id = %manifest.backup_id, files = manifest.files.len(), "checking every file before loading anything");
    crate::verify::verify_backup(store.as_ref(), &manifest).await?;

    let url = options.server_url.with_database(None);
    let mut admin = db::connect(&url, None).await?;
    prepare_target(
        &mut admin,
        &manifest,
        &options.target_database,
        options.force,
    )
    .await?;
    let _ = admin.disconnect().await;

    let load_started = Instant::now();
    let manifest = Arc::new(manifest);
    for stage in Stage::ALL {
        let files: Vec<FileEntry> = manifest
            .files
            .iter()
            .filter(|f| f.stage == stage)
            .cloned()
            .collect();
        if files.is_empty() {
            continue;
        }
        let jobs = if stage == Stage::Data {
            options.jobs.max(1)
        } else {
            1
        };
        let mut ordered = files;
        if stage == Stage::Data {
            // Biggest first, so the last file to finish is a small one.
            ordered.sort_by_key(|f| std::cmp::Reverse(f.uncompressed_bytes));
        }
        let total = ordered.len();
        tracing::info!(
            stage = stage.label(),
            files = total,
            connections = jobs,
            "loading"
        );
        let store = store.clone();
        let backup_id = manifest.backup_id.clone();
        on_connections(
            &url,
            &options.target_database,
            jobs,
            ordered,
            move |mut conn, file| {
                let store = store.clone();
                let backup_id = backup_id.clone();
                async move {
                    let outcome =
                        apply::apply_file(store.as_ref(), &backup_id, &file, &mut conn).await;
                    if outcome.is_ok() {
                        tracing::info!(file = %file.name, "loaded");
                    }
                    (conn, outcome)
                }
            },
        )
        .await?;
    }
    let load_seconds = load_started.elapsed().as_secs_f64();

    let verify_started = Instant::now();
    verify_restored(&url, &options.target_database, &manifest, options.jobs).await?;
    let report = RestoreReport {
        backup_id: manifest.backup_id.clone(),
        source_database: manifest.database.clone(),
        target_database: options.target_database.clone(),
        files: manifest.files.len(),
        bytes: manifest.total_bytes(),
        tables: manifest.tables.len(),
        rows: manifest.total_rows(),
        objects: manifest.objects.len(),
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

/// Recomputes row counts, fingerprints and definition hashes in the restored database and
/// compares them with the manifest.
pub async fn verify_restored(
    url: &DatabaseUrl,
    database: &str,
    manifest: &Manifest,
    jobs: usize,
) -> Result<()> {
    let mut conn = db::connect(url, Some(database)).await?;
    db::run_all(&mut conn, db::DUMP_SESSION).await?;
    let summaries = schema::list_tables(&mut conn, database).await?;
    let mut tables = Vec::new();
    let mut views = Vec::new();
    for summary in &summaries {
        if summary.table_type == "VIEW" {
            views.push(summary.name.clone());
        } else {
            tables.push(schema::describe_table(&mut conn, database, summary).await?);
        }
    }
    let objects = schema::stored_objects(&mut conn, database, &views).await?;
    let _ = conn.disconnect().await;

    let mut problems = Vec::new();
    let restored: BTreeMap<&str, &Table> = tables.iter().map(|t| (t.name.as_str(), t)).collect();
    for expected in &manifest.tables {
        match restored.get(expected.name.as_str()) {
            None => problems.push(format!("table `{}` is missing", expected.name)),
            Some(table) if table.definition_sha256() != expected.definition_sha256 => problems
                .push(format!(
                    "table `{}` has a different definition",
                    expected.name
                )),
            Some(_) => {}
        }
    }
    for table in &tables {
        if !manifest.tables.iter().any(|t| t.name == table.name) {
            problems.push(format!("table `{}` is not in the backup", table.name));
        }
    }
    let expected_objects: BTreeMap<(String, String), &str> = manifest
        .objects
        .iter()
        .map(|o| {
            (
                (o.kind.label().to_string(), o.name.clone()),
                o.definition_sha256.as_str(),
            )
        })
        .collect();
    let actual_objects: BTreeMap<(String, String), String> = objects
        .iter()
        .map(|o| {
            (
                (o.kind.label().to_string(), o.name.clone()),
                o.definition_sha256(),
            )
        })
        .collect();
    for ((kind, name), hash) in &expected_objects {
        match actual_objects.get(&(kind.clone(), name.clone())) {
            None => problems.push(format!("{kind} `{name}` is missing")),
            Some(actual) if actual != hash => {
                problems.push(format!("{kind} `{name}` has a different definition"))
            }
            Some(_) => {}
        }
    }
    for (kind, name) in actual_objects.keys() {
        if !expected_objects.contains_key(&(kind.clone(), name.clone())) {
            problems.push(format!("{kind} `{name}` is not in the backup"));
        }
    }

    let to_scan: Vec<Table> = tables
        .into_iter()
        .filter(|t| manifest.tables.iter().any(|m| m.name == t.name))
        .collect();
    let fingerprints = on_connections(url, database, jobs, to_scan, |mut conn, table| async move {
        let outcome = async {
            db::run_all(&mut conn, db::DUMP_SESSION).await?;
            let fingerprint = scan_fingerprint(&mut conn, &table).await?;
            Ok((table.name.clone(), fingerprint))
        }
        .await;
        (conn, outcome)
    })
    .await?;
    let fingerprints: BTreeMap<String, Fingerprint> = fingerprints.into_iter().collect();
    for expected in &manifest.tables {
        if let Some(actual) = fingerprints.get(&expected.name) {
            if actual.rows() != expected.rows {
                problems.push(format!(
                    "table `{}` has {} rows, the backup has {}",
                    expected.name,
                    actual.rows(),
                    expected.rows
                ));
            } else if actual.to_hex() != expected.fingerprint {
                problems.push(format!(
                    "table `{}` has different content than the backup",
                    expected.name
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::RestoreMismatch(problems))
    }
}

async fn scan_fingerprint(conn: &mut Conn, table: &Table) -> Result<Fingerprint> {
    let mut fingerprint = Fingerprint::default();
    if table.columns.is_empty() {
        return Ok(fingerprint);
    }
    let mut scratch = Vec::new();
    let context = || {
        format!(
            "reading the rows of restored table {}",
            quote_ident(&table.name)
        )
    };
    let mut rows = conn
        .exec_iter(table.select_sql(), ())
        .await
        .map_err(|e| Error::database(context(), e))?;
    while let Some(row) = rows
        .next()
        .await
        .map_err(|e| Error::database(context(), e))?
    {
        fingerprint.add_row(&row.unwrap(), &mut scratch);
    }
    Ok(fingerprint)
}

//! Loading a backup into a database, in parallel, and proving the result equals the backup.

mod accounts;
pub mod apply;
pub mod archive;
pub mod chain;
mod check;
pub mod definer;
pub mod estimate;
mod indexes;
mod infile;
pub mod point;
pub mod preflight;
pub mod progress;
mod render;
mod replayed;
mod session;
mod target;

pub use check::verify_restored;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
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
use crate::mysql::{self as db, quote_ident};
use crate::store::ObjectStore;
use definer::DefinerMode;
use point::Point;
pub use point::PointRequest;
use session::{retrying, Session};

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The server to restore into; its database part is ignored.
    pub server_url: DatabaseUrl,
    /// The point to restore: a backup (`latest` or an id), the newest point at or before a
    /// time, or just before a transaction of the binlog archive.
    pub point: PointRequest,
    pub target_database: String,
    /// Replace the target database's contents when it is not empty.
    pub force: bool,
    /// Connections loading data files at once.
    pub jobs: usize,
    /// Continue the interrupted restore of the same backup in the target, skipping what it
    /// finished.
    pub resume: bool,
    /// Keep the objects' DEFINER clauses, or create the objects as the restoring user.
    pub definer: DefinerMode,
    /// Recreate the accounts and grants the backup recorded (locked, without a password,
    /// unless the dump kept password hashes), with grants moved to the target database.
    pub with_accounts: bool,
    /// Updated as the restore goes, for whoever must say how far it got if it is stopped.
    pub headway: Arc<crate::job::headway::Headway>,
    /// Load rows (and replay the binlog) of these tables only; the other tables are created
    /// empty. For a scratch database to copy rows back from.
    pub tables: Option<Vec<String>>,
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
    /// Uncompressed bytes of the files loaded (`estimate::data_bytes`).
    pub data_bytes: u64,
    pub tables: usize,
    pub rows: u64,
    pub objects: usize,
    /// Views, routines, triggers and events created as the restoring user instead of their
    /// recorded DEFINER (`--definer current`).
    pub definers_rewritten: usize,
    pub load_seconds: f64,
    pub verify_seconds: f64,
    pub duration_seconds: f64,
    /// What the binlog replay did, when the point was reached through the binlog archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binlog: Option<crate::binlog::ReplayReport>,
    /// What the command line estimated before it started, beside `duration_seconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<estimate::Estimate>,
}

/// The options' own checks, before any store is read: a bad target name is named first.
pub fn check_options(options: &RestoreOptions) -> Result<()> {
    target::validate_database_name(&options.target_database)
}

pub async fn run_restore(
    store: Arc<dyn ObjectStore>,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    check_options(options)?;
    crate::catalog::require_backups(store.as_ref()).await?;
    let point = Point::resolve(store.as_ref(), &options.point).await?;
    run_restore_of(store, options, point).await
}

/// [`run_restore`] of a point the caller resolved from `options.point`: the command line
/// resolves it first to estimate the restore's time, and the point is not read twice.
pub async fn run_restore_of(
    store: Arc<dyn ObjectStore>,
    options: &RestoreOptions,
    point: Point,
) -> Result<RestoreReport> {
    let started = Instant::now();
    target::validate_database_name(&options.target_database)?;
    archive::ensure_readable(store.as_ref(), &point).await?;
    let Point {
        chain,
        replay: replay_plan,
        ..
    } = point;
    let target = chain
        .last()
        .cloned()
        .ok_or_else(|| Error::NoBackups(store.to_string()))?;
    let root = chain[0].clone();
    if let Some(only) = &options.tables {
        let known: BTreeSet<&str> = chain
            .iter()
            .flat_map(|m| m.tables.iter().map(|t| t.name.as_str()))
            .collect();
        if let Some(unknown) = only.iter().find(|t| !known.contains(t.as_str())) {
            return Err(Error::InvalidValue {
                what: "table in --tables",
                value: unknown.clone(),
                expected: format!(
                    "a table of backup {}: {}",
                    root.backup_id,
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    tracing::info!(
        backup_id = %target.backup_id,
        links = chain.len(),
        files = chain.iter().map(|m| m.files.len()).sum::<usize>(),
        "checking every file before loading anything"
    );
    options.headway.measure(
        "checking every file of the chain",
        chain.iter().map(Manifest::total_bytes).sum(),
    );
    for link in &chain {
        crate::verify::verify_backup_tracked(store.as_ref(), link, &options.headway).await?;
    }

    options
        .headway
        .phase("checking privileges and preparing the target database");
    let url = options.server_url.with_database(None);
    let plan = progress::Plan {
        target: target.backup_id.clone(),
        chain: chain.iter().map(|m| m.backup_id.clone()).collect(),
        replay_to: replay_plan.as_ref().map(|p| p.stop.to_string()),
    };
    let mut admin = db::connect(&url, None).await?;
    let accounts_file = if options.with_accounts {
        Some(accounts::file_of(&root)?)
    } else {
        None
    };
    let mut needs = preflight::needs_of(store.as_ref(), &root).await?;
    needs.accounts = options.with_accounts;
    preflight::check(
        &mut admin,
        &needs,
        &options.target_database,
        options.definer,
    )
    .await?;
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
    let extras = target::Extras {
        replay: replay_plan.is_some(),
        accounts: options.with_accounts,
        tables: options.tables.clone(),
    };
    let done = target::prepare_target(&mut admin, &root, options, &plan, &steps, &extras).await?;
    let loading = rows_loading(&mut admin).await;
    let _ = admin.disconnect().await;

    // From here on the target exists: whatever stops the restore, the error says it is
    // incomplete, what it lacks and how to finish (see `target`).
    let loaded = async {
        options.headway.plan(
            steps
                .iter()
                .map(|(m, stage)| m.files.iter().filter(|f| f.stage == *stage).count() as u64)
                .sum(),
        );
        options.headway.measure(
            "loading",
            steps
                .iter()
                .flat_map(|(m, stage)| m.files.iter().filter(move |f| f.stage == *stage))
                .map(|f| f.bytes)
                .sum(),
        );

        let mut loader = Loader {
            store,
            url: url.clone(),
            options: options.clone(),
            done,
            deferred: Vec::new(),
            loading,
            session: Session::new(&url, &options.target_database),
            definers_rewritten: 0,
        };
        let load_started = Instant::now();
        let mut replayed = None;
        for &(manifest, stage) in &steps {
            // The binlog goes on top of everything but triggers and events: the binlog already
            // holds what triggers did, and they must not fire again.
            if let (Stage::Triggers, Some(plan), None) = (stage, &replay_plan, &replayed) {
                options.headway.phase("replaying the binlog archive");
                let report = replayed::run(&mut loader, plan, &root.database).await?;
                tracing::info!(
                    transactions = report.transactions,
                    rows = report.row_changes,
                    stopped = %report.stopped,
                    "binlog replayed"
                );
                replayed = Some(report);
            }
            loader.stage(manifest, stage).await?;
        }
        if let Some(report) = &replayed {
            replayed::create_deferred_triggers(&mut loader, report).await?;
        }
        if let Some(file) = &accounts_file {
            let (source, target) = (root.database.clone(), options.target_database.clone());
            let (store, prefix) = (loader.store.clone(), root.prefix());
            retrying!(
                loader.session,
                "recreating the accounts",
                |conn, _attempt| async {
                    accounts::apply(store.as_ref(), &prefix, file, conn, &source, &target).await
                }
            )?;
        }
        let load_seconds = load_started.elapsed().as_secs_f64();

        let verify_started = Instant::now();
        options
            .headway
            .phase("verifying the restored database against the manifests");
        let mut expected = chain::expected_state(&chain);
        if let Some(report) = &replayed {
            expected = check::after_replay(expected, report);
        }
        if let Some(only) = &options.tables {
            // Created empty, as asked: not compared.
            for table in &expected.tables {
                if !only.contains(&table.name) {
                    expected.unchecked.insert(table.name.clone());
                }
            }
        }
        let target_version: Option<String> = retrying!(
            loader.session,
            "reading the server version",
            |conn, _attempt| async {
                conn.query_first("SELECT VERSION()")
                    .await
                    .map_err(|e| Error::database("reading the server version", e))
            }
        )?;
        let target_version = target_version.unwrap_or_default();
        if crate::mysql::shape::renders_differently(&root.server.version, &target_version) {
            expected = render::rendered_expectations(
                loader.store.as_ref(),
                &root,
                &url,
                &options.target_database,
                options.definer,
                expected,
            )
            .await?;
        }
        verify_restored(
            &url,
            &options.target_database,
            &expected,
            options.jobs,
            options.definer,
        )
        .await?;
        retrying!(
            loader.session,
            "finishing the restore",
            |conn, _attempt| async { progress::finish(conn).await }
        )?;
        loader.session.close().await;
        Ok((
            replayed,
            expected,
            load_seconds,
            verify_started,
            loader.definers_rewritten,
        ))
    }
    .await;
    let (replayed, expected, load_seconds, verify_started, definers_rewritten) = match loaded {
        Ok(loaded) => loaded,
        Err(cause) => {
            return Err(
                target::incomplete(cause, &url, &options.target_database, &steps, &extras).await,
            )
        }
    };
    let report = RestoreReport {
        backup_id: target.backup_id.clone(),
        kind: target.kind.label(),
        chain: chain.iter().map(|m| m.backup_id.clone()).collect(),
        point_in_time: match &replayed {
            Some(report) => format!(
                "{} (binlog replayed {})",
                report
                    .last_commit
                    .map_or_else(|| target.snapshot.database_time.clone(), |t| t.to_rfc3339()),
                report.stopped
            ),
            None => target.snapshot.database_time.clone(),
        },
        source_database: target.database.clone(),
        target_database: options.target_database.clone(),
        files: chain.iter().map(|m| m.files.len()).sum(),
        bytes: chain.iter().map(Manifest::total_bytes).sum(),
        data_bytes: estimate::data_bytes(&chain, options.tables.as_deref()),
        tables: expected.tables.len(),
        rows: expected.total_rows(),
        objects: expected.objects.len(),
        definers_rewritten,
        load_seconds: round(load_seconds),
        verify_seconds: round(verify_started.elapsed().as_secs_f64()),
        duration_seconds: round(started.elapsed().as_secs_f64()),
        binlog: replayed,
        estimate: None,
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

/// Loads stages in order, skipping what an interrupted run already finished.
struct Loader {
    store: Arc<dyn ObjectStore>,
    url: DatabaseUrl,
    options: RestoreOptions,
    /// Steps an interrupted run recorded, with their detail.
    done: BTreeMap<String, Option<String>>,
    /// Keys taken off the tables for the data load, added back after it.
    deferred: Vec<indexes::DeferredKeys>,
    /// How data, deletes and changes files reach the server.
    loading: apply::Loading,
    /// The one connection for the stages that load in order and for the bookkeeping, kept for
    /// the whole restore (and made again if it is lost).
    session: Session,
    definers_rewritten: usize,
}

impl Loader {
    async fn stage(&mut self, manifest: &Manifest, stage: Stage) -> Result<()> {
        let step = progress::stage_step(manifest, stage);
        if let Some(detail) = self.done.get(&step) {
            tracing::info!(backup_id = %manifest.backup_id, stage = stage.label(), "already restored by the interrupted run");
            if stage == Stage::Schema {
                self.deferred = detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or_default();
            }
            return Ok(());
        }
        self.options.headway.phase(format!(
            "loading the {} stage of {}",
            stage.label(),
            manifest.backup_id
        ));
        let files: Vec<FileEntry> = manifest
            .files
            .iter()
            .filter(|f| f.stage == stage)
            .filter(|f| in_scope(self.options.tables.as_deref(), f))
            .cloned()
            .collect();
        let detail = match stage {
            Stage::Data | Stage::Deletes | Stage::Changes => {
                self.load_files(manifest, stage, files).await?;
                if stage == Stage::Data {
                    self.options
                        .headway
                        .phase("building the secondary keys taken off for the data load");
                    indexes::rebuild(
                        &self.url,
                        &self.options.target_database,
                        self.options.jobs,
                        std::mem::take(&mut self.deferred),
                    )
                    .await?;
                }
                None
            }
            _ => self.load_definitions(manifest, stage, files).await?,
        };
        retrying!(
            self.session,
            "recording a finished stage",
            |conn, _attempt| async { progress::mark(conn, &step, detail.as_deref()).await }
        )?;
        Ok(())
    }

    /// Schema, routines, views, triggers and events: on one connection, in order. After a lost
    /// connection (or in a resumed restore) the stage's objects are removed and the stage
    /// loaded again whole. The schema stage also takes the deferred keys off and returns them.
    async fn load_definitions(
        &mut self,
        manifest: &Manifest,
        stage: Stage,
        files: Vec<FileEntry>,
    ) -> Result<Option<String>> {
        if files.is_empty() && stage != Stage::Schema {
            return Ok(None);
        }
        tracing::info!(backup_id = %manifest.backup_id, stage = stage.label(), files = files.len(), "loading");
        let resuming = !self.done.is_empty();
        let prefix = manifest.prefix();
        let data_tables: Vec<String> = manifest
            .files
            .iter()
            .filter(|f| f.stage == Stage::Data)
            .filter_map(|f| f.table.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let store = self.store.clone();
        let target = self.options.target_database.clone();
        let what = format!("loading the {} stage", stage.label());
        let definer = self.options.definer;
        // Into another database (a scratch copy, the restore test), an event must not run on
        // the source's schedule: its body may name the live database.
        let events_disabled = manifest.database != target;
        if events_disabled && stage == Stage::Events {
            tracing::warn!(
                "events are created DISABLE in `{target}` (it is not the backup's database); enable each with ALTER EVENT … ENABLE if this copy is to run them"
            );
        }
        let mut rewritten = 0;
        let deferred = retrying!(self.session, &what, |conn, attempt| async {
            if attempt > 1 || resuming {
                clear_stage(conn, &target, stage).await?;
            }
            rewritten = 0;
            for file in &files {
                apply::apply_file(
                    store.as_ref(),
                    &prefix,
                    file,
                    conn,
                    None,
                    apply::ObjectRewrite {
                        definer,
                        events_disabled,
                    },
                    &mut rewritten,
                    apply::Loading::Statements,
                )
                .await?;
                tracing::info!(file = %file.name, "loaded");
            }
            if stage == Stage::Schema {
                indexes::defer(conn, &data_tables).await
            } else {
                Ok(Vec::new())
            }
        })?;
        self.definers_rewritten += rewritten;
        self.options.headway.files_loaded(files.len() as u64);
        self.options
            .headway
            .bytes_done(files.iter().map(|f| f.bytes).sum());
        if stage != Stage::Schema {
            return Ok(None);
        }
        let detail = serde_json::to_string(&deferred).map_err(|e| Error::Task(e.to_string()))?;
        self.deferred = deferred;
        Ok(Some(detail))
    }

    /// Data, deletes and changes files: over several connections, biggest first, each file
    /// recorded inside its own transaction and loaded again on a new connection when its
    /// connection is lost.
    async fn load_files(
        &mut self,
        manifest: &Manifest,
        stage: Stage,
        mut files: Vec<FileEntry>,
    ) -> Result<()> {
        let target = self.options.target_database.clone();
        let inserts_only = retrying!(
            self.session,
            "reading AUTO_INCREMENT columns",
            |conn, _attempt| async { tables_loaded_as_inserts(conn, &target).await }
        )?;
        let inserts_only = Arc::new(inserts_only);
        let fragile = if stage == Stage::Data {
            let fragile = retrying!(
                self.session,
                "reading table engines",
                |conn, _attempt| async { non_transactional_tables(conn, &target).await }
            )?;
            self.reload_half_loaded(manifest, &files, &fragile).await?;
            fragile
        } else {
            BTreeSet::new()
        };
        let before = files.len();
        files.retain(|f| !self.done.contains_key(&progress::file_step(manifest, f)));
        if files.len() < before {
            tracing::info!(
                backup_id = %manifest.backup_id,
                stage = stage.label(),
                skipped = before - files.len(),
                "files already loaded by the interrupted run"
            );
        }
        if files.is_empty() {
            return Ok(());
        }
        let jobs = self.options.jobs.max(1);
        files.sort_by_key(|f| std::cmp::Reverse(f.uncompressed_bytes));
        tracing::info!(
            backup_id = %manifest.backup_id,
            stage = stage.label(),
            files = files.len(),
            connections = jobs,
            "loading"
        );
        let prefix = manifest.prefix();
        let items: Vec<(FileEntry, String)> = files
            .into_iter()
            .map(|f| {
                let step = progress::file_step(manifest, &f);
                (f, step)
            })
            .collect();
        let store = self.store.clone();
        let fragile = Arc::new(fragile);
        let headway = self.options.headway.clone();
        let all_loading = self.loading;
        on_connections(
            &self.url,
            &target,
            jobs,
            items,
            move |mut session, (file, step)| {
                let store = store.clone();
                let prefix = prefix.clone();
                let fragile = fragile.clone();
                let headway = headway.clone();
                let inserts_only = inserts_only.clone();
                async move {
                    let what = format!("loading {}", file.name);
                    let table = file.table.clone().unwrap_or_default();
                    let loading = if inserts_only.contains(&table) {
                        apply::Loading::Statements
                    } else {
                        all_loading
                    };
                    let outcome = retrying!(session, &what, |conn, attempt| async {
                            if attempt > 1 {
                                if progress::recorded(conn, &step).await?.is_some() {
                                    // Committed just before the connection went.
                                    return Ok(());
                                }
                                if fragile.contains(&table) {
                                    return Err(Error::Interrupted(format!(
                                        "the connection was lost while {} was loading into table `{table}`, whose engine cannot roll back a half-loaded file; run the same restore with --resume, which loads that table again whole",
                                        file.name
                                    )));
                                }
                            }
                            // Data files hold no CREATE of a view, routine or trigger.
                            let recorded = apply::apply_file(
                                store.as_ref(),
                                &prefix,
                                &file,
                                conn,
                                Some(&step),
                                apply::ObjectRewrite::default(),
                                &mut 0,
                                loading,
                            )
                            .await?;
                            if !recorded {
                                progress::mark(conn, &step, None).await?;
                            }
                            Ok(())
                        });
                    if outcome.is_ok() {
                        tracing::info!(file = %file.name, "loaded");
                        headway.files_loaded(1);
                        headway.bytes_done(file.bytes);
                    }
                    (session, outcome)
                }
            },
        )
        .await
        .map(|_| ())
    }

    /// In a resumed restore, a table of a non-transactional engine (MyISAM, Aria, …) with a
    /// file not recorded as loaded may hold part of that file: it is emptied and all its files
    /// loaded again.
    async fn reload_half_loaded(
        &mut self,
        manifest: &Manifest,
        files: &[FileEntry],
        fragile: &BTreeSet<String>,
    ) -> Result<()> {
        for table in fragile {
            let steps: Vec<String> = files
                .iter()
                .filter(|f| f.table.as_deref() == Some(table))
                .map(|f| progress::file_step(manifest, f))
                .collect();
            let some_done = steps.iter().any(|s| self.done.contains_key(s));
            let all_done = steps.iter().all(|s| self.done.contains_key(s));
            if all_done {
                continue;
            }
            // Rows of a file whose load was cut short stay in such a table, recorded or not
            // (its first file, killed half way, leaves rows and no recorded step).
            let has_rows = some_done
                || retrying!(
                    self.session,
                    "reading a part-loaded table",
                    |conn, _attempt| async {
                        conn.query_first::<u8, _>(format!(
                            "SELECT 1 FROM {} LIMIT 1",
                            quote_ident(table)
                        ))
                        .await
                        .map(|row| row.is_some())
                        .map_err(|e| Error::database(format!("reading table `{table}`"), e))
                    }
                )?;
            if !has_rows {
                continue;
            }
            tracing::warn!(%table, "non-transactional table was part-loaded by the interrupted run; loading it again whole");
            retrying!(
                self.session,
                "emptying a part-loaded table",
                |conn, _attempt| async {
                    conn.query_drop(format!("TRUNCATE TABLE {}", quote_ident(table)))
                        .await
                        .map_err(|e| Error::database(format!("emptying table `{table}`"), e))
                }
            )?;
            for step in steps {
                self.done.remove(&step);
            }
        }
        Ok(())
    }
}

/// Whether a file is loaded under `--tables` (`only`): the other tables' rows are left out.
fn in_scope(only: Option<&[String]>, file: &FileEntry) -> bool {
    match (only, &file.table) {
        (Some(only), Some(table)) => only.contains(table),
        _ => true,
    }
}

/// Tables in `database` whose engine has no transactions.
async fn non_transactional_tables(conn: &mut Conn, database: &str) -> Result<BTreeSet<String>> {
    let names: Vec<String> = conn
        .exec(
            "SELECT t.TABLE_NAME FROM information_schema.TABLES t \
             JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE \
             WHERE t.TABLE_SCHEMA = ? AND t.TABLE_TYPE = 'BASE TABLE' AND e.TRANSACTIONS <> 'YES'",
            (database,),
        )
        .await
        .map_err(|e| Error::database("reading table engines", e))?;
    Ok(names.into_iter().collect())
}

/// Tables whose rows LOAD DATA would read otherwise than the INSERTs written for them: a NULL
/// in a nullable AUTO_INCREMENT column stays NULL in an INSERT, but LOAD DATA makes it the
/// next number (and skips the row when the numbers have run out).
async fn tables_loaded_as_inserts(conn: &mut Conn, database: &str) -> Result<BTreeSet<String>> {
    let names: Vec<String> = conn
        .exec(
            "SELECT DISTINCT TABLE_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND IS_NULLABLE = 'YES' AND EXTRA LIKE '%auto_increment%'",
            (database,),
        )
        .await
        .map_err(|e| Error::database("reading AUTO_INCREMENT columns", e))?;
    Ok(names.into_iter().collect())
}

/// Removes what a stage creates, so it can be loaded again whole.
async fn clear_stage(conn: &mut Conn, database: &str, stage: Stage) -> Result<()> {
    let query = match stage {
        Stage::Schema => "SELECT TABLE_NAME, IF(TABLE_TYPE = 'VIEW', 'VIEW', 'TABLE') FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
        Stage::Views => "SELECT TABLE_NAME, 'VIEW' FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?",
        Stage::Routines => "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?",
        Stage::Triggers => "SELECT TRIGGER_NAME, 'TRIGGER' FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?",
        Stage::Events => "SELECT EVENT_NAME, 'EVENT' FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
        _ => return Ok(()),
    };
    let objects: Vec<(String, String)> = conn.exec(query, (database,)).await.map_err(|e| {
        Error::database(
            format!("listing what the {} stage created", stage.label()),
            e,
        )
    })?;
    db::run_all(conn, &["SET SESSION foreign_key_checks = 0"]).await?;
    for (name, kind) in objects {
        if name == progress::PROGRESS_TABLE {
            continue;
        }
        conn.query_drop(format!("DROP {kind} IF EXISTS {}", quote_ident(&name)))
            .await
            .map_err(|e| {
                Error::database(format!("removing {kind} `{name}` to load it again"), e)
            })?;
    }
    Ok(())
}

fn round(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// LOAD DATA for the rows where the server allows `LOCAL INFILE` (MariaDB's default; MySQL 8's
/// is off, and RDS sets it in the parameter group), else the INSERTs as written.
async fn rows_loading(conn: &mut Conn) -> apply::Loading {
    match conn
        .query_first::<Option<i64>, _>("SELECT @@local_infile")
        .await
    {
        Ok(Some(Some(1))) => apply::Loading::LoadData,
        outcome => {
            tracing::info!(
                ?outcome,
                "the server does not allow LOAD DATA LOCAL INFILE; rows are loaded as INSERT statements"
            );
            apply::Loading::Statements
        }
    }
}

/// Runs `work` over `items` on up to `jobs` sessions with `database`; the first failure stops
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
    F: Fn(Session, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Session, Result<R>)> + Send + 'static,
{
    let workers = jobs.max(1).min(items.len().max(1));
    let queue = Arc::new(Mutex::new(VecDeque::from(items)));
    let failed = Arc::new(AtomicBool::new(false));
    let work = Arc::new(work);
    // A JoinSet aborts its workers when dropped: a restore cancelled from outside (the restore
    // test's deadline) must not leave loads running, let alone reconnecting, behind it.
    let mut handles = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (queue, failed, work) = (queue.clone(), failed.clone(), work.clone());
        let mut session = Session::new(url, database);
        handles.spawn(async move {
            let mut results = Vec::new();
            loop {
                if failed.load(Ordering::SeqCst) {
                    break;
                }
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(item) = next else { break };
                let (returned, outcome) = work(session, item).await;
                session = returned;
                match outcome {
                    Ok(result) => results.push(result),
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        session.close().await;
                        return Err(e);
                    }
                }
            }
            session.close().await;
            Ok(results)
        });
    }
    let mut all = Vec::new();
    let mut first_error = None;
    while let Some(joined) = handles.join_next().await {
        match joined {
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

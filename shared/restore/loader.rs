//! The stage runner: loads each stage of each backup of the chain in order, the definitions on
//! one connection and the data files over several, recording every finished step so an
//! interrupted restore resumes where it stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::session::{retrying, Session};
use super::workers::on_connections;
use super::{apply, in_scope, indexes, progress, RestoreOptions};
use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::manifest::{FileEntry, Manifest, Stage};
use crate::mysql::{self as db, quote_ident};
use crate::store::ObjectStore;

/// Loads stages in order, skipping what an interrupted run already finished.
pub(super) struct Loader {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) url: DatabaseUrl,
    pub(super) options: RestoreOptions,
    /// Steps an interrupted run recorded, with their detail.
    pub(super) done: BTreeMap<String, Option<String>>,
    /// Keys taken off the tables for the data load, added back after it.
    deferred: Vec<indexes::DeferredKeys>,
    /// How data, deletes and changes files reach the server.
    loading: apply::Loading,
    /// The one connection for the stages that load in order and for the bookkeeping, kept for
    /// the whole restore (and made again if it is lost).
    pub(super) session: Session,
    pub(super) definers_rewritten: usize,
}

impl Loader {
    /// A loader into `options.target_database` on the server at `url`, skipping the steps in
    /// `done`, loading rows as `loading` says.
    pub(super) fn new(
        store: Arc<dyn ObjectStore>,
        url: &DatabaseUrl,
        options: &RestoreOptions,
        done: BTreeMap<String, Option<String>>,
        loading: apply::Loading,
    ) -> Loader {
        Loader {
            store,
            url: url.clone(),
            options: options.clone(),
            done,
            deferred: Vec::new(),
            loading,
            session: Session::new(url, &options.target_database),
            definers_rewritten: 0,
        }
    }

    pub(super) async fn stage(&mut self, manifest: &Manifest, stage: Stage) -> Result<()> {
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

/// Tables in `database` whose engine has no transactions.
pub(super) async fn non_transactional_tables(
    conn: &mut Conn,
    database: &str,
) -> Result<BTreeSet<String>> {
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

/// LOAD DATA for the rows where the server allows `LOCAL INFILE` (MariaDB's default; MySQL 8's
/// is off, and RDS sets it in the parameter group), else the INSERTs as written.
pub(super) async fn rows_loading(conn: &mut Conn) -> apply::Loading {
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

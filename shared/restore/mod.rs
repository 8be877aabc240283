//! Loading a backup into a database, in parallel, and proving the result equals the backup.
//!
//! This file runs one restore from start to end ([`run_restore_of`]): check every file, prepare
//! the target, load the stages in order (`loader`), replay the binlog, verify, and report.

mod accounts;
pub mod apply;
pub mod archive;
pub mod chain;
mod check;
pub mod definer;
pub mod estimate;
mod indexes;
mod infile;
mod loader;
mod options;
pub mod point;
pub mod preflight;
pub mod progress;
mod render;
mod replayed;
mod report;
mod session;
mod target;
mod workers;

pub use check::verify_restored;
pub use options::{check_options, RestoreOptions};
pub use report::RestoreReport;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use mysql_async::prelude::Queryable;

use crate::error::{Error, Result};
use crate::manifest::{FileEntry, Manifest, Stage};
use crate::mysql as db;
use crate::store::ObjectStore;
use loader::{rows_loading, Loader};
use point::Point;
pub use point::PointRequest;
use report::round;
use session::retrying;

// Named as `super::…` by the other parts of the restore.
use loader::non_transactional_tables;
use workers::on_connections;

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

        let mut loader = Loader::new(store, &url, options, done, loading);
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

/// Whether a file is loaded under `--tables` (`only`): the other tables' rows are left out.
fn in_scope(only: Option<&[String]>, file: &FileEntry) -> bool {
    match (only, &file.table) {
        (Some(only), Some(table)) => only.contains(table),
        _ => true,
    }
}

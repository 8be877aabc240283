//! What an interrupted restore had finished, kept in the target database itself.
//!
//! A data file's step is recorded inside the file's own transaction, just before its COMMIT,
//! so "loaded" and "recorded" cannot disagree: a file is either in the table with its rows
//! committed, or absent with its rows rolled back. That makes a file safe to load again after
//! a lost connection, and lets `restore --resume` skip what is done. Stage steps (schema,
//! views, …) are recorded after the stage. The table is dropped once the restore verifies; while
//! it exists, its name and comment say the database is an unfinished restore.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::{FileEntry, Manifest, Stage};
use crate::mysql::{quote_ident, quote_str};

/// Named for whoever lists the tables of a half-restored database: it is the marker.
pub const PROGRESS_TABLE: &str = crate::mysql::RESTORE_MARKER_TABLE;

// Writing a step is the database's part, shared with the binlog replay (which records its
// checkpoint inside each replayed transaction).
pub(crate) use crate::mysql::restore_marker::{finish, mark, recorded};

/// Its name before it became the marker: a restore interrupted under an earlier version is
/// still found, and renamed to the marker when it is.
const LEGACY_PROGRESS_TABLE: &str = "_toc_restore_progress";

const PLAN_STEP: &str = "plan";
/// The binlog replay's checkpoint (see `binlog::Checkpoint`), updated in each replayed
/// transaction…
pub(crate) const REPLAY_CHECKPOINT_STEP: &str = "binlog-replay";
/// …and its report once the replay is finished.
pub(crate) const REPLAY_DONE_STEP: &str = "binlog-replay:done";
/// How many of the trigger statements the replay kept for last have run.
pub(crate) const REPLAY_TRIGGERS_STEP: &str = "binlog-replay:triggers";

fn marker_comment(backup_id: &str) -> String {
    quote_str(&format!(
        "INCOMPLETE RESTORE of backup {backup_id}: tables, rows or objects are missing until `toc-backup restore --resume` finishes it; do not use this database"
    ))
}

/// Which restore this is: a resumed one must restore exactly the same chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub target: String,
    pub chain: Vec<String>,
    /// Where the binlog replay stops, for a point reached through the archive (a resumed
    /// restore must replay to the same stop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_to: Option<String>,
}

pub(crate) fn file_step(manifest: &Manifest, file: &FileEntry) -> String {
    format!("{}/{}", manifest.backup_id, file.name)
}

pub(crate) fn stage_step(manifest: &Manifest, stage: Stage) -> String {
    format!("{}/stage:{}", manifest.backup_id, stage.label())
}

pub(crate) async fn create(conn: &mut Conn, plan: &Plan) -> Result<()> {
    let table = quote_ident(PROGRESS_TABLE);
    conn.query_drop(format!(
        "CREATE TABLE {table} (step VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, \
         detail MEDIUMTEXT NULL, done_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB COMMENT={}",
        marker_comment(&plan.target)
    ))
    .await
    .map_err(|e| Error::database("creating the restore's progress table", e))?;
    let plan = serde_json::to_string(plan).map_err(|e| Error::Task(e.to_string()))?;
    mark(conn, PLAN_STEP, Some(&plan)).await
}

/// Starts the marker of an interrupted restore afresh for `plan` (a restore started again
/// with --force): nothing it recorded is done any more.
pub(crate) async fn restart(conn: &mut Conn, plan: &Plan) -> Result<()> {
    let table = quote_ident(PROGRESS_TABLE);
    for statement in [
        format!("DELETE FROM {table}"),
        format!(
            "ALTER TABLE {table} COMMENT={}",
            marker_comment(&plan.target)
        ),
    ] {
        conn.query_drop(statement)
            .await
            .map_err(|e| Error::database("starting the restore's progress table afresh", e))?;
    }
    let plan = serde_json::to_string(plan).map_err(|e| Error::Task(e.to_string()))?;
    mark(conn, PLAN_STEP, Some(&plan)).await
}

/// The plan and finished steps of an interrupted restore, or None when `database` holds none.
pub(crate) async fn load(
    conn: &mut Conn,
    database: &str,
) -> Result<Option<(Plan, BTreeMap<String, Option<String>>)>> {
    let found: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?)",
            (database, PROGRESS_TABLE, LEGACY_PROGRESS_TABLE),
        )
        .await
        .map_err(|e| Error::database("looking for an interrupted restore", e))?;
    let legacy = !found.iter().any(|t| t == PROGRESS_TABLE);
    if found.is_empty() {
        return Ok(None);
    }
    if legacy {
        conn.query_drop(format!(
            "RENAME TABLE {db}.{} TO {db}.{}",
            quote_ident(LEGACY_PROGRESS_TABLE),
            quote_ident(PROGRESS_TABLE),
            db = quote_ident(database)
        ))
        .await
        .map_err(|e| {
            Error::database(
                "renaming an earlier version's restore progress table to the marker",
                e,
            )
        })?;
    }
    let rows: Vec<(String, Option<String>)> = conn
        .query(format!(
            "SELECT step, detail FROM {}.{}",
            quote_ident(database),
            quote_ident(PROGRESS_TABLE)
        ))
        .await
        .map_err(|e| Error::database("reading the interrupted restore's progress", e))?;
    let mut plan = None;
    let mut done = BTreeMap::new();
    for (step, detail) in rows {
        if step == PLAN_STEP {
            plan = detail.and_then(|d| serde_json::from_str::<Plan>(&d).ok());
        } else {
            done.insert(step, detail);
        }
    }
    let plan = plan.ok_or_else(|| Error::CannotResume {
        database: database.to_string(),
        reason: format!("its {PROGRESS_TABLE} table has no readable plan"),
    })?;
    if legacy {
        conn.query_drop(format!(
            "ALTER TABLE {}.{} COMMENT={}",
            quote_ident(database),
            quote_ident(PROGRESS_TABLE),
            marker_comment(&plan.target)
        ))
        .await
        .map_err(|e| Error::database("marking an earlier version's interrupted restore", e))?;
    }
    Ok(Some((plan, done)))
}

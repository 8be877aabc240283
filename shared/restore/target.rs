//! The target database: made ready for a restore, and, when a restore stops part-way, said
//! to be incomplete in the database itself and in the error.
//!
//! The choice for a restore that fails after it created tables: it is left in place, marked,
//! never removed. Removing it would throw away what `--resume` can finish (hours of loading for
//! a large backup), and a killed process removes nothing anyway. So the marker is there from
//! the first table created to the final check passing: the progress table, named so no one
//! takes the database for a finished one, with a comment saying what it is; and the error
//! lists what is missing and the command that finishes the restore.

use std::collections::{BTreeMap, BTreeSet};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::progress;
use super::RestoreOptions;
use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::manifest::{BackupKind, Manifest, Stage};
use crate::mysql::{self as db, quote_ident, quote_str};

/// One stage of one backup of the chain, in the order a restore loads them.
pub(super) type Step<'a> = (&'a Manifest, Stage);

/// What a restore does besides its stages, for the list of what is missing.
#[derive(Debug, Default)]
pub(super) struct Extras {
    /// The binlog archive is replayed before the triggers.
    pub replay: bool,
    /// `--with-accounts`.
    pub accounts: bool,
    /// `--tables`: the other tables' rows are left out on purpose, never missing.
    pub tables: Option<Vec<String>>,
}

/// What an unfinished restore still lacks, in restore order, given the steps it recorded.
pub(super) fn missing(
    steps: &[Step<'_>],
    done: &BTreeMap<String, Option<String>>,
    extras: &Extras,
) -> Vec<String> {
    let mut left = Vec::new();
    for &(manifest, stage) in steps {
        if extras.replay
            && stage == Stage::Triggers
            && !done.contains_key(&progress::stage_step(manifest, stage))
            && !done.contains_key(progress::REPLAY_DONE_STEP)
        {
            let checkpoint = done
                .get(progress::REPLAY_CHECKPOINT_STEP)
                .and_then(|detail| detail.as_deref())
                .and_then(|detail| serde_json::from_str::<crate::binlog::Checkpoint>(detail).ok());
            left.push(match checkpoint {
                Some(c) => format!(
                    "the binlog replay after {} ({} transactions replayed)",
                    c.position, c.report.transactions
                ),
                None => "the binlog replay".to_string(),
            });
        }
        if done.contains_key(&progress::stage_step(manifest, stage)) {
            continue;
        }
        let files: Vec<_> = manifest.files.iter().filter(|f| f.stage == stage).collect();
        let item = match stage {
            Stage::Schema => "the tables".to_string(),
            Stage::Data => {
                let files: Vec<_> = files
                    .iter()
                    .filter(|f| super::in_scope(extras.tables.as_deref(), f))
                    .collect();
                let unloaded: Vec<_> = files
                    .iter()
                    .filter(|f| !done.contains_key(&progress::file_step(manifest, f)))
                    .collect();
                if unloaded.is_empty() {
                    "the secondary keys taken off for the data load".to_string()
                } else {
                    let tables: BTreeSet<&str> =
                        unloaded.iter().filter_map(|f| f.table.as_deref()).collect();
                    format!(
                        "rows: {} of {} data files not loaded (tables {})",
                        unloaded.len(),
                        files.len(),
                        shorten(&tables.into_iter().collect::<Vec<_>>())
                    )
                }
            }
            Stage::Deletes | Stage::Changes if manifest.kind == BackupKind::Incremental => {
                let item = format!("incremental {}", manifest.backup_id);
                if left.last() == Some(&item) || files.is_empty() && stage == Stage::Deletes {
                    continue;
                }
                item
            }
            _ if files.is_empty() => continue,
            _ => stage.label().to_string(),
        };
        left.push(item);
    }
    if extras.replay {
        // The trigger statements the replay kept for after its rows (see `replayed`).
        let detail = |step: &str| done.get(step).and_then(|d| d.as_deref());
        let kept = detail(progress::REPLAY_DONE_STEP)
            .and_then(|d| serde_json::from_str::<crate::binlog::ReplayReport>(d).ok())
            .or_else(|| {
                detail(progress::REPLAY_CHECKPOINT_STEP)
                    .and_then(|d| serde_json::from_str::<crate::binlog::Checkpoint>(d).ok())
                    .map(|c| c.report)
            })
            .map_or(0, |report| report.deferred.len());
        let ran = detail(progress::REPLAY_TRIGGERS_STEP)
            .and_then(|d| d.parse::<usize>().ok())
            .unwrap_or(0);
        if kept > ran {
            left.push(format!(
                "{} of the {kept} trigger and event statements of the replayed binlog (run after its rows)",
                kept - ran
            ));
        }
    }
    if extras.accounts {
        left.push("the accounts (--with-accounts)".to_string());
    }
    left.push("the final check against the manifests".to_string());
    left
}

fn shorten(names: &[&str]) -> String {
    const SHOWN: usize = 6;
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// The error of a restore that stopped after it created the target: the cause, what the
/// database still lacks (read back from its progress table), and how to finish.
pub(super) async fn incomplete(
    cause: Error,
    url: &DatabaseUrl,
    database: &str,
    steps: &[Step<'_>],
    extras: &Extras,
) -> Error {
    let recorded = match db::connect(url, Some(database)).await {
        Ok(mut conn) => {
            let found = progress::load(&mut conn, database).await;
            let _ = conn.disconnect().await;
            found
        }
        Err(e) => Err(e),
    };
    let missing = match recorded {
        Ok(Some((_, done))) => missing(steps, &done, extras),
        Ok(None) => vec!["unknown (its progress table is gone)".to_string()],
        Err(e) => vec![format!("unknown (its progress could not be read: {e})")],
    };
    // A replay also reports a mismatch, before triggers and events: only a mismatch with
    // nothing but the final check left means everything was loaded.
    let only_the_check_left = missing.len() == 1;
    // Resuming a replay that failed on a transaction fails on it again.
    let replay_failed = !cause.is_connection_lost()
        && missing
            .first()
            .is_some_and(|m| m.starts_with("the binlog replay"));
    let missing = missing.join(", ");
    let next = if matches!(cause, Error::RestoreMismatch(_)) && only_the_check_left {
        // Everything was loaded and still differs: resuming would only check again.
        "everything was loaded but does not match the backup, so restore it again with --force (or an earlier point) and report this"
    } else if replay_failed {
        "the binlog replay cannot go on past what stopped it, so restore again with --force, or to an earlier point"
    } else {
        "to finish, run the same restore again with --resume (finished files are not loaded again); to start over, --force"
    };
    Error::RestoreIncomplete {
        database: database.to_string(),
        cause: Box::new(cause),
        missing,
        marker: progress::PROGRESS_TABLE,
        next,
    }
}

fn replayed_to(plan: &progress::Plan) -> String {
    plan.replay_to
        .as_ref()
        .map(|stop| format!(", the binlog replayed to {stop}"))
        .unwrap_or_default()
}

pub(super) fn validate_database_name(name: &str) -> Result<()> {
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

/// Makes the target ready: empty (or emptied with --force) for a new restore, or holding the
/// same restore's progress for --resume. Returns the steps an interrupted run finished.
/// ` CHARACTER SET 'x' COLLATE 'y'` as the backup's database had them (empty: the server's).
fn database_defaults(manifest: &Manifest) -> String {
    let mut clause = String::new();
    if !manifest.server.default_character_set.is_empty() {
        clause.push_str(&format!(
            " CHARACTER SET {}",
            quote_str(&manifest.server.default_character_set)
        ));
    }
    if !manifest.server.default_collation.is_empty() {
        clause.push_str(&format!(
            " COLLATE {}",
            quote_str(&manifest.server.default_collation)
        ));
    }
    clause
}

pub(super) async fn prepare_target(
    conn: &mut Conn,
    manifest: &Manifest,
    options: &RestoreOptions,
    plan: &progress::Plan,
    steps: &[Step<'_>],
    extras: &Extras,
) -> Result<BTreeMap<String, Option<String>>> {
    let target = options.target_database.as_str();
    let exists: Option<String> = conn
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (target,),
        )
        .await
        .map_err(|e| Error::database(format!("looking for database `{target}`"), e))?;
    let interrupted = match exists {
        Some(_) => progress::load(conn, target).await?,
        None => None,
    };
    if options.resume && !options.force {
        let Some((found, done)) = interrupted else {
            return Err(Error::CannotResume {
                database: target.to_string(),
                reason:
                    "it holds no interrupted restore (no progress table); restore without --resume"
                        .into(),
            });
        };
        if &found != plan {
            return Err(Error::CannotResume {
                database: target.to_string(),
                reason: format!(
                    "it holds an interrupted restore of backup {} (chain {}{}), not of {} (chain {}{}); run the interrupted restore's own point (--backup, --at, --before-gtid or --before-position) with --resume, or pass --force to start again",
                    found.target,
                    found.chain.join(", "),
                    replayed_to(&found),
                    plan.target,
                    plan.chain.join(", "),
                    replayed_to(plan)
                ),
            });
        }
        tracing::info!(
            target,
            backup_id = %plan.target,
            steps_done = done.len(),
            "resuming the interrupted restore"
        );
        return Ok(done);
    }
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
            if !options.force {
                return Err(match interrupted {
                    Some((found, done)) => Error::InterruptedRestore {
                        database: target.to_string(),
                        // What is missing is known step by step only for the same chain.
                        missing: if &found == plan {
                            missing(steps, &done, extras).join(", ")
                        } else {
                            format!(
                                "{} steps of its chain {} done",
                                done.len(),
                                found.chain.join(", ")
                            )
                        },
                        next: if &found == plan {
                            "pass --resume to continue it, or --force to start again"
                        } else {
                            "pass --force to restore again from the start"
                        },
                        backup: found.target,
                    },
                    None => Error::TargetNotEmpty {
                        database: target.to_string(),
                        flag: "--force",
                    },
                });
            }
            tracing::warn!(
                target,
                "--force: emptying the target database under the restore's marker"
            );
            // The marker first, then the emptying: it stands from before the first object
            // goes until the restore is verified, so the scheduled backups of this database
            // skip the whole time (a DROP and CREATE DATABASE left a moment without it).
            conn.query_drop(format!("USE {}", quote_ident(target)))
                .await
                .map_err(|e| Error::database(format!("using database `{target}`"), e))?;
            match interrupted {
                Some(_) => progress::restart(conn, plan).await?,
                None => progress::create(conn, plan).await?,
            }
            crate::mysql::empty_database(conn, target, progress::PROGRESS_TABLE).await?;
            let defaults = database_defaults(manifest);
            if !defaults.is_empty() {
                conn.query_drop(format!("ALTER DATABASE {}{defaults}", quote_ident(target)))
                    .await
                    .map_err(|e| {
                        Error::database(format!("setting database `{target}`'s defaults"), e)
                    })?;
            }
            return Ok(BTreeMap::new());
        }
    }
    let create = format!(
        "CREATE DATABASE IF NOT EXISTS {}{}",
        quote_ident(target),
        database_defaults(manifest)
    );
    conn.query_drop(create)
        .await
        .map_err(|e| Error::database(format!("creating database `{target}`"), e))?;
    conn.query_drop(format!("USE {}", quote_ident(target)))
        .await
        .map_err(|e| Error::database(format!("using database `{target}`"), e))?;
    progress::create(conn, plan).await?;
    Ok(BTreeMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::FileEntry;

    fn data_file(table: &str) -> FileEntry {
        FileEntry {
            name: format!("1-{table}.sql.gz"),
            stage: Stage::Data,
            table: Some(table.into()),
            bytes: 1,
            uncompressed_bytes: 1,
            sha256: "00".into(),
        }
    }

    #[test]
    fn rows_left_out_by_tables_are_not_missing_and_a_replay_is() {
        let mut full = crate::manifest::tests::sample();
        full.files
            .extend([data_file("grades"), data_file("email_logs")]);
        let steps: Vec<Step<'_>> = [Stage::Schema, Stage::Data, Stage::Triggers]
            .into_iter()
            .map(|stage| (&full, stage))
            .collect();
        let mut done = BTreeMap::new();
        done.insert(progress::stage_step(&full, Stage::Schema), None);
        done.insert(progress::file_step(&full, &full.files[1]), None);

        let everything = missing(&steps, &done, &Extras::default());
        assert_eq!(
            everything,
            [
                "rows: 1 of 2 data files not loaded (tables `email_logs`)",
                "the final check against the manifests"
            ]
        );
        let only_grades = Extras {
            replay: true,
            tables: Some(vec!["grades".into()]),
            ..Extras::default()
        };
        assert_eq!(
            missing(&steps, &done, &only_grades),
            [
                "the secondary keys taken off for the data load",
                "the binlog replay",
                "the final check against the manifests"
            ]
        );
        // The replay done, one of its two kept trigger statements run.
        let deferred = crate::binlog::Deferred {
            position: "mysql-bin.000001:4".into(),
            trigger: "tr".into(),
            table: Some("grades".into()),
            create: true,
            statement_hex: String::new(),
            session: Default::default(),
            event: false,
            user_vars: Vec::new(),
        };
        let report = crate::binlog::ReplayReport {
            deferred: vec![deferred.clone(), deferred],
            ..Default::default()
        };
        done.insert(
            progress::REPLAY_DONE_STEP.into(),
            serde_json::to_string(&report).ok(),
        );
        done.insert(progress::REPLAY_TRIGGERS_STEP.into(), Some("1".into()));
        done.insert(progress::stage_step(&full, Stage::Triggers), None);
        assert_eq!(
            missing(&steps, &done, &only_grades),
            [
                "the secondary keys taken off for the data load",
                "1 of the 2 trigger and event statements of the replayed binlog (run after its rows)",
                "the final check against the manifests"
            ]
        );
    }
}

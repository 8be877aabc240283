//! Replaying archived segments into a restored database: row changes as SQL, transaction by
//! transaction in commit order, DDL as the server logged it, other databases skipped. Every
//! UPDATE and DELETE must find exactly the rows the server changed: a row that is not there
//! means the target is not the state the binlog continues from, and replay stops saying so.
//! A rows event's changes go as few statements (INSERT of many rows, UPDATE and DELETE of rows
//! found by a list of keys), and consecutive logged transactions of rows share one target
//! transaction and its COMMIT, with the checkpoint of the last inside it.
//!
//! This file holds what the replay hands to the restore: its report, the trigger and event
//! statements it kept for later, its checkpoint. The work is in the submodules: `run` (the
//! loop over segments and events), `decode` (the segment read and its rows decoded ahead, on
//! a thread of their own), `rows` and `versioned` (a rows event as SQL), `outbox` (the
//! connection, and the statements of rows queued to go together), `session` and `names`
//! (a logged statement run as it ran on the source), `deferred` (trigger and event statements
//! kept for after the rows), `transaction` (the transaction in hand, the group of them sharing
//! a COMMIT, and the checkpoint).

mod decode;
mod deferred;
mod names;
mod outbox;
mod rows;
mod run;
mod session;
mod transaction;
mod versioned;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::position::Position;
use super::segment::TableChanges;
use super::statement::LoggedSession;

pub use deferred::create_deferred;
pub use run::replay;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplayReport {
    pub segments: usize,
    pub transactions: u64,
    pub row_changes: u64,
    pub ddl_statements: u64,
    /// The last transaction applied: its GTID, commit time and end position.
    pub last_gtid: Option<String>,
    pub last_commit: Option<DateTime<Utc>>,
    pub last_position: Option<String>,
    /// Where and why replay stopped.
    pub stopped: String,
    /// Tables of the source database the replay changed, with what it did to each.
    pub tables: BTreeMap<String, TableChanges>,
    /// Tables whose definition a replayed statement changed (or that it created or dropped).
    pub redefined: Vec<String>,
    /// Logged statements the replay did not run: account statements and statements on other
    /// databases (a restore changes its target and nothing else).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
    /// Objects replayed statements created, changed, renamed or dropped ("table", "view",
    /// "trigger", …), each with whether it exists after the replay: the final check expects
    /// them so, in place of the backup's list.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objects: BTreeMap<String, BTreeMap<String, bool>>,
    /// Trigger and event statements kept out of the target while rows are applied (a row
    /// event already holds what a trigger or event wrote; one that fired again would write it
    /// twice; the backup's own events are created after the rows): run, in order, once the
    /// replay and the backup's own triggers and events are in (see `create_deferred`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<Deferred>,
    /// Tables a foreign key's action (CASCADE, SET NULL, SET DEFAULT) may have changed while
    /// the replay applied rows with foreign_key_checks on: the engine did it on the source
    /// too, and the binlog does not hold those changes, so the final check cannot count them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub cascaded: BTreeSet<String>,
    /// Sequences whose state the replay wrote (a NEXTVAL refill, SETVAL, a sequence created):
    /// each write replaces its one row, so the final check counts one row, not the backup's
    /// plus the inserts.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sequences: BTreeSet<String>,
    pub seconds: f64,
}

/// A trigger statement the replay keeps for after its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferred {
    pub position: String,
    /// The trigger's (or the event's) name.
    pub trigger: String,
    /// The table a created trigger is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    pub create: bool,
    /// The statement's bytes as logged (in the character set of its session), hex.
    pub statement_hex: String,
    pub session: LoggedSession,
    /// A statement on an event (CREATE, ALTER, DROP EVENT), not a trigger: `create` says
    /// whether the event exists after it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub event: bool,
    /// The user variables logged for it (`SET @a := …`), set before it runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_vars: Vec<String>,
}

/// A logged statement the replay did not run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub position: String,
    /// The statement on one line, cut at 80 characters, control characters shown as `?`.
    pub statement: String,
    pub reason: String,
}

/// How far a replay got. Recorded in the target inside each replayed transaction, just before
/// its COMMIT, so the two cannot disagree: a replay started again (a lost connection, a
/// `restore --resume`) continues after the last transaction the target holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub segment_id: String,
    /// The end of the last transaction applied.
    pub position: Position,
    pub report: ReplayReport,
    /// What the segment in hand had applied, for its check against its manifest.
    pub applied: BTreeMap<String, TableChanges>,
    /// A statement (DDL) sent at this position and not yet known to be applied: the server
    /// commits it by itself, so a replay that stopped here cannot tell whether it ran, and
    /// running it twice can be wrong (`RENAME TABLE a TO b, b TO a`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_in_flight: Option<Position>,
}

/// Where a replay keeps its checkpoint: a step of the restore's progress table in the target
/// database (the replay's connection uses it), and the checkpoint to continue from.
#[derive(Debug, Clone)]
pub struct Journal {
    pub step: String,
    pub resume_from: Option<Checkpoint>,
    /// Tables of the target whose engine cannot roll back a transaction's changes.
    pub non_transactional: std::collections::BTreeSet<String>,
}

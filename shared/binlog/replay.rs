//! Replaying archived segments into a restored database: row changes as SQL, transaction by
//! transaction in commit order, DDL as the server logged it, other databases skipped. Every
//! UPDATE and DELETE must find exactly the row the server changed: a row that is not there
//! means the target is not the state the binlog continues from, and replay stops saying so.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, TimeZone, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use mysql_common::binlog::consts::{BinlogVersion, RowsEventFlags};
use mysql_common::binlog::events::{EventData, QueryEvent, RowsEventData};
use mysql_common::binlog::EventStreamReader;
use serde::{Deserialize, Serialize};

use super::events::{self, Edge, Frames, Role, Transactions};
use super::plan::{ReplayPlan, Stop};
use super::position::{Gtid, Position};
use super::segment::{self, TableChanges};
use super::sql::TableShape;
use super::statement::{self, statement_table, LoggedSession, Verdict};
use crate::error::{Error, Result};
use crate::manifest::object_key;
use crate::mysql::definition;
use crate::store::ObjectStore;

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

/// The transaction being replayed.
#[derive(Default)]
struct Pending {
    gtid: Option<String>,
    in_database_transaction: bool,
    /// A statement (DDL) was run: the server committed it.
    statement_applied: bool,
    changes: BTreeMap<String, TableChanges>,
    skip: bool,
    /// The user variables logged for the next statement (`SET @a := …`): it reads them.
    user_vars: Vec<String>,
    /// A table it changed whose engine cannot roll back (MyISAM, Aria, MEMORY).
    cannot_roll_back: Option<String>,
}

impl Pending {
    /// A lost connection is retried by replaying the transaction again, which is right only
    /// when the server rolled all of it back.
    fn unrepeatable(&self, error: Error) -> Error {
        match &self.cannot_roll_back {
            Some(table) if error.is_connection_lost() => Error::Interrupted(format!(
                "the connection was lost during a replayed transaction that changed table `{table}`, whose engine cannot roll back: part of it may be applied and it cannot be replayed again; restore again with --force ({error})"
            )),
            _ => error,
        }
    }
}

/// The replay session's own settings, which row changes are applied under (a logged statement
/// runs under its own, and these are set back after it). The character set first: a logged
/// statement may leave the connection in UTF-16, where the string literals below would read
/// as something else (ERROR 1298 for '+00:00'; peer corpus main/ctype_utf16). Then sql_mode:
/// what follows is read in it. A logged row holds what the server stored: ALLOW_INVALID_DATES
/// keeps a date stored under it (2026-04-31) from becoming zero.
const REPLAY_SESSION: [&str; 6] = [
    "SET NAMES utf8mb4",
    "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES'",
    "SET SESSION timestamp = DEFAULT",
    // An ALTER of a system-versioned table is logged only where the source allowed it (KEEP:
    // otherwise it fails, ERROR 4119, and is not logged); the setting is not logged with it.
    // MariaDB only, hence the executable comment.
    "SET SESSION time_zone = '+00:00' /*M!100304 , system_versioning_alter_history = KEEP */",
    "SET SESSION foreign_key_checks = 0",
    "SET SESSION collation_server = @@global.collation_server",
];

/// Runs a logged statement under the session settings logged with it, and the user variables
/// logged for it set as they were, then puts the replay's own settings back (also when the
/// statement fails: the error is the statement's).
async fn run_logged(
    conn: &mut Conn,
    session: &LoggedSession,
    user_vars: &[String],
    sql: &[u8],
) -> std::result::Result<(), mysql_async::Error> {
    let mut outcome = Ok(());
    for set in session.statements().iter().chain(user_vars) {
        outcome = conn.query_drop(set).await;
        if outcome.is_err() {
            break;
        }
    }
    if outcome.is_ok() {
        outcome = conn.query_drop(sql).await;
    }
    for statement in REPLAY_SESSION {
        let reset = conn.query_drop(statement).await;
        if outcome.is_ok() {
            outcome = reset;
        }
    }
    outcome
}

/// Whether the target has the event (or trigger) `name`.
async fn deferred_exists(conn: &mut Conn, event: bool, name: &str) -> Result<bool> {
    let (query, kind) = if event {
        (
            "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() AND EVENT_NAME = ?",
            "events",
        )
    } else {
        (
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = ?",
            "triggers",
        )
    };
    let found: Option<u64> = conn
        .exec_first(query, (name,))
        .await
        .map_err(|e| Error::database(format!("reading the target's {kind}"), e))?;
    Ok(found.unwrap_or(0) > 0)
}

/// Runs one deferred trigger or event statement on the target's connection. A statement
/// found done already (what it creates is there, what it drops is gone, an event it renames
/// is under its new name) is not run again: a restore stopped between running it and
/// recording it. CREATE OR REPLACE and other ALTER EVENTs always run.
pub async fn create_deferred(conn: &mut Conn, deferred: &Deferred) -> Result<()> {
    let kind = if deferred.event { "event" } else { "trigger" };
    let sql = hex::decode(&deferred.statement_hex).map_err(|e| Error::BinlogUnsupported {
        detail: format!(
            "the trigger statement at {} recorded by the replay cannot be read ({e}); restore again with --force",
            deferred.position
        ),
    })?;
    let (text, _) = crate::mysql::lexer::text_of(&sql);
    let dialect = deferred.session.dialect();
    let tokens = statement::statement_tokens(&text, dialect);
    let replaces = tokens.get(1).is_some_and(|t| t.is_keyword("OR"))
        && tokens.get(2).is_some_and(|t| t.is_keyword("REPLACE"));
    let alters = tokens.first().is_some_and(|t| t.is_keyword("ALTER"));
    let done = if alters {
        // ALTER EVENT a … RENAME TO b: done once b is there and a is not.
        match statement::touched_objects(&text, dialect).as_slice() {
            [from, to] if to.exists => {
                deferred_exists(conn, deferred.event, &to.name).await?
                    && !deferred_exists(conn, deferred.event, &from.name).await?
            }
            _ => false,
        }
    } else {
        !replaces
            && deferred_exists(conn, deferred.event, &deferred.trigger).await? == deferred.create
    };
    if done {
        return Ok(());
    }
    run_logged(conn, &deferred.session, &deferred.user_vars, &sql)
        .await
        .map_err(|e| {
            Error::database(
                format!(
                    "creating, changing or dropping {kind} `{}` as the statement at {} did",
                    deferred.trigger, deferred.position
                ),
                e,
            )
        })
}

pub async fn replay(
    store: &dyn ObjectStore,
    plan: &ReplayPlan,
    conn: &mut Conn,
    source_database: &str,
    target_database: &str,
    only_tables: Option<&[String]>,
    journal: Option<&Journal>,
) -> Result<ReplayReport> {
    let wanted = |table: &str| only_tables.is_none_or(|only| only.iter().any(|t| t == table));
    let started = std::time::Instant::now();
    for statement in REPLAY_SESSION {
        conn.query_drop(statement)
            .await
            .map_err(|e| Error::database("preparing the replay session", e))?;
    }
    // foreign_key_checks as the session that wrote each rows event had it: InnoDB cascades
    // inside the engine and logs only the row the statement changed, so the target must
    // cascade the same way. Off (the replay session's own) for statements, and for a restore
    // of some tables only, whose parents or children may not be there.
    let mut foreign_key_checks = false;
    // Tables whose foreign key actions are in `report.cascaded` already (until a statement
    // runs: it may change them).
    let mut cascades_known: BTreeSet<String> = BTreeSet::new();
    let resume_from = journal.and_then(|j| j.resume_from.as_ref());
    if let Some(statement) = resume_from.and_then(|c| c.statement_in_flight.as_ref()) {
        return Err(Error::BinlogUnsupported {
            detail: format!(
                "the replay stopped while the server ran the statement at {statement}, and whether it was applied cannot be known; restore again with --force"
            ),
        });
    }
    let mut report = match resume_from {
        Some(checkpoint) => {
            tracing::info!(
                position = %checkpoint.position,
                transactions = checkpoint.report.transactions,
                "continuing the binlog replay after the last transaction the target holds"
            );
            checkpoint.report.clone()
        }
        None => ReplayReport::default(),
    };
    report.stopped = "at the end of the archive".into();
    let seconds_before = report.seconds;
    'segments: for manifest in &plan.segments {
        // What this segment applied, to hold against what its manifest recorded.
        let mut applied: BTreeMap<String, TableChanges> = BTreeMap::new();
        let mut check_segment = true;
        match resume_from {
            Some(checkpoint) if manifest.next <= checkpoint.position => continue,
            Some(checkpoint) if manifest.start < checkpoint.position => {
                // The segment in hand when the replay stopped: counted already.
                if checkpoint.segment_id == manifest.segment_id {
                    applied = checkpoint.applied.clone();
                } else {
                    // A longer rerun of it was archived since: what it applied of this one
                    // is not known transaction by transaction.
                    check_segment = false;
                }
            }
            _ => report.segments += 1,
        }
        let what = manifest.data_key();
        let decoded = segment::read_events(store, manifest).await?;
        let mut frames = Frames::new(&decoded[..], &what)?;
        let mut reader = EventStreamReader::new(BinlogVersion::Version4);
        let mut transactions = Transactions::default();
        let mut pending = Pending::default();
        let mut shapes: HashMap<u64, TableShape> = HashMap::new();
        let mut compressed: HashMap<u64, Vec<bool>> = HashMap::new();
        while let Some(mut frame) = frames.next(&what)? {
            if let Some((table_id, columns)) = events::uncompressed_table_map(&mut frame) {
                compressed.insert(table_id, columns);
            }
            let event = reader
                .read(&frame[..])
                .map_err(|e| Error::CorruptFile {
                    file: what.clone(),
                    detail: e.to_string(),
                })?
                .ok_or_else(|| Error::CorruptFile {
                    file: what.clone(),
                    detail: "an empty event".into(),
                })?;
            let role = events::role(&event)?;
            if role == Role::FormatDescription {
                continue;
            }
            let header = event.header();
            let (begin, end) = events::span(&event, &manifest.start.file);
            let edge = transactions.step(&role);
            if matches!(edge, Edge::Started { .. }) {
                pending = Pending::default();
                if let Role::Start { gtid, .. } = &role {
                    pending.gtid = gtid.clone();
                }
                let stop_here = match &plan.stop {
                    Stop::BeforeGtid(g) => {
                        pending
                            .gtid
                            .as_deref()
                            .and_then(|t| Gtid::parse(t).ok())
                            .as_ref()
                            == Some(g)
                    }
                    Stop::BeforePosition(p) => begin >= *p,
                    Stop::At(_) => false,
                };
                if stop_here {
                    report.stopped = format!(
                        "just before the transaction at {begin} ({})",
                        pending.gtid.as_deref().unwrap_or("no GTID")
                    );
                    break 'segments;
                }
                // Transactions the full backup already holds.
                let in_snapshot = plan.skip.as_ref().is_some_and(|set| {
                    pending
                        .gtid
                        .as_deref()
                        .and_then(|t| Gtid::parse(t).ok())
                        .is_some_and(|g| set.contains(&g))
                });
                // Where the snapshot's position is exact no transaction straddles it: one
                // that starts before it is in the full backup.
                pending.skip = in_snapshot
                    || (plan.skip.is_none() && begin < plan.from)
                    || resume_from.is_some_and(|c| begin < c.position);
            }
            let ends = matches!(edge, Edge::Ended | Edge::Started { ended: true });
            let commit_time = Utc.timestamp_opt(i64::from(header.timestamp()), 0).single();
            if !pending.skip {
                match role {
                    Role::Rows => {
                        if let Some(EventData::RowsEvent(rows)) =
                            event.read_data().map_err(|e| Error::CorruptFile {
                                file: what.clone(),
                                detail: e.to_string(),
                            })?
                        {
                            let Some(table) = reader.get_tme(rows.table_id()) else {
                                return Err(Error::CorruptFile {
                                    file: what.clone(),
                                    detail: format!("rows of an unmapped table at {begin}"),
                                });
                            };
                            if table.database_name() != source_database
                                || !wanted(&table.table_name())
                            {
                                continue;
                            }
                            let name = table.table_name().into_owned();
                            if journal.is_some_and(|j| j.non_transactional.contains(&name)) {
                                pending.cannot_roll_back.get_or_insert_with(|| name.clone());
                            }
                            let checks = only_tables.is_none()
                                && !rows.flags().contains(RowsEventFlags::NO_FOREIGN_KEY_CHECKS);
                            if checks != foreign_key_checks {
                                conn.query_drop(format!(
                                    "SET SESSION foreign_key_checks = {}",
                                    u8::from(checks)
                                ))
                                .await
                                .map_err(|e| {
                                    pending.unrepeatable(Error::database(
                                        "setting foreign_key_checks as the logged rows had it",
                                        e,
                                    ))
                                })?;
                                foreign_key_checks = checks;
                            }
                            if checks
                                && !cascades_known.contains(&name)
                                && !matches!(
                                    rows,
                                    RowsEventData::WriteRowsEventV1(_)
                                        | RowsEventData::WriteRowsEvent(_)
                                )
                            {
                                cascades_from(conn, &name, &mut report.cascaded)
                                    .await
                                    .map_err(|e| pending.unrepeatable(e))?;
                                cascades_known.insert(name.clone());
                            }
                            begin_transaction(conn, &mut pending)
                                .await
                                .map_err(|e| pending.unrepeatable(e))?;
                            let (changed, is_sequence) = apply_rows(
                                conn,
                                &rows,
                                table,
                                &name,
                                (&mut shapes, &compressed),
                                &begin,
                            )
                            .await
                            .map_err(|e| pending.unrepeatable(e))?;
                            if is_sequence {
                                report.sequences.insert(name.clone());
                            }
                            pending.changes.entry(name).or_default().add(&changed);
                        }
                    }
                    Role::Statement if ends => {
                        let user_vars = std::mem::take(&mut pending.user_vars);
                        let query =
                            event
                                .read_event::<QueryEvent>()
                                .map_err(|e| Error::CorruptFile {
                                    file: what.clone(),
                                    detail: e.to_string(),
                                })?;
                        let dialect = statement::dialect_of(&query);
                        let session = LoggedSession::of(&query, header.timestamp());
                        // In the character set it was written in: sent as those bytes.
                        let (logged, utf8) = crate::mysql::lexer::text_of(query.query_raw());
                        let text = if target_database != source_database {
                            // The statement after a `SET STATEMENT … FOR` head, which stays.
                            let at = statement::statement_start(&logged, dialect);
                            match (logged.get(..at), logged.get(at..)) {
                                (Some(head), Some(ran)) => {
                                    definition::made_for_a_copy(ran, dialect, source_database)
                                        .map(|ran| format!("{head}{ran}"))
                                }
                                _ => None,
                            }
                            .unwrap_or(logged)
                        } else {
                            logged
                        };
                        // Logged text is shown without what could be a password.
                        let shown = || abbreviate(&statement::without_secrets(&text, dialect));
                        let mut table = statement_table(&text, dialect);
                        if let Some(name) = table.as_mut() {
                            in_server(conn, &session, utf8, name).await?;
                        }
                        let for_wanted = match &table {
                            Some(table) => wanted(table),
                            None => only_tables.is_none(),
                        };
                        if query.schema() == source_database && for_wanted {
                            if let (Stop::At(at), Some(t)) = (&plan.stop, commit_time) {
                                if t > *at {
                                    report.stopped = format!(
                                        "at the first statement after {} (committed {})",
                                        at.to_rfc3339(),
                                        t.to_rfc3339()
                                    );
                                    break 'segments;
                                }
                            }
                            let run = match statement::verdict(
                                &text,
                                dialect,
                                source_database,
                                target_database,
                            ) {
                                Verdict::Run => true,
                                Verdict::LeaveOut(reason) => {
                                    tracing::warn!(position = %begin, reason, "a logged statement is not replayed");
                                    report.left_out.push(LeftOut {
                                        position: begin.to_string(),
                                        statement: shown(),
                                        reason: reason.to_string(),
                                    });
                                    false
                                }
                                Verdict::NamesTheSource => {
                                    // Run on the target's connection, it would change the source
                                    // database itself (the live one, on the same server).
                                    return Err(Error::BinlogUnsupported {
                                        detail: format!(
                                            "the statement at {begin} ({}) names the database `{source_database}` itself: replayed into `{target_database}` it would change `{source_database}`; restore a point before it, or this point into `{source_database}` itself",
                                            shown()
                                        ),
                                    });
                                }
                                Verdict::Mixed => {
                                    return Err(Error::BinlogUnsupported {
                                        detail: format!(
                                            "the statement at {begin} ({}) changes `{source_database}` and another database at once: it can be neither replayed nor left out; restore a point before it",
                                            shown()
                                        ),
                                    });
                                }
                            };
                            let mut trigger = statement::trigger_statement(&text, dialect);
                            let mut touched = statement::touched_objects(&text, dialect);
                            for t in &mut touched {
                                in_server(conn, &session, utf8, &mut t.name).await?;
                            }
                            if run {
                                views_renamed(conn, &mut touched).await?;
                            }
                            if let Some(trigger) = trigger.as_mut() {
                                in_server(conn, &session, utf8, &mut trigger.name).await?;
                                if let Some(on) = trigger.table.as_mut() {
                                    in_server(conn, &session, utf8, on).await?;
                                }
                            }
                            if run && trigger.is_none() {
                                keep_deferred_in_step(&mut report, &touched, &text, dialect)
                                    .map_err(|detail| Error::BinlogUnsupported {
                                        detail: format!(
                                            "the statement at {begin} ({}) {detail}; restore a point before it",
                                            shown()
                                        ),
                                    })?;
                            }
                            if run {
                                for t in touched.iter().filter(|t| t.kind != "index") {
                                    let names =
                                        report.objects.entry(t.kind.to_string()).or_default();
                                    // Event and routine names ignore case: `DROP EVENT E` drops
                                    // the `e` an earlier statement created.
                                    let key = object_key(t.kind, &t.name);
                                    let name = names
                                        .keys()
                                        .find(|n| object_key(t.kind, n) == key)
                                        .cloned()
                                        .unwrap_or_else(|| t.name.clone());
                                    names.insert(name, t.exists);
                                }
                            }
                            // Trigger and event statements wait for after the rows and the
                            // backup's own triggers and events (an event of the backup is not
                            // there yet; one that ran during the replay would write twice).
                            let event = touched.first().filter(|t| t.kind == "event");
                            let kept = match (&trigger, event) {
                                (Some(trigger), _) => Some((
                                    trigger.name.clone(),
                                    trigger.table.clone(),
                                    trigger.create,
                                    false,
                                )),
                                (None, Some(event)) => {
                                    Some((event.name.clone(), None, event.exists, true))
                                }
                                (None, None) => None,
                            };
                            if let (true, Some((name, on, create, event))) = (run, kept) {
                                finish_transaction(conn, &mut pending, true).await?;
                                report.deferred.push(Deferred {
                                    position: begin.to_string(),
                                    trigger: name,
                                    table: on,
                                    create,
                                    statement_hex: hex::encode(crate::mysql::lexer::bytes_of(
                                        &text, utf8,
                                    )),
                                    session: session.clone(),
                                    event,
                                    user_vars,
                                });
                                // Recorded with the transaction's checkpoint, as if run.
                                pending.statement_applied = true;
                                report.ddl_statements += 1;
                            } else if run {
                                finish_transaction(conn, &mut pending, true).await?;
                                if let Some(journal) = journal {
                                    let in_flight = Checkpoint {
                                        segment_id: manifest.segment_id.clone(),
                                        position: begin.clone(),
                                        report: report.clone(),
                                        applied: applied.clone(),
                                        statement_in_flight: Some(begin.clone()),
                                    };
                                    record(conn, journal, &in_flight).await?;
                                }
                                // run_logged puts the replay session's settings back.
                                foreign_key_checks = false;
                                run_logged(
                                    conn,
                                    &session,
                                    &user_vars,
                                    &crate::mysql::lexer::bytes_of(&text, utf8),
                                )
                                .await
                                .map_err(|e| {
                                    Error::database(
                                        format!("replaying the statement at {begin} ({})", shown()),
                                        e,
                                    )
                                })?;
                                shapes.clear();
                                cascades_known.clear();
                                pending.statement_applied = true;
                                report.ddl_statements += 1;
                                if let Some(table) = table {
                                    if !report.redefined.contains(&table) {
                                        report.redefined.push(table);
                                    }
                                }
                            }
                        }
                    }
                    Role::Inside => {
                        if let Some(EventData::UserVarEvent(var)) =
                            event.read_data().map_err(|e| Error::CorruptFile {
                                file: what.clone(),
                                detail: e.to_string(),
                            })?
                        {
                            let set = user_var_statement(conn, &var).await.map_err(|detail| {
                                Error::BinlogUnsupported {
                                    detail: format!(
                                        "the user variable logged at {begin} for the next statement cannot be set: {detail}"
                                    ),
                                }
                            })?;
                            pending.user_vars.push(set);
                        }
                    }
                    _ => pending.user_vars.clear(),
                }
            }
            if ends {
                if !pending.skip {
                    if let (Stop::At(at), Some(t)) = (&plan.stop, commit_time) {
                        if t > *at {
                            finish_transaction(conn, &mut pending, false).await?;
                            report.stopped = format!(
                                "at the first transaction committed after {} ({})",
                                at.to_rfc3339(),
                                t.to_rfc3339()
                            );
                            break 'segments;
                        }
                    }
                    let wrote = pending.in_database_transaction || pending.statement_applied;
                    report.transactions += 1;
                    report.last_gtid = pending.gtid.clone().or(report.last_gtid.take());
                    report.last_commit = commit_time;
                    report.last_position = Some(end.to_string());
                    for (table, c) in std::mem::take(&mut pending.changes) {
                        applied.entry(table.clone()).or_default().add(&c);
                        report.row_changes += c.total();
                        report.tables.entry(table).or_default().add(&c);
                    }
                    if let (Some(journal), true) = (journal, wrote) {
                        // Inside the transaction for rows; after it for a statement, which
                        // the server commits itself.
                        let checkpoint = Checkpoint {
                            segment_id: manifest.segment_id.clone(),
                            position: end.clone(),
                            report: ReplayReport {
                                seconds: seconds_before + started.elapsed().as_secs_f64(),
                                ..report.clone()
                            },
                            applied: applied.clone(),
                            statement_in_flight: None,
                        };
                        record(conn, journal, &checkpoint)
                            .await
                            .map_err(|e| pending.unrepeatable(e))?;
                    }
                    finish_transaction(conn, &mut pending, true)
                        .await
                        .map_err(|e| pending.unrepeatable(e))?;
                }
                pending = Pending::default();
            }
        }
        // A segment replayed whole (after the snapshot, every table) must have changed exactly
        // the rows its manifest recorded for the database.
        if check_segment
            && manifest.start >= plan.from
            && only_tables.is_none()
            && plan.skip.is_none()
        {
            check_against_manifest(manifest, source_database, &applied)?;
        }
    }
    // A stop in the middle of a transaction leaves nothing of it behind.
    let _ = conn.query_drop("ROLLBACK").await;
    if foreign_key_checks {
        conn.query_drop("SET SESSION foreign_key_checks = 0")
            .await
            .map_err(|e| Error::database("ending the replay session", e))?;
    }
    report.seconds = ((seconds_before + started.elapsed().as_secs_f64()) * 10.0).round() / 10.0;
    Ok(report)
}

/// Adds the tables an update or delete of `table` can change through foreign key actions
/// (CASCADE, SET NULL, SET DEFAULT), and those theirs can, to `cascaded`.
async fn cascades_from(
    conn: &mut Conn,
    table: &str,
    cascaded: &mut BTreeSet<String>,
) -> Result<()> {
    let mut to_follow = vec![table.to_string()];
    let mut seen = BTreeSet::from([table.to_string()]);
    while let Some(parent) = to_follow.pop() {
        let children: Vec<String> = conn
            .exec(
                "SELECT DISTINCT TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND UNIQUE_CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = ? AND (UPDATE_RULE NOT IN ('RESTRICT', 'NO ACTION') OR DELETE_RULE NOT IN ('RESTRICT', 'NO ACTION'))",
                (parent.as_str(),),
            )
            .await
            .map_err(|e| {
                Error::database(format!("reading the foreign keys that refer to `{parent}`"), e)
            })?;
        for child in children {
            if seen.insert(child.clone()) {
                cascaded.insert(child.clone());
                to_follow.push(child);
            }
        }
    }
    Ok(())
}

/// `SET @name := value` for a logged user variable, as `mariadb-binlog` writes it: a string
/// in its character set and collation, an integer with its sign, a DOUBLE, a DECIMAL.
async fn user_var_statement(
    conn: &mut Conn,
    var: &mysql_common::binlog::events::UserVarEvent<'_>,
) -> std::result::Result<String, String> {
    use mysql_common::binlog::consts::UserVarFlags;
    use mysql_common::constants::ItemResult;
    let name = crate::mysql::quote_ident(&var.name());
    if var.is_null() {
        return Ok(format!("SET @{name} := NULL"));
    }
    let value = var.value();
    let eight = || -> std::result::Result<[u8; 8], String> {
        value
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("@{name} holds {} bytes, not 8", value.len()))
    };
    let literal = match var.value_type() {
        Ok(ItemResult::INT_RESULT) if var.flags().contains(UserVarFlags::UNSIGNED) => {
            u64::from_le_bytes(eight()?).to_string()
        }
        Ok(ItemResult::INT_RESULT) => i64::from_le_bytes(eight()?).to_string(),
        Ok(ItemResult::REAL_RESULT) => {
            let real = f64::from_le_bytes(eight()?);
            if !real.is_finite() {
                return Err(format!("@{name} holds the DOUBLE {real}"));
            }
            // Shortest exact form, with an exponent: a DOUBLE literal.
            format!("{real:e}")
        }
        Ok(ItemResult::DECIMAL_RESULT) => {
            mysql_common::binlog::decimal::Decimal::read_packed(value, false)
                .map_err(|e| format!("@{name} holds a DECIMAL that cannot be read ({e})"))?
                .to_string()
        }
        Ok(ItemResult::STRING_RESULT) => {
            let names: Option<(String, String)> = conn
                .exec_first(
                    "SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS WHERE ID = ?",
                    (var.charset(),),
                )
                .await
                .map_err(|e| format!("reading collation {} ({e})", var.charset()))?;
            let Some((charset, collation)) = names.filter(|(c, l)| {
                [c, l]
                    .iter()
                    .all(|n| n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            }) else {
                return Err(format!(
                    "@{name} is in collation number {}, which the target server does not have",
                    var.charset()
                ));
            };
            format!(
                "CONVERT(X'{}' USING {charset}) COLLATE {collation}",
                hex::encode(value)
            )
        }
        other => return Err(format!("@{name} holds a value of type {other:?}")),
    };
    Ok(format!("SET @{name} := {literal}"))
}

/// A name read from a logged statement as the server knows it: the statement's text is in
/// its session's character set (`text_of` read it as UTF-8, or byte by byte), so a name
/// that is not ASCII is converted by the server from that character set.
async fn in_server(
    conn: &mut Conn,
    session: &LoggedSession,
    utf8: bool,
    name: &mut String,
) -> Result<()> {
    let Some([client, ..]) = session.charset else {
        return Ok(());
    };
    if name.is_ascii() {
        return Ok(());
    }
    let converting = |e| {
        Error::database(
            format!("reading the name {name:?} of a logged statement"),
            e,
        )
    };
    let charset: Option<String> = conn
        .exec_first(
            "SELECT CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID = ?",
            (client,),
        )
        .await
        .map_err(converting)?;
    let Some(charset) = charset else {
        return Err(Error::BinlogUnsupported {
            detail: format!("a logged statement names character set number {client}, which the target server does not have"),
        });
    };
    if charset.starts_with("utf8") && utf8 {
        return Ok(());
    }
    let bytes = crate::mysql::lexer::bytes_of(name, utf8);
    let converted: Option<String> = conn
        .query_first(format!(
            "SELECT CONVERT(X'{}' USING {})",
            hex::encode(&bytes),
            crate::mysql::quote_ident(&charset)
        ))
        .await
        .map_err(converting)?;
    if let Some(converted) = converted {
        *name = converted;
    }
    Ok(())
}

/// Keeps the deferred trigger statements in step with a statement about to run: a table
/// dropped takes its triggers with it (their statements go); a table renamed carries them
/// to its new name (their statements are made to name it, as the server moves them).
fn keep_deferred_in_step(
    report: &mut ReplayReport,
    touched: &[statement::Touched],
    text: &str,
    dialect: crate::mysql::lexer::Dialect,
) -> std::result::Result<(), String> {
    let tokens = statement::statement_tokens(text, dialect);
    let drops = tokens.first().is_some_and(|t| t.is_keyword("DROP"));
    // CREATE OR REPLACE TABLE drops the table it replaces, and its triggers with it.
    let replaces = tokens.len() > 3
        && tokens[0].is_keyword("CREATE")
        && tokens[1].is_keyword("OR")
        && tokens[2].is_keyword("REPLACE")
        && tokens[3..].iter().take(2).any(|t| t.is_keyword("TABLE"));
    for (i, gone) in touched.iter().enumerate() {
        if gone.kind != "table" || (gone.exists && !replaces) {
            continue;
        }
        let on_it: Vec<String> = report
            .deferred
            .iter()
            .filter(|d| d.create && d.table.as_deref() == Some(gone.name.as_str()))
            .map(|d| d.trigger.clone())
            .collect();
        if on_it.is_empty() {
            continue;
        }
        if !drops && !replaces {
            // RENAME TABLE a TO b and ALTER TABLE a RENAME TO b: the new name follows.
            let Some(to) = touched.get(i + 1).filter(|t| t.kind == "table" && t.exists) else {
                return Err(format!(
                    "moves table `{}`, which has triggers created earlier in the replayed binlog ({}), to a name the replay cannot read",
                    gone.name,
                    on_it.join(", ")
                ));
            };
            for deferred in report
                .deferred
                .iter_mut()
                .filter(|d| d.create && d.table.as_deref() == Some(gone.name.as_str()))
            {
                retarget(deferred, &to.name)?;
            }
            continue;
        }
        report
            .deferred
            .retain(|d| d.event || !on_it.contains(&d.trigger));
        for trigger in on_it {
            report
                .objects
                .entry("trigger".into())
                .or_default()
                .insert(trigger, false);
        }
    }
    Ok(())
}

/// Makes a kept CREATE TRIGGER name the table it is on under its new name.
fn retarget(deferred: &mut Deferred, to: &str) -> std::result::Result<(), String> {
    let refuse = |why: &str| {
        format!(
            "renames the table of trigger `{}` (created earlier in the replayed binlog, kept for after the rows) to `{to}`: {why}",
            deferred.trigger
        )
    };
    if !to.is_ascii() {
        return Err(refuse(
            "the trigger's statement cannot be made to name a table whose name is not ASCII",
        ));
    }
    let bytes = hex::decode(&deferred.statement_hex).map_err(|e| refuse(&e.to_string()))?;
    let (text, utf8) = crate::mysql::lexer::text_of(&bytes);
    let tokens = statement::statement_tokens(&text, deferred.session.dialect());
    let span = tokens
        .iter()
        .position(|t| t.is_keyword("ON"))
        .and_then(|on| {
            let (_, _, next) = crate::mysql::lexer::qualified_name(&tokens, on + 1)?;
            Some((tokens[on + 1].start, tokens.get(next - 1)?.end()))
        });
    let Some((start, end)) = span else {
        return Err(refuse("its statement names no table after ON"));
    };
    let (Some(before), Some(after)) = (text.get(..start), text.get(end..)) else {
        return Err(refuse("its statement names no table after ON"));
    };
    let moved = format!("{before}{}{after}", crate::mysql::quote_ident(to));
    deferred.statement_hex = hex::encode(crate::mysql::lexer::bytes_of(&moved, utf8));
    deferred.table = Some(to.to_string());
    Ok(())
}

async fn record(conn: &mut Conn, journal: &Journal, checkpoint: &Checkpoint) -> Result<()> {
    let detail = serde_json::to_string(checkpoint).map_err(|e| Error::Task(e.to_string()))?;
    // An import that runs up, on purpose: the checkpoint is a step of the restore's own
    // progress table, written inside the replayed transaction, so a resumed restore and the
    // rows it holds always agree. The restore owns that table; the replay only adds its step.
    crate::restore::progress::mark(conn, &journal.step, Some(&detail)).await
}

fn check_against_manifest(
    manifest: &segment::SegmentManifest,
    database: &str,
    applied: &BTreeMap<String, TableChanges>,
) -> Result<()> {
    let prefix = format!("{database}.");
    let recorded: BTreeMap<&str, &TableChanges> = manifest
        .tables
        .iter()
        .filter_map(|(name, c)| name.strip_prefix(&prefix).map(|t| (t, c)))
        .filter(|(_, c)| c.inserted + c.updated + c.deleted > 0)
        .collect();
    let replayed: BTreeMap<&str, &TableChanges> = applied
        .iter()
        .map(|(t, c)| (t.as_str(), c))
        .filter(|(_, c)| c.inserted + c.updated + c.deleted > 0)
        .collect();
    if recorded != replayed {
        return Err(Error::RestoreMismatch(vec![format!(
            "segment {} recorded these row changes in `{database}`: {recorded:?}, but replay applied {replayed:?}",
            manifest.segment_id
        )]));
    }
    Ok(())
}

async fn begin_transaction(conn: &mut Conn, pending: &mut Pending) -> Result<()> {
    if !pending.in_database_transaction {
        conn.query_drop("START TRANSACTION")
            .await
            .map_err(|e| Error::database("starting a replayed transaction", e))?;
        pending.in_database_transaction = true;
    }
    Ok(())
}

async fn finish_transaction(conn: &mut Conn, pending: &mut Pending, commit: bool) -> Result<()> {
    if std::mem::take(&mut pending.in_database_transaction) {
        conn.query_drop(if commit { "COMMIT" } else { "ROLLBACK" })
            .await
            .map_err(|e| Error::database("ending a replayed transaction", e))?;
    }
    Ok(())
}

/// Applies one rows event; every row must change exactly one row of the target. Also says
/// whether the table is a sequence (its one row is its state: an insert replaces it).
async fn apply_rows(
    conn: &mut Conn,
    rows: &RowsEventData<'_>,
    table: &mysql_common::binlog::events::TableMapEvent<'static>,
    name: &str,
    (shapes, compressed): (&mut HashMap<u64, TableShape>, &HashMap<u64, Vec<bool>>),
    at: &Position,
) -> Result<(TableChanges, bool)> {
    let decode = |e: std::io::Error| Error::BinlogUnsupported {
        detail: format!("a row of `{name}` at {at} cannot be decoded: {e}"),
    };
    let images: Vec<(Option<_>, Option<_>)> = rows
        .rows(table)
        .collect::<std::io::Result<_>>()
        .map_err(decode)?;
    let mut changes = TableChanges::default();
    let Some(sample) = images.iter().find_map(|(b, a)| a.as_ref().or(b.as_ref())) else {
        return Ok((changes, false));
    };
    let shape = match shapes.entry(rows.table_id()) {
        std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
        std::collections::hash_map::Entry::Vacant(slot) => {
            let types = (0..table.columns_count() as usize)
                .map(|i| {
                    table.get_column_type(i).ok().flatten().ok_or_else(|| {
                        Error::BinlogUnsupported {
                            detail: format!(
                                "column {i} of `{name}` has a type this tool does not know"
                            ),
                        }
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            // The target's own columns: the binlog also names hidden ones.
            let visible: Vec<String> = conn
                .exec(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                    (name,),
                )
                .await
                .map_err(|e| Error::database(format!("reading the columns of `{name}`"), e))?;
            let mut shape = TableShape::from_row(name, table, sample, types, &visible)?;
            if let Some(columns) = compressed.get(&rows.table_id()) {
                shape.compressed = columns.clone();
            }
            let kind: Option<String> = conn
                .exec_first(
                    "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                    (name,),
                )
                .await
                .map_err(|e| Error::database(format!("reading the type of table `{name}`"), e))?;
            shape.sequence = kind.as_deref() == Some("SEQUENCE");
            if kind.as_deref() == Some("SYSTEM VERSIONED") {
                shape.period = Some(row_period(conn, name, &shape).await?);
            }
            slot.insert(shape)
        }
    };
    let mismatch = |kind: &str, affected: u64| {
        Error::RestoreMismatch(vec![format!(
        "replaying the {kind} of a row of `{name}` at {at} changed {affected} rows, not 1: the restored database is not the state this binlog continues from"
    )])
    };
    if let Some((start, end)) = shape.period {
        return apply_versioned(conn, rows, &images, shape, (start, end), name, at)
            .await
            .map(|changes| (changes, false));
    }
    match rows {
        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
            let after: Vec<_> = images.iter().filter_map(|(_, a)| a.as_ref()).collect();
            for batch in after.chunks(500) {
                conn.query_drop(shape.insert(batch)?).await.map_err(|e| {
                    Error::database(format!("replaying inserts into `{name}` at {at}"), e)
                })?;
                if conn.affected_rows() != batch.len() as u64 {
                    return Err(mismatch("insert", conn.affected_rows()));
                }
                changes.inserted += batch.len() as u64;
            }
        }
        RowsEventData::UpdateRowsEventV1(_)
        | RowsEventData::UpdateRowsEvent(_)
        | RowsEventData::PartialUpdateRowsEvent(_) => {
            for (before, after) in &images {
                let (Some(before), Some(after)) = (before, after) else {
                    continue;
                };
                conn.query_drop(shape.update(before, after)?)
                    .await
                    .map_err(|e| {
                        Error::database(format!("replaying an update of `{name}` at {at}"), e)
                    })?;
                if conn.affected_rows() != 1 {
                    return Err(mismatch("update", conn.affected_rows()));
                }
                changes.updated += 1;
            }
        }
        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
            for (before, _) in &images {
                let Some(before) = before else { continue };
                conn.query_drop(shape.delete(before)?).await.map_err(|e| {
                    Error::database(format!("replaying a delete from `{name}` at {at}"), e)
                })?;
                if conn.affected_rows() != 1 {
                    return Err(mismatch("delete", conn.affected_rows()));
                }
                changes.deleted += 1;
            }
        }
    }
    Ok((changes, shape.sequence))
}

/// RENAME TABLE renames views too (tables and views share one namespace): a renamed pair
/// (`from` gone, `to` there) whose `from` is a view in the target, just before the statement
/// runs, or was made one by an earlier pair of the same statement, is relabelled a view.
async fn views_renamed(conn: &mut Conn, touched: &mut [statement::Touched]) -> Result<()> {
    let mut moved: Vec<String> = Vec::new();
    for pair in touched.chunks_mut(2) {
        let [from, to] = pair else { continue };
        if from.kind != "table" || to.kind != "table" || from.exists || !to.exists {
            continue;
        }
        let view = moved.contains(&from.name)
            || {
                let kind: Option<String> = conn
                .exec_first(
                    "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                    (&from.name,),
                )
                .await
                .map_err(|e| Error::database(format!("reading the type of `{}`", from.name), e))?;
                kind.as_deref() == Some("VIEW")
            };
        if view {
            from.kind = "view";
            to.kind = "view";
            moved.push(to.name.clone());
        }
    }
    Ok(())
}

/// A system-versioned table's row start and end columns among the logged ones (the binlog
/// names implicit ones `row_start` and `row_end`). Versioning by transaction id is refused:
/// the ids of the target's transactions are not the source's.
async fn row_period(conn: &mut Conn, name: &str, shape: &TableShape) -> Result<(usize, usize)> {
    let create = crate::mysql::schema::show_create_table(conn, name).await?;
    let [start, end] = crate::mysql::schema::row_period_columns(&create);
    let find = |column: &str| {
        let i = shape
            .names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(column))
            .ok_or_else(|| Error::BinlogUnsupported {
                detail: format!(
                    "the binlog's rows of system-versioned table `{name}` lack its column `{column}`"
                ),
            })?;
        if !matches!(
            shape.types[i],
            mysql_async::consts::ColumnType::MYSQL_TYPE_TIMESTAMP2
                | mysql_async::consts::ColumnType::MYSQL_TYPE_TIMESTAMP
        ) {
            return Err(Error::BinlogUnsupported {
                detail: format!(
                    "system-versioned table `{name}` is versioned by transaction id (`{column}` is not a TIMESTAMP): its history cannot be replayed, the target's transaction ids are not the source's; restore a point before its rows changed"
                ),
            });
        }
        Ok(i)
    };
    Ok((find(&start)?, find(&end)?))
}

/// Applies a rows event of a system-versioned table exactly, history included. Rows are
/// inserted with their logged row start and end (system_versioning_insert_history); an update
/// or delete runs at the instant the source's did (`@@timestamp`), so the server ends the old
/// row and writes its history at that instant, and the history row the binlog logs after it
/// is found there already. Rows deleted from history (DELETE HISTORY) are refused.
async fn apply_versioned(
    conn: &mut Conn,
    rows: &RowsEventData<'_>,
    images: &[(
        Option<mysql_common::binlog::row::BinlogRow>,
        Option<mysql_common::binlog::row::BinlogRow>,
    )],
    shape: &TableShape,
    (start, end): (usize, usize),
    name: &str,
    at: &Position,
) -> Result<TableChanges> {
    let failed = |what: &str| {
        let what = format!("replaying {what} system-versioned table `{name}` at {at}");
        move |e| Error::database(what, e)
    };
    let mismatch = |kind: &str, affected: u64| {
        Error::RestoreMismatch(vec![format!(
            "replaying the {kind} of a row of system-versioned table `{name}` at {at} changed {affected} rows, not 1: the restored database is not the state this binlog continues from"
        )])
    };
    let mut changes = TableChanges::default();
    match rows {
        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
            let mut to_insert = Vec::new();
            for after in images.iter().filter_map(|(_, a)| a.as_ref()) {
                let (_, current) = shape.epoch(after, end)?;
                if !current {
                    // The history row of an update replayed just before: written already.
                    let found: Option<u64> = conn
                        .query_first(shape.count_all_versions(after)?)
                        .await
                        .map_err(failed("the history of"))?;
                    if found.unwrap_or(0) > 0 {
                        changes.inserted += 1;
                        continue;
                    }
                }
                to_insert.push(after);
            }
            conn.query_drop("SET SESSION system_versioning_insert_history = 1")
                .await
                .map_err(failed("inserts into"))?;
            let mut outcome = Ok(());
            for batch in to_insert.chunks(500) {
                outcome = match conn.query_drop(shape.insert(batch)?).await {
                    Err(e) => Err(failed("inserts into")(e)),
                    Ok(()) if conn.affected_rows() != batch.len() as u64 => {
                        Err(mismatch("insert", conn.affected_rows()))
                    }
                    Ok(()) => Ok(()),
                };
                if outcome.is_err() {
                    break;
                }
                changes.inserted += batch.len() as u64;
            }
            let reset = conn
                .query_drop("SET SESSION system_versioning_insert_history = 0")
                .await
                .map_err(failed("inserts into"));
            outcome.and(reset)?;
        }
        RowsEventData::UpdateRowsEventV1(_)
        | RowsEventData::UpdateRowsEvent(_)
        | RowsEventData::PartialUpdateRowsEvent(_) => {
            for (before, after) in images {
                let (Some(before), Some(after)) = (before, after) else {
                    continue;
                };
                if !shape.epoch(before, end)?.1 {
                    return Err(Error::BinlogUnsupported {
                        detail: format!(
                            "a history row of system-versioned table `{name}` was changed at {at}: only current rows can be replayed; restore a point before it"
                        ),
                    });
                }
                // Still current after it: an UPDATE at the instant its new row starts. Ended:
                // a DELETE at the instant the row ends.
                let (ended_at, current) = shape.epoch(after, end)?;
                let (instant, sql, kind) = if current {
                    (
                        shape.epoch(after, start)?.0,
                        shape.update(before, after)?,
                        "update",
                    )
                } else {
                    (ended_at, shape.delete(before)?, "delete")
                };
                conn.query_drop(format!("SET @@timestamp = {instant}"))
                    .await
                    .map_err(failed("a change of"))?;
                let outcome = match conn.query_drop(sql).await {
                    Err(e) => Err(failed("a change of")(e)),
                    Ok(()) if conn.affected_rows() != 1 => {
                        Err(mismatch(kind, conn.affected_rows()))
                    }
                    Ok(()) => Ok(()),
                };
                let reset = conn
                    .query_drop("SET @@timestamp = DEFAULT")
                    .await
                    .map_err(failed("a change of"));
                outcome.and(reset)?;
                changes.updated += 1;
            }
        }
        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
            return Err(Error::BinlogUnsupported {
                detail: format!(
                    "rows were deleted from the history of system-versioned table `{name}` at {at} (DELETE HISTORY, or a partition of history dropped): a replay cannot remove history rows exactly; restore a point before it"
                ),
            });
        }
    }
    Ok(changes)
}

fn abbreviate(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // Logged text is anyone's: no terminal escape reaches an operator's screen.
    let one_line: String = one_line
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if one_line.chars().count() > 80 {
        format!("{}…", one_line.chars().take(80).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_inside_a_transaction_that_cannot_roll_back_is_not_retried() {
        let lost = || {
            Error::database(
                "applying rows",
                mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "reset",
                ))),
            )
        };
        assert!(Pending::default().unrepeatable(lost()).is_connection_lost());
        let on_myisam = Pending {
            cannot_roll_back: Some("audit_log".into()),
            ..Pending::default()
        };
        let error = on_myisam.unrepeatable(lost());
        assert!(!error.is_connection_lost());
        assert!(
            error
                .to_string()
                .contains("changed table `audit_log`, whose engine cannot roll back"),
            "{error}"
        );
        let refused = Error::BinlogUnsupported { detail: "x".into() };
        assert!(matches!(
            on_myisam.unrepeatable(refused),
            Error::BinlogUnsupported { .. }
        ));
    }

    #[test]
    fn a_kept_trigger_follows_its_table_through_a_rename() {
        let mut deferred = Deferred {
            position: "mysql-bin.000001:4".into(),
            trigger: "tr".into(),
            table: Some("w".into()),
            create: true,
            statement_hex: hex::encode(
                "CREATE DEFINER=`a`@`%` TRIGGER tr AFTER INSERT ON toc.`w` FOR EACH ROW SET @on = 'ä'",
            ),
            session: LoggedSession::default(),
            event: false,
            user_vars: Vec::new(),
        };
        retarget(&mut deferred, "w2").unwrap();
        assert_eq!(
            String::from_utf8(hex::decode(&deferred.statement_hex).unwrap()).unwrap(),
            "CREATE DEFINER=`a`@`%` TRIGGER tr AFTER INSERT ON `w2` FOR EACH ROW SET @on = 'ä'"
        );
        assert_eq!(deferred.table.as_deref(), Some("w2"));
        assert!(retarget(&mut deferred, "wä")
            .unwrap_err()
            .contains("not ASCII"));
    }
}

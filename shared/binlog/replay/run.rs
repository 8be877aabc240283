//! The replay's main loop: segment by segment, event by event, each transaction skipped (held
//! by the snapshot, replayed already, before the stop) or applied, each logged statement judged
//! and run, left out or kept for later, and a checkpoint after each transaction. Apart from the
//! helpers it calls so that the loop, and where it stops, reads as one piece.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{TimeZone, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use mysql_common::binlog::consts::RowsEventFlags;
use mysql_common::binlog::events::{EventData, QueryEvent, RowsEventData};

use super::decode::{read_ahead, ReadAhead, RowsRead};
use super::deferred::keep_deferred_in_step;
use super::names::{in_server, views_renamed};
use super::outbox::Link;
use super::rows::{apply_rows, cascades_from, Shapes};
use super::session::{run_logged, user_var_statement, REPLAY_SESSION};
use super::transaction::{
    begin_transaction, check_against_manifest, commit_group, finish_transaction, record,
    stop_inside, Group, Pending,
};
use super::{Checkpoint, Deferred, Journal, LeftOut, ReplayReport};
use crate::binlog::events::{self, Edge, Role, Transactions};
use crate::binlog::plan::{ReplayPlan, Stop};
use crate::binlog::position::Gtid;
use crate::binlog::segment::{self, TableChanges};
use crate::binlog::statement::{self, statement_table, LoggedSession, Verdict};
use crate::error::{Error, Result};
use crate::manifest::object_key;
use crate::mysql::definition;
use crate::store::ObjectStore;

/// The connection with every queued statement applied; a failure is the transaction in hand's
/// ([`Pending::unrepeatable`]).
macro_rules! now {
    ($link:expr, $pending:expr) => {
        $link.now().await.map_err(|e| $pending.unrepeatable(e))?
    };
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
    // From here on every use of the connection goes through the link, which first sends the
    // statements it queued (`outbox`).
    let mut link = Link::new(conn);
    let conn = &mut link;
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
        let compressed_segment = segment::read_verified(store, manifest).await?;
        let mut ahead = read_ahead(
            compressed_segment,
            what.clone(),
            source_database.to_string(),
        );
        let mut transactions = Transactions::default();
        let mut pending = Pending::default();
        let mut group = Group::default();
        let mut shapes: Shapes = HashMap::new();
        let mut compressed: HashMap<u64, Vec<bool>> = HashMap::new();
        while let Some(read) = ahead.recv().await {
            let ReadAhead {
                event,
                compressed: compressed_columns,
                rows: mut images_of,
            } = read?;
            if let Some((table_id, columns)) = compressed_columns {
                compressed.insert(table_id, columns);
            }
            let role = events::role(&event)?;
            if role == Role::FormatDescription {
                continue;
            }
            let header = event.header();
            let (begin, end) = events::span(&event, &manifest.start.file);
            let edge = transactions.step(&role);
            if matches!(edge, Edge::Started { .. }) {
                pending = Pending::after(&pending);
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
                    stop_inside(now!(conn, pending), journal, &mut group, &mut pending).await?;
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
                            // Read ahead for the source database's rows; none for others.
                            let (table, images) =
                                match std::mem::replace(&mut images_of, RowsRead::None) {
                                    RowsRead::Images(table, images) => (table, images),
                                    RowsRead::None => continue,
                                    RowsRead::Unmapped => {
                                        return Err(Error::CorruptFile {
                                            file: what.clone(),
                                            detail: format!("rows of an unmapped table at {begin}"),
                                        })
                                    }
                                };
                            if !wanted(&table.table_name()) {
                                continue;
                            }
                            let name = table.table_name().into_owned();
                            if journal.is_some_and(|j| j.non_transactional.contains(&name)) {
                                pending.cannot_roll_back.get_or_insert_with(|| name.clone());
                            }
                            let checks = only_tables.is_none()
                                && !rows.flags().contains(RowsEventFlags::NO_FOREIGN_KEY_CHECKS);
                            if checks != foreign_key_checks {
                                now!(conn, pending)
                                    .query_drop(format!(
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
                                cascades_from(now!(conn, pending), &name, &mut report.cascaded)
                                    .await
                                    .map_err(|e| pending.unrepeatable(e))?;
                                cascades_known.insert(name.clone());
                            }
                            let stop_inside_possible = matches!(plan.stop, Stop::At(_));
                            begin_transaction(conn, &mut pending, &group, stop_inside_possible)
                                .await
                                .map_err(|e| pending.unrepeatable(e))?;
                            let (changed, is_sequence) = apply_rows(
                                conn,
                                &rows,
                                (&table, images),
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
                            in_server(now!(conn, pending), &session, utf8, name).await?;
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
                                    stop_inside(
                                        now!(conn, pending),
                                        journal,
                                        &mut group,
                                        &mut pending,
                                    )
                                    .await?;
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
                                in_server(now!(conn, pending), &session, utf8, &mut t.name).await?;
                            }
                            if run {
                                views_renamed(now!(conn, pending), &mut touched).await?;
                            }
                            if let Some(trigger) = trigger.as_mut() {
                                in_server(now!(conn, pending), &session, utf8, &mut trigger.name)
                                    .await?;
                                if let Some(on) = trigger.table.as_mut() {
                                    in_server(now!(conn, pending), &session, utf8, on).await?;
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
                                commit_group(
                                    now!(conn, pending),
                                    journal,
                                    &mut group,
                                    &mut pending,
                                )
                                .await?;
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
                                commit_group(
                                    now!(conn, pending),
                                    journal,
                                    &mut group,
                                    &mut pending,
                                )
                                .await?;
                                if let Some(journal) = journal {
                                    let in_flight = Checkpoint {
                                        segment_id: manifest.segment_id.clone(),
                                        position: begin.clone(),
                                        report: report.clone(),
                                        applied: applied.clone(),
                                        statement_in_flight: Some(begin.clone()),
                                    };
                                    record(now!(conn, pending), journal, &in_flight).await?;
                                }
                                // run_logged puts the replay session's settings back.
                                foreign_key_checks = false;
                                run_logged(
                                    now!(conn, pending),
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
                            let set = user_var_statement(now!(conn, pending), &var).await.map_err(|detail| {
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
                            stop_inside(now!(conn, pending), journal, &mut group, &mut pending)
                                .await?;
                            report.stopped = format!(
                                "at the first transaction committed after {} ({})",
                                at.to_rfc3339(),
                                t.to_rfc3339()
                            );
                            break 'segments;
                        }
                    }
                    let wrote = pending.wrote_rows || pending.statement_applied;
                    report.transactions += 1;
                    report.last_gtid = pending.gtid.clone().or(report.last_gtid.take());
                    report.last_commit = commit_time;
                    report.last_position = Some(end.to_string());
                    for (table, c) in std::mem::take(&mut pending.changes) {
                        applied.entry(table.clone()).or_default().add(&c);
                        report.row_changes += c.total();
                        group.rows += c.total();
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
                        group.last = Some(checkpoint);
                        group.transactions += 1;
                        // Rows only (a statement committed itself; a table that cannot roll
                        // back is not left in a transaction a lost connection would repeat).
                        let keep_open = pending.wrote_rows
                            && !pending.statement_applied
                            && pending.cannot_roll_back.is_none()
                            && group.has_room();
                        if !keep_open {
                            commit_group(
                                now!(conn, pending),
                                Some(journal),
                                &mut group,
                                &mut pending,
                            )
                            .await?;
                        }
                    } else if !group.is_open() {
                        finish_transaction(now!(conn, pending), &mut pending, true)
                            .await
                            .map_err(|e| pending.unrepeatable(e))?;
                    }
                }
                pending = Pending::after(&pending);
            }
        }
        commit_group(now!(conn, pending), journal, &mut group, &mut pending).await?;
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
    let _ = conn.discard().query_drop("ROLLBACK").await;
    if foreign_key_checks {
        conn.now()
            .await?
            .query_drop("SET SESSION foreign_key_checks = 0")
            .await
            .map_err(|e| Error::database("ending the replay session", e))?;
    }
    report.seconds = ((seconds_before + started.elapsed().as_secs_f64()) * 10.0).round() / 10.0;
    Ok(report)
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

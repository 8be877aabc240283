//! The archive job: connect as a replica, read the binlog from where the archive ends (or from
//! the latest full backup's snapshot position), write sealed segments, and stop at the end of
//! the binlog or before the deadline. A stretch the server no longer holds is a gap: never
//! stitched over, reported, and closed only by a newer full backup.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;
use mysql_common::binlog::events::{Event, EventData, TableMapEvent};
use serde::Serialize;

use super::events::{self, Edge, Role, Transactions};
use super::position::Position;
use super::segment::{self, GapRecord, Head, SegmentManifest, SegmentWriter, TableChanges};
use super::server::{self, ServerBinlog};
use crate::catalog;
use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::manifest::BackupKind;
use crate::store::ObjectStore;

/// The server id this tool registers with when none is configured: high, to stay clear of the
/// small ids replicas are usually given.
pub const DEFAULT_REPLICA_SERVER_ID: u32 = 2_026_112_817;
/// Segments are cut after the transaction that takes them past this many bytes.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    pub url: DatabaseUrl,
    pub replica_server_id: u32,
    /// Stop (between transactions) once this moment has passed.
    pub deadline: Option<Instant>,
    pub segment_bytes: u64,
    /// Bytes of binlog read, for whoever shows progress.
    pub headway: Arc<crate::job::headway::Headway>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArchiveReport {
    pub anchor: String,
    pub started_from: String,
    pub next: String,
    pub segments: Vec<String>,
    pub events: u64,
    pub transactions: u64,
    pub row_changes: u64,
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    pub last_commit: Option<DateTime<Utc>>,
    /// Every transaction committed before this moment is archived (None: stopped early).
    pub complete_until: Option<DateTime<Utc>>,
    /// A stretch this run found unarchivable (the archive went on from a newer full backup).
    pub gap: Option<GapRecord>,
    /// System-versioned tables whose history rows this run archived deletions of (DELETE
    /// HISTORY, a history partition dropped), each "`db`.`table` in the transaction ending at
    /// file:position": no replay can remove history rows exactly, so a point-in-time restore
    /// past it refuses until a full backup is taken after it.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub history_deleted: Vec<String>,
    pub seconds: f64,
}

/// Where a run starts, and the gap it had to leave, if any.
struct Start {
    from: Position,
    anchor: String,
    previous: Option<String>,
    gap: Option<GapRecord>,
}

pub async fn run_archive(
    store: Arc<dyn ObjectStore>,
    options: &ArchiveOptions,
) -> Result<ArchiveReport> {
    let started = Instant::now();
    store.check().await?;
    let url = options.url.with_database(None);
    let mut conn = crate::mysql::connect(&url, None).await?;
    let server = server::inspect(&mut conn, options.replica_server_id).await?;
    let _ = conn.disconnect().await;
    let head_version = store.get_versioned(segment::HEAD_KEY).await?;
    let head: Option<Head> = match &head_version {
        None => None,
        Some((bytes, _)) => {
            Some(
                serde_json::from_slice(bytes).map_err(|e| Error::InvalidManifest {
                    key: segment::HEAD_KEY.into(),
                    reason: e.to_string(),
                })?,
            )
        }
    };
    let mut head_tag = head_version.map(|(_, tag)| tag);
    let start = match choose_start(store.as_ref(), head.as_ref(), &server).await {
        Ok(start) => start,
        Err(Error::BinlogGap { from, to, reason }) => {
            // Recorded so that monitor and the next run know, then reported.
            if let Some(mut head) = head.clone() {
                if head.gap.is_none() {
                    head.gap = Some(GapRecord {
                        from: from.clone(),
                        to: to.clone(),
                        reason: reason.clone(),
                        found_at: Utc::now(),
                    });
                    head.updated_at = Utc::now();
                    put_head(store.as_ref(), &head, &mut head_tag).await?;
                }
            }
            return Err(Error::BinlogGap { from, to, reason });
        }
        Err(e) => return Err(e),
    };
    tracing::info!(from = %start.from, anchor = %start.anchor, "archiving the binlog");
    options
        .headway
        .measure("archiving the binlog", server.bytes_after(&start.from));

    let mut run = Run {
        store: store.clone(),
        server: server.clone(),
        options: options.clone(),
        anchor: start.anchor.clone(),
        previous: start.previous.clone(),
        next_start: start.from.clone(),
        report: ArchiveReport {
            anchor: start.anchor.clone(),
            started_from: start.from.to_string(),
            next: start.from.to_string(),
            segments: Vec::new(),
            events: 0,
            transactions: 0,
            row_changes: 0,
            bytes: 0,
            uncompressed_bytes: 0,
            last_commit: head.as_ref().and_then(|h| h.last_commit),
            complete_until: None,
            gap: start.gap.clone(),
            history_deleted: Vec::new(),
            seconds: 0.0,
        },
        head_tag,
        complete_until: head
            .as_ref()
            .filter(|h| h.anchor == start.anchor)
            .and_then(|h| h.complete_until),
        deleted_from: BTreeMap::new(),
    };
    let outcome = run.stream(&url, &start.from).await;
    if let Err(e) = outcome {
        return Err(match e {
            Error::Database { context, source }
                if crate::mysql::server_code(&source) == Some(1236) =>
            {
                Error::BinlogGap {
                    from: run.next_start.to_string(),
                    to: server
                        .files
                        .first()
                        .map_or("the server's first binlog".into(), |f| format!("{f}:4")),
                    reason: format!("the server no longer holds it ({context}: {source})"),
                }
            }
            other => other,
        });
    }
    run.report.history_deleted =
        history_deleted(store.as_ref(), &run.anchor, &url, &run.deleted_from).await?;
    // Written even when nothing was archived: how far the archive is known to be complete.
    run.write_head().await?;
    run.report.next = run.next_start.to_string();
    run.report.complete_until = run.complete_until;
    run.report.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    Ok(run.report)
}

/// Which of the tables rows were deleted from are system-versioned: there a deleted row is a
/// history row (a current row's DELETE is logged as the update that ends it). Known from the
/// anchor full backup's manifest, and from the server as it is now where this run's user may
/// see the tables (the least-privileged binlog user sees none); read once a run, only when
/// rows were deleted at all.
async fn history_deleted(
    store: &dyn ObjectStore,
    anchor: &str,
    url: &crate::config::DatabaseUrl,
    deleted_from: &BTreeMap<String, Position>,
) -> Result<Vec<String>> {
    if deleted_from.is_empty() {
        return Ok(Vec::new());
    }
    let mut versioned: BTreeSet<(String, String)> = BTreeSet::new();
    if let Some((manifest, _)) = crate::catalog::sealed_manifest(store, anchor).await {
        versioned.extend(
            manifest
                .tables
                .iter()
                .filter(|t| t.system_versioned)
                .map(|t| (manifest.database.clone(), t.name.clone())),
        );
    }
    // Only the databases rows were deleted from: information_schema.TABLES over the whole
    // server opens every table's definition. A key is "db.table" and either name may hold a
    // dot, so every split is asked about (the match below is on the whole key).
    let databases: BTreeSet<&str> = deleted_from
        .keys()
        .flat_map(|table| table.match_indices('.').map(move |(at, _)| &table[..at]))
        .collect();
    let mut conn = crate::mysql::connect(url, None).await?;
    for database in databases {
        let visible: Vec<(String, String)> = conn
            .exec(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'SYSTEM VERSIONED'",
                (database,),
            )
            .await
            .map_err(|e| Error::database("reading the system-versioned tables", e))?;
        versioned.extend(visible);
    }
    let _ = conn.disconnect().await;
    Ok(versioned
        .into_iter()
        .filter_map(|(database, table)| {
            let at = deleted_from.get(&format!("{database}.{table}"))?;
            Some(format!(
                "{}.{} in the transaction ending at {at}",
                crate::mysql::quote_ident(&database),
                crate::mysql::quote_ident(&table)
            ))
        })
        .collect())
}

async fn put_head(store: &dyn ObjectStore, head: &Head, tag: &mut Option<String>) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(head).map_err(|e| Error::InvalidManifest {
        key: segment::HEAD_KEY.into(),
        reason: e.to_string(),
    })?;
    if !store
        .put_if(segment::HEAD_KEY, bytes::Bytes::from(bytes), tag.as_deref())
        .await?
    {
        return Err(Error::StoreBusy(format!(
            "another binlog archive run moved {} while this one ran; this run stopped (its sealed segments stay)",
            segment::HEAD_KEY
        )));
    }
    *tag = store
        .get_versioned(segment::HEAD_KEY)
        .await?
        .map(|(_, tag)| tag);
    Ok(())
}

/// The newest full backup whose snapshot position the server still holds, and where its
/// archive must start: the exact snapshot position (MariaDB), or the start of its file where
/// the position is approximate (MySQL: replay then skips the snapshot's GTIDs).
async fn newest_anchor(
    store: &dyn ObjectStore,
    server: &ServerBinlog,
) -> Result<std::result::Result<(String, Position), String>> {
    let catalog = catalog::load(store).await?;
    let mut fulls = catalog
        .complete
        .iter()
        .filter(|e| e.kind == BackupKind::Full)
        .peekable();
    if fulls.peek().is_none() {
        return Ok(Err(
            "the store holds no full backup; take a full backup first (`toc-backup dump`): the archive starts at its snapshot".into(),
        ));
    }
    let newest = fulls.find_map(|e| {
        let file = e.snapshot.binlog_file.clone()?;
        let pos = e.snapshot.binlog_position?;
        let pos = if e.snapshot.position_is_exact { pos } else { 4 };
        Some((e.id.clone(), Position::new(file, pos)))
    });
    Ok(match newest {
        None => Err(
            "no full backup in the store recorded a binlog position (the binary log was off when they were taken); take a full backup with the binary log on (`toc-backup dump`)".into(),
        ),
        Some((id, p)) if !server.holds(&p.file) => Err(format!(
            "the newest full backup with a binlog position ({id}) starts at {}, which the server no longer holds; take a new full backup (`toc-backup dump`)",
            p.file
        )),
        Some(anchor) => Ok(anchor),
    })
}

async fn choose_start(
    store: &dyn ObjectStore,
    head: Option<&Head>,
    server: &ServerBinlog,
) -> Result<Start> {
    let anchor = newest_anchor(store, server).await?;
    let Some(head) = head else {
        let (id, from) = anchor.map_err(|reason| Error::BinlogNotCovered {
            point: "the archive's start".into(),
            reason,
        })?;
        return Ok(Start {
            from,
            anchor: id,
            previous: None,
            gap: None,
        });
    };
    let broken = if let Some(gap) = &head.gap {
        Some(format!(
            "the gap found at {} ({})",
            gap.found_at.to_rfc3339(),
            gap.reason
        ))
    } else if head.server_id != server.server_id {
        Some(format!(
            "the server changed (server_id {} is now {}: a failover or a new instance)",
            head.server_id, server.server_id
        ))
    } else if !server.holds(&head.next.file) {
        Some(format!(
            "binlog {} was purged before it was archived (the server's oldest is {})",
            head.next.file,
            server.files.first().map_or("none", String::as_str)
        ))
    } else {
        None
    };
    let Some(reason) = broken else {
        return Ok(Start {
            from: head.next.clone(),
            anchor: head.anchor.clone(),
            previous: head.last_segment.clone(),
            gap: None,
        });
    };
    let to = server
        .files
        .first()
        .map_or_else(|| server.current.to_string(), |f| format!("{f}:4"));
    let gap = GapRecord {
        from: head.next.to_string(),
        to: to.clone(),
        reason: reason.clone(),
        found_at: head.gap.as_ref().map_or_else(Utc::now, |g| g.found_at),
    };
    // A full backup taken after the gap (same server) starts a new, unbroken chain.
    match anchor.ok() {
        Some((id, from))
            if id != head.anchor && (head.server_id != server.server_id || from > head.next) =>
        {
            tracing::warn!(anchor = %id, "the binlog archive had a gap; starting again at a newer full backup");
            Ok(Start {
                from,
                anchor: id,
                previous: None,
                gap: Some(gap),
            })
        }
        _ => Err(Error::BinlogGap {
            from: gap.from,
            to,
            reason,
        }),
    }
}

struct Run {
    store: Arc<dyn ObjectStore>,
    server: ServerBinlog,
    options: ArchiveOptions,
    anchor: String,
    previous: Option<String>,
    /// Where the next segment begins: the previous segment's `next`.
    next_start: Position,
    report: ArchiveReport,
    head_tag: Option<String>,
    complete_until: Option<DateTime<Utc>>,
    /// Tables ("db.table") with deleted rows, each with the first transaction's end.
    deleted_from: BTreeMap<String, Position>,
}

struct Open {
    writer: SegmentWriter,
    manifest: SegmentManifest,
}

impl Run {
    async fn stream(&mut self, url: &DatabaseUrl, from: &Position) -> Result<()> {
        let mut conn =
            crate::mysql::connect_with(url, None, |opts| opts.max_allowed_packet(Some(1 << 30)))
                .await?;
        if self.server.mariadb {
            // Without it MariaDB rewrites its GTID events into plain BEGINs, losing the GTIDs.
            conn.query_drop("SET @mariadb_slave_capability=4")
                .await
                .map_err(|e| Error::database("asking for MariaDB's GTID events", e))?;
        }
        let request = BinlogStreamRequest::new(self.options.replica_server_id)
            .with_filename(from.file.as_bytes())
            .with_pos(from.pos)
            .with_non_blocking();
        let streaming_since = Utc::now();
        let mut stream = conn.get_binlog_stream(request).await.map_err(|e| {
            Error::database("starting the binlog stream (needs REPLICATION SLAVE)", e)
        })?;
        let mut open: Option<Open> = None;
        let mut format_description: Option<Vec<u8>> = None;
        // Table maps with COMPRESSED columns, read again made readable (the stream's own
        // reader cannot read their rows, and would count them wrong).
        let mut readable = ReadableMaps::default();
        let mut file = from.file.clone();
        let mut first_rotate = true;
        let mut transactions = Transactions::default();
        let mut transaction_changes: BTreeMap<String, TableChanges> = BTreeMap::new();
        let mut transaction_gtid: Option<String> = None;
        let mut reached_end = true;
        let outcome: Result<()> = async {
            while let Some(item) = stream.next().await {
                let event = item.map_err(|e| Error::database("reading the binlog stream", e))?;
                let header = event.header();
                if !events::is_artificial(&event) {
                    self.options.headway.bytes_done(u64::from(header.event_size()));
                }
                let role = events::role(&event)?;
                match role {
                    Role::Rotate => {
                        let artificial = events::is_artificial(&event);
                        let was_first = std::mem::replace(&mut first_rotate, false);
                        tracing::debug!(artificial, was_first, rotation = ?events::rotation(&event), log_pos = header.log_pos(), "rotate");
                        let Some((name, pos)) = events::rotation(&event) else {
                            continue;
                        };
                        if artificial {
                            // The very first one may carry stray checksum bytes in its name
                            // (mysql_async #189); the file is the one asked for.
                            if !was_first {
                                file = name;
                            }
                            continue;
                        }
                        let next = Position::new(name.clone(), pos);
                        if let Some(segment) = open.take() {
                            self.seal(segment, next.clone(), None).await?;
                        } else if next != self.next_start {
                            // Nothing since the last segment but the rotation: an empty segment
                            // links the old file's end to the new file, so the chain stays
                            // provably unbroken.
                            if let Some(fde) = format_description.as_deref() {
                                self.bridge(fde, next.clone()).await?;
                            }
                        }
                        self.next_start = next;
                        file = name;
                        continue;
                    }
                    Role::FormatDescription => {
                        tracing::debug!(log_pos = event.header().log_pos(), "format description");
                        first_rotate = false;
                        format_description = Some(events::verified_bytes(&event)?);
                        continue;
                    }
                    _ => first_rotate = false,
                }
                if events::is_artificial(&event) {
                    continue;
                }
                let edge = transactions.step(&role);
                let end = Position::new(file.clone(), u64::from(header.log_pos()));
                if edge == Edge::Between {
                    if let Some(segment) = open.as_mut() {
                        segment.manifest.end = end.clone();
                        segment.manifest.next = end;
                    }
                    continue;
                }
                if open.is_none() {
                    let fde =
                        format_description
                            .as_deref()
                            .ok_or_else(|| Error::BinlogUnsupported {
                                detail: "the server sent events before their format description"
                                    .into(),
                            })?;
                    open = Some(self.open_segment(fde).await?);
                }
                let Some(segment) = open.as_mut() else {
                    continue;
                };
                let bytes = events::verified_bytes(&event)?;
                readable.see(format_description.as_deref(), &bytes);
                segment.writer.append(&bytes).await?;
                segment.manifest.events += 1;
                if let Role::Start { gtid, .. } = &role {
                    transaction_gtid = gtid.clone();
                }
                match role {
                    Role::Rows => {
                        count_rows(
                            &event,
                            |id| readable.get(id).or_else(|| stream.get_tme(id)),
                            &mut transaction_changes,
                        )
                    }
                    Role::Statement if !transactions.open() => segment.manifest.ddl_statements += 1,
                    _ => {}
                }
                if matches!(edge, Edge::Ended | Edge::Started { ended: true }) {
                    let manifest = &mut segment.manifest;
                    let commit = Utc.timestamp_opt(i64::from(header.timestamp()), 0).single();
                    manifest.transactions += 1;
                    manifest.first_commit = manifest.first_commit.or(commit);
                    manifest.last_commit = commit.or(manifest.last_commit);
                    if manifest.first_gtid.is_none() {
                        manifest.first_gtid = transaction_gtid.clone();
                    }
                    if transaction_gtid.is_some() {
                        manifest.last_gtid = transaction_gtid.take();
                    }
                    for (table, changes) in std::mem::take(&mut transaction_changes) {
                        if changes.deleted > 0 {
                            self.deleted_from
                                .entry(table.clone())
                                .or_insert_with(|| end.clone());
                        }
                        let total = manifest.tables.entry(table).or_default();
                        total.add(&changes);
                        manifest.row_changes += changes.total();
                    }
                    manifest.end = end.clone();
                    manifest.next = end;
                    let full = segment.writer.uncompressed >= self.options.segment_bytes;
                    let late = self.options.deadline.is_some_and(|d| Instant::now() >= d);
                    if full || late {
                        if let Some(segment) = open.take() {
                            let next = segment.manifest.next.clone();
                            self.seal(segment, next, None).await?;
                        }
                    }
                    if late {
                        reached_end = false;
                        tracing::info!(
                            "stopping before the deadline; the next run goes on from here"
                        );
                        break;
                    }
                }
            }
            if transactions.open() {
                return Err(Error::BinlogUnsupported {
                    detail: "the stream ended inside a transaction".into(),
                });
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                let complete = reached_end.then_some(streaming_since);
                if let Some(segment) = open.take() {
                    let next = segment.manifest.next.clone();
                    self.seal(segment, next, complete).await?;
                }
                if complete.is_some() {
                    self.complete_until = complete;
                }
                let _ = stream.close().await;
                Ok(())
            }
            Err(e) => {
                if let Some(segment) = open.take() {
                    tracing::warn!(
                        key = segment.writer.key(),
                        "the unfinished segment is thrown away"
                    );
                    segment.writer.abort().await;
                }
                Err(e)
            }
        }
    }

    /// A new segment starting where the last one ended.
    async fn open_segment(&self, format_description: &[u8]) -> Result<Open> {
        let id = catalog::new_backup_id(Utc::now());
        let writer = SegmentWriter::create(self.store.as_ref(), &id, format_description).await?;
        let manifest = segment::new_manifest(
            &id,
            &self.anchor,
            self.server.server_id,
            &self.server.version,
            self.next_start.clone(),
        );
        Ok(Open { writer, manifest })
    }

    async fn bridge(&mut self, format_description: &[u8], to: Position) -> Result<()> {
        let segment = self.open_segment(format_description).await?;
        self.seal(segment, to, None).await
    }

    async fn seal(
        &mut self,
        segment: Open,
        next: Position,
        complete_until: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let Open {
            writer,
            mut manifest,
        } = segment;
        manifest.uncompressed_bytes = writer.uncompressed;
        let (bytes, sha256) = writer.finish().await?;
        manifest.bytes = bytes;
        manifest.sha256 = sha256;
        manifest.next = next.clone();
        manifest.complete_until = complete_until;
        manifest.archived_at = Utc::now();
        segment::seal(self.store.as_ref(), &manifest).await?;
        tracing::info!(
            segment = %manifest.segment_id,
            from = %manifest.start,
            to = %manifest.end,
            transactions = manifest.transactions,
            "binlog segment sealed"
        );
        let report = &mut self.report;
        report.segments.push(manifest.segment_id.clone());
        report.events += manifest.events;
        report.transactions += manifest.transactions;
        report.row_changes += manifest.row_changes;
        report.bytes += manifest.bytes;
        report.uncompressed_bytes += manifest.uncompressed_bytes;
        report.last_commit = manifest.last_commit.or(report.last_commit);
        self.previous = Some(manifest.segment_id.clone());
        self.next_start = next;
        if complete_until.is_some() {
            self.complete_until = complete_until;
        }
        self.write_head().await
    }

    async fn write_head(&mut self) -> Result<()> {
        let head = Head {
            anchor: self.anchor.clone(),
            server_id: self.server.server_id,
            next: self.next_start.clone(),
            last_segment: self.previous.clone(),
            last_commit: self.report.last_commit,
            complete_until: self.complete_until,
            updated_at: Utc::now(),
            gap: None,
        };
        put_head(self.store.as_ref(), &head, &mut self.head_tag).await
    }
}

/// Table maps of tables with COMPRESSED columns, read from a copy whose column types are made
/// readable (`events::uncompressed_table_map`); other tables are the stream's.
#[derive(Default)]
struct ReadableMaps {
    reader: Option<mysql_common::binlog::EventStreamReader>,
    compressed: std::collections::BTreeSet<u64>,
}

impl ReadableMaps {
    fn see(&mut self, format_description: Option<&[u8]>, event: &[u8]) {
        const TABLE_MAP: u8 = 19;
        if event.get(4) != Some(&TABLE_MAP) {
            return;
        }
        let mut copy = event.to_vec();
        match events::uncompressed_table_map(&mut copy) {
            Some((id, _)) => {
                let reader = self.reader.get_or_insert_with(|| {
                    let mut reader = mysql_common::binlog::EventStreamReader::new(
                        mysql_common::binlog::consts::BinlogVersion::Version4,
                    );
                    if let Some(fde) = format_description {
                        let _ = reader.read(fde);
                    }
                    reader
                });
                if matches!(reader.read(&copy[..]), Ok(Some(_))) {
                    self.compressed.insert(id);
                }
            }
            None if copy.len() >= 25 => {
                let mut id = [0u8; 8];
                id[..6].copy_from_slice(&copy[19..25]);
                self.compressed.remove(&u64::from_le_bytes(id));
            }
            None => {}
        }
    }

    fn get(&self, id: u64) -> Option<&TableMapEvent<'static>> {
        if !self.compressed.contains(&id) {
            return None;
        }
        self.reader.as_ref()?.get_tme(id)
    }
}

/// Adds a rows event's row count to its table's changes.
pub(crate) fn count_rows<'t>(
    event: &Event,
    tables: impl Fn(u64) -> Option<&'t TableMapEvent<'static>>,
    changes: &mut BTreeMap<String, TableChanges>,
) {
    let Ok(Some(EventData::RowsEvent(rows))) = event.read_data() else {
        return;
    };
    let Some(table) = tables(rows.table_id()) else {
        return;
    };
    let count = rows.rows(table).count() as u64;
    changes
        .entry(format!("{}.{}", table.database_name(), table.table_name()))
        .or_default()
        .count(&rows, count);
}

/// [`run_archive`], with a CRITICAL alert for a failure or a gap (the one thing a person must
/// act on: point-in-time restore is impossible across it until the next full backup).
pub async fn run_archive_alerting(
    store: Arc<dyn ObjectStore>,
    notifier: &dyn crate::notify::Notifier,
    options: &ArchiveOptions,
) -> Result<ArchiveReport> {
    use crate::notify::{Notification, Severity};
    let location = store.to_string();
    match run_archive(store, options).await {
        Ok(report) => {
            if let Some(gap) = &report.gap {
                let note = Notification::new(
                    Severity::Critical,
                    "binlog archive gap",
                    format!(
                        "The binlog from {} to {} was never archived: {}.\nPoint-in-time restore into that stretch is impossible. The archive went on from full backup {} (store {location}).",
                        gap.from, gap.to, gap.reason, report.anchor
                    ),
                );
                crate::job::alert::notify_or_log(notifier, &note).await;
            }
            if !report.history_deleted.is_empty() {
                let note = Notification::new(
                    Severity::Warning,
                    "history rows deleted from system-versioned tables",
                    format!(
                        "The binlog archived by this run deletes history rows (DELETE HISTORY, or a history partition dropped) of:\n{}\nNo replay can remove history rows exactly: a point-in-time restore to any moment after that, from a full backup taken before it, refuses. Take a full backup now (the dump function, or `toc-backup dump`) so that later moments restore. Store {location}.",
                        report.history_deleted.join("\n")
                    ),
                );
                crate::job::alert::notify_or_log(notifier, &note).await;
            }
            Ok(report)
        }
        Err(e) => {
            let (subject, next) = if matches!(e, Error::BinlogGap { .. }) {
                ("binlog archive gap", "Take a full backup (the dump function, or `toc-backup dump`): the archive starts again at its snapshot.")
            } else {
                ("binlog archive failed", "Segments sealed before the failure stay; the next run goes on from the last one.")
            };
            let note = Notification::new(
                Severity::Critical,
                subject,
                format!("{e}\nStore: {location}. {next}"),
            );
            crate::job::alert::notify_or_log(notifier, &note).await;
            Err(e)
        }
    }
}

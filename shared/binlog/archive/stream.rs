//! One run's stream: the binlog read as a replica from where the run starts, its events
//! written into segments that are sealed at a rotation, when full, before the deadline and
//! at the end, each sealing moving the head on. Apart from the job's entry points because
//! this is the loop the job is about.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;

use super::rows::{count_rows, ReadableMaps};
use super::{put_head, ArchiveOptions, ArchiveReport};
use crate::binlog::events::{self, Edge, Role, Transactions};
use crate::binlog::position::Position;
use crate::binlog::segment::{self, Head, SegmentManifest, SegmentWriter, TableChanges};
use crate::binlog::server::ServerBinlog;
use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::store::ObjectStore;

pub(super) struct Run {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) server: ServerBinlog,
    pub(super) options: ArchiveOptions,
    pub(super) anchor: String,
    pub(super) previous: Option<String>,
    /// Where the next segment begins: the previous segment's `next`.
    pub(super) next_start: Position,
    pub(super) report: ArchiveReport,
    pub(super) head_tag: Option<String>,
    pub(super) complete_until: Option<DateTime<Utc>>,
    /// Tables ("db.table") with deleted rows, each with the first transaction's end.
    pub(super) deleted_from: BTreeMap<String, Position>,
}

struct Open {
    writer: SegmentWriter,
    manifest: SegmentManifest,
}

impl Run {
    pub(super) async fn stream(&mut self, url: &DatabaseUrl, from: &Position) -> Result<()> {
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
        let id = crate::layout::new_backup_id(Utc::now());
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

    pub(super) async fn write_head(&mut self) -> Result<()> {
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

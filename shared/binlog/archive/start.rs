//! Where a run starts: where the archive ends, or the snapshot position of the newest full
//! backup the server still holds; and the gap, when the server no longer holds where the
//! archive ends (or the server changed). Apart because whether the chain goes on unbroken is
//! decided here, before any event is read.

use chrono::Utc;

use crate::binlog::position::Position;
use crate::binlog::segment::{GapRecord, Head};
use crate::binlog::server::ServerBinlog;
use crate::catalog;
use crate::error::{Error, Result};
use crate::manifest::BackupKind;
use crate::store::ObjectStore;

/// Where a run starts, and the gap it had to leave, if any.
pub(super) struct Start {
    pub(super) from: Position,
    pub(super) anchor: String,
    pub(super) previous: Option<String>,
    pub(super) gap: Option<GapRecord>,
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

pub(super) async fn choose_start(
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

//! Which full backup and which archived segments bring a database to a moment: the newest full
//! backup before it, and the unbroken run of segments from its snapshot position to past it.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::position::{Gtid, GtidSet, Position};
use super::segment::{self, SegmentManifest};
use crate::catalog::{self, index::IndexEntry};
use crate::error::{Error, Result};
use crate::manifest::BackupKind;
use crate::store::ObjectStore;

/// Where replay stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// After the last transaction committed at or before this moment.
    At(DateTime<Utc>),
    /// Just before the transaction with this GTID.
    BeforeGtid(Gtid),
    /// Just before the transaction that starts at or after this position.
    BeforePosition(Position),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::At(t) => write!(f, "{}", t.to_rfc3339()),
            Stop::BeforeGtid(g) => write!(f, "just before GTID {g}"),
            Stop::BeforePosition(p) => write!(f, "just before position {p}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReplayPlan {
    pub full: String,
    /// Replay applies transactions that end after this position…
    pub from: Position,
    /// …and are not in this set (MySQL, where the snapshot's position is approximate).
    pub skip: Option<GtidSet>,
    pub segments: Vec<SegmentManifest>,
    pub stop: Stop,
    /// An archived transaction was committed after the stop, or the stop is a transaction: no
    /// later archive run changes what a replay to it applies. (Otherwise a later run can add
    /// transactions stamped at or before a time, from the same second or a long statement.)
    pub passes_stop: bool,
}

/// How far a stretch of segments starting at a full backup reaches.
struct Reach {
    segments: Vec<SegmentManifest>,
    complete_until: Option<DateTime<Utc>>,
}

/// Segments archived more than this before a snapshot (by the tool's clock) cannot hold its
/// position: listing starts there (the margin covers clocks that disagree).
const CLOCK_MARGIN_HOURS: i64 = 2;

fn full_position(entry: &IndexEntry) -> Option<(Position, Option<GtidSet>)> {
    let file = entry.snapshot.binlog_file.clone()?;
    let pos = entry.snapshot.binlog_position?;
    if entry.snapshot.position_is_exact {
        return Some((Position::new(file, pos), None));
    }
    // MySQL: the file's start, skipping what the snapshot's GTID set holds.
    let set = GtidSet::parse(entry.snapshot.gtid.as_deref()?).ok()?;
    entry
        .snapshot
        .gtid_is_exact
        .then(|| (Position::new(file, 4), Some(set)))
}

async fn segments_since(
    store: &dyn ObjectStore,
    since: DateTime<Utc>,
) -> Result<Vec<SegmentManifest>> {
    let after = (since - Duration::hours(CLOCK_MARGIN_HOURS))
        .format("%Y%m%dT%H%M%S")
        .to_string();
    let mut manifests = Vec::new();
    for id in segment::list_sealed(store, &after).await? {
        manifests.push(segment::read_manifest(store, &id).await?);
    }
    Ok(manifests)
}

/// The unbroken run of segments from `from`: each starting where the one before it ends (of
/// two that start at the same place, a rerun's, the longer).
fn reach(all: &[SegmentManifest], from: &Position, head: Option<&segment::Head>) -> Reach {
    let mut by_start: HashMap<&Position, &SegmentManifest> = HashMap::new();
    for s in all {
        let keep = by_start
            .get(&s.start)
            .is_none_or(|other| s.next > other.next);
        if keep {
            by_start.insert(&s.start, s);
        }
    }
    let mut chain: Vec<SegmentManifest> = Vec::new();
    let mut cursor = from.clone();
    // The first segment holds `from` (a full backup taken while it was being written).
    if let Some(first) = all
        .iter()
        .filter(|s| s.start <= *from && *from < s.next)
        .max_by(|a, b| a.next.cmp(&b.next))
    {
        chain.push(first.clone());
        cursor = first.next.clone();
    }
    while let Some(next) = by_start.get(&cursor) {
        if next.next <= cursor {
            break;
        }
        chain.push((*next).clone());
        cursor = next.next.clone();
    }
    let mut complete_until = chain.iter().filter_map(|s| s.complete_until).max();
    if let Some(head) = head.filter(|h| h.next == cursor && h.gap.is_none()) {
        complete_until = complete_until.max(head.complete_until);
    }
    Reach {
        segments: chain,
        complete_until,
    }
}

/// A replay plan for `stop`, or None when the archive holds nothing for it (a restore then
/// falls back to incrementals for a time; a GTID or position needs the archive).
pub async fn plan(store: &dyn ObjectStore, stop: &Stop) -> Result<Option<ReplayPlan>> {
    let catalog = catalog::load(store).await?;
    plan_in(store, &catalog, stop).await
}

/// [`plan`] in a catalog the caller has loaded already.
pub async fn plan_in(
    store: &dyn ObjectStore,
    catalog: &catalog::Catalog,
    stop: &Stop,
) -> Result<Option<ReplayPlan>> {
    let fulls: Vec<&IndexEntry> = catalog
        .complete
        .iter()
        .filter(|e| e.kind == BackupKind::Full)
        .collect();
    let head = segment::read_head(store).await?;
    match stop {
        Stop::At(at) => {
            let Some(full) = fulls
                .iter()
                .filter(|e| crate::catalog::entry_time(e).is_some_and(|t| t <= *at))
                .max_by_key(|e| crate::catalog::entry_time(e))
            else {
                return Ok(None);
            };
            let Some((from, skip)) = full_position(full) else {
                return Ok(None);
            };
            let since = crate::catalog::entry_time(full).unwrap_or(*at);
            let all = segments_since(store, since).await?;
            let reach = reach(&all, &from, head.as_ref());
            let passes = reach
                .segments
                .iter()
                .any(|s| s.last_commit.is_some_and(|c| c > *at));
            if !passes && reach.complete_until.is_none_or(|c| c < *at) {
                // The newest point at or before the moment is then the archive's end, unless
                // there is no archive at all or an incremental reaches further.
                let archive_end = reach
                    .complete_until
                    .or_else(|| reach.segments.iter().filter_map(|s| s.last_commit).max());
                let incremental_later = catalog.complete.iter().any(|e| {
                    e.kind == BackupKind::Incremental
                        && crate::catalog::entry_time(e)
                            .is_some_and(|t| t <= *at && archive_end.is_none_or(|end| t > end))
                });
                if reach.segments.is_empty() && head.is_none() || incremental_later {
                    return Ok(None);
                }
                tracing::warn!(
                    full = %full.id,
                    archived_until = ?archive_end,
                    "the binlog archive does not reach {at}: restoring to its end, the newest point before it",
                );
            }
            // Segments after the first one that passes the moment are not needed.
            let mut segments = Vec::new();
            for s in reach.segments {
                let past = s.first_commit.is_some_and(|c| c > *at);
                if past && !segments.is_empty() {
                    break;
                }
                segments.push(s);
            }
            Ok(Some(ReplayPlan {
                full: full.id.clone(),
                from,
                skip,
                segments,
                stop: stop.clone(),
                passes_stop: passes,
            }))
        }
        Stop::BeforeGtid(_) | Stop::BeforePosition(_) => {
            // Newest full first: the first whose chain holds the stop point, before it.
            for full in fulls {
                let Some((from, skip)) = full_position(full) else {
                    continue;
                };
                let since = crate::catalog::entry_time(full).unwrap_or_else(Utc::now);
                let all = segments_since(store, since).await?;
                let reach = reach(&all, &from, head.as_ref());
                let holds = |s: &SegmentManifest| match stop {
                    Stop::BeforePosition(p) => s.start <= *p && *p <= s.end,
                    Stop::BeforeGtid(g) => gtid_in(s, g),
                    Stop::At(_) => false,
                };
                let Some(index) = reach.segments.iter().position(holds) else {
                    continue;
                };
                let before_full = match stop {
                    Stop::BeforePosition(p) => *p < from,
                    Stop::BeforeGtid(g) => skip.as_ref().is_some_and(|set| set.contains(g)),
                    Stop::At(_) => false,
                };
                if before_full {
                    continue;
                }
                let segments = reach.segments[..=index].to_vec();
                return Ok(Some(ReplayPlan {
                    full: full.id.clone(),
                    from,
                    skip,
                    segments,
                    stop: stop.clone(),
                    passes_stop: true,
                }));
            }
            Err(Error::BinlogNotCovered {
                point: stop.to_string(),
                reason: "no archived segment after a full backup holds it (`toc-backup binlog find` lists the archived transactions)".into(),
            })
        }
    }
}

/// Whether a segment's GTID range can hold `gtid` (MariaDB sequence numbers and MySQL
/// transaction numbers grow within a domain or a server).
fn gtid_in(segment: &SegmentManifest, gtid: &Gtid) -> bool {
    let parse = |g: &Option<String>| g.as_deref().and_then(|g| Gtid::parse(g).ok());
    match (parse(&segment.first_gtid), parse(&segment.last_gtid), gtid) {
        (
            Some(Gtid::MariaDb {
                domain: d1,
                sequence: s1,
                ..
            }),
            Some(Gtid::MariaDb { sequence: s2, .. }),
            Gtid::MariaDb {
                domain, sequence, ..
            },
        ) => d1 == *domain && (s1..=s2).contains(sequence),
        // Several servers' numbers can interleave: a segment whose ends come from two servers
        // is a candidate for either server's transactions.
        (
            Some(Gtid::MySql {
                uuid: a,
                number: n1,
            }),
            Some(Gtid::MySql {
                uuid: b,
                number: n2,
            }),
            Gtid::MySql { uuid, number },
        ) => (*uuid == a || *uuid == b) && (a != b || (n1..=n2).contains(number)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(id: &str, start: (&str, u64), next: (&str, u64)) -> SegmentManifest {
        let mut s = segment::new_manifest(id, "full", 1, "x", Position::new(start.0, start.1));
        s.end = Position::new(next.0, next.1);
        s.next = s.end.clone();
        s
    }

    #[test]
    fn a_chain_follows_segments_end_to_start_and_stops_at_a_hole() {
        let all = vec![
            seg("a", ("b.000001", 4), ("b.000001", 500)),
            seg("b", ("b.000001", 500), ("b.000002", 4)),
            seg("c", ("b.000002", 4), ("b.000002", 900)),
            // A hole: nothing starts at 900.
            seg("d", ("b.000002", 950), ("b.000002", 990)),
        ];
        let reach = reach(&all, &Position::new("b.000001", 120), None);
        let ids: Vec<&str> = reach
            .segments
            .iter()
            .map(|s| s.segment_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        // Starting exactly at a segment's end skips it.
        let reach = super::reach(&all, &Position::new("b.000001", 500), None);
        assert_eq!(reach.segments[0].segment_id, "b");
    }
}

//! The point a restore brings back, and everything a restore of it reads: the full backup, the
//! incrementals after it, and, for a point reached through the binlog archive, the segments
//! replayed on the full backup. `restore`, `verify` and `retrieve` resolve a point the same way,
//! so what `verify` passes and `retrieve` fetches is exactly what the restore reads.

use chrono::{DateTime, SecondsFormat, Utc};

use super::chain;
use crate::binlog::{segment, ReplayPlan, Stop};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::store::ObjectStore;

/// The point asked for, as on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum PointRequest {
    /// `latest` or a backup id.
    Backup(String),
    /// The newest point at or before this time (through the binlog archive when it reaches it).
    At(DateTime<Utc>),
    /// Just before a transaction, through the binlog archive.
    Before(Stop),
}

impl PointRequest {
    /// The flags that name this point again, for a message telling what to run next.
    pub fn as_flags(&self) -> String {
        match self {
            PointRequest::Backup(id) => format!("--backup {id}"),
            PointRequest::At(at) => {
                format!("--at {}", at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
            PointRequest::Before(Stop::BeforeGtid(gtid)) => format!("--before-gtid {gtid}"),
            PointRequest::Before(Stop::BeforePosition(position)) => {
                format!("--before-position {position}")
            }
            PointRequest::Before(Stop::At(at)) => {
                format!("--at {}", at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Point {
    /// The full backup first, then each incremental applied after it.
    pub chain: Vec<Manifest>,
    /// The binlog replay on top of the full backup, when the archive reaches the point.
    pub replay: Option<ReplayPlan>,
    pub request: PointRequest,
}

impl Point {
    pub async fn resolve(store: &dyn ObjectStore, request: &PointRequest) -> Result<Point> {
        store.check().await?;
        let catalog = crate::catalog::load(store).await?;
        Point::resolve_in(store, &catalog, request).await
    }

    /// [`Point::resolve`] in a catalog the caller has loaded already (the monitor's).
    pub async fn resolve_in(
        store: &dyn ObjectStore,
        catalog: &crate::catalog::Catalog,
        request: &PointRequest,
    ) -> Result<Point> {
        let plan = |stop| crate::binlog::plan::plan_in(store, catalog, stop);
        let replay = match request {
            PointRequest::Backup(_) => None,
            PointRequest::At(at) => plan(&Stop::At(*at)).await?,
            PointRequest::Before(stop) => plan(stop).await?,
        };
        let chain = match (&replay, request) {
            (Some(plan), _) => chain::resolve_in(store, catalog, &plan.full, None).await?,
            (None, PointRequest::Backup(id)) => chain::resolve_in(store, catalog, id, None).await?,
            (None, PointRequest::At(at)) => {
                chain::resolve_in(store, catalog, "latest", Some(*at)).await?
            }
            (None, PointRequest::Before(stop)) => {
                return Err(Error::BinlogNotCovered {
                    point: stop.to_string(),
                    reason: "the binlog archive holds no segment for it".into(),
                })
            }
        };
        if chain.is_empty() {
            return Err(Error::NoBackups(store.to_string()));
        }
        Ok(Point {
            chain,
            replay,
            request: request.clone(),
        })
    }

    /// The same point named so that it stays the same after the binlog archive and the
    /// catalog have grown: a check of a scratch restore and the restore over the live database
    /// hours later then bring back the same data. The time asked for when an archived
    /// transaction passes it; else the end of the last archived transaction (a position); else
    /// the backup itself.
    pub fn pinned(&self) -> PointRequest {
        match (&self.replay, &self.request) {
            (_, PointRequest::Before(_)) => self.request.clone(),
            (Some(plan), PointRequest::At(at)) if plan.passes_stop => PointRequest::At(*at),
            (Some(plan), _) => match plan.segments.last() {
                Some(last) => PointRequest::Before(Stop::BeforePosition(last.end.clone())),
                None => PointRequest::Backup(plan.full.clone()),
            },
            (None, _) => PointRequest::Backup(self.backup_id().to_string()),
        }
    }

    /// The backup the point is (the last of the chain).
    pub fn backup_id(&self) -> &str {
        self.chain.last().map_or("", |m| m.backup_id.as_str())
    }

    /// The folders whose objects a restore of this point reads.
    pub fn prefixes(&self) -> Vec<String> {
        let mut prefixes: Vec<String> = self.chain.iter().map(Manifest::prefix).collect();
        if let Some(plan) = &self.replay {
            prefixes.extend(plan.segments.iter().map(|s| {
                let key = segment::data_key(&s.segment_id);
                key.rsplit_once('/')
                    .map_or(key.clone(), |(folder, _)| format!("{folder}/"))
            }));
        }
        prefixes
    }
}

/// Checks everything a restore of `point` reads: every file of its chain
/// ([`crate::verify::verify_chain`])
/// and every binlog segment its replay applies.
pub async fn verify_point(
    store: &dyn ObjectStore,
    point: &Point,
    headway: &crate::job::headway::Headway,
) -> Result<crate::verify::ChainVerifyReport> {
    let mut report = crate::verify::verify_chain(store, &point.chain, headway).await?;
    if let Some(plan) = &point.replay {
        for segment in &plan.segments {
            let key = segment.data_key();
            let (bytes, sha256) = match crate::verify::hash_object(store, &key).await {
                Err(Error::MissingFile { .. }) => return Err(Error::MissingFile { file: key }),
                other => other?,
            };
            if bytes != segment.bytes || sha256 != segment.sha256 {
                return Err(Error::CorruptFile {
                    file: key,
                    detail: format!(
                        "{bytes} bytes with SHA-256 {sha256}, its manifest says {} bytes and {} (binlog segment replayed to {})",
                        segment.bytes, segment.sha256, plan.stop
                    ),
                });
            }
            headway.bytes_done(bytes);
            report.binlog_segments += 1;
            report.files += 1;
            report.bytes += bytes;
        }
    }
    Ok(report)
}

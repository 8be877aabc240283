//! What the backups cost per month, from the real sizes in a store: S3 storage as it is today,
//! and the whole monthly bill at steady state once seven years of daily backups have
//! accumulated under the lifecycle (Standard -> Standard-IA at 30 days -> Glacier at 90 -> Deep
//! Archive at 365), in both regions, with requests, transitions, replication, KMS, SNS and
//! Lambda ([`bill`]).

pub mod bill;
pub mod prices;

pub use bill::{Bill, Schedule, Workload};
pub use prices::Prices;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::{self, DAILY_PREFIX, INCREMENTAL_PREFIX};
use crate::error::Result;
use crate::manifest::BackupKind;
use crate::store::ObjectStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StorageClass {
    Standard,
    StandardIa,
    Glacier,
    DeepArchive,
}

/// The class the lifecycle has moved an object of `age_days` under `prefix` to.
pub fn class_at(prefix_is_daily: bool, age_days: i64) -> StorageClass {
    match age_days {
        d if d < 30 => StorageClass::Standard,
        d if d < 90 || !prefix_is_daily => StorageClass::StandardIa,
        d if d < 365 => StorageClass::Glacier,
        _ => StorageClass::DeepArchive,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub class: StorageClass,
    pub gigabytes: f64,
    pub usd_per_month: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CostEstimate {
    pub prices: Prices,
    /// S3 storage in the backup bucket as it is today.
    pub today: Vec<Line>,
    pub today_usd_per_month: f64,
    pub workload: Workload,
    pub schedule: Schedule,
    /// The whole monthly bill at steady state.
    pub steady_state: Bill,
}

const GB: f64 = 1_000_000_000.0;

fn lines(prices: &Prices, bytes: [f64; 4]) -> (Vec<Line>, f64) {
    let per_gb = [
        prices.storage[0],
        prices.storage[1],
        prices.storage[2],
        prices.storage[3],
    ];
    let classes = [
        StorageClass::Standard,
        StorageClass::StandardIa,
        StorageClass::Glacier,
        StorageClass::DeepArchive,
    ];
    let lines: Vec<Line> = classes
        .iter()
        .zip(bytes.iter().zip(per_gb.iter()))
        .map(|(class, (bytes, price))| Line {
            class: *class,
            gigabytes: bytes / GB,
            usd_per_month: bytes / GB * price,
        })
        .collect();
    let total = lines.iter().map(|l| l.usd_per_month).sum();
    (lines, total)
}

fn slot(class: StorageClass) -> usize {
    match class {
        StorageClass::Standard => 0,
        StorageClass::StandardIa => 1,
        StorageClass::Glacier => 2,
        StorageClass::DeepArchive => 3,
    }
}

pub async fn estimate(
    store: &dyn ObjectStore,
    now: DateTime<Utc>,
    prices: Prices,
    schedule: Schedule,
) -> Result<CostEstimate> {
    store.check().await?;
    let mut today = [0f64; 4];
    for (prefix, daily) in [
        (DAILY_PREFIX, true),
        (INCREMENTAL_PREFIX, false),
        (crate::binlog::segment::SEGMENT_PREFIX, true),
    ] {
        for object in store.list(prefix).await? {
            let age = object.modified.map_or(0, |m| (now - m).num_days());
            today[slot(class_at(daily, age))] += object.size as f64;
        }
    }
    let workload = measure(store).await?;
    let mut schedule = schedule;
    if workload.binlog_segments_per_day == 0.0 {
        schedule.binlog_runs_per_day = 0.0;
    }
    let (today_lines, today_total) = lines(&prices, today);
    let steady_state = bill::steady_state(&workload, &schedule, &prices);
    Ok(CostEstimate {
        prices,
        today: today_lines,
        today_usd_per_month: today_total,
        workload,
        schedule,
        steady_state,
    })
}

fn seconds_between(from: &str, to: &str) -> f64 {
    match (
        DateTime::parse_from_rfc3339(from),
        DateTime::parse_from_rfc3339(to),
    ) {
        (Ok(from), Ok(to)) => (to - from).num_milliseconds().max(0) as f64 / 1000.0,
        _ => 0.0,
    }
}

/// The workload the store shows: the latest full backup, the mean incremental, the binlog
/// archive's bytes a day, the file store.
pub async fn measure(store: &dyn ObjectStore) -> Result<Workload> {
    let entries = catalog::entries(store).await?;
    let manifests: Vec<_> = entries.iter().filter_map(|e| e.manifest()).collect();
    let manifest_size = |m: &crate::manifest::Manifest| {
        serde_json::to_vec(m).map_or(0.0, |bytes| bytes.len() as f64)
    };
    let mut workload = Workload::default();
    if let Some(full) = manifests.iter().find(|m| m.kind == BackupKind::Full) {
        workload.full_bytes = full.total_bytes() as f64;
        workload.full_objects = full.files.len() as f64;
        workload.full_manifest_bytes = manifest_size(full);
        workload.full_seconds = seconds_between(&full.started_at, &full.finished_at);
    }
    let incrementals: Vec<_> = manifests
        .iter()
        .filter(|m| m.kind == BackupKind::Incremental)
        .collect();
    if !incrementals.is_empty() {
        let n = incrementals.len() as f64;
        let mean = |f: &dyn Fn(&crate::manifest::Manifest) -> f64| {
            incrementals.iter().map(|m| f(m)).sum::<f64>() / n
        };
        workload.incremental_bytes = mean(&|m| m.total_bytes() as f64);
        workload.incremental_objects = mean(&|m| m.files.len() as f64);
        workload.incremental_manifest_bytes = mean(&|m| manifest_size(m));
        workload.incremental_seconds = mean(&|m| seconds_between(&m.started_at, &m.finished_at));
    }
    let segments = store.list(crate::binlog::segment::SEGMENT_PREFIX).await?;
    if !segments.is_empty() {
        let times: Vec<DateTime<Utc>> = segments.iter().filter_map(|o| o.modified).collect();
        let days = match (times.iter().min(), times.iter().max()) {
            (Some(first), Some(last)) => {
                ((*last - *first).num_seconds() as f64 / 86_400.0).max(1.0)
            }
            _ => 1.0,
        };
        for object in &segments {
            if object.key.ends_with(".binlog.gz") {
                workload.binlog_bytes_per_day += object.size as f64 / days;
                workload.binlog_segments_per_day += 1.0 / days;
            } else {
                workload.binlog_manifest_bytes_per_day += object.size as f64 / days;
            }
        }
    }
    for object in store.list("files/").await? {
        workload.files_bytes += object.size as f64;
        workload.files_objects += 1.0;
    }
    Ok(workload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_moves_daily_backups_down_and_incrementals_to_ia_only() {
        assert_eq!(class_at(true, 0), StorageClass::Standard);
        assert_eq!(class_at(true, 45), StorageClass::StandardIa);
        assert_eq!(class_at(true, 100), StorageClass::Glacier);
        assert_eq!(class_at(true, 400), StorageClass::DeepArchive);
        assert_eq!(class_at(false, 80), StorageClass::StandardIa);
    }

    /// The steady-state bill for a fixed workload, computed here by hand from the price table.
    #[test]
    fn the_bill_for_a_fixed_workload_matches_a_hand_computation() {
        let p = Prices::default();
        let w = Workload {
            full_bytes: 100e6,
            full_objects: 20.0,
            full_manifest_bytes: 20e3,
            incremental_bytes: 2e6,
            incremental_objects: 10.0,
            incremental_manifest_bytes: 5e3,
            full_seconds: 60.0,
            incremental_seconds: 10.0,
            ..Workload::default()
        };
        let s = Schedule {
            binlog_runs_per_day: 0.0,
            ..Schedule::default()
        };
        let bill = bill::steady_state(&w, &s, &p);
        let m = 365.25 / 12.0;
        let kb = 1024.0;
        // Storage in GB-months per class (data objects of 5 MB are above IA's 128 KB minimum).
        let standard = (100e6 * 30.0 + 2e6 * 24.0 * 30.0) / 1e9
            + 20.0 * (275.0 + 2192.0) * 8.0 * kb / 1e9
            + (20e3 * 2557.0 + 5e3 * 24.0 * 90.0) / 1e9;
        let ia = (100e6 * 60.0 + 2e6 * 24.0 * 60.0) / 1e9;
        let glacier = (100e6 * 275.0 + 20.0 * 275.0 * 32.0 * kb) / 1e9;
        let deep = (100e6 * 2192.0 + 20.0 * 2192.0 * 32.0 * kb) / 1e9;
        let storage = standard * (0.023 + 0.0245)
            + ia * (0.0125 + 0.0135)
            + glacier * (0.0036 + 0.0036)
            + deep * (0.00099 + 0.0018);
        // Requests: a PUT per object (5 MB objects fit one part), a tag each, manifest and index.
        let puts = (20.0 + 20.0 + 2.0) + (10.0 + 10.0 + 2.0) * 24.0 + 3.0 * 96.0 + 3.0;
        let gets = 4.0 + 6.0 * 24.0 + 4.0 * 96.0 + 20.0 / m;
        let requests = puts * m / 1000.0 * 0.005 + gets * m / 1000.0 * 0.0004;
        let replica_puts = (21.0 + 11.0 * 24.0) * m / 1000.0 * 0.0054;
        let transitions = ((20.0 + 10.0 * 24.0) * m * 2.0 / 1000.0) * 0.01
            + (20.0 * m * 2.0 / 1000.0) * (0.03 + 0.05);
        let written = (100e6 + 20e3 + (2e6 + 5e3) * 24.0) * m / 1e9;
        let replication = written * (0.02 + 0.015);
        let kms = 2.0 + (puts + gets) * m * 2.0 * 0.01 / 10_000.0 * 0.03;
        let sns = 10.0 / 100_000.0 * 2.0;
        let gb_seconds = m * 60.0 * 3538.0 / 1024.0
            + 24.0 * m * 10.0 * 0.5
            + 96.0 * m * 2.0 * 0.25
            + 120.0
            + m * 60.0;
        let lambda = gb_seconds * 0.000_013_333_4 + (m + 24.0 * m + 96.0 * m + 1.0 + m) / 1e6 * 0.2;
        let by_hand =
            storage + requests + replica_puts + transitions + replication + kms + sns + lambda;
        let difference = (bill.usd_per_month - by_hand).abs() / by_hand;
        assert!(
            difference < 0.01,
            "bill {} vs hand {by_hand}: {:#?}",
            bill.usd_per_month,
            bill.lines
        );
    }

    #[test]
    fn prices_apply_per_gigabyte() {
        let (lines, total) = lines(&Prices::default(), [GB, 0.0, 0.0, 10.0 * GB]);
        assert!((lines[0].usd_per_month - 0.023).abs() < 1e-9);
        assert!((total - (0.023 + 0.0099)).abs() < 1e-9);
    }
}

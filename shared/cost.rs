//! What the backups cost per month in S3, from the real sizes in a store: the objects as they
//! are today, and the steady state once seven years of daily backups have accumulated under the
//! lifecycle (Standard -> Standard-IA at 30 days -> Glacier at 90 -> Deep Archive at 365).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::{self, DAILY_PREFIX, INCREMENTAL_PREFIX};
use crate::error::Result;
use crate::manifest::BackupKind;
use crate::store::ObjectStore;

/// USD per GB-month in eu-west-1 (AWS price list, first 50 TB tier, read 2026-11).
#[derive(Debug, Clone, Serialize)]
pub struct Prices {
    pub standard: f64,
    pub standard_ia: f64,
    pub glacier: f64,
    pub deep_archive: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            standard: 0.023,
            standard_ia: 0.0125,
            glacier: 0.0036,
            deep_archive: 0.00099,
        }
    }
}

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
    pub today: Vec<Line>,
    pub today_usd_per_month: f64,
    pub latest_full_bytes: u64,
    pub mean_incremental_bytes: u64,
    pub steady_state: Vec<Line>,
    pub steady_state_usd_per_month: f64,
}

const GB: f64 = 1_000_000_000.0;

fn lines(prices: &Prices, bytes: [f64; 4]) -> (Vec<Line>, f64) {
    let per_gb = [
        prices.standard,
        prices.standard_ia,
        prices.glacier,
        prices.deep_archive,
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
) -> Result<CostEstimate> {
    store.check().await?;
    let mut today = [0f64; 4];
    for (prefix, daily) in [(DAILY_PREFIX, true), (INCREMENTAL_PREFIX, false)] {
        for object in store.list(prefix).await? {
            let age = object.modified.map_or(0, |m| (now - m).num_days());
            today[slot(class_at(daily, age))] += object.size as f64;
        }
    }
    let entries = catalog::entries(store).await?;
    let manifests: Vec<_> = entries.iter().filter_map(|e| e.manifest()).collect();
    let latest_full_bytes = manifests
        .iter()
        .find(|m| m.kind == BackupKind::Full)
        .map_or(0, |m| m.total_bytes());
    let incrementals: Vec<u64> = manifests
        .iter()
        .filter(|m| m.kind == BackupKind::Incremental)
        .map(|m| m.total_bytes())
        .collect();
    let mean_incremental_bytes = if incrementals.is_empty() {
        0
    } else {
        incrementals.iter().sum::<u64>() / incrementals.len() as u64
    };

    // Seven years of one full a day, and 90 days of one incremental an hour.
    let (full, inc) = (
        latest_full_bytes as f64,
        mean_incremental_bytes as f64 * 24.0,
    );
    let steady = [
        full * 30.0 + inc * 30.0,
        full * 60.0 + inc * 60.0,
        full * 275.0,
        full * (2557.0 - 365.0),
    ];
    let (today_lines, today_total) = lines(&prices, today);
    let (steady_lines, steady_total) = lines(&prices, steady);
    Ok(CostEstimate {
        prices,
        today: today_lines,
        today_usd_per_month: today_total,
        latest_full_bytes,
        mean_incremental_bytes,
        steady_state: steady_lines,
        steady_state_usd_per_month: steady_total,
    })
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

    #[test]
    fn prices_apply_per_gigabyte() {
        let (lines, total) = lines(&Prices::default(), [GB, 0.0, 0.0, 10.0 * GB]);
        assert!((lines[0].usd_per_month - 0.023).abs() < 1e-9);
        assert!((total - (0.023 + 0.0099)).abs() < 1e-9);
    }
}

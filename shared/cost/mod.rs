//! What the backups cost per month, from the real sizes in a store: S3 storage as it is today,
//! and the whole monthly bill at steady state once seven years of daily backups have
//! accumulated under the lifecycle (Standard -> Standard-IA at 30 days -> Glacier at 90 -> Deep
//! Archive at 365), in both regions, with requests, transitions, replication, KMS, SNS and
//! Lambda, and what the stack as deployed pays whatever the backups' size: VPC interface
//! endpoints, the Fargate restore test, alarms, the dashboard, custom metrics, secrets, logs,
//! traces and schedules ([`bill`]).

pub mod bill;
mod lifecycle;
pub mod prices;
mod usage;

pub use bill::{Bill, NetworkPath, Part, Schedule, Workload};
pub use prices::Prices;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog;
use crate::error::Result;
use crate::layout::{DAILY_PREFIX, INCREMENTAL_PREFIX};
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
        (crate::layout::SEGMENT_PREFIX, true),
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
        workload.full_objects = full.kept_files().count() as f64;
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
        workload.incremental_objects = mean(&|m| m.kept_files().count() as f64);
        workload.incremental_manifest_bytes = mean(&|m| manifest_size(m));
        workload.incremental_seconds = mean(&|m| seconds_between(&m.started_at, &m.finished_at));
    }
    let segments = store.list(crate::layout::SEGMENT_PREFIX).await?;
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
    for object in store.list(crate::layout::FILES_PREFIX).await? {
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

    /// The sample of the hand computations: a 100 MB full in 20 objects taking 60 s, 2 MB
    /// incrementals in 10 objects taking 10 s, no binlog segments, no files.
    fn workload() -> Workload {
        Workload {
            full_bytes: 100e6,
            full_objects: 20.0,
            full_manifest_bytes: 20e3,
            incremental_bytes: 2e6,
            incremental_objects: 10.0,
            incremental_manifest_bytes: 5e3,
            full_seconds: 60.0,
            incremental_seconds: 10.0,
            ..Workload::default()
        }
    }

    /// The line whose item starts with `item`, which must be there once.
    fn usd(bill: &Bill, item: &str) -> f64 {
        let found: Vec<_> = bill
            .lines
            .iter()
            .filter(|l| l.item.starts_with(item))
            .collect();
        assert_eq!(found.len(), 1, "{item}: {:#?}", bill.lines);
        found[0].usd
    }

    fn assert_close(got: f64, want: f64, tolerance: f64, what: &str) {
        let difference = (got - want).abs() / want.abs().max(1e-12);
        assert!(difference < tolerance, "{what}: bill {got} vs hand {want}");
    }

    /// What grows with the backups for `workload()`, by hand from the price table, with the
    /// binlog function running `binlog_runs` a day (finding nothing new: no segments) and the
    /// restore test on the function or on Fargate.
    fn data_by_hand(binlog_runs: f64, fargate: bool) -> f64 {
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
        // Requests: a PUT per object (5 MB objects fit one part), a tag each, manifest and
        // index; the binlog head once a run, read twice.
        let puts =
            (20.0 + 20.0 + 2.0) + (10.0 + 10.0 + 2.0) * 24.0 + binlog_runs + 3.0 * 96.0 + 3.0;
        let gets = 4.0 + 6.0 * 24.0 + 2.0 * binlog_runs + 4.0 * 96.0 + 20.0 / m;
        let requests = puts * m / 1000.0 * 0.005 + gets * m / 1000.0 * 0.0004;
        let replica_puts = (21.0 + 11.0 * 24.0) * m / 1000.0 * 0.0054;
        let transitions = ((20.0 + 10.0 * 24.0) * m * 2.0 / 1000.0) * 0.01
            + (20.0 * m * 2.0 / 1000.0) * (0.03 + 0.05);
        let written = (100e6 + 20e3 + (2e6 + 5e3) * 24.0) * m / 1e9;
        let replication = written * (0.02 + 0.015);
        let kms_requests = (puts + gets) * m * 2.0 * 0.01 / 10_000.0 * 0.03;
        // Lambda GB-seconds: dump 60 s at 3538 MB, incrementals 10 s at 512 MB, binlog 1 s
        // and monitor 2 s at 256 MB, the restore test 120 s at 1 GB (on the function), files
        // 60 s at 1 GB.
        let restore = if fargate { 0.0 } else { 120.0 };
        let gb_seconds = m * 60.0 * 3538.0 / 1024.0
            + 24.0 * m * 10.0 * 0.5
            + binlog_runs * m * 1.0 * 0.25
            + 96.0 * m * 2.0 * 0.25
            + restore
            + m * 60.0;
        // Fargate: 120 s of restore and 30 s of image pull at 2 vCPU and 4 GB.
        let fargate = if fargate {
            150.0 / 3600.0 * (2.0 * 0.03238 + 4.0 * 0.00356)
        } else {
            0.0
        };
        storage
            + requests
            + replica_puts
            + transitions
            + replication
            + kms_requests
            + gb_seconds * 0.000_013_333_4
            + fargate
    }

    /// The steady-state bill for a fixed workload and the template's default deployment
    /// (VpcEndpoints in 2 zones, restore test on Lambda, no binlog archive, RTC on), computed
    /// here by hand from the price table: every fixed item to a billionth, the whole
    /// within 1 %.
    #[test]
    fn the_bill_for_a_fixed_workload_matches_a_hand_computation() {
        let p = Prices::default();
        let s = Schedule {
            binlog_runs_per_day: 0.0,
            ..Schedule::default()
        };
        let bill = bill::steady_state(&workload(), &s, &p);
        let m = 365.25 / 12.0;
        // 730.5 hours a month.
        let hours = m * 24.0;
        // Runs a month: dump, incrementals, monitor, restore test, files.
        let lambda_runs = m + 24.0 * m + 96.0 * m + 1.0 + m;
        let stack = [
            ("KMS keys", 2.0 * 1.00),
            // Secrets Manager and SNS, each in 2 zones, every hour: 16.071 each, 32.142.
            (
                "VPC interface endpoint Secrets Manager,",
                2.0 * hours * 0.011,
            ),
            ("VPC interface endpoint SNS,", 2.0 * hours * 0.011),
            // 7 always; no file snapshots in the store: the files function is not deployed.
            ("CloudWatch alarms", 7.0 * 0.10),
            ("CloudWatch dashboard", 1.0 * 3.00),
            // BackupAgeSeconds for Tier 1, 2, 3; ChecksCritical, ChecksWarning,
            // LatestFullBackupBytes.
            ("CloudWatch custom metrics", 6.0 * 0.30),
            // Two replication rules, four metrics each.
            ("S3 Replication metrics", 2.0 * 4.0 * 0.30),
            ("Secrets Manager secrets", 2.0 * 0.40),
            // Dump, incrementals and the restore test read their secret each run.
            (
                "Secrets Manager API calls",
                (m + 24.0 * m + 1.0) / 10_000.0 * 0.05,
            ),
            ("SNS email alerts", 10.0 / 100_000.0 * 2.0),
            ("Lambda requests", lambda_runs / 1e6 * 0.20),
            ("X-Ray traces recorded", lambda_runs / 1e6 * 5.00),
            ("EventBridge Scheduler", lambda_runs / 1e6 * 1.00),
            (
                "CloudWatch Logs ingestion",
                lambda_runs * 3000.0 / 1e9 * 0.57,
            ),
            (
                "CloudWatch Logs storage",
                lambda_runs * 3000.0 / 1e9 * 84.0 * 0.03,
            ),
        ];
        for (item, want) in stack {
            assert_close(usd(&bill, item), want, 1e-9, item);
        }
        let stack_by_hand: f64 = stack.iter().map(|(_, usd)| usd).sum();
        assert_close(bill.stack_usd_per_month, stack_by_hand, 1e-9, "the stack");
        assert_eq!(
            bill.lines.iter().filter(|l| l.part == Part::Stack).count(),
            stack.len(),
            "no stack item the hand computation lacks: {:#?}",
            bill.lines
        );
        let data_by_hand = data_by_hand(0.0, false);
        assert_close(bill.data_usd_per_month, data_by_hand, 0.01, "the data");
        assert_close(
            bill.usd_per_month,
            data_by_hand + stack_by_hand,
            0.01,
            "the total",
        );
        assert!(!bill.lines.iter().any(|l| l.item.starts_with("NAT")));
        assert!(!bill.lines.iter().any(|l| l.item.starts_with("ECS Fargate")));
    }

    /// Everything the template can deploy: the binlog archive, the restore test on Fargate
    /// and its three more endpoints, in three zones, with a smaller stated log per run.
    #[test]
    fn the_whole_stack_with_fargate_and_the_binlog_archive_matches_a_hand_computation() {
        let p = Prices::default();
        let s = Schedule {
            binlog_runs_per_day: 288.0,
            availability_zones: 3,
            restore_test_on_fargate: true,
            log_bytes_per_invocation: 2000.0,
            ..Schedule::default()
        };
        let bill = bill::steady_state(&workload(), &s, &p);
        let m = 365.25 / 12.0;
        let hours = m * 24.0;
        // Dump, incrementals, binlog, monitor, files: the restore test is the task's.
        let lambda_runs = m + 24.0 * m + 288.0 * m + 96.0 * m + m;
        let scheduled = lambda_runs + 1.0;
        // 120 s of restore and 30 s of image pull: 150 s.
        let task_hours = 150.0 / 3600.0;
        let stack = [
            ("KMS keys", 2.0 * 1.00),
            // Secrets Manager, SNS, ECR API, ECR registry, CloudWatch Logs, each in 3 zones:
            // 24.11 each, 120.53.
            (
                "VPC interface endpoint Secrets Manager,",
                3.0 * hours * 0.011,
            ),
            ("VPC interface endpoint SNS,", 3.0 * hours * 0.011),
            ("VPC interface endpoint ECR API,", 3.0 * hours * 0.011),
            ("VPC interface endpoint ECR registry,", 3.0 * hours * 0.011),
            (
                "VPC interface endpoint CloudWatch Logs,",
                3.0 * hours * 0.011,
            ),
            ("CloudWatch alarms", (7.0 + 2.0) * 0.10),
            ("CloudWatch dashboard", 3.00),
            ("CloudWatch custom metrics", 6.0 * 0.30),
            ("S3 Replication metrics", 8.0 * 0.30),
            ("Secrets Manager secrets", 3.0 * 0.40),
            (
                "Secrets Manager API calls",
                (m + 24.0 * m + 288.0 * m + 1.0) / 10_000.0 * 0.05,
            ),
            ("SNS email alerts", 10.0 / 100_000.0 * 2.0),
            ("Lambda requests", lambda_runs / 1e6 * 0.20),
            ("X-Ray traces recorded", lambda_runs / 1e6 * 5.00),
            ("EventBridge Scheduler", scheduled / 1e6 * 1.00),
            ("CloudWatch Logs ingestion", scheduled * 2000.0 / 1e9 * 0.57),
            (
                "CloudWatch Logs storage",
                scheduled * 2000.0 / 1e9 * 84.0 * 0.03,
            ),
        ];
        for (item, want) in stack {
            assert_close(usd(&bill, item), want, 1e-9, item);
        }
        assert_close(
            usd(&bill, "ECS Fargate restore test, 2 vCPU"),
            task_hours * 2.0 * 0.03238,
            1e-9,
            "Fargate vCPU",
        );
        assert_close(
            usd(&bill, "ECS Fargate restore test, 4 GB"),
            task_hours * 4.0 * 0.00356,
            1e-9,
            "Fargate memory",
        );
        let stack_by_hand: f64 = stack.iter().map(|(_, usd)| usd).sum();
        assert_close(bill.stack_usd_per_month, stack_by_hand, 1e-9, "the stack");
        let data_by_hand = data_by_hand(288.0, true);
        assert_close(bill.data_usd_per_month, data_by_hand, 0.01, "the data");
        assert_close(
            bill.usd_per_month,
            data_by_hand + stack_by_hand,
            0.01,
            "the total",
        );
    }

    /// NetworkPath ExistingNat: no endpoints, the NAT bills the S3 traffic from the VPC; no
    /// RTC, no replication metrics.
    #[test]
    fn an_existing_nat_replaces_the_endpoints_by_its_per_gb_charge() {
        let p = Prices::default();
        let s = Schedule {
            binlog_runs_per_day: 0.0,
            network_path: NetworkPath::ExistingNat,
            replication_time_control: false,
            ..Schedule::default()
        };
        let bill = bill::steady_state(&workload(), &s, &p);
        let m = 365.25 / 12.0;
        for absent in [
            "VPC interface endpoint",
            "S3 Replication metrics",
            "S3 Replication Time Control",
        ] {
            assert!(
                !bill.lines.iter().any(|l| l.item.starts_with(absent)),
                "{absent}: {:#?}",
                bill.lines
            );
        }
        // A month of fulls, incrementals and their manifests written, one full read back.
        let through_the_nat = (100e6 + 20e3 + (2e6 + 5e3) * 24.0) * m / 1e9 + 100e6 / 1e9;
        assert_close(
            usd(&bill, "NAT data processing"),
            through_the_nat * 0.048,
            1e-9,
            "NAT",
        );
        assert!(s.deployment().starts_with("NetworkPath ExistingNat, "));
        assert_eq!(
            "existing-nat".parse::<NetworkPath>().ok(),
            Some(NetworkPath::ExistingNat)
        );
        assert!("nat".parse::<NetworkPath>().is_err());
    }

    /// The fixed items are what infra/template.yaml deploys: each count in bill.rs read back
    /// from the template, so adding an alarm or an endpoint there without here fails.
    #[test]
    fn the_fixed_items_are_those_of_the_template() {
        use serde_yaml::Value;
        use std::collections::{BTreeMap, BTreeSet};
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/template.yaml");
        let text = std::fs::read_to_string(path).expect("infra/template.yaml");
        let template: Value = serde_yaml::from_str(&text).expect("template YAML");
        // `!Ref X`, `!GetAtt X.Arn`, `!Sub "…"` or a plain string, as text.
        let text_of = |value: &Value| match value {
            Value::Tagged(tagged) => tagged.value.as_str().unwrap_or_default().to_string(),
            other => other.as_str().unwrap_or_default().to_string(),
        };
        let resources = template["Resources"].as_mapping().expect("Resources");
        let of_type = |kind: &str| -> Vec<(String, &Value)> {
            resources
                .iter()
                .filter(|(_, r)| r["Type"].as_str() == Some(kind))
                .map(|(name, r)| (name.as_str().unwrap_or_default().to_string(), r))
                .collect()
        };
        let condition = |r: &Value| r["Condition"].as_str().unwrap_or("").to_string();

        // Interface endpoints, by the condition that creates them.
        let mut endpoints: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (_, r) in of_type("AWS::EC2::VPCEndpoint") {
            if r["Properties"]["VpcEndpointType"].as_str() != Some("Interface") {
                continue;
            }
            let service = text_of(&r["Properties"]["ServiceName"]);
            let name = match service.rsplit_once("}.").map_or("", |(_, s)| s) {
                "secretsmanager" => "Secrets Manager",
                "sns" => "SNS",
                "ecr.api" => "ECR API",
                "ecr.dkr" => "ECR registry",
                "logs" => "CloudWatch Logs",
                other => panic!("an interface endpoint the bill does not name: {other}"),
            };
            endpoints
                .entry(condition(r))
                .or_default()
                .insert(name.to_string());
        }
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(endpoints.len(), 2, "{endpoints:?}");
        assert_eq!(
            endpoints["UseVpcEndpoints"],
            names(&bill::INTERFACE_ENDPOINTS)
        );
        assert_eq!(
            endpoints["FargateNeedsEndpoints"],
            names(&bill::FARGATE_INTERFACE_ENDPOINTS)
        );

        // Alarms: standard resolution (periods of a minute or more), always or with the
        // binlog archive.
        let alarms = of_type("AWS::CloudWatch::Alarm");
        for (name, r) in &alarms {
            assert!(
                r["Properties"]["Period"].as_u64().unwrap_or(0) >= 60,
                "{name}"
            );
            assert!(
                ["", "HasBinlogArchive", "HasFileBackups"].contains(&condition(r).as_str()),
                "{name}: a condition the bill does not know"
            );
        }
        let with_binlog = alarms
            .iter()
            .filter(|(_, r)| condition(r) == "HasBinlogArchive")
            .count();
        let with_files = alarms
            .iter()
            .filter(|(_, r)| condition(r) == "HasFileBackups")
            .count();
        assert_eq!(
            (alarms.len() - with_binlog - with_files) as f64,
            bill::ALARMS
        );
        assert_eq!(with_binlog as f64, bill::BINLOG_ALARMS);
        assert_eq!(with_files as f64, bill::FILES_ALARMS);
        assert_eq!(
            of_type("AWS::CloudWatch::Dashboard").len() as f64,
            bill::DASHBOARDS
        );

        // The Fargate task's size.
        let tasks = of_type("AWS::ECS::TaskDefinition");
        assert_eq!(tasks.len(), 1);
        let task = &tasks[0].1["Properties"];
        assert_eq!(
            task["Cpu"].as_str().and_then(|c| c.parse::<f64>().ok()),
            Some(bill::FARGATE_VCPU * 1024.0)
        );
        assert_eq!(
            task["Memory"].as_str().and_then(|c| c.parse::<f64>().ok()),
            Some(bill::FARGATE_MEMORY_GB * 1024.0)
        );
        assert_eq!(task["RuntimePlatform"]["CpuArchitecture"], "ARM64");

        // Replication rules, each with metrics (when RTC is on).
        let rules = of_type("AWS::S3::Bucket")
            .into_iter()
            .filter_map(|(_, r)| {
                r["Properties"]["ReplicationConfiguration"]["Rules"]
                    .as_sequence()
                    .cloned()
            })
            .next()
            .expect("replication rules");
        assert_eq!(rules.len() as f64, bill::REPLICATION_RULES);
        for rule in &rules {
            assert!(
                !rule["Destination"]["Metrics"].is_null(),
                "{rule:?} without metrics"
            );
        }

        // Secrets: what the jobs' DATABASE_SECRET_ARN names, and any the stack creates; one
        // is the archive's when only the binlog function (or a resource under its condition)
        // names it.
        let mut secrets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (_, r) in of_type("AWS::Serverless::Function") {
            let secret = &r["Properties"]["Environment"]["Variables"]["DATABASE_SECRET_ARN"];
            if !secret.is_null() {
                secrets
                    .entry(text_of(secret))
                    .or_default()
                    .insert(condition(r));
            }
        }
        for (_, r) in &tasks {
            for container in r["Properties"]["ContainerDefinitions"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                for variable in container["Environment"].as_sequence().into_iter().flatten() {
                    if variable["Name"] == "DATABASE_SECRET_ARN" {
                        secrets
                            .entry(text_of(&variable["Value"]))
                            .or_default()
                            .insert(condition(r));
                    }
                }
            }
        }
        for (name, r) in of_type("AWS::SecretsManager::Secret") {
            secrets.entry(name).or_default().insert(condition(r));
        }
        let binlog_only = secrets
            .values()
            .filter(|conditions| conditions.iter().all(|c| c == "HasBinlogArchive"))
            .count();
        assert_eq!(
            (secrets.len() - binlog_only) as f64,
            bill::SECRETS,
            "{secrets:?}"
        );
        assert_eq!(binlog_only as f64, bill::BINLOG_SECRETS, "{secrets:?}");

        // Logs never expire: the only log group the stack makes is the Fargate task's.
        for (name, r) in of_type("AWS::Logs::LogGroup") {
            assert_eq!(condition(r), "RestoreTestOnFargate", "{name}");
        }
        // Traces: every function traces.
        assert_eq!(template["Globals"]["Function"]["Tracing"], "Active");
        // The defaults the CLI's options share.
        assert_eq!(
            template["Parameters"]["NetworkPath"]["Default"],
            Schedule::default().network_path.template_value()
        );
        assert_eq!(template["Parameters"]["RestoreTestImageUri"]["Default"], "");
        assert_eq!(
            template["Parameters"]["EnableBinlogArchive"]["Default"],
            "false"
        );
        assert_eq!(
            template["Parameters"]["EnableFileBackups"]["Default"],
            "false"
        );
    }

    #[test]
    fn prices_apply_per_gigabyte() {
        let (lines, total) = lines(&Prices::default(), [GB, 0.0, 0.0, 10.0 * GB]);
        assert!((lines[0].usd_per_month - 0.023).abs() < 1e-9);
        assert!((total - (0.023 + 0.0099)).abs() < 1e-9);
    }
}

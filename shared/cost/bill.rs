//! The monthly bill at steady state (seven years of daily fulls and binlog, 90 days of hourly
//! incrementals), line by line as AWS bills it, from a workload measured in the store: what
//! grows with the backups (storage, requests, transfer, compute) and what the stack as deployed
//! from infra/template.yaml pays whatever their size (endpoints, alarms, dashboard, metrics,
//! secrets, logs, keys).
//!
//! The [`Workload`] and [`Schedule`] it is computed from are defined in `usage`; the GB-months
//! objects add up to under the lifecycle, in `lifecycle`.

use serde::Serialize;

use super::lifecycle::{add, stored, DAILY_DAYS, IA_MINIMUM_OBJECT, INCREMENTAL_DAYS};
use super::prices::Prices;
pub use super::usage::{NetworkPath, Schedule, Workload};

/// Which half of the bill a line is in: what grows with the backups, or what the stack as
/// deployed pays whatever their size (so a reader sees which half a smaller database saves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Data,
    Stack,
}

/// One line as AWS bills it: `quantity` of `unit` at `unit_usd` each, `usd` in all.
#[derive(Debug, Clone, Serialize)]
pub struct BillLine {
    pub item: String,
    pub part: Part,
    pub quantity: f64,
    pub unit: &'static str,
    pub unit_usd: f64,
    pub usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bill {
    pub lines: Vec<BillLine>,
    pub data_usd_per_month: f64,
    pub stack_usd_per_month: f64,
    pub usd_per_month: f64,
}

pub const DAYS_PER_MONTH: f64 = 365.25 / 12.0;
pub const HOURS_PER_MONTH: f64 = DAYS_PER_MONTH * 24.0;
pub const GB: f64 = 1_000_000_000.0;

// What infra/template.yaml deploys; the test `the_fixed_items_are_those_of_the_template` in
// cost/mod.rs reads the template and checks every one, so a new alarm or endpoint cannot be
// left off the bill.
/// Interface endpoints with `NetworkPath` VpcEndpoints (the S3 gateway endpoint is free).
pub const INTERFACE_ENDPOINTS: [&str; 2] = ["Secrets Manager", "SNS"];
/// More interface endpoints when the restore test also runs on Fargate in that VPC: the task
/// pulls its image and sends its own logs.
pub const FARGATE_INTERFACE_ENDPOINTS: [&str; 3] = ["ECR API", "ECR registry", "CloudWatch Logs"];
/// CloudWatch alarms the stack always creates, and those it adds with the binlog archive and
/// with file backups (both opt-in).
pub const ALARMS: f64 = 7.0;
pub const BINLOG_ALARMS: f64 = 2.0;
pub const FILES_ALARMS: f64 = 3.0;
pub const DASHBOARDS: f64 = 1.0;
/// The restore-test task definition's Cpu 2048 and Memory 4096 (arm64).
pub const FARGATE_VCPU: f64 = 2.0;
pub const FARGATE_MEMORY_GB: f64 = 4.0;
/// Replication rules (database/, files/); with Replication Time Control each publishes S3
/// Replication metrics, billed as custom metrics: bytes pending, operations pending,
/// operations failed, latency.
pub const REPLICATION_RULES: f64 = 2.0;
pub const REPLICATION_METRICS_PER_RULE: f64 = 4.0;
/// Secrets the jobs read: the backup user's (dump, incremental) and the restore-test user's;
/// the binlog user's with the archive.
pub const SECRETS: f64 = 2.0;
pub const BINLOG_SECRETS: f64 = 1.0;
/// The stated size of one run's log, above the mix of runs: the JSON log lines of a sample dump
/// are 3.5 KB, of an incremental 2.2 KB, of a binlog run 0.2 KB (`--log-format json`), a
/// monitor run prints about 1 KB of EMF, and Lambda adds about 0.8 KB of start and report
/// records; most runs are the monitor's and the binlog's.
pub const LOG_BYTES_PER_INVOCATION: f64 = 3000.0;
/// The template leaves the functions' log groups to Lambda, which creates them without a
/// retention: nothing expires, so at this bill's seven-year horizon they hold 84 months of runs.
const LOG_MONTHS_KEPT: f64 = 84.0;
/// Fargate bills from the image pull to the task's end, and at least a minute.
const FARGATE_START_SECONDS: f64 = 30.0;
const FARGATE_MINIMUM_SECONDS: f64 = 60.0;

/// The monitor's EMF metrics (shared/monitor `emf_lines`): BackupAgeSeconds per tier of the
/// default tiers (the template sets no MONITOR_TIERS), ChecksCritical, ChecksWarning and
/// LatestFullBackupBytes.
pub fn monitor_metrics() -> f64 {
    crate::monitor::tiers::default_tiers().len() as f64 + 3.0
}

/// Multipart uploads send 6 MiB parts (BACKUP_S3_PART_SIZE_MB): one PUT each.
const PART: f64 = 6.0 * 1024.0 * 1024.0;
/// Share of S3 requests that reach KMS with S3 Bucket Keys on (AWS: "up to 99 %" fewer).
const KMS_SHARE_WITH_BUCKET_KEYS: f64 = 0.01;

pub fn steady_state(w: &Workload, s: &Schedule, p: &Prices) -> Bill {
    let mut lines = Vec::new();
    // Every line is a quantity in the price table's own unit times that price, so the printed
    // unit price is the one to check against AWS's page.
    let mut line = |part: Part, item: String, quantity: f64, unit: &'static str, unit_usd: f64| {
        lines.push(BillLine {
            item,
            part,
            quantity,
            unit,
            unit_usd,
            usd: quantity * unit_usd,
        })
    };
    let m = DAYS_PER_MONTH;
    let inc_per_day = s.incrementals_per_day;

    // Storage: data files by the lifecycle, manifests in Standard for as long as their backups.
    let database = add(
        add(
            stored(DAILY_DAYS, w.full_bytes, w.full_objects),
            stored(
                DAILY_DAYS,
                w.binlog_bytes_per_day,
                w.binlog_segments_per_day,
            ),
        ),
        add(
            stored(
                INCREMENTAL_DAYS,
                w.incremental_bytes * inc_per_day,
                w.incremental_objects * inc_per_day,
            ),
            [
                ((w.full_manifest_bytes + w.binlog_manifest_bytes_per_day) * 2557.0
                    + w.incremental_manifest_bytes * inc_per_day * 90.0)
                    / GB,
                0.0,
                0.0,
                0.0,
            ],
        ),
    );
    // File content is mostly older than 30 days: Standard-IA, each object at least 128 KB.
    let files_mean = if w.files_objects > 0.0 {
        w.files_bytes / w.files_objects
    } else {
        0.0
    };
    let files_gb =
        (w.files_bytes + w.files_objects * (IA_MINIMUM_OBJECT - files_mean).max(0.0)) / GB;
    let total = add(database, [0.0, files_gb, 0.0, 0.0]);
    let names = [
        "S3 Standard",
        "S3 Standard-IA",
        "S3 Glacier Flexible Retrieval",
        "S3 Glacier Deep Archive",
    ];
    for class in 0..4 {
        line(
            Part::Data,
            format!("{} storage, {}", names[class], p.region),
            total[class],
            "GB-month",
            p.storage[class],
        );
    }
    for class in 0..4 {
        line(
            Part::Data,
            format!("{} storage, {} (replica)", names[class], p.replica_region),
            total[class],
            "GB-month",
            p.replica_storage[class],
        );
    }

    // Requests. Writes: each data object (a PUT per 6 MiB part), its tag at sealing, the
    // manifest and the catalog index; reads: the catalog and chains the jobs plan with.
    let parts = |bytes: f64, objects: f64| objects.max(bytes / PART);
    let full_puts = parts(w.full_bytes, w.full_objects) + w.full_objects + 2.0;
    let inc_puts = parts(w.incremental_bytes, w.incremental_objects) + w.incremental_objects + 2.0;
    let binlog_puts = w.binlog_segments_per_day * 3.0 + s.binlog_runs_per_day;
    let monitor_puts = 3.0; // its state and two listings
    let puts_per_day = full_puts
        + inc_puts * inc_per_day
        + binlog_puts
        + monitor_puts * s.monitor_runs_per_day
        + 3.0;
    let gets_per_day = 4.0
        + 6.0 * inc_per_day
        + 2.0 * s.binlog_runs_per_day
        + 4.0 * s.monitor_runs_per_day
        + w.full_objects / m; // the monthly restore test reads the latest full
    line(
        Part::Data,
        "S3 PUT, COPY, POST, LIST requests".into(),
        puts_per_day * m / 1000.0,
        "1,000 requests",
        p.put_per_1000,
    );
    line(
        Part::Data,
        "S3 GET and other requests".into(),
        gets_per_day * m / 1000.0,
        "1,000 requests",
        p.get_per_1000,
    );
    let replicated_objects = (w.full_objects
        + 1.0
        + (w.incremental_objects + 1.0) * inc_per_day
        + w.binlog_segments_per_day * 2.0)
        * m;
    line(
        Part::Data,
        format!("S3 PUT requests, {} (replication)", p.replica_region),
        replicated_objects / 1000.0,
        "1,000 requests",
        p.replica_put_per_1000,
    );

    // Lifecycle transitions: daily data objects three times, incrementals once.
    let daily_objects = w.full_objects + w.binlog_segments_per_day;
    let transitions = [
        (daily_objects + w.incremental_objects * inc_per_day) * m,
        daily_objects * m,
        daily_objects * m,
    ];
    for (i, target) in ["Standard-IA", "Glacier", "Deep Archive"]
        .iter()
        .enumerate()
    {
        line(
            Part::Data,
            format!("lifecycle transitions to {target} (both buckets)"),
            transitions[i] * 2.0 / 1000.0,
            "1,000 requests",
            p.transition_per_1000[i],
        );
    }

    // Replication of everything written in a month.
    let written_gb = (w.full_bytes
        + w.full_manifest_bytes
        + (w.incremental_bytes + w.incremental_manifest_bytes) * inc_per_day
        + w.binlog_bytes_per_day
        + w.binlog_manifest_bytes_per_day)
        * m
        / GB;
    line(
        Part::Data,
        format!("inter-region transfer {} to {}", p.region, p.replica_region),
        written_gb,
        "GB",
        p.replication_transfer_per_gb,
    );
    if s.replication_time_control {
        line(
            Part::Data,
            "S3 Replication Time Control".into(),
            written_gb,
            "GB",
            p.replication_time_control_per_gb,
        );
    }

    // KMS: the few requests S3 Bucket Keys let through (the keys themselves are the stack's).
    let kms_requests = (puts_per_day + gets_per_day) * m * 2.0 * KMS_SHARE_WITH_BUCKET_KEYS;
    line(
        Part::Data,
        "KMS requests (with S3 Bucket Keys)".into(),
        kms_requests / 10_000.0,
        "10,000 requests",
        p.kms_per_10000_requests,
    );

    // Lambda: GB-seconds at the measured durations. The restore test is the function's run
    // unless it runs on Fargate (the template then schedules the task, not the function).
    let restore_seconds = w.full_seconds * 2.0;
    let restore_lambda_runs = if s.restore_test_on_fargate { 0.0 } else { 1.0 };
    let restore_task_runs = 1.0 - restore_lambda_runs;
    let runs = [
        m,
        inc_per_day * m,
        s.binlog_runs_per_day * m,
        s.monitor_runs_per_day * m,
        restore_lambda_runs,
        m,
    ];
    let seconds = [
        w.full_seconds,
        w.incremental_seconds,
        s.binlog_seconds,
        s.monitor_seconds,
        restore_seconds,
        s.files_seconds,
    ];
    let gb_seconds: f64 = (0..6).map(|i| runs[i] * seconds[i] * s.memory_gb[i]).sum();
    line(
        Part::Data,
        "Lambda compute (arm64)".into(),
        gb_seconds,
        "GB-second",
        p.lambda_arm_per_gb_second,
    );
    if s.restore_test_on_fargate {
        // Billed per second from the image pull, at least a minute; 20 GB of task storage
        // come with it.
        let hours = (restore_seconds + FARGATE_START_SECONDS).max(FARGATE_MINIMUM_SECONDS) / 3600.0
            * restore_task_runs;
        line(
            Part::Data,
            format!("ECS Fargate restore test, {FARGATE_VCPU} vCPU (arm64)"),
            hours * FARGATE_VCPU,
            "vCPU-hour",
            p.fargate_arm_per_vcpu_hour,
        );
        line(
            Part::Data,
            format!("ECS Fargate restore test, {FARGATE_MEMORY_GB} GB memory"),
            hours * FARGATE_MEMORY_GB,
            "GB-hour",
            p.fargate_arm_per_gb_hour,
        );
    }
    if s.network_path == NetworkPath::ExistingNat {
        // Without the stack's S3 gateway endpoint, the S3 traffic of the functions in the VPC
        // (what dump, incremental and binlog write, the full the restore test reads once a
        // month) crosses the NAT; none of it does if those route tables have an S3 gateway
        // endpoint of their own. The monitor runs outside the VPC; the files function is inside
        // only with an EFS mount, which this estimate cannot see, so its writes are left out.
        let nat_gb = written_gb + w.full_bytes / GB;
        line(
            Part::Data,
            "NAT data processing (S3 traffic from the VPC)".into(),
            nat_gb,
            "GB",
            p.nat_per_gb,
        );
    }

    // What the stack pays whatever the backups' size.
    line(
        Part::Stack,
        "KMS keys (backup and replica)".into(),
        2.0,
        "key-month",
        p.kms_key_per_month,
    );
    if s.network_path == NetworkPath::VpcEndpoints {
        let mut names = INTERFACE_ENDPOINTS.to_vec();
        if s.restore_test_on_fargate {
            names.extend(FARGATE_INTERFACE_ENDPOINTS);
        }
        // One line each, so the three a Fargate restore test adds show as such.
        for name in names {
            line(
                Part::Stack,
                format!(
                    "VPC interface endpoint {name}, {} zones",
                    s.availability_zones
                ),
                f64::from(s.availability_zones) * HOURS_PER_MONTH,
                "endpoint-hour",
                p.interface_endpoint_per_hour,
            );
        }
    }
    let binlog = if s.binlog_runs_per_day > 0.0 {
        1.0
    } else {
        0.0
    };
    // File backups are deployed when the store holds file snapshots.
    let files = if w.files_objects > 0.0 { 1.0 } else { 0.0 };
    line(
        Part::Stack,
        "CloudWatch alarms".into(),
        ALARMS + BINLOG_ALARMS * binlog + FILES_ALARMS * files,
        "alarm-month",
        p.alarm_per_month,
    );
    line(
        Part::Stack,
        "CloudWatch dashboard".into(),
        DASHBOARDS,
        "dashboard-month",
        p.dashboard_per_month,
    );
    line(
        Part::Stack,
        "CloudWatch custom metrics (the monitor's EMF)".into(),
        monitor_metrics(),
        "metric-month",
        p.custom_metric_per_month,
    );
    if s.replication_time_control {
        line(
            Part::Stack,
            "S3 Replication metrics (on with Replication Time Control)".into(),
            REPLICATION_RULES * REPLICATION_METRICS_PER_RULE,
            "metric-month",
            p.custom_metric_per_month,
        );
    }
    line(
        Part::Stack,
        "Secrets Manager secrets".into(),
        SECRETS + BINLOG_SECRETS * binlog,
        "secret-month",
        p.secret_per_month,
    );
    // Every run that connects to the database reads its secret (README: per invocation, so
    // a rotation needs no redeploy).
    let secret_reads = runs[0] + runs[1] + runs[2] + runs[4] + restore_task_runs;
    line(
        Part::Stack,
        "Secrets Manager API calls".into(),
        secret_reads / 10_000.0,
        "10,000 calls",
        p.secrets_per_10000_api_calls,
    );
    let invocations: f64 = runs.iter().sum();
    line(
        Part::Stack,
        "SNS email alerts".into(),
        s.alerts_per_month / 100_000.0,
        "100,000 emails",
        p.sns_email_per_100000,
    );
    line(
        Part::Stack,
        "Lambda requests".into(),
        invocations / 1_000_000.0,
        "1M requests",
        p.lambda_per_million_requests,
    );
    // Every function has active tracing: one trace a run (each is invoked at most once a
    // second, inside the default sampling rule's reservoir).
    line(
        Part::Stack,
        "X-Ray traces recorded".into(),
        invocations / 1_000_000.0,
        "1M traces",
        p.xray_per_million_traces,
    );
    let scheduled = invocations + restore_task_runs;
    line(
        Part::Stack,
        "EventBridge Scheduler invocations".into(),
        scheduled / 1_000_000.0,
        "1M invocations",
        p.scheduler_per_million,
    );
    let log_gb = scheduled * s.log_bytes_per_invocation / GB;
    line(
        Part::Stack,
        format!(
            "CloudWatch Logs ingestion ({} bytes a run)",
            s.log_bytes_per_invocation
        ),
        log_gb,
        "GB",
        p.logs_ingestion_per_gb,
    );
    // Stored as ingested: AWS bills the compressed size, so this is the most it can be.
    line(
        Part::Stack,
        "CloudWatch Logs storage (never expire: 84 months)".into(),
        log_gb * LOG_MONTHS_KEPT,
        "GB-month",
        p.logs_storage_per_gb,
    );

    let sum = |part: Part| -> f64 { lines.iter().filter(|l| l.part == part).map(|l| l.usd).sum() };
    let data_usd_per_month = sum(Part::Data);
    let stack_usd_per_month = sum(Part::Stack);
    Bill {
        lines,
        data_usd_per_month,
        stack_usd_per_month,
        usd_per_month: data_usd_per_month + stack_usd_per_month,
    }
}

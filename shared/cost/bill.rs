//! The monthly bill at steady state (seven years of daily fulls and binlog, 90 days of hourly
//! incrementals), line by line as AWS bills it, from a workload measured in the store.

use serde::Serialize;

use super::prices::Prices;

/// What the store holds per backup, and how long the jobs run (measured from the store).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Workload {
    /// The latest full backup's data files (bytes, objects) and its manifest.
    pub full_bytes: f64,
    pub full_objects: f64,
    pub full_manifest_bytes: f64,
    /// A mean incremental's data files and manifest.
    pub incremental_bytes: f64,
    pub incremental_objects: f64,
    pub incremental_manifest_bytes: f64,
    /// Binlog segments written a day: data bytes, segments, manifest bytes (0 without the
    /// archive).
    pub binlog_bytes_per_day: f64,
    pub binlog_segments_per_day: f64,
    pub binlog_manifest_bytes_per_day: f64,
    pub files_bytes: f64,
    pub files_objects: f64,
    pub full_seconds: f64,
    pub incremental_seconds: f64,
}

/// How often things run, and the stack's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub incrementals_per_day: f64,
    pub binlog_runs_per_day: f64,
    pub monitor_runs_per_day: f64,
    pub replication_time_control: bool,
    pub alerts_per_month: f64,
    /// Lambda memory in GB: dump, incremental, binlog, monitor, restore test, files.
    pub memory_gb: [f64; 6],
    pub binlog_seconds: f64,
    pub monitor_seconds: f64,
    pub files_seconds: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            incrementals_per_day: 24.0,
            binlog_runs_per_day: 288.0,
            monitor_runs_per_day: 96.0,
            replication_time_control: true,
            alerts_per_month: 10.0,
            // infra/template.yaml's MemorySize of each function.
            memory_gb: [3538.0 / 1024.0, 0.5, 0.25, 0.25, 1.0, 1.0],
            binlog_seconds: 1.0,
            monitor_seconds: 2.0,
            files_seconds: 60.0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BillLine {
    pub item: String,
    pub quantity: f64,
    pub unit: &'static str,
    pub usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bill {
    pub lines: Vec<BillLine>,
    pub usd_per_month: f64,
}

pub const DAYS_PER_MONTH: f64 = 365.25 / 12.0;
pub const GB: f64 = 1_000_000_000.0;
/// Standard-IA bills every object as at least 128 KB.
const IA_MINIMUM_OBJECT: f64 = 128.0 * 1024.0;
/// Glacier and Deep Archive add 32 KB at their own rate and 8 KB at Standard's per object.
const ARCHIVE_INDEX: f64 = 32.0 * 1024.0;
const ARCHIVE_NAME: f64 = 8.0 * 1024.0;
/// Multipart uploads send 6 MiB parts (BACKUP_S3_PART_SIZE_MB): one PUT each.
const PART: f64 = 6.0 * 1024.0 * 1024.0;
/// Share of S3 requests that reach KMS with S3 Bucket Keys on (AWS: "up to 99 %" fewer).
const KMS_SHARE_WITH_BUCKET_KEYS: f64 = 0.01;

/// Days a daily object spends in Standard, Standard-IA, Glacier, Deep Archive (lifecycle:
/// IA at 30, Glacier at 90, Deep Archive at 365, expired at 2557).
const DAILY_DAYS: [f64; 4] = [30.0, 60.0, 275.0, 2192.0];
/// Incrementals: Standard 30 days, Standard-IA until day 90.
const INCREMENTAL_DAYS: [f64; 4] = [30.0, 60.0, 0.0, 0.0];

/// Stored GB-months per class for objects written `per_day`, of `bytes` in `objects` objects.
fn stored(days: [f64; 4], bytes_per_day: f64, objects_per_day: f64) -> [f64; 4] {
    let mut gb = [0.0; 4];
    let mean = if objects_per_day > 0.0 {
        bytes_per_day / objects_per_day
    } else {
        0.0
    };
    for class in 0..4 {
        let objects = objects_per_day * days[class];
        let mut bytes = bytes_per_day * days[class];
        if class == 1 {
            bytes += objects * (IA_MINIMUM_OBJECT - mean).max(0.0);
        }
        if class >= 2 {
            bytes += objects * ARCHIVE_INDEX;
            gb[0] += objects * ARCHIVE_NAME / GB;
        }
        gb[class] += bytes / GB;
    }
    gb
}

fn add(a: [f64; 4], b: [f64; 4]) -> [f64; 4] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]
}

pub fn steady_state(w: &Workload, s: &Schedule, p: &Prices) -> Bill {
    let mut lines = Vec::new();
    let mut line = |item: String, quantity: f64, unit: &'static str, usd: f64| {
        lines.push(BillLine {
            item,
            quantity,
            unit,
            usd,
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
            format!("{} storage, {}", names[class], p.region),
            total[class],
            "GB-month",
            total[class] * p.storage[class],
        );
    }
    for class in 0..4 {
        line(
            format!("{} storage, {} (replica)", names[class], p.replica_region),
            total[class],
            "GB-month",
            total[class] * p.replica_storage[class],
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
        "S3 PUT, COPY, POST, LIST requests".into(),
        puts_per_day * m,
        "requests",
        puts_per_day * m / 1000.0 * p.put_per_1000,
    );
    line(
        "S3 GET and other requests".into(),
        gets_per_day * m,
        "requests",
        gets_per_day * m / 1000.0 * p.get_per_1000,
    );
    let replicated_objects = (w.full_objects
        + 1.0
        + (w.incremental_objects + 1.0) * inc_per_day
        + w.binlog_segments_per_day * 2.0)
        * m;
    line(
        format!("S3 PUT requests, {} (replication)", p.replica_region),
        replicated_objects,
        "requests",
        replicated_objects / 1000.0 * p.replica_put_per_1000,
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
            format!("lifecycle transitions to {target} (both buckets)"),
            transitions[i] * 2.0,
            "requests",
            transitions[i] * 2.0 / 1000.0 * p.transition_per_1000[i],
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
        format!("inter-region transfer {} to {}", p.region, p.replica_region),
        written_gb,
        "GB",
        written_gb * p.replication_transfer_per_gb,
    );
    if s.replication_time_control {
        line(
            "S3 Replication Time Control".into(),
            written_gb,
            "GB",
            written_gb * p.replication_time_control_per_gb,
        );
    }

    // KMS: two keys, and the few requests S3 Bucket Keys let through.
    let kms_requests = (puts_per_day + gets_per_day) * m * 2.0 * KMS_SHARE_WITH_BUCKET_KEYS;
    line(
        "KMS keys (backup and replica)".into(),
        2.0,
        "keys",
        2.0 * p.kms_key_per_month,
    );
    line(
        "KMS requests (with S3 Bucket Keys)".into(),
        kms_requests,
        "requests",
        kms_requests / 10_000.0 * p.kms_per_10000_requests,
    );

    line(
        "SNS email alerts".into(),
        s.alerts_per_month,
        "notifications",
        s.alerts_per_month / 100_000.0 * p.sns_email_per_100000,
    );

    // Lambda: GB-seconds at the measured durations, and the invocations.
    let runs = [
        m,
        inc_per_day * m,
        s.binlog_runs_per_day * m,
        s.monitor_runs_per_day * m,
        1.0,
        m,
    ];
    let seconds = [
        w.full_seconds,
        w.incremental_seconds,
        s.binlog_seconds,
        s.monitor_seconds,
        w.full_seconds * 2.0,
        s.files_seconds,
    ];
    let gb_seconds: f64 = (0..6).map(|i| runs[i] * seconds[i] * s.memory_gb[i]).sum();
    line(
        "Lambda compute (arm64)".into(),
        gb_seconds,
        "GB-seconds",
        gb_seconds * p.lambda_arm_per_gb_second,
    );
    let invocations: f64 = runs.iter().sum();
    line(
        "Lambda requests".into(),
        invocations,
        "requests",
        invocations / 1_000_000.0 * p.lambda_per_million_requests,
    );

    let usd_per_month = lines.iter().map(|l| l.usd).sum();
    Bill {
        lines,
        usd_per_month,
    }
}

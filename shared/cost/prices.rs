//! Every price the estimate uses, in one table with its date and regions, overridable by a JSON
//! file of the same shape (any subset of the fields).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// USD; storage per GB-month, requests per 1,000, transfer per GB. Public list prices for
/// eu-west-1 (the backups) and eu-central-1 (the replica), first tiers, no free tier (not even
/// the perpetual ones: 1M Lambda requests, 3 dashboards, 10 metrics and alarms, 100,000 X-Ray
/// traces, 14M Scheduler invocations, 5 GB of logs), so the figure holds in an account that
/// already uses them up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prices {
    pub read_on: String,
    pub region: String,
    pub replica_region: String,
    /// Standard, Standard-IA, Glacier Flexible Retrieval, Deep Archive.
    pub storage: [f64; 4],
    pub replica_storage: [f64; 4],
    pub put_per_1000: f64,
    pub get_per_1000: f64,
    pub replica_put_per_1000: f64,
    /// Lifecycle transitions into Standard-IA, Glacier, Deep Archive.
    pub transition_per_1000: [f64; 3],
    pub replication_transfer_per_gb: f64,
    pub replication_time_control_per_gb: f64,
    pub kms_per_10000_requests: f64,
    pub kms_key_per_month: f64,
    pub sns_email_per_100000: f64,
    pub lambda_arm_per_gb_second: f64,
    pub lambda_per_million_requests: f64,
    /// Per interface endpoint per Availability Zone per hour.
    pub interface_endpoint_per_hour: f64,
    /// Fargate Linux/ARM, per vCPU-hour and per GB of memory per hour.
    pub fargate_arm_per_vcpu_hour: f64,
    pub fargate_arm_per_gb_hour: f64,
    /// Per NAT gateway GB processed (only with NetworkPath ExistingNat).
    pub nat_per_gb: f64,
    /// CloudWatch: a standard-resolution alarm, a dashboard, a custom metric, per month.
    pub alarm_per_month: f64,
    pub dashboard_per_month: f64,
    pub custom_metric_per_month: f64,
    /// CloudWatch Logs: ingestion per GB, storage per GB-month.
    pub logs_ingestion_per_gb: f64,
    pub logs_storage_per_gb: f64,
    pub secret_per_month: f64,
    pub secrets_per_10000_api_calls: f64,
    pub xray_per_million_traces: f64,
    pub scheduler_per_million: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            read_on: "2026-11".into(),
            region: "eu-west-1".into(),
            replica_region: "eu-central-1".into(),
            storage: [0.023, 0.0125, 0.0036, 0.00099],
            replica_storage: [0.0245, 0.0135, 0.0036, 0.0018],
            put_per_1000: 0.005,
            get_per_1000: 0.0004,
            replica_put_per_1000: 0.0054,
            transition_per_1000: [0.01, 0.03, 0.05],
            replication_transfer_per_gb: 0.02,
            replication_time_control_per_gb: 0.015,
            kms_per_10000_requests: 0.03,
            kms_key_per_month: 1.0,
            sns_email_per_100000: 2.0,
            lambda_arm_per_gb_second: 0.000_013_333_4,
            lambda_per_million_requests: 0.20,
            interface_endpoint_per_hour: 0.011,
            fargate_arm_per_vcpu_hour: 0.03238,
            fargate_arm_per_gb_hour: 0.00356,
            nat_per_gb: 0.048,
            alarm_per_month: 0.10,
            dashboard_per_month: 3.00,
            custom_metric_per_month: 0.30,
            logs_ingestion_per_gb: 0.57,
            logs_storage_per_gb: 0.03,
            secret_per_month: 0.40,
            secrets_per_10000_api_calls: 0.05,
            xray_per_million_traces: 5.00,
            scheduler_per_million: 1.00,
        }
    }
}

impl Prices {
    /// The defaults with whatever `path` (JSON) sets.
    pub fn from_file(path: &std::path::Path) -> Result<Prices> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            variable: "--prices".into(),
            reason: format!("{}: {e}", path.display()),
        })?;
        serde_json::from_str(&text).map_err(|e| Error::InvalidValue {
            what: "prices file",
            value: path.display().to_string(),
            expected: format!(
                "JSON with any of the fields of `toc-backup cost --json`'s prices ({e})"
            ),
        })
    }
}

//! What the bill is computed from: the workload measured in the store (what a backup holds and
//! how long the jobs run) and the schedule and settings of the stack as deployed.

use std::str::FromStr;

use serde::Serialize;

use super::bill::LOG_BYTES_PER_INVOCATION;
use crate::error::Error;

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

/// How the functions in the VPC reach S3, Secrets Manager and SNS: the template's
/// `NetworkPath` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkPath {
    /// The stack's own interface endpoints (billed per zone and hour) and S3 gateway endpoint.
    VpcEndpoints,
    /// No endpoints: a NAT the subnets already route through, which bills every GB.
    ExistingNat,
}

impl NetworkPath {
    /// The parameter value in infra/template.yaml.
    pub fn template_value(self) -> &'static str {
        match self {
            NetworkPath::VpcEndpoints => "VpcEndpoints",
            NetworkPath::ExistingNat => "ExistingNat",
        }
    }
}

impl FromStr for NetworkPath {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "vpc-endpoints" | "VpcEndpoints" => Ok(NetworkPath::VpcEndpoints),
            "existing-nat" | "ExistingNat" => Ok(NetworkPath::ExistingNat),
            _ => Err(Error::InvalidValue {
                what: "network path",
                value: text.to_string(),
                expected: "vpc-endpoints or existing-nat (the template's NetworkPath)".into(),
            }),
        }
    }
}

/// How often things run, and the stack's settings (infra/template.yaml's parameters).
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
    pub network_path: NetworkPath,
    /// Availability Zones of `SubnetIds`: each interface endpoint is billed once per zone.
    pub availability_zones: u32,
    /// `RestoreTestImageUri` set: the monthly restore test runs as the ECS Fargate task instead
    /// of the function.
    pub restore_test_on_fargate: bool,
    /// What one run writes to CloudWatch Logs, Lambda's own start and report records included.
    pub log_bytes_per_invocation: f64,
}

impl Schedule {
    /// The deployment in the template's words, for people reading the bill.
    pub fn deployment(&self) -> String {
        format!(
            "NetworkPath {}{}, restore test on {}, binlog archive {}, Replication Time Control {}",
            self.network_path.template_value(),
            match self.network_path {
                NetworkPath::VpcEndpoints =>
                    format!(" in {} Availability Zones", self.availability_zones),
                NetworkPath::ExistingNat => String::new(),
            },
            if self.restore_test_on_fargate {
                "Fargate"
            } else {
                "Lambda"
            },
            if self.binlog_runs_per_day > 0.0 {
                "on"
            } else {
                "off"
            },
            if self.replication_time_control {
                "on"
            } else {
                "off"
            },
        )
    }
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
            // The template's defaults: NetworkPath VpcEndpoints, SubnetIds one per zone in
            // two zones (README "Network path"), RestoreTestImageUri empty.
            network_path: NetworkPath::VpcEndpoints,
            availability_zones: 2,
            restore_test_on_fargate: false,
            log_bytes_per_invocation: LOG_BYTES_PER_INVOCATION,
        }
    }
}

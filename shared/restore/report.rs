//! What a finished restore reports: the chain and point it restored, what it loaded, and how
//! long loading and verifying took.

use serde::Serialize;

use super::estimate;

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub backup_id: String,
    pub kind: &'static str,
    /// The full backup and the incrementals applied after it, in order.
    pub chain: Vec<String>,
    /// The database clock at the restored point's snapshot.
    pub point_in_time: String,
    pub source_database: String,
    pub target_database: String,
    pub files: usize,
    pub bytes: u64,
    /// Uncompressed bytes of the files loaded (`estimate::data_bytes`).
    pub data_bytes: u64,
    pub tables: usize,
    pub rows: u64,
    pub objects: usize,
    /// Views, routines, triggers and events created as the restoring user instead of their
    /// recorded DEFINER (`--definer current`).
    pub definers_rewritten: usize,
    pub load_seconds: f64,
    pub verify_seconds: f64,
    pub duration_seconds: f64,
    /// What the binlog replay did, when the point was reached through the binlog archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binlog: Option<crate::binlog::ReplayReport>,
    /// What the command line estimated before it started, beside `duration_seconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<estimate::Estimate>,
}

/// Seconds to the millisecond, as the report gives them.
pub(super) fn round(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

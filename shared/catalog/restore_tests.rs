//! The restore test reports a store keeps (`layout::RESTORE_TESTS_PREFIX`): written by the
//! monitor's restore test, read by the monitor and by a restore's time estimate.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreTestReport {
    pub tested_at: String,
    pub passed: bool,
    pub backup_id: Option<String>,
    pub chain: Vec<String>,
    /// Wall time of the restore and its verification: the recovery time to expect.
    pub rto_seconds: f64,
    /// Uncompressed bytes of the files restored (as `restore::estimate` counts them): over
    /// `rto_seconds`, the rate a restore's estimate uses. 0 in reports written before.
    #[serde(default)]
    pub data_bytes: u64,
    pub tables: usize,
    pub rows: u64,
    pub scratch_database: String,
    pub error: Option<String>,
    /// Stopped before its deadline (the function's time limit) rather than failed.
    #[serde(default)]
    pub timed_out: bool,
    /// The binlog replay it ran on top of the full backup (where the archive was there): its
    /// row changes, transactions and seconds, the replay rate a restore's estimate uses. 0 in
    /// reports of tests without one, and written before.
    #[serde(default)]
    pub replay_row_changes: u64,
    #[serde(default)]
    pub replay_transactions: u64,
    #[serde(default)]
    pub replay_seconds: f64,
}

//! The anomaly checks: a table that lost more than a share of its rows, or a full backup that
//! shrank, between the newest backups.

use super::{Check, MonitorOptions, Status};
use crate::catalog::index::IndexEntry;
use crate::manifest::BackupKind;

/// Tables that lost rows, and backups that shrank, between the two newest comparable backups
/// (from the catalog's per-table figures: no manifest read).
pub(super) fn anomalies(verified: &[&IndexEntry], options: &MonitorOptions) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut newest_first: Vec<&IndexEntry> = verified.to_vec();
    newest_first.sort_by(|a, b| b.id.cmp(&a.id));
    if let Some(latest) = newest_first.first() {
        for (name, table) in &latest.tables {
            let previous = newest_first
                .iter()
                .skip(1)
                .find_map(|e| e.tables.get(name).map(|t| (e, t)));
            if let Some((before, old)) = previous {
                let floor = old.rows as f64 * (1.0 - options.row_drop_share);
                if old.rows > 0 && (table.rows as f64) < floor {
                    let drop = 100.0 * (old.rows - table.rows) as f64 / old.rows as f64;
                    checks.push(Check {
                        name: format!("Rows of {name}"),
                        status: Status::Critical,
                        reason: format!(
                            "table {name} lost {drop:.1} % of its rows ({} -> {}) between backups {} and {}",
                            old.rows, table.rows, before.id, latest.id
                        ),
                    });
                }
            }
        }
    }
    let fulls: Vec<&&IndexEntry> = newest_first
        .iter()
        .filter(|e| e.kind == BackupKind::Full)
        .take(2)
        .collect();
    if let [latest, previous] = fulls.as_slice() {
        if (latest.bytes as f64) < previous.bytes as f64 * options.size_share {
            checks.push(Check {
                name: "Backup size".into(),
                status: Status::Warning,
                reason: format!(
                    "full backup {} is {} bytes, under {:.0} % of the previous one ({} bytes)",
                    latest.id,
                    latest.bytes,
                    options.size_share * 100.0,
                    previous.bytes
                ),
            });
        }
    }
    if checks.is_empty() {
        checks.push(Check {
            name: "Anomalies".into(),
            status: Status::Ok,
            reason: "no table lost rows and no backup shrank".into(),
        });
    }
    checks
}

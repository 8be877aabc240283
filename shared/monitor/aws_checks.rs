//! Checks outside the backup store: the database's own protection in RDS (automated backups,
//! point-in-time recovery, the read replica) and the cross-region copy of the latest backup.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::{human_age, Check, Status};
use crate::layout::MANIFEST_NAME;
use crate::store::ObjectStore;

#[derive(Debug, Clone)]
pub struct RdsTargets {
    pub client: aws_sdk_rds::Client,
    pub instance: String,
    /// Expected read replica, if any.
    pub replica: Option<String>,
    /// The latest restorable time (PITR) may lag at most this much.
    pub max_pitr_lag: Duration,
}

async fn describe(
    client: &aws_sdk_rds::Client,
    id: &str,
) -> Result<aws_sdk_rds::types::DbInstance, String> {
    let output = client
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot describe RDS instance {id}: {}",
                aws_sdk_rds::error::DisplayErrorContext(&e)
            )
        })?;
    output
        .db_instances()
        .first()
        .cloned()
        .ok_or_else(|| format!("RDS instance {id} does not exist"))
}

pub async fn rds_checks(targets: &RdsTargets, now: DateTime<Utc>) -> Vec<Check> {
    let check = |name: &str, status, reason: String| Check {
        name: name.into(),
        status,
        reason,
    };
    let mut checks = Vec::new();
    match describe(&targets.client, &targets.instance).await {
        Err(reason) => checks.push(check("RDS backups", Status::Critical, reason)),
        Ok(instance) => {
            let retention = instance.backup_retention_period().unwrap_or(0);
            checks.push(if retention > 0 {
                check(
                    "RDS backups",
                    Status::Ok,
                    format!(
                        "automated backups on {} kept {retention} days",
                        targets.instance
                    ),
                )
            } else {
                check(
                    "RDS backups",
                    Status::Critical,
                    format!(
                        "automated backups are DISABLED on RDS instance {}",
                        targets.instance
                    ),
                )
            });
            let latest = instance
                .latest_restorable_time()
                .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
            checks.push(match latest {
                Some(t) if now - t <= targets.max_pitr_lag => check(
                    "RDS point-in-time",
                    Status::Ok,
                    format!(
                        "{} can be restored to {} ago",
                        targets.instance,
                        human_age(now - t)
                    ),
                ),
                Some(t) => check(
                    "RDS point-in-time",
                    Status::Critical,
                    format!(
                        "{}'s latest restorable time is {} ago (allowed {})",
                        targets.instance,
                        human_age(now - t),
                        human_age(targets.max_pitr_lag)
                    ),
                ),
                None => check(
                    "RDS point-in-time",
                    if retention > 0 {
                        Status::Warning
                    } else {
                        Status::Critical
                    },
                    format!(
                        "RDS reports no latest restorable time for {}",
                        targets.instance
                    ),
                ),
            });
        }
    }
    if let Some(replica) = &targets.replica {
        checks.push(match describe(&targets.client, replica).await {
            Err(reason) => check("RDS read replica", Status::Critical, reason),
            Ok(instance) => {
                let replication = instance
                    .status_infos()
                    .iter()
                    .find(|s| s.status_type() == Some("read replication"));
                match replication {
                    Some(info)
                        if info.normal() == Some(false) || info.status() != Some("replicating") =>
                    {
                        check(
                            "RDS read replica",
                            Status::Critical,
                            format!(
                                "replica {replica} is {}",
                                info.status().unwrap_or("in an unknown state")
                            ),
                        )
                    }
                    _ if instance.db_instance_status() != Some("available") => check(
                        "RDS read replica",
                        Status::Critical,
                        format!(
                            "replica {replica} is {}",
                            instance.db_instance_status().unwrap_or("unknown")
                        ),
                    ),
                    _ => check(
                        "RDS read replica",
                        Status::Ok,
                        format!("replica {replica} is available and replicating"),
                    ),
                }
            }
        });
    }
    checks
}

/// The latest backup's manifest is in the replica store, byte for byte.
pub async fn replica_check(
    source: &dyn ObjectStore,
    replica: &Arc<dyn ObjectStore>,
    latest_prefix: Option<&str>,
) -> Check {
    let check = |status, reason: String| Check {
        name: "Cross-region copy".into(),
        status,
        reason,
    };
    let Some(prefix) = latest_prefix else {
        return check(
            Status::Warning,
            "no backup to look for in the replica yet".into(),
        );
    };
    let key = format!("{prefix}{MANIFEST_NAME}");
    let (here, there) = (source.get(&key).await, replica.get(&key).await);
    match (here, there) {
        (Ok(Some(a)), Ok(Some(b))) if a == b => check(Status::Ok, format!("{key} is in {replica}")),
        (Ok(Some(_)), Ok(Some(_))) => {
            check(Status::Critical, format!("{key} differs in {replica}"))
        }
        (_, Ok(None)) => check(
            Status::Critical,
            format!("{key} is not in the replica {replica} (replication stalled?)"),
        ),
        (_, Err(e)) => check(
            Status::Critical,
            format!("the replica {replica} cannot be read: {e}"),
        ),
        (Err(e), _) => check(Status::Critical, format!("{key} cannot be read here: {e}")),
        (Ok(None), _) => check(Status::Critical, format!("{key} vanished while checking")),
    }
}

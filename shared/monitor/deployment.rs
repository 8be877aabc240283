//! The deployment's AWS side, as `doctor` and the monitor check it: the backup bucket's
//! protection (versioning, Object Lock, default encryption, replication, lifecycle), the alert
//! topic's subscriptions, and the RDS instance's backups and parameter group. The monitor runs
//! the bucket and topic checks on every run (`MONITOR_DEPLOYMENT_CHECKS`): a few requests, and a
//! protection switched off by hand is an alert within 15 minutes.

use aws_sdk_s3::Client as S3Client;

use super::{Check, Status};

/// What the monitor checks of the deployment besides the backups.
#[derive(Debug, Clone)]
pub struct DeploymentTargets {
    pub s3: S3Client,
    pub bucket: String,
    /// The store's prefix in the bucket, where the newest manifest is looked up.
    pub prefix: String,
    /// The alert topic, whose subscriptions must be confirmed.
    pub topic: Option<(aws_sdk_sns::Client, String)>,
}

/// The bucket's and the topic's checks; `latest_manifest` is the newest backup's manifest key
/// within the store (its replication status is read).
pub async fn deployment_checks(
    targets: &DeploymentTargets,
    latest_manifest: Option<&str>,
) -> Vec<Check> {
    let key = latest_manifest.map(|k| format!("{}{k}", targets.prefix));
    let mut checks = bucket_checks(&targets.s3, &targets.bucket, key.as_deref()).await;
    if let Some((client, topic)) = &targets.topic {
        checks.extend(topic_checks(client, topic).await);
    }
    checks
}

fn check(name: &str, status: Status, reason: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status,
        reason: reason.into(),
    }
}

/// The error's code (AccessDenied, NoSuchBucket, …) or HTTP status: never a message body.
fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> String {
    e.as_service_error()
        .and_then(|s| s.code())
        .map(str::to_string)
        .or_else(|| {
            e.raw_response()
                .map(|r| format!("HTTP {}", r.status().as_u16()))
        })
        .unwrap_or_else(|| "no answer".into())
}

/// An AWS error as its code and message (`DBInstanceNotFound: DBInstance x not found.`), or
/// the HTTP status: never the whole raw answer.
fn service_error<
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> String {
    match e.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("no message")
        ),
        None => aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
    }
}

/// GetBucketVersioning's `Status` read from an answer the SDK could not parse: moto (the
/// tests' S3) names the answer's root element differently from S3, which the SDK refuses. No
/// Status element: versioning was never enabled.
fn status_element<E>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Option<String> {
    let raw = e.raw_response().filter(|r| r.status().as_u16() == 200)?;
    let body = std::str::from_utf8(raw.body().bytes()?).ok()?;
    let status = body
        .split_once("<Status>")
        .and_then(|(_, rest)| rest.split_once("</Status>"))
        .map(|(status, _)| status.trim().to_string());
    Some(status.unwrap_or_else(|| "off".into()))
}

/// The bucket's settings the strategy depends on; `latest_key` (a recent manifest) is looked
/// at for its replication status.
pub async fn bucket_checks(
    client: &S3Client,
    bucket: &str,
    latest_key: Option<&str>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Err(e) = client.head_bucket().bucket(bucket).send().await {
        checks.push(check(
            "bucket",
            Status::Critical,
            format!("s3://{bucket} cannot be reached ({}): deploy the stack, or pass its BackupBucketName", code(&e)),
        ));
        return checks;
    }
    checks.push(check("bucket", Status::Ok, format!("s3://{bucket} exists")));

    let versioning = match client.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) => Ok(v.status().map_or("off", |s| s.as_str()).to_string()),
        Err(e) => status_element(&e).ok_or_else(|| code(&e)),
    };
    checks.push(match versioning {
        Ok(status) if status == "Enabled" => check(
            "bucket versioning",
            Status::Ok,
            format!("versioning is {status}"),
        ),
        Ok(status) => check(
            "bucket versioning",
            Status::Critical,
            format!(
                "versioning is {status} on s3://{bucket}: a deleted or overwritten backup is \
                 gone; enable it (the stack does)"
            ),
        ),
        Err(code) => check(
            "bucket versioning",
            Status::Warning,
            format!("cannot read versioning ({code})"),
        ),
    });

    checks.push(match client
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(lock) => {
            let config = lock.object_lock_configuration();
            let enabled = config
                .and_then(|c| c.object_lock_enabled())
                .map(|e| e.as_str())
                == Some("Enabled");
            let default = config
                .and_then(|c| c.rule())
                .and_then(|r| r.default_retention());
            match (enabled, default) {
                (true, Some(d)) => check(
                    "bucket Object Lock",
                    Status::Ok,
                    format!(
                        "Object Lock on, {} {} days by default",
                        d.mode().map_or("?", |m| m.as_str()),
                        d.days().unwrap_or(0)
                    ),
                ),
                (true, None) => check(
                    "bucket Object Lock",
                    Status::Warning,
                    "Object Lock is on with no default retention: a new object may be deleted at once",
                ),
                (false, _) => check(
                    "bucket Object Lock",
                    Status::Critical,
                    format!("Object Lock is off on s3://{bucket}: anyone with delete rights can erase the backups; it can only be set on a new bucket (the stack's)"),
                ),
            }
        }
        Err(e) => check(
            "bucket Object Lock",
            Status::Critical,
            format!(
                "no Object Lock on s3://{bucket} ({}): anyone with delete rights can erase the \
                 backups; it can only be set on a new bucket (the stack's)",
                code(&e)
            ),
        ),
    });

    checks.push(match client.get_bucket_encryption().bucket(bucket).send().await {
        Ok(answer) => {
            let default = answer
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                .and_then(|r| r.apply_server_side_encryption_by_default());
            let algorithm = default.map(|d| d.sse_algorithm().as_str().to_string());
            let key = default.and_then(|d| d.kms_master_key_id());
            match (algorithm.as_deref(), key) {
                (Some("aws:kms"), Some(key)) => check(
                    "bucket encryption",
                    Status::Ok,
                    format!("SSE-KMS by default with key {key}"),
                ),
                (other, _) => check(
                    "bucket encryption",
                    Status::Critical,
                    format!(
                        "default encryption is {}, not SSE-KMS with the backup key: the replica \
                         cannot decrypt and the key's access rules do not apply; set the \
                         bucket's default encryption to aws:kms with the stack's BackupKey",
                        other.unwrap_or("none")
                    ),
                ),
            }
        }
        Err(e) => check(
            "bucket encryption",
            Status::Critical,
            format!("no default encryption on s3://{bucket} ({}); set aws:kms with the stack's BackupKey", code(&e)),
        ),
    });

    checks.push(match client.get_bucket_replication().bucket(bucket).send().await {
        Ok(answer) => {
            let rules = answer
                .replication_configuration()
                .map(|c| c.rules().len())
                .unwrap_or(0);
            let status = match latest_key {
                Some(key) => match client.head_object().bucket(bucket).key(key).send().await {
                    Ok(head) => head.replication_status().map(|s| s.as_str().to_string()),
                    Err(_) => None,
                },
                None => None,
            };
            match status.as_deref() {
                Some("FAILED") => check(
                    "bucket replication",
                    Status::Critical,
                    format!("replication of {} FAILED: check the replication role and the replica key", latest_key.unwrap_or("")),
                ),
                Some(s) => check(
                    "bucket replication",
                    Status::Ok,
                    format!("{rules} replication rules; the newest manifest is {s}"),
                ),
                None => check("bucket replication", Status::Ok, format!("{rules} replication rules")),
            }
        }
        Err(e) => check(
            "bucket replication",
            Status::Critical,
            format!(
                "no replication on s3://{bucket} ({}): a regional outage or a lost bucket \
                 leaves no copy; deploy infra/replica.yaml and give the stack its outputs",
                code(&e)
            ),
        ),
    });

    checks.push(
        match client
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(answer) if !answer.rules().is_empty() => check(
                "bucket lifecycle",
                Status::Ok,
                format!("{} lifecycle rules", answer.rules().len()),
            ),
            Ok(_) | Err(_) => check(
                "bucket lifecycle",
                Status::Warning,
                format!(
                "no lifecycle rules on s3://{bucket}: nothing moves to Glacier or expires, and \
                 failed runs' leftovers stay; the stack sets them"
            ),
            ),
        },
    );
    checks
}

/// The alert topic must have a confirmed subscription: until someone confirms, every alert
/// is dropped.
pub async fn topic_checks(client: &aws_sdk_sns::Client, topic_arn: &str) -> Vec<Check> {
    const NAME: &str = "alert subscriptions";
    let mut confirmed = Vec::new();
    let mut pending = 0;
    let mut pages = client
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => {
                for subscription in page.subscriptions() {
                    match subscription.subscription_arn() {
                        Some(arn) if arn.starts_with("arn:") => confirmed.push(format!(
                            "{} {}",
                            subscription.protocol().unwrap_or("?"),
                            subscription.endpoint().unwrap_or("?")
                        )),
                        _ => pending += 1,
                    }
                }
            }
            Err(e) => {
                return vec![check(
                    NAME,
                    Status::Critical,
                    format!(
                        "cannot list the subscriptions of {topic_arn}: {}",
                        service_error(&e)
                    ),
                )]
            }
        }
    }
    vec![match (confirmed.len(), pending) {
        (0, 0) => check(
            NAME,
            Status::Critical,
            format!("{topic_arn} has no subscription: no alert reaches anyone; set AlertEmail on the stack"),
        ),
        (0, p) => check(
            NAME,
            Status::Critical,
            format!("{p} subscription(s) of {topic_arn} are pending confirmation and none is confirmed: every alert is dropped until someone clicks the link in AWS's email"),
        ),
        (_, 0) => check(NAME, Status::Ok, format!("confirmed: {}", confirmed.join(", "))),
        (_, p) => check(
            NAME,
            Status::Warning,
            format!("confirmed: {}; {p} more pending confirmation (click the link in AWS's email)", confirmed.join(", ")),
        ),
    }]
}

/// The RDS instance: automated backups kept, the parameter group applied (no pending reboot)
/// and holding the values the jobs need.
pub async fn rds_checks(client: &aws_sdk_rds::Client, instance: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let described = client
        .describe_db_instances()
        .db_instance_identifier(instance)
        .send()
        .await;
    let db = match described {
        Ok(answer) => match answer.db_instances().first() {
            Some(db) => db.clone(),
            None => {
                return vec![check(
                    "RDS instance",
                    Status::Critical,
                    format!("RDS instance {instance} does not exist"),
                )]
            }
        },
        Err(e) => {
            return vec![check(
                "RDS instance",
                Status::Critical,
                format!(
                    "cannot describe RDS instance {instance}: {}",
                    service_error(&e)
                ),
            )]
        }
    };
    let retention = db.backup_retention_period().unwrap_or(0);
    checks.push(match retention {
        0 => check(
            "RDS backup retention",
            Status::Critical,
            format!("automated backups are off on {instance} (and with them the binlog): set a backup retention of 7 days or more"),
        ),
        r if r < 7 => check(
            "RDS backup retention",
            Status::Warning,
            format!("{instance} keeps automated backups {r} days; the strategy asks for 7 or more"),
        ),
        r => check("RDS backup retention", Status::Ok, format!("{instance} keeps automated backups {r} days")),
    });
    for group in db.db_parameter_groups() {
        let name = group.db_parameter_group_name().unwrap_or("?").to_string();
        let status = group.parameter_apply_status().unwrap_or("?");
        checks.push(if status == "in-sync" {
            check("RDS parameter group", Status::Ok, format!("{name} is in-sync"))
        } else {
            check(
                "RDS parameter group",
                Status::Warning,
                format!("{name} is {status}: reboot {instance} to apply it (aws rds reboot-db-instance)"),
            )
        });
        checks.extend(parameter_checks(client, &name).await);
    }
    checks
}

/// The parameter values a group must hold (what `doctor`'s server checks read live).
pub const PARAMETERS: [(&str, &str); 4] = [
    ("binlog_format", "ROW"),
    ("binlog_row_image", "FULL"),
    ("binlog_row_metadata", "FULL"),
    ("log_bin_trust_function_creators", "1"),
];

async fn parameter_checks(client: &aws_sdk_rds::Client, group: &str) -> Vec<Check> {
    let mut values = std::collections::BTreeMap::new();
    let mut pages = client
        .describe_db_parameters()
        .db_parameter_group_name(group)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => {
                for p in page.parameters() {
                    if let (Some(name), value) = (p.parameter_name(), p.parameter_value()) {
                        values.insert(name.to_string(), value.map(str::to_string));
                    }
                }
            }
            Err(e) => {
                return vec![check(
                    "RDS parameters",
                    Status::Warning,
                    format!("cannot read parameter group {group}: {}", service_error(&e)),
                )]
            }
        }
    }
    let wrong: Vec<String> = PARAMETERS
        .iter()
        .filter(|(name, wanted)| {
            values
                .get(*name)
                .and_then(|v| v.as_deref())
                .is_none_or(|v| !v.eq_ignore_ascii_case(wanted))
        })
        .map(|(name, wanted)| {
            let now = values
                .get(*name)
                .and_then(|v| v.as_deref())
                .unwrap_or("the default");
            format!("{name} is {now} (set {wanted})")
        })
        .collect();
    vec![if wrong.is_empty() {
        check(
            "RDS parameters",
            Status::Ok,
            format!("{group} sets the binlog and function settings the jobs need"),
        )
    } else {
        check(
            "RDS parameters",
            Status::Critical,
            format!(
                "parameter group {group}: {}; set them with aws rds modify-db-parameter-group (the README's deploy checklist, step 2)",
                wrong.join(", ")
            ),
        )
    }]
}

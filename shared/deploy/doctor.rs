//! `toc-backup doctor`: the deployment checked in one command, one finding per line naming the
//! setting and its fix. The database server's settings the jobs rely on and each project
//! user's grants here; the bucket, the alert topic and the RDS instance in [`crate::monitor::deployment`].

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::users::{Flavour, Names, Role, Scope, FORBIDDEN_PRIVILEGES};
use crate::monitor::{Check, Status};
use crate::mysql::grant::Grants;
use crate::mysql::quote_str;

fn check(name: &str, status: Status, reason: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status,
        reason: reason.into(),
    }
}

/// Where a server setting is changed: RDS's parameter group, or the server's own options.
const FIX: &str = "in the DB parameter group (RDS) or the server's options";

/// The server's binlog and TLS settings the jobs rely on.
pub async fn server_checks(conn: &mut Conn) -> Vec<Check> {
    let variables: Vec<(String, String)> = match conn
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', \
             'binlog_row_image', 'binlog_row_metadata', 'log_bin_trust_function_creators', \
             'require_secure_transport', 'binlog_expire_logs_seconds', 'expire_logs_days', \
             'version')",
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            return vec![check(
                "server settings",
                Status::Critical,
                format!("cannot read the server's variables: {e}"),
            )]
        }
    };
    let variables: BTreeMap<String, String> = variables.into_iter().collect();
    let value = |name: &str| variables.get(name).map(|v| v.to_ascii_uppercase());
    let mut checks = Vec::new();
    let log_bin = value("log_bin").as_deref() == Some("ON");
    checks.push(if log_bin {
        check("binlog", Status::Ok, "log_bin is ON")
    } else {
        check(
            "binlog",
            Status::Critical,
            "log_bin is OFF: no binlog, so no point-in-time recovery; on RDS set the instance's \
             backup retention above 0 (that turns the binlog on)",
        )
    });
    for (name, wanted, why) in [
        (
            "binlog_format",
            "ROW",
            "the archive replays row events only",
        ),
        (
            "binlog_row_image",
            "FULL",
            "an UPDATE or DELETE is replayed by its whole before-image",
        ),
        (
            "binlog_row_metadata",
            "FULL",
            "the replay names columns from the binlog, not from a guess",
        ),
    ] {
        checks.push(match value(name) {
            Some(v) if v == wanted => check(name, Status::Ok, format!("{name} is {v}")),
            Some(v) => check(
                name,
                if log_bin {
                    Status::Critical
                } else {
                    Status::Warning
                },
                format!("{name} is {v}; set {name}={wanted} {FIX} ({why})"),
            ),
            None => check(
                name,
                Status::Warning,
                format!("this server has no {name} (expected {wanted}: {why})"),
            ),
        });
    }
    checks.push(match value("log_bin_trust_function_creators").as_deref() {
        Some("ON") | Some("1") => check(
            "log_bin_trust_function_creators",
            Status::Ok,
            "log_bin_trust_function_creators is ON",
        ),
        _ if !log_bin => check(
            "log_bin_trust_function_creators",
            Status::Ok,
            "log_bin_trust_function_creators is OFF, which matters only with the binlog on",
        ),
        other => check(
            "log_bin_trust_function_creators",
            Status::Critical,
            format!(
                "log_bin_trust_function_creators is {}; set log_bin_trust_function_creators=1 \
                 {FIX}: without SUPER, restores cannot create functions or triggers on a \
                 binlog-on server (ERROR 1419), so the monthly restore test fails",
                other.unwrap_or("unknown")
            ),
        ),
    });
    checks.push(match value("require_secure_transport").as_deref() {
        Some("ON") | Some("1") => {
            check("TLS required", Status::Ok, "require_secure_transport is ON")
        }
        other => check(
            "TLS required",
            Status::Warning,
            format!(
                "require_secure_transport is {}: the server also accepts plain-text \
                 connections (the functions always use TLS); set require_secure_transport=1 {FIX}",
                other.unwrap_or("unknown")
            ),
        ),
    });
    if log_bin {
        checks.push(binlog_retention(conn, &variables).await);
    }
    checks
}

/// How long the server keeps its binlog: the archive runs every 5 minutes, and a server that
/// purges a file before it is archived leaves a gap no restore can cross.
async fn binlog_retention(conn: &mut Conn, variables: &BTreeMap<String, String>) -> Check {
    const NAME: &str = "binlog retention";
    // RDS keeps binlogs only as its own configuration says (NULL: purged within minutes).
    /// A row of `mysql.rds_show_configuration`: name, value, description.
    type RdsSetting = (String, Option<String>, Option<String>);
    let rds: Result<Vec<RdsSetting>, _> = conn.query("CALL mysql.rds_show_configuration").await;
    if let Ok(rows) = rds {
        let hours = rows
            .iter()
            .find(|(name, _, _)| name.eq_ignore_ascii_case("binlog retention hours"))
            .and_then(|(_, value, _)| value.as_deref())
            .filter(|v| !v.eq_ignore_ascii_case("NULL"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        let fix =
            "CALL mysql.rds_set_configuration('binlog retention hours', 168) as the master user";
        return match hours {
            None => check(
                NAME,
                Status::Critical,
                format!("RDS binlog retention hours is NULL: RDS purges each binlog within minutes, before the archive may read it; {fix}"),
            ),
            Some(h) if h < 24 => check(
                NAME,
                Status::Warning,
                format!("RDS keeps binlogs {h} hours: an archive outage longer than that leaves a gap; {fix}"),
            ),
            Some(h) => check(NAME, Status::Ok, format!("RDS keeps binlogs {h} hours")),
        };
    }
    let seconds = variables
        .get("binlog_expire_logs_seconds")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .or_else(|| {
            variables
                .get("expire_logs_days")
                .and_then(|v| v.parse::<f64>().ok())
                .map(|days| (days * 86_400.0) as u64)
        })
        .unwrap_or(0);
    match seconds {
        0 => check(NAME, Status::Ok, "binlogs are kept until purged by hand"),
        s if s < 86_400 => check(
            NAME,
            Status::Warning,
            format!(
                "binlogs are purged after {} hours: an archive outage longer than that leaves a \
                 gap; set binlog_expire_logs_seconds=604800 {FIX}",
                s / 3600
            ),
        ),
        s => check(
            NAME,
            Status::Ok,
            format!("binlogs are kept {} hours", s / 3600),
        ),
    }
}

/// Each project user's grants against what its job needs, and nothing that lets it act as
/// another account. Reading another user's grants needs SELECT on `mysql` (the master has it).
pub async fn user_checks(conn: &mut Conn, names: &Names) -> Vec<Check> {
    let version: Option<String> = conn.query_first("SELECT VERSION()").await.ok().flatten();
    let flavour = version.map_or(Flavour::MariaDb, |v| Flavour::of_version(&v));
    let mut checks = Vec::new();
    for role in Role::ALL {
        let user = role.user();
        let name = format!("user {user}");
        let lines: Vec<String> = match conn
            .query(format!("SHOW GRANTS FOR {}@'%'", quote_str(user)))
            .await
        {
            Ok(lines) => lines,
            Err(e) if crate::mysql::server_code(&e) == Some(1141) => {
                checks.push(check(
                    &name,
                    Status::Critical,
                    format!(
                        "{user}@'%' does not exist: the {} cannot connect; run toc-backup setup-users",
                        role.jobs()
                    ),
                ));
                continue;
            }
            Err(e) => {
                checks.push(check(
                    &name,
                    Status::Warning,
                    format!("cannot read {user}'s grants (connect as the master user): {e}"),
                ));
                continue;
            }
        };
        let grants = Grants::parse(lines.iter().map(String::as_str));
        // A name the restore test would give a scratch database: what its grants must match.
        let scratch = format!("{}_20260101000000", names.scratch_prefix);
        let mut problems = Vec::new();
        for grant in role.privileges(flavour) {
            for privilege in grant.list {
                let held = match grant.scope {
                    Scope::Server => grants.has_global(privilege),
                    Scope::Database => grants.has(&names.database, privilege),
                    Scope::ScratchDatabases => grants.has(&scratch, privilege),
                    Scope::RoutineBodies => grants.has_on_table("mysql", "proc", privilege),
                };
                if !held {
                    problems.push(format!(
                        "lacks {privilege} on {}",
                        names.target(grant.scope)
                    ));
                }
            }
        }
        for privilege in FORBIDDEN_PRIVILEGES {
            if grants.has_global(privilege)
                || grants.has(&names.database, privilege)
                || grants.has(&scratch, privilege)
            {
                problems.push(format!("holds {privilege}, which no project user may"));
            }
        }
        checks.push(if problems.is_empty() {
            check(
                &name,
                Status::Ok,
                format!(
                    "{user} holds what its jobs ({}) need and nothing more",
                    role.jobs()
                ),
            )
        } else {
            check(
                &name,
                Status::Critical,
                format!(
                    "{user} {}; run toc-backup setup-users (it grants exactly the list)",
                    problems.join(", ")
                ),
            )
        });
    }
    checks
}

/// What `doctor` is to look at; each part that is None is left out (and said so).
pub struct DoctorTargets<'a> {
    pub database: Option<&'a mut Conn>,
    pub names: Names,
    /// The store's location (`s3://BUCKET/PREFIX` or a folder).
    pub store: Option<String>,
    pub sns: Option<(aws_sdk_sns::Client, String)>,
    pub rds: Option<(aws_sdk_rds::Client, String)>,
}

/// Every check of the deployment, in the order a DBA fixes them: server, users, store,
/// alerts, RDS.
pub async fn run_doctor(targets: DoctorTargets<'_>) -> crate::Result<Vec<Check>> {
    let mut checks = Vec::new();
    match targets.database {
        Some(conn) => {
            checks.extend(server_checks(conn).await);
            checks.extend(user_checks(conn, &targets.names).await);
        }
        None => checks.push(check(
            "database server",
            Status::Warning,
            "not checked: pass --database-url as the master user",
        )),
    }
    match targets.store.as_deref() {
        Some(location) if location.trim().starts_with("s3://") => {
            let (bucket, prefix) = crate::store::s3::parse_location(location.trim())?;
            let settings = crate::store::s3::S3Settings::from_env()?;
            let (client, _) = crate::store::s3::client_for_bucket(&settings.retry, &bucket).await;
            let store = crate::store::open_store(location).await?;
            let latest = crate::catalog::resolve(store.as_ref(), "latest")
                .await
                .ok()
                .map(|m| format!("{prefix}{}", crate::layout::manifest_key(&m.backup_id)));
            checks.extend(
                crate::monitor::deployment::bucket_checks(&client, &bucket, latest.as_deref())
                    .await,
            );
        }
        Some(location) => checks.push(check(
            "store",
            Status::Warning,
            format!(
                "{location} is a local folder: no versioning, Object Lock, encryption or \
                 replication; production keeps its backups in the stack's bucket"
            ),
        )),
        None => checks.push(check("store", Status::Warning, "not checked: pass --store")),
    }
    match &targets.sns {
        Some((client, topic)) => {
            checks.extend(crate::monitor::deployment::topic_checks(client, topic).await)
        }
        None => checks.push(check(
            "alert subscriptions",
            Status::Warning,
            "not checked: pass --sns-topic-arn (the stack's AlertTopicArn output)",
        )),
    }
    if let Some((client, instance)) = &targets.rds {
        checks.extend(crate::monitor::deployment::rds_checks(client, instance).await);
    }
    Ok(checks)
}

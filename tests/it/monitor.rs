//! Issue 5: the monitor's checks (freshness per tier with an injected clock, integrity, anomalies),
//! its alerts (one per change, reminders, all-clear, read back from SNS), the restore test, and
//! the monitor and restore-test handlers with their sample events.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::*;
use chrono::{DateTime, Utc};
use mysql_async::prelude::Queryable;
use toc_sis_backup::lambda::monitor::MonitorFunction;
use toc_sis_backup::lambda::restore_test::RestoreTestFunction;
use toc_sis_backup::lambda::Env;
use toc_sis_backup::manifest::Manifest;

fn status(store: &Path, now: Option<DateTime<Utc>>) -> serde_json::Value {
    let mut args = vec![
        "status".to_string(),
        "--store".into(),
        store.to_str().unwrap_or_default().into(),
        "--json".into(),
    ];
    if let Some(now) = now {
        args.push("--now".into());
        args.push(now.to_rfc3339());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run_cli(&args, &[]);
    exits_by_status(&output)
}

/// The report, after checking the exit status says its overall status the way monitoring
/// agents read it: 0 OK, 1 WARNING, 2 CRITICAL.
fn exits_by_status(output: &std::process::Output) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("a JSON report ({e}):\n{}", text(output)));
    let expected = match report["status"].as_str() {
        Some("OK") => 0,
        Some("WARNING") => 1,
        Some("CRITICAL") => 2,
        other => panic!("overall status {other:?}"),
    };
    assert_eq!(output.status.code(), Some(expected), "{}", text(output));
    report
}

/// The checks of `report` that are not OK, by name, other than those of what is not deployed
/// (which read "not configured": a WARNING that is a decision, not a failure).
fn failing(report: &serde_json::Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] != "OK")
        .filter(|c| {
            c["status"] != "WARNING"
                || !c["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("not configured")
        })
        .map(|c| format!("{}: {}", c["name"], c["reason"]))
        .collect()
}

/// `name` reads "not configured: …" naming `fragment`, a WARNING: never OK.
fn assert_not_configured(report: &serde_json::Value, name: &str, fragment: &str) {
    let c = check(report, name);
    assert_eq!(c["status"], "WARNING", "{name} must not read OK: {c}");
    let reason = c["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("not configured: ") && reason.contains(fragment),
        "{c}"
    );
}

async fn sample_with_chain(store: &Path) -> String {
    let source = unique_name("monitored");
    assert_ok(&run_cli(
        &["sample-data", "--database-url", &url_for(&source)],
        &[],
    ));
    assert_ok(&dump(&source, store));
    assert_ok(&run_cli(
        &[
            "incremental",
            "--database-url",
            &url_for(&source),
            "--store",
            store.to_str().unwrap_or_default(),
        ],
        &[],
    ));
    source
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_integrity_and_anomalies() {
    let store = tempfile::tempdir().expect("temp dir");
    let empty = status(store.path(), None);
    for tier in ["Tier 1", "Tier 2", "Tier 3"] {
        let c = check(&empty, &format!("{tier} freshness"));
        assert_eq!(c["status"], "CRITICAL", "{empty}");
        assert!(
            c["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("no verified backup"),
            "{c}"
        );
    }

    let source = sample_with_chain(store.path()).await;
    let now = Utc::now();
    let fresh = status(store.path(), Some(now));
    // Every backup is fresh; what this store was never given (file snapshots for Tier 3's
    // documents, a binlog archive) is "not configured", a WARNING: never OK.
    assert_eq!(fresh["status"], "WARNING", "{fresh}");
    assert_eq!(failing(&fresh), Vec::<String>::new(), "{fresh}");
    for (name, fragment) in [
        ("Tier 3 freshness", "Tier 3's file snapshots: none in"),
        ("Binlog archive", "no binlog archive in"),
    ] {
        assert_not_configured(&fresh, name, fragment);
    }
    for (minutes, stale) in [
        (61, vec!["Tier 1"]),
        (241, vec!["Tier 1", "Tier 2"]),
        (1441, vec!["Tier 1", "Tier 2", "Tier 3"]),
    ] {
        let later = status(store.path(), Some(now + chrono::Duration::minutes(minutes)));
        for tier in ["Tier 1", "Tier 2", "Tier 3"] {
            let expected = match (stale.contains(&tier), tier) {
                (true, _) => "CRITICAL",
                // Its tables are fresh, its documents not configured.
                (false, "Tier 3") => "WARNING",
                (false, _) => "OK",
            };
            assert_eq!(
                check(&later, &format!("{tier} freshness"))["status"],
                expected,
                "{tier} after {minutes} min: {later}"
            );
        }
    }
    let reason = check(
        &status(store.path(), Some(now + chrono::Duration::minutes(133))),
        "Tier 1 freshness",
    )["reason"]
        .clone();
    assert!(
        reason
            .as_str()
            .unwrap_or_default()
            .contains("Tier 1 last verified backup 2 h 13 min ago"),
        "{reason}"
    );

    // Deleting 10 % of a table between two backups.
    connect_to(&source)
        .await
        .query_drop("DELETE FROM system_logs WHERE id % 10 = 0")
        .await
        .expect("delete");
    assert_ok(&dump(&source, store.path()));
    let anomalous = status(store.path(), None);
    let rows = check(&anomalous, "Rows of system_logs");
    assert_eq!(rows["status"], "CRITICAL");
    assert!(
        rows["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("table system_logs lost 10.0 % of its rows"),
        "{rows}"
    );

    // A corrupted (resized) file, a missing file, a missing manifest: named.
    let latest = only_backup_dir(store.path());
    let data_file = std::fs::read_dir(&latest)
        .expect("dir")
        .map(|e| e.expect("e").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("students"))
                && p.to_string_lossy().ends_with(".sql.gz")
        })
        .expect("students file");
    let original = std::fs::read(&data_file).expect("read");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&data_file)
        .expect("open")
        .write_all(b"x")
        .expect("append");
    let damaged = check(&status(store.path(), None), "Integrity").clone();
    assert_eq!(damaged["status"], "CRITICAL");
    let name = data_file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(
        damaged["reason"]
            .as_str()
            .unwrap_or_default()
            .contains(&name),
        "{damaged}"
    );
    std::fs::remove_file(&data_file).expect("remove");
    let missing = check(&status(store.path(), None), "Integrity").clone();
    assert!(
        missing["reason"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("{name} is missing")),
        "{missing}"
    );
    std::fs::write(&data_file, &original).expect("put back");
    assert_eq!(
        check(&status(store.path(), None), "Integrity")["status"],
        "OK"
    );
    // A sealed backup (in the catalog) whose manifest disappeared afterwards.
    std::fs::remove_file(latest.join("manifest.json")).expect("remove manifest");
    let vanished = check(&status(store.path(), None), "Integrity").clone();
    assert_eq!(vanished["status"], "CRITICAL");
    assert!(
        vanished["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("lists this backup as complete but its manifest is gone"),
        "{vanished}"
    );
    // A run that never wrote its manifest: not in the catalog, found as newer than it.
    assert_ok(&run_cli(
        &[
            "catalog",
            "rebuild",
            "--store",
            store.path().to_str().unwrap_or_default(),
        ],
        &[],
    ));
    let unfinished = check(
        &status(store.path(), Some(Utc::now() + chrono::Duration::hours(2))),
        "Integrity",
    )
    .clone();
    assert_eq!(unfinished["status"], "CRITICAL");
    assert!(
        unfinished["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("manifest.json is missing"),
        "{unfinished}"
    );
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alert_per_change_then_a_reminder_then_all_clear() {
    let store = tempfile::tempdir().expect("temp dir");
    let alerts = aws::Alerts::new().await;
    let source = sample_with_chain(store.path()).await;
    let t0 = Utc::now() + chrono::Duration::days(2);
    let run = |at: DateTime<Utc>| {
        let output = run_cli(
            &[
                "monitor",
                "--store",
                store.path().to_str().unwrap_or_default(),
                "--now",
                &at.to_rfc3339(),
                "--json",
            ],
            &[("SNS_TOPIC_ARN", &alerts.topic_arn)],
        );
        exits_by_status(&output)
    };
    assert_eq!(run(t0)["alerted"], true);
    assert_eq!(
        run(t0 + chrono::Duration::minutes(15))["alerted"],
        false,
        "the same state must not alert twice"
    );
    assert_eq!(
        run(t0 + chrono::Duration::hours(4))["alerted"],
        true,
        "a reminder after the interval"
    );
    assert_eq!(run(Utc::now())["alerted"], true, "the all-clear");
    let subjects: Vec<String> = alerts
        .received()
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    // SQS does not promise order: look for each alert, and count them.
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    let has = |wanted: &str| subjects.iter().any(|s| s.contains(wanted));
    assert!(
        has("[TOC-SIS backup] CRITICAL: Tier 1 last verified backup 2 d"),
        "{subjects:?}"
    );
    assert!(has("CRITICAL: reminder: Tier 1"), "{subjects:?}");
    assert!(has("OK: all clear"), "{subjects:?}");
    drop_database(&source).await;
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restore_test_passes_on_a_good_backup_and_names_an_altered_table() {
    let store = tempfile::tempdir().expect("temp dir");
    let source = sample_with_chain(store.path()).await;
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    let passed = run_cli(
        &[
            "restore-test",
            "--database-url",
            &server_url(),
            "--store",
            &store_arg,
            "--json",
        ],
        &[],
    );
    assert_ok(&passed);
    let report: serde_json::Value = serde_json::from_slice(&passed.stdout).expect("json");
    assert_eq!(report["passed"], true);
    assert!(
        report["rto_seconds"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
    let scratch = report["scratch_database"]
        .as_str()
        .expect("scratch")
        .to_string();
    let left: Option<String> = admin()
        .await
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (&scratch,),
        )
        .await
        .expect("schemata");
    assert_eq!(left, None, "the scratch database must be dropped");
    let recency = status(store.path(), None);
    assert_eq!(failing(&recency), Vec::<String>::new(), "{recency}");

    // Alter a row inside the full backup's system_logs file and make every checksum agree, so only
    // the content differs: the restore test must fail and name the table.
    let daily = only_backup_dir(store.path());
    let manifest_path = daily.join("manifest.json");
    let mut manifest = Manifest::open(
        "manifest.json",
        &std::fs::read(&manifest_path).expect("manifest"),
    )
    .expect("open");
    let entry = manifest
        .files
        .iter_mut()
        .find(|f| f.table.as_deref() == Some("system_logs") && f.name.ends_with(".sql.gz"))
        .expect("system_logs file");
    let file = daily.join(&entry.name);
    let sql = String::from_utf8(gunzip(&std::fs::read(&file).expect("read"))).expect("utf8");
    assert!(
        sql.contains("'Request 1 handled in "),
        "the fixture row to alter"
    );
    let altered = gzip(
        sql.replacen("'Request 1 handled in ", "'Request 1 HANDLED in ", 1)
            .as_bytes(),
    );
    std::fs::write(&file, &altered).expect("write");
    entry.bytes = altered.len() as u64;
    entry.sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&altered));
    manifest.integrity = None;
    std::fs::write(&manifest_path, manifest.seal().expect("seal")).expect("write manifest");
    assert_ok(&run_cli(
        &[
            "verify",
            "--store",
            &store_arg,
            "--backup",
            daily
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default(),
        ],
        &[],
    ));

    let failed = run_cli(
        &[
            "restore-test",
            "--database-url",
            &server_url(),
            "--store",
            &store_arg,
        ],
        &[],
    );
    assert!(!failed.status.success(), "{}", text(&failed));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("table `system_logs` has different content than the backup"),
        "{stderr}"
    );
    assert!(stderr.contains("CRITICAL: restore test FAILED"), "{stderr}");
    let after = status(store.path(), None);
    let monitor_args = [
        "status",
        "--store",
        &store_arg,
        "--restore-test-days",
        "30",
        "--json",
    ];
    let with_recency: serde_json::Value =
        serde_json::from_slice(&run_cli(&monitor_args, &[]).stdout).expect("json");
    assert_eq!(
        check(&with_recency, "Restore test")["status"],
        "CRITICAL",
        "{after}"
    );
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_and_restore_test_handlers_run_with_the_sample_events() {
    let source = small_database("handlers").await;
    let bucket = aws::bucket("toc-monitored").await;
    let alerts = aws::Alerts::new().await;
    let store = format!("s3://{bucket}/college");
    assert_ok(&dump_into(&source, &store, &[]));
    let env: HashMap<String, String> = [
        ("BACKUP_STORE", store.clone()),
        ("SNS_TOPIC_ARN", alerts.topic_arn.clone()),
        ("DATABASE_URL", server_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let event = |name: &str| -> serde_json::Value {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/events")).join(name);
        serde_json::from_slice(&std::fs::read(path).expect("event")).expect("JSON")
    };
    let monitor = MonitorFunction::from_env(&env as &dyn Env, aws::config().await)
        .await
        .expect("monitor config");
    let report = monitor
        .run_at(event("monitor-scheduled.json"), Utc::now())
        .await
        .expect("monitor run");
    assert_eq!(check(&report, "Integrity")["status"], "OK", "{report}");
    let stale = monitor
        .run_at(
            event("monitor-scheduled.json"),
            Utc::now() + chrono::Duration::days(3),
        )
        .await
        .expect("monitor run");
    assert_eq!(stale["alerted"], true);
    assert!(monitor
        .run_at(serde_json::json!({"prefix": "x/"}), Utc::now())
        .await
        .is_err());

    let restore_test = RestoreTestFunction::from_env(&env as &dyn Env, aws::config().await)
        .await
        .expect("restore-test config");
    let deadline = Some(SystemTime::now() + Duration::from_secs(900));
    let passed = restore_test
        .handle(event("restore-test-scheduled.json"), deadline)
        .await
        .expect("restore test");
    assert_eq!(passed["passed"], true, "{passed}");
    let subjects: Vec<String> = alerts
        .received()
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("CRITICAL: Tier 1 last verified backup 3 d")),
        "{subjects:?}"
    );
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("OK: restore test passed")),
        "{subjects:?}"
    );
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("monitor function could not start")),
        "{subjects:?}"
    );
    drop_database(&source).await;
}

/// Issue 27, item 5: a job the stack did not deploy (EnableFileBackups, EnableBinlogArchive
/// "false", handed to the monitor function) reads "not configured", a WARNING, never OK, and
/// alerts nobody; deployed and without a copy, it is CRITICAL and alerted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_is_not_deployed_reads_not_configured_and_never_ok() {
    let source = small_database("optin").await;
    let bucket = aws::bucket("toc-optin").await;
    let alerts = aws::Alerts::new().await;
    let store = format!("s3://{bucket}/college");
    assert_ok(&dump_into(&source, &store, &[]));
    let monitor = |files: &str, binlog: &str| {
        let env: HashMap<String, String> = [
            ("BACKUP_STORE", store.clone()),
            ("SNS_TOPIC_ARN", alerts.topic_arn.clone()),
            ("MONITOR_FILE_BACKUPS", files.to_string()),
            ("MONITOR_BINLOG_ARCHIVE", binlog.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        async move { MonitorFunction::from_env(&env as &dyn Env, aws::config().await).await }
    };
    let scheduled: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/events/monitor-scheduled.json"
        ))
        .expect("event"),
    )
    .expect("JSON");

    let off = monitor("false", "false")
        .await
        .expect("monitor config")
        .run_at(scheduled.clone(), Utc::now())
        .await
        .expect("monitor run");
    for tier in ["Tier 1", "Tier 2"] {
        assert_eq!(
            check(&off, &format!("{tier} freshness"))["status"],
            "OK",
            "{off}"
        );
    }
    for (name, setting) in [
        ("Tier 3 freshness", "EnableFileBackups is false"),
        ("Binlog archive", "EnableBinlogArchive is false"),
    ] {
        assert_not_configured(&off, name, setting);
    }
    assert_eq!(off["status"], "WARNING", "{off}");
    assert_eq!(failing(&off), Vec::<String>::new(), "{off}");
    assert_eq!(off["alerted"], false, "a decision is not an alert: {off}");

    // Deployed, and nothing in the store: the documents and the archive have no copy.
    let on = monitor("true", "true")
        .await
        .expect("monitor config")
        .run_at(scheduled.clone(), Utc::now())
        .await
        .expect("monitor run");
    let files = check(&on, "Tier 3 freshness");
    assert_eq!(files["status"], "CRITICAL", "{on}");
    assert!(
        files["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("Tier 3 has no verified file snapshot in"),
        "{files}"
    );
    let binlog = check(&on, "Binlog archive");
    assert_eq!(binlog["status"], "CRITICAL", "{on}");
    assert!(
        binlog["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("is deployed but has never archived"),
        "{binlog}"
    );
    assert_eq!(on["alerted"], true, "{on}");
    let subjects: Vec<String> = alerts
        .received()
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(subjects[0].contains("CRITICAL"), "{subjects:?}");

    // Anything but the stack's own "true"/"false" stops the cold start, naming the value.
    let refused = monitor("yes", "false")
        .await
        .err()
        .expect("MONITOR_FILE_BACKUPS=yes refused")
        .to_string();
    assert!(
        refused.contains("MONITOR_FILE_BACKUPS") && refused.contains("\"yes\""),
        "{refused}"
    );
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_protection_and_the_cross_region_copy_are_checked() {
    let rds = aws_sdk_rds::Client::new(&aws::config().await);
    let suffix = format!("{:08x}", rand::random::<u32>());
    for (id, retention) in [
        (format!("toc-protected-{suffix}"), 7),
        (format!("toc-unprotected-{suffix}"), 0),
    ] {
        rds.create_db_instance()
            .db_instance_identifier(&id)
            .db_instance_class("db.t3.micro")
            .engine("mysql")
            .master_username("admin")
            .master_user_password("not-a-real-secret-1")
            .allocated_storage(20)
            .backup_retention_period(retention)
            .send()
            .await
            .expect("create instance");
    }
    rds.create_db_instance_read_replica()
        .db_instance_identifier(format!("toc-replica-{suffix}"))
        .source_db_instance_identifier(format!("toc-protected-{suffix}"))
        .send()
        .await
        .expect("replica");

    let source = small_database("replicated").await;
    let bucket = aws::bucket("toc-main").await;
    let replica_bucket = aws::bucket("toc-replica").await;
    let store = format!("s3://{bucket}/college");
    let replica = format!("s3://{replica_bucket}/college");
    assert_ok(&dump_into(&source, &store, &[]));
    let status_with = |instance: String, replica_instance: String| {
        let output = run_cli(
            &[
                "status",
                "--store",
                &store,
                "--rds-instance",
                &instance,
                "--rds-replica",
                &replica_instance,
                "--replica-store",
                &replica,
                "--json",
            ],
            &[],
        );
        exits_by_status(&output)
    };

    let protected = status_with(
        format!("toc-protected-{suffix}"),
        format!("toc-replica-{suffix}"),
    );
    assert_eq!(
        check(&protected, "RDS backups")["status"],
        "OK",
        "{protected}"
    );
    assert_eq!(
        check(&protected, "RDS point-in-time")["status"],
        "OK",
        "{protected}"
    );
    assert_eq!(
        check(&protected, "RDS read replica")["status"],
        "OK",
        "{protected}"
    );
    let copy = check(&protected, "Cross-region copy");
    assert_eq!(
        copy["status"], "CRITICAL",
        "nothing was replicated yet: {copy}"
    );
    assert!(
        copy["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("is not in the replica"),
        "{copy}"
    );

    let unprotected = status_with(
        format!("toc-unprotected-{suffix}"),
        format!("toc-missing-{suffix}"),
    );
    let backups = check(&unprotected, "RDS backups");
    assert_eq!(backups["status"], "CRITICAL");
    assert!(
        backups["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("automated backups are DISABLED"),
        "{backups}"
    );
    assert_eq!(
        check(&unprotected, "RDS read replica")["status"],
        "CRITICAL"
    );

    // Copy the latest manifest across, as replication would.
    aws::replicate_latest_manifest(&bucket, &replica_bucket).await;
    let replicated = status_with(
        format!("toc-protected-{suffix}"),
        format!("toc-replica-{suffix}"),
    );
    assert_eq!(
        check(&replicated, "Cross-region copy")["status"],
        "OK",
        "{replicated}"
    );
    drop_database(&source).await;
}

/// Issue 27 item 2: with MONITOR_DEPLOYMENT_CHECKS (the stack sets it) the monitor checks the
/// bucket's protections and the alert subscriptions on every run, as `doctor` does: a bare
/// bucket and a topic nobody subscribed to are each named CRITICAL, and alerted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_checks_the_buckets_protections_and_the_alert_subscription() {
    let source = small_database("deployment").await;
    let bucket = aws::bucket("toc-bare").await;
    let store = format!("s3://{bucket}/college/");
    assert_ok(&dump_into(&source, &store, &[]));
    let sns = aws_sdk_sns::Client::new(&aws::config().await);
    let topic = sns
        .create_topic()
        .name(format!("nobody-{:08x}", rand::random::<u32>()))
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_string();
    let status = |extra: &[&str]| {
        let mut args = vec!["status", "--store", &store, "--json"];
        args.extend_from_slice(extra);
        exits_by_status(&run_cli(&args, &[]))
    };
    let without = status(&[]);
    assert!(
        without["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .all(|c| !c["name"].as_str().unwrap_or_default().starts_with("bucket")),
        "not asked: {without}"
    );
    let with = status(&["--deployment-checks", "--sns-topic-arn", &topic]);
    for name in [
        "bucket versioning",
        "bucket Object Lock",
        "bucket encryption",
        "bucket replication",
        "alert subscriptions",
    ] {
        assert_eq!(check(&with, name)["status"], "CRITICAL", "{name}: {with}");
    }
    assert!(check(&with, "alert subscriptions")["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("no subscription"));
    // A folder has no bucket to check: said, not silently skipped.
    let folder = tempfile::tempdir().expect("folder");
    let refused = run_cli(
        &[
            "status",
            "--store",
            folder.path().to_str().unwrap_or_default(),
            "--deployment-checks",
        ],
        &[],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("store for --deployment-checks"),
        "{}",
        text(&refused)
    );
}

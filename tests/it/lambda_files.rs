//! Issue 7, test 5: the `files` function's handler runs with the sample events from `events/`
//! against the AWS emulator, backing up a folder and an S3 prefix into S3; the monitor's Tier 3
//! freshness counts the snapshots; bad events and configuration are refused by name.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::common::tree::{self, application_tree, describe, without_excluded};
use crate::common::*;
use toc_sis_backup::files::{
    list_snapshots, restore_snapshot, select_snapshot, FileRestoreOptions,
};
use toc_sis_backup::lambda::files::FilesFunction;
use toc_sis_backup::lambda::Env;
use toc_sis_backup::monitor::tiers::Tier;
use toc_sis_backup::monitor::{check_all, MonitorOptions, Status};
use toc_sis_backup::store::{open_store, ObjectStore};

fn event(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/events")).join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("sample event")).expect("event JSON")
}

fn env_map(pairs: &[(&str, String)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

async fn put_object(bucket: &str, key: &str, body: Vec<u8>) {
    aws::s3()
        .await
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("put object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_handler_snapshots_a_folder_and_an_s3_prefix_into_s3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let application = dir.path().join("toc-sis");
    application_tree(&application, 12);
    // An application that keeps its uploads in S3.
    let uploads_bucket = aws::bucket("toc-uploads").await;
    put_object(
        &uploads_bucket,
        "documents/2026/cv.pdf",
        tree::bytes(7, 70_000),
    )
    .await;
    put_object(
        &uploads_bucket,
        "documents/2026/with space.txt",
        b"hello\n".to_vec(),
    )
    .await;
    put_object(&uploads_bucket, "documents/empty.txt", Vec::new()).await;
    put_object(
        &uploads_bucket,
        "documents/cache/skip.tmp",
        b"excluded".to_vec(),
    )
    .await;
    put_object(
        &uploads_bucket,
        "elsewhere/not-in-prefix.pdf",
        b"x".to_vec(),
    )
    .await;

    let bucket = aws::bucket("toc-files").await;
    let alerts = aws::Alerts::new().await;
    let sources = serde_json::json!([
        {"name": "uploads", "from": format!("s3://{uploads_bucket}/documents"), "exclude": ["cache"]},
        {"name": "application", "from": application.to_str().unwrap(), "application_excludes": true},
    ]);
    let env = env_map(&[
        ("BACKUP_STORE", format!("s3://{bucket}/college")),
        ("SNS_TOPIC_ARN", alerts.topic_arn.clone()),
        ("FILES_SOURCES", sources.to_string()),
        ("FILES_KEEP_MIN", "2".into()),
    ]);
    let function = FilesFunction::from_env(&env as &dyn Env, aws::config().await)
        .await
        .expect("configuration");
    let deadline = Some(SystemTime::now() + Duration::from_secs(900));

    let scheduled = function
        .handle(event("files-scheduled.json"), deadline)
        .await
        .expect("scheduled run");
    let reports = scheduled.as_array().expect("one report per source");
    assert_eq!(reports.len(), 2, "{scheduled}");
    assert_eq!(reports[0]["source_name"], "uploads");
    assert_eq!(reports[0]["files"], 3, "{scheduled}");
    assert_eq!(reports[1]["source_name"], "application");
    assert!(
        reports[1]["new_bytes"].as_u64().unwrap() > 12 << 20,
        "{scheduled}"
    );

    let manual = function
        .handle(event("files-manual.json"), deadline)
        .await
        .expect("manual run");
    assert_eq!(manual.as_array().unwrap().len(), 1, "{manual}");
    assert_eq!(manual[0]["source_name"], "uploads");
    assert_eq!(manual[0]["new_bytes"], 0, "{manual}");
    assert_eq!(manual[0]["unchanged_not_read"], 3, "{manual}");

    let store: Arc<dyn ObjectStore> = open_store(&format!("s3://{bucket}/college"))
        .await
        .expect("store");
    let snapshots = list_snapshots(store.as_ref(), None).await.expect("list");
    assert_eq!(snapshots.len(), 3);
    let labelled = select_snapshot(store.as_ref(), Some("uploads"), "latest")
        .await
        .unwrap();
    assert_eq!(labelled.label.as_deref(), Some("before-archive-migration"));

    // Both restore from S3 exactly.
    let restored = dir.path().join("restored-app");
    let app_snapshot = select_snapshot(store.as_ref(), Some("application"), "latest")
        .await
        .unwrap();
    restore_snapshot(
        store.as_ref(),
        &app_snapshot,
        &FileRestoreOptions {
            headway: Default::default(),
            target: restored.clone(),
            paths: vec![],
            overwrite: false,
            jobs: 4,
        },
    )
    .await
    .expect("restore the application tree");
    assert_eq!(
        describe(&restored),
        without_excluded(describe(&application), tree::EXCLUDED)
    );
    let restored_uploads = dir.path().join("restored-uploads");
    restore_snapshot(
        store.as_ref(),
        &labelled,
        &FileRestoreOptions {
            headway: Default::default(),
            target: restored_uploads.clone(),
            paths: vec![],
            overwrite: false,
            jobs: 4,
        },
    )
    .await
    .expect("restore the uploads");
    assert_eq!(
        std::fs::read(restored_uploads.join("2026/cv.pdf")).unwrap(),
        tree::bytes(7, 70_000)
    );
    assert_eq!(
        std::fs::read(restored_uploads.join("2026/with space.txt")).unwrap(),
        b"hello\n"
    );
    assert_eq!(walk(&restored_uploads).len(), 3);

    // The monitor's Tier 3 freshness counts file snapshots.
    let files_tier = |sources: &[&str]| MonitorOptions {
        tiers: vec![Tier {
            name: "Tier 3".into(),
            rpo_minutes: 1440,
            tables: vec![],
            file_sources: sources.iter().map(|s| s.to_string()).collect(),
        }],
        ..MonitorOptions::default()
    };
    let now = chrono::Utc::now();
    let fresh = check_all(store.as_ref(), &files_tier(&["*"]), now)
        .await
        .unwrap();
    let tier = &fresh.checks[0];
    assert_eq!(tier.status, Status::Ok, "{tier:?}");
    let late = check_all(
        store.as_ref(),
        &files_tier(&["*"]),
        now + chrono::Duration::hours(30),
    )
    .await
    .unwrap();
    assert_eq!(
        late.checks[0].status,
        Status::Critical,
        "{:?}",
        late.checks[0]
    );
    assert!(
        late.checks[0]
            .reason
            .contains("file snapshot of application"),
        "the oldest part is named: {:?}",
        late.checks[0]
    );
    let never = check_all(store.as_ref(), &files_tier(&["payroll"]), now)
        .await
        .unwrap();
    assert_eq!(never.checks[0].status, Status::Critical);
    assert!(never.checks[0].reason.contains("file snapshot of payroll"));

    // No failure was alerted.
    let received = alerts.received().await;
    assert!(received.is_empty(), "{received:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_configuration_and_sources_are_refused_by_name() {
    let bucket = aws::bucket("toc-files-bad").await;
    let alerts = aws::Alerts::new().await;
    let base = |sources: &str| {
        env_map(&[
            ("BACKUP_STORE", format!("s3://{bucket}/college")),
            ("SNS_TOPIC_ARN", alerts.topic_arn.clone()),
            ("FILES_SOURCES", sources.to_string()),
        ])
    };
    for (sources, fragment) in [
        ("", "FILES_SOURCES is not set"),
        ("uploads=/srv", "FILES_SOURCES is not a JSON list"),
        ("[]", "FILES_SOURCES is empty"),
        (r#"[{"name": "up loads", "from": "/srv"}]"#, "\"up loads\""),
        (
            r#"[{"name": "a", "from": "/srv", "exclude": ["[x"]}]"#,
            "\"[x\"",
        ),
        (
            r#"[{"name": "a", "from": "/srv", "excludes": []}]"#,
            "unknown field `excludes`",
        ),
    ] {
        let env = base(sources);
        let error = FilesFunction::from_env(&env as &dyn Env, aws::config().await)
            .await
            .err()
            .unwrap_or_else(|| panic!("{sources} was accepted"))
            .to_string();
        assert!(error.contains(fragment), "{fragment}: {error}");
    }

    let dir = tempfile::tempdir().unwrap();
    let sources = serde_json::json!([
        {"name": "uploads", "from": dir.path().to_str().unwrap()},
        {"name": "gone", "from": "/no/such/folder"},
    ]);
    let env = base(&sources.to_string());
    let function = FilesFunction::from_env(&env as &dyn Env, aws::config().await)
        .await
        .expect("configuration");
    let deadline = Some(SystemTime::now() + Duration::from_secs(900));
    for (payload, fragment) in [
        (serde_json::json!("go"), "the payload is \"go\""),
        (
            serde_json::json!({"sources": ["payroll"]}),
            "source \"payroll\" is not configured",
        ),
        (
            serde_json::json!({"source": ["uploads"]}),
            "unknown field `source`",
        ),
    ] {
        let error = function
            .handle(payload, deadline)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(fragment), "{fragment}: {error}");
        assert!(error.contains("expected an EventBridge"), "{error}");
    }
    // One source failing does not stop the others, and the failure is alerted by name.
    let error = function
        .handle(serde_json::json!({}), deadline)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("gone") && error.contains("/no/such/folder"),
        "{error}"
    );
    let store = open_store(&format!("s3://{bucket}/college")).await.unwrap();
    let snapshots = list_snapshots(store.as_ref(), None).await.unwrap();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].source_name, "uploads");
    let received = alerts.received().await;
    assert!(
        received.iter().any(
            |(subject, body)| subject.contains("file backup of gone FAILED")
                && body.contains("/no/such/folder")
        ),
        "{received:?}"
    );
}

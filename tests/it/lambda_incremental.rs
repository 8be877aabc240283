//! Issue 4, test 5: the `incremental` function's handler runs with the sample events from
//! `events/` against the real database and the AWS emulator.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::common::*;
use mysql_async::prelude::Queryable;
use toc_sis_backup::lambda::incremental::IncrementalFunction;
use toc_sis_backup::lambda::Env;

fn event(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/events")).join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("sample event")).expect("event JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incremental_handler_starts_and_continues_a_chain_in_s3() {
    let source = unique_name("lambda_inc");
    create_database(&source).await;
    let mut conn = connect_to(&source).await;
    conn.query_drop(
        "CREATE TABLE student_grade_records (id INT PRIMARY KEY, grade DECIMAL(5,2), updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6));
         INSERT INTO student_grade_records (id, grade) SELECT seq, seq % 100 FROM seq_1_to_500;",
    )
    .await
    .expect("fixture");
    let bucket = aws::bucket("toc-hourly").await;
    let alerts = aws::Alerts::new().await;
    let env: HashMap<String, String> = [
        ("BACKUP_STORE", format!("s3://{bucket}/college")),
        ("DATABASE_URL", url_for(&source)),
        ("SNS_TOPIC_ARN", alerts.topic_arn.clone()),
        ("INCREMENTAL_TABLES", "student_grade_records".to_string()),
        ("INCREMENTAL_FULL_IF_MISSING", "true".to_string()),
        // No overlap: only the changed rows are written again, so the counts below are exact.
        ("INCREMENTAL_OVERLAP_MINUTES", "0".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let function = IncrementalFunction::from_env(&env as &dyn Env, aws::config().await)
        .await
        .expect("configuration");
    let deadline = Some(SystemTime::now() + Duration::from_secs(900));

    let first = function
        .handle(event("incremental-scheduled.json"), deadline)
        .await
        .expect("first run");
    assert!(
        first["full_backup"]["backup_id"].is_string(),
        "no chain yet: a full backup starts one: {first}"
    );
    conn.query_drop("UPDATE student_grade_records SET grade = 99.99 WHERE id <= 10; DELETE FROM student_grade_records WHERE id > 490")
        .await
        .expect("changes");
    let second = function
        .handle(event("incremental-scheduled.json"), deadline)
        .await
        .expect("second run");
    assert_eq!(second["rows_rewritten"], 10, "{second}");
    assert_eq!(second["rows_deleted"], 10, "{second}");
    assert_eq!(second["chain_root"], first["full_backup"]["backup_id"]);

    let manual = function
        .handle(event("incremental-manual.json"), deadline)
        .await
        .expect("manual run");
    assert!(
        manual["full_backup"]["backup_id"].is_string(),
        "a new prefix starts its own chain: {manual}"
    );

    let copy = unique_name("lambda_inc_copy");
    assert_ok(&run_cli(
        &[
            "restore",
            "--database-url",
            &server_url(),
            "--store",
            &format!("s3://{bucket}/college"),
            "--target-database",
            &copy,
        ],
        &[],
    ));
    assert_eq!(checksums(&copy).await, checksums(&source).await);

    let refused = function
        .handle(serde_json::json!({"label": "x"}), deadline)
        .await
        .expect_err("incrementals take no label");
    assert!(
        refused.to_string().contains("incrementals take no label"),
        "{refused}"
    );
    let received = alerts.received().await;
    assert!(
        received
            .iter()
            .any(|(s, _)| s.contains("incremental function could not start")),
        "{received:?}"
    );
    drop_database(&source).await;
    drop_database(&copy).await;
}

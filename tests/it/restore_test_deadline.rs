//! Issue 14: the restore test stops before its deadline. A Lambda killed at 900 s would leave a
//! full copy of student records in the scratch database and no report; stopped by its deadline
//! instead, it kills its loads, drops the scratch database, reports TIMED OUT with how far it got
//! and raises a CRITICAL alert. Two tests started together (the schedule and a manual run) each
//! restore into a copy of their own: sharing one, the first to finish killed the other's
//! connections and dropped its copy mid-restore.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use chrono::Utc;
use mysql_async::prelude::Queryable;
use toc_sis_backup::config::DatabaseUrl;
use toc_sis_backup::monitor::restore_test::{
    run_restore_test_until, RestoreTestOptions, RestoreTestReport, LATEST_KEY,
};
use toc_sis_backup::notify::sns::SnsNotifier;
use toc_sis_backup::notify::LogNotifier;
use toc_sis_backup::restore::definer::DefinerMode;
use toc_sis_backup::store::local::LocalStore;
use toc_sis_backup::store::ObjectStore;

/// The deadline arrives once the scratch database (named `prefix`, the second and a random
/// suffix) holds its tables and the data load is under way (a 200,000-row table takes seconds).
async fn deadline_once_loading(prefix: String) -> String {
    let mut conn = admin().await;
    loop {
        let tables: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE CONCAT(?, '\\_%')",
                (&prefix,),
            )
            .await
            .expect("poll");
        if tables.unwrap_or(0) > 0 {
            // The tables appear while the schema is created; half a second later the data
            // stage (seconds for 200,000 rows) is under way.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return "the test's deadline".into();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A restore test on the test server into scratch databases named `prefix`…, as the
/// restore-test function runs it (objects created as its user).
fn test_options(prefix: &str) -> RestoreTestOptions {
    RestoreTestOptions {
        headway: Default::default(),
        server_url: DatabaseUrl::parse(&server_url()).expect("URL"),
        jobs: 2,
        database_prefix: prefix.to_string(),
        definer: DefinerMode::Current,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_test_stopped_by_its_deadline_drops_the_copy_and_alerts() {
    let source = unique_name("deadline");
    create_database(&source).await;
    connect_to(&source)
        .await
        .query_drop(
            "CREATE TABLE grades (id INT PRIMARY KEY, student INT NOT NULL, note VARCHAR(100), KEY by_student (student)) ENGINE=InnoDB;
             INSERT INTO grades SELECT seq, seq % 5000, REPEAT(MD5(seq), 2) FROM seq_1_to_200000;",
        )
        .await
        .expect("fixture");
    let folder = tempfile::tempdir().expect("temp dir");
    assert_ok(&run_cli(
        &[
            "dump",
            "--database-url",
            &url_for(&source),
            "--store",
            folder.path().to_str().unwrap_or_default(),
            "--split-mb",
            "1",
        ],
        &[],
    ));

    let alerts = aws::Alerts::new().await;
    let notifier = SnsNotifier::new(
        aws_sdk_sns::Client::new(&aws::config().await),
        alerts.topic_arn.clone(),
    );
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(folder.path()));
    let prefix = unique_name("deadline_test");
    let now = Utc::now();
    let options = test_options(&prefix);
    let outcome = run_restore_test_until(
        store.clone(),
        &notifier,
        &options,
        now,
        deadline_once_loading(prefix.clone()),
    )
    .await;

    let error = outcome
        .expect_err("a stopped test is not a pass")
        .to_string();
    assert!(
        error.contains("TIMED OUT") && error.contains("files loaded"),
        "{error}"
    );
    let reported: RestoreTestReport = serde_json::from_slice(
        &store
            .get(LATEST_KEY)
            .await
            .expect("read")
            .expect("a report"),
    )
    .expect("report JSON");
    let scratch = reported.scratch_database;
    assert!(scratch.starts_with(&format!("{prefix}_")), "{scratch}");
    let mut conn = admin().await;
    let left: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (&scratch,),
        )
        .await
        .expect("schemata");
    assert_eq!(
        left,
        Some(0),
        "the scratch database {scratch} was left behind"
    );
    let working: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ?",
            (&scratch,),
        )
        .await
        .expect("processlist");
    assert_eq!(working, Some(0), "loads still running in {scratch}");

    let latest = store
        .get(LATEST_KEY)
        .await
        .expect("read")
        .expect("a report");
    let report: RestoreTestReport = serde_json::from_slice(&latest).expect("report JSON");
    assert!(report.timed_out && !report.passed, "{report:?}");
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("TIMED OUT"),
        "{report:?}"
    );
    let received = alerts.received().await;
    assert!(
        received.iter().any(
            |(subject, body)| subject.contains("CRITICAL: restore test TIMED OUT")
                && body.contains(&format!("The scratch database {scratch} was dropped"))
        ),
        "{received:?}"
    );
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_restore_tests_started_the_same_second_each_pass_in_a_copy_of_their_own() {
    let source = small_database("together").await;
    let folder = tempfile::tempdir().expect("temp dir");
    let folder_arg = folder.path().to_str().unwrap_or_default();
    assert_ok(&dump_into(&source, folder_arg, &[]));
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(folder.path()));
    let prefix = unique_name("together_test");
    let options = test_options(&prefix);
    let now = Utc::now();
    let run = || {
        run_restore_test_until(
            store.clone(),
            &LogNotifier,
            &options,
            now,
            std::future::pending(),
        )
    };
    let (first, second) = tokio::join!(run(), run());
    let first = first.expect("the first test passes");
    let second = second.expect("the second test passes");
    assert!(first.passed && second.passed);
    assert_ne!(first.scratch_database, second.scratch_database);
    let left: Vec<String> = admin()
        .await
        .exec(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE CONCAT(?, '\\_%')",
            (&prefix,),
        )
        .await
        .expect("schemata");
    assert_eq!(left, Vec::<String>::new(), "scratch copies left behind");
    drop_database(&source).await;
}

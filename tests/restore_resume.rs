//! Issue 12: a restore whose database connection is killed mid-load loads the file again on a
//! new connection and verifies; a restore killed outright continues with `--resume` without
//! loading again the files it finished.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::Queryable;

/// A source whose data arrives in many files: an InnoDB table of ~25 MB of SQL split at 1 MiB,
/// a MyISAM table (no transactions) split too, and the small tables.
async fn many_files_source(prefix: &str, store: &Path) -> String {
    let name = small_database(prefix).await;
    connect_to(&name)
        .await
        .query_drop(
            "CREATE TABLE d_grades (id INT PRIMARY KEY, student INT NOT NULL, module VARCHAR(20), grade DECIMAL(5,2), note VARCHAR(80), KEY by_student (student));
             INSERT INTO d_grades SELECT seq, seq % 5003, CONCAT('MOD', seq % 97), (seq % 10000) / 100, REPEAT('x', seq % 80) FROM seq_1_to_250000;
             CREATE TABLE e_legacy (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=MyISAM;
             INSERT INTO e_legacy SELECT seq, REPEAT('y', 90) FROM seq_1_to_40000;",
        )
        .await
        .expect("fixture");
    assert_ok(&run_cli(
        &[
            "dump",
            "--database-url",
            &url_for(&name),
            "--store",
            store.to_str().unwrap_or_default(),
            "--split-mb",
            "1",
        ],
        &[],
    ));
    name
}

fn restore_child(store: &Path, target: &str, jobs: &str) -> Child {
    Command::new(BIN)
        .args([
            "restore",
            "--database-url",
            &server_url(),
            "--store",
            store.to_str().unwrap_or_default(),
            "--target-database",
            target,
            "--jobs",
            jobs,
        ])
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start toc-backup restore")
}

/// `toc-backup restore` of the store's latest backup into `target`, waiting for it.
fn restore_cli(store: &Path, target: &str, extra: &[&str]) -> std::process::Output {
    let url = server_url();
    let mut args = vec![
        "restore",
        "--database-url",
        &url,
        "--store",
        store.to_str().unwrap_or_default(),
        "--target-database",
        target,
    ];
    args.extend_from_slice(extra);
    run_cli(&args, &[])
}

/// Waits until `query` (one number) reaches `at_least`.
async fn wait_for(query: &str, at_least: u64, what: &str) {
    let mut admin = admin().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found: Option<u64> = admin.query_first(query).await.unwrap_or(None);
        if found.unwrap_or(0) >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_load_is_retried_and_the_restore_verifies() {
    let store = tempfile::tempdir().expect("store");
    let source = many_files_source("kill_conn", store.path()).await;
    let target = unique_name("kill_conn_copy");
    let child = restore_child(store.path(), &target, "2");

    // A loading connection, caught in the middle of a data file (rows into the big table, by
    // LOAD DATA where the server allows it, else INSERTs).
    let mut admin = admin().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed = 0;
    while killed < 2 {
        let id: Option<u64> = admin
            .exec_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND (INFO LIKE 'INSERT INTO `d_grades`%' OR INFO LIKE 'LOAD DATA LOCAL INFILE % INTO TABLE `d_grades`%') LIMIT 1",
                (&target,),
            )
            .await
            .expect("processlist");
        if let Some(id) = id {
            admin
                .query_drop(format!("KILL CONNECTION {id}"))
                .await
                .expect("kill");
            killed += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(
            Instant::now() < deadline,
            "never caught a loading connection"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let output = child.wait_with_output().expect("restore ends");
    assert_ok(&output);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("database connection lost while loading") && log.contains("attempt=2"),
        "no retry was logged:\n{log}"
    );
    assert_eq!(checksums(&target).await, checksums(&source).await);
    assert_eq!(definitions(&target).await, definitions(&source).await);
    drop_database(&target).await;
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_restore_resumes_without_loading_finished_files_again() {
    let store = tempfile::tempdir().expect("store");
    let source = many_files_source("resume", store.path()).await;
    let target = unique_name("resume_copy");
    let mut child = restore_child(store.path(), &target, "1");
    // Killed once several data files are recorded as loaded, so some are and some are not.
    wait_for(
        &format!("SELECT COUNT(*) FROM `{target}`.`_toc_restore_progress` WHERE step LIKE '%/1-%'"),
        4,
        "four data files recorded",
    )
    .await;
    child.kill().expect("kill the restore");
    let _ = child.wait();

    // Left as it is, the database says what it is, and a plain restore will not pile on it.
    let again = restore_cli(store.path(), &target, &[]);
    assert!(!again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("pass --resume to continue it"),
        "{}",
        text(&again)
    );

    let resumed = restore_cli(store.path(), &target, &["--resume"]);
    assert_ok(&resumed);
    let log = String::from_utf8_lossy(&resumed.stderr);
    let skipped: u64 = log
        .lines()
        .find(|l| l.contains("files already loaded by the interrupted run"))
        .and_then(|l| l.split("skipped=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the resumed restore skipped nothing:\n{log}"));
    assert!(skipped >= 4, "{log}");
    assert!(
        log.contains("already restored by the interrupted run"),
        "{log}"
    );
    assert_eq!(checksums(&target).await, checksums(&source).await);
    assert_eq!(definitions(&target).await, definitions(&source).await);

    // Nothing to resume any more.
    let nothing = restore_cli(store.path(), &target, &["--resume"]);
    assert!(!nothing.status.success());
    assert!(
        String::from_utf8_lossy(&nothing.stderr).contains("holds no interrupted restore"),
        "{}",
        text(&nothing)
    );
    drop_database(&target).await;
    drop_database(&source).await;
}

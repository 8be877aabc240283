//! Issue 12: a restore whose database connection is killed mid-load loads the file again on a
//! new connection and verifies; a restore killed outright continues with `--resume` without
//! loading again the files it finished. Issue 19: a restore stopped during data or during
//! objects never leaves a database that passes for a finished one: it is marked, the error says
//! what is missing and how to finish, and that finishes it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
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

/// The table that marks an unfinished restore.
const MARKER: &str = "_restore_incomplete_do_not_use";

/// `target` is marked as an unfinished restore: the marker table, with its comment saying so.
async fn assert_marked(target: &str) {
    let comment: Option<String> = admin()
        .await
        .exec_first(
            "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (target, MARKER),
        )
        .await
        .expect("information_schema");
    let comment = comment.unwrap_or_else(|| panic!("`{target}` has no table {MARKER}"));
    assert!(
        comment.starts_with("INCOMPLETE RESTORE of backup "),
        "the marker's comment: {comment}"
    );
}

async fn is_marked(target: &str) -> bool {
    let found: Option<String> = admin()
        .await
        .exec_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (target, MARKER),
        )
        .await
        .expect("information_schema");
    found.is_some()
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
        &format!("SELECT COUNT(*) FROM `{target}`.`{MARKER}` WHERE step LIKE '%/1-%'"),
        4,
        "four data files recorded",
    )
    .await;
    child.kill().expect("kill the restore");
    let _ = child.wait();

    // Left as it is, the database says what it is, and a plain restore will not pile on it.
    assert_marked(&target).await;
    // As an earlier version left it (the progress table had another name): still found, and
    // renamed to the marker.
    admin()
        .await
        .query_drop(format!(
            "RENAME TABLE `{target}`.`{MARKER}` TO `{target}`.`_toc_restore_progress`"
        ))
        .await
        .expect("rename to the earlier name");
    assert!(!is_marked(&target).await);
    let again = restore_cli(store.path(), &target, &[]);
    assert!(!again.status.success(), "{}", text(&again));
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("pass --resume to continue it")
            && said.contains("still missing: rows: ")
            && said.contains("the final check"),
        "{}",
        text(&again)
    );
    assert_marked(&target).await;

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

/// A connection to `target` running a statement that holds one of `fragments`.
async fn connection_running(target: &str, fragments: &[String]) -> Option<u64> {
    let mut admin = admin().await;
    let ids: Vec<(u64, Option<String>)> = admin
        .exec(
            "SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE DB = ?",
            (target,),
        )
        .await
        .expect("processlist");
    ids.into_iter()
        .find(|(_, info)| {
            info.as_deref()
                .is_some_and(|i| fragments.iter().any(|f| i.contains(f.as_str())))
        })
        .map(|(id, _)| id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_during_data_leaves_a_marked_database_and_names_the_command_that_finishes_it() {
    // A MyISAM table cannot roll back a half-loaded file, so losing the connection that loads
    // it stops the restore (the InnoDB tables' files are loaded again instead).
    let store = tempfile::tempdir().expect("store");
    let source = small_database("fail_data").await;
    connect_to(&source)
        .await
        .query_drop(
            "CREATE TABLE e_legacy (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=MyISAM;
             INSERT INTO e_legacy SELECT seq, REPEAT('y', 90) FROM seq_1_to_250000;",
        )
        .await
        .expect("fixture");
    assert_ok(&run_cli(
        &[
            "dump",
            "--database-url",
            &url_for(&source),
            "--store",
            store.path().to_str().unwrap_or_default(),
            "--split-mb",
            "1",
        ],
        &[],
    ));
    let target = unique_name("fail_data_copy");
    let child = restore_child(store.path(), &target, "1");
    let loading = [
        "INTO TABLE `e_legacy`".to_string(),
        "INSERT INTO `e_legacy`".to_string(),
    ];
    let mut admin = admin().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(id) = connection_running(&target, &loading).await {
            let _ = admin.query_drop(format!("KILL CONNECTION {id}")).await;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never caught a loading connection"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let output = child.wait_with_output().expect("restore ends");
    assert!(!output.status.success(), "{}", text(&output));
    let said = String::from_utf8_lossy(&output.stderr);
    let error = said
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{said}"));
    for expected in [
        &format!("restore into `{target}` stopped before it finished: "),
        "The database is INCOMPLETE (still missing: rows: ",
        "`e_legacy`",
        "the final check against the manifests",
        &format!("marked so by its table `{MARKER}`: do not use it"),
        "run the same restore again with --resume",
        &format!("DROP DATABASE `{target}`"),
    ] {
        assert!(error.contains(expected), "{expected:?} not in: {error}");
    }
    assert_marked(&target).await;

    // What the error says to do finishes it.
    let resumed = restore_cli(store.path(), &target, &["--resume"]);
    assert_ok(&resumed);
    assert!(!is_marked(&target).await);
    assert_eq!(checksums(&target).await, checksums(&source).await);
    drop_database(&target).await;
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_killed_during_objects_leaves_a_marked_database_that_resume_finishes() {
    let store = tempfile::tempdir().expect("store");
    let source = small_database("kill_objects").await;
    connect_to(&source)
        .await
        .query_drop(
            "CREATE TABLE f_audited (id INT PRIMARY KEY, v INT NOT NULL);
             INSERT INTO f_audited SELECT seq, seq FROM seq_1_to_1000;
             CREATE TRIGGER f_audited_bump BEFORE INSERT ON f_audited FOR EACH ROW SET NEW.v = NEW.v + 1;
             CREATE VIEW g_view AS SELECT id FROM a_first;",
        )
        .await
        .expect("fixture");
    assert_ok(&dump(&source, store.path()));
    let target = unique_name("kill_objects_copy");
    let mut child = restore_child(store.path(), &target, "1");

    // Once the table exists, an open transaction that read it holds a metadata lock the
    // trigger's CREATE must wait for: the restore is caught between its rows and its triggers.
    let mut holder = admin().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let exists: Option<String> = holder
            .exec_first(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'f_audited'",
                (&target,),
            )
            .await
            .expect("information_schema");
        if exists.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restore never created f_audited"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    holder
        .query_drop(format!(
            "START TRANSACTION; SELECT COUNT(*) FROM `{target}`.f_audited"
        ))
        .await
        .expect("hold a metadata lock");
    let deadline = Instant::now() + Duration::from_secs(60);
    let waiting = loop {
        let waiting: Option<u64> = holder
            .exec_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE LIKE 'Waiting for table metadata lock' AND INFO LIKE '%TRIGGER%'",
                (&target,),
            )
            .await
            .expect("processlist");
        if let Some(id) = waiting {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the restore never reached its triggers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().expect("kill the restore");
    let _ = child.wait();
    // The server would run the waiting statement once the lock is free, client gone or not.
    admin()
        .await
        .query_drop(format!("KILL CONNECTION {waiting}"))
        .await
        .expect("kill the waiting statement");
    // KILL only flags the thread: released before it has noticed, the lock would let the
    // statement finish (seen on a loaded machine).
    wait_for(
        &format!("SELECT COUNT(*) = 0 FROM information_schema.PROCESSLIST WHERE ID = {waiting}"),
        1,
        "the killed statement end",
    )
    .await;
    holder.query_drop("COMMIT").await.expect("release");

    // Rows and views are there, the trigger is not, and the database says so.
    let mut check = connect_to(&target).await;
    let rows: Option<u64> = check
        .query_first("SELECT COUNT(*) FROM f_audited")
        .await
        .expect("count");
    assert_eq!(rows, Some(1000));
    let triggers: Option<u64> = check
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?",
            (&target,),
        )
        .await
        .expect("triggers");
    assert_eq!(triggers, Some(0));
    drop(check);
    assert_marked(&target).await;
    let again = restore_cli(store.path(), &target, &[]);
    assert!(!again.status.success(), "{}", text(&again));
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains(
            "(still missing: triggers, the final check against the manifests); pass --resume"
        ),
        "{}",
        text(&again)
    );

    let resumed = restore_cli(store.path(), &target, &["--resume"]);
    assert_ok(&resumed);
    assert!(!is_marked(&target).await);
    assert_eq!(checksums(&target).await, checksums(&source).await);
    assert_eq!(definitions(&target).await, definitions(&source).await);
    drop_database(&target).await;
    drop_database(&source).await;
}

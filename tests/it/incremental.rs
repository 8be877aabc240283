//! Issue 4: incrementals lose nothing (inserts, updates with or without `updated_at`, deletes,
//! re-inserted keys, changed keys, emptied tables, late and repeated runs, killed runs) and
//! restore to every point exactly.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use mysql_async::prelude::Queryable;

const SCOPE: &str = "grades,enrol";

async fn workload_database() -> String {
    let name = unique_name("chain");
    create_database(&name).await;
    connect_to(&name)
        .await
        .query_drop(
            "CREATE TABLE grades (
               id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, student INT NOT NULL, grade DECIMAL(5,2) NULL,
               note TEXT NULL, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
               UNIQUE KEY one_per_student (student)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
             CREATE TABLE enrol (
               student INT NOT NULL, module SMALLINT UNSIGNED NOT NULL, status VARCHAR(20) NOT NULL,
               updated_at DATETIME(6) NOT NULL, PRIMARY KEY (student, module)) ENGINE=InnoDB;
             CREATE TABLE audit (message VARCHAR(100)) ENGINE=InnoDB;
             CREATE TABLE no_tracking (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;
             INSERT INTO grades (student, grade, note) SELECT seq, seq % 100, IF(seq % 7 = 0, NULL, CONCAT('Seán ', seq)) FROM seq_1_to_3000;
             INSERT INTO enrol SELECT s.seq, m.seq, 'enrolled', NOW(6) FROM seq_1_to_300 s, seq_1_to_5 m;
             INSERT INTO audit VALUES ('created');",
        )
        .await
        .expect("workload schema");
    name
}

async fn scoped_checksums(database: &str) -> BTreeMap<String, String> {
    checksums(database)
        .await
        .into_iter()
        .filter(|(t, _)| t == "grades" || t == "enrol")
        .collect()
}

fn incremental(database: &str, store: &Path) -> serde_json::Value {
    let output = incremental_output(database, store);
    assert_ok(&output);
    serde_json::from_slice(&output.stdout).expect("incremental --json")
}

/// An incremental of SCOPE with its report as JSON, its log on stderr.
fn incremental_output(database: &str, store: &Path) -> std::process::Output {
    run_cli(
        &[
            "incremental",
            "--database-url",
            &url_for(database),
            "--store",
            store.to_str().unwrap_or_default(),
            "--tables",
            SCOPE,
            "--json",
        ],
        &[],
    )
}

fn restore_point(store: &Path, args: &[&str]) -> String {
    let target = unique_name("point");
    let mut all = vec!["restore", "--database-url"];
    let server = server_url();
    all.push(&server);
    all.extend_from_slice(&[
        "--store",
        store.to_str().unwrap_or_default(),
        "--target-database",
        &target,
    ]);
    all.extend_from_slice(args);
    let output = run_cli(&all, &[]);
    assert_ok(&output);
    target
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_incremental_point_restores_exactly() {
    let source = workload_database().await;
    let store = tempfile::tempdir().expect("temp dir");
    assert_ok(&dump(&source, store.path()));
    let mut points: Vec<(String, String, BTreeMap<String, String>)> = Vec::new();
    let full_state = scoped_checksums(&source).await;
    let mut conn = connect_to(&source).await;

    let rounds = [
        // Inserts, ordinary updates, deletes.
        "INSERT INTO grades (student, grade) VALUES (5001, 50), (5002, 60);
         UPDATE grades SET grade = grade + 1 WHERE id % 10 = 0;
         DELETE FROM grades WHERE id IN (3, 4, 5);
         UPDATE enrol SET status = 'completed', updated_at = NOW(6) WHERE module = 2;",
        // A key deleted and re-inserted with other content, a changed key, an update that does
        // not touch updated_at, a unique value moved between rows, and a row whose tracking
        // column is set far in the past.
        "DELETE FROM grades WHERE id = 7;
         INSERT INTO grades (id, student, grade, note) VALUES (7, 9007, 99.5, 'back again');
         UPDATE grades SET id = 999999 WHERE id = 8;
         UPDATE grades SET grade = 12.34, updated_at = updated_at WHERE id = 9;
         UPDATE grades SET student = -1 WHERE id = 10;
         UPDATE grades SET student = 10 WHERE id = 11;
         UPDATE grades SET student = 11 WHERE id = 10;
         UPDATE enrol SET status = 'withdrawn', updated_at = '2001-01-01 00:00:00' WHERE student = 1;",
        // A table emptied, more inserts.
        "DELETE FROM enrol;
         INSERT INTO grades (student, grade) SELECT 6000 + seq, 1 FROM seq_1_to_50;",
    ];
    for (round, sql) in rounds.iter().enumerate() {
        conn.query_drop(*sql)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let report = incremental(&source, store.path());
        let id = report["backup_id"].as_str().expect("backup id").to_string();
        points.push((
            id,
            report["window_start"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            scoped_checksums(&source).await,
        ));
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    for (id, _, expected) in &points {
        let copy = restore_point(store.path(), &["--backup", id]);
        assert_eq!(
            &scoped_checksums(&copy).await,
            expected,
            "restoring at {id}"
        );
        drop_database(&copy).await;
    }
    let full_id = list_json(store.path())
        .as_array()
        .expect("array")
        .iter()
        .find(|b| b["kind"] == "full")
        .and_then(|b| b["id"].as_str().map(str::to_string))
        .expect("the full backup");
    let copy = restore_point(store.path(), &["--backup", &full_id]);
    assert_eq!(scoped_checksums(&copy).await, full_state);
    drop_database(&copy).await;

    // --at: the newest point at or before a time between the second and third incrementals.
    let listed = list_json(store.path());
    let second_finished = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|b| b["id"] == points[1].0.as_str())
        .and_then(|b| b["finished_at"].as_str().map(str::to_string))
        .expect("finished_at");
    let copy = restore_point(store.path(), &["--at", &second_finished]);
    assert_eq!(
        scoped_checksums(&copy).await,
        points[1].2,
        "--at {second_finished}"
    );
    drop_database(&copy).await;

    // By hand, as the README says: the full backup's first four stages, each incremental in
    // chain order, then the full backup's triggers and events.
    let daily = store.path().join("database/daily").join(&full_id);
    let incremental_root = store.path().join("database/incremental");
    let mut files = format!("$(ls {}/[0-3]-*.sql.gz)", daily.display());
    for (id, _, _) in &points {
        files.push_str(&format!(
            " $(ls {}/{id}/*.sql.gz)",
            incremental_root.display()
        ));
    }
    files.push_str(&format!(
        " $(ls {}/[45]-*.sql.gz 2>/dev/null || true)",
        daily.display()
    ));
    let by_hand = unique_name("by_hand");
    create_database(&by_hand).await;
    let server = toc_sis_backup::config::DatabaseUrl::parse(&server_url()).expect("url");
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail; cat {files} | gunzip | mariadb --no-defaults --comments --host={} --port={} --user={} {by_hand}",
            server.host, server.port, server.user
        ))
        .env("MYSQL_PWD", server.password().unwrap_or_default())
        .status()
        .expect("bash");
    assert!(status.success(), "the chain by hand failed");
    assert_eq!(
        scoped_checksums(&by_hand).await,
        points[2].2,
        "the chain restored by hand"
    );
    drop_database(&by_hand).await;

    // latest is the newest incremental.
    let copy = restore_point(store.path(), &[]);
    assert_eq!(scoped_checksums(&copy).await, points[2].2);
    drop_database(&copy).await;
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_and_repeated_runs_lose_and_double_nothing() {
    let source = workload_database().await;
    let store = tempfile::tempdir().expect("temp dir");
    assert_ok(&dump(&source, store.path()));
    let mut conn = connect_to(&source).await;
    // Changes whose tracking column says they happened hours before the window.
    conn.query_drop(
        "UPDATE grades SET grade = 77, updated_at = NOW(6) - INTERVAL 3 HOUR WHERE id <= 20;
         UPDATE enrol SET status = 'late', updated_at = NOW(6) - INTERVAL 5 HOUR WHERE student <= 3;",
    )
    .await
    .expect("late changes");
    let first = incremental(&source, store.path());
    assert!(
        first["rows_rewritten"].as_u64().unwrap_or(0) >= 20 + 15,
        "{first}"
    );
    let second = incremental(&source, store.path());
    let third = incremental(&source, store.path());
    assert_eq!(third["parent"], second["backup_id"]);
    assert_eq!(second["parent"], first["backup_id"]);
    let expected = scoped_checksums(&source).await;
    for report in [&first, &second, &third] {
        let copy = restore_point(
            store.path(),
            &["--backup", report["backup_id"].as_str().expect("id")],
        );
        assert_eq!(scoped_checksums(&copy).await, expected);
        let rows: Option<u64> = connect_to(&copy)
            .await
            .query_first("SELECT COUNT(*) FROM grades")
            .await
            .expect("count");
        assert_eq!(rows, Some(3000));
        drop_database(&copy).await;
    }
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_incremental_leaves_the_chain_usable() {
    let source = workload_database().await;
    let store = tempfile::tempdir().expect("temp dir");
    assert_ok(&dump(&source, store.path()));
    let mut conn = connect_to(&source).await;
    conn.query_drop("UPDATE grades SET grade = 1 WHERE id < 100")
        .await
        .expect("change");
    let good = incremental(&source, store.path());
    let good_state = scoped_checksums(&source).await;

    conn.query_drop("UPDATE grades SET grade = 2 WHERE id < 200")
        .await
        .expect("change");
    let mut locker = connect_to(&source).await;
    locker
        .query_drop("LOCK TABLES grades WRITE")
        .await
        .expect("lock");
    let child = Command::new(BIN)
        .args([
            "incremental",
            "--database-url",
            &url_for(&source),
            "--store",
            store.path().to_str().unwrap_or_default(),
            "--tables",
            SCOPE,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(30);
    let victim = loop {
        let id: Option<u64> = admin()
            .await
            .exec_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE LIKE '%metadata lock%' AND INFO LIKE 'SELECT%'",
                (&source,),
            )
            .await
            .expect("processlist");
        if let Some(id) = id {
            break id;
        }
        assert!(Instant::now() < deadline, "the incremental never blocked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    admin()
        .await
        .query_drop(format!("KILL CONNECTION {victim}"))
        .await
        .expect("kill");
    locker.query_drop("UNLOCK TABLES").await.expect("unlock");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("output");
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CRITICAL: incremental backup of"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "its newest point is still {}",
            good["backup_id"].as_str().unwrap_or_default()
        )),
        "{stderr}"
    );

    let copy = restore_point(store.path(), &[]);
    assert_eq!(
        scoped_checksums(&copy).await,
        good_state,
        "the previous point must still restore"
    );
    drop_database(&copy).await;
    let next = incremental(&source, store.path());
    assert_eq!(
        next["parent"], good["backup_id"],
        "the chain continues from the last good link"
    );
    let copy = restore_point(store.path(), &[]);
    assert_eq!(
        scoped_checksums(&copy).await,
        scoped_checksums(&source).await
    );
    drop_database(&copy).await;
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_that_cannot_be_tracked_are_refused_by_name() {
    let source = workload_database().await;
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    let no_chain = run_cli(
        &[
            "incremental",
            "--database-url",
            &url_for(&source),
            "--store",
            &store_arg,
            "--tables",
            SCOPE,
        ],
        &[],
    );
    assert!(!no_chain.status.success());
    assert!(
        String::from_utf8_lossy(&no_chain.stderr).contains("no complete full backup"),
        "{}",
        text(&no_chain)
    );

    assert_ok(&dump(&source, store.path()));
    for (tables, expected) in [
        (
            "grades,audit",
            "cannot track table `audit`: it has no primary key",
        ),
        (
            "no_tracking",
            "cannot track table `no_tracking`: it has no change-tracking column `updated_at`",
        ),
        (
            "grades,missing_table",
            "cannot track table `missing_table`: there is no such table",
        ),
    ] {
        let output = run_cli(
            &[
                "incremental",
                "--database-url",
                &url_for(&source),
                "--store",
                &store_arg,
                "--tables",
                tables,
            ],
            &[],
        );
        assert!(!output.status.success(), "{tables} accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{tables}: {stderr}");
    }
    let chains = list_json(store.path());
    assert_eq!(
        chains.as_array().expect("array").len(),
        1,
        "refused runs leave nothing: {chains}"
    );

    let full_if_missing = tempfile::tempdir().expect("temp dir");
    let output = run_cli(
        &[
            "incremental",
            "--database-url",
            &url_for(&source),
            "--store",
            full_if_missing.path().to_str().unwrap_or_default(),
            "--tables",
            SCOPE,
            "--full-if-missing",
            "--json",
        ],
        &[],
    );
    assert_ok(&output);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(report["full_backup"]["backup_id"].is_string(), "{report}");
    drop_database(&source).await;
}

fn file_names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The key states of the backup in `backup_dir` (`database/daily/<id>`), which live apart in
/// `database/key-states/<id>`: the backup's own folder holds none.
fn state_files(backup_dir: &Path) -> Vec<String> {
    assert!(
        !file_names(backup_dir).iter().any(|n| n.contains("keys")),
        "a key state in the backup's folder: {:?}",
        file_names(backup_dir)
    );
    let id = backup_dir.file_name().expect("backup id");
    let store = backup_dir
        .parent()
        .and_then(Path::parent)
        .expect("store/database");
    let names = file_names(&store.join("key-states").join(id));
    names
        .into_iter()
        .filter(|n| n.starts_with("state-"))
        .collect()
}

/// Issue 30: the key states live apart from the backups kept for years, go once a newer full
/// backup exists, and an incremental that finds its previous state gone (S3's lifecycle expired
/// it) rebuilds it from the table: every point of the chain still restores exactly, and the old
/// backups still verify and restore without their states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_state_that_is_gone_is_rebuilt_and_every_point_restores_exactly() {
    let source = workload_database().await;
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    assert_ok(&dump(&source, store.path()));
    let full_dir = only_backup_dir(store.path());
    assert_eq!(
        state_files(&full_dir),
        ["state-00002-enrol.keys.gz", "state-00003-grades.keys.gz"]
    );
    let mut conn = connect_to(&source).await;
    let mut points: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    conn.query_drop(
        "UPDATE grades SET grade = grade + 1 WHERE id % 10 = 0; DELETE FROM grades WHERE id IN (3, 4);",
    )
    .await
    .expect("round 1");
    let first = incremental(&source, store.path());
    points.push((
        first["backup_id"].as_str().expect("id").to_string(),
        scoped_checksums(&source).await,
    ));

    // The lifecycle took every key state (the full backup's and the first link's).
    let key_states = store.path().join("database/key-states");
    std::fs::remove_dir_all(&key_states).expect("remove key states");
    for id in [
        full_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default(),
        points[0].0.as_str(),
    ] {
        assert_ok(&run_cli(
            &["verify", "--store", &store_arg, "--backup", id],
            &[],
        ));
    }

    // Deletes, updates without the tracking column and inserts across the rebuild.
    conn.query_drop(
        "DELETE FROM grades WHERE id BETWEEN 100 AND 150;
         UPDATE grades SET grade = 1.5, updated_at = updated_at WHERE id = 200;
         DELETE FROM enrol WHERE module = 3;
         INSERT INTO grades (student, grade) VALUES (7001, 70);",
    )
    .await
    .expect("round 2");
    let rebuilt = incremental_output(&source, store.path());
    assert_ok(&rebuilt);
    let stderr = String::from_utf8_lossy(&rebuilt.stderr);
    assert!(
        stderr.contains("the previous key state is gone"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&rebuilt.stdout).expect("json");
    let rebuilt_id = report["backup_id"].as_str().expect("id").to_string();
    assert_eq!(
        file_names(&key_states.join(&rebuilt_id)),
        ["state-00001-grades.keys.gz", "state-00002-enrol.keys.gz"],
        "the rebuilt link keeps new states"
    );
    points.push((rebuilt_id, scoped_checksums(&source).await));

    // The next link diffs against the rebuilt states as usual.
    conn.query_drop(
        "DELETE FROM grades WHERE id = 300; UPDATE grades SET note = 'after' WHERE id = 301;",
    )
    .await
    .expect("round 3");
    let third = incremental(&source, store.path());
    assert_eq!(third["rows_deleted"], 1, "{third}");
    points.push((
        third["backup_id"].as_str().expect("id").to_string(),
        scoped_checksums(&source).await,
    ));
    for (id, expected) in &points {
        let copy = restore_point(store.path(), &["--backup", id]);
        assert_eq!(
            &scoped_checksums(&copy).await,
            expected,
            "restoring at {id}"
        );
        drop_database(&copy).await;
    }

    // A newer full backup: every older backup's key state goes, the new one's stays.
    assert_ok(&dump(&source, store.path()));
    let newest = only_backup_dir(store.path());
    assert_eq!(
        file_names(&key_states),
        [newest
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string()]
    );
    drop_database(&source).await;
}

/// A key state is stored with every full backup kept for years, so it is kept only for tables
/// an incremental can track: an integer key and the tracking column (issue 16: output size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_states_are_kept_only_for_tables_an_incremental_can_track() {
    let source = workload_database().await;
    connect_to(&source)
        .await
        .query_drop(
            "CREATE TABLE logs (id INT PRIMARY KEY, created_at DATETIME NOT NULL, line TEXT);
             INSERT INTO logs SELECT seq, NOW(), 'x' FROM seq_1_to_50;",
        )
        .await
        .expect("logs table");
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    assert_ok(&dump(&source, store.path()));
    assert_eq!(
        state_files(&only_backup_dir(store.path())),
        ["state-00002-enrol.keys.gz", "state-00003-grades.keys.gz"]
    );
    let logs_incremental = |env: &[(&str, &str)]| {
        run_cli(
            &[
                "incremental",
                "--database-url",
                &url_for(&source),
                "--store",
                &store_arg,
                "--tables",
                "grades,logs",
                "--tracking-columns",
                "logs=created_at",
            ],
            env,
        )
    };
    let refused = logs_incremental(&[]);
    assert!(!refused.status.success(), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("cannot track table `logs`")
            && stderr.contains("holds a key state for it")
            && stderr.contains("take a full backup to start tracking it: toc-backup dump"),
        "{stderr}"
    );

    // The dump reads the incremental's own variables, so one configuration serves both.
    let tracking = [("INCREMENTAL_TRACKING_COLUMNS", "logs=created_at")];
    let output = run_cli(
        &[
            "dump",
            "--database-url",
            &url_for(&source),
            "--store",
            &store_arg,
        ],
        &tracking,
    );
    assert_ok(&output);
    assert_eq!(
        state_files(&only_backup_dir(store.path())),
        [
            "state-00002-enrol.keys.gz",
            "state-00003-grades.keys.gz",
            "state-00004-logs.keys.gz"
        ]
    );
    assert_ok(&logs_incremental(&[]));
    drop_database(&source).await;
}

/// Issue 19: a run with a narrower scope (`--tables a`) does not break later runs of the wider
/// one: a table the last link did not track continues from the newest key state of the chain,
/// and nothing changed in between is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrower_run_leaves_later_wider_runs_whole() {
    let source = unique_name("scope_change");
    create_database(&source).await;
    let mut conn = connect_to(&source).await;
    conn.query_drop(
        "CREATE TABLE enrolments (id INT PRIMARY KEY, v INT, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6));
         CREATE TABLE transcripts (id INT PRIMARY KEY, v INT, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6));
         INSERT INTO enrolments (id, v) SELECT seq, seq FROM seq_1_to_200;
         INSERT INTO transcripts (id, v) SELECT seq, seq FROM seq_1_to_200;",
    )
    .await
    .expect("fixture");
    let store = tempfile::tempdir().expect("store");
    let store_arg = store.path().to_string_lossy().into_owned();
    assert_ok(&dump(&source, store.path()));
    let incremental = |tables: &str| {
        run_cli(
            &[
                "incremental",
                "--database-url",
                &url_for(&source),
                "--store",
                &store_arg,
                "--tables",
                tables,
            ],
            &[],
        )
    };
    // Changed while only enrolments is tracked: a transcripts change the next wide run must carry.
    conn.query_drop("UPDATE enrolments SET v = 0 WHERE id <= 5; UPDATE transcripts SET v = 0, updated_at = updated_at WHERE id <= 7")
        .await
        .expect("changes");
    assert_ok(&incremental("enrolments"));
    conn.query_drop("DELETE FROM transcripts WHERE id > 190")
        .await
        .expect("more");
    let wide = incremental("enrolments,transcripts");
    assert_ok(&wide);
    let target = unique_name("scope_change_copy");
    assert_ok(&restore(store.path(), "latest", &target));
    assert_eq!(checksums(&target).await, checksums(&source).await);
    drop_database(&source).await;
    drop_database(&target).await;
}

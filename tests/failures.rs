//! Done-means 3 to 6: a killed dump, corrupted files, bad input, secrets, missing privileges
//! and DDL during the dump all fail loudly and leave the previous backup as `latest`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::Queryable;

async fn small_database(prefix: &str) -> String {
    let name = unique_name(prefix);
    create_database(&name).await;
    let mut conn = connect_to(&name).await;
    conn.query_drop(
        "CREATE TABLE a_first (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB;
         INSERT INTO a_first SELECT seq, CONCAT('row ', seq) FROM seq_1_to_2000;
         CREATE TABLE b_blocked (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB;
         INSERT INTO b_blocked SELECT seq, 'b' FROM seq_1_to_100;
         CREATE TABLE c_later (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB;
         INSERT INTO c_later SELECT seq, 'c' FROM seq_1_to_100;",
    )
    .await
    .expect("fixture");
    name
}

fn list_json(store: &Path) -> serde_json::Value {
    let output = run_cli(
        &[
            "list",
            "--store",
            store.to_str().unwrap_or_default(),
            "--json",
            "--all",
        ],
        &[],
    );
    assert_ok(&output);
    serde_json::from_slice(&output.stdout).expect("list --json prints JSON")
}

fn dump_command(database: &str, store: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .args([
            "dump",
            "--database-url",
            &url_for(database),
            "--store",
            store.to_str().unwrap_or_default(),
        ])
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits until the dump of `database` blocks on a table lock and returns its connection id.
async fn blocked_dump_connection(database: &str) -> u64 {
    let mut admin = admin().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let id: Option<u64> = admin
            .exec_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE LIKE '%metadata lock%' AND INFO LIKE 'SELECT%'",
                (database,),
            )
            .await
            .expect("processlist");
        if let Some(id) = id {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "the dump never blocked on the locked table"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_dump_fails_loudly_and_leaves_the_previous_backup_latest() {
    let source = small_database("killed").await;
    let store = tempfile::tempdir().expect("temp dir");
    assert_ok(&dump(&source, store.path()));
    let previous = list_json(store.path())[0]["id"]
        .as_str()
        .expect("an id")
        .to_string();

    let mut locker = connect_to(&source).await;
    locker
        .query_drop("LOCK TABLES b_blocked WRITE")
        .await
        .expect("lock");
    let child = dump_command(&source, store.path())
        .spawn()
        .expect("start dump");
    let victim = blocked_dump_connection(&source).await;
    admin()
        .await
        .query_drop(format!("KILL CONNECTION {victim}"))
        .await
        .expect("kill");
    locker.query_drop("UNLOCK TABLES").await.expect("unlock");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("dump output");

    assert!(
        !output.status.success(),
        "a killed dump must fail:\n{}",
        text(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ALERT [TOC-SIS backup] CRITICAL: full backup of"),
        "no failure notification:\n{stderr}"
    );
    assert!(
        stderr.contains("reading the rows of table `b_blocked`"),
        "the cause must be named:\n{stderr}"
    );

    let listed = list_json(store.path());
    let entries = listed.as_array().expect("array");
    assert_eq!(
        entries.len(),
        1,
        "the failed run must leave nothing behind: {listed}"
    );
    assert_eq!(entries[0]["id"], previous.as_str());
    assert_eq!(entries[0]["status"], "complete");
    let manifests = walk(store.path())
        .into_iter()
        .filter(|p| p.ends_with("manifest.json"))
        .count();
    assert_eq!(manifests, 1);
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_during_the_dump_fails_the_backup() {
    let source = small_database("ddl").await;
    let store = tempfile::tempdir().expect("temp dir");
    let mut locker = connect_to(&source).await;
    locker
        .query_drop("LOCK TABLES b_blocked WRITE")
        .await
        .expect("lock");
    let child = dump_command(&source, store.path())
        .spawn()
        .expect("start dump");
    blocked_dump_connection(&source).await;
    connect_to(&source)
        .await
        .query_drop("ALTER TABLE c_later ADD COLUMN added INT NULL")
        .await
        .expect("alter");
    locker.query_drop("UNLOCK TABLES").await.expect("unlock");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("output");
    assert!(
        !output.status.success(),
        "DDL during the dump must fail it:\n{}",
        text(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the schema changed during the dump"),
        "{stderr}"
    );
    assert!(
        stderr.contains("c_later"),
        "the altered table must be named:\n{stderr}"
    );
    assert!(list_json(store.path())
        .as_array()
        .expect("array")
        .is_empty());
    drop_database(&source).await;
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_byte_in_any_file_fails_verify_and_restore() {
    let source = small_database("corrupt").await;
    connect_to(&source)
        .await
        .query_drop("CREATE VIEW v AS SELECT * FROM a_first; CREATE PROCEDURE p() SELECT 1;")
        .await
        .expect("objects");
    let store = tempfile::tempdir().expect("temp dir");
    assert_ok(&dump(&source, store.path()));
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    assert_ok(&run_cli(&["verify", "--store", &store_arg], &[]));

    let files = walk(store.path());
    assert!(
        files.len() >= 6,
        "expected schema, data, objects and manifest files: {files:?}"
    );
    for file in &files {
        let original = std::fs::read(file).expect("read");
        let mut damaged = original.clone();
        let at = damaged.len() / 2;
        damaged[at] ^= 0x01;
        std::fs::write(file, &damaged).expect("write");
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();

        let verify = run_cli(&["verify", "--store", &store_arg], &[]);
        assert!(!verify.status.success(), "verify accepted a damaged {name}");
        let message = String::from_utf8_lossy(&verify.stderr);
        assert!(
            message.contains(&name),
            "verify must name {name}:\n{message}"
        );

        let target = unique_name("never");
        let restore = restore(store.path(), "latest", &target);
        assert!(
            !restore.status.success(),
            "restore accepted a damaged {name}"
        );
        assert!(String::from_utf8_lossy(&restore.stderr).contains(&name));
        let exists: Option<String> = admin()
            .await
            .exec_first(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (&target,),
            )
            .await
            .expect("schemata");
        assert_eq!(
            exists, None,
            "restore must refuse before touching the server ({name})"
        );

        std::fs::write(file, &original).expect("restore the byte");
    }
    assert_ok(&run_cli(&["verify", "--store", &store_arg], &[]));
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_errors_that_name_the_bad_value() {
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    let server = server_url();
    let host_port = server
        .trim_start_matches("mysql://")
        .split('@')
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                "mysql//root@localhost/db".into(),
                "--store".into(),
                store_arg.clone(),
            ],
            "invalid database URL \"mysql//root@localhost/db\"",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                "postgres://root@localhost/db".into(),
                "--store".into(),
                store_arg.clone(),
            ],
            "scheme \"postgres\" is not mysql://",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                "mysql://root@127.0.0.1:1/db".into(),
                "--store".into(),
                store_arg.clone(),
            ],
            "cannot reach the MySQL server at 127.0.0.1:1",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                format!("mysql://root@{host_port}/no_such_database_here"),
                "--store".into(),
                store_arg.clone(),
            ],
            "database `no_such_database_here` does not exist",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                format!("mysql://root@{host_port}/"),
                "--store".into(),
                store_arg.clone(),
            ],
            "no database name after the host",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                format!("mysql://root@{host_port}/mysql"),
                "--store".into(),
                "/nonexistent/toc-backups".into(),
            ],
            "store directory /nonexistent/toc-backups does not exist",
        ),
        (
            vec![
                "list".into(),
                "--store".into(),
                "/nonexistent/toc-backups".into(),
            ],
            "store directory /nonexistent/toc-backups does not exist",
        ),
        (
            vec![
                "verify".into(),
                "--store".into(),
                store_arg.clone(),
                "--backup".into(),
                "20990101T000000Z-beef".into(),
            ],
            "backup \"20990101T000000Z-beef\" not found",
        ),
        (
            vec!["verify".into(), "--store".into(), store_arg.clone()],
            "no complete backup in",
        ),
        (
            vec![
                "restore".into(),
                "--database-url".into(),
                server.clone(),
                "--store".into(),
                store_arg.clone(),
                "--target-database".into(),
                "bad/name".into(),
            ],
            "invalid target database name \"bad/name\"",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                format!("mysql://root@{host_port}/mysql"),
                "--store".into(),
                "ftp://x".into(),
            ],
            "invalid store \"ftp://x\"",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run_cli(&args, &[]);
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
        let error_lines = stderr.lines().filter(|l| l.starts_with("error: ")).count();
        assert_eq!(error_lines, 1, "one error line expected:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_never_appear_in_output_logs_or_backups() {
    let source = small_database("secret").await;
    let user = unique_name("backup_user");
    let password = format!("Pw-{:016x}-s3cret", rand::random::<u64>());
    let mut admin = admin().await;
    admin
        .query_drop(format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';
             GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%';"
        ))
        .await
        .expect("create user");
    let host_port = server_url()
        .trim_start_matches("mysql://")
        .split('@')
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    let with_password = format!("mysql://{user}:{password}@{host_port}/{source}");
    let without_password = format!("mysql://{user}@{host_port}/");
    let wrong = format!("Wrong-{:016x}", rand::random::<u64>());

    let mut outputs = vec![
        run_cli(
            &[
                "dump",
                "--database-url",
                &with_password,
                "--store",
                &store_arg,
            ],
            &[],
        ),
        run_cli(
            &[
                "--log-format",
                "json",
                "dump",
                "--database-url",
                &with_password,
                "--store",
                &store_arg,
                "--notify-success",
            ],
            &[],
        ),
        run_cli(
            &[
                "restore",
                "--database-url",
                &without_password,
                "--store",
                &store_arg,
                "--target-database",
                &unique_name("secret_copy"),
            ],
            &[("DATABASE_PASSWORD", &password)],
        ),
        run_cli(
            &[
                "dump",
                "--database-url",
                &format!("mysql://{user}:{password}@{host_port}/no_such_db"),
                "--store",
                &store_arg,
            ],
            &[],
        ),
        run_cli(
            &[
                "dump",
                "--database-url",
                &format!("mysql://{user}:{password}@127.0.0.1:1/db"),
                "--store",
                &store_arg,
            ],
            &[],
        ),
        run_cli(
            &[
                "dump",
                "--database-url",
                &format!("mysql://{user}:{password}@{host_port}"),
                "--store",
                &store_arg,
            ],
            &[],
        ),
        run_cli(
            &[
                "dump",
                "--database-url",
                &format!("mysql//{user}:{password}@{host_port}/x"),
                "--store",
                &store_arg,
            ],
            &[],
        ),
    ];
    let denied = run_cli(
        &[
            "dump",
            "--database-url",
            &format!("mysql://{user}:{wrong}@{host_port}/{source}"),
            "--store",
            &store_arg,
        ],
        &[],
    );
    assert!(!denied.status.success());
    let denied_text = String::from_utf8_lossy(&denied.stderr).to_string();
    assert!(
        denied_text.contains(&format!("refused user \"{user}\"")),
        "{denied_text}"
    );
    assert!(
        !denied_text.contains(&wrong),
        "the wrong password was echoed:\n{denied_text}"
    );
    outputs.push(denied);

    assert_ok(&outputs[0]);
    assert_ok(&outputs[1]);
    assert_ok(&outputs[2]);
    for output in &outputs {
        let all = text(output);
        assert!(!all.contains(&password), "password leaked:\n{all}");
    }
    for file in walk(store.path()) {
        let bytes = std::fs::read(&file).expect("read");
        let mut content = bytes.clone();
        if file.extension().is_some_and(|e| e == "gz") {
            use std::io::Read;
            content.clear();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut content)
                .expect("gunzip");
        }
        assert!(
            !String::from_utf8_lossy(&content).contains(&password),
            "password found in {}",
            file.display()
        );
    }
    admin
        .query_drop(format!("DROP USER '{user}'@'%'"))
        .await
        .expect("drop user");
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_privilege_fails_instead_of_shrinking_the_backup() {
    let source = small_database("privileges").await;
    let user = unique_name("weak_user");
    let mut admin = admin().await;
    admin
        .query_drop(format!(
            "CREATE USER '{user}'@'%';
             GRANT SELECT, SHOW VIEW, EVENT, LOCK TABLES ON `{source}`.* TO '{user}'@'%';"
        ))
        .await
        .expect("create user");
    let host_port = server_url()
        .trim_start_matches("mysql://")
        .split('@')
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    let store = tempfile::tempdir().expect("temp dir");
    let output = run_cli(
        &[
            "dump",
            "--database-url",
            &format!("mysql://{user}@{host_port}/{source}"),
            "--store",
            store.path().to_str().unwrap_or_default(),
        ],
        &[],
    );
    assert!(
        !output.status.success(),
        "a dump that cannot see triggers must fail:\n{}",
        text(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("lacks the TRIGGER privilege"), "{stderr}");

    admin
        .query_drop(format!("GRANT TRIGGER ON `{source}`.* TO '{user}'@'%'"))
        .await
        .expect("grant");
    let output = run_cli(
        &[
            "dump",
            "--database-url",
            &format!("mysql://{user}@{host_port}/{source}"),
            "--store",
            store.path().to_str().unwrap_or_default(),
        ],
        &[],
    );
    assert_ok(&output);
    admin
        .query_drop(format!("DROP USER '{user}'@'%'"))
        .await
        .expect("drop user");
    drop_database(&source).await;
}

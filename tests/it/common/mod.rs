//! Shared helpers for the integration tests: a real MariaDB server (started by `scripts/test`
//! and named in TEST_DATABASE_URL), the real `toc-backup` binary and the real `mariadb` client.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use std::path::PathBuf;
use toc_sis_backup::config::DatabaseUrl;

pub const BIN: &str = env!("CARGO_BIN_EXE_toc-backup");

/// The test server's URL without a database, e.g. `mysql://root@127.0.0.1:3307/`.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL").expect(
        "TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts a private MariaDB",
    )
}

/// `host:port` of the test server.
pub fn server_host_port() -> String {
    let url = DatabaseUrl::parse(&server_url()).expect("TEST_DATABASE_URL parses");
    url.address()
}

pub fn url_for(database: &str) -> String {
    format!(
        "{}{database}",
        server_url().trim_end_matches('/').to_string() + "/"
    )
}

pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{:08x}", rand::random::<u32>())
}

pub async fn admin() -> Conn {
    let url = DatabaseUrl::parse(&server_url()).expect("TEST_DATABASE_URL parses");
    toc_sis_backup::mysql::connect(&url, None)
        .await
        .expect("connect to the test server")
}

pub async fn connect_to(database: &str) -> Conn {
    let url = DatabaseUrl::parse(&url_for(database)).expect("URL parses");
    toc_sis_backup::mysql::connect(&url, Some(database))
        .await
        .expect("connect to the test database")
}

pub async fn create_database(name: &str) {
    let mut conn = admin().await;
    conn.query_drop(format!(
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
    ))
    .await
    .expect("create database");
}

/// The real `mariadb` client pointed at the test server, password (if any) in MYSQL_PWD.
pub fn mariadb_client(database: Option<&str>) -> Command {
    let url = DatabaseUrl::parse(&server_url()).expect("URL parses");
    let mut command = Command::new("mariadb");
    command
        .arg("--no-defaults")
        .arg(format!("--host={}", url.host))
        .arg(format!("--port={}", url.port))
        .arg(format!("--user={}", url.user))
        .arg("--default-character-set=utf8mb4");
    if let Some(password) = url.password() {
        command.env("MYSQL_PWD", password);
    }
    if let Some(database) = database {
        command.arg(database);
    }
    command
}

/// Loads an SQL script with the real client.
pub fn load_script(database: &str, script: &Path) {
    let file = std::fs::File::open(script).expect("open script");
    let status = mariadb_client(Some(database))
        .stdin(file)
        .status()
        .expect("run mariadb");
    assert!(status.success(), "loading {} failed", script.display());
}

/// Runs `command` with `input` on its standard input, its output captured.
pub fn run_with_input(command: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write the input");
    child.wait_with_output().expect("wait for the command")
}

/// Runs `toc-backup` with arguments and extra environment.
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_STORE")
        .env("NO_COLOR", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    command
        .stdin(Stdio::null())
        .output()
        .expect("run toc-backup")
}

pub fn text(output: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "toc-backup failed:\n{}",
        text(output)
    );
}

pub fn dump(database: &str, store: &Path) -> Output {
    dump_into(database, store.to_str().unwrap_or_default(), &[])
}

/// A full backup of `database` into any store (a folder or `s3://…`), with extra environment.
pub fn dump_into(database: &str, store: &str, env: &[(&str, &str)]) -> Output {
    run_cli(
        &[
            "dump",
            "--database-url",
            &url_for(database),
            "--store",
            store,
        ],
        env,
    )
}

pub fn restore(store: &Path, backup: &str, target: &str) -> Output {
    restore_into(store.to_str().unwrap_or_default(), backup, target, &[])
}

/// Restores `backup` from any store (a folder or `s3://…`) into `target`, with extra environment.
pub fn restore_into(store: &str, backup: &str, target: &str, env: &[(&str, &str)]) -> Output {
    run_cli(
        &[
            "restore",
            "--database-url",
            &server_url(),
            "--store",
            store,
            "--backup",
            backup,
            "--target-database",
            target,
        ],
        env,
    )
}

/// Restores the backup with nothing but `cat`, `gunzip` and the `mariadb` client.
pub fn restore_with_standard_tools(backup_dir: &Path, target: &str) {
    let url = DatabaseUrl::parse(&server_url()).expect("URL parses");
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail; cd '{}' && cat $(ls *.sql.gz) | gunzip | mariadb --no-defaults --comments --host={} --port={} --user={} '{}'",
            backup_dir.display(),
            url.host,
            url.port,
            url.user,
            target
        ))
        .env("MYSQL_PWD", url.password().unwrap_or_default())
        .status()
        .expect("run the emergency pipeline");
    assert!(status.success(), "cat | gunzip | mariadb failed");
}

pub fn only_backup_dir(store: &Path) -> std::path::PathBuf {
    let daily = store.join("database/daily");
    let mut dirs: Vec<_> = std::fs::read_dir(&daily)
        .expect("daily folder")
        .map(|e| e.expect("entry").path())
        .collect();
    dirs.sort();
    dirs.pop().expect("a backup folder")
}

fn row_string(row: &Row, index: usize) -> String {
    match row.as_ref(index) {
        Some(mysql_async::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(mysql_async::Value::NULL) | None => "NULL".into(),
        Some(other) => format!("{other:?}"),
    }
}

/// `CHECKSUM TABLE` of every base table.
pub async fn checksums(database: &str) -> BTreeMap<String, String> {
    let mut conn = connect_to(database).await;
    let tables: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
            (database,),
        )
        .await
        .expect("list tables");
    let mut sums = BTreeMap::new();
    for table in tables {
        let row: Row = conn
            .query_first(format!("CHECKSUM TABLE `{}`", table.replace('`', "``")))
            .await
            .expect("checksum")
            .expect("a row");
        sums.insert(table, row_string(&row, 1));
    }
    sums
}

/// `SHOW CREATE` of every table, view, routine, trigger and event (all columns but timestamps).
pub async fn definitions(database: &str) -> BTreeMap<String, String> {
    let mut conn = connect_to(database).await;
    let mut found = BTreeMap::new();
    let objects: Vec<(String, String)> = conn
        .exec(
            "SELECT TABLE_NAME, IF(TABLE_TYPE = 'VIEW', 'VIEW', 'TABLE') FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
             UNION ALL SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? \
             UNION ALL SELECT TRIGGER_NAME, 'TRIGGER' FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? \
             UNION ALL SELECT EVENT_NAME, 'EVENT' FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
            (database, database, database, database),
        )
        .await
        .expect("list objects");
    for (name, kind) in objects {
        let row: Row = conn
            .query_first(format!("SHOW CREATE {kind} `{}`", name.replace('`', "``")))
            .await
            .expect("show create")
            .expect("a row");
        let columns = row.columns_ref().to_vec();
        let mut text = String::new();
        for (i, column) in columns.iter().enumerate() {
            let column_name = column.name_str();
            if column_name == "Created" {
                continue; // a trigger's creation time is not part of its definition
            }
            text.push_str(&format!("{column_name}: {}\n", row_string(&row, i)));
        }
        found.insert(format!("{kind} {name}"), text);
    }
    found
}

pub async fn drop_database(name: &str) {
    let mut conn = admin().await;
    let _ = conn
        .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
        .await;
}

/// A small database: three tables, `a_first`, `b_blocked`, `c_later`, in dump order.
pub async fn small_database(prefix: &str) -> String {
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

/// The first file called `name` anywhere under `store`.
pub fn find_file(store: &Path, name: &str) -> std::path::PathBuf {
    walkdir::WalkDir::new(store)
        .into_iter()
        .filter_map(Result::ok)
        .find(|entry| entry.file_name() == name)
        .unwrap_or_else(|| panic!("no {name} under {}", store.display()))
        .into_path()
}

/// `toc-backup list --all --json`, parsed.
pub fn list_json(store: &Path) -> serde_json::Value {
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

/// Every file below `dir`, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
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

/// The check called `name` in a `status`/`monitor` JSON report.
pub fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

pub mod aws;
pub mod fault_proxy;
pub mod lambda_api;
pub mod private_server;
pub mod tree;

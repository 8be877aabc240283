//! Issue 16: rows reach the server as `LOAD DATA LOCAL INFILE` where it allows that, and as the
//! backup's own INSERTs where it does not (MySQL 8's default, an RDS parameter group with
//! `local_infile=0`). Both must restore the nasty schema exactly; the LOAD DATA path is the one
//! every other test takes on the shared server (MariaDB allows it by default).

use std::path::Path;

use crate::common::private_server::PrivateServer;
use crate::common::*;

fn checksum(server: &PrivateServer, database: &str) -> String {
    let tables = server.root_query(
        None,
        &format!(
            "SELECT GROUP_CONCAT(CONCAT('`', TABLE_NAME, '`') ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' AND TABLE_TYPE = 'BASE TABLE'"
        ),
    );
    let checksums = server.root_query(
        Some(database),
        &format!("CHECKSUM TABLE {} EXTENDED", tables.trim()),
    );
    // `database.table checksum` lines: compare copies by table name and checksum.
    checksums
        .lines()
        .map(|l| l.split_once('.').map_or(l, |(_, rest)| rest).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_server_without_local_infile_restores_through_the_inserts() {
    let server = PrivateServer::start("--local-infile=0");
    let fixture = std::fs::read_to_string(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/nasty.sql"
    )))
    .expect("fixture");
    server.root_sql(&format!(
        "CREATE DATABASE src; USE src;\n{fixture}\n\
         CREATE TABLE src.many (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB;\n\
         INSERT INTO src.many SELECT seq, CONCAT('tab\\there ', seq) FROM seq_1_to_20000;"
    ));
    let store = tempfile::tempdir().expect("store");
    let store_arg = store.path().to_str().unwrap_or_default();
    assert_ok(&run_cli(
        &[
            "dump",
            "--database-url",
            &server.url("root", "127.0.0.1", "src"),
            "--store",
            store_arg,
        ],
        &[],
    ));
    let restored = run_cli(
        &[
            "restore",
            "--database-url",
            &server.url("root", "127.0.0.1", ""),
            "--store",
            store_arg,
            "--target-database",
            "copy",
        ],
        &[],
    );
    assert_ok(&restored);
    assert!(
        String::from_utf8_lossy(&restored.stderr).contains("does not allow LOAD DATA LOCAL INFILE"),
        "{}",
        text(&restored)
    );
    let source = checksum(&server, "src");
    assert!(source.contains("many"), "{source}");
    assert_eq!(checksum(&server, "copy"), source);
}

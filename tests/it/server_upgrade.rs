//! Issue 13: incrementals keep working after the server is upgraded. MariaDB 10.4 wrote a
//! `utf8mb3` column as `CHARACTER SET utf8`; 10.6+ writes `CHARACTER SET utf8mb3 COLLATE
//! utf8mb3_general_ci` for the same table. Only one server version installs here, so the chain's
//! full backup is made on it and then rewritten to be what 10.4 would have stored (its DDL text,
//! its definition hash, its version), resealed with the tool's own manifest code.

use std::io::{Read, Write};
use std::path::Path;

use crate::common::*;
use mysql_async::prelude::Queryable;
use sha2::{Digest, Sha256};
use toc_sis_backup::manifest::Manifest;
use toc_sis_backup::mysql::schema::{sha256_hex, strip_auto_increment};

const OLD_SERVER: &str = "10.4.34-MariaDB-log";
const NEW_RENDERING: &str = "CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci";
const OLD_RENDERING: &str = "CHARACTER SET utf8";

async fn marks_database() -> String {
    let name = unique_name("upgrade");
    create_database(&name).await;
    connect_to(&name)
        .await
        .query_drop(
            "CREATE TABLE marks (
               id INT NOT NULL PRIMARY KEY, code VARCHAR(10) CHARACTER SET utf8mb3 NULL,
               mark DECIMAL(5,2) NOT NULL,
               updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
             ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
             INSERT INTO marks (id, code, mark) SELECT seq, CONCAT('M', seq), seq % 100 FROM seq_1_to_500;",
        )
        .await
        .expect("marks schema");
    name
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open"))
        .read_to_string(&mut text)
        .expect("gunzip");
    text
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Rewrites the store's only full backup as MariaDB 10.4 would have written it.
fn pretend_made_on_mariadb_10_4(store: &Path) {
    let dir = only_backup_dir(store);
    let manifest_path = dir.join("manifest.json");
    let mut manifest = Manifest::open(
        "manifest.json",
        &std::fs::read(&manifest_path).expect("read"),
    )
    .expect("opens");
    let schema = manifest
        .files
        .iter_mut()
        .find(|f| f.name.ends_with("-schema.sql.gz"))
        .expect("a schema file");
    let old_text = gunzip(&dir.join(&schema.name)).replace(NEW_RENDERING, OLD_RENDERING);
    let create_start = old_text.find("CREATE TABLE `marks`").expect("marks DDL");
    let create_end = create_start + old_text[create_start..].find(";\n").expect("statement end");
    let old_create = &old_text[create_start..create_end];
    assert!(old_create.contains("CHARACTER SET utf8 "), "{old_create}");
    let bytes = gzip(&old_text);
    std::fs::write(dir.join(&schema.name), &bytes).expect("write schema");
    schema.bytes = bytes.len() as u64;
    schema.uncompressed_bytes = old_text.len() as u64;
    schema.sha256 = hex::encode(Sha256::digest(&bytes));
    let marks = manifest
        .tables
        .iter_mut()
        .find(|t| t.name == "marks")
        .expect("marks recorded");
    marks.definition_sha256 = sha256_hex(&[strip_auto_increment(old_create).as_str()]);
    manifest.server.version = OLD_SERVER.into();
    std::fs::write(&manifest_path, manifest.seal().expect("seal")).expect("write manifest");
}

fn incremental(database: &str, store: &Path) -> std::process::Output {
    run_cli(
        &[
            "incremental",
            "--database-url",
            &url_for(database),
            "--store",
            store.to_str().unwrap_or_default(),
            "--tables",
            "marks",
        ],
        &[],
    )
}

/// An incremental that must fail; answers what it said.
fn refused_incremental(database: &str, store: &Path) -> String {
    let refused = incremental(database, store);
    assert!(!refused.status.success(), "{}", text(&refused));
    String::from_utf8_lossy(&refused.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_after_a_server_upgrade_continues_the_chain() {
    let source = marks_database().await;
    let store = tempfile::tempdir().expect("temp dir");
    assert_ok(&dump(&source, store.path()));
    pretend_made_on_mariadb_10_4(store.path());
    assert_ok(&run_cli(
        &[
            "verify",
            "--store",
            store.path().to_str().unwrap_or_default(),
        ],
        &[],
    ));

    connect_to(&source)
        .await
        .query_drop(
            "UPDATE marks SET mark = mark + 1 WHERE id % 10 = 0;
             DELETE FROM marks WHERE id BETWEEN 100 AND 120;
             INSERT INTO marks (id, code, mark) VALUES (1000, 'Ó1000', 99.5);",
        )
        .await
        .expect("changes");
    let output = incremental(&source, store.path());
    assert_ok(&output);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("server upgrade"),
        "the log says why the definition was accepted: {}",
        text(&output)
    );

    let copy = unique_name("upgraded");
    assert_ok(&restore(store.path(), "latest", &copy));
    assert_eq!(checksums(&copy).await, checksums(&source).await);
    drop_database(&copy).await;

    // A real change after the upgrade still starts a new chain.
    connect_to(&source)
        .await
        .query_drop("ALTER TABLE marks MODIFY code VARCHAR(20) CHARACTER SET utf8mb3 NULL")
        .await
        .expect("alter");
    let stderr = refused_incremental(&source, store.path());
    assert!(
        stderr.contains("cannot track table `marks`")
            && stderr.contains("upgraded since the chain's full backup")
            && stderr.contains(OLD_SERVER)
            && stderr.contains("columns or indexes differ")
            && stderr.contains("take a full backup"),
        "{stderr}"
    );
    drop_database(&source).await;
}

/// Without the upgrade, a different definition is an ALTER: refused as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_server_with_another_definition_is_refused() {
    let source = marks_database().await;
    let store = tempfile::tempdir().expect("temp dir");
    assert_ok(&dump(&source, store.path()));
    connect_to(&source)
        .await
        .query_drop("ALTER TABLE marks ADD INDEX by_code (code)")
        .await
        .expect("alter");
    let stderr = refused_incremental(&source, store.path());
    assert!(
        stderr.contains("its definition differs from the chain's full backup"),
        "{stderr}"
    );
    drop_database(&source).await;
}

/// The shape holds each index's uniqueness and column order, not only its name: an index made
/// UNIQUE after the upgrade is a change, which starts a new chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_made_unique_after_an_upgrade_is_refused() {
    let source = marks_database().await;
    connect_to(&source)
        .await
        .query_drop("ALTER TABLE marks ADD INDEX by_code (code)")
        .await
        .expect("index");
    let store = tempfile::tempdir().expect("temp dir");
    assert_ok(&dump(&source, store.path()));
    pretend_made_on_mariadb_10_4(store.path());
    assert_ok(&incremental(&source, store.path()));
    connect_to(&source)
        .await
        .query_drop("ALTER TABLE marks DROP INDEX by_code, ADD UNIQUE INDEX by_code (code)")
        .await
        .expect("unique index");
    let stderr = refused_incremental(&source, store.path());
    assert!(stderr.contains("columns or indexes differ"), "{stderr}");
    drop_database(&source).await;
}

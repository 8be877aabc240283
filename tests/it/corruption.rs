//! Done-means 4: a corrupted byte in any stored file fails `verify`, naming the file, and
//! `restore` refuses the backup before touching the server.

use crate::common::*;
use mysql_async::prelude::Queryable;

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

    // The catalog index is not part of any backup: damaged, it is set aside (below).
    let index = store.path().join("catalog/index.json.gz");
    let files: Vec<_> = walk(store.path())
        .into_iter()
        .filter(|f| !f.starts_with(store.path().join("catalog")))
        .collect();
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

    // A damaged catalog index costs speed, never a backup: it is named, every manifest is
    // read instead, and a rebuild makes it whole.
    let original = std::fs::read(&index).expect("the dump wrote a catalog index");
    let mut damaged = original.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x01;
    std::fs::write(&index, &damaged).expect("write");
    let verify = run_cli(&["verify", "--store", &store_arg], &[]);
    assert_ok(&verify);
    assert!(
        text(&verify).contains("catalog index") && text(&verify).contains("catalog rebuild"),
        "{}",
        text(&verify)
    );
    assert_ok(&run_cli(
        &["catalog", "rebuild", "--store", &store_arg],
        &[],
    ));
    let verify = run_cli(&["verify", "--store", &store_arg], &[]);
    assert_ok(&verify);
    assert!(
        !text(&verify).contains("catalog rebuild"),
        "{}",
        text(&verify)
    );
    drop_database(&source).await;
}

/// Issue 19: `verify` of the latest point checks what its restore would read: a damaged file
/// of the full backup under a sound incremental fails it, naming the full and the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_checks_the_whole_chain_under_an_incremental() {
    let source = unique_name("corrupt_chain");
    create_database(&source).await;
    let mut conn = connect_to(&source).await;
    conn.query_drop(
        "CREATE TABLE student_grade_records (id INT PRIMARY KEY, grade DECIMAL(5,2),
           updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6));
         INSERT INTO student_grade_records (id, grade) SELECT seq, seq % 100 FROM seq_1_to_300;",
    )
    .await
    .expect("fixture");
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    assert_ok(&dump(&source, store.path()));
    conn.query_drop("UPDATE student_grade_records SET grade = 1 WHERE id < 10")
        .await
        .expect("change");
    assert_ok(&run_cli(
        &[
            "incremental",
            "--database-url",
            &url_for(&source),
            "--store",
            &store_arg,
            "--tables",
            "student_grade_records",
        ],
        &[],
    ));
    let full_data = walk(store.path())
        .into_iter()
        .find(|f| {
            f.to_string_lossy().contains("/database/daily/")
                && f.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("1-"))
        })
        .expect("a data file of the full backup");
    let mut damaged = std::fs::read(&full_data).expect("read");
    let at = damaged.len() / 2;
    damaged[at] ^= 0x01;
    std::fs::write(&full_data, &damaged).expect("write");

    let verify = run_cli(&["verify", "--store", &store_arg], &[]);
    assert!(
        !verify.status.success(),
        "verify of the latest incremental passed over its full backup:\n{}",
        text(&verify)
    );
    let message = String::from_utf8_lossy(&verify.stderr);
    let name = full_data
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    assert!(
        message.contains(name) && message.contains("the full backup"),
        "{message}"
    );
    drop_database(&source).await;
}

//! Done-means 4: a corrupted byte in any stored file fails `verify`, naming the file, and
//! `restore` refuses the backup before touching the server.

mod common;

use common::*;
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

//! The sample TOC-SIS database through a multi-part backup, a parallel restore, the emergency
//! pipeline, `list` and retention.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_database_backs_up_in_parts_and_restores_in_parallel() {
    let source = unique_name("toc_sis");
    assert_ok(&run_cli(
        &[
            "sample-data",
            "--database-url",
            &url_for(&source),
            "--seed",
            "7",
        ],
        &[],
    ));
    let again = unique_name("toc_sis_again");
    assert_ok(&run_cli(
        &[
            "sample-data",
            "--database-url",
            &url_for(&again),
            "--seed",
            "7",
        ],
        &[],
    ));
    let expected = checksums(&source).await;
    assert_eq!(
        checksums(&again).await,
        expected,
        "the same seed must give the same rows"
    );
    let refused = run_cli(&["sample-data", "--database-url", &url_for(&source)], &[]);
    assert!(
        !refused.status.success(),
        "sample-data must not overwrite an existing database"
    );

    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    let output = run_cli(
        &[
            "dump",
            "--database-url",
            &url_for(&source),
            "--store",
            &store_arg,
            "--split-mb",
            "1",
            "--json",
        ],
        &[],
    );
    assert_ok(&output);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("dump --json");
    let backup_id = report["backup_id"].as_str().expect("backup id").to_string();
    assert_eq!(report["tables"], 14);

    let dir = only_backup_dir(store.path());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    let grade_parts = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["table"] == "student_grade_records")
        .count();
    assert!(
        grade_parts >= 2,
        "a table bigger than --split-mb must span several files, got {grade_parts}"
    );
    assert!(
        manifest["snapshot"]["binlog_file"].is_string(),
        "binlog position recorded: {}",
        manifest["snapshot"]
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .filter(|name| name.ends_with(".sql.gz"))
        .collect();
    assert!(
        manifest["files"]
            .as_array()
            .expect("files")
            .iter()
            .any(|f| f["stage"] == "state"),
        "tables with integer keys carry a key state"
    );
    let sql_files: Vec<&String> = sorted.iter().filter(|n| n.ends_with(".sql.gz")).collect();
    assert_eq!(
        sql_files, listed,
        "file names must sort into the manifest's restore order"
    );

    let copy = unique_name("toc_sis_copy");
    let restored = run_cli(
        &[
            "restore",
            "--database-url",
            &server_url(),
            "--store",
            &store_arg,
            "--backup",
            &backup_id,
            "--target-database",
            &copy,
            "--jobs",
            "3",
        ],
        &[],
    );
    assert_ok(&restored);
    assert_eq!(checksums(&copy).await, expected);

    let plain = unique_name("toc_sis_plain");
    create_database(&plain).await;
    restore_with_standard_tools(&dir, &plain);
    assert_eq!(checksums(&plain).await, expected);
    assert_eq!(definitions(&plain).await, definitions(&source).await);

    for db in [&source, &again, &copy, &plain] {
        drop_database(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_newest_and_removes_stale_leftovers() {
    let source = small_database("retention").await;
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    for _ in 0..3 {
        assert_ok(&run_cli(
            &[
                "dump",
                "--database-url",
                &url_for(&source),
                "--store",
                &store_arg,
                "--no-prune",
            ],
            &[],
        ));
    }
    // A run killed long ago, and one that may still be writing.
    for (id, file) in [
        ("20200101T000000Z-dead", "0-00000-000000-schema.sql.gz"),
        ("29990101T000000Z-live", "x.sql.gz"),
    ] {
        let dir = store.path().join("database/daily").join(id);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(file), b"partial").expect("write");
    }
    let before = list_json(store.path());
    let complete: Vec<String> = before
        .as_array()
        .expect("array")
        .iter()
        .filter(|b| b["status"] == "complete")
        .filter_map(|b| b["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(complete.len(), 3);

    let pruned = run_cli(
        &[
            "prune",
            "--store",
            &store_arg,
            "--keep-days",
            "0",
            "--keep-min",
            "1",
            "--json",
        ],
        &[],
    );
    assert_ok(&pruned);
    let after = list_json(store.path());
    let ids: Vec<&str> = after
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec!["29990101T000000Z-live", complete[0].as_str()],
        "{after}"
    );
    assert!(!store
        .path()
        .join("database/daily/20200101T000000Z-dead")
        .exists());
    assert_ok(&run_cli(&["verify", "--store", &store_arg], &[]));
    let cost = run_cli(&["cost", "--store", &store_arg, "--json"], &[]);
    assert_ok(&cost);
    let cost: serde_json::Value = serde_json::from_slice(&cost.stdout).expect("cost --json");
    assert!(
        cost["workload"]["full_bytes"].as_f64().unwrap_or(0.0) > 0.0,
        "{cost}"
    );
    assert!(
        cost["steady_state"]["usd_per_month"]
            .as_f64()
            .unwrap_or(0.0)
            > cost["today_usd_per_month"].as_f64().unwrap_or(0.0),
        "seven years of backups cost more than one: {cost}"
    );
    drop_database(&source).await;
}

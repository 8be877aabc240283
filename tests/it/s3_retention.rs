//! Issue 15: in S3 the bucket's lifecycle and Object Lock keep backups for years, so no command
//! of this tool deletes a complete backup there by accident: the dump does not prune an S3
//! store, `prune` is refused, and only backups named with an explicit flag are deleted.

use crate::common::*;

fn ids(store: &str) -> Vec<String> {
    let output = run_cli(&["list", "--store", store, "--json"], &[]);
    assert_ok(&output);
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let mut ids: Vec<String> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_deletes_a_backup_from_s3_unless_named_and_overridden() {
    let source = small_database("s3_keep").await;
    let bucket = aws::bucket("toc-keep").await;
    let store = format!("s3://{bucket}/college");
    // Retention that would delete all but the newest backup of a local folder.
    let dump = || {
        run_cli(
            &[
                "dump",
                "--database-url",
                &url_for(&source),
                "--store",
                &store,
                "--keep-days",
                "0",
                "--keep-min",
                "1",
            ],
            &[],
        )
    };
    assert_ok(&dump());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_ok(&dump());
    let both = ids(&store);
    assert_eq!(both.len(), 2, "the dump pruned the S3 store: {both:?}");

    let refused = run_cli(
        &[
            "prune",
            "--store",
            &store,
            "--keep-days",
            "0",
            "--keep-min",
            "1",
        ],
        &[],
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("refusing to prune")
            && said.contains("Object Lock")
            && said.contains("--override-bucket-retention"),
        "{said}"
    );
    let named_only = run_cli(&["prune", "--store", &store, "--backup", &both[0]], &[]);
    assert!(!named_only.status.success(), "{}", text(&named_only));
    assert_eq!(ids(&store), both, "a refused prune deleted something");

    assert_ok(&run_cli(
        &[
            "prune",
            "--store",
            &store,
            "--backup",
            &both[0],
            "--override-bucket-retention",
        ],
        &[],
    ));
    assert_eq!(ids(&store), both[1..].to_vec());
    drop_database(&source).await;
}

//! Issue 3, tests 1, 2 and 5: backups in S3 (moto on loopback) round-trip exactly, are
//! encrypted and tagged; a bucket that rejects a write mid-dump aborts the multipart upload,
//! leaves the previous backup latest and alerts through SNS.

use std::path::Path;

use crate::common::*;
use mysql_async::prelude::Queryable;

fn s3_cli(args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
    let mut env: Vec<(&str, &str)> = vec![("BACKUP_S3_PART_SIZE_MB", "5")];
    env.extend_from_slice(extra);
    run_cli(args, &env)
}

/// The stack's BackupKey, as the template passes it to every function.
const BACKUP_KEY: &str =
    "arn:aws:kms:eu-west-1:123456789012:key/8f3c1d2e-0000-4000-8000-backupkey001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_to_s3_and_restore_from_s3_is_exact_encrypted_and_tagged() {
    let source = unique_name("nasty_s3");
    create_database(&source).await;
    load_script(
        &source,
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/nasty.sql"
        )),
    );
    // A table big enough, and random enough, that its data file needs a multipart upload.
    connect_to(&source)
        .await
        .query_drop("CREATE TABLE zz_attachments (id INT PRIMARY KEY, body BLOB NOT NULL); INSERT INTO zz_attachments SELECT seq, RANDOM_BYTES(1000) FROM seq_1_to_7000")
        .await
        .expect("attachments");
    let bucket = aws::bucket("toc-backups").await;
    let store = format!("s3://{bucket}/college");

    let dumped = s3_cli(
        &[
            "dump",
            "--database-url",
            &url_for(&source),
            "--store",
            &store,
            "--json",
        ],
        &[("BACKUP_KMS_KEY_ID", BACKUP_KEY)],
    );
    assert_ok(&dumped);
    let report: serde_json::Value = serde_json::from_slice(&dumped.stdout).expect("json");
    let id = report["backup_id"].as_str().expect("id").to_string();

    let copy = unique_name("nasty_from_s3");
    assert_ok(&restore_into(
        &store,
        "latest",
        &copy,
        &[("BACKUP_S3_PART_SIZE_MB", "5")],
    ));
    assert_eq!(checksums(&copy).await, checksums(&source).await);
    assert_eq!(definitions(&copy).await, definitions(&source).await);
    assert_ok(&s3_cli(&["verify", "--store", &store], &[]));

    let s3 = aws::s3().await;
    let keys = aws::keys(&bucket, &format!("college/database/daily/{id}/")).await;
    assert!(
        keys.iter().any(|k| k.ends_with("/manifest.json")),
        "{keys:?}"
    );
    let mut multipart = false;
    for key in &keys {
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .expect("head");
        assert_eq!(
            head.server_side_encryption().map(|s| s.as_str()),
            Some("aws:kms"),
            "{key} must be encrypted with SSE-KMS"
        );
        assert_eq!(
            head.ssekms_key_id(),
            Some(BACKUP_KEY),
            "{key} must be encrypted with the backup key, not the account's aws/s3 key"
        );
        multipart |= head.e_tag().is_some_and(|t| t.contains('-'));
        let tags = s3
            .get_object_tagging()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .expect("tags");
        let tag_pairs: Vec<(String, String)> = tags
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        assert!(
            tag_pairs.contains(&("backup-kind".into(), "database-daily".into())),
            "{key}: {tag_pairs:?}"
        );
        assert!(
            tag_pairs.iter().any(|(k, _)| k == "retention-class"),
            "{key}: {tag_pairs:?}"
        );
    }
    assert!(
        multipart,
        "the attachments file must have gone through a multipart upload"
    );
    drop_database(&source).await;
    drop_database(&copy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_rejects_a_write_mid_dump_aborts_and_alerts() {
    let source = unique_name("rejected");
    create_database(&source).await;
    connect_to(&source)
        .await
        .query_drop(
            "CREATE TABLE a_small (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO a_small SELECT seq, 'x' FROM seq_1_to_100;
             CREATE TABLE b_big (id INT PRIMARY KEY, body BLOB NOT NULL); INSERT INTO b_big SELECT seq, RANDOM_BYTES(1000) FROM seq_1_to_7000;",
        )
        .await
        .expect("fixture");
    let bucket = aws::bucket("toc-rejecting").await;
    let store = format!("s3://{bucket}/college");
    let alerts = aws::Alerts::new().await;
    assert_ok(&s3_cli(
        &[
            "dump",
            "--database-url",
            &url_for(&source),
            "--store",
            &store,
        ],
        &[],
    ));
    let previous = catalog_ids(&store);
    assert_eq!(previous.len(), 1);

    // From now on the bucket refuses writes of the big table's data file, after the upload
    // of its first part has begun.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
            "Resource": format!("arn:aws:s3:::{bucket}/college/database/daily/*/1-00002-*")
        }]
    });
    let s3 = aws::s3().await;
    s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(policy.to_string())
        .send()
        .await
        .expect("policy");

    let failed = s3_cli(
        &[
            "dump",
            "--database-url",
            &url_for(&source),
            "--store",
            &store,
        ],
        &[("SNS_TOPIC_ARN", &alerts.topic_arn)],
    );
    assert!(
        !failed.status.success(),
        "a rejected write must fail the dump:\n{}",
        text(&failed)
    );
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains(&format!("s3://{bucket}/college/database/daily/")),
        "the bucket must be named:\n{stderr}"
    );
    assert!(
        stderr.contains("1-00002-000001-b_big.sql.gz"),
        "the key must be named:\n{stderr}"
    );
    assert!(
        stderr.contains("multipart upload aborted"),
        "the upload must be aborted:\n{stderr}"
    );

    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .expect("list uploads");
    assert!(
        uploads.uploads().is_empty(),
        "no multipart upload may be left open: {:?}",
        uploads.uploads()
    );
    assert_eq!(
        catalog_ids(&store),
        previous,
        "the previous backup must still be the only, latest one"
    );

    let received = alerts.received().await;
    assert!(
        received.iter().any(|(subject, body)| subject
            .starts_with("[TOC-SIS backup] CRITICAL: full backup of")
            && subject.contains("FAILED")
            && body.contains("b_big")),
        "no SNS alert naming the failure: {received:?}"
    );
    drop_database(&source).await;
}

/// Ids listed by `toc-backup list --all --json` for an S3 store.
fn catalog_ids(store: &str) -> Vec<String> {
    let output = run_cli(&["list", "--store", store, "--all", "--json"], &[]);
    assert_ok(&output);
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["id"].as_str().map(str::to_string))
        .collect()
}

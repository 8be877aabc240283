//! Issue 15, part 2: a backup older than 90 days is in S3 Glacier (Deep Archive after a year).
//! `restore` and `verify` refuse it with one message (files, bytes, classes, time and cost per
//! tier, the command to run); `retrieve` asks S3 for the files and reports each one; then the
//! restore is exact. The emulator keeps storage classes and answers RestoreObject.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_backup_is_refused_then_retrieved_then_restored_exactly() {
    let source = small_database("archived").await;
    let bucket = aws::bucket("toc-archive").await;
    let store = format!("s3://{bucket}/college");
    assert_ok(&dump_into(&source, &store, &[]));

    // What the lifecycle does at 90 and 365 days: data files move, the manifest stays.
    let s3 = aws::s3().await;
    let data: Vec<String> = aws::keys(&bucket, "college/database/daily/")
        .await
        .into_iter()
        .filter(|k| !k.ends_with("/manifest.json"))
        .collect();
    assert!(data.len() >= 3, "{data:?}");
    for (n, key) in data.iter().enumerate() {
        let class = if n == 0 {
            aws_sdk_s3::types::StorageClass::DeepArchive
        } else {
            aws_sdk_s3::types::StorageClass::Glacier
        };
        s3.copy_object()
            .bucket(&bucket)
            .key(key)
            .copy_source(format!("{bucket}/{key}"))
            .storage_class(class)
            .send()
            .await
            .expect("archive");
    }

    // `list` shows the class the bucket's lifecycle has moved each backup to by its age.
    let rule = |id: &str, days: i32, class: aws_sdk_s3::types::TransitionStorageClass| {
        aws_sdk_s3::types::LifecycleRule::builder()
            .id(id)
            .status(aws_sdk_s3::types::ExpirationStatus::Enabled)
            .filter(
                aws_sdk_s3::types::LifecycleRuleFilter::builder()
                    .and(
                        aws_sdk_s3::types::LifecycleRuleAndOperator::builder()
                            .prefix("college/database/daily/")
                            .tags(
                                aws_sdk_s3::types::Tag::builder()
                                    .key("backup-object")
                                    .value("data")
                                    .build()
                                    .expect("tag"),
                            )
                            .build(),
                    )
                    .build(),
            )
            .transitions(
                aws_sdk_s3::types::Transition::builder()
                    .days(days)
                    .storage_class(class)
                    .build(),
            )
            .build()
            .expect("rule")
    };
    s3.put_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .lifecycle_configuration(
            aws_sdk_s3::types::BucketLifecycleConfiguration::builder()
                .rules(rule(
                    "now",
                    0,
                    aws_sdk_s3::types::TransitionStorageClass::Glacier,
                ))
                .rules(rule(
                    "later",
                    365,
                    aws_sdk_s3::types::TransitionStorageClass::DeepArchive,
                ))
                .build()
                .expect("lifecycle"),
        )
        .send()
        .await
        .expect("lifecycle");
    let listed = run_cli(&["list", "--store", &store], &[]);
    assert_ok(&listed);
    let said = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        said.contains("STORAGE") && said.contains("GLACIER"),
        "{said}"
    );
    assert!(
        !said.contains("DEEP_ARCHIVE"),
        "a day-old backup is not in Deep Archive yet: {said}"
    );

    let target = unique_name("from_archive");
    let refused = restore_into(&store, "latest", &target, &[]);
    assert!(!refused.status.success(), "{}", text(&refused));
    let said = String::from_utf8_lossy(&refused.stderr).to_string();
    for expected in [
        &format!("{} files", data.len()),
        "GB) must be retrieved",
        "1 in DEEP_ARCHIVE",
        &format!("{} in GLACIER", data.len() - 1),
        "Bulk: within 48 hours (DEEP_ARCHIVE), 5-12 hours (GLACIER), about $",
        "Expedited: not offered for DEEP_ARCHIVE",
        "toc-backup retrieve --store",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }
    let verify = run_cli(&["verify", "--store", &store], &[]);
    assert!(!verify.status.success());
    assert!(
        text(&verify).contains("must be retrieved"),
        "{}",
        text(&verify)
    );

    let expedited = run_cli(&["retrieve", "--store", &store, "--tier", "Expedited"], &[]);
    assert!(!expedited.status.success(), "{}", text(&expedited));
    assert!(
        text(&expedited).contains("no Expedited retrieval"),
        "{}",
        text(&expedited)
    );

    let retrieve = run_cli(
        &["retrieve", "--store", &store, "--tier", "Bulk", "--json"],
        &[],
    );
    assert_ok(&retrieve);
    let report: serde_json::Value = serde_json::from_slice(&retrieve.stdout).expect("json");
    assert_eq!(report["requested"], data.len());
    // The emulator finishes retrievals at once; S3 would say "in progress" for hours.
    let again = run_cli(&["retrieve", "--store", &store], &[]);
    assert_ok(&again);
    let said = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(said.contains("ready"), "{said}");
    assert!(
        said.contains(&format!("all {} archived files are ready", data.len())),
        "{said}"
    );

    assert_ok(&restore_into(&store, "latest", &target, &[]));
    assert_eq!(checksums(&source).await, checksums(&target).await);
    assert_ok(&run_cli(&["verify", "--store", &store], &[]));
    drop_database(&source).await;
    drop_database(&target).await;
}

//! Issue 15, part 4: a run that never got its manifest leaves nothing for seven years. Every
//! database object is written tagged `backup-state=partial` and re-tagged `sealed` just before
//! its manifest; the template's lifecycle expires `partial` within days (tests/it/infra.rs). Here
//! the dump runs as in AWS, where its role cannot delete: a failed run's objects must all carry
//! the tag, and a sealed backup's objects none of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::*;
use async_trait::async_trait;
use bytes::Bytes;
use toc_sis_backup::config::DatabaseUrl;
use toc_sis_backup::dump::{run_dump, DumpOptions};
use toc_sis_backup::notify::LogNotifier;
use toc_sis_backup::store::{open_store, ObjectInfo, ObjectReader, ObjectStore, ObjectWriter};
use toc_sis_backup::{Error, Result};

/// The S3 store as the dump's IAM role sees it: no DeleteObject; and, when asked, a write
/// refused part-way through the backup (the run's failure).
struct AsTheDumpRole {
    inner: Arc<dyn ObjectStore>,
    refuse_data_write: Option<usize>,
    refuse_manifest: bool,
    data_writes: AtomicUsize,
}

impl AsTheDumpRole {
    fn new(
        inner: Arc<dyn ObjectStore>,
        refuse_data_write: Option<usize>,
        refuse_manifest: bool,
    ) -> Arc<AsTheDumpRole> {
        Arc::new(AsTheDumpRole {
            inner,
            refuse_data_write,
            refuse_manifest,
            data_writes: AtomicUsize::new(0),
        })
    }
}

impl std::fmt::Display for AsTheDumpRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

fn denied(operation: &'static str, key: &str) -> Error {
    Error::S3 {
        operation,
        bucket: "test".into(),
        key: key.into(),
        detail: "AccessDenied (the dump role)".into(),
    }
}

#[async_trait]
impl ObjectStore for AsTheDumpRole {
    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        if key.starts_with("database/") && !key.ends_with("/manifest.json") {
            let n = self.data_writes.fetch_add(1, Ordering::SeqCst);
            if self.refuse_data_write.is_some_and(|limit| n >= limit) {
                return Err(denied("PutObject", key));
            }
        }
        if self.refuse_manifest && key.ends_with("/manifest.json") {
            return Err(denied("PutObject", key));
        }
        self.inner.create(key).await
    }
    async fn open(&self, key: &str) -> Result<ObjectReader> {
        self.inner.open(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        Err(denied("DeleteObject", key))
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        Err(denied("DeleteObject", prefix))
    }
    fn retention_by_bucket_rules(&self) -> bool {
        true
    }
    async fn mark_sealed(&self, keys: &[String], sealed: bool) -> Result<()> {
        self.inner.mark_sealed(keys, sealed).await
    }
    async fn list_after(&self, prefix: &str, start_after: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list_after(prefix, start_after).await
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>> {
        self.inner.get_versioned(key).await
    }
    async fn put_if(&self, key: &str, bytes: Bytes, expected: Option<&str>) -> Result<bool> {
        self.inner.put_if(key, bytes, expected).await
    }
}

/// A new eu-west-1 bucket created with Object Lock enabled (versioning on), as the template's.
async fn bucket_with_object_lock(prefix: &str) -> String {
    let bucket = format!("{prefix}-{:08x}", rand::random::<u32>());
    aws::s3()
        .await
        .create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("bucket with Object Lock");
    bucket
}

async fn state_tags(bucket: &str, prefix: &str) -> Vec<(String, String)> {
    let s3 = aws::s3().await;
    let mut found = Vec::new();
    for key in aws::keys(bucket, prefix).await {
        let tags = s3
            .get_object_tagging()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("tags");
        let state = tags
            .tag_set()
            .iter()
            .find(|t| t.key() == "backup-state")
            .map(|t| t.value().to_string())
            .unwrap_or_else(|| "(none)".into());
        found.push((key, state));
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_runs_objects_are_tagged_partial_and_a_sealed_backups_are_not() {
    let source = small_database("s3_partial").await;
    let bucket = aws::bucket("toc-partial").await;
    let s3 = open_store(&format!("s3://{bucket}/college"))
        .await
        .expect("store");
    let mut options = DumpOptions::new(DatabaseUrl::parse(&url_for(&source)).expect("url"));
    // Small files, so the run writes several before the refused one.
    options.split_bytes = 4096;

    let failing = AsTheDumpRole::new(s3.clone(), Some(3), false);
    let error = run_dump(failing, &LogNotifier, &options)
        .await
        .expect_err("the refused write fails the run");
    assert!(error.to_string().contains("AccessDenied"), "{error}");
    let left = state_tags(&bucket, "college/database/daily/").await;
    assert!(
        !left.is_empty(),
        "the failed run left its first files (the role cannot delete): {left:?}"
    );
    for (key, state) in &left {
        assert_eq!(state, "partial", "{key} of a failed run must expire");
    }

    let sealing = AsTheDumpRole::new(s3.clone(), None, false);
    let report = run_dump(sealing, &LogNotifier, &options)
        .await
        .expect("a good run");
    let sealed = state_tags(
        &bucket,
        &format!("college/database/daily/{}/", report.backup_id),
    )
    .await;
    assert!(sealed.len() > 3, "{sealed:?}");
    assert!(sealed.iter().any(|(k, _)| k.ends_with("/manifest.json")));
    for (key, state) in &sealed {
        assert_eq!(state, "sealed", "{key} of a sealed backup must stay");
    }
    // A run that wrote and sealed every file but whose manifest write failed: its files are
    // marked back as leftovers.
    let before: std::collections::BTreeSet<String> = state_tags(&bucket, "college/database/daily/")
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let no_manifest = AsTheDumpRole::new(s3.clone(), None, true);
    let error = run_dump(no_manifest, &LogNotifier, &options)
        .await
        .expect_err("no manifest, no backup");
    assert!(error.to_string().contains("manifest.json"), "{error}");
    let unsealed: Vec<(String, String)> = state_tags(&bucket, "college/database/daily/")
        .await
        .into_iter()
        .filter(|(k, _)| !before.contains(k))
        .collect();
    assert!(unsealed.len() > 3, "{unsealed:?}");
    for (key, state) in &unsealed {
        assert_eq!(state, "partial", "{key}: its manifest was never written");
    }
    // The failed runs' leftovers are never a backup.
    let listed = toc_sis_backup::catalog::list(s3.as_ref(), false)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    drop_database(&source).await;
}

/// Sealing also locks a daily backup for its retention class (issue 15, part 3): every object
/// of a sealed daily backup, manifest included, carries the configured Object Lock retention;
/// a failed run's leftovers carry none, so they can expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_daily_backup_is_locked_for_its_years_and_leftovers_are_not() {
    use toc_sis_backup::store::s3::{LockMode, S3Settings, S3Store};

    let source = small_database("s3_lock").await;
    let s3 = aws::s3().await;
    let bucket = bucket_with_object_lock("toc-lock").await;
    let settings = S3Settings {
        daily_lock: Some((LockMode::Governance, 2557)),
        ..S3Settings::default()
    };
    let store: Arc<dyn ObjectStore> = Arc::new(S3Store::new(
        aws::s3().await,
        bucket.clone(),
        "college/",
        settings,
    ));
    let mut options = DumpOptions::new(DatabaseUrl::parse(&url_for(&source)).expect("url"));
    options.split_bytes = 4096;

    let failing = AsTheDumpRole::new(store.clone(), Some(3), false);
    run_dump(failing, &LogNotifier, &options)
        .await
        .expect_err("the refused write fails the run");
    let leftovers: Vec<String> = state_tags(&bucket, "college/database/daily/")
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let report = run_dump(store.clone(), &LogNotifier, &options)
        .await
        .expect("a good run");

    // HeadObject says what lock an object is under (the emulator's GetObjectRetention fails).
    let retention = |key: String| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            let head = s3
                .head_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .expect("head");
            head.object_lock_mode().cloned().map(|mode| {
                (
                    mode,
                    head.object_lock_retain_until_date()
                        .map(|d| d.secs())
                        .unwrap_or(0),
                )
            })
        }
    };
    assert!(!leftovers.is_empty());
    for key in leftovers {
        assert_eq!(
            retention(key.clone()).await,
            None,
            "{key} of a failed run is locked"
        );
    }
    let sealed = state_tags(
        &bucket,
        &format!("college/database/daily/{}/", report.backup_id),
    )
    .await;
    assert!(sealed.iter().any(|(k, _)| k.ends_with("/manifest.json")));
    let years = chrono::Utc::now() + chrono::Duration::days(2556);
    for (key, _) in sealed {
        let (mode, until) = retention(key.clone())
            .await
            .unwrap_or_else(|| panic!("{key} of a sealed daily backup is not locked"));
        assert_eq!(mode, aws_sdk_s3::types::ObjectLockMode::Governance, "{key}");
        assert!(
            until >= years.timestamp(),
            "{key} is held only until {until}"
        );
    }
    drop_database(&source).await;
}

/// The template's bucket has a default Object Lock retention, under which S3 refuses every
/// upload that names no checksum algorithm (nor Content-MD5): whole objects, multipart uploads
/// and the catalog's conditional writes must all carry one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_is_accepted_by_a_bucket_with_a_default_retention() {
    let source = small_database("s3_default_lock").await;
    let s3 = aws::s3().await;
    let bucket = bucket_with_object_lock("toc-retain").await;
    s3.put_object_lock_configuration()
        .bucket(&bucket)
        .object_lock_configuration(
            aws_sdk_s3::types::ObjectLockConfiguration::builder()
                .object_lock_enabled(aws_sdk_s3::types::ObjectLockEnabled::Enabled)
                .rule(
                    aws_sdk_s3::types::ObjectLockRule::builder()
                        .default_retention(
                            aws_sdk_s3::types::DefaultRetention::builder()
                                .mode(aws_sdk_s3::types::ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("default retention");
    let store = open_store(&format!("s3://{bucket}/college"))
        .await
        .expect("store");
    let mut options = DumpOptions::new(DatabaseUrl::parse(&url_for(&source)).expect("url"));
    options.split_bytes = 4096;
    run_dump(store.clone(), &LogNotifier, &options)
        .await
        .expect("a dump into a bucket with a default retention");
    let listed = toc_sis_backup::catalog::list(store.as_ref(), false)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (entries, _) = toc_sis_backup::catalog::index::read(store.as_ref())
        .await
        .expect("read")
        .expect("the catalog index was written");
    assert_eq!(entries.len(), 1);
    drop_database(&source).await;
}

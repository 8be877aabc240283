//! Issue 15, part 1: the catalog costs the same on day 1 and day 2,500. A store with 2,000
//! earlier daily backups (their manifests in S3, on the emulator) and a real latest one:
//! `list`, `status` and an incremental read at most 5 catalog objects (index and manifests)
//! and list and status take under 2 s; concurrent writers never lose an entry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::common::*;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{Duration, Utc};
use futures::{StreamExt, TryStreamExt};
use mysql_async::prelude::Queryable;
use toc_sis_backup::catalog::{self, index};
use toc_sis_backup::config::DatabaseUrl;
use toc_sis_backup::dump::{run_dump, DumpOptions};
use toc_sis_backup::incremental::scope::{Scope, ScopedTable};
use toc_sis_backup::incremental::{run_incremental_until, IncrementalOptions};
use toc_sis_backup::layout::new_backup_id;
use toc_sis_backup::layout::MANIFEST_NAME;
use toc_sis_backup::manifest::Manifest;
use toc_sis_backup::monitor::{check_all, MonitorOptions};
use toc_sis_backup::notify::LogNotifier;
use toc_sis_backup::store::local::LocalStore;
use toc_sis_backup::store::{open_store, ObjectInfo, ObjectReader, ObjectStore, ObjectWriter};
use toc_sis_backup::Result;

/// Counts the catalog objects read (the index and manifests) and listings made.
struct Counted {
    inner: Arc<dyn ObjectStore>,
    reads: Mutex<Vec<String>>,
    listings: AtomicUsize,
}

impl Counted {
    fn new(inner: Arc<dyn ObjectStore>) -> Arc<Counted> {
        Arc::new(Counted {
            inner,
            reads: Mutex::new(Vec::new()),
            listings: AtomicUsize::new(0),
        })
    }

    /// The catalog objects read since the last call.
    fn take(&self) -> Vec<String> {
        let mut reads = self.reads.lock().expect("lock");
        let catalog: Vec<String> = reads
            .iter()
            .filter(|k| k.ends_with(MANIFEST_NAME) || k.starts_with("catalog/"))
            .cloned()
            .collect();
        reads.clear();
        self.listings.store(0, Ordering::SeqCst);
        catalog
    }

    fn read(&self, key: &str) {
        self.reads.lock().expect("lock").push(key.to_string());
    }
}

impl std::fmt::Display for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl ObjectStore for Counted {
    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        self.inner.create(key).await
    }
    async fn open(&self, key: &str) -> Result<ObjectReader> {
        self.read(key);
        self.inner.open(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.listings.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    fn retention_by_bucket_rules(&self) -> bool {
        self.inner.retention_by_bucket_rules()
    }
    async fn mark_sealed(&self, keys: &[String], sealed: bool) -> Result<()> {
        self.inner.mark_sealed(keys, sealed).await
    }
    async fn list_after(&self, prefix: &str, start_after: &str) -> Result<Vec<ObjectInfo>> {
        self.listings.fetch_add(1, Ordering::SeqCst);
        self.inner.list_after(prefix, start_after).await
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>> {
        self.read(key);
        self.inner.get_versioned(key).await
    }
    async fn put_if(&self, key: &str, bytes: Bytes, expected: Option<&str>) -> Result<bool> {
        self.inner.put_if(key, bytes, expected).await
    }
}

async fn grades_database() -> String {
    let name = unique_name("catalog_scale");
    create_database(&name).await;
    connect_to(&name)
        .await
        .query_drop(
            "CREATE TABLE student_grade_records (id INT PRIMARY KEY, grade INT NOT NULL,
               updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)) ENGINE=InnoDB;
             INSERT INTO student_grade_records (id, grade) SELECT seq, seq % 100 FROM seq_1_to_500;",
        )
        .await
        .expect("fixture");
    name
}

/// The incremental's scope for [`grades_database`]: its one table, tracked by `updated_at`.
fn grades_scope() -> Scope {
    Scope {
        tables: vec![ScopedTable {
            name: "student_grade_records".into(),
            tracking_column: "updated_at".into(),
        }],
    }
}

/// A copy of `manifest` as another, earlier backup: what a day of history adds to the catalog.
fn earlier(manifest: &Manifest, days: i64) -> Result<(String, Vec<u8>)> {
    let mut copy = manifest.clone();
    let at = Utc::now() - Duration::days(days);
    copy.backup_id = new_backup_id(at);
    copy.started_at = at.to_rfc3339();
    copy.finished_at = at.to_rfc3339();
    copy.snapshot.database_time = at.to_rfc3339();
    copy.integrity = None;
    Ok((copy.backup_id.clone(), copy.seal()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_backups_cost_list_status_and_an_incremental_a_few_reads() {
    const HISTORY: i64 = 2000;
    let source = grades_database().await;
    let bucket = aws::bucket("toc-catalog").await;
    let s3 = open_store(&format!("s3://{bucket}/college"))
        .await
        .expect("store");
    let url = DatabaseUrl::parse(&url_for(&source)).expect("url");
    let latest = run_dump(s3.clone(), &LogNotifier, &DumpOptions::new(url.clone()))
        .await
        .expect("the real latest backup");
    let manifest = catalog::resolve(s3.as_ref(), &latest.backup_id)
        .await
        .expect("its manifest");

    let started = Instant::now();
    futures::stream::iter(1..=HISTORY)
        .map(|day| {
            let s3 = s3.clone();
            let manifest = manifest.clone();
            async move {
                let (id, sealed) = earlier(&manifest, day)?;
                s3.put(
                    &toc_sis_backup::layout::manifest_key(&id),
                    Bytes::from(sealed),
                )
                .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .expect("history");
    eprintln!(
        "wrote {HISTORY} manifests in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The old way, for the record: one read per manifest.
    let counted = Counted::new(s3.clone());
    let started = Instant::now();
    let scanned = catalog::entries(counted.as_ref()).await.expect("scan");
    let scan_reads = counted.take().len();
    let scan_seconds = started.elapsed().as_secs_f64();
    assert_eq!(scanned.len() as i64, HISTORY + 1);
    assert!(scan_reads as i64 > HISTORY, "{scan_reads}");

    let rebuilt = index::rebuild(s3.as_ref()).await.expect("rebuild");
    assert_eq!(rebuilt.entries as i64, HISTORY + 1);

    let started = Instant::now();
    let listed = catalog::list(counted.as_ref(), false).await.expect("list");
    let list_seconds = started.elapsed().as_secs_f64();
    let list_reads = counted.take();
    assert_eq!(listed.len() as i64, HISTORY + 1);
    assert_eq!(listed[0].id, latest.backup_id);
    assert!(list_reads.len() <= 5, "list read {list_reads:?}");

    let started = Instant::now();
    let options = MonitorOptions {
        tiers: toc_sis_backup::monitor::tiers::parse_tiers(Some(
            r#"[{"name":"Tier 1","rpo_minutes":1560,"tables":["student_grade_records"]}]"#,
        ))
        .expect("tiers"),
        ..MonitorOptions::default()
    };
    let report = check_all(counted.as_ref(), &options, Utc::now())
        .await
        .expect("status");
    let status_seconds = started.elapsed().as_secs_f64();
    let status_reads = counted.take();
    assert!(status_reads.len() <= 5, "status read {status_reads:?}");
    let integrity = report
        .checks
        .iter()
        .find(|c| c.name == "Integrity")
        .expect("integrity");
    assert!(
        integrity.reason.contains(&latest.backup_id),
        "{integrity:?}"
    );

    let mut incremental = IncrementalOptions::new(url.clone());
    incremental.scope = grades_scope();
    connect_to(&source)
        .await
        .query_drop("UPDATE student_grade_records SET grade = grade + 1 WHERE id <= 10")
        .await
        .expect("change");
    let as_counted: Arc<dyn ObjectStore> = counted.clone();
    let report = run_incremental_until(
        as_counted,
        &LogNotifier,
        &incremental,
        std::future::pending(),
    )
    .await
    .expect("incremental");
    // The ten changed rows, and the rows written within the overlap before the full backup.
    assert!(report.rows_rewritten >= 10, "{report:?}");
    let incremental_reads = counted.take();
    assert!(
        incremental_reads.len() <= 5,
        "the incremental read {incremental_reads:?}"
    );

    eprintln!(
        "catalog of {} backups: scan {scan_reads} reads {scan_seconds:.2} s; list {} reads {list_seconds:.3} s; status {} reads {status_seconds:.3} s; incremental {} catalog reads",
        HISTORY + 1,
        list_reads.len(),
        status_reads.len(),
        incremental_reads.len()
    );
    assert!(list_seconds < 2.0, "list took {list_seconds:.2} s");
    assert!(status_seconds < 2.0, "status took {status_seconds:.2} s");
    drop_database(&source).await;
}

/// Writers racing on one index (a dump, an incremental, a rebuild…): every entry lands.
async fn racing_writers_keep_every_entry(store: Arc<dyn ObjectStore>, manifest: &Manifest) {
    const WRITERS: i64 = 8;
    let mut ids = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for day in 1..=WRITERS {
        let (id, sealed) = earlier(manifest, day).expect("copy");
        let written = Manifest::open("copy", &sealed).expect("opens");
        ids.push(id);
        let store = store.clone();
        tasks.spawn(async move { index::record(store.as_ref(), &written, &sealed).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("writer");
    }
    assert_indexed(
        store.as_ref(),
        &ids,
        &format!("among {WRITERS} racing writers"),
    )
    .await;
}

/// Every one of `ids` is in the store's catalog index.
async fn assert_indexed(store: &dyn ObjectStore, ids: &[String], how: &str) {
    let (entries, _) = index::read(store).await.expect("read").expect("an index");
    for id in ids {
        assert!(
            entries.iter().any(|e| &e.id == id),
            "{store}: the entry of {id} is not in the index ({how})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_never_lose_an_entry_in_s3_or_a_folder() {
    let source = grades_database().await;
    let url = DatabaseUrl::parse(&url_for(&source)).expect("url");
    let bucket = aws::bucket("toc-race").await;
    let s3 = open_store(&format!("s3://{bucket}/college"))
        .await
        .expect("store");
    let folder = tempfile::tempdir().expect("folder");
    let local: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(folder.path()));
    for store in [s3, local] {
        let first = run_dump(store.clone(), &LogNotifier, &DumpOptions::new(url.clone()))
            .await
            .expect("dump");
        let manifest = catalog::resolve(store.as_ref(), &first.backup_id)
            .await
            .expect("manifest");
        racing_writers_keep_every_entry(store, &manifest).await;
    }
    drop_database(&source).await;
}

/// A backup sealed but missing from the index (its writer died between manifest and index):
/// a restore through it still works, reading its manifest directly, and the next backup of its
/// chain puts it back in the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_missing_from_the_index_is_read_directly_and_put_back() {
    let source = grades_database().await;
    let url = DatabaseUrl::parse(&url_for(&source)).expect("url");
    let folder = tempfile::tempdir().expect("folder");
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(folder.path()));
    run_dump(store.clone(), &LogNotifier, &DumpOptions::new(url.clone()))
        .await
        .expect("full");
    let mut options = IncrementalOptions::new(url.clone());
    options.scope = grades_scope();
    let mut links = Vec::new();
    for step in 0..4 {
        connect_to(&source)
            .await
            .query_drop(format!(
                "UPDATE student_grade_records SET grade = grade + 1 WHERE id % 7 = {step}"
            ))
            .await
            .expect("change");
        let report = run_incremental_until(
            store.clone(),
            &LogNotifier,
            &options,
            std::future::pending(),
        )
        .await
        .expect("incremental");
        links.push(report.backup_id.expect("a link"));
        if step == 2 {
            // The second link's index update was lost; the third is in the index.
            index::forget(store.as_ref(), &links[1..2])
                .await
                .expect("forget");
            let catalog = catalog::load(store.as_ref()).await.expect("catalog");
            assert!(catalog.get(&links[1]).is_none() && catalog.get(&links[2]).is_some());
            let target = unique_name("through_unindexed");
            assert_ok(&restore(folder.path(), "latest", &target));
            assert_eq!(checksums(&source).await, checksums(&target).await);
            drop_database(&target).await;
        }
    }
    assert_indexed(
        store.as_ref(),
        &links,
        "a link dropped from it, then another added",
    )
    .await;
    drop_database(&source).await;
}

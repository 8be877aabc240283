//! Done-means 2: a writer keeping a cross-table invariant during the dump leaves the restored
//! copy with the invariant intact: the dump reads one snapshot, not tables at different times,
//! also when several connections read the tables (issue 8: their snapshots are proved
//! identical by their binlog positions, or the dump falls back to one connection).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::common::*;
use mysql_async::prelude::Queryable;

/// A writer committing back to back: snapshots on several connections rarely line up, and any
/// that did not would break the invariant (the tables go to different connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writer_invariant_survives_the_dump() {
    invariant_survives(3, None, &[]).await;
}

/// The snapshots opened 300 ms apart while the writer commits back to back: they cannot share a
/// position, the dump must notice and read everything on one connection (without the position
/// check, the tables would come from different moments and the invariant would break).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_that_differ_fall_back_to_one_connection() {
    let report =
        invariant_survives(3, None, &[("TOC_BACKUP_TEST_SNAPSHOT_STAGGER_MS", "300")]).await;
    assert_eq!(report["connections"], 1, "{report}");
    assert!(
        report["single_connection_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("one binlog position"),
        "{report}"
    );
}

/// A writer committing every 20 ms: the dump does run on three connections, consistently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_dump_reads_one_snapshot() {
    let report = invariant_survives(3, Some(std::time::Duration::from_millis(20)), &[]).await;
    assert_eq!(report["connections"], 3, "{report}");
}

async fn invariant_survives(
    jobs: u16,
    pause: Option<std::time::Duration>,
    env: &'static [(&'static str, &'static str)],
) -> serde_json::Value {
    let source = unique_name("invariant");
    create_database(&source).await;
    let mut conn = connect_to(&source).await;
    // Tables are dumped in name order: `a_grade_totals` is read before `z_grade_records`, so a
    // dump without one snapshot would see fewer totals than records.
    conn.query_drop(
        "CREATE TABLE a_grade_totals (module_id INT PRIMARY KEY, records INT NOT NULL, weight_sum INT NOT NULL) ENGINE=InnoDB;
         CREATE TABLE m_components (id INT PRIMARY KEY, module_id INT NOT NULL, weight INT NOT NULL) ENGINE=InnoDB;
         CREATE TABLE z_grade_records (id INT AUTO_INCREMENT PRIMARY KEY, module_id INT NOT NULL, grade INT NOT NULL, padding VARCHAR(255) NOT NULL) ENGINE=InnoDB;
         INSERT INTO a_grade_totals SELECT seq, 0, 100 FROM seq_1_to_20;
         INSERT INTO m_components SELECT seq, 1 + seq % 20, 50 FROM seq_0_to_39;
         INSERT INTO z_grade_records (module_id, grade, padding) SELECT 1 + seq % 20, seq % 100, REPEAT('x', 200) FROM seq_1_to_150000;
         UPDATE a_grade_totals t SET records = (SELECT COUNT(*) FROM z_grade_records r WHERE r.module_id = t.module_id);",
    )
    .await
    .expect("fixture");

    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, commits, source) = (stop.clone(), commits.clone(), source.clone());
        tokio::spawn(async move {
            let mut conn = connect_to(&source).await;
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let module = 1 + n % 20;
                let from = (n % 40) as i64;
                // Each transaction keeps both invariants: totals match records, and the
                // components of every module weigh 100 in all.
                let sql = format!(
                    "START TRANSACTION;
                     INSERT INTO z_grade_records (module_id, grade, padding) VALUES ({module}, {}, 'w');
                     UPDATE a_grade_totals SET records = records + 1 WHERE module_id = {module};
                     UPDATE m_components SET weight = weight - 1 WHERE id = {from};
                     UPDATE m_components SET weight = weight + 1 WHERE id = {};
                     COMMIT;",
                    n % 100,
                    (from + 20) % 40
                );
                conn.query_drop(sql).await.expect("writer transaction");
                commits.fetch_add(1, Ordering::SeqCst);
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
            }
        })
    };
    while commits.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let store = tempfile::tempdir().expect("temp dir");
    let before = commits.load(Ordering::SeqCst);
    let store_path = store.path().to_path_buf();
    let source_for_dump = source.clone();
    let output = tokio::task::spawn_blocking(move || {
        run_cli(
            &[
                "dump",
                "--database-url",
                &url_for(&source_for_dump),
                "--store",
                store_path.to_str().unwrap_or_default(),
                "--jobs",
                &jobs.to_string(),
                "--json",
            ],
            env,
        )
    })
    .await
    .expect("dump thread");
    let during = commits.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    assert_ok(&output);
    assert!(
        during >= 5,
        "the writer must commit while the dump runs (it committed {during} times)"
    );

    let copy = unique_name("invariant_copy");
    assert_ok(&restore(store.path(), "latest", &copy));
    let mut restored = connect_to(&copy).await;
    let broken: Vec<(i64, i64, i64)> = restored
        .query(
            "SELECT t.module_id, t.records, COUNT(r.id) FROM a_grade_totals t \
             LEFT JOIN z_grade_records r ON r.module_id = t.module_id \
             GROUP BY t.module_id, t.records HAVING t.records <> COUNT(r.id)",
        )
        .await
        .expect("check totals");
    assert!(
        broken.is_empty(),
        "totals disagree with records in the backup: {broken:?}"
    );
    let weights: Option<i64> = restored
        .query_first("SELECT SUM(weight) FROM m_components")
        .await
        .expect("check weights");
    assert_eq!(weights, Some(2000), "component weights must still add up");
    drop_database(&source).await;
    drop_database(&copy).await;
    serde_json::from_slice(&output.stdout).expect("the dump's JSON report")
}

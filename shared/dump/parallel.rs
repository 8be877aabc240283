//! Dumping tables over several connections without giving up consistency.
//!
//! Every connection opens its own `START TRANSACTION WITH CONSISTENT SNAPSHOT`. MariaDB reports
//! the binlog position each snapshot corresponds to (`binlog_snapshot_file/position`): when all
//! of them report the same position, no transaction committed between them, so they all see
//! the same data. The snapshots are opened together and compared; if a busy writer keeps them
//! apart, they are opened again a few times, and then the dump falls back to one connection.
//! MySQL 8 reports no snapshot position; there the snapshots are proved identical by its GTID
//! set being unchanged across their opening (`mysql::gtid_snapshot`). A server that can prove
//! neither (binlog off, MySQL without GTIDs) gets one connection: a parallel dump whose
//! consistency cannot be proved is never taken.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::table_data::{dump_table, DumpedTable};
use super::DumpOptions;
use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::manifest::SnapshotPosition;
use crate::mysql::gtid_snapshot;
use crate::mysql::schema::Table;
use crate::mysql::{self as db};
use crate::table_files::snapshot::{read_snapshot, snapshot_binlog_position};
use crate::table_files::FileNamer;
use crate::table_files::{keys, scope};

const ATTEMPTS: usize = 10;

/// Session settings every dump connection shares, so every value is written the same way.
pub(crate) async fn prepare_session(conn: &mut Conn) -> Result<()> {
    db::run_all(conn, db::DUMP_SESSION).await?;
    // Uploads may pause reading for a while (back-pressure); the server must not give up on us.
    db::run_all(
        conn,
        &[
            "SET SESSION net_write_timeout = 3600",
            "SET SESSION net_read_timeout = 3600",
        ],
    )
    .await
}

async fn start_snapshot(conn: &mut Conn) -> Result<()> {
    db::run_all(conn, &["START TRANSACTION WITH CONSISTENT SNAPSHOT"]).await
}

/// The snapshot the dump reads, and the extra connections proved to share it.
pub(crate) struct Snapshots {
    pub position: SnapshotPosition,
    pub workers: Vec<Conn>,
    /// Why the dump runs on one connection although more were asked for.
    pub single_reason: Option<String>,
}

/// Opens the snapshot on `main` and, when `jobs` > 1, on `jobs - 1` more connections whose
/// snapshots are the same one.
pub(crate) async fn open_snapshots(
    main: &mut Conn,
    url: &DatabaseUrl,
    database: &str,
    jobs: usize,
) -> Result<Snapshots> {
    if jobs <= 1 {
        let gtid = single_snapshot(main).await?;
        return Ok(Snapshots {
            position: read_snapshot(main, gtid).await?,
            workers: Vec::new(),
            single_reason: None,
        });
    }
    let mut workers = Vec::with_capacity(jobs - 1);
    for _ in 1..jobs {
        let mut conn = db::connect(url, Some(database)).await?;
        prepare_session(&mut conn).await?;
        workers.push(conn);
    }
    let mut last_positions = Vec::new();
    for attempt in 1..=ATTEMPTS {
        match stagger() {
            // Opened side by side, so only a commit landing in this instant keeps them apart.
            None => {
                let starts = std::iter::once(&mut *main)
                    .chain(workers.iter_mut())
                    .map(start_snapshot);
                futures::future::try_join_all(starts).await?;
            }
            Some(pause) => {
                start_snapshot(main).await?;
                for worker in workers.iter_mut() {
                    tokio::time::sleep(pause).await;
                    start_snapshot(worker).await?;
                }
            }
        }
        let Some(main_position) = snapshot_binlog_position(main).await? else {
            db::run_all(main, &["ROLLBACK"]).await?;
            rollback_all(&mut workers).await;
            return open_by_gtid_set(main, workers, jobs).await;
        };
        let mut positions = vec![main_position.clone()];
        for worker in &mut workers {
            positions.push(snapshot_binlog_position(worker).await?.unwrap_or_default());
        }
        if positions.iter().all(|p| *p == main_position) {
            tracing::debug!(attempt, connections = jobs, "identical snapshots opened");
            return Ok(Snapshots {
                position: read_snapshot(main, None).await?,
                workers,
                single_reason: None,
            });
        }
        last_positions = positions;
        db::run_all(main, &["ROLLBACK"]).await?;
        rollback_all(&mut workers).await;
    }
    // Writers kept committing between the snapshots: one connection it is.
    for worker in workers {
        let _ = worker.disconnect().await;
    }
    start_snapshot(main).await?;
    Ok(Snapshots {
        position: read_snapshot(main, None).await?,
        workers: Vec::new(),
        single_reason: Some(format!(
            "{ATTEMPTS} attempts to open {jobs} snapshots at one binlog position failed (writes kept landing between them; last positions {}), so the dump ran on one connection",
            last_positions
                .iter()
                .map(|(f, p)| format!("{f}:{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    })
}

/// One snapshot on `main`; on MySQL with GTIDs, opened until its GTID set is proved (a few
/// attempts), so the manifest can name the snapshot's own position.
async fn single_snapshot(main: &mut Conn) -> Result<Option<String>> {
    for _ in 0..ATTEMPTS {
        if snapshot_binlog_position(main).await?.is_some() {
            break; // MariaDB reports the snapshot's position itself.
        }
        if gtid_snapshot::gtid_executed(main).await?.is_none() {
            break;
        }
        if let Some(gtid) = gtid_snapshot::open_at_one_gtid_set(&mut [&mut *main]).await? {
            return Ok(Some(gtid));
        }
    }
    start_snapshot(main).await?;
    Ok(None)
}

/// MySQL 8: all snapshots opened while `gtid_executed` stayed the same are at that set.
async fn open_by_gtid_set(
    main: &mut Conn,
    mut workers: Vec<Conn>,
    jobs: usize,
) -> Result<Snapshots> {
    let reason = if gtid_snapshot::gtid_executed(main).await?.is_none() {
        "the server reports no binlog position for snapshots and has no GTIDs (binlog off, or MySQL with gtid_mode OFF), so identical snapshots on several connections cannot be proved".to_string()
    } else {
        for attempt in 1..=ATTEMPTS {
            let mut all: Vec<&mut Conn> = std::iter::once(&mut *main)
                .chain(workers.iter_mut())
                .collect();
            if let Some(gtid) = gtid_snapshot::open_at_one_gtid_set(&mut all).await? {
                tracing::debug!(
                    attempt,
                    connections = jobs,
                    "identical snapshots opened (GTID set unchanged)"
                );
                return Ok(Snapshots {
                    position: read_snapshot(main, Some(gtid)).await?,
                    workers,
                    single_reason: None,
                });
            }
        }
        format!("{ATTEMPTS} attempts to open {jobs} snapshots at one GTID set failed (transactions kept committing between them), so the dump ran on one connection")
    };
    for worker in workers {
        let _ = worker.disconnect().await;
    }
    let gtid = single_snapshot(main).await?;
    Ok(Snapshots {
        position: read_snapshot(main, gtid).await?,
        workers: Vec::new(),
        single_reason: Some(reason),
    })
}

/// Fault injection for tests (`TOC_BACKUP_TEST_SNAPSHOT_STAGGER_MS`): open the snapshots this far
/// apart, so that a concurrent writer surely lands between them and the position check must
/// catch it.
fn stagger() -> Option<std::time::Duration> {
    std::env::var("TOC_BACKUP_TEST_SNAPSHOT_STAGGER_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(std::time::Duration::from_millis)
}

async fn rollback_all(workers: &mut [Conn]) {
    for worker in workers {
        let _ = db::run_all(worker, &["ROLLBACK"]).await;
    }
}

/// What the connections share while dumping.
pub(crate) struct TableWork {
    pub namer: Arc<FileNamer>,
    pub database: String,
    pub tables: Arc<Vec<Table>>,
    pub options: Arc<DumpOptions>,
}

/// Dumps every table, the largest first, each connection taking the next table as it finishes
/// one. Returns the connections (main first) and each table's result in table order.
pub(crate) async fn dump_tables(
    connections: Vec<Conn>,
    work: TableWork,
    largest_first: Vec<usize>,
) -> Result<(Vec<Conn>, Vec<DumpedTable>)> {
    let work = Arc::new(work);
    let queue = Arc::new(Mutex::new(VecDeque::from(largest_first)));
    let failed = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    // A JoinSet aborts its tasks when dropped: an interrupted dump stops every connection.
    let mut tasks = tokio::task::JoinSet::new();
    for (slot, mut conn) in connections.into_iter().enumerate() {
        let (work, queue, failed, done) =
            (work.clone(), queue.clone(), failed.clone(), done.clone());
        tasks.spawn(async move {
            let mut results = Vec::new();
            loop {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some(index) = next else { break };
                let table = &work.tables[index];
                let outcome = async {
                    // Tables an incremental could track (an integer primary key and the
                    // tracking column) get a key state, which incrementals start from.
                    let column = work.options.tracking.column_for(&table.name);
                    let key = match scope::tracking_index(table, column) {
                        Ok(_) => keys::primary_key(&mut conn, &work.database, table)
                            .await?
                            .ok(),
                        Err(_) => None,
                    };
                    dump_table(&mut conn, &work.namer, table, key, index + 1, &work.options).await
                }
                .await;
                match outcome {
                    Ok(dumped) => {
                        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::info!(
                            table = %table.name,
                            rows = dumped.fingerprint.rows(),
                            files = dumped.files.len(),
                            connection = slot + 1,
                            "dumped table {finished}/{}",
                            work.tables.len()
                        );
                        results.push((index, dumped));
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return (slot, conn, Err(e));
                    }
                }
            }
            (slot, conn, Ok(results))
        });
    }
    let mut connections: Vec<(usize, Conn)> = Vec::new();
    let mut results: Vec<(usize, DumpedTable)> = Vec::new();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((slot, conn, Ok(dumped))) => {
                connections.push((slot, conn));
                results.extend(dumped);
            }
            // One table failed: the backup is lost anyway, so stop the others now.
            Ok((_, _, Err(e))) => {
                first_error.get_or_insert(e);
                tasks.abort_all();
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                first_error.get_or_insert(e.into());
                tasks.abort_all();
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    connections.sort_by_key(|(slot, _)| *slot);
    results.sort_by_key(|(index, _)| *index);
    Ok((
        connections.into_iter().map(|(_, c)| c).collect(),
        results.into_iter().map(|(_, d)| d).collect(),
    ))
}

/// Table indexes, largest first (by the server's estimate), so the long tables start early.
pub(crate) async fn largest_first(
    conn: &mut Conn,
    database: &str,
    tables: &[Table],
) -> Result<(Vec<usize>, u64)> {
    let sizes: Vec<(String, Option<u64>, Option<u64>)> = conn
        .exec(
            "SELECT TABLE_NAME, DATA_LENGTH, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
            (database,),
        )
        .await
        .map_err(|e| Error::database("reading table sizes", e))?;
    let size_of = |name: &str| {
        sizes
            .iter()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, s, _)| *s)
            .unwrap_or(0)
    };
    let mut order: Vec<usize> = (0..tables.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size_of(&tables[i].name)));
    let rows = sizes
        .iter()
        .filter(|(name, _, _)| tables.iter().any(|t| &t.name == name))
        .filter_map(|(_, _, rows)| *rows)
        .sum();
    Ok((order, rows))
}

//! Work spread over several database sessions: the data files, the rebuilt keys and the final
//! check each run on up to `--jobs` connections at once.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::session::Session;
use crate::config::DatabaseUrl;
use crate::error::Result;

/// Runs `work` over `items` on up to `jobs` sessions with `database`; the first failure stops
/// the others from taking new items and is returned.
pub(super) async fn on_connections<T, R, F, Fut>(
    url: &DatabaseUrl,
    database: &str,
    jobs: usize,
    items: Vec<T>,
    work: F,
) -> Result<Vec<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Session, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Session, Result<R>)> + Send + 'static,
{
    let workers = jobs.max(1).min(items.len().max(1));
    let queue = Arc::new(Mutex::new(VecDeque::from(items)));
    let failed = Arc::new(AtomicBool::new(false));
    let work = Arc::new(work);
    // A JoinSet aborts its workers when dropped: a restore cancelled from outside (the restore
    // test's deadline) must not leave loads running, let alone reconnecting, behind it.
    let mut handles = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (queue, failed, work) = (queue.clone(), failed.clone(), work.clone());
        let mut session = Session::new(url, database);
        handles.spawn(async move {
            let mut results = Vec::new();
            loop {
                if failed.load(Ordering::SeqCst) {
                    break;
                }
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(item) = next else { break };
                let (returned, outcome) = work(session, item).await;
                session = returned;
                match outcome {
                    Ok(result) => results.push(result),
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        session.close().await;
                        return Err(e);
                    }
                }
            }
            session.close().await;
            Ok(results)
        });
    }
    let mut all = Vec::new();
    let mut first_error = None;
    while let Some(joined) = handles.join_next().await {
        match joined {
            Ok(Ok(results)) => all.extend(results),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(e.into());
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(all),
    }
}

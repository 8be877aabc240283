//! Keeping garbage collection and backups apart.
//!
//! A backup relies on content that is already stored (it skips uploading what is there); the
//! garbage collector deletes content no snapshot names. Run together, the collector could delete
//! a blob a backup has just decided to reuse. Each side therefore writes a lock object first
//! and only then looks for the other's: whichever writes second is sure to see the first
//! (listing is strongly consistent on S3 and on a folder). A backup that sees a collector waits
//! for it; a collector that sees a backup stands down and tries again on its next run.
//!
//! Locks expire so a killed process cannot block the other side for ever; holders rewrite
//! theirs well before it expires, and a backup refuses to write its manifest if it could not.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::snapshot::LOCKS_PREFIX;
use crate::error::{Error, Result};
use crate::store::ObjectStore;

/// How long a lock counts without being renewed.
pub const LOCK_TTL: Duration = Duration::from_secs(10 * 60);
const RENEW_EVERY: Duration = Duration::from_secs(2 * 60);
const POLL_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    Backup,
    Collect,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockRecord {
    pub kind: LockKind,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl LockRecord {
    fn describe(&self) -> String {
        format!(
            "{} lock held by {} since {}",
            match self.kind {
                LockKind::Backup => "backup",
                LockKind::Collect => "garbage-collection",
            },
            self.holder,
            self.acquired_at.to_rfc3339()
        )
    }
}

fn lock_key(kind: LockKind, id: &str) -> String {
    let kind = match kind {
        LockKind::Backup => "backup",
        LockKind::Collect => "collect",
    };
    format!("{LOCKS_PREFIX}{kind}-{id}.json")
}

/// A held lock, renewed in the background until released.
pub struct StoreLock {
    store: Arc<dyn ObjectStore>,
    key: String,
    renewed: Arc<Mutex<Instant>>,
    renewer: tokio::task::JoinHandle<()>,
    released: bool,
}

impl Drop for StoreLock {
    /// A job dropped mid-way (interrupted, timed out) stops renewing and removes its lock as
    /// best it can; if that cannot finish, the lock expires on its own.
    fn drop(&mut self) {
        self.renewer.abort();
        if !self.released {
            let store = self.store.clone();
            let key = self.key.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = store.delete(&key).await;
                });
            }
        }
    }
}

impl StoreLock {
    async fn write(store: &Arc<dyn ObjectStore>, key: &str, record: &LockRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(|e| Error::Task(e.to_string()))?;
        store.put(key, Bytes::from(bytes)).await
    }

    async fn take(store: Arc<dyn ObjectStore>, kind: LockKind, holder: &str) -> Result<Self> {
        let id = format!(
            "{}-{:08x}",
            Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
            rand::random::<u32>()
        );
        let key = lock_key(kind, &id);
        let acquired_at = Utc::now();
        let holder = holder.to_string();
        let record = move |now: DateTime<Utc>| LockRecord {
            kind,
            holder: holder.clone(),
            acquired_at,
            expires_at: now + chrono::Duration::from_std(LOCK_TTL).unwrap_or_default(),
        };
        Self::write(&store, &key, &record(acquired_at)).await?;
        let renewed = Arc::new(Mutex::new(Instant::now()));
        let renewer = {
            let store = store.clone();
            let key = key.clone();
            let renewed = renewed.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    match Self::write(&store, &key, &record(Utc::now())).await {
                        Ok(()) => {
                            if let Ok(mut at) = renewed.lock() {
                                *at = Instant::now();
                            }
                        }
                        Err(e) => tracing::warn!(%key, "could not renew the lock: {e}"),
                    }
                }
            })
        };
        Ok(StoreLock {
            store,
            key,
            renewed,
            renewer,
            released: false,
        })
    }

    /// Fails when the lock may have expired (renewals failed): the other side may have acted.
    pub fn ensure_held(&self) -> Result<()> {
        let since = self
            .renewed
            .lock()
            .map(|at| at.elapsed())
            .unwrap_or(LOCK_TTL);
        if since + RENEW_EVERY >= LOCK_TTL {
            return Err(Error::StoreBusy(format!(
                "the lock {} was last renewed {} s ago and may have expired",
                self.key,
                since.as_secs()
            )));
        }
        Ok(())
    }

    pub async fn release(mut self) {
        self.renewer.abort();
        self.released = true;
        if let Err(e) = self.store.delete(&self.key).await {
            tracing::warn!(key = %self.key, "could not remove the lock: {e}");
        }
    }

    fn key(&self) -> &str {
        &self.key
    }
}

/// Every lock object with its record while it is live (None once it has expired), from one
/// listing. Unreadable lock objects count as held until they are a lock lifetime old.
async fn read_locks(
    store: &dyn ObjectStore,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Option<LockRecord>)>> {
    let ttl = chrono::Duration::from_std(LOCK_TTL).unwrap_or_default();
    let mut locks = Vec::new();
    for object in store.list(LOCKS_PREFIX).await? {
        // Gone since the listing: released, nothing to decide.
        let Some(bytes) = store.get(&object.key).await? else {
            continue;
        };
        let live = match serde_json::from_slice::<LockRecord>(&bytes) {
            Ok(record) => (record.expires_at > now).then_some(record),
            Err(_) => object
                .modified
                .is_none_or(|m| now - m < ttl)
                .then(|| LockRecord {
                    kind: if object.key.contains("/backup-") {
                        LockKind::Backup
                    } else {
                        LockKind::Collect
                    },
                    holder: format!("unreadable lock {}", object.key),
                    acquired_at: object.modified.unwrap_or(now),
                    expires_at: now,
                }),
        };
        locks.push((object.key, live));
    }
    Ok(locks)
}

/// Locks that have not expired, other than `own`.
pub async fn live_locks(
    store: &dyn ObjectStore,
    now: DateTime<Utc>,
    own: Option<&str>,
) -> Result<Vec<(String, LockRecord)>> {
    Ok(read_locks(store, now)
        .await?
        .into_iter()
        .filter(|(key, _)| Some(key.as_str()) != own)
        .filter_map(|(key, live)| live.map(|record| (key, record)))
        .collect())
}

/// A live lock of `kind` held by someone other than `own`'s holder, if any.
async fn other_live_lock(
    store: &dyn ObjectStore,
    own: &StoreLock,
    kind: LockKind,
) -> Result<Option<LockRecord>> {
    Ok(live_locks(store, Utc::now(), Some(own.key()))
        .await?
        .into_iter()
        .map(|(_, record)| record)
        .find(|record| record.kind == kind))
}

/// Takes a backup lock, waiting up to `wait` for a running garbage collection to finish.
pub async fn lock_for_backup(
    store: Arc<dyn ObjectStore>,
    holder: &str,
    wait: Duration,
) -> Result<StoreLock> {
    let lock = StoreLock::take(store.clone(), LockKind::Backup, holder).await?;
    let started = Instant::now();
    loop {
        let Some(blocking) = other_live_lock(store.as_ref(), &lock, LockKind::Collect).await?
        else {
            return Ok(lock);
        };
        if started.elapsed() >= wait {
            let detail = blocking.describe();
            lock.release().await;
            return Err(Error::StoreBusy(format!(
                "{detail}; waited {} s for it to finish",
                wait.as_secs()
            )));
        }
        tracing::info!(
            "waiting for garbage collection to finish: {}",
            blocking.describe()
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Takes the garbage-collection lock, or says which backup is running (and takes nothing).
pub async fn lock_for_collect(
    store: Arc<dyn ObjectStore>,
    holder: &str,
) -> Result<std::result::Result<StoreLock, String>> {
    let lock = StoreLock::take(store.clone(), LockKind::Collect, holder).await?;
    match other_live_lock(store.as_ref(), &lock, LockKind::Backup).await? {
        None => Ok(Ok(lock)),
        Some(running) => {
            let detail = running.describe();
            lock.release().await;
            Ok(Err(detail))
        }
    }
}

/// Removes locks that expired long ago (their holders were killed).
pub async fn remove_expired_locks(store: &dyn ObjectStore, now: DateTime<Utc>) -> Result<usize> {
    // Judged from the same read that is acted on: a lock taken after a separate listing of the
    // live ones would otherwise look expired and be deleted under its holder.
    let mut removed = 0;
    for (key, live) in read_locks(store, now).await? {
        if live.is_none() {
            store.delete(&key).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Who holds a lock, for the lock record: the host and process.
pub fn holder_name(job: &str) -> String {
    let host = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into());
    format!("{job} on {host} (pid {})", std::process::id())
}

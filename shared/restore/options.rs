//! What a restore is asked to do: the server, the point, the target database and how to load
//! it, and the checks the options pass before any store is read.

use std::sync::Arc;

use super::definer::DefinerMode;
use super::point::PointRequest;
use super::target;
use crate::config::DatabaseUrl;
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The server to restore into; its database part is ignored.
    pub server_url: DatabaseUrl,
    /// The point to restore: a backup (`latest` or an id), the newest point at or before a
    /// time, or just before a transaction of the binlog archive.
    pub point: PointRequest,
    pub target_database: String,
    /// Replace the target database's contents when it is not empty.
    pub force: bool,
    /// Connections loading data files at once.
    pub jobs: usize,
    /// Continue the interrupted restore of the same backup in the target, skipping what it
    /// finished.
    pub resume: bool,
    /// Keep the objects' DEFINER clauses, or create the objects as the restoring user.
    pub definer: DefinerMode,
    /// Recreate the accounts and grants the backup recorded (locked, without a password,
    /// unless the dump kept password hashes), with grants moved to the target database.
    pub with_accounts: bool,
    /// Updated as the restore goes, for whoever must say how far it got if it is stopped.
    pub headway: Arc<crate::job::headway::Headway>,
    /// Load rows (and replay the binlog) of these tables only; the other tables are created
    /// empty. For a scratch database to copy rows back from.
    pub tables: Option<Vec<String>>,
}

/// The options' own checks, before any store is read: a bad target name is named first.
pub fn check_options(options: &RestoreOptions) -> Result<()> {
    target::validate_database_name(&options.target_database)
}

//! The library's error policy.
//!
//! Every public function returns [`Result`]. An error names the thing that was wrong (the value,
//! the file, the table, the variable) and what was expected, so the one line a person sees is
//! enough to act on. Errors never carry a password: database addresses are printed through
//! [`crate::config::DatabaseUrl`]'s redacting `Display`, and server messages are passed on as the
//! server wrote them (MySQL never echoes a password).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid database URL {url}: {reason}; expected mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")]
    InvalidDatabaseUrl { url: String, reason: String },

    #[error(
        "invalid store {location:?}: {reason}; expected a directory path or s3://BUCKET/PREFIX"
    )]
    InvalidStore { location: String, reason: String },

    #[error("configuration: {variable} {reason}")]
    Config { variable: String, reason: String },

    #[error("S3 {operation} on s3://{bucket}/{key} failed: {detail}")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        detail: String,
    },

    #[error("secret {secret}: {reason}")]
    Secret { secret: String, reason: String },

    #[error("invalid event: {reason}; expected {expected}")]
    InvalidEvent { reason: String, expected: String },

    #[error("invalid {what} {value:?}: expected {expected}")]
    InvalidValue {
        what: &'static str,
        value: String,
        expected: String,
    },

    /// TLS was asked for and could not be set up: never retried in plain text.
    #[error("TLS to the MySQL server at {address} failed (trusting {trusted}): {detail}")]
    Tls {
        address: String,
        /// "CA file PATH" or "the public web roots (no DATABASE_TLS_CA_FILE)".
        trusted: String,
        detail: String,
    },

    #[error("cannot reach the MySQL server at {address}: {source}")]
    Unreachable {
        address: String,
        #[source]
        source: mysql_async::Error,
    },

    #[error("the MySQL server at {address} refused user {user:?}: {source}{}", plain_text_hint(*plain_text))]
    AccessDenied {
        address: String,
        user: String,
        /// The connection was not encrypted, which a TLS-only server refuses the same way.
        plain_text: bool,
        #[source]
        source: mysql_async::Error,
    },

    #[error("{context}: {source}")]
    Database {
        context: String,
        #[source]
        source: mysql_async::Error,
    },

    #[error("the backup user lacks the {privilege} privilege on database `{database}`, which hides {hides}; grant it (see infra/README.md) rather than take a smaller backup")]
    MissingPrivilege {
        privilege: &'static str,
        database: String,
        hides: &'static str,
    },

    #[error("database `{0}` does not exist on the server")]
    UnknownDatabase(String),

    #[error("`{name}` is a {kind}, which this tool cannot back up faithfully; refusing to take a partial backup (with --skip-unsupported, or BACKUP_SKIP_UNSUPPORTED=true, the rest is backed up and such objects are left out, named in a warning)")]
    UnsupportedObject { name: String, kind: String },

    #[error(
        "the schema changed during the dump ({detail}); the backup was abandoned, run it again"
    )]
    SchemaChangedDuringDump { detail: String },

    #[error("store directory {0} does not exist; create it first or pass another --store")]
    StoreMissing(PathBuf),

    #[error("store {store}: {operation} {key}: {source}")]
    StoreIo {
        store: String,
        operation: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },

    #[error("backup {id:?} not found in {store}; `toc-backup list --store {store}` shows the backups there")]
    BackupNotFound { id: String, store: String },

    #[error("backup chain broken at {backup}: {reason}")]
    BrokenChain { backup: String, reason: String },

    #[error("incremental backup cannot track table `{table}`: {reason}")]
    IncrementalScope { table: String, reason: String },

    #[error("no complete backup in {0}")]
    NoBackups(String),

    /// A scheduled job found its database being restored (the restore's marker table): it
    /// skips the run, so nothing half-loaded is backed up. A WARNING, not a failure.
    #[error("database `{database}` is being restored (its table `{marker}` exists): this run is skipped so that nothing half-loaded is backed up; the schedule goes on once the restore has finished")]
    RestoreInProgress {
        database: String,
        marker: &'static str,
    },

    /// A check before changing anything failed: every reason, one per line.
    #[error("{what} is refused, nothing was changed; it needs:{}", reasons.iter().map(|r| format!("\n  - {r}")).collect::<String>())]
    Refused { what: String, reasons: Vec<String> },

    #[error("refusing to prune {store}: {reason}")]
    PruneRefused { store: String, reason: String },

    #[error("manifest {key} is not valid: {reason}")]
    InvalidManifest { key: String, reason: String },

    #[error("backup {backup} is archived: {detail}")]
    Archived { backup: String, detail: String },

    #[error("the catalog index {key} is not usable: {reason}")]
    InvalidCatalog { key: String, reason: String },

    #[error("file {file} is corrupt: {detail}")]
    CorruptFile { file: String, detail: String },

    #[error("file {file} listed in the manifest is missing from the store")]
    MissingFile { file: String },

    #[error(
        "user {user} cannot restore this backup into `{database}`, so nothing was created; it needs: {}",
        missing.join("; ")
    )]
    CannotRestoreAsUser {
        user: String,
        database: String,
        missing: Vec<String>,
    },

    #[error("backup {backup_id} has no accounts to restore (--with-accounts): {reason}")]
    NoAccountsRecorded { backup_id: String, reason: String },

    #[error("restore verification failed: {}", .0.join("; "))]
    RestoreMismatch(Vec<String>),

    #[error("target database `{database}` is not empty; pass {flag} to replace its contents")]
    TargetNotEmpty {
        database: String,
        /// The command's own flag: `--force` (restore), `--replace` (sample-data).
        flag: &'static str,
    },

    #[error("target database `{database}` holds an interrupted restore of backup {backup} (still missing: {missing}); {next}")]
    InterruptedRestore {
        database: String,
        backup: String,
        missing: String,
        next: &'static str,
    },

    #[error("restore into `{database}` stopped before it finished: {cause}. The database is INCOMPLETE (still missing: {missing}) and marked so by its table `{marker}`: do not use it; {next}, or DROP DATABASE `{database}`")]
    RestoreIncomplete {
        database: String,
        #[source]
        cause: Box<Error>,
        missing: String,
        marker: &'static str,
        next: &'static str,
    },

    #[error("cannot resume into `{database}`: {reason}")]
    CannotResume { database: String, reason: String },

    #[error("statement {index} of {file} failed: {source}")]
    Statement {
        file: String,
        index: usize,
        #[source]
        source: mysql_async::Error,
    },

    #[error("{file} is not valid backup SQL: {reason}")]
    MalformedSql { file: String, reason: String },

    /// LOAD DATA LOCAL turns a row's error into a warning and skips or changes the row.
    #[error("statement {index} of {file} (LOAD DATA of its rows) changed or skipped rows, with these warnings: {warnings}; a restore takes every row as backed up or stops")]
    RowsChangedByLoad {
        file: String,
        index: usize,
        warnings: String,
    },

    #[error("notification could not be sent: {0}")]
    Notify(String),

    #[error("the store is busy: {0}")]
    StoreBusy(String),

    #[error("interrupted: {0}")]
    Interrupted(String),

    #[error("internal task failed: {0}")]
    Task(String),

    #[error("binlog archive: {detail}")]
    BinlogUnsupported { detail: String },

    #[error("the server's binlog cannot be archived: {variable} is {actual}, expected {expected} ({reason})")]
    BinlogSetting {
        variable: String,
        actual: String,
        expected: String,
        reason: String,
    },

    #[error("binlog archive gap: {from} to {to} is not archived ({reason}); point-in-time restore across it is impossible, and the next full backup re-anchors the archive")]
    BinlogGap {
        from: String,
        to: String,
        reason: String,
    },

    #[error("the binlog archive cannot restore {point}: {reason}")]
    BinlogNotCovered { point: String, reason: String },

    #[error("the job panicked (a bug; it did not finish and wrote no backup): {0}")]
    Panicked(String),
}

impl Error {
    /// True when a database connection was lost or could not be made, so the work may be
    /// redone on a new connection (see [`connection_lost`]).
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Database { source, .. } | Error::Statement { source, .. } => {
                connection_lost(source)
            }
            _ => false,
        }
    }

    pub fn database(context: impl Into<String>, source: mysql_async::Error) -> Self {
        Error::Database {
            context: context.into(),
            source,
        }
    }

    pub fn store_io(
        store: impl Into<String>,
        operation: &'static str,
        key: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        Error::StoreIo {
            store: store.into(),
            operation,
            key: key.into(),
            source,
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(error: tokio::task::JoinError) -> Self {
        Error::Task(error.to_string())
    }
}

fn plain_text_hint(plain_text: bool) -> &'static str {
    if plain_text {
        " (the connection was not encrypted: a server that requires TLS, e.g. with \
         require_secure_transport or RDS's rds.force_ssl, refuses it this way; set \
         DATABASE_TLS=on and DATABASE_TLS_CA_FILE)"
    } else {
        ""
    }
}

/// True when `error` means the connection itself is gone (killed, server shut down or
/// restarted, network dropped): work on it may be redone on a new connection, while an error
/// the server gave about a statement would only repeat.
fn connection_lost(error: &mysql_async::Error) -> bool {
    use mysql_async::DriverError;
    match error {
        mysql_async::Error::Io(_) => true,
        mysql_async::Error::Driver(driver) => matches!(
            driver,
            DriverError::ConnectionClosed | DriverError::PoolDisconnected
        ),
        // ER_SERVER_SHUTDOWN, ER_CONNECTION_KILLED (MariaDB), CR_SERVER_GONE_ERROR,
        // CR_SERVER_LOST, ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
        mysql_async::Error::Server(server) => {
            matches!(server.code, 1053 | 1927 | 2006 | 2013 | 4031)
        }
        _ => false,
    }
}

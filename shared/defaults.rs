//! Every configuration variable's default, written once: the command line's flags
//! (`default_value_t`) and the Lambda functions' environment (`env.parse`) both read them
//! from here, so a job behaves the same however it is started. Each constant is named after
//! the variable it is the default of.

use crate::restore::definer::DefinerMode;

// Full backups (`dump`; the `dump` function).

/// Daily backups older than this many days are removed…
pub const BACKUP_KEEP_DAYS: u32 = crate::retention::DEFAULT_KEEP_DAYS;
/// …but at least this many complete backups are always kept.
pub const BACKUP_KEEP_MIN: usize = crate::retention::DEFAULT_KEEP_MIN;
/// A new data file after this many MiB of SQL, so restores can load in parallel.
pub const BACKUP_SPLIT_MB: u64 = crate::dump::DEFAULT_SPLIT_MB;
/// Connections reading tables at once.
pub const BACKUP_DUMP_JOBS: u16 = crate::dump::DEFAULT_JOBS;
/// gzip level (the command line's flag; the function always uses it).
pub const BACKUP_COMPRESSION_LEVEL: u32 = crate::dump::DEFAULT_COMPRESSION_LEVEL;
/// Whether the function applies retention after a dump (the command line's `--no-prune`).
pub const BACKUP_PRUNE: bool = true;

// Incrementals.

/// The change-tracking column of every table not named otherwise.
pub const INCREMENTAL_TRACKING_COLUMN: &str = crate::incremental::scope::DEFAULT_TRACKING_COLUMN;
/// Minutes before the previous point whose changes are written again regardless.
pub const INCREMENTAL_OVERLAP_MINUTES: u32 = 5;

// Restores and the restore test.

/// Connections loading data at once (`restore`, `restore-test`, the `restore-test` function).
pub const RESTORE_JOBS: u16 = 4;
/// `restore`'s DEFINER handling: as the backup recorded.
pub const RESTORE_DEFINER: DefinerMode = DefinerMode::Keep;
/// The restore test's DEFINER handling: as the test user, who holds no SET USER.
pub const RESTORE_TEST_DEFINER: DefinerMode = DefinerMode::Current;
/// The restore test's scratch databases are named PREFIX_<time>_<random> (and `setup-users` and
/// `doctor` grant and check them by this name).
pub const RESTORE_TEST_DATABASE_PREFIX: &str = "toc_sis_restore_test";

// The monitor (`monitor`, `status`; the `monitor` function).

/// Share of a table's rows whose loss between backups is an anomaly.
pub const MONITOR_ROW_DROP_PERCENT: f64 = 5.0;
/// Every file of the latest chain is re-read when the last deep check is this old.
pub const MONITOR_DEEP_EVERY_HOURS: u32 = 24;
/// Hours between reminders while a problem lasts.
pub const MONITOR_REMINDER_HOURS: u32 = 4;
/// Days within which a restore test must have passed; 0: not checked.
pub const MONITOR_RESTORE_TEST_DAYS: u32 = 0;
/// Minutes the RDS latest restorable time may lag.
pub const MONITOR_PITR_MAX_MINUTES: u32 = 15;
/// The binlog archive's lag above this many minutes is a warning (three times: critical).
pub const MONITOR_BINLOG_RPO_MINUTES: u32 = 10;
/// The recovery-time objective: a restore to now estimated longer is a warning (twice: critical).
pub const MONITOR_RTO_MINUTES: u32 = crate::monitor::recovery_time::DEFAULT_RTO_MINUTES;

// The binlog archive.

/// A segment is cut after the transaction that takes it past this many MiB.
pub const BINLOG_SEGMENT_MB: u64 = crate::binlog::archive::DEFAULT_SEGMENT_BYTES >> 20;
/// The server id the archive registers with as a replica.
pub const BINLOG_REPLICA_SERVER_ID: u32 = crate::binlog::archive::DEFAULT_REPLICA_SERVER_ID;

// File snapshots (`files`; the `files` function).

/// Snapshots older than this many days are removed…
pub const FILES_KEEP_DAYS: u32 = crate::files::DEFAULT_KEEP_DAYS;
/// …but the newest this many of each source are always kept.
pub const FILES_KEEP_MIN: usize = crate::files::DEFAULT_KEEP_MIN;
/// Files read and stored at once.
pub const FILES_JOBS: u16 = 4;
/// Whether the function applies retention after a snapshot (the command line's `--no-prune`).
pub const FILES_PRUNE: bool = true;
/// The source's name in the store (the command line's `files backup`).
pub const FILES_SOURCE_NAME: &str = "uploads";

// How a job runs.

/// Without a terminal, a long job logs a progress line this often, in seconds.
pub const PROGRESS_SECONDS: u64 = 30;
/// A function refuses to start with less of its invocation left than this.
pub const MIN_REMAINING_SECONDS: u64 = 120;
/// A function stops this long before its deadline, so the failure is reported, not killed.
pub const DEADLINE_MARGIN_SECONDS: u64 = 15;
/// A successful run that used more than this share of its invocation's time is a warning.
pub const BUDGET_WARN_PERCENT: u32 = 60;

/// A DEFINER mode as it is typed (`--definer`, RESTORE_DEFINER): clap's default is text.
pub const fn definer_text(mode: DefinerMode) -> &'static str {
    match mode {
        DefinerMode::Keep => "keep",
        DefinerMode::Current => "current",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults the library's own types carry agree with the table (those types live
    /// where the table cannot write them yet).
    #[test]
    fn the_library_defaults_agree_with_the_table() {
        let retention = crate::retention::RetentionPolicy::default();
        assert_eq!(
            (retention.keep_days, retention.keep_min),
            (BACKUP_KEEP_DAYS, BACKUP_KEEP_MIN)
        );
        let files = crate::files::default_file_retention();
        assert_eq!(
            (files.keep_days, files.keep_min),
            (FILES_KEEP_DAYS, FILES_KEEP_MIN)
        );
        let url = crate::config::DatabaseUrl::parse("mysql://u@h/d").unwrap();
        let dump = crate::dump::DumpOptions::new(url);
        assert_eq!(dump.split_bytes, BACKUP_SPLIT_MB * 1024 * 1024);
        assert_eq!(dump.compression_level, BACKUP_COMPRESSION_LEVEL);
        assert_eq!(dump.jobs, usize::from(BACKUP_DUMP_JOBS));
        assert_eq!(DefinerMode::default(), RESTORE_DEFINER);
    }

    #[test]
    fn definer_text_reads_back() {
        for mode in [DefinerMode::Keep, DefinerMode::Current] {
            assert_eq!(definer_text(mode).parse::<DefinerMode>(), Ok(mode));
        }
    }
}

//! `toc-backup binlog archive` (the server's binlog streamed into the store) and `toc-backup
//! binlog find` (the archived transactions that touched a table).

use clap::{Args, Subcommand};
use toc_sis_backup::binlog::{archive::run_archive_alerting, find, ArchiveOptions};
use toc_sis_backup::defaults;
use toc_sis_backup::Error;

use super::{mib, notifier, print, store, Console};
use crate::flags::{parse_time, Connection, StoreArg};

#[derive(Subcommand)]
pub(crate) enum BinlogCommand {
    /// Archive the binlog from where the archive ends (the first time: from the latest full
    /// backup's snapshot) to the server's current end, in sealed segments.
    Archive(BinlogArchiveArgs),
    /// List the archived transactions that changed a table: time, GTID, position, rows.
    Find(BinlogFindArgs),
}

#[derive(Args)]
pub(crate) struct BinlogArchiveArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    store: StoreArg,
    /// The server id this tool registers with as a replica: unique among the source's
    /// replicas (a second connection with the same id is cut off by the server).
    #[arg(long, env = "BINLOG_REPLICA_SERVER_ID", default_value_t = defaults::BINLOG_REPLICA_SERVER_ID)]
    replica_server_id: u32,
    /// Cut a segment after the transaction that takes it past this many MiB (uncompressed).
    #[arg(long, env = "BINLOG_SEGMENT_MB", default_value_t = defaults::BINLOG_SEGMENT_MB, value_parser = clap::value_parser!(u64).range(1..=4096))]
    segment_mb: u64,
    /// Stop between transactions after this many seconds (the next run goes on from there).
    #[arg(long, env = "BINLOG_MAX_SECONDS")]
    max_seconds: Option<u64>,
    /// Alerts (a gap, a failure) go to this SNS topic instead of the log.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    sns_topic_arn: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct BinlogFindArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The table whose changes to list.
    #[arg(long)]
    table: String,
    /// The database the table is in (default: the database the full backups are of).
    #[arg(long)]
    database: Option<String>,
    /// Only transactions committed at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only transactions committed at or before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    to: Option<chrono::DateTime<chrono::Utc>>,
    /// Only changes of rows whose COLUMN had VALUE before or after (e.g. student_id=1042).
    #[arg(long, value_name = "COLUMN=VALUE")]
    where_column: Option<String>,
    /// Print the transactions as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(command: BinlogCommand, console: Console) -> Result<(), Error> {
    match command {
        BinlogCommand::Archive(args) => archive_binlog(args, console).await,
        BinlogCommand::Find(args) => find_changes(args).await,
    }
}

async fn archive_binlog(args: BinlogArchiveArgs, console: Console) -> Result<(), Error> {
    let options = ArchiveOptions {
        url: args.connection.url().await?,
        replica_server_id: args.replica_server_id,
        deadline: args
            .max_seconds
            // Beyond what a clock can hold is no deadline at all.
            .and_then(|s| std::time::Instant::now().checked_add(std::time::Duration::from_secs(s))),
        segment_bytes: args.segment_mb * 1024 * 1024,
        headway: Default::default(),
    };
    let notifier = notifier(args.sns_topic_arn.as_deref()).await;
    let shown = console.progress(options.headway.clone());
    let outcome =
        run_archive_alerting(store(&args.store).await?, notifier.as_ref(), &options).await;
    shown.finish();
    let report = outcome?;
    print(args.json, &report, |r| {
        let mut text = format!(
            "binlog archived from {} to {}: {} segments, {} transactions, {} row changes, {} ({} uncompressed) in {:.1} s; complete until {}",
            r.started_from,
            r.next,
            r.segments.len(),
            r.transactions,
            r.row_changes,
            mib(r.bytes),
            mib(r.uncompressed_bytes),
            r.seconds,
            r.complete_until
                .map_or("(stopped before the end)".into(), |t| t.to_rfc3339()),
        );
        if let Some(gap) = &r.gap {
            text.push_str(&format!(
                "\nCRITICAL: the binlog from {} to {} was never archived ({}); the archive goes on from full backup {}",
                gap.from, gap.to, gap.reason, r.anchor
            ));
        }
        text
    });
    Ok(())
}

async fn find_changes(args: BinlogFindArgs) -> Result<(), Error> {
    let options = find::FindOptions {
        table: args.table.clone(),
        database: args.database.clone(),
        from: args.from,
        to: args.to,
        where_column: args
            .where_column
            .as_deref()
            .map(find::parse_where)
            .transpose()?,
    };
    let found = find::find(store(&args.store).await?.as_ref(), &options).await?;
    print(args.json, &found, |found| {
        if found.is_empty() {
            return format!("no archived transaction changed `{}`", args.table);
        }
        let mut lines = vec![format!(
            "{:<25} {:<22} {:<26} {:<14} {:>8} {:>8} {:>8}",
            "COMMITTED", "GTID", "POSITION", "KIND", "INSERTED", "UPDATED", "DELETED"
        )];
        for t in found {
            lines.push(format!(
                "{:<25} {:<22} {:<26} {:<14} {:>8} {:>8} {:>8}",
                t.commit.map_or("-".into(), |c| c.to_rfc3339()),
                t.gtid.as_deref().unwrap_or("-"),
                t.position,
                t.kind(),
                t.changes.inserted,
                t.changes.updated,
                t.changes.deleted
            ));
        }
        lines.push(
            "restore just before one: toc-backup restore --before-gtid GTID (or --before-position POSITION) --target-database …"
                .into(),
        );
        lines.join("\n")
    });
    Ok(())
}

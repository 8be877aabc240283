//! `toc-backup restore`: a backup (and the binlog replayed on it) loaded into a database and
//! verified against the manifests.

use std::sync::Arc;

use clap::Args;
use toc_sis_backup::defaults;
use toc_sis_backup::job::headway::Headway;
use toc_sis_backup::restore::definer::DefinerMode;
use toc_sis_backup::restore::point::Point;
use toc_sis_backup::restore::{run_restore_of, RestoreOptions, RestoreReport};
use toc_sis_backup::{catalog, Error};

use super::{mib, print, store, Console};
use crate::args::LogFormat;
use crate::flags::{Connection, PointArgs, StoreArg};

#[derive(Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    point: PointArgs,
    /// The database to restore into; created if missing.
    #[arg(long, env = "TARGET_DATABASE")]
    target_database: String,
    /// Replace the target database's contents if it is not empty.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Continue an interrupted restore of the same backup into the target database, without
    /// loading again the files it finished.
    #[arg(long)]
    resume: bool,
    /// Connections loading data at once.
    #[arg(long, env = "RESTORE_JOBS", default_value_t = defaults::RESTORE_JOBS, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    #[command(flatten)]
    definer: DefinerArg,
    /// Load the rows of these tables only (comma-separated; the others are created empty):
    /// a scratch database to copy rows back from, e.g. with --before-gtid.
    #[arg(long, value_name = "TABLE,…")]
    tables: Option<String>,
    /// Also recreate the accounts and grants the backup recorded (locked and without a
    /// password unless the dump kept password hashes; grants moved to the target database).
    /// Needs CREATE USER and the GRANT OPTION.
    #[arg(long)]
    with_accounts: bool,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

/// `--definer` of `restore` (`restore-test` has its own, [`TestDefinerArg`]).
#[derive(Args)]
pub(crate) struct DefinerArg {
    /// `keep`: create views, routines, triggers and events with the DEFINER the backup
    /// recorded (needs SUPER, or SET USER on MariaDB / SET_USER_ID on MySQL, for other
    /// accounts). `current`: create them as the restoring user (what a fresh RDS master can).
    #[arg(
        long = "definer",
        env = "RESTORE_DEFINER",
        default_value = defaults::definer_text(defaults::RESTORE_DEFINER),
        value_name = "keep|current"
    )]
    mode: DefinerMode,
}

pub(crate) async fn run(args: RestoreArgs, console: Console) -> Result<(), Error> {
    let headway = Arc::new(Headway::default());
    let options = RestoreOptions {
        server_url: args.connection.url().await?,
        point: args.point.request()?,
        target_database: args.target_database,
        force: args.force,
        jobs: usize::from(args.jobs),
        resume: args.resume,
        definer: args.definer.mode,
        with_accounts: args.with_accounts,
        headway: headway.clone(),
        tables: args.tables.as_deref().map(|list| {
            list.split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        }),
    };
    toc_sis_backup::restore::check_options(&options)?;
    // The point is resolved once, for the estimate said before anything is loaded and for the
    // restore itself.
    let store = store(&args.store).await?;
    catalog::require_backups(store.as_ref()).await?;
    let point = Point::resolve(store.as_ref(), &options.point).await?;
    let estimate = toc_sis_backup::restore::estimate::of_point(
        store.as_ref(),
        &point,
        options.tables.as_deref(),
    )
    .await;
    // JSON logs stay one JSON object a line.
    match console.log_format {
        LogFormat::Json => tracing::info!(seconds = estimate.seconds, "{}", estimate.text),
        LogFormat::Human => eprintln!("{}", estimate.text),
    }
    let shown = console.progress(headway);
    let outcome = run_restore_of(store, &options, point).await;
    shown.finish();
    let mut report = outcome?;
    report.estimate = Some(estimate);
    print(args.json, &report, |r| {
        format!(
            "restored {} backup {} (point in time {}; chain {}) of {} into {}: {} tables, {} rows, {} objects from {} files ({}); \
             loaded in {:.1} s, verified in {:.1} s, {:.1} s in all. Row counts, fingerprints and definitions match the manifests{}.",
            r.kind,
            r.backup_id,
            r.point_in_time,
            r.chain.join(" -> "),
            r.source_database,
            r.target_database,
            r.tables,
            r.rows,
            r.objects,
            r.files,
            mib(r.bytes),
            r.load_seconds,
            r.verify_seconds,
            r.duration_seconds,
            if r.definers_rewritten > 0 {
                format!(
                    " ({} objects created as the restoring user: their DEFINER was rewritten, and definitions were compared without it)",
                    r.definers_rewritten
                )
            } else {
                String::new()
            }
        ) + &left_out_lines(r)
    });
    Ok(())
}

/// The logged statements a binlog replay did not run, one line each, for the restore summary.
fn left_out_lines(report: &RestoreReport) -> String {
    let Some(replay) = &report.binlog else {
        return String::new();
    };
    let mut lines = String::new();
    if !replay.left_out.is_empty() {
        lines.push_str(&format!(
            "\n{} logged statements were not replayed (a restore changes its target and nothing else):",
            replay.left_out.len()
        ));
    }
    for left in &replay.left_out {
        lines.push_str(&format!(
            "\n  at {}: {} — {}",
            left.position, left.statement, left.reason
        ));
    }
    lines
}

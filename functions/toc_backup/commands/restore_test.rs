//! `toc-backup restore-test`: the latest backup restored into a scratch database, verified,
//! timed and dropped; the result notified.

use clap::Args;
use toc_sis_backup::defaults;
use toc_sis_backup::monitor::restore_test::{run_restore_test_until, RestoreTestOptions};
use toc_sis_backup::restore::definer::DefinerMode;
use toc_sis_backup::Error;

use super::{notifier, print, shutdown_signal, store, Console};
use crate::flags::{Connection, StoreArg};

#[derive(Args)]
pub(crate) struct RestoreTestArgs {
    /// The server that takes the scratch database: mysql://USER[:PASS]@HOST[:PORT]/
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    store: StoreArg,
    /// The scratch database's name starts with this.
    #[arg(
        long,
        env = "RESTORE_TEST_DATABASE_PREFIX",
        default_value = defaults::RESTORE_TEST_DATABASE_PREFIX
    )]
    database_prefix: String,
    /// Connections loading data at once.
    #[arg(long, env = "RESTORE_JOBS", default_value_t = defaults::RESTORE_JOBS, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    #[command(flatten)]
    definer: TestDefinerArg,
    /// Send alerts to this SNS topic instead of the log.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    sns_topic_arn: Option<String>,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

/// `--definer` of `restore-test`: `current` unless told otherwise, so the unattended monthly
/// test runs as a user confined to its scratch databases, who cannot create objects for
/// another account (`toc-backup setup-users`).
#[derive(Args)]
pub(crate) struct TestDefinerArg {
    /// `current` (the default): create views, routines, triggers and events as the test user;
    /// definitions are still verified, without their DEFINER clause. `keep`: with the DEFINER
    /// the backup recorded (needs SUPER or SET USER / SET_USER_ID for other accounts).
    #[arg(
        long = "definer",
        env = "RESTORE_DEFINER",
        default_value = defaults::definer_text(defaults::RESTORE_TEST_DEFINER),
        value_name = "current|keep"
    )]
    mode: DefinerMode,
}

pub(crate) async fn run(args: RestoreTestArgs, console: Console) -> Result<(), Error> {
    let options = RestoreTestOptions {
        server_url: args.connection.url().await?,
        jobs: usize::from(args.jobs),
        database_prefix: args.database_prefix,
        definer: args.definer.mode,
        headway: Default::default(),
    };
    let notifier = notifier(args.sns_topic_arn.as_deref()).await;
    let store = store(&args.store).await?;
    // Ctrl-C or SIGTERM stops the test the way a Lambda deadline does: scratch database
    // dropped, TIMED OUT reported and alerted.
    let shown = console.progress(options.headway.clone());
    let outcome = run_restore_test_until(
        store,
        notifier.as_ref(),
        &options,
        chrono::Utc::now(),
        shutdown_signal(),
    )
    .await;
    shown.finish();
    let report = outcome?;
    print(args.json, &report, |r| {
        format!(
            "restore test passed: backup {} (chain {}) restored into {} and verified in {:.1} s ({} tables, {} rows); scratch database dropped",
            r.backup_id.as_deref().unwrap_or("-"),
            r.chain.join(" -> "),
            r.scratch_database,
            r.rto_seconds,
            r.tables,
            r.rows
        )
    });
    Ok(())
}

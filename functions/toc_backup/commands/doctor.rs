//! `toc-backup doctor`: the deployment checked, printed as `status` prints the monitor's checks.

use clap::Args;
use toc_sis_backup::deploy::doctor::{run_doctor, DoctorTargets};
use toc_sis_backup::monitor::{MonitorReport, Status};
use toc_sis_backup::{mysql, Error};

use super::{exit_code, print, print_checks};
use crate::flags::{Connection, DeploymentNames, StoreArg};

#[derive(Args)]
pub(crate) struct DoctorArgs {
    /// The server, connected as the master user (it reads the project users' grants):
    /// mysql://MASTER@HOST[:PORT]/
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    names: DeploymentNames,
    /// The alert topic (the stack's AlertTopicArn output): a confirmed subscription is needed.
    #[arg(long, env = "SNS_TOPIC_ARN")]
    sns_topic_arn: Option<String>,
    /// The RDS instance: its backup retention, parameter group and pending reboot.
    #[arg(long, env = "MONITOR_RDS_INSTANCE")]
    rds_instance: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Exits 0 OK, 1 WARNING, 2 CRITICAL, as `status` does.
pub(crate) async fn run(args: DoctorArgs) -> Result<u8, Error> {
    let url = args.connection.url().await?;
    let mut conn = mysql::connect(&url, None).await?;
    let config = toc_sis_backup::aws::sdk_config().await;
    let sns = args
        .sns_topic_arn
        .clone()
        .map(|topic| (aws_sdk_sns::Client::new(&config), topic));
    let rds = args
        .rds_instance
        .clone()
        .map(|instance| (aws_sdk_rds::Client::new(&config), instance));
    let checks = run_doctor(DoctorTargets {
        database: Some(&mut conn),
        names: args.names.names(),
        store: Some(args.store.store.clone()),
        sns,
        rds,
    })
    .await?;
    let report = MonitorReport {
        checked_at: chrono::Utc::now().to_rfc3339(),
        status: checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok),
        checks,
        tier_ages: Vec::new(),
        latest_full_bytes: None,
        alerted: false,
    };
    print(args.json, &report, print_checks);
    Ok(exit_code(report.status))
}

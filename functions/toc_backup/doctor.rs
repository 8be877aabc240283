//! `toc-backup doctor`: the deployment checked, printed as `status` prints the monitor's checks.

use toc_sis_backup::deploy::doctor::{run_doctor, DoctorTargets};
use toc_sis_backup::monitor::{MonitorReport, Status};
use toc_sis_backup::{mysql, Error};

use crate::args::DoctorArgs;

pub(crate) async fn run(args: DoctorArgs) -> Result<MonitorReport, Error> {
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
    crate::print(args.json, &report, crate::print_checks);
    Ok(report)
}

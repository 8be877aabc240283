//! The `monitor` Lambda function: backup checks every 15 minutes, alerts through SNS.

use toc_sis_backup::lambda::monitor::MonitorFunction;
use toc_sis_backup::lambda::{serve, ProcessEnv};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = toc_sis_backup::aws::sdk_config().await;
    serve(MonitorFunction::from_env(&ProcessEnv, sdk_config).await?).await
}

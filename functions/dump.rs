//! The `dump` Lambda function: a full backup of the TOC-SIS database into S3.

use toc_sis_backup::lambda::dump::DumpFunction;
use toc_sis_backup::lambda::{serve, ProcessEnv};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = toc_sis_backup::aws::sdk_config().await;
    serve(DumpFunction::from_env(&ProcessEnv, sdk_config).await?).await
}

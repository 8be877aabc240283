//! The `incremental` Lambda function: the hourly incremental of the critical tables into S3.

use toc_sis_backup::lambda::incremental::IncrementalFunction;
use toc_sis_backup::lambda::{serve, ProcessEnv};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = toc_sis_backup::aws::sdk_config().await;
    serve(IncrementalFunction::from_env(&ProcessEnv, sdk_config).await?).await
}

//! The `incremental` Lambda function: the hourly incremental of the critical tables into S3.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use toc_sis_backup::lambda::incremental::IncrementalFunction;
use toc_sis_backup::lambda::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = toc_sis_backup::aws::sdk_config().await;
    let function = IncrementalFunction::from_env(&ProcessEnv, sdk_config).await?;
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = event.context.deadline();
        function
            .handle(event.payload, Some(deadline))
            .await
            .map_err(Error::from)
    }))
    .await
}

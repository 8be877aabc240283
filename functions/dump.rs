//! The `dump` Lambda function: a full backup of the TOC-SIS database into S3.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use toc_sis_backup::lambda::dump::DumpFunction;
use toc_sis_backup::lambda::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = toc_sis_backup::aws::sdk_config().await;
    let function = DumpFunction::from_env(&ProcessEnv, sdk_config).await?;
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

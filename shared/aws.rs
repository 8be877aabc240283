//! Shared AWS SDK configuration: region, credentials and endpoint from the standard chain
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, the Lambda role, …), with retries for throttling and 5xx.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};

pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .load()
        .await
}

//! The S3 client every store uses: timeouts, retries that a long backup can afford, one WARN
//! line per retried request, and no response-checksum noise.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_s3::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_s3::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{ConfigBag, Intercept, ResponseChecksumValidation, RuntimeComponents};
use aws_sdk_s3::Client;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;

use super::reader::RetrySettings;

/// A client for the configured region and endpoint. `AWS_ENDPOINT_URL` (or `_S3`) points it at
/// an S3-compatible server, which also switches to path-style addressing.
pub async fn client_for(retry: &RetrySettings) -> Client {
    client_in(&crate::aws::sdk_config().await, retry, None)
}

/// A client for the region `bucket` is in, and that region when it is not the configured one:
/// S3 answers a request sent to another region's endpoint with a redirect the SDK does not
/// follow (the replica bucket is in eu-central-1, the functions in eu-west-1). The region is
/// asked once with GetBucketLocation, which any region answers; when it cannot be read (no
/// s3:GetBucketLocation), the configured region is used and its errors speak later.
pub async fn client_for_bucket(retry: &RetrySettings, bucket: &str) -> (Client, Option<String>) {
    // Loaded once: a client for another region is built from the same configuration.
    let config = crate::aws::sdk_config().await;
    let client = client_in(&config, retry, None);
    let configured = client.config().region().map(|r| r.to_string());
    match client.get_bucket_location().bucket(bucket).send().await {
        Ok(answer) => {
            let region = match answer.location_constraint().map(|c| c.as_str()) {
                None | Some("") => "us-east-1".to_string(),
                Some("EU") => "eu-west-1".to_string(),
                Some(region) => region.to_string(),
            };
            if configured.as_deref() == Some(region.as_str()) {
                return (client, None);
            }
            tracing::info!(bucket, region = %region, "the bucket is in another region; using a client for it");
            (
                client_in(&config, retry, Some(region.clone())),
                Some(region),
            )
        }
        Err(e) => {
            tracing::debug!(
                bucket,
                "the bucket's region could not be read ({}); using the configured region",
                super::describe(&e)
            );
            (client, None)
        }
    }
}

fn client_in(config: &SdkConfig, retry: &RetrySettings, region: Option<String>) -> Client {
    let custom_endpoint = std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        || std::env::var("BACKUP_S3_FORCE_PATH_STYLE").is_ok_and(|v| v == "true");
    let mut builder = aws_sdk_s3::config::Builder::from(config);
    if let Some(region) = region {
        builder = builder.region(aws_sdk_s3::config::Region::new(region));
    }
    let s3_config = builder
        .force_path_style(custom_endpoint)
        // Which checksum is verified where: every upload (PutObject, each UploadPart) carries
        // its SHA-256 and S3 refuses a body that does not match it; every read is hashed whole by
        // its caller against the SHA-256 the manifest recorded. Asking S3 for its stored
        // checksum on each GET would add nothing: for a multipart object it is a checksum of the
        // parts' checksums, which the SDK cannot check (it logs a WARN on every such read), and a
        // resumed, ranged GET carries none at all.
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5).min(retry.stall))
                // Time to the first byte of a response: a request S3 (or a proxy) sits on is
                // retried instead of hanging the job. Uploads count their body's time here, so
                // the stall window must cover sending one part.
                .read_timeout(retry.stall)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(retry.attempts)
                .with_initial_backoff(retry.backoff),
        )
        // The default retry quota (a token bucket shared by the process) stops retrying after
        // a few hundred failures, which a multi-hour dump on a bad network reaches; this client
        // belongs to one batch job, whose attempts per request are already bounded.
        .retry_partition(
            RetryPartition::custom("toc-backup-s3")
                .token_bucket(TokenBucket::unlimited())
                .build(),
        )
        .interceptor(LogRetries)
        .build();
    Client::from_conf(s3_config)
}

/// Logs every failed attempt that the SDK will try again, with its number, at WARN.
#[derive(Debug)]
struct LogRetries;

impl Intercept for LogRetries {
    fn name(&self) -> &'static str {
        "LogRetries"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let status = context.response().map(|r| r.status().as_u16());
        let failure = match (context.output_or_error(), status) {
            (Some(Ok(_)), _) | (None, _) => return Ok(()),
            (Some(Err(_)), Some(code)) if code == 429 || code >= 500 => format!("HTTP {code}"),
            (Some(Err(e)), None) if e.is_timeout_error() => "timed out".to_string(),
            (Some(Err(e)), None) if e.is_connector_error() || e.is_response_error() => {
                format!("connection failed: {}", super::error_chain(e))
            }
            // A plain 4xx answer (missing key, denied) is not retried; callers report it.
            _ => return Ok(()),
        };
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let max_attempts = cfg.load::<RetryConfig>().map_or(1, |r| r.max_attempts());
        let operation = cfg.load::<Metadata>().map_or("request", |m| m.name());
        if attempt < max_attempts {
            tracing::warn!(
                operation,
                attempt,
                max_attempts,
                "S3 {operation} attempt {attempt} of {max_attempts} failed ({failure}); retrying"
            );
        }
        Ok(())
    }
}

//! The AWS emulator (moto, started by `scripts/test` and named in AWS_ENDPOINT_URL): buckets,
//! SNS topics whose messages are read back through an SQS subscription, secrets.

use std::time::Duration;

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

pub async fn config() -> aws_config::SdkConfig {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: run the tests with scripts/test, which starts the AWS emulator"
    );
    toc_sis_backup::aws::sdk_config().await
}

pub async fn s3() -> aws_sdk_s3::Client {
    toc_sis_backup::store::s3::client_for(&Default::default()).await
}

/// The keys under `prefix` in `bucket`, in key order (one page: tests keep under 1,000).
pub async fn keys(bucket: &str, prefix: &str) -> Vec<String> {
    s3().await
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

/// Copies the newest daily backup's manifest under `college/` from `bucket` to `replica`, as
/// replication would; answers its key.
pub async fn replicate_latest_manifest(bucket: &str, replica: &str) -> String {
    let s3 = s3().await;
    let manifest_key = keys(bucket, "college/database/daily/")
        .await
        .into_iter()
        .filter(|k| k.ends_with("manifest.json"))
        .max()
        .expect("manifest");
    s3.copy_object()
        .bucket(replica)
        .key(&manifest_key)
        .copy_source(format!("{bucket}/{manifest_key}"))
        .send()
        .await
        .expect("copy");
    manifest_key
}

/// A new bucket with a unique name, in eu-west-1 (where the functions run).
pub async fn bucket(prefix: &str) -> String {
    bucket_in(prefix, BucketLocationConstraint::EuWest1).await
}

/// A new bucket with a unique name in `region`.
pub async fn bucket_in(prefix: &str, region: BucketLocationConstraint) -> String {
    let name = format!("{prefix}-{:08x}", rand::random::<u32>());
    // S3 creates a bucket only through its own region's endpoint.
    let config = config().await;
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .region(aws_sdk_s3::config::Region::new(region.as_str().to_string()))
            .build(),
    );
    client
        .create_bucket()
        .bucket(&name)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(region)
                .build(),
        )
        .send()
        .await
        .expect("create bucket");
    name
}

/// An SNS topic with an SQS queue subscribed, so published alerts can be read back.
pub struct Alerts {
    pub topic_arn: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl Alerts {
    pub async fn new() -> Alerts {
        let config = config().await;
        let sns = aws_sdk_sns::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let name = format!("toc-alerts-{:08x}", rand::random::<u32>());
        let topic_arn = sns
            .create_topic()
            .name(&name)
            .send()
            .await
            .expect("topic")
            .topic_arn()
            .expect("arn")
            .to_string();
        let queue_url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .expect("queue")
            .queue_url()
            .expect("url")
            .to_string();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue arn");
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe");
        Alerts {
            topic_arn,
            queue_url,
            sqs,
        }
    }

    /// Every (subject, message) published so far, waiting briefly for delivery.
    pub async fn received(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for _ in 0..10 {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            for message in output.messages() {
                let envelope: serde_json::Value =
                    serde_json::from_str(message.body().unwrap_or_default())
                        .expect("SNS envelope JSON");
                found.push((
                    envelope["Subject"].as_str().unwrap_or_default().to_string(),
                    envelope["Message"].as_str().unwrap_or_default().to_string(),
                ));
            }
            if !found.is_empty() && output.messages().is_empty() {
                break;
            }
            if found.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        found
    }
}

/// A Secrets Manager secret holding `text`; returns its ARN.
pub async fn secret(text: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(&config().await);
    client
        .create_secret()
        .name(format!("toc/db/{:08x}", rand::random::<u32>()))
        .secret_string(text)
        .send()
        .await
        .expect("create secret")
        .arn()
        .expect("arn")
        .to_string()
}

/// Sets `bucket`'s default encryption as the stack's BucketEncryption: SSE-KMS with `key` and a
/// bucket key (straight on moto, not through the proxy).
pub async fn set_default_key(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) {
    use aws_sdk_s3::types::{
        ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule,
    };
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(key)
                .build()
                .expect("default"),
        )
        .bucket_key_enabled(true)
        .build();
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()
                .expect("configuration"),
        )
        .send()
        .await
        .expect("PutBucketEncryption");
}

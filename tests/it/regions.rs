//! Issue 14: each store gets a client for its own bucket's region. The replica bucket is in
//! eu-central-1 and the functions in eu-west-1; S3 answers a request signed for the wrong region
//! with a 301 redirect the SDK does not follow, so a store opened with the function's client
//! could never read the replica, and the cross-region check was always red. The fault proxy
//! answers the replica bucket as S3 does.

use crate::common::fault_proxy::{FaultProxy, Mode};
use crate::common::*;
use aws_sdk_s3::types::BucketLocationConstraint;

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cross_region_check_reads_the_replica_in_its_own_region() {
    let source = small_database("regions").await;
    let bucket = aws::bucket("toc-main").await;
    let replica_bucket = aws::bucket_in("toc-replica", BucketLocationConstraint::EuCentral1).await;
    let proxy = FaultProxy::start(Mode::Clean).await;
    proxy.place_bucket(&replica_bucket, "eu-central-1");
    let through_proxy = [
        ("AWS_ENDPOINT_URL", proxy.url.as_str()),
        ("AWS_REGION", "eu-west-1"),
    ];
    let store = format!("s3://{bucket}/college");
    let replica = format!("s3://{replica_bucket}/college");
    assert_ok(&dump_into(&source, &store, &through_proxy));

    // Replication's part: the latest manifest copied to the replica bucket.
    let manifest_key = aws::replicate_latest_manifest(&bucket, &replica_bucket).await;

    let output = run_cli(
        &[
            "status",
            "--store",
            &store,
            "--replica-store",
            &replica,
            "--json",
        ],
        &through_proxy,
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("status --json: {}", text(&output)));
    let copy = check(&report, "Cross-region copy");
    assert_eq!(copy["status"], "OK", "{copy}");
    assert!(
        copy["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("(eu-central-1)"),
        "{copy}"
    );

    // The proxy does answer as S3 does: the function's own client is redirected.
    let redirected = s3_client_through(&proxy.url)
        .await
        .get_object()
        .bucket(&replica_bucket)
        .key(&manifest_key)
        .send()
        .await
        .expect_err("a request signed for eu-west-1 is redirected");
    let detail = format!("{:?}", redirected);
    assert!(
        detail.contains("301") || detail.contains("PermanentRedirect"),
        "{detail}"
    );
    drop_database(&source).await;
}

async fn s3_client_through(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws::config().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .endpoint_url(endpoint)
            .force_path_style(true)
            .region(aws_sdk_s3::config::Region::new("eu-west-1"))
            .build(),
    )
}

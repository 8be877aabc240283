//! The Lambda entry points end to end: each binary talks to a Runtime API on loopback (the
//! protocol the real service speaks: next invocation, then response or error), so what runs in
//! AWS is the binary tested here, not only its handler.

use std::process::{Command, Stdio};

use crate::common::lambda_api::invoke_once;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dump_binary_serves_invocations_through_the_runtime_api() {
    let source = small_database("runtime").await;
    let bucket = aws::bucket("toc-runtime").await;
    let env = vec![
        ("BACKUP_STORE", format!("s3://{bucket}/college")),
        ("DATABASE_URL", url_for(&source)),
    ];
    let ok = invoke_once(
        env!("CARGO_BIN_EXE_dump"),
        &env,
        serde_json::json!({"label": "runtime test"}),
    )
    .await;
    assert_eq!(
        ok.path, "/2018-06-01/runtime/invocation/req-1/response",
        "{ok:?}"
    );
    assert!(ok.body["backup_id"].is_string(), "{ok:?}");
    assert_eq!(ok.body["tables"], 3, "{ok:?}");

    let refused = invoke_once(
        env!("CARGO_BIN_EXE_dump"),
        &env,
        serde_json::json!({"nonsense": true}),
    )
    .await;
    assert_eq!(
        refused.path, "/2018-06-01/runtime/invocation/req-1/error",
        "{refused:?}"
    );
    assert!(
        refused.body["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid event"),
        "{refused:?}"
    );

    let monitor = invoke_once(
        env!("CARGO_BIN_EXE_monitor"),
        &env[..1],
        serde_json::json!({}),
    )
    .await;
    assert_eq!(
        monitor.path, "/2018-06-01/runtime/invocation/req-1/response",
        "{monitor:?}"
    );
    assert!(monitor.body["checks"].is_array(), "{monitor:?}");

    let uploads = tempfile::tempdir().expect("tempdir");
    std::fs::write(uploads.path().join("cv.pdf"), b"%PDF-1.7").expect("fixture");
    let sources = serde_json::json!([{"name": "uploads", "from": uploads.path()}]);
    let files = invoke_once(
        env!("CARGO_BIN_EXE_files"),
        &[env[0].clone(), ("FILES_SOURCES", sources.to_string())],
        serde_json::json!({"label": "runtime test"}),
    )
    .await;
    assert_eq!(
        files.path, "/2018-06-01/runtime/invocation/req-1/response",
        "{files:?}"
    );
    assert_eq!(files.body[0]["files"], 1, "{files:?}");
    drop_database(&source).await;
}

#[test]
fn a_function_without_its_configuration_stops_at_cold_start_naming_the_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_incremental-backup"))
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("AWS_LAMBDA_FUNCTION_NAME", "toc-test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env_remove("BACKUP_STORE")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BACKUP_STORE is not set"), "{stderr}");
}

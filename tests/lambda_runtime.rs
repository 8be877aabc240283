//! The Lambda entry points end to end: each binary talks to a Runtime API on loopback (the
//! protocol the real service speaks: next invocation, then response or error), so what runs in
//! AWS is the binary tested here, not only its handler.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the function posted back for the one invocation it was given.
#[derive(Debug)]
struct Outcome {
    path: String,
    body: serde_json::Value,
}

/// Serves one invocation of `event` and returns what the function posted back.
async fn invoke_once(binary: &str, env: &[(&str, String)], event: serde_json::Value) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let mut command = Command::new(binary);
    command
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "toc-test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child: Child = command.spawn().expect("start the function");
    let mut served = false;
    let outcome = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut reader = BufReader::new(stream);
            loop {
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                    break;
                }
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).await.expect("header");
                    if header.trim().is_empty() {
                        break;
                    }
                    if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).await.expect("body");
                let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
                if path.ends_with("/invocation/next") {
                    if served {
                        // A second poll: the function is idle again; our invocation is done.
                        std::future::pending::<()>().await;
                    }
                    served = true;
                    let payload = event.to_string();
                    let deadline = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("clock")
                        .as_millis()
                        + 900_000;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-1\r\n\
                         Lambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-west-1:123456789012:function:toc-test\r\n\
                         Content-Length: {}\r\n\r\n{payload}",
                        payload.len()
                    );
                    reader.get_mut().write_all(response.as_bytes()).await.expect("write");
                } else {
                    reader.get_mut().write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n").await.expect("write");
                    return Outcome { path, body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null) };
                }
            }
        }
    })
    .await
    .expect("the function answered within two minutes");
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

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

//! A Lambda Runtime API on loopback (the protocol the real service speaks: next invocation,
//! then response or error), so the binaries that run in AWS are the ones tested.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the function posted back for the one invocation it was given.
#[derive(Debug)]
pub struct Outcome {
    pub path: String,
    pub body: serde_json::Value,
}

/// Serves one invocation of `event` and returns what the function posted back.
pub async fn invoke_once(
    binary: &str,
    env: &[(&str, String)],
    event: serde_json::Value,
) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let mut command = Command::new(binary);
    command
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "toc-test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        // Only what the caller gives: none of the test process's own settings.
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_KMS_KEY_ID")
        .env_remove("BACKUP_SSE")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // The function's log, shown if it never answers (a file: a pipe nobody reads could fill
    // and stop the function itself).
    let log = tempfile::NamedTempFile::new().expect("log file");
    command.stderr(Stdio::from(log.reopen().expect("log file")));
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child: Child = command.spawn().expect("start the function");
    let mut served = false;
    // Generous: the whole suite runs in one process, so a busy machine is the usual case.
    let outcome = tokio::time::timeout(Duration::from_secs(300), async {
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
    .unwrap_or_else(|_| {
        let _ = child.kill();
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        let tail = &text[text.len().saturating_sub(4000)..];
        panic!("the function did not answer within five minutes; its log ends:\n{tail}")
    });
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

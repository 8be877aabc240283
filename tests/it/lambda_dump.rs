//! Issue 3, tests 3 and 4: the `dump` function's handler runs with every sample event from
//! `events/` against the real database and the AWS emulator; bad events, bad configuration, a
//! short deadline and bad secrets fail clearly and alert; the secret's password never shows.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::common::*;
use mysql_async::prelude::Queryable;
use toc_sis_backup::lambda::dump::DumpFunction;
use toc_sis_backup::lambda::Env;

/// Collects everything logged while a test runs, to search it for secrets.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    fn install() -> LogCapture {
        let capture = LogCapture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        // One subscriber per test thread: each test below runs on its own runtime thread.
        let _ = tracing::subscriber::set_global_default(subscriber);
        capture
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

fn env(pairs: &[(&str, String)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

async fn function(pairs: &[(&str, String)]) -> toc_sis_backup::Result<DumpFunction> {
    let map = env(pairs);
    DumpFunction::from_env(&map as &dyn Env, aws::config().await).await
}

fn in_minutes(minutes: u64) -> Option<SystemTime> {
    Some(SystemTime::now() + Duration::from_secs(60 * minutes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_runs_every_sample_event_and_refuses_bad_ones() {
    let source = small_database("lambda").await;
    let bucket = aws::bucket("toc-lambda").await;
    let alerts = aws::Alerts::new().await;
    let dump = function(&[
        ("BACKUP_STORE", format!("s3://{bucket}/scheduled")),
        ("DATABASE_URL", url_for(&source)),
        ("SNS_TOPIC_ARN", alerts.topic_arn.clone()),
    ])
    .await
    .expect("configuration");

    let events_dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/events"));
    let mut ran = 0;
    for entry in std::fs::read_dir(events_dir).expect("events/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !(name.starts_with("dump-") && name.ends_with(".json")) {
            continue;
        }
        let event: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("event JSON");
        let report = dump
            .handle(event.clone(), in_minutes(15))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let id = report["backup_id"].as_str().expect("backup id");
        let prefix = event["prefix"]
            .as_str()
            .map(|p| p.trim_matches('/').to_string())
            .unwrap_or_else(|| "scheduled".into());
        let manifest = aws::s3()
            .await
            .head_object()
            .bucket(&bucket)
            .key(format!("{prefix}/database/daily/{id}/manifest.json"))
            .send()
            .await;
        assert!(manifest.is_ok(), "{name}: no manifest under {prefix}/");
        let store = format!("s3://{bucket}/{prefix}");
        assert_ok(&run_cli(
            &["verify", "--store", &store, "--backup", id],
            &[],
        ));
        let listed = run_cli(&["list", "--store", &store, "--json"], &[]);
        assert_ok(&listed);
        let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("list JSON");
        let entry = listed
            .as_array()
            .expect("array")
            .iter()
            .find(|b| b["id"] == id)
            .cloned()
            .expect("listed");
        assert_eq!(
            entry["label"], event["label"],
            "{name}: the manual label belongs in the manifest"
        );
        ran += 1;
    }
    assert!(
        ran >= 2,
        "events/ must hold the scheduled and the manual payloads"
    );

    for bad in [
        serde_json::json!("please back up"),
        serde_json::json!({"detail-type": "Object Created", "source": "aws.s3"}),
        serde_json::json!({"labels": "typo"}),
    ] {
        let error = dump
            .handle(bad.clone(), in_minutes(15))
            .await
            .expect_err("bad event accepted");
        assert!(
            error.to_string().contains("invalid event"),
            "{bad}: {error}"
        );
    }
    let short = dump
        .handle(
            serde_json::json!({}),
            Some(SystemTime::now() + Duration::from_secs(30)),
        )
        .await
        .expect_err("a 30 s deadline must be refused");
    assert!(
        short
            .to_string()
            .contains("MIN_REMAINING_SECONDS is 120 s, but only"),
        "{short}"
    );

    let received = alerts.received().await;
    let refusals = received
        .iter()
        .filter(|(s, _)| s.contains("dump function could not start"))
        .count();
    assert_eq!(
        refusals, 4,
        "every refused invocation must alert: {received:?}"
    );
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_name_the_variable() {
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![("DATABASE_URL", url_for("x"))],
            "BACKUP_STORE is not set",
        ),
        (
            vec![
                ("BACKUP_STORE", "/local/folder".into()),
                ("DATABASE_URL", url_for("x")),
            ],
            "BACKUP_STORE",
        ),
        (
            vec![("BACKUP_STORE", "s3://ok-bucket/p".into())],
            "DATABASE_SECRET_ARN is not set (nor DATABASE_URL)",
        ),
        (
            vec![
                ("BACKUP_STORE", "s3://ok-bucket/p".into()),
                ("DATABASE_URL", "mysql//x".into()),
            ],
            "DATABASE_URL",
        ),
        (
            vec![
                ("BACKUP_STORE", "s3://ok-bucket/p".into()),
                ("DATABASE_URL", url_for("x")),
                ("BACKUP_KEEP_DAYS", "soon".into()),
            ],
            "BACKUP_KEEP_DAYS is \"soon\", which is not a whole number of days",
        ),
        (
            vec![
                ("BACKUP_STORE", "s3://ok-bucket/p".into()),
                ("DATABASE_URL", url_for("x")),
                ("DATABASE_SECRET_ARN", "arn:x".into()),
            ],
            "set exactly one",
        ),
    ];
    for (pairs, expected) in cases {
        let error = function(&pairs)
            .await
            .err()
            .unwrap_or_else(|| panic!("{pairs:?} accepted"));
        assert!(error.to_string().contains(expected), "{pairs:?}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_secrets_manager_and_never_show() {
    let logs = LogCapture::install();
    let source = small_database("secret_lambda").await;
    let user = unique_name("lambda_user");
    let password = format!("Lambda-{:016x}-pw", rand::random::<u64>());
    admin()
        .await
        .query_drop(format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%';"))
        .await
        .expect("user");
    let server = toc_sis_backup::config::DatabaseUrl::parse(&server_url()).expect("url");
    let good = aws::secret(
        &serde_json::json!({"username": user, "password": password, "engine": "mysql", "host": server.host, "port": server.port, "dbname": source})
            .to_string(),
    )
    .await;
    let bucket = aws::bucket("toc-secret").await;
    let alerts = aws::Alerts::new().await;
    let with_secret = |arn: String| {
        vec![
            ("BACKUP_STORE", format!("s3://{bucket}/db")),
            ("DATABASE_SECRET_ARN", arn),
            ("SNS_TOPIC_ARN", alerts.topic_arn.clone()),
            ("NOTIFY_SUCCESS", "true".to_string()),
        ]
    };
    let report = function(&with_secret(good.clone()))
        .await
        .expect("configuration")
        .handle(serde_json::json!({"label": "secret test"}), in_minutes(15))
        .await
        .expect("dump with the secret's credentials");
    assert!(report["rows"].as_u64().unwrap_or(0) > 2000);

    // The command line reads the same secret (how the restore test's Fargate task connects).
    let folder = tempfile::tempdir().expect("folder");
    let store = folder.path().to_str().expect("path");
    let output = tokio::task::spawn_blocking({
        let good = good.clone();
        let store = store.to_string();
        move || {
            run_cli(
                &["dump", "--store", &store],
                &[("DATABASE_SECRET_ARN", &good)],
            )
        }
    })
    .await
    .expect("cli");
    assert!(output.status.success(), "{}", text(&output));
    assert!(!text(&output).contains(&password), "the password leaked");
    let both = tokio::task::spawn_blocking(move || {
        run_cli(
            &[
                "dump",
                "--store",
                "/nonexistent",
                "--database-url",
                "mysql://x@h/db",
            ],
            &[(
                "DATABASE_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:x",
            )],
        )
    })
    .await
    .expect("cli");
    assert!(
        !both.status.success() && text(&both).contains("cannot be used with"),
        "a URL and a secret together are refused: {}",
        text(&both)
    );

    let malformed = aws::secret(&format!("user={user} password={password}")).await;
    let missing = good.replace(":secret:", ":secret:missing-");
    for (arn, expected) in [
        (malformed.clone(), "is not a JSON object"),
        (missing.clone(), "does not exist"),
    ] {
        let error = function(&with_secret(arn.clone()))
            .await
            .expect("configuration")
            .handle(serde_json::json!({}), in_minutes(15))
            .await
            .expect_err("a bad secret must fail");
        let message = error.to_string();
        assert!(
            message.contains(&arn) && message.contains(expected),
            "{message}"
        );
        assert!(
            !message.contains(&password),
            "the secret's value leaked: {message}"
        );
    }

    let received = alerts.received().await;
    assert!(
        received.iter().any(|(s, _)| s.contains("OK: backup")),
        "success notification: {received:?}"
    );
    assert!(
        received
            .iter()
            .filter(|(s, _)| s.contains("could not start"))
            .count()
            >= 2,
        "{received:?}"
    );
    for (subject, body) in &received {
        assert!(
            !subject.contains(&password) && !body.contains(&password),
            "password in an alert"
        );
    }
    let logged = logs.text();
    assert!(
        logged.contains("backup complete"),
        "the capture must have seen the run"
    );
    assert!(!logged.contains(&password), "password in the logs");
    admin()
        .await
        .query_drop(format!("DROP USER '{user}'@'%'"))
        .await
        .expect("drop user");
    drop_database(&source).await;
}

/// Issue 8: a run that uses more than BUDGET_WARN_PERCENT of its invocation's time succeeds and
/// warns, so a person hears before the database outgrows one invocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_using_most_of_its_time_budget_warns() {
    let source = small_database("budget").await;
    let bucket = aws::bucket("toc-budget").await;
    let alerts = aws::Alerts::new().await;
    let base = [
        ("BACKUP_STORE", format!("s3://{bucket}/college")),
        ("DATABASE_URL", url_for(&source)),
        ("SNS_TOPIC_ARN", alerts.topic_arn.clone()),
        ("MIN_REMAINING_SECONDS", "5".to_string()),
    ];
    let relaxed = function(&base).await.expect("configuration");
    // Deadlines well past the 15 s stop margin: the suite shares a busy machine.
    let deadline = Some(SystemTime::now() + Duration::from_secs(120));
    relaxed
        .handle(serde_json::json!({}), deadline)
        .await
        .expect("dump");
    assert!(
        alerts.received().await.is_empty(),
        "a dump well within 60 % of its time is quiet"
    );

    let mut strict = base.to_vec();
    strict.push(("BUDGET_WARN_PERCENT", "1".to_string()));
    let strict = function(&strict).await.expect("configuration");
    // 1 % of 120 s is 1.2 s; a table of 200,000 rows takes longer than that to dump and verify.
    connect_to(&source)
        .await
        .query_drop(
            "CREATE TABLE filler (id INT PRIMARY KEY, line VARCHAR(100)) ENGINE=InnoDB;
             INSERT INTO filler SELECT seq, REPEAT(MD5(seq), 3) FROM seq_1_to_200000;",
        )
        .await
        .expect("filler table");
    let deadline = Some(SystemTime::now() + Duration::from_secs(120));
    let report = strict
        .handle(serde_json::json!({}), deadline)
        .await
        .expect("the dump itself succeeds");
    assert!(report["backup_id"].is_string());
    let received = alerts.received().await;
    assert!(
        received.iter().any(
            |(subject, body)| subject.contains("WARNING: full backup used")
                && body.contains("s it had")
        ),
        "{received:?}"
    );
    drop_database(&source).await;
}

/// A job that panics: the bug the release profile's `panic = "unwind"` exists for.
struct PanickingJob {
    context: toc_sis_backup::lambda::context::FunctionContext,
}

#[async_trait::async_trait]
impl toc_sis_backup::lambda::Handler for PanickingJob {
    async fn handle(
        &self,
        _event: serde_json::Value,
        _deadline: Option<SystemTime>,
    ) -> toc_sis_backup::Result<serde_json::Value> {
        let tables: Vec<&str> = Vec::new();
        let index = tables.len() + 3;
        panic!("index out of bounds: the len is 0 but the index is {index}");
    }

    async fn panicked(&self, message: &str) {
        self.context.alert_panic(message).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_job_alerts_and_fails_the_invocation() {
    let alerts = aws::Alerts::new().await;
    let bucket = aws::bucket("toc-panic").await;
    let map = env(&[
        ("BACKUP_STORE", format!("s3://{bucket}/college")),
        ("SNS_TOPIC_ARN", alerts.topic_arn.clone()),
    ]);
    let context = toc_sis_backup::lambda::context::FunctionContext::from_env(
        "dump",
        &map as &dyn Env,
        aws::config().await,
        false,
    )
    .await
    .expect("configuration");
    let job = PanickingJob { context };
    let outcome =
        toc_sis_backup::lambda::handle_guarded(&job, serde_json::json!({}), in_minutes(5)).await;
    let error = outcome.expect_err("a panic is the invocation's error");
    assert!(
        matches!(error, toc_sis_backup::Error::Panicked(ref m) if m.contains("the index is 3")),
        "{error}"
    );
    let received = alerts.received().await;
    assert!(
        received
            .iter()
            .any(|(subject, body)| subject.contains("CRITICAL")
                && subject.contains("dump function failed: it panicked")
                && body.contains("the index is 3")
                && body.contains("previous good backup is still the latest")),
        "the panic must reach a person: {received:?}"
    );
}

//! Issue 13, TLS: a MariaDB with a certificate from a test CA and `require_secure_transport=ON`.
//! Dump and restore through the CLI and the Lambda handler work with the CA; another CA or
//! another host name fails with one line naming the CA file and the host, and writes no
//! backup; `DATABASE_TLS=on` never connects in plain text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::private_server::PrivateServer;
use crate::common::*;
use mysql_async::prelude::Queryable;
use toc_sis_backup::config::{DatabaseUrl, Tls};
use toc_sis_backup::lambda::dump::DumpFunction;
use toc_sis_backup::lambda::Env;

/// Certificates made with the `openssl` command: a CA, a server certificate it signed for
/// 127.0.0.1 only, and an unrelated CA.
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn make() -> Certificates {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (apt-get install openssl)");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        for ca in ["ca", "other-ca"] {
            run(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=toc-sis {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ]);
        }
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(dir.path().join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ]);
        Certificates { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A private MariaDB that accepts TLS connections only.
struct TlsServer {
    server: PrivateServer,
    port: u16,
}

impl TlsServer {
    fn start(certificates: &Certificates) -> TlsServer {
        let server = PrivateServer::start(&format!(
            "--ssl-ca={} --ssl-cert={} --ssl-key={} --require-secure-transport=ON",
            certificates.path("ca.pem").display(),
            certificates.path("server.pem").display(),
            certificates.path("server.key").display()
        ));
        let port = server.port;
        TlsServer { server, port }
    }

    fn url(&self, host: &str, database: &str) -> String {
        self.server.url("root", host, database)
    }

    async fn checksums(&self, ca: &Path, database: &str) -> Vec<(String, String)> {
        let url = DatabaseUrl::parse(&self.url("127.0.0.1", database))
            .expect("url")
            .with_tls(Some(Tls {
                ca_file: Some(ca.to_path_buf()),
            }));
        let mut conn = toc_sis_backup::mysql::connect(&url, Some(database))
            .await
            .expect("TLS connection with the right CA");
        let cipher: Option<(String, String)> = conn
            .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .await
            .expect("status");
        assert!(
            cipher.is_some_and(|(_, c)| !c.is_empty()),
            "the test's own connection must be TLS"
        );
        conn.query("CHECKSUM TABLE students, student_grade_records, enrolments")
            .await
            .expect("checksum")
            .into_iter()
            .map(|row: mysql_async::Row| {
                (
                    // `database.table`: compare copies by table name.
                    row.get::<String, _>(0)
                        .unwrap_or_default()
                        .split_once('.')
                        .map(|(_, table)| table.to_string())
                        .unwrap_or_default(),
                    row.get::<Option<String>, _>(1)
                        .flatten()
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_with_the_ca_a_backup_and_restore_are_exact_and_anything_else_is_refused() {
    let certificates = Certificates::make();
    let server = TlsServer::start(&certificates);
    let ca = certificates.path("ca.pem");
    let ca_text = ca.to_string_lossy().into_owned();
    let with_ca = [("DATABASE_TLS_CA_FILE", ca_text.as_str())];
    let source = server.url("127.0.0.1", "college");
    assert_ok(&run_cli(
        &["sample-data", "--database-url", &source],
        &with_ca,
    ));
    let store = tempfile::tempdir().expect("store");
    let store_text = store.path().to_string_lossy().into_owned();

    // Without TLS the server refuses, and the error says what to set.
    let plain = run_cli(
        &["dump", "--database-url", &source, "--store", &store_text],
        &[],
    );
    assert!(!plain.status.success());
    assert!(
        stderr(&plain).contains("set DATABASE_TLS=on and DATABASE_TLS_CA_FILE"),
        "{}",
        stderr(&plain)
    );

    // Another CA: one line naming the CA file and the host; no backup.
    let other_ca = certificates.path("other-ca.pem");
    let other_text = other_ca.to_string_lossy().into_owned();
    let refused = run_cli(
        &["dump", "--database-url", &source, "--store", &store_text],
        &[("DATABASE_TLS_CA_FILE", other_text.as_str())],
    );
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains(&format!("trusting CA file {other_text}"))
            && message.contains("not signed by a trusted CA")
            && message.contains(&format!("127.0.0.1:{}", server.port)),
        "{message}"
    );

    // The right CA but a host name the certificate does not name.
    let wrong_host = run_cli(
        &[
            "dump",
            "--database-url",
            &server.url("localhost", "college"),
            "--store",
            &store_text,
            "--database-tls",
            "on",
            "--database-tls-ca-file",
            &ca_text,
        ],
        &[],
    );
    assert!(!wrong_host.status.success());
    let message = stderr(&wrong_host);
    assert!(
        message.contains("for host \"localhost\"")
            && message.contains("not issued for this host name"),
        "{message}"
    );
    assert!(
        list_json(store.path())
            .as_array()
            .expect("array")
            .is_empty(),
        "a refused connection must leave no backup"
    );

    // The CA by environment for the dump, by flag for the restore.
    assert_ok(&run_cli(
        &["dump", "--database-url", &source, "--store", &store_text],
        &with_ca,
    ));
    assert_ok(&run_cli(
        &[
            "restore",
            "--database-url",
            &server.url("127.0.0.1", ""),
            "--store",
            &store_text,
            "--target-database",
            "college_copy",
            "--database-tls-ca-file",
            &ca_text,
        ],
        &[],
    ));
    assert_eq!(
        server.checksums(&ca, "college_copy").await,
        server.checksums(&ca, "college").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_never_falls_back_to_plain_text() {
    // The shared test server has no certificate, so it offers no TLS.
    let store = tempfile::tempdir().expect("store");
    let output = run_cli(
        &[
            "dump",
            "--database-url",
            &url_for("mysql"),
            "--store",
            &store.path().to_string_lossy(),
        ],
        &[("DATABASE_TLS", "on")],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("the server does not offer TLS"),
        "{}",
        stderr(&output)
    );
    let bad_value = run_cli(
        &["dump", "--database-url", &url_for("mysql"), "--store", "x"],
        &[("DATABASE_TLS", "maybe")],
    );
    assert!(
        stderr(&bad_value).contains("DATABASE_TLS is \"maybe\", which is not on or off"),
        "{}",
        stderr(&bad_value)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dump_function_connects_with_the_ca_it_is_configured_with() {
    let certificates = Certificates::make();
    let server = TlsServer::start(&certificates);
    let ca = certificates.path("ca.pem").to_string_lossy().into_owned();
    let source = server.url("127.0.0.1", "college");
    assert_ok(&run_cli(
        &["sample-data", "--database-url", &source],
        &[("DATABASE_TLS_CA_FILE", ca.as_str())],
    ));
    let bucket = aws::bucket("toc-tls").await;
    let settings = |tls: &str, ca_file: &str| -> HashMap<String, String> {
        [
            ("BACKUP_STORE", format!("s3://{bucket}/college")),
            ("DATABASE_URL", source.clone()),
            ("DATABASE_TLS", tls.to_string()),
            ("DATABASE_TLS_CA_FILE", ca_file.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    let deadline = Some(std::time::SystemTime::now() + std::time::Duration::from_secs(600));

    let good = settings("on", &ca);
    let function = DumpFunction::from_env(&good as &dyn Env, aws::config().await)
        .await
        .expect("configuration");
    let report = function
        .handle(serde_json::json!({}), deadline)
        .await
        .expect("dump over TLS");
    assert!(report["backup_id"].is_string(), "{report}");

    let wrong = settings("on", &certificates.path("other-ca.pem").to_string_lossy());
    let function = DumpFunction::from_env(&wrong as &dyn Env, aws::config().await)
        .await
        .expect("configuration");
    let error = function
        .handle(serde_json::json!({}), deadline)
        .await
        .expect_err("the wrong CA must fail")
        .to_string();
    assert!(
        error.contains("other-ca.pem") && error.contains("TLS"),
        "{error}"
    );

    let missing = settings("on", "/nowhere/rds-ca.pem");
    let error = DumpFunction::from_env(&missing as &dyn Env, aws::config().await)
        .await
        .err()
        .expect("a missing CA file is a configuration error")
        .to_string();
    assert!(
        error.contains("DATABASE_TLS_CA_FILE") && error.contains("/nowhere/rds-ca.pem"),
        "{error}"
    );
}

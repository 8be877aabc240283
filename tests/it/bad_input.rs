//! Done-means 5 and 6: bad input gets a clear one-line error naming the bad value; no password
//! ever appears in output, logs or backups; a missing privilege fails the dump.

use crate::common::*;
use mysql_async::prelude::Queryable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_errors_that_name_the_bad_value() {
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    let server = server_url();
    let host_port = server
        .trim_start_matches("mysql://")
        .split('@')
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "list".into(),
                "--store".into(),
                "s3://no-such-bucket-toc".into(),
            ],
            "S3 HeadBucket on s3://no-such-bucket-toc/ failed: the bucket does not exist",
        ),
        (
            vec!["list".into(), "--store".into(), "s3://Bad_Bucket/x".into()],
            "invalid store \"s3://Bad_Bucket/x\": the bucket name must be",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                "mysql//root@localhost/db".into(),
                "--store".into(),
                store_arg.clone(),
            ],
            "invalid database URL \"mysql//root@localhost/db\"",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                "postgres://root@localhost/db".into(),
                "--store".into(),
                store_arg.clone(),
            ],
            "scheme \"postgres\" is not mysql://",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                "mysql://root@127.0.0.1:1/db".into(),
                "--store".into(),
                store_arg.clone(),
            ],
            "cannot reach the MySQL server at 127.0.0.1:1",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                format!("mysql://root@{host_port}/no_such_database_here"),
                "--store".into(),
                store_arg.clone(),
            ],
            "database `no_such_database_here` does not exist",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                format!("mysql://root@{host_port}/"),
                "--store".into(),
                store_arg.clone(),
            ],
            "no database name after the host",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                format!("mysql://root@{host_port}/mysql"),
                "--store".into(),
                "/nonexistent/toc-backups".into(),
            ],
            "store directory /nonexistent/toc-backups does not exist",
        ),
        (
            vec![
                "list".into(),
                "--store".into(),
                "/nonexistent/toc-backups".into(),
            ],
            "store directory /nonexistent/toc-backups does not exist",
        ),
        (
            vec![
                "verify".into(),
                "--store".into(),
                store_arg.clone(),
                "--backup".into(),
                "20990101T000000Z-beef".into(),
            ],
            // An empty folder holds no backup at all: said before any id is looked for.
            "no complete backup in",
        ),
        (
            vec!["verify".into(), "--store".into(), store_arg.clone()],
            "no complete backup in",
        ),
        (
            vec![
                "restore".into(),
                "--database-url".into(),
                server.clone(),
                "--store".into(),
                store_arg.clone(),
                "--target-database".into(),
                "bad/name".into(),
            ],
            "invalid target database name \"bad/name\"",
        ),
        (
            vec![
                "dump".into(),
                "--database-url".into(),
                format!("mysql://root@{host_port}/mysql"),
                "--store".into(),
                "ftp://x".into(),
            ],
            "invalid store \"ftp://x\"",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run_cli(&args, &[]);
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
        let error_lines = stderr.lines().filter(|l| l.starts_with("error: ")).count();
        assert_eq!(error_lines, 1, "one error line expected:\n{stderr}");
    }

    // SSE-KMS without a key id would land every object under the account's aws/s3 key, which
    // replication cannot decrypt (issue 14): refused before anything is written.
    let output = run_cli(
        &["list", "--store", "s3://toc-any-bucket/x"],
        &[("BACKUP_SSE", "aws:kms")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("BACKUP_KMS_KEY_ID") && stderr.contains("aws/s3"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_never_appear_in_output_logs_or_backups() {
    let source = small_database("secret").await;
    let user = unique_name("backup_user");
    let password = format!("Pw-{:016x}-s3cret", rand::random::<u64>());
    let mut admin = admin().await;
    admin
        .query_drop(format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';
             GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%';"
        ))
        .await
        .expect("create user");
    let host_port = server_host_port();
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    let with_password = format!("mysql://{user}:{password}@{host_port}/{source}");
    let without_password = format!("mysql://{user}@{host_port}/");
    let wrong = format!("Wrong-{:016x}", rand::random::<u64>());

    let mut outputs = vec![
        run_cli(
            &[
                "dump",
                "--database-url",
                &with_password,
                "--store",
                &store_arg,
            ],
            &[],
        ),
        run_cli(
            &[
                "--log-format",
                "json",
                "dump",
                "--database-url",
                &with_password,
                "--store",
                &store_arg,
                "--notify-success",
            ],
            &[],
        ),
        run_cli(
            &[
                "restore",
                "--database-url",
                &without_password,
                "--store",
                &store_arg,
                "--target-database",
                &unique_name("secret_copy"),
            ],
            &[("DATABASE_PASSWORD", &password)],
        ),
        run_cli(
            &[
                "dump",
                "--database-url",
                &format!("mysql://{user}:{password}@{host_port}/no_such_db"),
                "--store",
                &store_arg,
            ],
            &[],
        ),
        run_cli(
            &[
                "dump",
                "--database-url",
                &format!("mysql://{user}:{password}@127.0.0.1:1/db"),
                "--store",
                &store_arg,
            ],
            &[],
        ),
        run_cli(
            &[
                "dump",
                "--database-url",
                &format!("mysql://{user}:{password}@{host_port}"),
                "--store",
                &store_arg,
            ],
            &[],
        ),
        run_cli(
            &[
                "dump",
                "--database-url",
                &format!("mysql//{user}:{password}@{host_port}/x"),
                "--store",
                &store_arg,
            ],
            &[],
        ),
    ];
    let denied = run_cli(
        &[
            "dump",
            "--database-url",
            &format!("mysql://{user}:{wrong}@{host_port}/{source}"),
            "--store",
            &store_arg,
        ],
        &[],
    );
    assert!(!denied.status.success());
    let denied_text = String::from_utf8_lossy(&denied.stderr).to_string();
    assert!(
        denied_text.contains(&format!("refused user \"{user}\"")),
        "{denied_text}"
    );
    assert!(
        !denied_text.contains(&wrong),
        "the wrong password was echoed:\n{denied_text}"
    );
    outputs.push(denied);

    assert_ok(&outputs[0]);
    assert_ok(&outputs[1]);
    assert_ok(&outputs[2]);
    for output in &outputs {
        let all = text(output);
        assert!(!all.contains(&password), "password leaked:\n{all}");
    }
    for file in walk(store.path()) {
        let bytes = std::fs::read(&file).expect("read");
        let mut content = bytes.clone();
        if file.extension().is_some_and(|e| e == "gz") {
            use std::io::Read;
            content.clear();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut content)
                .expect("gunzip");
        }
        assert!(
            !String::from_utf8_lossy(&content).contains(&password),
            "password found in {}",
            file.display()
        );
    }
    admin
        .query_drop(format!("DROP USER '{user}'@'%'"))
        .await
        .expect("drop user");
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_privilege_fails_instead_of_shrinking_the_backup() {
    let source = small_database("privileges").await;
    let user = unique_name("weak_user");
    let mut admin = admin().await;
    admin
        .query_drop(format!(
            "CREATE USER '{user}'@'%';
             GRANT SELECT, SHOW VIEW, EVENT, LOCK TABLES ON `{source}`.* TO '{user}'@'%';"
        ))
        .await
        .expect("create user");
    let host_port = server_host_port();
    let store = tempfile::tempdir().expect("temp dir");
    let output = run_cli(
        &[
            "dump",
            "--database-url",
            &format!("mysql://{user}@{host_port}/{source}"),
            "--store",
            store.path().to_str().unwrap_or_default(),
        ],
        &[],
    );
    assert!(
        !output.status.success(),
        "a dump that cannot see triggers must fail:\n{}",
        text(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("lacks the TRIGGER privilege"), "{stderr}");

    admin
        .query_drop(format!("GRANT TRIGGER ON `{source}`.* TO '{user}'@'%'"))
        .await
        .expect("grant");
    let output = run_cli(
        &[
            "dump",
            "--database-url",
            &format!("mysql://{user}@{host_port}/{source}"),
            "--store",
            store.path().to_str().unwrap_or_default(),
        ],
        &[],
    );
    assert_ok(&output);
    admin
        .query_drop(format!("DROP USER '{user}'@'%'"))
        .await
        .expect("drop user");
    drop_database(&source).await;
}

/// Issue 19: a path that is not a store is said to be one, with the root to use when it is a
/// backup folder inside a store; never "no backups" and success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_is_not_a_store_is_refused_with_the_root_to_use() {
    let source = small_database("not_a_store").await;
    let store = tempfile::tempdir().expect("store");
    assert_ok(&dump(&source, store.path()));
    let backup_folder = only_backup_dir(store.path());
    let folder = backup_folder.to_string_lossy().into_owned();
    let root = store.path().to_string_lossy().into_owned();
    for command in ["list", "verify"] {
        let output = run_cli(&[command, "--store", &folder], &[]);
        assert!(!output.status.success(), "{command}: {}", text(&output));
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("one backup's folder") && said.contains(&format!("--store {root}")),
            "{command}: {said}"
        );
    }
    let output = run_cli(
        &[
            "restore",
            "--database-url",
            &server_url(),
            "--store",
            &folder,
            "--target-database",
            &unique_name("never"),
        ],
        &[],
    );
    assert!(
        !output.status.success() && text(&output).contains(&format!("--store {root}")),
        "{}",
        text(&output)
    );

    let empty = tempfile::tempdir().expect("empty");
    let output = run_cli(&["list", "--store", &empty.path().to_string_lossy()], &[]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("nothing under database/"),
        "{}",
        text(&output)
    );
    assert_ok(&run_cli(&["list", "--store", &root], &[]));
    drop_database(&source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_point_never_fights_a_typed_one() {
    let store = tempfile::tempdir().expect("store");
    let source = small_database("exported_point").await;
    assert_ok(&dump(&source, store.path()));
    let store_arg = store.path().to_str().unwrap_or_default();
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();

    // Both exported, nothing typed: which one was meant is not guessed.
    let both = [("BACKUP_ID", "latest"), ("RESTORE_AT", later.as_str())];
    let output = run_cli(&["verify", "--store", store_arg], &both);
    assert!(!output.status.success(), "{}", text(&output));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("BACKUP_ID=latest and RESTORE_AT=") && said.contains("one of them exported"),
        "{said}"
    );
    // A typed point wins over both, on every command that takes one.
    assert_ok(&run_cli(
        &["verify", "--store", store_arg, "--backup", "latest"],
        &both,
    ));
    assert_ok(&run_cli(
        &["verify", "--store", store_arg, "--at", &later],
        &both,
    ));
    // One exported is used, and a bad one is named.
    assert_ok(&run_cli(
        &["verify", "--store", store_arg],
        &[("RESTORE_AT", later.as_str())],
    ));
    let output = run_cli(
        &["verify", "--store", store_arg],
        &[("RESTORE_AT", "yesterday")],
    );
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("RESTORE_AT") && said.contains("\"yesterday\""),
        "{said}"
    );
    drop_database(&source).await;
}

/// Issue 27: `toc-backup point` takes the point as every restore command does: an exported
/// RESTORE_AT is the moment pinned (it pinned "now", and every later runbook step brought the
/// damage back), an exported BACKUP_ID or a typed point likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_pins_the_exported_moment_not_now() {
    let store = tempfile::tempdir().expect("store");
    let source = small_database("pin_exported").await;
    assert_ok(&dump(&source, store.path()));
    let store_arg = store.path().to_str().unwrap_or_default();
    let id = list_json(store.path())[0]["id"]
        .as_str()
        .expect("a backup id")
        .to_string();
    let pinned = |env: &[(&str, &str)], extra: &[&str]| {
        let mut args = vec!["point", "--store", store_arg];
        args.extend_from_slice(extra);
        run_cli(&args, env)
    };
    let output = pinned(&[], &[]);
    assert_ok(&output);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("--backup {id}")
    );

    let before_every_backup = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let output = pinned(&[("RESTORE_AT", before_every_backup.as_str())], &[]);
    assert!(
        !output.status.success() && output.stdout.is_empty(),
        "a moment before every backup has nothing to pin:\n{}",
        text(&output)
    );
    // A typed point wins over the exported one; an exported BACKUP_ID is pinned as it is.
    assert_ok(&pinned(
        &[("RESTORE_AT", before_every_backup.as_str())],
        &["--backup", "latest"],
    ));
    let output = pinned(&[("BACKUP_ID", "latest")], &[]);
    assert_ok(&output);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("--backup {id}")
    );
    drop_database(&source).await;
}

/// `toc-backup list | head`: a reader that stops early ends the command quietly (SIGPIPE, as
/// for every Unix tool), never with a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_command_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let store = tempfile::tempdir().expect("store");
    let source = small_database("closed_pipe").await;
    assert_ok(&dump(&source, store.path()));
    let mut child = std::process::Command::new(BIN)
        .args(["list", "--store", store.path().to_str().unwrap_or_default()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("toc-backup");
    drop(child.stdout.take()); // the reader is gone before anything is printed
    let output = child.wait_with_output().expect("toc-backup");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!said.contains("panicked"), "{said}");
    assert!(
        output.status.signal() == Some(SIGPIPE) || output.status.success(),
        "{:?}: {said}",
        output.status
    );
    drop_database(&source).await;
}

/// SIGPIPE on Linux.
const SIGPIPE: i32 = 13;

/// Issue 26 item 7: a malformed database URL never shows its password, whatever is wrong with
/// it, from the flag or the environment; the one error line says what a URL should look like.
#[test]
fn a_malformed_database_url_never_shows_its_password() {
    const PASSWORD: &str = "S3cr3t-PW";
    let store = tempfile::tempdir().expect("temp dir");
    let store_arg = store.path().to_str().unwrap_or_default().to_string();
    let broken = [
        // No `@`: the password runs into the host.
        "mysql://user:S3cr3t-PW-host/db",
        "mysql://user:S3cr3t-PW",
        "mysql://user:S3cr3t-PW/db",
        "MYSQL://user:S3cr3t-PW.example.com:3306/db",
        "mysql:/user:S3cr3t-PW-host/db",
        "mysql://[::1]:S3cr3t-PW/db",
        "mysql://@user:S3cr3t-PW-host/db",
        // Two colons, no host.
        "mysql://user:pa:S3cr3t-PW@",
        // Bad ports.
        "mysql://user:S3cr3t-PW@host:99999/db",
        "mysql://user:S3cr3t-PW@host:port/db",
        "mysql://user:S3cr3t-PW@host:3306:3307/db",
        // Bad percent-encoding.
        "mysql://user:S3cr3t-PW%ff@host/db",
        "mysql://user:S3cr3t-PW%zz@/db",
        "mysql://user@host/%ff?password=S3cr3t-PW",
        // Spaces.
        "mysql://user:S3cr3t-PW@ho st/db",
        "mysql://user:S3cr3t-PW@host /db",
        // Empty host, empty user.
        "mysql://user:S3cr3t-PW@/db",
        "mysql://user:S3cr3t-PW@:3306/db",
        "mysql://:S3cr3t-PW@host/db",
        // The scheme short of its colon or slashes, misspelt or missing.
        "mysql:/user:S3cr3t-PW@h/db",
        "mysql:user:S3cr3t-PW@h/db",
        "mysql//user:S3cr3t-PW@h/db",
        "postgres://user:S3cr3t-PW@h/db",
        "user:S3cr3t-PW@h",
        "user:/S3cr3t-PW@h",
        // Characters a password may hold, unencoded.
        "mysql://user:S3cr3t-PW/x@h/db",
        "mysql://user:S3cr3t-PW#x@h/db",
        "mysql://user:S3cr3t-PW?x@h/db",
        "mysql://user:S3cr3t-PW@x@h/a/b",
        "mysql://user@S3cr3t-PW@/db",
        // A good address with something else wrong.
        "mysql://user:S3cr3t-PW@h/a/b",
        "mysql://user:S3cr3t-PW@h/db?ssl=true",
        "mysql://user@h/db?password=S3cr3t-PW",
        "mysql://user:S3cr3t-PW@[::1/db",
    ];
    let mut wrong = Vec::new();
    for url in broken {
        let from_flag = run_cli(&["dump", "--database-url", url, "--store", &store_arg], &[]);
        let from_env = run_cli(&["dump", "--store", &store_arg], &[("DATABASE_URL", url)]);
        for output in [from_flag, from_env] {
            let all = text(&output);
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() || all.contains(PASSWORD) {
                wrong.push(format!(
                    "{url}: the password is shown or the URL accepted:\n{all}"
                ));
            } else if !(stderr.contains("invalid database URL \"")
                && stderr.contains("expected mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"))
                || stderr.lines().filter(|l| l.starts_with("error: ")).count() != 1
            {
                wrong.push(format!(
                    "{url}: not one error line naming the URL's form:\n{all}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        2 * broken.len(),
        wrong.join("\n")
    );
}

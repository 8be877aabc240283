//! Issue 18: progress people can read. On a terminal (a pseudo-terminal made by `script`) the
//! dump (rows), restore, verify, the binlog archive and the file snapshots' backup, restore and
//! export (bytes) draw
//! a bar with rate and time left; with `--log-format json`, or
//! without a terminal, no bar: JSON lines only, and a progress line every `--progress-seconds`.
//! The final summary and the exit status are the same either way.

use std::process::Command;

use crate::common::*;

/// Runs toc-backup under a pseudo-terminal; answers (exit status, everything it wrote).
fn under_pty(args: &[&str]) -> (bool, String) {
    let quoted: Vec<String> = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let output = Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_STORE")
        .env("TERM", "xterm")
        .output()
        .expect("script (util-linux) runs a command under a pseudo-terminal");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).replace('\r', "\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_gets_a_bar_and_json_logs_get_lines_only() {
    let source = small_database("progress").await;
    let store = tempfile::tempdir().expect("store");
    let store_text = store.path().to_string_lossy().into_owned();
    assert_ok(&dump(&source, store.path()));
    let target = unique_name("progress_copy");
    let server = server_url();

    let restore = [
        "restore",
        "--database-url",
        &server,
        "--store",
        &store_text,
        "--target-database",
        &target,
        "--force",
    ];
    let (ok, shown) = under_pty(&restore);
    assert!(ok, "{shown}");
    assert!(
        shown.contains("ETA") && shown.contains("B/s"),
        "a bar with rate and time left:\n{shown}"
    );
    assert!(
        shown.contains(&format!("of {source} into {target}")),
        "the summary is printed as usual:\n{shown}"
    );

    let url = url_for(&source);
    let (ok, shown) = under_pty(&["dump", "--database-url", &url, "--store", &store_text]);
    assert!(
        ok && shown.contains("rows") && shown.contains("ETA") && shown.contains("backup "),
        "a dump counts rows against the server's estimate:\n{shown}"
    );

    let (ok, shown) = under_pty(&[
        "binlog",
        "archive",
        "--database-url",
        &url,
        "--store",
        &store_text,
        "--replica-server-id",
        "3180",
    ]);
    assert!(
        ok && shown.contains("ETA") && shown.contains("binlog archived"),
        "{shown}"
    );

    let (ok, shown) = under_pty(&["verify", "--store", &store_text]);
    assert!(
        ok && shown.contains("ETA") && shown.contains("is intact"),
        "{shown}"
    );

    let mut json = restore.to_vec();
    json.extend(["--log-format", "json", "--progress-seconds", "1"]);
    let (ok, shown) = under_pty(&json);
    assert!(ok, "{shown}");
    assert!(!shown.contains("ETA"), "no bar in JSON mode:\n{shown}");
    for line in shown.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with("restored ") {
            continue;
        }
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }

    // File snapshots: backup, restore and export draw bars too.
    let uploads = tempfile::tempdir().expect("uploads");
    for i in 0..20 {
        std::fs::write(
            uploads.path().join(format!("doc-{i}.pdf")),
            vec![i as u8; 50_000],
        )
        .expect("file");
    }
    let from = uploads.path().to_string_lossy().into_owned();
    let (ok, shown) = under_pty(&[
        "files",
        "backup",
        "--store",
        &store_text,
        "--from",
        &from,
        "--name",
        "uploads",
    ]);
    assert!(
        ok && shown.contains("ETA") && shown.contains("snapshot "),
        "{shown}"
    );
    let back = tempfile::tempdir().expect("restore folder");
    let to = back.path().join("uploads").to_string_lossy().into_owned();
    let (ok, shown) = under_pty(&[
        "files",
        "restore",
        "--store",
        &store_text,
        "--source",
        "uploads",
        "--to",
        &to,
    ]);
    assert!(
        ok && shown.contains("ETA") && shown.contains("restored snapshot"),
        "{shown}"
    );
    let tar = back
        .path()
        .join("uploads.tar.gz")
        .to_string_lossy()
        .into_owned();
    let (ok, shown) = under_pty(&[
        "files",
        "export",
        "--store",
        &store_text,
        "--source",
        "uploads",
        "--output",
        &tar,
    ]);
    assert!(ok && shown.contains("ETA"), "{shown}");

    // Not a terminal: no bar either, whatever the format; a long job logs progress lines.
    let output = run_cli(&restore, &[]);
    assert_ok(&output);
    assert!(!text(&output).contains("ETA"), "{}", text(&output));
    let mut conn = connect_to(&source).await;
    mysql_async::prelude::Queryable::query_drop(
        &mut conn,
        "CREATE TABLE d_big (id INT PRIMARY KEY, v VARCHAR(100));
         INSERT INTO d_big SELECT seq, REPEAT('x', 90) FROM seq_1_to_600000;",
    )
    .await
    .expect("a table big enough to take a few seconds");
    let output = run_cli(
        &[
            "dump",
            "--database-url",
            &url,
            "--store",
            &store_text,
            "--log-format",
            "json",
            "--progress-seconds",
            "1",
            "--jobs",
            "1",
        ],
        &[],
    );
    assert_ok(&output);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let progress = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "progress")
        .count();
    assert!(
        progress >= 1,
        "a progress line each second of a long dump: {lines:#?}"
    );
    assert!(!text(&output).contains("ETA"));
    drop_database(&source).await;
    drop_database(&target).await;
}

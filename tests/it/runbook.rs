//! Issue 19: the README's emergency runbook, run as the README writes it. The shell blocks are
//! read out of README.md (fenced as `sh runbook` and `sh standard-tools`), never copied here,
//! and run in order in one bash, with only the settings a person would type exported first.
//! Production-like: a MariaDB with ROW binlogs and the users `setup-users` creates, backups made as
//! `toc_backup`, the binlog archived as `toc_binlog`, the store in the S3 emulator with part of
//! it moved to Glacier, the restore run as an RDS-like master user without SUPER.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::private_server::PrivateServer;
use crate::common::*;

/// The password the tests give the project users (`setup-users`).
const USERS_PASSWORD: [(&str, &str); 1] = [("DATABASE_PASSWORD", "CHANGE-ME-or-use-IAM")];
const ADMIN_PASSWORD: &str = "master-Pa55word";

/// The shell blocks of README.md fenced as ```` ```sh <tag> ````, in order.
fn readme_blocks(tag: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let fence = format!("```sh {tag}");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match &mut current {
            None if line.trim_end() == fence => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "an unterminated ```sh {tag} block");
    blocks
}

/// A server as RDS gives one: ROW binlogs, the project's users, a master user without SUPER
/// (RDS's grants), functions and triggers allowed by the parameter group.
fn server_like_rds() -> PrivateServer {
    let server = PrivateServer::start("");
    server.root_sql("CREATE DATABASE toc_sis");
    server.apply_project_users();
    server.root_sql(&format!(
        "CREATE USER 'admin'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}';
         GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER ON *.* TO 'admin'@'%' WITH GRANT OPTION;
         SET GLOBAL log_bin_trust_function_creators = 1;"
    ));
    server
}

/// Each table's CHECKSUM TABLE and SHOW CREATE TABLE, without the AUTO_INCREMENT counter: after
/// a replay it is the next id after the rows (as on a row-based replica), where the source's
/// may have skipped ahead (InnoDB reserves ids for multi-row inserts); rows are compared whole.
fn state(server: &PrivateServer, database: &str) -> Vec<String> {
    let tables = server.root_query(
        Some(database),
        "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'",
    );
    tables
        .lines()
        .map(|line| {
            let table = line.split('\t').next().unwrap_or_default();
            let checksum = server.root_query(Some(database), &format!("CHECKSUM TABLE `{table}`"));
            let create = server.root_query(Some(database), &format!("SHOW CREATE TABLE `{table}`"));
            let create: Vec<&str> = create
                .split_whitespace()
                .filter(|word| !word.starts_with("AUTO_INCREMENT="))
                .collect();
            format!(
                "{table} {} {}",
                checksum.split('\t').nth(1).unwrap_or_default().trim(),
                create.join(" ")
            )
        })
        .collect()
}

/// The entries of two states that differ, by table.
fn assert_same_state(actual: &[String], expected: &[String], what: &str) {
    let differing: Vec<String> = actual
        .iter()
        .zip(expected)
        .filter(|(a, e)| a != e)
        .map(|(a, e)| {
            let short = |s: &str| s.split(" CREATE").next().unwrap_or_default().to_string();
            format!("{} != {}", short(a), short(e))
        })
        .collect();
    assert!(
        differing.is_empty() && actual.len() == expected.len(),
        "{what}: {} tables against {}; differing: {differing:?}",
        actual.len(),
        expected.len()
    );
}

fn databases(server: &PrivateServer) -> Vec<String> {
    server
        .root_query(None, "SHOW DATABASES")
        .lines()
        .map(str::to_string)
        .collect()
}

fn as_user(server: &PrivateServer, user: &str, args: &[&str]) -> std::process::Output {
    let url = server.url(user, "127.0.0.1", "toc_sis");
    let mut all = args.to_vec();
    all.extend(["--database-url", &url]);
    run_cli(&all, &USERS_PASSWORD)
}

/// The `aws` command: the one `scripts/aws-emulator install` puts in its own virtualenv, else
/// the one on PATH.
fn aws_cli_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let venv = std::env::var_os("TOC_AWSCLI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache/toc-sis-backup/awscli"));
    let bin = venv.join("bin");
    bin.join("aws").exists().then_some(bin)
}

/// Runs `blocks` in one bash (stopping at the first failing command), with `settings`
/// exported, `toc-backup` and the AWS CLI on PATH, in `home`. Each block is announced on
/// stderr, so a failure shows which one.
fn run_blocks(blocks: &[String], settings: &[(&str, String)], home: &Path) -> std::process::Output {
    run_script("set -eo pipefail\n", blocks, settings, home)
}

/// The blocks as a person pastes them into a shell: a failing command does not stop the ones
/// after it.
fn run_pasted(blocks: &[String], settings: &[(&str, String)], home: &Path) -> std::process::Output {
    run_script("", blocks, settings, home)
}

fn run_script(
    preamble: &str,
    blocks: &[String],
    settings: &[(&str, String)],
    home: &Path,
) -> std::process::Output {
    let mut script = String::from(preamble);
    for (n, block) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '>>> README block {}' >&2\n{block}", n + 1));
    }
    let bin_dir = Path::new(BIN).parent().expect("bin dir").to_path_buf();
    let mut path = vec![bin_dir];
    path.extend(aws_cli_dir());
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    // A person's own client settings, with another account's password: the runbook's `sql`
    // must not pick it up.
    std::fs::write(
        home.join(".my.cnf"),
        "[client]\nuser=someone_else\npassword=not-the-master-password\n",
    )
    .expect("~/.my.cnf");
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(&script)
        .current_dir(home)
        .env("HOME", home)
        .env("PATH", std::env::join_paths(path).expect("PATH"))
        .env("NO_COLOR", "1");
    for variable in [
        "DATABASE_URL",
        "BACKUP_STORE",
        "BACKUP_ID",
        "RESTORE_AT",
        "DATABASE_PASSWORD",
        "DATABASE_TLS",
        "TARGET_DATABASE",
    ] {
        command.env_remove(variable);
    }
    for (name, value) in settings {
        command.env(name, value);
    }
    command
        .stdin(std::process::Stdio::null())
        .output()
        .expect("bash")
}

fn settings(server: &PrivateServer, store: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BACKUP_STORE", store.to_string()),
        ("DB_HOST", "127.0.0.1".into()),
        ("DB_PORT", server.port.to_string()),
        ("DB_USER", "admin".into()),
        ("DATABASE_PASSWORD", ADMIN_PASSWORD.into()),
        // The test server has no TLS: the runbook's "empty: no TLS".
        ("DATABASE_TLS_CA_FILE", String::new()),
        ("LIVE", "toc_sis".into()),
        ("SCRATCH", "toc_sis_restore".into()),
    ]
}

/// Waits into the next second (the binlog's clock has whole seconds).
fn next_second() {
    let now = chrono::Utc::now();
    let into = u64::from(now.timestamp_subsec_millis());
    std::thread::sleep(Duration::from_millis(1100 - into.min(1000)));
}

async fn move_to_glacier(bucket: &str, keys: &[String]) {
    let s3 = aws::s3().await;
    for key in keys {
        s3.copy_object()
            .bucket(bucket)
            .key(key)
            .copy_source(format!("{bucket}/{key}"))
            .storage_class(aws_sdk_s3::types::StorageClass::Glacier)
            .send()
            .await
            .expect("archive");
    }
}

/// The sample college on an RDS-like server, and an empty bucket with its store URL.
async fn sample_college(bucket_prefix: &str) -> (PrivateServer, String, String) {
    let server = server_like_rds();
    let root = server.url("root", "127.0.0.1", "toc_sis");
    assert_ok(&run_cli(
        &["sample-data", "--database-url", &root, "--replace"],
        &[],
    ));
    let bucket = aws::bucket(bucket_prefix).await;
    let store = format!("s3://{bucket}/college/");
    (server, bucket, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_restores_the_point_before_the_damage_into_the_live_database() {
    let (server, bucket, store) = sample_college("runbook").await;

    // Last night's full backup, this morning's incremental, the binlog archived every few
    // minutes, the uploaded documents' snapshot.
    assert_ok(&as_user(
        &server,
        "toc_backup",
        &["dump", "--store", &store],
    ));
    server.root_sql(
        "USE toc_sis; UPDATE student_grade_records SET grade = grade + 1 WHERE id % 7 = 0 AND grade < 90;
         DELETE FROM student_grade_records WHERE id % 97 = 0;",
    );
    assert_ok(&as_user(
        &server,
        "toc_backup",
        &["incremental", "--store", &store],
    ));
    assert_ok(&as_user(
        &server,
        "toc_binlog",
        &["binlog", "archive", "--store", &store],
    ));
    server.root_sql(
        "USE toc_sis; UPDATE student_grade_records SET status = 'released' WHERE id % 5 = 0;",
    );
    next_second();
    let good = state(&server, "toc_sis");
    let before_damage = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    next_second();
    // The damage: an UPDATE without WHERE, archived like everything else.
    server.root_sql("USE toc_sis; UPDATE student_grade_records SET grade = 0;");
    assert_ok(&as_user(
        &server,
        "toc_binlog",
        &["binlog", "archive", "--store", &store],
    ));
    assert_ne!(state(&server, "toc_sis"), good);

    let uploads = tempfile::tempdir().expect("uploads");
    std::fs::create_dir_all(uploads.path().join("2026/transcripts")).expect("dir");
    std::fs::write(
        uploads.path().join("2026/transcripts/s1042.pdf"),
        b"%PDF transcript of student 1042",
    )
    .expect("file");
    assert_ok(&run_cli(
        &[
            "files",
            "backup",
            "--store",
            &store,
            "--from",
            uploads.path().to_str().unwrap_or_default(),
            "--name",
            "uploads",
        ],
        &[],
    ));

    // The full backup's rows and the first binlog segment are old enough for Glacier.
    let archived: Vec<String> = aws::keys(&bucket, "college/database/")
        .await
        .into_iter()
        .filter(|k| {
            (k.contains("/daily/") && k.contains("/1-") && k.ends_with(".sql.gz"))
                || k.ends_with("events.binlog.gz")
        })
        .collect();
    assert!(
        archived.iter().any(|k| k.contains("/binlog/")),
        "{archived:?}"
    );
    move_to_glacier(&bucket, &archived).await;

    let home = tempfile::tempdir().expect("home");
    let restored_files = home.path().join("uploads-restored");
    let mut settings = settings(&server, &store);
    // The moment before the damage, exported as the README says (`point` must honour it).
    settings.push(("RESTORE_AT", before_damage.clone()));
    settings.push(("FILES_TO", restored_files.to_string_lossy().into_owned()));
    let blocks = readme_blocks("runbook");
    assert!(blocks.len() >= 8, "the runbook has {} blocks", blocks.len());
    // The schedules go on meanwhile: a stand-in for the hourly backup runs as `toc_backup`
    // over and over, into a folder of its own, while the runbook works.
    let stand_in_store = tempfile::tempdir().expect("stand-in store");
    let stand_ins = StandIns::start(&server, stand_in_store.path());
    let output = run_blocks(&blocks, &settings, home.path());
    let stand_in_runs = stand_ins.stop();
    assert_ok(&output);
    let said = text(&output);
    // While the restore over the live database ran, the stand-ins skipped (a WARNING, saying
    // why); every backup they did take holds every row (none half-loaded).
    assert!(
        stand_in_runs
            .iter()
            .any(|run| run.contains("is being restored") && run.contains("skipped")),
        "no stand-in run met the restore in progress: {stand_in_runs:#?}"
    );
    let manifests: Vec<serde_json::Value> = walk(stand_in_store.path())
        .into_iter()
        // The full backups' (an incremental's rows are the rows it changed).
        .filter(|p| p.ends_with("manifest.json") && p.to_string_lossy().contains("/daily/"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).expect("manifest")).expect("JSON"))
        .collect();
    assert!(!manifests.is_empty(), "the stand-ins took no backup at all");
    // (id, table rows), in the order they were taken (ids sort by time).
    let mut totals: Vec<(String, String)> = manifests
        .iter()
        .map(|m| {
            let mut tables: Vec<String> = m["tables"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .map(|t| format!("{}={}", t["name"], t["rows"]))
                        .collect()
                })
                .unwrap_or_default();
            tables.sort();
            (m["backup_id"].to_string(), tables.join(","))
        })
        .collect();
    totals.sort();
    // Every one holds either the damaged database (taken before the swap) or the restored
    // one (after it), table by table: the damage's UPDATE also logged a row per grade into
    // system_logs (a trigger), so the two differ there.
    let (before, after) = (&totals[0].1, &totals[totals.len() - 1].1);
    assert_ne!(
        before, after,
        "no stand-in backup after the swap: {totals:#?}"
    );
    for (id, tables) in &totals {
        assert!(
            tables == before || tables == after,
            "stand-in backup {id} holds neither the damaged nor the restored database \
             (half-loaded): {tables}\nbefore: {before}\nafter: {after}"
        );
    }
    let pinned = format!("restoring exactly the point --at {before_damage}");
    for expected in [
        pinned.as_str(),
        "retrieval requested",
        "binlog segments replayed on it",
        "Row counts, fingerprints and definitions match the manifests",
        "binlog replayed",
    ] {
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }

    // The live database is the point before the damage; the scratch copy is gone; what the
    // live database held is kept; the documents are back; the password never showed.
    assert_same_state(
        &state(&server, "toc_sis"),
        &good,
        "the live database after the runbook",
    );
    assert!(!databases(&server).contains(&"toc_sis_restore".to_string()));
    let listed = run_cli(&["list", "--store", &store], &[]);
    assert_ok(&listed);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("before-emergency-restore") && listed.contains("after-emergency-restore"),
        "{listed}"
    );
    assert_eq!(
        std::fs::read(restored_files.join("2026/transcripts/s1042.pdf")).expect("restored file"),
        b"%PDF transcript of student 1042"
    );
    assert!(!said.contains(ADMIN_PASSWORD), "{said}");
}

/// The scheduled jobs' stand-ins: `toc-backup dump` and `incremental` as `toc_backup`, in turn
/// in a loop on their own thread, each run's output kept.
struct StandIns {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl StandIns {
    fn start(server: &PrivateServer, store: &Path) -> StandIns {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let url = server.url("toc_backup", "127.0.0.1", "toc_sis");
        let store = store.to_string_lossy().into_owned();
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut runs = Vec::new();
            // The nightly dump and the hourly incremental, in turn.
            for job in ["dump", "incremental"].iter().cycle() {
                if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let mut args = vec![*job, "--database-url", &url, "--store", &store];
                if *job == "dump" {
                    args.push("--no-prune");
                }
                runs.push(text(&run_cli(&args, &USERS_PASSWORD)));
                std::thread::sleep(Duration::from_millis(100));
            }
            runs
        });
        StandIns { stop, thread }
    }

    fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("stand-in thread")
    }
}

/// Issue 27 item 4: the "one table" branch. An UPDATE without WHERE and a DELETE on the grade
/// records, then a good change in another table: steps 0-4 and the branch put the grade
/// records back as they were before the damage (changed rows and deleted ones) and leave the
/// other table as it is now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_table_branch_puts_back_one_table_and_keeps_every_other_change() {
    let (server, _bucket, store) = sample_college("one-table").await;
    assert_ok(&as_user(
        &server,
        "toc_backup",
        &["dump", "--store", &store],
    ));
    server.root_sql("USE toc_sis; DELETE FROM student_grade_records WHERE id % 50 = 0;");
    next_second();
    let grades = |server: &PrivateServer| {
        server.root_query(
            Some("toc_sis"),
            "SELECT id, grade, status FROM student_grade_records ORDER BY id",
        )
    };
    let good_grades = grades(&server);
    let before_damage = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    next_second();
    // The damage, then a good change in another table and good work in the same one.
    server.root_sql(
        "USE toc_sis; UPDATE student_grade_records SET grade = 0;
         DELETE FROM student_grade_records WHERE id % 9 = 0;
         UPDATE students SET last_name = 'Changed-Later' WHERE id = 1;",
    );
    assert_ok(&as_user(
        &server,
        "toc_binlog",
        &["binlog", "archive", "--store", &store],
    ));
    let students_after = server.root_query(Some("toc_sis"), "CHECKSUM TABLE students");

    let home = tempfile::tempdir().expect("home");
    let mut settings = settings(&server, &store);
    settings.push(("RESTORE_AT", before_damage));
    let mut blocks: Vec<String> = readme_blocks("runbook").into_iter().take(5).collect();
    blocks.extend(readme_blocks("one-table"));
    let output = run_blocks(&blocks, &settings, home.path());
    assert_ok(&output);
    let said = text(&output);
    assert!(said.contains("rows_put_back"), "{said}");
    assert_eq!(
        grades(&server),
        good_grades,
        "the grade records before the damage"
    );
    assert_eq!(
        server.root_query(Some("toc_sis"), "CHECKSUM TABLE students"),
        students_after,
        "the later change to another table stays"
    );
    assert!(!databases(&server).contains(&"toc_sis_restore".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_tools_recipe_restores_the_newest_full_backup_and_its_incrementals() {
    assert!(
        aws_cli_dir().is_some() || Command::new("aws").arg("--version").output().is_ok(),
        "no aws CLI: run scripts/aws-emulator install"
    );
    let (server, bucket, store) = sample_college("standard-tools").await;
    // An older chain, then the newest full backup and two incrementals after it.
    assert_ok(&as_user(
        &server,
        "toc_backup",
        &["dump", "--store", &store],
    ));
    assert_ok(&as_user(
        &server,
        "toc_backup",
        &["incremental", "--store", &store],
    ));
    assert_ok(&as_user(
        &server,
        "toc_backup",
        &["dump", "--store", &store],
    ));
    for change in [
        "UPDATE student_grade_records SET grade = grade + 1 WHERE id % 7 = 0 AND grade < 90",
        "DELETE FROM student_grade_records WHERE id % 97 = 0",
    ] {
        server.root_sql(&format!("USE toc_sis; {change};"));
        assert_ok(&as_user(
            &server,
            "toc_backup",
            &["incremental", "--store", &store],
        ));
    }
    // What the tool restores of the newest point is what the recipe must give (tables outside
    // the incrementals' scope are as of the full backup, so not the source's).
    let grades = |database: &str| {
        server
            .root_query(Some(database), "CHECKSUM TABLE student_grade_records")
            .split('\t')
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let source_grades = grades("toc_sis");
    assert_ok(&run_cli(
        &[
            "restore",
            "--database-url",
            &server.url("root", "127.0.0.1", ""),
            "--store",
            &store,
            "--target-database",
            "toc_sis_by_tool",
        ],
        &[],
    ));
    let newest = state(&server, "toc_sis_by_tool");
    server.root_sql("USE toc_sis; DELETE FROM email_logs;");

    let home = tempfile::tempdir().expect("home");
    let mut blocks = readme_blocks("runbook");
    blocks.truncate(1); // step 0: the settings and the `sql` function
    blocks.extend(readme_blocks("standard-tools"));
    assert!(blocks.len() >= 2);
    let output = run_blocks(&blocks, &settings(&server, &store), home.path());
    assert_ok(&output);
    assert!(!text(&output).contains("STOP:"), "{}", text(&output));
    assert_same_state(
        &state(&server, "toc_sis"),
        &newest,
        "the recipe against the tool",
    );
    assert_eq!(grades("toc_sis"), source_grades);
    assert!(!databases(&server).contains(&"toc_sis_restore".to_string()));

    // A damaged file in the newest full backup, the blocks pasted as they come (nothing stops
    // at the first failure): the recipe says STOP, loads nothing, and the swap block leaves the
    // live database as it was.
    let keys = aws::keys(&bucket, "college/database/daily/").await;
    let newest_full = keys
        .iter()
        .filter(|k| k.ends_with("/manifest.json"))
        .max()
        .and_then(|k| k.rsplit_once('/'))
        .map(|(folder, _)| folder.to_string())
        .expect("a full backup");
    let data = keys
        .iter()
        .find(|k| k.starts_with(&format!("{newest_full}/1-")) && k.ends_with(".sql.gz"))
        .expect("a data file");
    aws::s3()
        .await
        .put_object()
        .bucket(&bucket)
        .key(data)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"not what was written",
        ))
        .send()
        .await
        .expect("damage a data file");
    let before = state(&server, "toc_sis");
    let home = tempfile::tempdir().expect("home");
    let output = run_pasted(&blocks, &settings(&server, &store), home.path());
    let said = text(&output);
    assert!(said.contains("STOP: a file above is damaged"), "{said}");
    assert_same_state(
        &state(&server, "toc_sis"),
        &before,
        "the live database after a damaged recipe run",
    );
    assert!(
        !databases(&server).contains(&"toc_sis_restore".to_string()),
        "{said}"
    );
}

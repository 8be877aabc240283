//! Issue 13: the project's own least-privilege users on a binlog-on server, as RDS has them.
//! `infra/sql/backup-users.sql` is applied as written; the dump runs as `toc_backup`, the
//! restore test as `toc_restore_test`, a disaster-recovery restore as a master-like user
//! without SUPER. Each either ends verified or refuses before creating anything, naming what
//! to change.

mod common;

use std::path::Path;

use common::private_server::PrivateServer;
use common::*;

/// The password `backup-users.sql` sets (a placeholder the file tells operators to replace).
const PLACEHOLDER_PASSWORD: &str = "CHANGE-ME-or-use-IAM";

fn stdout_and_stderr(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn manifest_objects(store: &Path) -> usize {
    let text = std::fs::read_to_string(find_file(store, "manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    manifest["objects"].as_array().expect("objects").len()
}

/// A private server (binlog on, log_bin_trust_function_creators 0 by default) holding the
/// sample database as `toc_sis`, with `infra/sql/backup-users.sql` applied as written.
fn sample_server_with_project_users() -> PrivateServer {
    let server = PrivateServer::start("");
    assert_ok(&run_cli(
        &[
            "sample-data",
            "--database-url",
            &server.url("root", "127.0.0.1", "toc_sis"),
        ],
        &[],
    ));
    server.apply_project_users();
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_privilege_users_back_up_whole_and_restore_or_refuse_before_creating_anything() {
    let server = sample_server_with_project_users();
    server.root_sql(
        "USE toc_sis;
         CREATE PROCEDURE count_students() SELECT COUNT(*) FROM students;
         CREATE FUNCTION grade_points(g DECIMAL(5,2)) RETURNS INT DETERMINISTIC RETURN ROUND(g * 10);
         CREATE TRIGGER students_touch BEFORE UPDATE ON students FOR EACH ROW SET @touched = 1;
         CREATE VIEW student_count AS SELECT COUNT(*) AS n FROM students;
         CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO SET @nightly = 1;",
    );
    let password = [("DATABASE_PASSWORD", PLACEHOLDER_PASSWORD)];

    // The backup user's dump holds every object.
    let store = tempfile::tempdir().expect("store");
    let store_text = store.path().to_string_lossy().into_owned();
    assert_ok(&run_cli(
        &[
            "dump",
            "--database-url",
            &server.url("toc_backup", "127.0.0.1", "toc_sis"),
            "--store",
            &store_text,
        ],
        &password,
    ));
    let objects = object_count(&server, "toc_sis").await;
    assert!(objects >= 5);
    assert_eq!(
        manifest_objects(store.path()),
        objects,
        "every object is backed up"
    );

    // The restore test as its own user: refused before anything is created.
    let restore_test = |store: &str| {
        run_cli(
            &[
                "restore-test",
                "--database-url",
                &server.url("toc_restore_test", "127.0.0.1", ""),
                "--store",
                store,
            ],
            &password,
        )
    };
    let refused = restore_test(&store_text);
    assert!(!refused.status.success());
    let said = stdout_and_stderr(&refused);
    assert!(
        said.contains("toc_restore_test@%")
            && said.contains("log_bin_trust_function_creators = 1")
            && said.contains("nothing was created"),
        "{said}"
    );
    let scratch = scratch_databases(&server).await;
    assert!(scratch.is_empty(), "the refused test created {scratch:?}");

    // With the parameter set (on RDS: the DB parameter group) it passes.
    server.root_sql("SET GLOBAL log_bin_trust_function_creators = 1;");
    let passed = restore_test(&store_text);
    assert_ok(&passed);

    // A master-like user without SUPER or SET USER, as on a fresh RDS for MariaDB instance.
    server.root_sql(
        "CREATE USER 'dr_admin'@'%' IDENTIFIED BY 'dr-password';
         GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX,
               ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE,
               CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER
               ON *.* TO 'dr_admin'@'%' WITH GRANT OPTION;",
    );
    let restore = |definer: &str| {
        run_cli(
            &[
                "restore",
                "--database-url",
                &server.url("dr_admin", "127.0.0.1", ""),
                "--store",
                &store_text,
                "--target-database",
                "toc_sis_recovered",
                "--definer",
                definer,
            ],
            &[("DATABASE_PASSWORD", "dr-password")],
        )
    };
    let kept = restore("keep");
    assert!(!kept.status.success());
    let said = stdout_and_stderr(&kept);
    assert!(
        said.contains("SET USER") && said.contains("--definer current"),
        "{said}"
    );
    assert!(
        !database_exists(&server, "toc_sis_recovered").await,
        "refused before creating the target"
    );
    let current = restore("current");
    assert_ok(&current);
    let said = stdout_and_stderr(&current);
    assert!(
        said.contains(&format!("{objects} objects created as the restoring user")),
        "{said}"
    );
    let definers = definers(&server, "toc_sis_recovered").await;
    assert_eq!(definers, vec!["dr_admin@%".to_string()], "{definers:?}");
}

async fn root_connection(server: &PrivateServer) -> mysql_async::Conn {
    let url = toc_sis_backup::config::DatabaseUrl::parse(&server.url("root", "127.0.0.1", ""))
        .expect("url");
    toc_sis_backup::mysql::connect(&url, None)
        .await
        .expect("root connection")
}

async fn scratch_databases(server: &PrivateServer) -> Vec<String> {
    use mysql_async::prelude::Queryable;
    root_connection(server)
        .await
        .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'toc\\_sis\\_restore\\_test\\_%'")
        .await
        .expect("schemata")
}

async fn database_exists(server: &PrivateServer, name: &str) -> bool {
    use mysql_async::prelude::Queryable;
    let found: Option<String> = root_connection(server)
        .await
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (name,),
        )
        .await
        .expect("schemata");
    found.is_some()
}

async fn object_count(server: &PrivateServer, database: &str) -> usize {
    use mysql_async::prelude::Queryable;
    let count: Option<u64> = root_connection(server)
        .await
        .exec_first(
            "SELECT (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?)
                  + (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?)
                  + (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?)
                  + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)",
            (database, database, database, database),
        )
        .await
        .expect("objects");
    count.unwrap_or_default() as usize
}

/// Every distinct DEFINER of the database's routines, views, triggers and events.
async fn definers(server: &PrivateServer, database: &str) -> Vec<String> {
    use mysql_async::prelude::Queryable;
    root_connection(server)
        .await
        .exec(
            "SELECT DISTINCT d FROM (
               SELECT DEFINER AS d FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
               UNION SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?
               UNION SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
               UNION SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?) all_definers",
            (database, database, database, database),
        )
        .await
        .expect("definers")
}

/// Issue 13, item 6: the accounts and grants that reach the database are recorded apart from
/// the SQL and recreated only with `restore --with-accounts` (locked, without a credential).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_recorded_apart_and_recreated_locked_on_request() {
    use mysql_async::prelude::Queryable;
    let server = sample_server_with_project_users();
    server.root_sql(
        "CREATE USER 'registrar'@'%' IDENTIFIED BY 'registrar-secret';
         GRANT SELECT, UPDATE ON toc_sis.* TO 'registrar'@'%';
         GRANT INSERT ON toc_sis.students TO 'registrar'@'%';",
    );

    // The least-privilege backup user cannot read the grant tables: said, not hidden.
    let least = tempfile::tempdir().expect("store");
    let least_text = least.path().to_string_lossy().into_owned();
    let dumped = run_cli(
        &[
            "dump",
            "--database-url",
            &server.url("toc_backup", "127.0.0.1", "toc_sis"),
            "--store",
            &least_text,
        ],
        &[("DATABASE_PASSWORD", PLACEHOLDER_PASSWORD)],
    );
    assert_ok(&dumped);
    assert!(
        stdout_and_stderr(&dumped).contains("accounts not recorded"),
        "{}",
        stdout_and_stderr(&dumped)
    );
    let restore_with_accounts = |store: &str, target: &str| {
        run_cli(
            &[
                "restore",
                "--database-url",
                &server.url("root", "127.0.0.1", ""),
                "--store",
                store,
                "--target-database",
                target,
                "--with-accounts",
            ],
            &[],
        )
    };
    let refused = restore_with_accounts(&least_text, "toc_sis_no_accounts");
    assert!(!refused.status.success());
    assert!(
        stdout_and_stderr(&refused).contains("has no accounts to restore")
            && stdout_and_stderr(&refused).contains("grant it SELECT ON mysql.*"),
        "{}",
        stdout_and_stderr(&refused)
    );

    // An administrator's dump records them; a plain restore leaves them alone.
    let full = tempfile::tempdir().expect("store");
    let full_text = full.path().to_string_lossy().into_owned();
    assert_ok(&run_cli(
        &[
            "dump",
            "--database-url",
            &server.url("root", "127.0.0.1", "toc_sis"),
            "--store",
            &full_text,
        ],
        &[],
    ));
    let accounts_file = find_file(full.path(), "accounts.gz");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(accounts_file).expect("open")),
        &mut text,
    )
    .expect("gunzip");
    assert!(text.contains("'registrar'@'%' ACCOUNT LOCK"), "{text}");
    assert!(
        !text
            .lines()
            .any(|line| !line.starts_with("--") && line.contains("IDENTIFIED")),
        "no credential without --with-password-hashes:\n{text}"
    );

    server.root_sql("DROP USER 'registrar'@'%';");
    assert_ok(&restore_with_accounts(&full_text, "toc_sis_accounts"));
    let mut root = root_connection(&server).await;
    let grants: Vec<String> = root
        .query("SHOW GRANTS FOR 'registrar'@'%'")
        .await
        .expect("the account exists again");
    let all = grants.join("\n");
    assert!(
        all.contains("GRANT SELECT, UPDATE ON `toc_sis_accounts`.*")
            && all.contains("GRANT INSERT ON `toc_sis_accounts`.`students`"),
        "{all}"
    );
    let locked: Option<String> = root
        .query_first("SHOW CREATE USER 'registrar'@'%'")
        .await
        .expect("show create user");
    assert!(
        locked
            .as_deref()
            .is_some_and(|c| c.contains("ACCOUNT LOCK")),
        "{locked:?}"
    );
}
